//! Integration events: CloudEvents in all three modes from the cloudevents-sdk
//! crate, OTLP log events from the OpenTelemetry SDK, stored once, tied to
//! traces and business keys.

use cloudevents::binding::reqwest::RequestBuilderExt;
use cloudevents::{EventBuilder, EventBuilderV10};
use domain::events::EventConfig;
use opentelemetry::trace::{Span as _, Tracer};
use opentelemetry::KeyValue;
use serde_json::{json, Value};

use crate::harness::{TestApp, TestConfig};
use crate::otlp::{with_sdk, Transport};

fn event(id: &str) -> EventBuilderV10 {
    EventBuilderV10::new()
        .id(id)
        .source("urn:plant1:mes:line2")
        .ty("mes.work_order.completed")
        .time("2026-11-26T08:15:00Z")
}

async fn post_structured(app: &TestApp, event: &cloudevents::Event) -> (u16, Value) {
    let r = app
        .post(
            "/v1/events",
            "application/cloudevents+json",
            &[],
            serde_json::to_vec(event).unwrap(),
        )
        .await;
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post_binary(app: &TestApp, event: cloudevents::Event) -> (u16, Value) {
    let r = app
        .client
        .post(app.otlp_url("/v1/events"))
        .event(event)
        .unwrap()
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post_batch(app: &TestApp, events: Vec<cloudevents::Event>) -> (u16, Value) {
    let r = app
        .client
        .post(app.otlp_url("/v1/events"))
        .events(events)
        .unwrap()
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn plant() -> TestConfig {
    let events: EventConfig = toml::from_str(
        "[systems]\n\"urn:plant1:mes\" = \"mes\"\n\"https://erp.plant1.example\" = \"erp\"\n",
    )
    .unwrap();
    TestConfig {
        events,
        ..Default::default()
    }
}

async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/api/v1/events?from=2026-11-01T00:00:00Z&{query}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mode_of_the_sdk_lands_with_its_attributes() {
    let app = TestApp::with(plant()).await;

    let structured = event("s-1")
        .extension("workorderid", "WO-1")
        .extension("outcome", "failed")
        .extension("attempt", 2_i64)
        .data("application/json", json!({"quantity": 5}))
        .build()
        .unwrap();
    assert_eq!(
        post_structured(&app, &structured).await,
        (200, json!({"accepted": 1, "rejected": []}))
    );

    let binary = event("b-1")
        .subject("WO-2")
        .extension("workorderid", "WO-2")
        .extension("correlationid", "s-1")
        .data("application/json", json!({"customer": {"id": "ACME"}}))
        .build()
        .unwrap();
    assert_eq!(
        post_binary(&app, binary).await,
        (200, json!({"accepted": 1, "rejected": []}))
    );

    let batched = vec![
        event("m-1")
            .extension("workorderid", "WO-3")
            .build()
            .unwrap(),
        event("m-2")
            .extension("workorderid", "WO-4")
            .build()
            .unwrap(),
    ];
    assert_eq!(
        post_batch(&app, batched).await,
        (200, json!({"accepted": 2, "rejected": []}))
    );

    let listed = events(&app, "system=mes").await;
    let ids: Vec<&str> = listed.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4);
    for id in ["s-1", "b-1", "m-1", "m-2"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let s1 = listed.iter().find(|e| e["id"] == "s-1").unwrap();
    assert_eq!(s1["outcome"], "failed");
    assert_eq!(s1["attempt"], 2);
    assert_eq!(s1["time"], "2026-11-26T08:15:00.000000000Z");
    assert_eq!(s1["time_missing"], false);
    assert_eq!(s1["data"], json!({"quantity": 5}));
    assert_eq!(s1["keys"], json!([{"type": "work_order", "value": "WO-1"}]));
    let b1 = listed.iter().find(|e| e["id"] == "b-1").unwrap();
    assert_eq!(b1["subject"], "WO-2");
    assert_eq!(b1["correlation_id"], "s-1");
    assert_eq!(b1["data_content_type"], "application/json");
    assert_eq!(
        b1["keys"],
        json!([{"type": "customer", "value": "ACME"}, {"type": "work_order", "value": "WO-2"}])
    );

    let failed = events(&app, "outcome=failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["id"], "s-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_fixture_lands_and_links_its_keys() {
    let app = TestApp::with(plant()).await;
    let body = include_bytes!("../../../sample-data/fixtures/cloudevents-batch.json").to_vec();
    let r = app
        .post(
            "/v1/events",
            "application/cloudevents-batch+json",
            &[],
            body,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"accepted": 3, "rejected": []})
    );

    let listed = events(&app, "").await;
    let ids: Vec<&str> = listed.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec!["crm-upd-99", "erp-gr-5000123", "mes-7f3a-0001"],
        "newest first"
    );
    assert_eq!(listed[0]["outcome"], "dead_lettered");
    assert_eq!(
        listed[0]["data"],
        "ship date could not be updated: CRM returned 503"
    );
    assert_eq!(listed[1]["system"], "erp");
    assert_eq!(listed[1]["attempt"], 3);

    // The customer reaches the order and, through the MES event, the work order.
    let (status, body) = app.get("/api/v1/keys/customer/ACME").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["event_count"], 2, "{body}");
    let (_, body) = app.get("/api/v1/keys/order/SO-4711").await;
    let events = crate::harness::records(&body, "event");
    let types: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        vec!["crm.order.update", "mes.work_order.completed"],
        "newest first: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_100_with_3_bad_stores_97_and_names_the_3() {
    let app = TestApp::with(plant()).await;
    let mut batch: Vec<Value> = (0..100)
        .map(|i| {
            json!({"specversion": "1.0", "id": format!("e-{i}"), "source": "urn:plant1:mes",
                   "type": "mes.operation.done", "time": "2026-11-26T09:00:00Z"})
        })
        .collect();
    batch[7].as_object_mut().unwrap().remove("id");
    batch[42]["time"] = json!("last tuesday");
    batch[99]["outcome"] = json!("exploded");
    let r = app
        .post(
            "/v1/events",
            "application/cloudevents-batch+json",
            &[],
            serde_json::to_vec(&batch).unwrap(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 97);
    let rejected: Vec<(u64, String)> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![7, 42, 99]
    );
    assert!(
        rejected[0].1.contains("`id` is missing"),
        "{}",
        rejected[0].1
    );
    assert!(
        rejected[1].1.contains("`time` \"last tuesday\""),
        "{}",
        rejected[1].1
    );
    assert!(
        rejected[2].1.contains("`outcome` \"exploded\""),
        "{}",
        rejected[2].1
    );

    let (_, page) = app
        .get("/api/v1/events?from=2026-11-01T00:00:00Z&limit=1000")
        .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 97);

    // Paging: 40 at a time reaches all 97 once, then stops.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let mut path = "/api/v1/events?from=2026-11-01T00:00:00Z&limit=40".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for e in page["events"].as_array().unwrap() {
            assert!(
                seen.insert(e["id"].as_str().unwrap().to_string()),
                "{} twice",
                e["id"]
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 97);

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("throughline_events_rejected_total{reason=\"invalid_event\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_delivered_five_times_is_one_row_in_every_answer() {
    let app = TestApp::with(plant()).await;
    let build = || {
        event("dup-1")
            .extension("orderid", "O-9")
            .extension(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .build()
            .unwrap()
    };
    assert_eq!(post_structured(&app, &build()).await.0, 200);
    assert_eq!(post_binary(&app, build()).await.0, 200);
    assert_eq!(post_batch(&app, vec![build(), build()]).await.0, 200);
    // The fifth time without a time of its own, a while later: still the same event.
    let mut untimed = serde_json::to_value(build()).unwrap();
    untimed.as_object_mut().unwrap().remove("time");
    let r = app
        .post(
            "/v1/events",
            "application/cloudevents+json",
            &[],
            serde_json::to_vec(&untimed).unwrap(),
        )
        .await;
    assert_eq!(r.status(), 200);

    assert_eq!(events(&app, "").await.len(), 1);
    let (_, key) = app.get("/api/v1/keys/order/O-9").await;
    assert_eq!(key["event_count"], 1, "{key}");
    let (_, trace) = app
        .get("/api/v1/traces/0af7651916cd43dd8448eb211c80319c")
        .await;
    assert_eq!(trace["event_count"], 1, "{trace}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("throughline_events_duplicates_dropped_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("throughline_written_total{signal=\"events\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_ties_an_event_to_its_trace_and_keys_link_order_to_work_order_spans() {
    let app = TestApp::with(plant()).await;
    // A MES span that knows only its work order.
    let (trace_id, span_id) = with_sdk(&app, Transport::Grpc, "mes", |tracer| {
        let mut span = tracer
            .span_builder("mes.work_order.run")
            .with_attributes(vec![KeyValue::new("work_order.id", "WO-77")])
            .start(tracer);
        let cx = span.span_context().clone();
        span.end();
        (cx.trace_id().to_string(), cx.span_id().to_string())
    })
    .await;
    // The ERP event that names both the order and the work order, in that trace.
    let e = event("link-1")
        .ty("erp.production_order.released")
        .extension("system", "erp")
        .extension("orderid", "O-77")
        .extension("workorderid", "WO-77")
        .extension("traceparent", format!("00-{trace_id}-{span_id}-01"))
        .build()
        .unwrap();
    assert_eq!(post_structured(&app, &e).await.0, 200);

    let (_, trace) = app.get(&format!("/api/v1/traces/{trace_id}")).await;
    assert_eq!(trace["span_count"], 1, "{trace}");
    assert_eq!(trace["events"][0]["id"], "link-1");
    assert_eq!(trace["events"][0]["span_id"], span_id);

    let (status, order) = app.get("/api/v1/keys/order/O-77").await;
    assert_eq!(status, 200);
    assert_eq!(order["linked_keys"][0]["type"], "work_order");
    assert_eq!(order["linked_keys"][0]["value"], "WO-77");
    let spans = crate::harness::records(&order, "span");
    assert_eq!(spans[0]["name"], "mes.work_order.run", "{order}");
    assert_eq!(crate::harness::records(&order, "event")[0]["id"], "link-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_log_events_from_the_sdk_become_integration_events() {
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
    use opentelemetry_otlp::WithExportConfig;
    let app = TestApp::start().await;
    let grpc = app.grpc_url();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            let exporter = {
                let _guard = runtime.enter();
                opentelemetry_otlp::LogExporter::builder()
                    .with_tonic()
                    .with_endpoint(grpc)
                    .build()
                    .unwrap()
            };
            let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("mes")
                        .build(),
                )
                .build();
            let logger = provider.logger("mes-connector");
            let mut record = logger.create_log_record();
            record.set_event_name("mes.quality_hold.placed");
            record.set_body("hold on finished goods".into());
            record.set_timestamp(std::time::SystemTime::now());
            record.add_attribute("work_order.id", "WO-55");
            record.add_attribute("outcome", "failed");
            logger.emit(record);
            provider.force_flush().unwrap();
            provider.shutdown().unwrap();
        })
        .join()
        .unwrap()
    })
    .await
    .unwrap();

    let mut listed = Vec::new();
    for _ in 0..50 {
        let (_, body) = app.get("/api/v1/events?system=mes").await;
        listed = body["events"].as_array().cloned().unwrap_or_default();
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(listed.len(), 1);
    let e = &listed[0];
    assert_eq!(e["type"], "mes.quality_hold.placed");
    assert_eq!(e["origin"], "otlp_log");
    assert_eq!(e["outcome"], "failed");
    assert_eq!(e["data"], "hold on finished goods");
    assert_eq!(e["keys"], json!([{"type": "work_order", "value": "WO-55"}]));
    let (_, key) = app.get("/api/v1/keys/work_order/WO-55").await;
    assert_eq!(key["event_count"], 1, "{key}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_event_requests_get_400_413_415_with_the_reason() {
    let app = TestApp::with(TestConfig {
        max_request_bytes: 2048,
        ..plant()
    })
    .await;
    let ce = "application/cloudevents+json";
    let r = app
        .post(
            "/v1/events",
            ce,
            &[],
            br#"{"specversion": "1.0", "id": "x", "type": "t"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid CloudEvent: `source` is missing; every CloudEvent needs id, source, type and specversion");

    let r = app.post("/v1/events", ce, &[], b"not json".to_vec()).await;
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .starts_with("request body is not valid JSON"));

    let r = app
        .post(
            "/v1/events",
            "application/cloudevents-batch+json",
            &[],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(r.status(), 400);

    let r = app
        .post("/v1/events", "text/plain", &[], b"hello".to_vec())
        .await;
    assert_eq!(r.status(), 415);
    assert!(r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("binary mode"));

    let r = app.post("/v1/events", ce, &[], vec![b' '; 4096]).await;
    assert_eq!(r.status(), 413);

    // Bad query parameters on the list get a 400 that says what is accepted.
    let (status, body) = app.get("/api/v1/events?from=yesterday").await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("use RFC 3339"),
        "{body}"
    );
    let (status, body) = app.get("/api/v1/events?cursor=zzz").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.get("/api/v1/events?colour=red").await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("known parameters"),
        "{body}"
    );
}

/// The OCEL 2.0 export of a small scenario, parsed back against the OCEL 2.0
/// JSON structure: four top-level arrays, typed attributes, relationships.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ocel_export_follows_the_ocel_2_json_structure() {
    let app = TestApp::with(plant()).await;
    let body = include_bytes!("../../../sample-data/fixtures/cloudevents-batch.json").to_vec();
    assert_eq!(
        app.post(
            "/v1/events",
            "application/cloudevents-batch+json",
            &[],
            body
        )
        .await
        .status(),
        200
    );
    let (status, log) = app
        .get("/api/v1/export/ocel?from=2026-11-26T00:00:00Z&to=2026-11-27T00:00:00Z")
        .await;
    assert_eq!(status, 200, "{log}");
    let top: Vec<&str> = log
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(top, vec!["eventTypes", "events", "objectTypes", "objects"]);

    let valid_types = ["string", "integer", "float", "boolean", "time"];
    for t in log["objectTypes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(log["eventTypes"].as_array().unwrap())
    {
        assert!(t["name"].is_string());
        for a in t["attributes"].as_array().unwrap() {
            assert!(valid_types.contains(&a["type"].as_str().unwrap()), "{a}");
        }
    }
    let object_types: Vec<&str> = log["objectTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(object_types, vec!["customer", "order", "work_order"]);

    let objects = log["objects"].as_array().unwrap();
    let ids: Vec<&str> = objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec!["customer:ACME", "order:SO-4711", "work_order:WO-88"]
    );
    for o in objects {
        assert!(object_types.contains(&o["type"].as_str().unwrap()));
        for a in o["attributes"].as_array().unwrap() {
            assert!(
                a["name"].is_string() && a["time"].is_string() && !a["value"].is_null(),
                "{a}"
            );
        }
        for r in o["relationships"].as_array().unwrap() {
            assert!(ids.contains(&r["objectId"].as_str().unwrap()), "{r}");
            assert!(r["qualifier"].is_string());
        }
    }
    let order = objects.iter().find(|o| o["id"] == "order:SO-4711").unwrap();
    let rel: Vec<(&str, &str)> = order["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["objectId"].as_str().unwrap(),
                r["qualifier"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rel,
        vec![
            ("customer:ACME", "part of"),
            ("work_order:WO-88", "contains")
        ]
    );

    let events = log["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    let event_types: Vec<&str> = log["eventTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for e in events {
        assert!(event_types.contains(&e["type"].as_str().unwrap()));
        assert!(time::OffsetDateTime::parse(
            e["time"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok());
        for r in e["relationships"].as_array().unwrap() {
            assert!(ids.contains(&r["objectId"].as_str().unwrap()), "{r}");
        }
    }
    let mes = events
        .iter()
        .find(|e| e["type"] == "mes.work_order.completed")
        .unwrap();
    assert_eq!(mes["time"], "2026-11-26T08:15:00.250000000Z");
    let attempt = events
        .iter()
        .find(|e| e["type"] == "erp.goods_receipt.failed")
        .unwrap()["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "attempt")
        .unwrap()["value"]
        .clone();
    assert_eq!(attempt, json!(3), "declared integer, sent as a number");
}

/// The OCEL export is streamed a page at a time (issue 21: a month of
/// events built one document in memory): no `Content-Length` fixed up
/// front, every event of a range several pages long, each once, and the
/// objects of all pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ocel_export_streams_a_range_of_many_pages_whole() {
    let app = TestApp::with(plant()).await;
    const N: usize = 4_500;
    let batch: Vec<Value> = (0..N)
        .map(|i| {
            json!({"specversion": "1.0", "id": format!("e-{i}"), "source": "urn:plant1:mes",
                   "type": "mes.operation.done",
                   "time": format!("2026-11-26T09:{:02}:{:02}Z", (i / 60) % 60, i % 60),
                   "orderid": format!("SO-{}", i % 700)})
        })
        .collect();
    let r = app
        .post(
            "/v1/events",
            "application/cloudevents-batch+json",
            &[],
            serde_json::to_vec(&batch).unwrap(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let response =
        app.client
            .get(app.console_url(
                "/api/v1/export/ocel?from=2026-11-26T00:00:00Z&to=2026-11-27T00:00:00Z",
            ))
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("content-length").is_none(),
        "a streamed export cannot know its length: {:?}",
        response.headers()
    );
    let log: Value = response.json().await.expect("the whole document parses");
    let ids: std::collections::BTreeSet<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(log["events"].as_array().unwrap().len(), N);
    assert_eq!(ids.len(), N, "each event once");
    assert_eq!(log["objects"].as_array().unwrap().len(), 700);
    assert_eq!(log["eventTypes"].as_array().unwrap().len(), 1);
}
