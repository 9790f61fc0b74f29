//! Inserting a batch: spans, logs, events, and what is derived from them (the
//! key index, key links, the trace-to-event index), each table in one
//! `INSERT`. Idempotent (see the module docs of `storage`): a batch that
//! failed half-way is retried whole, and a redelivered event is recognised by
//! its source and id and not stored again.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use clickhouse::{Row, RowOwned, RowWrite};
use serde::Deserialize;

use super::hubs::{HubLinks, HubTypes, OrphanKeyRow};
use super::query::key_tuple_placeholders;
use super::recent::RecentSet;
use super::rows::{EventRow, FeedRow, KeyIndexRow, KeyLinkRow, LogRow, SpanRow, TraceEventRow};
use super::{Store, StoreError};
use domain::model::{Batch, BusinessKey, Event, SpanId, TraceId};

/// Pairs per `IN` list when looking for events already stored.
const LOOKUP_CHUNK: usize = 1000;

/// What [`Store::write_batch`] did beyond writing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteReport {
    /// Events already stored (or twice in the batch), not stored again.
    pub duplicate_events: usize,
    /// Of those, events whose source and id were stored from another
    /// system: not a redelivery but a clash (two systems using one
    /// `source`, or one posing as another), also not stored.
    pub conflicting_events: usize,
}

/// Rows made on the way to ClickHouse. Boxed: the concrete iterator types,
/// held across `await`, defeat the compiler's `Send` proof for the task.
type RowIter<'a, T> = Box<dyn Iterator<Item = T> + Send + 'a>;

#[derive(Debug, Row, Deserialize)]
struct StoredEvent {
    source: String,
    event_id: String,
    time_ns: u64,
    system: String,
}

impl Store {
    pub(crate) async fn insert_rows<T: RowOwned + RowWrite>(
        &self,
        table: &str,
        rows: &[T],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.bounded(async {
            let mut insert = self.client().insert::<T>(table).await?;
            for row in rows {
                insert.write(row).await?;
            }
            insert.end().await
        })
        .await
    }

    /// Like `insert_rows`, converting each row just before it is sent, so a
    /// large batch never exists twice in memory (records and rows).
    async fn insert_iter<T: RowOwned + RowWrite>(
        &self,
        table: &str,
        rows: RowIter<'_, T>,
    ) -> Result<(), StoreError> {
        let mut rows = rows.peekable();
        if rows.peek().is_none() {
            return Ok(());
        }
        self.bounded(async {
            let mut insert = self.client().insert::<T>(table).await?;
            for row in rows {
                insert.write(&row).await?;
            }
            insert.end().await
        })
        .await
    }

    /// The first stored time and the system of each of `events` that is
    /// already stored.
    async fn stored_event_times(
        &self,
        events: &[Event],
    ) -> Result<HashMap<(String, String), (u64, String)>, StoreError> {
        let mut stored = HashMap::new();
        for chunk in events.chunks(LOOKUP_CHUNK) {
            let sql = format!(
                "SELECT source, event_id, min(time_ns) AS time_ns, any(system) AS system FROM events \
                 WHERE (source, event_id) IN ({}) GROUP BY source, event_id",
                key_tuple_placeholders(chunk.len())
            );
            let mut query = self.query(&sql);
            for event in chunk {
                query = query.bind(event.source.as_str()).bind(event.id.as_str());
            }
            for row in query.fetch_all::<StoredEvent>().await? {
                stored.insert((row.source, row.event_id), (row.time_ns, row.system));
            }
        }
        Ok(stored)
    }

    /// Writes every record of `batch` and what is derived from it.
    pub async fn write_batch(&self, batch: &Batch) -> Result<WriteReport, StoreError> {
        self.write_batch_except(batch, &HashSet::new()).await
    }

