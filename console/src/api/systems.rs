//! `GET /api/v1/systems`: what each system (MES, ERP, CRM, middleware) sent
//! over a range, with silent systems flagged; `GET /api/v1/systems/operations`:
//! rate, errors and latency per operation; `GET /api/v1/systems/map`: which
//! system calls which.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::Json;
use collector::now_ns;
use collector::process::duration;
use collector::storage::stats::{OperationStats, ServiceEdge};
use serde::Serialize;

use super::processes::RangeParams;
use super::{time_range, view, AppError, AppState};

/// A system that sent nothing for this long is flagged silent.
pub const SILENT_AFTER_NS: u64 = 15 * 60 * 1_000_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct SystemView {
    pub system: String,
    pub spans: u64,
    pub span_errors: u64,
    pub events: u64,
    pub event_failures: u64,
    pub dead_letters: u64,
    /// Spans and events per minute over the range.
    pub per_minute: f64,
    /// Failed spans and failed or dead-lettered events, of all it sent.
    pub error_percent: Option<f64>,
    /// Dead-lettered events, of its events.
    pub dead_letter_percent: Option<f64>,
    pub last_seen: Option<String>,
    /// Seconds since it last sent anything (to the end of the range, or
    /// now if that is earlier).
    pub last_seen_seconds_ago: Option<u64>,
    pub silent: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Systems {
    pub from: String,
    pub to: String,
    pub silent_after: String,
    pub systems: Vec<SystemView>,
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// Every system's activity over `[from_ns, to_ns]`.
pub async fn systems(state: &AppState, from_ns: u64, to_ns: u64) -> Result<Systems, AppError> {
    let now = now_ns();
    let rows = state.store.system_activity(from_ns, to_ns).await?;
    let minutes = ((to_ns - from_ns) as f64 / 60e9).max(1.0 / 60.0);
    // Silence is judged at the end of the range, or now if that is earlier.
    let at = to_ns.min(now);
    let systems = rows
        .into_iter()
        .map(|a| {
            let sent = a.spans + a.events;
            let seen = (a.last_seen_ns > 0).then_some(a.last_seen_ns);
            SystemView {
                per_minute: sent as f64 / minutes,
                error_percent: percent(a.span_errors + a.event_failures, sent),
                dead_letter_percent: percent(a.dead_letters, a.events),
                last_seen: seen.map(view::rfc3339),
                last_seen_seconds_ago: seen.map(|t| at.saturating_sub(t) / 1_000_000_000),
                silent: seen.is_none_or(|t| at.saturating_sub(t) > SILENT_AFTER_NS),
                system: a.system,
                spans: a.spans,
                span_errors: a.span_errors,
                events: a.events,
                event_failures: a.event_failures,
                dead_letters: a.dead_letters,
            }
        })
        .collect();
    Ok(Systems {
        from: view::rfc3339(from_ns),
        to: view::rfc3339(to_ns),
        silent_after: duration::format_ns(SILENT_AFTER_NS),
        systems,
    })
}

pub async fn list_systems(
    State(state): State<AppState>,
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Systems>, AppError> {
    let Query(p) = super::query(params, "from, to")?;
    let (from_ns, to_ns) = time_range::range(p.from.as_deref(), p.to.as_deref(), now_ns())?;
    Ok(Json(systems(&state, from_ns, to_ns).await?))
}

#[derive(Debug, Clone, Serialize)]
pub struct OperationView {
    pub service: String,
    pub operation: String,
    pub count: u64,
    pub per_minute: f64,
    pub errors: u64,
    pub error_percent: Option<f64>,
    pub p50: String,
    pub p95: String,
    pub p50_ns: String,
    pub p95_ns: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Operations {
    pub from: String,
    pub to: String,
    pub operations: Vec<OperationView>,
}

/// Rate, errors and latency per (service, operation) over the range.
pub async fn operations(
    state: &AppState,
    from_ns: u64,
    to_ns: u64,
) -> Result<Operations, AppError> {
    let rows: Vec<OperationStats> = state.store.operation_stats(from_ns, to_ns).await?;
    let minutes = ((to_ns - from_ns) as f64 / 60e9).max(1.0 / 60.0);
    Ok(Operations {
        from: view::rfc3339(from_ns),
        to: view::rfc3339(to_ns),
        operations: rows
            .into_iter()
            .map(|o| OperationView {
                per_minute: o.count as f64 / minutes,
                error_percent: percent(o.errors, o.count),
                p50: duration::format_ns(o.p50_ns),
                p95: duration::format_ns(o.p95_ns),
                p50_ns: o.p50_ns.to_string(),
                p95_ns: o.p95_ns.to_string(),
                service: o.service,
                operation: o.name,
                count: o.count,
                errors: o.errors,
            })
            .collect(),
    })
}

pub async fn list_operations(
    State(state): State<AppState>,
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Operations>, AppError> {
    let Query(p) = super::query(params, "from, to")?;
    let (from_ns, to_ns) = time_range::range(p.from.as_deref(), p.to.as_deref(), now_ns())?;
    Ok(Json(operations(&state, from_ns, to_ns).await?))
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceMap {
    pub from: String,
    pub to: String,
    /// When the edges were computed: a map is reused for up to a minute.
    pub computed_at: String,
    pub edges: Vec<ServiceEdge>,
}

/// The service map joins each span to its parent, the costliest read the
/// console makes; like Jaeger's dependency job it is computed at most once a
/// minute per range (ranges are rounded to the minute).
#[derive(Default)]
pub struct ServiceMapCache {
    entry: Mutex<Option<CachedMap>>,
}

/// A map, the range it covers (in minutes) and when it was computed.
type CachedMap = ((u64, u64), Instant, ServiceMap);

const MAP_TTL: Duration = Duration::from_secs(60);
const MINUTE_NS: u64 = 60 * 1_000_000_000;

/// The service map over the range, from the cache when it is fresh.
pub async fn service_map(
    state: &AppState,
    from_ns: u64,
    to_ns: u64,
) -> Result<ServiceMap, AppError> {
    let key = (from_ns / MINUTE_NS, to_ns / MINUTE_NS);
    if let Some((k, at, map)) = state.service_map.entry.lock().unwrap().as_ref() {
        if *k == key && at.elapsed() < MAP_TTL {
            return Ok(map.clone());
        }
    }
    let edges = state.store.service_edges(from_ns, to_ns).await?;
    let map = ServiceMap {
        from: view::rfc3339(from_ns),
        to: view::rfc3339(to_ns),
        computed_at: view::rfc3339(now_ns()),
        edges,
    };
    *state.service_map.entry.lock().unwrap() = Some((key, Instant::now(), map.clone()));
    Ok(map)
}

pub async fn get_service_map(
    State(state): State<AppState>,
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ServiceMap>, AppError> {
    let Query(p) = super::query(params, "from, to")?;
    let (from_ns, to_ns) = time_range::range(p.from.as_deref(), p.to.as_deref(), now_ns())?;
    Ok(Json(service_map(&state, from_ns, to_ns).await?))
}
