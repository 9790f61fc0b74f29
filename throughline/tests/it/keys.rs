//! Lookups by business key follow links customer -> order -> work order in
//! whatever order the spans arrived.

use domain::keys::KeyConfig;
use opentelemetry::trace::{Span as _, Tracer};
use opentelemetry::KeyValue;

use crate::harness::{records, TestApp};
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
    let mut names: Vec<String> = records(body, "span")
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

fn attr(key: &str, value: &str) -> serde_json::Value {
    serde_json::json!({"key": key, "value": {"stringValue": value}})
}

/// A customer with four orders, each with a CRM, an ERP and an MES span in
/// a trace of its own (the MES span of the last one failed), and an event
/// on each of two orders: 14 records, some at the same time.
pub fn hub_batch(now: u64) -> (serde_json::Value, serde_json::Value) {
    let mut resource_spans = Vec::new();
    for (i, service) in ["crm", "erp", "mes"].iter().enumerate() {
        let spans: Vec<serde_json::Value> = (0..4u64)
            .map(|o| {
                let keys = match *service {
                    "crm" => vec![
                        attr("customer.id", "HUB"),
                        attr("order.id", &format!("O-H{o}")),
                    ],
                    "erp" => vec![
                        attr("order.id", &format!("O-H{o}")),
                        attr("work_order.id", &format!("WO-H{o}")),
                    ],
                    _ => vec![attr("work_order.id", &format!("WO-H{o}"))],
                };
                // Orders 0 and 1 start at the same moment: ties in time.
                let start = now - 60_000_000_000 + o.max(1) * 1_000_000_000 + i as u64 * 1000;
                let mut span = serde_json::json!({
                    "traceId": format!("{:032x}", 0xab00 + o),
                    "spanId": format!("{:016x}", 0xcd00 + o * 16 + i as u64),
                    "name": format!("{service}.step"),
                    "kind": 2,
                    "startTimeUnixNano": start.to_string(),
                    "endTimeUnixNano": (start + 500).to_string(),
                    "attributes": keys,
                });
                if *service == "mes" && o == 3 {
                    span["status"] = serde_json::json!({"code": 2});
                }
                span
            })
            .collect();
        resource_spans.push(serde_json::json!({
            "resource": {"attributes": [attr("service.name", service)]},
            "scopeSpans": [{"spans": spans}],
        }));
    }
    let events: Vec<serde_json::Value> = (0..2)
        .map(|o| {
            serde_json::json!({
                "specversion": "1.0", "id": format!("hub-{o}"), "source": "urn:test:erp",
                "type": "erp.order.confirmed", "system": "erp",
                "time": domain::time::rfc3339(now - 30_000_000_000),
                "orderid": format!("O-H{o}"),
            })
        })
        .collect();
    (
        serde_json::json!({"resourceSpans": resource_spans}),
        serde_json::Value::Array(events),
    )
}

pub async fn post(app: &TestApp, path: &str, content_type: &str, body: &serde_json::Value) {
    let response = app
        .post(path, content_type, &[], serde_json::to_vec(body).unwrap())
        .await;
    assert_eq!(response.status().as_u16(), 200, "{path}");
}

