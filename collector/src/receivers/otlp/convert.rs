//! OTLP protobuf messages -> canonical records, with the per-record checks that
//! reject one span or log record without costing the rest of its batch.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord as ProtoLogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use prost::Message;
use serde_json::Value as Json;

use domain::events::log_event_source;
use domain::keys::KeyTypes;
use domain::limits::{Limits, Truncated};
use domain::model::{
    Attributes, Batch, Event, EventOrigin, LogRecord, Outcome, Span, SpanEvent, SpanId, SpanKind,
    SpanLink, StatusCode, TraceId,
};
use domain::text::check_printable;

/// The service name OpenTelemetry SDKs use when none was configured.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// How many rejection messages one response quotes; the count covers all.
const MAX_MESSAGES: usize = 5;

/// One record refused on its own, with where it was in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub path: String,
    pub reason: String,
}

/// The outcome of converting one request: what is valid, and what was not.
#[derive(Debug, Default)]
pub struct Converted {
    pub batch: Batch,
    pub rejected: Vec<Rejection>,
    /// Things dropped from records that were kept (a link with a bad id).
    pub warnings: Vec<String>,
}

impl Converted {
    /// The `error_message` of an OTLP partial success: empty when all was fine.
    pub fn message(&self) -> String {
        let mut parts: Vec<String> = self
            .rejected
            .iter()
            .take(MAX_MESSAGES)
            .map(|r| format!("{}: {}", r.path, r.reason))
            .collect();
        if self.rejected.len() > MAX_MESSAGES {
            parts.push(format!("and {} more", self.rejected.len() - MAX_MESSAGES));
        }
        parts.extend(self.warnings.iter().take(MAX_MESSAGES).cloned());
        parts.join("; ")
    }
}

/// Renders an OTLP value as text: strings as they are, scalars in their usual
/// form, bytes as base64, arrays and maps as JSON, nested at most
/// `limits.max_depth` levels (deeper arrays and maps become null).
pub fn any_value_text(
    value: Option<&AnyValue>,
    limits: &Limits,
    truncated: &mut Truncated,
) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(other) => match any_value_json(other, 1, limits, truncated) {
            Json::String(s) => s,
            json => json.to_string(),
        },
    }
}

/// `level` is the nesting level of `value`: 1 for an attribute's value.
fn any_value_json(
    value: &any_value::Value,
    level: usize,
    limits: &Limits,
    truncated: &mut Truncated,
) -> Json {
    use base64::Engine;
    let nested = matches!(
        value,
        any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_)
    );
    if nested && level > limits.max_depth {
        truncated.add(Truncated::DEPTH);
        return Json::Null;
    }
    let mut child = |v: Option<&AnyValue>| {
        v.and_then(|v| v.value.as_ref())
            .map(|v| any_value_json(v, level + 1, limits, truncated))
            .unwrap_or(Json::Null)
    };
    match value {
        any_value::Value::StringValue(s) => Json::String(s.clone()),
        any_value::Value::BoolValue(b) => Json::Bool(*b),
        any_value::Value::IntValue(i) => Json::from(*i),
        any_value::Value::DoubleValue(d) => serde_json::Number::from_f64(*d)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(d.to_string())),
        any_value::Value::BytesValue(b) => {
            Json::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        any_value::Value::ArrayValue(a) => {
            Json::Array(a.values.iter().map(|v| child(Some(v))).collect())
        }
        any_value::Value::KvlistValue(kv) => Json::Object(
            kv.values
                .iter()
                .map(|kv| (kv.key.clone(), child(kv.value.as_ref())))
                .collect(),
        ),
        // Only profiles use string tables; a span or log has none to look in.
        any_value::Value::StringValueStrindex(_) => Json::Null,
    }
}

/// What the conversion of one request needs besides the message: which
/// attributes are keys, and the limits.
struct Shape<'a> {
    keys: &'a KeyTypes,
    limits: &'a Limits,
}

/// A resource as every record of it gets it.
struct ResourceParts {
    attributes: Attributes,
    /// The first `service.name` (cut like any value), else
    /// [`UNKNOWN_SERVICE`]; the same value the attributes keep.
    service: String,
    truncated: Truncated,
    /// Why no record of this resource can be kept (a service name that is
    /// not printable text).
    refused: Option<String>,
}

