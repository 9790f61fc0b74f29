//! `make bench-scale`: a plant's day through a real `throughline up`, the
//! measurements of issue 16 beside its targets.
//!
//! `throughline up` runs as a child process with its private ClickHouse
//! (18.16 here), the demo plant's configuration, a connector token and the
//! sample process definitions and alert rules. The bench talks to it only
//! over HTTP, and reads ClickHouse only for row counts and sizes on disk
//! (`store::inspect`). Four phases, each bounded in time so that it always
//! ends:
//!
//! 1. Bulk load: `SCALE_SPANS` spans (default 10 000 000) over OTLP/HTTP
//!    protobuf, 8 clients, 500 spans per request, then `SCALE_EVENTS`
//!    events (default 2 000 000) as CloudEvents batches of 500 (see
//!    `plant.rs` for their shape). Acknowledged rate and request latency;
//!    end to end counted in ClickHouse (rows of `spans_v2`, `events`).
//! 2. Correlator catch-up: records read per second (its `/metrics`) until
//!    its lag is under 60 s.
//! 3. Live load, 5 000 spans/s and 500 events/s paced, and meanwhile the
//!    reads of issue 16, interleaved, `SCALE_SAMPLES` (30) each; each page
//!    sample asks for a range nobody asked before (its end shifted by a
//!    second), so no cached aggregate answers it. The correlator's lag is
//!    sampled every second.
//! 4. Peak RSS (`VmHWM`) of `up` and of its ClickHouse, bytes on disk per
//!    span per table (active parts, as they are), and how long SIGTERM
//!    takes to stop `up`.
//!
//! The table goes to stdout and to `bench-scale.md` in the target
//! directory. Knobs: `SCALE_SPANS`, `SCALE_EVENTS`, `SCALE_CLIENTS` (8),
//! `SCALE_LOAD_SECS` (3600, phase 1), `SCALE_CATCHUP_SECS` (1800),
//! `SCALE_LIVE_SECS` (1800, phase 3), `SCALE_LIVE_SPANS` (5000/s),
//! `SCALE_LIVE_EVENTS` (500/s), `SCALE_SAMPLES` (30), `SCALE_KEEP` (set
//! to keep the data directory, and so the private ClickHouse's data, for
//! looking into the queries afterwards), `SCALE_REUSE` (a kept data
//! directory: phases 1 and 2 are skipped and phase 3 reads the data a
//! former run left, a few minutes instead of half an hour to measure the
//! reads again; `SCALE_SPANS` must be the size that run loaded),
//! `SCALE_BIN` (another `throughline` binary to run, for an A/B).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../support/mod.rs"]
mod support;

mod lag;
mod plant;
mod post;
mod reads;
mod report;
mod up;

use lag::{cycle_ends, max_lag, since, Sample};
use plant::{Shape, SPANS_PER_REQUEST, TRACES_PER_REQUEST};
use post::{load, paced};
use reads::{reads, timed, Rng};
use report::Report;
use support::{env_or, rss_kib};
use up::Up;

