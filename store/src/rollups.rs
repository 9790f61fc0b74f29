//! Writing the rollups (`sql/0013_rollups.sql`) that the views do not
//! fill: the service map's edges, which the collector pairs
//! (`domain::service_graph`), and the one-time backfill of all of them from
//! the raw rows stored before the migration ([`DayFill`]). Also
//! [`Store::stored_spans`], which lets a writer retrying a batch leave out
//! the spans an earlier attempt stored (the views would count them again).

use std::collections::HashSet;

use clickhouse::Row;
use domain::model::{Span, SpanId, TraceId};
use domain::service_graph::EdgeCount;
use serde::{Deserialize, Serialize};

use super::migrate::DayFill;
use super::{Store, StoreError};

#[derive(Debug, Row, Serialize)]
struct EdgeRow {
    minute: u32,
    parent: String,
    child: String,
    calls: u64,
    errors: u64,
}

impl Store {
    /// Adds `edges` to `edge_minutes` (summed with what is there).
    pub async fn write_edges(&self, edges: &[EdgeCount]) -> Result<(), StoreError> {
        let rows: Vec<EdgeRow> = edges
            .iter()
            .map(|e| EdgeRow {
                minute: super::rows::seconds(e.minute_ns),
                parent: e.parent.clone(),
                child: e.child.clone(),
                calls: e.calls,
                errors: e.errors,
            })
            .collect();
        self.insert_rows("edge_minutes", &rows).await
    }

