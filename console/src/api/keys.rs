//! `GET /api/v1/keys/{type}/{value}`: the spans and events carrying a
//! business key, the keys linked to it (transitively), and the spans and
//! events of the linked keys below it (a customer's orders and their work
//! orders), each list in time order.

use axum::extract::{Path, State};
use axum::Json;
use collector::keys::MAX_KEY_LEN;
use collector::model::{BusinessKey, Event, Span};
use collector::storage::query::{KeyLookupLimits, LinkedKey, Relation};
use serde_json::Value;

use super::view::{InstanceView, KeyView};
use super::{view, AppError, AppState};

/// Everything known about one business key: what the key page draws and
/// `/api/v1/keys/{type}/{value}` returns.
pub struct Journey {
    pub key: BusinessKey,
    pub linked: Vec<LinkedKey>,
    pub spans: Vec<Span>,
    pub events: Vec<Event>,
    pub instances: Vec<InstanceView>,
    pub truncated: bool,
}

/// A key value from a path, checked: a known type, 1 to MAX_KEY_LEN bytes.
pub fn parse_key(state: &AppState, key_type: &str, value: &str) -> Result<BusinessKey, AppError> {
    if state.keys.rank(key_type).is_none() {
        return Err(AppError::BadRequest(format!(
            "unknown key type `{key_type}`; known types: {}",
            state.keys.names().join(", ")
        )));
    }
    if value.trim().is_empty() || value.len() > MAX_KEY_LEN {
        return Err(AppError::BadRequest(format!(
            "a key value is 1 to {MAX_KEY_LEN} bytes; got {}",
            value.len()
        )));
    }
    Ok(BusinessKey::new(key_type, value.trim()))
}

/// The journey of `key`: its records and those of the keys below it, the
/// linked keys, and the process instances it takes part in.
pub async fn journey(state: &AppState, key: BusinessKey) -> Result<Journey, AppError> {
    if !state.store.key_seen(&key).await? {
        return Err(AppError::NotFound(format!(
            "no span, event or link has carried {} `{}`",
            key.key_type, key.value
        )));
    }
    let limits = KeyLookupLimits::default();
    let (linked, links_truncated) = state.store.linked_keys(&key, &state.keys, limits).await?;
    // The journey: the key itself and everything below it, not the parents'
    // other children.
    let journey: Vec<&BusinessKey> = std::iter::once(&key)
        .chain(
            linked
                .iter()
                .filter(|l| l.relation != Relation::Parent)
                .map(|l| &l.key),
        )
        .collect();
    // The process instances the key takes part in: those rooted at it or at
    // a key of the root type linked to it.
    let roots: Vec<(String, String)> = state
        .processes
        .list
        .iter()
        .flat_map(|def| {
            std::iter::once(&key)
                .chain(linked.iter().map(|l| &l.key))
                .filter(|k| k.key_type == def.key_type)
                .map(|k| (def.id.clone(), k.value.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let ((spans, spans_truncated), (events, events_truncated), instances) = tokio::try_join!(
        state.store.spans_with_keys(&journey, limits.max_spans),
        state.store.events_with_keys(&journey, limits.max_spans),
        state.store.instances_of(&roots),
    )?;
    let now = collector::now_ns();
    let instances = instances
        .iter()
        .filter_map(|row| {
            Some(view::instance(
                state.processes.get(&row.process_id)?,
                row,
                now,
            ))
        })
        .collect();
    Ok(Journey {
        key,
        linked,
        spans,
        events,
        instances,
        truncated: links_truncated || spans_truncated || events_truncated,
    })
}

pub async fn get_key(
    State(state): State<AppState>,
    Path((key_type, value)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let key = parse_key(&state, &key_type, &value)?;
    let j = journey(&state, key).await?;
    Ok(Json(serde_json::json!({
        "key": KeyView::from(&j.key),
        "linked_keys": j.linked.iter().map(|l| serde_json::json!({
            "type": l.key.key_type,
            "value": l.key.value,
            "relation": l.relation.as_str(),
            "via": KeyView::from(&l.via),
            "depth": l.depth,
        })).collect::<Vec<_>>(),
        "span_count": j.spans.len(),
        "spans": j.spans.iter().map(view::span).collect::<Vec<_>>(),
        "instances": j.instances,
        "event_count": j.events.len(),
        "events": j.events.iter().map(view::event).collect::<Vec<_>>(),
        "truncated": j.truncated,
    })))
}
