//! The per-process rollups of `sql/0015_process_rollups.sql`: what the
//! overview, the process pages and their API read instead of every
//! instance started in a range.
//!
//! Writes: `instances_by_start` and `breaches_by_due` beside
//! `process_instances` and `breaches` (with a `deleted` / `cleared` row
//! under the old minute when an instance's start or a breach's due time
//! moved), and the recomputed minutes and hours the correlator hands over
//! (`engine::correlator::rollups`). Reads: the minutes a recompute needs,
//! and the range aggregates, split like `stats` into whole UTC hours and
//! the minutes at the ends ([`Rollup`]), so any range costs hours x
//! processes plus at most two hours of minutes x processes (the series of
//! starts and breaches read minutes x processes).
//!
//! `recompute` holds what the correlator writes and reads, `page` the
//! instance list's read, `fill` the backfill of 0015, `rows` the row types.

mod fill;
mod page;
mod recompute;
mod rows;

use std::collections::BTreeMap;

use clickhouse::Row;
use domain::instance::{Breach, StageTimes, Status};
use domain::process_rollup::ProcessRollup;
use serde::Deserialize;

pub use self::fill::PROCESS_ROLLUP_FILLS;
use self::rows::{ByDueRow, HourRow, MinuteRow};
use super::rows::seconds;
use super::stats::{BucketCount, Rollup};
use super::{Store, StoreError};

/// A (process id, minute or hour as Unix seconds) the rollups are kept per.
pub type ProcessMinute = (String, u32);

/// The minute holding `ns`, as Unix seconds.
pub fn minute_of(ns: u64) -> u32 {
    let s = seconds(ns);
    s - s % 60
}

/// The UTC hour holding the minute `minute`, as Unix seconds.
pub fn hour_of(minute: u32) -> u32 {
    minute - minute % 3600
}

/// An instance that started in a minute, as a recompute counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedInstance {
    pub process_id: String,
    pub minute: u32,
    pub status: Status,
    pub stages: StageTimes,
}

/// An instance whose start moved out of the minute it was stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedStart {
    pub process_id: String,
    pub root_value: String,
    pub old_start_ns: u64,
    /// The instance's plant (its row under the old minute of the plant's
    /// table is deleted too).
    pub plant: String,
}

/// A breach whose due time moved out of the minute it was stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedDue {
    pub process_id: String,
    pub sla_id: String,
    pub root_value: String,
    pub old_due_ns: u64,
    pub plant: String,
}

impl Store {
    /// Breaches (open or closed) of a process, or one SLA, due in
    /// `[from_ns, to_ns]`, newest due first; reads the window's minutes of
    /// `breaches_by_due`.
    pub async fn breaches_due(
        &self,
        process_id: &str,
        sla_id: Option<&str>,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<Vec<Breach>, StoreError> {
        let mut sql = String::from(
            "SELECT ?fields FROM breaches_by_due FINAL \
             WHERE process_id = ? AND due_minute >= toDateTime(?) \
               AND due_minute <= toDateTime(?) \
               AND state != 'cleared' AND due_ns >= ? AND due_ns <= ?",
        );
        if sla_id.is_some() {
            sql.push_str(" AND sla_id = ?");
        }
        sql.push_str(" ORDER BY due_ns DESC");
        let mut query = self
            .query(&sql)
            .bind(process_id)
            .bind(minute_of(from_ns))
            .bind(minute_of(to_ns))
            .bind(from_ns)
            .bind(to_ns);
        if let Some(sla) = sla_id {
            query = query.bind(sla);
        }
        query
            .fetch_all::<ByDueRow>()
            .await?
            .into_iter()
            .map(ByDueRow::breach)
            .collect()
    }

    /// Open breaches now, per (process, SLA), as the correlator last wrote
    /// them.
    pub async fn open_breach_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        #[derive(Row, Deserialize)]
        struct Count {
            process_id: String,
            sla_id: String,
            open: u64,
        }
        Ok(self
            .query("SELECT process_id, sla_id, open FROM open_breaches_now FINAL")
            .fetch_all::<Count>()
            .await?
            .into_iter()
            .map(|c| (c.process_id, c.sla_id, c.open))
            .collect())
    }

    /// Every process's rollup over the instances started in `[from_ns,
    /// to_ns]` (whole minutes), by process id.
    pub async fn process_rollups(
        &self,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<BTreeMap<String, ProcessRollup>, StoreError> {
        let range = Rollup::new(from_ns, to_ns);
        let hours = self
            .query(
                "SELECT ?fields FROM process_hours FINAL \
                 WHERE hour >= toDateTime(?) AND hour < toDateTime(?)",
            )
            .bind(range.hours_from)
            .bind(range.hours_to)
            .fetch_all::<HourRow>();
        let minutes = self
            .query(
                "SELECT ?fields FROM process_minutes FINAL \
                 WHERE minute >= toDateTime(?) AND minute <= toDateTime(?) \
                   AND (minute < toDateTime(?) OR minute >= toDateTime(?))",
            )
            .bind(range.first_minute)
            .bind(range.last_minute)
            .bind(range.hours_from)
            .bind(range.hours_to)
            .fetch_all::<MinuteRow>();
        let (hours, minutes) = tokio::try_join!(hours, minutes)?;
        let mut out: BTreeMap<String, ProcessRollup> = BTreeMap::new();
        let all = hours
            .into_iter()
            .map(HourRow::rollup)
            .chain(minutes.into_iter().map(MinuteRow::rollup));
        for (p, _, r) in all {
            out.entry(p).or_default().merge(&r);
        }
        Ok(out)
    }

    /// Instances started per process in each `bucket_ns`-wide bucket of
    /// `[from_ns, to_ns]` (whole minutes, each counted in the bucket of its
    /// start; the minute holding `from_ns` in bucket 0).
    pub async fn start_buckets(
        &self,
        from_ns: u64,
        to_ns: u64,
        bucket_ns: u64,
    ) -> Result<Vec<BucketCount>, StoreError> {
        self.minute_buckets("process_minutes", "started", from_ns, to_ns, bucket_ns)
            .await
    }

    /// Breaches (not cleared) per process whose due minute falls in each
    /// `bucket_ns`-wide bucket of `[from_ns, to_ns]` (whole minutes).
    pub async fn breach_buckets(
        &self,
        from_ns: u64,
        to_ns: u64,
        bucket_ns: u64,
    ) -> Result<Vec<BucketCount>, StoreError> {
        self.minute_buckets("breach_minutes", "breaches", from_ns, to_ns, bucket_ns)
            .await
    }

    async fn minute_buckets(
        &self,
        table: &str,
        column: &str,
        from_ns: u64,
        to_ns: u64,
        bucket_ns: u64,
    ) -> Result<Vec<BucketCount>, StoreError> {
        let range = Rollup::new(from_ns, to_ns);
        self.query(&format!(
            "SELECT process_id AS grp, \
                    intDiv(greatest(toUInt64(minute) * 1000000000, ?) - ?, ?) AS bucket, \
                    sum({column}) AS count \
             FROM {table} FINAL \
             WHERE minute >= toDateTime(?) AND minute <= toDateTime(?) \
             GROUP BY grp, bucket"
        ))
        .bind(from_ns)
        .bind(from_ns)
        .bind(bucket_ns.max(1))
        .bind(range.first_minute)
        .bind(range.last_minute)
        .fetch_all::<BucketCount>()
        .await
    }
}

#[cfg(test)]
mod tests;
