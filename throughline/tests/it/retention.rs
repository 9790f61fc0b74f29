//! Retention (issue 17): one pass drops what is past its class's limit,
//! the key index with its spans, and keeps the younger classes; the disk
//! guard drops the oldest partitions first; `/api/v1/storage` shows what
//! `system.parts` holds (read through `store::inspect`).

use std::time::Duration;

use domain::model::{Batch, BusinessKey, Outcome};
use engine::retention::{pass, RetentionMetrics};
use store::retention::{Reason, Retention};
use store::Store;

use crate::harness::{bare_span, store, TestApp, TestConfig};

const DAY_NS: u64 = 86_400 * 1_000_000_000;

fn order(value: &str) -> BusinessKey {
    BusinessKey {
        key_type: "order".into(),
        value: value.into(),
    }
}

fn keyed_span(trace: &str, key: &str, start_ns: u64) -> domain::model::Span {
    let mut span = bare_span(trace, "00000000000000a1", "erp", "post", start_ns);
    span.keys = vec![order(key)];
    span
}

fn keyed_event(id: &str, key: &str, time_ns: u64) -> domain::model::Event {
    domain::model::Event {
        source: "urn:mes".into(),
        id: id.into(),
        system: "mes".into(),
        event_type: "mes.work_order.completed".into(),
        subject: String::new(),
        time_ns,
        time_missing: false,
        received_ns: time_ns,
        outcome: Outcome::Ok,
        attempt: 0,
        trace_id: None,
        span_id: None,
        correlation_id: String::new(),
        causation_id: String::new(),
        data: String::new(),
        data_content_type: String::new(),
        attributes: Vec::new(),
        keys: vec![order(key)],
        origin: domain::model::EventOrigin::CloudEvent,
    }
}

fn instance(root: &str, start_ns: u64) -> domain::instance::InstanceRecord {
    domain::instance::InstanceRecord {
        process_id: "order-to-delivery".into(),
        root_value: root.into(),
        start_ns,
        last_ns: start_ns,
        status: domain::instance::Status::InFlight,
        current_stage: "captured".into(),
        stages: domain::instance::StageTimes {
            ids: vec!["captured".into()],
            times: vec![start_ns],
        },
        failed: false,
        open_breaches: 0,
        updated_ns: start_ns,
        plant: String::new(),
    }
}

fn step(root: &str, time_ns: u64) -> domain::feed::Step {
    domain::feed::Step {
        process_id: "order-to-delivery".into(),
        root_value: root.into(),
        stage_id: "captured".into(),
        record_ref: format!("event:{root}"),
        time_ns,
        failed: false,
        via: order(root),
        written_ns: time_ns,
        plant: String::new(),
    }
}

fn breach(root: &str, due_ns: u64) -> domain::instance::Breach {
    domain::instance::Breach {
        process_id: "order-to-delivery".into(),
        sla_id: "ship-in-a-day".into(),
        root_value: root.into(),
        from_ns: due_ns - DAY_NS,
        due_ns,
        to_ns: 0,
        late_ns: 0,
        state: domain::instance::BreachState::Open,
        updated_ns: due_ns,
        plant: String::new(),
    }
}

/// Spans, events (with their key index) and instances with their steps,
/// dated 20 days back and now.
async fn twenty_days_and_today(store: &Store, now_ns: u64) -> u64 {
    let old = now_ns - 20 * DAY_NS;
    store
        .write_batch(&Batch {
            spans: vec![
                keyed_span("0000000000000000000000000000000a", "O-OLD", old),
                keyed_span("0000000000000000000000000000000b", "O-NEW", now_ns),
            ],
            logs: Vec::new(),
            events: vec![
                keyed_event("e-old", "O-OLD", old),
                keyed_event("e-new", "O-NEW", now_ns),
            ],
        })
        .await
        .unwrap();
    store
        .write_instances(&[instance("O-OLD", old), instance("O-NEW", now_ns)])
        .await
        .unwrap();
    store
        .write_steps(&[step("O-OLD", old), step("O-NEW", now_ns)])
        .await
        .unwrap();
    old
}

/// The partition id of the day of `ns` (`YYYYMMDD`, UTC).
fn day_of(ns: u64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp((ns / 1_000_000_000) as i64)
        .unwrap()
        .date();
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        date.month() as u8,
        date.day()
    )
}

/// The partition ids of `table`.
async fn partitions_of(store: &Store, table: &str) -> Vec<String> {
    store
        .partitions()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.table == table)
        .map(|p| p.partition_id)
        .collect()
}

