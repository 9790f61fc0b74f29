//! `/api/v1/` handlers: who owns what.

use axum::extract::State;
use axum::Json;

use crate::read::owners::{owners, Owners};
use crate::state::AppState;

pub async fn list_owners(State(state): State<AppState>) -> Json<Owners> {
    Json(owners(&state))
}
