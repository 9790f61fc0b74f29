//! `GET /api/v1/processes/{id}/slos`: each objective of a process (its
//! `[[slos]]`) judged now: the SLI and the error budget left over its
//! window, and the burn rate over each window of the SRE workbook's
//! multi-window alerts, with whether each alert's two windows both burn
//! faster than its rate. Read from the process rollups only
//! (`Store::process_rollups`, one read per distinct window: hours and
//! minutes x processes), computed by `domain::process::slo`.
//!
//! The rollups count instances by minute of start, so every window is
//! shifted back by the SLO's lag (`SloDef::starts`: the SLA's or stage
//! latency's `within`, none for events): the window `[now - w, now]` holds
//! the instances started in `[now - w - within, now - within]`, all judged
//! by now (met or breached), as of the correlator's last look. A stage latency
//! is judged from the rollups' duration cells, a cell the threshold cuts
//! counting as bad (`domain::process::slo`).

use std::collections::BTreeMap;

use domain::process::duration;
use domain::process::slo::{Budget, Judged, SloTarget, BURN_ALERTS};
use domain::process::SloDef;
use futures_util::future::try_join_all;
use serde::Serialize;

use super::Reads;
use crate::error::AppError;

/// The burn rate over one window.
#[derive(Debug, Clone, Serialize)]
pub struct BurnRate {
    pub window: String,
    pub good: u64,
    pub bad: u64,
    /// Bad share over the share the objective allows.
    pub burn_rate: f64,
}

/// One multi-window burn-rate alert: it holds when both windows burn
/// faster than `burn_rate`, the rate that spends `budget_percent` of the
/// error budget within the long window (`budget_percent / 100 x the SLO's
/// window / long window`).
#[derive(Debug, Clone, Serialize)]
pub struct BurnAlert {
    /// `page` or `ticket`.
    pub severity: String,
    /// Of the error budget, the percent spent within the long window.
    pub budget_percent: f64,
    pub burn_rate: f64,
    pub long_window: String,
    pub short_window: String,
    pub holds: bool,
}

/// The budget left at the end of one step of the window.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetPoint {
    pub at: String,
    pub remaining_percent: f64,
}

/// Steps of a burn-down: one rollup read each, the window's rows in all.
const BURN_DOWN_STEPS: u64 = 14;
const MINUTE_NS: u64 = 60_000_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct SloView {
    pub id: String,
    pub name: String,
    /// The SLA it judges instances by, if it is on an SLA.
    pub sla: Option<String>,
    /// The stage latency it judges instances by, if on one: from and to
    /// stage ids and the threshold (`15m`).
    pub from_stage: Option<String>,
    pub to_stage: Option<String>,
    pub within: Option<String>,
    /// The system (and event type) whose events it counts, if on events.
    pub system: Option<String>,
    pub event_type: Option<String>,
    /// Percent.
    pub objective: f64,
    pub window: String,
    /// How far back every window ends (`15m`): the SLA's or stage
    /// latency's `within`, by when each instance started in it is judged;
    /// `None` for events, judged at once.
    pub lag: Option<String>,
    /// The window in seconds, for `/metrics`.
    #[serde(skip)]
    pub window_seconds: u64,
    pub good: u64,
    pub bad: u64,
    /// Good of judged, percent; `None` before any was judged.
    pub sli_percent: Option<f64>,
    /// Bad instances the objective allows among those judged.
    pub allowed_bad: f64,
    /// The budget left, percent: 100 untouched, 0 spent, below 0 overspent.
    pub budget_remaining_percent: f64,
    /// The same as a ratio (1 untouched).
    pub budget_remaining: f64,
    pub burn_rates: Vec<BurnRate>,
    pub alerts: Vec<BurnAlert>,
    /// The budget left after each of 14 steps of the window, oldest first
    /// (only when asked for: `burn_down=true`, and on the SLO page).
    pub burn_down: Vec<BudgetPoint>,
}

