//! `make bench`: the correlator's sustained throughput and its lag.
//!
//! Phase 1 stores N integration events (default 1 000 000; `BENCH_EVENTS`)
//! of an order-to-delivery flow (CRM order with customer, ERP sales order
//! linking order and work order, MES completion naming only the work order),
//! then times a correlator catching up on all of them: sustained events/s.
//! Phase 2 feeds 5 000 events/s for 60 s (`BENCH_RATE`, `BENCH_SECONDS`)
//! while the correlator runs as deployed (15 s interval) and samples its lag
//! (now minus watermark) every 250 ms: the maximum is reported.
//! Bounded in count and time; it stops by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::keys::KeyTypes;
use domain::model::{
    Batch, BusinessKey, Event, EventOrigin, Outcome, Span, SpanId, SpanKind, StatusCode, TraceId,
};
use domain::process::Processes;
use engine::correlator::{Correlator, CorrelatorSettings};
use engine::metrics::CorrelatorMetrics;
use store::{Store, StoreConfig};
use tokio_util::sync::CancellationToken;

const PROCESS: &str = include_str!("../../sample-data/processes/order-to-delivery.toml");

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Event `n` of the flow: order n/3, stage n%3.
fn event(n: u64, base_ns: u64) -> Event {
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
            300_000_000_000,
        ),
        _ => (
            "mes",
            "mes.work_order.completed",
            vec![BusinessKey::new("work_order", format!("WO-{order}"))],
            7_200_000_000_000,
        ),
    };
    let time_ns = base_ns + order * 1_000_000 + offset;
    Event {
        source: format!("urn:bench:{system}"),
        id: format!("e-{n}"),
        system: system.into(),
        event_type: ty.into(),
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
        keys,
        origin: EventOrigin::CloudEvent,
    }
}

/// The spans of order `order`'s trace, as connectors send them: ten spans
/// over crm, middleware, erp and mes, each with the order and its customer,
/// the erp and mes ones with the work order too; none matches a stage.
fn spans(order: u64, per_order: u64, base_ns: u64) -> Vec<Span> {
    const SERVICES: [&str; 10] = [
        "crm",
        "crm",
        "middleware",
        "middleware",
        "erp",
        "erp",
        "erp",
        "mes",
        "mes",
        "mes",
    ];
    let mut trace = [0u8; 16];
    trace[..8].copy_from_slice(&(order + 1).to_be_bytes());
    trace[8..].copy_from_slice(&0x5eed_u64.to_be_bytes());
    (0..per_order)
        .map(|i| {
            let service = SERVICES[(i % 10) as usize];
            let mut keys = vec![
                BusinessKey::new("customer", format!("C-{}", order % 1000)),
                BusinessKey::new("order", format!("O-{order}")),
            ];
            if service == "mes" || (service == "erp" && i % 2 == 0) {
                keys.push(BusinessKey::new("work_order", format!("WO-{order}")));
            }
            keys.sort();
            let start_ns = base_ns + order * 1_000_000 + i * 1_000_000_000;
            Span {
                trace_id: TraceId(trace),
                span_id: SpanId((i + 1).to_be_bytes()),
                parent_span_id: (i > 0).then(|| SpanId(i.to_be_bytes())),
                trace_state: String::new(),
                flags: 0,
                service: service.into(),
                name: format!("{service}.step{i}"),
                kind: SpanKind::Internal,
                start_ns,
                duration_ns: 5_000_000,
                status_code: StatusCode::Unset,
                status_message: String::new(),
                attributes: Default::default(),
                resource: Default::default(),
                scope_name: String::new(),
                scope_version: String::new(),
                events: Vec::new(),
                links: Vec::new(),
                keys,
            }
        })
        .collect()
}

