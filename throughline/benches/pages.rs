//! `make bench`: server time per console page with 1 000 000 spans and
//! 200 000 integration events stored (`BENCH_SPANS`, `BENCH_EVENTS`).
//!
//! The data is a day of an order-to-delivery flow: per order, three
//! integration events (CRM order with its customer, ERP sales order linking
//! order and work order, MES completion naming the work order) and fifteen
//! spans in three traces that cross CRM, middleware, ERP and MES, 1% of them
//! failed. The correlator catches up on it first, so the process pages have
//! their instances and breaches. Then each page is requested 30 times in a
//! row (after two warm-up requests) from a client on loopback; p50, p95 and
//! the maximum are reported. Range aggregates are cached for 30 s, so the
//! overview and systems pages are measured twice: on the default range,
//! and with a range that changes every request (each one reads the
//! rollups anew).
//! Bounded in count and time; it stops by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use collector::metrics::Metrics;
use console::read::Reads;
use console::serve::Console;
use console::state::AppState;
use domain::keys::KeyTypes;
use domain::model::{
    Batch, BusinessKey, Event, EventOrigin, Outcome, Span, SpanId, SpanKind, StatusCode, TraceId,
};
use domain::process::Processes;
use engine::correlator::{Correlator, CorrelatorSettings};
use store::{Store, StoreConfig};
use tokio_util::sync::CancellationToken;

mod support;
use support::{env_or, ms, percentile};

const PROCESS: &str = include_str!("../../sample-data/processes/order-to-delivery.toml");
const DAY_NS: u64 = 86_400_000_000_000;
const REQUESTS: usize = 30;

fn event(n: u64, start_ns: u64, step_ns: u64) -> Event {
    let order = n / 3;
    let (system, ty, keys, offset) = match n % 3 {
        0 => (
            "crm",
            "crm.order.created",
            vec![
                BusinessKey::new("customer", format!("C-{}", order % 1000)),
                BusinessKey::new("order", format!("O-{order}")),
            ],
            0,
        ),
        1 => (
            "erp",
            "erp.sales_order.created",
            vec![
                BusinessKey::new("order", format!("O-{order}")),
                BusinessKey::new("work_order", format!("WO-{order}")),
            ],
            // Every 20th order is entered late: a closed breach.
            if order.is_multiple_of(20) {
                1_200_000_000_000
            } else {
                300_000_000_000
            },
        ),
        _ => (
            "mes",
            "mes.work_order.completed",
            vec![BusinessKey::new("work_order", format!("WO-{order}"))],
            7_200_000_000_000,
        ),
    };
    let time_ns = start_ns + order * step_ns + offset;
    Event {
        source: format!("urn:bench:{system}"),
        id: format!("e-{n}"),
        system: system.into(),
        event_type: ty.into(),
        subject: String::new(),
        time_ns,
        time_missing: false,
        received_ns: time_ns,
        outcome: if n.is_multiple_of(97) {
            Outcome::Failed
        } else {
            Outcome::Ok
        },
        attempt: 0,
        trace_id: None,
        span_id: None,
        correlation_id: String::new(),
        causation_id: String::new(),
        data: String::new(),
        data_content_type: String::new(),
        attributes: Vec::new(),
        keys,
        origin: EventOrigin::CloudEvent,
    }
}

fn trace_id(order: u64, t: u64) -> TraceId {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(order + 1).to_be_bytes());
    b[8..].copy_from_slice(&(t + 1).to_be_bytes());
    TraceId(b)
}

