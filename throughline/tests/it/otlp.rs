//! Spans and logs from real OpenTelemetry clients land complete.

use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use prost::Message;

use crate::harness::{attr, named, TestApp};

#[derive(Clone, Copy)]
pub enum Transport {
    Grpc,
    HttpProtobuf,
}

/// Runs `emit` with an SDK tracer whose spans go to `app` over `transport`,
/// exactly as a connector would: SDK, batch processor, OTLP exporter. The
/// SDK runs on a plain thread, as connector code does, and is flushed and
/// shut down before this returns. Returns what `emit` returns.
pub async fn with_sdk<T: Send + 'static>(
    app: &TestApp,
    transport: Transport,
    service: &'static str,
    emit: impl FnOnce(&opentelemetry_sdk::trace::SdkTracer) -> T + Send + 'static,
) -> T {
    with_sdk_at(
        app.grpc_url(),
        app.otlp_url("/v1/traces"),
        transport,
        service,
        emit,
    )
    .await
}

/// [`with_sdk`] against any collector: its gRPC endpoint and its OTLP/HTTP
/// traces URL.
pub async fn with_sdk_at<T: Send + 'static>(
    grpc: String,
    http: String,
    transport: Transport,
    service: &'static str,
    emit: impl FnOnce(&opentelemetry_sdk::trace::SdkTracer) -> T + Send + 'static,
) -> T {
    collector::tls::install_default_provider();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            let exporter = match transport {
                Transport::Grpc => {
                    // tonic's channel needs the runtime to drive its I/O.
                    let _guard = runtime.enter();
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .with_endpoint(grpc)
                        .build()
                        .unwrap()
                }
                Transport::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(http)
                    .build()
                    .unwrap(),
            };
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    Resource::builder()
                        .with_service_name(service)
                        .with_attribute(KeyValue::new("plant", "P1"))
                        .build(),
                )
                .build();
            let tracer = provider.tracer("throughline-tests");
            let out = emit(&tracer);
            provider
                .force_flush()
                .expect("flush spans to the collector");
            provider.shutdown().expect("shut the SDK down");
            out
        })
        .join()
        .unwrap()
    })
    .await
    .unwrap()
}

