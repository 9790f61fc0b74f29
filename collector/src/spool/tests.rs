//! The spool on its own: appends, group commit, replay after restart, torn
//! records, the size limit, the directory lock.

use std::sync::Arc;

use super::*;
use domain::model::{
    BusinessKey, Event, EventOrigin, LogRecord, Outcome, Span, SpanEvent, SpanId, SpanKind,
    SpanLink, StatusCode, TraceId,
};

/// One record of each kind, with every field set.
pub(crate) fn sample_batch() -> Batch {
    let keys = vec![
        BusinessKey::new("order", "SO-1"),
        BusinessKey::new("work_order", "WO-ü"),
    ];
    Batch {
        spans: vec![Span {
            trace_id: TraceId([7; 16]),
            span_id: SpanId([3; 8]),
            parent_span_id: Some(SpanId([4; 8])),
            trace_state: "a=b".into(),
            flags: 1,
            service: "erp".into(),
            name: "erp.post".into(),
            kind: SpanKind::Server,
            start_ns: 1_764_000_000_000_000_000,
            duration_ns: 42,
            status_code: StatusCode::Error,
            status_message: "boom".into(),
            attributes: vec![("order.id".into(), "SO-1".into())],
            resource: vec![("service.name".into(), "erp".into())],
            scope_name: "s".into(),
            scope_version: "1".into(),
            events: vec![SpanEvent {
                time_ns: 5,
                name: "e".into(),
                attributes: vec![],
            }],
            links: vec![SpanLink {
                trace_id: TraceId([9; 16]),
                span_id: SpanId([8; 8]),
                trace_state: String::new(),
                attributes: vec![("k".into(), "v".into())],
            }],
            keys: keys.clone(),
        }],
        logs: vec![LogRecord {
            record_id: 99,
            time_ns: 1,
            observed_ns: 2,
            trace_id: None,
            span_id: Some(SpanId([1; 8])),
            severity_number: -3,
            severity_text: "WARN".into(),
            body: "hello".into(),
            event_name: String::new(),
            service: "mes".into(),
            attributes: vec![],
            resource: vec![],
            scope_name: String::new(),
            scope_version: String::new(),
            keys: keys.clone(),
        }],
        events: vec![Event {
            source: "urn:mes".into(),
            id: "e-1".into(),
            system: "mes".into(),
            event_type: "mes.work_order.completed".into(),
            subject: String::new(),
            time_ns: 10,
            time_missing: true,
            received_ns: 11,
            outcome: Outcome::DeadLettered,
            attempt: 3,
            trace_id: Some(TraceId([2; 16])),
            span_id: None,
            correlation_id: "c".into(),
            causation_id: String::new(),
            data: "{\"x\":1}".into(),
            data_content_type: "application/json".into(),
            attributes: vec![("a".into(), "b".into())],
            keys,
            origin: EventOrigin::OtlpLog,
        }],
    }
}

fn open(dir: &Path, max_bytes: u64) -> (Spool, SpoolReader, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let (spool, reader) = Spool::open(&SpoolOptions::new(dir, max_bytes), metrics.clone()).unwrap();
    (spool, reader, metrics)
}

fn span_named(name: &str) -> Batch {
    let mut batch = sample_batch();
    batch.spans[0].name = name.into();
    batch.logs.clear();
    batch.events.clear();
    batch
}

fn names(read: &Read) -> Vec<String> {
    read.records
        .iter()
        .flat_map(|r| r.batch.spans.iter().map(|s| s.name.clone()))
        .collect()
}

#[tokio::test]
async fn appended_batches_come_back_in_order_and_acked_ones_do_not_replay() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (spool, mut reader, metrics) = open(dir.path(), DEFAULT_MAX_BYTES);
        for n in ["a", "b", "c"] {
            spool.append(&span_named(n)).await.unwrap();
        }
        assert_eq!(metrics.spool.records.load(Ordering::Relaxed), 3);
        let read = reader.read(2).unwrap();
        assert_eq!(names(&read), ["a", "b"]);
        spool.ack(read.end, read.count(), read.bytes()).unwrap();
        assert_eq!(metrics.spool.records.load(Ordering::Relaxed), 1);
    }
    // A restart replays only what was not acknowledged, then continues.
    let (spool, mut reader, metrics) = open(dir.path(), DEFAULT_MAX_BYTES);
    assert_eq!(metrics.spool.records.load(Ordering::Relaxed), 1);
    spool.append(&span_named("d")).await.unwrap();
    let read = reader.read(100).unwrap();
    assert_eq!(names(&read), ["c", "d"]);
    spool.ack(read.end, read.count(), read.bytes()).unwrap();
    assert_eq!(metrics.spool.bytes.load(Ordering::Relaxed), 0);
    spool.drained().await;
    // Segments before the acknowledged position are gone.
    assert_eq!(segment::list(dir.path()).unwrap(), vec![read.end.segment]);
}

