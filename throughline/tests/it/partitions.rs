//! Two correlators sharing the instances (`--correlator-partition 0/2` and
//! `1/2`) on one ClickHouse give the instances, breaches and process pages
//! one correlator gives on the same data, and each writes only its share.

use std::sync::Arc;
use std::time::Duration;

use domain::process::Processes;
use engine::correlator::{Correlator, CorrelatorSettings, Partition};
use engine::metrics::CorrelatorMetrics;
use serde_json::Value;
use store::{Store, StoreConfig};
use throughline::config::KeysArgs;

use crate::cluster::{page_without_now, without_now};
use crate::demo::{demo_config, plant_on, run_demo, PROCESSES};
use crate::harness::{clickhouse_compression, clickhouse_url, unique_database, TestApp};

/// What the correlator reads, copied from one database to another: the
/// same records and links, nothing correlated yet.
const INPUTS: &[&str] = &["correlation_feed_v2", "key_links_v2", "key_index_v2"];

async fn migrated(database: &str) -> Store {
    let store = Store::new(StoreConfig {
        url: clickhouse_url(),
        database: database.to_string(),
        user: None,
        password: None,
        timeouts: Default::default(),
        compression: clickhouse_compression(),
    });
    store.migrate().await.unwrap();
    store
}

async fn sql(text: &str) {
    let response = reqwest::Client::new()
        .post(clickhouse_url())
        .body(text.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(
        status.is_success(),
        "{text}: {}",
        response.text().await.unwrap()
    );
}

/// A correlator of `partition` over the demo's processes, cycled at `now`
/// until the feed is read.
async fn correlate(app: &TestApp, partition: Partition, now: u64) -> Arc<CorrelatorMetrics> {
    let keys = Arc::new(demo_config().get::<KeysArgs>().unwrap().settings().unwrap());
    let processes = Arc::new(Processes {
        list: PROCESSES
            .iter()
            .map(|p| Processes::parse(p, "p.toml", &keys).unwrap())
            .collect(),
        ..Default::default()
    });
    let metrics = Arc::new(CorrelatorMetrics::default());
    let settings = CorrelatorSettings {
        settle: Duration::ZERO,
        partition,
        ..Default::default()
    };
    let mut c = Correlator::new(
        app.store.clone(),
        processes,
        keys,
        settings,
        metrics.clone(),
    )
    .await
    .unwrap();
    while c.cycle(now).await.unwrap().records > 0 {}
    metrics
}

/// Every instance of every process, as the API lists them (pages of 1000).
async fn instances(app: &TestApp, range: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for id in ["order-to-delivery", "quality-hold", "production-delay"] {
        let mut cursor = String::new();
        loop {
            let (status, page) = app
                .get(&format!(
                    "/api/v1/processes/{id}/instances?{range}&limit=1000{cursor}"
                ))
                .await;
            assert_eq!(status, 200, "{page}");
            out.extend(
                page["instances"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .cloned()
                    .map(without_now),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
    }
    out
}

/// The API bodies and pages the comparison reads.
async fn answers(app: &TestApp, range: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for path in [
        format!("/api/v1/processes?{range}"),
        format!("/api/v1/processes/order-to-delivery?{range}"),
        format!("/api/v1/processes/quality-hold?{range}"),
        format!("/api/v1/breaches?{range}&limit=1000"),
        format!("/api/v1/breaches?{range}&open=true&limit=1000"),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        out.push((path, without_now(body).to_string()));
    }
    // (Not the overview: its systems come from the spans and events,
    // which only the first database holds.)
    for path in [
        format!("/processes/order-to-delivery?{range}"),
        format!("/processes/production-delay?{range}"),
        format!("/breaches?{range}"),
    ] {
        out.push((path.clone(), page_without_now(&app.page(&path).await)));
    }
    out
}

fn root(instance: &Value) -> &str {
    instance["key"]["value"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_partitions_correlate_as_one_correlator_each_writing_its_share() {
    let (one_db, two_db) = (unique_database(), unique_database());
    let one = plant_on(Some(migrated(&one_db).await)).await;
    let two = plant_on(Some(migrated(&two_db).await)).await;
    run_demo(&one, 7).await;
    one.settled().await;
    for table in INPUTS {
        sql(&format!(
            "INSERT INTO {two_db}.{table} SELECT * FROM {one_db}.{table}"
        ))
        .await;
    }
    // One time for every cycle, a little ahead: both setups judge every SLA
    // at the same moment.
    let now = domain::now_ns() + 120_000_000_000;
    // A fixed range: the bodies repeat it.
    let to = domain::now_ns();
    let range = &format!(
        "from={}&to={}",
        domain::time::rfc3339(to - 3 * 86_400_000_000_000),
        domain::time::rfc3339(to)
    );

    correlate(&one, Partition::WHOLE, now).await;
    let whole = instances(&one, range).await;
    assert!(whole.len() > 100, "{}", whole.len());

    // Partition 0 alone: exactly the instances whose root it owns.
    let (first, second) = (Partition::new(0, 2).unwrap(), Partition::new(1, 2).unwrap());
    correlate(&two, first, now).await;
    let mine: Vec<&Value> = whole.iter().filter(|i| first.owns(root(i))).collect();
    let written = instances(&two, range).await;
    assert!(!mine.is_empty() && mine.len() < whole.len());
    assert_eq!(written.iter().collect::<Vec<_>>(), mine);

    // Then partition 1: the rest; and partition 0's next cycle (a restart
    // here, from its own watermark) counts the open breaches of both.
    correlate(&two, second, now).await;
    let metrics = correlate(&two, first, now).await;
    assert_eq!(instances(&two, range).await, whole);
    let (a, b) = (answers(&one, range).await, answers(&two, range).await);
    for ((path, x), (_, y)) in a.iter().zip(&b) {
        let at = x.bytes().zip(y.bytes()).take_while(|(p, q)| p == q).count();
        let around = |t: &str| {
            t.get(at.saturating_sub(300)..(at + 200).min(t.len()))
                .unwrap_or("")
                .to_string()
        };
        assert!(
            x == y,
            "{path}: one correlator\n{}\ntwo\n{}",
            around(x),
            around(y)
        );
    }
    // Each partition's lag shows, from the stored watermarks.
    let mut text = String::new();
    metrics.render_technical(&mut text);
    for p in ["0/2", "1/2"] {
        assert!(
            text.contains(&format!(
                "throughline_correlator_lag_seconds{{partition=\"{p}\"}}"
            )),
            "{text}"
        );
    }
}

/// Why: a partition that went away showed only as a growing lag on the
/// other partitions' `/metrics`; readiness and `/admin` now say it, from
/// each partition's watermark row (its heartbeat), and the correlators
/// publish `throughline_correlator_partition_up`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_or_missing_partition_degrades_readiness_and_shows_down() {
    let app = TestApp::start().await;
    // One correlator for all (or none yet): no partitions to list.
    let (status, body) = app.get("/readyz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ready")),
        "{body}"
    );
    assert!(body.get("correlator_partitions").is_none(), "{body}");

    // Partition 0 of 2 runs; partition 1 never started.
    let (first, second) = (Partition::new(0, 2).unwrap(), Partition::new(1, 2).unwrap());
    let now = domain::now_ns();
    correlate(&app, first, now).await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("degraded")),
        "{body}"
    );
    assert_eq!(
        body["correlator_partitions"],
        serde_json::json!([
            { "partition": "0/2", "status": "up" },
            { "partition": "1/2", "status": "down" },
        ])
    );
    assert!(
        body["reason"].as_str().unwrap().contains("partition 1/2"),
        "{body}"
    );
    let admin = app.page("/admin").await;
    assert!(
        admin.contains("id=\"admin-partitions\"") && admin.contains("never (not started)"),
        "{admin}"
    );

    // Both run: ready, and each one's gauge says so.
    let metrics = correlate(&app, second, now).await;
    let (_, body) = app.get("/readyz").await;
    assert_eq!(body["status"], "ready", "{body}");
    let mut text = String::new();
    metrics.render_technical(&mut text);
    for p in ["0/2", "1/2"] {
        let line = format!("throughline_correlator_partition_up{{partition=\"{p}\"}} 1");
        assert!(text.contains(&line), "{text}");
    }

    // Three minutes on, partition 1 has written nothing since: partition
    // 0's next cycle publishes it down.
    let later = now + 180 * 1_000_000_000;
    let metrics = correlate(&app, first, later).await;
    let mut text = String::new();
    metrics.render_technical(&mut text);
    assert!(
        text.contains("throughline_correlator_partition_up{partition=\"1/2\"} 0")
            && text.contains("throughline_correlator_partition_up{partition=\"0/2\"} 1"),
        "{text}"
    );
    app.stop().await;
}
