//! `make bench-forward`: an edge collector forwarding to a central one over
//! loopback (issue 19), both the real `throughline collector` binary.
//!
//! Needs the ClickHouse named by `THROUGHLINE_TEST_CLICKHOUSE_URL` (`make
//! bench-forward` starts a private one); central writes into a database of
//! its own, the edge needs none. Bounded, two phases:
//!
//! 1. Throughput: central up, `BENCH_CLIENTS` clients post
//!    `BENCH_FORWARD_REQUESTS` OTLP/HTTP protobuf requests of 512 spans to
//!    the edge. Spans/s forwarded: from the first request until the edge's
//!    `throughline_forwarded_total{signal="spans"}` counts every span
//!    (central acknowledged them, in its spool); and until central's
//!    ClickHouse holds them.
//! 2. Catch-up: central stopped (SIGTERM), the clients fill the edge's
//!    spool to `BENCH_BACKLOG_BYTES` (1 GiB), then central starts again and
//!    the drain is timed: until the edge's spool is empty, and until
//!    ClickHouse holds every span. Central keeps its default 1 GiB spool,
//!    so its backpressure (429) paces the edge as it would in a plant.
//!
//! Central runs without tokens and the edge with `plant = "bench"`: what is
//! measured is the forwarding, not the token check (see `make bench`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use store::inspect::Rows;

mod support;
use support::{env_or, fetch_text, free_ports, metric, rss_kib, text};

const SPANS_PER_REQUEST: usize = 512;

/// Request `n`: 512 MES spans, 52 traces of about ten, each with an order,
/// a work order and four more attributes.
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
                name: format!("mes.operation.step{}", i % 10),
                kind: 1,
                start_time_unix_nano: start + i as u64 * 1000,
                end_time_unix_nano: start + i as u64 * 1000 + 1_500_000,
                attributes: vec![
                    text("order.id", format!("SO-{n}-{}", i / 10)),
                    text("work_order.id", format!("WO-{n}-{i}")),
                    text("mes.line", "L2"),
                    text("mes.station", format!("ST-{}", i % 12)),
                    text("mes.operator", "shift-b"),
                    text("mes.result", "ok"),
                ],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "mes"), text("host.name", "mes-app-01")],
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

