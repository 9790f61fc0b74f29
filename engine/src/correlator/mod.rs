//! The correlator: turns stored spans and events into process steps,
//! instances and SLA breaches. One runs per deployment, or N share the
//! instances by root key (`partition`: `--correlator-partition K/N`).
//!
//! Each cycle it reads the feed (`correlation_feed_v2`) from its watermark to
//! `now - settle`, matches records to stages, resolves each record's keys to
//! the process's root key through key links, writes the new steps, and
//! re-evaluates the instances they touched. A link seen for the first time
//! re-resolves the records (within the horizon) that carry its keys, so a
//! stage matched on a work-order event counts for its order even when the
//! link arrives later. Between cycles nothing needs to arrive: deadlines of
//! running SLAs are kept in a heap, and an SLA whose time passed becomes an
//! open breach at the next tick.
//!
//! Restart safety: steps are checked against what is stored before writing,
//! the watermark is saved after the steps, and instance and breach rows are
//! written only when they differ from the stored ones. A crash mid-cycle
//! reruns the cycle and writes nothing twice.
//!
//! `start` loads what a start needs; `roots` matches records to stages and
//! resolves them to root keys; `evaluation` turns instances into the rows to
//! write and remembers what was written; `rollups` recomputes the
//! per-process minutes those rows touched.

mod evaluation;
mod held;
mod partition;
mod rollups;
mod roots;
mod start;
mod walkers;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use self::held::{Instances, Root};
pub use self::partition::{Partition, PartitionError};
use self::walkers::WalkingKeys;
use crate::metrics::CorrelatorMetrics;
use domain::feed::{FeedRecord, RecordKind, Step};
use domain::instance::{evaluate, SlaState, StageHit};
use domain::keys::KeyTypes;
use domain::model::{key_links, BusinessKey};
use domain::now_ns;
use domain::process::Processes;
use store::{Store, StoreError};

/// The watermark's name in `correlator_state` (suffixed with the
/// partition when there are several: [`Partition::state_name`]).
const STATE_NAME: &str = "correlator";
/// The row in `correlator_state` that says `correlator_walks` was filled
/// from the key index (once, for records stored before it existed).
const WALKS_FILLED: &str = "correlator-walks";
/// Walking keys loaded per read at start.
const WALK_KEYS_PAGE: usize = 100_000;
/// Feed rows read per query.
const PAGE: usize = 20_000;
/// Feed rows are kept this long after the lookback passed them (margin for
/// a clock a little behind), then their partitions are dropped.
const FEED_KEEP_NS: u64 = 60_000_000_000;
/// Bounds of the window of ingestion time one feed read covers.
const MIN_WINDOW_NS: u64 = 1_000_000;
const MAX_WINDOW_NS: u64 = 3_600_000_000_000;
/// Links followed from a record's keys toward a root key.
const MAX_DEPTH: usize = 4;
/// Each cycle reads the feed again from this far behind its watermark and
/// takes the rows it has not seen: a write that became visible late (a slow
/// insert, a collector's clock a little behind) is still correlated. Not
/// behind what the last cycle could see whole ([`read_from`]): a catch-up
/// reads each row once.
const LOOKBACK_NS: u64 = 15_000_000_000;
/// Records one cycle takes at most; the rest waits for the next, so memory
/// stays bounded after a long outage.
const MAX_RECORDS: usize = 100_000;
/// Links first seen this long before the watermark still count as new: a
/// link row is stamped when its batch starts, its feed rows a little later.
const LINK_SLACK_NS: u64 = 60_000_000_000;
/// A cycle that read this many records is followed at once.
const BACKLOG: usize = 10_000;
/// Root keys one record may count for.
const MAX_ROOTS: usize = 100;

#[derive(Debug, Clone, Copy)]
pub struct CorrelatorSettings {
    /// Time between cycles; also how late an open breach may be noticed.
    pub interval: Duration,
    /// How far back a late link re-resolves records, and how long instances
    /// are kept in memory.
    pub horizon: Duration,
    /// Feed rows younger than this are left for the next cycle, so that a
    /// write in flight is read whole.
    pub settle: Duration,
    /// Instance rows a start reads and evaluates at once: the horizon's
    /// instances come back one share of the roots at a time, so a start
    /// after a plant's day holds one share's rows, not the day's.
    pub start_share_rows: u64,
    /// Which instances this correlator owns: all (`0/1`) or those whose
    /// root key hashes to K of N.
    pub partition: Partition,
}

