//! What the process pages show of a set of instances, kept per minute of
//! start so that a range reads minutes (or hours) x processes instead of
//! every instance (issue 16).
//!
//! A [`ProcessRollup`] is the aggregate of some instances of one process:
//! how many started, by status, how many reached each stage, each SLA met
//! or breached (by [`StageTimes::sla_state`] at the moment it was computed:
//! an open or a closed breach counts as breached), and the durations
//! between the stage pairs a page shows ([`duration_pairs`]) as log
//! buckets (`crate::histogram`, for p50/p95/p99 within 12.5 %) crossed
//! with the bins of [`HISTOGRAM_BOUNDS_NS`] (so the process page's
//! histogram stays exact). Counts add up exactly: the rollup of a range is
//! the [`ProcessRollup::merge`] of its minutes'. A stage-latency SLO's
//! pair is kept from the moment its definition is loaded: minutes computed
//! before then lack it until they are recomputed.

use std::collections::BTreeMap;

use crate::histogram;
use crate::instance::{SlaState, StageTimes, Status};
use crate::process::{ProcessDef, SloTarget};

/// Upper bounds of the process page's duration histogram bins; a last bin
/// takes the rest. Steps a planner thinks in, from seconds to a week.
pub const HISTOGRAM_BOUNDS_NS: [u64; 17] = {
    const S: u64 = 1_000_000_000;
    [
        S,
        5 * S,
        15 * S,
        30 * S,
        60 * S,
        2 * 60 * S,
        5 * 60 * S,
        15 * 60 * S,
        30 * 60 * S,
        3600 * S,
        2 * 3600 * S,
        4 * 3600 * S,
        8 * 3600 * S,
        86_400 * S,
        2 * 86_400 * S,
        4 * 86_400 * S,
        7 * 86_400 * S,
    ]
};

/// The bin of [`HISTOGRAM_BOUNDS_NS`] a duration falls in (a bin holds the
/// durations up to and including its bound).
pub fn bin(duration_ns: u64) -> u8 {
    HISTOGRAM_BOUNDS_NS.partition_point(|b| *b < duration_ns) as u8
}

/// Met and breached instances of one SLA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlaCounts {
    pub met: u64,
    pub breached: u64,
}

/// The aggregate of some instances of one process (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessRollup {
    pub started: u64,
    pub in_flight: u64,
    pub stalled: u64,
    pub completed: u64,
    pub failed: u64,
    /// Instances with at least one SLA breached.
    pub any_breached: u64,
    /// Instances that reached each stage, by stage id.
    pub reached: BTreeMap<String, u64>,
    /// Per SLA id.
    pub slas: BTreeMap<String, SlaCounts>,
    /// Per (from stage, to stage): how many durations fell in each
    /// (log bucket, histogram bin).
    pub durations: BTreeMap<(String, String), BTreeMap<(u16, u8), u64>>,
}

/// The stage pairs (by index) whose durations a page shows or an SLO
/// judges: adjacent stages, each SLA's from and to, first to last, and
/// each stage-latency SLO's from and to; each once.
pub fn duration_pairs(def: &ProcessDef) -> Vec<(usize, usize)> {
    let n = def.stages.len();
    let mut pairs: Vec<(usize, usize)> = (1..n).map(|i| (i - 1, i)).collect();
    pairs.extend(def.slas.iter().map(|s| (s.from, s.to)));
    let index = |id: &str| def.stages.iter().position(|s| s.id == id);
    pairs.extend(def.slos.iter().filter_map(|slo| match &slo.target {
        SloTarget::Latency { from, to, .. } => Some((index(from)?, index(to)?)),
        _ => None,
    }));
    if n > 0 {
        pairs.push((0, n - 1));
    }
    let mut seen = std::collections::BTreeSet::new();
    pairs.retain(|p| seen.insert(*p));
    pairs
}

impl ProcessRollup {
    /// Counts one instance of `def` with `status` and `stages`, judging its
    /// SLAs at `now_ns`.
    pub fn add(&mut self, def: &ProcessDef, status: Status, stages: &StageTimes, now_ns: u64) {
        self.started += 1;
        *match status {
            Status::InFlight => &mut self.in_flight,
            Status::Stalled => &mut self.stalled,
            Status::Completed => &mut self.completed,
            Status::Failed => &mut self.failed,
        } += 1;
        for stage in &def.stages {
            if stages.time_of(&stage.id).is_some() {
                *self.reached.entry(stage.id.clone()).or_default() += 1;
            }
        }
        let mut any = false;
        for sla in &def.slas {
            let counts = self.slas.entry(sla.id.clone()).or_default();
            match stages.sla_state(def, sla, now_ns) {
                SlaState::Met => counts.met += 1,
                SlaState::Open { .. } | SlaState::Closed { .. } => {
                    counts.breached += 1;
                    any = true;
                }
                SlaState::NotStarted | SlaState::Running { .. } => {}
            }
        }
        self.any_breached += u64::from(any);
        for (a, b) in duration_pairs(def) {
            let (from, to) = (&def.stages[a].id, &def.stages[b].id);
            if let Some(d) = stages.between(from, to) {
                *self
                    .durations
                    .entry((from.clone(), to.clone()))
                    .or_default()
                    .entry((histogram::bucket(d), bin(d)))
                    .or_default() += 1;
            }
        }
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &ProcessRollup) {
        self.started += other.started;
        self.in_flight += other.in_flight;
        self.stalled += other.stalled;
        self.completed += other.completed;
        self.failed += other.failed;
        self.any_breached += other.any_breached;
        for (stage, n) in &other.reached {
            *self.reached.entry(stage.clone()).or_default() += n;
        }
        for (sla, c) in &other.slas {
            let mine = self.slas.entry(sla.clone()).or_default();
            mine.met += c.met;
            mine.breached += c.breached;
        }
        for (pair, cells) in &other.durations {
            let mine = self.durations.entry(pair.clone()).or_default();
            for (cell, n) in cells {
                *mine.entry(*cell).or_default() += n;
            }
        }
    }

    /// Instances that reached `stage`.
    pub fn reached(&self, stage: &str) -> u64 {
        self.reached.get(stage).copied().unwrap_or(0)
    }

    fn cells(&self, from: &str, to: &str) -> impl Iterator<Item = (&(u16, u8), &u64)> {
        self.durations
            .get(&(from.to_string(), to.to_string()))
            .into_iter()
            .flatten()
    }

    /// How many durations from `from` to `to` were counted.
    pub fn duration_count(&self, from: &str, to: &str) -> u64 {
        self.cells(from, to).map(|(_, n)| n).sum()
    }

    /// The log-bucket histogram of the durations from `from` to `to`, for
    /// `histogram::quantile`.
    pub fn histogram(&self, from: &str, to: &str) -> Vec<(u16, u64)> {
        let mut by_bucket: BTreeMap<u16, u64> = BTreeMap::new();
        for ((bucket, _), n) in self.cells(from, to) {
            *by_bucket.entry(*bucket).or_default() += n;
        }
        by_bucket.into_iter().collect()
    }

    /// Per bin of [`HISTOGRAM_BOUNDS_NS`] (and a last one for longer), how
    /// many durations from `from` to `to`: exact.
    pub fn bins(&self, from: &str, to: &str) -> Vec<u64> {
        let mut counts = vec![0u64; HISTOGRAM_BOUNDS_NS.len() + 1];
        for ((_, b), n) in self.cells(from, to) {
            counts[usize::from(*b).min(HISTOGRAM_BOUNDS_NS.len())] += n;
        }
        counts
    }
}

#[cfg(test)]
mod tests;
