use super::*;
use crate::keys::KeyTypes;
use crate::process::Processes;

const MIN: u64 = 60_000_000_000;

fn def() -> ProcessDef {
    Processes::parse(
        r#"id = "p"
key = "order"
[[stages]]
id = "a"
system = "crm"
event = "a"
[[stages]]
id = "b"
system = "erp"
event = "b"
[[stages]]
id = "c"
system = "mes"
event = "c"
[[slas]]
id = "ab"
from = "a"
to = "b"
within = "15m"
[[slas]]
id = "ac"
from = "a"
to = "c"
within = "1h""#,
        "p.toml",
        &KeyTypes::default(),
    )
    .unwrap()
}

fn times(stages: &[(&str, u64)]) -> StageTimes {
    StageTimes {
        ids: stages.iter().map(|(s, _)| s.to_string()).collect(),
        times: stages.iter().map(|(_, m)| m * MIN).collect(),
    }
}

#[test]
fn pairs_are_adjacent_stages_slas_and_first_to_last_each_once() {
    let d = def();
    assert_eq!(duration_pairs(&d), vec![(0, 1), (1, 2), (0, 2)]);
}

#[test]
fn an_instance_counts_its_status_stages_slas_and_durations() {
    let d = def();
    let mut r = ProcessRollup::default();
    // Met `ab` (10 min), `ac` open at minute 100 (due 60, c never came).
    r.add(
        &d,
        Status::Stalled,
        &times(&[("a", 0), ("b", 10)]),
        100 * MIN,
    );
    // `ab` closed late (20 min), `ac` running at minute 30.
    r.add(
        &d,
        Status::InFlight,
        &times(&[("a", 0), ("b", 20)]),
        30 * MIN,
    );
    assert_eq!(
        (r.started, r.stalled, r.in_flight, r.completed),
        (2, 1, 1, 0)
    );
    assert_eq!((r.reached("a"), r.reached("b"), r.reached("c")), (2, 2, 0));
    assert_eq!(
        r.slas["ab"],
        SlaCounts {
            met: 1,
            breached: 1
        }
    );
    assert_eq!(
        r.slas["ac"],
        SlaCounts {
            met: 0,
            breached: 1
        }
    );
    // Both breached one SLA or more.
    assert_eq!(r.any_breached, 2);
    assert_eq!(r.duration_count("a", "b"), 2);
    assert_eq!(r.duration_count("a", "c"), 0);
    let bins = r.bins("a", "b");
    // 10 min is in the (5 min, 15 min] bin, 20 min in (15 min, 30 min].
    assert_eq!(bins[bin(10 * MIN) as usize], 1);
    assert_eq!(bins[bin(20 * MIN) as usize], 1);
    assert_eq!(bins.iter().sum::<u64>(), 2);
    let p50 = histogram::quantile(&r.histogram("a", "b"), 0.0).unwrap();
    assert_eq!(histogram::bucket(p50), histogram::bucket(10 * MIN));
}

#[test]
fn merged_minutes_count_what_one_rollup_of_all_counts() {
    let d = def();
    let cases: Vec<(Status, StageTimes)> = (0..50u64)
        .map(|i| {
            let s = match i % 4 {
                0 => Status::InFlight,
                1 => Status::Stalled,
                2 => Status::Completed,
                _ => Status::Failed,
            };
            let mut st = vec![("a", i)];
            if i % 3 != 0 {
                st.push(("b", i + i % 25));
            }
            if i % 5 == 0 {
                st.push(("c", i + 7 * (i % 13)));
            }
            (s, times(&st))
        })
        .collect();
    let now = 500 * MIN;
    let mut all = ProcessRollup::default();
    let mut parts = vec![ProcessRollup::default(); 7];
    for (i, (s, t)) in cases.iter().enumerate() {
        all.add(&d, *s, t, now);
        parts[i % 7].add(&d, *s, t, now);
    }
    let mut merged = ProcessRollup::default();
    for p in &parts {
        merged.merge(p);
    }
    assert_eq!(merged, all);
    assert_eq!(all.started, 50);
}

#[test]
fn bins_hold_durations_up_to_their_bound() {
    assert_eq!(bin(0), 0);
    assert_eq!(bin(1_000_000_000), 0);
    assert_eq!(bin(1_000_000_001), 1);
    assert_eq!(bin(u64::MAX) as usize, HISTOGRAM_BOUNDS_NS.len());
}
