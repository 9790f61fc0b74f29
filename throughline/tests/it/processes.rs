//! Processes and SLAs: the correlator against a real ClickHouse.

use std::sync::Arc;
use std::time::Duration;

use domain::keys::KeyTypes;
use domain::process::Processes;
use engine::correlator::{Correlator, CorrelatorSettings};
use serde_json::{json, Value};

use crate::harness::{TestApp, TestConfig};

pub const ORDER_TO_DELIVERY: &str = r#"
id = "order-to-delivery"
name = "Order to delivery"
key = "order"

[[stages]]
id = "captured"
system = "crm"
event = "crm.order.created"

[[stages]]
id = "sales_order"
system = "erp"
event = "erp.sales_order.created"

[[stages]]
id = "produced"
system = "mes"
event = "mes.work_order.completed"

[[slas]]
id = "order-entry"
from = "captured"
to = "sales_order"
within = "15m"

[[slas]]
id = "production"
from = "sales_order"
to = "produced"
within = "4h"
"#;

pub const MIN: u64 = 60_000_000_000;

pub fn rfc3339(ns: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Posts one CloudEvent of `system` and `event_type` at `time_ns` with
/// extension attributes `keys`.
pub async fn send(
    app: &TestApp,
    id: &str,
    system: &str,
    event_type: &str,
    time_ns: u64,
    keys: &[(&str, &str)],
) {
    let mut event = json!({
        "specversion": "1.0", "id": id, "source": format!("urn:test:{system}"),
        "type": event_type, "system": system, "time": rfc3339(time_ns),
    });
    for (k, v) in keys {
        event[*k] = json!(v);
    }
    let r = app
        .post(
            "/v1/events",
            "application/cloudevents+json",
            &[],
            event.to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    app.settled().await;
}

fn processes() -> Arc<Processes> {
    Arc::new(Processes {
        list: vec![
            Processes::parse(ORDER_TO_DELIVERY, "order.toml", &KeyTypes::default()).unwrap(),
        ],
        ..Default::default()
    })
}

/// A correlator driven by hand: no settle delay, cycles when the test says.
pub async fn correlator(app: &TestApp) -> Correlator {
    Correlator::new(
        app.store.clone(),
        processes(),
        Arc::new(KeyTypes::default()),
        CorrelatorSettings {
            interval: Duration::from_secs(3600),
            settle: Duration::ZERO,
            ..Default::default()
        },
        Arc::new(engine::metrics::CorrelatorMetrics::default()),
    )
    .await
    .unwrap()
}

/// Two orders created half an hour ago, one of them entered in the ERP 5
/// minutes later, correlated: an order-entry breach open and one met.
pub async fn two_orders_one_entered(app: &TestApp) {
    let t = domain::now_ns() - 30 * MIN;
    send(
        app,
        "c-1",
        "crm",
        "crm.order.created",
        t,
        &[("orderid", "O-1")],
    )
    .await;
    send(
        app,
        "c-2",
        "crm",
        "crm.order.created",
        t,
        &[("orderid", "O-2")],
    )
    .await;
    send(
        app,
        "e-2",
        "erp",
        "erp.sales_order.created",
        t + 5 * MIN,
        &[("orderid", "O-2")],
    )
    .await;
    correlator(app).await.cycle(domain::now_ns()).await.unwrap();
}

pub async fn app() -> TestApp {
    TestApp::with(TestConfig {
        processes: vec![ORDER_TO_DELIVERY],
        ..Default::default()
    })
    .await
}

async fn instance(app: &TestApp, order: &str) -> Value {
    let (status, body) = app
        .get(&format!(
            "/api/v1/processes/order-to-delivery/instances?key={order}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body["instances"].get(0).cloned().unwrap_or(Value::Null)
}

fn sla<'a>(instance: &'a Value, id: &str) -> &'a Value {
    instance["slas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_stage_is_a_closed_breach_by_how_late() {
    let app = app().await;
    let t = domain::now_ns() - 120 * MIN;
    send(
        &app,
        "c-1",
        "crm",
        "crm.order.created",
        t,
        &[("orderid", "O-1")],
    )
    .await;
    send(
        &app,
        "e-1",
        "erp",
        "erp.sales_order.created",
        t + 20 * MIN,
        &[("orderid", "O-1")],
    )
    .await;
    let mut c = correlator(&app).await;
    let report = c.cycle(domain::now_ns()).await.unwrap();
    assert_eq!(report.steps_written, 2);

    let i = instance(&app, "O-1").await;
    assert_eq!(i["status"], "in_flight");
    assert_eq!(i["current_stage"], "sales_order");
    assert_eq!(sla(&i, "order-entry")["state"], "breached");
    assert_eq!(sla(&i, "order-entry")["late"], "5m");
    assert_eq!(sla(&i, "production")["state"], "running");

    let (_, body) = app.get("/api/v1/breaches?from=now-7d").await;
    let breaches = body["breaches"].as_array().unwrap();
    assert_eq!(breaches.len(), 1, "{body}");
    assert_eq!(breaches[0]["state"], "closed");
    assert_eq!(breaches[0]["sla"], "order-entry");
    assert_eq!(breaches[0]["key"], json!({"type": "order", "value": "O-1"}));
    assert_eq!(breaches[0]["from_time"], format!("{}", rfc3339_nanos(t)));
    assert_eq!(breaches[0]["due_time"], rfc3339_nanos(t + 15 * MIN));
    assert_eq!(breaches[0]["to_time"], rfc3339_nanos(t + 20 * MIN));
    assert_eq!(breaches[0]["late_ns"], (5 * MIN).to_string());

    let (_, summary) = app.get("/api/v1/processes?from=now-7d").await;
    let p = &summary["processes"][0];
    assert_eq!(p["instances"]["started"], 1);
    assert_eq!(p["slas"][0]["breached"], 1);
    assert_eq!(p["slas"][0]["compliance_percent"], 0.0);
    // From the duration histogram: the bucket of the exact 20 minutes.
    let p50: u64 = p["slas"][0]["duration"]["p50_ns"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        domain::histogram::bucket(p50),
        domain::histogram::bucket(20 * MIN)
    );
    assert_eq!(p["slas"][0]["duration"]["count"], 1);
}

fn rfc3339_nanos(ns: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .unwrap()
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
        ))
        .unwrap()
}

/// The breach no event announces: nothing arrives after the first stage, and
/// the open breach appears on its own within one evaluation interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breach_appears_with_no_further_input() {
    const FAST: &str = r#"
id = "fast"
key = "order"
[[stages]]
id = "captured"
system = "crm"
event = "crm.order.created"
[[stages]]
id = "confirmed"
system = "erp"
event = "erp.sales_order.created"
[[slas]]
id = "confirm"
from = "captured"
to = "confirmed"
within = "2s"
"#;
    let app = TestApp::with(TestConfig {
        processes: vec![FAST],
        correlator: Some(CorrelatorSettings {
            interval: Duration::from_millis(250),
            settle: Duration::ZERO,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    let sent = domain::now_ns();
    send(
        &app,
        "c-9",
        "crm",
        "crm.order.created",
        sent,
        &[("orderid", "O-9")],
    )
    .await;

    let mut seen = None;
    for _ in 0..60 {
        let (_, body) = app.get("/api/v1/breaches?open=true&from=now-1h").await;
        if let Some(b) = body["breaches"].get(0) {
            seen = Some((domain::now_ns(), b.clone()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (at, breach) = seen.expect("an open breach within 6 s");
    // Not before it was due, and within the due time plus one interval (and
    // this poll's own 100 ms).
    assert!(at >= sent + 2_000_000_000, "appeared before it was due");
    assert_eq!(breach["state"], "open");
    assert_eq!(breach["to_time"], Value::Null);
    let i = &app.get("/api/v1/processes/fast/instances?key=O-9").await.1["instances"][0];
    assert_eq!(i["status"], "stalled");
    assert_eq!(sla(i, "confirm")["state"], "open_breach");
    let metrics = app.console_metrics().await;
    assert!(
        metrics.contains("throughline_breaches_open{process=\"fast\",sla=\"confirm\"} 1"),
        "{metrics}"
    );
    // The collector's `/metrics` is open to anyone who reaches the OTLP
    // port: it carries technical counters only, never process or SLA names.
    let open = app.metrics().await;
    assert!(!open.contains("throughline_breaches_open"), "{open}");
    assert!(!open.contains("\"fast\""), "{open}");
    assert!(
        open.contains("throughline_correlator_records_total"),
        "{open}"
    );

    // The late stage closes it.
    send(
        &app,
        "e-9",
        "erp",
        "erp.sales_order.created",
        domain::now_ns(),
        &[("orderid", "O-9")],
    )
    .await;
    for _ in 0..40 {
        let (_, body) = app.get("/api/v1/breaches?from=now-1h").await;
        if body["breaches"][0]["state"] == "closed" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the breach did not close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_counts_through_a_link_that_arrived_after_its_event() {
    let app = app().await;
    let t = domain::now_ns() - 60 * MIN;
    let mut c = correlator(&app).await;
    // MES knows only the work order.
    send(
        &app,
        "m-1",
        "mes",
        "mes.work_order.completed",
        t + 30 * MIN,
        &[("workorderid", "WO-1")],
    )
    .await;
    c.cycle(domain::now_ns()).await.unwrap();
    assert_eq!(
        instance(&app, "O-1").await,
        Value::Null,
        "nothing ties WO-1 to an order yet"
    );

    // Later, ERP names both: the link arrives after the MES event.
    send(
        &app,
        "e-1",
        "erp",
        "erp.sales_order.created",
        t,
        &[("orderid", "O-1"), ("workorderid", "WO-1")],
    )
    .await;
    let report = c.cycle(domain::now_ns()).await.unwrap();
    assert_eq!(report.steps_written, 2, "{report:?}");
    let i = instance(&app, "O-1").await;
    let produced = i["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "produced")
        .unwrap();
    assert_eq!(
        produced["time"],
        rfc3339_nanos(t + 30 * MIN),
        "the event's time, not its arrival"
    );
    assert_eq!(i["status"], "completed");
    assert_eq!(sla(&i, "production")["state"], "met");

    // The order's key page shows the instance with its stages.
    let (_, key) = app.get("/api/v1/keys/order/O-1").await;
    assert_eq!(key["instances"][0]["process"], "order-to-delivery");
    assert_eq!(key["instances"][0]["status"], "completed");
    let (_, key) = app.get("/api/v1/keys/work_order/WO-1").await;
    assert_eq!(
        key["instances"][0]["key"]["value"], "O-1",
        "a work order shows its order's instance"
    );
}

/// Drops how late an open breach is so far: it grows with the clock alone.
fn without_running_lateness(mut v: Value) -> Value {
    match &mut v {
        Value::Object(map) => {
            if matches!(
                map.get("state").and_then(Value::as_str),
                Some("open" | "open_breach")
            ) {
                map.remove("late");
                map.remove("late_ns");
            }
            if map.get("state").and_then(Value::as_str) == Some("running") {
                map.remove("time_left");
            }
            for child in map.values_mut() {
                *child = without_running_lateness(child.take());
            }
        }
        Value::Array(items) => {
            for child in items.iter_mut() {
                *child = without_running_lateness(child.take());
            }
        }
        _ => {}
    }
    v
}

pub async fn figures(app: &TestApp) -> (Value, Value, Value) {
    let (_, summary) = app.get("/api/v1/processes?from=now-7d").await;
    let (_, breaches) = app.get("/api/v1/breaches?from=now-7d").await;
    let (_, instances) = app
        .get("/api/v1/processes/order-to-delivery/instances?from=now-7d")
        .await;
    (
        summary["processes"].clone(),
        without_running_lateness(breaches["breaches"].clone()),
        without_running_lateness(instances["instances"].clone()),
    )
}

/// Raw row counts, without FINAL: what was written, duplicates included.
pub async fn rows(app: &TestApp, table: &str) -> u64 {
    app.settled().await;
    app.store
        .row_count(table, store::inspect::Rows::AsWritten)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_out_of_order_and_restarts_change_no_figure_and_write_nothing_twice() {
    let app = app().await;
    let t = domain::now_ns() - 300 * MIN;
    let all = [
        (
            "m-2",
            "mes",
            "mes.work_order.completed",
            t + 200 * MIN,
            vec![("workorderid", "WO-2"), ("orderid", "O-2")],
        ),
        (
            "e-2",
            "erp",
            "erp.sales_order.created",
            t + 10 * MIN,
            vec![("orderid", "O-2")],
        ),
        (
            "c-2",
            "crm",
            "crm.order.created",
            t,
            vec![("orderid", "O-2"), ("customerid", "ACME")],
        ),
        (
            "c-3",
            "crm",
            "crm.order.created",
            t,
            vec![("orderid", "O-3")],
        ),
        (
            "e-3",
            "erp",
            "erp.sales_order.created",
            t + 30 * MIN,
            vec![("orderid", "O-3")],
        ),
    ];
    let mut c = correlator(&app).await;
    // Out of order (latest stage first), each delivered twice, in two cycles.
    for (i, (id, system, ty, time, keys)) in all.iter().enumerate() {
        send(&app, id, system, ty, *time, keys).await;
        send(&app, id, system, ty, *time, keys).await;
        if i == 2 {
            c.cycle(domain::now_ns()).await.unwrap();
        }
    }
    c.cycle(domain::now_ns()).await.unwrap();
    let before = figures(&app).await;
    let p = &before.0[0];
    assert_eq!(p["instances"]["started"], 2);
    assert_eq!(p["instances"]["completed"], 1);
    assert_eq!(p["slas"][0]["met"], 1);
    assert_eq!(p["slas"][0]["breached"], 1);
    assert_eq!(p["slas"][0]["compliance_percent"], 50.0);
    // O-3: entered late (closed), and its production is past due (open).
    let mut states: Vec<(&str, &str)> = before
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["sla"].as_str().unwrap(), b["state"].as_str().unwrap()))
        .collect();
    states.sort();
    assert_eq!(
        states,
        vec![("order-entry", "closed"), ("production", "open")]
    );
    let o2 = before
        .2
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"]["value"] == "O-2")
        .unwrap();
    assert_eq!(o2["stages"][0]["time"], rfc3339_nanos(t));
    let written = (
        rows(&app, "process_steps").await,
        rows(&app, "process_instances").await,
        rows(&app, "breaches").await,
    );
    assert_eq!(written.0, 5, "one step per stage each record reached first");

    // Everything again, a third time, then a restarted correlator.
    for (id, system, ty, time, keys) in &all {
        send(&app, id, system, ty, *time, keys).await;
    }
    c.cycle(domain::now_ns()).await.unwrap();
    drop(c);
    let mut restarted = correlator(&app).await;
    restarted.cycle(domain::now_ns()).await.unwrap();
    assert_eq!(figures(&app).await, before);
    assert_eq!(
        (
            rows(&app, "process_steps").await,
            rows(&app, "process_instances").await,
            rows(&app, "breaches").await
        ),
        written,
        "nothing was written twice"
    );
}

/// A link seen only on a plain log record (not an event, not a span) still
/// attaches an earlier work-order event to its order: logs feed the
/// correlator their links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_seen_only_on_a_log_record_attaches_earlier_records() {
    let app = app().await;
    let t = domain::now_ns() - 60 * MIN;
    let mut c = correlator(&app).await;
    send(
        &app,
        "m-5",
        "mes",
        "mes.work_order.completed",
        t,
        &[("workorderid", "WO-5")],
    )
    .await;
    c.cycle(domain::now_ns()).await.unwrap();
    assert_eq!(instance(&app, "O-5").await, Value::Null);

    let log = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "erp"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": (t + MIN).to_string(),
            "body": {"stringValue": "production order released"},
            "attributes": [
                {"key": "order.id", "value": {"stringValue": "O-5"}},
                {"key": "work_order.id", "value": {"stringValue": "WO-5"}}
            ]
        }]}]
    }]});
    let r = app
        .post(
            "/v1/logs",
            "application/json",
            &[],
            log.to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status(), 200);
    c.cycle(domain::now_ns()).await.unwrap();
    let i = instance(&app, "O-5").await;
    let produced = i["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "produced")
        .unwrap();
    assert_eq!(produced["time"], rfc3339_nanos(t), "{i}");
}

/// The feed is a queue, not an archive: once the correlator has read a
/// stretch for good (its watermark, the look-back and a margin past it),
/// that stretch's partitions are dropped, and what was correlated stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_keeps_only_what_the_correlator_may_still_read() {
    let app = app().await;
    let t = domain::now_ns() - 30 * MIN;
    send(
        &app,
        "c-9",
        "crm",
        "crm.order.created",
        t,
        &[("orderid", "O-9")],
    )
    .await;
    let mut c = correlator(&app).await;
    assert_eq!(c.cycle(domain::now_ns()).await.unwrap().steps_written, 1);
    assert_eq!(
        rows(&app, "correlation_feed_v2").await,
        1,
        "read a moment ago: kept"
    );
    c.cycle(domain::now_ns() + 60 * MIN).await.unwrap();
    assert_eq!(
        rows(&app, "correlation_feed_v2").await,
        0,
        "read for good: dropped"
    );
    assert_eq!(rows(&app, "process_steps").await, 1);
    assert_eq!(instance(&app, "O-9").await["current_stage"], "captured");
}
