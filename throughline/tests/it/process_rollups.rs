//! The per-process rollups give the instances' own numbers: fixtures of
//! several sizes sent as CloudEvents (each twice: a redelivery must not
//! count), correlated by hand in a few cycles, some orders' first stage
//! arriving after the others (their start moves to an earlier minute), then
//! every figure the overview and process pages read
//! (`Store::process_rollups`, `start_buckets`, `breach_buckets`,
//! `open_breach_counts`) compared with the same figures computed here from
//! every instance and breach as stored (`instances_since(0)`,
//! `breaches_since(0)`). Counts match exactly,
//! histograms cell for cell.

use std::collections::BTreeMap;

use domain::instance::{BreachState, InstanceRecord, StageTimes, Status};
use domain::keys::KeyTypes;
use domain::process::Processes;
use domain::process_rollup::ProcessRollup;
use serde_json::{json, Value};
use store::process_rollups::minute_of;
use store::Store;

use crate::harness::TestApp;
use crate::processes::{app, correlator, rfc3339, MIN, ORDER_TO_DELIVERY};

/// One event of a fixture.
#[derive(Debug, Clone)]
struct FixtureEvent {
    id: String,
    system: &'static str,
    kind: &'static str,
    order: String,
    time_ns: u64,
}

/// `orders` orders over three hours from `base_ns`: each captured; most
/// with a sales order 2 to 41 minutes later (the 15-minute SLA met or
/// closed late; a fifth never, so open or running); every third produced
/// up to 4 h after. Returns the events of the first delivery and the
/// captures held back (every eleventh order's, sent after a cycle: its
/// instance starts at its sales order first, then moves earlier).
fn fixture(orders: u64, base_ns: u64) -> (Vec<FixtureEvent>, Vec<FixtureEvent>) {
    let (mut first, mut late) = (Vec::new(), Vec::new());
    for i in 0..orders {
        let order = format!("O-{i}");
        let captured = base_ns + (i * 7_919 % (180 * 60)) * 1_000_000_000 + i;
        let ev = |kind: &'static str, system: &'static str, time_ns: u64| FixtureEvent {
            id: format!("{kind}-{i}"),
            system,
            kind,
            order: order.clone(),
            time_ns,
        };
        let c = ev("crm.order.created", "crm", captured);
        let has_sales = i % 5 != 0;
        if i.is_multiple_of(11) && has_sales {
            late.push(c);
        } else {
            first.push(c);
        }
        if has_sales {
            let sales = captured + (2 + i % 40) * MIN;
            first.push(ev("erp.sales_order.created", "erp", sales));
            if i.is_multiple_of(3) {
                first.push(ev(
                    "mes.work_order.completed",
                    "mes",
                    sales + (i % 7) * 40 * MIN,
                ));
            }
        }
    }
    (first, late)
}

