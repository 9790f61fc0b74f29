//! Plants on central (issue 19): the plant filter of the systems figures
//! (`plant=`, read from the plant rollups of `0017`), the edge collectors'
//! reports of their backlog (`POST /v1/plants/status`) and each plant's
//! link state (`/api/v1/plants`, the systems page).

use std::sync::atomic::Ordering;
use std::time::Duration;

use collector::spool::WhenFull;
use domain::plant::PlantReport;
use serde_json::{json, Value};

use crate::forward::{central, connectors_send, Edge, Proxy, PLANT};
use crate::harness::TestApp;

const S: u64 = 1_000_000_000;

/// A span of `service` from `plant` (none: no `plant.id`), `error` or not.
fn span(service: &str, plant: Option<&str>, id: u64, error: bool) -> Value {
    let mut resource = vec![json!({"key": "service.name", "value": {"stringValue": service}})];
    if let Some(p) = plant {
        resource.push(json!({"key": "plant.id", "value": {"stringValue": p}}));
    }
    let start = domain::now_ns() - 60 * S;
    json!({
        "resource": {"attributes": resource},
        "scopeSpans": [{"spans": [{
            "traceId": format!("{:032x}", 0xabc000 + id),
            "spanId": format!("{:016x}", id + 1),
            "name": format!("{service}.op"),
            "kind": 2,
            "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": (start + 1_000_000).to_string(),
            "status": {"code": if error { 2 } else { 0 }},
        }]}],
    })
}

