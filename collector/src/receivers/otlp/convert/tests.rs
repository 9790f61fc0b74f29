use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as ProtoLog, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as ProtoSpan};

use super::*;
use domain::limits::{Limits, Truncated};
use domain::model::BusinessKey;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn span(trace: &[u8], id: &[u8], attrs: Vec<KeyValue>) -> ProtoSpan {
    ProtoSpan {
        trace_id: trace.to_vec(),
        span_id: id.to_vec(),
        name: "op".into(),
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 1_500,
        attributes: attrs,
        ..Default::default()
    }
}

fn request(service: &str, spans: Vec<ProtoSpan>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", service), text("customer.id", "ACME")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn a_span_with_a_bad_id_is_rejected_alone() {
    let req = request(
        "erp",
        vec![
            span(&[1; 16], &[2; 8], vec![]),
            span(&[1; 3], &[3; 8], vec![]),
            span(&[1; 16], &[0; 8], vec![]),
            span(&[1; 16], &[4; 8], vec![]),
        ],
    );
    let out = traces(&req, &KeyTypes::default(), &Limits::default());
    assert_eq!(out.batch.spans.len(), 2);
    assert_eq!(out.rejected.len(), 2);
    assert_eq!(
        out.message(),
        "resource_spans[0].scope_spans[0].spans[1]: trace_id must be 16 bytes (32 hex digits), got 3 bytes; \
         resource_spans[0].scope_spans[0].spans[2]: span_id is all zeros, which OTLP reserves for \"no id\""
    );
}

#[test]
fn spans_get_service_duration_and_keys_from_span_and_resource() {
    let req = request(
        "erp",
        vec![span(
            &[1; 16],
            &[2; 8],
            vec![text("order.id", "O-1"), text("work_order.id", "WO-1")],
        )],
    );
    let out = traces(&req, &KeyTypes::default(), &Limits::default());
    let s = &out.batch.spans[0];
    assert_eq!(s.service, "erp");
    assert_eq!(s.duration_ns, 500);
    assert_eq!(s.parent_span_id, None);
    assert_eq!(
        s.keys,
        vec![
            BusinessKey::new("customer", "ACME"),
            BusinessKey::new("order", "O-1"),
            BusinessKey::new("work_order", "WO-1"),
        ]
    );
}

#[test]
fn attribute_values_render_as_text() {
    let cases = [
        (any_value::Value::StringValue("a \"b\"".into()), "a \"b\""),
        (any_value::Value::IntValue(-42), "-42"),
        (any_value::Value::BoolValue(true), "true"),
        (any_value::Value::DoubleValue(1.5), "1.5"),
        (any_value::Value::BytesValue(vec![0, 255]), "AP8="),
        (
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(any_value::Value::IntValue(1)),
                    },
                    AnyValue {
                        value: Some(any_value::Value::StringValue("x".into())),
                    },
                ],
            }),
            "[1,\"x\"]",
        ),
    ];
    for (value, want) in cases {
        assert_eq!(
            any_value_text(
                Some(&AnyValue {
                    value: Some(value.clone())
                }),
                &Limits::default(),
                &mut Truncated::default()
            ),
            want,
            "{value:?}"
        );
    }
}

#[test]
fn a_link_with_a_bad_id_is_dropped_and_the_span_kept() {
    let mut s = span(&[1; 16], &[2; 8], vec![]);
    s.links
        .push(opentelemetry_proto::tonic::trace::v1::span::Link {
            trace_id: vec![9; 5],
            span_id: vec![9; 8],
            ..Default::default()
        });
    let out = traces(
        &request("mes", vec![s]),
        &KeyTypes::default(),
        &Limits::default(),
    );
    assert_eq!(out.batch.spans.len(), 1);
    assert!(out.rejected.is_empty());
    assert!(
        out.message()
            .contains("links[0] dropped, the span was kept"),
        "{}",
        out.message()
    );
}