/// Why: a hub key (a customer with hundreds of orders) answered every span
/// at once; it now answers a summary and pages of records, and the pages
/// must add up to the summary, each record once, newest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_key_pages_through_every_record_once_and_its_summary_counts_them() {
    let app = TestApp::start().await;
    let (spans, events) = hub_batch(domain::now_ns());
    // Everything delivered twice: a redelivery changes no count.
    for _ in 0..2 {
        post(&app, "/v1/traces", "application/json", &spans).await;
        post(
            &app,
            "/v1/events",
            "application/cloudevents-batch+json",
            &events,
        )
        .await;
    }
    let (status, first) = app.get("/api/v1/keys/customer/HUB?limit=4").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["total"], 14, "{first}");
    assert_eq!(first["span_count"], 12);
    assert_eq!(first["event_count"], 2);
    assert_eq!(first["failures"], 1);
    assert_eq!(first["summary"]["spans"], 4, "the customer's own records");
    assert_eq!(first["summary"]["events"], 0);
    let summary_of = |value: &str| {
        first["linked_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["value"] == value)
            .unwrap_or_else(|| panic!("{value} in {first}"))["summary"]
            .clone()
    };
    assert_eq!(summary_of("O-H0")["spans"], 2);
    assert_eq!(summary_of("O-H0")["events"], 1);
    assert_eq!(summary_of("O-H2")["events"], 0);
    assert_eq!(summary_of("WO-H3")["spans"], 2);
    assert_eq!(summary_of("WO-H3")["failures"], 1);
    assert!(summary_of("O-H1")["first"].is_string());

    let mut seen = std::collections::BTreeSet::new();
    let mut times = Vec::new();
    let mut page = first.clone();
    let mut pages = 1;
    loop {
        let records = page["records"].as_array().unwrap();
        assert!(records.len() <= 4, "{page}");
        for r in records {
            let id = (
                r["kind"].to_string(),
                r["trace_id"].to_string(),
                r["span_id"].to_string(),
                r["source"].to_string(),
                r["id"].to_string(),
            );
            assert!(seen.insert(id), "a record twice: {r}");
            times.push(
                r["time_unix_nano"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
            );
        }
        let Some(next) = page["next"].as_str() else {
            break;
        };
        let (status, body) = app
            .get(&format!("/api/v1/keys/customer/HUB?limit=4&after={next}"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total"], 14);
        page = body;
        pages += 1;
    }
    assert_eq!(seen.len(), 14, "every record once");
    assert_eq!(pages, 4);
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    // The page shows the summary and one page of it.
    let html = app.page("/keys/customer/HUB").await;
    assert!(html.contains("Showing 14 of 14"), "{html}");

    // A bad cursor is a clear 400, and limits are checked.
    let (status, body) = app.get("/api/v1/keys/customer/HUB?after=xyz").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "`after` is not one this API gave out; pass next from the previous page unchanged"
    );
    let (status, _) = app.get("/api/v1/keys/customer/HUB?limit=1001").await;
    assert_eq!(status, 400);
}

/// Why: a journey of few rows is answered from one scan of them
/// (`journey_scan`), a hub's from its own range (`hub_journey_scan`), a
/// large one by a query per answer; all must give the same counts, the same
/// pages in the same order and the same positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_scan_and_the_per_query_reads_answer_a_journey_alike() {
    use domain::model::BusinessKey;
    let app = TestApp::start().await;
    let (spans, events) = hub_batch(domain::now_ns());
    for _ in 0..2 {
        post(&app, "/v1/traces", "application/json", &spans).await;
        post(
            &app,
            "/v1/events",
            "application/cloudevents-batch+json",
            &events,
        )
        .await;
    }
    let (status, _) = app.get("/api/v1/keys/customer/HUB").await;
    assert_eq!(status, 200);
    let mut keys = vec![BusinessKey::new("customer", "HUB")];
    for o in 0..4 {
        keys.push(BusinessKey::new("order", format!("O-H{o}")));
        keys.push(BusinessKey::new("work_order", format!("WO-H{o}")));
    }
    let keys: Vec<&BusinessKey> = keys.iter().collect();
    let store = &app.store;

    let mut per_key = store.key_summaries(&keys).await.unwrap();
    per_key.sort_by(|a, b| a.0.cmp(&b.0));
    let total = store.journey_counts(&keys).await.unwrap();
    let mut after = None;
    let mut pages = 0;
    loop {
        let (page, next) = store.journey_page(&keys, 4, after.as_ref()).await.unwrap();
        let scan = store
            .journey_scan(&keys, 4, after.as_ref(), 1000)
            .await
            .unwrap()
            .expect("14 records are few");
        let mut scanned = scan.per_key.clone();
        scanned.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(scanned, per_key);
        assert_eq!(scan.total, total);
        assert_eq!(scan.total.records(), 14);
        assert_eq!(scan.page, page, "page {pages}");
        assert_eq!(scan.next, next, "page {pages}");
        // The hub's own range: its crm spans name their orders; the erp
        // spans and the events name no customer and were put under it by
        // their orders' link; the work orders, never seen with a customer,
        // are read by their own ranges whether the caller names them
        // (`irregular`) or `orphan_keys` does.
        for irregular in [
            &[][..],
            &keys[2..].iter().step_by(2).copied().collect::<Vec<_>>(),
        ] {
            let hub = store
                .hub_journey_scan(keys[0], &keys, irregular, 4, after.as_ref(), 1000)
                .await
                .unwrap()
                .expect("every row of this store names its keys");
            let mut from_hub = hub.per_key.clone();
            from_hub.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(from_hub, per_key, "page {pages}");
            assert_eq!(hub.total, total, "page {pages}");
            assert_eq!(hub.page, page, "page {pages}");
            assert_eq!(hub.next, next, "page {pages}");
        }
        pages += 1;
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    // More rows than the scan may read: the per-query reads answer.
    assert!(store
        .journey_scan(&keys, 4, None, 10)
        .await
        .unwrap()
        .is_none());
}

/// Why: trace by id read `spans_v2 FINAL`; it now reads the trace's range
/// without it, and a span delivered twice (not merged yet) must still be
/// one span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_with_a_redelivered_span_shows_it_once() {
    let app = TestApp::start().await;
    let (spans, events) = hub_batch(domain::now_ns());
    for _ in 0..3 {
        post(&app, "/v1/traces", "application/json", &spans).await;
    }
    post(
        &app,
        "/v1/events",
        "application/cloudevents-batch+json",
        &events,
    )
    .await;
    let trace_id = format!("{:032x}", 0xab00 + 3);
    let (status, trace) = app.get(&format!("/api/v1/traces/{trace_id}")).await;
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["span_count"], 3, "{trace}");
    let (_, order) = app.get("/api/v1/keys/order/O-H3").await;
    assert_eq!(order["total"], 3, "{order}");
    assert_eq!(order["records"].as_array().unwrap().len(), 3, "{order}");
}

