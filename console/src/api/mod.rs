//! The JSON API under `/api/v1/`. Handlers are short: validate the path,
//! call one storage query, shape the answer with `view`. Errors are JSON
//! `{"error": "..."}` with the right status, mapped in one place ([`AppError`]).

pub mod alerts;
pub mod breaches;
mod cursor;
mod events;
pub mod keys;
mod ocel;
pub mod processes;
pub mod search;
pub mod systems;
pub mod time_range;
pub mod traces;
pub mod view;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use collector::metrics::Metrics;
use domain::keys::KeyTypes;
use domain::process::Processes;
use store::{Store, StoreError};

/// What every handler may read.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub keys: Arc<KeyTypes>,
    /// The process definitions.
    pub processes: Arc<Processes>,
    /// The process's metrics, shown at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Range aggregates reused while fresh.
    pub caches: Arc<systems::Caches>,
    /// The alert rules (their state is read from ClickHouse).
    pub alerts: Arc<engine::alerts::rules::Rules>,
    /// Users, API keys, sessions.
    pub auth: Arc<crate::auth::Auth>,
    /// The correlator of this process, if one runs here: its open breaches
    /// are the console's `/metrics` gauge; without it they are read from
    /// ClickHouse.
    pub correlator: Option<Arc<engine::metrics::CorrelatorMetrics>>,
}

/// User text quoted for an error message: in backticks, control characters
/// escaped, cut to 64 characters so a long path is not echoed whole.
pub fn shown(text: &str) -> String {
    const MAX: usize = 64;
    let mut out = String::from("`");
    for c in text.chars().take(MAX) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    if text.chars().nth(MAX).is_some() {
        out.push_str("...");
    }
    out
}

/// An id of a process or alert rule from a URL, checked for its shape
/// before it is looked up; `what` names it in the message.
pub fn check_id(what: &str, id: &str) -> Result<(), AppError> {
    if domain::process::definition::valid_id(id) {
        return Ok(());
    }
    Err(AppError::BadRequest(format!(
        "{} is not a valid {what} id; ids are 1 to 64 lowercase letters, digits, `_` and `-`, starting with a letter or digit",
        shown(id)
    )))
}

/// Every way a request can fail, each with the sentence the user sees.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// Signed in, but the role is too low.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            AppError::Store(e) => {
                tracing::error!(error = %e, "query failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the data store did not answer; try again shortly (details are in the console's log)".to_string(),
                )
            }
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// `limit`: 1 to 1000, default 100.
fn limit(requested: Option<usize>) -> Result<usize, AppError> {
    let limit = requested.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(AppError::BadRequest(format!(
            "`limit` must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok(limit)
}

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
         /api/v1/processes/{id}/instances, /api/v1/breaches, /api/v1/systems, \
         /api/v1/systems/operations, /api/v1/systems/map, /api/v1/search?q=, \
         /api/v1/alerts, /api/v1/alerts/{id} and /api/v1/export/ocel"
            .into(),
    )
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
        .route("/api/v1/breaches", get(breaches::list_breaches))
        .route("/api/v1/export/ocel", get(ocel::export))
        .route("/api/v1/systems", get(systems::list_systems))
        .route("/api/v1/systems/operations", get(systems::list_operations))
        .route("/api/v1/systems/map", get(systems::get_service_map))
        .route("/api/v1/search", get(search::get_search))
        .route("/api/v1/alerts", get(alerts::list_alerts))
        .route("/api/v1/alerts/{id}", get(alerts::get_alert))
        .route("/api/v1/{*rest}", get(not_found))
        .with_state(state)
}
