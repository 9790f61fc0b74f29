//! CloudEvents 1.0 over HTTP (`POST /v1/events`), in the three modes of the
//! HTTP binding:
//!
//! - structured: `application/cloudevents+json`, one event as a JSON object;
//! - batched: `application/cloudevents-batch+json`, a JSON array of events;
//! - binary: attributes in `ce-*` headers, the body is `data`, its
//!   `Content-Type` is `datacontenttype`.
//!
//! Each event is checked on its own: in a batch an invalid event is rejected
//! with its index and the rest are stored. The answer is always
//! `{"accepted": N, "rejected": [{"index": i, "error": "..."}]}`; a single
//! invalid event, or a body that is not JSON, is a 400 naming what is wrong.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{
    admit, authorization, count_refused, ingest, now_ns, read_body, ReceiveError, ReceiverState,
    Signal,
};
use crate::metrics;
use crate::pipeline::SubmitError;
use domain::events::EventRules;
use domain::keys::{check_key_value, BadKeyValue};
use domain::limits::{Limits, Truncated};
use domain::model::{Attributes, Batch, Event, EventOrigin, Outcome, SpanId, TraceId};
use domain::text::{check_printable, percent_decode};

pub mod encode;

const STRUCTURED: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";

/// Attributes that become fields of the event; every other one (extensions,
/// `dataschema`, `tracestate`) is kept among its attributes.
const MAPPED: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "datacontenttype",
    "system",
    "outcome",
    "attempt",
    "traceparent",
    "correlationid",
    "causationid",
];

/// An event's attributes as sent, before checking.
struct RawEvent {
    attributes: Map<String, Value>,
    /// `data` as JSON when it is JSON.
    data_json: Option<Value>,
    /// `data` as stored text.
    data_text: String,
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn required(raw: &RawEvent, name: &str) -> Result<String, String> {
    match raw.attributes.get(name) {
        None | Some(Value::Null) => Err(format!(
            "`{name}` is missing; every CloudEvent needs id, source, type and specversion"
        )),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(other) => Err(format!("`{name}` must be a non-empty string, got {other}")),
    }
}

fn optional(raw: &RawEvent, name: &str) -> Result<Option<String>, String> {
    match raw.attributes.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => text_of(value)
            .map(Some)
            .ok_or_else(|| format!("`{name}` must be a string, got {value}")),
    }
}

/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
fn traceparent(text: &str) -> Result<(TraceId, SpanId), String> {
    let bad = || {
        format!("`traceparent` {text:?} is not a W3C traceparent; send 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>")
    };
    let parts: Vec<&str> = text.trim().split('-').collect();
    if parts.len() < 4 || parts[0].len() != 2 || parts[3].len() != 2 || parts[0] == "ff" {
        return Err(bad());
    }
    let trace_id = TraceId::from_hex(parts[1]).map_err(|_| bad())?;
    let span_id = SpanId::from_hex(parts[2]).map_err(|_| bad())?;
    Ok((trace_id, span_id))
}

