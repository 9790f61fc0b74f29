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
//! `SCALE_LIVE_EVENTS` (500/s), `SCALE_SAMPLES` (30).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../support/mod.rs"]
mod support;

mod plant;
mod report;
mod up;

use plant::{Shape, SPANS_PER_REQUEST, TRACES_PER_REQUEST};
use report::Report;
use support::{env_or, rss_kib};
use up::Up;

const EVENTS_PER_REQUEST: usize = 500;
const PROTOBUF: &str = "application/x-protobuf";
const CLOUDEVENTS_BATCH: &str = "application/cloudevents-batch+json";

/// One sample of `up`'s figures, every second of the run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    records: f64,
    lag_s: f64,
}

#[derive(Default)]
struct Posted {
    latencies: Vec<Duration>,
    records: u64,
    refused: u64,
    /// Sent again after a connection error (a record stored twice is
    /// stored once: spans by their ids, events by source and id).
    retried: u64,
    failed: u64,
    first_error: Option<String>,
}

impl Posted {
    fn add(&mut self, other: Posted) {
        self.latencies.extend(other.latencies);
        self.records += other.records;
        self.refused += other.refused;
        self.retried += other.retried;
        self.failed += other.failed;
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

/// Where a load posts, and how.
#[derive(Clone)]
struct Endpoint {
    client: reqwest::Client,
    url: String,
    content_type: &'static str,
    authorization: String,
}

impl Endpoint {
    fn new(up: &Up, path: &str, content_type: &'static str, timeout: Duration) -> Endpoint {
        Endpoint {
            client: reqwest::Client::builder().timeout(timeout).build().unwrap(),
            url: format!("{}{path}", up.http),
            content_type,
            authorization: up.authorization.clone(),
        }
    }

    /// Posts one body until it is accepted (a 429 or 503 is backpressure: wait
    /// and send it again; a connection error is tried three times) or refused
    /// otherwise.
    async fn post(&self, body: Vec<u8>, records: u64, posted: &mut Posted, deadline: Instant) {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let t = Instant::now();
            let sent = self
                .client
                .post(&self.url)
                .header("content-type", self.content_type)
                .header("authorization", &self.authorization)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    posted.latencies.push(t.elapsed());
                    posted.records += records;
                    return;
                }
                Ok(r) if (r.status() == 429 || r.status() == 503) && Instant::now() < deadline => {
                    posted.refused += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(r) => {
                    let status = r.status();
                    let text = plain(&r.text().await.unwrap_or_default());
                    posted.failed += 1;
                    posted
                        .first_error
                        .get_or_insert_with(|| format!("{status}: {text}"));
                    return;
                }
                Err(e) if !e.is_timeout() && attempts < 3 && Instant::now() < deadline => {
                    posted.retried += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    posted.failed += 1;
                    posted
                        .first_error
                        .get_or_insert_with(|| format!("{e}: {:?}", std::error::Error::source(&e)));
                    return;
                }
            }
        }
    }
}

/// `requests` bodies from `body(n)` posted by `clients` concurrent clients,
/// until done or `deadline`.
async fn load(
    up: &Up,
    path: &str,
    content_type: &'static str,
    requests: usize,
    clients: usize,
    deadline: Instant,
    body: Arc<dyn Fn(usize) -> (Vec<u8>, u64) + Send + Sync>,
) -> Posted {
    let endpoint = Endpoint::new(up, path, content_type, Duration::from_secs(120));
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (endpoint, body) = (endpoint.clone(), body.clone());
            tokio::spawn(async move {
                let mut posted = Posted::default();
                for n in (c..requests).step_by(clients) {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let (bytes, records) = body(n);
                    endpoint.post(bytes, records, &mut posted, deadline).await;
                }
                posted
            })
        })
        .collect();
    let mut all = Posted::default();
    for t in tasks {
        all.add(t.await.unwrap());
    }
    all
}

/// Rows of `table` in `up`'s database (0 while ClickHouse does not answer).
async fn rows(up: &Up, table: &str) -> u64 {
    up.store()
        .row_count(table, store::inspect::Rows::AsWritten)
        .await
        .unwrap_or(0)
}

