//! Alerts: each kind of rule fires and resolves against a real ClickHouse,
//! and its notifications reach a webhook receiver the test runs on loopback.
//! The evaluator is driven by hand (`cycle(now)`), so time moves when the
//! test says and nothing waits on an interval.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use domain::keys::KeyTypes;
use domain::process::Processes;
use domain::time::rfc3339;
use engine::alerts::notify::{Destination, DestinationKind, Retry};
use engine::alerts::rules::Rules;
use engine::alerts::{AlertSettings, Evaluator};
use serde_json::{json, Value};

use crate::harness::{TestApp, TestConfig};
use crate::processes::{app, correlator, send, two_orders_one_entered, MIN, ORDER_TO_DELIVERY};

/// A webhook receiver on 127.0.0.1: records every body it accepts, and
/// answers 500 to the first `fail_first` requests.
#[derive(Clone)]
pub(crate) struct Hook {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct HookState {
    bodies: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicUsize>,
    fail_first: usize,
}

async fn hook_handler(State(s): State<HookState>, Json(body): Json<Value>) -> StatusCode {
    let n = s.requests.fetch_add(1, Ordering::SeqCst);
    if n < s.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    s.bodies.lock().unwrap().push(body);
    StatusCode::OK
}

impl Hook {
    pub(crate) async fn start(fail_first: usize) -> Hook {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/hook", post(hook_handler))
            .route("/api/v2/alerts", post(hook_handler))
            .with_state(HookState {
                bodies: bodies.clone(),
                requests: requests.clone(),
                fail_first,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hook {
            addr,
            bodies,
            requests,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// As an Alertmanager: it takes `POST /api/v2/alerts` too.
    fn alertmanager_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    pub(crate) fn take(&self) -> Vec<Value> {
        std::mem::take(&mut *self.bodies.lock().unwrap())
    }
}

const CONSOLE: &str = "http://console.example:8080";

fn processes() -> Arc<Processes> {
    Arc::new(Processes {
        list: vec![
            Processes::parse(ORDER_TO_DELIVERY, "order.toml", &KeyTypes::default()).unwrap(),
        ],
        ..Default::default()
    })
}

fn settings(destinations: Vec<Destination>) -> AlertSettings {
    AlertSettings {
        interval: Duration::from_secs(3600),
        repeat_interval: Duration::from_secs(4 * 3600),
        destinations,
        external_url: CONSOLE.into(),
        retry: Retry {
            attempts: 3,
            backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
        },
        ..AlertSettings::default()
    }
}

pub(crate) fn webhook(hook: &Hook) -> Destination {
    Destination::new("oncall", DestinationKind::Webhook, &hook.url())
}

pub(crate) async fn evaluator(
    app: &TestApp,
    rules: &str,
    destinations: Vec<Destination>,
) -> Evaluator {
    let rules = Rules::parse_all([("test.toml", rules)], &processes()).expect("valid rules");
    Evaluator::new(
        app.store.clone(),
        Arc::new(rules),
        processes(),
        settings(destinations),
    )
    .await
    .unwrap()
}

/// Checks an Alertmanager v4 body field by field.
fn check_webhook(
    body: &Value,
    status: &str,
    labels: Value,
    summary: &str,
    starts_ns: u64,
    ends_ns: Option<u64>,
) {
    let alertname = labels["alertname"].as_str().unwrap().to_string();
    assert_eq!(body["version"], "4", "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["receiver"], "oncall");
    assert_eq!(
        body["groupKey"],
        format!("{{}}:{{alertname=\"{alertname}\"}}")
    );
    assert_eq!(body["groupLabels"], json!({ "alertname": alertname }));
    assert_eq!(body["commonLabels"], labels);
    assert_eq!(body["commonAnnotations"]["summary"], summary);
    assert_eq!(body["externalURL"], CONSOLE);
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a["status"], status);
    assert_eq!(a["labels"], labels);
    assert_eq!(a["annotations"]["summary"], summary);
    assert_eq!(a["startsAt"], rfc3339(starts_ns));
    match ends_ns {
        Some(ns) => assert_eq!(a["endsAt"], rfc3339(ns)),
        None => assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z"),
    }
    assert_eq!(a["generatorURL"], format!("{CONSOLE}/alerts/{alertname}"));
    assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
}

const BREACH_RULES: &str = r#"
[[rules]]
id = "entry-open"
kind = "open_breaches"
process = "order-to-delivery"
sla = "order-entry"
threshold = 0
severity = "critical"
labels = { team = "sales-ops" }
annotations = { summary = "{value} open order-entry breaches (threshold {threshold}): {orders} orders of {customers} customers affected" }

[[rules]]
id = "entry-breaches"
kind = "sla_breaches"
process = "order-to-delivery"
window = "1h"
measure = "share"
threshold = 50
annotations = { summary = "{value} of orders breached an SLA: {orders} orders of {customers} customers" }

[[rules]]
id = "entry-latency"
kind = "stage_latency"
process = "order-to-delivery"
from = "captured"
to = "sales_order"
percentile = 95
window = "2h"
limit = "10m"
annotations = { summary = "p95 captured -> sales_order {value} over {threshold}: {affected}" }
"#;

/// Open breaches, breaches in a window (as a share) and stage latency, each
/// firing and resolving, with the business impact in the summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breach_rules_fire_and_resolve_with_orders_and_customers() {
    let app = app().await;
    let hook = Hook::start(0).await;
    let t = domain::now_ns() - 40 * MIN;
    for (i, (order, customer)) in [("O-1", "C-1"), ("O-2", "C-1"), ("O-3", "C-2")]
        .iter()
        .enumerate()
    {
        send(
            &app,
            &format!("c-{i}"),
            "crm",
            "crm.order.created",
            t + i as u64 * MIN,
            &[("orderid", order), ("customerid", customer)],
        )
        .await;
    }
    // A fourth order reaches the ERP in time: no breach.
    send(
        &app,
        "c-4",
        "crm",
        "crm.order.created",
        t + 3 * MIN,
        &[("orderid", "O-4"), ("customerid", "C-3")],
    )
    .await;
    send(
        &app,
        "e-4",
        "erp",
        "erp.sales_order.created",
        t + 5 * MIN,
        &[("orderid", "O-4")],
    )
    .await;
    let mut correlator = correlator(&app).await;
    let now = domain::now_ns();
    correlator.cycle(now).await.unwrap();

    let mut alerts = evaluator(&app, BREACH_RULES, vec![webhook(&hook)]).await;
    let report = alerts.cycle(now).await.unwrap();
    assert_eq!(report.evaluated, 3);
    let bodies = hook.take();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    let named = |name: &str| {
        bodies
            .iter()
            .find(|b| b["groupLabels"]["alertname"] == name)
            .unwrap()
            .clone()
    };
    check_webhook(
        &named("entry-open"),
        "firing",
        json!({"alertname": "entry-open", "severity": "critical", "kind": "open_breaches",
               "process": "order-to-delivery", "sla": "order-entry", "team": "sales-ops", "owner": "unowned"}),
        "3 open order-entry breaches (threshold 0): 3 orders of 2 customers affected",
        now,
        None,
    );
    check_webhook(
        &named("entry-breaches"),
        "firing",
        json!({"alertname": "entry-breaches", "severity": "warning", "kind": "sla_breaches",
               "process": "order-to-delivery", "owner": "unowned", "team": "unowned"}),
        "75% of orders breached an SLA: 3 orders of 2 customers",
        now,
        None,
    );
    // Three orders wait for the ERP past the 10 minute limit: the longest
    // wait (O-1's, since t) is the 95th percentile.
    check_webhook(
        &named("entry-latency"),
        "firing",
        json!({"alertname": "entry-latency", "severity": "warning", "kind": "stage_latency",
               "process": "order-to-delivery", "owner": "unowned", "team": "unowned"}),
        &format!(
            "p95 captured -> sales_order {} over 10m: order:O-1, order:O-2, order:O-3",
            domain::process::duration::format_ns((now - t) / 1_000_000_000 * 1_000_000_000)
        ),
        now,
        None,
    );

    // Two orders reach the ERP late: their breaches close, one stays open.
    for (i, order) in ["O-1", "O-2"].iter().enumerate() {
        send(
            &app,
            &format!("e-{i}"),
            "erp",
            "erp.sales_order.created",
            t + 20 * MIN + i as u64 * MIN,
            &[("orderid", order)],
        )
        .await;
    }
    let now2 = domain::now_ns();
    correlator.cycle(now2).await.unwrap();
    alerts.cycle(now2).await.unwrap();
    // Every rule still holds: nothing new is sent.
    assert!(hook.take().is_empty());

    // The last order reaches the ERP, late too: that closes the last open
    // breach, and the open-breach rule resolves.
    send(
        &app,
        "e-9",
        "erp",
        "erp.sales_order.created",
        t + 2 * MIN + 16 * MIN,
        &[("orderid", "O-3")],
    )
    .await;
    let now3 = domain::now_ns();
    correlator.cycle(now3).await.unwrap();
    alerts.cycle(now3).await.unwrap();
    let bodies = hook.take();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    check_webhook(
        &bodies[0],
        "resolved",
        json!({"alertname": "entry-open", "severity": "critical", "kind": "open_breaches",
               "process": "order-to-delivery", "sla": "order-entry", "team": "sales-ops", "owner": "unowned"}),
        "0 open order-entry breaches (threshold 0): 0 orders of 0 customers affected",
        now,
        Some(now3),
    );

    // Hours later the breaches and instances have left the windows.
    let later = now3 + 180 * MIN;
    alerts.cycle(later).await.unwrap();
    let mut bodies = hook.take();
    bodies.sort_by_key(|b| b["groupLabels"]["alertname"].as_str().unwrap().to_string());
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    check_webhook(
        &bodies[0],
        "resolved",
        json!({"alertname": "entry-breaches", "severity": "warning", "kind": "sla_breaches",
               "process": "order-to-delivery", "owner": "unowned", "team": "unowned"}),
        "0% of orders breached an SLA: 0 orders of 0 customers",
        now,
        Some(later),
    );
    check_webhook(
        &bodies[1],
        "resolved",
        json!({"alertname": "entry-latency", "severity": "warning", "kind": "stage_latency",
               "process": "order-to-delivery", "owner": "unowned", "team": "unowned"}),
        "p95 captured -> sales_order no data over 10m: none",
        now,
        Some(later),
    );
}

const SYSTEM_RULES: &str = r#"
[[rules]]
id = "mes-silent"
kind = "system_silence"
system = "mes"
silent_for = "5m"
severity = "critical"
annotations = { summary = "{affected} silent for {value} (limit {threshold})" }

[[rules]]
id = "erp-errors"
kind = "error_rate"
system = "erp"
window = "15m"
threshold = 25
annotations = { summary = "ERP error rate {value} over {threshold}: {orders} orders of {customers} customers" }

[[rules]]
id = "dead-letters"
kind = "dead_letters"
event_type = "crm.order.update"
window = "15m"
threshold = 0
annotations = { summary = "{value} dead letters: {orders} orders of {customers} customers" }
"#;

/// Silence of a system, error rate and dead letters, firing and resolving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_rules_fire_and_resolve() {
    let app = app().await;
    let hook = Hook::start(0).await;
    let now = domain::now_ns();
    send(&app, "m-1", "mes", "mes.heartbeat", now - 10 * MIN, &[]).await;
    send(
        &app,
        "e-1",
        "erp",
        "erp.sales_order.created",
        now - 2 * MIN,
        &[("orderid", "O-1")],
    )
    .await;
    send(
        &app,
        "e-2",
        "erp",
        "erp.sales_order.created",
        now - 2 * MIN,
        &[
            ("orderid", "O-2"),
            ("customerid", "C-9"),
            ("outcome", "failed"),
        ],
    )
    .await;
    send(
        &app,
        "u-1",
        "crm",
        "crm.order.update",
        now - MIN,
        &[
            ("orderid", "O-3"),
            ("customerid", "C-9"),
            ("outcome", "dead_lettered"),
        ],
    )
    .await;
    let mut alerts = evaluator(&app, SYSTEM_RULES, vec![webhook(&hook)]).await;
    let t = domain::now_ns();
    alerts.cycle(t).await.unwrap();
    let mut bodies = hook.take();
    bodies.sort_by_key(|b| b["groupLabels"]["alertname"].as_str().unwrap().to_string());
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    check_webhook(
        &bodies[0],
        "firing",
        json!({"alertname": "dead-letters", "severity": "warning", "kind": "dead_letters",
               "event_type": "crm.order.update", "owner": "unowned", "team": "unowned"}),
        "1 dead letters: 1 orders of 1 customers",
        t,
        None,
    );
    check_webhook(
        &bodies[1],
        "firing",
        json!({"alertname": "erp-errors", "severity": "warning", "kind": "error_rate", "system": "erp", "owner": "unowned", "team": "unowned"}),
        "ERP error rate 50% over 25%: 1 orders of 1 customers",
        t,
        None,
    );
    let silent = &bodies[2]["commonAnnotations"]["summary"];
    assert!(
        silent
            .as_str()
            .unwrap()
            .starts_with("system:mes silent for 10m"),
        "{silent}"
    );
    check_webhook(
        &bodies[2],
        "firing",
        json!({"alertname": "mes-silent", "severity": "critical", "kind": "system_silence", "system": "mes", "owner": "unowned", "team": "unowned"}),
        silent.as_str().unwrap(),
        t,
        None,
    );

    // MES speaks again: its silence resolves, the others keep firing.
    send(&app, "m-2", "mes", "mes.heartbeat", domain::now_ns(), &[]).await;
    let t2 = domain::now_ns();
    alerts.cycle(t2).await.unwrap();
    let bodies = hook.take();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let summary = bodies[0]["commonAnnotations"]["summary"].as_str().unwrap();
    assert!(summary.starts_with("none silent for "), "{summary}");
    check_webhook(
        &bodies[0],
        "resolved",
        json!({"alertname": "mes-silent", "severity": "critical", "kind": "system_silence", "system": "mes", "owner": "unowned", "team": "unowned"}),
        summary,
        t,
        Some(t2),
    );

    // Twenty minutes on, the failures have left the 15 minute window.
    let later = t2 + 20 * MIN;
    send(&app, "m-3", "mes", "mes.heartbeat", later - MIN, &[]).await;
    alerts.cycle(later).await.unwrap();
    let mut bodies = hook.take();
    bodies.sort_by_key(|b| b["groupLabels"]["alertname"].as_str().unwrap().to_string());
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    check_webhook(
        &bodies[0],
        "resolved",
        json!({"alertname": "dead-letters", "severity": "warning", "kind": "dead_letters",
               "event_type": "crm.order.update", "owner": "unowned", "team": "unowned"}),
        "0 dead letters: 0 orders of 0 customers",
        t,
        Some(later),
    );
    check_webhook(
        &bodies[1],
        "resolved",
        json!({"alertname": "erp-errors", "severity": "warning", "kind": "error_rate", "system": "erp", "owner": "unowned", "team": "unowned"}),
        "ERP error rate 0% over 25%: 0 orders of 0 customers",
        t,
        Some(later),
    );
}

const DEAD_LETTERS_FOR: &str = r#"
[[rules]]
id = "dl"
kind = "dead_letters"
window = "5m"
threshold = 0
for = "10m"
"#;

/// A condition that comes and goes more often than `for` never fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_holds_back_a_flapping_condition() {
    let app = app().await;
    let hook = Hook::start(0).await;
    let now = domain::now_ns();
    for (i, ago) in [60, 50, 40, 30].iter().enumerate() {
        send(
            &app,
            &format!("d-{i}"),
            "crm",
            "crm.order.update",
            now - ago * MIN,
            &[("outcome", "dead_lettered")],
        )
        .await;
    }
    let mut alerts = evaluator(&app, DEAD_LETTERS_FOR, vec![webhook(&hook)]).await;
    // Each dead letter is in the 5 minute window for a moment, then not.
    let mut phases = Vec::new();
    for at in [59, 54, 49, 44, 39, 34, 29, 26] {
        alerts.cycle(now - at * MIN).await.unwrap();
        phases.push(
            app.store.alert_states().await.unwrap()[0]
                .state
                .phase
                .as_str(),
        );
    }
    assert_eq!(
        phases,
        [
            "pending", "inactive", "pending", "inactive", "pending", "inactive", "pending",
            "pending"
        ]
    );
    assert!(!phases.contains(&"firing"), "{phases:?}");
    assert!(hook.bodies().is_empty());
    assert_eq!(hook.requests.load(Ordering::SeqCst), 0);
}

const DEAD_LETTERS: &str = r#"
[[rules]]
id = "dl"
kind = "dead_letters"
window = "1h"
threshold = 0
severity = "critical"
"#;

async fn one_dead_letter(app: &TestApp) {
    send(
        app,
        "d-1",
        "crm",
        "crm.order.update",
        domain::now_ns() - MIN,
        &[("orderid", "O-7"), ("outcome", "dead_lettered")],
    )
    .await;
}

/// A restart while firing loads the state: the firing notice that was
/// delivered is not sent again, and the rule resolves later as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_firing_sends_no_second_firing() {
    let app = app().await;
    let hook = Hook::start(0).await;
    one_dead_letter(&app).await;
    let mut first = evaluator(&app, DEAD_LETTERS, vec![webhook(&hook)]).await;
    let t = domain::now_ns();
    first.cycle(t).await.unwrap();
    assert_eq!(hook.bodies().len(), 1);
    assert_eq!(hook.bodies()[0]["status"], "firing");
    drop(first);

