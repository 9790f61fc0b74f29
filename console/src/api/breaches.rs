//! `/api/v1/` handlers: SLA breaches.

use axum::extract::{Query, State};
use axum::Json;

use crate::error::AppError;
use crate::read::breaches::*;
use crate::state::AppState;

pub async fn list_breaches(
    State(state): State<AppState>,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<BreachPage>, AppError> {
    let Query(params) = super::query(params, "process, sla, open, plant, from, to, limit, cursor")?;
    Ok(Json(breaches(&state, params).await?))
}
