//! What is stored, read only: the view of the database that operators and
//! tests take, beside the questions the console and the workers ask. Row
//! counts, tables, parts and sizes, and the raw records of a time range
//! with `FINAL` (every copy merged), against which tests check what the
//! pages read from the rollups and the indexes.
//!
//! Nothing here is on the path of a request or a worker: each read costs
//! what it returns (a count, a row a table, or the records asked for), but
//! a record read costs its day partitions (`FINAL`), so a range is for a
//! test's data or an operator's look at a little of it, never a page.

use clickhouse::sql::Identifier;
use clickhouse::{Row, RowOwned, RowRead};
use domain::model::{Event, LogRecord, Span};
use serde::Deserialize;

use crate::rows::{EventRow, LogRow, SpanRow};
use crate::{Store, StoreError};

/// How rows are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Every row as written, copies of a redelivered record included.
    AsWritten,
    /// After `FINAL`: each record once (`ReplacingMergeTree` tables only).
    Distinct,
}

/// The active parts of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSize {
    pub table: String,
    /// Bytes on disk.
    pub bytes: u64,
    pub rows: u64,
    pub parts: u64,
    /// Bytes of its columns compressed and as they would be uncompressed
    /// (their ratio is what compression saves).
    pub compressed: u64,
    pub uncompressed: u64,
    /// Its oldest and newest partition ids (`20261130` for a day,
    /// `202611` for a month; `tuple()` unpartitioned: `all`).
    pub oldest_partition: String,
    pub newest_partition: String,
}

/// The active parts of one partition of a table, from `system.parts`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize)]
pub struct PartitionSize {
    pub table: String,
    /// `partition_id`: what `ALTER TABLE ... DROP PARTITION ID` takes.
    pub partition_id: String,
    /// Bytes on disk (`bytes`: 18.16's name; current releases keep it as an
    /// alias of `bytes_on_disk`).
    pub bytes: u64,
    pub rows: u64,
    pub parts: u64,
    pub compressed: u64,
    pub uncompressed: u64,
}

impl Store {
    /// The tables (and views) of the database, by name.
    pub async fn tables(&self) -> Result<Vec<String>, StoreError> {
        self.query("SELECT name FROM system.tables WHERE database = ? ORDER BY name")
            .bind(self.config().database.as_str())
            .fetch_all::<String>()
            .await
    }

    /// Rows of `table`, counted as `rows` says.
    pub async fn row_count(&self, table: &str, rows: Rows) -> Result<u64, StoreError> {
        let sql = match rows {
            Rows::AsWritten => "SELECT count() FROM ?",
            Rows::Distinct => "SELECT count() FROM ? FINAL",
        };
        self.query(sql)
            .bind(Identifier(table))
            .fetch_one::<u64>()
            .await
    }

    /// Bytes, rows and parts on disk of each table with active parts,
    /// largest first (summed from [`Store::partitions`]).
    pub async fn table_sizes(&self) -> Result<Vec<TableSize>, StoreError> {
        Ok(sizes_of_tables(&self.partitions().await?))
    }

    /// Every partition with active parts of every table of the database,
    /// by table and partition id: one row a partition (a year of day
    /// partitions is a few thousand rows over all tables).
    /// On a cluster: of every node's local tables, named as their
    /// `Distributed` tables, each partition summed over the nodes.
    pub async fn partitions(&self) -> Result<Vec<PartitionSize>, StoreError> {
        let Some(nodes) = self.node_stores().await? else {
            return self.partitions_here().await;
        };
        let mut all: Vec<PartitionSize> = Vec::new();
        for node in nodes {
            for mut p in node.partitions_here().await? {
                let Some(table) = p.table.strip_suffix(crate::cluster::LOCAL) else {
                    continue;
                };
                p.table = table.to_string();
                match all
                    .iter_mut()
                    .find(|a| a.table == p.table && a.partition_id == p.partition_id)
                {
                    Some(a) => {
                        a.bytes += p.bytes;
                        a.rows += p.rows;
                        a.parts += p.parts;
                        a.compressed += p.compressed;
                        a.uncompressed += p.uncompressed;
                    }
                    None => all.push(p),
                }
            }
        }
        all.sort_by(|a, b| (&a.table, &a.partition_id).cmp(&(&b.table, &b.partition_id)));
        Ok(all)
    }

