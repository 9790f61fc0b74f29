//! `/api/v1/` handlers: Alert rules and their state.

use axum::extract::{Path, State};
use axum::Json;

use crate::error::AppError;
use crate::read::alerts::*;
use crate::state::AppState;

pub async fn list_alerts(State(state): State<AppState>) -> Result<Json<Alerts>, AppError> {
    Ok(Json(alerts(&state).await?))
}

pub async fn get_alert(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AlertDetail>, AppError> {
    Ok(Json(alert(&state, &id).await?))
}
