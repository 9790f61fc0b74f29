//! The per-minute rollups give the raw data's numbers: fixtures of several
//! sizes posted through OTLP (each twice: a redelivery must not count) and
//! CloudEvents, then every aggregate the pages read (`Store::system_activity`,
//! `operation_stats`, `service_edges`) compared with the same figures
//! computed here from the raw rows with `FINAL`. Counts and errors match
//! exactly; a quantile lands in the histogram bucket of the exact one. The
//! backfill of a database that had spans before the rollups is checked the
//! same way.

use std::collections::BTreeMap;

use domain::histogram;
use domain::model::Outcome;
use serde_json::{json, Value};
use store::Store;

use crate::harness::TestApp;

const MIN: u64 = 60_000_000_000;
const SERVICES: [&str; 4] = ["crm", "middleware", "erp", "mes"];

/// One span of a fixture.
#[derive(Debug, Clone)]
struct FixtureSpan {
    trace: u64,
    id: u64,
    parent: Option<u64>,
    service: &'static str,
    name: String,
    start_ns: u64,
    duration_ns: u64,
    error: bool,
}

/// `n` spans over `minutes` minutes from `base_ns`: traces of up to six
/// spans through the four services (some children in their parent's
/// service, some parents missing), durations from nanoseconds to hours,
/// every seventh an error.
fn fixture(n: u64, minutes: u64, base_ns: u64) -> Vec<FixtureSpan> {
    (0..n)
        .map(|i| {
            let trace = i / 6;
            let depth = i % 6;
            let service = SERVICES[(depth as usize * 3 / 4 + trace as usize) % 4];
            let parent = (depth > 0).then(|| i - 1);
            let scale = 10u64.pow((i * 7 % 13) as u32);
            FixtureSpan {
                trace,
                id: i + 1,
                parent: parent.map(|p| p + 1),
                service,
                name: format!("{service}.op{}", i % 3),
                start_ns: base_ns + (i * 7_919 % (minutes * 60)) * 1_000_000_000 + i,
                duration_ns: scale * (1 + i % 9) + i % 5,
                error: i % 7 == 3,
            }
        })
        // Trace 5's root never arrives: its first child waits in vain.
        .filter(|s| !(s.trace == 5 && s.id == 5 * 6 + 1))
        .collect()
}

fn otlp_span(s: &FixtureSpan) -> Value {
    json!({
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": s.service}}]},
        "scopeSpans": [{"spans": [{
            "traceId": format!("{:032x}", s.trace + 1),
            "spanId": format!("{:016x}", s.id),
            "parentSpanId": s.parent.map(|p| format!("{p:016x}")).unwrap_or_default(),
            "name": s.name,
            "kind": 2,
            "startTimeUnixNano": s.start_ns.to_string(),
            "endTimeUnixNano": (s.start_ns + s.duration_ns).to_string(),
            "status": {"code": if s.error { 2 } else { 0 }},
        }]}],
    })
}

