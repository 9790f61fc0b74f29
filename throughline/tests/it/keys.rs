//! Lookups by business key follow links customer -> order -> work order in
//! whatever order the spans arrived.

use domain::keys::KeyConfig;
use opentelemetry::trace::{Span as _, Tracer};
use opentelemetry::KeyValue;

use crate::harness::TestApp;
use crate::otlp::{with_sdk, Transport};

/// One span per system, each naming the keys that system knows.
#[derive(Clone, Copy, Debug)]
enum Hop {
    /// CRM: customer and order.
    Crm,
    /// ERP: the order, under its SAP alias, and the work order.
    Erp,
    /// MES: only the work order.
    Mes,
}

async fn send(app: &TestApp, hop: Hop, suffix: &'static str) {
    let (service, name, attrs): (&'static str, &'static str, Vec<KeyValue>) = match hop {
        Hop::Crm => (
            "crm",
            "crm.order.created",
            vec![
                KeyValue::new("customer.id", format!("ACME{suffix}")),
                KeyValue::new("order.id", format!("O-1{suffix}")),
            ],
        ),
        Hop::Erp => (
            "erp",
            "erp.production_order.created",
            vec![
                KeyValue::new("sap.sales_order", format!("O-1{suffix}")),
                KeyValue::new("work_order.id", format!("WO-1{suffix}")),
            ],
        ),
        Hop::Mes => (
            "mes",
            "mes.work_order.completed",
            vec![KeyValue::new("work_order.id", format!("WO-1{suffix}"))],
        ),
    };
    with_sdk(app, Transport::Grpc, service, move |tracer| {
        let mut span = tracer
            .span_builder(name)
            .with_attributes(attrs)
            .start(tracer);
        span.end();
    })
    .await;
}

fn erp_alias() -> KeyConfig {
    let mut config = KeyConfig::default();
    config
        .aliases
        .entry("erp".into())
        .or_default()
        .insert("sap.sales_order".into(), "order".into());
    config
}

fn names(body: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = body["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn linked(body: &serde_json::Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = body["linked_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["type"].as_str().unwrap().to_string(),
                k["value"].as_str().unwrap().to_string(),
                k["relation"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_reaches_work_order_spans_in_any_arrival_order() {
    let app = TestApp::with_keys(erp_alias()).await;
    let orders: [(&'static str, [Hop; 3]); 3] = [
        ("-a", [Hop::Crm, Hop::Erp, Hop::Mes]),
        ("-b", [Hop::Mes, Hop::Erp, Hop::Crm]),
        ("-c", [Hop::Erp, Hop::Mes, Hop::Crm]),
    ];
    for (suffix, hops) in orders {
        for hop in hops {
            send(&app, hop, suffix).await;
        }
        let (status, body) = app
            .get(&format!("/api/v1/keys/customer/ACME{suffix}"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            names(&body),
            vec![
                "crm.order.created",
                "erp.production_order.created",
                "mes.work_order.completed"
            ],
            "arrival order {hops:?}"
        );
        assert_eq!(
            linked(&body),
            vec![
                ("order".into(), format!("O-1{suffix}"), "child".into()),
                ("work_order".into(), format!("WO-1{suffix}"), "child".into()),
            ]
        );
        assert_eq!(body["truncated"], false);

        // From the other end: the work order knows its order and customer,
        // and its journey is its own spans.
        let (status, body) = app
            .get(&format!("/api/v1/keys/work_order/WO-1{suffix}"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            linked(&body),
            vec![
                ("customer".into(), format!("ACME{suffix}"), "parent".into()),
                ("order".into(), format!("O-1{suffix}"), "parent".into()),
            ]
        );
        assert_eq!(
            names(&body),
            vec!["erp.production_order.created", "mes.work_order.completed"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_does_not_pull_in_its_customers_other_orders() {
    let app = TestApp::with_keys(erp_alias()).await;
    send(&app, Hop::Crm, "").await;
    // A second order of the same customer.
    with_sdk(&app, Transport::Grpc, "crm", |tracer| {
        tracer
            .span_builder("crm.order.created")
            .with_attributes(vec![
                KeyValue::new("customer.id", "ACME"),
                KeyValue::new("order.id", "O-2"),
            ])
            .start(tracer)
            .end();
    })
    .await;
    let (_, body) = app.get("/api/v1/keys/order/O-1").await;
    assert_eq!(
        linked(&body),
        vec![("customer".into(), "ACME".into(), "parent".into())]
    );
    assert_eq!(body["span_count"], 1);
    let (_, body) = app.get("/api/v1/keys/customer/ACME").await;
    assert_eq!(body["span_count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keys_404_and_bad_ones_400_with_json_errors() {
    let app = TestApp::start().await;
    let (status, body) = app.get("/api/v1/keys/order/NEVER-SEEN").await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"],
        "no span, event or link has carried order `NEVER-SEEN`"
    );
    let (status, body) = app.get("/api/v1/keys/shipment/S-1").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "unknown key type `shipment`; known types: customer, order, work_order"
    );
    let (status, body) = app.get("/api/v1/traces/xyz").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("a trace id is 32 hex digits"),
        "{body}"
    );
    let (status, body) = app
        .get("/api/v1/traces/0af7651916cd43dd8448eb211c80319c")
        .await;
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("no spans or events of trace"),
        "{body}"
    );
}
