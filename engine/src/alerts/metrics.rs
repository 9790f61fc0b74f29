//! What the evaluator counts for `/metrics`: notification posts by
//! receiver and outcome. A receiver that is down shows here (and in the
//! log) while evaluation goes on.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Posts to receivers since the process started, by receiver and result.
#[derive(Debug, Default)]
pub struct AlertMetrics {
    sent: Mutex<BTreeMap<(String, &'static str, bool), u64>>,
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

    /// `throughline_alert_notifications_total{receiver,kind,result}`.
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
    }
}
