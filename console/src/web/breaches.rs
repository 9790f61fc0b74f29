//! `/breaches`: SLA breaches filtered by process, SLA, state, plant and
//! range; each row links to its instance.

use askama::Template;
use axum::extract::State;

use super::{fmt, render, Chrome, ErrorPage, PageResult};
use crate::links;
use crate::read::breaches::{breaches, Params};
use crate::read::plants::plants;
use crate::state::AppState;

pub struct Line {
    pub process: String,
    pub process_href: String,
    pub sla: String,
    pub key: String,
    pub key_href: String,
    pub instance_href: String,
    pub state: String,
    pub due: String,
    pub to: String,
    pub late: String,
}

#[derive(Template)]
#[template(path = "breaches.html")]
pub struct BreachesPage {
    pub chrome: Chrome,
    /// `(id, name)` of every process.
    pub processes: Vec<(String, String)>,
    /// `(id, label)` of every SLA, for the select.
    pub slas: Vec<(String, String)>,
    pub process: String,
    pub sla: String,
    pub open: String,
    pub lines: Vec<Line>,
    pub next_href: Option<String>,
    /// Plants whose link is down, while open breaches are shown.
    pub links_down: Vec<String>,
}

pub async fn page(State(state): State<AppState>, mut chrome: Chrome) -> PageResult {
    chrome.title = "Breaches".into();
    let process = chrome.param("process").unwrap_or("").to_string();
    // An SLA of another process than the one chosen (the process was just
    // changed in the form) is dropped, not an error.
    let sla = chrome
        .param("sla")
        .filter(|sla| {
            process.is_empty()
                || state
                    .processes
                    .get(&process)
                    .is_none_or(|d| d.slas.iter().any(|s| s.id == *sla))
        })
        .unwrap_or("")
        .to_string();
    let open = chrome.param("open").unwrap_or("").to_string();
    let params = Params {
        process: Some(process.clone()),
        sla: Some(sla.clone()),
        open: Some(open.clone()),
        from: Some(chrome.from.clone()),
        to: Some(chrome.to.clone()),
        limit: Some(100),
        cursor: chrome.param("cursor").map(str::to_string),
        plant: chrome.window.plant.clone(),
    };
    let (page, plants) = match tokio::try_join!(breaches(&state, params), plants(&state)) {
        Ok(x) => x,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    chrome.plants = plants.plants.into_iter().map(|p| p.plant).collect();
    let lines = page
        .breaches
        .iter()
        .map(|b| Line {
            process_href: chrome.keep_range(&links::process(&b.process)),
            instance_href: chrome.href(&links::process(&b.process), &[("key", &b.key.value)]),
            process: state.processes.name_of(&b.process).to_string(),
            sla: b.sla.clone(),
            key_href: chrome.keep_range(&links::key(&b.key.key_type, &b.key.value)),
            key: b.key.value.clone(),
            state: b.state.clone(),
            due: b.due_time.clone(),
            to: b.to_time.clone().unwrap_or_default(),
            late: fmt::duration(b.late_ns.parse().unwrap_or(0)),
        })
        .collect();
    let processes = state
        .processes
        .list
        .iter()
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect();
    let slas = state
        .processes
        .list
        .iter()
        .filter(|p| process.is_empty() || p.id == process)
        .flat_map(|p| {
            p.slas
                .iter()
                .map(|s| (s.id.clone(), format!("{} ({})", s.name, p.name)))
        })
        .collect();
    let next_href = page
        .next_cursor
        .as_ref()
        .map(|c| chrome.link(&[("cursor", c)]));
    let links_down = page.links_down.clone();
    Ok(render(&BreachesPage {
        links_down,
        chrome,
        processes,
        slas,
        process,
        sla,
        open,
        lines,
        next_href,
    }))
}
