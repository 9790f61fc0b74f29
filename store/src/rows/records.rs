//! Rows made from canonical records: spans, logs, events, trace events,
//! and the key index and key links, with their way back to records.

use clickhouse::Row;
use domain::feed::JourneyRecord;
use serde::{Deserialize, Serialize};

use domain::model::{
    Attributes, BusinessKey, Event, EventOrigin, LogRecord, Outcome, Span, SpanEvent, SpanId,
    SpanKind, SpanLink, StatusCode, TraceId,
};

use super::{
    event_failed, keys_from, record_kind, seconds, split_keys, RECORD_EVENT, RECORD_LOG,
    RECORD_SPAN,
};
use crate::{HubTypes, StoreError};

fn split(attrs: &Attributes) -> (Vec<String>, Vec<String>) {
    attrs.iter().cloned().unzip()
}

fn zip(keys: Vec<String>, values: Vec<String>) -> Attributes {
    keys.into_iter().zip(values).collect()
}

fn attrs_json(attrs: &Attributes) -> String {
    serde_json::to_string(attrs).unwrap_or_else(|_| "[]".into())
}

fn attrs_from_json(text: &str) -> Attributes {
    serde_json::from_str(text).unwrap_or_default()
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct SpanRow {
    pub start_time: u32,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: [u8; 8],
    pub trace_state: String,
    pub flags: u32,
    pub service: String,
    pub name: String,
    pub kind: u8,
    pub status_code: u8,
    pub status_message: String,
    pub attr_keys: Vec<String>,
    pub attr_values: Vec<String>,
    pub resource_keys: Vec<String>,
    pub resource_values: Vec<String>,
    pub scope_name: String,
    pub scope_version: String,
    pub event_times: Vec<u64>,
    pub event_names: Vec<String>,
    pub event_attrs: Vec<String>,
    pub link_trace_ids: Vec<String>,
    pub link_span_ids: Vec<String>,
    pub link_trace_states: Vec<String>,
    pub link_attrs: Vec<String>,
    pub key_types: Vec<String>,
    pub key_values: Vec<String>,
}

impl From<&Span> for SpanRow {
    fn from(s: &Span) -> Self {
        let (attr_keys, attr_values) = split(&s.attributes);
        let (resource_keys, resource_values) = split(&s.resource);
        let (key_types, key_values) = split_keys(&s.keys);
        SpanRow {
            start_time: seconds(s.start_ns),
            start_ns: s.start_ns,
            duration_ns: s.duration_ns,
            trace_id: s.trace_id.0,
            span_id: s.span_id.0,
            parent_span_id: s.parent_span_id.map(|p| p.0).unwrap_or_default(),
            trace_state: s.trace_state.clone(),
            flags: s.flags,
            service: s.service.clone(),
            name: s.name.clone(),
            kind: s.kind as u8,
            status_code: s.status_code as u8,
            status_message: s.status_message.clone(),
            attr_keys,
            attr_values,
            resource_keys,
            resource_values,
            scope_name: s.scope_name.clone(),
            scope_version: s.scope_version.clone(),
            event_times: s.events.iter().map(|e| e.time_ns).collect(),
            event_names: s.events.iter().map(|e| e.name.clone()).collect(),
            event_attrs: s.events.iter().map(|e| attrs_json(&e.attributes)).collect(),
            link_trace_ids: s.links.iter().map(|l| l.trace_id.to_hex()).collect(),
            link_span_ids: s.links.iter().map(|l| l.span_id.to_hex()).collect(),
            link_trace_states: s.links.iter().map(|l| l.trace_state.clone()).collect(),
            link_attrs: s.links.iter().map(|l| attrs_json(&l.attributes)).collect(),
            key_types,
            key_values,
        }
    }
}

impl SpanRow {
    /// Back to a canonical span. Rows were written from valid spans, so ids
    /// parse; a link that somehow does not is left out rather than failing the
    /// whole read.
    pub fn into_span(self) -> Span {
        let events = self
            .event_times
            .iter()
            .zip(&self.event_names)
            .zip(&self.event_attrs)
            .map(|((time_ns, name), attrs)| SpanEvent {
                time_ns: *time_ns,
                name: name.clone(),
                attributes: attrs_from_json(attrs),
            })
            .collect();
        let links = (0..self.link_trace_ids.len())
            .filter_map(|i| {
                Some(SpanLink {
                    trace_id: TraceId::from_hex(&self.link_trace_ids[i]).ok()?,
                    span_id: SpanId::from_hex(self.link_span_ids.get(i)?).ok()?,
                    trace_state: self.link_trace_states.get(i).cloned().unwrap_or_default(),
                    attributes: attrs_from_json(self.link_attrs.get(i).map_or("[]", |s| s)),
                })
            })
            .collect();
        Span {
            trace_id: TraceId(self.trace_id),
            span_id: SpanId(self.span_id),
            parent_span_id: SpanId::from_bytes(&self.parent_span_id).ok(),
            trace_state: self.trace_state,
            flags: self.flags,
            service: self.service,
            name: self.name,
            kind: SpanKind::from_u8(self.kind),
            start_ns: self.start_ns,
            duration_ns: self.duration_ns,
            status_code: StatusCode::from_u8(self.status_code),
            status_message: self.status_message,
            attributes: zip(self.attr_keys, self.attr_values),
            resource: zip(self.resource_keys, self.resource_values),
            scope_name: self.scope_name,
            scope_version: self.scope_version,
            events,
            links,
            keys: keys_from(self.key_types, self.key_values),
        }
    }
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct KeyIndexRow {
    pub key_type: String,
    pub key_value: String,
    pub time: u32,
    pub time_ns: u64,
    pub record_kind: String,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// A log record's id; for a span, a hash of its service (in the sort
    /// key, so two systems' spans that share ids keep a row each; rows
    /// written before that carry 0).
    pub record_id: u64,
    pub service: String,
    pub name: String,
    pub event_source: String,
    pub event_id: String,
    /// The record failed (span status error; event failed or dead-lettered).
    pub failed: u8,
    /// A span's duration.
    pub duration_ns: u64,
    /// An event's outcome (`ok`, `failed`, `retried`, `dead_lettered`).
    pub outcome: String,
    /// An event's delivery attempt.
    pub attempt: u32,
    /// On the row of a hub key ([`crate::HubTypes`]) and on a linked row:
    /// all the keys of the record; empty on other rows.
    pub carried_types: Vec<String>,
    pub carried_values: Vec<String>,
    /// 1: a row under a hub the record does not carry, written because its
    /// keys were linked to that hub (`0020_hub_rows.sql`).
    pub linked: u8,
}

/// A key index row as a journey reads it: [`KeyIndexRow`] without the
/// columns no journey shows (`time`, the partition's; `record_id`, part of
/// the sort key), each of which a read of 300 keys' rows pays for in every
/// granule it touches.
#[derive(Debug, Clone, Row, Deserialize)]
pub(crate) struct KeyIndexRead {
    pub key_type: String,
    pub key_value: String,
    pub time_ns: u64,
    pub record_kind: String,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub service: String,
    pub name: String,
    pub event_source: String,
    pub event_id: String,
    pub failed: u8,
    pub duration_ns: u64,
    pub outcome: String,
    pub attempt: u32,
}

impl KeyIndexRead {
    /// What a journey shows of the record, with `keys`: the record's keys
    /// within the journey (its rows of the journey's keys).
    pub(crate) fn journey(self, keys: Vec<BusinessKey>) -> Result<JourneyRecord, StoreError> {
        Ok(JourneyRecord {
            kind: record_kind(&self.record_kind)?,
            trace_id: self.trace_id,
            span_id: self.span_id,
            service: self.service,
            name: self.name,
            time_ns: self.time_ns,
            failed: self.failed != 0,
            keys,
            duration_ns: self.duration_ns,
            outcome: self.outcome,
            attempt: self.attempt,
            event_source: self.event_source,
            event_id: self.event_id,
        })
    }
}

impl KeyIndexRow {
    pub fn for_span<'a>(
        span: &'a Span,
        hubs: &'a HubTypes,
    ) -> impl Iterator<Item = KeyIndexRow> + 'a {
        span.keys.iter().map(move |key| {
            KeyIndexRow {
                key_type: key.key_type.clone(),
                key_value: key.value.clone(),
                time: seconds(span.start_ns),
                time_ns: span.start_ns,
                record_kind: RECORD_SPAN.into(),
                trace_id: span.trace_id.0,
                span_id: span.span_id.0,
                record_id: domain::hash::fnv1a(&[span.service.as_bytes()]),
                service: span.service.clone(),
                name: span.name.clone(),
                event_source: String::new(),
                event_id: String::new(),
                failed: (span.status_code == StatusCode::Error) as u8,
                duration_ns: span.duration_ns,
                outcome: String::new(),
                attempt: 0,
                carried_types: Vec::new(),
                carried_values: Vec::new(),
                linked: 0,
            }
            .carrying(&span.keys, key, hubs)
        })
    }

    /// `time_ns`: the event's time as first stored (a redelivery without a
    /// time of its own must index under the first delivery's time).
    pub fn for_event<'a>(
        event: &'a Event,
        time_ns: u64,
        hubs: &'a HubTypes,
    ) -> impl Iterator<Item = KeyIndexRow> + 'a {
        event.keys.iter().map(move |key| {
            KeyIndexRow {
                key_type: key.key_type.clone(),
                key_value: key.value.clone(),
                time: seconds(time_ns),
                time_ns,
                record_kind: RECORD_EVENT.into(),
                trace_id: event.trace_id.map(|t| t.0).unwrap_or_default(),
                span_id: event.span_id.map(|s| s.0).unwrap_or_default(),
                record_id: 0,
                service: event.system.clone(),
                name: event.event_type.clone(),
                event_source: event.source.clone(),
                event_id: event.id.clone(),
                failed: event_failed(event) as u8,
                duration_ns: 0,
                outcome: event.outcome.as_str().into(),
                attempt: event.attempt,
                carried_types: Vec::new(),
                carried_values: Vec::new(),
                linked: 0,
            }
            .carrying(&event.keys, key, hubs)
        })
    }

    pub fn for_log<'a>(
        log: &'a LogRecord,
        hubs: &'a HubTypes,
    ) -> impl Iterator<Item = KeyIndexRow> + 'a {
        log.keys.iter().map(move |key| {
            KeyIndexRow {
                key_type: key.key_type.clone(),
                key_value: key.value.clone(),
                time: seconds(log.time_ns),
                time_ns: log.time_ns,
                record_kind: RECORD_LOG.into(),
                trace_id: log.trace_id.map(|t| t.0).unwrap_or_default(),
                span_id: log.span_id.map(|s| s.0).unwrap_or_default(),
                record_id: log.record_id,
                service: log.service.clone(),
                name: if log.event_name.is_empty() {
                    log.body.chars().take(200).collect()
                } else {
                    log.event_name.clone()
                },
                event_source: String::new(),
                event_id: String::new(),
                failed: 0,
                duration_ns: 0,
                outcome: String::new(),
                attempt: 0,
                carried_types: Vec::new(),
                carried_values: Vec::new(),
                linked: 0,
            }
            .carrying(&log.keys, key, hubs)
        })
    }

    /// The row with the record's keys named on it when `key` is a hub key.
    fn carrying(self, keys: &[BusinessKey], key: &BusinessKey, hubs: &HubTypes) -> Self {
        if hubs.is_hub(&key.key_type) {
            self.with_carried(keys)
        } else {
            self
        }
    }

    fn with_carried(mut self, keys: &[BusinessKey]) -> Self {
        self.carried_types = keys.iter().map(|k| k.key_type.clone()).collect();
        self.carried_values = keys.iter().map(|k| k.value.clone()).collect();
        self
    }

    /// The row of the same record under `hub`, which the record does not
    /// carry but its keys were linked to: `linked`, with all its keys.
    pub fn linked_under(&self, hub: &BusinessKey, keys: &[BusinessKey]) -> Self {
        let mut row = self.clone().with_carried(keys);
        row.key_type = hub.key_type.clone();
        row.key_value = hub.value.clone();
        row.linked = 1;
        row
    }
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct KeyLinkRow {
    pub key_type: String,
    pub key_value: String,
    pub linked_type: String,
    pub linked_value: String,
    pub seen_at: u32,
    pub ingested_ns: u64,
    /// `u64::MAX - ingested_ns`: the first ingestion wins a merge.
    pub keep: u64,
}