    /// Which of `spans` `spans_v2` holds already, by trace id, span id and
    /// service. Reads only the granules of their trace ids.
    pub async fn stored_spans(
        &self,
        spans: &[Span],
    ) -> Result<HashSet<(TraceId, SpanId, String)>, StoreError> {
        #[derive(Row, Deserialize)]
        struct Stored {
            trace_id: [u8; 16],
            span_id: [u8; 8],
            service: String,
        }
        let mut traces: Vec<String> = spans.iter().map(|s| s.trace_id.to_hex()).collect();
        traces.sort_unstable();
        traces.dedup();
        let wanted: HashSet<(TraceId, SpanId, &str)> = spans
            .iter()
            .map(|s| (s.trace_id, s.span_id, s.service.as_str()))
            .collect();
        let mut stored = HashSet::new();
        for chunk in traces.chunks(LOOKUP_CHUNK) {
            let sql = format!(
                "SELECT trace_id, span_id, service FROM spans_v2 \
                 WHERE trace_id IN (SELECT toFixedString(unhex(arrayJoin([{}])), 16))",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut query = self.query(&sql);
            for trace in chunk {
                query = query.bind(trace.as_str());
            }
            for row in query.fetch_all::<Stored>().await? {
                let key = (TraceId(row.trace_id), SpanId(row.span_id), row.service);
                if wanted.contains(&(key.0, key.1, key.2.as_str())) {
                    stored.insert(key);
                }
            }
        }
        Ok(stored)
    }
}

/// Trace ids per lookup of [`Store::stored_spans`].
const LOOKUP_CHUNK: usize = 1000;

/// The days of stored spans, for the backfills from `spans_v2`.
const SPAN_DAYS: &str = "SELECT DISTINCT toString(toDate(start_time)) AS day FROM spans_v2";

/// `span_minutes` from the spans of one day, as `span_minutes_mv` would
/// have made them, each span once (`FINAL`).
const SPAN_MINUTES_OF_DAY: &str = "INSERT INTO span_minutes \
    (minute, service, name, spans, errors, newest_ns) \
    SELECT toStartOfMinute(start_time) AS minute, service, name, \
           countState() AS spans, \
           sumState(toUInt64(status_code = 2)) AS errors, \
           maxState(start_ns) AS newest_ns \
    FROM spans_v2 FINAL \
    WHERE toDate(start_time) = toDate(?) \
    GROUP BY minute, service, name";

/// `span_hours` from the spans of one day, likewise.
const SPAN_HOURS_OF_DAY: &str = "INSERT INTO span_hours \
    (hour, service, name, spans, errors, newest_ns) \
    SELECT toStartOfHour(start_time, 'UTC') AS hour, service, name, \
           countState() AS spans, \
           sumState(toUInt64(status_code = 2)) AS errors, \
           maxState(start_ns) AS newest_ns \
    FROM spans_v2 FINAL \
    WHERE toDate(start_time) = toDate(?) \
    GROUP BY hour, service, name";

/// `span_duration_minutes` from the spans of one day, as its view would
/// have made it (the same bucket expression).
const SPAN_DURATION_MINUTES_OF_DAY: &str = "INSERT INTO span_duration_minutes \
    (minute, service, name, bucket, spans) \
    WITH greatest(duration_ns, 8) AS g, \
         toUInt64(floor(log2(g))) AS m0, \
         toUInt64(m0 + (bitShiftRight(g, m0 + 1) > 0) - (bitShiftRight(g, m0) = 0)) AS m \
    SELECT toStartOfMinute(start_time) AS minute, service, name, \
           toUInt16(if(duration_ns < 8, duration_ns, \
                       toUInt64((m - 2) * 8 + bitAnd(bitShiftRight(g, m - 3), 7)))) AS bucket, \
           count() AS spans \
    FROM spans_v2 FINAL \
    WHERE toDate(start_time) = toDate(?) \
    GROUP BY minute, service, name, bucket";

/// `span_duration_hours` from the spans of one day, likewise.
const SPAN_DURATION_HOURS_OF_DAY: &str = "INSERT INTO span_duration_hours \
    (hour, service, name, bucket, spans) \
    WITH greatest(duration_ns, 8) AS g, \
         toUInt64(floor(log2(g))) AS m0, \
         toUInt64(m0 + (bitShiftRight(g, m0 + 1) > 0) - (bitShiftRight(g, m0) = 0)) AS m \
    SELECT toStartOfHour(start_time, 'UTC') AS hour, service, name, \
           toUInt16(if(duration_ns < 8, duration_ns, \
                       toUInt64((m - 2) * 8 + bitAnd(bitShiftRight(g, m - 3), 7)))) AS bucket, \
           count() AS spans \
    FROM spans_v2 FINAL \
    WHERE toDate(start_time) = toDate(?) \
    GROUP BY hour, service, name, bucket";

/// `edge_minutes` from the spans of one day whose parent (that day, the one
/// before or the one after) is another service's, one trace-id slice at a time so the
/// join's memory stays a slice of two days.
const EDGE_MINUTES_OF_DAY: &str =
    "INSERT INTO edge_minutes (minute, parent, child, calls, errors) \
    SELECT minute, parent, child, count() AS calls, sum(toUInt64(status_code = 2)) AS errors \
    FROM ( \
      SELECT trace_id, parent_span_id, service AS child, status_code, \
             toStartOfMinute(start_time) AS minute \
      FROM spans_v2 FINAL \
      WHERE toDate(start_time) = toDate(?) \
        AND parent_span_id != toFixedString('', 8) \
        AND cityHash64(trace_id) % {pieces} = {piece} \
    ) AS children ANY LEFT JOIN ( \
      SELECT trace_id, span_id AS parent_span_id, service AS parent \
      FROM spans_v2 FINAL \
      WHERE toDate(start_time) >= toDate(?) - 1 AND toDate(start_time) <= toDate(?) + 1 \
        AND cityHash64(trace_id) % {pieces} = {piece} \
    ) AS parents USING (trace_id, parent_span_id) \
    WHERE parent != '' AND parent != child \
    GROUP BY minute, parent, child";

/// The days of stored events.
const EVENT_DAYS: &str = "SELECT DISTINCT toString(toDate(time)) AS day FROM events";

/// `event_minutes` from the events of one day, as `event_minutes_mv` would
/// have made them.
const EVENT_MINUTES_OF_DAY: &str = "INSERT INTO event_minutes \
    (minute, system, type, outcome, events, newest_ns) \
    SELECT toStartOfMinute(time) AS minute, system, type, outcome, \
           countState() AS events, maxState(time_ns) AS newest_ns \
    FROM events FINAL \
    WHERE toDate(time) = toDate(?) \
    GROUP BY minute, system, type, outcome";

/// `event_hours` from the events of one day, likewise.
const EVENT_HOURS_OF_DAY: &str = "INSERT INTO event_hours \
    (hour, system, type, outcome, events, newest_ns) \
    SELECT toStartOfHour(time, 'UTC') AS hour, system, type, outcome, \
           countState() AS events, maxState(time_ns) AS newest_ns \
    FROM events FINAL \
    WHERE toDate(time) = toDate(?) \
    GROUP BY hour, system, type, outcome";

/// The backfills of migration 0013, run once after its statements.
pub const ROLLUP_FILLS: &[DayFill] = &[
    DayFill {
        target: "span_minutes",
        day_of: "toDate(minute)",
        days: SPAN_DAYS,
        insert: SPAN_MINUTES_OF_DAY,
        pieces: 1,
    },
    DayFill {
        target: "span_hours",
        day_of: "toDate(hour)",
        days: SPAN_DAYS,
        insert: SPAN_HOURS_OF_DAY,
        pieces: 1,
    },
    DayFill {
        target: "span_duration_minutes",
        day_of: "toDate(minute)",
        days: SPAN_DAYS,
        insert: SPAN_DURATION_MINUTES_OF_DAY,
        pieces: 1,
    },
    DayFill {
        target: "span_duration_hours",
        day_of: "toDate(hour)",
        days: SPAN_DAYS,
        insert: SPAN_DURATION_HOURS_OF_DAY,
        pieces: 1,
    },
    DayFill {
        target: "edge_minutes",
        day_of: "toDate(minute)",
        days: SPAN_DAYS,
        insert: EDGE_MINUTES_OF_DAY,
        pieces: 16,
    },
    DayFill {
        target: "event_minutes",
        day_of: "toDate(minute)",
        days: EVENT_DAYS,
        insert: EVENT_MINUTES_OF_DAY,
        pieces: 1,
    },
    DayFill {
        target: "event_hours",
        day_of: "toDate(hour)",
        days: EVENT_DAYS,
        insert: EVENT_HOURS_OF_DAY,
        pieces: 1,
    },
];
