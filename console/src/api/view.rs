//! JSON shapes of canonical records. Ids are lowercase hex; each time is given
//! as RFC 3339 with nanoseconds and as unix nanoseconds in a string (a JSON
//! number loses precision past 2^53, which nanoseconds since 1970 exceed).

use collector::model::{Attributes, BusinessKey, Event, Span};
use serde::Serialize;
use serde_json::{Map, Value};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

const RFC3339_NANOS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

/// `2026-11-26T13:41:28.123456789Z`.
pub fn rfc3339(ns: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| t.format(RFC3339_NANOS).ok())
        .unwrap_or_default()
}

/// Attributes as an object; a repeated key keeps its last value.
fn attributes(attrs: &Attributes) -> Value {
    Value::Object(
        attrs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

#[derive(Debug, Serialize)]
pub struct KeyView {
    #[serde(rename = "type")]
    pub key_type: String,
    pub value: String,
}

impl From<&BusinessKey> for KeyView {
    fn from(k: &BusinessKey) -> Self {
        KeyView {
            key_type: k.key_type.clone(),
            value: k.value.clone(),
        }
    }
}

/// A span as the API returns it.
pub fn span(s: &Span) -> Value {
    let end_ns = s.start_ns.saturating_add(s.duration_ns);
    serde_json::json!({
        "trace_id": s.trace_id.to_hex(),
        "span_id": s.span_id.to_hex(),
        "parent_span_id": s.parent_span_id.map(|p| p.to_hex()),
        "trace_state": s.trace_state,
        "service": s.service,
        "name": s.name,
        "kind": s.kind.as_str(),
        "start_time": rfc3339(s.start_ns),
        "start_time_unix_nano": s.start_ns.to_string(),
        "end_time": rfc3339(end_ns),
        "end_time_unix_nano": end_ns.to_string(),
        "duration_ns": s.duration_ns.to_string(),
        "status": { "code": s.status_code.as_str(), "message": s.status_message },
        "attributes": attributes(&s.attributes),
        "resource": attributes(&s.resource),
        "scope": { "name": s.scope_name, "version": s.scope_version },
        "events": s.events.iter().map(|e| serde_json::json!({
            "name": e.name,
            "time": rfc3339(e.time_ns),
            "time_unix_nano": e.time_ns.to_string(),
            "attributes": attributes(&e.attributes),
        })).collect::<Vec<_>>(),
        "links": s.links.iter().map(|l| serde_json::json!({
            "trace_id": l.trace_id.to_hex(),
            "span_id": l.span_id.to_hex(),
            "trace_state": l.trace_state,
            "attributes": attributes(&l.attributes),
        })).collect::<Vec<_>>(),
        "keys": s.keys.iter().map(KeyView::from).collect::<Vec<_>>(),
    })
}

/// An event as the API returns it. `data` is JSON when it was JSON.
pub fn event(e: &Event) -> Value {
    let data = if e.data.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&e.data).unwrap_or_else(|_| Value::String(e.data.clone()))
    };
    serde_json::json!({
        "source": e.source,
        "id": e.id,
        "system": e.system,
        "type": e.event_type,
        "subject": e.subject,
        "time": rfc3339(e.time_ns),
        "time_unix_nano": e.time_ns.to_string(),
        "time_missing": e.time_missing,
        "received_time": rfc3339(e.received_ns),
        "outcome": e.outcome.as_str(),
        "attempt": e.attempt,
        "trace_id": e.trace_id.map(|t| t.to_hex()),
        "span_id": e.span_id.map(|s| s.to_hex()),
        "correlation_id": e.correlation_id,
        "causation_id": e.causation_id,
        "data_content_type": e.data_content_type,
        "data": data,
        "attributes": attributes(&e.attributes),
        "keys": e.keys.iter().map(KeyView::from).collect::<Vec<_>>(),
        "origin": e.origin.as_str(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_keep_all_nine_digits() {
        assert_eq!(
            super::rfc3339(1_764_161_400_000_000_007),
            "2025-11-26T12:50:00.000000007Z"
        );
    }
}