#[tokio::test]
async fn one_pass_drops_old_spans_with_their_key_index_and_keeps_younger_classes() {
    let store = store().await;
    let now_ns = domain::now_ns();
    let old = twenty_days_and_today(&store, now_ns).await;
    let (old_day, today) = (day_of(old), day_of(now_ns));
    assert_eq!(
        partitions_of(&store, "key_index_v2").await,
        vec![old_day.clone(), today.clone()]
    );

    let retention = Retention {
        spans: Some(Duration::from_secs(14 * 86_400)),
        ..Retention::default()
    };
    let metrics = RetentionMetrics::default();
    let plan = pass(&store, &retention, &metrics, now_ns / 1_000_000_000)
        .await
        .unwrap();
    assert!(
        plan.drops.iter().all(|d| d.reason == Reason::Age),
        "{plan:?}"
    );

    // The old spans and their key-index rows are gone, the recent stay.
    let spans = store.spans_between(0, now_ns + DAY_NS).await.unwrap();
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].start_ns, now_ns);
    assert_eq!(partitions_of(&store, "spans_v2").await, vec![today.clone()]);
    assert_eq!(
        partitions_of(&store, "key_index_v2").await,
        vec![today.clone()]
    );
    assert_eq!(metrics.dropped("spans_v2"), 1);
    assert_eq!(metrics.dropped("key_index_v2"), 1);

    // Events (90 d), rollups (90 d), steps and instances (400 d) stay.
    let events = store.events_in(0, now_ns + DAY_NS).await.unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        partitions_of(&store, "events").await,
        vec![old_day.clone(), today.clone()]
    );
    assert_eq!(
        partitions_of(&store, "span_minutes").await,
        vec![old_day.clone(), today.clone()]
    );
    use store::inspect::Rows;
    assert_eq!(
        store
            .row_count("process_steps", Rows::Distinct)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .row_count("process_instances", Rows::Distinct)
            .await
            .unwrap(),
        2
    );

    // A second pass finds nothing more to drop.
    let again = pass(&store, &retention, &metrics, now_ns / 1_000_000_000)
        .await
        .unwrap();
    assert!(again.drops.is_empty(), "{again:?}");
    store.drop_database().await.unwrap();
}

/// Instances (by their start) and breaches (by their due time) are kept
/// for the instances class: those of a month wholly past it go in one pass
/// with their steps, the recent stay. An instance whose start moved to
/// another month reads once, as last written.
#[tokio::test]
async fn one_pass_drops_instances_and_breaches_past_the_instances_class() {
    let store = store().await;
    let now_ns = domain::now_ns();
    let long_ago = now_ns - 500 * DAY_NS;
    let mut moved = instance("O-MOVED", now_ns);
    moved.updated_ns = now_ns;
    store
        .write_instances(&[
            instance("O-ANCIENT", long_ago),
            instance("O-RECENT", now_ns),
            moved.clone(),
        ])
        .await
        .unwrap();
    // A stage that arrived late moves O-MOVED's start 40 days back.
    moved.start_ns = now_ns - 40 * DAY_NS;
    moved.updated_ns = now_ns + 1;
    store.write_instances(&[moved.clone()]).await.unwrap();
    store
        .write_breaches(&[breach("O-ANCIENT", long_ago), breach("O-RECENT", now_ns)])
        .await
        .unwrap();
    store
        .write_steps(&[step("O-ANCIENT", long_ago), step("O-RECENT", now_ns)])
        .await
        .unwrap();
    let roots: Vec<(String, String)> = ["O-ANCIENT", "O-RECENT", "O-MOVED"]
        .iter()
        .map(|r| ("order-to-delivery".to_string(), r.to_string()))
        .collect();
    let instances = store.instances_of(&roots).await.unwrap();
    assert_eq!(instances.len(), 3, "{instances:?}");
    let read_moved = instances
        .iter()
        .find(|i| i.root_value == "O-MOVED")
        .unwrap();
    assert_eq!(read_moved.start_ns, moved.start_ns, "the row written last");
    assert_eq!(store.breaches_of(&roots).await.unwrap().len(), 2);
    let month = |ns: u64| day_of(ns)[..6].to_string();
    assert!(
        partitions_of(&store, "process_instances")
            .await
            .contains(&month(long_ago)),
        "instances are partitioned by the month of their start"
    );
    assert_eq!(
        partitions_of(&store, "breaches").await,
        vec![month(long_ago), month(now_ns)]
    );

    let metrics = RetentionMetrics::default();
    let plan = pass(
        &store,
        &Retention::default(),
        &metrics,
        now_ns / 1_000_000_000,
    )
    .await
    .unwrap();
    assert!(
        plan.drops.iter().all(|d| d.reason == Reason::Age),
        "{plan:?}"
    );
    let instances = store.instances_of(&roots).await.unwrap();
    let mut left: Vec<&str> = instances.iter().map(|i| i.root_value.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, vec!["O-MOVED", "O-RECENT"]);
    let breaches = store.breaches_of(&roots).await.unwrap();
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert_eq!(breaches[0].root_value, "O-RECENT");
    assert_eq!(partitions_of(&store, "breaches").await, vec![month(now_ns)]);
    assert!(!partitions_of(&store, "process_instances")
        .await
        .contains(&month(long_ago)));
    assert!(!partitions_of(&store, "process_steps")
        .await
        .contains(&month(long_ago)));
    assert_eq!(metrics.dropped("process_instances"), 1);
    assert_eq!(metrics.dropped("breaches"), 1);
    assert_eq!(metrics.dropped("process_steps"), 1);
    store.drop_database().await.unwrap();
}

