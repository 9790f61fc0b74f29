//! Both `/metrics` outputs (the collector's, on the OTLP/HTTP listener, and
//! the console's, with the business gauges) pass Prometheus's own check,
//! `promtool check metrics` (Debian's `prometheus` package), with data in
//! them: records stored, instances and an open breach, and a receiver's
//! counts with a name that needs escaping.

use std::io::Write;
use std::process::{Command, Stdio};

use engine::alerts::metrics::AlertMetrics;

use crate::processes::{app, two_orders_one_entered};

/// `promtool check metrics` on `text`: its output when it fails.
pub fn promtool_check(what: &str, text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}); run `make deps` (Debian's prometheus package)")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics on the {what}'s /metrics:\n{}{}\n--- the text ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_metrics_pass_promtool_check_metrics() {
    let app = app().await;
    two_orders_one_entered(&app).await;

    let collector = app.metrics().await;
    assert!(collector.contains("# TYPE"), "{collector}");
    promtool_check("collector", &collector);
    let console = app.console_metrics().await;
    assert!(console.contains("throughline_breaches_open{"), "{console}");
    promtool_check("console", &console);

    // The evaluator's family, as `up` adds it, with a receiver name that
    // needs escaping.
    let alerts = AlertMetrics::default();
    alerts.count("on\"call\\", "alertmanager", true);
    alerts.count("on\"call\\", "alertmanager", false);
    let mut text = String::new();
    alerts.render(&mut text);
    promtool_check("alert evaluator", &text);
}