    let mut second = evaluator(&app, DEAD_LETTERS, vec![webhook(&hook)]).await;
    let report = second.cycle(t + MIN).await.unwrap();
    assert_eq!(report.transitions, 0);
    assert_eq!(report.sent, 0);
    assert_eq!(hook.bodies().len(), 1, "{:?}", hook.bodies());

    let later = t + 120 * MIN;
    second.cycle(later).await.unwrap();
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["status"], "resolved");
    // It resolves the alert that started before the restart.
    assert_eq!(bodies[1]["alerts"][0]["startsAt"], rfc3339(t));
    assert_eq!(bodies[1]["alerts"][0]["endsAt"], rfc3339(later));
    let history = app.store.alert_history("dl", 10).await.unwrap();
    let phases: Vec<(&str, &str)> = history
        .iter()
        .rev()
        .map(|h| (h.from.as_str(), h.to.as_str()))
        .collect();
    assert_eq!(phases, [("inactive", "firing"), ("firing", "resolved")]);
}

/// Runs `sql` on the test's database, as ClickHouse's HTTP interface takes it.
async fn clickhouse(app: &TestApp, sql: &str) {
    let config = app.store.config();
    let mut request = reqwest::Client::new()
        .post(&config.url)
        .query(&[("database", config.database.as_str())])
        .body(sql.to_string());
    if let Some(user) = &config.user {
        request = request.basic_auth(user, config.password.as_ref());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{sql}: {status} {text}");
}

/// A firing rule whose evaluation fails (its table gone, as when ClickHouse
/// is down) keeps its state, as in Prometheus: the failure is counted, and
/// the Alertmanager still gets the firing alert every resend delay, as last
/// known, with its `endsAt` ahead again, so an outage longer than the hold
/// does not resolve it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_rule_that_fails_to_evaluate_is_still_sent_to_alertmanagers() {
    let app = app().await;
    let hook = Hook::start(0).await;
    one_dead_letter(&app).await;
    let rules = Rules::parse_all([("test.toml", DEAD_LETTERS)], &processes()).unwrap();
    let am = Destination::new(
        "am",
        DestinationKind::Alertmanager,
        &hook.alertmanager_url(),
    );
    let mut s = settings(vec![am]);
    // Resent hourly, held 4 hours: a few cycles outlast the hold.
    s.resend_delay = Duration::from_secs(3600);
    let (metrics, hold) = (s.metrics.clone(), s.alertmanager_hold().as_nanos() as u64);
    let resend = s.resend_delay.as_nanos() as u64;
    let mut alerts = Evaluator::new(app.store.clone(), Arc::new(rules), processes(), s)
        .await
        .unwrap();
    let t = domain::now_ns();
    let report = alerts.cycle(t).await.unwrap();
    assert_eq!((report.evaluated, report.failed), (1, 0), "{report:?}");
    let first = hook.take();
    assert_eq!(first.len(), 1, "{first:?}");
    let fired = first[0][0].clone();
    assert_eq!(fired["labels"]["alertname"], "dl", "{fired}");
    assert_eq!(fired["endsAt"], rfc3339(t + hold));

    clickhouse(&app, "RENAME TABLE events TO events_gone").await;
    let mut at = t;
    // Longer than the hold, one resend delay at a time.
    for _ in 0..(hold / resend + 2) {
        at += resend;
        let report = alerts.cycle(at).await.unwrap();
        assert_eq!((report.evaluated, report.failed), (0, 1), "{report:?}");
        let sent = hook.take();
        assert_eq!(sent.len(), 1, "at {at}: {sent:?}");
        let alert = &sent[0][0];
        assert_eq!(alert["labels"], fired["labels"], "{alert}");
        assert_eq!(alert["annotations"], fired["annotations"], "{alert}");
        assert_eq!(alert["startsAt"], rfc3339(t), "{alert}");
        assert_eq!(alert["endsAt"], rfc3339(at + hold), "{alert}");
    }
    // Within the resend delay, nothing goes again.
    alerts.cycle(at + resend / 2).await.unwrap();
    assert!(hook.take().is_empty());
    let failures = hold / resend + 3;
    assert_eq!(metrics.failures("dl"), failures);
    let mut text = String::new();
    metrics.render(&mut text);
    assert!(
        text.contains(&format!(
            "throughline_alert_evaluation_failures_total{{rule=\"dl\"}} {failures}"
        )),
        "{text}"
    );

    // Back, hours later: the dead letter has left the rule's hour, so the
    // rule resolves the alert that fired before the outage.
    clickhouse(&app, "RENAME TABLE events_gone TO events").await;
    let back = at + resend;
    let report = alerts.cycle(back).await.unwrap();
    assert_eq!(
        (report.evaluated, report.failed, report.transitions),
        (1, 0, 1),
        "{report:?}"
    );
    let sent = hook.take();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0][0]["startsAt"], rfc3339(t));
    assert_eq!(sent[0][0]["endsAt"], rfc3339(back));
    // Only the notices are logged as deliveries, not the re-sends.
    let notifications = app.store.alert_notifications("dl", 10).await.unwrap();
    assert_eq!(notifications.len(), 2, "{notifications:?}");
}

