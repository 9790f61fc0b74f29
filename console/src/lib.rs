//! The Throughline console: HTTP only. Pages, the JSON API, sign-in, health
//! and the console's `/metrics`, over one read layer (`api`'s functions)
//! that pages and API handlers both call. It only reads: it never writes to
//! ClickHouse, never knows an ingest wire format and never runs a background
//! worker; the binary wires it to the store and the engine.

pub mod api;
pub mod auth;
pub mod metrics;
pub mod security_headers;
pub mod serve;
pub mod web;

use axum::Router;

/// The console's whole HTTP surface, without a socket, so tests can call
/// `app(state).oneshot(request)`.
pub fn app(state: api::AppState) -> Router {
    let ops = collector::ops::health_router(state.store.clone(), state.metrics.clone());
    let metrics = Router::new()
        .route("/metrics", axum::routing::get(metrics::metrics_text))
        .with_state(state.clone());
    api::router(state.clone())
        .merge(ops)
        .merge(metrics)
        .merge(web::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(state, auth::guard))
        .layer(axum::middleware::from_fn(security_headers::add))
}
