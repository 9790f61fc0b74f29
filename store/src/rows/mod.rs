//! ClickHouse row types and their mapping to and from canonical records:
//! the helpers both kinds of row share (seconds, keys split and joined,
//! record references, `convert`, `unknown`).
//!
//! Times are kept twice: nanoseconds as `UInt64` (exact) and a `DateTime`
//! (seconds) for partitioning, as 18.16 has no `DateTime64`. Attributes are
//! parallel key/value arrays; a span event's or link's attributes are one JSON
//! array of `[key, value]` pairs, which keeps order and repeated keys.
//!
//! - `records`: rows made from canonical records (spans, logs, events, trace
//!   events, the key index and key links).
//! - `state`: the correlator's rows (feed, steps, instances, summaries,
//!   breaches) and their domain conversions.

mod records;
mod state;

pub(crate) use records::{
    EventRow, KeyIndexRead, KeyIndexRow, KeyLinkRow, LogRow, SpanRow, TraceEventRow,
};
pub(crate) use state::{status, BreachRow, FeedRow, InstanceRow, StepRow, WalkRow};

use domain::feed::RecordKind;
use domain::model::{BusinessKey, Event, Outcome, SpanId, TraceId};

use crate::StoreError;

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

fn split_keys(keys: &[BusinessKey]) -> (Vec<String>, Vec<String>) {
    keys.iter()
        .map(|k| (k.key_type.clone(), k.value.clone()))
        .unzip()
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

pub(crate) fn record_kind(text: &str) -> Result<RecordKind, StoreError> {
    RecordKind::parse(text).ok_or_else(|| unknown("key_index", "record_kind", text))
}

/// How the correlator and the key index name a record.
pub fn span_ref(trace_id: &TraceId, span_id: &SpanId) -> String {
    format!("span:{trace_id}:{span_id}")
}

pub fn event_ref(source: &str, id: &str) -> String {
    format!("event:{source}\t{id}")
}

/// An event that reports a failure.
pub fn event_failed(event: &Event) -> bool {
    matches!(event.outcome, Outcome::Failed | Outcome::DeadLettered)
}

/// A status or state text this version does not know (written by a newer
/// one): said, not guessed.
fn unknown(table: &str, column: &str, text: &str) -> StoreError {
    StoreError::Migration(format!(
        "{table}.{column} holds `{text}`, which this version of Throughline does not know; run the version that wrote it, or a newer one"
    ))
}

/// Rows of a query, each made a domain value.
pub(crate) fn convert<R, T>(
    rows: Vec<R>,
    f: impl Fn(R) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(f).collect()
}