/// A firing notice that no receiver took before a restart is sent after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_undelivered_before_a_restart_is_sent_after_it() {
    let app = app().await;
    // Fails every attempt of the first evaluator (one attempt per cycle).
    let hook = Hook::start(1).await;
    one_dead_letter(&app).await;
    // A second rule: the receiver, down after the first rule's attempt, is
    // not tried again in the same cycle.
    let two = format!(
        "{DEAD_LETTERS}\n[[rules]]\nid = \"dl2\"\nkind = \"dead_letters\"\nwindow = \"1h\"\n"
    );
    let rules = Rules::parse_all([("test.toml", two.as_str())], &processes()).unwrap();
    let mut once = settings(vec![webhook(&hook)]);
    once.retry.attempts = 1;
    let mut first = Evaluator::new(app.store.clone(), Arc::new(rules), processes(), once)
        .await
        .unwrap();
    let t = domain::now_ns();
    let report = first.cycle(t).await.unwrap();
    assert_eq!(report.undelivered, 2);
    assert_eq!(hook.requests.load(Ordering::SeqCst), 1);
    assert!(hook.bodies().is_empty());
    drop(first);

    let mut second = evaluator(&app, &two, vec![webhook(&hook)]).await;
    second.cycle(t + MIN).await.unwrap();
    let mut bodies = hook.bodies();
    bodies.sort_by_key(|b| b["groupLabels"]["alertname"].as_str().unwrap().to_string());
    assert_eq!(bodies.len(), 2);
    for (body, name) in bodies.iter().zip(["dl", "dl2"]) {
        assert_eq!(body["groupLabels"]["alertname"], name);
        assert_eq!(body["status"], "firing");
        assert_eq!(body["alerts"][0]["startsAt"], rfc3339(t));
    }
}

