//! The Throughline console: HTTP only. Pages, the JSON API, sign-in, health
//! and the console's `/metrics`, over one read layer (`read`) that pages
//! and API handlers both call. It only reads: it never writes to
//! ClickHouse, never knows an ingest wire format and never runs a background
//! worker; the binary wires it to the store and the engine.

pub mod access;
pub mod api;
pub mod auth;
pub mod error;
pub mod links;
pub mod metrics;
pub mod read;
pub mod security_headers;
pub mod serve;
pub mod state;
pub mod web;

use axum::Router;

/// The console's whole HTTP surface, without a socket, so tests can call
/// `app(state).oneshot(request)`.
///
/// Access is declared here, per route group (see `access`): public, pages
/// (viewer), admin, the API with `/metrics` (viewer, JSON answers) and the
/// admin's API (`/api/v1/storage`: admin, JSON answers).
pub fn app(state: state::AppState) -> Router {
    use access::{Reply, Rule};
    use auth::Role;
    use axum::middleware::from_fn_with_state;
    let rule = |role, reply| Rule {
        state: state.clone(),
        role,
        reply,
    };
    let public = web::public(state.clone())
        .merge(collector::ops::health_router(
            state.store.clone(),
            state.metrics.clone(),
        ))
        .layer(from_fn_with_state(state.clone(), access::public));
    let pages = web::pages(state.clone()).layer(from_fn_with_state(
        rule(Role::Viewer, Reply::Page),
        access::require,
    ));
    let admin = web::admin(state.clone()).layer(from_fn_with_state(
        rule(Role::Admin, Reply::Page),
        access::require,
    ));
    let admin_api = api::admin_router(state.clone()).layer(from_fn_with_state(
        rule(Role::Admin, Reply::Json),
        access::require,
    ));
    let api = api::router(state.clone())
        .merge(
            Router::new()
                .route("/metrics", axum::routing::get(metrics::metrics_text))
                .with_state(state.clone()),
        )
        .layer(from_fn_with_state(
            rule(Role::Viewer, Reply::Json),
            access::require,
        ));
    Router::new()
        .merge(public)
        .merge(api)
        .merge(admin_api)
        .merge(admin)
        .merge(pages)
        .layer(from_fn_with_state(state, access::loopback_only))
        .layer(axum::middleware::from_fn(security_headers::add))
}
