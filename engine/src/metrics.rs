//! The correlator's numbers. The binary publishes the technical ones
//! (lag, records, steps) on every `/metrics` of the process; the open
//! breaches are business figures and only the console's authenticated
//! `/metrics` shows them.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct CorrelatorMetrics {
    /// Now minus the watermark after the last cycle.
    pub lag_ns: AtomicU64,
    pub steps_written: AtomicU64,
    /// Feed records read.
    pub records: AtomicU64,
    /// Instances held in memory (in flight: a deadline to wait for, or an
    /// open breach) after the last cycle.
    pub instances_held: AtomicU64,
    /// With several correlator partitions: each one's lag (now minus its
    /// stored watermark) by `K/N`, as this one last read them.
    pub partition_lags: Mutex<BTreeMap<String, u64>>,
    /// With several correlator partitions: whether each wrote its
    /// watermark lately (never started, or silent past
    /// `store::correlation::partitions::SILENT_AFTER`: not), by `K/N`.
    pub partition_up: Mutex<BTreeMap<String, bool>>,
    /// Open breaches by (process, SLA).
    pub open_breaches: Mutex<BTreeMap<(String, String), u64>>,
}

impl CorrelatorMetrics {
    /// Lag, records read and steps written, in the Prometheus text format.
    pub fn render_technical(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP throughline_correlator_lag_seconds Now minus the correlator's watermark after its last cycle (per partition K/N when several share the work).\n\
             # TYPE throughline_correlator_lag_seconds gauge"
        );
        let lags = self.partition_lags.lock().expect("metrics lock");
        if lags.is_empty() {
            let _ = writeln!(
                out,
                "throughline_correlator_lag_seconds {}",
                get(&self.lag_ns) as f64 / 1e9
            );
        }
        for (partition, lag) in lags.iter() {
            let _ = writeln!(
                out,
                "throughline_correlator_lag_seconds{{partition=\"{partition}\"}} {}",
                *lag as f64 / 1e9
            );
        }
        drop(lags);
        let up = self.partition_up.lock().expect("metrics lock");
        if !up.is_empty() {
            let _ = writeln!(
                out,
                "# HELP throughline_correlator_partition_up Whether correlator partition K/N wrote its watermark within the last two minutes (0: stopped or never started).\n\
                 # TYPE throughline_correlator_partition_up gauge"
            );
        }
        for (partition, alive) in up.iter() {
            let _ = writeln!(
                out,
                "throughline_correlator_partition_up{{partition=\"{partition}\"}} {}",
                u8::from(*alive)
            );
        }
        drop(up);
        let _ = writeln!(
            out,
            "# HELP throughline_correlator_instances_held Process instances the correlator holds in memory (in flight or with an open breach).\n\
             # TYPE throughline_correlator_instances_held gauge\n\
             throughline_correlator_instances_held {}",
            get(&self.instances_held)
        );
        for (name, help, value) in [
            (
                "throughline_correlator_steps_written_total",
                "Process steps the correlator wrote.",
                get(&self.steps_written),
            ),
            (
                "throughline_correlator_records_total",
                "Spans and events the correlator read from the feed.",
                get(&self.records),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
    }

    /// Open breaches by process and SLA, as the correlator last wrote them.
    pub fn render_open_breaches(&self, out: &mut String, esc: impl Fn(&str) -> String) {
        let _ = writeln!(
            out,
            "# HELP throughline_breaches_open Open SLA breaches by process and SLA.\n# TYPE throughline_breaches_open gauge"
        );
        for ((process, sla), n) in self.open_breaches.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "throughline_breaches_open{{process=\"{}\",sla=\"{}\"}} {n}",
                esc(process),
                esc(sla)
            );
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}
