//! `/api/v1/` handlers: Processes, their health and instances.

use axum::extract::{Path, Query, State};
use axum::Json;
use domain::now_ns;

use crate::error::AppError;
use crate::read::processes::*;
use crate::read::time_range;
use crate::state::AppState;

pub async fn list_processes(
    State(state): State<AppState>,
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Health>, AppError> {
    let Query(params) = super::query(params, "from, to")?;
    let (from_ns, to_ns) =
        time_range::range(params.from.as_deref(), params.to.as_deref(), now_ns())?;
    Ok(Json(health(&state, from_ns, to_ns, None, false).await?))
}

/// `GET /api/v1/processes/{id}`: one process's health, with the duration
/// histogram of each stage pair.
pub async fn get_process(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ProcessHealth>, AppError> {
    let Query(params) = super::query(params, "from, to")?;
    let def = process(&state, &id)?;
    let (from_ns, to_ns) =
        time_range::range(params.from.as_deref(), params.to.as_deref(), now_ns())?;
    let mut health = health(&state, from_ns, to_ns, Some(&def.id), true).await?;
    Ok(Json(health.processes.remove(0)))
}

pub async fn list_instances(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<InstanceParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<InstancePage>, AppError> {
    let Query(params) = super::query(params, "status, key, plant, from, to, limit, cursor")?;
    Ok(Json(instances(&state, &id, params).await?))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloParams {
    #[serde(default)]
    pub burn_down: bool,
}

/// `GET /api/v1/processes/{id}/slos?burn_down=`: its objectives judged now.
pub async fn get_slos(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<SloParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<crate::read::slos::Slos>, AppError> {
    let Query(params) = super::query(params, "burn_down")?;
    Ok(Json(
        crate::read::slos::slos(&state, &id, now_ns(), params.burn_down).await?,
    ))
}
