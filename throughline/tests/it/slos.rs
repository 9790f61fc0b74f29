//! SLOs on the order-to-delivery process: SLI, budget and burn rates from
//! the process rollups, against a hand computation. The SLA `order-entry`
//! gives 15 minutes, so every window of an SLO on it ends 15 minutes ago
//! (the instances started in it are all judged by now).

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

/// The process with SLO `entry-{objective}` on its 15 minute SLA, over the
/// default 28 days.
fn with_slo(objective: u32) -> &'static str {
    Box::leak(
        format!(
            "{ORDER_TO_DELIVERY}\n[[slos]]\nid = \"entry-{objective}\"\nname = \"Orders in ERP within 15 min\"\n\
             sla = \"order-entry\"\nobjective = {objective}\n"
        )
        .into_boxed_str(),
    )
}

async fn app(objective: u32) -> TestApp {
    TestApp::with(TestConfig {
        processes: vec![with_slo(objective)],
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

/// The alertnames an evaluator of the burn-rate rules of SLO
/// `entry-{objective}` alone sends as firing, after a correlator cycle.
async fn firing(app: &TestApp, objective: u32) -> Vec<String> {
    correlator(app).await.cycle(domain::now_ns()).await.unwrap();
    let hook = Hook::start(0).await;
    let processes = Arc::new(Processes {
        list: vec![Processes::parse(with_slo(objective), "o.toml", &KeyTypes::default()).unwrap()],
        ..Default::default()
    });
    let rules = Rules::parse_all([], &processes).unwrap();
    let ids: Vec<&str> = rules.list.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            format!("order-to-delivery-entry-{objective}-page"),
            format!("order-to-delivery-entry-{objective}-ticket")
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
            assert_eq!(labels["slo"], format!("entry-{objective}"), "{b}");
            assert_eq!(labels["process"], "order-to-delivery", "{b}");
            labels["alertname"].as_str().unwrap().to_string()
        })
        .collect();
    names.sort();
    names
}

/// Sends the order `order` created at `at`, entered in the ERP at
/// `entered` if any.
async fn order(app: &TestApp, order: &str, at: u64, entered: Option<u64>) {
    send(
        app,
        &format!("c-{order}"),
        "crm",
        "crm.order.created",
        at,
        &[("orderid", order)],
    )
    .await;
    if let Some(t) = entered {
        send(
            app,
            &format!("e-{order}"),
            "erp",
            "erp.sales_order.created",
            t,
            &[("orderid", order)],
        )
        .await;
    }
}

/// At 90 % over 28 days the alerts' rates are 13.44 (2 % of the budget in
/// 1h), 5.6 (5 % in 6h), 2.8 (10 % in 1d) and 0.93 (10 % in 3d); every
/// window ends 15 minutes ago. A trickle (two late of five, started 50 and
/// 48 minutes ago) fires only the ticket alert: 2 bad of 5 burn at 4 over
/// 2h and 1d, above 2.8, but below 5.6 over 6h, and the 30 minutes (starts
/// 45 to 15 minutes ago) judge nothing. A burst (five orders stuck,
/// started 40 to 36 minutes ago, due 25 to 21 minutes ago) also fires the
/// page alert: 5 bad of 8 over 6h burn at 6.25, all bad over 30m at 10,
/// both above 5.6. Before windows lagged by the SLA, the 30 minutes held
/// only orders started in the last 30 minutes, none of them judged: no page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burn_rate_alerts_page_on_a_burst_and_ticket_on_a_trickle() {
    let trickle = app(90).await;
    let now = domain::now_ns();
    three_good(&trickle, now).await;
    order(&trickle, "O-4", now - 50 * MIN, None).await;
    order(&trickle, "O-5", now - 48 * MIN, Some(now - 28 * MIN)).await;
    assert_eq!(
        firing(&trickle, 90).await,
        ["order-to-delivery-entry-90-ticket"]
    );

    let burst = app(90).await;
    three_good(&burst, now).await;
    for i in 0..5 {
        order(&burst, &format!("B-{i}"), now - 40 * MIN + i * MIN, None).await;
    }
    assert_eq!(
        firing(&burst, 90).await,
        [
            "order-to-delivery-entry-90-page",
            "order-to-delivery-entry-90-ticket"
        ]
    );
}

