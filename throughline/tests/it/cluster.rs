//! Throughline on a ClickHouse cluster of two shards without ZooKeeper
//! (`scripts/with-cluster.sh`, which `make test` runs this group under):
//! migrated through Throughline, fed through two collectors, correlated,
//! and read through the API and the pages, it answers as one server does
//! on the same data, with the data spread over both shards. Without the
//! cluster's variables the test says so and passes.

use serde_json::Value;
use store::{Store, StoreConfig};

use crate::harness::{clickhouse_compression, store, unique_database, TestApp, TestConfig};
use crate::keys::{hub_batch, post};
use crate::processes::{correlator, send, MIN, ORDER_TO_DELIVERY};

/// The cluster's name and its nodes' HTTP URLs, from `with-cluster.sh`.
fn cluster() -> Option<(String, Vec<String>)> {
    let name = std::env::var("THROUGHLINE_TEST_CLUSTER").ok()?;
    let urls = std::env::var("THROUGHLINE_TEST_CLUSTER_URLS").ok()?;
    Some((name, urls.split_whitespace().map(String::from).collect()))
}

/// `sql` on the node at `url`, in `database`, as text.
async fn on_node(url: &str, database: &str, sql: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{url}/?database={database}"))
        .body(sql.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{sql}: {text}");
    text.trim().to_string()
}

fn app_on(store: Store) -> TestConfig {
    TestConfig {
        store: Some(store),
        processes: vec![ORDER_TO_DELIVERY],
        ..Default::default()
    }
}

/// Eight orders captured two hours ago, the even ones entered in ERP 20
/// minutes later (closed breaches), the odd ones never (open breaches);
/// `apps[i % apps.len()]` takes order `i`.
async fn orders(apps: &[&TestApp], t: u64) {
    for i in 0..8u64 {
        let app = apps[i as usize % apps.len()];
        let order = format!("SO-{i}");
        let keys = [("orderid", order.as_str()), ("customerid", "ACME")];
        send(
            app,
            &format!("c-{i}"),
            "crm",
            "crm.order.created",
            t + i * MIN,
            &keys,
        )
        .await;
        if i % 2 == 0 {
            let at = t + (20 + i) * MIN;
            send(
                app,
                &format!("e-{i}"),
                "erp",
                "erp.sales_order.created",
                at,
                &keys,
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_answer_as_one_server_with_data_on_both() {
    let Some((name, urls)) = cluster() else {
        eprintln!("no cluster (run under scripts/with-cluster.sh); skipped");
        return;
    };
    assert_eq!(urls.len(), 2, "{urls:?}");
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
    };
    let (first, second) = (on(&urls[0]), on(&urls[1]));

    // Migrated from the first node; from the second, nothing is left to do.
    let report = first.migrate().await.unwrap();
    assert_eq!(report.applied.len(), store::migrate::MIGRATIONS.len());
    let report = second.migrate().await.unwrap();
    assert!(report.applied.is_empty(), "{report:?}");
    // A node that joins later (here: one that lost its database) is
    // brought up to date by the next run, whichever node it starts from.
    on_node(&urls[1], "default", &format!("DROP DATABASE {database}")).await;
    let report = first.migrate().await.unwrap();
    assert_eq!(report.applied.len(), store::migrate::MIGRATIONS.len());
    for url in &urls {
        let tables = on_node(
            url,
            &database,
            "SELECT engine, count() FROM system.tables WHERE database = currentDatabase() \
             AND name IN ('spans_v2', 'spans_v2_local', 'process_instances', \
             'process_instances_local', 'process_instances_by_month') \
             GROUP BY engine ORDER BY engine",
        )
        .await;
        assert_eq!(tables, "Distributed\t2\nReplacingMergeTree\t2", "{url}");
        let migrations = on_node(url, &database, "SELECT count() FROM schema_migrations").await;
        assert_eq!(migrations, MIGRATION_COUNT.to_string(), "{url}");
    }

    // A database made for a single server is refused, not half converted.
    let single = store().await;
    let err = Store::new(single.config().clone())
        .on_cluster(&name)
        .migrate()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("was made for a single server"),
        "{err}"
    );
    single.drop_database().await.unwrap();

    // Two collectors (one per node) on the cluster, two on a single server.
    let a = TestApp::with(app_on(first)).await;
    let b = TestApp::with(app_on(second)).await;
    let one = TestApp::with(app_on(store().await)).await;
    let other = TestApp::with(app_on(one.store.clone())).await;
    let now = domain::now_ns();
    let t = now - 120 * MIN;
    orders(&[&a, &b], t).await;
    orders(&[&one, &other], t).await;
    let (spans, events) = hub_batch(now);
    for app in [&a, &one] {
        post(app, "/v1/traces", "application/json", &spans).await;
        post(
            app,
            "/v1/events",
            "application/cloudevents-batch+json",
            &events,
        )
        .await;
    }
    // A connector retrying its batch through the other collector: the same
    // rows reach the same shard, where they collapse. (A collector knows
    // only the spans it stored itself, so the span rollups count a batch
    // redelivered through another collector again, on one server too.)
    for app in [&b, &other] {
        post(app, "/v1/traces", "application/json", &spans).await;
        post(
            app,
            "/v1/events",
            "application/cloudevents-batch+json",
            &events,
        )
        .await;
    }

    // One correlator for the cluster (not partitioned yet), one for the server.
    let report = correlator(&a).await.cycle(domain::now_ns()).await.unwrap();
    let single = correlator(&one)
        .await
        .cycle(domain::now_ns())
        .await
        .unwrap();
    assert_eq!(report.steps_written, single.steps_written);
    assert!(report.steps_written >= 12, "{report:?}");

    let range = format!(
        "from={}&to={}",
        domain::time::rfc3339(now - 7 * 24 * 60 * MIN),
        domain::time::rfc3339(now + 60 * MIN)
    );
    let range = range.replace(':', "%3A").replace('+', "%2B");
    let api = [
        format!("/api/v1/processes?{range}"),
        format!("/api/v1/processes/order-to-delivery?{range}"),
        format!("/api/v1/processes/order-to-delivery/instances?{range}"),
        format!("/api/v1/breaches?{range}"),
        format!("/api/v1/events?{range}"),
        format!("/api/v1/systems?{range}"),
        format!("/api/v1/systems/map?{range}"),
        format!("/api/v1/systems/operations?{range}"),
        "/api/v1/keys/customer/HUB".to_string(),
        "/api/v1/keys/customer/ACME".to_string(),
        "/api/v1/keys/order/SO-2".to_string(),
        format!("/api/v1/traces/{:032x}", 0xab03),
        "/api/v1/search?q=SO-4".to_string(),
        format!("/api/v1/export/ocel?{range}"),
        "/api/v1/alerts".to_string(),
    ];
    let pages = [
        format!("/?{range}"),
        format!("/processes/order-to-delivery?{range}"),
        format!("/breaches?{range}"),
        format!("/systems?{range}"),
        "/keys/customer/HUB".to_string(),
        "/keys/order/SO-1".to_string(),
        format!("/traces/{:032x}", 0xab01),
        "/search?q=HUB".to_string(),
        "/alerts".to_string(),
    ];
    let mut differ = Vec::new();
    for path in &api {
        let (status, single) = one.get(path).await;
        assert_eq!(status, 200, "{path}: {single}");
        for app in [&a, &b] {
            let (status, body) = app.get(path).await;
            assert_eq!(status, 200, "{path}: {body}");
            if without_now(body.clone()) != without_now(single.clone()) {
                differ.push(format!("{path}:\n  cluster {body}\n  server  {single}"));
            }
        }
    }
    for path in &pages {
        let single = page_without_now(&one.page(path).await);
        for app in [&a, &b] {
            let page = page_without_now(&app.page(path).await);
            if let Some((mine, theirs)) = page.lines().zip(single.lines()).find(|(m, t)| m != t) {
                differ.push(format!("{path}:\n  cluster {mine}\n  server  {theirs}"));
            } else if page.lines().count() != single.lines().count() {
                differ.push(format!(
                    "{path}: {} lines, not {}",
                    page.lines().count(),
                    single.lines().count()
                ));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "cluster and server differ:\n{}",
        differ.join("\n")
    );

    // Both shards hold rows of the tables sharded by trace, key and
    // instance; together, each row once.
    for table in ["spans_v2", "key_index_v2", "events", "process_instances"] {
        let mut counts = Vec::new();
        for url in &urls {
            let sql = format!("SELECT count() FROM {table}_local FINAL");
            counts.push(on_node(url, &database, &sql).await.parse::<u64>().unwrap());
        }
        let whole = on_node(
            &urls[0],
            &database,
            &format!("SELECT count() FROM {table} FINAL"),
        )
        .await
        .parse::<u64>()
        .unwrap();
        assert!(counts.iter().all(|c| *c > 0), "{table}: {counts:?}");
        assert_eq!(counts.iter().sum::<u64>(), whole, "{table}");
    }
    for app in [a, b, one, other] {
        app.stop().await;
    }
}

/// Why: retention and the feed's pruning read `system.parts` for the
/// tables' names, which on a cluster are `Distributed` tables with no
/// parts, so they dropped nothing; they now act on every node's local
/// tables, and the storage figures sum the nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_and_feed_pruning_drop_on_every_node() {
    let Some((name, urls)) = cluster() else {
        eprintln!("no cluster (run under scripts/with-cluster.sh); skipped");
        return;
    };
    let database = unique_database();
    let store = Store::new(StoreConfig {
        url: urls[0].clone(),
        database: database.clone(),
        user: None,
        password: None,
        timeouts: Default::default(),
        compression: clickhouse_compression(),
    })
    .on_cluster(&name);
    store.migrate().await.unwrap();
    let now = domain::now_ns();
    let old = now - 20 * 24 * 60 * MIN;
    let spans = (0..32u64)
        .map(|i| {
            let at = if i % 2 == 0 { old } else { now };
            let mut span = crate::harness::bare_span(
                &format!("{:032x}", i + 1),
                "00000000000000aa",
                "crm",
                "op",
                at,
            );
            // A keyed span: it has a feed row.
            span.keys = vec![domain::model::BusinessKey {
                key_type: "order".into(),
                value: format!("O-{i}"),
            }];
            span
        })
        .collect();
    store
        .write_batch(&domain::model::Batch {
            spans,
            logs: Vec::new(),
            events: Vec::new(),
        })
        .await
        .unwrap();
    let local_rows = |url: &str, sql: &str| {
        let (url, sql, database) = (url.to_string(), sql.to_string(), database.clone());
        async move { on_node(&url, &database, &sql).await.parse::<u64>().unwrap() }
    };
    let old_day = "toDate(start_time) < today() - 1";
    for url in &urls {
        let sql = format!("SELECT count() FROM spans_v2_local WHERE {old_day}");
        assert!(local_rows(url, &sql).await > 0, "old spans on {url}");
    }
    let spans_rows: u64 = store
        .partitions()
        .await
        .unwrap()
        .iter()
        .filter(|p| p.table == "spans_v2")
        .map(|p| p.rows)
        .sum();
    assert_eq!(
        spans_rows, 32,
        "summed over the nodes, named as the Distributed table"
    );

    let retention = store::retention::Retention {
        spans: Some(std::time::Duration::from_secs(7 * 86_400)),
        ..store::retention::Retention::FOREVER
    };
    let plan = store
        .retention_pass(&retention, now / 1_000_000_000, |_| {})
        .await
        .unwrap();
    assert!(plan.drops.iter().any(|d| d.table == "spans_v2"), "{plan:?}");
    for url in &urls {
        let sql = format!("SELECT count() FROM spans_v2_local WHERE {old_day}");
        assert_eq!(local_rows(url, &sql).await, 0, "old spans left on {url}");
    }
    let left = local_rows(&urls[0], "SELECT count() FROM spans_v2").await;
    assert_eq!(left, 16, "today's spans stay");

    // Every feed row is read for good an hour from now.
    let dropped = store.prune_feed(now + 60 * MIN).await.unwrap();
    assert!(dropped > 0);
    for url in &urls {
        let rows = local_rows(url, "SELECT count() FROM correlation_feed_v2_local").await;
        assert_eq!(rows, 0, "feed rows left on {url}");
    }
    store.drop_database().await.unwrap();
    on_node(
        &urls[1],
        "default",
        &format!("DROP DATABASE IF EXISTS {database}"),
    )
    .await;
}

/// `value` without the figures that count from now (how late an open
/// breach is, how long a running SLA has left, when it was computed) or
/// from when a collector received an event: the reads are moments apart,
/// and each app received the events itself.
pub(crate) fn without_now(value: Value) -> Value {
    const NOW: [&str; 6] = [
        "late",
        "late_ns",
        "time_left",
        "computed_at",
        "received_time",
        "last_seen_seconds_ago",
    ];
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !NOW.contains(&k.as_str()))
                .map(|(k, v)| (k, without_now(v)))
                .collect(),
        ),
        Value::Array(list) => Value::Array(list.into_iter().map(without_now).collect()),
        other => other,
    }
}

/// `html` with every duration (`1h38m7s583ms`, `5m`) read as `D` and the
/// text of every `<time>` element (`59.0 s ago`, `1 min ago`) as `T`: the
/// pages show how late open breaches are and how long ago things were,
/// counted from now.
pub(crate) fn page_without_now(html: &str) -> String {
    let mut times = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find("<time") {
        let Some(text) = rest[open..].find('>').map(|i| open + i + 1) else {
            break;
        };
        let Some(close) = rest[text..].find("</time>").map(|i| text + i) else {
            break;
        };
        times.push_str(&rest[..text]);
        times.push('T');
        rest = &rest[close..];
    }
    times.push_str(rest);
    durations_as_d(&times)
}

fn durations_as_d(html: &str) -> String {
    let digits_at =
        |text: &str| text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        let digits = digits_at(rest);
        if digits == 0 {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let mut end = digits;
        // A run of number-unit pairs: 1h38m7s583ms.
        while let Some(unit) = ["ms", "h", "m", "s", "d"]
            .iter()
            .find(|u| rest[end..].starts_with(*u))
        {
            end += unit.len();
            let more = digits_at(&rest[end..]);
            if more == 0 {
                break;
            }
            end += more;
        }
        if end > digits {
            out.push('D');
        } else {
            out.push_str(&rest[..digits]);
        }
        rest = &rest[end..];
    }
    out
}

const MIGRATION_COUNT: usize = store::migrate::MIGRATIONS.len();

/// `/readyz` and `/admin` list the cluster's nodes; one that does not
/// answer (the second shard of `<name>_stopped`, which never runs) makes
/// `/readyz` "degraded", still 200, and `/admin` names it and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_admin_show_each_node_and_a_stopped_one_degrades() {
    let Some((name, urls)) = cluster() else {
        eprintln!("no cluster (run under scripts/with-cluster.sh); skipped");
        return;
    };
    let database = unique_database();
    let on = |cluster: &str| {
        Store::new(StoreConfig {
            url: urls[0].clone(),
            database: database.clone(),
            user: None,
            password: None,
            timeouts: Default::default(),
            compression: clickhouse_compression(),
        })
        .on_cluster(cluster)
    };
    on(&name).migrate().await.unwrap();

    let up = TestApp::with(app_on(on(&name))).await;
    let (status, body) = up.get("/readyz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ready")),
        "{body}"
    );
    let statuses: Vec<&str> = body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["up", "up"], "{body}");
    let admin = up.page("/admin").await;
    assert!(
        admin.contains("id=\"admin-nodes\"") && !admin.contains("Down:"),
        "{admin}"
    );

    let stopped = TestApp::with(app_on(on(&format!("{name}_stopped")))).await;
    let (status, body) = stopped.get("/readyz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("degraded")),
        "{body}"
    );
    assert_eq!(body["nodes"][1]["status"], "down", "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("shard 2 replica 1"),
        "{body}"
    );
    let admin = stopped.page("/admin").await;
    assert!(admin.contains("<strong>Down:</strong>"), "{admin}");
    for app in [up, stopped] {
        app.stop().await;
    }
}