/// Why: the walks of an installation older than `correlator_walks` are
/// filled once from what is stored; the key index no longer holds each
/// record's keys, so the fill reads the span and event tables: a record
/// that reaches a stage without a root key gets a row per key, with its
/// reference and failure as the feed makes them; one with a root key none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walks_are_filled_from_the_span_and_event_tables() {
    use domain::feed::RecordKind;
    use domain::model::BusinessKey;
    let app = TestApp::start().await;
    let now = domain::now_ns();
    let span = |id: u64, keys: Vec<serde_json::Value>| {
        serde_json::json!({
            "traceId": format!("{:032x}", 0xbf00 + id),
            "spanId": format!("{:016x}", 0xbf00 + id),
            "name": "mes.step",
            "kind": 2,
            "startTimeUnixNano": (now - 60_000_000_000).to_string(),
            "endTimeUnixNano": (now - 59_000_000_000).to_string(),
            "attributes": keys,
            "status": {"code": 2},
        })
    };
    let spans = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", "mes")]},
        "scopeSpans": [{"spans": [
            span(1, vec![attr("work_order.id", "WO-W1")]),
            span(2, vec![attr("work_order.id", "WO-W1"), attr("order.id", "O-W1")]),
        ]}],
    }]});
    post(&app, "/v1/traces", "application/json", &spans).await;
    let events = serde_json::json!([{
        "specversion": "1.0", "id": "walk-1", "source": "urn:test:erp",
        "type": "erp.batch.blocked", "system": "erp", "outcome": "dead_lettered",
        "time": domain::time::rfc3339(now - 30_000_000_000),
        "workorderid": "WO-W1",
    }]);
    post(
        &app,
        "/v1/events",
        "application/cloudevents-batch+json",
        &events,
    )
    .await;
    let store = &app.store;
    let wo = BusinessKey::new("work_order", "WO-W1");
    let stages = [
        ("span", "mes", "mes.step"),
        ("event", "erp", "erp.batch.blocked"),
    ];
    // The event is stored a moment after it is acknowledged.
    let mut walks = Vec::new();
    for _ in 0..50 {
        store.backfill_walks(0, "order", &stages).await.unwrap();
        walks = store
            .walks_with_keys(std::slice::from_ref(&wo), 0, "order")
            .await
            .unwrap();
        if walks.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    walks.sort_by(|a, b| a.record_ref.cmp(&b.record_ref));
    let refs: Vec<&str> = walks.iter().map(|w| w.record_ref.as_str()).collect();
    assert_eq!(
        refs,
        [
            "event:urn:test:erp\twalk-1",
            "span:0000000000000000000000000000bf01:000000000000bf01",
        ],
        "the span with an order key walks not: {walks:?}"
    );
    assert_eq!(walks[0].kind, RecordKind::Event);
    assert_eq!(walks[0].system, "erp");
    assert_eq!(walks[0].name, "erp.batch.blocked");
    assert!(walks[0].failed);
    assert_eq!(walks[1].kind, RecordKind::Span);
    assert_eq!(walks[1].system, "mes");
    assert!(walks[1].failed);
    assert_eq!(walks[1].keys, vec![wo.clone()]);
}

