//! The retention worker: a pass at start and then every interval, each
//! dropping the partitions `store::retention` plans (past each class's
//! limit, then the disk guard's), logged and counted by table. It runs
//! once per deployment, in the process that runs the correlator (`up`,
//! or `throughline correlator`); two at once would only race to drop the
//! same partitions, which is harmless.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use store::retention::{Plan, Reason, Retention};
use store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

/// What the worker enforces and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    pub policy: Retention,
    /// Between passes.
    pub interval: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            policy: Retention::default(),
            interval: Duration::from_secs(3600),
        }
    }
}

/// Partitions dropped, and closed days merged, by table, since the process
/// started.
#[derive(Debug, Default)]
pub struct RetentionMetrics {
    dropped: Mutex<BTreeMap<String, u64>>,
    compacted: Mutex<BTreeMap<String, u64>>,
}

/// A counter family by table in the Prometheus text format (table names
/// are ours: nothing to escape).
fn family(out: &mut String, name: &str, help: &str, counts: &Mutex<BTreeMap<String, u64>>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (table, n) in counts.lock().expect("metrics lock").iter() {
        let _ = writeln!(out, "{name}{{table=\"{table}\"}} {n}");
    }
}

/// One more for `table` in `counts`.
fn bump(counts: &Mutex<BTreeMap<String, u64>>, table: &str) {
    *counts
        .lock()
        .expect("metrics lock")
        .entry(table.to_string())
        .or_default() += 1;
}

impl RetentionMetrics {
    fn count(&self, table: &str) {
        bump(&self.dropped, table);
    }

    fn count_compacted(&self, table: &str) {
        bump(&self.compacted, table);
    }

    /// Dropped partitions of `table` so far.
    pub fn dropped(&self, table: &str) -> u64 {
        self.dropped
            .lock()
            .expect("metrics lock")
            .get(table)
            .copied()
            .unwrap_or(0)
    }

    /// `throughline_retention_dropped_partitions_total{table}` and
    /// `throughline_retention_compacted_partitions_total{table}` in the
    /// Prometheus text format.
    pub fn render(&self, out: &mut String) {
        family(
            out,
            "throughline_retention_dropped_partitions_total",
            "Partitions dropped by retention (age or the disk guard).",
            &self.dropped,
        );
        family(
            out,
            "throughline_retention_compacted_partitions_total",
            "Closed day partitions merged into one part.",
            &self.compacted,
        );
    }
}

/// One pass at `now_s` (Unix seconds): each dropped partition logged (the
/// disk guard's as warnings) and counted.
pub async fn pass(
    store: &Store,
    policy: &Retention,
    metrics: &RetentionMetrics,
    now_s: u64,
) -> Result<Plan, StoreError> {
    let plan = store
        .retention_pass(policy, now_s, |drop| {
            metrics.count(&drop.table);
            match drop.reason {
                Reason::Age => tracing::info!(
                    table = %drop.table,
                    partition = %drop.partition_id,
                    rows = drop.rows,
                    bytes = drop.bytes,
                    "retention: partition past its class's limit dropped"
                ),
                Reason::Disk => tracing::warn!(
                    table = %drop.table,
                    partition = %drop.partition_id,
                    rows = drop.rows,
                    bytes = drop.bytes,
                    max_disk = policy.max_disk,
                    "retention: the database is over max_disk; its oldest partition of the largest class dropped"
                ),
            }
        })
        .await?;
    if plan.still_over {
        tracing::warn!(
            bytes = plan.total_after,
            max_disk = policy.max_disk,
            "retention: the database stays over max_disk: only partitions holding the present are left, which are never dropped; raise max_disk"
        );
    }
    Ok(plan)
}

/// Closed day partitions merged per pass: each rewrites a day of a table
/// (seconds for a plant's day), so a pass after a long stop catches up over
/// a few hours instead of holding a core for all of it at once.
const COMPACTIONS_PER_PASS: usize = 4;

/// The compaction after a pass at `now_s`: each merged partition logged
/// and counted; a failure logged (the next pass tries again).
async fn compact(store: &Store, metrics: &RetentionMetrics, now_s: u64) {
    let result = store
        .compact_closed_days(now_s, COMPACTIONS_PER_PASS, |c| {
            metrics.count_compacted(&c.table);
            tracing::info!(
                table = %c.table,
                partition = %c.partition_id,
                parts = c.parts,
                rows = c.rows,
                "retention: a closed day merged into one part"
            );
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "merging closed days failed; trying again next interval");
    }
}

/// Passes until `shutdown`: one now, then one every `settings.interval`.
/// A failed pass is logged and tried again at the next interval.
pub async fn run(
    store: Store,
    settings: RetentionSettings,
    metrics: Arc<RetentionMetrics>,
    shutdown: CancellationToken,
) {
    loop {
        let now_s = domain::now_ns() / 1_000_000_000;
        match pass(&store, &settings.policy, &metrics, now_s).await {
            Ok(plan) if !plan.drops.is_empty() => tracing::info!(
                dropped = plan.drops.len(),
                bytes_before = plan.total_before,
                bytes_after = plan.total_after,
                "retention pass"
            ),
            Ok(_) => tracing::debug!("retention pass: nothing to drop"),
            Err(e) => {
                tracing::warn!(error = %e, "retention pass failed; trying again next interval")
            }
        }
        // What is kept of closed days is merged, for the lookups
        // (`store::compaction`); a shutdown does not wait for it.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = compact(&store, &metrics, now_s) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(settings.interval) => {}
        }
    }
}
