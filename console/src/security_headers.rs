//! Headers on every console answer that tell browsers to keep the console
//! to itself: no framing by other sites (clickjacking), no guessing of
//! content types, no full URLs (which hold order ids) sent to other sites,
//! and a content security policy that runs only the console's own script.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// Only our own script and styles (inline `style` attributes colour the
/// charts), images also as `data:` URLs, forms posted only to us, and no
/// page of another site may frame ours.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The middleware in front of every console route.
pub async fn add(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
    ] {
        headers.entry(name).or_insert(value);
    }
    response
}
