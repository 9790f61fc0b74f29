//! SLOs on the order-to-delivery process: SLI, budget and burn rates from
//! the process rollups, against a hand computation.

use std::sync::Arc;

use domain::keys::KeyTypes;
use domain::process::Processes;
use engine::alerts::notify::{Destination, DestinationKind};
use engine::alerts::rules::Rules;
use engine::alerts::{AlertSettings, Evaluator};
use serde_json::Value;

use crate::alerts::Hook;
use crate::harness::{TestApp, TestConfig};
use crate::processes::{correlator, send, MIN, ORDER_TO_DELIVERY};

fn with_slo() -> &'static str {
    Box::leak(
        format!(
            "{ORDER_TO_DELIVERY}\n[[slos]]\nid = \"entry-90\"\nname = \"Orders in ERP within 15 min\"\n\
             sla = \"order-entry\"\nobjective = 90\nwindow = \"1d\"\n"
        )
        .into_boxed_str(),
    )
}

async fn app() -> TestApp {
    TestApp::with(TestConfig {
        processes: vec![with_slo()],
        ..Default::default()
    })
    .await
}

/// Three orders entered in time, 90 minutes ago.
async fn three_good(app: &TestApp, now: u64) {
    for i in 1..=3 {
        let order = format!("O-{i}");
        let t = now - 90 * MIN + i * MIN;
        send(
            app,
            &format!("c-{i}"),
            "crm",
            "crm.order.created",
            t,
            &[("orderid", &order)],
        )
        .await;
        send(
            app,
            &format!("e-{i}"),
            "erp",
            "erp.sales_order.created",
            t + 5 * MIN,
            &[("orderid", &order)],
        )
        .await;
    }
}

/// The alertnames an evaluator of the SLO's burn-rate rules alone sends
/// as firing, after a correlator cycle.
async fn firing(app: &TestApp) -> Vec<String> {
    correlator(app).await.cycle(domain::now_ns()).await.unwrap();
    let hook = Hook::start(0).await;
    let processes = Arc::new(Processes {
        list: vec![Processes::parse(with_slo(), "o.toml", &KeyTypes::default()).unwrap()],
        ..Default::default()
    });
    let rules = Rules::parse_all([], &processes).unwrap();
    let ids: Vec<&str> = rules.list.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "order-to-delivery-entry-90-page",
            "order-to-delivery-entry-90-ticket"
        ]
    );
    let mut evaluator = Evaluator::new(
        app.store.clone(),
        Arc::new(rules),
        processes,
        AlertSettings {
            destinations: vec![Destination::new(
                "hook",
                DestinationKind::Webhook,
                &hook.url(),
            )],
            ..AlertSettings::default()
        },
    )
    .await
    .unwrap();
    evaluator.cycle(domain::now_ns()).await.unwrap();
    let mut names: Vec<String> = hook
        .take()
        .iter()
        .filter(|b| b["status"] == "firing")
        .map(|b| {
            let labels = &b["commonLabels"];
            assert_eq!(labels["kind"], "slo_burn", "{b}");
            assert_eq!(labels["slo"], "entry-90", "{b}");
            assert_eq!(labels["process"], "order-to-delivery", "{b}");
            labels["alertname"].as_str().unwrap().to_string()
        })
        .collect();
    names.sort();
    names
}

/// A trickle (two late of five over the last hours) fires only the ticket
/// alert; a burst (five orders stuck, started 21 to 25 minutes ago) also
/// the page alert: 5 bad of 8 over 6h burns at 6.25, all bad over 30m at
/// 10, both above the page's 0.2 (5 % of a 1 day window's budget in 6h);
/// the trickle's 30 minutes judge nothing. (The 1h pair's 5 minute window
/// judges nothing of a 15 minute SLA: instances count by minute of start.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burn_rate_alerts_page_on_a_burst_and_ticket_on_a_trickle() {
    let trickle = app().await;
    let now = domain::now_ns();
    three_good(&trickle, now).await;
    send(
        &trickle,
        "c-4",
        "crm",
        "crm.order.created",
        now - 50 * MIN,
        &[("orderid", "O-4")],
    )
    .await;
    send(
        &trickle,
        "c-5",
        "crm",
        "crm.order.created",
        now - 45 * MIN,
        &[("orderid", "O-5")],
    )
    .await;
    send(
        &trickle,
        "e-5",
        "erp",
        "erp.sales_order.created",
        now - 25 * MIN,
        &[("orderid", "O-5")],
    )
    .await;
    assert_eq!(
        firing(&trickle).await,
        ["order-to-delivery-entry-90-ticket"]
    );

    let burst = app().await;
    three_good(&burst, now).await;
    for i in 0..5 {
        let order = format!("B-{i}");
        send(
            &burst,
            &format!("b-{i}"),
            "crm",
            "crm.order.created",
            now - 25 * MIN + i * MIN,
            &[("orderid", &order)],
        )
        .await;
    }
    assert_eq!(
        firing(&burst).await,
        [
            "order-to-delivery-entry-90-page",
            "order-to-delivery-entry-90-ticket"
        ]
    );
}