impl Default for CorrelatorSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15),
            horizon: Duration::from_secs(7 * 86_400),
            settle: Duration::from_secs(2),
            start_share_rows: 100_000,
            partition: Partition::WHOLE,
        }
    }
}

/// What one cycle did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CycleReport {
    pub records: usize,
    pub steps_written: usize,
    pub instances_written: usize,
    pub breaches_written: usize,
    pub watermark_ns: u64,
}

/// A record that reached a stage, before its root keys are known.
struct Candidate {
    process: usize,
    stage: usize,
    record: Arc<FeedRecord>,
}

pub struct Correlator {
    store: Store,
    processes: Arc<Processes>,
    keys: Arc<KeyTypes>,
    settings: CorrelatorSettings,
    metrics: Arc<CorrelatorMetrics>,
    watermark: u64,
    /// Feed rows taken that the next cycle may read again (from
    /// [`read_from`]: up to `LOOKBACK_NS` before the watermark), by
    /// reference, with their ingestion time.
    /// (A hash of the reference: 16 bytes an entry, where a feed read of a
    /// busy plant's 15 s holds hundreds of thousands.)
    recent: HashMap<u64, u64>,
    /// What the last cycle that moved the watermark aimed to read up to
    /// (`now - settle`); see [`read_from`].
    last_read_ns: Option<u64>,
    /// (kind, system, name) -> (process, stage) it reaches.
    matchers: HashMap<(RecordKind, String, String), Vec<(usize, usize)>>,
    /// The instances in flight, with what was last written of each.
    instances: Instances,
    /// Running SLAs' due times, earliest first; a set, so evaluating an
    /// instance again does not add its deadline twice.
    deadlines: BTreeSet<(u64, usize, Root)>,
    /// The keys of records that reach a root only through links.
    walking: WalkingKeys,
    /// How much ingestion time the next feed read covers.
    window_ns: u64,
    /// The feed is dropped up to here.
    pruned_to: u64,
    /// Minutes of the process rollups to recompute.
    dirt: rollups::Dirt,
    /// This partition's watermark name in `correlator_state`.
    state_name: String,
}

/// A record reference's hash, for `recent`. Within one process only; a
/// collision would skip a record, at 64 bits about 1 in 10^13 per cycle.
fn ref_hash(record_ref: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    record_ref.hash(&mut h);
    h.finish()
}

/// Where a cycle starts reading the feed, given the watermark and what the
/// last cycle (which read everything up to the watermark) aimed to read
/// up to, `now - settle` when it began: back `LOOKBACK_NS` from the
/// watermark, for writes that became visible late; but never before what
/// that cycle could see whole, since a row stamped more than `settle +
/// LOOKBACK_NS` before it began was visible by then. At the live edge
/// that is the whole lookback; in a catch-up, whose watermark is far
/// behind, none: each row is read once, not again in the next seven cycles
/// (15 s of a plant's day is hundreds of thousands of rows). After a start,
/// the whole lookback.
fn read_from(watermark: u64, last_read_ns: Option<u64>) -> u64 {
    let lookback = watermark.saturating_sub(LOOKBACK_NS);
    match last_read_ns {
        Some(read) => lookback.max(watermark.min(read.saturating_sub(LOOKBACK_NS))),
        None => lookback,
    }
}

fn horizon_start(now: u64, horizon: Duration) -> u64 {
    now.saturating_sub(horizon.as_nanos() as u64)
}

impl Correlator {
    fn process_index(&self, id: &str) -> Option<usize> {
        self.processes.list.iter().position(|p| p.id == id)
    }

    /// Applies stored first stage times; another partition's roots are
    /// skipped.
    fn apply_firsts(&mut self, firsts: Vec<store::correlation::StageFirst>) {
        for f in firsts {
            if !self.settings.partition.owns(&f.root_value) {
                continue;
            }
            let Some(p) = self.process_index(&f.process_id) else {
                continue;
            };
            let Some(s) = self.processes.list[p].stage_index(&f.stage_id) else {
                continue;
            };
            let stages = self.processes.list[p].stages.len();
            self.instances
                .hold(p, &f.root_value, stages)
                .instance
                .hit(s, f.time_ns, f.failed != 0);
            self.instances.name_plant(p, &f.root_value, &f.plant);
        }
    }