async fn post_spans(app: &TestApp, spans: &[FixtureSpan]) {
    for chunk in spans.chunks(250) {
        let body = json!({"resourceSpans": chunk.iter().map(otlp_span).collect::<Vec<_>>()});
        let response = app
            .post(
                "/v1/traces",
                "application/json",
                &[],
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
}

/// Far enough ahead for every test's data (the last second a `DateTime`
/// holds).
const FOREVER_NS: u64 = u32::MAX as u64 * 1_000_000_000;

#[derive(Debug, Default)]
struct RawOperation {
    service: String,
    name: String,
    count: u64,
    errors: u64,
    last_ns: u64,
    durations: Vec<u64>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RawEdge {
    parent: String,
    child: String,
    calls: u64,
    errors: u64,
}

#[derive(Debug, Default)]
struct RawEvents {
    events: u64,
    failures: u64,
    dead: u64,
    last_ns: u64,
}

/// Every figure of the rollups over `[from_ns, to_ns]` against the raw rows
/// of its whole minutes (each record once, `FINAL`), computed here;
/// `edges`, when given, is what the service map must show.
async fn check_against_raw(store: &Store, from_ns: u64, to_ns: u64, edges: Option<&[RawEdge]>) {
    use domain::model::{Outcome, StatusCode};
    // The minutes holding the range's ends count whole.
    let (lo, hi) = (from_ns - from_ns % MIN, to_ns - to_ns % MIN + MIN);
    let all_spans = store.spans_between(0, FOREVER_NS).await.unwrap();
    let all_events = store.events_in(0, FOREVER_NS).await.unwrap();
    let in_range = |t: u64| t >= lo && t < hi;
    let mut by_operation: BTreeMap<(String, String), RawOperation> = BTreeMap::new();
    for s in all_spans.iter().filter(|s| in_range(s.start_ns)) {
        let o = by_operation
            .entry((s.service.clone(), s.name.clone()))
            .or_insert_with(|| RawOperation {
                service: s.service.clone(),
                name: s.name.clone(),
                ..Default::default()
            });
        o.count += 1;
        o.errors += u64::from(s.status_code == StatusCode::Error);
        o.last_ns = o.last_ns.max(s.start_ns);
        o.durations.push(s.duration_ns);
    }
    let operations: Vec<RawOperation> = by_operation.into_values().collect();
    let mut events: BTreeMap<String, RawEvents> = BTreeMap::new();
    for e in all_events.iter().filter(|e| in_range(e.time_ns)) {
        let w = events.entry(e.system.clone()).or_default();
        w.events += 1;
        w.failures += u64::from(matches!(e.outcome, Outcome::Failed | Outcome::DeadLettered));
        w.dead += u64::from(e.outcome == Outcome::DeadLettered);
        w.last_ns = w.last_ns.max(e.time_ns);
    }
    // Last seen looks back a week before the range.
    let week = 7 * 1440 * MIN;
    let seen = |t: u64| t >= lo - week && t < hi;
    let last_seen = all_spans
        .iter()
        .filter(|s| seen(s.start_ns))
        .map(|s| (s.service.clone(), s.start_ns))
        .chain(
            all_events
                .iter()
                .filter(|e| seen(e.time_ns))
                .map(|e| (e.system.clone(), e.time_ns)),
        );

    // Operations: counts and errors exactly, quantiles by bucket.
    let mut stats = store.operation_stats(from_ns, to_ns).await.unwrap();
    stats.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
    assert_eq!(stats.len(), operations.len());
    for (got, want) in stats.iter().zip(&operations) {
        assert_eq!(
            (&got.service, &got.name, got.count, got.errors),
            (&want.service, &want.name, want.count, want.errors)
        );
        let mut durations = want.durations.clone();
        for (q, got_ns) in [(0.5, got.p50_ns), (0.95, got.p95_ns)] {
            let exact = domain::quantile::quantile(&mut durations, q).unwrap();
            assert_eq!(
                histogram::bucket(got_ns),
                histogram::bucket(exact),
                "{} {} q{q}: {got_ns} for exactly {exact}",
                got.service,
                got.name
            );
        }
    }

    // Systems: spans, errors, events, failures, dead letters, last seen.
    let mut want: BTreeMap<String, (u64, u64, u64, u64, u64, u64)> = BTreeMap::new();
    for o in &operations {
        let w = want.entry(o.service.clone()).or_default();
        w.0 += o.count;
        w.1 += o.errors;
        w.5 = w.5.max(o.last_ns);
    }
    for (system, e) in &events {
        let w = want.entry(system.clone()).or_default();
        (w.2, w.3, w.4) = (e.events, e.failures, e.dead);
        w.5 = w.5.max(e.last_ns);
    }
    for (system, last) in last_seen {
        let w = want.entry(system).or_default();
        w.5 = w.5.max(last);
    }
    let got: BTreeMap<String, (u64, u64, u64, u64, u64, u64)> = store
        .system_activity(from_ns, to_ns)
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.system,
                (
                    a.spans,
                    a.span_errors,
                    a.events,
                    a.event_failures,
                    a.dead_letters,
                    a.last_seen_ns,
                ),
            )
        })
        .collect();
    assert_eq!(got, want);

    // The service map, against the raw join and against the fixture: a
    // span of the range whose parent (of any time) is of another service.
    let services: BTreeMap<_, &str> = all_spans
        .iter()
        .map(|s| ((s.trace_id, s.span_id), s.service.as_str()))
        .collect();
    let mut calls: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for s in all_spans.iter().filter(|s| in_range(s.start_ns)) {
        let parent = s
            .parent_span_id
            .and_then(|p| services.get(&(s.trace_id, p)));
        if let Some(parent) = parent.filter(|p| **p != s.service) {
            let c = calls
                .entry((parent.to_string(), s.service.clone()))
                .or_default();
            c.0 += 1;
            c.1 += u64::from(s.status_code == StatusCode::Error);
        }
    }
    let raw_edges: Vec<RawEdge> = calls
        .into_iter()
        .map(|((parent, child), (calls, errors))| RawEdge {
            parent,
            child,
            calls,
            errors,
        })
        .collect();
    if let Some(edges) = edges {
        assert_eq!(raw_edges, edges, "the raw join disagrees with the fixture");
    }
    let mut got: Vec<RawEdge> = store
        .service_edges(from_ns, to_ns)
        .await
        .unwrap()
        .into_iter()
        .map(|e| RawEdge {
            parent: e.parent,
            child: e.child,
            calls: e.calls,
            errors: e.errors,
        })
        .collect();
    got.sort();
    assert_eq!(got, raw_edges);
}

