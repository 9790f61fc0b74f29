//! `/api/v1/` handlers: Systems, operations and the service map.

use axum::extract::{Query, State};
use axum::Json;
use domain::now_ns;

use crate::error::AppError;
use crate::read::processes::RangeParams;
use crate::read::systems::*;
use crate::read::time_range;
use crate::state::AppState;

pub async fn list_systems(
    State(state): State<AppState>,
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Systems>, AppError> {
    let Query(p) = super::query(params, "from, to")?;
    let w = time_range::window(p.from.as_deref(), p.to.as_deref(), now_ns())?;
    Ok(Json(systems(&state, &w).await?))
}

pub async fn list_operations(
    State(state): State<AppState>,
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Operations>, AppError> {
    let Query(p) = super::query(params, "from, to")?;
    let w = time_range::window(p.from.as_deref(), p.to.as_deref(), now_ns())?;
    Ok(Json(operations(&state, &w).await?))
}

pub async fn get_service_map(
    State(state): State<AppState>,
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ServiceMap>, AppError> {
    let Query(p) = super::query(params, "from, to")?;
    let w = time_range::window(p.from.as_deref(), p.to.as_deref(), now_ns())?;
    Ok(Json(service_map(&state, &w).await?))
}
