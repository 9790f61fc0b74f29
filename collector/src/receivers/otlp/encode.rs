//! Canonical records -> OTLP protobuf messages: the inverse of `convert`,
//! for the edge collector's forwarder (`crate::forward`), which sends what
//! its spool holds to a central collector as OTLP/HTTP.
//!
//! What `convert` made of a record comes back through `convert` unchanged
//! (attribute values were text already and stay strings; the business keys
//! are found again from the same attributes). The encoding is a function of
//! the record alone, so a batch sent again after a lost acknowledgement
//! has the same bytes per record: central derives the same log record id
//! (the content hash of resource, scope and record) and stores it once.
//!
//! A `plant` adds the resource attribute [`PLANT_ATTRIBUTE`] to every
//! resource that does not carry one.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as ProtoLogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event as ProtoEvent, Link as ProtoLink};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as ProtoSpan, Status};

use domain::model::{Attributes, LogRecord, Span};

/// The resource attribute naming the plant an edge collector serves
/// (`plant = "..."` in its config; central's plant tokens check it).
pub use crate::auth::PLANT_ATTRIBUTE;

fn key_value(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn key_values(attributes: &Attributes) -> Vec<KeyValue> {
    attributes.iter().map(|(k, v)| key_value(k, v)).collect()
}

/// The resource as sent: its attributes, and the plant when it names none.
fn resource(attributes: &Attributes, plant: Option<&str>) -> Resource {
    let mut attributes = key_values(attributes);
    if let Some(plant) = plant {
        if !attributes.iter().any(|kv| kv.key == PLANT_ATTRIBUTE) {
            attributes.push(key_value(PLANT_ATTRIBUTE, plant));
        }
    }
    Resource {
        attributes,
        ..Default::default()
    }
}

fn scope(name: &str, version: &str) -> Option<InstrumentationScope> {
    (!name.is_empty() || !version.is_empty()).then(|| InstrumentationScope {
        name: name.into(),
        version: version.into(),
        ..Default::default()
    })
}

/// One resource's records, by scope (name, version), in order.
type Group<'a, T> = (&'a Attributes, Vec<((&'a str, &'a str), Vec<&'a T>)>);

/// Groups consecutive items with the same resource and scope, keeping order.
fn runs<'a, T>(
    items: &'a [T],
    resource_of: impl Fn(&'a T) -> &'a Attributes,
    scope_of: impl Fn(&'a T) -> (&'a str, &'a str),
) -> Vec<Group<'a, T>> {
    let mut out: Vec<Group<'a, T>> = Vec::new();
    for item in items {
        let (res, sc) = (resource_of(item), scope_of(item));
        match out.last_mut() {
            Some((r, scopes)) if *r == res => match scopes.last_mut() {
                Some((s, list)) if *s == sc => list.push(item),
                _ => scopes.push((sc, vec![item])),
            },
            _ => out.push((res, vec![(sc, vec![item])])),
        }
    }
    out
}

fn span(s: &Span) -> ProtoSpan {
    ProtoSpan {
        trace_id: s.trace_id.0.to_vec(),
        span_id: s.span_id.0.to_vec(),
        trace_state: s.trace_state.clone(),
        parent_span_id: s.parent_span_id.map(|p| p.0.to_vec()).unwrap_or_default(),
        flags: s.flags,
        name: s.name.clone(),
        kind: s.kind as i32,
        start_time_unix_nano: s.start_ns,
        end_time_unix_nano: s.start_ns.saturating_add(s.duration_ns),
        attributes: key_values(&s.attributes),
        events: s
            .events
            .iter()
            .map(|e| ProtoEvent {
                time_unix_nano: e.time_ns,
                name: e.name.clone(),
                attributes: key_values(&e.attributes),
                ..Default::default()
            })
            .collect(),
        links: s
            .links
            .iter()
            .map(|l| ProtoLink {
                trace_id: l.trace_id.0.to_vec(),
                span_id: l.span_id.0.to_vec(),
                trace_state: l.trace_state.clone(),
                attributes: key_values(&l.attributes),
                ..Default::default()
            })
            .collect(),
        status: (s.status_code as i32 != 0 || !s.status_message.is_empty()).then(|| Status {
            code: s.status_code as i32,
            message: s.status_message.clone(),
        }),
        ..Default::default()
    }
}

fn log_record(l: &LogRecord) -> ProtoLogRecord {
    ProtoLogRecord {
        time_unix_nano: l.time_ns,
        observed_time_unix_nano: l.observed_ns,
        severity_number: l.severity_number,
        severity_text: l.severity_text.clone(),
        body: (!l.body.is_empty()).then(|| AnyValue {
            value: Some(any_value::Value::StringValue(l.body.clone())),
        }),
        attributes: key_values(&l.attributes),
        trace_id: l.trace_id.map(|t| t.0.to_vec()).unwrap_or_default(),
        span_id: l.span_id.map(|s| s.0.to_vec()).unwrap_or_default(),
        event_name: l.event_name.clone(),
        ..Default::default()
    }
}

/// `spans` as one trace export, in order, grouped by resource and scope.
pub fn traces(spans: &[Span], plant: Option<&str>) -> ExportTraceServiceRequest {
    let groups = runs(
        spans,
        |s| &s.resource,
        |s| (s.scope_name.as_str(), s.scope_version.as_str()),
    );
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|(res, scopes)| ResourceSpans {
                resource: Some(resource(res, plant)),
                scope_spans: scopes
                    .into_iter()
                    .map(|((name, version), list)| ScopeSpans {
                        scope: scope(name, version),
                        spans: list.into_iter().map(span).collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
    }
}

/// `logs` as one logs export, in order, grouped by resource and scope.
pub fn logs(logs: &[LogRecord], plant: Option<&str>) -> ExportLogsServiceRequest {
    let groups = runs(
        logs,
        |l| &l.resource,
        |l| (l.scope_name.as_str(), l.scope_version.as_str()),
    );
    ExportLogsServiceRequest {
        resource_logs: groups
            .into_iter()
            .map(|(res, scopes)| ResourceLogs {
                resource: Some(resource(res, plant)),
                scope_logs: scopes
                    .into_iter()
                    .map(|((name, version), list)| ScopeLogs {
                        scope: scope(name, version),
                        log_records: list.into_iter().map(log_record).collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::otlp::convert;
    use domain::keys::{KeyConfig, KeyTypes};
    use domain::limits::Limits;

    fn keys() -> KeyTypes {
        KeyTypes::new(&KeyConfig::default()).unwrap()
    }

    #[test]
    fn spans_come_back_through_convert_unchanged_with_the_plant() {
        let batch = crate::spool::tests::sample_batch();
        let request = traces(&batch.spans, None);
        let back = convert::traces(&request, &keys(), &Limits::default());
        assert!(back.rejected.is_empty(), "{:?}", back.rejected);
        // The keys are found again from the attributes (the sample's list
        // names one that no attribute carries).
        let mut expected = batch.spans.clone();
        expected[0].keys = back.batch.spans[0].keys.clone();
        assert_eq!(back.batch.spans, expected);

        let request = traces(&batch.spans, Some("plant-7"));
        let back = convert::traces(&request, &keys(), &Limits::default());
        let resource = &back.batch.spans[0].resource;
        assert!(resource.contains(&(PLANT_ATTRIBUTE.into(), "plant-7".into())));
    }

    #[test]
    fn a_plant_the_record_names_already_is_kept() {
        let mut batch = crate::spool::tests::sample_batch();
        batch.spans[0]
            .resource
            .push((PLANT_ATTRIBUTE.into(), "own".into()));
        let request = traces(&batch.spans, Some("edge"));
        let back = convert::traces(&request, &keys(), &Limits::default());
        let plants: Vec<_> = back.batch.spans[0]
            .resource
            .iter()
            .filter(|(k, _)| k == PLANT_ATTRIBUTE)
            .collect();
        assert_eq!(plants, [&(PLANT_ATTRIBUTE.to_string(), "own".to_string())]);
    }

    #[test]
    fn log_records_keep_their_fields_and_a_resend_keeps_their_id() {
        let mut batch = crate::spool::tests::sample_batch();
        batch.logs[0].resource = vec![("service.name".into(), "mes".into())];
        let request = logs(&batch.logs, Some("p1"));
        let first = convert::logs(&request, &keys(), &Limits::default(), 1);
        let again = convert::logs(
            &logs(&batch.logs, Some("p1")),
            &keys(),
            &Limits::default(),
            2,
        );
        assert!(first.rejected.is_empty(), "{:?}", first.rejected);
        let (a, b) = (&first.batch.logs[0], &again.batch.logs[0]);
        assert_eq!(a.record_id, b.record_id);
        let original = &batch.logs[0];
        assert_eq!(
            (&a.body, a.time_ns, a.trace_id, &a.service, &a.event_name),
            (
                &original.body,
                original.time_ns,
                original.trace_id,
                &original.service,
                &original.event_name
            )
        );
        assert_eq!(a.attributes, original.attributes);
        // Another plant is another resource: another record.
        let other = convert::logs(
            &logs(&batch.logs, Some("p2")),
            &keys(),
            &Limits::default(),
            1,
        );
        assert_ne!(other.batch.logs[0].record_id, a.record_id);
    }

    #[test]
    fn an_event_from_a_log_record_names_its_resources_plant_not_an_attributes() {
        let mut batch = crate::spool::tests::sample_batch();
        let log = &mut batch.logs[0];
        log.event_name = "mes.work_order.completed".into();
        log.attributes.push(("plant".into(), "hamburg".into()));
        let plant_of = |back: &convert::Converted| {
            let event = &back.batch.events[0];
            crate::auth::attribute(&event.attributes, crate::auth::PLANT_EXTENSION)
                .map(str::to_string)
        };
        // The resource names another plant: the event is that plant's.
        batch.logs[0].resource = vec![
            ("service.name".into(), "mes".into()),
            (PLANT_ATTRIBUTE.into(), "bremen".into()),
        ];
        let back = convert::logs(&logs(&batch.logs, None), &keys(), &Limits::default(), 1);
        assert_eq!(plant_of(&back).as_deref(), Some("bremen"));
        // The resource names none: neither does the event.
        batch.logs[0].resource = vec![("service.name".into(), "mes".into())];
        let back = convert::logs(&logs(&batch.logs, None), &keys(), &Limits::default(), 1);
        assert_eq!(plant_of(&back), None);
        // The edge's plant, added to the resource, is the event's.
        let back = convert::logs(
            &logs(&batch.logs, Some("hamburg")),
            &keys(),
            &Limits::default(),
            1,
        );
        assert_eq!(plant_of(&back).as_deref(), Some("hamburg"));
    }
}