/// The budget left after each step of `slo`'s window (shifted back by its
/// lag, so each point is at the end of the starts it counts): the instances
/// started in each step (disjoint whole minutes, one read each), added up.
async fn burn_down(
    state: &Reads,
    process: &str,
    slo: &domain::process::SloDef,
    now_ns: u64,
) -> Result<Vec<BudgetPoint>, AppError> {
    // Starts up to now - lag: all of them judged by now.
    let (_, now_ns) = slo.starts(0, now_ns);
    let step = (slo.window_ns / BURN_DOWN_STEPS / MINUTE_NS).max(1) * MINUTE_NS;
    let start = now_ns.saturating_sub(step * BURN_DOWN_STEPS) / MINUTE_NS * MINUTE_NS;
    let ends: Vec<u64> = (1..=BURN_DOWN_STEPS)
        .map(|k| {
            if k == BURN_DOWN_STEPS {
                now_ns
            } else {
                start + k * step - 1
            }
        })
        .collect();
    let reads = (0..BURN_DOWN_STEPS as usize)
        .map(|k| judge(state, process, slo, start + k as u64 * step, ends[k]));
    let mut total = Judged::default();
    let mut points = Vec::new();
    for (k, j) in try_join_all(reads).await?.into_iter().enumerate() {
        total.good += j.good;
        total.bad += j.bad;
        points.push(BudgetPoint {
            at: domain::time::rfc3339(ends[k]),
            remaining_percent: Budget::of(slo, total).remaining * 100.0,
        });
    }
    Ok(points)
}

