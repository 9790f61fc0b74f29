//! Aggregates over a time range, for the console's overview and systems
//! pages. Unlike the lookups in `query`, these read every span or event of
//! the range: the day partitions bound what they read, and `FINAL` keeps a
//! redelivered record from counting twice.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// What one system sent over a range: spans by `service.name`, events by
/// their system.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SystemActivity {
    pub system: String,
    pub spans: u64,
    pub span_errors: u64,
    pub events: u64,
    /// Events whose outcome was `failed` or `dead_lettered`.
    pub event_failures: u64,
    pub dead_letters: u64,
    /// The newest span or event from it up to the end of the range, looking
    /// back at most [`LAST_SEEN_LOOKBACK_NS`] before its start; 0 when none.
    pub last_seen_ns: u64,
}

/// How far before a range's start "last seen" looks.
pub const LAST_SEEN_LOOKBACK_NS: u64 = 7 * 86_400 * 1_000_000_000;

/// One operation (span name) of one service over a range.
#[derive(Debug, Clone, Row, Deserialize, PartialEq)]
pub struct OperationStats {
    pub service: String,
    pub name: String,
    pub count: u64,
    pub errors: u64,
    pub p50_ns: u64,
    pub p95_ns: u64,
}

/// Calls from one service to another: a span whose parent span belongs to a
/// different service.
#[derive(Debug, Clone, Row, Deserialize, Serialize, PartialEq)]
pub struct ServiceEdge {
    pub parent: String,
    pub child: String,
    pub calls: u64,
    pub errors: u64,
}

/// How many times something happened in each bucket of a range.
#[derive(Debug, Clone, Row, Deserialize, PartialEq)]
pub struct BucketCount {
    #[serde(rename = "grp")]
    pub group: String,
    pub bucket: u64,
    pub count: u64,
}

/// `DateTime` bounds for partition pruning, from nanosecond bounds.
fn seconds(from_ns: u64, to_ns: u64) -> (u32, u32) {
    let s = |ns: u64| u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX);
    (s(from_ns), s(to_ns))
}