/// A parent and a child span with everything a span can carry; returns the
/// trace id (hex).
fn emit_work_order(tracer: &opentelemetry_sdk::trace::SdkTracer) -> String {
    let linked = SpanContext::new(
        TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
        opentelemetry::trace::SpanId::from_hex("b7ad6b7169203331").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let parent = tracer
        .span_builder("mes.work_order.complete")
        .with_kind(SpanKind::Server)
        .with_attributes(vec![
            KeyValue::new("work_order.id", "WO-1"),
            KeyValue::new("order.id", "O-1"),
            KeyValue::new("mes.quantity", 12_i64),
            KeyValue::new("mes.rework", false),
        ])
        .with_links(vec![Link::new(
            linked,
            vec![KeyValue::new("reason", "batch")],
            0,
        )])
        .start(tracer);
    let trace_id = parent.span_context().trace_id().to_string();
    let cx = Context::current_with_span(parent);
    let mut child = tracer
        .span_builder("erp.goods_receipt.post")
        .with_kind(SpanKind::Client)
        .start_with_context(tracer, &cx);
    child.add_event("retry", vec![KeyValue::new("attempt", 2_i64)]);
    child.set_status(Status::error("ERP refused the goods receipt"));
    child.end();
    cx.span().end();
    trace_id
}

async fn spans_land_complete(transport: Transport) {
    let app = TestApp::start().await;
    let trace_id = with_sdk(&app, transport, "mes", emit_work_order).await;
    let spans = app.trace(&trace_id, 2).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");

    let parent = named(&spans, "mes.work_order.complete");
    let child = named(&spans, "erp.goods_receipt.post");
    assert_eq!(parent["trace_id"], trace_id);
    assert_eq!(parent["service"], "mes");
    assert_eq!(parent["kind"], "server");
    assert_eq!(parent["parent_span_id"], serde_json::Value::Null);
    assert_eq!(attr(parent, "mes.quantity"), "12");
    assert_eq!(attr(parent, "mes.rework"), "false");
    assert_eq!(parent["resource"]["plant"], "P1");
    assert_eq!(parent["resource"]["service.name"], "mes");
    assert_eq!(parent["scope"]["name"], "throughline-tests");
    assert_eq!(
        parent["links"][0]["trace_id"],
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(parent["links"][0]["span_id"], "b7ad6b7169203331");
    assert_eq!(parent["links"][0]["attributes"]["reason"], "batch");
    assert_eq!(
        parent["keys"],
        serde_json::json!([{"type": "order", "value": "O-1"}, {"type": "work_order", "value": "WO-1"}])
    );

    assert_eq!(child["parent_span_id"], parent["span_id"]);
    assert_eq!(child["kind"], "client");
    assert_eq!(child["status"]["code"], "error");
    assert_eq!(child["status"]["message"], "ERP refused the goods receipt");
    assert_eq!(child["events"][0]["name"], "retry");
    assert_eq!(child["events"][0]["attributes"]["attempt"], "2");

    // Times: nanoseconds both as RFC 3339 and as unix nanos, consistent.
    let start: u64 = parent["start_time_unix_nano"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let end: u64 = parent["end_time_unix_nano"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let duration: u64 = parent["duration_ns"].as_str().unwrap().parse().unwrap();
    assert_eq!(end - start, duration);
    let rfc = parent["start_time"].as_str().unwrap();
    assert!(
        rfc.ends_with(&format!("{:09}Z", start % 1_000_000_000)),
        "{rfc} vs {start}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_spans_over_grpc_land_complete() {
    spans_land_complete(Transport::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_spans_over_http_protobuf_land_complete() {
    spans_land_complete(Transport::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_json_fixture_lands() {
    let app = TestApp::start().await;
    let body = include_bytes!("../../../sample-data/fixtures/otlp-traces.json").to_vec();
    let response = app.post("/v1/traces", "application/json", &[], body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.unwrap(), "{}");

    let spans = app.trace("5b8efff798038103d269b633813fc60c", 2).await;
    assert_eq!(spans.len(), 2);
    let root = named(&spans, "erp.sales_order.create");
    assert_eq!(root["service"], "erp");
    assert_eq!(root["start_time"], "2025-11-26T12:50:00.000000000Z");
    assert_eq!(root["duration_ns"], "250000000");
    assert_eq!(attr(root, "erp.lines"), "3");
    assert_eq!(attr(root, "erp.amount"), "1299.5");
    assert_eq!(root["events"][0]["name"], "credit.checked");
    assert_eq!(root["events"][0]["time"], "2025-11-26T12:50:00.100000000Z");
    let release = named(&spans, "erp.production_order.release");
    assert_eq!(release["parent_span_id"], "eee19b7ec3c1b174");
    assert_eq!(release["status"]["code"], "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_are_accepted() {
    use std::io::Write;
    let app = TestApp::start().await;
    let body = include_bytes!("../../../sample-data/fixtures/otlp-traces.json");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body).unwrap();
    let response = app
        .post(
            "/v1/traces",
            "application/json",
            &[("content-encoding", "gzip")],
            gz.finish().unwrap(),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.trace("5b8efff798038103d269b633813fc60c", 2).await.len(),
        2
    );
}

/// A connector that retries a batch it already delivered must not change
/// any count: the span is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_batch_is_stored_once() {
    let app = TestApp::start().await;
    let body = include_bytes!("../../../sample-data/fixtures/otlp-traces.json").to_vec();
    for _ in 0..3 {
        let response = app
            .post("/v1/traces", "application/json", &[], body.clone())
            .await;
        assert_eq!(response.status(), 200);
    }
    let (_, trace) = app
        .get("/api/v1/traces/5b8efff798038103d269b633813fc60c")
        .await;
    assert_eq!(trace["span_count"], 2);
    let (_, key) = app.get("/api/v1/keys/customer/ACME").await;
    assert_eq!(key["span_count"], 1);
}

fn log_request(
    records: Vec<opentelemetry_proto::tonic::logs::v1::LogRecord>,
) -> opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue as ProtoKv};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
    opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(ProtoResource {
                attributes: vec![ProtoKv {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("mes".into())),
                    }),
                    key_strindex: 0,
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn event_record(
    work_order: &str,
    trace_id: &[u8],
) -> opentelemetry_proto::tonic::logs::v1::LogRecord {
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue as ProtoKv};
    opentelemetry_proto::tonic::logs::v1::LogRecord {
        time_unix_nano: 1_764_161_400_000_000_000,
        event_name: "mes.work_order.completed".into(),
        trace_id: trace_id.to_vec(),
        span_id: vec![],
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue("completed".into())),
        }),
        attributes: vec![ProtoKv {
            key: "work_order.id".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(work_order.into())),
            }),
            key_strindex: 0,
        }],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_over_grpc_and_http_are_stored_once() {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    let app = TestApp::start().await;
    let request = log_request(vec![event_record("WO-7", &[7; 16])]);

    let mut client = LogsServiceClient::connect(app.grpc_url()).await.unwrap();
    let response = client.export(request.clone()).await.unwrap().into_inner();
    assert_eq!(response.partial_success, None);

    // The same record again over HTTP: a redelivery, stored once.
    let response = app
        .post(
            "/v1/logs",
            "application/x-protobuf",
            &[],
            request.encode_to_vec(),
        )
        .await;
    assert_eq!(response.status(), 200);

    app.settled().await;
    let rows = app
        .store
        .log_records_between(0, domain::now_ns() + 86_400_000_000_000)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event_name, "mes.work_order.completed");
    assert_eq!(rows[0].service, "mes");
    let key_values: Vec<&str> = rows[0].keys.iter().map(|k| k.value.as_str()).collect();
    assert_eq!(key_values, vec!["WO-7"]);
}

/// A database made before spans were keyed by service: its spans are copied
/// into `spans_v2` by migration 0008, once, and read from there.
#[tokio::test]
async fn spans_stored_before_the_service_sort_key_are_copied_on_upgrade() {
    use crate::harness::bare_span;
    let store = crate::harness::unmigrated_store();
    // The table as migration 0001 made it, with spans of three days in it
    // (three partitions: the copy goes one day at a time).
    store.migrate_through(1).await.unwrap();
    let trace = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
    let before = [
        bare_span(
            trace,
            "0b0b0b0b0b0b0b0b",
            "erp",
            "erp.before.upgrade",
            1764161400000000000,
        ),
        bare_span(
            trace,
            "0c0c0c0c0c0c0c0c",
            "erp",
            "erp.day.before",
            1764075000000000000,
        ),
        bare_span(
            trace,
            "0d0d0d0d0d0d0d0d",
            "mes",
            "mes.two.days.before",
            1763988600000000000,
        ),
    ];
    store.insert_spans_only("spans", &before).await.unwrap();

    store.migrate().await.unwrap();
    // A second start applies nothing again.
    let again = store.migrate().await.unwrap();
    assert!(again.applied.is_empty(), "{:?}", again.applied);
    let spans = store
        .trace_spans(domain::model::TraceId::from_hex("0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a").unwrap())
        .await
        .unwrap();
    let mut names: Vec<(&str, &str)> = spans
        .iter()
        .map(|s| (s.service.as_str(), s.name.as_str()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("erp", "erp.before.upgrade"),
            ("erp", "erp.day.before"),
            ("mes", "mes.two.days.before")
        ]
    );
}

/// Requests arriving faster than the insert interval share inserts: each
/// table gets about one part a second, not one per request; every span is
/// stored all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_within_an_insert_interval_share_one_insert() {
    use crate::harness::TestConfig;
    let app = TestApp::with(TestConfig {
        pipeline: collector::pipeline::PipelineOptions {
            insert_interval: std::time::Duration::from_secs(1),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let fixture = include_str!("../../../sample-data/fixtures/otlp-traces.json");
    let traces: Vec<String> = (0..30)
        .map(|n| format!("5b8efff7980381030000{n:012x}"))
        .collect();
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    for trace in &traces {
        let body = fixture.replace("5b8efff798038103d269b633813fc60c", trace);
        let response = client
            .post(app.otlp_url("/v1/traces"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let sending = started.elapsed().as_secs();
    app.settled().await;
    for trace in &traces {
        assert_eq!(app.trace(trace, 2).await.len(), 2, "trace {trace}");
    }
    let metrics = app.metrics().await;
    let batches: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("throughline_insert_batches_total ")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no insert batch count in\n{metrics}"));
    // 30 requests over 3 s or more: the first insert, then one a second.
    assert!(
        batches >= 2 && batches <= sending + 2,
        "{batches} inserts for 30 requests over {sending} s"
    );
}
