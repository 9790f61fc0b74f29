//! The correlation feed: what was stored, in order of storing, read a
//! window at a time; its five-minute partitions dropped once read for good.

use clickhouse::sql::Identifier;

use crate::rows::{convert, FeedRow};
use crate::{Store, StoreError};
use domain::feed::FeedRecord;

/// Seconds of ingestion per partition of `correlation_feed_v2`.
const FEED_PARTITION_S: u64 = 300;

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
    /// On a cluster, from every node's local table (the count is of
    /// partitions dropped on any node).
    pub async fn prune_feed(&self, before_ns: u64) -> Result<usize, StoreError> {
        let Some(nodes) = self.node_stores().await? else {
            return self.prune_feed_of("correlation_feed_v2", before_ns).await;
        };
        let table = format!("correlation_feed_v2{}", crate::cluster::LOCAL);
        let mut dropped = 0;
        for node in nodes {
            dropped = dropped.max(node.prune_feed_of(&table, before_ns).await?);
        }
        Ok(dropped)
    }

    /// [`Store::prune_feed`] of `table` on this server alone.
    async fn prune_feed_of(&self, table: &str, before_ns: u64) -> Result<usize, StoreError> {
        let partitions = self
            .query(
                "SELECT DISTINCT partition FROM system.parts \
                 WHERE database = currentDatabase() AND table = ? AND active",
            )
            .bind(table)
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
                self.query(&format!("ALTER TABLE ? DROP PARTITION {slot}"))
                    .bind(Identifier(table))
                    .execute()
                    .await?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}
