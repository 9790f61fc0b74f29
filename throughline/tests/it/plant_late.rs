//! Plants and time (issue 19): the `plant_backlog` alert rule, breach
//! alerts that say which plants' links are down, and a plant's backlog
//! arriving at once after a cut, correlated as if it had arrived live.

use std::sync::atomic::Ordering;
use std::time::Duration;

use collector::auth::{secret, TokenConfig};
use collector::spool::WhenFull;
use domain::plant::PlantReport;
use domain::time::rfc3339;
use serde_json::{json, Value};

use crate::alerts::{evaluator, webhook, Hook};
use crate::forward::{Edge, Proxy, PLANT};
use crate::harness::{TestApp, TestConfig};
use crate::processes::{app, correlator, send, MIN, ORDER_TO_DELIVERY};

const S: u64 = 1_000_000_000;

const PLANT_RULES: &str = r#"
[[rules]]
id = "plants-behind"
kind = "plant_backlog"
limit = "15m"
severity = "critical"

[[rules]]
id = "kiel-behind"
kind = "plant_backlog"
plant = "kiel"
limit = "15m"

[[rules]]
id = "entry-open"
kind = "open_breaches"
process = "order-to-delivery"
sla = "order-entry"
threshold = 0
annotations = { summary = "{value} open order-entry breaches" }
"#;

async fn report(app: &TestApp, plant: &str, heard_ago_ns: u64, records: u64, age_ns: u64) {
    app.store
        .write_plant_report(&PlantReport {
            plant: plant.into(),
            received_ns: domain::now_ns() - heard_ago_ns,
            backlog_bytes: records * 1000,
            backlog_records: records,
            oldest_age_ns: age_ns,
        })
        .await
        .unwrap();
}

