use super::*;

pub(crate) fn part(table: &str, id: &str, bytes: u64) -> PartitionSize {
    PartitionSize {
        table: table.into(),
        partition_id: id.into(),
        bytes,
        rows: 1,
        parts: 1,
        compressed: bytes,
        uncompressed: bytes * 3,
    }
}

/// 2026-11-30T12:00:00Z.
const NOW: u64 = 1_795_996_800 + 12 * 3600;

fn dropped(plan: &Plan) -> Vec<(&str, &str, Reason)> {
    plan.drops
        .iter()
        .map(|d| (d.table.as_str(), d.partition_id.as_str(), d.reason))
        .collect()
}

#[test]
fn partition_ids_give_their_days_and_months() {
    assert_eq!(
        Unit::Day.bounds("20261130"),
        Some((1_795_996_800, 1_795_996_800 + 86_400))
    );
    let (start, end) = Unit::Month.bounds("202612").unwrap();
    assert_eq!(start, 1_795_996_800 + 86_400);
    assert_eq!(end - start, 31 * 86_400);
    assert_eq!(Unit::Month.bounds("202611").unwrap().1, start);
    for bad in ["all", "2026113", "20261131", "202613", "abcdefgh"] {
        assert_eq!(Unit::Day.bounds(bad), None, "{bad}");
        assert_eq!(Unit::Month.bounds(bad), None, "{bad}");
    }
}

#[test]
fn a_partition_goes_once_wholly_past_its_class_limit() {
    let retention = Retention::default();
    let parts = [
        part("spans_v2", "20261110", 100), // 20 days back: gone
        part("spans_v2", "20261116", 100), // ends 2026-11-17 00:00 < now - 14d (11-16 12:00)? no
        part("spans_v2", "20261115", 100), // ends 11-16 00:00 <= 11-16 12:00: gone
        part("spans_v2", "20261130", 100),
        part("events", "20261110", 100), // 90 d: stays
        part("key_index_v2", "20261110", 10),
        part("key_index_v2", "20261130", 10),
        part("process_instances", "all", 10),
        part("correlation_feed_v2", "5983632", 10),
    ];
    let plan = retention.plan(&parts, NOW);
    assert_eq!(
        dropped(&plan),
        vec![
            ("spans_v2", "20261110", Reason::Age),
            ("spans_v2", "20261115", Reason::Age),
            ("key_index_v2", "20261110", Reason::Age),
        ]
    );
    assert_eq!(plan.total_before, 540);
    assert_eq!(plan.total_after, 330);
    assert!(!plan.still_over);
}

#[test]
fn the_key_index_never_outlives_the_spans_and_forever_drops_nothing() {
    let mut retention = Retention {
        spans: Some(3 * DAY),
        ..Retention::default()
    };
    assert_eq!(
        retention.policy("key_index_v2"),
        Policy::Class {
            class: Class::Keys,
            limit: Some(3 * DAY),
            capped_by: Some(Class::Spans)
        }
    );
    retention.keys = Some(DAY);
    assert_eq!(
        retention.policy("key_index_v2"),
        Policy::Class {
            class: Class::Keys,
            limit: Some(DAY),
            capped_by: None
        }
    );
    assert_eq!(
        retention.policy("breaches"),
        Policy::Class {
            class: Class::Instances,
            limit: Some(400 * DAY),
            capped_by: None
        }
    );
    let parts = [
        part("spans_v2", "20200101", 1),
        part("key_index_v2", "20200101", 1),
    ];
    assert!(Retention::FOREVER.plan(&parts, NOW).drops.is_empty());
}

#[test]
fn the_disk_guard_drops_the_oldest_of_the_largest_class_first_and_never_the_present() {
    let retention = Retention {
        max_disk: Some(1_000),
        ..Retention::FOREVER
    };
    let parts = [
        part("spans_v2", "20261128", 400),
        part("spans_v2", "20261120", 400),
        part("spans_v2", "20261130", 400),
        part("key_index_v2", "20261120", 50),
        part("key_index_v2", "20261129", 50),
        part("events", "20261101", 300),
        part("events", "20261130", 100),
        part("schema_migrations", "all", 1),
    ];
    // 1,701 bytes: spans (1,200) go first, oldest first, with the key index
    // of their day and before, until the database fits.
    let plan = retention.plan(&parts, NOW);
    assert_eq!(
        dropped(&plan),
        vec![
            ("spans_v2", "20261120", Reason::Disk),
            ("key_index_v2", "20261120", Reason::Disk),
            ("spans_v2", "20261128", Reason::Disk),
        ]
    );
    assert_eq!((plan.total_before, plan.total_after), (1_701, 851));
    assert!(!plan.still_over);

    // Below what the present needs: everything past goes, and it says so.
    let tight = Retention {
        max_disk: Some(10),
        ..Retention::FOREVER
    };
    let plan = tight.plan(&parts, NOW);
    assert!(plan.still_over);
    let kept: Vec<_> = parts
        .iter()
        .filter(|p| {
            !plan
                .drops
                .iter()
                .any(|d| d.table == p.table && d.partition_id == p.partition_id)
        })
        .map(|p| (p.table.as_str(), p.partition_id.as_str()))
        .collect();
    assert_eq!(
        kept,
        vec![
            ("spans_v2", "20261130"),
            ("events", "20261130"),
            ("schema_migrations", "all")
        ]
    );
    let order: Vec<_> = plan.drops.iter().map(|d| d.partition_id.as_str()).collect();
    assert_eq!(order[0], "20261120", "{order:?}");
}
