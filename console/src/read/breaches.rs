//! `GET /api/v1/breaches?process=&sla=&open=&plant=&from=&to=&limit=&cursor=`:
//! SLA breaches, newest due time first; `plant=`: of the instances of one
//! plant (an instance's plant is the first one its records named).

use domain::now_ns;
use serde::{Deserialize, Serialize};
use store::correlation::BreachFilter;

use super::view::BreachView;
use super::Reads;
use super::{cursor, time_range, view};
use crate::error::AppError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub process: Option<String>,
    pub sla: Option<String>,
    pub open: Option<String>,
    pub plant: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// One page of breaches.
#[derive(Debug, Serialize)]
pub struct BreachPage {
    pub breaches: Vec<BreachView>,
    pub next_cursor: Option<String>,
    /// Plants whose link is down now (no report for `plant_link_timeout`),
    /// when the page holds an open breach: a stage it waits for may be in
    /// their edge collector's spool, so it may be stale. Absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links_down: Vec<String>,
}

/// The page of breaches `params` selects, newest due time first.
pub async fn breaches(state: &Reads, params: Params) -> Result<BreachPage, AppError> {
    let now = now_ns();
    let process = params.process.filter(|p| !p.is_empty());
    let def = process
        .as_deref()
        .map(|p| super::processes::process(state, p))
        .transpose()?;
    let sla = params.sla.filter(|s| !s.is_empty());
    if let (Some(def), Some(sla)) = (def, &sla) {
        if !def.slas.iter().any(|s| &s.id == sla) {
            let known: Vec<&str> = def.slas.iter().map(|s| s.id.as_str()).collect();
            return Err(AppError::NotFound(format!(
                "process `{}` has no SLA `{sla}`; its SLAs: {}",
                def.id,
                known.join(", ")
            )));
        }
    }
    let open = match params.open.as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "`open` {other:?} is not true or false"
            )))
        }
    };
    let (from_ns, to_ns) = time_range::range(params.from.as_deref(), params.to.as_deref(), now)?;
    let filter = BreachFilter {
        process_id: process,
        sla_id: sla,
        open,
        from_ns,
        to_ns,
        limit: super::limit(params.limit)?,
        after: params.cursor.as_deref().map(cursor::decode).transpose()?,
        plant: time_range::plant(params.plant.as_deref())?,
    };
    let (rows, next) = state.store.list_breaches(&filter).await?;
    let links_down = if rows
        .iter()
        .any(|r| r.state == domain::instance::BreachState::Open)
    {
        let timeout = state.alerts.plant_link_timeout.0;
        state
            .store
            .plant_states(now)
            .await?
            .into_iter()
            .filter(|p| p.last_report.is_some() && p.link_down(now, timeout))
            .map(|p| p.plant)
            .collect()
    } else {
        Vec::new()
    };
    Ok(BreachPage {
        links_down,
        breaches: rows
            .iter()
            .map(|r| view::breach(state.processes.get(&r.process_id), r, now))
            .collect(),
        next_cursor: next.as_ref().map(cursor::encode),
    })
}
