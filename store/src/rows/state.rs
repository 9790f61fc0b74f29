//! The correlator's rows: feed, step, instance, instance summary and breach
//! rows, and their conversions to and from domain values.

use clickhouse::Row;
use domain::feed::{FeedRecord, Step};
use domain::instance::{Breach, BreachState, InstanceRecord, StageTimes, Status};
use serde::{Deserialize, Serialize};

use domain::model::{Event, LogRecord, Span, StatusCode};
use domain::plant;

use super::{
    event_failed, event_ref, keys_from, record_kind, seconds, span_ref, split_keys, unknown,
    RECORD_EVENT, RECORD_LOG, RECORD_SPAN,
};
use crate::StoreError;

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
    /// `sql/0018_instance_plants.sql`.
    pub plant: String,
}

/// A record that walks to its root through links, under one of its keys;
/// see `sql/0009_correlator_walks.sql`.
#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct WalkRow {
    pub key_type: String,
    pub key_value: String,
    pub time: u32,
    pub record_kind: String,
    pub record_ref: String,
    pub system: String,
    pub name: String,
    pub time_ns: u64,
    pub failed: u8,
    pub key_types: Vec<String>,
    pub key_values: Vec<String>,
    pub plant: String,
}

impl WalkRow {
    /// One row per key of `record`.
    pub fn for_record(record: &FeedRecord) -> impl Iterator<Item = WalkRow> + '_ {
        let (key_types, key_values) = split_keys(&record.keys);
        record.keys.iter().map(move |key| WalkRow {
            key_type: key.key_type.clone(),
            key_value: key.value.clone(),
            time: seconds(record.time_ns),
            record_kind: record.kind.as_str().into(),
            record_ref: record.record_ref.clone(),
            system: record.system.clone(),
            name: record.name.clone(),
            time_ns: record.time_ns,
            failed: record.failed as u8,
            key_types: key_types.clone(),
            key_values: key_values.clone(),
            plant: record.plant.clone(),
        })
    }

    pub fn record(self) -> Result<FeedRecord, StoreError> {
        Ok(FeedRecord {
            ingested_ns: 0,
            kind: record_kind(&self.record_kind)?,
            record_ref: self.record_ref,
            system: self.system,
            name: self.name,
            time_ns: self.time_ns,
            failed: self.failed != 0,
            keys: keys_from(self.key_types, self.key_values),
            plant: self.plant,
        })
    }
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
            plant: plant::named_in(&span.resource, plant::RESOURCE_ATTRIBUTE).to_string(),
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
            plant: plant::named_in(&event.attributes, plant::EVENT_ATTRIBUTE).to_string(),
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
            plant: plant::named_in(&log.resource, plant::RESOURCE_ATTRIBUTE).to_string(),
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
            plant: self.plant,
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
    plant: String,
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
            plant: s.plant.clone(),
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
    plant: String,
}

pub(crate) fn status(text: &str) -> Result<Status, StoreError> {
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
            plant: r.plant.clone(),
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
            plant: self.plant,
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
    plant: String,
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
            plant: b.plant.clone(),
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
            plant: self.plant,
        })
    }
}
