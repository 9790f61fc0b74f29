//! JSON shapes of canonical records. Ids are lowercase hex; each time is given
//! as RFC 3339 with nanoseconds and as unix nanoseconds in a string (a JSON
//! number loses precision past 2^53, which nanoseconds since 1970 exceed).

use domain::feed::{JourneyRecord, RecordKind};
use domain::instance::{Breach, BreachState, InstanceRecord, SlaState};
use domain::model::{Attributes, BusinessKey, Event, Span};
use domain::process::{duration, ProcessDef};
use domain::time::rfc3339;
use serde::Serialize;
use serde_json::{Map, Value};

/// Attributes as an object; a repeated key keeps its last value.
fn attributes(attrs: &Attributes) -> Value {
    Value::Object(
        attrs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

#[derive(Debug, Clone, Serialize)]
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

/// A record of a journey as the key index holds it: what the journey
/// shows, not its attributes (the trace has those: `trace_id`).
pub fn journey_record(r: &JourneyRecord) -> Value {
    let mut v = serde_json::json!({
        "kind": r.kind.as_str(),
        "time": rfc3339(r.time_ns),
        "time_unix_nano": r.time_ns.to_string(),
        "service": r.service,
        "name": r.name,
        "failed": r.failed,
        "trace_id": (r.trace_id != [0; 16]).then(|| hex(&r.trace_id)),
        "span_id": (r.span_id != [0; 8]).then(|| hex(&r.span_id)),
        "keys": r.keys.iter().map(KeyView::from).collect::<Vec<_>>(),
    });
    let extra = if r.kind == RecordKind::Event {
        serde_json::json!({
            "source": r.event_source,
            "id": r.event_id,
            "outcome": r.outcome,
            "attempt": r.attempt,
        })
    } else {
        serde_json::json!({ "duration_ns": r.duration_ns.to_string() })
    };
    if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
        v.extend(extra);
    }
    v
}

/// Records counted for a key or a journey.
pub fn counts(c: &store::query::RecordCounts) -> Value {
    let time = |ns: u64| (c.records() > 0).then(|| rfc3339(ns));
    serde_json::json!({
        "records": c.records(),
        "spans": c.spans,
        "events": c.events,
        "failures": c.failures,
        "first": time(c.first_ns),
        "last": time(c.last_ns),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct StageView {
    pub id: String,
    pub name: String,
    pub system: String,
    pub reached: bool,
    pub time: Option<String>,
    #[serde(skip)]
    pub time_ns: Option<u64>,
}

/// An SLA of one instance at a moment: `state` is `not_started`, `running`,
/// `met`, `open_breach` or `breached`.
#[derive(Debug, Clone, Serialize)]
pub struct SlaView {
    pub id: String,
    pub name: String,
    pub from: String,
    pub to: String,
    pub within: String,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_left: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_ns: Option<String>,
    /// Time left (running) or lateness (breached), for pages.
    #[serde(skip)]
    pub gap_ns: u64,
}

/// A process instance, with each stage's time and each SLA's state.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    pub process: String,
    pub key: KeyView,
    pub status: String,
    pub current_stage: String,
    pub start_time: String,
    pub last_time: String,
    pub failed: bool,
    pub open_breaches: u32,
    pub stages: Vec<StageView>,
    pub slas: Vec<SlaView>,
}

/// A process instance, with each stage's time and each SLA's state at `now_ns`.
pub fn instance(def: &ProcessDef, row: &InstanceRecord, now_ns: u64) -> InstanceView {
    let hits = row.stages.hits(def);
    let stages = def
        .stages
        .iter()
        .zip(&hits)
        .map(|(stage, hit)| StageView {
            id: stage.id.clone(),
            name: stage.name.clone(),
            system: stage.system.clone(),
            reached: hit.is_some(),
            time: hit.map(|h| rfc3339(h.time_ns)),
            time_ns: hit.map(|h| h.time_ns),
        })
        .collect();
    let slas = def
        .slas
        .iter()
        .map(|sla| {
            let mut v = SlaView {
                id: sla.id.clone(),
                name: sla.name.clone(),
                from: def.stages[sla.from].id.clone(),
                to: def.stages[sla.to].id.clone(),
                within: duration::format_ns(sla.within_ns),
                state: "not_started",
                due: None,
                time_left: None,
                late: None,
                late_ns: None,
                gap_ns: 0,
            };
            match row.stages.sla_state(def, sla, now_ns) {
                SlaState::NotStarted => {}
                SlaState::Running { due_ns } => {
                    v.state = "running";
                    v.due = Some(rfc3339(due_ns));
                    v.time_left = Some(duration::format_ns(due_ns.saturating_sub(now_ns)));
                    v.gap_ns = due_ns.saturating_sub(now_ns);
                }
                SlaState::Met => v.state = "met",
                SlaState::Open { due_ns, .. } => {
                    let late = now_ns.saturating_sub(due_ns);
                    v.state = "open_breach";
                    v.due = Some(rfc3339(due_ns));
                    v.late = Some(duration::format_ns(late));
                    v.late_ns = Some(late.to_string());
                    v.gap_ns = late;
                }
                SlaState::Closed { due_ns, to_ns, .. } => {
                    let late = to_ns - due_ns;
                    v.state = "breached";
                    v.due = Some(rfc3339(due_ns));
                    v.late = Some(duration::format_ns(late));
                    v.late_ns = Some(late.to_string());
                    v.gap_ns = late;
                }
            }
            v
        })
        .collect();
    InstanceView {
        process: def.id.clone(),
        key: KeyView {
            key_type: def.key_type.clone(),
            value: row.root_value.clone(),
        },
        status: row.status.as_str().to_string(),
        current_stage: row.current_stage.clone(),
        start_time: rfc3339(row.start_ns),
        last_time: rfc3339(row.last_ns),
        failed: row.failed,
        open_breaches: row.open_breaches,
        stages,
        slas,
    }
}

/// An SLA breach; `state` is `open` or `closed`.
#[derive(Debug, Clone, Serialize)]
pub struct BreachView {
    pub process: String,
    pub sla: String,
    pub key: KeyView,
    pub state: String,
    pub from_time: String,
    pub due_time: String,
    pub to_time: Option<String>,
    pub late: String,
    pub late_ns: String,
    /// The API address of its instance.
    pub instance: String,
}

/// A breach; an open one's lateness is counted to `now_ns`.
pub fn breach(def: Option<&ProcessDef>, row: &Breach, now_ns: u64) -> BreachView {
    let open = row.state == BreachState::Open;
    let late_ns = row.late_at(now_ns);
    BreachView {
        process: row.process_id.clone(),
        sla: row.sla_id.clone(),
        key: KeyView {
            key_type: def.map(|d| d.key_type.clone()).unwrap_or_default(),
            value: row.root_value.clone(),
        },
        state: row.state.as_str().to_string(),
        from_time: rfc3339(row.from_ns),
        due_time: rfc3339(row.due_ns),
        to_time: (!open).then(|| rfc3339(row.to_ns)),
        late: duration::format_ns(late_ns),
        late_ns: late_ns.to_string(),
        instance: crate::links::instance_api(&row.process_id, &row.root_value),
    }
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
