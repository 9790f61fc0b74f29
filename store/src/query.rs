//! Read queries, named for what they answer. Each reads a table ordered for
//! it: spans by trace id, the key index and key links by key; none scans the
//! span table.

use std::collections::{BTreeMap, BTreeSet};

use clickhouse::Row;
use serde::Deserialize;

use super::rows::{convert, EventRow, KeyIndexRow, SpanRow, RECORD_EVENT, RECORD_SPAN};
use super::{Store, StoreError};
use domain::feed::JourneyRecord;
use domain::keys::KeyTypes;
use domain::model::{BusinessKey, Event, Outcome, Span, TraceId};

/// How a linked key relates to the key looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Relation {
    /// Coarser: the customer of an order, the order of a work order.
    Parent,
    /// Finer: the orders of a customer, the work orders of an order.
    Child,
    /// Same rank, seen together (an order known under two numbers).
    Peer,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Parent => "parent",
            Relation::Child => "child",
            Relation::Peer => "peer",
        }
    }
}

/// A key reached from the one looked up, and the key it was reached through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedKey {
    pub key: BusinessKey,
    pub relation: Relation,
    pub via: BusinessKey,
    /// Links followed from the key looked up: 1 for a direct link.
    pub depth: u32,
}

/// Bounds on one key lookup, so a hub key (a customer with 100k orders) answers
/// quickly with a truncated list instead of never.
#[derive(Debug, Clone, Copy)]
pub struct KeyLookupLimits {
    pub max_depth: u32,
    pub max_keys: usize,
    pub max_spans: usize,
}

impl Default for KeyLookupLimits {
    fn default() -> Self {
        Self {
            max_depth: 6,
            max_keys: 500,
            max_spans: 2000,
        }
    }
}

#[derive(Debug, Row, Deserialize)]
struct LinkRow {
    key_type: String,
    key_value: String,
    linked_type: String,
    linked_value: String,
}

/// `(a, b) IN ((?, ?), (?, ?), ...)` with one pair of placeholders per key.
pub(crate) fn key_tuple_placeholders(count: usize) -> String {
    vec!["(?, ?)"; count].join(", ")
}

pub(crate) fn bind_keys(
    mut query: crate::timeout::Statement,
    keys: &[&BusinessKey],
) -> crate::timeout::Statement {
    for key in keys {
        query = query.bind(key.key_type.as_str()).bind(key.value.as_str());
    }
    query
}

/// Which events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub system: Option<String>,
    pub event_type: Option<String>,
    pub outcome: Option<Outcome>,
    /// Unix nanoseconds, inclusive.
    pub from_ns: u64,
    /// Unix nanoseconds, inclusive.
    pub to_ns: u64,
    pub limit: usize,
    /// Continue after this event (the last one of the previous page).
    pub after: Option<EventPosition>,
}

/// Where an event stands in the newest-first order of [`Store::list_events`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventPosition {
    pub time_ns: u64,
    pub source: String,
    pub id: String,
}

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