/// Span `i` (0..15) of an order: three traces of five spans, each a chain
/// of calls across systems.
fn span(order: u64, i: u64, start_ns: u64, step_ns: u64) -> Span {
    const CHAINS: [[(&str, &str); 5]; 3] = [
        [
            ("crm", "crm.order.create"),
            ("middleware", "route order"),
            ("erp-legacy", "erp.sales_order.create"),
            ("erp-legacy", "erp.credit.check"),
            ("erp-legacy", "erp.db.insert"),
        ],
        [
            ("erp-legacy", "erp.production_order.release"),
            ("middleware", "route work order"),
            ("mes", "mes.work_order.start"),
            ("mes", "mes.machine.run"),
            ("mes", "mes.quality.check"),
        ],
        [
            ("mes", "mes.work_order.complete"),
            ("middleware", "route completion"),
            ("erp-legacy", "erp.goods.receipt"),
            ("erp-legacy", "erp.delivery.post"),
            ("crm", "crm.order.ship_notice"),
        ],
    ];
    let (t, pos) = (i / 5, i % 5);
    let (service, name) = CHAINS[t as usize][pos as usize];
    let trace = trace_id(order, t);
    let span_id = |p: u64| SpanId(((order << 8) | (t << 4) | p | 1 << 62).to_be_bytes());
    let begin = start_ns + order * step_ns + t * 3_600_000_000_000 + pos * 5_000_000;
    let mut keys = vec![BusinessKey::new("order", format!("O-{order}"))];
    if t > 0 {
        keys.push(BusinessKey::new("work_order", format!("WO-{order}")));
    }
    Span {
        trace_id: trace,
        span_id: span_id(pos),
        parent_span_id: (pos > 0).then(|| span_id(pos - 1)),
        trace_state: String::new(),
        flags: 1,
        service: service.into(),
        name: name.into(),
        kind: if pos == 0 {
            SpanKind::Server
        } else {
            SpanKind::Client
        },
        start_ns: begin,
        duration_ns: 200_000_000 / (pos + 1) + (order % 7) * 3_000_000,
        status_code: if (order + i).is_multiple_of(100) {
            StatusCode::Error
        } else {
            StatusCode::Unset
        },
        status_message: String::new(),
        attributes: vec![
            ("order.id".into(), format!("O-{order}")),
            ("plant".into(), "P1".into()),
            ("line".into(), format!("L{}", order % 4)),
        ],
        resource: vec![("service.name".into(), service.into())],
        scope_name: "bench".into(),
        scope_version: String::new(),
        events: Vec::new(),
        links: Vec::new(),
        keys,
    }
}

