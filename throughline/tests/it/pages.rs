//! The console's pages over a real ClickHouse: each page shows the scenario,
//! its figures are the API's, user data is escaped, search lands on the
//! right page, and errors are pages that say what happened.

use std::net::SocketAddr;
use std::sync::Arc;

use collector::metrics::Metrics;
use console::read::Reads;
use console::serve::Console;
use console::state::AppState;
use domain::keys::KeyTypes;
use domain::process::Processes;
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use store::{Store, StoreConfig};
use tokio_util::sync::CancellationToken;

use crate::harness::TestApp;
use crate::otlp::{with_sdk, Transport};
use crate::processes::{app, correlator, send, MIN};

/// A page: status, `Location` header, body.
pub(crate) async fn page(app: &TestApp, path: &str) -> (u16, String, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .get(format!("http://{}{path}", app.console))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, location, named_entities(&r.text().await.unwrap()))
}

/// A page with askama's numeric entities spelled as named ones, so that
/// assertions read naturally.
fn named_entities(html: &str) -> String {
    html.replace("&#60;", "&lt;")
        .replace("&#62;", "&gt;")
        .replace("&#34;", "&quot;")
        .replace("&#38;", "&amp;")
}

/// The text of the first `data-figure="name"` element after `marker`.
fn figure(html: &str, marker: &str, name: &str) -> String {
    let from = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in page"));
    let rest = &html[from..];
    let at = rest
        .find(&format!("data-figure=\"{name}\""))
        .unwrap_or_else(|| panic!("no figure {name} after {marker}"));
    let rest = &rest[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap() + start;
    rest[start..end].trim().to_string()
}

/// An order SO-1 (customer ACME, work order WO-1) whose ERP entry came 20
/// minutes after capture (a closed breach), an order SO-2 captured 30
/// minutes ago and never entered (an open breach), a customer and an order
/// both called TWIN, and a CRM span calling an ERP span, the ERP one
/// carrying `<script>` in an attribute. Returns the app and the trace id.
async fn scenario() -> (TestApp, String) {
    let app = app().await;
    let t = domain::now_ns() - 120 * MIN;
    send(
        &app,
        "c-1",
        "crm",
        "crm.order.created",
        t,
        &[("orderid", "SO-1"), ("customerid", "ACME")],
    )
    .await;
    send(
        &app,
        "e-1",
        "erp",
        "erp.sales_order.created",
        t + 20 * MIN,
        &[("orderid", "SO-1"), ("workorderid", "WO-1")],
    )
    .await;
    send(
        &app,
        "c-2",
        "crm",
        "crm.order.created",
        domain::now_ns() - 30 * MIN,
        &[("orderid", "SO-2")],
    )
    .await;
    send(
        &app,
        "c-3",
        "crm",
        "crm.order.created",
        t,
        &[("orderid", "TWIN"), ("customerid", "TWIN")],
    )
    .await;
    // A warehouse system last heard from two hours ago: silent.
    send(
        &app,
        "w-1",
        "wms",
        "wms.pick.done",
        t,
        &[("orderid", "SO-1")],
    )
    .await;
    let parent = with_sdk(&app, Transport::HttpProtobuf, "crm", |tracer| {
        let mut parent = tracer.start("crm.order.create");
        parent.set_attribute(KeyValue::new("order.id", "SO-1"));
        let context = parent.span_context().clone();
        parent.end();
        context
    })
    .await;
    let trace_id = parent.trace_id().to_string();
    // The ERP connector continues the trace, as W3C propagation would.
    with_sdk(&app, Transport::HttpProtobuf, "erp", move |tracer| {
        let cx = Context::new().with_remote_span_context(parent);
        let mut child = tracer.start_with_context("erp.sales_order.create", &cx);
        child.set_attribute(KeyValue::new("order.id", "SO-1"));
        child.set_attribute(KeyValue::new("note", "<script>alert(1)</script>"));
        child.end();
    })
    .await;
    app.trace(&trace_id, 2).await;
    let mut c = correlator(&app).await;
    c.cycle(domain::now_ns()).await.unwrap();
    (app, trace_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_shows_the_scenario_with_the_apis_figures() {
    let (app, trace_id) = scenario().await;

    let (status, _, html) = page(&app, "/?from=now-7d").await;
    assert_eq!(status, 200, "{html}");
    let (_, api) = app.get("/api/v1/processes?from=now-7d").await;
    let p = &api["processes"][0];
    let tile = "data-process=\"order-to-delivery\"";
    assert_eq!(
        figure(&html, tile, "in_flight"),
        p["instances"]["in_flight"].to_string()
    );
    assert_eq!(
        figure(&html, tile, "completed"),
        p["instances"]["completed"].to_string()
    );
    assert_eq!(
        figure(&html, tile, "open_breaches"),
        p["open_breaches"].to_string()
    );
    assert_eq!(p["open_breaches"], 2, "SO-2 and TWIN: {api}");
    let compliance = p["compliance_percent"].as_f64().unwrap();
    assert_eq!(
        figure(&html, tile, "compliance"),
        format!("{compliance:.1}%")
    );
    assert!(html.contains("data-system=\"crm\""), "a row per system");
    assert!(
        html.contains("<tr data-system=\"wms\" class=\"silent\">"),
        "{html}"
    );
    assert!(!html.contains("<tr data-system=\"crm\" class=\"silent\">"));
    let (_, html) = (0, page(&app, "/?from=now-1h").await.2);
    assert!(
        html.contains("<tr data-system=\"wms\" class=\"silent\">"),
        "a system silent over the whole range still has its row"
    );
    assert!(html.contains("SO-2"), "the open breach is listed");
    assert!(
        html.contains("href=\"/breaches?from=now-1h&amp;open=true\""),
        "all open breaches, in the range"
    );
    assert!(!html.contains("id=\"empty-state\""));

    let (status, _, html) = page(&app, "/processes/order-to-delivery?from=now-7d").await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        figure(&html, "id=\"process-figures\"", "started"),
        p["instances"]["started"].to_string()
    );
    assert_eq!(
        figure(&html, "data-sla=\"order-entry\"", "breached"),
        p["slas"][0]["breached"].to_string()
    );
    assert!(html.contains("class=\"funnel\""), "a stage funnel");
    assert!(
        html.contains("captured → sales_order"),
        "a duration distribution"
    );
    assert!(
        html.contains("/keys/order/SO-1"),
        "instances link to their key"
    );
    let (_, html) = (
        0,
        page(
            &app,
            "/processes/order-to-delivery?from=now-7d&status=completed",
        )
        .await
        .2,
    );
    assert!(html.contains("No instance matches"), "filtered by status");
    let (_, html) = (
        0,
        page(&app, "/processes/order-to-delivery?from=now-15m&key=SO-1")
            .await
            .2,
    );
    assert!(
        html.contains(">SO-1<"),
        "a key finds its instance outside the range"
    );
    let (status, _, _) = page(&app, "/breaches?process=order-to-delivery&sla=no-such-sla").await;
    assert_eq!(
        status, 200,
        "an SLA of another process is dropped from the filter"
    );

    let (status, _, html) = page(&app, "/breaches?from=now-7d&open=true").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(">SO-2<") && !html.contains(">SO-1<"),
        "{html}"
    );
    assert!(
        html.contains("/processes/order-to-delivery?from=now-7d&amp;key=SO-2"),
        "links to its instance"
    );

    let (status, _, html) = page(&app, "/keys/order/SO-1").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("class=\"timeline\""), "a journey timeline");
    assert!(
        html.contains("/keys/work_order/WO-1") && html.contains("/keys/customer/ACME"),
        "linked keys"
    );
    assert!(
        html.contains("breached by 5m 00s"),
        "the SLA's state: {html}"
    );
    assert!(
        html.contains(&format!("/traces/{trace_id}")),
        "marks link to the trace"
    );

    let (status, _, html) = page(&app, &format!("/traces/{trace_id}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the attribute shows as text"
    );
    assert!(!html.contains("<script>alert"), "and never as markup");
    assert!(
        html.contains("data-depth=\"1\""),
        "the child is nested under its parent"
    );

    let (status, _, html) = page(&app, "/systems?from=now-7d").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"svc-crm\"") && html.contains("crm.order.create"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_lands_on_the_right_page_or_says_why_not() {
    let (app, trace_id) = scenario().await;
    let (status, location, _) = page(&app, "/search?q=SO-1").await;
    assert_eq!((status, location.as_str()), (303, "/keys/order/SO-1"));
    let (status, location, _) = page(&app, "/search?q=+wo-1+&from=now-1h").await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/keys/work_order/WO-1?from=now-1h")
    );
    let (status, location, _) = page(&app, &format!("/search?q={trace_id}")).await;
    assert_eq!((status, location), (303, format!("/traces/{trace_id}")));
    let (status, _, html) = page(&app, "/search?q=TWIN").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("/keys/customer/TWIN") && html.contains("/keys/order/TWIN"),
        "{html}"
    );
    let (status, location, _) = page(&app, "/search?q=customer:TWIN").await;
    assert_eq!((status, location.as_str()), (303, "/keys/customer/TWIN"));
    let (status, _, html) = page(&app, "/search?q=%27%22%3Cscript%3Ex").await;
    assert_eq!(status, 404);
    assert!(
        html.contains("Nothing is known by <strong>&#39;&quot;&lt;script&gt;x</strong>"),
        "{html}"
    );
    let (_, body) = app.get("/api/v1/search?q=TWIN").await;
    assert_eq!(body["matches"].as_array().unwrap().len(), 2, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_pages_that_say_what_happened() {
    let app = app().await;
    let (status, _, html) = page(&app, "/").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("id=\"empty-state\""),
        "a fresh install says how to send data"
    );

    let (status, _, html) = page(&app, "/no/such/page").await;
    assert_eq!(status, 404);
    assert!(html.contains("There is no page at /no/such/page"));
    let (status, _, html) = page(&app, "/traces/xyz").await;
    assert_eq!(status, 400);
    assert!(html.contains("is not a trace id"), "{html}");
    let (status, _, html) = page(&app, "/keys/order/%27%3Cscript%3E").await;
    assert_eq!(status, 404);
    assert!(html.contains("order `&#39;&lt;script&gt;`"), "{html}");
    let (status, _, html) = page(&app, "/processes/nope").await;
    assert_eq!(status, 404);
    assert!(html.contains("Defined: order-to-delivery"), "{html}");
    let (status, _, html) = page(&app, "/?from=yesterday").await;
    assert_eq!(status, 400);
    assert!(html.contains("is not a time"), "{html}");
    let (status, _, _) = page(&app, "/assets/style.css").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_clickhouse_down_pages_say_so_and_the_console_keeps_serving() {
    // Nothing listens on a port that was just free.
    let dead: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let store = Store::new(StoreConfig {
        url: format!("http://{dead}"),
        database: "throughline".into(),
        user: None,
        password: None,
        timeouts: Default::default(),
        compression: Default::default(),
    });
    let keys = Arc::new(KeyTypes::default());
    let processes = Arc::new(Processes {
        list: vec![Processes::parse(crate::processes::ORDER_TO_DELIVERY, "o.toml", &keys).unwrap()],
        ..Default::default()
    });
    let shutdown = CancellationToken::new();
    let console = Console::start(
        AppState {
            reads: Reads {
                store,
                keys,
                processes,
                caches: Default::default(),
                alerts: Default::default(),
                retention: Default::default(),
            },
            metrics: Arc::new(Metrics::new()),
            auth: Arc::new(console::auth::Auth::open()),
            correlator: None,
        },
        "127.0.0.1:0".parse().unwrap(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    for path in [
        "/",
        "/systems",
        "/breaches",
        "/processes/order-to-delivery",
        "/keys/order/SO-1",
    ] {
        let r = client
            .get(format!("http://{}{path}", console.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{path}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("The data store is not answering"),
            "{path}: {html}"
        );
    }
    let r = client
        .get(format!("http://{}/healthz", console.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the process keeps serving");
    shutdown.cancel();
}