impl Store {
    /// Every system's spans and events over `[from_ns, to_ns]`, by name.
    pub async fn system_activity(
        &self,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<Vec<SystemActivity>, StoreError> {
        #[derive(Row, Deserialize)]
        struct SpanCounts {
            service: String,
            spans: u64,
            errors: u64,
            last_ns: u64,
        }
        #[derive(Row, Deserialize)]
        struct EventCounts {
            system: String,
            events: u64,
            failures: u64,
            dead: u64,
            last_ns: u64,
        }
        #[derive(Row, Deserialize)]
        struct LastSeen {
            system: String,
            last_ns: u64,
        }
        let (from_s, to_s) = seconds(from_ns, to_ns);
        let look_from_ns = from_ns.saturating_sub(LAST_SEEN_LOOKBACK_NS);
        let (look_s, _) = seconds(look_from_ns, to_ns);
        // Counts need FINAL (a redelivered span counts once) and read the
        // range; the newest time does not, and looks further back.
        let spans = self
            .query(
                "SELECT service, count() AS spans, countIf(status_code = 2) AS errors, \
                        max(start_ns) AS last_ns \
                 FROM spans_v2 FINAL \
                 WHERE start_time >= toDateTime(?) AND start_time <= toDateTime(?) \
                   AND start_ns >= ? AND start_ns <= ? \
                 GROUP BY service",
            )
            .bind(from_s)
            .bind(to_s)
            .bind(from_ns)
            .bind(to_ns)
            .fetch_all::<SpanCounts>();
        let events = self
            .query(
                "SELECT system, count() AS events, \
                        countIf(outcome IN ('failed', 'dead_lettered')) AS failures, \
                        countIf(outcome = 'dead_lettered') AS dead, \
                        max(time_ns) AS last_ns \
                 FROM events FINAL \
                 WHERE time >= toDateTime(?) AND time <= toDateTime(?) \
                   AND time_ns >= ? AND time_ns <= ? \
                 GROUP BY system",
            )
            .bind(from_s)
            .bind(to_s)
            .bind(from_ns)
            .bind(to_ns)
            .fetch_all::<EventCounts>();
        let last_seen = self
            .query(
                "SELECT system, max(last_ns) AS last_ns FROM ( \
                   SELECT service AS system, max(start_ns) AS last_ns FROM spans_v2 \
                   WHERE start_time >= toDateTime(?) AND start_time <= toDateTime(?) \
                     AND start_ns >= ? AND start_ns <= ? \
                   GROUP BY system \
                   UNION ALL \
                   SELECT system, max(time_ns) AS last_ns FROM events \
                   WHERE time >= toDateTime(?) AND time <= toDateTime(?) \
                     AND time_ns >= ? AND time_ns <= ? \
                   GROUP BY system \
                 ) GROUP BY system",
            )
            .bind(look_s)
            .bind(to_s)
            .bind(look_from_ns)
            .bind(to_ns)
            .bind(look_s)
            .bind(to_s)
            .bind(look_from_ns)
            .bind(to_ns)
            .fetch_all::<LastSeen>();
        let (spans, events, last_seen) = tokio::try_join!(spans, events, last_seen)?;
        let mut out: std::collections::BTreeMap<String, SystemActivity> = Default::default();
        for s in spans {
            let a = out.entry(s.service.clone()).or_default();
            a.system = s.service;
            a.spans = s.spans;
            a.span_errors = s.errors;
            a.last_seen_ns = a.last_seen_ns.max(s.last_ns);
        }
        for e in events {
            let a = out.entry(e.system.clone()).or_default();
            a.system = e.system;
            a.events = e.events;
            a.event_failures = e.failures;
            a.dead_letters = e.dead;
            a.last_seen_ns = a.last_seen_ns.max(e.last_ns);
        }
        // A system silent over the whole range still has a row: that is
        // when its silence matters most.
        for l in last_seen {
            let a = out.entry(l.system.clone()).or_default();
            a.system = l.system;
            a.last_seen_ns = a.last_seen_ns.max(l.last_ns);
        }
        Ok(out.into_values().collect())
    }

    /// Rate, errors and latency of every operation over `[from_ns, to_ns]`.
    pub async fn operation_stats(
        &self,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<Vec<OperationStats>, StoreError> {
        let (from_s, to_s) = seconds(from_ns, to_ns);
        self.query(
            "SELECT service, name, n AS count, e AS errors, \
                        toUInt64(q[1]) AS p50_ns, toUInt64(q[2]) AS p95_ns \
                 FROM ( \
                   SELECT service, name, count() AS n, countIf(status_code = 2) AS e, \
                          quantilesExact(0.5, 0.95)(duration_ns) AS q \
                   FROM spans_v2 FINAL \
                   WHERE start_time >= toDateTime(?) AND start_time <= toDateTime(?) \
                     AND start_ns >= ? AND start_ns <= ? \
                   GROUP BY service, name \
                 ) \
                 ORDER BY service, n DESC, name",
        )
        .bind(from_s)
        .bind(to_s)
        .bind(from_ns)
        .bind(to_ns)
        .fetch_all::<OperationStats>()
        .await
    }

    /// Which service calls which, from spans started in `[from_ns, to_ns]`
    /// whose parent (started up to an hour earlier) is another service's.
    pub async fn service_edges(
        &self,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<Vec<ServiceEdge>, StoreError> {
        const PARENT_SLACK_NS: u64 = 3_600 * 1_000_000_000;
        let (from_s, to_s) = seconds(from_ns, to_ns);
        let parent_from_ns = from_ns.saturating_sub(PARENT_SLACK_NS);
        let (parent_s, _) = seconds(parent_from_ns, to_ns);
        self.query(
            "SELECT parent, child, count() AS calls, countIf(status_code = 2) AS errors \
                 FROM ( \
                   SELECT trace_id, parent_span_id, service AS child, status_code \
                   FROM spans_v2 FINAL \
                   WHERE start_time >= toDateTime(?) AND start_time <= toDateTime(?) \
                     AND start_ns >= ? AND start_ns <= ? \
                     AND parent_span_id != toFixedString('', 8) \
                 ) AS children ANY LEFT JOIN ( \
                   SELECT trace_id, span_id AS parent_span_id, service AS parent \
                   FROM spans_v2 FINAL \
                   WHERE start_time >= toDateTime(?) AND start_time <= toDateTime(?) \
                     AND start_ns >= ? AND start_ns <= ? \
                 ) AS parents USING (trace_id, parent_span_id) \
                 WHERE parent != '' AND parent != child \
                 GROUP BY parent, child \
                 ORDER BY calls DESC",
        )
        .bind(from_s)
        .bind(to_s)
        .bind(from_ns)
        .bind(to_ns)
        .bind(parent_s)
        .bind(to_s)
        .bind(parent_from_ns)
        .bind(to_ns)
        .fetch_all::<ServiceEdge>()
        .await
    }

    /// Breaches per process whose due time falls in each `bucket_ns`-wide
    /// bucket of `[from_ns, to_ns]`; bucket 0 starts at `from_ns`.
    pub async fn breach_buckets(
        &self,
        from_ns: u64,
        to_ns: u64,
        bucket_ns: u64,
    ) -> Result<Vec<BucketCount>, StoreError> {
        self.query(
            "SELECT process_id AS grp, intDiv(due_ns - ?, ?) AS bucket, count() AS count \
                 FROM breaches FINAL \
                 WHERE due_ns >= ? AND due_ns <= ? AND state != 'cleared' \
                 GROUP BY grp, bucket",
        )
        .bind(from_ns)
        .bind(bucket_ns.max(1))
        .bind(from_ns)
        .bind(to_ns)
        .fetch_all::<BucketCount>()
        .await
    }
}