/// Checks one event and maps it to the canonical model, its extensions cut
/// to the limits (see [`domain::limits`]).
fn finish(
    raw: RawEvent,
    rules: &EventRules,
    limits: &Limits,
    received_ns: u64,
) -> Result<Event, String> {
    match raw.attributes.get("specversion") {
        Some(Value::String(v)) if v == "1.0" => {}
        None => return Err("`specversion` is missing; send \"1.0\"".into()),
        Some(other) => {
            return Err(format!(
                "`specversion` {other} is not supported; send \"1.0\""
            ))
        }
    }
    let id = required(&raw, "id")?;
    let source = required(&raw, "source")?;
    let event_type = required(&raw, "type")?;
    let (time_ns, time_missing) = match optional(&raw, "time")? {
        None => (received_ns, true),
        Some(text) => {
            let t = OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| {
                format!("`time` {text:?} is not an RFC 3339 timestamp like 2026-11-26T13:41:28.5Z")
            })?;
            let ns = t.unix_timestamp_nanos();
            if ns < 0 {
                return Err(format!("`time` {text:?} is before 1970"));
            }
            (ns as u64, false)
        }
    };
    let outcome = match optional(&raw, "outcome")? {
        None => Outcome::Ok,
        Some(text) => Outcome::parse(&text).ok_or_else(|| {
            format!("`outcome` {text:?} is not one of ok, failed, retried, dead_lettered")
        })?,
    };
    let attempt = match raw.attributes.get("attempt") {
        None | Some(Value::Null) => 0,
        Some(value) => text_of(value)
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| format!("`attempt` must be a whole number, got {value}"))?,
    };
    let (trace_id, span_id) = match optional(&raw, "traceparent")? {
        None => (None, None),
        Some(text) => {
            let (t, s) = traceparent(&text)?;
            (Some(t), Some(s))
        }
    };
    let system = optional(&raw, "system")?
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| rules.system_for(&source));
    // The event's identity and its system: printable text, the rule the
    // console looks them up by.
    for (name, value) in [("id", &id), ("source", &source), ("system", &system)] {
        check_printable(value).map_err(|e| format!("`{name}` {e}"))?;
    }

    let mut truncated = Truncated::default();
    let mut attributes = Attributes::new();
    let mut key_attributes = Attributes::new();
    for (name, value) in &raw.attributes {
        if MAPPED.contains(&name.as_str()) {
            continue;
        }
        let text =
            text_of(value).unwrap_or_else(|| limits.cut_json(value, 1, &mut truncated).to_string());
        if let Some(canonical) = rules.key_extension(name) {
            if let Err(BadKeyValue::Unprintable(e)) = check_key_value(&text) {
                return Err(format!("`{name}` {e}"));
            }
            key_attributes.push((canonical.to_string(), text.clone()));
        }
        attributes.push((name.clone(), text));
    }
    // Names and values cut to `max_value_bytes`, as on spans.
    limits.cut_attributes(
        &mut attributes,
        |name| rules.key_extension(name).is_some(),
        &mut truncated,
    );
    let keys = rules.keys(
        &system,
        &event_type,
        &key_attributes,
        raw.data_json.as_ref(),
        limits,
        &mut truncated,
    )?;
    // Short texts to max_value_bytes, `data` (already searched for keys
    // whole) to max_body_bytes.
    let mut text = |name: &str| -> Result<String, String> {
        Ok(limits.cut_text(&optional(&raw, name)?.unwrap_or_default(), &mut truncated))
    };
    let subject = text("subject")?;
    let correlation_id = text("correlationid")?;
    let causation_id = text("causationid")?;
    let data_content_type = text("datacontenttype")?;
    let id = limits.cut_text(&id, &mut truncated);
    let source = limits.cut_text(&source, &mut truncated);
    let event_type = limits.cut_text(&event_type, &mut truncated);
    let system = limits.cut_text(&system, &mut truncated);
    let mut data = raw.data_text;
    limits.cut_body(&mut data, &mut truncated);
    truncated.mark(&mut attributes);
    Ok(Event {
        source,
        id,
        system,
        event_type,
        subject,
        time_ns,
        time_missing,
        received_ns,
        outcome,
        attempt,
        trace_id,
        span_id,
        correlation_id,
        causation_id,
        data,
        data_content_type,
        attributes,
        keys,
        origin: EventOrigin::CloudEvent,
    })
}

