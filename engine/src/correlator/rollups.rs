//! Keeping the per-process rollups (`sql/0015_process_rollups.sql`) equal
//! to the instances and breaches the correlator writes.
//!
//! An instance's status and SLAs change over time, so the rollups are not
//! added to: a minute is recomputed from the truth (`instances_by_start`,
//! `breaches_by_due`) whenever a row starting (or due) in it was written.
//! [`Dirt`] collects those minutes (the new one and, when a start or due
//! time moved, the old one) once their rows are written; [`Correlator::
//! flush_rollups`] recomputes each dirty minute once, then the hours
//! holding them (from their minutes), then the breach minutes, and writes
//! the open breach counts. SLAs are judged at the cycle's time: a deadline
//! passing makes the correlator rewrite the instance, which dirties its
//! minute again, so a running SLA that becomes a breach is recounted.
//!
//! Coalescing: under a backlog the recompute waits, up to
//! [`MAX_DEFER_NS`] (2 minutes), so a minute touched by many cycles of a
//! catch-up is recomputed once. Crash safety without persisting the dirty
//! set: the
//! `process-rollups` row of `correlator_state` holds a time before which
//! every written row's minute was recomputed (saved after a flush that
//! left nothing dirty). At start the correlator recomputes every minute
//! with a row written since then (`rollup_minutes_written_since`) in its
//! first cycle, so a crash between a write and its recompute loses
//! nothing, and a first start after migration 0015 (no mark) recomputes
//! every minute its backfill filled.
//!
//! Several partitions (`partition.rs`) write instances of the same
//! minutes, and each recomputes the minutes it dirtied from the truth of
//! all partitions. Their rows replace each other by `computed_ns`, so with
//! several partitions a recompute is stamped (and its SLAs judged) with the
//! wall clock read just before it reads the truth, never with an older
//! cycle time: every write to a minute is followed by its writer's
//! recompute, so the recompute that started last, which wins, read every
//! write, and two partitions recomputing one minute leave the rows one
//! correlator would. (Across hosts this needs clocks kept in step, as NTP
//! does; a skew of s can leave a minute written within s of another
//! partition's recompute stale until it is written again.) The open breach
//! counts are each partition's memory only, so with several partitions
//! partition 0 alone writes them, counted from the stored breaches.

use std::collections::{BTreeMap, BTreeSet};

use domain::instance::BreachState;
use domain::process_rollup::ProcessRollup;
use store::process_rollups::{hour_of, minute_of, MovedDue, MovedStart, ProcessMinute};
use store::StoreError;

use super::Correlator;
use domain::instance::{Breach, InstanceRecord};

/// The mark's name in `correlator_state`.
const MARK_NAME: &str = "process-rollups";
/// How long a dirty minute may wait for its recompute while the feed has a
/// backlog. Each recompute of a catch-up's minutes rereads their instances,
/// so the longer the wait the cheaper the catch-up, and the staler the
/// process figures meanwhile.
const MAX_DEFER_NS: u64 = 120_000_000_000;
/// Dirty minutes recomputed per read and write.
const BATCH: usize = 1440;

/// The minutes whose rollups are out of date.
#[derive(Debug, Default)]
pub(super) struct Dirt {
    starts: BTreeSet<ProcessMinute>,
    dues: BTreeSet<ProcessMinute>,
    /// When the oldest dirty minute was noted; `None` while clean.
    since_ns: Option<u64>,
    /// The open breach counts last written.
    open_written: Option<Vec<(String, String, u64)>>,
}

impl Dirt {
    /// Notes the minutes of rows just written.
    pub(super) fn note(
        &mut self,
        instances: &[InstanceRecord],
        breaches: &[Breach],
        moved: &Moves,
        now: u64,
    ) {
        let before = self.starts.len() + self.dues.len();
        for r in instances {
            self.starts
                .insert((r.process_id.clone(), minute_of(r.start_ns)));
        }
        for m in &moved.starts {
            self.starts
                .insert((m.process_id.clone(), minute_of(m.old_start_ns)));
        }
        for b in breaches {
            self.dues
                .insert((b.process_id.clone(), minute_of(b.due_ns)));
        }
        for m in &moved.dues {
            self.dues
                .insert((m.process_id.clone(), minute_of(m.old_due_ns)));
        }
        if self.starts.len() + self.dues.len() > before && self.since_ns.is_none() {
            self.since_ns = Some(now);
        }
    }

