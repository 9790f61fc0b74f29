//! `/api/v1/` handlers: Search by any id.

use axum::extract::{Query, State};
use axum::Json;

use crate::error::AppError;
use crate::read::search::*;
use crate::state::AppState;

pub async fn get_search(
    State(state): State<AppState>,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SearchResult>, AppError> {
    let Query(p) = super::query(params, "q")?;
    Ok(Json(search(&state, p.q.as_deref().unwrap_or("")).await?))
}
