//! `GET /api/v1/export/ocel?from=&to=&process=`: integration events as an
//! OCEL 2.0 JSON log, so process-mining tools can open them. Events keep
//! their type and time; business keys are objects typed by key type
//! (`order`, `work_order`, `customer`, ...); each event relates to the keys
//! it carried; key links are object-to-object relations.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use domain::model::{BusinessKey, Event};
use domain::now_ns;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::read::time_range;
use crate::state::AppState;

/// Events in one export at most.
const MAX_EVENTS: usize = 100_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    from: Option<String>,
    to: Option<String>,
    process: Option<String>,
}

fn object_id(key: &BusinessKey) -> String {
    format!("{}:{}", key.key_type, key.value)
}

/// The attributes every event type declares, with their OCEL types.
const EVENT_ATTRIBUTES: &[(&str, &str)] = &[
    ("system", "string"),
    ("source", "string"),
    ("outcome", "string"),
    ("attempt", "integer"),
    ("subject", "string"),
    ("trace_id", "string"),
];

fn event_json(e: &Event) -> Value {
    let relationships: Vec<Value> = e
        .keys
        .iter()
        .map(|k| json!({ "objectId": object_id(k), "qualifier": k.key_type }))
        .collect();
    json!({
        "id": format!("{}/{}", e.source, e.id),
        "type": e.event_type,
        "time": domain::time::rfc3339(e.time_ns),
        "attributes": [
            { "name": "system", "value": e.system },
            { "name": "source", "value": e.source },
            { "name": "outcome", "value": e.outcome.as_str() },
            { "name": "attempt", "value": e.attempt },
            { "name": "subject", "value": e.subject },
            { "name": "trace_id", "value": e.trace_id.map(|t| t.to_hex()).unwrap_or_default() },
        ],
        "relationships": relationships,
    })
}

pub async fn export(
    State(state): State<AppState>,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(params) = super::query(params, "from, to, process")?;
    let (from_ns, to_ns) =
        time_range::range(params.from.as_deref(), params.to.as_deref(), now_ns())?;
    let types: Option<Vec<String>> = match params.process.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(id) => {
            let def = crate::read::processes::process(&state, id)?;
            Some(def.stages.iter().filter_map(|s| s.event.clone()).collect())
        }
    };
    let events = state
        .store
        .events_between(from_ns, to_ns, types.as_deref(), MAX_EVENTS + 1)
        .await?;
    let truncated = events.len() > MAX_EVENTS;
    let events = &events[..events.len().min(MAX_EVENTS)];

    let objects: BTreeSet<BusinessKey> =
        events.iter().flat_map(|e| e.keys.iter().cloned()).collect();
    let refs: Vec<&BusinessKey> = objects.iter().collect();
    let mut links: BTreeMap<BusinessKey, BTreeSet<BusinessKey>> = BTreeMap::new();
    for chunk in refs.chunks(1000) {
        links.extend(state.store.direct_links(chunk).await?);
    }
    let rank = |k: &BusinessKey| state.keys.rank(&k.key_type).unwrap_or(u8::MAX);
    let objects_json: Vec<Value> = objects
        .iter()
        .map(|k| {
            let relationships: Vec<Value> = links
                .get(k)
                .into_iter()
                .flatten()
                .filter(|other| objects.contains(*other))
                .map(|other| {
                    let qualifier = match rank(other).cmp(&rank(k)) {
                        std::cmp::Ordering::Less => "part of",
                        std::cmp::Ordering::Greater => "contains",
                        std::cmp::Ordering::Equal => "related to",
                    };
                    json!({ "objectId": object_id(other), "qualifier": qualifier })
                })
                .collect();
            json!({
                "id": object_id(k),
                "type": k.key_type,
                "attributes": [{ "name": "value", "time": "1970-01-01T00:00:00Z", "value": k.value }],
                "relationships": relationships,
            })
        })
        .collect();
    let object_types: Vec<Value> = objects
        .iter()
        .map(|k| k.key_type.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|t| json!({ "name": t, "attributes": [{ "name": "value", "type": "string" }] }))
        .collect();
    let event_types: Vec<Value> = events
        .iter()
        .map(|e| e.event_type.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|t| {
            json!({
                "name": t,
                "attributes": EVENT_ATTRIBUTES
                    .iter()
                    .map(|(name, ty)| json!({ "name": name, "type": ty }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let body = json!({
        "objectTypes": object_types,
        "eventTypes": event_types,
        "objects": objects_json,
        "events": events.iter().map(event_json).collect::<Vec<_>>(),
    });
    Ok((
        [
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"throughline.jsonocel\"",
            ),
            (
                header::HeaderName::from_static("x-throughline-truncated"),
                if truncated { "true" } else { "false" },
            ),
        ],
        Json(body),
    ))
}
