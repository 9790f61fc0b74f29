//! `GET /api/v1/events?system=&type=&outcome=&from=&to=&limit=&cursor=`:
//! events newest first, one page at a time.

use axum::extract::{Query, State};
use axum::Json;
use base64::Engine;
use collector::model::Outcome;
use collector::storage::query::{EventFilter, EventPosition};
use serde::Deserialize;
use serde_json::Value;

use super::{time_range, view, AppError, AppState};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

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

fn encode_cursor(position: &EventPosition) -> String {
    let json = serde_json::to_vec(position).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_cursor(text: &str) -> Result<EventPosition, AppError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            AppError::BadRequest(
                "`cursor` is not one this API gave out; pass next_cursor from the previous page unchanged".into(),
            )
        })
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub async fn list_events(
    State(state): State<AppState>,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let Query(params) = params.map_err(|e| {
        AppError::BadRequest(format!(
            "{}; known parameters: system, type, outcome, from, to, limit, cursor",
            e.body_text()
        ))
    })?;
    let now = now_ns();
    let from_ns = time_range::parse("from", params.from.as_deref().unwrap_or("now-24h"), now)
        .map_err(AppError::BadRequest)?;
    let to_ns = time_range::parse("to", params.to.as_deref().unwrap_or("now"), now)
        .map_err(AppError::BadRequest)?;
    if from_ns > to_ns {
        return Err(AppError::BadRequest("`from` is after `to`".into()));
    }
    let outcome = match params.outcome.as_deref() {
        None | Some("") => None,
        Some(text) => Some(Outcome::parse(text).ok_or_else(|| {
            AppError::BadRequest(format!(
                "`outcome` {text:?} is not one of ok, failed, retried, dead_lettered"
            ))
        })?),
    };
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(AppError::BadRequest(format!(
            "`limit` must be between 1 and {MAX_LIMIT}"
        )));
    }
    let filter = EventFilter {
        system: params.system.filter(|s| !s.is_empty()),
        event_type: params.event_type.filter(|s| !s.is_empty()),
        outcome,
        from_ns,
        to_ns,
        limit,
        after: params.cursor.as_deref().map(decode_cursor).transpose()?,
    };
    let (events, next) = state.store.list_events(&filter).await?;
    Ok(Json(serde_json::json!({
        "events": events.iter().map(view::event).collect::<Vec<_>>(),
        "next_cursor": next.as_ref().map(encode_cursor),
    })))
}
