//! The scale bench's table: each figure beside issue 16's target, printed
//! and written to `bench-scale.md` in the target directory.

use std::fmt::Write;
use std::time::{Duration, Instant};

use crate::plant::Shape;
use crate::post::Posted;
use crate::support::percentile;

/// A backlog left after the load is timed only from this many records:
/// five cycles' worth (a cycle takes at most 100 000).
const BACKLOG_TO_TIME: f64 = 500_000.0;

pub struct Row {
    what: String,
    measured: String,
    target: String,
    /// Whether the target is met; `None` where the issue sets none.
    met: Option<bool>,
}

pub struct Report {
    header: String,
    clients: usize,
    rows: Vec<Row>,
    tables: Vec<(String, u64)>,
    spans_on_disk: u64,
    notes: Vec<String>,
}

fn rate(n: f64, secs: f64) -> String {
    thousands(if secs > 0.0 { n / secs } else { 0.0 })
}

/// `12345.6` as `12 346`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

impl Report {
    pub fn new(spans: u64, events: u64, clients: usize, shape: &Shape, loadavg: &str) -> Report {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let date = time::OffsetDateTime::now_utc().date();
        Report {
            header: format!(
                "# Scale bench (issue 16)\n\n{date}: `SCALE_SPANS={spans}` `SCALE_EVENTS={events}` \
                 ({} orders of one trace each, {} customers); {cores} cores, load average at \
                 start {loadavg}; `throughline up` (release) with its private ClickHouse, the \
                 sample processes and alert rules.\n",
                thousands(shape.orders as f64),
                thousands(shape.customers as f64),
            ),
            clients,
            rows: Vec::new(),
            tables: Vec::new(),
            spans_on_disk: 0,
            notes: Vec::new(),
        }
    }

    fn row(&mut self, what: impl Into<String>, measured: String, target: &str, met: Option<bool>) {
        self.rows.push(Row {
            what: what.into(),
            measured,
            target: target.into(),
            met,
        });
    }

    fn note_errors(&mut self, what: &str, posted: &Posted) {
        if let Some(e) = &posted.first_error {
            self.notes.push(format!(
                "{what}: {} requests failed; the first: {e}",
                posted.failed
            ));
        }
    }

    /// Phase 1 for spans or events: acknowledged, and end to end until all
    /// acknowledged records were rows.
    pub fn ingest(
        &mut self,
        kind: &str,
        posted: &Posted,
        start: Instant,
        acked_at: Instant,
        stored: u64,
        all_at: Option<Instant>,
    ) {
        let mut latencies = posted.latencies.clone();
        latencies.sort();
        let acked_secs = acked_at.duration_since(start).as_secs_f64();
        let latency = if latencies.is_empty() {
            "no request acknowledged".to_string()
        } else {
            format!(
                "request p50 {}, p99 {}",
                ms(percentile(&latencies, 0.5)),
                ms(percentile(&latencies, 0.99))
            )
        };
        let spans = kind == "spans";
        self.row(
            if spans {
                format!(
                    "spans acknowledged (OTLP/HTTP protobuf, 500 per request, {} clients)",
                    self.clients
                )
            } else {
                format!(
                    "events acknowledged (CloudEvents batches of 500, {} clients)",
                    self.clients
                )
            },
            format!(
                "{} {kind}/s ({} in {acked_secs:.1} s); {latency}; {} refused (429/503) and resent, {} resent after a connection error, {} failed",
                rate(posted.records as f64, acked_secs),
                thousands(posted.records as f64),
                posted.refused,
                posted.retried,
                posted.failed
            ),
            if spans {
                "(issue: 38 962 spans/s, p99 293 ms)"
            } else {
                ""
            },
            None,
        );
        let (measured, met) = match all_at {
            Some(at) => {
                let secs = at.duration_since(start).as_secs_f64();
                let r = stored as f64 / secs;
                (
                    format!(
                        "{} {kind}/s ({} rows in {secs:.1} s)",
                        thousands(r),
                        thousands(stored as f64)
                    ),
                    spans.then_some(r >= 35_000.0),
                )
            }
            None => (
                format!(
                    "only {} of {} rows within the bound",
                    thousands(stored as f64),
                    thousands(posted.records as f64)
                ),
                spans.then_some(false),
            ),
        };
        self.row(
            format!(
                "{kind} end to end, counted in ClickHouse (`{}`)",
                if spans { "spans_v2" } else { "events" }
            ),
            measured,
            if spans { ">= 35 000 spans/s" } else { "" },
            met,
        );
        self.note_errors(kind, posted);
    }

