//! The per-process rollups of `sql/0014_process_rollups.sql`: what the
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

use std::collections::BTreeMap;

use clickhouse::Row;
use domain::instance::{Breach, BreachState, InstanceRecord, StageTimes, Status};
use domain::process_rollup::{ProcessRollup, SlaCounts};
use serde::{Deserialize, Serialize};

use super::migrate::DayFill;
use super::rows::{seconds, status};
use super::stats::{BucketCount, Rollup};
use super::timeout::Statement;
use super::{Store, StoreError};

/// A (process id, minute or hour as Unix seconds) the rollups are kept per.
pub type ProcessMinute = (String, u32);

/// Minutes (or hours) one recompute read covers at most.
const MINUTES_PER_READ: usize = 240;

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
}

/// A breach whose due time moved out of the minute it was stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedDue {
    pub process_id: String,
    pub sla_id: String,
    pub root_value: String,
    pub old_due_ns: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct ByStartRow {
    process_id: String,
    start_minute: u32,
    root_value: String,
    start_ns: u64,
    last_ns: u64,
    status: String,
    current_stage: String,
    stage_ids: Vec<String>,
    stage_times: Vec<u64>,
    failed: u8,
    open_breaches: u32,
    deleted: u8,
    updated_ns: u64,
}

impl ByStartRow {
    fn of(r: &InstanceRecord) -> Self {
        ByStartRow {
            process_id: r.process_id.clone(),
            start_minute: minute_of(r.start_ns),
            root_value: r.root_value.clone(),
            start_ns: r.start_ns,
            last_ns: r.last_ns,
            status: r.status.as_str().to_string(),
            current_stage: r.current_stage.clone(),
            stage_ids: r.stages.ids.clone(),
            stage_times: r.stages.times.clone(),
            failed: u8::from(r.failed),
            open_breaches: r.open_breaches,
            deleted: 0,
            updated_ns: r.updated_ns,
        }
    }

    fn record(self) -> Result<InstanceRecord, StoreError> {
        Ok(InstanceRecord {
            status: status(&self.status)?,
            process_id: self.process_id,
            root_value: self.root_value,
            start_ns: self.start_ns,
            last_ns: self.last_ns,
            current_stage: self.current_stage,
            stages: StageTimes {
                ids: self.stage_ids,
                times: self.stage_times,
            },
            failed: self.failed != 0,
            open_breaches: self.open_breaches,
            updated_ns: self.updated_ns,
        })
    }
}

/// The first window of minutes a page of instances reads; each next one
/// is twice as wide, until the page is full or the range read.
const FIRST_WINDOW_S: u32 = 600;

#[derive(Debug, Row, Serialize, Deserialize)]
struct ByDueRow {
    process_id: String,
    due_minute: u32,
    sla_id: String,
    root_value: String,
    state: String,
    updated_ns: u64,
}