#[tokio::test]
async fn concurrent_appends_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, mut reader, metrics) = open(dir.path(), DEFAULT_MAX_BYTES);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let spool = spool.clone();
            tokio::spawn(async move { spool.append(&span_named(&format!("s{i}"))).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let commits = metrics.spool.commits.load(Ordering::Relaxed);
    assert!(commits < 64, "64 appends took {commits} commits");
    let read = reader.read(1000).unwrap();
    assert_eq!(read.records.len(), 64);
}

#[tokio::test]
async fn a_torn_last_record_is_skipped_and_the_rest_replays() {
    let dir = tempfile::tempdir().unwrap();
    let segment_id;
    {
        let (spool, reader, _) = open(dir.path(), DEFAULT_MAX_BYTES);
        for n in ["a", "b", "c"] {
            spool.append(&span_named(n)).await.unwrap();
        }
        segment_id = reader.position().segment;
    }
    // A power cut in the middle of the last record.
    let path = segment::path(dir.path(), segment_id);
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 10).unwrap();
    drop(file);
    let (_spool, mut reader, metrics) = open(dir.path(), DEFAULT_MAX_BYTES);
    assert_eq!(metrics.spool.records.load(Ordering::Relaxed), 2);
    assert_eq!(names(&reader.read(100).unwrap()), ["a", "b"]);
}

#[tokio::test]
async fn a_drop_oldest_spool_takes_appends_past_its_limit_and_asks_for_drops() {
    let dir = tempfile::tempdir().unwrap();
    let one = {
        let mut framed = Vec::new();
        codec::encode(0, &span_named("x"), &mut framed);
        (framed.len() + segment::HEADER) as u64
    };
    let options = SpoolOptions {
        when_full: WhenFull::DropOldest,
        ..SpoolOptions::new(dir.path(), one * 2)
    };
    let (spool, mut reader) = Spool::open(&options, Arc::new(Metrics::new())).unwrap();
    for _ in 0..2 {
        spool.append(&span_named("x")).await.unwrap();
    }
    assert!(!spool.must_drop_oldest());
    spool.append(&span_named("x")).await.unwrap();
    assert!(spool.must_drop_oldest() && !spool.is_full());
    let read = reader.read(1).unwrap();
    spool.ack(read.end, read.count(), read.bytes()).unwrap();
    assert!(!spool.must_drop_oldest());
}

#[tokio::test]
async fn a_full_spool_refuses_until_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let one = {
        let mut framed = Vec::new();
        codec::encode(0, &span_named("x"), &mut framed);
        (framed.len() + segment::HEADER) as u64
    };
    let (spool, mut reader, _) = open(dir.path(), one * 3);
    for _ in 0..3 {
        spool.append(&span_named("x")).await.unwrap();
    }
    assert!(matches!(
        spool.append(&span_named("x")).await,
        Err(SpoolError::Full { .. })
    ));
    assert!(spool.is_full());
    let read = reader.read(1).unwrap();
    spool.ack(read.end, read.count(), read.bytes()).unwrap();
    assert!(!spool.is_full());
    spool.append(&span_named("x")).await.unwrap();
}

#[tokio::test]
async fn segments_roll_and_are_read_across() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let options = SpoolOptions {
        segment_bytes: 1000,
        ..SpoolOptions::new(dir.path(), DEFAULT_MAX_BYTES)
    };
    let (spool, mut reader) = Spool::open(&options, metrics).unwrap();
    for i in 0..10 {
        spool.append(&span_named(&format!("s{i}"))).await.unwrap();
    }
    assert!(segment::list(dir.path()).unwrap().len() > 2);
    let read = reader.read(1000).unwrap();
    assert_eq!(read.records.len(), 10);
    spool.ack(read.end, read.count(), read.bytes()).unwrap();
    assert_eq!(segment::list(dir.path()).unwrap().len(), 1);
}

#[test]
fn a_second_collector_cannot_open_the_same_spool() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path(), DEFAULT_MAX_BYTES);
    let err = Spool::open(
        &SpoolOptions::new(dir.path(), DEFAULT_MAX_BYTES),
        Arc::new(Metrics::new()),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("in use by another collector"),
        "{err}"
    );
}

/// Why: an earlier build reused the acknowledged segment's id when its file
/// was gone, and applied the saved offset to the new records in it.
#[tokio::test]
async fn a_new_segment_never_takes_the_acknowledged_segments_id() {
    let dir = tempfile::tempdir().unwrap();
    let acked_segment = {
        let (spool, mut reader, _) = open(dir.path(), DEFAULT_MAX_BYTES);
        spool.append(&span_named("a")).await.unwrap();
        let read = reader.read(10).unwrap();
        spool.ack(read.end, read.count(), read.bytes()).unwrap();
        read.end.segment
    };
    std::fs::remove_file(segment::path(dir.path(), acked_segment)).unwrap();
    {
        let (spool, _reader, _) = open(dir.path(), DEFAULT_MAX_BYTES);
        spool.append(&span_named("b")).await.unwrap();
    }
    let (_spool, mut reader, _) = open(dir.path(), DEFAULT_MAX_BYTES);
    assert_eq!(names(&reader.read(10).unwrap()), ["b"]);
}

#[tokio::test]
async fn a_whole_record_this_build_cannot_decode_is_reported_not_replayed_as_data() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    let mut bytes = Vec::new();
    segment::frame(b"\xc8 from a future build", &mut bytes);
    let mut good = Vec::new();
    codec::encode(1, &span_named("after"), &mut good);
    segment::frame(&good, &mut bytes);
    std::fs::write(segment::path(dir.path(), 1), &bytes).unwrap();
    let (_spool, mut reader, _) = open(dir.path(), DEFAULT_MAX_BYTES);
    let read = reader.read(10).unwrap();
    assert_eq!(read.undecodable.len(), 1);
    assert!(read.undecodable[0].1.contains("version 200"));
    assert_eq!(names(&read), ["after"]);
    assert_eq!(read.count(), 2);
}