/// `slo`'s good and bad over `[from_ns, to_ns]`: its process's rollups for
/// an SLO on an SLA, the event rollups for one on events.
async fn judge(
    state: &Reads,
    process: &str,
    slo: &SloDef,
    from_ns: u64,
    to_ns: u64,
) -> Result<Judged, AppError> {
    Ok(match &slo.target {
        SloTarget::Sla(_) | SloTarget::Latency { .. } => {
            let mut by_process = state.store.process_rollups(from_ns, to_ns).await?;
            Judged::of(slo, &by_process.remove(process).unwrap_or_default())
        }
        SloTarget::Events { system, event_type } => {
            let (events, bad) = state
                .store
                .event_outcome_counts(system, event_type.as_deref(), from_ns, to_ns)
                .await?;
            Judged::events(events, bad)
        }
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Slos {
    pub process: String,
    pub at: String,
    pub slos: Vec<SloView>,
}

/// Every objective of process `id`, judged at `now_ns`; with
/// `with_burn_down`, each one's burn-down too (14 more reads per SLO).
pub async fn slos(
    state: &Reads,
    id: &str,
    now_ns: u64,
    with_burn_down: bool,
) -> Result<Slos, AppError> {
    let def = super::processes::process(state, id)?;
    // Each distinct window once: the objectives' and the alerts'.
    let mut windows: Vec<u64> = def.slos.iter().map(|s| s.window_ns).collect();
    for (_, _, long, short) in BURN_ALERTS {
        windows.extend([long, short]);
    }
    windows.sort_unstable();
    windows.dedup();
    // The process rollups of each distinct range of starts (a window
    // shifted back by an SLO's lag), once for all its SLOs.
    let mut ranges: Vec<(u64, u64)> = def
        .slos
        .iter()
        .filter(|s| !matches!(s.target, SloTarget::Events { .. }))
        .flat_map(|s| windows.iter().map(|w| s.starts(*w, now_ns)))
        .collect();
    ranges.sort_unstable();
    ranges.dedup();
    let reads = ranges
        .iter()
        .map(|(from, to)| state.store.process_rollups(*from, *to));
    let rollups: BTreeMap<(u64, u64), _> = ranges
        .iter()
        .copied()
        .zip(
            try_join_all(reads)
                .await?
                .into_iter()
                .map(|mut by_process| by_process.remove(&def.id).unwrap_or_default()),
        )
        .collect();
    // SLOs on events: each window from the event rollups.
    let mut event_counts: BTreeMap<(usize, u64), Judged> = BTreeMap::new();
    for (i, slo) in def.slos.iter().enumerate() {
        if matches!(slo.target, SloTarget::Events { .. }) {
            let reads = windows.iter().map(|w| {
                let (from, to) = slo.starts(*w, now_ns);
                judge(state, &def.id, slo, from, to)
            });
            for (w, j) in windows.iter().zip(try_join_all(reads).await?) {
                event_counts.insert((i, *w), j);
            }
        }
    }
    let mut downs = Vec::new();
    for slo in &def.slos {
        downs.push(if with_burn_down {
            burn_down(state, &def.id, slo, now_ns).await?
        } else {
            Vec::new()
        });
    }
    let slos = def
        .slos
        .iter()
        .zip(downs)
        .enumerate()
        .map(|(i, (slo, burn_down))| {
            let judged = |w: u64| match event_counts.get(&(i, w)) {
                Some(j) => *j,
                None => Judged::of(slo, &rollups[&slo.starts(w, now_ns)]),
            };
            let whole = judged(slo.window_ns);
            let budget = Budget::of(slo, whole);
            let mut burn_windows: Vec<u64> = BURN_ALERTS
                .iter()
                .flat_map(|(_, _, long, short)| [*short, *long])
                .collect();
            burn_windows.sort_unstable();
            burn_windows.dedup();
            SloView {
                id: slo.id.clone(),
                name: slo.name.clone(),
                sla: match &slo.target {
                    SloTarget::Sla(sla) => Some(sla.clone()),
                    _ => None,
                },
                from_stage: match &slo.target {
                    SloTarget::Latency { from, .. } => Some(from.clone()),
                    _ => None,
                },
                to_stage: match &slo.target {
                    SloTarget::Latency { to, .. } => Some(to.clone()),
                    _ => None,
                },
                within: match &slo.target {
                    SloTarget::Latency { within_ns, .. } => Some(duration::format_ns(*within_ns)),
                    _ => None,
                },
                system: match &slo.target {
                    SloTarget::Events { system, .. } => Some(system.clone()),
                    _ => None,
                },
                event_type: match &slo.target {
                    SloTarget::Events { event_type, .. } => event_type.clone(),
                    _ => None,
                },
                objective: slo.objective,
                window: duration::format_ns(slo.window_ns),
                lag: (slo.lag_ns > 0).then(|| duration::format_ns(slo.lag_ns)),
                window_seconds: slo.window_ns / 1_000_000_000,
                good: whole.good,
                bad: whole.bad,
                sli_percent: whole.sli_percent(),
                allowed_bad: budget.allowed_bad,
                budget_remaining_percent: budget.remaining * 100.0,
                budget_remaining: budget.remaining,
                burn_rates: burn_windows
                    .iter()
                    .map(|w| {
                        let j = judged(*w);
                        BurnRate {
                            window: duration::format_ns(*w),
                            good: j.good,
                            bad: j.bad,
                            burn_rate: j.burn_rate(slo.objective),
                        }
                    })
                    .collect(),
                alerts: slo
                    .burn_alerts()
                    .into_iter()
                    .map(|(severity, budget_percent, rate, long, short)| BurnAlert {
                        severity: severity.to_string(),
                        budget_percent,
                        burn_rate: rate,
                        long_window: duration::format_ns(long),
                        short_window: duration::format_ns(short),
                        holds: judged(long).burn_rate(slo.objective) > rate
                            && judged(short).burn_rate(slo.objective) > rate,
                    })
                    .collect(),
                burn_down,
            }
        })
        .collect();
    Ok(Slos {
        process: def.id.clone(),
        at: domain::time::rfc3339(now_ns),
        slos,
    })
}
