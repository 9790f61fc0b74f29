//! The read layer: one plain function per question the console answers
//! (`health`, `instances`, `breaches`, `journey`, `systems`, `search`, ...),
//! returning typed values that the JSON API serializes and the pages format,
//! so a figure on a page is the API's. Also what both check and share:
//! ids and keys from URLs, time ranges (`time_range`), cursors (`cursor`)
//! and the JSON shapes of records (`view`).

pub mod alerts;
pub mod breaches;
pub mod cursor;
pub mod keys;
pub mod owners;
pub mod plants;
pub mod processes;
pub mod search;
pub mod slos;
pub mod storage;
pub mod systems;
pub mod time_range;
pub mod traces;
pub mod view;

use std::sync::Arc;

use domain::keys::KeyTypes;
use domain::process::Processes;
use store::Store;

use crate::error::AppError;

/// What the read functions read with. Cheap to clone.
#[derive(Clone)]
pub struct Reads {
    pub store: Store,
    pub keys: Arc<KeyTypes>,
    /// The process definitions.
    pub processes: Arc<Processes>,
    /// Range aggregates reused while fresh.
    pub caches: Arc<systems::Caches>,
    /// The alert rules (their state is read from ClickHouse).
    pub alerts: Arc<engine::alerts::rules::Rules>,
    /// What retention keeps (shown; the pass runs with the correlator).
    pub retention: Arc<store::retention::Retention>,
}

/// User text quoted for an error message: in backticks, control characters
/// and bidi controls escaped, cut to 64 characters so a long path is not
/// echoed whole.
pub fn shown(text: &str) -> String {
    const MAX: usize = 64;
    let mut out = String::from("`");
    for c in text.chars().take(MAX) {
        if domain::text::is_unprintable(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    if text.chars().nth(MAX).is_some() {
        out.push_str("...");
    }
    out
}

/// An id of a process or alert rule from a URL, checked for its shape
/// before it is looked up; `what` names it in the message.
pub fn check_id(what: &str, id: &str) -> Result<(), AppError> {
    if domain::process::definition::valid_id(id) {
        return Ok(());
    }
    Err(AppError::BadRequest(format!(
        "{} is not a valid {what} id; ids are 1 to 64 lowercase letters, digits, `_` and `-`, starting with a letter or digit",
        shown(id)
    )))
}

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// `limit`: 1 to 1000, default 100.
pub fn limit(requested: Option<usize>) -> Result<usize, AppError> {
    let limit = requested.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(AppError::BadRequest(format!(
            "`limit` must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok(limit)
}