async fn timed(client: &reqwest::Client, url: &str) -> Duration {
    let t = Instant::now();
    let r = client.get(url).send().await.unwrap();
    let status = r.status();
    let body = r.bytes().await.unwrap();
    let took = t.elapsed();
    assert!(
        status.is_success() || status.is_redirection(),
        "{url}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    took
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("THROUGHLINE_TEST_CLICKHOUSE_URL")
        .expect("set THROUGHLINE_TEST_CLICKHOUSE_URL (make bench does)");
    let spans_total = env_or("BENCH_SPANS", 1_000_000u64);
    let events_total = env_or("BENCH_EVENTS", 200_000u64);
    // BENCH_DATABASE names a database to keep and reuse: loaded the first
    // time, measured again as it is on later runs.
    let kept = std::env::var("BENCH_DATABASE").ok();
    let store = Store::new(StoreConfig {
        url,
        database: kept
            .clone()
            .unwrap_or_else(|| format!("bench_pages_{}", std::process::id())),
        user: None,
        password: None,
        timeouts: Default::default(),
        compression: Default::default(),
    });
    store.migrate().await.unwrap();
    let loaded = kept.is_some()
        && store
            .key_seen(&BusinessKey::new("customer", "C-7"))
            .await
            .unwrap();
    let keys = Arc::new(KeyTypes::default());
    let processes = Arc::new(Processes {
        list: vec![Processes::parse(PROCESS, "order-to-delivery.toml", &keys).unwrap()],
        ..Default::default()
    });
    let orders = events_total / 3;
    // Orders start over the last 22 hours; their last stage comes 2 h later.
    let start_ns = domain::now_ns() - DAY_NS + 3_600_000_000_000;
    let step_ns = (22 * 3_600_000_000_000) / orders.max(1);

    let t = Instant::now();
    let mut n = if loaded { events_total } else { 0 };
    while n < events_total {
        let end = (n + 10_000).min(events_total);
        let batch = Batch {
            events: (n..end).map(|i| event(i, start_ns, step_ns)).collect(),
            ..Default::default()
        };
        store.write_batch(&batch).await.unwrap();
        n = end;
    }
    let per_order = 15;
    let mut n = if loaded { spans_total } else { 0 };
    while n < spans_total {
        let end = (n + 10_000).min(spans_total);
        let batch = Batch {
            spans: (n..end)
                .map(|i| {
                    span(
                        (i / per_order) % orders.max(1),
                        i % per_order,
                        start_ns,
                        step_ns,
                    )
                })
                .collect(),
            ..Default::default()
        };
        store.write_batch(&batch).await.unwrap();
        n = end;
    }
    println!(
        "loaded {spans_total} spans and {events_total} events in {:.0} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut correlator = Correlator::new(
        store.clone(),
        processes.clone(),
        keys.clone(),
        CorrelatorSettings {
            settle: Duration::ZERO,
            ..Default::default()
        },
        Arc::new(engine::metrics::CorrelatorMetrics::default()),
    )
    .await
    .unwrap();
    while correlator.cycle(domain::now_ns()).await.unwrap().records > 0 {}
    drop(correlator);
    println!("correlated in {:.0} s", t.elapsed().as_secs_f64());

    let shutdown = CancellationToken::new();
    let console = Console::start(
        AppState {
            reads: Reads {
                store: store.clone(),
                keys,
                processes,
                caches: Default::default(),
                alerts: Default::default(),
                retention: Default::default(),
            },
            metrics: Arc::new(Metrics::new()),
            auth: Arc::new(console::auth::Auth::open()),
            correlator: None,
        },
        "127.0.0.1:0".parse().unwrap(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let site = format!("http://{}", console.addr);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let order = orders / 2;
    let trace = trace_id(order, 1).to_hex();
    let pages: Vec<(&str, String)> = vec![
        ("overview `/`, default range", "/".into()),
        ("process", "/processes/order-to-delivery".into()),
        (
            "process, filtered by status",
            "/processes/order-to-delivery?status=completed".into(),
        ),
        ("breaches", "/breaches".into()),
        ("search (redirect)", format!("/search?q=O-{order}")),
        ("key: an order", format!("/keys/order/O-{order}")),
        (
            "key: a customer with ~67 orders",
            "/keys/customer/C-7".into(),
        ),
        ("trace", format!("/traces/{trace}")),
        ("systems, default range", "/systems".into()),
    ];
    println!();
    println!("| page | p50 | p95 | max |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, path) in &pages {
        let url = format!("{site}{path}");
        for _ in 0..2 {
            timed(&client, &url).await;
        }
        let mut times = Vec::with_capacity(REQUESTS);
        for _ in 0..REQUESTS {
            times.push(timed(&client, &url).await);
        }
        times.sort();
        println!(
            "| {name} | {} | {} | {} |",
            ms(times[times.len() / 2]),
            ms(percentile(&times, 0.95)),
            ms(*times.last().unwrap())
        );
    }
    // Each request a different minute-aligned range: nothing is cached, the
    // aggregates and the map are computed every time.
    for (name, path) in [
        ("overview, a new range every request (all computed)", "/"),
        (
            "systems, a new range every request (all computed)",
            "/systems",
        ),
    ] {
        let mut times = Vec::with_capacity(REQUESTS);
        for i in 0..REQUESTS {
            let url = format!("{site}{path}?from=now-{}m&to=now-{i}m", 24 * 60 + i);
            times.push(timed(&client, &url).await);
        }
        times.sort();
        println!(
            "| {name} | {} | {} | {} |",
            ms(times[times.len() / 2]),
            ms(percentile(&times, 0.95)),
            ms(*times.last().unwrap())
        );
    }
    shutdown.cancel();
    if kept.is_none() {
        store.drop_database().await.unwrap();
    }
}
