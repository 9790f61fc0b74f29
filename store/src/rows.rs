//! ClickHouse row types and their mapping to and from canonical records.
//!
//! Times are kept twice: nanoseconds as `UInt64` (exact) and a `DateTime`
//! (seconds) for partitioning, as 18.16 has no `DateTime64`. Attributes are
//! parallel key/value arrays; a span event's or link's attributes are one JSON
//! array of `[key, value]` pairs, which keeps order and repeated keys.

use clickhouse::Row;
use domain::feed::{FeedRecord, JourneyRecord, RecordKind, Step};
use domain::instance::{Breach, BreachState, InstanceRecord, InstanceSummary, StageTimes, Status};

use crate::StoreError;
use serde::{Deserialize, Serialize};

use domain::model::{
    Attributes, BusinessKey, Event, EventOrigin, LogRecord, Outcome, Span, SpanEvent, SpanId,
    SpanKind, SpanLink, StatusCode, TraceId,
};

pub fn unix_seconds_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

/// Seconds for a `DateTime` column; clamped into its range (1970..2106).
pub fn seconds(ns: u64) -> u32 {
    (ns / 1_000_000_000).min(u64::from(u32::MAX)) as u32
}

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

fn split_keys(keys: &[BusinessKey]) -> (Vec<String>, Vec<String>) {
    keys.iter()
        .map(|k| (k.key_type.clone(), k.value.clone()))
        .unzip()
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

fn keys_from(types: Vec<String>, values: Vec<String>) -> Vec<BusinessKey> {
    types
        .into_iter()
        .zip(values)
        .map(|(t, v)| BusinessKey::new(t, v))
        .collect()
}

/// Which kind of record a key index row points at.
pub(crate) const RECORD_SPAN: &str = RecordKind::Span.as_str();
pub(crate) const RECORD_LOG: &str = RecordKind::Log.as_str();
pub(crate) const RECORD_EVENT: &str = RecordKind::Event.as_str();

fn record_kind(text: &str) -> Result<RecordKind, StoreError> {
    RecordKind::parse(text).ok_or_else(|| unknown("key_index", "record_kind", text))
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
    /// All keys of the record, so a lookup by one key knows the others.
    pub record_key_types: Vec<String>,
    pub record_key_values: Vec<String>,
    /// A span's duration.
    pub duration_ns: u64,
    /// An event's outcome (`ok`, `failed`, `retried`, `dead_lettered`).
    pub outcome: String,
    /// An event's delivery attempt.
    pub attempt: u32,
}

/// How the correlator and the key index name a record.
pub fn span_ref(trace_id: &TraceId, span_id: &SpanId) -> String {
    format!("span:{trace_id}:{span_id}")
}

pub fn event_ref(source: &str, id: &str) -> String {
    format!("event:{source}\t{id}")
}

impl KeyIndexRow {
    /// What a journey shows of the record.
    pub(crate) fn journey(self) -> Result<JourneyRecord, StoreError> {
        Ok(JourneyRecord {
            kind: record_kind(&self.record_kind)?,
            trace_id: self.trace_id,
            span_id: self.span_id,
            service: self.service,
            name: self.name,
            time_ns: self.time_ns,
            failed: self.failed != 0,
            keys: keys_from(self.record_key_types, self.record_key_values),
            duration_ns: self.duration_ns,
            outcome: self.outcome,
            attempt: self.attempt,
            event_source: self.event_source,
            event_id: self.event_id,
        })
    }

    /// The record as the correlator reads it (not in the feed: no
    /// ingestion time).
    pub(crate) fn feed_record(self) -> Result<FeedRecord, StoreError> {
        Ok(FeedRecord {
            ingested_ns: 0,
            kind: record_kind(&self.record_kind)?,
            record_ref: self.record_ref(),
            system: self.service,
            name: self.name,
            time_ns: self.time_ns,
            failed: self.failed != 0,
            keys: keys_from(self.record_key_types, self.record_key_values),
        })
    }

    /// The reference of the record this row points at.
    pub fn record_ref(&self) -> String {
        if self.record_kind == RECORD_EVENT {
            event_ref(&self.event_source, &self.event_id)
        } else {
            span_ref(&TraceId(self.trace_id), &SpanId(self.span_id))
        }
    }

    pub fn for_span(span: &Span) -> impl Iterator<Item = KeyIndexRow> + '_ {
        // Every row of the record carries all its keys: split them once.
        let (types, values) = split_keys(&span.keys);
        span.keys.iter().map(move |key| KeyIndexRow {
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
            record_key_types: types.clone(),
            record_key_values: values.clone(),
            duration_ns: span.duration_ns,
            outcome: String::new(),
            attempt: 0,
        })
    }

    /// `time_ns`: the event's time as first stored (a redelivery without a
    /// time of its own must index under the first delivery's time).
    pub fn for_event(event: &Event, time_ns: u64) -> impl Iterator<Item = KeyIndexRow> + '_ {
        // Every row of the record carries all its keys: split them once.
        let (types, values) = split_keys(&event.keys);
        event.keys.iter().map(move |key| KeyIndexRow {
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
            record_key_types: types.clone(),
            record_key_values: values.clone(),
            duration_ns: 0,
            outcome: event.outcome.as_str().into(),
            attempt: event.attempt,
        })
    }

    pub fn for_log(log: &LogRecord) -> impl Iterator<Item = KeyIndexRow> + '_ {
        // Every row of the record carries all its keys: split them once.
        let (types, values) = split_keys(&log.keys);
        log.keys.iter().map(move |key| KeyIndexRow {
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
            record_key_types: types.clone(),
            record_key_values: values.clone(),
            duration_ns: 0,
            outcome: String::new(),
            attempt: 0,
        })
    }
}

