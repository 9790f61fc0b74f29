//! `GET /api/v1/processes`: health of every process over a range (from the
//! per-process rollups, never the instances), and
//! `GET /api/v1/processes/{id}/instances`: its instances, one page at a time.

use std::collections::BTreeMap;

use domain::histogram;
use domain::instance::Status;
use domain::now_ns;
use domain::process::duration;
use domain::process::ProcessDef;
use domain::process_rollup::ProcessRollup;
pub use domain::process_rollup::HISTOGRAM_BOUNDS_NS;
use serde::{Deserialize, Serialize};
use store::correlation::InstanceFilter;

use super::view::InstanceView;
use super::Reads;
use super::{cursor, time_range, view};
use crate::error::AppError;

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

/// p50 / p95 / p99 of a set of durations, from their log-bucket histogram
/// (`domain::histogram`: within 12.5 %); the count is exact.
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
    fn of(rollup: &ProcessRollup, from: &str, to: &str) -> Self {
        let buckets = rollup.histogram(from, to);
        let at = |q: f64| histogram::quantile(&buckets, q);
        Percentiles {
            count: rollup.duration_count(from, to) as usize,
            p50_ns: at(0.50),
            p95_ns: at(0.95),
            p99_ns: at(0.99),
        }
    }
}

/// How many durations fell in each bin of [`HISTOGRAM_BOUNDS_NS`] (the last
/// count is for longer ones).
#[derive(Debug, Clone, Serialize)]
pub struct Histogram {
    pub upper_bounds: Vec<String>,
    pub counts: Vec<u64>,
}

impl Histogram {
    fn of(rollup: &ProcessRollup, from: &str, to: &str) -> Self {
        let mut upper_bounds: Vec<String> = HISTOGRAM_BOUNDS_NS
            .iter()
            .map(|b| duration::format_ns(*b))
            .collect();
        upper_bounds.push("+Inf".into());
        Histogram {
            upper_bounds,
            counts: rollup.bins(from, to),
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
    /// The team that owns it (`owner` in its definition).
    pub owner: Option<String>,
    pub contacts: Vec<String>,
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
    /// Always false: the rollups count every instance of any range (kept
    /// for readers of the API that look at it).
    pub truncated: bool,
}

/// Buckets of a sparkline over a range.
pub const SERIES_BUCKETS: u64 = 30;

struct Context<'a> {
    open: &'a BTreeMap<(String, String), u64>,
    starts: &'a BTreeMap<(String, u64), u64>,
    breaches: &'a BTreeMap<(String, u64), u64>,
    bucket_ns: u64,
    histograms: bool,
}

fn series(buckets: &BTreeMap<(String, u64), u64>, process: &str) -> Vec<u64> {
    (0..SERIES_BUCKETS)
        .map(|b| buckets.get(&(process.to_string(), b)).copied().unwrap_or(0))
        .collect()
}

fn summary(def: &ProcessDef, r: &ProcessRollup, cx: &Context) -> ProcessHealth {
    let slas: Vec<SlaHealth> = def
        .slas
        .iter()
        .map(|sla| {
            let (from, to) = (&def.stages[sla.from].id, &def.stages[sla.to].id);
            let counts = r.slas.get(&sla.id).copied().unwrap_or_default();
            let (met, breached) = (counts.met, counts.breached);
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
                duration: Percentiles::of(r, from, to),
            }
        })
        .collect();
    let (met, judged) = slas
        .iter()
        .fold((0, 0), |(m, j), s| (m + s.met, j + s.met + s.breached));
    let stage_durations = def
        .stages
        .windows(2)
        .map(|w| StageDurations {
            from: w[0].id.clone(),
            to: w[1].id.clone(),
            histogram: cx.histograms.then(|| Histogram::of(r, &w[0].id, &w[1].id)),
            duration: Percentiles::of(r, &w[0].id, &w[1].id),
        })
        .collect();
    let first = &def.stages[0].id;
    let last = &def.stages[def.stages.len() - 1].id;
    ProcessHealth {
        owner: def.owner.clone(),
        contacts: def.contacts.clone(),
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
                reached: r.reached(&s.id) as usize,
            })
            .collect(),
        instances: InstanceCounts {
            started: r.started as usize,
            in_flight: r.in_flight as usize,
            stalled: r.stalled as usize,
            completed: r.completed as usize,
            failed: r.failed as usize,
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
        end_to_end: Percentiles::of(r, first, last),
        series: Series {
            bucket_seconds: cx.bucket_ns / 1_000_000_000,
            starts: series(cx.starts, &def.id),
            breaches: series(cx.breaches, &def.id),
        },
    }
}

/// Bucket counts by (process, bucket), the last bucket taking any beyond.
fn by_bucket(counts: Vec<store::stats::BucketCount>) -> BTreeMap<(String, u64), u64> {
    counts.into_iter().fold(BTreeMap::new(), |mut m, b| {
        *m.entry((b.group, b.bucket.min(SERIES_BUCKETS - 1)))
            .or_default() += b.count;
        m
    })
}

/// The health of the processes `only` names (all when `None`) over
/// `[from_ns, to_ns]` (whole minutes of start; breaches by minute due);
/// with `histograms`, each stage pair's distribution too. Reads only the
/// process rollups (`store::process_rollups`): hours and minutes x
/// processes, whatever the number of instances.
pub async fn health(
    state: &Reads,
    from_ns: u64,
    to_ns: u64,
    only: Option<&str>,
    histograms: bool,
) -> Result<Health, AppError> {
    let bucket_ns = ((to_ns - from_ns) / SERIES_BUCKETS).max(1);
    let (rollups, open, starts, breaches) = tokio::try_join!(
        state.store.process_rollups(from_ns, to_ns),
        state.store.open_breach_counts(),
        state.store.start_buckets(from_ns, to_ns, bucket_ns),
        state.store.breach_buckets(from_ns, to_ns, bucket_ns),
    )?;
    let open: BTreeMap<(String, String), u64> =
        open.into_iter().map(|(p, s, n)| ((p, s), n)).collect();
    let (starts, breaches) = (by_bucket(starts), by_bucket(breaches));
    let cx = Context {
        open: &open,
        starts: &starts,
        breaches: &breaches,
        bucket_ns,
        histograms,
    };
    let none = ProcessRollup::default();
    let processes = state
        .processes
        .list
        .iter()
        .filter(|def| only.is_none_or(|id| id == def.id))
        .map(|def| summary(def, rollups.get(&def.id).unwrap_or(&none), &cx))
        .collect();
    Ok(Health {
        from: domain::time::rfc3339(from_ns),
        to: domain::time::rfc3339(to_ns),
        processes,
        truncated: false,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceParams {
    pub status: Option<String>,
    pub key: Option<String>,
    /// Of one plant only (an instance's plant is the first one its
    /// records named).
    pub plant: Option<String>,
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
        plant: time_range::plant(params.plant.as_deref())?,
    };
    let (rows, next) = state.store.list_instances(&filter).await?;
    Ok(InstancePage {
        process: def.id.clone(),
        instances: rows.iter().map(|r| view::instance(def, r, now)).collect(),
        next_cursor: next.as_ref().map(cursor::encode),
    })
}
