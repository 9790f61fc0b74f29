//! What the correlator reads and writes, and what the API asks of its
//! results: the feed, walking records by key, first sightings of links, steps,
//! instances, breaches, and the watermark.

use std::collections::{HashMap, HashSet};

use clickhouse::Row;
use serde::Deserialize;

use super::query::{bind_keys, key_tuple_placeholders};
use super::rows::{
    convert, BreachRow, FeedRow, InstanceRow, StepRow, WalkRow, RECORD_EVENT, RECORD_SPAN,
};
use super::{Store, StoreError};
use domain::feed::{FeedRecord, Step};
use domain::instance::{Breach, InstanceRecord};
use domain::model::BusinessKey;

/// Items per `IN` list.
const CHUNK: usize = 1000;
/// Seconds of ingestion per partition of `correlation_feed_v2`.
const FEED_PARTITION_S: u64 = 300;

#[derive(Debug, Row, Deserialize)]
struct LinkSeen {
    key_type: String,
    key_value: String,
    linked_type: String,
    linked_value: String,
    ingested_ns: u64,
}

#[derive(Debug, Row, Deserialize)]
struct StepKey {
    process_id: String,
    root_value: String,
    stage_id: String,
    record_ref: String,
}

/// A stage's first time and whether a failed record reached it, per
/// instance, as stored.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct StageFirst {
    pub process_id: String,
    pub root_value: String,
    pub stage_id: String,
    pub time_ns: u64,
    pub failed: u8,
}

#[derive(Debug, Row, Deserialize)]
struct Watermark {
    watermark_ns: u64,
}

#[derive(Debug, Row, serde::Serialize)]
struct WatermarkRow {
    name: String,
    watermark_ns: u64,
    updated_ns: u64,
}

/// Which instances to list.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    pub process_id: String,
    pub status: Option<String>,
    pub root_value: Option<String>,
    pub from_ns: u64,
    pub to_ns: u64,
    pub limit: usize,
    /// Continue after (start_ns, root_value), newest first.
    pub after: Option<(u64, String)>,
}

/// Which breaches to list.
#[derive(Debug, Clone, Default)]
pub struct BreachFilter {
    pub process_id: Option<String>,
    pub sla_id: Option<String>,
    /// `Some(true)`: open only; `Some(false)`: closed only.
    pub open: Option<bool>,
    pub from_ns: u64,
    pub to_ns: u64,
    pub limit: usize,
    /// Continue after (due_ns, process, sla, root), newest first.
    pub after: Option<(u64, String, String, String)>,
}

