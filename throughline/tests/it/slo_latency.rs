//! An SLO on a stage latency of the order-to-delivery process: good and
//! bad from the process rollups' duration cells, against a hand
//! computation, on the API, the page, the gauges and the slo_burn rules.

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

const SEC: u64 = 1_000_000_000;

fn with_slo() -> &'static str {
    Box::leak(
        format!(
            "{ORDER_TO_DELIVERY}\n[[slos]]\nid = \"entry-10m\"\nname = \"Orders in ERP within 10 min\"\n\
             from = \"captured\"\nto = \"sales_order\"\nwithin = \"10m\"\nobjective = 80\nwindow = \"1d\"\n"
        )
        .into_boxed_str(),
    )
}

fn close(a: &Value, b: f64) {
    let a = a.as_f64().unwrap_or_else(|| panic!("{a} is no number"));
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

/// An order captured at `captured` and, if `entered_after`, entered in the
/// ERP that long after.
async fn order(app: &TestApp, id: &str, captured: u64, entered_after: Option<u64>) {
    send(
        app,
        &format!("c-{id}"),
        "crm",
        "crm.order.created",
        captured,
        &[("orderid", id)],
    )
    .await;
    if let Some(after) = entered_after {
        send(
            app,
            &format!("e-{id}"),
            "erp",
            "erp.sales_order.created",
            captured + after,
            &[("orderid", id)],
        )
        .await;
    }
}

/// Three orders entered 5 minutes after capture (started 87 to 89 minutes
/// ago), one after 12 minutes and one after 9m40s (started 50 and 45
/// minutes ago), one captured 10 minutes ago and not entered yet. Within
/// 10 min at 80 %, by hand: 9m40s lies in the log bucket of about 549.8 s
/// to 618.5 s, which 600 s cuts, so it counts as bad (rounded
/// conservatively); the order not entered counts for neither. Over the
/// day 3 good, 2 bad: SLI 60 %, 1 bad allowed, budget 1 - 2 / 1 = -100 %,
/// burn rate (2/5) / 0.2 = 2. Every window ends 10 minutes ago (`within`:
/// by then each order started in it is good or bad): over the hour (starts
/// 70 to 10 minutes ago) both bad: 5; over 30 and 5 minutes nothing
/// judged: 0. Over a 1 day window the ticket's rates
/// are 0.1 (10 % of the budget in 1d) and 0.03 (10 % in 3d): both its pairs
/// (1d and 2h, 3d and 6h, all at 2) hold, so the ticket alert fires; the
/// page's short windows burn 0, so it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_latency_slo_matches_a_hand_computation() {
    let app = TestApp::with(TestConfig {
        processes: vec![with_slo()],
        ..Default::default()
    })
    .await;
    let now = domain::now_ns();
    for i in 1..=3 {
        order(
            &app,
            &format!("O-{i}"),
            now - 90 * MIN + i * MIN,
            Some(5 * MIN),
        )
        .await;
    }
    order(&app, "O-4", now - 50 * MIN, Some(12 * MIN)).await;
    order(&app, "O-5", now - 45 * MIN, Some(580 * SEC)).await;
    order(&app, "O-6", now - 10 * MIN, None).await;
    correlator(&app)
        .await
        .cycle(domain::now_ns())
        .await
        .unwrap();

    let (status, body) = app.get("/api/v1/processes/order-to-delivery/slos").await;
    assert_eq!(status, 200, "{body}");
    let slo = &body["slos"][0];
    assert_eq!(slo["id"], "entry-10m");
    assert_eq!(slo["from_stage"], "captured", "{slo}");
    assert_eq!(slo["to_stage"], "sales_order", "{slo}");
    assert_eq!(slo["within"], "10m", "{slo}");
    assert_eq!(slo["lag"], "10m", "{slo}");
    assert_eq!(slo["sla"], Value::Null, "{slo}");
    assert_eq!(slo["good"], 3, "{slo}");
    assert_eq!(slo["bad"], 2, "{slo}");
    close(&slo["sli_percent"], 60.0);
    close(&slo["allowed_bad"], 1.0);
    close(&slo["budget_remaining_percent"], -100.0);
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
    close(&rate("1h"), 5.0);
    for w in ["2h", "6h", "1d", "3d"] {
        close(&rate(w), 2.0);
    }
    let holds: Vec<bool> = slo["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["holds"].as_bool().unwrap())
        .collect();
    assert_eq!(holds, [false, false, true, true], "{slo}");

    let text = app.console_metrics().await;
    for line in [
        "throughline_slo_sli_ratio{process=\"order-to-delivery\",slo=\"entry-10m\"} 0.6",
        "throughline_slo_error_budget_remaining_ratio{process=\"order-to-delivery\",slo=\"entry-10m\"} -1",
        "throughline_slo_burn_rate{process=\"order-to-delivery\",slo=\"entry-10m\",window=\"1h\"} 5",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }

    let page = app.page("/processes/order-to-delivery/slos").await;
    for part in [
        "go from <code>captured</code> to <code>sales_order</code> within 10m",
        r#"<dd data-figure="sli">60.0%</dd>"#,
        r#"<dd data-figure="budget" class="bad">-100.0%</dd>"#,
        r#"<td class="num" data-window="1h">5.00</td>"#,
        // What spent it: the starts the window counts, 1 d ending 10 min
        // (the lag) ago, in seconds.
        "/processes/order-to-delivery?from=now-87000s",
        "to=now-600s",
    ] {
        assert!(page.contains(part), "{part}\n{page}");
    }

    // The slo_burn rules: only the ticket fires.
    let hook = Hook::start(0).await;
    let processes = Arc::new(Processes {
        list: vec![Processes::parse(with_slo(), "o.toml", &KeyTypes::default()).unwrap()],
        ..Default::default()
    });
    let rules = Rules::parse_all([], &processes).unwrap();
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
    let firing: Vec<String> = hook
        .take()
        .iter()
        .filter(|b| b["status"] == "firing")
        .map(|b| {
            assert_eq!(b["commonLabels"]["kind"], "slo_burn", "{b}");
            b["commonLabels"]["alertname"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(firing, ["order-to-delivery-entry-10m-ticket"]);
}