/// At 99 % over 28 days, with the SLA's 15 minutes: five orders stuck,
/// started 60 to 36 minutes ago, so due 45 to 21 minutes ago, page. The
/// 30 minute window (starts 45 to 15 minutes ago) holds two of them, both
/// breached: burn rate 100; over 6h 5 bad of 8: 62.5; both above 5.6 (5 %
/// of the budget in 6h). The 5 minutes (starts 20 to 15 minutes ago) judge
/// nothing, so the 1h pair does not hold. Windows ending now would have
/// held none of the breaches in 30 minutes and paged nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_breaches_due_in_the_last_hour_pages_on_a_15_minute_sla() {
    let app = app(99).await;
    let now = domain::now_ns();
    three_good(&app, now).await;
    for i in 0..5 {
        order(&app, &format!("B-{i}"), now - 60 * MIN + i * 6 * MIN, None).await;
    }
    assert_eq!(
        firing(&app, 99).await,
        [
            "order-to-delivery-entry-99-page",
            "order-to-delivery-entry-99-ticket"
        ]
    );
    let (status, body) = app.get("/api/v1/processes/order-to-delivery/slos").await;
    assert_eq!(status, 200, "{body}");
    let slo = &body["slos"][0];
    assert_eq!(slo["lag"], "15m", "{slo}");
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
    close(&rate("30m"), 100.0);
    close(&rate("1h"), 100.0);
    close(&rate("6h"), 62.5);
    let holds: Vec<bool> = slo["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["holds"].as_bool().unwrap())
        .collect();
    assert_eq!(holds, [false, true, true, true], "{slo}");
    // The gauges agree.
    let text = app.console_metrics().await;
    let line = "throughline_slo_burn_rate{process=\"order-to-delivery\",slo=\"entry-99\",window=\"30m\"} 100";
    assert!(text.lines().any(|l| l == line), "{line}\n{text}");
}

fn close(a: &Value, b: f64) {
    let a = a.as_f64().unwrap_or_else(|| panic!("{a} is no number"));
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

/// Three orders entered in time 90 minutes ago, one still waiting 50
/// minutes later and one started 40 minutes ago and entered 20 minutes late
/// (both breached), one started 10 minutes ago (not judged yet, and after
/// the windows' end). Every window ends 15 minutes ago (the SLA's
/// deadline). By hand, at objective 90 % over 28 days: 3 good and 2 bad:
/// SLI 60 %, 0.5 bad allowed, budget 1 - 2 / 0.5 = -300 %, burn rate
/// (2/5) / 0.1 = 4 over 2h and longer; over the hour (starts 75 to 15
/// minutes ago) only the two bad ones, over 30 minutes (45 to 15) the late
/// one: burn rate 10; over 5 minutes nothing judged: 0. Over 28 days the
/// alerts' rates are 13.44, 5.6, 2.8 and 0.93. So neither page alert holds
/// (5m burns 0; 6h burns 4) and both ticket alerts do (4 > 2.8 over 1d and
/// 2h; 4 > 0.93 over 3d and 6h).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_slo_shows_its_budget_and_burn_rates_as_computed_by_hand() {
    let app = app(90).await;
    let now = domain::now_ns();
    three_good(&app, now).await;
    order(&app, "O-4", now - 50 * MIN, None).await;
    order(&app, "O-5", now - 40 * MIN, Some(now - 20 * MIN)).await;
    order(&app, "O-6", now - 10 * MIN, None).await;
    correlator(&app)
        .await
        .cycle(domain::now_ns())
        .await
        .unwrap();

    let (status, body) = app.get("/api/v1/processes/order-to-delivery/slos").await;
    assert_eq!(status, 200, "{body}");
    let slo = &body["slos"][0];
    assert_eq!(slo["id"], "entry-90");
    assert_eq!(slo["window"], "28d");
    assert_eq!(slo["lag"], "15m");
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
    close(&rate("30m"), 10.0);
    close(&rate("1h"), 10.0);
    for w in ["2h", "6h", "1d", "3d"] {
        close(&rate(w), 4.0);
    }
    let alerts = slo["alerts"].as_array().unwrap();
    let holds: Vec<(&str, bool)> = alerts
        .iter()
        .map(|a| {
            (
                a["severity"].as_str().unwrap(),
                a["holds"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        holds,
        [
            ("page", false),
            ("page", false),
            ("ticket", true),
            ("ticket", true)
        ]
    );
    for (a, rate) in alerts.iter().zip([13.44, 5.6, 2.8, 2.8 / 3.0]) {
        close(&a["burn_rate"], rate);
    }

    // The same figures as gauges on the console's /metrics, which pass
    // promtool.
    let text = app.console_metrics().await;
    for line in [
        "throughline_slo_objective_ratio{process=\"order-to-delivery\",slo=\"entry-90\"} 0.9",
        "throughline_slo_window_seconds{process=\"order-to-delivery\",slo=\"entry-90\"} 2419200",
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
        r#"<td class="num">2% in 1h</td><td class="num" data-rate="page-1h">13.44x</td>"#,
        r#"<td class="num" data-rate="ticket-3d">0.93x</td>"#,
        "over 28d, ending 15m ago.",
        r#"<svg class="burn-down""#,
        "/breaches?process=order-to-delivery&#38;sla=order-entry&#38;from=now-28d",
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