/// The aggregate columns of `process_minutes` and `process_hours`, with the
/// time column named `$time`.
macro_rules! rollup_row {
    ($name:ident, $time:ident) => {
        #[derive(Debug, Row, Serialize, Deserialize)]
        struct $name {
            process_id: String,
            $time: u32,
            started: u64,
            in_flight: u64,
            stalled: u64,
            completed: u64,
            failed: u64,
            any_breached: u64,
            stage_ids: Vec<String>,
            reached: Vec<u64>,
            sla_ids: Vec<String>,
            met: Vec<u64>,
            breached: Vec<u64>,
            pair_from: Vec<String>,
            pair_to: Vec<String>,
            buckets: Vec<u16>,
            bins: Vec<u8>,
            counts: Vec<u64>,
            computed_ns: u64,
        }

        impl $name {
            fn of(process_id: &str, $time: u32, r: &ProcessRollup, computed_ns: u64) -> Self {
                let mut row = $name {
                    process_id: process_id.to_string(),
                    $time,
                    started: r.started,
                    in_flight: r.in_flight,
                    stalled: r.stalled,
                    completed: r.completed,
                    failed: r.failed,
                    any_breached: r.any_breached,
                    stage_ids: r.reached.keys().cloned().collect(),
                    reached: r.reached.values().copied().collect(),
                    sla_ids: r.slas.keys().cloned().collect(),
                    met: r.slas.values().map(|c| c.met).collect(),
                    breached: r.slas.values().map(|c| c.breached).collect(),
                    pair_from: Vec::new(),
                    pair_to: Vec::new(),
                    buckets: Vec::new(),
                    bins: Vec::new(),
                    counts: Vec::new(),
                    computed_ns,
                };
                for ((from, to), cells) in &r.durations {
                    for ((bucket, bin), n) in cells {
                        row.pair_from.push(from.clone());
                        row.pair_to.push(to.clone());
                        row.buckets.push(*bucket);
                        row.bins.push(*bin);
                        row.counts.push(*n);
                    }
                }
                row
            }

            fn rollup(self) -> (String, u32, ProcessRollup) {
                let mut r = ProcessRollup {
                    started: self.started,
                    in_flight: self.in_flight,
                    stalled: self.stalled,
                    completed: self.completed,
                    failed: self.failed,
                    any_breached: self.any_breached,
                    reached: self.stage_ids.into_iter().zip(self.reached).collect(),
                    slas: self
                        .sla_ids
                        .into_iter()
                        .zip(self.met.into_iter().zip(self.breached))
                        .map(|(id, (met, breached))| (id, SlaCounts { met, breached }))
                        .collect(),
                    durations: BTreeMap::new(),
                };
                let cells = self
                    .pair_from
                    .into_iter()
                    .zip(self.pair_to)
                    .zip(self.buckets.into_iter().zip(self.bins))
                    .zip(self.counts);
                for (((from, to), (bucket, bin)), n) in cells {
                    *r.durations
                        .entry((from, to))
                        .or_default()
                        .entry((bucket, bin))
                        .or_default() += n;
                }
                (self.process_id, self.$time, r)
            }
        }
    };
}

rollup_row!(MinuteRow, minute);
rollup_row!(HourRow, hour);

/// The condition `(process_id = ? AND {column} >= toDateTime(?) AND
/// {column} <= toDateTime(?)) OR ...` over `spans` ((process, first, last),
/// sorted), those of a process that touch or are `step` seconds apart
/// joined into one run; and the runs to bind, in order.
fn runs(
    spans: impl IntoIterator<Item = (String, u32, u32)>,
    column: &str,
    step: u32,
) -> (String, Vec<(String, u32, u32)>) {
    let mut out: Vec<(String, u32, u32)> = Vec::new();
    for (p, lo, hi) in spans {
        match out.last_mut() {
            Some((lp, _, last)) if *lp == p && lo <= last.saturating_add(step) => {
                *last = (*last).max(hi)
            }
            _ => out.push((p, lo, hi)),
        }
    }
    let sql =
        vec![
            format!("(process_id = ? AND {column} >= toDateTime(?) AND {column} <= toDateTime(?))");
            out.len()
        ]
        .join(" OR ");
    (sql, out)
}

/// Each minute of `keys` as a span of its own.
fn each_minute(keys: &[ProcessMinute]) -> impl Iterator<Item = (String, u32, u32)> + '_ {
    keys.iter().map(|(p, m)| (p.clone(), *m, *m))
}

fn bind_runs(mut query: Statement, runs: &[(String, u32, u32)]) -> Statement {
    for (p, lo, hi) in runs {
        query = query.bind(p.as_str()).bind(*lo).bind(*hi);
    }
    query
}

impl Store {
    /// Writes the rows of `instances` into `instances_by_start`, and a
    /// deleted row under the old minute of each of `moved`. Call with the
    /// same rows as `write_instances`, after it.
    pub async fn write_instances_by_start(
        &self,
        instances: &[InstanceRecord],
        moved: &[MovedStart],
        now_ns: u64,
    ) -> Result<(), StoreError> {
        let mut rows: Vec<ByStartRow> = instances.iter().map(ByStartRow::of).collect();
        rows.extend(moved.iter().map(|m| ByStartRow {
            process_id: m.process_id.clone(),
            start_minute: minute_of(m.old_start_ns),
            root_value: m.root_value.clone(),
            start_ns: m.old_start_ns,
            last_ns: 0,
            status: String::new(),
            current_stage: String::new(),
            stage_ids: Vec::new(),
            stage_times: Vec::new(),
            failed: 0,
            open_breaches: 0,
            deleted: 1,
            updated_ns: now_ns,
        }));
        self.insert_rows("instances_by_start", &rows).await
    }

