//! The console's pages: server-rendered HTML (askama templates under
//! `console/templates/`), charts as SVG drawn by [`svg`], static assets
//! embedded in the binary. Each page reads its data through the same
//! functions as the JSON API under `/api/v1/`, so a figure on a page is the
//! figure the API serves. Pages work without JavaScript; `app.js` only adds
//! conveniences (local times, copy buttons, `/` to search).

mod admin;
mod alerts;
mod assets;
mod breaches;
mod chrome;
pub mod escape;
pub mod fmt;
mod key;
mod map_layout;
mod overview;
mod process;
mod search;
mod signin;
mod slos;
pub mod svg;
mod systems;
mod trace;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::{error::AppError, state::AppState};
pub use chrome::Chrome;

/// Renders a page, or a plain 500 if the template itself fails.
fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

/// A page that could not be shown: the reason in words, with the layout
/// around it so the search box and navigation still work.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub status: u16,
    pub heading: String,
    pub message: String,
    pub hint: String,
}

impl ErrorPage {
    pub fn new(chrome: Chrome, error: AppError) -> Self {
        let (status, heading, hint) = match &error {
            AppError::BadRequest(_) => (400, "That request is not valid", ""),
            AppError::NotFound(_) => (404, "Not found", "Try the search box above with an order, work order, customer or trace id."),
            AppError::Forbidden(_) => (403, "Not for your role", ""),
            AppError::Store(_) => (
                503,
                "The data store is not answering",
                "ClickHouse did not answer. The console keeps running and this page works again as soon as ClickHouse is back; reload in a moment. The console's log has the details.",
            ),
        };
        let message = match &error {
            AppError::Store(e) => {
                tracing::error!(error = %e, "page query failed");
                "ClickHouse is unreachable or failed the query.".to_string()
            }
            other => other.to_string(),
        };
        ErrorPage {
            chrome,
            status,
            heading: heading.into(),
            message,
            hint: hint.into(),
        }
    }
}

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = render(&self);
        *response.status_mut() = status;
        response
    }
}

/// What a page handler returns.
pub type PageResult = Result<Response, ErrorPage>;

async fn not_found(chrome: Chrome) -> ErrorPage {
    let path = chrome.path.clone();
    ErrorPage::new(
        chrome,
        AppError::NotFound(format!("There is no page at {path}.")),
    )
}

/// What anyone may open: the sign-in page and the static assets.
pub fn public(state: AppState) -> Router {
    Router::new()
        .route("/login", get(signin::show).post(signin::submit))
        .route("/assets/{*path}", get(assets::serve))
        .with_state(state)
}

/// The pages a viewer reads, sign-out, and the page for any other path.
pub fn pages(state: AppState) -> Router {
    Router::new()
        .route("/", get(overview::page))
        .route("/processes/{id}", get(process::page))
        .route("/processes/{id}/slos", get(slos::page))
        .route("/breaches", get(breaches::page))
        .route("/search", get(search::page))
        .route("/keys/{key_type}/{value}", get(key::page))
        .route("/traces/{trace_id}", get(trace::page))
        .route("/systems", get(systems::page))
        .route("/alerts", get(alerts::list))
        .route("/alerts/{id}", get(alerts::one))
        .route("/logout", post(signin::logout))
        .fallback(not_found)
        .with_state(state)
}

/// The admin's pages.
pub fn admin(state: AppState) -> Router {
    Router::new()
        .route("/admin", get(admin::page))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use askama::Template;

    #[derive(Template)]
    #[template(source = "<p title=\"{{ text }}\">{{ text }}</p>", ext = "html")]
    struct Text<'a> {
        text: &'a str,
    }

    #[test]
    fn pages_show_control_and_bidi_characters_as_visible_escapes() {
        let html = Text {
            text: "evil-a\u{0} <b>\u{202e}gpj.exe\u{1b}[0m\u{7f}\u{85}\u{2066}",
        }
        .render()
        .unwrap();
        for c in [
            '\u{0}', '\u{202e}', '\u{1b}', '\u{7f}', '\u{85}', '\u{2066}',
        ] {
            assert!(!html.contains(c), "{c:?} reached the page: {html:?}");
        }
        assert!(
            html.contains(r"evil-a\u{0} &#60;b&#62;\u{202e}gpj.exe\u{1b}[0m\u{7f}\u{85}\u{2066}"),
            "{html}"
        );
        // Line breaks and tabs stay (log bodies, stack traces).
        let html = Text { text: "a\n\tb" }.render().unwrap();
        assert!(html.contains("a\n\tb"), "{html:?}");
    }
}
