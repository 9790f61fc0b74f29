//! The plan on its own: the same seed plans the same day, and a day has
//! every incident.

use super::*;

fn run(seed: u64) -> (Summary, Vec<Record>) {
    let mut plan = Plan::new(seed, 2.0, Incidents::default(), 1_764_000_000_000_000_000);
    let end = 1_764_000_000_000_000_000 + 24 * 60 * MIN;
    let mut records = Vec::new();
    while plan.next_due().is_some_and(|d| d < end) {
        records.extend(plan.step());
    }
    (plan.summary().clone(), records)
}

#[test]
fn the_same_seed_plans_the_same_day_and_another_seed_another() {
    let (a, ra) = run(7);
    let (b, rb) = run(7);
    assert_eq!(a, b);
    assert_eq!(ra, rb);
    assert_ne!(run(8).1, ra);
}

#[test]
fn a_day_has_every_incident() {
    let (s, records) = run(42);
    assert!(s.orders > 2000, "{s}");
    assert!(s.downtimes > 0 && s.quality_holds > 0, "{s}");
    assert!(s.crm_retried > 0 && s.crm_dead_lettered > 0, "{s}");
    assert!(s.duplicates > 0 && s.out_of_order > 0, "{s}");
    let services: std::collections::BTreeSet<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::Span { service, .. } => Some(service.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        services.contains("erp-legacy") && services.contains("erp-cloud"),
        "{services:?}"
    );
    for mode in [Mode::Structured, Mode::Binary, Mode::Batch] {
        assert!(records
            .iter()
            .any(|r| matches!(r, Record::Event { mode: m, .. } if *m == mode)));
    }
}
