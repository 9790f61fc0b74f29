//! `/api/v1/` handlers: A business key's journey.

use axum::extract::{Path, State};
use axum::Json;

use crate::error::AppError;
use crate::read::keys::*;
use crate::read::view;
use crate::read::view::KeyView;
use crate::state::AppState;
use domain::model::BusinessKey;
use serde_json::Value;
use store::query::KeyLookupLimits;

pub async fn get_key(
    State(state): State<AppState>,
    Path((key_type, value)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let key = parse_key(&state, &key_type, &value)?;
    let j = journey(&state, key).await?;
    let limits = KeyLookupLimits::default();
    let keys: Vec<&BusinessKey> = j.keys.iter().collect();
    let (instances, (spans, spans_truncated), (events, events_truncated)) = tokio::try_join!(
        instances(&state, &j.roots),
        async { Ok(state.store.spans_with_keys(&keys, limits.max_spans).await?) },
        async {
            Ok(state
                .store
                .events_with_keys(&keys, limits.max_spans)
                .await?)
        },
    )?;
    Ok(Json(serde_json::json!({
        "key": KeyView::from(&j.key),
        "linked_keys": j.linked.iter().map(|l| serde_json::json!({
            "type": l.key.key_type,
            "value": l.key.value,
            "relation": l.relation.as_str(),
            "via": KeyView::from(&l.via),
            "depth": l.depth,
        })).collect::<Vec<_>>(),
        "span_count": spans.len(),
        "spans": spans.iter().map(view::span).collect::<Vec<_>>(),
        "instances": instances,
        "event_count": events.len(),
        "events": events.iter().map(view::event).collect::<Vec<_>>(),
        "truncated": j.truncated || spans_truncated || events_truncated,
    })))
}
