//! Throughline on a ClickHouse cluster of two shards of two replicas,
//! replicated through ZooKeeper (`scripts/with-replicated-cluster.sh`,
//! which `make test-cluster` runs this group under): migrated with
//! `replicated`, fed through two collectors while one replica is killed
//! (SIGKILL) and started again, nothing acknowledged is lost, reads keep
//! working meanwhile, and the replica catches up. Without the cluster's
//! variables the test says so and passes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use store::{Store, StoreConfig};

use crate::harness::{clickhouse_compression, unique_database, TestApp, TestConfig};

/// The cluster's name, its nodes' HTTP URLs and their directories (shard 1
/// replica 1, shard 1 replica 2, shard 2 replica 1, shard 2 replica 2).
fn replicated_cluster() -> Option<(String, Vec<String>, Vec<PathBuf>)> {
    let name = std::env::var("THROUGHLINE_TEST_REPLICATED_CLUSTER").ok()?;
    let urls = std::env::var("THROUGHLINE_TEST_REPLICATED_URLS").ok()?;
    let dirs = std::env::var("THROUGHLINE_TEST_REPLICATED_DIRS").ok()?;
    Some((
        name,
        urls.split_whitespace().map(String::from).collect(),
        dirs.split_whitespace().map(PathBuf::from).collect(),
    ))
}

/// `sql` on the node at `url`, in `database`: its answer, or why not.
async fn on_node(url: &str, database: &str, sql: &str) -> Result<String, String> {
    let response = reqwest::Client::new()
        .post(format!("{url}/?database={database}"))
        .timeout(Duration::from_secs(10))
        .body(sql.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(text.trim().to_string())
    } else {
        Err(text)
    }
}

/// Waits (at most `limit`) until `done` answers `Some`, else panics with
/// `what` and the last answer.
async fn within<T, F, Fut>(limit: Duration, what: &str, mut done: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match done().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() > limit => {
                panic!("{what} not within {limit:?}: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

const BATCHES: u64 = 24;
const SPANS_PER_BATCH: u64 = 40;

/// Batch `b`: `SPANS_PER_BATCH` spans of traces of their own, and two
/// events.
fn batch(b: u64, now: u64) -> (serde_json::Value, serde_json::Value) {
    let spans: Vec<serde_json::Value> = (0..SPANS_PER_BATCH)
        .map(|s| {
            let n = b * SPANS_PER_BATCH + s;
            let start = now - 60_000_000_000 + n * 1000;
            serde_json::json!({
                "traceId": format!("{:032x}", 0x7e00_0000 + n),
                "spanId": format!("{:016x}", 0x5e00_0000 + n),
                "name": "plant.step",
                "kind": 2,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + 500).to_string(),
                "attributes": [{"key": "order.id", "value": {"stringValue": format!("O-{n}")}}],
            })
        })
        .collect();
    let spans = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "mes"}}]},
        "scopeSpans": [{"spans": spans}],
    }]});
    let events: Vec<serde_json::Value> = (0..2)
        .map(|e| {
            serde_json::json!({
                "specversion": "1.0", "id": format!("ev-{b}-{e}"), "source": "urn:test:erp",
                "type": "erp.order.confirmed", "system": "erp",
                "time": domain::time::rfc3339(now - 30_000_000_000),
                "orderid": format!("O-{}", b * SPANS_PER_BATCH + e),
            })
        })
        .collect();
    (spans, serde_json::Value::Array(events))
}

/// Posts `body` until the collector acknowledges it (200), as a connector
/// retries; at most 60 s.
async fn deliver(app: &TestApp, path: &str, content_type: &str, body: &serde_json::Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    within(Duration::from_secs(60), path, || async {
        let response = app.post(path, content_type, &[], bytes.clone()).await;
        match response.status().as_u16() {
            200 => Ok(()),
            status => Err(format!(
                "{status}: {}",
                response.text().await.unwrap_or_default()
            )),
        }
    })
    .await
}

