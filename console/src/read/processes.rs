//! `GET /api/v1/processes`: health of every process over a range, and
//! `GET /api/v1/processes/{id}/instances`: its instances, one page at a time.

use std::collections::BTreeMap;

use domain::instance::{InstanceSummary, SlaState, Status};
use domain::now_ns;
use domain::process::duration;
use domain::process::ProcessDef;
use domain::quantile;
use serde::{Deserialize, Serialize};
use store::correlation::InstanceFilter;

use super::view::InstanceView;
use super::Reads;
use super::{cursor, time_range, view};
use crate::error::AppError;

/// Instances read for one summary at most; a longer range is cut, and says so.
const SUMMARY_ROWS: usize = 500_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeParams {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Nanoseconds as a JSON string (a JSON number loses precision past 2^53).
fn ns_string<S: serde::Serializer>(ns: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match ns {
        Some(ns) => s.serialize_str(&ns.to_string()),
        None => s.serialize_none(),
    }
}

/// p50 / p95 / p99 of a set of durations.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: usize,
    #[serde(serialize_with = "ns_string")]
    pub p50_ns: Option<u64>,
    #[serde(serialize_with = "ns_string")]
    pub p95_ns: Option<u64>,
    #[serde(serialize_with = "ns_string")]
    pub p99_ns: Option<u64>,
}

impl Percentiles {
    fn of(mut values: Vec<u64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_unstable();
        let at = |q: f64| quantile::at(&values, q);
        Percentiles {
            count: values.len(),
            p50_ns: at(0.50),
            p95_ns: at(0.95),
            p99_ns: at(0.99),
        }
    }
}

/// Upper bounds of the duration histogram's bins; a last bin takes the rest.
/// Steps a planner thinks in, from seconds to a week.
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

/// How many durations fell in each bin of [`HISTOGRAM_BOUNDS_NS`] (the last
/// count is for longer ones).
#[derive(Debug, Clone, Serialize)]
pub struct Histogram {
    pub upper_bounds: Vec<String>,
    pub counts: Vec<u64>,
}

