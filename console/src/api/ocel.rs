//! `GET /api/v1/export/ocel?from=&to=&process=`: integration events as an
//! OCEL 2.0 JSON log, so process-mining tools can open them. Events keep
//! their type and time; business keys are objects typed by key type
//! (`order`, `work_order`, `customer`, ...); each event relates to the keys
//! it carried; key links are object-to-object relations.
//!
//! The log is streamed: events are read a page at a time by their sort key
//! and written as they come, so an export costs one page of events and the
//! set of keys and types they name, however long the range. A ClickHouse
//! failure part-way ends the stream early: the client gets JSON that does
//! not parse, never a log that looks whole.

use std::collections::BTreeSet;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use domain::model::{BusinessKey, Event};
use domain::now_ns;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::read::time_range;
use crate::state::AppState;

/// Events read and written at a time.
const PAGE: usize = 2_000;
/// Keys whose links are read at a time.
const LINK_CHUNK: usize = 1_000;

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
    let export = Export {
        state,
        from_ns,
        to_ns,
        types,
        phase: Phase::Start,
        objects: BTreeSet::new(),
        event_types: BTreeSet::new(),
    };
    let stream = futures_util::stream::unfold(export, |mut export| async move {
        match export.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(Bytes::from(chunk)), export)),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "the OCEL export stopped part-way");
                export.phase = Phase::Done;
                Some((Err(e), export))
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"throughline.jsonocel\"",
            ),
        ],
        Body::from_stream(stream),
    ))
}

/// Where a streamed export stands.
enum Phase {
    Start,
    /// Events after this position (time, source, id) come next.
    Events(Option<(u64, String, String)>),
    /// Objects from this index of the sorted keys come next.
    Objects(usize),
    Types,
    Done,
}

/// One export in progress: what it read so far is only the keys and event
/// types it must list at the end.
struct Export {
    state: AppState,
    from_ns: u64,
    to_ns: u64,
    types: Option<Vec<String>>,
    phase: Phase,
    objects: BTreeSet<BusinessKey>,
    event_types: BTreeSet<String>,
}

impl Export {
    /// The next piece of the document; `None` once it is whole.
    async fn next_chunk(&mut self) -> Result<Option<String>, store::StoreError> {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Start => {
                self.phase = Phase::Events(None);
                Ok(Some("{\"events\":[".into()))
            }
            Phase::Events(after) => {
                let events = self
                    .state
                    .store
                    .events_between(
                        self.from_ns,
                        self.to_ns,
                        self.types.as_deref(),
                        after.as_ref().map(|(t, s, i)| (*t, s.as_str(), i.as_str())),
                        PAGE,
                    )
                    .await?;
                let mut out = String::new();
                for e in &events {
                    if after.is_some() || !out.is_empty() {
                        out.push(',');
                    }
                    out.push_str(&event_json(e).to_string());
                    self.objects.extend(e.keys.iter().cloned());
                    self.event_types.insert(e.event_type.clone());
                }
                self.phase = match events.last() {
                    Some(last) if events.len() == PAGE => {
                        Phase::Events(Some((last.time_ns, last.source.clone(), last.id.clone())))
                    }
                    _ => {
                        out.push_str("],\"objects\":[");
                        Phase::Objects(0)
                    }
                };
                Ok(Some(out))
            }
            Phase::Objects(start) => {
                let keys: Vec<&BusinessKey> =
                    self.objects.iter().skip(start).take(LINK_CHUNK).collect();
                if keys.is_empty() {
                    self.phase = Phase::Types;
                    return Ok(Some("],".into()));
                }
                let links = self.state.store.direct_links(&keys).await?;
                let rank = |k: &BusinessKey| self.state.keys.rank(&k.key_type).unwrap_or(u8::MAX);
                let mut out = String::new();
                for (i, k) in keys.iter().enumerate() {
                    if start + i > 0 {
                        out.push(',');
                    }
                    let relationships: Vec<Value> = links
                        .get(*k)
                        .into_iter()
                        .flatten()
                        .filter(|other| self.objects.contains(*other))
                        .map(|other| {
                            let qualifier = match rank(other).cmp(&rank(k)) {
                                std::cmp::Ordering::Less => "part of",
                                std::cmp::Ordering::Greater => "contains",
                                std::cmp::Ordering::Equal => "related to",
                            };
                            json!({ "objectId": object_id(other), "qualifier": qualifier })
                        })
                        .collect();
                    out.push_str(
                        &json!({
                            "id": object_id(k),
                            "type": k.key_type,
                            "attributes": [{ "name": "value", "time": "1970-01-01T00:00:00Z", "value": k.value }],
                            "relationships": relationships,
                        })
                        .to_string(),
                    );
                }
                self.phase = Phase::Objects(start + keys.len());
                Ok(Some(out))
            }
            Phase::Types => {
                let object_types: Vec<Value> = self
                    .objects
                    .iter()
                    .map(|k| k.key_type.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(|t| json!({ "name": t, "attributes": [{ "name": "value", "type": "string" }] }))
                    .collect();
                let event_types: Vec<Value> = self
                    .event_types
                    .iter()
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
                Ok(Some(format!(
                    "\"objectTypes\":{},\"eventTypes\":{}}}",
                    Value::Array(object_types),
                    Value::Array(event_types)
                )))
            }
            Phase::Done => Ok(None),
        }
    }
}
