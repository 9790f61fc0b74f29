//! OTLP/JSON (the protobuf JSON mapping the OTLP spec fixes: lowerCamelCase
//! field names, trace and span ids as hex, enums as integers, 64-bit integers
//! as strings or numbers) -> the protobuf messages `convert` takes.
//!
//! Hand-written rather than derived so that one span with a bad hex id is
//! rejected on its own (see [`Rejection`]) instead of failing the whole body.
//! Unknown fields are ignored, as the spec asks of receivers.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1 as common;
use opentelemetry_proto::tonic::logs::v1 as logs;
use opentelemetry_proto::tonic::resource::v1 as res;
use opentelemetry_proto::tonic::trace::v1 as trace;
use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::convert::Rejection;

/// A 64-bit integer that proto3 JSON may send as a string or a number.
#[derive(Debug, Default, Clone, Copy)]
struct Int64(i64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(i64),
            Unsigned(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Int64(n)),
            Raw::Unsigned(n) => Ok(Int64(n as i64)),
            Raw::Text(s) => s
                .parse::<i64>()
                .or_else(|_| s.parse::<u64>().map(|n| n as i64))
                .map(Int64)
                .map_err(|_| de::Error::custom(format!("{s:?} is not an integer"))),
        }
    }
}

/// An enum sent as its integer (the OTLP rule) or, leniently, its name.
#[derive(Debug, Default, Clone, Copy)]
struct Enum(i32);

impl<'de> Deserialize<'de> for Enum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(i32),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Enum(n)),
            Raw::Name(name) => trace::span::SpanKind::from_str_name(&name)
                .map(|k| k as i32)
                .or_else(|| trace::status::StatusCode::from_str_name(&name).map(|c| c as i32))
                .or_else(|| logs::SeverityNumber::from_str_name(&name).map(|s| s as i32))
                .map(Enum)
                .ok_or_else(|| de::Error::custom(format!("unknown enum value {name:?}"))),
        }
    }
}

/// A double that may come as a number or as "NaN" / "Infinity" / "-Infinity".
#[derive(Debug, Default, Clone, Copy)]
struct Double(f64);

