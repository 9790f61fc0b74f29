//! `GET /api/v1/events?system=&type=&outcome=&from=&to=&limit=&cursor=`:
//! events newest first, one page at a time.

use axum::extract::{Query, State};
use axum::Json;
use domain::model::Outcome;
use domain::now_ns;
use serde::Deserialize;
use serde_json::Value;
use store::query::EventFilter;

use crate::error::AppError;
use crate::read::{cursor, time_range, view};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    system: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

pub async fn list_events(
    State(state): State<AppState>,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let Query(params) = super::query(params, "system, type, outcome, from, to, limit, cursor")?;
    let (from_ns, to_ns) =
        time_range::range(params.from.as_deref(), params.to.as_deref(), now_ns())?;
    let outcome = match params.outcome.as_deref() {
        None | Some("") => None,
        Some(text) => Some(Outcome::parse(text).ok_or_else(|| {
            AppError::BadRequest(format!(
                "`outcome` {text:?} is not one of ok, failed, retried, dead_lettered"
            ))
        })?),
    };
    let limit = crate::read::limit(params.limit)?;
    if let Some(system) = &params.system {
        // The rule system names are stored by: what breaks it was never stored.
        domain::text::check_printable(system).map_err(|e| {
            AppError::BadRequest(format!("`system` {} {e}", crate::read::shown(system)))
        })?;
    }
    let filter = EventFilter {
        system: params.system.filter(|s| !s.is_empty()),
        event_type: params.event_type.filter(|s| !s.is_empty()),
        outcome,
        from_ns,
        to_ns,
        limit,
        after: params.cursor.as_deref().map(cursor::decode).transpose()?,
    };
    let (events, next) = state.store.list_events(&filter).await?;
    Ok(Json(serde_json::json!({
        "events": events.iter().map(view::event).collect::<Vec<_>>(),
        "next_cursor": next.as_ref().map(cursor::encode),
    })))
}
