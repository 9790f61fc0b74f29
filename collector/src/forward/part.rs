//! One signal's records of a spooled batch, as the forwarder sends them:
//! encoded by the receivers' encoders (the only code that knows the wire
//! formats), split in halves when too large or refused, and what central's
//! answer says was refused of it.

use prost::Message;

use crate::receivers::cloudevents::encode as cloudevents;
use crate::receivers::otlp::encode as otlp;
use domain::model::{Batch, Event, EventOrigin, LogRecord, Span};

/// The records of one signal, in spool order.
#[derive(Debug, Clone)]
pub enum Part {
    Spans(Vec<Span>),
    Logs(Vec<LogRecord>),
    Events(Vec<Event>),
}

/// A request ready to send.
pub struct Request {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Part {
    /// A merged batch as its three parts (empty ones left out). Events
    /// that came in as OTLP log records are not sent on their own: central
    /// makes them again from the log record, under its own id for it.
    pub fn split(batch: Batch) -> Vec<Part> {
        let events: Vec<Event> = batch
            .events
            .into_iter()
            .filter(|e| e.origin == EventOrigin::CloudEvent)
            .collect();
        [
            Part::Spans(batch.spans),
            Part::Logs(batch.logs),
            Part::Events(events),
        ]
        .into_iter()
        .filter(|p| p.len() > 0)
        .collect()
    }

    pub fn len(&self) -> usize {
        match self {
            Part::Spans(v) => v.len(),
            Part::Logs(v) => v.len(),
            Part::Events(v) => v.len(),
        }
    }

    /// Its signal's index in the metrics (spans, logs, events).
    pub fn signal(&self) -> usize {
        match self {
            Part::Spans(_) => 0,
            Part::Logs(_) => 1,
            Part::Events(_) => 2,
        }
    }

    pub fn encode(&self, plant: Option<&str>) -> Request {
        match self {
            Part::Spans(spans) => Request {
                path: "/v1/traces",
                content_type: "application/x-protobuf",
                body: otlp::traces(spans, plant).encode_to_vec(),
            },
            Part::Logs(logs) => Request {
                path: "/v1/logs",
                content_type: "application/x-protobuf",
                body: otlp::logs(logs, plant).encode_to_vec(),
            },
            Part::Events(events) => Request {
                path: "/v1/events",
                content_type: cloudevents::BATCH_CONTENT_TYPE,
                body: cloudevents::batch(events, plant),
            },
        }
    }

    /// Two non-empty halves of a part of two or more records, in order.
    pub fn halves(self) -> (Part, Part) {
        fn cut<T>(mut v: Vec<T>) -> (Vec<T>, Vec<T>) {
            let second = v.split_off(v.len() / 2);
            (v, second)
        }
        match self {
            Part::Spans(v) => {
                let (a, b) = cut(v);
                (Part::Spans(a), Part::Spans(b))
            }
            Part::Logs(v) => {
                let (a, b) = cut(v);
                (Part::Logs(a), Part::Logs(b))
            }
            Part::Events(v) => {
                let (a, b) = cut(v);
                (Part::Events(a), Part::Events(b))
            }
        }
    }

    /// Whether every record names `plant` as sent: its own `plant.id`
    /// (`plant` extension), or none, which the encoders fill with `plant`.
    pub fn all_of_plant(&self, plant: Option<&str>) -> bool {
        use crate::auth::{attribute, PLANT_ATTRIBUTE, PLANT_EXTENSION};
        let of = |attributes: &[(String, String)], key: &str| {
            attribute(attributes, key).or(plant) == plant
        };
        match self {
            Part::Spans(v) => v.iter().all(|s| of(&s.resource, PLANT_ATTRIBUTE)),
            Part::Logs(v) => v.iter().all(|l| of(&l.resource, PLANT_ATTRIBUTE)),
            Part::Events(v) => v.iter().all(|e| of(&e.attributes, PLANT_EXTENSION)),
        }
    }

    /// As a batch, for the dead-letter file.
    pub fn into_batch(self) -> Batch {
        let mut batch = Batch::default();
        match self {
            Part::Spans(v) => batch.spans = v,
            Part::Logs(v) => batch.logs = v,
            Part::Events(v) => batch.events = v,
        }
        batch
    }

    /// What central's acknowledgement of this part says it refused: the
    /// records it names (events, by index) and a count with a message for
    /// the rest (OTLP's partial success names no record).
    pub fn refused_in(&self, answer: &[u8]) -> Refusals {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
        let mut out = Refusals::default();
        match self {
            Part::Spans(_) => {
                if let Some(p) = ExportTraceServiceResponse::decode(answer)
                    .ok()
                    .and_then(|r| r.partial_success)
                {
                    out.count = p.rejected_spans.max(0) as usize;
                    out.message = p.error_message;
                }
            }
            Part::Logs(_) => {
                if let Some(p) = ExportLogsServiceResponse::decode(answer)
                    .ok()
                    .and_then(|r| r.partial_success)
                {
                    out.count = p.rejected_log_records.max(0) as usize;
                    out.message = p.error_message;
                }
            }
            Part::Events(events) => {
                #[derive(serde::Deserialize)]
                struct Outcomes {
                    #[serde(default)]
                    rejected: Vec<Rejected>,
                }
                #[derive(serde::Deserialize)]
                struct Rejected {
                    index: usize,
                    error: String,
                }
                if let Ok(o) = serde_json::from_slice::<Outcomes>(answer) {
                    for r in o.rejected {
                        if let Some(e) = events.get(r.index) {
                            out.count += 1;
                            out.message = r.error.clone();
                            out.named.push((e.clone(), r.error));
                        }
                    }
                }
            }
        }
        out
    }
}

/// What central refused of an acknowledged part.
#[derive(Debug, Default)]
pub struct Refusals {
    pub count: usize,
    /// Central's message (the last, for events).
    pub message: String,
    /// Events central named, with its reason.
    pub named: Vec<(Event, String)>,
}