impl Shape<'_> {
    /// Attributes as text, cut to the limits (names and values; a name's
    /// later duplicates dropped); business keys of `service`,
    /// `service.name` and `event.name` kept first.
    fn attributes(&self, kvs: &[KeyValue], service: &str, truncated: &mut Truncated) -> Attributes {
        let mut attrs: Attributes = kvs
            .iter()
            .map(|kv| {
                let value = any_value_text(kv.value.as_ref(), self.limits, truncated);
                (kv.key.clone(), value)
            })
            .collect();
        self.limits.cut_attributes(
            &mut attrs,
            |name| {
                matches!(name, "service.name" | "event.name")
                    || self.keys.is_key_attribute(service, name)
            },
            truncated,
        );
        attrs
    }

    /// The resource's attributes and service, what was cut of them, and
    /// whether its records are refused.
    fn resource(&self, resource: Option<&Resource>) -> ResourceParts {
        let kvs = resource.map(|r| &r.attributes[..]).unwrap_or_default();
        let mut truncated = Truncated::default();
        // The service is read before the cut (it needs the service for
        // aliases); the cut keeps the same first `service.name` and drops
        // later ones, so the column and the map agree.
        let mut service = kvs
            .iter()
            .find(|kv| kv.key == "service.name")
            .map(|kv| any_value_text(kv.value.as_ref(), self.limits, &mut truncated))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| UNKNOWN_SERVICE.to_string());
        self.limits.cut_value(&mut service, &mut truncated);
        let refused = check_printable(&service)
            .err()
            .map(|e| format!("the resource's `service.name` {e}"));
        let attributes = self.attributes(kvs, &service, &mut truncated);
        ResourceParts {
            attributes,
            service,
            truncated,
            refused,
        }
    }
}

/// The scope's name and version, cut to `max_value_bytes`, and what was
/// cut of them.
fn scope_parts(
    scope: Option<&InstrumentationScope>,
    limits: &Limits,
) -> (String, String, Truncated) {
    let mut truncated = Truncated::default();
    let (name, version) = scope
        .map(|s| {
            (
                limits.cut_text(&s.name, &mut truncated),
                limits.cut_text(&s.version, &mut truncated),
            )
        })
        .unwrap_or_default();
    (name, version, truncated)
}

