//! `/traces/{id}`: the span tree as a waterfall (service colours,
//! durations, status; attributes and span events on click) and the trace's
//! integration events.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};

use super::{fmt, render, svg, Chrome, ErrorPage, PageResult};
use crate::links;
use crate::read::traces::{load, parse_trace_id};
use crate::state::AppState;
use domain::model::{Span, StatusCode};
use domain::time::rfc3339;

pub struct Row {
    pub depth: usize,
    pub indent: usize,
    pub service: String,
    pub colour: &'static str,
    pub name: String,
    pub kind: String,
    pub offset: String,
    pub duration: String,
    /// Bar position and width in percent of the trace.
    pub left: String,
    pub width: String,
    pub error: bool,
    pub status: String,
    pub span_id: String,
    pub attributes: Vec<(String, String)>,
    pub resource: Vec<(String, String)>,
    /// `(offset, name, attributes)`.
    pub events: Vec<(String, String, String)>,
    /// `(type, value, href)`.
    pub keys: Vec<(String, String, String)>,
}

pub struct EventLine {
    pub time: String,
    pub system: String,
    pub event_type: String,
    pub outcome: String,
    pub attempt: u32,
    pub keys: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "trace.html")]
pub struct TracePage {
    pub chrome: Chrome,
    pub trace_id: String,
    pub start: String,
    pub duration: String,
    pub services: Vec<(String, &'static str)>,
    pub rows: Vec<Row>,
    pub events: Vec<EventLine>,
    pub errors: usize,
}

/// Spans in tree order (each parent before its children, siblings by start
/// time), with their depth; a span whose parent is not stored is a root.
fn tree_order(spans: &[Span]) -> Vec<(usize, &Span)> {
    let ids: HashMap<_, _> = spans.iter().map(|s| (s.span_id, ())).collect();
    let mut children: HashMap<Option<domain::model::SpanId>, Vec<&Span>> = HashMap::new();
    for s in spans {
        let parent = s.parent_span_id.filter(|p| ids.contains_key(p));
        children.entry(parent).or_default().push(s);
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| (s.start_ns, s.span_id.to_hex()));
    }
    let mut out = Vec::with_capacity(spans.len());
    let mut stack: Vec<(usize, &Span)> = children
        .get(&None)
        .map(|roots| roots.iter().rev().map(|s| (0, *s)).collect())
        .unwrap_or_default();
    // By id and service: two systems' spans may share ids, and both show.
    let mut placed = std::collections::HashSet::new();
    while let Some((depth, span)) = stack.pop() {
        if !placed.insert((span.span_id, span.service.as_str())) {
            continue;
        }
        out.push((depth, span));
        if let Some(kids) = children.get(&Some(span.span_id)) {
            stack.extend(kids.iter().rev().map(|k| (depth + 1, *k)));
        }
    }
    // Spans whose parents form a cycle (a sender's bug) reach no root:
    // shown at the top level rather than lost.
    for s in spans {
        if placed.insert((s.span_id, s.service.as_str())) {
            out.push((0, s));
        }
    }
    out
}

pub async fn page(
    State(state): State<AppState>,
    Path(trace_id): Path<String>,
    mut chrome: Chrome,
) -> PageResult {
    chrome.title = format!("Trace {trace_id}");
    let loaded = match parse_trace_id(&trace_id) {
        Ok(id) => load(&state, id).await.map(|x| (id, x)),
        Err(e) => Err(e),
    };
    let (id, (spans, events)) = match loaded {
        Ok(x) => x,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    let key_link = |t: &str, v: &str| {
        (
            t.replace('_', " "),
            v.to_string(),
            chrome.keep_range(&links::key(t, v)),
        )
    };
    let t0 = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let t1 = spans
        .iter()
        .map(|s| s.start_ns.saturating_add(s.duration_ns))
        .max()
        .unwrap_or(t0)
        .max(t0.saturating_add(1));
    let total = (t1 - t0) as f64;
    let mut services: Vec<(String, &'static str)> = Vec::new();
    let rows: Vec<Row> = tree_order(&spans)
        .into_iter()
        .map(|(depth, s)| {
            if !services.iter().any(|(n, _)| n == &s.service) {
                services.push((s.service.clone(), svg::colour(&s.service)));
            }
            let left = (s.start_ns - t0) as f64 * 100.0 / total;
            let width = (s.duration_ns as f64 * 100.0 / total)
                .max(0.3)
                .min(100.0 - left);
            Row {
                depth,
                indent: depth.min(12) * 14,
                colour: svg::colour(&s.service),
                service: s.service.clone(),
                name: s.name.clone(),
                kind: s.kind.as_str().to_string(),
                offset: fmt::duration(s.start_ns - t0),
                duration: fmt::duration(s.duration_ns),
                left: format!("{left:.2}"),
                width: format!("{width:.2}"),
                error: s.status_code == StatusCode::Error,
                status: if s.status_message.is_empty() {
                    s.status_code.as_str().to_string()
                } else {
                    format!("{}: {}", s.status_code.as_str(), s.status_message)
                },
                span_id: s.span_id.to_hex(),
                attributes: s.attributes.clone(),
                resource: s.resource.clone(),
                events: s
                    .events
                    .iter()
                    .map(|e| {
                        (
                            fmt::duration(e.time_ns.saturating_sub(t0)),
                            e.name.clone(),
                            e.attributes
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(" "),
                        )
                    })
                    .collect(),
                keys: s
                    .keys
                    .iter()
                    .map(|k| key_link(&k.key_type, &k.value))
                    .collect(),
            }
        })
        .collect();
    let events = events
        .iter()
        .map(|e| EventLine {
            time: rfc3339(e.time_ns),
            system: e.system.clone(),
            event_type: e.event_type.clone(),
            outcome: e.outcome.as_str().to_string(),
            attempt: e.attempt,
            keys: e
                .keys
                .iter()
                .map(|k| key_link(&k.key_type, &k.value))
                .collect(),
        })
        .collect();
    Ok(render(&TracePage {
        trace_id: id.to_hex(),
        start: if spans.is_empty() {
            String::new()
        } else {
            rfc3339(t0)
        },
        duration: if spans.is_empty() {
            String::new()
        } else {
            fmt::duration(t1 - t0)
        },
        errors: rows.iter().filter(|r| r.error).count(),
        services,
        rows,
        events,
        chrome,
    }))
}
