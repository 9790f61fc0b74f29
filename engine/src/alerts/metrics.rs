//! What the evaluator counts for `/metrics`: notification posts by
//! receiver and outcome, and rules that failed to evaluate. A receiver
//! that is down shows here (and in the log) while evaluation goes on.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Posts to receivers since the process started, by receiver and result.
#[derive(Debug, Default)]
pub struct AlertMetrics {
    sent: Mutex<BTreeMap<(String, &'static str, bool), u64>>,
    /// Evaluations that failed (the store unreachable), by rule.
    failed: Mutex<BTreeMap<String, u64>>,
}

/// A label value escaped for the text format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl AlertMetrics {
    /// Counts one post (one HTTP request, with all the alerts it carries).
    pub fn count(&self, receiver: &str, kind: &'static str, ok: bool) {
        *self
            .sent
            .lock()
            .expect("metrics lock")
            .entry((receiver.to_string(), kind, ok))
            .or_default() += 1;
    }

    /// Posts to `receiver` that succeeded (`ok`) or failed so far.
    pub fn sent(&self, receiver: &str, ok: bool) -> u64 {
        self.sent
            .lock()
            .expect("metrics lock")
            .iter()
            .filter(|((r, _, o), _)| r == receiver && *o == ok)
            .map(|(_, n)| n)
            .sum()
    }

    /// Counts one evaluation of `rule` that failed.
    pub fn count_failure(&self, rule: &str) {
        *self
            .failed
            .lock()
            .expect("metrics lock")
            .entry(rule.to_string())
            .or_default() += 1;
    }

    /// Evaluations of `rule` that failed so far.
    pub fn failures(&self, rule: &str) -> u64 {
        self.failed
            .lock()
            .expect("metrics lock")
            .get(rule)
            .copied()
            .unwrap_or(0)
    }

    /// `throughline_alert_notifications_total{receiver,kind,result}` and
    /// `throughline_alert_evaluation_failures_total{rule}`.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP throughline_alert_notifications_total Notification posts to alert receivers, by result (ok or failed).\n\
             # TYPE throughline_alert_notifications_total counter"
        );
        for ((receiver, kind, ok), n) in self.sent.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "throughline_alert_notifications_total{{receiver=\"{}\",kind=\"{kind}\",result=\"{}\"}} {n}",
                escape(receiver),
                if *ok { "ok" } else { "failed" }
            );
        }
        let _ = writeln!(
            out,
            "# HELP throughline_alert_evaluation_failures_total Alert rule evaluations that failed; the rule keeps its last state (a firing alert is still sent to Alertmanagers).\n\
             # TYPE throughline_alert_evaluation_failures_total counter"
        );
        for (rule, n) in self.failed.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "throughline_alert_evaluation_failures_total{{rule=\"{}\"}} {n}",
                escape(rule)
            );
        }
    }
}
