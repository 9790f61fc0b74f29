//! `make bench-cluster`: OTLP/HTTP ingest end to end with two collectors
//! into a cluster of two shards, next to one collector (and two) into one
//! server, on the same box (issue 18).
//!
//! Runs under `scripts/with-cluster.sh` (two private 18.16 servers forming
//! a cluster of two shards without ZooKeeper). Three runs, each in a
//! database of its own, each the same spans (`support::erp`, 512 per
//! request) from `BENCH_CLIENTS` concurrent clients through real
//! `throughline collector` processes (open, no tokens):
//!
//! 1. one collector into one server (the first node, a plain database);
//! 2. two collectors into that one server, the clients split between them;
//! 3. two collectors, one on each node, into the cluster
//!    (`--clickhouse-cluster`, every write through the `Distributed`
//!    tables with `insert_distributed_sync`).
//!
//! Throughput is counted in ClickHouse, from the first request until
//! `spans_v2` (through the `Distributed` table on the cluster) holds every
//! span. Also the CPU seconds the collectors and the ClickHouse servers
//! spent (`/proc/<pid>/stat`), from which a per-core capacity follows.
//! `BENCH_SPANS` (default 500 000) and `BENCH_CLIENTS` (8) set the load.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use store::inspect::Rows;
use store::Store;

mod support;
use support::erp::{request, SPANS_PER_REQUEST};
use support::{cpu_secs, env_or, free_port};

/// One run's figures.
struct Run {
    what: String,
    secs: f64,
    collectors_cpu: f64,
    clickhouse_cpu: f64,
}

/// A `throughline collector` on `url` (on `cluster` if given), with its
/// own data directory; its base URL once it answers.
async fn collector(
    url: &str,
    database: &str,
    cluster: Option<&str>,
    dir: &std::path::Path,
) -> (Child, String) {
    let (http_port, grpc_port) = (free_port(), free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_throughline"));
    command
        .arg("collector")
        .args(["--clickhouse-url", url])
        .args(["--clickhouse-database", database])
        .arg("--data-dir")
        .arg(dir)
        .args(["--otlp-http-addr", &format!("127.0.0.1:{http_port}")])
        .args(["--otlp-grpc-addr", &format!("127.0.0.1:{grpc_port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(cluster) = cluster {
        command.args(["--clickhouse-cluster", cluster]);
    }
    let child = command.spawn().unwrap();
    let base = format!("http://127.0.0.1:{http_port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{base}/readyz")).await.is_err() {
        assert!(Instant::now() < deadline, "the collector did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, base)
}

/// Posts every body, client `c` of `clients` to collector `c % n`, until
/// each is acknowledged; then waits until `count` holds every span.
async fn run(
    what: &str,
    bodies: &Arc<Vec<Vec<u8>>>,
    clients: usize,
    targets: &[(String, Option<String>)],
    database: &str,
    clickhouse_pids: &[u32],
) -> Run {
    let dirs: Vec<tempfile::TempDir> = targets
        .iter()
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let mut children = Vec::new();
    let mut bases = Vec::new();
    for ((url, cluster), dir) in targets.iter().zip(&dirs) {
        let (child, base) = collector(url, database, cluster.as_deref(), dir.path()).await;
        children.push(child);
        bases.push(base);
    }
    let counter = {
        let (url, cluster) = &targets[0];
        let store = support::store(url, database);
        match cluster {
            Some(cluster) => store.on_cluster(cluster),
            None => store,
        }
    };
    let total = (bodies.len() * SPANS_PER_REQUEST) as u64;
    let cpu = |pids: &[u32]| pids.iter().map(|p| cpu_secs(*p)).sum::<f64>();
    let collector_pids: Vec<u32> = children.iter().map(Child::id).collect();
    let (collectors_before, clickhouse_before) = (cpu(&collector_pids), cpu(clickhouse_pids));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let endpoint = format!("{}/v1/traces", bases[c % bases.len()]);
        let (client, bodies) = (client.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            for n in (c..bodies.len()).step_by(clients) {
                loop {
                    let r = client
                        .post(&endpoint)
                        .header("content-type", "application/x-protobuf")
                        .body(bodies[n].clone())
                        .send()
                        .await
                        .unwrap();
                    let status = r.status();
                    if status == 429 || status == 503 {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
                    break;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let n = counter
            .row_count("spans_v2", Rows::AsWritten)
            .await
            .unwrap();
        if n >= total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {total} spans stored after 15 min"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let figures = Run {
        what: what.to_string(),
        secs,
        collectors_cpu: cpu(&collector_pids) - collectors_before,
        clickhouse_cpu: cpu(clickhouse_pids) - clickhouse_before,
    };
    for mut child in children {
        support::stop(&mut child, Duration::from_secs(30));
    }
    figures
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cluster = std::env::var("THROUGHLINE_TEST_CLUSTER")
        .expect("run under scripts/with-cluster.sh (make bench-cluster does)");
    let urls: Vec<String> = std::env::var("THROUGHLINE_TEST_CLUSTER_URLS")
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    let pids: Vec<u32> = std::env::var("THROUGHLINE_TEST_CLUSTER_PIDS")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    let spans = env_or("BENCH_SPANS", 500_000usize);
    let clients = env_or("BENCH_CLIENTS", 8usize);
    let requests = spans.div_ceil(SPANS_PER_REQUEST);
    let total = requests * SPANS_PER_REQUEST;
    let bodies: Arc<Vec<Vec<u8>>> =
        Arc::new((0..requests).map(|n| request(n).encode_to_vec()).collect());
    let pid = std::process::id();

    let single = |name: &str| support::store(&urls[0], &format!("bench_{name}_{pid}"));
    let mut runs = Vec::new();
    for (name, collectors) in [("one", 1), ("two", 2)] {
        let db: Store = single(name);
        db.migrate().await.unwrap();
        let database = db.config().database.clone();
        let targets = vec![(urls[0].clone(), None); collectors];
        let what = format!("{collectors} collector(s) -> 1 server");
        runs.push(
            run(
                &what,
                &bodies,
                clients,
                &targets,
                &database,
                &pids[..1.min(pids.len())],
            )
            .await,
        );
        db.drop_database().await.unwrap();
    }
    let database = format!("bench_cluster_{pid}");
    let on_cluster = support::store(&urls[0], &database).on_cluster(&cluster);
    on_cluster.migrate().await.unwrap();
    let targets: Vec<(String, Option<String>)> = urls
        .iter()
        .map(|u| (u.clone(), Some(cluster.clone())))
        .collect();
    runs.push(
        run(
            "2 collectors -> 2 shards",
            &bodies,
            clients,
            &targets,
            &database,
            &pids,
        )
        .await,
    );
    for url in &urls {
        support::store(url, &database)
            .drop_database()
            .await
            .unwrap();
    }

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nmachine: {cpus} cores; {total} spans ({requests} requests of {SPANS_PER_REQUEST}), {clients} clients, no tokens\n"
    );
    println!("| run | spans/s end to end | wall | collectors' CPU | ClickHouse CPU | spans per ClickHouse CPU-second |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for r in &runs {
        println!(
            "| {} | {:.0} | {:.1} s | {:.1} s | {:.1} s | {:.0} |",
            r.what,
            total as f64 / r.secs,
            r.secs,
            r.collectors_cpu,
            r.clickhouse_cpu,
            total as f64 / r.clickhouse_cpu.max(0.001),
        );
    }
}
