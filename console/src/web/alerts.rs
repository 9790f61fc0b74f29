//! `/alerts`: every alert rule with its state, value and since when;
//! `/alerts/{id}`: one rule, what makes it fire (linked to the instances or
//! systems), its history and its delivery attempts.

use askama::Template;
use axum::extract::{Path, State};

use super::{render, Chrome, ErrorPage, PageResult};
use crate::links;
use crate::read::alerts::{alert, alerts, AlertDetail, AlertView};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "alerts.html")]
pub struct AlertsPage {
    pub chrome: Chrome,
    /// The rules, firing first, with the link to each one's page.
    pub alerts: Vec<(AlertView, String)>,
}

#[derive(Template)]
#[template(path = "alert.html")]
pub struct AlertPage {
    pub chrome: Chrome,
    /// The rule, its state, history and delivery attempts (the API's answer).
    pub detail: AlertDetail,
    /// `(label, href)` of what makes it fire, the range kept.
    pub affected: Vec<(String, String)>,
}

pub async fn list(State(state): State<AppState>, mut chrome: Chrome) -> PageResult {
    chrome.title = "Alerts".into();
    let answer = match alerts(&state).await {
        Ok(a) => a,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    let alerts = answer
        .alerts
        .into_iter()
        .map(|a| {
            let href = chrome.keep_range(&links::alert(&a.id));
            (a, href)
        })
        .collect();
    Ok(render(&AlertsPage { chrome, alerts }))
}

pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    mut chrome: Chrome,
) -> PageResult {
    chrome.title = format!("Alert {id}");
    let detail = match alert(&state, &id).await {
        Ok(d) => d,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    let affected = detail
        .alert
        .affected
        .iter()
        .map(|s| {
            let href = if s.href.starts_with("/api/") {
                s.href.clone()
            } else {
                chrome.keep_range(&s.href)
            };
            (format!("{} {}", s.kind, s.value), href)
        })
        .collect();
    Ok(render(&AlertPage {
        chrome,
        detail,
        affected,
    }))
}