async fn post_events(app: &TestApp, events: &[FixtureEvent]) {
    for chunk in events.chunks(500) {
        let body: Vec<Value> = chunk
            .iter()
            .map(|e| {
                json!({
                    "specversion": "1.0", "id": e.id, "source": format!("urn:test:{}", e.system),
                    "type": e.kind, "system": e.system, "time": rfc3339(e.time_ns),
                    "orderid": e.order,
                })
            })
            .collect();
        let r = app
            .post(
                "/v1/events",
                "application/cloudevents-batch+json",
                &[],
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    app.settled().await;
}

/// What the rollups should say over the whole minutes of `[from_ns,
/// to_ns]`, from the raw rows, SLAs judged at `now`.
struct Truth {
    rollup: ProcessRollup,
    starts: BTreeMap<u64, u64>,
    breaches: BTreeMap<u64, u64>,
    open: BTreeMap<String, u64>,
    /// (SLA, key, due) of the breaches due in the range, to the nanosecond.
    due: Vec<(String, String, u64)>,
}

async fn truth(store: &Store, from_ns: u64, to_ns: u64, bucket_ns: u64, now: u64) -> Truth {
    let def = Processes::parse(ORDER_TO_DELIVERY, "order.toml", &KeyTypes::default()).unwrap();
    // Every instance and breach as stored (their latest rows).
    let instances = store.instances_since(0).await.unwrap();
    let breaches = store.breaches_since(0).await.unwrap();
    let (lo, hi) = (minute_of(from_ns), minute_of(to_ns));
    let bucket =
        |minute: u32| ((u64::from(minute) * 1_000_000_000).max(from_ns) - from_ns) / bucket_ns;
    let mut t = Truth {
        rollup: ProcessRollup::default(),
        starts: BTreeMap::new(),
        breaches: BTreeMap::new(),
        open: BTreeMap::new(),
        due: Vec::new(),
    };
    for i in instances {
        let m = minute_of(i.start_ns);
        if m < lo || m > hi {
            continue;
        }
        t.rollup.add(&def, i.status, &i.stages, now);
        *t.starts.entry(bucket(m)).or_default() += 1;
    }
    for b in breaches {
        if b.state == BreachState::Open {
            *t.open.entry(b.sla_id.clone()).or_default() += 1;
        }
        let m = minute_of(b.due_ns);
        if b.state != BreachState::Cleared && b.due_ns >= from_ns && b.due_ns <= to_ns {
            t.due
                .push((b.sla_id.clone(), b.root_value.clone(), b.due_ns));
        }
        if b.state != BreachState::Cleared && m >= lo && m <= hi {
            *t.breaches.entry(bucket(m)).or_default() += 1;
        }
    }
    t
}

/// Compares every figure of the rollups over `[from_ns, to_ns]` with the
/// raw rows'.
async fn check(store: &Store, from_ns: u64, to_ns: u64, now: u64) -> ProcessRollup {
    let bucket_ns = (to_ns - from_ns) / 30;
    let t = truth(store, from_ns, to_ns, bucket_ns, now).await;
    let rollups = store.process_rollups(from_ns, to_ns).await.unwrap();
    let got = rollups
        .get("order-to-delivery")
        .cloned()
        .unwrap_or_default();
    assert_eq!(got, t.rollup, "rollup over {from_ns}..{to_ns}");
    let series = |v: Vec<store::stats::BucketCount>| -> BTreeMap<u64, u64> {
        v.into_iter()
            .filter(|b| b.count > 0)
            .map(|b| (b.bucket, b.count))
            .collect()
    };
    let starts = series(
        store
            .start_buckets(from_ns, to_ns, bucket_ns)
            .await
            .unwrap(),
    );
    assert_eq!(starts, t.starts, "starts");
    let breaches = series(
        store
            .breach_buckets(from_ns, to_ns, bucket_ns)
            .await
            .unwrap(),
    );
    assert_eq!(breaches, t.breaches, "breaches");
    let open: BTreeMap<String, u64> = store
        .open_breach_counts()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, _, n)| *n > 0)
        .map(|(_, s, n)| (s, n))
        .collect();
    assert_eq!(open, t.open, "open breaches");
    // What the alert rules read: the breaches due in the window.
    let mut due: Vec<(String, String, u64)> = store
        .breaches_due("order-to-delivery", None, from_ns, to_ns)
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.sla_id, b.root_value, b.due_ns))
        .collect();
    due.sort();
    let mut want = t.due.clone();
    want.sort();
    assert_eq!(due, want, "breaches due");
    got
}

