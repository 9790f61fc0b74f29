//! `/processes/{id}`: a stage funnel, the stage-to-stage duration
//! distributions, the SLA table, and the instances, filterable and paged.

use askama::Template;
use axum::extract::{Path, State};

use super::overview::compliance_class;
use super::{fmt, render, svg, Chrome, ErrorPage, PageResult};
use crate::links;
use crate::read::plants::plants;
use crate::read::processes::{health, instances, InstanceParams, HISTOGRAM_BOUNDS_NS};
use crate::read::view::InstanceView;
use crate::{error::AppError, state::AppState};
use domain::instance::Status;

pub struct SlaLine {
    pub id: String,
    pub name: String,
    pub stages: String,
    pub within: String,
    pub met: String,
    pub breached: String,
    pub compliance: String,
    pub compliance_class: &'static str,
    pub open_breaches: String,
    pub p95: String,
    pub breaches_href: String,
}

pub struct Distribution {
    pub title: String,
    pub summary: String,
    pub svg: String,
}

pub struct InstanceLine {
    pub key: String,
    pub key_href: String,
    pub status: String,
    pub current_stage: String,
    pub start: String,
    pub last: String,
    pub open_breaches: u32,
    /// `(sla id, state, text)` per SLA.
    pub slas: Vec<(String, &'static str, String)>,
}

#[derive(Template)]
#[template(path = "process.html")]
pub struct ProcessPage {
    pub chrome: Chrome,
    pub id: String,
    pub name: String,
    pub description: String,
    /// The owning team and its contacts, as shown; empty when unowned.
    pub owner: String,
    pub contacts: String,
    pub has_slos: bool,
    pub slos_href: String,
    pub key_type: String,
    pub started: String,
    pub in_flight: String,
    pub completed: String,
    pub failed: String,
    pub stalled: String,
    pub compliance: String,
    pub open_breaches: String,
    pub p95: String,
    pub funnel: String,
    pub slas: Vec<SlaLine>,
    pub distributions: Vec<Distribution>,
    pub status: String,
    pub key: String,
    pub statuses: &'static [&'static str],
    pub instances: Vec<InstanceLine>,
    pub next_href: Option<String>,
}

pub fn sla_text(s: &crate::read::view::SlaView) -> String {
    match s.state {
        "met" => "met".into(),
        "running" => format!("{} left", fmt::duration(s.gap_ns)),
        "open_breach" => format!("open, {} late", fmt::duration(s.gap_ns)),
        "breached" => format!("breached by {}", fmt::duration(s.gap_ns)),
        _ => "not started".into(),
    }
}

pub fn instance_line(chrome: &Chrome, i: &InstanceView) -> InstanceLine {
    InstanceLine {
        key_href: chrome.keep_range(&links::key(&i.key.key_type, &i.key.value)),
        key: i.key.value.clone(),
        status: i.status.clone(),
        current_stage: i.current_stage.clone(),
        start: i.start_time.clone(),
        last: i.last_time.clone(),
        open_breaches: i.open_breaches,
        slas: i
            .slas
            .iter()
            .map(|s| (s.id.clone(), s.state, sla_text(s)))
            .collect(),
    }
}

pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    mut chrome: Chrome,
) -> PageResult {
    if let Err(e) = crate::read::check_id("process", &id) {
        chrome.title = "Not valid".into();
        return Err(ErrorPage::new(chrome, e));
    }
    let Some(def) = state.processes.get(&id) else {
        let known: Vec<&str> = state.processes.list.iter().map(|p| p.id.as_str()).collect();
        chrome.title = "Not found".into();
        return Err(ErrorPage::new(
            chrome,
            AppError::NotFound(format!(
                "No process `{id}` is defined. Defined: {}.",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )),
        ));
    };
    chrome.title = def.name.clone();
    let status = chrome.param("status").unwrap_or("").to_string();
    let key = chrome.param("key").unwrap_or("").to_string();
    // A key finds its instance whenever it started (a breach links here
    // with the key); without one, the list follows the range.
    let by_key = !key.trim().is_empty();
    let params = InstanceParams {
        status: Some(status.clone()),
        key: Some(key.clone()),
        from: (!by_key).then(|| chrome.from.clone()),
        to: (!by_key).then(|| chrome.to.clone()),
        limit: Some(50),
        cursor: chrome.param("cursor").map(str::to_string),
        plant: chrome.window.plant.clone(),
    };
    let loaded = tokio::try_join!(
        health(&state, chrome.from_ns, chrome.to_ns, Some(&def.id), true),
        instances(&state, &def.id, params),
        plants(&state),
    );
    let (mut health, page, plants) = match loaded {
        Ok(x) => x,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    chrome.plants = plants.plants.into_iter().map(|p| p.plant).collect();
    let h = health.processes.remove(0);
    let started = h.instances.started.max(1) as f64;
    let funnel_rows: Vec<(String, u64, String)> = h
        .stages
        .iter()
        .map(|s| {
            (
                format!("{} ({})", s.name, s.system),
                s.reached as u64,
                format!(
                    "{} · {:.0}%",
                    fmt::count(s.reached as u64),
                    s.reached as f64 * 100.0 / started
                ),
            )
        })
        .collect();
    let slas = h
        .slas
        .iter()
        .map(|s| SlaLine {
            breaches_href: chrome.href("/breaches", &[("process", &def.id), ("sla", &s.id)]),
            id: s.id.clone(),
            name: s.name.clone(),
            stages: format!("{} → {}", s.from, s.to),
            within: s.within.clone(),
            met: fmt::count(s.met),
            breached: fmt::count(s.breached),
            compliance: fmt::percent(s.compliance_percent),
            compliance_class: compliance_class(s.compliance_percent),
            open_breaches: fmt::count(s.open_breaches),
            p95: s
                .duration
                .p95_ns
                .map(fmt::duration)
                .unwrap_or_else(|| "–".into()),
        })
        .collect();
    let distributions = h
        .stage_durations
        .iter()
        .filter_map(|d| {
            let hist = d.histogram.as_ref()?;
            let first = hist.counts.iter().position(|c| *c > 0)?;
            let last = hist.counts.iter().rposition(|c| *c > 0)?;
            let bins: Vec<(String, u64)> = (first..=last)
                .map(|i| {
                    let label = match HISTOGRAM_BOUNDS_NS.get(i) {
                        Some(b) => format!("≤ {}", fmt::duration(*b)),
                        None => format!("> {}", fmt::duration(HISTOGRAM_BOUNDS_NS[i - 1])),
                    };
                    (label, hist.counts[i])
                })
                .collect();
            let title = format!("{} → {}", d.from, d.to);
            Some(Distribution {
                summary: format!(
                    "{} instances · p50 {} · p95 {} · p99 {}",
                    fmt::count(d.duration.count as u64),
                    d.duration.p50_ns.map(fmt::duration).unwrap_or_default(),
                    d.duration.p95_ns.map(fmt::duration).unwrap_or_default(),
                    d.duration.p99_ns.map(fmt::duration).unwrap_or_default(),
                ),
                svg: svg::columns(&bins, &title),
                title,
            })
        })
        .collect();
    let instances = page
        .instances
        .iter()
        .map(|i| instance_line(&chrome, i))
        .collect();
    let next_href = page
        .next_cursor
        .as_ref()
        .map(|c| chrome.link(&[("cursor", c)]));
    Ok(render(&ProcessPage {
        id: def.id.clone(),
        name: def.name.clone(),
        description: def.description.clone(),
        owner: h.owner.clone().unwrap_or_default(),
        contacts: h.contacts.join(", "),
        has_slos: !def.slos.is_empty(),
        slos_href: chrome.keep_range(&format!("{}/slos", links::process(&def.id))),
        key_type: def.key_type.clone(),
        started: fmt::count(h.instances.started as u64),
        in_flight: fmt::count(h.instances.in_flight as u64),
        completed: fmt::count(h.instances.completed as u64),
        failed: fmt::count(h.instances.failed as u64),
        stalled: fmt::count(h.instances.stalled as u64),
        compliance: fmt::percent(h.compliance_percent),
        open_breaches: fmt::count(h.open_breaches),
        p95: h
            .end_to_end
            .p95_ns
            .map(fmt::duration)
            .unwrap_or_else(|| "–".into()),
        funnel: svg::hbars(&funnel_rows, "funnel"),
        slas,
        distributions,
        status,
        key,
        statuses: &Status::ALL,
        instances,
        next_href,
        chrome,
    }))
}
