//! `make bench`: OTLP/HTTP ingest end to end, against ClickHouse alone.
//!
//! Needs the ClickHouse named by `THROUGHLINE_TEST_CLICKHOUSE_URL` (`make
//! bench` starts a private one). Bounded: a fixed number of requests, then it
//! stops. Three phases, each in a database of its own:
//!
//! 1. ClickHouse alone: the same spans, normalized beforehand, written with
//!    `Store::write_batch` (RowBinary over HTTP into every table the collector
//!    writes: spans, key index, key links, feed) in batches as large as the
//!    collector's writer makes them, one after another as the writer does.
//! 2. End to end: the real `throughline collector` binary as a child process
//!    (its own spool in a temporary directory), concurrent clients posting
//!    OTLP/HTTP protobuf requests of 512 spans. Throughput is counted in
//!    ClickHouse: from the first request until `spans_v2` holds every span.
//!    Also: request latency percentiles (a 200 means synced in the spool),
//!    the collector's peak RSS (`VmHWM`), and bytes on disk per span.
//! 3. A key lookup on the loaded tables.
//!
//! `BENCH_REQUESTS` and `BENCH_CLIENTS` override the load.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use collector::pipeline::PipelineOptions;
use domain::keys::KeyTypes;
use domain::model::Batch;
use store::inspect::Rows;
use store::Store;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

mod support;
use support::erp::{request, SPANS_PER_REQUEST};
use support::{env_or, fetch_text, free_port, metric, percentile, rss_kib};