/// The record kinds a journey shows, for `record_kind IN (?, ?)`.
fn bind_kinds(query: crate::timeout::Statement) -> crate::timeout::Statement {
    query.bind(RECORD_SPAN).bind(RECORD_EVENT)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which way a walk through the links goes from a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

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

    /// Has this key been seen on any record or link?
    pub async fn key_seen(&self, key: &BusinessKey) -> Result<bool, StoreError> {
        let count = self
            .query(
                "SELECT ifNull((SELECT count() FROM key_index_v2 WHERE key_type = ? AND key_value = ?), 0) \
                 + ifNull((SELECT count() FROM key_links_v2 WHERE key_type = ? AND key_value = ?), 0)",
            )
            .bind(key.key_type.as_str())
            .bind(key.value.as_str())
            .bind(key.key_type.as_str())
            .bind(key.value.as_str())
            .fetch_one::<u64>()
            .await?;
        Ok(count > 0)
    }

    /// Which of `types` have a key with this exact value (for search).
    pub async fn key_types_with_value(
        &self,
        types: &[&str],
        value: &str,
    ) -> Result<Vec<String>, StoreError> {
        if types.is_empty() {
            return Ok(Vec::new());
        }
        let list = vec!["?"; types.len()].join(", ");
        let sql = format!(
            "SELECT key_type FROM ( \
               SELECT DISTINCT key_type FROM key_index_v2 WHERE key_type IN ({list}) AND key_value = ? \
               UNION ALL \
               SELECT DISTINCT key_type FROM key_links_v2 WHERE key_type IN ({list}) AND key_value = ? \
             ) GROUP BY key_type ORDER BY key_type"
        );
        let mut query = self.query(&sql);
        for _ in 0..2 {
            for t in types {
                query = query.bind(*t);
            }
            query = query.bind(value);
        }
        query.fetch_all::<String>().await
    }

    /// Is any span or event of this trace stored?
    pub async fn trace_seen(&self, trace_id: TraceId) -> Result<bool, StoreError> {
        let count = self
            .query(
                "SELECT ifNull((SELECT count() FROM spans_v2 WHERE trace_id = unhex(?)), 0) \
                 + ifNull((SELECT count() FROM trace_events WHERE trace_id = unhex(?)), 0)",
            )
            .bind(trace_id.to_hex())
            .bind(trace_id.to_hex())
            .fetch_one::<u64>()
            .await?;
        Ok(count > 0)
    }

    /// The keys linked directly to each of `keys`.
    pub async fn direct_links(
        &self,
        keys: &[&BusinessKey],
    ) -> Result<BTreeMap<BusinessKey, BTreeSet<BusinessKey>>, StoreError> {
        let whole: Vec<(&BusinessKey, Option<&[String]>)> =
            keys.iter().map(|k| (*k, None)).collect();
        self.direct_links_at_most(&whole, u32::MAX as usize).await
    }

    /// The keys linked directly to each of `keys`, at most `per_key` of
    /// each: the keys' ranges of `key_links`, by its sort key. A key given
    /// with `Some(types)` reads only its links to those types (the narrower
    /// ranges `(key, linked_type)` of the sort key: a walk up from an order
    /// to its customer does not read the customer's hundred orders).
    async fn direct_links_at_most(
        &self,
        keys: &[(&BusinessKey, Option<&[String]>)],
        per_key: usize,
    ) -> Result<BTreeMap<BusinessKey, BTreeSet<BusinessKey>>, StoreError> {
        let whole: Vec<&BusinessKey> = keys
            .iter()
            .filter(|(_, types)| types.is_none())
            .map(|(k, _)| *k)
            .collect();
        let typed: Vec<(&BusinessKey, &String)> = keys
            .iter()
            .filter_map(|(k, types)| Some(types.as_ref()?.iter().map(move |t| (*k, t))))
            .flatten()
            .collect();
        if whole.is_empty() && typed.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut ranges = Vec::new();
        if !whole.is_empty() {
            ranges.push(format!(
                "(key_type, key_value) IN ({})",
                key_tuple_placeholders(whole.len())
            ));
        }
        if !typed.is_empty() {
            ranges.push(format!(
                "(key_type, key_value, linked_type) IN ({})",
                vec!["(?, ?, ?)"; typed.len()].join(", ")
            ));
        }
        let sql = format!(
            "SELECT key_type, key_value, linked_type, linked_value FROM key_links_v2 \
             WHERE {} \
             GROUP BY key_type, key_value, linked_type, linked_value \
             LIMIT ? BY key_type, key_value",
            ranges.join(" OR ")
        );
        let mut query = bind_keys(self.query(&sql), &whole);
        for (key, linked_type) in &typed {
            query = query
                .bind(key.key_type.as_str())
                .bind(key.value.as_str())
                .bind(linked_type.as_str());
        }
        let rows = query.bind(per_key as u64).fetch_all::<LinkRow>().await?;
        let mut out: BTreeMap<BusinessKey, BTreeSet<BusinessKey>> = BTreeMap::new();
        for row in rows {
            out.entry(BusinessKey::new(row.key_type, row.key_value))
                .or_default()
                .insert(BusinessKey::new(row.linked_type, row.linked_value));
        }
        Ok(out)
    }

    /// The keys linked to `start`, transitively: down to finer keys (a
    /// customer's orders and their work orders) and up to coarser ones (a
    /// work order's order and customer), never down from a key reached going
    /// up, so an order does not pull in its customer's other orders.
    /// Returns the keys found and whether `limits` cut the walk short.
    pub async fn linked_keys(
        &self,
        start: &BusinessKey,
        types: &KeyTypes,
        limits: KeyLookupLimits,
    ) -> Result<(Vec<LinkedKey>, bool), StoreError> {
        // Unknown types (dropped from the config since) rank as the finest.
        let rank = |k: &BusinessKey| types.rank(&k.key_type).unwrap_or(u8::MAX);
        let mut seen: BTreeSet<BusinessKey> = BTreeSet::from([start.clone()]);
        let mut found = Vec::new();
        let mut frontier: Vec<(BusinessKey, Option<Direction>)> = vec![(start.clone(), None)];
        let mut truncated = false;
        for depth in 1..=limits.max_depth {
            if frontier.is_empty() {
                break;
            }
            // A key reached going up is followed only further up: only its
            // links to coarser types are read, and a key of the coarsest
            // type is not read at all.
            let coarser: Vec<Option<Vec<String>>> = frontier
                .iter()
                .map(|(k, direction)| {
                    (*direction == Some(Direction::Up)).then(|| {
                        types
                            .names()
                            .into_iter()
                            .filter(|t| types.rank(t).unwrap_or(u8::MAX) < rank(k))
                            .map(str::to_string)
                            .collect()
                    })
                })
                .collect();
            let keys: Vec<(&BusinessKey, Option<&[String]>)> = frontier
                .iter()
                .zip(&coarser)
                .map(|((k, _), types)| (k, types.as_deref()))
                .filter(|(_, types)| types.is_none_or(|t| !t.is_empty()))
                .collect();
            // A key's neighbours are keys already seen or new ones; more new
            // ones than the walk may still take cut it short anyway, so no
            // key needs more than this many (a hub's 100k links cost one
            // bounded answer, not 100k rows).
            let per_key = limits.max_keys - found.len().min(limits.max_keys) + seen.len() + 1;
            let links = self.direct_links_at_most(&keys, per_key).await?;
            // A key cut at `per_key` may have lost a parent that a walk up
            // would follow: say the answer is incomplete.
            truncated |= links.values().any(|l| l.len() >= per_key);
            let mut next = Vec::new();
            for (from, direction) in &frontier {
                let Some(neighbours) = links.get(from) else {
                    continue;
                };
                for to in neighbours {
                    let relation = match rank(to).cmp(&rank(from)) {
                        std::cmp::Ordering::Less => Relation::Parent,
                        std::cmp::Ordering::Greater => Relation::Child,
                        std::cmp::Ordering::Equal => Relation::Peer,
                    };
                    let step = match (direction, relation) {
                        (None | Some(Direction::Up), Relation::Parent) => Direction::Up,
                        (None | Some(Direction::Down), Relation::Child | Relation::Peer) => {
                            Direction::Down
                        }
                        _ => continue,
                    };
                    if seen.contains(to) {
                        continue;
                    }
                    if found.len() >= limits.max_keys {
                        truncated = true;
                        break;
                    }
                    seen.insert(to.clone());
                    let overall = match step {
                        Direction::Up => Relation::Parent,
                        Direction::Down if relation == Relation::Peer && direction.is_none() => {
                            Relation::Peer
                        }
                        Direction::Down => Relation::Child,
                    };
                    found.push(LinkedKey {
                        key: to.clone(),
                        relation: overall,
                        via: from.clone(),
                        depth,
                    });
                    next.push((to.clone(), Some(step)));
                }
            }
            frontier = next;
            if depth == limits.max_depth && !frontier.is_empty() {
                truncated = true;
            }
        }
        Ok((found, truncated))
    }

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
             PREWHERE (key_type, key_value) IN ({}) WHERE record_kind IN (?, ?) \
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
             PREWHERE (key_type, key_value) IN ({}) WHERE record_kind IN (?, ?)",
            counts_sql(),
            key_tuple_placeholders(keys.len())
        );
        let row = bind_kinds(bind_keys(self.query(&sql), keys))
            .fetch_one::<CountsRow>()
            .await?;
        Ok(row.into())
    }

    /// One page of the spans and events carrying any of `keys`, as their key
    /// index rows, newest first (ties in a fixed order of the record's
    /// identity), one per record; and the position to continue from when
    /// there are more. Reads the key index only, never the span or event
    /// table; a page after `after` reads only the day partitions up to it.
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
            "SELECT ?fields FROM key_index_v2 \
             PREWHERE (key_type, key_value) IN ({}) WHERE record_kind IN (?, ?)",
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
            " ORDER BY time_ns DESC, record_kind DESC, trace_id DESC, span_id DESC, \
               service DESC, event_source DESC, event_id DESC \
             LIMIT 1 BY record_kind, trace_id, span_id, service, event_source, event_id \
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
            .fetch_all::<KeyIndexRow>()
            .await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|r| JourneyPosition {
                time_ns: r.time_ns,
                kind: r.record_kind.clone(),
                trace_id: hex(&r.trace_id),
                span_id: hex(&r.span_id),
                service: r.service.clone(),
                source: r.event_source.clone(),
                id: r.event_id.clone(),
            })
        } else {
            None
        };
        Ok((convert(rows, KeyIndexRow::journey)?, next))
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
               WHERE (key_type, key_value) IN ({}) AND record_kind = ? \
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