    /// Phase 2.
    pub fn catch_up(
        &mut self,
        read: f64,
        secs: f64,
        read_backlog: f64,
        secs_backlog: f64,
        caught: bool,
        expected: u64,
    ) {
        let r = if secs > 0.0 { read / secs } else { 0.0 };
        self.row(
            "correlator: records read per second, from the first request until its lag < 60 s",
            format!(
                "{} records/s ({} records in {secs:.0} s; {} spans and events stored){}",
                thousands(r),
                thousands(read),
                thousands(expected as f64),
                if caught {
                    ""
                } else {
                    "; lag still >= 60 s at the bound"
                }
            ),
            ">= 20 000 records/s",
            Some(caught && r >= 20_000.0),
        );
        self.row(
            "correlator: the backlog left when the load ended",
            if secs_backlog < 2.0 {
                "none: lag already < 60 s".to_string()
            } else if read_backlog < BACKLOG_TO_TIME {
                // Less than a few cycles' worth: its rate is the cycles'
                // cadence (15 s), not the correlator's speed.
                format!(
                    "none to time: {} records left, read within {secs_backlog:.0} s",
                    thousands(read_backlog)
                )
            } else {
                format!(
                    "{} records/s ({} records in {secs_backlog:.0} s)",
                    rate(read_backlog, secs_backlog),
                    thousands(read_backlog)
                )
            },
            ">= 20 000 records/s",
            (secs_backlog >= 2.0 && read_backlog >= BACKLOG_TO_TIME)
                .then(|| caught && read_backlog / secs_backlog >= 20_000.0),
        );
    }

    /// Phase 3's load and the correlator's lag meanwhile.
    pub fn live(&mut self, secs: f64, spans: &Posted, events: &Posted, lags: (f64, f64, usize)) {
        let (s, e) = (spans.records as f64 / secs, events.records as f64 / secs);
        self.row(
            "live load, paced (during the reads)",
            format!(
                "{} spans/s + {} events/s over {secs:.0} s; {} refused and resent, {} resent after a connection error, {} failed",
                thousands(s),
                thousands(e),
                spans.refused + events.refused,
                spans.retried + events.retried,
                spans.failed + events.failed
            ),
            "5 000 spans/s + 500 events/s",
            None,
        );
        let (gauge, bound, n) = lags;
        self.row(
            "correlator lag during the live load (its gauge, sampled every second)",
            format!(
                "max {gauge:.1} s; at most {bound:.1} s counting the time since a cycle last ended ({n} samples)"
            ),
            "< 60 s",
            Some(n > 0 && bound < 60.0),
        );
        self.note_errors("live spans", spans);
        self.note_errors("live events", events);
    }

    /// One read of phase 3.
    #[allow(clippy::too_many_arguments)]
    pub fn read(
        &mut self,
        name: &str,
        target: &str,
        target_ms: f64,
        times: &[Duration],
        median_bytes: Option<usize>,
        failed: u64,
        first_error: Option<&str>,
    ) {
        if let Some(e) = first_error {
            self.notes
                .push(format!("{name}: {failed} requests failed; the first: {e}"));
        }
        if times.is_empty() {
            self.row(
                name,
                format!("no answer ({failed} failed)"),
                target,
                Some(false),
            );
            return;
        }
        let p95 = percentile(times, 0.95);
        self.row(
            name,
            format!(
                "p50 {}, p95 {} ({} samples, {:.1} kB a body{})",
                ms(percentile(times, 0.5)),
                ms(p95),
                times.len(),
                median_bytes.unwrap_or(0) as f64 / 1e3,
                if failed > 0 {
                    format!(", {failed} failed")
                } else {
                    String::new()
                }
            ),
            target,
            Some(failed == 0 && p95.as_secs_f64() * 1e3 < target_ms),
        );
    }