/// Retries with backoff: a receiver that answers 500 twice gets the message
/// on the third try, and every attempt is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_twice_gets_the_message_on_the_third_try() {
    let app = app().await;
    let hook = Hook::start(2).await;
    one_dead_letter(&app).await;
    let mut alerts = evaluator(&app, DEAD_LETTERS, vec![webhook(&hook)]).await;
    let report = alerts.cycle(domain::now_ns()).await.unwrap();
    assert_eq!(report.sent, 1);
    assert_eq!(hook.requests.load(Ordering::SeqCst), 3);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["status"], "firing");
    let mut log = app.store.alert_notifications("dl", 10).await.unwrap();
    log.reverse();
    let attempts: Vec<(u32, bool, &str)> = log
        .iter()
        .map(|a| (a.attempt, a.ok, a.detail.as_str()))
        .collect();
    assert_eq!(
        attempts,
        [
            (1, false, "HTTP 500"),
            (2, false, "HTTP 500"),
            (3, true, "HTTP 200")
        ]
    );
    assert!(log
        .iter()
        .all(|a| a.destination == "oncall" && a.notice.as_str() == "firing"));
}

/// A Slack receiver gets a `text` with the state, the rule, the summary and
/// a link to the rule's page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_text_with_a_link() {
    let app = app().await;
    let hook = Hook::start(0).await;
    one_dead_letter(&app).await;
    let slack = Destination::new("slack", DestinationKind::SlackWebhook, &hook.url());
    let mut alerts = evaluator(&app, DEAD_LETTERS, vec![slack]).await;
    alerts.cycle(domain::now_ns()).await.unwrap();
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        bodies[0],
        json!({"text": format!(
            "[FIRING] dl (critical): 1 dead-lettered events (threshold 0): 1 orders of 0 customers affected\n<{CONSOLE}/alerts/dl|Open in Throughline>"
        )})
    );
}

