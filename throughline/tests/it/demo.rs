//! The demo plant against the real stack: every process gets instances, each
//! incident kind leaves the breaches and failures it should, and one seed
//! stores the same counts twice.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use domain::process::Processes;
use engine::correlator::{Correlator, CorrelatorSettings};
use sample_data::{DemoOptions, Incidents, Summary};
use serde_json::Value;
use throughline::config::{CollectorArgs, ConfigFile, KeysArgs};

use crate::harness::{TestApp, TestConfig};

pub(crate) const PROCESSES: &[&str] = &[
    include_str!("../../../sample-data/processes/order-to-delivery.toml"),
    include_str!("../../../sample-data/processes/quality-hold.toml"),
    include_str!("../../../sample-data/processes/production-delay.toml"),
];

/// The demo's config file, as `make demo` gives it.
pub(crate) fn demo_config() -> ConfigFile {
    ConfigFile::parse(
        include_str!("../../../sample-data/demo.toml"),
        "sample-data/demo.toml",
    )
    .unwrap()
}

/// The plant's collector takes only its token, bound to every system.
async fn plant() -> TestApp {
    plant_on(None).await
}

/// [`plant`] on `store` (a fresh database when `None`).
pub(crate) async fn plant_on(store: Option<store::Store>) -> TestApp {
    let (id, token) = collector::auth::secret::generate(collector::auth::TOKEN_PREFIX);
    let file = demo_config();
    TestApp::with(TestConfig {
        keys: file.get::<KeysArgs>().unwrap().keys.unwrap(),
        events: file.get::<CollectorArgs>().unwrap().events.unwrap(),
        processes: PROCESSES.to_vec(),
        tokens: vec![collector::auth::TokenConfig {
            id,
            name: "demo plant".into(),
            systems: vec!["*".into()],
            hash: collector::auth::secret::hash(&token),
            plant: None,
        }],
        token: Some(token),
        store,
        ..Default::default()
    })
    .await
}

/// A day of history at one order every two minutes, then stop.
pub(crate) async fn run_demo(app: &TestApp, seed: u64) -> Summary {
    let options = DemoOptions {
        target: app.otlp_url(""),
        grpc: None,
        seed,
        rate: 0.5,
        backfill: Duration::from_secs(24 * 3600),
        duration: Some(Duration::ZERO),
        incidents: Incidents::default(),
        progress: false,
        token: app.token.clone(),
    };
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            sample_data::run(&options, handle, Arc::new(AtomicBool::new(false)))
        })
        .join()
        .unwrap()
    })
    .await
    .unwrap()
    .expect("the demo ran")
}

async fn correlate(app: &TestApp) {
    app.settled().await;
    let keys = Arc::new(demo_config().get::<KeysArgs>().unwrap().settings().unwrap());
    let processes = Arc::new(Processes {
        list: PROCESSES
            .iter()
            .map(|p| Processes::parse(p, "p.toml", &keys).unwrap())
            .collect(),
        ..Default::default()
    });
    let settings = CorrelatorSettings {
        settle: Duration::ZERO,
        ..Default::default()
    };
    let mut c = Correlator::new(
        app.store.clone(),
        processes,
        keys,
        settings,
        Arc::new(engine::metrics::CorrelatorMetrics::default()),
    )
    .await
    .unwrap();
    c.cycle(domain::now_ns()).await.unwrap();
}

fn process<'a>(summary: &'a Value, id: &str) -> &'a Value {
    summary["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap()
}

fn breached(p: &Value) -> u64 {
    p["slas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["breached"].as_u64().unwrap())
        .sum()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} missing"))
}

/// What a run stored: instances and stage reach per process, records written.
fn counts(summary: &Value, metrics: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for p in summary["processes"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap();
        out.push((
            format!("{id} started"),
            p["instances"]["started"].as_u64().unwrap(),
        ));
        for s in p["stages"].as_array().unwrap() {
            out.push((format!("{id} {}", s["id"]), s["reached"].as_u64().unwrap()));
        }
    }
    for signal in ["spans", "events"] {
        let name = format!("throughline_written_total{{signal=\"{signal}\"}}");
        out.push((name.clone(), metric(metrics, &name)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_day_shows_every_process_and_incident_and_repeats_exactly() {
    let app = plant().await;
    let s = run_demo(&app, 42).await;
    assert!(
        s.orders > 600 && s.downtimes > 0 && s.quality_holds > 0,
        "{s}"
    );
    assert!(
        s.crm_dead_lettered > 0 && s.duplicates > 0 && s.out_of_order > 0,
        "{s}"
    );
    correlate(&app).await;
    let (_, summary) = app.get("/api/v1/processes?from=now-3d").await;

    // Every process has instances.
    for id in ["order-to-delivery", "quality-hold", "production-delay"] {
        assert!(
            process(&summary, id)["instances"]["started"]
                .as_u64()
                .unwrap()
                > 0,
            "{id}: {summary}"
        );
    }
    // Machine downtime: delay notifications, some late or missing, and
    // orders produced late.
    let delay = process(&summary, "production-delay");
    assert!(delay["instances"]["started"].as_u64().unwrap() <= s.downtimes);
    assert!(breached(delay) > 0, "{delay}");
    let otd = process(&summary, "order-to-delivery");
    let production = otd["slas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "production")
        .unwrap();
    assert!(production["breached"].as_u64().unwrap() > 0, "{production}");
    // Quality holds: one instance per held work order, some blocked late or
    // never told to the account.
    let hold = process(&summary, "quality-hold");
    assert!(
        hold["instances"]["started"].as_u64().unwrap() <= s.quality_holds,
        "{hold} vs {s}"
    );
    assert!(breached(hold) > 0, "{hold}");
    // CRM outage: dead letters make failed orders.
    assert!(otd["instances"]["failed"].as_u64().unwrap() > 0, "{otd}");
    let (_, dead) = app
        .get("/api/v1/events?system=crm&outcome=dead_lettered&from=now-3d&limit=1000")
        .await;
    let dead = dead["events"].as_array().unwrap().len() as u64;
    assert!(dead > 0 && dead <= s.crm_dead_lettered, "{dead} vs {s}");
    // ERP migration: orders before and after it reach their ERP spans through
    // each system's own key names.
    for (order, service) in [("SO-100000", "erp-legacy"), ("SO-100500", "erp-cloud")] {
        let (_, key) = app.get(&format!("/api/v1/keys/order/{order}")).await;
        let spans = crate::harness::records(&key, "span");
        let services: Vec<&str> = spans
            .iter()
            .map(|x| x["service"].as_str().unwrap())
            .collect();
        assert!(services.contains(&service), "{order}: {services:?}");
    }
    // Duplicates are recognised, not stored twice.
    let metrics = app.metrics().await;
    let dropped = metric(&metrics, "throughline_events_duplicates_dropped_total");
    assert!(dropped > 0 && dropped <= s.duplicates, "{dropped} vs {s}");

    // The same seed again, into a fresh database: the same counts.
    let again = plant().await;
    let s2 = run_demo(&again, 42).await;
    assert_eq!(s2, s);
    correlate(&again).await;
    let (_, summary2) = again.get("/api/v1/processes?from=now-3d").await;
    assert_eq!(
        counts(&summary2, &again.metrics().await),
        counts(&summary, &metrics)
    );
}