/// Spans per second `Store::write_batch` stores, the spans of `messages`
/// normalized beforehand into batches of `batch_spans`, one after another.
async fn alone_rate(db: &Store, messages: &[ExportTraceServiceRequest], batch_spans: usize) -> f64 {
    db.migrate().await.unwrap();
    let keys = KeyTypes::default();
    let mut batches: Vec<Batch> = Vec::new();
    let mut current = Batch::default();
    for m in messages {
        current.append(
            collector::receivers::otlp::convert::traces(m, &keys, &Default::default()).batch,
        );
        if current.len() >= batch_spans {
            batches.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        batches.push(current);
    }
    let spans: usize = batches.iter().map(Batch::len).sum();
    let started = Instant::now();
    for batch in &batches {
        db.write_batch(batch).await.unwrap();
    }
    spans as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("THROUGHLINE_TEST_CLICKHOUSE_URL")
        .expect("set THROUGHLINE_TEST_CLICKHOUSE_URL (make bench does)");
    let requests = env_or("BENCH_REQUESTS", 1000);
    let clients = env_or("BENCH_CLIENTS", 8);
    let total = requests * SPANS_PER_REQUEST;
    let pid = std::process::id();
    let messages: Vec<ExportTraceServiceRequest> = (0..requests).map(request).collect();

    // 1. ClickHouse alone, the same rows: in batches as large as the
    // collector's writer makes them, and in larger ones.
    let writer_batch = PipelineOptions::default().max_batch_records;
    let mut alone = Vec::new();
    for batch_spans in [writer_batch, 100_000] {
        let db = support::store(&url, &format!("bench_alone_{pid}_{batch_spans}"));
        alone.push((batch_spans, alone_rate(&db, &messages, batch_spans).await));
        db.drop_database().await.unwrap();
    }
    let alone_best = alone.iter().map(|a| a.1).fold(0.0, f64::max);

    // 2. End to end through the real binary.
    let e2e = support::store(&url, &format!("bench_e2e_{pid}"));
    let data_dir = tempfile::tempdir().unwrap();
    let (http_port, grpc_port) = (free_port(), free_port());
    // As deployed: the collector requires a connector token (checked with
    // argon2 once, then remembered by digest).
    let token = support::Token::new("bench");
    let config = data_dir.path().join("tokens.toml");
    std::fs::write(&config, &token.config).unwrap();
    let authorization = token.authorization;
    // BENCH_TOKEN=0: an open collector, to see what tokens cost.
    let with_token = env_or("BENCH_TOKEN", 1) != 0;
    let mut child = Command::new(env!("CARGO_BIN_EXE_throughline"))
        .arg("collector")
        .args(if with_token {
            vec!["--config".to_string(), config.display().to_string()]
        } else {
            vec![]
        })
        .args(["--clickhouse-url", &url])
        .args(["--clickhouse-database", &e2e.config().database])
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["--otlp-http-addr", &format!("127.0.0.1:{http_port}")])
        .args(["--otlp-grpc-addr", &format!("127.0.0.1:{grpc_port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let child_pid = child.id();
    let base = format!("http://127.0.0.1:{http_port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{base}/readyz")).await.is_err() {
        assert!(Instant::now() < deadline, "the collector did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let endpoint = format!("{base}/v1/traces");
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(messages.iter().map(|m| m.encode_to_vec()).collect());
    drop(messages);
    let bytes: usize = bodies.iter().map(Vec::len).sum();

    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        let metrics_url = format!("{base}/metrics");
        tokio::spawn(async move {
            let (mut peak_rss, mut peak_spool) = (0, 0.0f64);
            let mut tick = 0u64;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak_rss = peak_rss.max(rss_kib(child_pid).0);
                if tick.is_multiple_of(4) {
                    if let Ok(text) = fetch_text(&metrics_url).await {
                        peak_spool = peak_spool.max(metric(&text, "throughline_spool_bytes"));
                    }
                }
                tick += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (peak_rss, peak_spool)
        })
    };
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, endpoint, bodies, authorization) = (
            client.clone(),
            endpoint.clone(),
            bodies.clone(),
            authorization.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut refused = 0u64;
            for n in (c..bodies.len()).step_by(clients) {
                loop {
                    let t = Instant::now();
                    let r = client
                        .post(&endpoint)
                        .header("content-type", "application/x-protobuf")
                        .header("authorization", &authorization)
                        .body(bodies[n].clone())
                        .send()
                        .await
                        .unwrap();
                    let status = r.status();
                    if status == 429 || status == 503 {
                        // Backpressure: wait and send the batch again.
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
                    latencies.push(t.elapsed());
                    break;
                }
            }
            (latencies, refused)
        }));
    }
    let mut latencies = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (l, r) = t.await.unwrap();
        latencies.extend(l);
        refused += r;
    }
    let acked_secs = started.elapsed().as_secs_f64();
    let stored_deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let n = e2e.row_count("spans_v2", Rows::AsWritten).await.unwrap();
        if n >= total as u64 {
            break;
        }
        assert!(
            Instant::now() < stored_deadline,
            "only {n} of {total} spans stored after 10 min"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e2e_secs = started.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let (peak_sampled, peak_spool) = sampler.await.unwrap();
    let final_metrics = fetch_text(&format!("{base}/metrics")).await.unwrap();
    let commits = metric(&final_metrics, "throughline_spool_commits_total");
    let inserts = metric(&final_metrics, "throughline_insert_batches_total");
    let (_, hwm) = rss_kib(child_pid);
    let e2e_rate = total as f64 / e2e_secs;
    latencies.sort();

    let spans_stored = e2e.row_count("spans_v2", Rows::Distinct).await.unwrap();
    let sizes = e2e.table_sizes().await.unwrap();
    let disk_spans: u64 = sizes
        .iter()
        .filter(|t| t.table == "spans_v2")
        .map(|t| t.bytes)
        .sum();
    let disk_all: u64 = sizes.iter().map(|t| t.bytes).sum();

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nmachine: {cpus} cores; {requests} requests x {SPANS_PER_REQUEST} spans ({total} spans, {:.1} MB protobuf), {clients} clients\n",
        bytes as f64 / 1e6
    );
    println!("| what | result |\n| --- | --- |");
    for (batch_spans, rate) in &alone {
        println!(
            "| ClickHouse alone: `write_batch` (RowBinary over HTTP, every table) of the normalized spans, {batch_spans} per insert | {rate:.0} spans/s |"
        );
    }
    println!(
        "| end to end: OTLP/HTTP {} -> spool -> ClickHouse, {writer_batch} per insert, counted in ClickHouse | {e2e_rate:.0} spans/s ({e2e_secs:.1} s) |",
        if with_token { "with a connector token" } else { "without tokens" }
    );
    println!(
        "| ratio end to end / ClickHouse alone (the faster of the two) | {:.2} |",
        e2e_rate / alone_best
    );
    println!(
        "| acknowledged (in the spool) | {:.0} spans/s ({acked_secs:.1} s), {:.1} MB/s |",
        total as f64 / acked_secs,
        bytes as f64 / 1e6 / acked_secs
    );
    println!(
        "| request latency | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {refused} refused (429/503) and resent |",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
    println!(
        "| spool | {commits:.0} group commits (fsyncs) for {requests} requests; {inserts:.0} inserts; largest backlog {:.0} MB |",
        peak_spool / 1e6
    );
    println!(
        "| collector peak RSS | {:.0} MiB (VmHWM; sampled peak {:.0} MiB) |",
        hwm as f64 / 1024.0,
        peak_sampled as f64 / 1024.0
    );
    println!(
        "| on disk in ClickHouse | {:.0} bytes/span in `spans_v2`, {:.0} bytes/span over all tables ({spans_stored} spans) |",
        disk_spans as f64 / spans_stored as f64,
        disk_all as f64 / spans_stored as f64
    );

    // 3. The key lookup a console page makes, on the loaded tables.
    let key = domain::model::BusinessKey::new("customer", "C-7");
    let t = Instant::now();
    let (found, _) = e2e.spans_with_keys(&[&key], 2000).await.unwrap();
    println!(
        "| key lookup (customer with {} spans) after {total} spans loaded | {:.0} ms |",
        found.len(),
        t.elapsed().as_secs_f64() * 1e3
    );

    // SIGTERM, then the database goes.
    support::sigterm(child_pid);
    let _ = child.wait();
    e2e.drop_database().await.unwrap();
}
