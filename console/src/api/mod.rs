//! The JSON API under `/api/v1/`. Handlers are short: check the request,
//! call one function of the read layer (`crate::read`), answer its value as
//! JSON. Errors are JSON `{"error": "..."}` with the right status, mapped in
//! one place ([`AppError`]). The OCEL export and the event list are API-only
//! shapes and live here whole.

mod alerts;
mod breaches;
mod events;
mod keys;
mod ocel;
mod owners;
mod processes;
mod search;
mod storage;
mod systems;
mod traces;

use axum::routing::get;
use axum::Router;

use crate::error::AppError;
use crate::state::AppState;

/// Query parameters, or a 400 naming the ones this endpoint knows.
fn query<T>(
    parsed: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
    known: &str,
) -> Result<axum::extract::Query<T>, AppError> {
    parsed
        .map_err(|e| AppError::BadRequest(format!("{}; known parameters: {known}", e.body_text())))
}

async fn not_found() -> AppError {
    AppError::NotFound(
        "no such API endpoint; see /api/v1/traces/{trace_id}, /api/v1/keys/{type}/{value}, \
         /api/v1/events, /api/v1/processes, /api/v1/processes/{id}, \
         /api/v1/processes/{id}/instances, /api/v1/processes/{id}/slos, /api/v1/breaches, /api/v1/systems, \
         /api/v1/systems/operations, /api/v1/systems/map, /api/v1/plants, /api/v1/search?q=, \
         /api/v1/alerts, /api/v1/alerts/{id}, /api/v1/owners, /api/v1/export/ocel and (admins) /api/v1/storage"
            .into(),
    )
}

/// The admin's JSON endpoints (`/api/v1/storage`), in a route group of
/// their own: admin role, JSON answers.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/storage", get(storage::get_storage))
        .with_state(state)
}

/// `/api/v1/...`
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/traces/{trace_id}", get(traces::get_trace))
        .route("/api/v1/keys/{key_type}/{value}", get(keys::get_key))
        .route("/api/v1/events", get(events::list_events))
        .route("/api/v1/processes", get(processes::list_processes))
        .route("/api/v1/processes/{id}", get(processes::get_process))
        .route(
            "/api/v1/processes/{id}/instances",
            get(processes::list_instances),
        )
        .route("/api/v1/processes/{id}/slos", get(processes::get_slos))
        .route("/api/v1/breaches", get(breaches::list_breaches))
        .route("/api/v1/export/ocel", get(ocel::export))
        .route("/api/v1/systems", get(systems::list_systems))
        .route("/api/v1/systems/operations", get(systems::list_operations))
        .route("/api/v1/systems/map", get(systems::get_service_map))
        .route("/api/v1/plants", get(systems::list_plants))
        .route("/api/v1/search", get(search::get_search))
        .route("/api/v1/alerts", get(alerts::list_alerts))
        .route("/api/v1/alerts/{id}", get(alerts::get_alert))
        .route("/api/v1/owners", get(owners::list_owners))
        .route("/api/{*rest}", get(not_found))
        .with_state(state)
}