/// The edges a fixture makes: a span whose parent is in the fixture and of
/// another service.
fn expected_edges(spans: &[FixtureSpan]) -> Vec<RawEdge> {
    let by_id: BTreeMap<(u64, u64), &str> =
        spans.iter().map(|s| ((s.trace, s.id), s.service)).collect();
    let mut edges: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for s in spans {
        if let Some(parent) = s.parent.and_then(|p| by_id.get(&(s.trace, p))) {
            if *parent != s.service {
                let e = edges
                    .entry((parent.to_string(), s.service.to_string()))
                    .or_default();
                e.0 += 1;
                e.1 += u64::from(s.error);
            }
        }
    }
    edges
        .into_iter()
        .map(|((parent, child), (calls, errors))| RawEdge {
            parent,
            child,
            calls,
            errors,
        })
        .collect()
}

fn events_batch(n: usize, base_ns: u64) -> Value {
    let outcomes = ["ok", "failed", "retried", "dead_lettered", "ok"];
    Value::Array(
        (0..n)
            .map(|i| {
                let t = base_ns + (i as u64 * 37 % 600) * 1_000_000_000;
                json!({"specversion": "1.0", "id": format!("ev-{i}"),
                       "source": if i % 2 == 0 { "urn:plant1:mes" } else { "urn:plant1:erp" },
                       "type": "mes.operation.done",
                       "time": domain::time::rfc3339(t),
                       "outcome": outcomes[i % outcomes.len()]})
            })
            .collect(),
    )
}

