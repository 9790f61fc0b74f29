//! `GET /api/v1/systems`: what each system (MES, ERP, CRM, middleware) sent
//! over a range, with silent systems flagged; `GET /api/v1/systems/operations`:
//! rate, errors and latency per operation; `GET /api/v1/systems/map`: which
//! system calls which.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use domain::now_ns;
use domain::process::duration;
use serde::Serialize;
use store::stats::{OperationStats, ServiceEdge, SystemActivity};

use super::time_range::Window;
use super::Reads;
use crate::error::AppError;

/// A system that sent nothing for this long is flagged silent.
pub const SILENT_AFTER_NS: u64 = 15 * 60 * 1_000_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct SystemView {
    pub system: String,
    /// The team that owns it (`[systems.<name>]` in the config).
    pub owner: Option<String>,
    pub contacts: Vec<String>,
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
    /// The plant the figures are of (`plant=`); absent: every record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plant: Option<String>,
    pub silent_after: String,
    pub systems: Vec<SystemView>,
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// Every system's activity over `[from_ns, to_ns]`.
pub async fn systems(state: &Reads, w: &Window) -> Result<Systems, AppError> {
    let (from_ns, to_ns) = (w.from_ns, w.to_ns);
    let now = now_ns();
    let rows = match state.caches.activity.get(&w.key) {
        Some(rows) => rows,
        None => {
            let rows = state
                .store
                .system_activity_in(from_ns, to_ns, w.plant.as_deref())
                .await?;
            state.caches.activity.put(&w.key, rows.clone());
            rows
        }
    };
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
                last_seen: seen.map(domain::time::rfc3339),
                last_seen_seconds_ago: seen.map(|t| at.saturating_sub(t) / 1_000_000_000),
                silent: seen.is_none_or(|t| at.saturating_sub(t) > SILENT_AFTER_NS),
                owner: state.processes.system_owner(&a.system).map(str::to_string),
                contacts: state
                    .processes
                    .systems
                    .get(&a.system)
                    .map(|s| s.contacts.clone())
                    .unwrap_or_default(),
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
        from: domain::time::rfc3339(from_ns),
        to: domain::time::rfc3339(to_ns),
        plant: w.plant.clone(),
        silent_after: duration::format_ns(SILENT_AFTER_NS),
        systems,
    })
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plant: Option<String>,
    pub operations: Vec<OperationView>,
}

/// Rate, errors and latency per (service, operation) over the range.
pub async fn operations(state: &Reads, w: &Window) -> Result<Operations, AppError> {
    let (from_ns, to_ns) = (w.from_ns, w.to_ns);
    let rows: Vec<OperationStats> = match state.caches.operations.get(&w.key) {
        Some(rows) => rows,
        None => {
            let rows = state
                .store
                .operation_stats_in(from_ns, to_ns, w.plant.as_deref())
                .await?;
            state.caches.operations.put(&w.key, rows.clone());
            rows
        }
    };
    let minutes = ((to_ns - from_ns) as f64 / 60e9).max(1.0 / 60.0);
    Ok(Operations {
        from: domain::time::rfc3339(from_ns),
        to: domain::time::rfc3339(to_ns),
        plant: w.plant.clone(),
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

#[derive(Debug, Clone, Serialize)]
pub struct ServiceMap {
    pub from: String,
    pub to: String,
    /// When the edges were read: a map is reused for up to a minute.
    pub computed_at: String,
    pub edges: Vec<ServiceEdge>,
}

/// The last answer of one range aggregate, reused while fresh: pages that
/// refresh every few seconds, and several people on the same page, share one
/// computation. Keyed by [`Window::key`].
pub struct RangeCache<V> {
    ttl: Duration,
    entry: Mutex<Option<Cached<V>>>,
}

/// A value, the range key it answers and when it was computed.
struct Cached<V> {
    key: String,
    at: Instant,
    value: V,
}

impl<V: Clone> RangeCache<V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entry: Mutex::new(None),
        }
    }

    /// The cached value for this range, when it is fresh.
    pub fn get(&self, key: &str) -> Option<V> {
        let entry = self.entry.lock().unwrap();
        match entry.as_ref() {
            Some(c) if c.key == key && c.at.elapsed() < self.ttl => Some(c.value.clone()),
            _ => None,
        }
    }

    pub fn put(&self, key: &str, value: V) {
        *self.entry.lock().unwrap() = Some(Cached {
            key: key.to_string(),
            at: Instant::now(),
            value,
        });
    }
}

/// The console's caches of range aggregates. Every aggregate reads the
/// per-minute rollups (minutes x series, never the range's spans), so a
/// range not cached is quick too; the caches only let pages that refresh
/// every few seconds, and several people on one page, share an answer for
/// 30 s (the service map for 60 s).
pub struct Caches {
    pub activity: RangeCache<Vec<SystemActivity>>,
    pub operations: RangeCache<Vec<OperationStats>>,
    pub service_map: RangeCache<ServiceMap>,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            activity: RangeCache::new(Duration::from_secs(30)),
            operations: RangeCache::new(Duration::from_secs(30)),
            service_map: RangeCache::new(Duration::from_secs(60)),
        }
    }
}

async fn compute_map(state: &Reads, w: &Window) -> Result<ServiceMap, AppError> {
    let edges = state.store.service_edges(w.from_ns, w.to_ns).await?;
    Ok(ServiceMap {
        from: domain::time::rfc3339(w.from_ns),
        to: domain::time::rfc3339(w.to_ns),
        computed_at: domain::time::rfc3339(now_ns()),
        edges,
    })
}

/// The service map over the range (whole minutes of the calling span's
/// start, see `store::stats`), from the cache when it is fresh.
pub async fn service_map(state: &Reads, w: &Window) -> Result<ServiceMap, AppError> {
    if let Some(map) = state.caches.service_map.get(&w.key) {
        return Ok(map);
    }
    let map = compute_map(state, w).await?;
    state.caches.service_map.put(&w.key, map.clone());
    Ok(map)
}
