//! `/`: one tile per process, one row per system, the newest open breaches;
//! on a fresh install, how to send data.

use askama::Template;
use axum::extract::State;

use super::{fmt, render, svg, Chrome, ErrorPage, PageResult};
use crate::links;
use crate::read::breaches::{breaches, Params};
use crate::read::plants::plants;
use crate::read::processes::health;
use crate::read::systems::{systems, SystemView};
use crate::state::AppState;

pub struct Tile {
    pub id: String,
    pub name: String,
    pub href: String,
    pub started: String,
    pub in_flight: String,
    pub stalled: String,
    pub completed: String,
    pub failed: String,
    pub compliance: String,
    /// `good`, `warn`, `bad` or `none`.
    pub compliance_class: &'static str,
    pub open_breaches: String,
    pub p95: String,
    pub spark: String,
}

/// A system's activity as the overview and systems pages write it.
pub struct SystemLine {
    pub name: String,
    pub colour: &'static str,
    pub spans: String,
    pub events: String,
    pub rate: String,
    pub errors: String,
    pub dead_letters: String,
    pub last_seen: String,
    pub last_seen_ago: String,
    pub silent: bool,
    /// The owning team; empty when `[systems.<name>]` names none.
    pub owner: String,
    pub contacts: String,
}

impl From<&SystemView> for SystemLine {
    fn from(s: &SystemView) -> Self {
        SystemLine {
            colour: svg::colour(&s.system),
            name: s.system.clone(),
            spans: fmt::count(s.spans),
            events: fmt::count(s.events),
            rate: fmt::rate(s.per_minute),
            errors: fmt::percent(s.error_percent),
            dead_letters: fmt::percent(s.dead_letter_percent),
            last_seen: s.last_seen.clone().unwrap_or_default(),
            last_seen_ago: s
                .last_seen_seconds_ago
                .map(|secs| fmt::duration(secs * 1_000_000_000))
                .unwrap_or_else(|| "never".into()),
            silent: s.silent,
            owner: s.owner.clone().unwrap_or_default(),
            contacts: s.contacts.join(", "),
        }
    }
}

pub struct BreachLine {
    pub process: String,
    pub process_href: String,
    pub sla: String,
    pub key: String,
    pub key_href: String,
    pub due: String,
    pub late: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct Overview {
    pub chrome: Chrome,
    pub tiles: Vec<Tile>,
    pub systems: Vec<SystemLine>,
    pub breaches: Vec<BreachLine>,
    pub truncated: bool,
    pub empty: bool,
    pub all_open_href: String,
}

pub fn compliance_class(p: Option<f64>) -> &'static str {
    match p {
        None => "none",
        Some(p) if p >= 99.0 => "good",
        Some(p) if p >= 90.0 => "warn",
        Some(_) => "bad",
    }
}

pub async fn page(State(state): State<AppState>, mut chrome: Chrome) -> PageResult {
    chrome.title = "Overview".into();
    let open = Params {
        process: None,
        sla: None,
        open: Some("true".into()),
        from: Some(chrome.from.clone()),
        to: Some(chrome.to.clone()),
        limit: Some(10),
        cursor: None,
        // The overview's process figures are of every plant: so are the
        // open breaches beside them.
        plant: None,
    };
    let loaded = tokio::try_join!(
        health(&state, chrome.from_ns, chrome.to_ns, None, false),
        systems(&state, &chrome.window),
        breaches(&state, open),
        plants(&state),
    );
    let (health, systems, open, plants) = match loaded {
        Ok(x) => x,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    chrome.plants = plants.plants.into_iter().map(|p| p.plant).collect();
    let tiles = health
        .processes
        .iter()
        .map(|p| Tile {
            href: chrome.keep_range(&links::process(&p.id)),
            id: p.id.clone(),
            name: p.name.clone(),
            started: fmt::count(p.instances.started as u64),
            in_flight: fmt::count(p.instances.in_flight as u64),
            stalled: fmt::count(p.instances.stalled as u64),
            completed: fmt::count(p.instances.completed as u64),
            failed: fmt::count(p.instances.failed as u64),
            compliance: fmt::percent(p.compliance_percent),
            compliance_class: compliance_class(p.compliance_percent),
            open_breaches: fmt::count(p.open_breaches),
            p95: p
                .end_to_end
                .p95_ns
                .map(fmt::duration)
                .unwrap_or_else(|| "–".into()),
            spark: svg::sparkline(
                &p.series.starts,
                &p.series.breaches,
                &format!(
                    "{}: instances started (line) and breaches due (red bars)",
                    p.name
                ),
            ),
        })
        .collect();
    let system_lines: Vec<SystemLine> = systems.systems.iter().map(SystemLine::from).collect();
    let breach_lines = open
        .breaches
        .iter()
        .map(|b| BreachLine {
            process_href: chrome.keep_range(&links::process(&b.process)),
            process: state.processes.name_of(&b.process).to_string(),
            sla: b.sla.clone(),
            key_href: chrome.keep_range(&links::key(&b.key.key_type, &b.key.value)),
            key: b.key.value.clone(),
            due: b.due_time.clone(),
            late: fmt::duration(b.late_ns.parse().unwrap_or(0)),
        })
        .collect();
    let empty =
        system_lines.is_empty() && health.processes.iter().all(|p| p.instances.started == 0);
    Ok(render(&Overview {
        all_open_href: chrome.href("/breaches", &[("open", "true")]),
        chrome,
        tiles,
        systems: system_lines,
        breaches: breach_lines,
        truncated: health.truncated,
        empty,
    }))
}
