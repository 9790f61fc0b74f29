//! `/keys/{type}/{value}`: one business key's journey across systems: a
//! timeline with a swimlane per system, the process instances with each
//! stage's time and each SLA's state, the linked keys with a summary each,
//! and the records. The timeline and the records are one page of the
//! journey (newest first, `after` in the URL for the next), so a customer
//! with hundreds of orders costs its summary and one page.

use askama::Template;
use axum::extract::{Path, State};

use super::process::sla_text;
use super::svg::{self, Mark};
use super::{fmt, render, Chrome, ErrorPage, PageResult};
use crate::links;
use crate::read::cursor;
use crate::read::keys::{journey, parse_key, summary_and_records};
use crate::state::AppState;
use domain::feed::RecordKind;
use domain::model::TraceId;
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

/// A row of the summary table: the key looked up or a linked key.
pub struct LinkLine {
    /// Empty for the key looked up.
    pub relation: &'static str,
    pub key_type: String,
    pub value: String,
    pub href: String,
    pub via: String,
    pub spans: u64,
    pub events: u64,
    pub failures: u64,
    pub first: String,
    pub last: String,
    /// `process: status` of the instances rooted at the key.
    pub instances: String,
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
    /// Failed records of the whole journey.
    pub failures: u64,
    /// Records of the whole journey, and of this page.
    pub total: u64,
    pub shown: usize,
    /// The page after this one.
    pub next_href: Option<String>,
    /// The first page, when this is a later one.
    pub first_href: Option<String>,
    /// More keys are linked than the lookup follows.
    pub truncated: bool,
    /// The API address of the same journey.
    pub raw_href: String,
}

/// Records on one page.
const PAGE: usize = 100;

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
    let after = match chrome
        .param("after")
        .map(|a| cursor::decode_param(a, "after", "the next page's link"))
        .transpose()
    {
        Ok(a) => a,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    let loaded = summary_and_records(&state, &j, PAGE, after.as_ref()).await;
    let (summary, records, next) = match loaded {
        Ok(x) => x,
        Err(e) => return Err(ErrorPage::new(chrome, e)),
    };
    let instance_views = &summary.instances;
    let trace_href = |t: [u8; 16]| {
        (t != [0; 16]).then(|| chrome.keep_range(&links::trace(&TraceId(t).to_hex())))
    };
    let mut marks = Vec::with_capacity(records.len());
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
            process: state.processes.name_of(&i.process).to_string(),
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
    let time = |ns: u64| if ns == 0 { String::new() } else { rfc3339(ns) };
    let mut links: Vec<LinkLine> = summary
        .keys
        .iter()
        .map(|k| LinkLine {
            relation: match k.link.as_ref().map(|l| l.relation) {
                None => "",
                Some(Relation::Parent) => "belongs to",
                Some(Relation::Child) => "includes",
                Some(Relation::Peer) => "same as",
            },
            href: chrome.keep_range(&links::key(&k.key.key_type, &k.key.value)),
            key_type: k.key.key_type.replace('_', " "),
            value: k.key.value.clone(),
            via: match &k.link {
                Some(l) if l.depth > 1 => {
                    format!("via {} {}", l.via.key_type.replace('_', " "), l.via.value)
                }
                _ => String::new(),
            },
            spans: k.counts.spans,
            events: k.counts.events,
            failures: k.counts.failures,
            first: time(k.counts.first_ns),
            last: time(k.counts.last_ns),
            instances: k
                .instances
                .iter()
                .map(|(p, s)| format!("{p}: {s}"))
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    // The key looked up first, then the others by relation, type, value.
    links[1..].sort_by(|a, b| {
        (a.relation, &a.key_type, &a.value).cmp(&(b.relation, &b.key_type, &b.value))
    });
    let here = links::key(&j.key.key_type, &j.key.value);
    let next_href = next
        .as_ref()
        .map(|n| chrome.href(&here, &[("after", &cursor::encode(n))]));
    let first_href = after.is_some().then(|| chrome.keep_range(&here));
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
        failures: summary.total.failures,
        total: summary.total.records(),
        shown: records.len(),
        next_href,
        first_href,
        truncated: j.truncated,
        raw_href: links::key_api(&j.key.key_type, &j.key.value),
        chrome,
    }))
}