const EVENTS_PER_REQUEST: usize = 500;
const PROTOBUF: &str = "application/x-protobuf";
const CLOUDEVENTS_BATCH: &str = "application/cloudevents-batch+json";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let spans_total: u64 = env_or("SCALE_SPANS", 10_000_000);
    let events_total: u64 = env_or("SCALE_EVENTS", 2_000_000);
    let clients: usize = env_or("SCALE_CLIENTS", 8);
    let load_secs: u64 = env_or("SCALE_LOAD_SECS", 3600);
    let catchup_secs: u64 = env_or("SCALE_CATCHUP_SECS", 1800);
    let live_secs: u64 = env_or("SCALE_LIVE_SECS", 1800);
    let live_spans: u64 = env_or("SCALE_LIVE_SPANS", 5000);
    let live_events: u64 = env_or("SCALE_LIVE_EVENTS", 500);
    let samples: u64 = env_or("SCALE_SAMPLES", 30);
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let loadavg: Vec<&str> = loadavg.split_whitespace().take(3).collect();

    let reuse = std::env::var_os("SCALE_REUSE").map(std::path::PathBuf::from);
    let data_dir = tempfile::Builder::new()
        .prefix("throughline-scale-")
        .tempdir()
        .unwrap();
    let dir = reuse
        .clone()
        .unwrap_or_else(|| data_dir.path().to_path_buf());
    eprintln!("scale: starting throughline up in {}", dir.display());
    let up = Up::start(&dir).await;
    let up_pid = up.pid();
    let clickhouse_pid = up.clickhouse_pid();
    eprintln!(
        "scale: up (pid {up_pid}) ready, its ClickHouse {} (pid {clickhouse_pid:?})",
        up.clickhouse_url
    );

    // `up`'s correlator figures every second, for the whole run.
    let series: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (series, sampling) = (series.clone(), sampling.clone());
        let metrics = up.http.clone();
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Some(f) = up::correlator(&metrics).await {
                    series.lock().unwrap().push(Sample {
                        at: Instant::now(),
                        records: f.records,
                        lag_s: f.lag_s,
                        rss_kib: rss_kib(up_pid).0,
                    });
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    // 1. Bulk load.
    let now_ns = domain::now_ns();
    let shape = Shape::new(spans_total, now_ns);
    let mut report = Report::new(
        spans_total,
        events_total,
        clients,
        &shape,
        &loadavg.join(" "),
    );
    let load_start = Instant::now();
    let mut phase2_start = None;
    if reuse.is_none() {
        let load_deadline = load_start + Duration::from_secs(load_secs);
        let span_requests = shape.orders.div_ceil(TRACES_PER_REQUEST) as usize;
        eprintln!(
            "scale: phase 1: {} spans ({} orders, {} customers) in {span_requests} requests",
            shape.orders * plant::SPANS_PER_TRACE,
            shape.orders,
            shape.customers
        );
        let spans = load(
            &up,
            "/v1/traces",
            PROTOBUF,
            span_requests,
            clients,
            load_deadline,
            Arc::new(move |n| {
                let first = n as u64 * TRACES_PER_REQUEST;
                let last = (first + TRACES_PER_REQUEST).min(shape.orders);
                let body = plant::spans_request(&shape, first..last, |o| shape.order_start(o));
                (body, (last - first) * plant::SPANS_PER_TRACE)
            }),
        )
        .await;
        let spans_acked_at = Instant::now();
        let (spans_stored, spans_all_at) =
            up.stored("spans_v2", spans.records, load_deadline).await;
        eprintln!(
            "scale: {} spans acknowledged in {:.0} s, {spans_stored} stored in {:.0} s",
            spans.records,
            since(load_start, spans_acked_at),
            since(load_start, spans_all_at.unwrap_or_else(Instant::now))
        );
        report.ingest(
            "spans",
            &spans,
            load_start,
            spans_acked_at,
            spans_stored,
            spans_all_at,
        );

        let planned = Arc::new(plant::bulk_events(&shape, events_total, now_ns));
        let event_requests = planned.len().div_ceil(EVENTS_PER_REQUEST);
        let events_start = Instant::now();
        let events = load(
            &up,
            "/v1/events",
            CLOUDEVENTS_BATCH,
            event_requests,
            clients,
            load_deadline,
            {
                let planned = planned.clone();
                Arc::new(move |n| {
                    let chunk = &planned
                        [n * EVENTS_PER_REQUEST..((n + 1) * EVENTS_PER_REQUEST).min(planned.len())];
                    (plant::events_batch(&shape, chunk), chunk.len() as u64)
                })
            },
        )
        .await;
        drop(planned);
        let events_acked_at = Instant::now();
        let (events_stored, events_all_at) =
            up.stored("events", events.records, load_deadline).await;
        eprintln!(
            "scale: {} events acknowledged, {events_stored} stored in {:.0} s",
            events.records,
            since(events_start, events_all_at.unwrap_or_else(Instant::now))
        );
        report.ingest(
            "events",
            &events,
            events_start,
            events_acked_at,
            events_stored,
            events_all_at,
        );

        // 2. Correlator catch-up: until a cycle that ended after the load did
        // reports a lag under 60 s. The gauge is set at the end of each cycle,
        // so a cycle's end is a sample whose figures moved.
        let backlog_start = Instant::now();
        phase2_start = Some(backlog_start);
        let catchup_deadline = backlog_start + Duration::from_secs(catchup_secs);
        let records_at = |t: Instant| {
            let s = series.lock().unwrap();
            s.iter()
                .rev()
                .find(|x| x.at <= t)
                .or(s.first())
                .map_or(0.0, |x| x.records)
        };
        let caught_up = loop {
            let caught = cycle_ends(&series.lock().unwrap())
                .find(|s| s.at >= backlog_start && s.lag_s < 60.0)
                .map(|s| s.at);
            if caught.is_some() {
                break caught;
            }
            if Instant::now() >= catchup_deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let end = caught_up.unwrap_or_else(Instant::now);
        let read_total = records_at(end);
        let read_backlog = read_total - records_at(backlog_start);
        eprintln!(
            "scale: phase 2: correlator read {read_total} records, caught up: {:?}",
            caught_up.map(|t| since(load_start, t))
        );
        report.catch_up(
            read_total,
            since(load_start, end),
            read_backlog,
            since(backlog_start, end),
            caught_up.is_some(),
            spans_stored + events_stored,
        );
    }

    // A reused day: `up` starts its correlator there (the horizon's
    // instances read back, and what the former run left in the feed), as a
    // full run's phase 3 starts with the correlator caught up. Wait for
    // that (a lag under 5 s, at most 10 minutes) so the reads are measured
    // beside the live load, not beside a restart.
    if reuse.is_some() {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            // Until its first cycle has ended (records read) the gauge says 0.
            let lag = up::correlator(&up.http)
                .await
                .filter(|f| f.records > 0.0)
                .map_or(f64::MAX, |f| f.lag_s);
            if lag < 5.0 || Instant::now() >= deadline {
                eprintln!("scale: reused day: correlator lag {lag:.1} s, phase 3 starts");
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    // 3. Live load, and the reads meanwhile.
    eprintln!("scale: phase 3: live load {live_spans} spans/s + {live_events} events/s, reads");
    let stop = Arc::new(AtomicBool::new(false));
    let live_start = Instant::now();
    // Orders of their own, also when the data of a former run is reused
    // (its live orders started at `shape.orders`).
    let first_live = if reuse.is_some() {
        shape.orders * 2 + (now_ns / 1_000_000_000 % 1000) * 1_000_000
    } else {
        shape.orders
    };
    let live_orders = Arc::new(AtomicU64::new(first_live));
    let live_span_task = paced(
        &up,
        "/v1/traces",
        PROTOBUF,
        live_spans,
        SPANS_PER_REQUEST,
        stop.clone(),
        {
            let live_orders = live_orders.clone();
            move |_| {
                let first = live_orders.fetch_add(TRACES_PER_REQUEST, Ordering::Relaxed);
                let now = domain::now_ns();
                plant::spans_request(&shape, first..first + TRACES_PER_REQUEST, |_| now)
            }
        },
    );
    // Live events complete orders that started four hours ago, in order.
    let batch = (live_events / 5).max(1);
    let live_event_task = paced(
        &up,
        "/v1/events",
        CLOUDEVENTS_BATCH,
        live_events,
        batch,
        stop.clone(),
        {
            let pending = Mutex::new((first_live, std::collections::VecDeque::new()));
            move |_| {
                let mut guard = pending.lock().unwrap();
                let (next, queue) = &mut *guard;
                let now = domain::now_ns();
                while (queue.len() as u64) < batch {
                    queue.extend(plant::order_events(*next, now - 4 * 3_600_000_000_000, now));
                    *next += 1;
                }
                let events: Vec<_> = queue.drain(..batch as usize).collect();
                plant::events_batch(&shape, &events)
            }
        },
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let live_deadline = live_start + Duration::from_secs(live_secs);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut reads = reads(shape);
    let mut rng = Rng(0x5ca1e);
    // One round unrecorded (connections), then the samples, interleaved.
    'rounds: for round in 0..=samples {
        if round > 0 && round % 10 == 0 {
            eprintln!(
                "scale: {round} of {samples} samples after {:.0} s",
                since(live_start, Instant::now())
            );
        }
        for read in reads.iter_mut() {
            if Instant::now() >= live_deadline {
                eprintln!("scale: phase 3 reached its bound of {live_secs} s");
                break 'rounds;
            }
            let url = format!("{}{}", up.console, (read.path)(&mut rng, round));
            let result = timed(&client, &url).await;
            if round == 0 {
                continue;
            }
            match result {
                Ok((took, bytes)) => {
                    read.times.push(took);
                    read.bytes.push(bytes);
                }
                Err(e) => {
                    read.failed += 1;
                    read.first_error.get_or_insert(format!("{url}: {e}"));
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let live_end = Instant::now();
    let live_spans_posted = live_span_task.await.unwrap();
    let live_events_posted = live_event_task.await.unwrap();
    let lags = max_lag(&series.lock().unwrap(), live_start, live_end);
    report.live(
        since(live_start, live_end),
        &live_spans_posted,
        &live_events_posted,
        lags,
    );
    for read in &mut reads {
        read.times.sort();
        read.bytes.sort();
        report.read(
            &read.name,
            read.target,
            read.target_ms,
            &read.times,
            read.bytes.get(read.bytes.len() / 2).copied(),
            read.failed,
            read.first_error.as_deref(),
        );
    }

    // 4. Memory and disk.
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let (up_rss, up_hwm) = rss_kib(up_pid);
    {
        // Where the peak lies: the highest VmRSS sampled in each phase.
        let series = series.lock().unwrap();
        let end = Instant::now();
        report.memory_by_phase([
            phase2_start.map_or(0, |p2| lag::max_rss(&series, load_start, p2)),
            phase2_start.map_or(0, |p2| lag::max_rss(&series, p2, live_start)),
            lag::max_rss(&series, live_start, end),
        ]);
    }
    let (ch_rss, ch_hwm) = clickhouse_pid.map_or((0, 0), rss_kib);
    report.memory(up_rss, up_hwm, ch_rss, ch_hwm);
    let spans_now = up.rows("spans_v2").await;
    let tables: Vec<(String, u64)> = up
        .store()
        .table_sizes()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.table, t.bytes))
        .collect();
    report.disk(spans_now, &tables);

    eprintln!("scale: stopping up with SIGTERM");
    let stopped = up.stop(Duration::from_secs(60));
    report.stop(stopped);
    report.finish();
    if std::env::var_os("SCALE_KEEP").is_some() && reuse.is_none() {
        eprintln!("scale: kept {}", data_dir.keep().display());
    }
}
