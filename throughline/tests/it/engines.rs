//! What must agree between ClickHouse 18.16 and current releases, which
//! `make test` also runs this binary's store tests on (chDB, through
//! `scripts/with-chdb.sh`). The store reads RowBinary without validation, so
//! a type that is wider on one engine is read a few bytes off instead of
//! failing: these tests look at the types themselves.

use domain::instance::{Breach, BreachState, InstanceRecord, StageTimes, Status};
use domain::model::{Batch, BusinessKey, TraceId};
use store::testing::{CutShort, TypedAnswer};
use store::version::{Feature, ServerVersion};

use crate::harness::{bare_span, store, unmigrated_store};

fn count(n: u64) -> TypedAnswer {
    TypedAnswer {
        types: vec!["UInt64".into()],
        rows: vec![n.to_string()],
    }
}

/// `key_seen` and `trace_seen` add two scalar subqueries' counts. Current
/// releases make a scalar subquery `Nullable`, and the reader took the
/// `Nullable(UInt64)` for a count 256 times too large (caught by nothing,
/// since only `> 0` was looked at): both must be a plain `UInt64`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_seen_and_trace_seen_count_in_a_plain_uint64() {
    let store = store().await;
    let trace = "5b8efff798038103d269b633813fc60d";
    let mut first = bare_span(trace, "eee19b7ec3c1b101", "crm", "order.create", 1_000);
    first.keys = vec![BusinessKey::new("order", "O-ENGINES-1")];
    let second = bare_span(trace, "eee19b7ec3c1b102", "erp", "order.book", 2_000);
    store
        .write_batch(&Batch {
            spans: vec![first, second],
            ..Default::default()
        })
        .await
        .unwrap();
    let trace_id = TraceId::from_hex(trace).unwrap();
    let key = BusinessKey::new("order", "O-ENGINES-1");

    assert_eq!(store.trace_seen_typed(trace_id).await.unwrap(), count(2));
    assert_eq!(store.key_seen_typed(&key).await.unwrap(), count(1));
    let nowhere = BusinessKey::new("order", "O-NOWHERE");
    assert_eq!(store.key_seen_typed(&nowhere).await.unwrap(), count(0));
    assert!(store.trace_seen(trace_id).await.unwrap());
    assert!(store.key_seen(&key).await.unwrap());
    assert!(!store.key_seen(&nowhere).await.unwrap());
    store.drop_database().await.unwrap();
}

/// Migration 0014 drops columns from tables that hold rows: 18.16 removes
/// their files from each part, current releases run a mutation. Either way
/// the rows an earlier release wrote stay, and read alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_key_columns_keeps_an_earlier_releases_rows() {
    let store = unmigrated_store();
    store.migrate_through(13).await.unwrap();
    let trace = "5b8efff798038103d269b633813fc60e";
    let now = domain::now_ns();
    let mut order = bare_span(trace, "eee19b7ec3c1b201", "erp", "order.book", now);
    order.keys = vec![
        BusinessKey::new("customer", "C-ENGINES-2"),
        BusinessKey::new("order", "O-ENGINES-2"),
    ];
    let mut alone = bare_span(trace, "eee19b7ec3c1b202", "mes", "wo.start", now + 1);
    alone.keys = vec![BusinessKey::new("work_order", "WO-ENGINES-2")];
    // The feed's rows name the plant column of a later migration, the key
    // index's rows the hub columns of another.
    store.add_plant_column("correlation_feed_v2").await.unwrap();
    store.add_hub_columns().await.unwrap();
    store
        .write_batch(&Batch {
            spans: vec![order, alone],
            ..Default::default()
        })
        .await
        .unwrap();

    store.migrate().await.unwrap();
    assert!(store.migrations_current().await.unwrap());

    let work_order = BusinessKey::new("work_order", "WO-ENGINES-2");
    assert_eq!(store.key_seen_typed(&work_order).await.unwrap(), count(1));
    let customer = BusinessKey::new("customer", "C-ENGINES-2");
    let order = BusinessKey::new("order", "O-ENGINES-2");
    let summaries = store.key_summaries(&[&customer, &order]).await.unwrap();
    assert_eq!(summaries.len(), 2, "{summaries:?}");
    for (key, counts) in &summaries {
        assert_eq!((counts.spans, counts.events), (1, 0), "{key:?}");
    }
    assert_eq!(store.journey_counts(&[&order]).await.unwrap().spans, 1);
    // The key index held this day before migration 0020: until retention
    // drops it, a hub's journey is read key by key, not from its range.
    assert!(store
        .hub_journey_scan(&customer, &[&customer, &order], &[], 10, None, 1000)
        .await
        .unwrap()
        .is_none());
    store.drop_database().await.unwrap();
}

