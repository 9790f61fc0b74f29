//! `/keys/{type}/{value}`: one business key's journey across systems: a
//! timeline with a swimlane per system, the process instances with each
//! stage's time and each SLA's state, the linked keys, and the raw records.

use askama::Template;
use axum::extract::{Path, State};

use super::process::sla_text;
use super::svg::{self, Mark};
use super::{fmt, render, Chrome, ErrorPage, PageResult};
use crate::links;
use crate::read::keys::{instances, journey, journey_records, parse_key};
use crate::state::AppState;
use domain::feed::RecordKind;
use domain::model::{BusinessKey, TraceId};
use domain::time::rfc3339;
use store::query::Relation;

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
    pub source: String,
    pub id: String,
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
    /// The API address of the full records.
    pub raw_href: String,
}

/// Records drawn at most: the newest, when a key has more.
const MAX_RECORDS: usize = 2000;

pub async fn page(
    State(state): State<AppState>,
    Path((key_type, value)): Path<(String, String)>,
    mut chrome: Chrome,
) -> PageResult {
    chrome.title = format!("{} {}", key_type.replace('_', " "), value);
    let loaded = match parse_key(&state, &key_type, &value) {
        Ok(key) => journey(&state, key).await,
        Err(e) => Err(e),
    };
    let j = match loaded {
        Ok(j) => j,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    let keys: Vec<&BusinessKey> = j.keys.iter().collect();
    let loaded = tokio::try_join!(instances(&state, &j.roots), async {
        journey_records(&state, &keys, MAX_RECORDS).await
    });
    let (instance_views, (records, records_truncated)) = match loaded {
        Ok(x) => x,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    let trace_href = |t: [u8; 16]| {
        (t != [0; 16]).then(|| chrome.keep_range(&links::trace(&TraceId(t).to_hex())))
    };
    let mut marks = Vec::with_capacity(records.len());
    let (mut failures, mut retries) = (0, 0);
    let mut spans = Vec::new();
    let mut events = Vec::new();
    for r in &records {
        let keys = r
            .keys
            .iter()
            .map(|k| format!("{}={}", k.key_type, k.value))
            .collect::<Vec<_>>()
            .join(" ");
        if r.kind == RecordKind::Span {
            let error = r.failed;
            failures += usize::from(error);
            marks.push(Mark {
                lane: r.service.clone(),
                start_ns: r.time_ns,
                duration_ns: r.duration_ns.max(1),
                label: format!(
                    "{} · {} · {}",
                    r.name,
                    fmt::duration(r.duration_ns),
                    fmt::time(r.time_ns)
                ),
                state: if error { "error" } else { "ok" },
                href: trace_href(r.trace_id),
            });
            spans.push(SpanLine {
                time: rfc3339(r.time_ns),
                colour: svg::colour(&r.service),
                service: r.service.clone(),
                name: r.name.clone(),
                duration: fmt::duration(r.duration_ns),
                error,
                keys,
                trace_href: trace_href(r.trace_id).unwrap_or_default(),
            });
        } else {
            let state = match r.outcome.as_str() {
                "failed" | "dead_lettered" => "error",
                "retried" => "retry",
                _ if r.attempt > 1 => "retry",
                _ => "ok",
            };
            failures += usize::from(state == "error");
            retries += usize::from(state == "retry");
            let anchor = format!("ev-{}", events.len());
            marks.push(Mark {
                lane: r.service.clone(),
                start_ns: r.time_ns,
                duration_ns: 0,
                label: format!(
                    "{} · {} · attempt {} · {}",
                    r.name,
                    r.outcome,
                    r.attempt,
                    fmt::time(r.time_ns)
                ),
                state,
                href: Some(trace_href(r.trace_id).unwrap_or_else(|| format!("#{anchor}"))),
            });
            events.push(EventLine {
                anchor,
                time: rfc3339(r.time_ns),
                colour: svg::colour(&r.service),
                system: r.service.clone(),
                event_type: r.name.clone(),
                outcome: r.outcome.clone(),
                attempt: r.attempt,
                keys,
                source: r.event_source.clone(),
                id: r.event_id.clone(),
                trace_href: trace_href(r.trace_id),
            });
        }
    }
    let instances = instance_views
        .iter()
        .map(|i| InstanceBlock {
            process_href: chrome.href(&links::process(&i.process), &[("key", &i.key.value)]),
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
            href: chrome.keep_range(&links::key(&l.key.key_type, &l.key.value)),
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
        truncated: j.truncated || records_truncated,
        raw_href: links::key_api(&j.key.key_type, &j.key.value),
        chrome,
    }))
}
