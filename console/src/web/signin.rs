//! Sign-in and sign-out. `GET /login` shows the form with a fresh nonce
//! cookie and its CSRF token; `POST /login` checks the token, the lockout,
//! then the password, and sets the session cookie; `POST /logout` (with
//! the session's CSRF token) ends the session.

use std::time::Instant;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::render;
use crate::auth::session::{Signer, LOGIN_COOKIE, SESSION_COOKIE, SESSION_SECONDS};
use crate::auth::{cookie, valid_user_name, Identity, MAX_PASSWORD_BYTES};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub version: &'static str,
    pub message: String,
    pub name: String,
    pub csrf: String,
    pub next: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// Where to go after signing in: a path of this console, never another
/// site (`//host`, `/\host`, `https://...`).
fn safe_next(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control())
        && !next.starts_with("/login");
    if ok {
        next.to_string()
    } else {
        "/".to_string()
    }
}

/// The form, with a new nonce cookie (valid 10 minutes) and `status`.
fn form(state: &AppState, status: StatusCode, message: &str, name: &str, next: &str) -> Response {
    let auth = &state.auth;
    let nonce = auth.signer.login_nonce();
    let mut response = render(&LoginPage {
        version: env!("CARGO_PKG_VERSION"),
        message: message.to_string(),
        name: name.to_string(),
        csrf: auth.signer.login_csrf(&nonce),
        next: safe_next(next),
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::SET_COOKIE,
        auth.cookie(LOGIN_COOKIE, &nonce, "/login", 600),
    );
    headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    response
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref().unwrap_or("/"));
    let signed_in = state.auth.session(&headers).is_some();
    if state.auth.is_open() || signed_in {
        return Redirect::to(&next).into_response();
    }
    form(&state, StatusCode::OK, "", "", &next)
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let auth = &state.auth;
    if auth.is_open() {
        return Redirect::to("/").into_response();
    }
    let expected = cookie(&headers, LOGIN_COOKIE).map(|nonce| auth.signer.login_csrf(nonce));
    if !expected.is_some_and(|e| Signer::matches(&e, &f.csrf)) {
        return form(
            &state,
            StatusCode::FORBIDDEN,
            "The sign-in form expired or did not come from this console (its CSRF token is missing or wrong). Sign in again below.",
            &f.name,
            &f.next,
        );
    }
    // A name no user can have, or a password longer than any: wrong, with
    // no password check and nothing remembered of it.
    if !valid_user_name(&f.name) || f.password.len() > MAX_PASSWORD_BYTES {
        tracing::warn!(
            name_bytes = f.name.len(),
            "failed sign-in: a user name no user can have, or a password too long"
        );
        return form(
            &state,
            StatusCode::UNAUTHORIZED,
            "Wrong user name or password.",
            "",
            &f.next,
        );
    }
    let Ok(_queued) = auth.queue_sign_in() else {
        let mut response = form(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many sign-ins are being checked right now. Try again in a few seconds.",
            &f.name,
            &f.next,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        return response;
    };
    if let Err(wait) = auth.lockout.begin(&f.name, Instant::now()) {
        let mut response = form(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed sign-ins for this user name. Try again in {} s, or ask an admin to check the account.",
                wait.as_secs().max(1)
            ),
            &f.name,
            &f.next,
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            wait.as_secs().max(1).to_string().parse().expect("digits"),
        );
        return response;
    }
    match auth.check_password(&f.name, &f.password).await {
        Some((name, role)) => {
            auth.lockout.succeeded(&f.name);
            let value = auth.start_session(&name, role);
            tracing::info!(user = %name, role = role.as_str(), "signed in");
            let mut response = Redirect::to(&safe_next(&f.next)).into_response();
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                auth.cookie(SESSION_COOKIE, &value, "/", SESSION_SECONDS),
            );
            headers.append(
                header::SET_COOKIE,
                auth.cookie(LOGIN_COOKIE, "", "/login", 0),
            );
            response
        }
        None => {
            tracing::warn!(user = %f.name, "failed sign-in");
            form(
                &state,
                StatusCode::UNAUTHORIZED,
                "Wrong user name or password.",
                &f.name,
                &f.next,
            )
        }
    }
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Form(f): Form<LogoutForm>,
) -> Response {
    let auth = &state.auth;
    let Identity::User { session, csrf } = identity else {
        return Redirect::to("/").into_response();
    };
    if !Signer::matches(&csrf, &f.csrf) {
        return (
            StatusCode::FORBIDDEN,
            "Sign-out refused: the form's CSRF token is missing or wrong. Use the Sign out button of a console page.",
        )
            .into_response();
    }
    let ended = session.clone();
    let signer_of = state.auth.clone();
    let _ = tokio::task::spawn_blocking(move || signer_of.signer.revoke(&ended)).await;
    tracing::info!(user = %session.user, "signed out");
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, auth.cookie(SESSION_COOKIE, "", "/", 0));
    response
}