#[test]
fn a_redelivered_log_record_gets_the_same_id() {
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    ProtoLog {
                        time_unix_nano: 5,
                        attributes: vec![
                            text("event.name", "mes.work_order.completed"),
                            text("work_order.id", "WO-1"),
                        ],
                        ..Default::default()
                    },
                    ProtoLog {
                        time_unix_nano: 6,
                        event_name: "erp.goods_receipt.posted".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let first = logs(&req, &KeyTypes::default(), &Limits::default(), 99);
    let again = logs(&req, &KeyTypes::default(), &Limits::default(), 100);
    assert_eq!(first.batch.logs[0].record_id, again.batch.logs[0].record_id);
    assert_ne!(first.batch.logs[0].record_id, first.batch.logs[1].record_id);
    assert_eq!(first.batch.logs[0].event_name, "mes.work_order.completed");
    assert_eq!(first.batch.logs[1].event_name, "erp.goods_receipt.posted");
    assert_eq!(
        first.batch.logs[0].keys,
        vec![BusinessKey::new("work_order", "WO-1")]
    );
    assert_eq!(first.batch.logs[0].service, UNKNOWN_SERVICE);
}

fn nested(depth: usize) -> any_value::Value {
    let mut value = any_value::Value::StringValue("leaf".into());
    for _ in 0..depth {
        value = any_value::Value::ArrayValue(ArrayValue {
            values: vec![AnyValue { value: Some(value) }],
        });
    }
    value
}

fn small_limits() -> Limits {
    Limits {
        max_attributes: 4,
        max_value_bytes: 1024,
        max_body_bytes: 1024,
        max_span_events: 2,
        max_span_links: 1,
        max_depth: 3,
    }
}

#[test]
fn a_span_past_every_limit_is_kept_cut_and_marked() {
    let mut attrs: Vec<KeyValue> = (0..10).map(|i| text(&format!("a{i}"), "x")).collect();
    attrs.push(text("order.id", "SO-1"));
    attrs.push(text("long", &"é".repeat(600)));
    attrs.push(kv("deep", nested(5)));
    let mut s = span(&[1; 16], &[2; 8], attrs);
    s.events = (0..5)
        .map(|i| opentelemetry_proto::tonic::trace::v1::span::Event {
            time_unix_nano: i,
            name: format!("e{i}"),
            ..Default::default()
        })
        .collect();
    s.links = (1..4)
        .map(|i| opentelemetry_proto::tonic::trace::v1::span::Link {
            trace_id: vec![i; 16],
            span_id: vec![i; 8],
            ..Default::default()
        })
        .collect();
    let out = traces(
        &request("mes", vec![s]),
        &KeyTypes::default(),
        &small_limits(),
    );
    assert!(out.rejected.is_empty());
    let span = &out.batch.spans[0];
    // Four attributes kept, the business key among them, then the marker.
    assert_eq!(span.attributes.len(), 5);
    assert!(span
        .attributes
        .contains(&("order.id".into(), "SO-1".into())));
    assert_eq!(
        span.attributes.last().unwrap(),
        &(
            domain::limits::TRUNCATED_ATTRIBUTE.to_string(),
            "attributes,value_length,events,links,depth".to_string()
        )
    );
    assert_eq!(span.events.len(), 2);
    assert_eq!(span.links.len(), 1);
    assert!(span.keys.contains(&BusinessKey::new("order", "SO-1")));
    assert!(span.keys.contains(&BusinessKey::new("customer", "ACME")));
}

#[test]
fn long_and_deep_values_are_cut_and_marked() {
    let attrs = vec![
        text("long", &"é".repeat(600)),
        kv("deep", nested(5)),
        kv("shallow", nested(3)),
    ];
    let out = traces(
        &request("mes", vec![span(&[1; 16], &[2; 8], attrs)]),
        &KeyTypes::default(),
        &small_limits(),
    );
    let a = &out.batch.spans[0].attributes;
    // 1024 bytes: 512 two-byte characters, never half of one.
    assert_eq!(a[0].1, "é".repeat(512));
    assert_eq!(a[1].1, "[[[null]]]");
    assert_eq!(a[2].1, "[[[\"leaf\"]]]");
    assert_eq!(a[3].1, "value_length,depth");
}

/// A logs export of one record, without a resource.
fn log_request(record: ProtoLog) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: None,
            scope_logs: vec![ScopeLogs {
                log_records: vec![record],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn a_log_record_past_the_limits_is_kept_cut_and_marked_and_so_is_its_event() {
    let mut attrs: Vec<KeyValue> = (0..10).map(|i| text(&format!("a{i}"), "x")).collect();
    attrs.push(text("event.name", "erp.order.created"));
    attrs.push(text("order.id", "SO-1"));
    let req = log_request(ProtoLog {
        time_unix_nano: 5,
        attributes: attrs,
        body: Some(AnyValue {
            value: Some(nested(6)),
        }),
        ..Default::default()
    });
    let out = logs(&req, &KeyTypes::default(), &small_limits(), 9);
    let log = &out.batch.logs[0];
    assert_eq!(log.event_name, "erp.order.created");
    assert_eq!(log.body, "[[[null]]]");
    assert_eq!(log.keys, vec![BusinessKey::new("order", "SO-1")]);
    assert_eq!(log.attributes.len(), 5);
    assert_eq!(log.attributes[4].1, "attributes,depth");
    assert_eq!(out.batch.events[0].attributes, log.attributes);
}

#[test]
fn long_names_status_messages_and_log_bodies_are_cut_and_marked() {
    use opentelemetry_proto::tonic::trace::v1::Status;
    let mut s = span(&[1; 16], &[2; 8], vec![text("order.id", "SO-1")]);
    s.name = "n".repeat(3000);
    s.status = Some(Status {
        message: "m".repeat(3000),
        code: 2,
    });
    let out = traces(
        &request("mes", vec![s]),
        &KeyTypes::default(),
        &small_limits(),
    );
    let span = &out.batch.spans[0];
    assert_eq!(span.name.len(), 1024);
    assert_eq!(span.status_message.len(), 1024);
    assert_eq!(span.attributes.last().unwrap().1, "value_length");

    let req = log_request(ProtoLog {
        time_unix_nano: 5,
        event_name: "erp.order.created".into(),
        attributes: vec![text("order.id", "SO-1")],
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue("b".repeat(5000))),
        }),
        ..Default::default()
    });
    let out = logs(&req, &KeyTypes::default(), &small_limits(), 9);
    let log = &out.batch.logs[0];
    assert_eq!(log.body.len(), 1024);
    assert_eq!(log.attributes.last().unwrap().1, "body_length");
    assert_eq!(out.batch.events[0].data, log.body);
    assert_eq!(log.keys, vec![BusinessKey::new("order", "SO-1")]);
}

