//! The `alertmanager` receiver against real Alertmanagers (Debian's
//! `prometheus-alertmanager`), each started by the test on a free loopback
//! port with a config and storage directory of its own. The evaluator runs
//! as it does in `up` (`Evaluator::run`, every second), so an alert stays
//! active only as long as it is sent again, and expires once the
//! evaluator stops.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::keys::KeyTypes;
use domain::process::Processes;
use engine::alerts::notify::{Destination, DestinationKind, Retry};
use engine::alerts::rules::Rules;
use engine::alerts::{AlertSettings, Evaluator};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::processes::{app, correlator, send, MIN, ORDER_TO_DELIVERY};

/// Where Debian puts Alertmanager; upstream's tarball calls it `alertmanager`.
fn binary() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/prometheus-alertmanager");
    if debian.exists() {
        return debian;
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("alertmanager"))
        .find(|p| p.exists())
        .expect(
            "Alertmanager is not installed (neither /usr/bin/prometheus-alertmanager nor \
             `alertmanager` on PATH); run `make deps` (Debian's prometheus-alertmanager package)",
        )
}

/// A running Alertmanager, stopped when dropped.
struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    async fn start() -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting Alertmanager");
        let am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = client.get(format!("{}/-/ready", am.url)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return am;
            }
            assert!(
                Instant::now() < deadline,
                "Alertmanager at {} not ready within 30 s",
                am.url
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Alerts Alertmanager holds as active (`GET /api/v2/alerts`, which
    /// leaves out alerts whose `endsAt` passed).
    async fn active(&self, alertname: &str) -> Vec<Value> {
        let body: Value = reqwest::get(format!("{}/api/v2/alerts", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body.as_array()
            .unwrap()
            .iter()
            .filter(|a| a["labels"]["alertname"] == alertname && a["status"]["state"] == "active")
            .cloned()
            .collect()
    }

    /// Waits until `alertname` is active (`true`) or not (`false`).
    async fn wait(&self, alertname: &str, active: bool, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let found = self.active(alertname).await;
            if found.is_empty() != active {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "alert {alertname} still {} in Alertmanager {} after {within:?}",
                if active { "not active" } else { "active" },
                self.url
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

const RULES: &str = r#"
[[rules]]
id = "entry-open"
kind = "open_breaches"
process = "order-to-delivery"
sla = "order-entry"
threshold = 0
severity = "critical"
labels = { runbook = "orders-stuck" }
"#;

/// A rule fires: both Alertmanagers list it, with its severity and labels
/// (a third, dead one costs a failure in the metrics, nothing else). It
/// stays active while it fires, well past one `endsAt` ahead, because it is
/// sent again; it is gone once it resolves; it fires again, and once the
/// evaluator stops, it expires through its `endsAt`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_a_real_alertmanager_stay_while_firing_and_expire_when_stopped() {
    let (am1, am2) = tokio::join!(Alertmanager::start(), Alertmanager::start());
    let dead = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let app = app().await;
    let t = domain::now_ns() - 40 * MIN;
    send(
        &app,
        "c-1",
        "crm",
        "crm.order.created",
        t,
        &[("orderid", "O-1"), ("customerid", "C-1")],
    )
    .await;
    let mut correlator = correlator(&app).await;
    correlator.cycle(domain::now_ns()).await.unwrap();

    let processes = Arc::new(Processes {
        list: vec![
            Processes::parse(ORDER_TO_DELIVERY, "order.toml", &KeyTypes::default()).unwrap(),
        ],
        ..Default::default()
    });
    let rules = Rules::parse_all([("am.toml", RULES)], &processes).unwrap();
    let mut receiver =
        Destination::new("oncall-am", DestinationKind::Alertmanager, &am1.url.clone());
    receiver.urls = vec![am1.url.clone(), format!("{}/", am2.url), dead];
    let settings = AlertSettings {
        interval: Duration::from_secs(1),
        resend_delay: Duration::from_secs(1),
        destinations: vec![receiver],
        external_url: "http://console.example:8080".into(),
        retry: Retry {
            attempts: 1,
            backoff: Duration::ZERO,
            timeout: Duration::from_secs(2),
        },
        ..AlertSettings::default()
    };
    // endsAt lies 4 x max(interval, resend delay) ahead: 4 s.
    let hold = settings.alertmanager_hold();
    assert_eq!(hold, Duration::from_secs(4));
    let metrics = settings.metrics.clone();
    let start = |settings: AlertSettings| {
        let store = app.store.clone();
        let (rules, processes) = (rules.clone(), processes.clone());
        async move {
            let evaluator = Evaluator::new(store, Arc::new(rules), processes, settings)
                .await
                .unwrap();
            let stop = CancellationToken::new();
            let task = tokio::spawn(evaluator.run(stop.clone()));
            (stop, task)
        }
    };
    let (stop, task) = start(settings.clone()).await;

    let within = Duration::from_secs(20);
    for am in [&am1, &am2] {
        let alerts = am.wait("entry-open", true, within).await;
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        let labels = &a["labels"];
        assert_eq!(labels["severity"], "critical", "{a}");
        assert_eq!(labels["process"], "order-to-delivery", "{a}");
        assert_eq!(labels["sla"], "order-entry", "{a}");
        assert_eq!(labels["kind"], "open_breaches", "{a}");
        assert_eq!(labels["runbook"], "orders-stuck", "{a}");
        assert_eq!(
            a["generatorURL"],
            "http://console.example:8080/alerts/entry-open"
        );
        assert!(
            a["annotations"]["summary"]
                .as_str()
                .unwrap()
                .starts_with("1 open SLA breaches"),
            "{a}"
        );
    }
    // Twice the hold later it is still active: it was sent again.
    tokio::time::sleep(2 * hold).await;
    assert_eq!(am1.active("entry-open").await.len(), 1);
    assert_eq!(am2.active("entry-open").await.len(), 1);
    assert!(metrics.sent("oncall-am", true) >= 4, "re-sent while firing");
    assert!(
        metrics.sent("oncall-am", false) >= 1,
        "the dead one counted"
    );

    // The order reaches the ERP (late): the breach closes, the rule
    // resolves, and the resolve (endsAt = now) ends it in both.
    send(
        &app,
        "e-1",
        "erp",
        "erp.sales_order.created",
        t + 20 * MIN,
        &[("orderid", "O-1")],
    )
    .await;
    correlator.cycle(domain::now_ns()).await.unwrap();
    am1.wait("entry-open", false, within).await;
    am2.wait("entry-open", false, within).await;

    // A second order breaches: it fires again.
    send(
        &app,
        "c-2",
        "crm",
        "crm.order.created",
        domain::now_ns() - 30 * MIN,
        &[("orderid", "O-2"), ("customerid", "C-1")],
    )
    .await;
    correlator.cycle(domain::now_ns()).await.unwrap();
    am1.wait("entry-open", true, within).await;

    // Throughline stops: nothing resolves the alert, its endsAt does.
    stop.cancel();
    task.await.unwrap();
    assert_eq!(
        am1.active("entry-open").await.len(),
        1,
        "still active at the stop"
    );
    am1.wait("entry-open", false, within).await;
    am2.wait("entry-open", false, within).await;
}