    /// The steps that change a stage's first time or failure, or name the
    /// first plant of an instance that has none, beyond what the held
    /// instances know (what is stored, with the instances loaded), each
    /// judged after the ones before it.
    fn changing_steps(&self, steps: &[Step]) -> Vec<Step> {
        let mut seen: HashMap<(usize, &str, usize), StageHit> = HashMap::new();
        let mut planted: HashSet<(usize, &str)> = HashSet::new();
        let mut out = Vec::new();
        for s in steps {
            let p = self.process_index(&s.process_id).expect("known process");
            let stage = self.processes.list[p]
                .stage_index(&s.stage_id)
                .expect("known stage");
            let key = (p, s.root_value.as_str(), stage);
            let known = seen.get(&key).copied().or_else(|| {
                self.instances
                    .get(p, &s.root_value)
                    .and_then(|h| h.instance.hit_of(stage))
            });
            let next = StageHit::merged(known, s.time_ns, s.failed);
            // An instance's plant is read back from its steps (the first
            // plant one named): the step that brings it is kept.
            let names_plant = !s.plant.is_empty()
                && !planted.contains(&(p, s.root_value.as_str()))
                && self
                    .instances
                    .get(p, &s.root_value)
                    .is_none_or(|h| h.plant == 0);
            if known != Some(next) || names_plant {
                seen.insert(key, next);
                if !s.plant.is_empty() {
                    planted.insert((p, s.root_value.as_str()));
                }
                out.push(s.clone());
            }
        }
        out
    }

