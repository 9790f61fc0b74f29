//! `/api/v1/` handlers: Systems, operations and the service map (`plant=`
//! for one plant's systems and operations), and the plants' link state.

use axum::extract::{Query, State};
use axum::Json;
use domain::now_ns;

use serde::Deserialize;

use crate::error::AppError;
use crate::read::plants::{plants, Plants};
use crate::read::processes::RangeParams;
use crate::read::systems::*;
use crate::read::time_range;
use crate::state::AppState;

/// A range and, optionally, one plant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlantRangeParams {
    pub from: Option<String>,
    pub to: Option<String>,
    pub plant: Option<String>,
}

fn plant_window(p: &PlantRangeParams) -> Result<time_range::Window, AppError> {
    time_range::window(p.from.as_deref(), p.to.as_deref(), now_ns())?.with_plant(p.plant.as_deref())
}

pub async fn list_systems(
    State(state): State<AppState>,
    params: Result<Query<PlantRangeParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Systems>, AppError> {
    let Query(p) = super::query(params, "from, to, plant")?;
    let w = plant_window(&p)?;
    Ok(Json(systems(&state, &w).await?))
}

pub async fn list_operations(
    State(state): State<AppState>,
    params: Result<Query<PlantRangeParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Operations>, AppError> {
    let Query(p) = super::query(params, "from, to, plant")?;
    let w = plant_window(&p)?;
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

/// `GET /api/v1/plants`: each plant's link state (no parameters).
pub async fn list_plants(State(state): State<AppState>) -> Result<Json<Plants>, AppError> {
    Ok(Json(plants(&state).await?))
}
