//! `/search?q=`: one match goes straight to its page; several are listed;
//! none says so plainly.

use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

use super::{render, Chrome, ErrorPage, PageResult};
use crate::read::search::{search, Match};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "search.html")]
pub struct SearchPage {
    pub chrome: Chrome,
    pub query: String,
    /// `(label, href)` per match.
    pub matches: Vec<(String, String)>,
    pub key_types: String,
}

fn label(m: &Match) -> String {
    match &m.key_type {
        Some(t) => format!("{} {}", t.replace('_', " "), m.value),
        None => format!("trace {}", m.value),
    }
}

pub async fn page(State(state): State<AppState>, mut chrome: Chrome) -> PageResult {
    chrome.title = "Search".into();
    let q = chrome.search.clone();
    let result = match search(&state, &q).await {
        Ok(r) => r,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    if let [only] = result.matches.as_slice() {
        let to = chrome.keep_range(&only.page);
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response());
    }
    let matches: Vec<(String, String)> = result
        .matches
        .iter()
        .map(|m| (label(m), chrome.keep_range(&m.page)))
        .collect();
    let found = !matches.is_empty();
    let page = SearchPage {
        key_types: state.keys.names().join(", "),
        query: result.query,
        matches,
        chrome,
    };
    let mut response = render(&page);
    if !found {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    Ok(response)
}