/// `throughline collector` with `args`, its stderr into `dir/name.log`.
fn collector(dir: &Path, name: &str, http: u16, grpc: u16, args: &[String]) -> Child {
    let data = dir.join(name);
    std::fs::create_dir_all(&data).unwrap();
    Command::new(env!("CARGO_BIN_EXE_throughline"))
        .arg("collector")
        .args(args)
        .arg("--data-dir")
        .arg(&data)
        .args(["--otlp-http-addr", &format!("127.0.0.1:{http}")])
        .args(["--otlp-grpc-addr", &format!("127.0.0.1:{grpc}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
        .spawn()
        .unwrap()
}

async fn wait_up(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "{base} did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The edge's figure `name`, 0 when unreadable.
async fn edge_figure(base: &str, name: &str) -> f64 {
    match fetch_text(&format!("{base}/metrics")).await {
        Ok(text) => metric(&text, name),
        Err(_) => 0.0,
    }
}

/// Requests `first..` to the edge from `clients` clients until `stop` (or
/// `count` requests, if given); returns how many were acknowledged.
async fn send(
    edge: String,
    clients: usize,
    first: usize,
    count: Option<usize>,
    stop: Arc<AtomicBool>,
) -> usize {
    let next = Arc::new(AtomicUsize::new(first));
    let endpoint = format!("{edge}/v1/traces");
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, endpoint, client, stop) =
            (next.clone(), endpoint.clone(), client.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = 0;
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if stop.load(Ordering::SeqCst) || count.is_some_and(|c| n >= first + c) {
                    return acked;
                }
                let body = request(n);
                loop {
                    let r = client
                        .post(&endpoint)
                        .header("content-type", "application/x-protobuf")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    if r.status() == 429 || r.status() == 503 {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
                    acked += 1;
                    break;
                }
            }
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await.unwrap();
    }
    acked
}

/// Waits until central's ClickHouse holds `spans` spans; the time it took
/// since `since`.
async fn stored(db: &store::Store, spans: u64, since: Instant) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let n = db.row_count("spans_v2", Rows::AsWritten).await.unwrap_or(0);
        if n >= spans {
            return since.elapsed().as_secs_f64();
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {spans} spans stored"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("THROUGHLINE_TEST_CLICKHOUSE_URL")
        .expect("set THROUGHLINE_TEST_CLICKHOUSE_URL (make bench-forward does)");
    let requests = env_or("BENCH_FORWARD_REQUESTS", 1000);
    let clients = env_or("BENCH_CLIENTS", 8);
    let backlog_bytes: f64 = env_or("BENCH_BACKLOG_BYTES", 1u64 << 30) as f64;
    let pid = std::process::id();
    let db = support::store(&url, &format!("bench_forward_{pid}"));
    db.migrate().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(4);
    let (central_http, edge_http) = (ports[0], ports[2]);
    let central_base = format!("http://127.0.0.1:{central_http}");
    let edge_base = format!("http://127.0.0.1:{edge_http}");
    let central_args = vec![
        "--clickhouse-url".to_string(),
        url.clone(),
        "--clickhouse-database".to_string(),
        db.config().database.clone(),
    ];
    let start_central = || collector(dir.path(), "central", ports[0], ports[1], &central_args);
    let mut central = start_central();
    wait_up(&central_base).await;
    let mut edge = collector(
        dir.path(),
        "edge",
        ports[2],
        ports[3],
        &[
            "--forward-to".to_string(),
            central_base.clone(),
            "--plant".to_string(),
            "bench".to_string(),
        ],
    );
    wait_up(&edge_base).await;
    let forwarded = || edge_figure(&edge_base, "throughline_forwarded_total{signal=\"spans\"}");

    // 1. Throughput, the link up.
    let total = (requests * SPANS_PER_REQUEST) as f64;
    let started = Instant::now();
    let acked = send(
        edge_base.clone(),
        clients,
        0,
        Some(requests),
        Arc::default(),
    )
    .await;
    assert_eq!(acked, requests);
    let acked_secs = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(600);
    while forwarded().await < total {
        assert!(
            Instant::now() < deadline,
            "the edge did not forward in 10 min"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let forwarded_secs = started.elapsed().as_secs_f64();
    let stored_secs = stored(&db, total as u64, started).await;
    let edge_rss = rss_kib(edge.id()).1;

    // 2. Central down: the edge's spool fills to the backlog asked for.
    support::stop(&mut central, Duration::from_secs(60));
    let stop = Arc::new(AtomicBool::new(false));
    let filling = tokio::spawn(send(
        edge_base.clone(),
        clients,
        requests,
        None,
        stop.clone(),
    ));
    let fill_started = Instant::now();
    loop {
        let bytes = edge_figure(&edge_base, "throughline_spool_bytes").await;
        if bytes >= backlog_bytes {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let backlog_requests = filling.await.unwrap();
    let fill_secs = fill_started.elapsed().as_secs_f64();
    let m = fetch_text(&format!("{edge_base}/metrics")).await.unwrap();
    let (spool_bytes, spool_records) = (
        metric(&m, "throughline_spool_bytes"),
        metric(&m, "throughline_spool_records"),
    );
    let backlog_spans = (backlog_requests * SPANS_PER_REQUEST) as f64;

    // Central back: the drain.
    let before = forwarded().await;
    let drain_started = Instant::now();
    central = start_central();
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let m = fetch_text(&format!("{edge_base}/metrics")).await.unwrap();
        if metric(&m, "throughline_spool_records") == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backlog did not drain in 30 min"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let drained = forwarded().await - before;
    let all = total as u64 + backlog_spans as u64;
    let caught_up_secs = stored(&db, all, drain_started).await;
    let edge_peak = rss_kib(edge.id()).1;

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nmachine: {cpus} cores; edge and central `throughline collector` on loopback, central's ClickHouse 18.16 beside them; {clients} clients, 512 spans a request\n"
    );
    println!("| what | result |\n| --- | --- |");
    println!(
        "| forwarding, link up: {requests} requests ({total:.0} spans) into the edge | acknowledged by the edge {:.0} spans/s ({acked_secs:.1} s); forwarded (central acknowledged) {:.0} spans/s ({forwarded_secs:.1} s); in central's ClickHouse {:.0} spans/s ({stored_secs:.1} s) |",
        total / acked_secs,
        total / forwarded_secs,
        total / stored_secs,
    );
    println!(
        "| backlog built with central stopped | {:.2} GiB, {spool_records:.0} records ({backlog_spans:.0} spans in {backlog_requests} requests) in {fill_secs:.1} s |",
        spool_bytes / f64::from(1u32 << 30)
    );
    println!(
        "| catch-up after central restarts | edge spool empty after {drain_secs:.1} s: {:.0} spans/s, {:.0} MB/s of spool; every span in central's ClickHouse after {caught_up_secs:.1} s: {:.0} spans/s |",
        drained / drain_secs,
        spool_bytes / 1e6 / drain_secs,
        backlog_spans / caught_up_secs,
    );
    println!(
        "| edge peak RSS | {:.0} MiB after phase 1, {:.0} MiB after the catch-up (VmHWM) |",
        edge_rss as f64 / 1024.0,
        edge_peak as f64 / 1024.0
    );

    support::stop(&mut edge, Duration::from_secs(60));
    support::stop(&mut central, Duration::from_secs(60));
    db.drop_database().await.unwrap();
}