async fn run(orders: u64) {
    let app = app().await;
    let now = domain::now_ns();
    let base = now - 9 * 60 * MIN;
    let (first, late) = fixture(orders, base);
    let mut c = correlator(&app).await;
    // Delivered twice; a cycle between the two halves of the first
    // delivery, so instances are rewritten and minutes recomputed again.
    let half = first.len() / 2;
    post_events(&app, &first[..half]).await;
    c.cycle(domain::now_ns()).await.unwrap();
    post_events(&app, &first[half..]).await;
    post_events(&app, &first).await;
    c.cycle(domain::now_ns()).await.unwrap();
    let from = base - 37 * MIN + 13_000_000_000;
    let before = check(&app.store, from, domain::now_ns(), domain::now_ns()).await;
    // The held-back captures: their instances start earlier now.
    post_events(&app, &late).await;
    post_events(&app, &late).await;
    let last = domain::now_ns();
    c.cycle(last).await.unwrap();
    let to = domain::now_ns();
    let after = check(&app.store, from, to, last).await;
    assert_eq!(after.started, orders, "every order started once");
    assert_eq!(
        before.started, orders,
        "every order started once before too"
    );
    assert_eq!(after.reached("captured"), orders);
    assert!(after.slas["order-entry"].breached > 0 && after.slas["order-entry"].met > 0);
    // The instance list pages through every instance once, newest start
    // first (by minute windows of `instances_by_start`), the moved ones
    // under their new start only; a status filter keeps its own.
    let listed = list(&app, "").await;
    assert_eq!(listed.len() as u64, orders);
    let mut roots: Vec<&str> = listed.iter().map(|(_, r, _)| r.as_str()).collect();
    roots.sort_unstable();
    roots.dedup();
    assert_eq!(roots.len() as u64, orders, "each instance once");
    assert!(listed.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
    let stalled = list(&app, "&status=stalled").await;
    assert_eq!(stalled.len() as u64, after.stalled);
    assert!(stalled.iter().all(|(_, _, s)| s == "stalled"));
    // A range inside one hour, and one of whole hours plus edges.
    check(&app.store, base + 61 * MIN, base + 95 * MIN, last).await;
    check(&app.store, base + 30 * MIN, base + 250 * MIN + 1, last).await;
    // A crash after an instance was written and before its minute was
    // recomputed: the next start finds the row written since its mark,
    // and its first cycle recomputes that minute; nothing else changes.
    let ghost = InstanceRecord {
        process_id: "order-to-delivery".into(),
        root_value: "O-ghost".into(),
        start_ns: base + 5 * MIN,
        last_ns: base + 5 * MIN,
        status: Status::Stalled,
        current_stage: "captured".into(),
        stages: StageTimes {
            ids: vec!["captured".into()],
            times: vec![base + 5 * MIN],
        },
        failed: false,
        open_breaches: 1,
        updated_ns: domain::now_ns(),
        plant: String::new(),
    };
    app.store
        .write_instances(std::slice::from_ref(&ghost))
        .await
        .unwrap();
    app.store
        .write_instances_by_start(&[ghost], &[], domain::now_ns())
        .await
        .unwrap();
    drop(c);
    let mut c = correlator(&app).await;
    let again = domain::now_ns();
    c.cycle(again).await.unwrap();
    let restarted = check(&app.store, from, domain::now_ns(), again).await;
    assert_eq!(restarted.started, orders + 1);
    assert_eq!(
        (&restarted.reached["sales_order"], &restarted.durations),
        (&after.reached["sales_order"], &after.durations)
    );
}

/// Every instance the list API gives over the last 7 days, page by page
/// (7 a page): (start, key, status).
async fn list(app: &TestApp, extra: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = app
            .get(&format!(
                "/api/v1/processes/order-to-delivery/instances?from=now-7d&limit=7{extra}{cursor}"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        for i in body["instances"].as_array().unwrap() {
            out.push((
                i["start_time"].as_str().unwrap().to_string(),
                i["key"]["value"].as_str().unwrap().to_string(),
                i["status"].as_str().unwrap().to_string(),
            ));
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_rollups_match_the_instances_on_a_small_fixture() {
    run(23).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_rollups_match_the_instances_on_a_larger_fixture() {
    run(700).await;
}

/// A database that held instances and breaches before migration 0015:
/// the migration copies them by minute, and the correlator's first cycle
/// computes every minute's rollup from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backfill_of_0015_gives_the_rollups_of_instances_stored_before_it() {
    let app = app().await;
    let now = domain::now_ns();
    let base = now - 9 * 60 * MIN;
    let (first, late) = fixture(60, base);
    let mut c = correlator(&app).await;
    post_events(&app, &first).await;
    c.cycle(domain::now_ns()).await.unwrap();
    post_events(&app, &late).await;
    c.cycle(domain::now_ns()).await.unwrap();
    drop(c);
    // Back to before 0015: its tables gone (and 0018's views over them,
    // which a release before 0015 could not have), 1 to 14 recorded as
    // applied, and no rollup mark (0 reads as none).
    app.store
        .unapply_after(
            14,
            &[
                "plant_instances_by_start_mv",
                "plant_breaches_by_due_mv",
                "instances_by_start",
                "breaches_by_due",
                "process_minutes",
                "process_hours",
                "breach_minutes",
                "open_breaches_now",
            ],
        )
        .await
        .unwrap();
    app.store
        .save_watermark("process-rollups", 0)
        .await
        .unwrap();
    let report = app.store.migrate().await.unwrap();
    // 0015 first; the later ones (their tables kept) are recorded again.
    assert_eq!(report.applied[0], "0015_process_rollups.sql", "{report:?}");
    let mut c = correlator(&app).await;
    let last = domain::now_ns();
    c.cycle(last).await.unwrap();
    let from = base - 37 * MIN;
    let got = check(&app.store, from, domain::now_ns(), last).await;
    assert_eq!(got.started, 60);
    assert_eq!(list(&app, "").await.len(), 60);
}
