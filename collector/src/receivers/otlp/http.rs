//! OTLP/HTTP: `POST /v1/traces` and `/v1/logs`, protobuf or JSON, plain or
//! gzip. Responses use the request's encoding, as the spec asks; errors carry
//! a `google.rpc.Status` with a message that says what to fix.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use super::convert::{self, Converted};
use super::{count_refused, ingest, json, now_ns, OtlpState, ReceiveError, Signal};
use crate::metrics::Metrics;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// Seconds a sender should wait before retrying after a 503.
const RETRY_AFTER_SECS: &str = "5";

/// The two encodings OTLP/HTTP defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error (details left empty).
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn encoding_of(headers: &HeaderMap) -> Result<Encoding, ReceiveError> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        PROTOBUF => Ok(Encoding::Protobuf),
        JSON => Ok(Encoding::Json),
        "" => Err(ReceiveError::UnsupportedMediaType(format!(
            "no Content-Type; send {PROTOBUF} or {JSON}"
        ))),
        other => Err(ReceiveError::UnsupportedMediaType(format!(
            "Content-Type {other} is not supported; send {PROTOBUF} or {JSON}"
        ))),
    }
}

/// The request body, decompressed, within the size limit.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ReceiveError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ReceiveError::TooLarge { limit });
    }
    let raw = axum::body::to_bytes(body, limit).await.map_err(|e| {
        // The only error `to_bytes` has besides a broken connection.
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
        {
            ReceiveError::TooLarge { limit }
        } else {
            ReceiveError::BadRequest(format!("could not read the request body: {e}"))
        }
    })?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(raw),
        "gzip" => {
            let mut out = Vec::with_capacity(raw.len() * 4);
            // Read one byte past the limit to tell "exactly at" from "over".
            flate2::read::GzDecoder::new(&raw[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ReceiveError::BadRequest(format!(
                        "Content-Encoding is gzip but the body is not valid gzip: {e}"
                    ))
                })?;
            if out.len() > limit {
                return Err(ReceiveError::TooLarge { limit });
            }
            Ok(Bytes::from(out))
        }
        other => Err(ReceiveError::UnsupportedMediaType(format!(
            "Content-Encoding {other} is not supported; send gzip or no encoding"
        ))),
    }
}

fn error_response(metrics: &Metrics, encoding: Encoding, error: ReceiveError) -> Response {
    count_refused(metrics, &error);
    let (status, grpc_code) = match &error {
        ReceiveError::BadRequest(_) => (StatusCode::BAD_REQUEST, 3),
        ReceiveError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, 8),
        ReceiveError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 3),
        ReceiveError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, 14),
    };
    let message = error.to_string();
    let body = match encoding {
        Encoding::Protobuf => RpcStatus {
            code: grpc_code,
            message,
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": grpc_code, "message": message })
            .to_string()
            .into_bytes(),
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    response
}

/// A success body: the export response with its partial success, if any.
fn success(encoding: Encoding, signal: Signal, done: &Converted) -> Response {
    let partial = !done.rejected.is_empty() || !done.warnings.is_empty();
    let rejected = done.rejected.len() as i64;
    let body = match (encoding, signal) {
        (Encoding::Protobuf, Signal::Spans) => ExportTraceServiceResponse {
            partial_success: partial.then(|| ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: done.message(),
            }),
        }
        .encode_to_vec(),
        (Encoding::Protobuf, Signal::Logs) => ExportLogsServiceResponse {
            partial_success: partial.then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: done.message(),
            }),
        }
        .encode_to_vec(),
        (Encoding::Json, _) => {
            let field = match signal {
                Signal::Spans => "rejectedSpans",
                Signal::Logs => "rejectedLogRecords",
            };
            let value = if partial {
                serde_json::json!({ "partialSuccess": {
                    field: rejected.to_string(),
                    "errorMessage": done.message(),
                }})
            } else {
                serde_json::json!({})
            };
            value.to_string().into_bytes()
        }
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

/// Decodes a body of either encoding into the request message, converts it,
/// and stores what is valid.
async fn handle(
    state: &OtlpState,
    signal: Signal,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Encoding, Converted), (Encoding, ReceiveError)> {
    // Until we know what the sender speaks, errors go out as JSON.
    let encoding = encoding_of(headers).map_err(|e| (Encoding::Json, e))?;
    let fail = |e| (encoding, e);
    let bytes = read_body(headers, body, state.max_request_bytes)
        .await
        .map_err(fail)?;
    let bad = |what: &str, e: String| {
        (
            encoding,
            ReceiveError::BadRequest(format!("request body is not a valid {what}: {e}")),
        )
    };
    let converted = match (signal, encoding) {
        (Signal::Spans, Encoding::Protobuf) => {
            let request = ExportTraceServiceRequest::decode(bytes)
                .map_err(|e| bad("protobuf ExportTraceServiceRequest", e.to_string()))?;
            convert::traces(&request, &state.keys)
        }
        (Signal::Spans, Encoding::Json) => {
            let (request, rejected) =
                json::decode_traces(&bytes).map_err(|e| (encoding, ReceiveError::BadRequest(e)))?;
            let mut converted = convert::traces(&request, &state.keys);
            converted.rejected.splice(0..0, rejected);
            converted
        }
        (Signal::Logs, Encoding::Protobuf) => {
            let request = ExportLogsServiceRequest::decode(bytes)
                .map_err(|e| bad("protobuf ExportLogsServiceRequest", e.to_string()))?;
            convert::logs(&request, &state.keys, now_ns())
        }
        (Signal::Logs, Encoding::Json) => {
            let (request, rejected) =
                json::decode_logs(&bytes).map_err(|e| (encoding, ReceiveError::BadRequest(e)))?;
            let mut converted = convert::logs(&request, &state.keys, now_ns());
            converted.rejected.splice(0..0, rejected);
            converted
        }
    };
    let done = ingest(state, signal, converted).await.map_err(fail)?;
    Ok((encoding, done))
}

async fn export(state: OtlpState, signal: Signal, headers: HeaderMap, body: Body) -> Response {
    match handle(&state, signal, &headers, body).await {
        Ok((encoding, done)) => success(encoding, signal, &done),
        Err((encoding, error)) => error_response(&state.metrics, encoding, error),
    }
}

/// `/v1/traces` and `/v1/logs`.
pub fn router(state: OtlpState) -> Router {
    Router::new()
        .route(
            "/v1/traces",
            post(|State(s): State<OtlpState>, h: HeaderMap, b: Body| {
                export(s, Signal::Spans, h, b)
            }),
        )
        .route(
            "/v1/logs",
            post(|State(s): State<OtlpState>, h: HeaderMap, b: Body| export(s, Signal::Logs, h, b)),
        )
        .with_state(state)
}