    /// Writes `breaches` into `breaches_by_due`, and a cleared row under
    /// the old minute of each of `moved`. Call with the same rows as
    /// `write_breaches`, after it.
    pub async fn write_breaches_by_due(
        &self,
        breaches: &[Breach],
        moved: &[MovedDue],
        now_ns: u64,
    ) -> Result<(), StoreError> {
        let mut rows: Vec<ByDueRow> = breaches
            .iter()
            .map(|b| ByDueRow {
                process_id: b.process_id.clone(),
                due_minute: minute_of(b.due_ns),
                sla_id: b.sla_id.clone(),
                root_value: b.root_value.clone(),
                state: b.state.as_str().to_string(),
                updated_ns: b.updated_ns,
            })
            .collect();
        rows.extend(moved.iter().map(|m| ByDueRow {
            process_id: m.process_id.clone(),
            due_minute: minute_of(m.old_due_ns),
            sla_id: m.sla_id.clone(),
            root_value: m.root_value.clone(),
            state: BreachState::Cleared.as_str().to_string(),
            updated_ns: now_ns,
        }));
        self.insert_rows("breaches_by_due", &rows).await
    }

    /// The live instances that start in `minutes` (sorted), each once.
    pub async fn instances_starting_in(
        &self,
        minutes: &[ProcessMinute],
    ) -> Result<Vec<StartedInstance>, StoreError> {
        let mut out = Vec::new();
        for chunk in minutes.chunks(MINUTES_PER_READ) {
            let (cond, runs) = runs(each_minute(chunk), "start_minute", 60);
            let query = self.query(&format!(
                "SELECT ?fields FROM instances_by_start FINAL WHERE {cond}"
            ));
            // `deleted` is filtered here, not in SQL: a condition ClickHouse
            // moves before FINAL's merge would keep the row it replaced.
            for row in bind_runs(query, &runs).fetch_all::<ByStartRow>().await? {
                if row.deleted != 0 {
                    continue;
                }
                out.push(StartedInstance {
                    status: status(&row.status)?,
                    process_id: row.process_id,
                    minute: row.start_minute,
                    stages: StageTimes {
                        ids: row.stage_ids,
                        times: row.stage_times,
                    },
                });
            }
        }
        Ok(out)
    }

    /// A page of the instances of `filter.process_id` started in its range
    /// (optionally of one status), newest start first, after
    /// `filter.after`; `filter.root_value` is not looked at (a key's
    /// instance is read by its key from `process_instances`). Reads
    /// windows of minutes back from the range's end, each twice as wide
    /// as the one before, until the page is full: a page of the newest
    /// reads their last minutes, not the range.
    pub async fn instances_page(
        &self,
        filter: &super::correlation::InstanceFilter,
    ) -> Result<Vec<InstanceRecord>, StoreError> {
        let lowest = minute_of(filter.from_ns);
        let to_ns = match &filter.after {
            Some((start, _)) => filter.to_ns.min(*start),
            None => filter.to_ns,
        };
        if to_ns < filter.from_ns {
            return Ok(Vec::new());
        }
        let want = filter.limit + 1;
        let mut out: Vec<InstanceRecord> = Vec::new();
        let (mut top, mut width) = (minute_of(to_ns), FIRST_WINDOW_S);
        loop {
            let bottom = top.saturating_sub(width - 60).max(lowest);
            let mut sql = String::from(
                "SELECT ?fields FROM instances_by_start FINAL \
                 WHERE process_id = ? AND start_minute >= toDateTime(?) \
                   AND start_minute <= toDateTime(?) \
                   AND deleted = 0 AND start_ns >= ? AND start_ns <= ?",
            );
            if filter.status.is_some() {
                sql.push_str(" AND status = ?");
            }
            if filter.after.is_some() {
                sql.push_str(" AND (start_ns < ? OR (start_ns = ? AND root_value < ?))");
            }
            sql.push_str(" ORDER BY start_ns DESC, root_value DESC LIMIT ?");
            let mut query = self
                .query(&sql)
                .bind(filter.process_id.as_str())
                .bind(bottom)
                .bind(top)
                .bind(filter.from_ns)
                .bind(filter.to_ns);
            if let Some(status) = &filter.status {
                query = query.bind(status.as_str());
            }
            if let Some((start, root)) = &filter.after {
                query = query.bind(*start).bind(*start).bind(root.as_str());
            }
            let rows = query
                .bind((want - out.len()) as u64)
                .fetch_all::<ByStartRow>()
                .await?;
            for row in rows {
                out.push(row.record()?);
            }
            if out.len() >= want || bottom <= lowest {
                return Ok(out);
            }
            top = bottom - 60;
            width = width.saturating_mul(2);
        }
    }