    /// Notes minutes found at start (rows written since the mark).
    fn note_minutes(&mut self, starts: Vec<ProcessMinute>, dues: Vec<ProcessMinute>, now: u64) {
        if !starts.is_empty() || !dues.is_empty() {
            self.since_ns.get_or_insert(now);
        }
        self.starts.extend(starts);
        self.dues.extend(dues);
    }

    /// Whether a flush is due: always without a backlog, else once the
    /// oldest dirty minute waited [`MAX_DEFER_NS`].
    fn due(&self, backlog: bool, now: u64) -> bool {
        !backlog
            || self
                .since_ns
                .is_some_and(|s| now.saturating_sub(s) >= MAX_DEFER_NS)
    }

    fn minutes(&self) -> usize {
        self.starts.len() + self.dues.len()
    }
}

/// Rows whose start or due minute moved: their old minute gets a
/// `deleted` / `cleared` row and is recomputed too.
#[derive(Debug, Default)]
pub(super) struct Moves {
    pub(super) starts: Vec<MovedStart>,
    pub(super) dues: Vec<MovedDue>,
}

impl Correlator {
    /// At start: notes the minutes a run that stopped before recomputing
    /// them left behind (all of them on the first start after migration
    /// 0015). The first cycle recomputes them (with what this start's
    /// evaluation wrote), where a shutdown can cut it short.
    pub(super) async fn recover_rollups(&mut self, now: u64) -> Result<(), StoreError> {
        let mark = self
            .store
            .load_watermark(&self.settings.partition.state_name(MARK_NAME))
            .await?;
        let (starts, dues) = self
            .store
            .rollup_minutes_written_since(mark.unwrap_or(0))
            .await?;
        self.dirt.note_minutes(starts, dues, now);
        Ok(())
    }

    /// After a cycle: recomputes the dirty minutes unless a `backlog` is
    /// being read (then a minute a catch-up touches every cycle is
    /// recomputed once, at most [`MAX_DEFER_NS`] later). A failure leaves
    /// them dirty for the next cycle.
    pub(super) async fn refresh_rollups(&mut self, backlog: bool, now: u64) {
        if !self.dirt.due(backlog, now) {
            return;
        }
        let started = std::time::Instant::now();
        match self.flush_rollups(now).await {
            Ok(n) if n > 0 => tracing::debug!(
                minutes = n,
                ms = started.elapsed().as_millis() as u64,
                "process rollups recomputed"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                error = %e,
                dirty = self.dirt.minutes(),
                "recomputing process rollups failed; retrying next cycle"
            ),
        }
    }