async fn send(app: &TestApp, spans: Vec<Value>, events: Vec<Value>) {
    let body = json!({"resourceSpans": spans});
    let r = app
        .post(
            "/v1/traces",
            "application/json",
            &[],
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post(
            "/v1/events",
            "application/cloudevents-batch+json",
            &[],
            serde_json::to_vec(&events).unwrap(),
        )
        .await;
    assert_eq!(r.status(), 200);
}

fn event(id: &str, plant: Option<&str>) -> Value {
    let mut e = json!({
        "specversion": "1.0", "id": id, "source": "urn:mes:line-1",
        "type": "mes.work_order.completed",
        "time": domain::time::rfc3339(domain::now_ns() - 30 * S),
        "workorderid": format!("WO-{id}"),
    });
    if let Some(p) = plant {
        e["plant"] = json!(p);
    }
    e
}

fn system<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["system"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plant_filter_counts_only_that_plants_records() {
    let app = TestApp::start().await;
    send(
        &app,
        vec![
            span("mes", Some("hamburg"), 1, false),
            span("mes", Some("hamburg"), 2, true),
            span("mes", Some("bremen"), 3, false),
            span("erp", Some("bremen"), 4, false),
            span("crm", None, 5, false),
        ],
        vec![event("e1", Some("hamburg")), event("e2", None)],
    )
    .await;

    // Unfiltered: every record, as before.
    let (status, all) = app.get("/api/v1/systems?from=now-1h").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(system(&all, "mes").unwrap()["spans"], 3);
    let unmapped = domain::events::UNKNOWN_SYSTEM; // no source is mapped here
    assert_eq!(system(&all, unmapped).unwrap()["events"], 2);
    assert_eq!(system(&all, "crm").unwrap()["spans"], 1);

    let (status, hamburg) = app.get("/api/v1/systems?from=now-1h&plant=hamburg").await;
    assert_eq!(status, 200, "{hamburg}");
    assert_eq!(hamburg["plant"], "hamburg");
    let mes = system(&hamburg, "mes").unwrap();
    assert_eq!(
        (mes["spans"].as_u64(), mes["span_errors"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(system(&hamburg, unmapped).unwrap()["events"], 1);
    assert!(
        system(&hamburg, "erp").is_none() && system(&hamburg, "crm").is_none(),
        "{hamburg}"
    );

    let (_, ops) = app
        .get("/api/v1/systems/operations?from=now-1h&plant=bremen")
        .await;
    let ops = ops["operations"].as_array().unwrap();
    let mut names: Vec<&str> = ops
        .iter()
        .map(|o| o["operation"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["erp.op", "mes.op"]);
    assert!(ops.iter().all(|o| o["count"] == 1));

    // A plant no record names answers empty, as a label filter does; a
    // name that could never be stored is a clear 400.
    let (status, none) = app.get("/api/v1/systems?plant=nowhere").await;
    assert_eq!(
        (status, none["systems"].as_array().unwrap().len()),
        (200, 0)
    );
    let (status, bad) = app.get("/api/v1/systems?plant=a%07b").await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("`plant`"), "{bad}");
    let (status, unknown) = app.get("/api/v1/systems?plants=x").await;
    assert_eq!(status, 400);
    assert!(
        unknown["error"].as_str().unwrap().contains("plant"),
        "{unknown}"
    );

    // Known plants: those with records, whether or not an edge reported.
    let (_, plants) = app.get("/api/v1/plants").await;
    let names: Vec<&str> = plants["plants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["plant"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bremen", "hamburg"], "{plants}");
    assert!(plants["plants"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["link"] == "unknown"));

    // The pages: the chooser on the overview and systems pages, filtered
    // figures, and the link state table.
    let page = app.page("/systems?from=now-1h&plant=hamburg").await;
    assert!(page.contains("Systems of plant hamburg"), "{page}");
    assert!(page.contains(r#"id="plant-filter""#) && page.contains(r#"data-plant="bremen""#));
    assert!(!page.contains(r#"data-system="crm""#), "crm names no plant");
    let overview = app.page("/?plant=bremen").await;
    assert!(overview.contains("Systems of plant bremen"), "{overview}");
    let breaches = app.page("/breaches?plant=bremen").await;
    assert!(
        breaches.contains("SLA breaches of plant bremen"),
        "{breaches}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_give_each_plant_its_link_state() {
    let app = TestApp::start().await;
    let report = |backlog: u64| json!({"plant": "kiel", "backlog_bytes": backlog * 100, "backlog_records": backlog, "oldest_age_seconds": 12.5});
    let r = app
        .post(
            "/v1/plants/status",
            "application/json",
            &[],
            serde_json::to_vec(&report(7)).unwrap(),
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = app
        .post(
            "/v1/plants/status",
            "application/json",
            &[],
            b"{\"plant\": 3}".to_vec(),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("not a plant status report"));

    // A plant last heard 10 minutes ago: its link is down.
    app.store
        .write_plant_report(&PlantReport {
            plant: "lübeck".into(),
            received_ns: domain::now_ns() - 600 * S,
            backlog_bytes: 5 << 20,
            backlog_records: 40,
            oldest_age_ns: 60 * S,
        })
        .await
        .unwrap();
    let (_, plants) = app.get("/api/v1/plants").await;
    let by = |name: &str| {
        plants["plants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["plant"] == name)
            .unwrap_or_else(|| panic!("no {name} in {plants}"))
            .clone()
    };
    let kiel = by("kiel");
    assert_eq!(
        (kiel["link"].as_str(), kiel["backlog_records"].as_u64()),
        (Some("up"), Some(7))
    );
    assert_eq!(kiel["backlog_bytes"], 700);
    assert!(kiel["backlog_age_seconds"].as_u64().unwrap() >= 12);
    let lubeck = by("lübeck");
    assert_eq!(lubeck["link"], "down");
    // The backlog grows older while nobody hears from it.
    assert!(
        lubeck["backlog_age_seconds"].as_u64().unwrap() >= 660,
        "{lubeck}"
    );
    assert_eq!(plants["link_timeout"], "1m");

    let page = app.page("/systems").await;
    assert!(
        page.contains(r#"data-plant="lübeck" data-link="down""#),
        "{page}"
    );
    assert!(page.contains("link down"));
    assert!(page.contains(r#"data-plant="kiel" data-link="up""#));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_reports_its_backlog_and_falls_silent_while_the_link_is_cut() {
    let (central, token) = central(PLANT).await;
    let proxy = Proxy::start(central.http).await;
    let edge = Edge::reporting(
        proxy.url(),
        &token,
        collector::spool::DEFAULT_MAX_BYTES,
        WhenFull::Refuse,
        None,
        Duration::from_millis(200),
    )
    .await;
    let state = || async {
        central
            .store
            .plant_states(domain::now_ns())
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.plant == PLANT)
    };
    let heard = || async {
        state()
            .await
            .and_then(|s| s.last_report)
            .map(|r| r.received_ns)
    };
    let wait = || tokio::time::sleep(Duration::from_millis(300));
    // Reports arrive, also with nothing to forward.
    let mut first = None;
    for _ in 0..50 {
        first = heard().await;
        if first.is_some() {
            break;
        }
        wait().await;
    }
    let first = first.expect("the edge reports within 10 s");
    assert_eq!(
        state().await.unwrap().last_report.unwrap().backlog_records,
        0
    );

    // Cut: reports stop, the spool fills, the plant's link goes down.
    proxy.cut.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    connectors_send(&edge, "cut", 5).await;
    let cut_at = heard().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        heard().await.unwrap(),
        cut_at,
        "no report crosses a cut link"
    );
    let s = state().await.unwrap();
    assert!(
        s.link_down(domain::now_ns(), S),
        "unheard for 1.5 s, timeout 1 s: down"
    );
    assert!(cut_at >= first);

    // Back: the backlog is forwarded and reports resume; the newest record
    // is one sent during the cut, with its own time.
    proxy.cut.store(false, Ordering::SeqCst);
    edge.drained().await;
    central.settled().await;
    let mut back = false;
    for _ in 0..50 {
        if heard().await.unwrap() > cut_at {
            back = true;
            break;
        }
        wait().await;
    }
    assert!(back, "reports resume once the link is back");
    let s = state().await.unwrap();
    assert!(!s.link_down(domain::now_ns(), 5 * S));
    assert!(
        s.newest_record_ns > 0 && s.newest_record_ns < cut_at + 5 * S,
        "{s:?}"
    );
    central.stop().await;
}

/// The plant chooser and the link state in Chromium: choosing a plant
/// filters the systems page, the choice follows to the overview, and a
/// plant whose edge went silent shows its link down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plant_filter_and_link_state_in_chromium() {
    let app = TestApp::start().await;
    send(
        &app,
        vec![
            span("mes", Some("hamburg"), 11, false),
            span("erp", Some("bremen"), 12, false),
        ],
        vec![],
    )
    .await;
    app.store
        .write_plant_report(&PlantReport {
            plant: "bremen".into(),
            received_ns: domain::now_ns() - 600 * S,
            backlog_bytes: 3 << 20,
            backlog_records: 12,
            oldest_age_ns: 90 * S,
        })
        .await
        .unwrap();
    let base = format!("http://{}", app.console);
    let b = crate::browser::Browser::start().await;
    b.goto(&format!("{base}/systems?from=now-1h")).await;
    b.wait_text("#plant-filter").await;
    assert!(b
        .text("#plants tr[data-plant=bremen]")
        .await
        .contains("link down"));
    assert!(b
        .text("#plants tr[data-plant=hamburg]")
        .await
        .contains("no reports"));
    b.click("#plant-filter a[data-plant=hamburg]").await;
    let url = b.wait_url("plant=hamburg").await;
    assert!(url.contains("from=now-1h"), "the range stays: {url}");
    assert_eq!(b.wait_text("main h1").await, "Systems of plant hamburg");
    assert!(b.text("#plant-filter a.on").await.contains("hamburg"));
    b.screenshot("systems-plant").await;
    let shown = b
        .script("return [...document.querySelectorAll('[data-system]')].map(e => e.dataset.system).join(',')")
        .await;
    assert_eq!(shown, "mes", "only hamburg's systems");
    // The choice follows to the overview.
    b.click("header nav a[href^='/?']").await;
    b.wait_url("plant=hamburg").await;
    assert!(b
        .wait_text("main")
        .await
        .contains("Systems of plant hamburg"));
    b.click("#plant-filter a:first-of-type").await;
    let mut all = false;
    for _ in 0..100 {
        if !b.url().await.contains("plant=") {
            all = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(all, "all plants again");
    app.stop().await;
}

/// A log record that is an event names its plant as a CloudEvent does,
/// from its resource: the plant's token lets it through and the plant's
/// figures count it. (The bug: the event made from an edge's log record
/// named no plant, so central's plant token refused the record.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_from_a_log_record_keeps_its_resources_plant() {
    let (central, token) = central(PLANT).await;
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "mes"}},
            {"key": "plant.id", "value": {"stringValue": PLANT}},
        ]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": (domain::now_ns() - 20 * S).to_string(),
            "eventName": "mes.work_order.completed",
            "body": {"stringValue": "done"},
            "attributes": [{"key": "work_order.id", "value": {"stringValue": "WO-L1"}}],
        }]}],
    }]});
    let auth = format!("Bearer {token}");
    let r = central
        .post(
            "/v1/logs",
            "application/json",
            &[("authorization", &auth)],
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains("names no plant"), "{text}");
    let (_, systems) = central
        .get(&format!("/api/v1/systems?from=now-1h&plant={PLANT}"))
        .await;
    assert_eq!(
        system(&systems, "mes").expect("counted")["events"],
        1,
        "{systems}"
    );
    central.stop().await;
}

/// The root values of a list of instances or breaches.
fn roots(list: &Value, field: &str) -> Vec<String> {
    let mut out: Vec<String> = list[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {list}"))
        .iter()
        .map(|i| i["key"]["value"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// An instance's plant is the first plant its records named; its breaches
/// take it. The process and breaches pages and their API filter by it,
/// also when the plant came with a later stage than the breach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_and_breaches_filter_by_the_plant_their_records_came_from() {
    use crate::processes::{app, correlator, send, MIN};
    let app = app().await;
    let t = domain::now_ns() - 40 * MIN;
    let created = |o: &'static str| (format!("c-{o}"), o);
    // O-H from hamburg, its ERP stage never came: an open breach. O-B from
    // bremen, its ERP stage 5 minutes late: a closed one. O-N and O-L name
    // no plant yet: open breaches of no plant.
    for (o, plant) in [
        ("O-H", Some("hamburg")),
        ("O-B", Some("bremen")),
        ("O-N", None),
        ("O-L", None),
    ] {
        let (id, o) = created(o);
        let mut keys = vec![("orderid", o)];
        keys.extend(plant.map(|p| ("plant", p)));
        send(&app, &id, "crm", "crm.order.created", t, &keys).await;
    }
    send(
        &app,
        "e-O-B",
        "erp",
        "erp.sales_order.created",
        t + 20 * MIN,
        &[("orderid", "O-B"), ("plant", "bremen")],
    )
    .await;
    let mut correlator = correlator(&app).await;
    correlator.cycle(domain::now_ns()).await.unwrap();
    let (_, none) = app.get("/api/v1/breaches?from=now-2h&plant=hamburg").await;
    assert_eq!(roots(&none, "breaches"), ["O-H"], "{none}");

    // O-L's ERP stage comes from hamburg, 15 minutes late: the instance
    // and its (now closed) breach become hamburg's.
    send(
        &app,
        "e-O-L",
        "erp",
        "erp.sales_order.created",
        t + 30 * MIN,
        &[("orderid", "O-L"), ("plant", "hamburg")],
    )
    .await;
    correlator.cycle(domain::now_ns()).await.unwrap();

    let instances = |q: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app
                .get(&format!(
                    "/api/v1/processes/order-to-delivery/instances?from=now-2h{q}"
                ))
                .await;
            assert_eq!(status, 200, "{body}");
            roots(&body, "instances")
        }
    };
    assert_eq!(instances("&plant=hamburg").await, ["O-H", "O-L"]);
    assert_eq!(instances("&plant=bremen").await, ["O-B"]);
    assert_eq!(instances("").await, ["O-B", "O-H", "O-L", "O-N"]);
    assert!(instances("&plant=nowhere").await.is_empty());
    assert_eq!(instances("&plant=hamburg&key=O-L").await, ["O-L"]);
    assert!(instances("&plant=bremen&key=O-L").await.is_empty());

    let breaches = |q: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app.get(&format!("/api/v1/breaches?from=now-2h{q}")).await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let hamburg = breaches("&plant=hamburg").await;
    assert_eq!(roots(&hamburg, "breaches"), ["O-H", "O-L"], "{hamburg}");
    let closed = breaches("&plant=hamburg&open=false").await;
    assert_eq!(roots(&closed, "breaches"), ["O-L"], "{closed}");
    assert_eq!(closed["breaches"][0]["late_ns"], (15 * MIN).to_string());
    assert_eq!(roots(&breaches("&plant=bremen").await, "breaches"), ["O-B"]);
    assert_eq!(
        roots(&breaches("").await, "breaches"),
        ["O-B", "O-H", "O-L", "O-N"]
    );
    let (status, bad) = app.get("/api/v1/breaches?plant=a%07b").await;
    assert_eq!(status, 400, "{bad}");
    let (status, bad) = app
        .get("/api/v1/processes/order-to-delivery/instances?plant=a%07b")
        .await;
    assert_eq!(status, 400, "{bad}");

    // The pages: the plant chooser, and the lists of the plant chosen.
    let page = app
        .page("/processes/order-to-delivery?from=now-2h&plant=hamburg")
        .await;
    assert!(page.contains(r#"id="plant-filter""#), "{page}");
    assert!(page.contains(r#"data-plant="bremen""#), "{page}");
    assert!(page.contains(r#"id="plant-figures""#), "{page}");
    assert!(page.contains(">O-H<") && page.contains(">O-L<"), "{page}");
    assert!(!page.contains(">O-B<") && !page.contains(">O-N<"), "{page}");
    let page = app.page("/breaches?from=now-2h&plant=bremen").await;
    assert!(page.contains("SLA breaches of plant bremen"), "{page}");
    assert!(page.contains(r#"id="plant-filter""#), "{page}");
    assert!(page.contains(">O-B<") && !page.contains(">O-H<"), "{page}");
    app.stop().await;
}

/// The plant chooser on the breaches and process pages, in Chromium: a
/// plant chosen on the breaches page lists its breaches only, and follows
/// to the process page, whose instances are that plant's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plant_filter_of_breaches_and_instances_in_chromium() {
    use crate::processes::{app, correlator, send, MIN};
    let app = app().await;
    let t = domain::now_ns() - 40 * MIN;
    for (o, plant) in [("O-H", "hamburg"), ("O-B", "bremen")] {
        let id = format!("c-{o}");
        send(
            &app,
            &id,
            "crm",
            "crm.order.created",
            t,
            &[("orderid", o), ("plant", plant)],
        )
        .await;
    }
    correlator(&app)
        .await
        .cycle(domain::now_ns())
        .await
        .unwrap();
    let base = format!("http://{}", app.console);
    let b = crate::browser::Browser::start().await;
    let keys = |table: &'static str| {
        let b = &b;
        async move {
            b.script(&format!(
                "return [...document.querySelectorAll('#{table} tbody tr')].map(r => r.querySelector('a[href^=\"/keys/\"]').textContent).sort().join(',')"
            ))
            .await
        }
    };
    b.goto(&format!("{base}/breaches?from=now-2h")).await;
    b.wait_text("#plant-filter").await;
    assert_eq!(keys("breaches").await, "O-B,O-H");
    b.click("#plant-filter a[data-plant=hamburg]").await;
    let url = b.wait_url("plant=hamburg").await;
    assert!(url.contains("from=now-2h"), "the range stays: {url}");
    assert_eq!(
        b.wait_text("main h1").await,
        "SLA breaches of plant hamburg"
    );
    assert!(b.text("#plant-filter a.on").await.contains("hamburg"));
    assert_eq!(keys("breaches").await, "O-H");
    b.screenshot("breaches-plant").await;

    // The breach's process link keeps the plant: the instances are its.
    b.click("#breaches tbody tr a[href^='/processes/']").await;
    b.wait_url("/processes/order-to-delivery").await;
    assert!(b.url().await.contains("plant=hamburg"));
    b.wait_text("#plant-figures").await;
    assert!(b.text("#plant-filter a.on").await.contains("hamburg"));
    assert_eq!(keys("instances").await, "O-H");
    b.click("#plant-filter a[data-plant=bremen]").await;
    b.wait_url("plant=bremen").await;
    b.wait_text("#plant-figures").await;
    assert_eq!(keys("instances").await, "O-B");
    b.screenshot("process-plant").await;
    app.stop().await;
}