    /// Phase 4: peak RSS, in KiB.
    pub fn memory(&mut self, up_rss: u64, up_hwm: u64, ch_rss: u64, ch_hwm: u64) {
        self.row(
            "peak RSS of `throughline up` (VmHWM)",
            format!("{} (now {})", mib(up_hwm), mib(up_rss)),
            "< 512 MiB",
            Some(up_hwm > 0 && up_hwm < 512 * 1024),
        );
        self.row(
            "peak RSS of its ClickHouse (VmHWM, a separate process)",
            format!("{} (now {})", mib(ch_hwm), mib(ch_rss)),
            "",
            None,
        );
    }

    /// The highest `VmRSS` of `up` sampled each second in phases 1, 2 and 3
    /// (KiB; 0 for a phase not run), beside the peak.
    pub fn memory_by_phase(&mut self, phases: [u64; 3]) {
        let text = |kib: u64| if kib == 0 { "-".to_string() } else { mib(kib) };
        self.row(
            "highest RSS of `up` sampled each second: load / catch-up / live",
            format!(
                "{} / {} / {}",
                text(phases[0]),
                text(phases[1]),
                text(phases[2])
            ),
            "",
            None,
        );
    }

    /// Phase 4: bytes on disk per table (active parts) per stored span.
    pub fn disk(&mut self, spans: u64, tables: &[(String, u64)]) {
        let total: u64 = tables.iter().map(|t| t.1).sum();
        let per_span = total as f64 / spans.max(1) as f64;
        self.row(
            "bytes on disk per span, all tables (active parts, not optimized)",
            format!("{per_span:.0} B/span ({} spans)", thousands(spans as f64)),
            "<= 100 B/span (issue: 205)",
            Some(spans > 0 && per_span <= 100.0),
        );
        self.tables = tables.to_vec();
        self.spans_on_disk = spans;
    }

    pub fn stop(&mut self, took: Option<Duration>) {
        self.row(
            "SIGTERM to exit of `up`",
            took.map_or("not within 60 s (killed)".into(), |d| {
                format!("{:.1} s", d.as_secs_f64())
            }),
            "< 10 s",
            Some(took.is_some_and(|d| d < Duration::from_secs(10))),
        );
    }

    /// Prints the table and writes it to `bench-scale.md`.
    pub fn finish(&self) {
        let mut out = self.header.clone();
        out.push_str(
            "\n| what | measured | target (issue 16) | met |\n| --- | --- | --- | --- |\n",
        );
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {met} |",
                r.what, r.measured, r.target
            );
        }
        out.push_str("\n| table | bytes on disk | bytes per span |\n| --- | ---: | ---: |\n");
        for (table, bytes) in &self.tables {
            let _ = writeln!(
                out,
                "| `{table}` | {} | {:.1} |",
                thousands(*bytes as f64),
                *bytes as f64 / self.spans_on_disk.max(1) as f64
            );
        }
        if !self.notes.is_empty() {
            out.push_str("\nNotes:\n\n");
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        println!("\n{out}");
        let path = target_dir().join("bench-scale.md");
        match std::fs::write(&path, &out) {
            Ok(()) => eprintln!("scale: written to {}", path.display()),
            Err(e) => eprintln!("scale: could not write {}: {e}", path.display()),
        }
    }
}

/// `$CARGO_TARGET_DIR`, else the target directory this bench was built in
/// (`<target>/release/deps/scale-*`).
fn target_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return dir.into();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| "target".into())
}
