//! `GET /api/v1/search?q=`: which business keys or trace has this id. Any
//! id goes in: an order, work order or customer id (of any configured key
//! type), `type:value`, or a trace id; the answer lists every match.

use domain::keys::MAX_KEY_LEN;
use domain::model::TraceId;
use domain::text::check_printable;
use serde::{Deserialize, Serialize};

use super::Reads;
use crate::error::AppError;
use crate::links;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub q: Option<String>,
}

/// One thing the id names.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Match {
    /// `key` or `trace`.
    pub kind: &'static str,
    /// The key type, for a key.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    pub value: String,
    /// The console page that shows it.
    pub page: String,
    /// The API address of its data.
    pub api: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    pub query: String,
    pub matches: Vec<Match>,
}

fn key_match(key_type: &str, value: &str) -> Match {
    Match {
        kind: "key",
        key_type: Some(key_type.to_string()),
        value: value.to_string(),
        page: links::key(key_type, value),
        api: links::key_api(key_type, value),
    }
}

/// Every key or trace `q` names. Values are tried as typed, then upper-cased
/// (people type `so-1001` for `SO-1001`).
pub async fn search(state: &Reads, q: &str) -> Result<SearchResult, AppError> {
    let q = q.trim();
    if q.is_empty() {
        return Err(AppError::BadRequest(
            "`q` is empty; give an order, work order or customer id, `type:value`, or a trace id"
                .into(),
        ));
    }
    if q.len() > MAX_KEY_LEN {
        return Err(AppError::BadRequest(format!(
            "`q` is {} bytes; an id is at most {MAX_KEY_LEN}",
            q.len()
        )));
    }
    // The rule keys are stored by: what breaks it was never stored.
    if let Err(e) = check_printable(q) {
        return Err(AppError::BadRequest(format!("`q` {} {e}", super::shown(q))));
    }
    let names = state.keys.names();
    // `order:SO-1001` names its type.
    let (types, value): (Vec<&str>, &str) = match q.split_once(':') {
        Some((t, v)) if names.contains(&t.trim()) && !v.trim().is_empty() => {
            (vec![t.trim()], v.trim())
        }
        _ => (names.clone(), q),
    };
    let mut matches = Vec::new();
    let mut tried = vec![value.to_string()];
    let upper = value.to_uppercase();
    if upper != value {
        tried.push(upper);
    }
    for candidate in &tried {
        for t in state.store.key_types_with_value(&types, candidate).await? {
            matches.push(key_match(&t, candidate));
        }
        if !matches.is_empty() {
            break;
        }
    }
    if let Ok(trace_id) = TraceId::from_hex(&q.to_lowercase()) {
        if state.store.trace_seen(trace_id).await? {
            let hex = trace_id.to_hex();
            matches.push(Match {
                kind: "trace",
                key_type: None,
                page: links::trace(&hex),
                api: links::trace_api(&hex),
                value: hex,
            });
        }
    }
    Ok(SearchResult {
        query: q.to_string(),
        matches,
    })
}