#[test]
fn a_senders_own_truncation_marker_is_not_believed() {
    let attrs = vec![text(domain::limits::TRUNCATED_ATTRIBUTE, "attributes")];
    let out = traces(
        &request("mes", vec![span(&[1; 16], &[2; 8], attrs)]),
        &KeyTypes::default(),
        &Limits::default(),
    );
    assert!(out.batch.spans[0].attributes.is_empty());
}

/// A resource of `attributes`, for one span or one log record.
fn with_resource(attributes: Vec<KeyValue>, spans: Vec<ProtoSpan>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn long_attribute_names_are_cut_and_marked_in_every_map() {
    let long = "k".repeat(3000);
    let mut s = span(&[1; 16], &[2; 8], vec![text(&long, "span")]);
    s.events = vec![opentelemetry_proto::tonic::trace::v1::span::Event {
        name: "e".into(),
        attributes: vec![text(&long, "event")],
        ..Default::default()
    }];
    s.links = vec![opentelemetry_proto::tonic::trace::v1::span::Link {
        trace_id: vec![3; 16],
        span_id: vec![3; 8],
        attributes: vec![text(&long, "link")],
        ..Default::default()
    }];
    let req = with_resource(
        vec![
            text("service.name", "mes"),
            text(&"é".repeat(600), "resource"),
        ],
        vec![s],
    );
    let out = traces(&req, &KeyTypes::default(), &small_limits());
    let span = &out.batch.spans[0];
    let cut = "k".repeat(1024);
    assert!(span.attributes[0] == (cut.clone(), "span".into()));
    assert!(span.events[0].attributes[0].0 == cut);
    assert!(span.links[0].attributes[0].0 == cut);
    // 1024 bytes: 512 two-byte characters, never half of one.
    assert!(span.resource[1] == ("é".repeat(512), "resource".into()));
    assert_eq!(span.attributes.last().unwrap().1, "name_length");

    let req = log_request(ProtoLog {
        time_unix_nano: 5,
        attributes: vec![text(&long, "log")],
        ..Default::default()
    });
    let out = logs(&req, &KeyTypes::default(), &small_limits(), 9);
    let log = &out.batch.logs[0];
    assert!(log.attributes[0] == (cut, "log".into()));
    assert_eq!(log.attributes.last().unwrap().1, "name_length");
}

#[test]
fn a_key_with_a_control_or_bidi_character_rejects_its_record_alone() {
    let bad = [
        "x\u{0}y",
        "SO-\u{1b}[31m",
        "SO-1\u{7f}",
        "SO-\u{202e}1",
        "SO-\u{85}1",
    ];
    let mut spans: Vec<ProtoSpan> = bad
        .iter()
        .enumerate()
        .map(|(i, v)| span(&[1; 16], &[i as u8 + 1; 8], vec![text("order.id", v)]))
        .collect();
    spans.push(span(&[1; 16], &[9; 8], vec![text("order.id", "SO-1")]));
    let out = traces(
        &request("erp", spans),
        &KeyTypes::default(),
        &Limits::default(),
    );
    assert_eq!(out.batch.spans.len(), 1, "{}", out.message());
    assert_eq!(out.batch.spans[0].span_id.to_hex(), "0909090909090909");
    assert_eq!(out.rejected.len(), 5);
    let first = &out.rejected[0];
    assert_eq!(first.path, "resource_spans[0].scope_spans[0].spans[0]");
    assert!(
        first.reason.contains("`order.id`") && first.reason.contains("U+0000"),
        "{}",
        first.reason
    );
    assert!(
        out.rejected[3].reason.contains("U+202E"),
        "{:?}",
        out.rejected
    );

    // A log record's key: the same rule.
    let req = log_request(ProtoLog {
        time_unix_nano: 5,
        attributes: vec![text("work_order.id", "WO-\u{0}1")],
        ..Default::default()
    });
    let out = logs(&req, &KeyTypes::default(), &Limits::default(), 9);
    assert!(out.batch.logs.is_empty() && out.batch.events.is_empty());
    assert!(
        out.message().contains("`work_order.id`"),
        "{}",
        out.message()
    );
}

#[test]
fn a_service_name_with_a_control_character_rejects_the_resources_records() {
    let out = traces(
        &request("evil-a\u{0}", vec![span(&[1; 16], &[2; 8], vec![])]),
        &KeyTypes::default(),
        &Limits::default(),
    );
    assert!(out.batch.spans.is_empty());
    assert_eq!(out.rejected.len(), 1);
    assert!(
        out.rejected[0].reason.contains("`service.name`")
            && out.rejected[0].reason.contains("U+0000"),
        "{}",
        out.message()
    );
}

#[test]
fn a_duplicate_service_name_keeps_the_first_in_the_column_and_the_map() {
    let req = with_resource(
        vec![
            text("service.name", "crm"),
            text("customer.id", "ACME"),
            text("service.name", "erp"),
        ],
        vec![span(
            &[1; 16],
            &[2; 8],
            vec![text("order.id", "SO-1"), text("order.id", "SO-2")],
        )],
    );
    let out = traces(&req, &KeyTypes::default(), &Limits::default());
    let span = &out.batch.spans[0];
    assert_eq!(span.service, "crm");
    assert_eq!(
        span.resource,
        vec![
            ("service.name".to_string(), "crm".to_string()),
            ("customer.id".to_string(), "ACME".to_string()),
        ]
    );
    // On the span too: the first value is the attribute and the key.
    assert_eq!(
        span.attributes,
        vec![
            ("order.id".to_string(), "SO-1".to_string()),
            (
                domain::limits::TRUNCATED_ATTRIBUTE.to_string(),
                "duplicates".to_string()
            ),
        ]
    );
    assert_eq!(
        span.keys,
        vec![
            BusinessKey::new("customer", "ACME"),
            BusinessKey::new("order", "SO-1")
        ]
    );

    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![text("service.name", "crm"), text("service.name", "erp")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![ProtoLog {
                    time_unix_nano: 5,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let out = logs(&req, &KeyTypes::default(), &Limits::default(), 9);
    let log = &out.batch.logs[0];
    assert_eq!(log.service, "crm");
    assert_eq!(
        log.resource,
        vec![("service.name".to_string(), "crm".to_string())]
    );
    assert_eq!(log.attributes.last().unwrap().1, "duplicates");
}