impl Histogram {
    fn of(values: &[u64]) -> Self {
        let mut counts = vec![0u64; HISTOGRAM_BOUNDS_NS.len() + 1];
        for v in values {
            let bin = HISTOGRAM_BOUNDS_NS.partition_point(|b| b < v);
            counts[bin] += 1;
        }
        let mut upper_bounds: Vec<String> = HISTOGRAM_BOUNDS_NS
            .iter()
            .map(|b| duration::format_ns(*b))
            .collect();
        upper_bounds.push("+Inf".into());
        Histogram {
            upper_bounds,
            counts,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReach {
    pub id: String,
    pub name: String,
    pub system: String,
    pub reached: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstanceCounts {
    pub started: usize,
    pub in_flight: usize,
    pub stalled: usize,
    pub completed: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlaHealth {
    pub id: String,
    pub name: String,
    pub from: String,
    pub to: String,
    pub within: String,
    pub met: u64,
    pub breached: u64,
    pub compliance_percent: Option<f64>,
    pub open_breaches: u64,
    pub duration: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageDurations {
    pub from: String,
    pub to: String,
    pub duration: Percentiles,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Histogram>,
}

/// Starts and breaches (by due time) per equal bucket of the range.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    pub bucket_seconds: u64,
    pub starts: Vec<u64>,
    pub breaches: Vec<u64>,
}

/// One process's health over a range: what `/api/v1/processes` lists and
/// the overview and process pages draw.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessHealth {
    pub id: String,
    pub name: String,
    pub description: String,
    pub key: String,
    pub stages: Vec<StageReach>,
    pub instances: InstanceCounts,
    pub open_breaches: u64,
    /// Met over judged, across all its SLAs; `None` before any was judged.
    pub compliance_percent: Option<f64>,
    pub slas: Vec<SlaHealth>,
    pub stage_durations: Vec<StageDurations>,
    pub end_to_end: Percentiles,
    pub series: Series,
}

/// Every process's health over a range.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub from: String,
    pub to: String,
    pub processes: Vec<ProcessHealth>,
    /// More instances started in the range than one summary reads.
    pub truncated: bool,
}

/// Buckets of a sparkline over a range.
pub const SERIES_BUCKETS: u64 = 30;

fn durations(rows: &[&InstanceSummary], from: &str, to: &str) -> Vec<u64> {
    rows.iter()
        .filter_map(|r| r.stages.between(from, to))
        .collect()
}

struct Context<'a> {
    open: &'a BTreeMap<(String, String), u64>,
    breach_buckets: &'a BTreeMap<(String, u64), u64>,
    now: u64,
    from_ns: u64,
    bucket_ns: u64,
    histograms: bool,
}

fn summary(def: &ProcessDef, rows: &[&InstanceSummary], cx: &Context) -> ProcessHealth {
    let mut counts: BTreeMap<&str, usize> = Status::ALL.iter().map(|s| (*s, 0)).collect();
    for r in rows {
        *counts.entry(r.status.as_str()).or_default() += 1;
    }
    let slas: Vec<SlaHealth> = def
        .slas
        .iter()
        .map(|sla| {
            let (from, to) = (&def.stages[sla.from].id, &def.stages[sla.to].id);
            let (mut met, mut breached) = (0u64, 0u64);
            for r in rows {
                match r.stages.sla_state(def, sla, cx.now) {
                    SlaState::Met => met += 1,
                    SlaState::Open { .. } | SlaState::Closed { .. } => breached += 1,
                    SlaState::NotStarted | SlaState::Running { .. } => {}
                }
            }
            let judged = met + breached;
            SlaHealth {
                id: sla.id.clone(),
                name: sla.name.clone(),
                from: from.clone(),
                to: to.clone(),
                within: duration::format_ns(sla.within_ns),
                met,
                breached,
                compliance_percent: (judged > 0).then(|| (met as f64) * 100.0 / judged as f64),
                open_breaches: cx
                    .open
                    .get(&(def.id.clone(), sla.id.clone()))
                    .copied()
                    .unwrap_or(0),
                duration: Percentiles::of(durations(rows, from, to)),
            }
        })
        .collect();
    let (met, judged) = slas
        .iter()
        .fold((0, 0), |(m, j), s| (m + s.met, j + s.met + s.breached));
    let stage_durations = def
        .stages
        .windows(2)
        .map(|w| {
            let values = durations(rows, &w[0].id, &w[1].id);
            StageDurations {
                from: w[0].id.clone(),
                to: w[1].id.clone(),
                histogram: cx.histograms.then(|| Histogram::of(&values)),
                duration: Percentiles::of(values),
            }
        })
        .collect();
    let mut starts = vec![0u64; SERIES_BUCKETS as usize];
    for r in rows {
        let b = (r.start_ns.saturating_sub(cx.from_ns) / cx.bucket_ns).min(SERIES_BUCKETS - 1);
        starts[b as usize] += 1;
    }
    let breaches = (0..SERIES_BUCKETS)
        .map(|b| {
            cx.breach_buckets
                .get(&(def.id.clone(), b))
                .copied()
                .unwrap_or(0)
        })
        .collect();
    let first = &def.stages[0].id;
    let last = &def.stages[def.stages.len() - 1].id;
    ProcessHealth {
        id: def.id.clone(),
        name: def.name.clone(),
        description: def.description.clone(),
        key: def.key_type.clone(),
        stages: def
            .stages
            .iter()
            .map(|s| StageReach {
                id: s.id.clone(),
                name: s.name.clone(),
                system: s.system.clone(),
                reached: rows
                    .iter()
                    .filter(|r| r.stages.time_of(&s.id).is_some())
                    .count(),
            })
            .collect(),
        instances: InstanceCounts {
            started: rows.len(),
            in_flight: counts["in_flight"],
            stalled: counts["stalled"],
            completed: counts["completed"],
            failed: counts["failed"],
        },
        open_breaches: cx
            .open
            .iter()
            .filter(|((p, _), _)| p == &def.id)
            .map(|(_, n)| n)
            .sum::<u64>(),
        compliance_percent: (judged > 0).then(|| met as f64 * 100.0 / judged as f64),
        slas,
        stage_durations,
        end_to_end: Percentiles::of(durations(rows, first, last)),
        series: Series {
            bucket_seconds: cx.bucket_ns / 1_000_000_000,
            starts,
            breaches,
        },
    }
}

/// The health of the processes `only` names (all when `None`) over
/// `[from_ns, to_ns]`; with `histograms`, each stage pair's distribution too.
pub async fn health(
    state: &Reads,
    from_ns: u64,
    to_ns: u64,
    only: Option<&str>,
    histograms: bool,
) -> Result<Health, AppError> {
    let now = now_ns();
    let bucket_ns = ((to_ns - from_ns) / SERIES_BUCKETS).max(1);
    let (rows, open, buckets) = tokio::try_join!(
        state.store.instances_started(from_ns, to_ns, SUMMARY_ROWS),
        state.store.open_breach_counts(),
        state.store.breach_buckets(from_ns, to_ns, bucket_ns),
    )?;
    let truncated = rows.len() >= SUMMARY_ROWS;
    let open: BTreeMap<(String, String), u64> =
        open.into_iter().map(|(p, s, n)| ((p, s), n)).collect();
    let breach_buckets: BTreeMap<(String, u64), u64> = buckets
        .into_iter()
        .map(|b| ((b.group, b.bucket.min(SERIES_BUCKETS - 1)), b.count))
        .fold(BTreeMap::new(), |mut m, (k, n)| {
            *m.entry(k).or_default() += n;
            m
        });
    let cx = Context {
        open: &open,
        breach_buckets: &breach_buckets,
        now,
        from_ns,
        bucket_ns,
        histograms,
    };
    let processes = state
        .processes
        .list
        .iter()
        .filter(|def| only.is_none_or(|id| id == def.id))
        .map(|def| {
            let mine: Vec<&InstanceSummary> =
                rows.iter().filter(|r| r.process_id == def.id).collect();
            summary(def, &mine, &cx)
        })
        .collect();
    Ok(Health {
        from: domain::time::rfc3339(from_ns),
        to: domain::time::rfc3339(to_ns),
        processes,
        truncated,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceParams {
    pub status: Option<String>,
    pub key: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// One page of a process's instances.
#[derive(Debug, Serialize)]
pub struct InstancePage {
    pub process: String,
    pub instances: Vec<InstanceView>,
    pub next_cursor: Option<String>,
}

pub(crate) fn process<'a>(state: &'a Reads, id: &str) -> Result<&'a ProcessDef, AppError> {
    super::check_id("process", id)?;
    state.processes.get(id).ok_or_else(|| {
        let known: Vec<&str> = state.processes.list.iter().map(|p| p.id.as_str()).collect();
        AppError::NotFound(format!(
            "no process `{id}` is defined; defined: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// A page of the instances of process `id` that `params` selects.
pub async fn instances(
    state: &Reads,
    id: &str,
    params: InstanceParams,
) -> Result<InstancePage, AppError> {
    let def = process(state, id)?;
    let now = now_ns();
    let status = params.status.filter(|s| !s.is_empty());
    if let Some(s) = &status {
        if !Status::ALL.contains(&s.as_str()) {
            return Err(AppError::BadRequest(format!(
                "`status` {s:?} is not one of {}",
                Status::ALL.join(", ")
            )));
        }
    }
    // A key lookup finds the instance whenever it started; else the range.
    let key = match params.key.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(k) => Some(super::keys::check_key_value(k)?.to_string()),
    };
    let (from_ns, to_ns) = match (&key, &params.from, &params.to) {
        (Some(_), None, None) => (0, u64::MAX),
        _ => time_range::range(params.from.as_deref(), params.to.as_deref(), now)?,
    };
    let filter = InstanceFilter {
        process_id: def.id.clone(),
        status,
        root_value: key,
        from_ns,
        to_ns,
        limit: super::limit(params.limit)?,
        after: params.cursor.as_deref().map(cursor::decode).transpose()?,
    };
    let (rows, next) = state.store.list_instances(&filter).await?;
    Ok(InstancePage {
        process: def.id.clone(),
        instances: rows.iter().map(|r| view::instance(def, r, now)).collect(),
        next_cursor: next.as_ref().map(cursor::encode),
    })
}