impl Store {
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

    /// One page of events, newest first, and the position to continue from
    /// when there are more.
    pub async fn list_events(
        &self,
        filter: &EventFilter,
    ) -> Result<(Vec<Event>, Option<EventPosition>), StoreError> {
        let mut sql = String::from(
            "SELECT ?fields FROM events FINAL \
             WHERE time >= toDateTime(?) AND time <= toDateTime(?) \
               AND time_ns >= ? AND time_ns <= ?",
        );
        if filter.system.is_some() {
            sql.push_str(" AND system = ?");
        }
        if filter.event_type.is_some() {
            sql.push_str(" AND type = ?");
        }
        if filter.outcome.is_some() {
            sql.push_str(" AND outcome = ?");
        }
        if filter.after.is_some() {
            sql.push_str(
                " AND (time_ns < ? OR (time_ns = ? AND source < ?) \
                   OR (time_ns = ? AND source = ? AND event_id < ?))",
            );
        }
        sql.push_str(" ORDER BY time_ns DESC, source DESC, event_id DESC LIMIT ?");
        let mut query = self
            .query(&sql)
            .bind(filter.from_ns / 1_000_000_000)
            .bind(filter.to_ns.div_ceil(1_000_000_000))
            .bind(filter.from_ns)
            .bind(filter.to_ns);
        if let Some(system) = &filter.system {
            query = query.bind(system.as_str());
        }
        if let Some(event_type) = &filter.event_type {
            query = query.bind(event_type.as_str());
        }
        if let Some(outcome) = filter.outcome {
            query = query.bind(outcome.as_str());
        }
        if let Some(after) = &filter.after {
            query = query
                .bind(after.time_ns)
                .bind(after.time_ns)
                .bind(after.source.as_str())
                .bind(after.time_ns)
                .bind(after.source.as_str())
                .bind(after.id.as_str());
        }
        let rows = query
            .bind(filter.limit as u64 + 1)
            .fetch_all::<EventRow>()
            .await?;
        let mut events: Vec<Event> = rows.into_iter().map(EventRow::into_event).collect();
        let next = if events.len() > filter.limit {
            events.truncate(filter.limit);
            events.last().map(|e| EventPosition {
                time_ns: e.time_ns,
                source: e.source.clone(),
                id: e.id.clone(),
            })
        } else {
            None
        };
        Ok((events, next))
    }
}

