use super::rows::{each_minute, runs, MinuteRow};
use super::*;
use domain::process_rollup::SlaCounts;

#[test]
fn consecutive_minutes_of_a_process_read_as_one_run() {
    let keys: Vec<ProcessMinute> = vec![
        ("a".into(), 60),
        ("a".into(), 120),
        ("a".into(), 180),
        ("a".into(), 600),
        ("b".into(), 660),
    ];
    let (sql, joined) = runs(each_minute(&keys), "minute", 60);
    assert_eq!(sql.matches(" OR ").count(), 2);
    assert_eq!(
        joined,
        vec![
            ("a".to_string(), 60, 180),
            ("a".to_string(), 600, 600),
            ("b".to_string(), 660, 660)
        ]
    );
    // Hours: each a span of its minutes; adjacent hours join.
    let hours = [("a".to_string(), 0, 3540), ("a".to_string(), 3600, 7140)];
    assert_eq!(
        runs(hours, "minute", 60).1,
        vec![("a".to_string(), 0, 7140)]
    );
}

#[test]
fn a_rollup_survives_its_row() {
    let mut r = ProcessRollup {
        started: 3,
        completed: 2,
        in_flight: 1,
        ..Default::default()
    };
    r.reached.insert("a".into(), 3);
    r.slas.insert(
        "s".into(),
        SlaCounts {
            met: 1,
            breached: 2,
        },
    );
    r.durations
        .entry(("a".into(), "b".into()))
        .or_default()
        .insert((100, 3), 2);
    let (p, m, back) = MinuteRow::of("p", 120, &r, 9).rollup();
    assert_eq!((p.as_str(), m), ("p", 120));
    assert_eq!(back, r);
    assert_eq!((minute_of(125_000_000_000), hour_of(7260)), (120, 7200));
}