fn optional_span_id(bytes: &[u8]) -> Result<Option<SpanId>, String> {
    if bytes.is_empty() || bytes.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    SpanId::from_bytes(bytes)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// A span's ids, or why the span cannot be kept.
fn span_ids(span: &ProtoSpan) -> Result<(TraceId, SpanId, Option<SpanId>), String> {
    let trace_id = TraceId::from_bytes(&span.trace_id).map_err(|e| format!("trace_id {e}"))?;
    let span_id = SpanId::from_bytes(&span.span_id).map_err(|e| format!("span_id {e}"))?;
    let parent =
        optional_span_id(&span.parent_span_id).map_err(|e| format!("parent_span_id {e}"))?;
    Ok((trace_id, span_id, parent))
}

/// A log record's trace context: optional, but valid when present.
fn log_ids(record: &ProtoLogRecord) -> Result<(Option<TraceId>, Option<SpanId>), String> {
    let trace_id = match record.trace_id.is_empty() {
        true => None,
        false => Some(TraceId::from_bytes(&record.trace_id).map_err(|e| format!("trace_id {e}"))?),
    };
    let span_id = optional_span_id(&record.span_id).map_err(|e| format!("span_id {e}"))?;
    Ok((trace_id, span_id))
}

/// Converts a trace export; invalid spans are rejected one by one, spans
/// past the limits are cut and marked (see [`domain::limits`]).
pub fn traces(request: &ExportTraceServiceRequest, keys: &KeyTypes, limits: &Limits) -> Converted {
    let shape = Shape { keys, limits };
    let mut out = Converted::default();
    for (ri, rs) in request.resource_spans.iter().enumerate() {
        let ResourceParts {
            attributes: resource,
            service,
            truncated: resource_cut,
            refused,
        } = shape.resource(rs.resource.as_ref());
        for (si, ss) in rs.scope_spans.iter().enumerate() {
            let (scope_name, scope_version, scope_cut) = scope_parts(ss.scope.as_ref(), limits);
            for (pi, span) in ss.spans.iter().enumerate() {
                let path = format!("resource_spans[{ri}].scope_spans[{si}].spans[{pi}]");
                if let Some(reason) = &refused {
                    out.rejected.push(Rejection {
                        path,
                        reason: reason.clone(),
                    });
                    continue;
                }
                let (trace_id, span_id, parent_span_id) = match span_ids(span) {
                    Ok(ids) => ids,
                    Err(reason) => {
                        out.rejected.push(Rejection { path, reason });
                        continue;
                    }
                };
                let mut truncated = resource_cut;
                truncated.merge(scope_cut);
                let mut links = Vec::with_capacity(span.links.len().min(limits.max_span_links));
                for (li, link) in span.links.iter().enumerate() {
                    match (
                        TraceId::from_bytes(&link.trace_id),
                        SpanId::from_bytes(&link.span_id),
                    ) {
                        (Ok(_), Ok(_)) if links.len() >= limits.max_span_links => {
                            truncated.add(Truncated::LINKS);
                        }
                        (Ok(trace_id), Ok(span_id)) => links.push(SpanLink {
                            trace_id,
                            span_id,
                            trace_state: limits.cut_text(&link.trace_state, &mut truncated),
                            attributes: shape.attributes(
                                &link.attributes,
                                &service,
                                &mut truncated,
                            ),
                        }),
                        (Err(e), _) | (_, Err(e)) => out.warnings.push(format!(
                            "{path}.links[{li}] dropped, the span was kept: link id {e}"
                        )),
                    }
                }
                let mut attrs = shape.attributes(&span.attributes, &service, &mut truncated);
                let events = span
                    .events
                    .iter()
                    .take(limits.max_span_events)
                    .map(|e| SpanEvent {
                        time_ns: e.time_unix_nano,
                        name: limits.cut_text(&e.name, &mut truncated),
                        attributes: shape.attributes(&e.attributes, &service, &mut truncated),
                    })
                    .collect();
                if span.events.len() > limits.max_span_events {
                    truncated.add(Truncated::EVENTS);
                }
                let keys = match keys.extract(&service, &[&attrs, &resource]) {
                    Ok(keys) => keys,
                    Err(reason) => {
                        out.rejected.push(Rejection { path, reason });
                        continue;
                    }
                };
                let status = span.status.as_ref();
                let name = limits.cut_text(&span.name, &mut truncated);
                let trace_state = limits.cut_text(&span.trace_state, &mut truncated);
                let status_message =
                    limits.cut_text(status.map_or("", |s| s.message.as_str()), &mut truncated);
                truncated.mark(&mut attrs);
                out.batch.spans.push(Span {
                    trace_id,
                    span_id,
                    parent_span_id,
                    trace_state,
                    flags: span.flags,
                    service: service.clone(),
                    name,
                    kind: SpanKind::from_otlp(span.kind),
                    start_ns: span.start_time_unix_nano,
                    duration_ns: span
                        .end_time_unix_nano
                        .saturating_sub(span.start_time_unix_nano),
                    status_code: StatusCode::from_otlp(status.map_or(0, |s| s.code)),
                    status_message,
                    keys,
                    attributes: attrs,
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                    scope_version: scope_version.clone(),
                    events,
                    links,
                });
            }
        }
    }
    out
}

/// A log record that is an event, as an integration event: its id is the
/// record's content hash, so a redelivered record is the same event. Outcome
/// and attempt come from the attributes `outcome` / `event.outcome` and
/// `attempt` / `event.attempt`.
#[allow(clippy::too_many_arguments)]
fn log_event(
    record_id: u64,
    service: &str,
    event_name: &str,
    (time_ns, time_missing): (u64, bool),
    (trace_id, span_id): (Option<TraceId>, Option<SpanId>),
    body: String,
    attrs: &Attributes,
    keys: Vec<domain::model::BusinessKey>,
    received_ns: u64,
) -> Event {
    let attr = |names: &[&str]| {
        attrs
            .iter()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.clone())
    };
    Event {
        source: log_event_source(service),
        id: format!("{record_id:016x}"),
        system: service.to_string(),
        event_type: event_name.to_string(),
        subject: String::new(),
        time_ns,
        time_missing,
        received_ns,
        outcome: attr(&["outcome", "event.outcome"])
            .and_then(|o| Outcome::parse(&o))
            .unwrap_or(Outcome::Ok),
        attempt: attr(&["attempt", "event.attempt"])
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
        trace_id,
        span_id,
        correlation_id: String::new(),
        causation_id: String::new(),
        data: body,
        data_content_type: String::new(),
        attributes: attrs.clone(),
        keys,
        origin: EventOrigin::OtlpLog,
    }
}