/// Why: every lookup must cost what it returns, not what is stored; a read
/// that used no index (an OR over a tuple equality did, on 18.16) passed
/// every other test and took half a second at 2 M spans. With 200 000 rows
/// of other keys and traces, each lookup read must stay under 50 000 rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_read_by_index_not_by_scan() {
    use domain::keys::KeyTypes;
    use domain::model::{BusinessKey, TraceId};
    use store::query::KeyLookupLimits;
    let app = TestApp::start().await;
    let (spans, events) = hub_batch(domain::now_ns());
    post(&app, "/v1/traces", "application/json", &spans).await;
    post(
        &app,
        "/v1/events",
        "application/cloudevents-batch+json",
        &events,
    )
    .await;
    let (status, _) = app.get("/api/v1/keys/customer/HUB").await;
    assert_eq!(status, 200);
    app.store.pad_lookup_tables(200_000).await.unwrap();
    let store = app.store.clone().with_read_limit(50_000);
    let types = KeyTypes::default();
    for start in [
        BusinessKey::new("customer", "HUB"),
        BusinessKey::new("order", "O-H1"),
        BusinessKey::new("work_order", "WO-H2"),
    ] {
        let (linked, _) = store
            .linked_keys(&start, &types, KeyLookupLimits::default())
            .await
            .unwrap_or_else(|e| panic!("walk from {start:?}: {e}"));
        assert!(!linked.is_empty(), "{start:?}");
        let mut keys: Vec<&BusinessKey> = linked.iter().map(|l| &l.key).collect();
        keys.push(&start);
        assert!(store.key_seen(&start).await.unwrap());
        store.key_summaries(&keys).await.unwrap();
        store.journey_counts(&keys).await.unwrap();
        store.journey_page(&keys, 4, None).await.unwrap();
        let scan = store.journey_scan(&keys, 4, None, 1000).await.unwrap();
        assert!(scan.is_some_and(|s| !s.page.is_empty()), "{start:?}");
    }
    let trace = TraceId::from_hex(&format!("{:032x}", 0xab01)).unwrap();
    assert_eq!(store.trace_spans(trace).await.unwrap().len(), 3);
    store.trace_events(trace).await.unwrap();
}

