//! `GET /api/v1/plants`: each plant central knows, with its link state:
//! the newest record stored from it (how far behind it is), and what its
//! edge collector last reported of its backlog. A plant whose edge has not
//! reported for `plant_link_timeout` shows its link `down`. One row per
//! plant (`Store::plant_states`), never a read of records.

use domain::now_ns;
use domain::plant::PlantState;
use domain::process::duration;
use serde::Serialize;

use super::Reads;
use crate::error::AppError;

#[derive(Debug, Clone, Serialize)]
pub struct PlantView {
    pub plant: String,
    /// `up`, `down` (nothing heard for `link_timeout`) or `unknown` (records
    /// name it, but no edge collector of it ever reported).
    pub link: &'static str,
    /// The newest record time stored from it (RFC 3339), if any in the
    /// last 7 days; and how long before now that is.
    pub newest_record: Option<String>,
    pub newest_record_seconds_ago: Option<u64>,
    /// Its edge collector's last report (central's clock), and its figures.
    pub last_report: Option<String>,
    pub last_report_seconds_ago: Option<u64>,
    pub backlog_bytes: Option<u64>,
    pub backlog_records: Option<u64>,
    /// Age of the oldest record still in the edge's spool: as reported,
    /// plus the time since the report.
    pub backlog_age_seconds: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plants {
    pub link_timeout: String,
    pub plants: Vec<PlantView>,
}

/// A plant's state as shown, judged at `now`.
pub fn view(s: &PlantState, now: u64, timeout_ns: u64) -> PlantView {
    let secs = |ns: u64| ns / 1_000_000_000;
    let report = s.last_report.as_ref();
    let seen = (s.newest_record_ns > 0).then_some(s.newest_record_ns);
    PlantView {
        plant: s.plant.clone(),
        link: match report {
            None => "unknown",
            Some(_) if s.link_down(now, timeout_ns) => "down",
            Some(_) => "up",
        },
        newest_record: seen.map(domain::time::rfc3339),
        newest_record_seconds_ago: seen.map(|t| secs(now.saturating_sub(t))),
        last_report: report.map(|r| domain::time::rfc3339(r.received_ns)),
        last_report_seconds_ago: report.map(|r| secs(now.saturating_sub(r.received_ns))),
        backlog_bytes: report.map(|r| r.backlog_bytes),
        backlog_records: report.map(|r| r.backlog_records),
        backlog_age_seconds: s.backlog_age_ns(now).map(secs),
    }
}

/// Every plant, by name.
pub async fn plants(state: &Reads) -> Result<Plants, AppError> {
    let now = now_ns();
    let timeout = state.alerts.plant_link_timeout.0;
    let states = state.store.plant_states(now).await?;
    Ok(Plants {
        link_timeout: duration::format_ns(timeout),
        plants: states.iter().map(|s| view(s, now, timeout)).collect(),
    })
}