fn named(bodies: &[Value], name: &str) -> Option<Value> {
    bodies
        .iter()
        .find(|b| b["groupLabels"]["alertname"] == name)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plant_backlog_fires_for_a_plant_behind_and_breach_alerts_name_links_down() {
    let app = app().await;
    let hook = Hook::start(0).await;
    // hamburg reports a backlog 20 minutes old; bremen has been silent for
    // 10 minutes (its link is down, but it is not 15 minutes behind); kiel
    // is live and empty.
    report(&app, "hamburg", 5 * S, 40, 20 * MIN).await;
    report(&app, "bremen", 10 * MIN, 0, 0).await;
    report(&app, "kiel", 0, 0, 0).await;
    // An order whose ERP stage never came: an open breach.
    let t = domain::now_ns() - 40 * MIN;
    send(
        &app,
        "c-1",
        "crm",
        "crm.order.created",
        t,
        &[("orderid", "O-1")],
    )
    .await;
    let mut correlator = correlator(&app).await;
    let now = domain::now_ns();
    correlator.cycle(now).await.unwrap();

    let mut alerts = evaluator(&app, PLANT_RULES, vec![webhook(&hook)]).await;
    let cycle = alerts.cycle(now).await.unwrap();
    assert_eq!(cycle.evaluated, 3);
    let bodies = hook.take();
    assert_eq!(bodies.len(), 2, "kiel is not behind: {bodies:?}");

    let behind = named(&bodies, "plants-behind").expect("fires");
    assert_eq!(behind["status"], "firing");
    assert_eq!(behind["commonLabels"]["kind"], "plant_backlog");
    let summary = behind["commonAnnotations"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("20m") && summary.ends_with("behind (limit 15m): plant:hamburg"),
        "{summary}"
    );

    // The open breach's alert says that bremen's link is down.
    let open = named(&bodies, "entry-open").expect("fires");
    let summary = open["commonAnnotations"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("1 open order-entry breaches (link down: plant bremen (last heard 10m"),
        "{summary}"
    );
    let note = open["commonAnnotations"]["plant_links"].as_str().unwrap();
    assert!(
        note.contains("may be stale") && !note.contains("hamburg") && !note.contains("kiel"),
        "{note}"
    );

    // The breaches page and API say so too, while they show an open breach.
    let (_, page) = app.get("/api/v1/breaches?open=true&from=now-2h").await;
    assert_eq!(page["links_down"], json!(["bremen"]), "{page}");
    let html = app.page("/breaches?from=now-2h").await;
    assert!(
        html.contains(r#"id="links-down""#) && html.contains("plant bremen"),
        "{html}"
    );
    let (_, closed) = app.get("/api/v1/breaches?open=false&from=now-2h").await;
    assert!(
        closed.get("links_down").is_none(),
        "no open breach, no mark: {closed}"
    );

    // hamburg catches up: the rule resolves.
    report(&app, "hamburg", 0, 0, 0).await;
    alerts.cycle(domain::now_ns()).await.unwrap();
    let bodies = hook.take();
    assert_eq!(
        named(&bodies, "plants-behind").expect("resolves")["status"],
        "resolved"
    );
    app.stop().await;
}

/// One CloudEvent to the edge, with its own time.
async fn to_edge(edge: &Edge, id: &str, system: &str, event_type: &str, time_ns: u64, order: &str) {
    let event = json!({
        "specversion": "1.0", "id": id, "source": format!("urn:test:{system}"),
        "type": event_type, "system": system, "time": rfc3339(time_ns), "orderid": order,
    });
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/events", edge.http_addr()))
        .header("content-type", "application/cloudevents+json")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn order(central: &TestApp, order: &str) -> Value {
    let (status, body) = central
        .get(&format!(
            "/api/v1/processes/order-to-delivery/instances?key={order}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body["instances"][0].clone()
}

async fn breach_of(central: &TestApp, order: &str) -> Option<Value> {
    let (_, body) = central
        .get("/api/v1/breaches?process=order-to-delivery&from=now-2h")
        .await;
    body["breaches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["key"]["value"] == order)
        .cloned()
}

/// Stages that waited in the edge's spool during a cut arrive at once and
/// correlate by their own times: a breach that looked open is gone when the
/// stage came in time, closed by how late it was otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plants_backlog_correlates_as_if_it_had_arrived_live() {
    let (id, token) = secret::generate(collector::auth::TOKEN_PREFIX);
    let central = TestApp::with(TestConfig {
        processes: vec![ORDER_TO_DELIVERY],
        tokens: vec![TokenConfig {
            id,
            name: "edge".into(),
            systems: vec!["*".into()],
            hash: secret::hash(&token),
            plant: Some(PLANT.into()),
        }],
        token: Some(token.clone()),
        ..Default::default()
    })
    .await;
    let proxy = Proxy::start(central.http).await;
    let edge = Edge::reporting(
        proxy.url(),
        &token,
        collector::spool::DEFAULT_MAX_BYTES,
        WhenFull::Refuse,
        None,
        Duration::from_secs(3600),
    )
    .await;
    let t = domain::now_ns() - 40 * MIN;
    for o in ["O-1", "O-2"] {
        to_edge(&edge, &format!("c-{o}"), "crm", "crm.order.created", t, o).await;
    }
    edge.drained().await;
    central.settled().await;
    let mut correlator = correlator(&central).await;
    correlator.cycle(domain::now_ns()).await.unwrap();
    for o in ["O-1", "O-2"] {
        assert_eq!(breach_of(&central, o).await.expect("open")["state"], "open");
    }

    // The link is cut; the ERP stages are sent (O-1's in time, O-2's five
    // minutes late) and wait in the edge's spool while central correlates.
    proxy.cut.store(true, Ordering::SeqCst);
    to_edge(
        &edge,
        "e-O-1",
        "erp",
        "erp.sales_order.created",
        t + 5 * MIN,
        "O-1",
    )
    .await;
    to_edge(
        &edge,
        "e-O-2",
        "erp",
        "erp.sales_order.created",
        t + 20 * MIN,
        "O-2",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    correlator.cycle(domain::now_ns()).await.unwrap();
    assert_eq!(breach_of(&central, "O-2").await.unwrap()["state"], "open");

    // Back: the backlog arrives at once and correlates by record time.
    proxy.cut.store(false, Ordering::SeqCst);
    edge.drained().await;
    central.settled().await;
    correlator.cycle(domain::now_ns()).await.unwrap();

    let o1 = order(&central, "O-1").await;
    let stage = |i: &Value, id: &str| {
        i["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        stage(&o1, "sales_order")["time"],
        rfc3339(t + 5 * MIN),
        "{o1}"
    );
    assert!(
        breach_of(&central, "O-1").await.is_none(),
        "in time: no breach left"
    );

    let o2 = order(&central, "O-2").await;
    assert_eq!(
        stage(&o2, "sales_order")["time"],
        rfc3339(t + 20 * MIN),
        "{o2}"
    );
    let b = breach_of(&central, "O-2").await.expect("closed late");
    assert_eq!(b["state"], "closed");
    assert_eq!(b["to_time"], rfc3339(t + 20 * MIN));
    assert_eq!(b["late_ns"], (5 * MIN).to_string());
    // No breach is left open by the delay alone, and the instances and
    // their breaches are the edge's plant's.
    let (_, open) = central.get("/api/v1/breaches?open=true&from=now-2h").await;
    assert_eq!(open["breaches"], json!([]), "{open}");
    let (_, of_plant) = central
        .get(&format!("/api/v1/breaches?from=now-2h&plant={PLANT}"))
        .await;
    assert_eq!(of_plant["breaches"][0]["key"]["value"], "O-2", "{of_plant}");
    let (_, instances) = central
        .get(&format!(
            "/api/v1/processes/order-to-delivery/instances?from=now-2h&plant={PLANT}"
        ))
        .await;
    assert_eq!(
        instances["instances"].as_array().unwrap().len(),
        2,
        "{instances}"
    );
    central.stop().await;
}
