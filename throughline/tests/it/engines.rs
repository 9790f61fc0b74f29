//! What must agree between ClickHouse 18.16 and current releases, which
//! `make test` also runs this binary's store tests on (chDB, through
//! `scripts/with-chdb.sh`). The store reads RowBinary without validation, so
//! a type that is wider on one engine is read a few bytes off instead of
//! failing: these tests look at the types themselves.

use domain::model::{Batch, BusinessKey, TraceId};
use store::testing::TypedAnswer;

use crate::harness::{bare_span, store};

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
