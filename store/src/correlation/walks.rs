//! Walking records (they reach a stage but name no root key), by key: so a
//! link that arrives later finds them.

use std::collections::HashMap;

use clickhouse::Row;
use serde::Deserialize;

use super::CHUNK;
use crate::query::{bind_keys, key_tuple_placeholders};
use crate::rows::{WalkRow, RECORD_EVENT, RECORD_SPAN};
use crate::{Store, StoreError};
use domain::feed::FeedRecord;
use domain::model::BusinessKey;

impl Store {
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
                        service, name, start_ns, toUInt8(status_code = 2), key_types, key_values, \
                        resource_values[indexOf(resource_keys, 'plant.id')] \
                 FROM spans_v2 ARRAY JOIN key_types AS key_type, key_values AS key_value \
                 WHERE start_time >= toDateTime(?) AND (service, name) IN",
            ),
            (
                of_kind(RECORD_EVENT),
                "SELECT key_type, key_value, time, ?, \
                        concat('event:', source, '\\t', event_id), \
                        system, type, time_ns, toUInt8(outcome IN ('failed', 'dead_lettered')), \
                        key_types, key_values, attr_values[indexOf(attr_keys, 'plant')] \
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
}
