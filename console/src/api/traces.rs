//! `/api/v1/` handlers: A trace by id.

use axum::extract::{Path, State};
use axum::Json;

use crate::error::AppError;
use crate::read::traces::*;
use crate::read::view;
use crate::state::AppState;
use serde_json::Value;

pub async fn get_trace(
    State(state): State<AppState>,
    Path(trace_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = parse_trace_id(&trace_id)?;
    let (spans, events) = load(&state, id).await?;
    Ok(Json(serde_json::json!({
        "trace_id": id.to_hex(),
        "span_count": spans.len(),
        "spans": spans.iter().map(view::span).collect::<Vec<_>>(),
        "event_count": events.len(),
        "events": events.iter().map(view::event).collect::<Vec<_>>(),
    })))
}