#[tokio::test]
async fn the_disk_guard_drops_the_oldest_partitions_first_and_never_today() {
    let store = store().await;
    let now_ns = domain::now_ns();
    let old = twenty_days_and_today(&store, now_ns).await;
    let (old_day, today) = (day_of(old), day_of(now_ns));
    let before = store.partitions().await.unwrap();
    let total: u64 = before.iter().map(|p| p.bytes).sum();

    // Nothing is old enough for its class; the database is a byte too big.
    let retention = Retention {
        max_disk: Some(total - 1),
        ..Retention::FOREVER
    };
    let metrics = RetentionMetrics::default();
    let plan = pass(&store, &retention, &metrics, now_ns / 1_000_000_000)
        .await
        .unwrap();
    assert!(!plan.drops.is_empty(), "{plan:?}");
    assert!(!plan.still_over, "{plan:?}");
    for drop in &plan.drops {
        assert_eq!(drop.reason, Reason::Disk, "{drop:?}");
        assert_eq!(drop.partition_id, old_day, "the oldest first: {drop:?}");
        assert_eq!(metrics.dropped(&drop.table), 1);
    }
    let after = store.partitions().await.unwrap();
    assert!(
        after.iter().map(|p| p.bytes).sum::<u64>() < total,
        "{after:?}"
    );
    // Today's partitions all stay.
    for p in before.iter().filter(|p| p.partition_id == today) {
        assert!(
            after
                .iter()
                .any(|a| a.table == p.table && a.partition_id == today),
            "{} lost today's partition",
            p.table
        );
    }

    // Below what today's data needs: every old partition goes, today's stay.
    let tight = Retention {
        max_disk: Some(1),
        ..Retention::FOREVER
    };
    let plan = pass(&store, &tight, &metrics, now_ns / 1_000_000_000)
        .await
        .unwrap();
    assert!(plan.still_over, "{plan:?}");
    let left = store.partitions().await.unwrap();
    assert!(
        left.iter().all(|p| p.partition_id != old_day),
        "no old day partition is left: {left:?}"
    );
    assert_eq!(
        store.spans_between(0, now_ns + DAY_NS).await.unwrap().len(),
        1
    );
    store.drop_database().await.unwrap();
}

