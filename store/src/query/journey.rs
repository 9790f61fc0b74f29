//! A journey read from the key index alone: each key's counts, the
//! journey's total and its records one page at a time, newest first.
use clickhouse::Row;
use serde::Deserialize;

use super::{bind_keys, key_tuple_placeholders};
use crate::rows::{convert, record_kind, SpanRow, RECORD_EVENT, RECORD_SPAN};
use crate::{Store, StoreError};
use domain::feed::JourneyRecord;
use domain::model::{BusinessKey, Span};

/// Where a record stands in the newest-first order of
/// [`Store::journey_page`]: its time and identity in the key index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JourneyPosition {
    pub time_ns: u64,
    pub kind: String,
    /// Lowercase hex, as stored (zeros for an event without a trace).
    pub trace_id: String,
    pub span_id: String,
    pub service: String,
    pub source: String,
    pub id: String,
}

impl JourneyPosition {
    /// The position of the record with this time and identity.
    pub(super) fn of(
        time_ns: u64,
        kind: &str,
        trace_id: &[u8; 16],
        span_id: &[u8; 8],
        service: &str,
        source: &str,
        id: &str,
    ) -> Self {
        JourneyPosition {
            time_ns,
            kind: kind.to_string(),
            trace_id: hex(trace_id),
            span_id: hex(span_id),
            service: service.to_string(),
            source: source.to_string(),
            id: id.to_string(),
        }
    }
}

/// Spans and events carrying a key (or any of several keys), each counted
/// once, and how many of them failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub spans: u64,
    pub events: u64,
    /// Spans with status error, events failed or dead-lettered.
    pub failures: u64,
    /// Unix nanoseconds of the first and the last record (0 when none).
    pub first_ns: u64,
    pub last_ns: u64,
}

impl RecordCounts {
    pub fn records(&self) -> u64 {
        self.spans + self.events
    }
}

/// The aggregates behind [`RecordCounts`], over key index rows: a record is
/// its kind, trace, span, service, event source and id (the `LIMIT 1 BY` of
/// [`Store::journey_page`]), so counts and pages agree.
fn counts_sql() -> String {
    format!(
        "uniqExactIf(trace_id, span_id, service, record_kind = '{RECORD_SPAN}') AS spans, \
         uniqExactIf(event_source, event_id, record_kind = '{RECORD_EVENT}') AS events, \
         uniqExactIf(record_kind, trace_id, span_id, service, event_source, event_id, failed = 1) AS failures, \
         min(time_ns) AS first_ns, max(time_ns) AS last_ns"
    )
}

#[derive(Debug, Row, Deserialize)]
struct CountsRow {
    spans: u64,
    events: u64,
    failures: u64,
    first_ns: u64,
    last_ns: u64,
}

impl From<CountsRow> for RecordCounts {
    fn from(r: CountsRow) -> Self {
        let none = r.spans + r.events == 0;
        RecordCounts {
            spans: r.spans,
            events: r.events,
            failures: r.failures,
            // min() over no rows is 0 on 18.16 and may be the type's
            // maximum elsewhere: say 0 for "none" either way.
            first_ns: if none { 0 } else { r.first_ns },
            last_ns: if none { 0 } else { r.last_ns },
        }
    }
}

#[derive(Debug, Row, Deserialize)]
struct KeyCountsRow {
    key_type: String,
    key_value: String,
    spans: u64,
    events: u64,
    failures: u64,
    first_ns: u64,
    last_ns: u64,
}

/// A record of a journey page: its key index rows grouped by the record's
/// identity, with the keys they name.
#[derive(Debug, Row, Deserialize)]
struct JourneyRow {
    time_ns: u64,
    record_kind: String,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    service: String,
    event_source: String,
    event_id: String,
    shown_name: String,
    any_failed: u8,
    shown_duration_ns: u64,
    shown_outcome: String,
    shown_attempt: u32,
    keys: Vec<(String, String)>,
}

impl JourneyRow {
    fn record(self) -> Result<JourneyRecord, StoreError> {
        let mut keys: Vec<BusinessKey> = self
            .keys
            .into_iter()
            .map(|(t, v)| BusinessKey::new(t, v))
            .collect();
        keys.sort();
        Ok(JourneyRecord {
            kind: record_kind(&self.record_kind)?,
            trace_id: self.trace_id,
            span_id: self.span_id,
            service: self.service,
            name: self.shown_name,
            time_ns: self.time_ns,
            failed: self.any_failed != 0,
            keys,
            duration_ns: self.shown_duration_ns,
            outcome: self.shown_outcome,
            attempt: self.shown_attempt,
            event_source: self.event_source,
            event_id: self.event_id,
        })
    }
}