    /// Runs a cycle every interval until `shutdown`. Cycles start at a fixed
    /// rate, not after a fixed pause; one that read a backlog is followed at
    /// once, so the lag stays near one cycle's work while the feed is busy.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let started = std::time::Instant::now();
            let mut pause = self.settings.interval.saturating_sub(started.elapsed());
            // A shutdown does not wait for the cycle: one can read a long
            // backlog, and dropping it half-way is safe (the watermark moves
            // only at its end, and a rerun writes nothing twice).
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                outcome = self.cycle(now_ns()) => outcome,
            };
            match outcome {
                Ok(report) => {
                    if report.records > 0 || report.breaches_written > 0 {
                        tracing::debug!(?report, "correlator cycle");
                    }
                    pause = if report.records >= BACKLOG {
                        Duration::ZERO
                    } else {
                        self.settings.interval.saturating_sub(started.elapsed())
                    };
                }
                Err(e) => {
                    tracing::warn!(error = %e, "correlator cycle failed; retrying next interval")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One cycle at `now`: read the feed, write steps, evaluate, advance.
    pub async fn cycle(&mut self, now: u64) -> Result<CycleReport, StoreError> {
        let mut upto = now.saturating_sub(self.settings.settle.as_nanos() as u64);
        let start_watermark = self.watermark;
        let mut records: Vec<Arc<FeedRecord>> = Vec::new();
        let mut cursor = (read_from(start_watermark, self.last_read_ns), String::new());
        // Each read covers a window of ingestion time after the cursor, not
        // everything up to `upto`: 18.16 sorts every row a query matches
        // before its LIMIT, so a read's cost must be bounded by its window.
        // The window adapts to the feed's rate so that reads stay near a
        // page.
        loop {
            let hi = upto.min(cursor.0.saturating_add(self.window_ns));
            let page = self
                .store
                .feed_page((cursor.0, &cursor.1), hi, PAGE)
                .await?;
            let full = page.len() == PAGE;
            let thin = page.len() < PAGE / 4;
            if full {
                let last = page.last().expect("a full page has rows");
                cursor = (last.ingested_ns, last.record_ref.clone());
                self.window_ns = (self.window_ns / 2).max(MIN_WINDOW_NS);
            } else if page.is_empty() && hi < upto {
                // A gap: step to the next row there is, if any.
                match self.store.feed_next_after(hi, upto).await? {
                    Some(next) => cursor = (next - 1, char::MAX.to_string()),
                    None => cursor = (upto, char::MAX.to_string()),
                }
            } else {
                // Everything up to `hi` is read.
                cursor = (hi, char::MAX.to_string());
                if thin {
                    self.window_ns = (self.window_ns * 2).min(MAX_WINDOW_NS);
                }
            }
            records.extend(
                page.into_iter()
                    .filter(|r| !self.recent.contains_key(&ref_hash(&r.record_ref)))
                    .map(Arc::new),
            );
            if !full && cursor.0 >= upto {
                break;
            }
            if records.len() >= MAX_RECORDS {
                // The rest next cycle: this one ends where it stopped reading.
                upto = cursor.0;
                break;
            }
        }
        let mut report = CycleReport {
            records: records.len(),
            ..Default::default()
        };

        let mut candidates = self.candidates(&records);
        // This stretch's walking records (they reach a stage but name no
        // root key), each once: stored below, for links that come later.
        let walking: Vec<Arc<FeedRecord>> = {
            let mut refs = HashSet::new();
            candidates
                .iter()
                .filter(|c| {
                    let root_type = &self.processes.list[c.process].key_type;
                    !c.record.keys.iter().any(|k| &k.key_type == root_type)
                })
                .filter(|c| refs.insert(c.record.record_ref.as_str()))
                .map(|c| c.record.clone())
                .collect()
        };
        // Links first seen in this stretch of the feed re-resolve the records
        // of the horizon that carry their keys.
        // Only a link touching a key of a walking record can change a root:
        // the others (a new trace's order and customer) are not even looked up.
        let mut pairs: BTreeSet<(BusinessKey, BusinessKey)> = BTreeSet::new();
        for r in &records {
            if r.keys.len() > 1 && r.keys.iter().any(|k| self.walking.may_contain(k)) {
                pairs.extend(key_links(&r.keys).into_iter().filter(|(a, b)| {
                    a < b && (self.walking.may_contain(a) || self.walking.may_contain(b))
                }));
            }
        }
        if !pairs.is_empty() {
            let pairs: Vec<_> = pairs.into_iter().collect();
            let first = self.store.links_first_ingested(&pairs).await?;
            // Per root type, the keys whose records may now walk through a
            // new link to a root: x of (x, y) when y lies between x and the
            // root type's rank. Records that name a key of the root type
            // themselves never walk, so they are not read again.
            let rank = |k: &BusinessKey| self.keys.rank(&k.key_type).unwrap_or(u8::MAX);
            let root_types: BTreeSet<&str> = self
                .processes
                .list
                .iter()
                .map(|p| p.key_type.as_str())
                .collect();
            let mut affected: BTreeMap<&str, BTreeSet<BusinessKey>> = BTreeMap::new();
            for (a, b) in &pairs {
                let new = first
                    .get(&(a.clone(), b.clone()))
                    .is_none_or(|ns| *ns > start_watermark.saturating_sub(LINK_SLACK_NS));
                if !new {
                    continue;
                }
                for root_type in &root_types {
                    let target = self.keys.rank(root_type).unwrap_or(u8::MAX);
                    for (x, y) in [(a, b), (b, a)] {
                        let (rx, ry) = (rank(x), rank(y));
                        let through = (rx > ry && ry >= target) || (rx < ry && ry <= target);
                        if through && x.key_type != *root_type && self.walking.may_contain(x) {
                            affected.entry(root_type).or_default().insert(x.clone());
                        }
                    }
                }
            }
            let since = horizon_start(now, self.settings.horizon);
            for (root_type, keys) in affected {
                let keys: Vec<BusinessKey> = keys.into_iter().collect();
                let older: Vec<Arc<FeedRecord>> = self
                    .store
                    .walks_with_keys(&keys, since, root_type)
                    .await?
                    .into_iter()
                    .map(Arc::new)
                    .collect();
                candidates.extend(
                    self.candidates(&older)
                        .into_iter()
                        .filter(|c| self.processes.list[c.process].key_type == root_type),
                );
            }
        }

        let mut steps = self.steps_for(candidates, now).await?;
        // Another partition's roots are its own: their steps, instances and
        // breaches are written there.
        steps.retain(|s| self.settings.partition.owns(&s.root_value));
        // Instances we have not seen since start: load what is stored of
        // them first, so that what follows knows every stage's stored first.
        // Every resolved step counts below, not only the new ones: a cycle
        // retried after a failure finds its steps stored but must still
        // apply them.
        let mut touched: BTreeSet<(usize, String)> = BTreeSet::new();
        let mut missing: Vec<(String, String)> = Vec::new();
        for s in &steps {
            let p = self
                .process_index(&s.process_id)
                .expect("steps name known processes");
            let key = (p, s.root_value.clone());
            if !self.instances.contains(p, &s.root_value) && !touched.contains(&key) {
                missing.push((s.process_id.clone(), s.root_value.clone()));
            }
            touched.insert(key);
        }
        if !missing.is_empty() {
            // Older than the horizon, or unseen since start: what is stored
            // of them, so that their rows are diffed against the truth (an
            // old open breach can still be closed or cleared). A root with
            // no stored step has never been evaluated: no instance or breach
            // row to diff against, so none is read (most roots, while the
            // feed brings new orders).
            let firsts = self.store.stage_firsts(0, Some(&missing)).await?;
            let older: BTreeSet<(String, String)> = firsts
                .iter()
                .map(|f| (f.process_id.clone(), f.root_value.clone()))
                .collect();
            let older: Vec<(String, String)> = older.into_iter().collect();
            // All read before any is held: a read that fails leaves these
            // roots unheld, so the cycle run again reads them whole (held
            // with their steps but not their rows, a root would never be
            // read again, and its stored breaches never cleared).
            let (rows, breaches) = if older.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                tokio::try_join!(
                    self.store.instances_of(&older),
                    self.store.breaches_of(&older),
                )?
            };
            self.apply_firsts(firsts);
            self.remember(rows, breaches);
        }
        // Only a step that moves its stage's first time earlier or marks it
        // failed is written: readers take each stage's earliest time and
        // whether any step failed, and every instance a step touches is
        // held by now with what is stored of it. So a redelivered record, a
        // cycle read again, or a second record reaching a stage writes
        // nothing, and no lookup of stored steps is needed.
        let new_steps = self.changing_steps(&steps);
        self.store.write_steps(&new_steps).await?;
        let walking: Vec<&FeedRecord> = walking.iter().map(Arc::as_ref).collect();
        self.store.write_walks(&walking).await?;
        for r in &walking {
            for k in &r.keys {
                self.walking.insert(k, r.time_ns);
            }
        }
        report.steps_written = new_steps.len();
        CorrelatorMetrics::add(&self.metrics.steps_written, new_steps.len());
        CorrelatorMetrics::add(&self.metrics.records, records.len());

        for s in &steps {
            let p = self.process_index(&s.process_id).expect("known process");
            let def = &self.processes.list[p];
            let stage = def.stage_index(&s.stage_id).expect("known stage");
            self.instances
                .hold(p, &s.root_value, def.stages.len())
                .instance
                .hit(stage, s.time_ns, s.failed);
            self.instances.name_plant(p, &s.root_value, &s.plant);
        }
        // Deadlines that passed: their instances are evaluated too.
        while let Some((due, _, _)) = self.deadlines.first() {
            if *due > now {
                break;
            }
            let (due, p, root) = self.deadlines.pop_first().expect("looked at");
            if let Some(held) = self.instances.get_mut(p, &root) {
                if held.due == Some(due) {
                    held.due = None;
                }
            }
            touched.insert((p, root.to_string()));
        }
        let touched: Vec<(usize, String)> = touched.into_iter().collect();
        let (instances, breaches, moves) = self.evaluate(touched.clone(), now);
        report.instances_written = instances.len();
        report.breaches_written = breaches.len();
        if let Err(e) = self
            .write_evaluations(&instances, &breaches, &moves, now)
            .await
        {
            // Evaluate these again next cycle.
            for (p, root) in touched {
                if let Some(root) = self.instances.root(p, &root) {
                    self.deadlines.insert((now, p, root));
                }
            }
            return Err(e);
        }
        self.dirt.note(&instances, &breaches, &moves, now);
        self.remember(instances, breaches);
        // At once: a reader who saw the breach rows sees them counted.
        self.publish_open_breaches();
        self.evict_settled(&touched, now);
        self.metrics.instances_held.store(
            self.instances.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );

        for r in &records {
            self.recent.insert(ref_hash(&r.record_ref), r.ingested_ns);
        }
        // What the next cycle may read again: it starts at `read_from`.
        // This cycle read up to `now - settle` (or stopped before it):
        // rows stamped `LOOKBACK_NS` before that were visible to it.
        let next_read_ns = Some(now.saturating_sub(self.settings.settle.as_nanos() as u64));
        let keep_from = read_from(upto, next_read_ns);
        self.recent.retain(|_, ns| *ns >= keep_from);
        self.walking
            .forget_before(horizon_start(now, self.settings.horizon));
        self.store.save_watermark(&self.state_name, upto).await?;
        self.watermark = upto;
        self.last_read_ns = next_read_ns;
        // What is read for good goes: the feed keeps only the last minutes,
        // and with several partitions only what the slowest one (or one
        // that stopped) has read.
        let slowest = self.partitions_read(now).await?.unwrap_or(upto);
        let read_for_good = slowest.saturating_sub(LOOKBACK_NS + FEED_KEEP_NS);
        if read_for_good > self.pruned_to + FEED_KEEP_NS {
            match self.store.prune_feed(read_for_good).await {
                Ok(_) => self.pruned_to = read_for_good,
                Err(e) => {
                    tracing::warn!(error = %e, "dropping read feed partitions failed; retrying later")
                }
            }
        }
        report.watermark_ns = upto;
        self.metrics.lag_ns.store(
            now.saturating_sub(upto),
            std::sync::atomic::Ordering::Relaxed,
        );
        self.refresh_rollups(report.records >= BACKLOG, now).await;
        Ok(report)
    }

    /// With several partitions: every partition's stored watermark, its
    /// lag published (`throughline_correlator_lag_seconds{partition}`,
    /// so a partition that stopped shows from the others' `/metrics`) and
    /// whether it still writes it (`throughline_correlator_partition_up`,
    /// `store::correlation::partitions`),
    /// and the lowest (0 while one has never saved one). `None` for the
    /// single correlator.
    async fn partitions_read(&self, now: u64) -> Result<Option<u64>, StoreError> {
        let me = self.settings.partition;
        if !me.is_shared() {
            return Ok(None);
        }
        let stored = self
            .store
            .correlator_partitions(now, Some(me.count()))
            .await?;
        let mut lowest = u64::MAX;
        let mut lags = BTreeMap::new();
        let mut up = BTreeMap::new();
        for p in stored {
            let mine = p.index == me.index();
            let wm = if mine {
                Some(self.watermark)
            } else {
                p.watermark_ns
            };
            lowest = lowest.min(wm.unwrap_or(0));
            // One never started has no lag to show: it is absent.
            if let Some(wm) = wm {
                lags.insert(p.partition.clone(), now.saturating_sub(wm));
            }
            up.insert(p.partition, mine || !p.down);
        }
        *self.metrics.partition_lags.lock().expect("metrics lock") = lags;
        *self.metrics.partition_up.lock().expect("metrics lock") = up;
        Ok(Some(lowest))
    }

    /// Forgets the instances among `which` that nothing but a new record
    /// can change: no SLA running (no deadline to wait for) and none open
    /// (the open breaches are counted from memory). A record that reaches
    /// one later reads it back from the store. So memory holds the
    /// instances in flight, not every instance of the horizon.
    fn evict_settled(&mut self, which: &[(usize, String)], now: u64) {
        for (p, root) in which {
            let Some(held) = self.instances.get(*p, root) else {
                continue;
            };
            let def = &self.processes.list[*p];
            let settled = evaluate(def, &held.instance, now)
                .slas
                .iter()
                .all(|s| !matches!(s, SlaState::Running { .. } | SlaState::Open { .. }));
            if settled {
                self.instances.remove(*p, root);
            }
        }
    }
}

#[cfg(test)]
mod read_from_tests {
    use super::{read_from, LOOKBACK_NS};

    const S: u64 = 1_000_000_000;

    #[test]
    fn the_live_edge_reads_the_whole_lookback_again() {
        // The last cycle read up to `now - settle` and got there.
        let aimed = 1_000_000 * S - 2 * S;
        let watermark = aimed;
        assert_eq!(read_from(watermark, None), watermark - LOOKBACK_NS);
        assert_eq!(read_from(watermark, Some(aimed)), watermark - LOOKBACK_NS);
    }

    #[test]
    fn a_catch_up_reads_each_row_once() {
        let aimed = 1_000_000 * S;
        // It stopped an hour short, at its record limit.
        let watermark = aimed - 3_600 * S;
        assert_eq!(read_from(watermark, Some(aimed)), watermark);
        // Nearing the live edge: back to what the last cycle could miss.
        let watermark = aimed - 10 * S;
        assert_eq!(read_from(watermark, Some(aimed)), aimed - LOOKBACK_NS);
    }
}
