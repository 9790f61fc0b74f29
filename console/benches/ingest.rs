//! `make bench`: OTLP/HTTP ingest throughput and latency, end to end.
//!
//! Starts a collector in this process against the ClickHouse named by
//! `THROUGHLINE_TEST_CLICKHOUSE_URL` (`make bench` starts a private one), then
//! sends protobuf export requests from concurrent clients over loopback and
//! reports spans per second acknowledged (= stored in ClickHouse, the
//! collector acknowledges only then) and request latency percentiles.
//! Bounded: a fixed number of requests, then it stops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use collector::keys::KeyTypes;
use collector::metrics::Metrics;
use collector::pipeline::PipelineOptions;
use collector::spool::{SpoolOptions, DEFAULT_MAX_BYTES};
use collector::storage::{Store, StoreConfig};
use collector::{Collector, CollectorSettings};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tokio_util::sync::CancellationToken;

const SPANS_PER_REQUEST: usize = 500;
const REQUESTS: usize = 400;
const CLIENTS: usize = 8;

fn text(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        key_strindex: 0,
    }
}

/// A request of spans shaped like a connector's: three keys, a few
/// attributes, unique ids per request.
fn request(n: usize) -> Vec<u8> {
    let start = 1_764_161_400_000_000_000u64 + n as u64 * 1_000_000;
    let spans = (0..SPANS_PER_REQUEST)
        .map(|i| {
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&(n as u64 + 1).to_be_bytes());
            trace_id[8..].copy_from_slice(&((i / 10) as u64 + 1).to_be_bytes());
            let mut span_id = [0u8; 8];
            span_id[..4].copy_from_slice(&(n as u32 + 1).to_be_bytes());
            span_id[4..].copy_from_slice(&(i as u32 + 1).to_be_bytes());
            Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                name: "erp.goods_receipt.post".into(),
                kind: 2,
                start_time_unix_nano: start + i as u64,
                end_time_unix_nano: start + i as u64 + 2_500_000,
                attributes: vec![
                    text("order.id", format!("O-{n}-{}", i / 10)),
                    text("work_order.id", format!("WO-{n}-{i}")),
                    text("customer.id", format!("C-{}", n % 50)),
                    text("erp.plant", "P1".into()),
                    text("erp.document", format!("5000{n}{i}")),
                ],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "erp".into())],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("THROUGHLINE_TEST_CLICKHOUSE_URL")
        .expect("set THROUGHLINE_TEST_CLICKHOUSE_URL (make bench does)");
    let store = Store::new(StoreConfig {
        url,
        database: format!("bench_{}", std::process::id()),
        user: None,
        password: None,
    });
    store.migrate().await.unwrap();
    let shutdown = CancellationToken::new();
    let spool_dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(
        store.clone(),
        CollectorSettings {
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            max_request_bytes: collector::DEFAULT_MAX_REQUEST_BYTES,
            keys: Arc::new(KeyTypes::default()),
            events: Arc::new(
                collector::events::EventRules::new(&Default::default(), &KeyTypes::default())
                    .unwrap(),
            ),
            pipeline: PipelineOptions::default(),
            spool: SpoolOptions::new(spool_dir.path(), DEFAULT_MAX_BYTES),
            metrics: Arc::new(Metrics::new()),
        },
        shutdown.clone(),
    )
    .await
    .unwrap();
    let endpoint = format!("http://{}/v1/traces", collector.http_addr);
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..REQUESTS).map(request).collect());
    let bytes: usize = bodies.iter().map(Vec::len).sum();

    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, endpoint, bodies) = (client.clone(), endpoint.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for n in (c..REQUESTS).step_by(CLIENTS) {
                let t = Instant::now();
                let r = client
                    .post(&endpoint)
                    .header("content-type", "application/x-protobuf")
                    .body(bodies[n].clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let spans = REQUESTS * SPANS_PER_REQUEST;
    println!(
        "| OTLP/HTTP protobuf ingest, {CLIENTS} clients x {SPANS_PER_REQUEST} spans/request, {REQUESTS} requests | {:.0} spans/s | {:.1} MB/s | p50 {:.0} ms, p99 {:.0} ms |",
        spans as f64 / elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );

    // The key lookup a console page makes, on the loaded tables.
    let key = collector::model::BusinessKey::new("customer", "C-7");
    let t = Instant::now();
    let (spans_found, _) = store.spans_with_keys(&[&key], 2000).await.unwrap();
    println!(
        "| key lookup (customer with {} spans) after {spans} spans loaded | {:.0} ms | | |",
        spans_found.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    shutdown.cancel();
    collector.wait().await;
    store.drop_database().await.unwrap();
}
