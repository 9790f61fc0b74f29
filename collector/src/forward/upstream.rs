//! The central collector as the forwarder sees it: one `POST` of an
//! encoded body (gzip, bearer token) and what its answer means.
//!
//! Failures are classified here, once: a 2xx is acknowledged; 408, 429, 5xx,
//! no connection or no answer in time is retried; 401 and 404 are retried
//! too (a token or an address to fix on this collector: dropping the data
//! would not fix them); 413 means "split it"; any other 4xx is central
//! refusing the data, which retrying cannot change.

use std::io::Write;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;

/// What one request came to.
#[derive(Debug)]
pub enum Answer {
    /// Central acknowledged the body; its answer's bytes.
    Accepted(bytes::Bytes),
    /// Central refused the data (a 4xx other than 401, 403, 404, 408, 413
    /// and 429); its status and message.
    Refused(String),
    /// Central refused every record of the request for its token (403):
    /// a token bound to another plant or to other systems, a setup mistake
    /// like 401 when the records are this edge's plant's (the forwarder
    /// retries them), else the records' own (refused as data).
    Forbidden(String),
    /// Central's request size limit: send it in halves.
    TooLarge,
    /// Central could not be reached or asked to try later.
    Retry(String),
}

/// The central collector's address and credentials.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Upstream {
    /// `base` is central's OTLP/HTTP address (`https://central:4318`).
    /// `ca_pem`: certificates to trust besides the public roots.
    pub fn new(
        base: &str,
        token: Option<String>,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)));
        if let Some(pem) = ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("forward_ca holds no usable PEM certificate: {e}"))?;
            if certificates.is_empty() {
                return Err(
                    "forward_ca holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
                );
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot make an HTTP client for {base}: {e}"))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// Where `path` is sent, for messages (no user info).
    pub fn url(&self, path: &str) -> String {
        domain::redact::url(&format!("{}{path}", self.base))
    }

    /// Sends `body` (gzip-compressed here) to `path`.
    pub async fn post(&self, path: &str, content_type: &'static str, body: &[u8]) -> Answer {
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4 + 64),
            flate2::Compression::fast(),
        );
        let compressed = match gz.write_all(body).and_then(|()| gz.finish()) {
            Ok(bytes) => bytes,
            Err(e) => return Answer::Retry(format!("compressing a request failed: {e}")),
        };
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_ENCODING, "gzip")
            .body(compressed);
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                return Answer::Retry(format!(
                    "{} did not answer: {}",
                    self.url(path),
                    domain::redact::urls_in(&e.to_string())
                ))
            }
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => {
                return Answer::Retry(format!(
                    "{} answered {status} but its body was lost: {e}",
                    self.url(path)
                ))
            }
        };
        classify(status, bytes, &self.url(path))
    }
}

/// The message of an error body: its text, or the `message` of the
/// `google.rpc.Status` an OTLP/HTTP protobuf error carries; 512 bytes at most.
fn message(body: &[u8]) -> String {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    let text = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(512)]).into_owned();
    let binary = match std::str::from_utf8(body) {
        Ok(s) => s.chars().any(|c| c.is_control() && !c.is_whitespace()),
        Err(_) => true,
    };
    if binary {
        if let Ok(status) = <RpcStatus as prost::Message>::decode(body) {
            return text(status.message.as_bytes());
        }
    }
    text(body)
}

fn classify(status: StatusCode, body: bytes::Bytes, url: &str) -> Answer {
    if status.is_success() {
        return Answer::Accepted(body);
    }
    let said = format!("{url} answered {status}: {}", message(&body));
    match status.as_u16() {
        413 => Answer::TooLarge,
        401 => Answer::Retry(format!(
            "{said}; check forward_token (a token of the central collector's [[tokens]])"
        )),
        403 => Answer::Forbidden(said),
        404 => Answer::Retry(format!(
            "{said}; check forward_to (the central collector's OTLP/HTTP address)"
        )),
        408 | 429 => Answer::Retry(said),
        400..=499 => Answer::Refused(said),
        _ => Answer::Retry(said),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_once() {
        let kind = |code: u16| match classify(
            StatusCode::from_u16(code).unwrap(),
            bytes::Bytes::new(),
            "u",
        ) {
            Answer::Accepted(_) => "ok",
            Answer::Refused(_) => "refused",
            Answer::TooLarge => "split",
            Answer::Retry(_) => "retry",
            Answer::Forbidden(_) => "forbidden",
        };
        let got: Vec<_> = [200, 400, 401, 403, 404, 408, 413, 415, 429, 500, 503]
            .into_iter()
            .map(kind)
            .collect();
        assert_eq!(
            got,
            [
                "ok",
                "refused",
                "retry",
                "forbidden",
                "retry",
                "retry",
                "split",
                "refused",
                "retry",
                "retry",
                "retry"
            ]
        );
    }

    #[test]
    fn an_otlp_protobuf_error_is_read_for_its_message() {
        // google.rpc.Status { code: 7, message: "nothing was stored" }
        let mut body = vec![0x08, 0x07, 0x12, 18];
        body.extend_from_slice(b"nothing was stored");
        let Answer::Forbidden(said) =
            classify(StatusCode::FORBIDDEN, bytes::Bytes::from(body), "u")
        else {
            panic!("a 403 is forbidden")
        };
        assert_eq!(said, "u answered 403 Forbidden: nothing was stored");
        let Answer::Refused(said) = classify(
            StatusCode::BAD_REQUEST,
            bytes::Bytes::from_static(b"{\"message\":\"bad\"}"),
            "u",
        ) else {
            panic!("a 400 is refused")
        };
        assert_eq!(said, "u answered 400 Bad Request: {\"message\":\"bad\"}");
    }
}
