//! A correlator's start reads the horizon's instances back one share of the
//! roots at a time (`CorrelatorSettings::start_share_rows`): with shares of
//! two rows, a restart over ten orders holds the same instances, writes
//! nothing, and the figures stay those of the correlator before it.

use std::sync::Arc;
use std::time::Duration;

use domain::keys::KeyTypes;
use domain::process::Processes;
use engine::correlator::{Correlator, CorrelatorSettings};
use engine::metrics::CorrelatorMetrics;

use crate::harness::TestApp;
use crate::processes::{app, figures, rows, send, MIN, ORDER_TO_DELIVERY};

async fn correlator(app: &TestApp, share: u64, metrics: Arc<CorrelatorMetrics>) -> Correlator {
    Correlator::new(
        app.store.clone(),
        Arc::new(Processes {
            list: vec![
                Processes::parse(ORDER_TO_DELIVERY, "order.toml", &KeyTypes::default()).unwrap(),
            ],
            ..Default::default()
        }),
        Arc::new(KeyTypes::default()),
        CorrelatorSettings {
            interval: Duration::from_secs(3600),
            settle: Duration::ZERO,
            start_share_rows: share,
            ..Default::default()
        },
        metrics,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_in_shares_holds_the_same_instances_and_writes_nothing() {
    let app = app().await;
    let t = domain::now_ns() - 60 * MIN;
    // Ten orders: four with their order entered (production running, a
    // deadline held), four never entered (order entry breached, open), two
    // delivered (settled, not held).
    for i in 0..10 {
        let order = format!("O-{i}");
        let keys = [("orderid", order.as_str())];
        send(
            &app,
            &format!("c-{i}"),
            "crm",
            "crm.order.created",
            t,
            &keys,
        )
        .await;
        if !(4..8).contains(&i) {
            send(
                &app,
                &format!("e-{i}"),
                "erp",
                "erp.sales_order.created",
                t + 5 * MIN,
                &keys,
            )
            .await;
        }
        if i >= 8 {
            send(
                &app,
                &format!("m-{i}"),
                "mes",
                "mes.work_order.completed",
                t + 30 * MIN,
                &keys,
            )
            .await;
        }
    }
    let first = Arc::new(CorrelatorMetrics::default());
    let mut c = correlator(&app, 100_000, first.clone()).await;
    c.cycle(domain::now_ns()).await.unwrap();
    let held = first
        .instances_held
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(held, 8, "the running and the breached, not the delivered");
    let before = figures(&app).await;
    let written = (
        rows(&app, "process_instances").await,
        rows(&app, "breaches").await,
    );
    drop(c);

    let again = Arc::new(CorrelatorMetrics::default());
    let mut restarted = correlator(&app, 2, again.clone()).await;
    restarted.cycle(domain::now_ns()).await.unwrap();
    assert_eq!(
        again
            .instances_held
            .load(std::sync::atomic::Ordering::Relaxed),
        held,
        "every share's instances in flight came back"
    );
    assert_eq!(figures(&app).await, before);
    assert_eq!(
        (
            rows(&app, "process_instances").await,
            rows(&app, "breaches").await
        ),
        written,
        "nothing was written again"
    );
}