impl<'de> Deserialize<'de> for Double {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Double(n)),
            Raw::Text(s) => s
                .parse::<f64>()
                .map(Double)
                .map_err(|_| de::Error::custom(format!("{s:?} is not a number"))),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AnyValue {
    string_value: Option<String>,
    bool_value: Option<bool>,
    int_value: Option<Int64>,
    double_value: Option<Double>,
    array_value: Option<ArrayValue>,
    kvlist_value: Option<KvList>,
    bytes_value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ArrayValue {
    values: Vec<AnyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KvList {
    values: Vec<KeyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KeyValue {
    key: String,
    value: Option<AnyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Resource {
    attributes: Vec<KeyValue>,
    dropped_attributes_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Scope {
    name: String,
    version: String,
    attributes: Vec<KeyValue>,
    dropped_attributes_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct TracesData {
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ResourceSpans {
    resource: Option<Resource>,
    scope_spans: Vec<ScopeSpans>,
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ScopeSpans {
    scope: Option<Scope>,
    spans: Vec<Span>,
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Span {
    trace_id: String,
    span_id: String,
    trace_state: String,
    parent_span_id: String,
    flags: u32,
    name: String,
    kind: Enum,
    start_time_unix_nano: Int64,
    end_time_unix_nano: Int64,
    attributes: Vec<KeyValue>,
    dropped_attributes_count: u32,
    events: Vec<Event>,
    dropped_events_count: u32,
    links: Vec<Link>,
    dropped_links_count: u32,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Event {
    time_unix_nano: Int64,
    name: String,
    attributes: Vec<KeyValue>,
    dropped_attributes_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Link {
    trace_id: String,
    span_id: String,
    trace_state: String,
    attributes: Vec<KeyValue>,
    dropped_attributes_count: u32,
    flags: u32,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    message: String,
    code: Enum,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LogsData {
    resource_logs: Vec<ResourceLogs>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ResourceLogs {
    resource: Option<Resource>,
    scope_logs: Vec<ScopeLogs>,
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ScopeLogs {
    scope: Option<Scope>,
    log_records: Vec<LogRecordJson>,
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LogRecordJson {
    time_unix_nano: Int64,
    observed_time_unix_nano: Int64,
    severity_number: Enum,
    severity_text: String,
    body: Option<AnyValue>,
    attributes: Vec<KeyValue>,
    dropped_attributes_count: u32,
    flags: u32,
    trace_id: String,
    span_id: String,
    event_name: String,
}

fn any_value(v: AnyValue) -> Result<common::AnyValue, String> {
    use base64::Engine;
    use common::any_value::Value;
    let value = if let Some(s) = v.string_value {
        Some(Value::StringValue(s))
    } else if let Some(b) = v.bool_value {
        Some(Value::BoolValue(b))
    } else if let Some(i) = v.int_value {
        Some(Value::IntValue(i.0))
    } else if let Some(d) = v.double_value {
        Some(Value::DoubleValue(d.0))
    } else if let Some(a) = v.array_value {
        Some(Value::ArrayValue(common::ArrayValue {
            values: a
                .values
                .into_iter()
                .map(any_value)
                .collect::<Result<_, _>>()?,
        }))
    } else if let Some(kv) = v.kvlist_value {
        Some(Value::KvlistValue(common::KeyValueList {
            values: key_values(kv.values)?,
        }))
    } else if let Some(b) = v.bytes_value {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&b)
            .map_err(|_| format!("bytesValue {b:?} is not base64"))?;
        Some(Value::BytesValue(bytes))
    } else {
        None
    };
    Ok(common::AnyValue { value })
}

fn key_values(kvs: Vec<KeyValue>) -> Result<Vec<common::KeyValue>, String> {
    kvs.into_iter()
        .map(|kv| {
            let key = kv.key;
            let value = kv
                .value
                .map(any_value)
                .transpose()
                .map_err(|e| format!("attribute {key:?}: {e}"))?;
            Ok(common::KeyValue {
                key,
                value,
                key_strindex: 0,
            })
        })
        .collect()
}

fn resource(r: Option<Resource>) -> Result<Option<res::Resource>, String> {
    r.map(|r| {
        Ok(res::Resource {
            attributes: key_values(r.attributes).map_err(|e| format!("resource {e}"))?,
            dropped_attributes_count: r.dropped_attributes_count,
            entity_refs: Vec::new(),
        })
    })
    .transpose()
}

fn scope(s: Option<Scope>) -> Result<Option<common::InstrumentationScope>, String> {
    s.map(|s| {
        Ok(common::InstrumentationScope {
            name: s.name,
            version: s.version,
            attributes: key_values(s.attributes).map_err(|e| format!("scope {e}"))?,
            dropped_attributes_count: s.dropped_attributes_count,
        })
    })
    .transpose()
}

/// Decodes an id field; empty stays empty (the converter decides whether an
/// id is required).
fn hex_id(field: &str, text: &str) -> Result<Vec<u8>, String> {
    hex::decode(text)
        .map_err(|_| format!("{field} {text:?} is not hex; OTLP/JSON sends ids as hex strings"))
}

fn span(s: Span) -> Result<trace::Span, String> {
    Ok(trace::Span {
        trace_id: hex_id("traceId", &s.trace_id)?,
        span_id: hex_id("spanId", &s.span_id)?,
        trace_state: s.trace_state,
        parent_span_id: hex_id("parentSpanId", &s.parent_span_id)?,
        flags: s.flags,
        name: s.name,
        kind: s.kind.0,
        start_time_unix_nano: s.start_time_unix_nano.0 as u64,
        end_time_unix_nano: s.end_time_unix_nano.0 as u64,
        attributes: key_values(s.attributes)?,
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .into_iter()
            .map(|e| {
                Ok(trace::span::Event {
                    time_unix_nano: e.time_unix_nano.0 as u64,
                    name: e.name,
                    attributes: key_values(e.attributes)?,
                    dropped_attributes_count: e.dropped_attributes_count,
                })
            })
            .collect::<Result<_, String>>()?,
        dropped_events_count: s.dropped_events_count,
        links: s
            .links
            .into_iter()
            .map(|l| {
                Ok(trace::span::Link {
                    trace_id: hex_id("links.traceId", &l.trace_id)?,
                    span_id: hex_id("links.spanId", &l.span_id)?,
                    trace_state: l.trace_state,
                    attributes: key_values(l.attributes)?,
                    dropped_attributes_count: l.dropped_attributes_count,
                    flags: l.flags,
                })
            })
            .collect::<Result<_, String>>()?,
        dropped_links_count: s.dropped_links_count,
        status: s.status.map(|st| trace::Status {
            message: st.message,
            code: st.code.0,
        }),
    })
}

fn log_record(r: LogRecordJson) -> Result<logs::LogRecord, String> {
    Ok(logs::LogRecord {
        time_unix_nano: r.time_unix_nano.0 as u64,
        observed_time_unix_nano: r.observed_time_unix_nano.0 as u64,
        severity_number: r.severity_number.0,
        severity_text: r.severity_text,
        body: r
            .body
            .map(any_value)
            .transpose()
            .map_err(|e| format!("body: {e}"))?,
        attributes: key_values(r.attributes)?,
        dropped_attributes_count: r.dropped_attributes_count,
        flags: r.flags,
        trace_id: hex_id("traceId", &r.trace_id)?,
        span_id: hex_id("spanId", &r.span_id)?,
        event_name: r.event_name,
    })
}

/// Why a JSON body could not be read at all.
fn syntax_error(e: serde_json::Error) -> String {
    format!("request body is not valid OTLP/JSON: {e}")
}

/// Decodes an OTLP/JSON trace export. `Err` only when the body as a whole is
/// unusable; a span that cannot be decoded is returned as a rejection.
pub fn decode_traces(body: &[u8]) -> Result<(ExportTraceServiceRequest, Vec<Rejection>), String> {
    let data: TracesData = serde_json::from_slice(body).map_err(syntax_error)?;
    let mut rejected = Vec::new();
    let mut request = ExportTraceServiceRequest::default();
    for (ri, rs) in data.resource_spans.into_iter().enumerate() {
        let path = format!("resourceSpans[{ri}]");
        let mut out = trace::ResourceSpans {
            resource: resource(rs.resource).map_err(|e| format!("{path}: {e}"))?,
            scope_spans: Vec::new(),
            schema_url: rs.schema_url,
        };
        for (si, ss) in rs.scope_spans.into_iter().enumerate() {
            let path = format!("{path}.scopeSpans[{si}]");
            let mut scope_out = trace::ScopeSpans {
                scope: scope(ss.scope).map_err(|e| format!("{path}: {e}"))?,
                spans: Vec::new(),
                schema_url: ss.schema_url,
            };
            for (pi, s) in ss.spans.into_iter().enumerate() {
                match span(s) {
                    Ok(s) => scope_out.spans.push(s),
                    Err(reason) => rejected.push(Rejection {
                        path: format!("{path}.spans[{pi}]"),
                        reason,
                    }),
                }
            }
            out.scope_spans.push(scope_out);
        }
        request.resource_spans.push(out);
    }
    Ok((request, rejected))
}

/// Decodes an OTLP/JSON logs export, like [`decode_traces`].
pub fn decode_logs(body: &[u8]) -> Result<(ExportLogsServiceRequest, Vec<Rejection>), String> {
    let data: LogsData = serde_json::from_slice(body).map_err(syntax_error)?;
    let mut rejected = Vec::new();
    let mut request = ExportLogsServiceRequest::default();
    for (ri, rl) in data.resource_logs.into_iter().enumerate() {
        let path = format!("resourceLogs[{ri}]");
        let mut out = logs::ResourceLogs {
            resource: resource(rl.resource).map_err(|e| format!("{path}: {e}"))?,
            scope_logs: Vec::new(),
            schema_url: rl.schema_url,
        };
        for (si, sl) in rl.scope_logs.into_iter().enumerate() {
            let path = format!("{path}.scopeLogs[{si}]");
            let mut scope_out = logs::ScopeLogs {
                scope: scope(sl.scope).map_err(|e| format!("{path}: {e}"))?,
                log_records: Vec::new(),
                schema_url: sl.schema_url,
            };
            for (li, r) in sl.log_records.into_iter().enumerate() {
                match log_record(r) {
                    Ok(r) => scope_out.log_records.push(r),
                    Err(reason) => rejected.push(Rejection {
                        path: format!("{path}.logRecords[{li}]"),
                        reason,
                    }),
                }
            }
            out.scope_logs.push(scope_out);
        }
        request.resource_logs.push(out);
    }
    Ok((request, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_decodes_with_hex_ids_string_ints_and_enum_integers() {
        let body = include_bytes!("../../../../sample-data/fixtures/otlp-traces.json");
        let (request, rejected) = decode_traces(body).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            hex::encode(&span.trace_id),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(span.kind, 2);
        assert!(span.start_time_unix_nano > 1_700_000_000_000_000_000);
    }

    #[test]
    fn a_span_with_a_non_hex_id_is_rejected_alone() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"zz","spanId":"0102030405060708"},
            {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"0102030405060708","kind":"SPAN_KIND_CLIENT","startTimeUnixNano":1}
        ]}]}]}"#;
        let (request, rejected) = decode_traces(body).unwrap();
        assert_eq!(request.resource_spans[0].scope_spans[0].spans.len(), 1);
        assert_eq!(request.resource_spans[0].scope_spans[0].spans[0].kind, 3);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].path, "resourceSpans[0].scopeSpans[0].spans[0]");
        assert!(
            rejected[0].reason.contains("traceId \"zz\" is not hex"),
            "{}",
            rejected[0].reason
        );
    }

    #[test]
    fn a_body_that_is_not_json_fails_whole_with_the_parser_position() {
        let err = decode_traces(b"{\"resourceSpans\": [").unwrap_err();
        assert!(
            err.starts_with("request body is not valid OTLP/JSON: "),
            "{err}"
        );
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn unknown_fields_are_ignored_and_numbers_may_be_numbers() {
        let body = br#"{"resourceLogs":[{"futureField":1,"scopeLogs":[{"logRecords":[
            {"timeUnixNano":1700000000000000000,"severityNumber":9,"body":{"intValue":"7"},"eventName":"x"}
        ]}]}]}"#;
        let (request, rejected) = decode_logs(body).unwrap();
        assert!(rejected.is_empty());
        let record = &request.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(record.time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(record.severity_number, 9);
        assert_eq!(record.event_name, "x");
    }
}