    /// Breaches (open or closed) due in each of `minutes` (sorted) that
    /// has any.
    pub async fn breaches_due_in(
        &self,
        minutes: &[ProcessMinute],
    ) -> Result<BTreeMap<ProcessMinute, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for chunk in minutes.chunks(MINUTES_PER_READ) {
            let (cond, runs) = runs(each_minute(chunk), "due_minute", 60);
            let query = self.query(&format!(
                "SELECT process_id, due_minute, state FROM breaches_by_due FINAL WHERE {cond}"
            ));
            #[derive(Row, Deserialize)]
            struct Due {
                process_id: String,
                due_minute: u32,
                state: String,
            }
            for row in bind_runs(query, &runs).fetch_all::<Due>().await? {
                if row.state != BreachState::Cleared.as_str() {
                    *out.entry((row.process_id, row.due_minute)).or_default() += 1;
                }
            }
        }
        Ok(out)
    }

    /// Replaces the rollup of each (process, minute) of `rows`.
    pub async fn write_process_minutes(
        &self,
        rows: &[(ProcessMinute, ProcessRollup)],
        computed_ns: u64,
    ) -> Result<(), StoreError> {
        let rows: Vec<MinuteRow> = rows
            .iter()
            .map(|((p, m), r)| MinuteRow::of(p, *m, r, computed_ns))
            .collect();
        self.insert_rows("process_minutes", &rows).await
    }

    /// Replaces the rollup of each (process, hour) of `rows`.
    pub async fn write_process_hours(
        &self,
        rows: &[(ProcessMinute, ProcessRollup)],
        computed_ns: u64,
    ) -> Result<(), StoreError> {
        let rows: Vec<HourRow> = rows
            .iter()
            .map(|((p, h), r)| HourRow::of(p, *h, r, computed_ns))
            .collect();
        self.insert_rows("process_hours", &rows).await
    }

    /// The stored minutes of `hours` (sorted (process, hour)), each with
    /// the hour it belongs to.
    pub async fn process_minutes_of_hours(
        &self,
        hours: &[ProcessMinute],
    ) -> Result<Vec<(ProcessMinute, ProcessRollup)>, StoreError> {
        let mut out = Vec::new();
        for chunk in hours.chunks(MINUTES_PER_READ / 60 + 1) {
            let spans = chunk.iter().map(|(p, h)| (p.clone(), *h, h + 3540));
            let (cond, runs) = runs(spans, "minute", 60);
            let query = self.query(&format!(
                "SELECT ?fields FROM process_minutes FINAL WHERE {cond}"
            ));
            for row in bind_runs(query, &runs).fetch_all::<MinuteRow>().await? {
                let (p, minute, r) = row.rollup();
                out.push(((p, hour_of(minute)), r));
            }
        }
        Ok(out)
    }

    /// Replaces the breaches due in each (process, minute) of `rows`.
    pub async fn write_breach_minutes(
        &self,
        rows: &[(ProcessMinute, u64)],
        computed_ns: u64,
    ) -> Result<(), StoreError> {
        #[derive(Row, Serialize)]
        struct BreachMinuteRow {
            process_id: String,
            minute: u32,
            breaches: u64,
            computed_ns: u64,
        }
        let rows: Vec<BreachMinuteRow> = rows
            .iter()
            .map(|((p, m), n)| BreachMinuteRow {
                process_id: p.clone(),
                minute: *m,
                breaches: *n,
                computed_ns,
            })
            .collect();
        self.insert_rows("breach_minutes", &rows).await
    }

    /// Replaces the open breach counts per (process, SLA).
    pub async fn write_open_breaches_now(
        &self,
        counts: &[(String, String, u64)],
        now_ns: u64,
    ) -> Result<(), StoreError> {
        #[derive(Row, Serialize)]
        struct OpenRow {
            process_id: String,
            sla_id: String,
            open: u64,
            updated_ns: u64,
        }
        let rows: Vec<OpenRow> = counts
            .iter()
            .map(|(p, s, n)| OpenRow {
                process_id: p.clone(),
                sla_id: s.clone(),
                open: *n,
                updated_ns: now_ns,
            })
            .collect();
        self.insert_rows("open_breaches_now", &rows).await
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

    /// The (process, minute) of every instance and breach row written at or
    /// after `since_ns` (`updated_ns`): what a correlator that stopped
    /// before recomputing them recomputes at start. Reads one column of the
    /// two tables whole: once per start, never per request.
    pub async fn rollup_minutes_written_since(
        &self,
        since_ns: u64,
    ) -> Result<(Vec<ProcessMinute>, Vec<ProcessMinute>), StoreError> {
        #[derive(Row, Deserialize)]
        struct Key {
            process_id: String,
            minute: u32,
        }
        let starts = self
            .query(
                "SELECT DISTINCT process_id, start_minute AS minute FROM instances_by_start \
                 WHERE updated_ns >= ? ORDER BY process_id, minute",
            )
            .bind(since_ns)
            .fetch_all::<Key>();
        let dues = self
            .query(
                "SELECT DISTINCT process_id, due_minute AS minute FROM breaches_by_due \
                 WHERE updated_ns >= ? ORDER BY process_id, minute",
            )
            .bind(since_ns)
            .fetch_all::<Key>();
        let (starts, dues) = tokio::try_join!(starts, dues)?;
        let keys = |v: Vec<Key>| v.into_iter().map(|k| (k.process_id, k.minute)).collect();
        Ok((keys(starts), keys(dues)))
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

/// `instances_by_start` from `process_instances`, one day of starts.
const INSTANCES_BY_START_OF_DAY: &str = "INSERT INTO instances_by_start \
    (process_id, start_minute, root_value, start_ns, last_ns, status, current_stage, \
     stage_ids, stage_times, failed, open_breaches, deleted, updated_ns) \
    SELECT process_id, toStartOfMinute(toDateTime(intDiv(start_ns, 1000000000))), \
           root_value, start_ns, last_ns, status, current_stage, stage_ids, stage_times, \
           failed, open_breaches, toUInt8(0), updated_ns \
    FROM process_instances FINAL \
    WHERE toDate(toDateTime(intDiv(start_ns, 1000000000))) = toDate(?)";

/// `breaches_by_due` from `breaches`, one day of due times.
const BREACHES_BY_DUE_OF_DAY: &str = "INSERT INTO breaches_by_due \
    (process_id, due_minute, sla_id, root_value, state, updated_ns) \
    SELECT process_id, toStartOfMinute(toDateTime(intDiv(due_ns, 1000000000))), \
           sla_id, root_value, state, updated_ns \
    FROM breaches FINAL \
    WHERE toDate(toDateTime(intDiv(due_ns, 1000000000))) = toDate(?)";

/// The backfill of migration 0014: the instance and breach rows stored
/// before it, by minute. The correlator then recomputes every minute they
/// fill at its next start (it finds no `process-rollups` mark, so it
/// recomputes every minute written since 0).
pub const PROCESS_ROLLUP_FILLS: &[DayFill] = &[
    DayFill {
        target: "instances_by_start",
        day_of: "toDate(start_minute)",
        days: "SELECT DISTINCT toString(toDate(toDateTime(intDiv(start_ns, 1000000000)))) \
               AS day FROM process_instances",
        insert: INSTANCES_BY_START_OF_DAY,
        pieces: 1,
    },
    DayFill {
        target: "breaches_by_due",
        day_of: "toDate(due_minute)",
        days: "SELECT DISTINCT toString(toDate(toDateTime(intDiv(due_ns, 1000000000)))) AS day \
               FROM breaches",
        insert: BREACHES_BY_DUE_OF_DAY,
        pieces: 1,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

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
}