/// An event that reports a failure.
pub fn event_failed(event: &Event) -> bool {
    matches!(event.outcome, Outcome::Failed | Outcome::DeadLettered)
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct KeyLinkRow {
    pub key_type: String,
    pub key_value: String,
    pub linked_type: String,
    pub linked_value: String,
    pub seen_at: u32,
    pub seen_ns: u64,
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
                seen_ns: time_ns,
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

/// One record for the correlator; see `sql/0005_correlation.sql`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct FeedRow {
    pub ingested: u32,
    pub ingested_ns: u64,
    pub record_kind: String,
    pub record_ref: String,
    pub system: String,
    pub name: String,
    pub time_ns: u64,
    pub failed: u8,
    pub key_types: Vec<String>,
    pub key_values: Vec<String>,
}

impl FeedRow {
    pub fn for_span(span: &Span, ingested_ns: u64) -> Option<FeedRow> {
        if span.keys.is_empty() {
            return None;
        }
        let (key_types, key_values) = split_keys(&span.keys);
        Some(FeedRow {
            ingested: seconds(ingested_ns),
            ingested_ns,
            record_kind: RECORD_SPAN.into(),
            record_ref: span_ref(&span.trace_id, &span.span_id),
            system: span.service.clone(),
            name: span.name.clone(),
            time_ns: span.start_ns,
            failed: (span.status_code == StatusCode::Error) as u8,
            key_types,
            key_values,
        })
    }

    pub fn for_event(event: &Event, ingested_ns: u64) -> Option<FeedRow> {
        if event.keys.is_empty() {
            return None;
        }
        let (key_types, key_values) = split_keys(&event.keys);
        Some(FeedRow {
            ingested: seconds(ingested_ns),
            ingested_ns,
            record_kind: RECORD_EVENT.into(),
            record_ref: event_ref(&event.source, &event.id),
            system: event.system.clone(),
            name: event.event_type.clone(),
            time_ns: event.time_ns,
            failed: event_failed(event) as u8,
            key_types,
            key_values,
        })
    }

    /// A plain log record reaches no stage, but two keys on it make a link
    /// that may attach earlier records to an instance: it is fed for that.
    pub fn for_log(log: &LogRecord, ingested_ns: u64) -> Option<FeedRow> {
        if log.keys.len() < 2 || !log.event_name.is_empty() {
            return None;
        }
        let (key_types, key_values) = split_keys(&log.keys);
        Some(FeedRow {
            ingested: seconds(ingested_ns),
            ingested_ns,
            record_kind: RECORD_LOG.into(),
            record_ref: format!("log:{:016x}", log.record_id),
            system: log.service.clone(),
            name: String::new(),
            time_ns: log.time_ns,
            failed: 0,
            key_types,
            key_values,
        })
    }

    pub(crate) fn record(self) -> Result<FeedRecord, StoreError> {
        Ok(FeedRecord {
            kind: record_kind(&self.record_kind)?,
            ingested_ns: self.ingested_ns,
            record_ref: self.record_ref,
            system: self.system,
            name: self.name,
            time_ns: self.time_ns,
            failed: self.failed != 0,
            keys: keys_from(self.key_types, self.key_values),
        })
    }
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct StepRow {
    process_id: String,
    root_value: String,
    stage_id: String,
    record_ref: String,
    time: u32,
    time_ns: u64,
    failed: u8,
    via_type: String,
    via_value: String,
    written_ns: u64,
}

impl StepRow {
    pub(crate) fn of(s: &Step) -> Self {
        StepRow {
            process_id: s.process_id.clone(),
            root_value: s.root_value.clone(),
            stage_id: s.stage_id.clone(),
            record_ref: s.record_ref.clone(),
            time: seconds(s.time_ns),
            time_ns: s.time_ns,
            failed: s.failed as u8,
            via_type: s.via.key_type.clone(),
            via_value: s.via.value.clone(),
            written_ns: s.written_ns,
        }
    }
}

#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq)]
pub(crate) struct InstanceRow {
    process_id: String,
    root_value: String,
    start_ns: u64,
    last_ns: u64,
    status: String,
    current_stage: String,
    stage_ids: Vec<String>,
    stage_times: Vec<u64>,
    failed: u8,
    open_breaches: u32,
    updated_ns: u64,
}

/// A status or state text this version does not know (written by a newer
/// one): said, not guessed.
fn unknown(table: &str, column: &str, text: &str) -> StoreError {
    StoreError::Migration(format!(
        "{table}.{column} holds `{text}`, which this version of Throughline does not know; run the version that wrote it, or a newer one"
    ))
}

fn status(text: &str) -> Result<Status, StoreError> {
    Status::parse(text).ok_or_else(|| unknown("process_instances", "status", text))
}

impl InstanceRow {
    pub(crate) fn of(r: &InstanceRecord) -> Self {
        InstanceRow {
            process_id: r.process_id.clone(),
            root_value: r.root_value.clone(),
            start_ns: r.start_ns,
            last_ns: r.last_ns,
            status: r.status.as_str().into(),
            current_stage: r.current_stage.clone(),
            stage_ids: r.stages.ids.clone(),
            stage_times: r.stages.times.clone(),
            failed: r.failed as u8,
            open_breaches: r.open_breaches,
            updated_ns: r.updated_ns,
        }
    }

    pub(crate) fn record(self) -> Result<InstanceRecord, StoreError> {
        Ok(InstanceRecord {
            status: status(&self.status)?,
            process_id: self.process_id,
            root_value: self.root_value,
            start_ns: self.start_ns,
            last_ns: self.last_ns,
            current_stage: self.current_stage,
            stages: StageTimes {
                ids: self.stage_ids,
                times: self.stage_times,
            },
            failed: self.failed != 0,
            open_breaches: self.open_breaches,
            updated_ns: self.updated_ns,
        })
    }
}

/// What a process summary reads of an instance.
#[derive(Debug, Clone, Row, Deserialize, PartialEq)]
pub(crate) struct InstanceSummaryRow {
    process_id: String,
    status: String,
    start_ns: u64,
    stage_ids: Vec<String>,
    stage_times: Vec<u64>,
}

impl InstanceSummaryRow {
    pub(crate) fn summary(self) -> Result<InstanceSummary, StoreError> {
        Ok(InstanceSummary {
            status: status(&self.status)?,
            process_id: self.process_id,
            start_ns: self.start_ns,
            stages: StageTimes {
                ids: self.stage_ids,
                times: self.stage_times,
            },
        })
    }
}

#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq)]
pub(crate) struct BreachRow {
    process_id: String,
    sla_id: String,
    root_value: String,
    from_ns: u64,
    due_ns: u64,
    to_ns: u64,
    late_ns: u64,
    state: String,
    updated_ns: u64,
}

impl BreachRow {
    pub(crate) fn of(b: &Breach) -> Self {
        BreachRow {
            process_id: b.process_id.clone(),
            sla_id: b.sla_id.clone(),
            root_value: b.root_value.clone(),
            from_ns: b.from_ns,
            due_ns: b.due_ns,
            to_ns: b.to_ns,
            late_ns: b.late_ns,
            state: b.state.as_str().into(),
            updated_ns: b.updated_ns,
        }
    }

    pub(crate) fn breach(self) -> Result<Breach, StoreError> {
        Ok(Breach {
            state: BreachState::parse(&self.state)
                .ok_or_else(|| unknown("breaches", "state", &self.state))?,
            process_id: self.process_id,
            sla_id: self.sla_id,
            root_value: self.root_value,
            from_ns: self.from_ns,
            due_ns: self.due_ns,
            to_ns: self.to_ns,
            late_ns: self.late_ns,
            updated_ns: self.updated_ns,
        })
    }
}

/// Rows of a query, each made a domain value.
pub(crate) fn convert<R, T>(
    rows: Vec<R>,
    f: impl Fn(R) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(f).collect()
}
