//! What the correlator writes and reads to keep the process rollups: the
//! instance and breach rows by minute (with a `deleted` / `cleared` row
//! under the old minute when a time moved), the minutes a recompute reads,
//! and the recomputed minutes, hours and counts.

use std::collections::BTreeMap;

use clickhouse::Row;
use domain::instance::{Breach, BreachState, InstanceRecord, StageTimes};
use domain::process_rollup::ProcessRollup;
use serde::{Deserialize, Serialize};

use super::rows::{bind_runs, each_minute, runs, ByDueRow, ByStartRow, HourRow, MinuteRow};
use super::{hour_of, minute_of, MovedDue, MovedStart, ProcessMinute, StartedInstance};
use crate::rows::status;
use crate::{Store, StoreError};

/// Minutes (or hours) one recompute read covers at most.
const MINUTES_PER_READ: usize = 240;

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
            plant: m.plant.clone(),
        }));
        self.insert_rows("instances_by_start", &rows).await
    }

    /// Writes `breaches` into `breaches_by_due`, and a cleared row under
    /// the old minute of each of `moved`. Call with the same rows as
    /// `write_breaches`, before it (a reader who sees a breach row then
    /// finds it by minute too).
    pub async fn write_breaches_by_due(
        &self,
        breaches: &[Breach],
        moved: &[MovedDue],
        now_ns: u64,
    ) -> Result<(), StoreError> {
        let mut rows: Vec<ByDueRow> = breaches.iter().map(ByDueRow::of).collect();
        rows.extend(moved.iter().map(|m| ByDueRow {
            process_id: m.process_id.clone(),
            due_minute: minute_of(m.old_due_ns),
            sla_id: m.sla_id.clone(),
            root_value: m.root_value.clone(),
            from_ns: 0,
            due_ns: m.old_due_ns,
            to_ns: 0,
            late_ns: 0,
            state: BreachState::Cleared.as_str().to_string(),
            updated_ns: now_ns,
            plant: m.plant.clone(),
        }));
        self.insert_rows("breaches_by_due", &rows).await
    }

    /// The live instances that start in `minutes` (sorted), each once:
    /// only the columns a rollup counts.
    pub async fn instances_starting_in(
        &self,
        minutes: &[ProcessMinute],
    ) -> Result<Vec<StartedInstance>, StoreError> {
        #[derive(Row, Deserialize)]
        struct Started {
            process_id: String,
            start_minute: u32,
            status: String,
            stage_ids: Vec<String>,
            stage_times: Vec<u64>,
        }
        let mut out = Vec::new();
        for chunk in minutes.chunks(MINUTES_PER_READ) {
            let (cond, runs) = runs(each_minute(chunk), "start_minute", 60);
            // FINAL first, then `deleted` (WHERE filters merged rows).
            let query = self.query(&format!(
                "SELECT process_id, start_minute, status, stage_ids, stage_times \
                 FROM instances_by_start FINAL WHERE ({cond}) AND deleted = 0"
            ));
            for row in bind_runs(query, &runs).fetch_all::<Started>().await? {
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

    /// Open breaches per (process, SLA) as stored (the latest row of
    /// each breach): what several correlator partitions, each holding its
    /// share in memory, count together. Reads the breaches whole.
    pub async fn open_breaches_stored(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        #[derive(Row, Deserialize)]
        struct Count {
            process_id: String,
            sla_id: String,
            open: u64,
        }
        Ok(self
            .query(
                "SELECT process_id, sla_id, count() AS open FROM breaches FINAL \
                 WHERE state = 'open' GROUP BY process_id, sla_id",
            )
            .fetch_all::<Count>()
            .await?
            .into_iter()
            .map(|c| (c.process_id, c.sla_id, c.open))
            .collect())
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
}