/// Migration 0019 gives the tables read by key, trace or root compressed
/// blocks of one granule where the server takes it per table; on 18.16 the
/// statements render to nothing (its private server's profile sets it).
#[tokio::test]
async fn migration_19_sets_small_compressed_blocks_where_the_server_has_the_setting() {
    let store = store().await;
    let version = store.server_version().await.unwrap().version;
    for table in [
        "key_index_v2",
        "key_links_v2",
        "spans_v2",
        "events",
        "process_instances",
        "breaches",
    ] {
        let create = store.create_table_query(table).await.unwrap();
        assert_eq!(
            create.contains("min_compress_block_size = 4096"),
            version.supports(Feature::TableCompressBlocks),
            "{version}: {create}"
        );
    }
    store.drop_database().await.unwrap();
}

/// Migration 0016 uses codecs and a skip index where the server has them
/// (`{{if codecs: ...}}`, `{{if skip_indexes: ...}}`) and renders nothing
/// of them on 18.16; the reads answer alike either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_16_puts_codecs_and_a_skip_index_in_place_where_the_server_has_them() {
    let store = store().await;
    let version = store.server_version().await.unwrap().version;
    let spans = store.create_table_query("spans_v2").await.unwrap();
    let events = store.create_table_query("events").await.unwrap();
    if version.supports(Feature::SkipIndexes) {
        let codec = "CODEC(T64, ZSTD(1))".to_string();
        assert_eq!(
            store.column_codecs("spans_v2").await.unwrap(),
            vec![
                ("duration_ns".to_string(), codec.clone()),
                ("start_ns".to_string(), codec.clone()),
                ("start_time".to_string(), codec.clone()),
            ]
        );
        assert_eq!(
            store.column_codecs("key_index_v2").await.unwrap(),
            vec![
                ("duration_ns".to_string(), codec.clone()),
                ("time".to_string(), codec.clone()),
                ("time_ns".to_string(), codec.clone()),
            ]
        );
        assert_eq!(
            store.column_codecs("events").await.unwrap(),
            vec![
                ("received_ns".to_string(), codec.clone()),
                ("time".to_string(), codec.clone()),
                ("time_ns".to_string(), codec),
            ]
        );
        assert_eq!(
            store.skip_indexes("events").await.unwrap(),
            vec!["events_system set system 1".to_string()]
        );
        assert!(
            events.contains("INDEX events_system system TYPE set(100)"),
            "{events}"
        );
        // The column kept its default through the codec change.
        let index = store.create_table_query("key_index_v2").await.unwrap();
        assert!(
            index.contains("`duration_ns` UInt64 DEFAULT 0 CODEC(T64, ZSTD(1))"),
            "{index}"
        );
    } else {
        assert_eq!(version, ServerVersion::OLDEST);
        for query in [&spans, &events] {
            assert!(!query.contains("CODEC"), "{query}");
            assert!(!query.contains("INDEX"), "{query}");
        }
    }

    // Events filtered by system read alike with the index or without it.
    let now = domain::now_ns();
    let mut batch = Batch::default();
    for (i, system) in ["mes", "erp", "mes"].iter().enumerate() {
        batch
            .events
            .push(event(&format!("e-{i}"), system, now + i as u64));
    }
    store.write_batch(&batch).await.unwrap();
    let filter = store::query::EventFilter {
        system: Some("mes".into()),
        from_ns: now - 60_000_000_000,
        to_ns: now + 60_000_000_000,
        limit: 10,
        ..Default::default()
    };
    let (events, _) = store.list_events(&filter).await.unwrap();
    let mut ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec!["e-0", "e-2"]);
    store.drop_database().await.unwrap();
}

