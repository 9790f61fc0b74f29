//! `AppError`: every way a request can fail, each with the sentence the
//! user sees, mapped to a status in one place (JSON here; pages wrap it in
//! `web::ErrorPage`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use store::StoreError;

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