impl Store {
    /// Feed rows after `(after_ns, after_ref)` up to `upto_ns`, in order.
    pub async fn feed_page(
        &self,
        after: (u64, &str),
        upto_ns: u64,
        limit: usize,
    ) -> Result<Vec<FeedRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT ?fields FROM correlation_feed_v2 \
                 WHERE ingested >= toDateTime(?) AND ingested <= toDateTime(?) \
                   AND ingested_ns >= ? AND ingested_ns <= ? \
                   AND (ingested_ns > ? OR (ingested_ns = ? AND record_ref > ?)) \
                 ORDER BY ingested_ns, record_ref LIMIT ?",
            )
            .bind(after.0 / 1_000_000_000)
            .bind(upto_ns.div_ceil(1_000_000_000))
            // A plain range on the sort key's first column, beside the
            // keyset condition: ClickHouse reads only the granules after the
            // cursor, not the partition from its start (an `OR` alone is not
            // used by the primary index).
            .bind(after.0)
            .bind(upto_ns)
            .bind(after.0)
            .bind(after.0)
            .bind(after.1)
            .bind(limit as u64)
            .fetch_all::<FeedRow>()
            .await?;
        convert(rows, FeedRow::record)
    }

    /// The ingestion time of the first feed row after `after_ns`, up to
    /// `upto_ns`; `None` when there is none. Lets a reader step over a gap
    /// in the feed (a quiet night, a first start) in one read instead of
    /// window after window.
    pub async fn feed_next_after(
        &self,
        after_ns: u64,
        upto_ns: u64,
    ) -> Result<Option<u64>, StoreError> {
        let next = self
            .query(
                "SELECT ifNull(min(ingested_ns), 0) FROM correlation_feed_v2 \
                 WHERE ingested >= toDateTime(?) AND ingested <= toDateTime(?) \
                   AND ingested_ns > ? AND ingested_ns <= ?",
            )
            .bind(after_ns / 1_000_000_000)
            .bind(upto_ns.div_ceil(1_000_000_000))
            .bind(after_ns)
            .bind(upto_ns)
            .fetch_one::<u64>()
            .await?;
        Ok((next != 0).then_some(next))
    }

    /// Drops the feed's five-minute partitions that end at or before
    /// `before_ns`: the correlator has read them and never reads them again.
    /// Returns how many were dropped.
    pub async fn prune_feed(&self, before_ns: u64) -> Result<usize, StoreError> {
        let partitions = self
            .query(
                "SELECT DISTINCT partition FROM system.parts \
                 WHERE database = currentDatabase() AND table = 'correlation_feed_v2' AND active",
            )
            .fetch_all::<String>()
            .await?;
        let before_s = before_ns / 1_000_000_000;
        let mut dropped = 0;
        for partition in partitions {
            // `intDiv(toUInt32(ingested), 300)`: a number of five minutes.
            let Ok(slot) = partition.trim_matches('\'').parse::<u64>() else {
                continue;
            };
            if (slot + 1) * FEED_PARTITION_S <= before_s {
                self.query(&format!(
                    "ALTER TABLE correlation_feed_v2 DROP PARTITION {slot}"
                ))
                .execute()
                .await?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Stores the records that reach a stage only through links (see
    /// `sql/0009_correlator_walks.sql`), one row per key they carry.
    pub async fn write_walks(&self, records: &[&FeedRecord]) -> Result<(), StoreError> {
        let rows: Vec<WalkRow> = records
            .iter()
            .flat_map(|r| WalkRow::for_record(r))
            .collect();
        self.insert_rows("correlator_walks", &rows).await
    }

    /// The walking records carrying any of `keys` but no key of type
    /// `without_type`, whose time is at or after `since_ns`; one per record,
    /// with all its keys. Reads each key's own range of a small table.
    pub async fn walks_with_keys(
        &self,
        keys: &[BusinessKey],
        since_ns: u64,
        without_type: &str,
    ) -> Result<Vec<FeedRecord>, StoreError> {
        let mut out: HashMap<String, FeedRecord> = HashMap::new();
        for chunk in keys.chunks(CHUNK) {
            let refs: Vec<&BusinessKey> = chunk.iter().collect();
            let sql = format!(
                "SELECT ?fields FROM correlator_walks \
                 WHERE (key_type, key_value) IN ({}) AND time >= toDateTime(?) \
                   AND NOT has(key_types, ?)",
                key_tuple_placeholders(refs.len())
            );
            let rows = bind_keys(self.query(&sql), &refs)
                .bind(since_ns / 1_000_000_000)
                .bind(without_type)
                .fetch_all::<WalkRow>()
                .await?;
            for row in rows {
                let record = row.record()?;
                out.entry(record.record_ref.clone()).or_insert(record);
            }
        }
        Ok(out.into_values().collect())
    }

    /// Fills `correlator_walks` from the span and event tables, once, for
    /// an installation that stored records before the table existed: the
    /// records at or after `since_ns` that reach one of `stages` (kind,
    /// system, name) and carry no key of `root_type`, a row per key. One
    /// `INSERT ... SELECT` per table inside ClickHouse; the record
    /// references are made as `rows::span_ref`/`event_ref` make them.
    pub async fn backfill_walks(
        &self,
        since_ns: u64,
        root_type: &str,
        stages: &[(&str, &str, &str)],
    ) -> Result<(), StoreError> {
        let of_kind = |kind: &str| -> Vec<(&str, &str)> {
            stages
                .iter()
                .filter(|(k, _, _)| *k == kind)
                .map(|(_, system, name)| (*system, *name))
                .collect()
        };
        // Columns in the order of `correlator_walks`.
        let tables = [
            (
                of_kind(RECORD_SPAN),
                "SELECT key_type, key_value, start_time, ?, \
                        concat('span:', lower(hex(trace_id)), ':', lower(hex(span_id))), \
                        service, name, start_ns, toUInt8(status_code = 2), key_types, key_values \
                 FROM spans_v2 ARRAY JOIN key_types AS key_type, key_values AS key_value \
                 WHERE start_time >= toDateTime(?) AND (service, name) IN",
            ),
            (
                of_kind(RECORD_EVENT),
                "SELECT key_type, key_value, time, ?, \
                        concat('event:', source, '\\t', event_id), \
                        system, type, time_ns, toUInt8(outcome IN ('failed', 'dead_lettered')), \
                        key_types, key_values \
                 FROM events ARRAY JOIN key_types AS key_type, key_values AS key_value \
                 WHERE time >= toDateTime(?) AND (system, type) IN",
            ),
        ];
        for ((pairs, select), kind) in tables.into_iter().zip([RECORD_SPAN, RECORD_EVENT]) {
            if pairs.is_empty() {
                continue;
            }
            let sql = format!(
                "INSERT INTO correlator_walks {select} ({}) AND NOT has(key_types, ?)",
                vec!["(?, ?)"; pairs.len()].join(", ")
            );
            let mut query = self
                .query(&sql)
                .within(crate::timeout::COPY_TIMEOUT)
                .bind(kind)
                .bind(since_ns / 1_000_000_000);
            for (system, name) in pairs {
                query = query.bind(system).bind(name);
            }
            query.bind(root_type).execute().await?;
        }
        Ok(())
    }

    /// One page of the keys of walking records at or after `since_ns`, each
    /// with its newest record's time, after `after` in key order; at most
    /// `limit`. The correlator loads its
    /// filter of walking keys with these at start, a page at a time.
    pub async fn walk_keys_page(
        &self,
        since_ns: u64,
        after: Option<&BusinessKey>,
        limit: usize,
    ) -> Result<Vec<(BusinessKey, u64)>, StoreError> {
        #[derive(Row, Deserialize)]
        struct KeyRow {
            key_type: String,
            key_value: String,
            time_ns: u64,
        }
        let mut sql = String::from(
            "SELECT key_type, key_value, max(time_ns) AS time_ns FROM correlator_walks \
             WHERE time >= toDateTime(?)",
        );
        if after.is_some() {
            sql.push_str(
                " AND key_type >= ? AND (key_type > ? OR (key_type = ? AND key_value > ?))",
            );
        }
        sql.push_str(" GROUP BY key_type, key_value ORDER BY key_type, key_value LIMIT ?");
        let mut query = self.query(&sql).bind(since_ns / 1_000_000_000);
        if let Some(k) = after {
            query = query
                .bind(k.key_type.as_str())
                .bind(k.key_type.as_str())
                .bind(k.key_type.as_str())
                .bind(k.value.as_str());
        }
        Ok(query
            .bind(limit as u64)
            .fetch_all::<KeyRow>()
            .await?
            .into_iter()
            .map(|r| (BusinessKey::new(r.key_type, r.key_value), r.time_ns))
            .collect())
    }

    /// When each of these links was first stored (both directions are
    /// stored; one is enough to ask). Links never stored are absent.
    pub async fn links_first_ingested(
        &self,
        links: &[(BusinessKey, BusinessKey)],
    ) -> Result<HashMap<(BusinessKey, BusinessKey), u64>, StoreError> {
        let mut out = HashMap::new();
        for chunk in links.chunks(CHUNK) {
            let sql = format!(
                "SELECT key_type, key_value, linked_type, linked_value, ingested_ns FROM key_links_v2 FINAL \
                 WHERE (key_type, key_value, linked_type, linked_value) IN ({})",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut query = self.query(&sql);
            for (a, b) in chunk {
                query = query
                    .bind(a.key_type.as_str())
                    .bind(a.value.as_str())
                    .bind(b.key_type.as_str())
                    .bind(b.value.as_str());
            }
            for row in query.fetch_all::<LinkSeen>().await? {
                let a = BusinessKey::new(row.key_type, row.key_value);
                let b = BusinessKey::new(row.linked_type, row.linked_value);
                let first = out.entry((a, b)).or_insert(row.ingested_ns);
                *first = (*first).min(row.ingested_ns);
            }
        }
        Ok(out)
    }

    /// Which of `steps` are already stored.
    pub async fn existing_steps(
        &self,
        steps: &[Step],
    ) -> Result<HashSet<(String, String, String, String)>, StoreError> {
        let mut out = HashSet::new();
        for chunk in steps.chunks(CHUNK) {
            let sql = format!(
                "SELECT process_id, root_value, stage_id, record_ref FROM process_steps \
                 WHERE (process_id, root_value, stage_id, record_ref) IN ({})",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut query = self.query(&sql);
            for s in chunk {
                query = query
                    .bind(s.process_id.as_str())
                    .bind(s.root_value.as_str())
                    .bind(s.stage_id.as_str())
                    .bind(s.record_ref.as_str());
            }
            for row in query.fetch_all::<StepKey>().await? {
                out.insert((row.process_id, row.root_value, row.stage_id, row.record_ref));
            }
        }
        Ok(out)
    }

    pub async fn write_steps(&self, steps: &[Step]) -> Result<(), StoreError> {
        let rows: Vec<StepRow> = steps.iter().map(StepRow::of).collect();
        self.insert_rows("process_steps", &rows).await
    }

    pub async fn write_instances(&self, instances: &[InstanceRecord]) -> Result<(), StoreError> {
        let rows: Vec<InstanceRow> = instances.iter().map(InstanceRow::of).collect();
        self.insert_rows("process_instances", &rows).await
    }

    pub async fn write_breaches(&self, breaches: &[Breach]) -> Result<(), StoreError> {
        let rows: Vec<BreachRow> = breaches.iter().map(BreachRow::of).collect();
        self.insert_rows("breaches", &rows).await
    }

    /// Each stage's first time per instance, for instances with a step at
    /// or after `since_ns`; or, with `roots`, for those instances only.
    pub async fn stage_firsts(
        &self,
        since_ns: u64,
        roots: Option<&[(String, String)]>,
    ) -> Result<Vec<StageFirst>, StoreError> {
        let base = "SELECT process_id, root_value, stage_id, min(time_ns) AS time_ns, max(failed) AS failed \
                    FROM process_steps WHERE ";
        let tail = " GROUP BY process_id, root_value, stage_id";
        match roots {
            None => Ok(self
                .query(&format!(
                    "{base}(process_id, root_value) IN (SELECT process_id, root_value FROM process_steps \
                     WHERE time >= toDateTime(?)){tail}"
                ))
                .bind(since_ns / 1_000_000_000)
                .fetch_all::<StageFirst>()
                .await?),
            Some(roots) => {
                let mut out = Vec::new();
                for chunk in roots.chunks(CHUNK) {
                    let sql = format!(
                        "{base}(process_id, root_value) IN ({}){tail}",
                        key_tuple_placeholders(chunk.len())
                    );
                    let mut query = self.query(&sql);
                    for (process, root) in chunk {
                        query = query.bind(process.as_str()).bind(root.as_str());
                    }
                    out.extend(query.fetch_all::<StageFirst>().await?);
                }
                Ok(out)
            }
        }
    }

    /// Stored instances (latest), for instances last seen at or after
    /// `since_ns`.
    pub async fn instances_since(&self, since_ns: u64) -> Result<Vec<InstanceRecord>, StoreError> {
        let rows = self
            .query("SELECT ?fields FROM process_instances FINAL WHERE last_ns >= ?")
            .bind(since_ns)
            .fetch_all::<InstanceRow>()
            .await?;
        convert(rows, InstanceRow::record)
    }

    /// Stored breaches (latest) whose start is at or after `since_ns`.
    pub async fn breaches_since(&self, since_ns: u64) -> Result<Vec<Breach>, StoreError> {
        let rows = self
            .query("SELECT ?fields FROM breaches FINAL WHERE from_ns >= ?")
            .bind(since_ns)
            .fetch_all::<BreachRow>()
            .await?;
        convert(rows, BreachRow::breach)
    }

    pub async fn load_watermark(&self, name: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .query("SELECT watermark_ns FROM correlator_state FINAL WHERE name = ?")
            .bind(name)
            .fetch_optional::<Watermark>()
            .await?
            .map(|w| w.watermark_ns))
    }

    pub async fn save_watermark(&self, name: &str, watermark_ns: u64) -> Result<(), StoreError> {
        self.insert_rows(
            "correlator_state",
            &[WatermarkRow {
                name: name.to_string(),
                watermark_ns,
                updated_ns: domain::now_ns(),
            }],
        )
        .await
    }

    /// A page of instances of one process, newest start first: a key's
    /// from `process_instances` by its sort key, a range's from
    /// `instances_by_start` (`Store::instances_page`) by minute of start.
    pub async fn list_instances(
        &self,
        filter: &InstanceFilter,
    ) -> Result<(Vec<InstanceRecord>, Option<(u64, String)>), StoreError> {
        let Some(root) = &filter.root_value else {
            let rows = self.instances_page(filter).await?;
            return Ok(page(rows, filter.limit));
        };
        let mut sql = String::from(
            "SELECT ?fields FROM process_instances FINAL \
             WHERE process_id = ? AND root_value = ? AND start_ns >= ? AND start_ns <= ?",
        );
        if filter.status.is_some() {
            sql.push_str(" AND status = ?");
        }
        if filter.after.is_some() {
            sql.push_str(" AND (start_ns < ? OR (start_ns = ? AND root_value < ?))");
        }
        sql.push_str(" ORDER BY start_ns DESC, root_value DESC LIMIT ?");
        let mut query = self
            .query(&sql)
            .bind(filter.process_id.as_str())
            .bind(root.as_str())
            .bind(filter.from_ns)
            .bind(filter.to_ns);
        if let Some(status) = &filter.status {
            query = query.bind(status.as_str());
        }
        if let Some((start, root)) = &filter.after {
            query = query.bind(*start).bind(*start).bind(root.as_str());
        }
        let rows = convert(
            query
                .bind(filter.limit as u64 + 1)
                .fetch_all::<InstanceRow>()
                .await?,
            InstanceRow::record,
        )?;
        Ok(page(rows, filter.limit))
    }

    /// The instances of these (process, root value) pairs.
    pub async fn instances_of(
        &self,
        roots: &[(String, String)],
    ) -> Result<Vec<InstanceRecord>, StoreError> {
        let mut out = Vec::new();
        for chunk in roots.chunks(CHUNK) {
            let sql = format!(
                "SELECT ?fields FROM process_instances FINAL WHERE (process_id, root_value) IN ({}) \
                 ORDER BY start_ns",
                key_tuple_placeholders(chunk.len())
            );
            let mut query = self.query(&sql);
            for (process, root) in chunk {
                query = query.bind(process.as_str()).bind(root.as_str());
            }
            out.extend(convert(
                query.fetch_all::<InstanceRow>().await?,
                InstanceRow::record,
            )?);
        }
        Ok(out)
    }

    /// Breaches (open or closed, not cleared) of these instances.
    pub async fn breaches_of(&self, roots: &[(String, String)]) -> Result<Vec<Breach>, StoreError> {
        let mut out = Vec::new();
        for chunk in roots.chunks(CHUNK) {
            let sql = format!(
                "SELECT ?fields FROM breaches FINAL WHERE (process_id, root_value) IN ({}) \
                 AND state != 'cleared'",
                key_tuple_placeholders(chunk.len())
            );
            let mut query = self.query(&sql);
            for (process, root) in chunk {
                query = query.bind(process.as_str()).bind(root.as_str());
            }
            out.extend(convert(
                query.fetch_all::<BreachRow>().await?,
                BreachRow::breach,
            )?);
        }
        Ok(out)
    }

    /// A page of breaches, newest due time first.
    pub async fn list_breaches(
        &self,
        filter: &BreachFilter,
    ) -> Result<(Vec<Breach>, Option<(u64, String, String, String)>), StoreError> {
        let mut sql = String::from(
            "SELECT ?fields FROM breaches FINAL WHERE state != 'cleared' AND due_ns >= ? AND due_ns <= ?",
        );
        if filter.process_id.is_some() {
            sql.push_str(" AND process_id = ?");
        }
        if filter.sla_id.is_some() {
            sql.push_str(" AND sla_id = ?");
        }
        match filter.open {
            Some(true) => sql.push_str(" AND state = 'open'"),
            Some(false) => sql.push_str(" AND state = 'closed'"),
            None => {}
        }
        if filter.after.is_some() {
            sql.push_str(
                " AND (due_ns < ? OR (due_ns = ? AND (process_id < ? OR (process_id = ? AND \
                 (sla_id < ? OR (sla_id = ? AND root_value < ?))))))",
            );
        }
        sql.push_str(
            " ORDER BY due_ns DESC, process_id DESC, sla_id DESC, root_value DESC LIMIT ?",
        );
        let mut query = self.query(&sql).bind(filter.from_ns).bind(filter.to_ns);
        if let Some(p) = &filter.process_id {
            query = query.bind(p.as_str());
        }
        if let Some(s) = &filter.sla_id {
            query = query.bind(s.as_str());
        }
        if let Some((due, p, s, r)) = &filter.after {
            query = query
                .bind(*due)
                .bind(*due)
                .bind(p.as_str())
                .bind(p.as_str())
                .bind(s.as_str())
                .bind(s.as_str())
                .bind(r.as_str());
        }
        let mut rows = convert(
            query
                .bind(filter.limit as u64 + 1)
                .fetch_all::<BreachRow>()
                .await?,
            BreachRow::breach,
        )?;
        let next = if rows.len() > filter.limit {
            rows.truncate(filter.limit);
            rows.last().map(|r| {
                (
                    r.due_ns,
                    r.process_id.clone(),
                    r.sla_id.clone(),
                    r.root_value.clone(),
                )
            })
        } else {
            None
        };
        Ok((rows, next))
    }
}

/// The first `limit` of `rows` (read one more than a page), and where the
/// next page starts when there is one.
fn page(
    mut rows: Vec<InstanceRecord>,
    limit: usize,
) -> (Vec<InstanceRecord>, Option<(u64, String)>) {
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| (r.start_ns, r.root_value.clone()))
    } else {
        None
    };
    (rows, next)
}
