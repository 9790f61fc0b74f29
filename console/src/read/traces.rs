//! `GET /api/v1/traces/{trace_id}`: a trace's spans and the events tied to it.

use domain::model::{Event, Span, TraceId};

use super::Reads;
use crate::error::AppError;

/// A trace id from a path, checked.
pub fn parse_trace_id(text: &str) -> Result<TraceId, AppError> {
    // The error of a long text repeats it; say only what is wrong with it.
    let valid = text.len() == TraceId::LEN * 2 && text.bytes().all(|b| b.is_ascii_hexdigit());
    let parsed = if valid {
        TraceId::from_hex(text).map_err(|e| e.to_string())
    } else {
        Err(format!(
            "is {} characters, not all hex",
            text.chars().count()
        ))
    };
    parsed.map_err(|e| {
        AppError::BadRequest(format!(
            "{} is not a trace id: it {e}; a trace id is 32 hex digits, not all zero",
            super::shown(text)
        ))
    })
}

/// A trace's spans (by start time) and the events tied to it; 404 when
/// neither is stored.
pub async fn load(state: &Reads, id: TraceId) -> Result<(Vec<Span>, Vec<Event>), AppError> {
    let (spans, events) =
        tokio::try_join!(state.store.trace_spans(id), state.store.trace_events(id))?;
    if spans.is_empty() && events.is_empty() {
        return Err(AppError::NotFound(format!(
            "no spans or events of trace {id} are stored"
        )));
    }
    Ok((spans, events))
}