impl KeyLinkRow {
    /// Both directions of every pair of keys on one record seen at `time_ns`,
    /// stored at `ingested_ns`.
    pub fn for_keys(
        keys: &[BusinessKey],
        time_ns: u64,
        ingested_ns: u64,
    ) -> impl Iterator<Item = KeyLinkRow> {
        domain::model::key_links(keys)
            .into_iter()
            .map(move |(a, b)| KeyLinkRow {
                key_type: a.key_type,
                key_value: a.value,
                linked_type: b.key_type,
                linked_value: b.value,
                seen_at: seconds(time_ns),
                ingested_ns,
                keep: u64::MAX - ingested_ns,
            })
    }
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct LogRow {
    pub time: u32,
    pub time_ns: u64,
    pub observed_ns: u64,
    pub record_id: u64,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub severity_number: i32,
    pub severity_text: String,
    pub body: String,
    pub event_name: String,
    pub service: String,
    pub attr_keys: Vec<String>,
    pub attr_values: Vec<String>,
    pub resource_keys: Vec<String>,
    pub resource_values: Vec<String>,
    pub scope_name: String,
    pub scope_version: String,
    pub key_types: Vec<String>,
    pub key_values: Vec<String>,
}

impl From<&LogRecord> for LogRow {
    fn from(l: &LogRecord) -> Self {
        let (attr_keys, attr_values) = split(&l.attributes);
        let (resource_keys, resource_values) = split(&l.resource);
        let (key_types, key_values) = split_keys(&l.keys);
        LogRow {
            time: seconds(l.time_ns),
            time_ns: l.time_ns,
            observed_ns: l.observed_ns,
            record_id: l.record_id,
            trace_id: l.trace_id.map(|t| t.0).unwrap_or_default(),
            span_id: l.span_id.map(|s| s.0).unwrap_or_default(),
            severity_number: l.severity_number,
            severity_text: l.severity_text.clone(),
            body: l.body.clone(),
            event_name: l.event_name.clone(),
            service: l.service.clone(),
            attr_keys,
            attr_values,
            resource_keys,
            resource_values,
            scope_name: l.scope_name.clone(),
            scope_version: l.scope_version.clone(),
            key_types,
            key_values,
        }
    }
}

impl LogRow {
    /// Back to a canonical log record (ids all zero were not set).
    pub fn into_log(self) -> LogRecord {
        LogRecord {
            record_id: self.record_id,
            time_ns: self.time_ns,
            observed_ns: self.observed_ns,
            trace_id: TraceId::from_bytes(&self.trace_id).ok(),
            span_id: SpanId::from_bytes(&self.span_id).ok(),
            severity_number: self.severity_number,
            severity_text: self.severity_text,
            body: self.body,
            event_name: self.event_name,
            service: self.service,
            attributes: zip(self.attr_keys, self.attr_values),
            resource: zip(self.resource_keys, self.resource_values),
            scope_name: self.scope_name,
            scope_version: self.scope_version,
            keys: keys_from(self.key_types, self.key_values),
        }
    }
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct EventRow {
    pub time: u32,
    pub time_ns: u64,
    pub time_missing: u8,
    pub received_ns: u64,
    pub source: String,
    pub event_id: String,
    pub system: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub subject: String,
    pub outcome: String,
    pub attempt: u32,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub correlation_id: String,
    pub causation_id: String,
    pub data: String,
    pub data_content_type: String,
    pub attr_keys: Vec<String>,
    pub attr_values: Vec<String>,
    pub key_types: Vec<String>,
    pub key_values: Vec<String>,
    pub origin: String,
}

impl From<&Event> for EventRow {
    fn from(e: &Event) -> Self {
        let (attr_keys, attr_values) = split(&e.attributes);
        let (key_types, key_values) = split_keys(&e.keys);
        EventRow {
            time: seconds(e.time_ns),
            time_ns: e.time_ns,
            time_missing: e.time_missing as u8,
            received_ns: e.received_ns,
            source: e.source.clone(),
            event_id: e.id.clone(),
            system: e.system.clone(),
            event_type: e.event_type.clone(),
            subject: e.subject.clone(),
            outcome: e.outcome.as_str().into(),
            attempt: e.attempt,
            trace_id: e.trace_id.map(|t| t.0).unwrap_or_default(),
            span_id: e.span_id.map(|s| s.0).unwrap_or_default(),
            correlation_id: e.correlation_id.clone(),
            causation_id: e.causation_id.clone(),
            data: e.data.clone(),
            data_content_type: e.data_content_type.clone(),
            attr_keys,
            attr_values,
            key_types,
            key_values,
            origin: e.origin.as_str().into(),
        }
    }
}

impl EventRow {
    pub fn into_event(self) -> Event {
        Event {
            source: self.source,
            id: self.event_id,
            system: self.system,
            event_type: self.event_type,
            subject: self.subject,
            time_ns: self.time_ns,
            time_missing: self.time_missing != 0,
            received_ns: self.received_ns,
            outcome: Outcome::parse(&self.outcome).unwrap_or(Outcome::Ok),
            attempt: self.attempt,
            trace_id: TraceId::from_bytes(&self.trace_id).ok(),
            span_id: SpanId::from_bytes(&self.span_id).ok(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            data: self.data,
            data_content_type: self.data_content_type,
            attributes: zip(self.attr_keys, self.attr_values),
            keys: keys_from(self.key_types, self.key_values),
            origin: if self.origin == EventOrigin::OtlpLog.as_str() {
                EventOrigin::OtlpLog
            } else {
                EventOrigin::CloudEvent
            },
        }
    }
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct TraceEventRow {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub time: u32,
    pub time_ns: u64,
    pub source: String,
    pub event_id: String,
}

impl TraceEventRow {
    pub fn for_event(event: &Event, time_ns: u64) -> Option<TraceEventRow> {
        Some(TraceEventRow {
            trace_id: event.trace_id?.0,
            span_id: event.span_id.map(|s| s.0).unwrap_or_default(),
            time: seconds(time_ns),
            time_ns,
            source: event.source.clone(),
            event_id: event.id.clone(),
        })
    }
}
