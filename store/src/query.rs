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

/// Which way a walk through the links goes from a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

impl Store {
    /// Every span of one trace, by start time.
    pub async fn trace_spans(&self, trace_id: TraceId) -> Result<Vec<Span>, StoreError> {
        let rows = self
            .query("SELECT ?fields FROM spans_v2 FINAL WHERE trace_id = unhex(?) ORDER BY start_ns, span_id")
            .bind(trace_id.to_hex())
            .fetch_all::<SpanRow>()
            .await?;
        Ok(rows.into_iter().map(SpanRow::into_span).collect())
    }

    /// Has this key been seen on any record or link?
    pub async fn key_seen(&self, key: &BusinessKey) -> Result<bool, StoreError> {
        let count = self
            .query(
                "SELECT ifNull((SELECT count() FROM key_index WHERE key_type = ? AND key_value = ?), 0) \
                 + ifNull((SELECT count() FROM key_links WHERE key_type = ? AND key_value = ?), 0)",
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
               SELECT DISTINCT key_type FROM key_index WHERE key_type IN ({list}) AND key_value = ? \
               UNION ALL \
               SELECT DISTINCT key_type FROM key_links WHERE key_type IN ({list}) AND key_value = ? \
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
        let sql = format!(
            "SELECT DISTINCT key_type, key_value, linked_type, linked_value FROM key_links \
             WHERE (key_type, key_value) IN ({})",
            key_tuple_placeholders(keys.len())
        );
        let rows = bind_keys(self.query(&sql), keys)
            .fetch_all::<LinkRow>()
            .await?;
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
            let keys: Vec<&BusinessKey> = frontier.iter().map(|(k, _)| k).collect();
            let links = self.direct_links(&keys).await?;
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

    /// The spans and events carrying any of `keys`, as their key index rows
    /// (one per record, newest `limit`, returned by time); `true` when there
    /// were more. Reads the key index only, never the span or event table,
    /// so a key with thousands of records answers as fast as one with few.
    pub async fn journey_records(
        &self,
        keys: &[&BusinessKey],
        limit: usize,
    ) -> Result<(Vec<JourneyRecord>, bool), StoreError> {
        if keys.is_empty() {
            return Ok((Vec::new(), false));
        }
        let sql = format!(
            "SELECT ?fields FROM key_index \
             WHERE (key_type, key_value) IN ({}) AND record_kind IN (?, ?) \
             ORDER BY time_ns DESC \
             LIMIT 1 BY record_kind, trace_id, span_id, service, event_source, event_id \
             LIMIT ?",
            key_tuple_placeholders(keys.len())
        );
        let mut rows = bind_keys(self.query(&sql), keys)
            .bind(RECORD_SPAN)
            .bind(RECORD_EVENT)
            .bind(limit as u64 + 1)
            .fetch_all::<KeyIndexRow>()
            .await?;
        let truncated = rows.len() > limit;
        rows.truncate(limit);
        rows.reverse();
        Ok((convert(rows, KeyIndexRow::journey)?, truncated))
    }

    /// The spans carrying any of `keys`, newest `limit` first, returned by
    /// start time; `true` when there were more.
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
               SELECT trace_id, span_id FROM key_index \
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
    /// context), by time.
    pub async fn trace_events(&self, trace_id: TraceId) -> Result<Vec<Event>, StoreError> {
        let rows = self
            .query(
                "SELECT ?fields FROM events FINAL WHERE (source, event_id) IN ( \
                   SELECT source, event_id FROM trace_events WHERE trace_id = unhex(?)) \
                 ORDER BY time_ns, source, event_id",
            )
            .bind(trace_id.to_hex())
            .fetch_all::<EventRow>()
            .await?;
        Ok(rows.into_iter().map(EventRow::into_event).collect())
    }

    /// The events carrying any of `keys`, newest `limit`, returned by time;
    /// `true` when there were more.
    pub async fn events_with_keys(
        &self,
        keys: &[&BusinessKey],
        limit: usize,
    ) -> Result<(Vec<Event>, bool), StoreError> {
        if keys.is_empty() {
            return Ok((Vec::new(), false));
        }
        let sql = format!(
            "SELECT ?fields FROM events FINAL WHERE (source, event_id) IN ( \
               SELECT event_source, event_id FROM key_index \
               WHERE (key_type, key_value) IN ({}) AND record_kind = ? \
               GROUP BY event_source, event_id \
               ORDER BY max(time_ns) DESC LIMIT ?) \
             ORDER BY time_ns, source, event_id",
            key_tuple_placeholders(keys.len())
        );
        let rows = bind_keys(self.query(&sql), keys)
            .bind(RECORD_EVENT)
            .bind(limit as u64 + 1)
            .fetch_all::<EventRow>()
            .await?;
        let truncated = rows.len() > limit;
        let mut events: Vec<Event> = rows.into_iter().map(EventRow::into_event).collect();
        if truncated {
            events.remove(0);
        }
        Ok((events, truncated))
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