#[tokio::test]
async fn the_storage_api_and_admin_page_show_what_system_parts_holds() {
    let app = TestApp::with(TestConfig::default()).await;
    let now_ns = domain::now_ns();
    twenty_days_and_today(&app.store, now_ns).await;

    // Parts merge in the background: compare against a moment when
    // `system.parts` held still around the request.
    let (body, sizes) = loop {
        let before = app.store.table_sizes().await.unwrap();
        let (status, body) = app.get("/api/v1/storage").await;
        assert_eq!(status, 200, "{body}");
        if app.store.table_sizes().await.unwrap() == before {
            break (body, before);
        }
    };
    assert_eq!(
        body["clickhouse_version"],
        app.store.server_version().await.unwrap().text
    );
    let tables = body["tables"].as_array().unwrap();
    assert_eq!(tables.len(), sizes.len(), "{body}");
    for (shown, size) in tables.iter().zip(&sizes) {
        assert_eq!(shown["table"], size.table);
        assert_eq!(shown["rows"], size.rows, "{}", size.table);
        assert_eq!(shown["bytes"], size.bytes, "{}", size.table);
        assert_eq!(shown["parts"], size.parts, "{}", size.table);
        assert_eq!(shown["oldest_partition"], size.oldest_partition);
        assert_eq!(shown["newest_partition"], size.newest_partition);
        let ratio = size.uncompressed as f64 / size.compressed as f64;
        let shown_ratio = shown["compression_ratio"].as_f64().unwrap();
        assert!(
            (shown_ratio - ratio).abs() < 0.01,
            "{shown_ratio} vs {ratio}"
        );
    }
    assert_eq!(
        body["total_bytes"],
        sizes.iter().map(|s| s.bytes).sum::<u64>()
    );
    let spans = tables.iter().find(|t| t["table"] == "spans_v2").unwrap();
    assert_eq!(spans["retention"]["class"], "spans");
    assert_eq!(spans["retention"]["limit"], "14d");
    let index = tables
        .iter()
        .find(|t| t["table"] == "key_index_v2")
        .unwrap();
    assert_eq!(index["retention"]["limit"], "14d", "capped by the spans");
    let instances = tables
        .iter()
        .find(|t| t["table"] == "process_instances")
        .unwrap();
    assert_eq!(instances["retention"]["class"], "instances");
    assert_eq!(instances["retention"]["limit"], "400d");

    let html = app.page("/admin").await;
    assert!(html.contains("id=\"admin-storage\""), "{html}");
    assert!(html.contains("<code>spans_v2</code>"), "{html}");
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(ready["clickhouse_version"], body["clickhouse_version"]);
    assert!(
        html.contains(body["clickhouse_version"].as_str().unwrap()),
        "the version on /admin"
    );
    app.stop().await;
}

/// The parts of `table`'s partition `id`.
async fn parts_of(store: &Store, table: &str, id: &str) -> u64 {
    store
        .partitions()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.table == table && p.partition_id == id)
        .map_or(0, |p| p.parts)
}

/// A closed day written in several inserts (each a part, one of them a
/// redelivery) is merged into one part per table by the pass after
/// retention (`Store::compact_closed_days`), and answers lookups as before; today is left to ClickHouse;
/// a second pass has nothing to merge.
#[tokio::test]
async fn closed_days_are_merged_into_one_part_and_answer_the_same() {
    let store = store().await;
    let now_ns = domain::now_ns();
    let yesterday = now_ns - DAY_NS;
    let (closed, today) = (day_of(yesterday), day_of(now_ns));
    let spans = [
        keyed_span("0000000000000000000000000000001a", "O-1", yesterday),
        keyed_span("0000000000000000000000000000001b", "O-1", yesterday + 1),
        // Delivered twice.
        keyed_span("0000000000000000000000000000001b", "O-1", yesterday + 1),
        keyed_span("0000000000000000000000000000001c", "O-1", now_ns),
        keyed_span("0000000000000000000000000000001d", "O-1", now_ns + 1),
    ];
    for span in spans {
        store
            .write_batch(&Batch {
                spans: vec![span],
                logs: Vec::new(),
                events: Vec::new(),
            })
            .await
            .unwrap();
    }
    let key = order("O-1");
    let before = store.journey_counts(&[&key]).await.unwrap();
    assert_eq!(before.spans, 4, "{before:?}");
    assert!(parts_of(&store, "key_index_v2", &closed).await > 1);

    let now_s = now_ns / 1_000_000_000;
    let mut merged = Vec::new();
    let done = store
        .compact_closed_days(now_s, 10, |c| {
            merged.push((c.table.clone(), c.partition_id.clone()))
        })
        .await
        .unwrap();
    assert_eq!(done, merged.len());
    for table in ["key_index_v2", "spans_v2"] {
        assert!(
            merged.contains(&(table.to_string(), closed.clone())),
            "{table} {closed}: {merged:?}"
        );
        assert_eq!(parts_of(&store, table, &closed).await, 1, "{table}");
    }
    assert!(
        merged.iter().all(|(_, id)| *id != today),
        "today is not merged: {merged:?}"
    );
    // The redelivery is one row now, and every answer stays.
    assert_eq!(store.journey_counts(&[&key]).await.unwrap(), before);
    let (page, _) = store.journey_page(&[&key], 10, None).await.unwrap();
    assert_eq!(page.len(), 4);

    // Nothing more to merge.
    assert_eq!(
        store.compact_closed_days(now_s, 10, |_| {}).await.unwrap(),
        0
    );
    store.drop_database().await.unwrap();
}