/// A rule file with a mistake is refused at start, with its file and line.
#[test]
fn a_rule_file_with_an_error_is_refused_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orders.toml"),
        "[[rules]]\nid = \"late\"\nkind = \"open_breaches\"\nprocess = \"order-to-delivery\"\nsla = \"order-entri\"\n",
    )
    .unwrap();
    let err = Rules::load_dir(dir.path(), &processes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:5: rule `late` names SLA `order-entri`, which process `order-to-delivery` does not define; its SLAs: order-entry, production",
            dir.path().join("orders.toml").display()
        )
    );
}

/// `/api/v1/alerts` lists each rule with its state, value and since when;
/// `/api/v1/alerts/{id}` adds what makes it fire (linked to its pages), its
/// history and its delivery attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_state_value_history_and_deliveries() {
    let app = TestApp::with(TestConfig {
        processes: vec![ORDER_TO_DELIVERY],
        alerts: Some(BREACH_RULES),
        ..Default::default()
    })
    .await;
    let hook = Hook::start(0).await;
    send(
        &app,
        "c-1",
        "crm",
        "crm.order.created",
        domain::now_ns() - 30 * MIN,
        &[("orderid", "O-1"), ("customerid", "C-1")],
    )
    .await;
    let now = domain::now_ns();
    correlator(&app).await.cycle(now).await.unwrap();
    let (status, body) = app.get("/api/v1/alerts").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["state"] == "unknown"));

    let mut alerts = evaluator(&app, BREACH_RULES, vec![webhook(&hook)]).await;
    alerts.cycle(now).await.unwrap();
    let (status, body) = app.get("/api/v1/alerts").await;
    assert_eq!(status, 200, "{body}");
    let list = body["alerts"].as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|a| a["id"].as_str().unwrap()).collect();
    // All three fire (O-1 waits for the ERP past the latency limit).
    assert_eq!(ids, ["entry-breaches", "entry-latency", "entry-open"]);
    let open = &list[2];
    assert_eq!(open["state"], "firing");
    assert_eq!(open["value"], "1");
    assert_eq!(open["threshold"], "0");
    assert_eq!(open["since"], rfc3339(now));
    assert_eq!(open["fired_at"], rfc3339(now));
    assert_eq!(open["orders"], 1);
    assert_eq!(open["customers"], 1);
    assert_eq!(
        open["summary"],
        "1 open order-entry breaches (threshold 0): 1 orders of 1 customers affected"
    );
    assert!(list.iter().all(|a| a["state"] == "firing"), "{body}");

    let (status, one) = app.get("/api/v1/alerts/entry-open").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(
        one["affected"],
        json!([{"kind": "order", "value": "O-1", "href": "/keys/order/O-1"}])
    );
    assert_eq!(
        one["history"],
        json!([{"at": rfc3339(now), "from": "inactive", "to": "firing", "value": "1"}])
    );
    let sent = one["notifications"].as_array().unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["receiver"], "oncall");
    assert_eq!(sent[0]["notice"], "firing");
    assert_eq!(sent[0]["ok"], true);
    assert_eq!(sent[0]["detail"], "HTTP 200");

    let (status, body) = app.get("/api/v1/alerts/nope").await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("entry-open"),
        "{body}"
    );
}

