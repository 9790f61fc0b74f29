//! `/healthz`, `/readyz` and `/metrics`, served beside every listener that
//! faces operators (the OTLP/HTTP address and the console address).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::storage::Store;

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// What the operator endpoints read.
#[derive(Clone)]
struct OpsState {
    store: Store,
    metrics: Arc<Metrics>,
}

async fn readyz(State(OpsState { store, .. }): State<OpsState>) -> impl IntoResponse {
    let problem = match store.migrations_current().await {
        Ok(true) => None,
        Ok(false) => Some(
            "ClickHouse is reachable but migrations are not applied; run `throughline migrate`"
                .to_string(),
        ),
        Err(e) => Some(format!(
            "ClickHouse at {} is not usable: {e}",
            store.config().url
        )),
    };
    match problem {
        None => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Some(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "not ready", "error": error })),
        ),
    }
}

async fn metrics_text(State(OpsState { metrics, .. }): State<OpsState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
}

/// The operator endpoints: readiness from `store`, numbers from `metrics`.
pub fn router(store: Store, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(OpsState { store, metrics })
}
