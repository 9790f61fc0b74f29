//! `/admin` (admin role only): the ClickHouse this console reads (its
//! address without user info, and what is wrong with it in detail: the
//! open `/readyz` says only that something is), the process definitions,
//! alert rules, connector tokens, users and API keys this console runs with.
//! Read-only: they live in files, reviewed like code; hashes and passwords
//! are never shown.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use collector::auth::TokenConfig;

use super::{fmt, render, Chrome};
use crate::links;
use crate::state::AppState;

pub struct ProcessLine {
    pub id: String,
    pub name: String,
    pub key_type: String,
    pub stages: String,
    pub slas: String,
    pub file: String,
    pub href: String,
}

pub struct RuleLine {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub severity: String,
    pub for_text: String,
    pub labels: String,
    pub file: String,
    pub href: String,
}

/// ClickHouse as this console sees it.
pub struct ClickHouseLine {
    /// Without user info.
    pub url: String,
    pub database: String,
    /// Connect, statement and health check timeouts, as text.
    pub timeouts: String,
    /// `None`: it answers and is migrated; else the detail.
    pub problem: Option<String>,
    /// The server's release as it says it (`18.16.1`), once it answered.
    pub version: Option<String>,
    /// Why this process's collector cannot insert, when one runs here and
    /// cannot.
    pub writer: Option<String>,
}

#[derive(Template)]
#[template(path = "admin.html")]
pub struct AdminPage {
    pub chrome: Chrome,
    pub clickhouse: ClickHouseLine,
    pub processes: Vec<ProcessLine>,
    pub rules: Vec<RuleLine>,
    pub tokens: Vec<TokenConfig>,
    pub users: Vec<(String, &'static str)>,
    pub keys: Vec<(String, String, &'static str)>,
}

pub async fn page(State(state): State<AppState>, mut chrome: Chrome) -> Response {
    chrome.title = "Administration".into();
    let processes = state
        .processes
        .list
        .iter()
        .map(|p| ProcessLine {
            id: p.id.clone(),
            name: p.name.clone(),
            key_type: p.key_type.clone(),
            stages: p
                .stages
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(" → "),
            slas: p
                .slas
                .iter()
                .map(|s| {
                    format!(
                        "{}: {} → {} within {}",
                        s.id,
                        p.stages[s.from].id,
                        p.stages[s.to].id,
                        fmt::duration(s.within_ns)
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            file: p.file.clone(),
            href: links::process(&p.id),
        })
        .collect();
    let rules = state
        .alerts
        .list
        .iter()
        .map(|r| RuleLine {
            id: r.id.clone(),
            name: r.name.clone(),
            kind: r.condition.kind(),
            severity: r.severity.clone(),
            for_text: fmt::duration(r.for_ns),
            labels: r
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            file: r.file.clone(),
            href: links::alert(&r.id),
        })
        .collect();
    let config = state.store.config();
    let problem = collector::ops::clickhouse_problem(&state.store)
        .await
        .map(|p| p.detail);
    // Asked only of a server that answers (else what an earlier ask found).
    let version = match problem {
        None => state.store.server_version().await.ok(),
        Some(_) => state.store.known_server_version(),
    };
    let clickhouse = ClickHouseLine {
        url: domain::redact::url(&config.url),
        database: config.database.clone(),
        timeouts: format!(
            "connect {}, statement {}, health check {}",
            fmt::duration(config.timeouts.connect.as_nanos() as u64),
            fmt::duration(config.timeouts.query.as_nanos() as u64),
            fmt::duration(config.timeouts.health().as_nanos() as u64),
        ),
        problem,
        version: version.map(|v| v.text),
        writer: state
            .metrics
            .clickhouse_problem
            .lock()
            .expect("metrics lock")
            .clone(),
    };
    let auth = &state.auth;
    render(&AdminPage {
        chrome,
        clickhouse,
        processes,
        rules,
        tokens: auth.listed_tokens.clone(),
        users: auth
            .listed_users
            .iter()
            .map(|(n, r)| (n.clone(), r.as_str()))
            .collect(),
        keys: auth
            .listed_keys
            .iter()
            .map(|(id, n, r)| (id.clone(), n.clone(), r.as_str()))
            .collect(),
    })
}