/// The record kinds a journey shows, for `record_kind IN (?, ?)`.
pub(super) fn bind_kinds(query: crate::timeout::Statement) -> crate::timeout::Statement {
    query.bind(RECORD_SPAN).bind(RECORD_EVENT)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// What the key index holds of the spans and events carrying each of
    /// `keys` (one answer per key that has any): each record counted once
    /// however often it was delivered. Reads each key's range of the index;
    /// the keys' columns first (`PREWHERE`), so the parts that hold none of
    /// the keys read nothing else (as in [`Store::journey_counts`] and
    /// [`Store::journey_page`]).
    pub async fn key_summaries(
        &self,
        keys: &[&BusinessKey],
    ) -> Result<Vec<(BusinessKey, RecordCounts)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT key_type, key_value, {} FROM key_index_v2 \
             PREWHERE (key_type, key_value) IN ({}) WHERE record_kind IN (?, ?) AND linked = 0 \
             GROUP BY key_type, key_value",
            counts_sql(),
            key_tuple_placeholders(keys.len())
        );
        let rows = bind_kinds(bind_keys(self.query(&sql), keys))
            .fetch_all::<KeyCountsRow>()
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let counts = CountsRow {
                    spans: r.spans,
                    events: r.events,
                    failures: r.failures,
                    first_ns: r.first_ns,
                    last_ns: r.last_ns,
                };
                (BusinessKey::new(r.key_type, r.key_value), counts.into())
            })
            .collect())
    }

    /// The spans and events carrying any of `keys`, each counted once (a
    /// record carrying two of them, or delivered twice, is one): the size
    /// of the journey that [`Store::journey_page`] pages through.
    pub async fn journey_counts(&self, keys: &[&BusinessKey]) -> Result<RecordCounts, StoreError> {
        if keys.is_empty() {
            return Ok(RecordCounts::default());
        }
        let sql = format!(
            "SELECT {} FROM key_index_v2 \
             PREWHERE (key_type, key_value) IN ({}) WHERE record_kind IN (?, ?) AND linked = 0",
            counts_sql(),
            key_tuple_placeholders(keys.len())
        );
        let row = bind_kinds(bind_keys(self.query(&sql), keys))
            .fetch_one::<CountsRow>()
            .await?;
        Ok(row.into())
    }

    /// One page of the spans and events carrying any of `keys`, from their
    /// key index rows, newest first (ties in a fixed order of the record's
    /// identity), one per record with its keys among `keys`; and the
    /// position to continue from when there are more. Reads the key index
    /// only, never the span or event table; a page after `after` reads only
    /// the day partitions up to it.
    pub async fn journey_page(
        &self,
        keys: &[&BusinessKey],
        limit: usize,
        after: Option<&JourneyPosition>,
    ) -> Result<(Vec<JourneyRecord>, Option<JourneyPosition>), StoreError> {
        if keys.is_empty() {
            return Ok((Vec::new(), None));
        }
        let mut sql = format!(
            "SELECT time_ns, record_kind, trace_id, span_id, service, event_source, event_id, \
                    any(name) AS shown_name, max(failed) AS any_failed, \
                    any(duration_ns) AS shown_duration_ns, any(outcome) AS shown_outcome, \
                    any(attempt) AS shown_attempt, \
                    groupUniqArray((key_type, key_value)) AS keys \
             FROM key_index_v2 \
             PREWHERE (key_type, key_value) IN ({}) WHERE record_kind IN (?, ?) AND linked = 0",
            key_tuple_placeholders(keys.len())
        );
        if after.is_some() {
            sql.push_str(
                " AND time <= toDateTime(?) \
                 AND (time_ns, record_kind, trace_id, span_id, service, event_source, event_id) \
                   < (?, ?, toFixedString(unhex(?), 16), toFixedString(unhex(?), 8), ?, ?, ?)",
            );
        }
        sql.push_str(
            " GROUP BY time_ns, record_kind, trace_id, span_id, service, event_source, event_id \
             ORDER BY time_ns DESC, record_kind DESC, trace_id DESC, span_id DESC, \
               service DESC, event_source DESC, event_id DESC \
             LIMIT ?",
        );
        let mut query = bind_kinds(bind_keys(self.query(&sql), keys));
        if let Some(p) = after {
            query = query
                .bind(p.time_ns / 1_000_000_000)
                .bind(p.time_ns)
                .bind(p.kind.as_str())
                .bind(p.trace_id.as_str())
                .bind(p.span_id.as_str())
                .bind(p.service.as_str())
                .bind(p.source.as_str())
                .bind(p.id.as_str());
        }
        let mut rows = query
            .bind(limit as u64 + 1)
            .fetch_all::<JourneyRow>()
            .await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|r| {
                JourneyPosition::of(
                    r.time_ns,
                    &r.record_kind,
                    &r.trace_id,
                    &r.span_id,
                    &r.service,
                    &r.event_source,
                    &r.event_id,
                )
            })
        } else {
            None
        };
        Ok((convert(rows, JourneyRow::record)?, next))
    }

    /// The spans carrying any of `keys`, newest `limit` first, returned by
    /// start time; `true` when there were more. Reads `spans_v2 FINAL` for
    /// whole spans: for checks (the ingest benchmark), not for lookups,
    /// which answer from the key index ([`Store::journey_page`]).
    pub async fn spans_with_keys(
        &self,
        keys: &[&BusinessKey],
        limit: usize,
    ) -> Result<(Vec<Span>, bool), StoreError> {
        if keys.is_empty() {
            return Ok((Vec::new(), false));
        }
        let sql = format!(
            "SELECT ?fields FROM spans_v2 FINAL WHERE (trace_id, span_id) IN ( \
               SELECT trace_id, span_id FROM key_index_v2 \
               WHERE (key_type, key_value) IN ({}) AND record_kind = ? AND linked = 0 \
               GROUP BY trace_id, span_id \
               ORDER BY max(time_ns) DESC LIMIT ?) \
             ORDER BY start_ns, trace_id, span_id",
            key_tuple_placeholders(keys.len())
        );
        let rows = bind_keys(self.query(&sql), keys)
            .bind(RECORD_SPAN)
            .bind(limit as u64 + 1)
            .fetch_all::<SpanRow>()
            .await?;
        let truncated = rows.len() > limit;
        let mut spans: Vec<Span> = rows.into_iter().map(SpanRow::into_span).collect();
        if truncated {
            // The subquery kept the newest limit+1; drop the oldest.
            spans.remove(0);
        }
        Ok((spans, truncated))
    }
}