fn kill(pid_file: &std::path::Path, signal: &str) {
    let pid = std::fs::read_to_string(pid_file).unwrap();
    let status = std::process::Command::new("kill")
        .args([signal, pid.trim()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_loses_nothing_acknowledged_and_catches_up() {
    let Some((name, urls, dirs)) = replicated_cluster() else {
        eprintln!("no replicated cluster (run under scripts/with-replicated-cluster.sh); skipped");
        return;
    };
    assert_eq!((urls.len(), dirs.len()), (4, 4), "{urls:?} {dirs:?}");
    let database = unique_database();
    let on = |url: &str| {
        Store::new(StoreConfig {
            url: url.to_string(),
            database: database.clone(),
            user: None,
            password: None,
            timeouts: Default::default(),
            compression: clickhouse_compression(),
        })
        .on_cluster(&name)
        .replicated()
    };
    let db = database.as_str();

    // Migrated from one node: every node has its replicas of the local
    // tables and its own record; from another node nothing is left to do.
    let report = on(&urls[0]).migrate().await.unwrap();
    assert_eq!(report.applied.len(), store::migrate::MIGRATIONS.len());
    let report = on(&urls[2]).migrate().await.unwrap();
    assert!(report.applied.is_empty(), "{report:?}");
    for url in &urls {
        let engines = on_node(
            url,
            db,
            "SELECT engine FROM system.tables WHERE database = currentDatabase() \
             AND name IN ('spans_v2', 'spans_v2_local') ORDER BY engine",
        )
        .await
        .unwrap();
        assert_eq!(
            engines, "Distributed\nReplicatedReplacingMergeTree",
            "{url}"
        );
        let migrations = on_node(url, db, "SELECT count() FROM schema_migrations")
            .await
            .unwrap();
        assert_eq!(
            migrations,
            store::migrate::MIGRATIONS.len().to_string(),
            "{url}"
        );
    }
    // An ALTER ran once per shard, and reached both replicas.
    for url in &urls {
        let dropped = on_node(
            url,
            db,
            "SELECT count() FROM system.columns WHERE database = currentDatabase() \
             AND table = 'key_index_v2_local' AND name = 'record_key_types'",
        )
        .await
        .unwrap();
        assert_eq!(dropped, "0", "{url}");
    }

    // Two collectors, on the first replica of each shard; the second
    // replica of shard 1 is the one killed.
    let app = |url: &str| {
        TestApp::with(TestConfig {
            store: Some(on(url)),
            ..Default::default()
        })
    };
    let a = app(&urls[0]).await;
    let b = app(&urls[2]).await;
    let (victim, sibling) = (&urls[1], &urls[0]);
    let now = domain::now_ns();

    // A batch retried through the other collector (which did not store it,
    // so it writes it all again): the same rows make the same blocks on the
    // same shards, which the replicated tables' insert deduplication drops,
    // so the rows are there once even before any merge.
    let (retried, _) = batch(BATCHES, now);
    for app in [&a, &b] {
        deliver(app, "/v1/traces", "application/json", &retried).await;
        app.settled().await;
    }
    let rows = on_node(&urls[0], db, "SELECT count() FROM spans_v2")
        .await
        .unwrap();
    assert_eq!(rows, SPANS_PER_BATCH.to_string());
    let mut down = false;
    for n in 0..BATCHES {
        if n == BATCHES / 3 {
            kill(&dirs[1].join("server.pid"), "-KILL");
            down = true;
        }
        if n == 2 * BATCHES / 3 {
            // While it is down: the cluster reads, and a migration is
            // refused before it changes any node, naming the node.
            let whole = on_node(&urls[2], db, "SELECT count() FROM spans_v2")
                .await
                .unwrap();
            assert!(whole.parse::<u64>().unwrap() > 0, "{whole}");
            let (status, body) = a.get("/api/v1/keys/order/O-1").await;
            assert_eq!(status, 200, "{body}");
            let (status, body) = a.get("/readyz").await;
            assert_eq!(
                (status, body["status"].as_str()),
                (200, Some("degraded")),
                "{body}"
            );
            assert_eq!(body["nodes"][1]["status"], "down", "{body}");
            let err = on(&urls[0]).migrate().await.unwrap_err();
            assert!(err.to_string().contains(victim.as_str()), "{err}");
            let started = std::process::Command::new(dirs[1].join("start.sh"))
                .spawn()
                .unwrap();
            drop(started);
            down = false;
        }
        let (spans, events) = batch(n, now);
        let app = if n % 2 == 0 { &a } else { &b };
        deliver(app, "/v1/traces", "application/json", &spans).await;
        deliver(
            app,
            "/v1/events",
            "application/cloudevents-batch+json",
            &events,
        )
        .await;
    }
    assert!(!down);
    within(
        Duration::from_secs(30),
        "the killed replica answers",
        || on_node(victim, "default", "SELECT 1"),
    )
    .await;

    // Every acknowledged span and event reads exactly once through the
    // Distributed tables (once the spools have drained).
    let spans = (BATCHES + 1) * SPANS_PER_BATCH;
    let events = BATCHES * 2;
    for (table, expected, unique) in [
        ("spans_v2", spans, "trace_id, span_id"),
        ("events", events, "source, event_id"),
    ] {
        let sql = format!("SELECT count(), uniqExact({unique}) FROM {table} FINAL");
        within(Duration::from_secs(60), table, || async {
            let answer = on_node(&urls[0], db, &sql).await?;
            if answer == format!("{expected}\t{expected}") {
                Ok(())
            } else {
                Err(answer)
            }
        })
        .await;
    }
    // The replica caught up: its local tables hold what its sibling's do.
    for table in ["spans_v2_local", "events_local", "key_index_v2_local"] {
        let sql = format!("SELECT count() FROM {table} FINAL");
        within(Duration::from_secs(60), table, || async {
            let (mine, theirs) = (
                on_node(victim, db, &sql).await?,
                on_node(sibling, db, &sql).await?,
            );
            if mine == theirs && mine != "0" {
                Ok(())
            } else {
                Err(format!("killed replica {mine}, its sibling {theirs}"))
            }
        })
        .await;
    }
    // And a migration runs again once every node answers.
    let report = on(&urls[1]).migrate().await.unwrap();
    assert!(report.applied.is_empty(), "{report:?}");

    for app in [a, b] {
        app.stop().await;
    }
    for url in &urls {
        on_node(url, "default", &format!("DROP DATABASE IF EXISTS {db}"))
            .await
            .unwrap();
    }
}