fn close(a: &Value, b: f64) {
    let a = a.as_f64().unwrap_or_else(|| panic!("{a} is no number"));
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

/// Three orders entered in time 90 minutes ago, one still waiting 50
/// minutes later and one 20 minutes late (both breached), one started 10
/// minutes ago (not judged yet). By hand, at objective 90 %:
/// over the day 3 good and 2 bad: SLI 60 %, 0.5 bad allowed, budget
/// 1 - 2 / 0.5 = -300 %, burn rate (2/5) / 0.1 = 4; over the last hour
/// only the two bad ones: burn rate 10; over 30 and 5 minutes nothing
/// judged: 0. Over a 1 day window the alerts' rates are 0.48 (2 % of the
/// budget in 1h), 0.2 (5 % in 6h), 0.1 (10 % in 1d) and 1/30 (10 % in
/// 3d). So neither page alert holds (its short window burns 0) and both
/// ticket alerts do (4 > 0.1 over 1d and 2h; 4 > 1/30 over 3d and 6h).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_slo_shows_its_budget_and_burn_rates_as_computed_by_hand() {
    let app = app().await;
    let now = domain::now_ns();
    three_good(&app, now).await;
    send(
        &app,
        "c-4",
        "crm",
        "crm.order.created",
        now - 50 * MIN,
        &[("orderid", "O-4")],
    )
    .await;
    send(
        &app,
        "c-5",
        "crm",
        "crm.order.created",
        now - 45 * MIN,
        &[("orderid", "O-5")],
    )
    .await;
    send(
        &app,
        "e-5",
        "erp",
        "erp.sales_order.created",
        now - 25 * MIN,
        &[("orderid", "O-5")],
    )
    .await;
    send(
        &app,
        "c-6",
        "crm",
        "crm.order.created",
        now - 10 * MIN,
        &[("orderid", "O-6")],
    )
    .await;
    correlator(&app)
        .await
        .cycle(domain::now_ns())
        .await
        .unwrap();

    let (status, body) = app.get("/api/v1/processes/order-to-delivery/slos").await;
    assert_eq!(status, 200, "{body}");
    let slo = &body["slos"][0];
    assert_eq!(slo["id"], "entry-90");
    assert_eq!(slo["window"], "1d");
    assert_eq!(slo["good"], 3, "{slo}");
    assert_eq!(slo["bad"], 2, "{slo}");
    close(&slo["sli_percent"], 60.0);
    close(&slo["allowed_bad"], 0.5);
    close(&slo["budget_remaining_percent"], -300.0);
    let rate = |window: &str| {
        slo["burn_rates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["window"] == window)
            .unwrap_or_else(|| panic!("{window} in {slo}"))["burn_rate"]
            .clone()
    };
    close(&rate("5m"), 0.0);
    close(&rate("30m"), 0.0);
    close(&rate("1h"), 10.0);
    for w in ["2h", "6h", "1d", "3d"] {
        close(&rate(w), 4.0);
    }
    let holds: Vec<(String, f64, bool)> = slo["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["severity"].as_str().unwrap().to_string(),
                a["burn_rate"].as_f64().unwrap(),
                a["holds"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        holds,
        [
            ("page".to_string(), 0.48, false),
            ("page".to_string(), 0.2, false),
            ("ticket".to_string(), 0.1, true),
            ("ticket".to_string(), 1.0 / 30.0, true),
        ]
    );

    // The same figures as gauges on the console's /metrics, which pass
    // promtool.
    let text = app.console_metrics().await;
    for line in [
        "throughline_slo_objective_ratio{process=\"order-to-delivery\",slo=\"entry-90\"} 0.9",
        "throughline_slo_window_seconds{process=\"order-to-delivery\",slo=\"entry-90\"} 86400",
        "throughline_slo_sli_ratio{process=\"order-to-delivery\",slo=\"entry-90\"} 0.6",
        "throughline_slo_error_budget_remaining_ratio{process=\"order-to-delivery\",slo=\"entry-90\"} -3",
        "throughline_slo_burn_rate{process=\"order-to-delivery\",slo=\"entry-90\",window=\"1h\"} 10",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
    crate::promtool::promtool_check("console", &text);

    // The burn-down ends where the window's figures are; the page shows
    // the API's figures, its chart and the link to the breaches.
    let (status, body) = app
        .get("/api/v1/processes/order-to-delivery/slos?burn_down=true")
        .await;
    assert_eq!(status, 200, "{body}");
    let points = body["slos"][0]["burn_down"].as_array().unwrap().clone();
    assert_eq!(points.len(), 14, "{body}");
    close(&points[0]["remaining_percent"], 100.0);
    close(&points[13]["remaining_percent"], -300.0);
    let page = app.page("/processes/order-to-delivery/slos").await;
    for part in [
        r#"<dd data-figure="sli">60.0%</dd>"#,
        r#"<dd data-figure="budget" class="bad">-300.0%</dd>"#,
        r#"<td class="num" data-window="1h">10.00</td>"#,
        r#"<td class="num">2% in 1h</td><td class="num" data-rate="page-1h">0.48x</td>"#,
        r#"<td class="num" data-rate="ticket-3d">0.03x</td>"#,
        r#"<svg class="burn-down""#,
        "/breaches?process=order-to-delivery&#38;sla=order-entry&#38;from=now-1d",
    ] {
        assert!(page.contains(part), "{part}\n{page}");
    }
    let process = app.page("/processes/order-to-delivery").await;
    assert!(
        process.contains("/processes/order-to-delivery/slos"),
        "{process}"
    );
    let (status, body) = app
        .get("/api/v1/processes/order-to-delivery/slos?burndown=1")
        .await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = app.get("/api/v1/processes/nope/slos").await;
    assert_eq!(status, 404, "{body}");
}

/// An SLO on a system's events of one type, from the event rollups: ten
/// `erp.sales_order.created` events of the ERP, one failed and one
/// dead-lettered (a failed event of another type and one of another system
/// do not count). By hand, at 90 %: SLI 80 %, 1 bad allowed, budget
/// 1 - 2 / 1 = -100 %, burn rate (2/10) / 0.1 = 2 over the day; nothing
/// in the last 5 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_slo_on_events_counts_failed_and_dead_lettered_ones() {
    let process: &'static str = Box::leak(
        format!(
            "{ORDER_TO_DELIVERY}\n[[slos]]\nid = \"erp-ok\"\nsystem = \"erp\"\n\
             event_type = \"erp.sales_order.created\"\nobjective = 90\nwindow = \"1d\"\n"
        )
        .into_boxed_str(),
    );
    let app = TestApp::with(TestConfig {
        processes: vec![process],
        ..Default::default()
    })
    .await;
    let now = domain::now_ns();
    for i in 0..10u64 {
        let outcome = match i {
            3 => "failed",
            7 => "dead_lettered",
            _ => "ok",
        };
        let order = format!("O-{i}");
        send(
            &app,
            &format!("e-{i}"),
            "erp",
            "erp.sales_order.created",
            now - 90 * MIN + i * MIN,
            &[("orderid", &order), ("outcome", outcome)],
        )
        .await;
    }
    send(
        &app,
        "x-1",
        "erp",
        "erp.invoice.created",
        now - 30 * MIN,
        &[("outcome", "failed")],
    )
    .await;
    send(
        &app,
        "x-2",
        "mes",
        "erp.sales_order.created",
        now - 30 * MIN,
        &[("outcome", "failed")],
    )
    .await;

    let (status, body) = app.get("/api/v1/processes/order-to-delivery/slos").await;
    assert_eq!(status, 200, "{body}");
    let slo = &body["slos"][0];
    assert_eq!(slo["system"], "erp", "{slo}");
    assert_eq!(slo["good"], 8, "{slo}");
    assert_eq!(slo["bad"], 2, "{slo}");
    close(&slo["sli_percent"], 80.0);
    close(&slo["allowed_bad"], 1.0);
    close(&slo["budget_remaining_percent"], -100.0);
    let rate = |window: &str| {
        slo["burn_rates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["window"] == window)
            .unwrap()["burn_rate"]
            .clone()
    };
    close(&rate("1d"), 2.0);
    close(&rate("5m"), 0.0);
    let page = app.page("/processes/order-to-delivery/slos").await;
    assert!(
        page.contains(r#"<dd data-figure="sli">80.0%</dd>"#),
        "{page}"
    );
    assert!(
        page.contains("/api/v1/events?system=erp&#38;outcome=failed"),
        "{page}"
    );
}
