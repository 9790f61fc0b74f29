//! `/healthz`, `/readyz` and `/metrics`, served beside every listener that
//! faces operators (the OTLP/HTTP address and the console address).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::spool::Spool;
use store::Store;

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// What the operator endpoints read.
#[derive(Clone)]
struct OpsState {
    store: Store,
    metrics: Arc<Metrics>,
    /// The collector's spool; `None` for the console.
    spool: Option<Spool>,
}

async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    let OpsState {
        store,
        metrics,
        spool,
    } = state;
    if let Some(spool) = spool {
        return collector_readiness(&store, &metrics, &spool).await;
    }
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

/// The collector with a spool is ready while it can accept: ClickHouse being
/// away makes it "degraded" (still 200; it keeps accepting into the spool),
/// a full spool makes it not ready.
async fn collector_readiness(
    store: &Store,
    metrics: &Metrics,
    spool: &Spool,
) -> (StatusCode, Json<serde_json::Value>) {
    if spool.is_full() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "not ready",
                "error": format!("the spool in {} is full; requests are refused until ClickHouse takes the backlog", spool.dir().display()),
            })),
        );
    }
    let writer_problem = metrics
        .clickhouse_problem
        .lock()
        .expect("metrics lock")
        .clone();
    let problem = match writer_problem {
        Some(problem) => Some(problem),
        None => match store.migrations_current().await {
            Ok(true) => None,
            Ok(false) => Some(
                "ClickHouse is reachable but migrations are not applied; run `throughline migrate`"
                    .to_string(),
            ),
            Err(e) => Some(format!(
                "ClickHouse at {} is not usable: {e}; requests are kept in the spool",
                store.config().url
            )),
        },
    };
    match problem {
        None => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Some(reason) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "degraded", "reason": reason })),
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
    routes(OpsState {
        store,
        metrics,
        spool: None,
    })
}

/// `/healthz` and `/readyz` only, for a server that serves its own `/metrics`
/// (the console adds the business gauges; `metrics_text` gives the rest).
pub fn health_router(store: Store, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(OpsState {
            store,
            metrics,
            spool: None,
        })
}

/// The collector's operator endpoints: also ready ("degraded") while
/// ClickHouse is away, since the spool keeps accepting.
pub fn collector_router(store: Store, metrics: Arc<Metrics>, spool: Spool) -> Router {
    routes(OpsState {
        store,
        metrics,
        spool: Some(spool),
    })
}

fn routes(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}
