//! What each route group lets through. The console's routes come in five
//! groups, each declared in `crate::app` with the rule it needs: `public`
//! (sign-in, assets, health: anyone), `pages` (viewer; HTML answers),
//! `admin` (admin; HTML answers), `api` (the JSON API and `/metrics`:
//! viewer; JSON answers) and `admin_api` (`/api/v1/storage`: admin; JSON
//! answers). No rule reads the request path.
//!
//! [`require`] finds the request's [`Identity`] (a bearer API key, else the
//! session cookie), sends the unidentified to the sign-in page (pages) or
//! answers 401 (API), refuses a role too low with 403, and leaves the
//! identity in the request's extensions for the pages ([`Chrome`]).
//! [`loopback_only`] keeps an open console (no users) to loopback names.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;

use crate::auth::{Identity, Role};
use crate::error::AppError;
use crate::links::urlencode;
use crate::state::AppState;
use crate::web::{Chrome, ErrorPage};

/// How a group answers a request it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// HTML: the sign-in page, or an error page.
    Page,
    /// JSON with a status (401 with `WWW-Authenticate`, 403).
    Json,
}

/// The rule of a route group.
#[derive(Clone)]
pub struct Rule {
    pub state: AppState,
    pub role: Role,
    pub reply: Reply,
}

/// Whether the request names this machine's loopback as its host
/// (`localhost`, `127.x.x.x`, `[::1]`, with any port), or names none.
fn is_loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An open console answers only loopback host names: a web page that
/// rebinds its own name to 127.0.0.1 (DNS rebinding) cannot read it.
pub async fn loopback_only(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.auth.is_open() && !is_loopback_host(request.headers()) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "This console has no users configured, so it answers only to localhost or 127.0.0.1. Open it by that name, or add [[users]] to reach it by another.",
        )
            .into_response();
    }
    next.run(request).await
}

/// The public group: anyone, with the identity the pages show (open
/// console, or not signed in).
pub async fn public(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let identity = if state.auth.is_open() {
        Identity::Open
    } else {
        Identity::Anonymous
    };
    request.extensions_mut().insert(identity);
    next.run(request).await
}

/// A signed-in group: the caller must be identified and hold `rule.role`.
pub async fn require(State(rule): State<Rule>, mut request: Request, next: Next) -> Response {
    let auth = &rule.state.auth;
    let identity = if auth.is_open() {
        Identity::Open
    } else {
        match auth.identify(request.headers()).await {
            Ok(Some(identity)) => identity,
            Ok(None) if rule.reply == Reply::Page => {
                let target = request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let next_param = urlencode(target);
                return Redirect::to(&format!("/login?next={next_param}")).into_response();
            }
            Ok(None) => return unauthorized("this needs an API key: send `Authorization: Bearer <key>` (an admin creates one with `throughline api-key create`), or sign in on the console"),
            Err(()) => return unauthorized("the API key is not valid: it is not one of this console's keys; check it, or ask an admin for a new one"),
        }
    };
    if identity.role() < rule.role {
        let message = format!(
            "{} needs the {} role, and you have the {} role; ask an admin of this console",
            request.uri().path(),
            rule.role.as_str(),
            identity.role().as_str()
        );
        if rule.reply == Reply::Json {
            return AppError::Forbidden(message).into_response();
        }
        let (mut parts, _) = request.into_parts();
        parts.extensions.insert(identity);
        return match Chrome::from_request_parts(&mut parts, &()).await {
            Ok(chrome) => ErrorPage::new(chrome, AppError::Forbidden(message)).into_response(),
            Err(page) => page.into_response(),
        };
    }
    request.extensions_mut().insert(identity);
    next.run(request).await
}

fn unauthorized(message: &str) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"throughline\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_host_names_pass() {
        let host = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(value).unwrap());
            is_loopback_host(&headers)
        };
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1:3000",
            "127.1.2.3",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:3000",
            "localhost.evil.example",
            "10.0.0.1:80",
            "[::2]:80",
        ] {
            assert!(!host(bad), "{bad}");
        }
        assert!(is_loopback_host(&HeaderMap::new()));
    }
}