/// One event of the JSON format (structured or an element of a batch).
fn from_json(value: Value) -> Result<RawEvent, String> {
    let Value::Object(mut attributes) = value else {
        return Err(format!(
            "an event must be a JSON object, got {}",
            kind(&value)
        ));
    };
    let data = attributes.remove("data");
    let data_base64 = attributes.remove("data_base64");
    let (data_json, data_text) = match (data, data_base64) {
        (Some(_), Some(_)) => {
            return Err("an event has either `data` or `data_base64`, not both".into())
        }
        (Some(Value::String(s)), None) => (None, s),
        (Some(Value::Null), None) | (None, None) => (None, String::new()),
        (Some(json), None) => {
            let text = json.to_string();
            (Some(json), text)
        }
        (None, Some(Value::String(b64))) => (None, b64),
        (None, Some(other)) => {
            return Err(format!(
                "`data_base64` must be a string, got {}",
                kind(&other)
            ))
        }
    };
    Ok(RawEvent {
        attributes,
        data_json,
        data_text,
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn is_json_media(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    media == "application/json" || media.ends_with("+json") || media == "text/json"
}

/// One event in binary mode.
fn from_binary(headers: &HeaderMap, body: &[u8]) -> Result<RawEvent, String> {
    let mut attributes = Map::new();
    for (name, value) in headers {
        if let Some(attr) = name.as_str().strip_prefix("ce-") {
            let text = value
                .to_str()
                .map_err(|_| format!("header `{name}` is not ASCII; percent-encode it"))?;
            attributes.insert(attr.to_string(), Value::String(percent_decode(text, false)));
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !content_type.is_empty() {
        attributes.insert(
            "datacontenttype".into(),
            Value::String(content_type.clone()),
        );
    }
    let data_json = is_json_media(&content_type)
        .then(|| serde_json::from_slice::<Value>(body).ok())
        .flatten();
    let data_text = match &data_json {
        Some(json) => json.to_string(),
        None => match std::str::from_utf8(body) {
            Ok(text) => text.to_string(),
            Err(_) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(body)
            }
        },
    };
    Ok(RawEvent {
        attributes,
        data_json,
        data_text,
    })
}

/// How a request carries its events.
enum Mode {
    Structured,
    Batch,
    Binary,
}

fn mode_of(headers: &HeaderMap) -> Result<Mode, ReceiveError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == STRUCTURED {
        Ok(Mode::Structured)
    } else if media == BATCH {
        Ok(Mode::Batch)
    } else if headers.contains_key("ce-specversion") {
        Ok(Mode::Binary)
    } else {
        Err(ReceiveError::UnsupportedMediaType(format!(
            "Content-Type {:?} without ce-* headers is not a CloudEvent; send {STRUCTURED}, {BATCH}, \
             or the event's data with ce-specversion, ce-id, ce-source and ce-type headers (binary mode)",
            content_type
        )))
    }
}

/// The answer to a request that was read.
#[derive(Debug, Default, serde::Serialize)]
struct Outcomes {
    accepted: usize,
    rejected: Vec<Rejected>,
}

#[derive(Debug, serde::Serialize)]
struct Rejected {
    index: usize,
    error: String,
}

fn error_response(state: &ReceiverState, error: ReceiveError) -> Response {
    count_refused(&state.metrics, &error);
    let status = match &error {
        ReceiveError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ReceiveError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        ReceiveError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ReceiveError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        ReceiveError::Forbidden(_) => StatusCode::FORBIDDEN,
        ReceiveError::Unavailable(SubmitError::Full { .. }) => StatusCode::TOO_MANY_REQUESTS,
        ReceiveError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ReceiveError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
    };
    let mut response = (
        status,
        Json(serde_json::json!({ "error": error.to_string() })),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(super::otlp::http::WWW_AUTHENTICATE),
        );
    }
    response
}

/// Parses a request's body into its events, each checked on its own: the
/// whole of what the receiver does short of storing them. Public for the
/// fuzz targets.
#[doc(hidden)]
pub fn parse(
    headers: &HeaderMap,
    bytes: &[u8],
    rules: &EventRules,
    limits: &Limits,
    received_ns: u64,
) -> Result<Vec<Result<Event, String>>, ReceiveError> {
    let mode = mode_of(headers)?;
    let not_json = |e: serde_json::Error| {
        ReceiveError::BadRequest(format!("request body is not valid JSON: {e}"))
    };
    let raws: Vec<Result<RawEvent, String>> = match mode {
        Mode::Structured => {
            let value: Value = serde_json::from_slice(bytes).map_err(not_json)?;
            vec![from_json(value)]
        }
        Mode::Batch => {
            let value: Value = serde_json::from_slice(bytes).map_err(not_json)?;
            let Value::Array(items) = value else {
                return Err(ReceiveError::BadRequest(format!(
                    "a {BATCH} body is a JSON array of events, got {}",
                    kind(&value)
                )));
            };
            items.into_iter().map(from_json).collect()
        }
        Mode::Binary => vec![from_binary(headers, bytes)],
    };
    Ok(raws
        .into_iter()
        .map(|raw| raw.and_then(|raw| finish(raw, rules, limits, received_ns)))
        .collect())
}

/// The plant an event names (the `plant` extension), if any.
fn plant_of(event: &Event) -> Option<&str> {
    event
        .attributes
        .iter()
        .find(|(k, _)| k == crate::auth::PLANT_EXTENSION)
        .map(|(_, v)| v.as_str())
}

async fn handle(
    state: &ReceiverState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Outcomes, ReceiveError> {
    let (access, _slot) = admit(state, authorization(headers)).await?;
    let mode = mode_of(headers)?;
    let bytes = read_body(headers, body, state.max_request_bytes).await?;
    let events = parse(headers, &bytes, &state.events, &state.limits, now_ns())?;
    let single = !matches!(mode, Mode::Batch);
    let mut batch = Batch::default();
    let mut outcomes = Outcomes::default();
    let mut forbidden = Vec::new();
    let total = events.len();
    for (index, event) in events.into_iter().enumerate() {
        match event {
            Ok(event) => match access.check(&event.system, plant_of(&event)) {
                Err(error) => forbidden.push(Rejected { index, error }),
                Ok(()) => match state.events.owner_of(&event.source) {
                    Some(owner) if !access.allows(owner) => forbidden.push(Rejected {
                        index,
                        error: format!(
                            "the source {:?} belongs to system `{owner}` ([events.systems]): {}",
                            event.source,
                            access.refusal(owner)
                        ),
                    }),
                    _ => batch.events.push(event),
                },
            },
            Err(error) => outcomes.rejected.push(Rejected { index, error }),
        }
    }
    metrics::add(&state.metrics.events_invalid, outcomes.rejected.len());
    metrics::add(&state.metrics.events.forbidden, forbidden.len());
    if !forbidden.is_empty() && forbidden.len() == total {
        return Err(ReceiveError::Forbidden(format!(
            "nothing was stored: {}",
            forbidden[0].error
        )));
    }
    outcomes.rejected.extend(forbidden);
    outcomes.rejected.sort_by_key(|r| r.index);
    if single {
        if let Some(rejected) = outcomes.rejected.pop() {
            metrics::add(&state.metrics.events.received, 1);
            metrics::add(&state.metrics.events.rejected, 1);
            return Err(ReceiveError::BadRequest(format!(
                "invalid CloudEvent: {}",
                rejected.error
            )));
        }
    }
    outcomes.accepted = batch.events.len();
    ingest(state, Signal::Events, batch, outcomes.rejected.len()).await?;
    Ok(outcomes)
}

async fn post_events(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(&state, &headers, body).await {
        Ok(outcomes) => (StatusCode::OK, Json(outcomes)).into_response(),
        Err(error) => error_response(&state, error),
    }
}

/// `POST /v1/events`.
pub fn router(state: ReceiverState) -> Router {
    Router::new()
        .route("/v1/events", post(post_events))
        .with_state(state)
}

#[cfg(test)]
mod tests;
