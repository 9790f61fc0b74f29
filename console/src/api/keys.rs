//! `/api/v1/` handlers: A business key's journey,
//! `GET /api/v1/keys/{type}/{value}?limit=&after=`: the key, its linked keys
//! with a summary each, the journey's total, and one page of its records,
//! newest first, with `next` for the page after.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::error::AppError;
use crate::read::keys::*;
use crate::read::view::KeyView;
use crate::read::{cursor, view};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    limit: Option<usize>,
    after: Option<String>,
}

/// A key's summary as the API gives it: its counts and the instances rooted
/// at it.
fn key_summary(s: &KeySummary) -> Value {
    let mut v = view::counts(&s.counts);
    v["instances"] = s
        .instances
        .iter()
        .map(|(process, status)| serde_json::json!({ "process": process, "status": status }))
        .collect();
    v
}

pub async fn get_key(
    State(state): State<AppState>,
    Path((key_type, value)): Path<(String, String)>,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let Query(params) = super::query(params, "limit, after")?;
    let limit = crate::read::limit(params.limit)?;
    let after = params
        .after
        .as_deref()
        .map(|a| cursor::decode_param(a, "after", "next"))
        .transpose()?;
    let key = parse_key(&state, &key_type, &value)?;
    let j = journey(&state, key).await?;
    let (summary, records, next) = summary_and_records(&state, &j, limit, after.as_ref()).await?;
    let own = &summary.keys[0];
    Ok(Json(serde_json::json!({
        "key": KeyView::from(&j.key),
        "summary": key_summary(own),
        "linked_keys": summary.keys[1..].iter().filter_map(|s| {
            let l = s.link.as_ref()?;
            Some(serde_json::json!({
                "type": l.key.key_type,
                "value": l.key.value,
                "relation": l.relation.as_str(),
                "via": KeyView::from(&l.via),
                "depth": l.depth,
                "summary": key_summary(s),
            }))
        }).collect::<Vec<_>>(),
        "instances": summary.instances,
        "truncated": j.truncated,
        "total": summary.total.records(),
        "span_count": summary.total.spans,
        "event_count": summary.total.events,
        "failures": summary.total.failures,
        "records": records.iter().map(view::journey_record).collect::<Vec<_>>(),
        "next": next.as_ref().map(cursor::encode),
    })))
}