/// Converts a logs export; records that are events (`event_name`, or the
/// older `event.name` attribute) also become integration events. `now_ns` stands in for a record with neither a time
/// nor an observed time.
pub fn logs(
    request: &ExportLogsServiceRequest,
    keys: &KeyTypes,
    limits: &Limits,
    now_ns: u64,
) -> Converted {
    let shape = Shape { keys, limits };
    let mut out = Converted::default();
    for (ri, rl) in request.resource_logs.iter().enumerate() {
        let ResourceParts {
            attributes: resource,
            service,
            truncated: resource_cut,
            refused,
        } = shape.resource(rl.resource.as_ref());
        let resource_bytes = rl
            .resource
            .as_ref()
            .map(Message::encode_to_vec)
            .unwrap_or_default();
        for (si, sl) in rl.scope_logs.iter().enumerate() {
            let (scope_name, scope_version, scope_cut) = scope_parts(sl.scope.as_ref(), limits);
            for (li, record) in sl.log_records.iter().enumerate() {
                let path = format!("resource_logs[{ri}].scope_logs[{si}].log_records[{li}]");
                if let Some(reason) = &refused {
                    out.rejected.push(Rejection {
                        path,
                        reason: reason.clone(),
                    });
                    continue;
                }
                let (trace_id, span_id) = match log_ids(record) {
                    Ok(ids) => ids,
                    Err(reason) => {
                        out.rejected.push(Rejection { path, reason });
                        continue;
                    }
                };
                let mut truncated = resource_cut;
                truncated.merge(scope_cut);
                let mut attrs = shape.attributes(&record.attributes, &service, &mut truncated);
                let mut body = any_value_text(record.body.as_ref(), limits, &mut truncated);
                limits.cut_body(&mut body, &mut truncated);
                let event_name = if record.event_name.is_empty() {
                    attrs
                        .iter()
                        .find(|(k, _)| k == "event.name")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                } else {
                    limits.cut_text(&record.event_name, &mut truncated)
                };
                let severity_text = limits.cut_text(&record.severity_text, &mut truncated);
                let time_ns = match (record.time_unix_nano, record.observed_time_unix_nano) {
                    (0, 0) => now_ns,
                    (0, observed) => observed,
                    (time, _) => time,
                };
                let record_bytes = record.encode_to_vec();
                let record_id =
                    domain::hash::fnv1a(&[&resource_bytes, scope_name.as_bytes(), &record_bytes]);
                let record_keys = match keys.extract(&service, &[&attrs, &resource]) {
                    Ok(keys) => keys,
                    Err(reason) => {
                        out.rejected.push(Rejection { path, reason });
                        continue;
                    }
                };
                truncated.mark(&mut attrs);
                if !event_name.is_empty() {
                    let time_missing =
                        record.time_unix_nano == 0 && record.observed_time_unix_nano == 0;
                    let mut event = log_event(
                        record_id,
                        &service,
                        &event_name,
                        (time_ns, time_missing),
                        (trace_id, span_id),
                        body.clone(),
                        &attrs,
                        record_keys.clone(),
                        now_ns,
                    );
                    // The event names its plant as a CloudEvent does (the
                    // `plant` extension), and it is its record's: the
                    // resource's `plant.id`, never a log attribute `plant`
                    // (which would let an event of another plant, or of
                    // none, through a plant token that refuses its record).
                    // Plant tokens check it, the plant rollups count it.
                    let plant = crate::auth::attribute(&resource, crate::auth::PLANT_ATTRIBUTE);
                    event
                        .attributes
                        .retain(|(k, _)| k != crate::auth::PLANT_EXTENSION);
                    if let Some(plant) = plant {
                        event
                            .attributes
                            .push((crate::auth::PLANT_EXTENSION.into(), plant.to_string()));
                    }
                    out.batch.events.push(event);
                }
                out.batch.logs.push(LogRecord {
                    record_id,
                    time_ns,
                    observed_ns: record.observed_time_unix_nano,
                    trace_id,
                    span_id,
                    severity_number: record.severity_number,
                    severity_text,
                    body,
                    event_name,
                    service: service.clone(),
                    keys: record_keys,
                    attributes: attrs,
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                    scope_version: scope_version.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
