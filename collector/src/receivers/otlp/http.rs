//! OTLP/HTTP: `POST /v1/traces` and `/v1/logs`, protobuf or JSON, plain or
//! gzip. Responses use the request's encoding, as the spec asks; errors carry
//! a `google.rpc.Status` with a message that says what to fix.

use axum::body::Body;
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

use super::convert::Rejection;
use super::convert::{self, Converted};
use super::json;
use super::RpcStatus;
use crate::receivers::{
    admit, authorization, count_refused, enforce, ingest, now_ns, read_body, ReceiveError,
    ReceiverState, Signal,
};

/// The two OTLP/HTTP export paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Export {
    Traces,
    Logs,
}

impl Export {
    fn signal(self) -> Signal {
        match self {
            Export::Traces => Signal::Spans,
            Export::Logs => Signal::Logs,
        }
    }
}
use crate::metrics::Metrics;
use crate::pipeline::SubmitError;

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

fn error_response(metrics: &Metrics, encoding: Encoding, error: ReceiveError) -> Response {
    count_refused(metrics, &error);
    let (status, grpc_code) = match &error {
        ReceiveError::BadRequest(_) => (StatusCode::BAD_REQUEST, 3),
        ReceiveError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, 8),
        ReceiveError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 3),
        ReceiveError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, 16),
        ReceiveError::Forbidden(_) => (StatusCode::FORBIDDEN, 7),
        ReceiveError::Unavailable(SubmitError::Full { .. }) => (StatusCode::TOO_MANY_REQUESTS, 8),
        ReceiveError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, 14),
        ReceiveError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, 4),
    };
    let message = error.to_string();
    let body = match encoding {
        // Details left empty.
        Encoding::Protobuf => RpcStatus {
            code: grpc_code,
            message,
            details: Vec::new(),
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
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(WWW_AUTHENTICATE),
        );
    }
    response
}

/// The challenge of a 401: a bearer token.
pub(crate) const WWW_AUTHENTICATE: &str = "Bearer realm=\"throughline\"";

/// A success body: the export response with its partial success, if any.
fn success(encoding: Encoding, export: Export, done: &Converted) -> Response {
    let partial = !done.rejected.is_empty() || !done.warnings.is_empty();
    let rejected = done.rejected.len() as i64;
    let body = match (encoding, export) {
        (Encoding::Protobuf, Export::Traces) => ExportTraceServiceResponse {
            partial_success: partial.then(|| ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: done.message(),
            }),
        }
        .encode_to_vec(),
        (Encoding::Protobuf, Export::Logs) => ExportLogsServiceResponse {
            partial_success: partial.then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: done.message(),
            }),
        }
        .encode_to_vec(),
        (Encoding::Json, _) => {
            let field = match export {
                Export::Traces => "rejectedSpans",
                Export::Logs => "rejectedLogRecords",
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
    state: &ReceiverState,
    export: Export,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Encoding, Converted), (Encoding, ReceiveError)> {
    // Until we know what the sender speaks, errors go out as JSON.
    let (access, _slot) = admit(state, authorization(headers))
        .await
        .map_err(|e| (encoding_of(headers).unwrap_or(Encoding::Json), e))?;
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
    let converted = match (export, encoding) {
        (Export::Traces, Encoding::Protobuf) => {
            let request = ExportTraceServiceRequest::decode(bytes)
                .map_err(|e| bad("protobuf ExportTraceServiceRequest", e.to_string()))?;
            convert::traces(&request, &state.keys, &state.limits)
        }
        (Export::Traces, Encoding::Json) => {
            let (request, rejected) =
                json::decode_traces(&bytes).map_err(|e| (encoding, ReceiveError::BadRequest(e)))?;
            let mut converted = convert::traces(&request, &state.keys, &state.limits);
            converted.rejected.splice(0..0, rejected);
            converted
        }
        (Export::Logs, Encoding::Protobuf) => {
            let request = ExportLogsServiceRequest::decode(bytes)
                .map_err(|e| bad("protobuf ExportLogsServiceRequest", e.to_string()))?;
            convert::logs(&request, &state.keys, &state.limits, now_ns())
        }
        (Export::Logs, Encoding::Json) => {
            let (request, rejected) =
                json::decode_logs(&bytes).map_err(|e| (encoding, ReceiveError::BadRequest(e)))?;
            let mut converted = convert::logs(&request, &state.keys, &state.limits, now_ns());
            converted.rejected.splice(0..0, rejected);
            converted
        }
    };
    let mut done = converted;
    let mut batch = std::mem::take(&mut done.batch);
    let refused = enforce(state, &access, &mut batch).map_err(fail)?;
    done.rejected.extend(
        refused
            .into_iter()
            .map(|(path, reason)| Rejection { path, reason }),
    );
    ingest(state, export.signal(), batch, done.rejected.len())
        .await
        .map_err(fail)?;
    Ok((encoding, done))
}

async fn export(state: ReceiverState, export: Export, headers: HeaderMap, body: Body) -> Response {
    match handle(&state, export, &headers, body).await {
        Ok((encoding, done)) => success(encoding, export, &done),
        Err((encoding, error)) => error_response(&state.metrics, encoding, error),
    }
}

/// `/v1/traces` and `/v1/logs`.
pub fn router(state: ReceiverState) -> Router {
    Router::new()
        .route(
            "/v1/traces",
            post(|State(s): State<ReceiverState>, h: HeaderMap, b: Body| {
                export(s, Export::Traces, h, b)
            }),
        )
        .route(
            "/v1/logs",
            post(|State(s): State<ReceiverState>, h: HeaderMap, b: Body| {
                export(s, Export::Logs, h, b)
            }),
        )
        .with_state(state)
}