async fn rollups_match_raw_for(n: u64) {
    let app = TestApp::start().await;
    let now = domain::now_ns();
    let base = now - now % MIN - 40 * MIN;
    let spans = fixture(n, 30, base);
    // Each chunk twice in a row (likely one merged batch), then the whole
    // fixture again once stored (later batches): both are redeliveries.
    for chunk in spans.chunks(500) {
        post_spans(&app, chunk).await;
        post_spans(&app, chunk).await;
    }
    let events = serde_json::to_vec(&events_batch(n as usize % 50 + 1, base)).unwrap();
    for _ in 0..2 {
        let r = app
            .post(
                "/v1/events",
                "application/cloudevents-batch+json",
                &[],
                events.clone(),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    app.settled().await;
    post_spans(&app, &spans).await;
    app.settled().await;
    check_against_raw(&app.store, base - MIN, now, Some(&expected_edges(&spans))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_span_rollups_match_the_raw_data() {
    rollups_match_raw_for(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_spans_rollups_match_the_raw_data() {
    rollups_match_raw_for(100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_spans_rollups_match_the_raw_data() {
    rollups_match_raw_for(5_000).await;
}

/// A range that cuts hours and minutes: its whole hours' durations come
/// from the hourly histograms, the rest from the minutely ones, and every
/// figure is the raw data's over the range's whole minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_of_several_hours_cut_mid_minute_matches_the_raw_data() {
    let app = TestApp::start().await;
    let now = domain::now_ns();
    let hour = 60 * MIN;
    let base = now - now % hour - 4 * hour - 20 * MIN;
    let spans = fixture(3_000, 200, base);
    post_spans(&app, &spans).await;
    let events = serde_json::to_vec(&events_batch(40, base + 30 * MIN)).unwrap();
    let r = app
        .post(
            "/v1/events",
            "application/cloudevents-batch+json",
            &[],
            events,
        )
        .await;
    assert_eq!(r.status(), 200);
    app.settled().await;
    for (from, to) in [
        (
            base + 37 * MIN + 13_000_000_000,
            base + 150 * MIN + 5_000_000_000,
        ),
        (base + 21 * MIN + 1, base + 39 * MIN),
        (base - 3 * hour, base + 3 * hour + 59 * MIN),
        (base + 60 * MIN, base + 62 * MIN + 7),
    ] {
        check_against_raw(&app.store, from, to, None).await;
    }
}

/// Only whole minutes of the range count: a span outside the minutes of
/// the range is not in its figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_counts_its_minutes_whole_and_no_others() {
    let app = TestApp::start().await;
    let now = domain::now_ns();
    let base = now - now % MIN - 20 * MIN;
    let spans: Vec<FixtureSpan> = fixture(12, 1, base)
        .into_iter()
        .chain(fixture(12, 1, base + 5 * MIN).into_iter().map(|mut s| {
            s.trace += 100;
            s
        }))
        .collect();
    post_spans(&app, &spans).await;
    app.settled().await;
    // From the middle of the first minute to its end: that minute whole.
    let first = app
        .store
        .system_activity(base + MIN / 2, base + MIN - 1)
        .await
        .unwrap();
    assert_eq!(first.iter().map(|a| a.spans).sum::<u64>(), 12);
    let all = app
        .store
        .system_activity(base, base + 6 * MIN)
        .await
        .unwrap();
    assert_eq!(all.iter().map(|a| a.spans).sum::<u64>(), 24);
}

/// A database that had spans and events before the rollups existed gets
/// them filled once, on migration, with the raw data's numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_fills_the_rollups_from_spans_stored_before_it() {
    let store = crate::harness::unmigrated_store();
    // The tables as migrations 1 to 8 made them, recorded as applied.
    store.migrate_through(8).await.unwrap();
    // Spans of two days (a parent the day before its child), each inserted
    // twice, as a redelivery before the rollups would have been.
    let day = 86_400 * 1_000_000_000;
    let base = domain::now_ns() / day * day - 2 * day + 23 * 60 * MIN + 30 * MIN;
    let fixture_spans = fixture(300, 60, base);
    let spans: Vec<domain::model::Span> = fixture_spans.iter().map(domain_span).collect();
    let events: Vec<domain::model::Event> = [
        ("e1", "mes", Outcome::Failed),
        ("e2", "mes", Outcome::DeadLettered),
        ("e3", "erp", Outcome::Ok),
    ]
    .into_iter()
    .map(|(id, system, outcome)| bare_event(id, system, outcome, base))
    .collect();
    for _ in 0..2 {
        store.insert_spans_only("spans_v2", &spans).await.unwrap();
        store.insert_events_only(&events).await.unwrap();
    }
    store.migrate().await.unwrap();
    assert!(store.migrate().await.unwrap().applied.is_empty());
    check_against_raw(
        &store,
        base - MIN,
        domain::now_ns(),
        Some(&expected_edges(&fixture_spans)),
    )
    .await;
}

/// An event of `urn:a` of type `t`, and nothing else on it.
fn bare_event(id: &str, system: &str, outcome: Outcome, time_ns: u64) -> domain::model::Event {
    domain::model::Event {
        source: "urn:a".into(),
        id: id.into(),
        system: system.into(),
        event_type: "t".into(),
        subject: String::new(),
        time_ns,
        time_missing: false,
        received_ns: time_ns,
        outcome,
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

fn domain_span(s: &FixtureSpan) -> domain::model::Span {
    use domain::model::{SpanId, StatusCode};
    let trace = format!("{:032x}", s.trace + 1);
    let mut span = crate::harness::bare_span(
        &trace,
        &format!("{:016x}", s.id),
        s.service,
        &s.name,
        s.start_ns,
    );
    span.parent_span_id = s
        .parent
        .map(|p| SpanId::from_hex(&format!("{p:016x}")).unwrap());
    span.duration_ns = s.duration_ns;
    if s.error {
        span.status_code = StatusCode::Error;
    }
    span
}

/// A batch written again after a failed attempt (which may have stored its
/// spans before another table refused) leaves out the spans stored
/// already, so the rollups count each once; the others are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_written_again_after_a_failure_counts_its_spans_once() {
    let store = crate::harness::store().await;
    let now = domain::now_ns();
    let base = now - now % MIN - 30 * MIN;
    let spans: Vec<domain::model::Span> = fixture(200, 20, base).iter().map(domain_span).collect();
    let first = domain::model::Batch {
        spans: spans[..120].to_vec(),
        ..Default::default()
    };
    store.write_batch(&first).await.unwrap();
    // The retry holds the whole batch: 120 stored, the rest not.
    let whole = domain::model::Batch {
        spans: spans.clone(),
        ..Default::default()
    };
    let stored = store.stored_spans(&whole.spans).await.unwrap();
    assert_eq!(stored.len(), 120);
    store.write_batch_except(&whole, &stored).await.unwrap();
    // The collector pairs the batch's spans once, after it is stored.
    let edges = domain::service_graph::ServiceGraph::default().observe(&whole.spans, now);
    store.write_edges(&edges).await.unwrap();
    let activity = store.system_activity(base - MIN, now).await.unwrap();
    assert_eq!(
        activity.iter().map(|a| a.spans).sum::<u64>(),
        spans.len() as u64
    );
    check_against_raw(&store, base - MIN, now, None).await;
}
