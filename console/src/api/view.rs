//! JSON shapes of canonical records. Ids are lowercase hex; each time is given
//! as RFC 3339 with nanoseconds and as unix nanoseconds in a string (a JSON
//! number loses precision past 2^53, which nanoseconds since 1970 exceed).

use collector::correlator::evaluate::{sla_state, SlaState, StageHit};
use collector::model::{Attributes, BusinessKey, Event, Span};
use collector::process::{duration, ProcessDef};
use collector::storage::rows::{BreachRow, InstanceRow};
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

/// A process instance, with each stage's time and each SLA's state at `now_ns`.
pub fn instance(def: &ProcessDef, row: &InstanceRow, now_ns: u64) -> Value {
    let hits: Vec<Option<StageHit>> = def
        .stages
        .iter()
        .map(|stage| {
            row.stage_ids
                .iter()
                .position(|id| id == &stage.id)
                .map(|i| StageHit {
                    time_ns: row.stage_times[i],
                    failed: false,
                })
        })
        .collect();
    let stages: Vec<Value> = def
        .stages
        .iter()
        .zip(&hits)
        .map(|(stage, hit)| {
            serde_json::json!({
                "id": stage.id,
                "name": stage.name,
                "system": stage.system,
                "reached": hit.is_some(),
                "time": hit.map(|h| rfc3339(h.time_ns)),
            })
        })
        .collect();
    let slas: Vec<Value> = def
        .slas
        .iter()
        .map(|sla| {
            let state = sla_state(hits[sla.from], hits[sla.to], sla.within_ns, now_ns);
            let mut v = serde_json::json!({
                "id": sla.id,
                "name": sla.name,
                "from": def.stages[sla.from].id,
                "to": def.stages[sla.to].id,
                "within": duration::format_ns(sla.within_ns),
            });
            let fields = match state {
                SlaState::NotStarted => serde_json::json!({ "state": "not_started" }),
                SlaState::Running { due_ns } => serde_json::json!({
                    "state": "running",
                    "due": rfc3339(due_ns),
                    "time_left": duration::format_ns(due_ns.saturating_sub(now_ns)),
                }),
                SlaState::Met => serde_json::json!({ "state": "met" }),
                SlaState::Open { due_ns, .. } => serde_json::json!({
                    "state": "open_breach",
                    "due": rfc3339(due_ns),
                    "late": duration::format_ns(now_ns.saturating_sub(due_ns)),
                    "late_ns": now_ns.saturating_sub(due_ns).to_string(),
                }),
                SlaState::Closed { due_ns, to_ns, .. } => serde_json::json!({
                    "state": "breached",
                    "due": rfc3339(due_ns),
                    "late": duration::format_ns(to_ns - due_ns),
                    "late_ns": (to_ns - due_ns).to_string(),
                }),
            };
            if let (Value::Object(v), Value::Object(f)) = (&mut v, fields) {
                v.extend(f);
            }
            v
        })
        .collect();
    serde_json::json!({
        "process": def.id,
        "key": { "type": def.key_type, "value": row.root_value },
        "status": row.status,
        "current_stage": row.current_stage,
        "start_time": rfc3339(row.start_ns),
        "last_time": rfc3339(row.last_ns),
        "failed": row.failed != 0,
        "open_breaches": row.open_breaches,
        "stages": stages,
        "slas": slas,
    })
}

/// A breach; an open one's lateness is counted to `now_ns`.
pub fn breach(def: Option<&ProcessDef>, row: &BreachRow, now_ns: u64) -> Value {
    let open = row.state == "open";
    let late_ns = if open {
        now_ns.saturating_sub(row.due_ns)
    } else {
        row.late_ns
    };
    serde_json::json!({
        "process": row.process_id,
        "sla": row.sla_id,
        "key": {
            "type": def.map(|d| d.key_type.as_str()).unwrap_or(""),
            "value": row.root_value,
        },
        "state": row.state,
        "from_time": rfc3339(row.from_ns),
        "due_time": rfc3339(row.due_ns),
        "to_time": (!open).then(|| rfc3339(row.to_ns)),
        "late": duration::format_ns(late_ns),
        "late_ns": late_ns.to_string(),
        "instance": format!(
            "/api/v1/processes/{}/instances?key={}",
            row.process_id,
            urlencode(&row.root_value)
        ),
    })
}

/// Percent-encodes a query parameter value.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
