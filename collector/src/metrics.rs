//! Counters and the insert latency histogram, rendered in the Prometheus text
//! format. One [`Metrics`] is made at start and shared: inside `throughline up`
//! the collector's and the console's `/metrics` show the same numbers.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::limits::Truncated;

/// Upper bounds (seconds) of the insert latency buckets.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A Prometheus histogram with fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: LATENCY_BUCKETS.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Counters by signal: spans or log records.
#[derive(Debug, Default)]
pub struct SignalCounters {
    /// Records that arrived in a request we could decode.
    pub received: AtomicU64,
    /// Records refused on their own (bad ids) or with their whole request.
    pub rejected: AtomicU64,
    /// Records ClickHouse confirmed.
    pub written: AtomicU64,
    /// Records refused because their request's token may not write for
    /// their system.
    pub forbidden: AtomicU64,
    /// Records stored cut down, by limit (in the order of `Truncated::ALL`).
    pub truncated: [AtomicU64; Truncated::ALL.len()],
}

impl SignalCounters {
    /// Counts a record once for each limit it went past.
    pub fn count_truncated(&self, truncated: Truncated) {
        for ((flag, _), counter) in Truncated::ALL.iter().zip(&self.truncated) {
            if truncated.contains(*flag) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The spool's gauges; the spool keeps its size accounting in them.
#[derive(Debug, Default)]
pub struct SpoolGauges {
    /// Bytes appended (or being appended) and not yet stored in ClickHouse.
    pub bytes: AtomicU64,
    /// Records (requests) synced to the spool and not yet stored.
    pub records: AtomicU64,
    /// Append time of the oldest record not yet stored; 0 when none waits.
    pub oldest_unsent_ns: AtomicU64,
    /// Group commits (one write + fsync each).
    pub commits: AtomicU64,
}

/// The forwarder's figures (an edge collector, `crate::forward`); shown
/// only once `enabled`.
#[derive(Debug, Default)]
pub struct ForwardCounters {
    /// This collector forwards to a central one.
    pub enabled: std::sync::atomic::AtomicBool,
    /// Records central acknowledged, by signal (spans, logs, events).
    pub forwarded: [AtomicU64; 3],
    /// Records central refused as data (written to the dead-letter file, or
    /// dropped from a partial success), by signal.
    pub refused: [AtomicU64; 3],
    /// Requests sent again after a retryable failure.
    pub retries: AtomicU64,
    /// Records dropped unsent from a full spool (`drop_oldest`).
    pub dropped: AtomicU64,
    /// 1 while the last request reached central and was answered, else 0.
    pub upstream_up: AtomicU64,
    /// Why central cannot be reached, in detail; `None` while it can.
    pub problem: Mutex<Option<String>>,
}

/// One listener's connections (see [`crate::connections`]).
#[derive(Debug, Default)]
pub struct ListenerCounters {
    /// Connections open now (including TLS handshakes in progress).
    pub open: AtomicU64,
    /// The listener's cap (`max_connections`).
    pub limit: AtomicU64,
    /// Closed because a request head did not arrive in time
    /// (`header_read_timeout`).
    pub header_timeouts: AtomicU64,
    /// Closed after `idle_timeout` without a request.
    pub idle_timeouts: AtomicU64,
    /// Closed at the cap to make room for a new connection.
    pub evicted: AtomicU64,
    /// Requests whose body did not arrive within `body_read_timeout`.
    pub body_timeouts: AtomicU64,
}

pub struct Metrics {
    pub spool: SpoolGauges,
    pub forward: ForwardCounters,
    /// Inserts of a batch into ClickHouse that succeeded, and their records.
    pub insert_batches: AtomicU64,
    pub insert_records: AtomicU64,
    /// Inserts retried after a retryable failure.
    pub insert_retries: AtomicU64,
    /// Records ClickHouse refused as data, written to the dead-letter file.
    pub dead_letters: AtomicU64,
    /// Why the writer cannot reach ClickHouse right now, in detail (for the
    /// log and `/admin`; URLs without user info); `None` while it can.
    pub clickhouse_problem: Mutex<Option<String>>,
    pub spans: SignalCounters,
    pub logs: SignalCounters,
    pub events: SignalCounters,
    /// Events refused on their own because they were invalid.
    pub events_invalid: AtomicU64,
    /// Redelivered events (same source and id) not stored again.
    pub events_duplicates: AtomicU64,
    /// Of those, events whose source and id were stored from another
    /// system.
    pub events_conflicts: AtomicU64,
    /// Requests refused as a whole, by reason.
    pub requests_bad: AtomicU64,
    pub requests_too_large: AtomicU64,
    pub requests_unsupported: AtomicU64,
    pub requests_overloaded: AtomicU64,
    pub requests_spool_full: AtomicU64,
    pub requests_unauthenticated: AtomicU64,
    pub requests_forbidden: AtomicU64,
    pub insert_errors: AtomicU64,
    pub insert_latency: Histogram,
    /// TLS handshakes that failed or timed out, on any listener.
    pub tls_handshake_failures: AtomicU64,
    /// Each listener's connections, by listener name.
    listeners: Mutex<Vec<(&'static str, Arc<ListenerCounters>)>>,
    /// Other parts of this process that publish technical figures on
    /// every `/metrics` (the correlator's lag): the binary adds them.
    also: Mutex<Vec<Also>>,
}

/// A family of figures another part of the process renders into `/metrics`.
pub type Also = Box<dyn Fn(&mut String) + Send + Sync>;

impl Metrics {
    pub fn new() -> Self {
        Self {
            spool: SpoolGauges::default(),
            forward: ForwardCounters::default(),
            insert_batches: AtomicU64::new(0),
            insert_records: AtomicU64::new(0),
            insert_retries: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            clickhouse_problem: Mutex::new(None),
            spans: SignalCounters::default(),
            logs: SignalCounters::default(),
            events: SignalCounters::default(),
            events_invalid: AtomicU64::new(0),
            events_duplicates: AtomicU64::new(0),
            events_conflicts: AtomicU64::new(0),
            requests_bad: AtomicU64::new(0),
            requests_too_large: AtomicU64::new(0),
            requests_unsupported: AtomicU64::new(0),
            requests_overloaded: AtomicU64::new(0),
            requests_spool_full: AtomicU64::new(0),
            requests_unauthenticated: AtomicU64::new(0),
            requests_forbidden: AtomicU64::new(0),
            insert_errors: AtomicU64::new(0),
            insert_latency: Histogram::new(),
            tls_handshake_failures: AtomicU64::new(0),
            listeners: Mutex::new(Vec::new()),
            also: Mutex::new(Vec::new()),
        }
    }

    /// Adds a family of figures that another part of this process renders
    /// on every `/metrics`.
    pub fn also(&self, render: impl Fn(&mut String) + Send + Sync + 'static) {
        self.also
            .lock()
            .expect("metrics lock")
            .push(Box::new(render));
    }

    /// The forwarder's families, on an edge collector only.
    fn render_forward(&self, out: &mut String) {
        let f = &self.forward;
        if !f.enabled.load(Ordering::Relaxed) {
            return;
        }
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for (name, help, values) in [
            (
                "throughline_forwarded_total",
                "Records the central collector acknowledged.",
                &f.forwarded,
            ),
            (
                "throughline_forward_refused_total",
                "Records the central collector refused as data (in the dead-letter file or named in a partial success).",
                &f.refused,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (signal, value) in ["spans", "logs", "events"].iter().zip(values) {
                let _ = writeln!(out, "{name}{{signal=\"{signal}\"}} {}", get(value));
            }
        }
        let _ = writeln!(
            out,
            "# HELP throughline_forward_retries_total Requests to the central collector sent again after a retryable failure.\n# TYPE throughline_forward_retries_total counter\nthroughline_forward_retries_total {}",
            get(&f.retries)
        );
        let _ = writeln!(
            out,
            "# HELP throughline_forward_dropped_total Records dropped unsent because the spool was full and the central collector could not be reached (spool_when_full = drop_oldest).\n# TYPE throughline_forward_dropped_total counter\nthroughline_forward_dropped_total {}",
            get(&f.dropped)
        );
        let _ = writeln!(
            out,
            "# HELP throughline_forward_upstream_up 1 while the central collector answers, 0 while it cannot be reached or refuses this collector.\n# TYPE throughline_forward_upstream_up gauge\nthroughline_forward_upstream_up {}",
            get(&f.upstream_up)
        );
    }

    /// The connection counters of the listener `name` (made on first use).
    pub fn listener(&self, name: &'static str) -> Arc<ListenerCounters> {
        let mut listeners = self.listeners.lock().expect("metrics lock");
        if let Some((_, counters)) = listeners.iter().find(|(n, _)| *n == name) {
            return counters.clone();
        }
        let counters = Arc::new(ListenerCounters::default());
        listeners.push((name, counters.clone()));
        counters
    }

    /// The Prometheus text exposition of everything above.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let counter = |out: &mut String, name: &str, help: &str, series: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in series {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        for (name, help, pick) in [
            (
                "throughline_received_total",
                "Records received in decodable requests.",
                (|s: &SignalCounters| &s.received) as fn(&SignalCounters) -> &AtomicU64,
            ),
            (
                "throughline_rejected_total",
                "Records refused, alone or with their request.",
                |s: &SignalCounters| &s.rejected,
            ),
            (
                "throughline_written_total",
                "Records ClickHouse confirmed.",
                |s: &SignalCounters| &s.written,
            ),
            (
                "throughline_forbidden_total",
                "Records refused because their request's connector token may not write for their system.",
                |s: &SignalCounters| &s.forbidden,
            ),
        ] {
            counter(
                &mut out,
                name,
                help,
                &[
                    ("{signal=\"spans\"}", get(pick(&self.spans))),
                    ("{signal=\"logs\"}", get(pick(&self.logs))),
                    ("{signal=\"events\"}", get(pick(&self.events))),
                ],
            );
        }
        let mut truncated = Vec::new();
        for (signal, counters) in [
            ("spans", &self.spans),
            ("logs", &self.logs),
            ("events", &self.events),
        ] {
            for ((_, limit), value) in Truncated::ALL.iter().zip(&counters.truncated) {
                truncated.push((
                    format!("{{signal=\"{signal}\",limit=\"{limit}\"}}"),
                    get(value),
                ));
            }
        }
        let truncated: Vec<(&str, u64)> = truncated.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        counter(
            &mut out,
            "throughline_truncated_records_total",
            "Records stored cut down to the [limits], by the limit they went past.",
            &truncated,
        );
        counter(
            &mut out,
            "throughline_requests_refused_total",
            "Requests refused as a whole, by reason.",
            &[
                ("{reason=\"bad_request\"}", get(&self.requests_bad)),
                ("{reason=\"too_large\"}", get(&self.requests_too_large)),
                (
                    "{reason=\"unsupported_media_type\"}",
                    get(&self.requests_unsupported),
                ),
                ("{reason=\"unavailable\"}", get(&self.requests_overloaded)),
                ("{reason=\"spool_full\"}", get(&self.requests_spool_full)),
                (
                    "{reason=\"unauthenticated\"}",
                    get(&self.requests_unauthenticated),
                ),
                ("{reason=\"forbidden\"}", get(&self.requests_forbidden)),
            ],
        );
        counter(
            &mut out,
            "throughline_events_rejected_total",
            "Events refused: invalid on their own, or with their request (spool full or not writable).",
            &[
                ("{reason=\"invalid_event\"}", get(&self.events_invalid)),
                (
                    "{reason=\"unavailable\"}",
                    get(&self.events.rejected).saturating_sub(get(&self.events_invalid)),
                ),
            ],
        );
        counter(
            &mut out,
            "throughline_events_duplicates_dropped_total",
            "Redelivered events (same source and id) recognised and not stored again.",
            &[("", get(&self.events_duplicates))],
        );
        counter(
            &mut out,
            "throughline_event_id_conflicts_total",
            "Events not stored because their source and id were stored from another system (counted in the duplicates too).",
            &[("", get(&self.events_conflicts))],
        );
        counter(
            &mut out,
            "throughline_insert_errors_total",
            "Failed ClickHouse inserts.",
            &[("", get(&self.insert_errors))],
        );
        counter(
            &mut out,
            "throughline_insert_batches_total",
            "Batches ClickHouse confirmed.",
            &[("", get(&self.insert_batches))],
        );
        counter(
            &mut out,
            "throughline_insert_records_total",
            "Records (spans, logs, events) in batches ClickHouse confirmed.",
            &[("", get(&self.insert_records))],
        );
        counter(
            &mut out,
            "throughline_insert_retries_total",
            "Inserts retried after a retryable failure (ClickHouse away, timeout, overload).",
            &[("", get(&self.insert_retries))],
        );
        counter(
            &mut out,
            "throughline_dead_letters_total",
            "Records ClickHouse refused as data, written to the dead-letter file and not retried.",
            &[("", get(&self.dead_letters))],
        );
        counter(
            &mut out,
            "throughline_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out (plain HTTP to a TLS port, unknown certificate, silent client).",
            &[("", get(&self.tls_handshake_failures))],
        );
        self.render_listeners(&mut out);
        let s = &self.spool;
        let oldest = get(&s.oldest_unsent_ns);
        let age = if oldest == 0 || get(&s.records) == 0 {
            0.0
        } else {
            domain::now_ns().saturating_sub(oldest) as f64 / 1e9
        };
        for (name, help, value) in [
            (
                "throughline_spool_bytes",
                "Bytes in the spool not yet stored in ClickHouse.",
                get(&s.bytes) as f64,
            ),
            (
                "throughline_spool_records",
                "Requests in the spool not yet stored in ClickHouse.",
                get(&s.records) as f64,
            ),
            (
                "throughline_spool_oldest_unsent_seconds",
                "Age of the oldest spooled record not yet stored; 0 when none waits.",
                age,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        self.render_forward(&mut out);
        counter(
            &mut out,
            "throughline_spool_commits_total",
            "Group commits to the spool (one write and one fsync each).",
            &[("", get(&s.commits))],
        );
        for render in self.also.lock().expect("metrics lock").iter() {
            render(&mut out);
        }
        self.insert_latency.render(
            &mut out,
            "throughline_insert_duration_seconds",
            "Time to write one batch to ClickHouse.",
        );
        out
    }
}

impl Metrics {
    /// The connection figures of every listener.
    fn render_listeners(&self, out: &mut String) {
        let listeners = self.listeners.lock().expect("metrics lock");
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for (name, kind, help, pick) in [
            (
                "throughline_connections_open",
                "gauge",
                "Connections open on a listener (TLS handshakes included).",
                (|c: &ListenerCounters| &c.open) as fn(&ListenerCounters) -> &AtomicU64,
            ),
            (
                "throughline_connections_limit",
                "gauge",
                "Connections a listener holds at most (max_connections).",
                |c: &ListenerCounters| &c.limit,
            ),
            (
                "throughline_request_body_timeouts_total",
                "counter",
                "Requests whose body did not arrive within body_read_timeout.",
                |c: &ListenerCounters| &c.body_timeouts,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (listener, counters) in listeners.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{listener=\"{listener}\"}} {}",
                    get(pick(counters))
                );
            }
        }
        let name = "throughline_connections_closed_total";
        let _ = writeln!(
            out,
            "# HELP {name} Connections the server closed, by reason (header_read_timeout, idle_timeout, evicted at max_connections).\n# TYPE {name} counter"
        );
        for (listener, c) in listeners.iter() {
            for (reason, value) in [
                ("header_timeout", &c.header_timeouts),
                ("idle_timeout", &c.idle_timeouts),
                ("evicted", &c.evicted),
            ] {
                let _ = writeln!(
                    out,
                    "{name}{{listener=\"{listener}\",reason=\"{reason}\"}} {}",
                    get(value)
                );
            }
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}
