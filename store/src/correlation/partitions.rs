//! Whether each correlator partition (`--correlator-partition K/N`) is
//! alive, for `/readyz`, `/admin` and the correlators' `/metrics`.
//!
//! A partition's heartbeat is its watermark row in `correlator_state`
//! (`correlator@K/N`): a running correlator writes it at the end of every
//! cycle, whether or not the feed brought anything, stamped `updated_ns`.
//! A partition whose row is older than [`SILENT_AFTER`], or that has none
//! while its siblings have, is down. N is that of the most recently
//! written row, so the rows of an earlier N (after the partitions were
//! changed from 3 to 2, say) are not reported. The table holds a few rows
//! (one per partition and mark), read whole.

use std::time::Duration;

use clickhouse::Row;
use serde::Deserialize;

use crate::{Store, StoreError};

/// How long a partition may go without writing its watermark before it is
/// reported down: eight of the default 15 s cycles, so that a slow cycle
/// (catching up) is not taken for a stop. A `correlator_interval` longer
/// than a minute would be reported down between cycles.
pub const SILENT_AFTER: Duration = Duration::from_secs(120);

/// The state-row name of correlator partition `K/N`.
const PREFIX: &str = "correlator@";

/// One correlator partition and when it last wrote its watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionHealth {
    /// `K/N`.
    pub partition: String,
    pub index: u32,
    pub count: u32,
    /// Its stored watermark and when it wrote it; `None`: never started.
    pub watermark_ns: Option<u64>,
    pub heartbeat_ns: Option<u64>,
    /// Silent for longer than [`SILENT_AFTER`], or never started.
    pub down: bool,
}

#[derive(Debug, Row, Deserialize)]
struct StateRow {
    name: String,
    watermark_ns: u64,
    updated_ns: u64,
}

/// `K/N` of a state-row name `correlator@K/N`.
fn parse(name: &str) -> Option<(u32, u32)> {
    let (k, n) = name.strip_prefix(PREFIX)?.split_once('/')?;
    let (k, n) = (k.parse().ok()?, n.parse().ok()?);
    (k < n).then_some((k, n))
}

/// Every partition of the N of the newest row (`count`, if given, instead),
/// from the stored rows `(name, watermark_ns, updated_ns)`, at `now`.
pub fn health_of(
    rows: &[(String, u64, u64)],
    now: u64,
    count: Option<u32>,
) -> Vec<PartitionHealth> {
    let parsed: Vec<(u32, u32, u64, u64)> = rows
        .iter()
        .filter_map(|(name, wm, at)| parse(name).map(|(k, n)| (k, n, *wm, *at)))
        .collect();
    let Some(count) = count.or_else(|| parsed.iter().max_by_key(|r| r.3).map(|r| r.1)) else {
        return Vec::new();
    };
    let silent = SILENT_AFTER.as_nanos() as u64;
    (0..count)
        .map(|index| {
            let row = parsed.iter().find(|r| r.0 == index && r.1 == count);
            let heartbeat_ns = row.map(|r| r.3);
            PartitionHealth {
                partition: format!("{index}/{count}"),
                index,
                count,
                watermark_ns: row.map(|r| r.2),
                heartbeat_ns,
                down: heartbeat_ns.is_none_or(|at| now.saturating_sub(at) > silent),
            }
        })
        .collect()
}

impl Store {
    /// The correlator partitions and whether each is alive at `now` (see
    /// the module); empty when one correlator does all (no `correlator@`
    /// row). `count`: the N to report (a correlator knows its own).
    pub async fn correlator_partitions(
        &self,
        now: u64,
        count: Option<u32>,
    ) -> Result<Vec<PartitionHealth>, StoreError> {
        let rows = self
            .query(
                "SELECT name, watermark_ns, updated_ns FROM correlator_state FINAL \
                 WHERE startsWith(name, ?)",
            )
            .bind(PREFIX)
            .fetch_all::<StateRow>()
            .await?;
        let rows: Vec<(String, u64, u64)> = rows
            .into_iter()
            .map(|r| (r.name, r.watermark_ns, r.updated_ns))
            .collect();
        Ok(health_of(&rows, now, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn row(name: &str, at: u64) -> (String, u64, u64) {
        (name.to_string(), at - 5 * S, at)
    }

    #[test]
    fn a_silent_or_never_started_partition_is_down_and_an_old_n_is_left_out() {
        let now = 10_000 * S;
        let rows = [
            row("correlator@0/3", now - 10 * S),
            row("correlator@1/3", now - 121 * S),
            // An earlier N, written long ago.
            row("correlator@1/4", now - 900 * S),
            row("process-rollups@2/3", now),
            row("correlator", now - 900 * S),
        ];
        let health = health_of(&rows, now, None);
        let seen: Vec<(&str, bool, bool)> = health
            .iter()
            .map(|h| (h.partition.as_str(), h.down, h.heartbeat_ns.is_some()))
            .collect();
        assert_eq!(
            seen,
            [
                ("0/3", false, true),
                ("1/3", true, true),
                ("2/3", true, false)
            ]
        );
        assert_eq!(health[0].watermark_ns, Some(now - 15 * S));
        // A correlator asks for its own N.
        assert_eq!(health_of(&rows, now, Some(4)).len(), 4);
        // One correlator for all: nothing to report.
        assert!(health_of(&[row("correlator", now)], now, None).is_empty());
    }
}
