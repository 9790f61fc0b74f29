//! `GET /api/v1/processes`: health of every process over a range, and
//! `GET /api/v1/processes/{id}/instances`: its instances, one page at a time.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use collector::correlator::evaluate::Status;
use collector::now_ns;
use collector::process::ProcessDef;
use collector::storage::correlation::InstanceFilter;
use collector::storage::rows::InstanceRow;
use serde::Deserialize;
use serde_json::Value;

use super::{cursor, time_range, view, AppError, AppState};

/// Instances read for one summary at most; a longer range is cut, and says so.
const SUMMARY_ROWS: usize = 500_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeParams {
    from: Option<String>,
    to: Option<String>,
}

fn stage_time(row: &InstanceRow, stage: &str) -> Option<u64> {
    row.stage_ids
        .iter()
        .position(|s| s == stage)
        .map(|i| row.stage_times[i])
}

fn percentiles(mut values: Vec<u64>) -> Value {
    if values.is_empty() {
        return serde_json::json!({ "count": 0, "p50_ns": null, "p95_ns": null, "p99_ns": null });
    }
    values.sort_unstable();
    let at = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize].to_string();
    serde_json::json!({
        "count": values.len(),
        "p50_ns": at(0.50),
        "p95_ns": at(0.95),
        "p99_ns": at(0.99),
    })
}

fn durations(rows: &[&InstanceRow], from: &str, to: &str) -> Vec<u64> {
    rows.iter()
        .filter_map(|r| Some((stage_time(r, from)?, stage_time(r, to)?)))
        .filter(|(a, b)| b >= a)
        .map(|(a, b)| b - a)
        .collect()
}

fn summary(
    def: &ProcessDef,
    rows: &[&InstanceRow],
    open: &BTreeMap<(String, String), u64>,
    now: u64,
) -> Value {
    let mut counts: BTreeMap<&str, usize> = Status::ALL.iter().map(|s| (*s, 0)).collect();
    for r in rows {
        *counts.entry(r.status.as_str()).or_default() += 1;
    }
    let slas: Vec<Value> = def
        .slas
        .iter()
        .map(|sla| {
            let (from, to) = (&def.stages[sla.from].id, &def.stages[sla.to].id);
            let (mut met, mut breached) = (0u64, 0u64);
            for r in rows {
                let Some(start) = stage_time(r, from) else {
                    continue;
                };
                let due = start.saturating_add(sla.within_ns);
                match stage_time(r, to) {
                    Some(end) if end <= due => met += 1,
                    Some(_) => breached += 1,
                    None if now > due => breached += 1,
                    None => {}
                }
            }
            let judged = met + breached;
            serde_json::json!({
                "id": sla.id,
                "name": sla.name,
                "from": from,
                "to": to,
                "met": met,
                "breached": breached,
                "compliance_percent": (judged > 0).then(|| (met as f64) * 100.0 / judged as f64),
                "open_breaches": open.get(&(def.id.clone(), sla.id.clone())).copied().unwrap_or(0),
                "duration": percentiles(durations(rows, from, to)),
            })
        })
        .collect();
    let stage_durations: Vec<Value> = def
        .stages
        .windows(2)
        .map(|w| {
            serde_json::json!({
                "from": w[0].id,
                "to": w[1].id,
                "duration": percentiles(durations(rows, &w[0].id, &w[1].id)),
            })
        })
        .collect();
    let first = &def.stages[0].id;
    let last = &def.stages[def.stages.len() - 1].id;
    serde_json::json!({
        "id": def.id,
        "name": def.name,
        "description": def.description,
        "key": def.key_type,
        "stages": def.stages.iter().map(|s| serde_json::json!({
            "id": s.id, "name": s.name, "system": s.system,
            "reached": rows.iter().filter(|r| stage_time(r, &s.id).is_some()).count(),
        })).collect::<Vec<_>>(),
        "instances": {
            "started": rows.len(),
            "in_flight": counts["in_flight"],
            "stalled": counts["stalled"],
            "completed": counts["completed"],
            "failed": counts["failed"],
        },
        "open_breaches": open.iter().filter(|((p, _), _)| p == &def.id).map(|(_, n)| n).sum::<u64>(),
        "slas": slas,
        "stage_durations": stage_durations,
        "end_to_end": percentiles(durations(rows, first, last)),
    })
}

pub async fn list_processes(
    State(state): State<AppState>,
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let Query(params) = super::query(params, "from, to")?;
    let now = now_ns();
    let (from_ns, to_ns) = time_range::range(params.from.as_deref(), params.to.as_deref(), now)?;
    let (rows, open) = tokio::try_join!(
        state.store.instances_started(from_ns, to_ns, SUMMARY_ROWS),
        state.store.open_breach_counts(),
    )?;
    let truncated = rows.len() >= SUMMARY_ROWS;
    let open: BTreeMap<(String, String), u64> =
        open.into_iter().map(|(p, s, n)| ((p, s), n)).collect();
    let processes: Vec<Value> = state
        .processes
        .list
        .iter()
        .map(|def| {
            let mine: Vec<&InstanceRow> = rows.iter().filter(|r| r.process_id == def.id).collect();
            summary(def, &mine, &open, now)
        })
        .collect();
    Ok(Json(serde_json::json!({
        "from": view::rfc3339(from_ns),
        "to": view::rfc3339(to_ns),
        "processes": processes,
        "truncated": truncated,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceParams {
    status: Option<String>,
    key: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

pub(super) fn process<'a>(state: &'a AppState, id: &str) -> Result<&'a ProcessDef, AppError> {
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

pub async fn list_instances(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<InstanceParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let Query(params) = super::query(params, "status, key, from, to, limit, cursor")?;
    let def = process(&state, &id)?;
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
    let key = params.key.filter(|k| !k.is_empty());
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
    Ok(Json(serde_json::json!({
        "process": def.id,
        "instances": rows.iter().map(|r| view::instance(def, r, now)).collect::<Vec<_>>(),
        "next_cursor": next.as_ref().map(cursor::encode),
    })))
}