async fn feed(store: &Store, from: u64, to: u64, base_ns: u64) {
    let per_order = env("BENCH_SPANS_PER_ORDER", 0);
    let mut n = from;
    while n < to {
        let end = (n + 10_000).min(to);
        let batch = Batch {
            events: (n..end).map(|i| event(i, base_ns)).collect(),
            // An order's spans come with its first event.
            spans: (n..end)
                .filter(|i| i % 3 == 0)
                .flat_map(|i| spans(i / 3, per_order, base_ns))
                .collect(),
            ..Default::default()
        };
        store.write_batch(&batch).await.unwrap();
        n = end;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("THROUGHLINE_TEST_CLICKHOUSE_URL")
        .expect("set THROUGHLINE_TEST_CLICKHOUSE_URL (make bench does)");
    let total = env("BENCH_EVENTS", 1_000_000);
    let rate = env("BENCH_RATE", 5_000);
    let seconds = env("BENCH_SECONDS", 60);
    let store = Store::new(StoreConfig {
        url,
        database: format!("bench_correlator_{}", std::process::id()),
        user: None,
        password: None,
        timeouts: Default::default(),
        compression: Default::default(),
    });
    store.migrate().await.unwrap();
    let keys = Arc::new(KeyTypes::default());
    let processes = Arc::new(Processes {
        list: vec![Processes::parse(PROCESS, "order-to-delivery.toml", &keys).unwrap()],
        ..Default::default()
    });
    let base_ns = domain::now_ns() - 3 * 86_400_000_000_000;

    let t = Instant::now();
    feed(&store, 0, total, base_ns).await;
    let ingest = t.elapsed();
    println!(
        "| store {total} events and their orders' spans (write_batch, 10k events per batch) | {:.0} events/s | |",
        total as f64 / ingest.as_secs_f64()
    );

    let metrics = Arc::new(CorrelatorMetrics::default());
    let settings = CorrelatorSettings {
        settle: Duration::ZERO,
        ..Default::default()
    };
    let mut correlator = Correlator::new(
        store.clone(),
        processes.clone(),
        keys.clone(),
        settings,
        metrics.clone(),
    )
    .await
    .unwrap();
    // Cycles back to back until one finds nothing new, as `run` does with a
    // backlog.
    let t = Instant::now();
    let (mut records, mut steps, mut instances) = (0, 0, 0);
    loop {
        let report = correlator.cycle(domain::now_ns()).await.unwrap();
        if report.records == 0 {
            break;
        }
        records += report.records;
        steps += report.steps_written;
        instances += report.instances_written;
    }
    let catch_up = t.elapsed();
    println!(
        "| correlator catching up on {records} events ({steps} steps, {instances} instance rows written) | {:.0} events/s | {:.1} s |",
        records as f64 / catch_up.as_secs_f64(),
        catch_up.as_secs_f64()
    );
    drop(correlator);

    // Phase 2: live feed at `rate` with the correlator running as deployed.
    let shutdown = CancellationToken::new();
    let correlator = Correlator::new(
        store.clone(),
        processes,
        keys,
        CorrelatorSettings::default(),
        metrics.clone(),
    )
    .await
    .unwrap();
    let running = tokio::spawn(correlator.run(shutdown.clone()));
    let feeder = {
        let store = store.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut n = total;
            let per_tick = rate / 10;
            for tick in 0..seconds * 10 {
                feed(&store, n, n + per_tick, base_ns).await;
                n += per_tick;
                let next = start + Duration::from_millis((tick + 1) * 100);
                tokio::time::sleep_until(next.into()).await;
            }
            n - total
        })
    };
    // Lag is sampled once the restarted correlator made its first cycle (its
    // start-up, loading the instances of phase 1, is not steady state).
    let first = store.load_watermark("correlator").await.unwrap();
    let mut max_lag = Duration::ZERO;
    let mut samples = 0;
    let started = Instant::now();
    while !feeder.is_finished() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(w) = store.load_watermark("correlator").await.unwrap() {
            if Some(w) == first {
                continue;
            }
            let lag = Duration::from_nanos(domain::now_ns().saturating_sub(w));
            max_lag = max_lag.max(lag);
            samples += 1;
        }
    }
    let fed = feeder.await.unwrap();
    let elapsed = started.elapsed();
    shutdown.cancel();
    let _ = running.await;
    println!(
        "| live feed {fed} events over {:.0} s ({:.0} events/s), correlator every 15 s | max lag {:.1} s | {samples} samples |",
        elapsed.as_secs_f64(),
        fed as f64 / elapsed.as_secs_f64(),
        max_lag.as_secs_f64()
    );
    store.drop_database().await.unwrap();
}