    /// Recomputes every dirty minute, its hour and the breach minutes, and
    /// writes the open breach counts if they changed; then saves the mark.
    /// On failure the dirt stays for the next try.
    async fn flush_rollups(&mut self, now: u64) -> Result<usize, StoreError> {
        let part = self.settings.partition;
        // Shared: the wall clock, so the last recompute wins (module doc).
        let now = if part.is_shared() {
            now.max(domain::now_ns())
        } else {
            now
        };
        let starts: Vec<ProcessMinute> = self.dirt.starts.iter().cloned().collect();
        let dues: Vec<ProcessMinute> = self.dirt.dues.iter().cloned().collect();
        for chunk in starts.chunks(BATCH) {
            self.recompute_minutes(chunk, now).await?;
        }
        let hours: Vec<ProcessMinute> = starts
            .iter()
            .map(|(p, m)| (p.clone(), hour_of(*m)))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for chunk in hours.chunks(BATCH / 60) {
            let mut sums: BTreeMap<ProcessMinute, ProcessRollup> = chunk
                .iter()
                .map(|k| (k.clone(), ProcessRollup::default()))
                .collect();
            for (key, r) in self.store.process_minutes_of_hours(chunk).await? {
                if let Some(sum) = sums.get_mut(&key) {
                    sum.merge(&r);
                }
            }
            let rows: Vec<_> = sums.into_iter().collect();
            self.store.write_process_hours(&rows, now).await?;
        }
        for chunk in dues.chunks(BATCH) {
            let found = self.store.breaches_due_in(chunk).await?;
            let rows: Vec<(ProcessMinute, u64)> = chunk
                .iter()
                .map(|k| (k.clone(), found.get(k).copied().unwrap_or(0)))
                .collect();
            self.store.write_breach_minutes(&rows, now).await?;
        }
        let open = if !part.is_shared() {
            Some(self.open_breach_counts())
        } else if part.is_first() {
            let open = self.stored_open_breach_counts().await?;
            self.publish(&open);
            Some(open)
        } else {
            None
        };
        if let Some(open) = open {
            if self.dirt.open_written.as_ref() != Some(&open) {
                self.store.write_open_breaches_now(&open, now).await?;
                self.dirt.open_written = Some(open);
            }
        }
        let flushed = starts.len() + dues.len();
        let was_dirty = self.dirt.since_ns.is_some();
        self.dirt.starts.clear();
        self.dirt.dues.clear();
        self.dirt.since_ns = None;
        if was_dirty {
            // Every row written so far has `updated_ns` <= `now`.
            self.store
                .save_watermark(&part.state_name(MARK_NAME), now.saturating_add(1))
                .await?;
        }
        Ok(flushed)
    }

    /// Recomputes the rollups of `minutes` (sorted) from their instances.
    async fn recompute_minutes(
        &self,
        minutes: &[ProcessMinute],
        now: u64,
    ) -> Result<(), StoreError> {
        let mut sums: BTreeMap<ProcessMinute, ProcessRollup> = minutes
            .iter()
            .filter(|(p, _)| self.process_index(p).is_some())
            .map(|k| (k.clone(), ProcessRollup::default()))
            .collect();
        for i in self.store.instances_starting_in(minutes).await? {
            let Some(p) = self.process_index(&i.process_id) else {
                continue;
            };
            if let Some(sum) = sums.get_mut(&(i.process_id, i.minute)) {
                sum.add(&self.processes.list[p], i.status, &i.stages, now);
            }
        }
        let rows: Vec<_> = sums.into_iter().collect();
        self.store.write_process_minutes(&rows, now).await
    }

    /// Open breaches per (process, SLA), every SLA listed, from the
    /// stored breaches of every partition.
    async fn stored_open_breach_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut open: BTreeMap<(String, String), u64> = BTreeMap::new();
        for def in &self.processes.list {
            for sla in &def.slas {
                open.insert((def.id.clone(), sla.id.clone()), 0);
            }
        }
        for (p, s, n) in self.store.open_breaches_stored().await? {
            if let Some(count) = open.get_mut(&(p, s)) {
                *count = n;
            }
        }
        Ok(open.into_iter().map(|((p, s), n)| (p, s, n)).collect())
    }

    /// Open breaches per (process, SLA), every SLA listed, from memory (the
    /// correlator keeps every instance with an open breach).
    pub(super) fn open_breach_counts(&self) -> Vec<(String, String, u64)> {
        let mut open: BTreeMap<(String, String), u64> = BTreeMap::new();
        for def in &self.processes.list {
            for sla in &def.slas {
                open.insert((def.id.clone(), sla.id.clone()), 0);
            }
        }
        for (p, _, held) in self.instances.iter() {
            let def = &self.processes.list[p];
            for (s, sla) in def.slas.iter().enumerate() {
                if held.breach(s).is_some_and(|b| b.state == BreachState::Open) {
                    *open.entry((def.id.clone(), sla.id.clone())).or_default() += 1;
                }
            }
        }
        open.into_iter().map(|((p, s), n)| (p, s, n)).collect()
    }
}
