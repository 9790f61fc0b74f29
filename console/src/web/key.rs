//! `/keys/{type}/{value}`: one business key's journey across systems: a
//! timeline with a swimlane per system, the process instances with each
//! stage's time and each SLA's state, the linked keys, and the raw records.

use askama::Template;
use axum::extract::{Path, State};

use super::process::sla_text;
use super::svg::{self, Mark};
use super::{fmt, render, Chrome, ErrorPage, PageResult};
use crate::api::keys::{journey, parse_key};
use crate::api::view::urlencode;
use crate::api::AppState;
use collector::model::{Outcome, StatusCode};
use collector::storage::query::Relation;

pub struct StageCell {
    pub name: String,
    pub system: String,
    pub time: String,
}

pub struct InstanceBlock {
    pub process: String,
    pub process_href: String,
    pub key: String,
    pub status: String,
    pub stages: Vec<StageCell>,
    /// `(name, from → to, within, state, text)`.
    pub slas: Vec<(String, String, String, &'static str, String)>,
}

pub struct LinkLine {
    pub relation: &'static str,
    pub key_type: String,
    pub value: String,
    pub href: String,
    pub via: String,
}

pub struct SpanLine {
    pub time: String,
    pub service: String,
    pub colour: &'static str,
    pub name: String,
    pub duration: String,
    pub error: bool,
    pub status: String,
    pub keys: String,
    pub trace_href: String,
}

pub struct EventLine {
    pub anchor: String,
    pub time: String,
    pub system: String,
    pub colour: &'static str,
    pub event_type: String,
    pub outcome: String,
    pub attempt: u32,
    pub keys: String,
    pub data: String,
    pub trace_href: Option<String>,
}

#[derive(Template)]
#[template(path = "key.html")]
pub struct KeyPage {
    pub chrome: Chrome,
    pub key_type: String,
    pub value: String,
    pub timeline: String,
    pub instances: Vec<InstanceBlock>,
    pub links: Vec<LinkLine>,
    pub spans: Vec<SpanLine>,
    pub events: Vec<EventLine>,
    pub failures: usize,
    pub retries: usize,
    pub truncated: bool,
}

fn keys_text(keys: &[collector::model::BusinessKey]) -> String {
    keys.iter()
        .map(|k| format!("{}={}", k.key_type, k.value))
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn page(
    State(state): State<AppState>,
    Path((key_type, value)): Path<(String, String)>,
    mut chrome: Chrome,
) -> PageResult {
    chrome.title = format!("{} {}", key_type.replace('_', " "), value);
    let j = match parse_key(&state, &key_type, &value) {
        Ok(key) => journey(&state, key).await,
        Err(e) => Err(e),
    };
    let j = match j {
        Ok(j) => j,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    let trace_href = |hex: String| chrome.keep_range(&format!("/traces/{hex}"));
    let mut marks = Vec::with_capacity(j.spans.len() + j.events.len());
    let (mut failures, mut retries) = (0, 0);
    for s in &j.spans {
        let error = s.status_code == StatusCode::Error;
        failures += usize::from(error);
        marks.push(Mark {
            lane: s.service.clone(),
            start_ns: s.start_ns,
            duration_ns: s.duration_ns.max(1),
            label: format!(
                "{} · {} · {}",
                s.name,
                fmt::duration(s.duration_ns),
                fmt::time(s.start_ns)
            ),
            state: if error { "error" } else { "ok" },
            href: Some(trace_href(s.trace_id.to_hex())),
        });
    }
    let events: Vec<EventLine> = j
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let state = match e.outcome {
                Outcome::Failed | Outcome::DeadLettered => "error",
                Outcome::Retried => "retry",
                _ if e.attempt > 1 => "retry",
                _ => "ok",
            };
            failures += usize::from(state == "error");
            retries += usize::from(state == "retry");
            let anchor = format!("ev-{i}");
            marks.push(Mark {
                lane: e.system.clone(),
                start_ns: e.time_ns,
                duration_ns: 0,
                label: format!(
                    "{} · {} · attempt {} · {}",
                    e.event_type,
                    e.outcome.as_str(),
                    e.attempt,
                    fmt::time(e.time_ns)
                ),
                state,
                href: Some(match e.trace_id {
                    Some(t) => trace_href(t.to_hex()),
                    None => format!("#{anchor}"),
                }),
            });
            EventLine {
                anchor,
                time: crate::api::view::rfc3339(e.time_ns),
                colour: svg::colour(&e.system),
                system: e.system.clone(),
                event_type: e.event_type.clone(),
                outcome: e.outcome.as_str().to_string(),
                attempt: e.attempt,
                keys: keys_text(&e.keys),
                data: e.data.chars().take(2000).collect(),
                trace_href: e.trace_id.map(|t| trace_href(t.to_hex())),
            }
        })
        .collect();
    let spans = j
        .spans
        .iter()
        .map(|s| SpanLine {
            time: crate::api::view::rfc3339(s.start_ns),
            colour: svg::colour(&s.service),
            service: s.service.clone(),
            name: s.name.clone(),
            duration: fmt::duration(s.duration_ns),
            error: s.status_code == StatusCode::Error,
            status: s.status_code.as_str().to_string(),
            keys: keys_text(&s.keys),
            trace_href: trace_href(s.trace_id.to_hex()),
        })
        .collect();
    let instances = j
        .instances
        .iter()
        .map(|i| InstanceBlock {
            process_href: chrome.href(
                &format!("/processes/{}", urlencode(&i.process)),
                &[("key", &i.key.value)],
            ),
            process: state
                .processes
                .get(&i.process)
                .map(|d| d.name.clone())
                .unwrap_or_else(|| i.process.clone()),
            key: i.key.value.clone(),
            status: i.status.clone(),
            stages: i
                .stages
                .iter()
                .map(|s| StageCell {
                    name: s.name.clone(),
                    system: s.system.clone(),
                    time: s.time.clone().unwrap_or_default(),
                })
                .collect(),
            slas: i
                .slas
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        format!("{} → {}", s.from, s.to),
                        s.within.clone(),
                        s.state,
                        sla_text(s),
                    )
                })
                .collect(),
        })
        .collect();
    let mut links: Vec<LinkLine> = j
        .linked
        .iter()
        .map(|l| LinkLine {
            relation: match l.relation {
                Relation::Parent => "belongs to",
                Relation::Child => "includes",
                Relation::Peer => "same as",
            },
            href: chrome.keep_range(&format!(
                "/keys/{}/{}",
                urlencode(&l.key.key_type),
                urlencode(&l.key.value)
            )),
            key_type: l.key.key_type.replace('_', " "),
            value: l.key.value.clone(),
            via: if l.depth > 1 {
                format!("via {} {}", l.via.key_type.replace('_', " "), l.via.value)
            } else {
                String::new()
            },
        })
        .collect();
    links.sort_by(|a, b| {
        (a.relation, &a.key_type, &a.value).cmp(&(b.relation, &b.key_type, &b.value))
    });
    Ok(render(&KeyPage {
        key_type: j.key.key_type.replace('_', " "),
        value: j.key.value.clone(),
        timeline: if marks.is_empty() {
            String::new()
        } else {
            svg::timeline(&marks)
        },
        instances,
        links,
        spans,
        events,
        failures,
        retries,
        truncated: j.truncated,
        chrome,
    }))
}
