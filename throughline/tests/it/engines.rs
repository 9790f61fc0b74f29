//! What must agree between ClickHouse 18.16 and current releases, which
//! `make test` also runs this binary's store tests on (chDB, through
//! `scripts/with-chdb.sh`). The store reads RowBinary without validation, so
//! a type that is wider on one engine is read a few bytes off instead of
//! failing: these tests look at the types themselves.

use domain::model::{Batch, BusinessKey, TraceId};
use store::testing::TypedAnswer;

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
    store.drop_database().await.unwrap();
}