/// Migration 0016 gives `process_instances` and `breaches` a month
/// partition, keeping every row an earlier release wrote, also when a run
/// of it was cut short midway (the next run finishes it).
/// Migration 0021 then gives `process_instances` granules of 1 024 rows the
/// same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_16_and_21_reshape_instances_and_breaches_and_finish_a_run_cut_short() {
    for cut in [
        None,
        Some(CutShort::MidCopy),
        Some(CutShort::BetweenRenames),
        Some(CutShort::RenamedAway),
    ] {
        let store = unmigrated_store();
        store.migrate_through(15).await.unwrap();
        let now = domain::now_ns();
        let day = 86_400 * 1_000_000_000;
        let instances: Vec<InstanceRecord> = [
            ("O-1", now),
            ("O-2", now - 60 * day),
            ("O-3", now - 90 * day),
        ]
        .iter()
        .map(|(root, start)| instance(root, *start))
        .collect();
        store
            .write_instances_before_plants(
                &instances,
                &[breach("O-1", now), breach("O-2", now - 60 * day)],
            )
            .await
            .unwrap();
        for table in ["process_instances", "breaches"] {
            let query = store.create_table_query(table).await.unwrap();
            assert!(!query.contains("PARTITION BY"), "{query}");
        }
        if let Some(cut) = cut {
            store.migrate_16_cut_short(cut).await.unwrap();
        }

        store.migrate().await.unwrap();
        assert!(store.migrations_current().await.unwrap());
        let tables = store.table_names().await.unwrap();
        for gone in [
            "process_instances_by_month",
            "process_instances_unpartitioned",
            "breaches_by_month",
            "breaches_unpartitioned",
            "process_instances_fine",
            "process_instances_coarse",
        ] {
            assert!(!tables.iter().any(|t| t == gone), "{cut:?}: {gone} left");
        }
        let query = store.create_table_query("process_instances").await.unwrap();
        assert!(
            query.contains("PARTITION BY toYYYYMM(toDateTime(intDiv(start_ns, 1000000000)))"),
            "{cut:?}: {query}"
        );
        // And, by migration 0021, with granules of 1 024 rows.
        assert!(
            query.contains("index_granularity = 1024"),
            "{cut:?}: {query}"
        );
        let query = store.create_table_query("breaches").await.unwrap();
        assert!(
            query.contains("PARTITION BY toYYYYMM(toDateTime(intDiv(due_ns, 1000000000)))"),
            "{cut:?}: {query}"
        );
        let roots: Vec<(String, String)> = ["O-1", "O-2", "O-3"]
            .iter()
            .map(|r| ("p".to_string(), r.to_string()))
            .collect();
        let mut read = store.instances_of(&roots).await.unwrap();
        read.sort_by(|a, b| a.root_value.cmp(&b.root_value));
        assert_eq!(read, instances, "{cut:?}");
        assert_eq!(store.breaches_of(&roots).await.unwrap().len(), 2, "{cut:?}");
        let months: std::collections::BTreeSet<String> = store
            .partitions()
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.table == "process_instances")
            .map(|p| p.partition_id)
            .collect();
        assert_eq!(months.len(), 3, "{cut:?}: {months:?}");
        // Each row once, on disk too.
        assert_eq!(
            store
                .row_count("process_instances", store::inspect::Rows::AsWritten)
                .await
                .unwrap(),
            3,
            "{cut:?}"
        );
        store.drop_database().await.unwrap();
    }
}

fn instance(root: &str, start_ns: u64) -> InstanceRecord {
    InstanceRecord {
        process_id: "p".into(),
        root_value: root.into(),
        start_ns,
        last_ns: start_ns,
        status: Status::InFlight,
        current_stage: "s".into(),
        stages: StageTimes {
            ids: vec!["s".into()],
            times: vec![start_ns],
        },
        failed: false,
        open_breaches: 0,
        updated_ns: start_ns,
        plant: String::new(),
    }
}

fn breach(root: &str, due_ns: u64) -> Breach {
    Breach {
        process_id: "p".into(),
        sla_id: "sla".into(),
        root_value: root.into(),
        from_ns: due_ns - 1,
        due_ns,
        to_ns: 0,
        late_ns: 0,
        state: BreachState::Open,
        updated_ns: due_ns,
        plant: String::new(),
    }
}

fn event(id: &str, system: &str, time_ns: u64) -> domain::model::Event {
    domain::model::Event {
        source: format!("urn:{system}"),
        id: id.into(),
        system: system.into(),
        event_type: format!("{system}.done"),
        subject: String::new(),
        time_ns,
        time_missing: false,
        received_ns: time_ns,
        outcome: domain::model::Outcome::Ok,
        attempt: 0,
        trace_id: None,
        span_id: None,
        correlation_id: String::new(),
        causation_id: String::new(),
        data: String::new(),
        data_content_type: String::new(),
        attributes: Vec::new(),
        keys: Vec::new(),
        origin: domain::model::EventOrigin::CloudEvent,
    }
}