    /// [`Store::partitions`] of this server alone.
    pub(crate) async fn partitions_here(&self) -> Result<Vec<PartitionSize>, StoreError> {
        self.query(
            "SELECT table, partition_id, sum(bytes) AS bytes, sum(rows) AS rows, \
             count() AS parts, sum(data_compressed_bytes) AS compressed, \
             sum(data_uncompressed_bytes) AS uncompressed \
             FROM system.parts WHERE active AND database = ? \
             GROUP BY table, partition_id ORDER BY table, partition_id",
        )
        .bind(self.config().database.as_str())
        .fetch_all::<PartitionSize>()
        .await
    }

    /// Every span that started in `[from_ns, to_ns)`, once each.
    pub async fn spans_between(&self, from_ns: u64, to_ns: u64) -> Result<Vec<Span>, StoreError> {
        let rows: Vec<SpanRow> = self.final_rows(RANGE_OF_SPANS, from_ns, to_ns).await?;
        Ok(rows.into_iter().map(SpanRow::into_span).collect())
    }

    /// Every event of `[from_ns, to_ns)`, once each.
    pub async fn events_in(&self, from_ns: u64, to_ns: u64) -> Result<Vec<Event>, StoreError> {
        let rows: Vec<EventRow> = self.final_rows(RANGE_OF_EVENTS, from_ns, to_ns).await?;
        Ok(rows.into_iter().map(EventRow::into_event).collect())
    }

    /// Every log record of `[from_ns, to_ns)`, once each.
    pub async fn log_records_between(
        &self,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<Vec<LogRecord>, StoreError> {
        let rows: Vec<LogRow> = self.final_rows(RANGE_OF_LOGS, from_ns, to_ns).await?;
        Ok(rows.into_iter().map(LogRow::into_log).collect())
    }

    /// The rows of `range.table` whose time is in `[from_ns, to_ns)`, with
    /// `FINAL`, in the range's order.
    async fn final_rows<R: RowOwned + RowRead>(
        &self,
        range: Range,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<Vec<R>, StoreError> {
        let Range {
            table,
            seconds,
            nanos,
            order,
        } = range;
        // The seconds bound the day partitions read, the nanoseconds the rows.
        self.query(&format!(
            "SELECT ?fields FROM {table} FINAL \
             WHERE {seconds} >= toDateTime(?) AND {seconds} <= toDateTime(?) \
             AND {nanos} >= ? AND {nanos} < ? ORDER BY {order}"
        ))
        .bind(from_ns / 1_000_000_000)
        .bind(to_ns.div_ceil(1_000_000_000))
        .bind(from_ns)
        .bind(to_ns)
        .fetch_all::<R>()
        .await
    }
}

/// Each table's sum over its partitions (`partitions` ordered by table
/// and partition id), largest first.
pub fn sizes_of_tables(partitions: &[PartitionSize]) -> Vec<TableSize> {
    let mut tables: Vec<TableSize> = Vec::new();
    for p in partitions {
        match tables.last_mut() {
            Some(t) if t.table == p.table => {
                t.bytes += p.bytes;
                t.rows += p.rows;
                t.parts += p.parts;
                t.compressed += p.compressed;
                t.uncompressed += p.uncompressed;
                t.oldest_partition = t.oldest_partition.clone().min(p.partition_id.clone());
                t.newest_partition = t.newest_partition.clone().max(p.partition_id.clone());
            }
            _ => tables.push(TableSize {
                table: p.table.clone(),
                bytes: p.bytes,
                rows: p.rows,
                parts: p.parts,
                compressed: p.compressed,
                uncompressed: p.uncompressed,
                oldest_partition: p.partition_id.clone(),
                newest_partition: p.partition_id.clone(),
            }),
        }
    }
    tables.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.table.cmp(&b.table)));
    tables
}

/// A table partitioned by the day of its `seconds` column, read by time.
#[derive(Clone, Copy)]
struct Range {
    table: &'static str,
    seconds: &'static str,
    nanos: &'static str,
    order: &'static str,
}

const RANGE_OF_SPANS: Range = Range {
    table: "spans_v2",
    seconds: "start_time",
    nanos: "start_ns",
    order: "start_ns, trace_id, span_id, service",
};

const RANGE_OF_EVENTS: Range = Range {
    table: "events",
    seconds: "time",
    nanos: "time_ns",
    order: "time_ns, source, event_id",
};

const RANGE_OF_LOGS: Range = Range {
    table: "logs",
    seconds: "time",
    nanos: "time_ns",
    order: "time_ns, record_id",
};