/// The console's `/metrics` carries the business gauges a team's own
/// Prometheus can alert on, each family once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_metrics_expose_the_business_gauges() {
    let app = app().await;
    two_orders_one_entered(&app).await;
    let text = app
        .client
        .get(format!("http://{}/metrics", app.console))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "throughline_instances{process=\"order-to-delivery\",status=\"stalled\"} 1",
        "throughline_instances{process=\"order-to-delivery\",status=\"in_flight\"} 1",
        "throughline_instances{process=\"order-to-delivery\",status=\"completed\"} 0",
        "throughline_breaches_open{process=\"order-to-delivery\",sla=\"order-entry\"} 1",
        "throughline_breaches_open{process=\"order-to-delivery\",sla=\"production\"} 0",
        "throughline_stage_duration_seconds_count{process=\"order-to-delivery\",from=\"captured\",to=\"sales_order\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
    // The quantile comes from the duration histogram: within its bucket
    // (12.5 %) of the exact 300 s.
    let p95 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "throughline_stage_duration_seconds{process=\"order-to-delivery\",from=\"captured\",to=\"sales_order\",quantile=\"0.95\"} ",
            )
        })
        .unwrap_or_else(|| panic!("{text}"));
    let p95: f64 = p95.parse().unwrap();
    assert!((262.5..=337.5).contains(&p95), "{p95}");
    let erp = text
        .lines()
        .find(|l| l.starts_with("throughline_system_last_seen_seconds{system=\"erp\"} "))
        .unwrap_or_else(|| panic!("{text}"));
    let ago: u64 = erp.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((25 * 60..35 * 60).contains(&ago), "{erp}");
    for family in [
        "throughline_instances",
        "throughline_breaches_open",
        "throughline_stage_duration_seconds",
        "throughline_system_last_seen_seconds",
    ] {
        let types = text
            .lines()
            .filter(|l| l.starts_with(&format!("# TYPE {family} ")))
            .count();
        assert_eq!(types, 1, "{family}\n{text}");
    }
}

/// While a rule fires, its notification goes out again every repeat
/// interval, and not in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_repeats_at_the_repeat_interval() {
    let app = app().await;
    let hook = Hook::start(0).await;
    one_dead_letter(&app).await;
    let rules = Rules::parse_all([("test.toml", DEAD_LETTERS)], &processes()).unwrap();
    let mut s = settings(vec![webhook(&hook)]);
    s.repeat_interval = Duration::from_secs(600);
    let mut alerts = Evaluator::new(app.store.clone(), Arc::new(rules), processes(), s)
        .await
        .unwrap();
    let t = domain::now_ns();
    for minutes in [0, 5, 9] {
        alerts.cycle(t + minutes * MIN).await.unwrap();
    }
    assert_eq!(hook.bodies().len(), 1);
    alerts.cycle(t + 10 * MIN).await.unwrap();
    alerts.cycle(t + 15 * MIN).await.unwrap();
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["status"], "firing");
    // The same alert: it started when it first fired.
    assert_eq!(bodies[1]["alerts"][0]["startsAt"], rfc3339(t));
    assert_eq!(
        bodies[1]["alerts"][0]["fingerprint"],
        bodies[0]["alerts"][0]["fingerprint"]
    );
}