/// Waits until `table` holds `expected` rows or `deadline`; the rows and
/// when they were all there.
async fn stored(up: &Up, table: &str, expected: u64, deadline: Instant) -> (u64, Option<Instant>) {
    loop {
        let n = rows(up, table).await;
        if n >= expected {
            return (n, Some(Instant::now()));
        }
        if Instant::now() >= deadline {
            return (n, None);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Live load: `per_second` records a second in requests of `batch`, paced;
/// `body(n)` makes request `n`. Runs until `stop`.
fn paced(
    up: &Up,
    path: &'static str,
    content_type: &'static str,
    per_second: u64,
    batch: u64,
    stop: Arc<AtomicBool>,
    body: impl Fn(u64) -> Vec<u8> + Send + Sync + 'static,
) -> tokio::task::JoinHandle<Posted> {
    let endpoint = Endpoint::new(up, path, content_type, Duration::from_secs(60));
    let every = Duration::from_secs_f64(batch as f64 / per_second.max(1) as f64);
    tokio::spawn(async move {
        let in_flight = Arc::new(tokio::sync::Semaphore::new(8));
        let posted = Arc::new(Mutex::new(Posted::default()));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let Ok(slot) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let (endpoint, posted) = (endpoint.clone(), posted.clone());
            let bytes = body(n);
            n += 1;
            tokio::spawn(async move {
                let mut one = Posted::default();
                let deadline = Instant::now() + Duration::from_secs(30);
                endpoint.post(bytes, batch, &mut one, deadline).await;
                posted.lock().unwrap().add(one);
                drop(slot);
            });
        }
        // Wait for what is in flight.
        let _ = in_flight.acquire_many(8).await;
        let all = std::mem::take(&mut *posted.lock().unwrap());
        all
    })
}

/// splitmix64: which order, customer or trace a read asks for.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// The address a read asks for, from the sample's number.
type PathFn = Box<dyn Fn(&mut Rng, u64) -> String>;

/// One read of phase 3: what it asks, and the bound on its p95.
struct Read {
    name: String,
    target_ms: f64,
    target: &'static str,
    path: PathFn,
    times: Vec<Duration>,
    bytes: Vec<usize>,
    failed: u64,
    first_error: Option<String>,
}

fn reads(shape: Shape) -> Vec<Read> {
    let read = |name: &str, target_ms, target, path: PathFn| Read {
        name: name.into(),
        target_ms,
        target,
        path,
        times: Vec::new(),
        bytes: Vec::new(),
        failed: 0,
        first_error: None,
    };
    let orders = shape.orders;
    let customers = shape.customers;
    let mut out = vec![
        read(
            "trace by id `/api/v1/traces/{id}`",
            50.0,
            "p95 < 50 ms",
            Box::new(move |rng, _| {
                format!(
                    "/api/v1/traces/{}",
                    hex::encode(plant::trace_id(rng.below(orders)))
                )
            }),
        ),
        read(
            "an order's key API",
            50.0,
            "p95 < 50 ms",
            Box::new(move |rng, _| {
                format!("/api/v1/keys/order/{}", plant::order_id(rng.below(orders)))
            }),
        ),
        read(
            "a work order's key API",
            50.0,
            "p95 < 50 ms",
            Box::new(move |rng, _| {
                let n = 1 + rng.below(2) as u8;
                format!(
                    "/api/v1/keys/work_order/{}",
                    plant::work_order_id(rng.below(orders), n)
                )
            }),
        ),
        read(
            "a customer's key API (100 orders), first page",
            150.0,
            "p95 < 150 ms",
            Box::new(move |rng, _| format!("/api/v1/keys/customer/C-{}", rng.below(customers))),
        ),
        read(
            "search `/api/v1/search?q=` an order id",
            300.0,
            "p95 < 300 ms",
            Box::new(move |rng, _| {
                format!("/api/v1/search?q={}", plant::order_id(rng.below(orders)))
            }),
        ),
    ];
    let pages = [
        ("overview", "/"),
        ("systems", "/systems"),
        ("process", "/processes/order-to-delivery"),
        ("breaches", "/breaches"),
    ];
    for (range, secs) in [("24 h", 86_400u64), ("7 d", 7 * 86_400)] {
        for (p, (page, path)) in pages.into_iter().enumerate() {
            // Each sample its own range, distinct across pages too: the end
            // a second further back per sample and page.
            out.push(read(
                &format!("{page} page `{path}`, {range}, a range not cached"),
                300.0,
                "p95 < 300 ms",
                Box::new(move |_, sample| {
                    let shift = 1 + sample * 8 + p as u64 + if secs > 86_400 { 4 } else { 0 };
                    let sep = if path.contains('?') { '&' } else { '?' };
                    format!("{path}{sep}from=now-{}s&to=now-{shift}s", secs + shift)
                }),
            ));
        }
    }
    out
}

async fn timed(client: &reqwest::Client, url: &str) -> Result<(Duration, usize), String> {
    let t = Instant::now();
    let r = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = r.status();
    let body = r.bytes().await.map_err(|e| e.to_string())?;
    let took = t.elapsed();
    if status.is_success() || status.is_redirection() {
        Ok((took, body.len()))
    } else {
        Err(format!(
            "{status}: {}",
            plain(&String::from_utf8_lossy(&body))
        ))
    }
}

/// An answer's text for a note: tags out, one line, at most 300 characters.
fn plain(body: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(300).collect()
}

/// The samples at which a correlator cycle had ended since the sample
/// before: its figures moved.
fn cycle_ends(series: &[Sample]) -> impl Iterator<Item = &Sample> {
    series
        .windows(2)
        .filter(|w| w[0].records != w[1].records || w[0].lag_s != w[1].lag_s)
        .map(|w| &w[1])
}

/// The largest lag in `series` between `from` and `to`: the gauge, and the
/// gauge plus the seconds since a cycle last ended (the watermark is at
/// least that old while a long cycle runs).
fn max_lag(series: &[Sample], from: Instant, to: Instant) -> (f64, f64, usize) {
    let (mut gauge, mut bound, mut n) = (0.0f64, 0.0f64, 0);
    let mut ended = series.first().map(|s| s.at);
    for w in series.windows(2) {
        let s = w[1];
        if w[0].records != s.records || w[0].lag_s != s.lag_s {
            ended = Some(s.at);
        }
        if s.at < from || s.at > to {
            continue;
        }
        n += 1;
        gauge = gauge.max(s.lag_s);
        bound = bound.max(s.lag_s + ended.map_or(0.0, |e| since(e, s.at)));
    }
    (gauge, bound, n)
}

fn since(a: Instant, b: Instant) -> f64 {
    b.saturating_duration_since(a).as_secs_f64()
}

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

    let data_dir = tempfile::Builder::new()
        .prefix("throughline-scale-")
        .tempdir()
        .unwrap();
    eprintln!(
        "scale: starting throughline up in {}",
        data_dir.path().display()
    );
    let up = Up::start(data_dir.path()).await;
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
    let (spans_stored, spans_all_at) = stored(&up, "spans_v2", spans.records, load_deadline).await;
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
    let (events_stored, events_all_at) = stored(&up, "events", events.records, load_deadline).await;
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

    // 3. Live load, and the reads meanwhile.
    eprintln!("scale: phase 3: live load {live_spans} spans/s + {live_events} events/s, reads");
    let stop = Arc::new(AtomicBool::new(false));
    let live_start = Instant::now();
    let live_orders = Arc::new(AtomicU64::new(shape.orders));
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
            let pending = Mutex::new((shape.orders, std::collections::VecDeque::new()));
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
    let (ch_rss, ch_hwm) = clickhouse_pid.map_or((0, 0), rss_kib);
    report.memory(up_rss, up_hwm, ch_rss, ch_hwm);
    let spans_now = rows(&up, "spans_v2").await;
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
}
