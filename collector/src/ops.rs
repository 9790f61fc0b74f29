//! `/healthz`, `/readyz` and `/metrics`, served beside every listener that
//! faces operators (the OTLP/HTTP address and the console address).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::storage::Store;

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(store): State<Store>) -> impl IntoResponse {
    let problem = match store.migrations_current().await {
        Ok(true) => None,
        Ok(false) => Some("ClickHouse is reachable but migrations are not applied; run `throughline migrate`".to_string()),
        Err(e) => Some(format!("ClickHouse at {} is not usable: {e}", store.config().url)),
    };
    match problem {
        None => (StatusCode::OK, Json(serde_json::json!({ "status": "ready" }))),
        Some(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "not ready", "error": error })),
        ),
    }
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        crate::metrics::global().render(),
    )
}

/// The operator endpoints, reading readiness from `store`.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(store)
}
