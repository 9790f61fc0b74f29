//! Compaction of closed days: each day partition of the tables that
//! lookups read by key (the key index, spans, events), once its day is
//! over, merged into one part (`OPTIMIZE TABLE ... PARTITION ID ...
//! FINAL`, the same on 18.16 and on current releases).
//!
//! A point lookup reads a granule of every part of every partition its key
//! may lie in, and ClickHouse merges the parts of a day only while they are
//! of similar sizes: a closed day keeps three to six parts, and a month of
//! them costs a customer's 300 keys thirty times as many reads as one part
//! a day would. `FINAL` also drops the rows a redelivery wrote twice. A
//! day that receives a late record gets a second part, and the next pass
//! merges it again; the present day is left to ClickHouse's own merges.
//!
//! The retention worker runs it after each pass (`engine::retention`), a
//! few partitions at a time, the newest closed day first (the most read).
//! On a cluster each node's local tables are compacted by that node.

use std::time::Duration;

use clickhouse::sql::Identifier;

use crate::inspect::PartitionSize;
use crate::retention::Unit;
use crate::{Store, StoreError};

/// The tables whose closed days are compacted: those read by key or
/// trace, partitioned by day.
const COMPACTED: &[&str] = &["key_index_v2", "spans_v2", "events", "trace_events"];

/// How long one `OPTIMIZE` may take: it rewrites a day of a table (on 2
/// cores, 6 to 10 s for a day of 10 million spans' key index).
const OPTIMIZE_TIMEOUT: Duration = Duration::from_secs(1800);

/// A partition to merge into one part, or merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compaction {
    pub table: String,
    pub partition_id: String,
    /// Its active parts before.
    pub parts: u64,
    pub rows: u64,
}

/// The closed day partitions of `partitions` (one server's) that have more
/// than one part, the newest day first, at most `at_most`: a day is closed
/// once it ended before `now_s` (Unix seconds, UTC days).
pub fn plan(partitions: &[PartitionSize], now_s: u64, at_most: usize) -> Vec<Compaction> {
    let mut closed: Vec<(u64, Compaction)> = partitions
        .iter()
        .filter(|p| p.parts > 1 && COMPACTED.contains(&p.table.as_str()))
        .filter_map(|p| {
            let (start, end) = Unit::Day.bounds(&p.partition_id)?;
            (end <= now_s).then(|| {
                (
                    start,
                    Compaction {
                        table: p.table.clone(),
                        partition_id: p.partition_id.clone(),
                        parts: p.parts,
                        rows: p.rows,
                    },
                )
            })
        })
        .collect();
    closed.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.table.cmp(&b.1.table)));
    closed.into_iter().take(at_most).map(|(_, c)| c).collect()
}

impl Store {
    /// Merges at most `at_most` closed day partitions into one part each
    /// ([`plan`]), on every node of a cluster; `compacted` is called after
    /// each. A failed `OPTIMIZE` ends the pass with its error (the next
    /// pass plans again).
    pub async fn compact_closed_days(
        &self,
        now_s: u64,
        at_most: usize,
        mut compacted: impl FnMut(&Compaction),
    ) -> Result<usize, StoreError> {
        let targets: Vec<(Store, &str)> = match self.node_stores().await? {
            None => vec![(self.clone(), "")],
            Some(nodes) => nodes
                .into_iter()
                .map(|n| (n, crate::cluster::LOCAL))
                .collect(),
        };
        let mut done = 0;
        for (store, suffix) in &targets {
            let partitions: Vec<PartitionSize> = store
                .partitions_here()
                .await?
                .into_iter()
                .filter_map(|mut p| {
                    p.table = p.table.strip_suffix(suffix)?.to_string();
                    Some(p)
                })
                .collect();
            for c in plan(&partitions, now_s, at_most.saturating_sub(done)) {
                store
                    .query("OPTIMIZE TABLE ? PARTITION ID ? FINAL")
                    .bind(Identifier(&format!("{}{suffix}", c.table)))
                    .bind(c.partition_id.as_str())
                    .within(OPTIMIZE_TIMEOUT)
                    .execute()
                    .await?;
                compacted(&c);
                done += 1;
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition of `parts` parts (the retention tests' partition
    /// otherwise).
    fn part(table: &str, id: &str, parts: u64) -> PartitionSize {
        PartitionSize {
            parts,
            ..crate::retention::tests::part(table, id, 1)
        }
    }

    /// 2026-11-30 12:00 UTC.
    const NOON: u64 = 1_796_040_000;

    #[test]
    fn closed_days_with_several_parts_newest_first() {
        let partitions = [
            part("key_index_v2", "20261128", 4),
            part("key_index_v2", "20261129", 5),
            part("key_index_v2", "20261130", 9),
            part("spans_v2", "20261129", 1),
            part("spans_v2", "20261127", 3),
            part("key_links_v2", "202611", 7),
            part("span_minutes", "20261129", 6),
        ];
        let planned: Vec<(String, String)> = plan(&partitions, NOON, 10)
            .into_iter()
            .map(|c| (c.table, c.partition_id))
            .collect();
        assert_eq!(
            planned,
            [
                ("key_index_v2".to_string(), "20261129".to_string()),
                ("key_index_v2".to_string(), "20261128".to_string()),
                ("spans_v2".to_string(), "20261127".to_string()),
            ]
        );
        assert_eq!(plan(&partitions, NOON, 1).len(), 1);
    }

    #[test]
    fn a_day_closes_at_its_end() {
        let partitions = [part("events", "20261129", 2)];
        let midnight = 1_795_996_800; // 2026-11-30 00:00 UTC
        assert!(plan(&partitions, midnight - 1, 5).is_empty());
        assert_eq!(plan(&partitions, midnight, 5).len(), 1);
    }
}
