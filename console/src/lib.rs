//! The Throughline console (web pages, JSON API, health, metrics) and the wiring of the
//! `throughline` binary's subcommands.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod metrics;
pub mod run;
pub mod security_headers;
pub mod terminal;
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