impl Store {
    /// Events in a time range, oldest first, optionally of some types only,
    /// after the position `after` (time, source, id) when given; at most
    /// `limit`: a page, read by the sort key's order.
    pub async fn events_between(
        &self,
        from_ns: u64,
        to_ns: u64,
        types: Option<&[String]>,
        after: Option<(u64, &str, &str)>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let mut sql = String::from(
            "SELECT ?fields FROM events FINAL WHERE time >= toDateTime(?) AND time <= toDateTime(?) \
             AND time_ns >= ? AND time_ns <= ?",
        );
        if let Some(types) = types {
            if types.is_empty() {
                return Ok(Vec::new());
            }
            sql.push_str(&format!(
                " AND type IN ({})",
                vec!["?"; types.len()].join(", ")
            ));
        }
        if after.is_some() {
            sql.push_str(
                " AND (time_ns > ? OR (time_ns = ? AND (source > ? OR (source = ? AND event_id > ?))))",
            );
        }
        sql.push_str(" ORDER BY time_ns, source, event_id LIMIT ?");
        let mut query = self
            .query(&sql)
            .bind(from_ns / 1_000_000_000)
            .bind(to_ns.div_ceil(1_000_000_000))
            .bind(from_ns)
            .bind(to_ns);
        for t in types.into_iter().flatten() {
            query = query.bind(t.as_str());
        }
        if let Some((time_ns, source, id)) = after {
            query = query
                .bind(time_ns)
                .bind(time_ns)
                .bind(source)
                .bind(source)
                .bind(id);
        }
        let rows = query.bind(limit as u64).fetch_all::<EventRow>().await?;
        Ok(rows.into_iter().map(EventRow::into_event).collect())
    }
}