    /// As [`Store::write_batch`], leaving out of `spans_v2` (not of the
    /// tables derived from it) the spans in `stored`: those an earlier
    /// attempt at this batch stored, which the rollups' views would count
    /// again (`Store::stored_spans`).
    pub async fn write_batch_except(
        &self,
        batch: &Batch,
        stored_spans: &HashSet<(TraceId, SpanId, String)>,
    ) -> Result<WriteReport, StoreError> {
        let mut report = WriteReport::default();
        let ingested_ns = domain::now_ns();
        let stored = if batch.events.is_empty() {
            HashMap::new()
        } else {
            self.stored_event_times(&batch.events).await?
        };
        // Each event once: new ones are stored; for a redelivery only the
        // derived rows are written again (idempotent), under the first time.
        let mut seen: HashMap<(&str, &str), &str> = HashMap::new();
        let mut events = Vec::new();
        let mut event_times = Vec::new();
        for event in &batch.events {
            // The system that owns this source and id: the stored event's,
            // else the first in this batch's.
            let stored_here = stored.get(&(event.source.clone(), event.id.clone()));
            let (owner, repeat) = match seen.entry((event.source.as_str(), event.id.as_str())) {
                Entry::Occupied(first) => (*first.get(), true),
                Entry::Vacant(slot) => {
                    let owner = stored_here.map_or(event.system.as_str(), |(_, s)| s.as_str());
                    (*slot.insert(owner), false)
                }
            };
            let clash = (owner != event.system).then_some(owner);
            if let Some(other) = clash {
                report.duplicate_events += 1;
                report.conflicting_events += 1;
                tracing::warn!(
                    source = %event.source,
                    id = %event.id,
                    stored_system = %other,
                    system = %event.system,
                    "an event's source and id were stored from another system; this one is not stored (give each system its own source, and map it in [events.systems] so tokens are held to it)"
                );
                continue;
            }
            if repeat {
                report.duplicate_events += 1;
                continue;
            }
            match stored_here {
                Some((first, _)) => {
                    report.duplicate_events += 1;
                    event_times.push((event, *first));
                }
                None => {
                    events.push(EventRow::from(event));
                    event_times.push((event, event.time_ns));
                }
            }
        }

        // Rows are made as they are sent (see `insert_iter`).
        let spans: RowIter<SpanRow> = Box::new(
            batch
                .spans
                .iter()
                .filter(|s| {
                    stored_spans.is_empty()
                        || !stored_spans.contains(&(s.trace_id, s.span_id, s.service.clone()))
                })
                .map(SpanRow::from),
        );
        let logs: RowIter<LogRow> = Box::new(batch.logs.iter().map(LogRow::from));
        // Every record's keys and time, for the hub rows: a record that
        // carries no hub key goes under the hubs its keys lead to
        // (`hubs`).
        let plain_logs = || batch.logs.iter().filter(|l| l.event_name.is_empty());
        let record_keys = || {
            batch
                .spans
                .iter()
                .map(|s| (s.keys.as_slice(), s.start_ns))
                .chain(plain_logs().map(|l| (l.keys.as_slice(), l.time_ns)))
                .chain(
                    event_times
                        .iter()
                        .map(|(e, time)| (e.keys.as_slice(), *time)),
                )
        };
        let hubless: HashSet<&BusinessKey> = record_keys()
            .filter(|(keys, _)| self.hubs.without_hub(keys))
            .flat_map(|(keys, _)| keys.iter())
            .collect();
        let hub_links = self
            .hub_links(&hubless, record_keys().map(|(keys, _)| keys))
            .await?;
        // Each key and day once.
        let orphans: Vec<OrphanKeyRow> = record_keys()
            .filter(|(keys, _)| self.hubs.without_hub(keys))
            .flat_map(|(keys, time)| {
                hub_links
                    .orphans(keys)
                    .map(move |k| OrphanKeyRow::new(k, time))
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let hubs = &*self.hubs;
        let links_of = &hub_links;
        let index: RowIter<KeyIndexRow> = Box::new(
            batch
                .spans
                .iter()
                .flat_map(move |s| {
                    with_hub_rows(KeyIndexRow::for_span(s, hubs), &s.keys, hubs, links_of)
                })
                // A log record that is an event is indexed as the event.
                .chain(plain_logs().flat_map(move |l| {
                    with_hub_rows(KeyIndexRow::for_log(l, hubs), &l.keys, hubs, links_of)
                }))
                .chain(event_times.iter().flat_map(move |(e, time)| {
                    with_hub_rows(
                        KeyIndexRow::for_event(e, *time, hubs),
                        &e.keys,
                        hubs,
                        links_of,
                    )
                })),
        );
        let trace_events: RowIter<TraceEventRow> = Box::new(
            event_times
                .iter()
                .filter_map(|(e, time)| TraceEventRow::for_event(e, *time)),
        );
        // Many records of one batch repeat the same link; send each once
        // (the first record's).
        let mut seen_links: HashSet<(String, String, String, String)> = HashSet::new();
        let mut links_sent: Vec<u64> = Vec::new();
        let sent = &mut links_sent;
        let links: RowIter<KeyLinkRow> = Box::new(
            batch
                .spans
                .iter()
                .flat_map(|s| KeyLinkRow::for_keys(&s.keys, s.start_ns, ingested_ns))
                .chain(
                    batch
                        .logs
                        .iter()
                        .flat_map(|l| KeyLinkRow::for_keys(&l.keys, l.time_ns, ingested_ns)),
                )
                .chain(
                    event_times
                        .iter()
                        .flat_map(|(e, time)| KeyLinkRow::for_keys(&e.keys, *time, ingested_ns)),
                )
                .filter(move |l: &KeyLinkRow| {
                    let pair = (
                        l.key_type.clone(),
                        l.key_value.clone(),
                        l.linked_type.clone(),
                        l.linked_value.clone(),
                    );
                    let hash = RecentSet::hash(&pair);
                    // Written lately by an earlier batch: only bytes again.
                    if self.links_written.contains(hash) || !seen_links.insert(pair) {
                        return false;
                    }
                    sent.push(hash);
                    true
                }),
        );
        tokio::try_join!(
            self.insert_iter("spans_v2", spans),
            self.insert_iter("logs", logs),
            self.insert_rows("events", &events),
            self.insert_iter("key_index_v2", index),
            self.insert_iter("key_links_v2", links),
            self.insert_iter("trace_events", trace_events),
            self.insert_rows("orphan_keys", &orphans),
        )?;
        // Remembered once stored, never before: a failed batch writes them
        // again when retried.
        self.links_written.insert_all(links_sent);
        // Last, stamped now: the correlator reads only what all other tables
        // already hold, and a slow insert above cannot put rows behind a
        // watermark that has moved on meanwhile.
        let fed_ns = domain::now_ns();
        // The correlator's feed: spans, events, and plain logs that link keys,
        // each with its own ingestion nanosecond so that the order is total.
        let feed: RowIter<FeedRow> = Box::new(
            batch
                .spans
                .iter()
                .filter_map(|s| FeedRow::for_span(s, 0))
                .chain(batch.logs.iter().filter_map(|l| FeedRow::for_log(l, 0)))
                .chain(
                    // Redeliveries too, under the first time: the earlier attempt
                    // may have failed after storing the event but before its feed
                    // row; the correlator writes each step once regardless.
                    event_times.iter().filter_map(|(e, time)| {
                        FeedRow::for_event(e, 0).map(|mut row| {
                            row.time_ns = *time;
                            row
                        })
                    }),
                )
                .enumerate()
                .map(|(i, mut row)| {
                    row.ingested_ns = fed_ns + i as u64;
                    row.ingested = super::rows::seconds(row.ingested_ns);
                    row
                }),
        );
        self.insert_iter("correlation_feed_v2", feed).await?;
        Ok(report)
    }
}

/// A record's key index rows, and when it carries no hub key, its rows
/// under the hubs its keys lead to ([`HubLinks::sole_hubs`]).
fn with_hub_rows(
    rows: impl Iterator<Item = KeyIndexRow>,
    keys: &[BusinessKey],
    hubs: &HubTypes,
    links: &HubLinks,
) -> std::vec::IntoIter<KeyIndexRow> {
    let mut rows: Vec<KeyIndexRow> = rows.collect();
    if hubs.without_hub(keys) {
        let linked: Vec<KeyIndexRow> = links
            .sole_hubs(keys)
            .into_iter()
            .map(|hub| rows[0].linked_under(hub, keys))
            .collect();
        rows.extend(linked);
    }
    rows.into_iter()
}
