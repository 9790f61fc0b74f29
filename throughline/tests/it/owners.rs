//! Owners: a process definition's `owner` and `contacts`, `[systems.<name>]`,
//! shown on the process, systems and alert pages, listed by
//! `/api/v1/owners`, and carried by every alert as `owner` and `team`
//! labels; a `team` rule watches every process of the team.

use std::sync::Arc;

use domain::process::{Processes, SystemDef};
use engine::alerts::notify::{Destination, DestinationKind};
use engine::alerts::rules::Rules;
use engine::alerts::{AlertSettings, Evaluator};
use serde_json::{json, Value};

use crate::alerts::Hook;
use crate::harness::{TestApp, TestConfig};
use crate::processes::{correlator, send, MIN, ORDER_TO_DELIVERY};

const RULES: &str = r#"
[[rules]]
id = "stuck"
kind = "open_breaches"
team = "sales-ops"
sla = "order-entry"
severity = "critical"

[[rules]]
id = "mes-dl"
kind = "dead_letters"
system = "mes"

[[rules]]
id = "crm-quiet"
kind = "system_silence"
system = "crm"
silent_for = "1m"

[[rules]]
id = "any-dl"
kind = "dead_letters"
"#;

fn owned_process() -> &'static str {
    Box::leak(
        ORDER_TO_DELIVERY
            .replace(
                "key = \"order\"",
                "key = \"order\"\nowner = \"sales-ops\"\ncontacts = [\"#sales-ops\", \"sales-ops@example.com\"]",
            )
            .into_boxed_str(),
    )
}

fn systems() -> Vec<(&'static str, SystemDef)> {
    vec![
        (
            "mes",
            SystemDef {
                owner: "plant-it".into(),
                contacts: vec!["#plant-it".into()],
            },
        ),
        (
            "crm",
            SystemDef {
                owner: "sales-ops".into(),
                contacts: vec!["#sales-ops".into()],
            },
        ),
    ]
}

async fn app() -> TestApp {
    TestApp::with(TestConfig {
        processes: vec![owned_process()],
        systems: systems(),
        alerts: Some(RULES),
        ..Default::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_are_listed_by_team_and_shown_on_the_pages() {
    let app = app().await;
    send(
        &app,
        "c-1",
        "crm",
        "crm.order.created",
        domain::now_ns() - 40 * MIN,
        &[("orderid", "O-1")],
    )
    .await;

    let (status, body) = app.get("/api/v1/owners").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"teams": [
            {"team": "plant-it", "contacts": ["#plant-it"], "processes": [], "systems": ["mes"],
             "alert_rules": [{"id": "mes-dl", "name": "mes-dl", "href": "/alerts/mes-dl"}]},
            {"team": "sales-ops", "contacts": ["#sales-ops", "sales-ops@example.com"],
             "processes": [{"id": "order-to-delivery", "name": "Order to delivery",
                            "href": "/processes/order-to-delivery"}],
             "systems": ["crm"],
             "alert_rules": [
                {"id": "stuck-order-to-delivery", "name": "stuck-order-to-delivery",
                 "href": "/alerts/stuck-order-to-delivery"},
                {"id": "crm-quiet", "name": "crm-quiet", "href": "/alerts/crm-quiet"}]},
        ]})
    );

    let (_, body) = app.get("/api/v1/processes").await;
    let p = &body["processes"][0];
    assert_eq!(p["owner"], "sales-ops", "{p}");
    assert_eq!(
        p["contacts"],
        json!(["#sales-ops", "sales-ops@example.com"])
    );
    let (_, body) = app.get("/api/v1/systems").await;
    let crm = body["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["system"] == "crm")
        .unwrap_or_else(|| panic!("crm in {body}"));
    assert_eq!(crm["owner"], "sales-ops");
    let (_, body) = app.get("/api/v1/alerts/any-dl").await;
    assert_eq!(body["owner"], Value::Null);
    assert_eq!(body["labels"]["owner"], "unowned");
    let (_, body) = app.get("/api/v1/alerts/stuck-order-to-delivery").await;
    assert_eq!(body["team"], "sales-ops");
    assert_eq!(body["labels"]["alertname"], "stuck");
    assert_eq!(body["labels"]["owner"], "sales-ops");

    let page = app.page("/processes/order-to-delivery").await;
    assert!(page.contains(r#"data-owner="sales-ops""#), "{page}");
    assert!(page.contains("#sales-ops, sales-ops@example.com"), "{page}");
    let page = app.page("/systems").await;
    assert!(page.contains(r#"data-owner="sales-ops""#), "{page}");
    let page = app.page("/alerts/stuck-order-to-delivery").await;
    assert!(page.contains(r#"data-owner="sales-ops""#), "{page}");
    assert!(page.contains("every process of team sales-ops"), "{page}");
    let page = app.page("/alerts").await;
    assert!(page.contains("<td>plant-it</td>"), "{page}");
}

/// Every alert sent carries `owner` and `team`: its process's, its
/// system's, or `unowned`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_carries_its_owner_and_team() {
    let app = app().await;
    let hook = Hook::start(0).await;
    send(
        &app,
        "c-1",
        "crm",
        "crm.order.created",
        domain::now_ns() - 40 * MIN,
        &[("orderid", "O-1")],
    )
    .await;
    let mut correlator = correlator(&app).await;
    correlator.cycle(domain::now_ns()).await.unwrap();
    let keys = domain::keys::KeyTypes::default();
    let processes = Arc::new(Processes {
        list: vec![Processes::parse(owned_process(), "o.toml", &keys).unwrap()],
        systems: systems()
            .into_iter()
            .map(|(n, d)| (n.to_string(), d))
            .collect(),
    });
    let rules = Rules::parse_all([("a.toml", RULES)], &processes).unwrap();
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
    // The open breach fires `stuck` for the team's process; crm is silent
    // past a minute (its last event is 40 minutes old).
    evaluator.cycle(domain::now_ns()).await.unwrap();
    let bodies = hook.take();
    let labels = |name: &str| {
        bodies
            .iter()
            .find(|b| b["groupLabels"]["alertname"] == name)
            .unwrap_or_else(|| panic!("{name} in {bodies:?}"))["commonLabels"]
            .clone()
    };
    let stuck = labels("stuck");
    assert_eq!(stuck["owner"], "sales-ops", "{stuck}");
    assert_eq!(stuck["team"], "sales-ops", "{stuck}");
    assert_eq!(stuck["process"], "order-to-delivery", "{stuck}");
    let quiet = labels("crm-quiet");
    assert_eq!(quiet["owner"], "sales-ops", "{quiet}");
    assert_eq!(quiet["system"], "crm", "{quiet}");
}
