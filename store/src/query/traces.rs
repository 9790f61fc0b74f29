//! One trace: its spans by the span table's sort key and the events tied
//! to it through `trace_events`.
use crate::rows::{EventRow, SpanRow};
use crate::timeout::Statement;
use crate::{Store, StoreError};
use domain::model::{Event, Span, TraceId};

impl Store {
    /// Every span of one trace, by start time, once each.
    ///
    /// No `FINAL`: on 18.16 it merges every part of the table's partitions
    /// in one thread. The trace's rows are one range of the sort key in each
    /// day partition; `LIMIT 1 BY` the sort key keeps one row of a span
    /// delivered twice (its copies are the same record). `PREWHERE` on the
    /// trace id: a part that does not hold the trace (most of them, while
    /// ingest makes new ones) reads its trace ids only, not the granule of
    /// every other column.
    pub async fn trace_spans(&self, trace_id: TraceId) -> Result<Vec<Span>, StoreError> {
        let rows = self
            .query(
                "SELECT ?fields FROM spans_v2 PREWHERE trace_id = unhex(?) \
                 ORDER BY start_ns, span_id, service LIMIT 1 BY trace_id, span_id, service",
            )
            .bind(trace_id.to_hex())
            .fetch_all::<SpanRow>()
            .await?;
        Ok(rows.into_iter().map(SpanRow::into_span).collect())
    }

    /// Is any span or event of this trace stored?
    pub async fn trace_seen(&self, trace_id: TraceId) -> Result<bool, StoreError> {
        let count = self.trace_seen_count(trace_id).fetch_one::<u64>().await?;
        Ok(count > 0)
    }

    /// The spans and events of this trace, counted: a `UInt64` on every
    /// release (see [`Store::key_seen_count`]).
    pub(crate) fn trace_seen_count(&self, trace_id: TraceId) -> Statement {
        self.query(
            "SELECT ifNull((SELECT count() FROM spans_v2 WHERE trace_id = unhex(?)), 0) \
             + ifNull((SELECT count() FROM trace_events WHERE trace_id = unhex(?)), 0)",
        )
        .bind(trace_id.to_hex())
        .bind(trace_id.to_hex())
    }

    /// The events tied to a trace (by their `traceparent` or log record trace
    /// context), by time, once each: the trace's range of `trace_events`, then
    /// those events by their own sort key, `LIMIT 1 BY` it instead of `FINAL`
    /// (which would merge whole partitions; it also keeps one of twins stored
    /// in two day partitions).
    pub async fn trace_events(&self, trace_id: TraceId) -> Result<Vec<Event>, StoreError> {
        let rows = self
            .query(
                "SELECT ?fields FROM events PREWHERE (source, event_id) IN ( \
                   SELECT source, event_id FROM trace_events WHERE trace_id = unhex(?)) \
                 ORDER BY time_ns, source, event_id LIMIT 1 BY source, event_id",
            )
            .bind(trace_id.to_hex())
            .fetch_all::<EventRow>()
            .await?;
        Ok(rows.into_iter().map(EventRow::into_event).collect())
    }
}