/// Why: a hub's journey is read from its own range only for the keys whose
/// every record is in it. An event that named only its order before any
/// record linked the order to a customer (written under no hub), and an
/// order two customers share (whose hub-less records go under neither),
/// must still be in the journey and counted as every key's own range
/// counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hubs_journey_keeps_records_that_reached_it_late_or_are_shared() {
    use domain::model::BusinessKey;
    use serde_json::json;
    let app = TestApp::start().await;
    let now = domain::now_ns();
    let spans = |list: &[(u64, &[(&str, &str)])]| {
        let spans: Vec<serde_json::Value> = list
            .iter()
            .map(|(n, keys)| {
                let start = now - 60_000_000_000 + n * 1_000_000_000;
                json!({
                    "traceId": format!("{:032x}", 0xfe00 + n),
                    "spanId": format!("{:016x}", 0xfd00 + n),
                    "name": "erp.step", "kind": 2,
                    "startTimeUnixNano": start.to_string(),
                    "endTimeUnixNano": (start + 500).to_string(),
                    "attributes": keys.iter().map(|(k, v)| attr(k, v)).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({"resourceSpans": [{
            "resource": {"attributes": [attr("service.name", "erp")]},
            "scopeSpans": [{"spans": spans}],
        }]})
    };
    let event = |id: &str, order: &str, n: u64| {
        json!([{
            "specversion": "1.0", "id": id, "source": "urn:test:erp",
            "type": "erp.order.confirmed", "system": "erp",
            "time": domain::time::rfc3339(now - 50_000_000_000 + n * 1_000_000_000),
            "orderid": order,
        }])
    };
    let cloudevents = "application/cloudevents-batch+json";
    // Before anything links O-LATE to a customer.
    post(
        &app,
        "/v1/events",
        cloudevents,
        &event("late-1", "O-LATE", 1),
    )
    .await;
    let linking = spans(&[
        (1, &[("customer.id", "C-A"), ("order.id", "O-LATE")]),
        (2, &[("customer.id", "C-A"), ("order.id", "O-PLAIN")]),
        (3, &[("customer.id", "C-A"), ("order.id", "O-SHARED")]),
        (4, &[("customer.id", "C-B"), ("order.id", "O-SHARED")]),
    ]);
    post(&app, "/v1/traces", "application/json", &linking).await;
    // Records naming no customer, after the links.
    post(
        &app,
        "/v1/events",
        cloudevents,
        &event("plain-1", "O-PLAIN", 2),
    )
    .await;
    post(
        &app,
        "/v1/events",
        cloudevents,
        &event("late-2", "O-LATE", 3),
    )
    .await;
    let alone = spans(&[(5, &[("order.id", "O-SHARED")])]);
    post(&app, "/v1/traces", "application/json", &alone).await;

    let keys = [
        BusinessKey::new("customer", "C-A"),
        BusinessKey::new("order", "O-LATE"),
        BusinessKey::new("order", "O-PLAIN"),
        BusinessKey::new("order", "O-SHARED"),
    ];
    let keys: Vec<&BusinessKey> = keys.iter().collect();
    let store = &app.store;
    let total = store.journey_counts(&keys).await.unwrap();
    assert_eq!((total.spans, total.events), (5, 3));
    let mut per_key = store.key_summaries(&keys).await.unwrap();
    per_key.sort_by(|a, b| a.0.cmp(&b.0));
    let (page, _) = store.journey_page(&keys, 100, None).await.unwrap();

    // The hub's range, with the shared order read by its own: the same.
    let shared = [keys[3]];
    let hub = store
        .hub_journey_scan(keys[0], &keys, &shared, 100, None, 1000)
        .await
        .unwrap()
        .expect("every row of this store names its keys");
    let mut from_hub = hub.per_key.clone();
    from_hub.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(from_hub, per_key);
    assert_eq!(hub.total, total);
    assert_eq!(hub.page, page);
    // Without it, the other customer's span and the span naming only the
    // shared order are missed (under C-B, under no hub): which is why the
    // console reads such keys by their own ranges.
    let partial = store
        .hub_journey_scan(keys[0], &keys, &[], 100, None, 1000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(partial.total.records(), total.records() - 2);

    // And the API, which finds the shared order from the links itself.
    let (status, body) = app.get("/api/v1/keys/customer/C-A?limit=100").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 8, "{body}");
    assert_eq!(body["span_count"], 5);
    assert_eq!(body["event_count"], 3);
    let shown: Vec<String> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}/{}/{}", r["span_id"], r["source"], r["id"]))
        .collect();
    assert_eq!(shown.len(), page.len());
    for (key, counts) in &per_key {
        let summary = body["linked_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["value"] == key.value.as_str())
            .map(|k| k["summary"].clone())
            .unwrap_or_else(|| body["summary"].clone());
        assert_eq!(summary["spans"], counts.spans, "{key:?}: {body}");
        assert_eq!(summary["events"], counts.events, "{key:?}: {body}");
    }
}
