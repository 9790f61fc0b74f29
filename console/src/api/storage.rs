//! `/api/v1/storage` (admin only): what is stored, per table, and the
//! retention in force.

use axum::extract::State;
use axum::Json;

use crate::error::AppError;
use crate::read::storage::{storage, Storage};
use crate::state::AppState;

pub async fn get_storage(State(state): State<AppState>) -> Result<Json<Storage>, AppError> {
    Ok(Json(storage(&state).await?))
}
