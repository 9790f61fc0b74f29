//! The row types of the process rollups, private to the store, and the
//! key-range conditions their reads share.

use std::collections::BTreeMap;

use clickhouse::Row;
use domain::instance::{Breach, BreachState, InstanceRecord, StageTimes};
use domain::process_rollup::{ProcessRollup, SlaCounts};
use serde::{Deserialize, Serialize};

use super::minute_of;
use crate::rows::status;
use crate::timeout::Statement;
use crate::StoreError;

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct ByStartRow {
    pub(super) process_id: String,
    pub(super) start_minute: u32,
    pub(super) root_value: String,
    pub(super) start_ns: u64,
    pub(super) last_ns: u64,
    pub(super) status: String,
    pub(super) current_stage: String,
    pub(super) stage_ids: Vec<String>,
    pub(super) stage_times: Vec<u64>,
    pub(super) failed: u8,
    pub(super) open_breaches: u32,
    pub(super) deleted: u8,
    pub(super) updated_ns: u64,
    pub(super) plant: String,
}

impl ByStartRow {
    pub(super) fn of(r: &InstanceRecord) -> Self {
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
            plant: r.plant.clone(),
        }
    }

    pub(super) fn record(self) -> Result<InstanceRecord, StoreError> {
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
            plant: self.plant,
        })
    }
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct ByDueRow {
    pub(super) process_id: String,
    pub(super) due_minute: u32,
    pub(super) sla_id: String,
    pub(super) root_value: String,
    pub(super) from_ns: u64,
    pub(super) due_ns: u64,
    pub(super) to_ns: u64,
    pub(super) late_ns: u64,
    pub(super) state: String,
    pub(super) updated_ns: u64,
    pub(super) plant: String,
}

impl ByDueRow {
    pub(super) fn of(b: &Breach) -> Self {
        ByDueRow {
            process_id: b.process_id.clone(),
            due_minute: minute_of(b.due_ns),
            sla_id: b.sla_id.clone(),
            root_value: b.root_value.clone(),
            from_ns: b.from_ns,
            due_ns: b.due_ns,
            to_ns: b.to_ns,
            late_ns: b.late_ns,
            state: b.state.as_str().to_string(),
            updated_ns: b.updated_ns,
            plant: b.plant.clone(),
        }
    }

    pub(super) fn breach(self) -> Result<Breach, StoreError> {
        Ok(Breach {
            state: BreachState::parse(&self.state).ok_or_else(|| {
                StoreError::Migration(format!(
                    "breaches_by_due.state holds `{}`, which this version of Throughline \
                     does not know; run the version that wrote it, or a newer one",
                    self.state
                ))
            })?,
            process_id: self.process_id,
            sla_id: self.sla_id,
            root_value: self.root_value,
            from_ns: self.from_ns,
            due_ns: self.due_ns,
            to_ns: self.to_ns,
            late_ns: self.late_ns,
            updated_ns: self.updated_ns,
            plant: self.plant,
        })
    }
}

/// The aggregate columns of `process_minutes` and `process_hours`, with the
/// time column named `$time`.
macro_rules! rollup_row {
    ($name:ident, $time:ident) => {
        #[derive(Debug, Row, Serialize, Deserialize)]
        pub(super) struct $name {
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
            pub(super) fn of(
                process_id: &str,
                $time: u32,
                r: &ProcessRollup,
                computed_ns: u64,
            ) -> Self {
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

            pub(super) fn rollup(self) -> (String, u32, ProcessRollup) {
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
pub(super) fn runs(
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
pub(super) fn each_minute(
    keys: &[super::ProcessMinute],
) -> impl Iterator<Item = (String, u32, u32)> + '_ {
    keys.iter().map(|(p, m)| (p.clone(), *m, *m))
}

pub(super) fn bind_runs(mut query: Statement, runs: &[(String, u32, u32)]) -> Statement {
    for (p, lo, hi) in runs {
        query = query.bind(p.as_str()).bind(*lo).bind(*hi);
    }
    query
}
