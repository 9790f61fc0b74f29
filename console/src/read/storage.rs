//! What is stored, for the admin: per table rows, bytes on disk,
//! compression, oldest and newest partition and the retention in force, and
//! the server's version. `GET /api/v1/storage` and the storage section of
//! `/admin` both answer with [`storage`]. It reads `system.parts` once (a
//! row a partition, through `store::inspect`), never the tables.

use std::time::Duration;

use domain::process::duration;
use serde::Serialize;
use store::retention::{Policy, Retention};

use super::Reads;
use crate::error::AppError;

/// The database's storage.
#[derive(Debug, Clone, Serialize)]
pub struct Storage {
    /// As the server says it (`18.16.1`); `None` if it could not be asked.
    pub clickhouse_version: Option<String>,
    pub database: String,
    /// Active bytes on disk of every table.
    pub total_bytes: u64,
    /// The disk guard's limit, if set.
    pub max_disk: Option<u64>,
    /// Largest first; tables without data (views, empty tables) are left out.
    pub tables: Vec<TableStorage>,
}

/// One table.
#[derive(Debug, Clone, Serialize)]
pub struct TableStorage {
    pub table: String,
    pub rows: u64,
    /// On disk (active parts).
    pub bytes: u64,
    pub parts: u64,
    /// Uncompressed over compressed bytes of its columns; `None` when
    /// nothing is compressed.
    pub compression_ratio: Option<f64>,
    /// Partition ids (`20261130` a day, `202611` a month).
    pub oldest_partition: String,
    pub newest_partition: String,
    pub retention: RetentionInForce,
}

/// The retention in force for a table.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionInForce {
    /// Its `[retention]` class, if one governs it.
    pub class: Option<&'static str>,
    /// `14d`; `None`: kept forever.
    pub limit: Option<String>,
    /// What governs it, in a sentence.
    pub note: String,
}

/// The storage of the database, as `system.parts` has it now.
pub async fn storage(reads: &Reads) -> Result<Storage, AppError> {
    let store = &reads.store;
    let partitions = store.partitions().await?;
    let version = store.server_version().await.ok().map(|v| v.text);
    let tables: Vec<TableStorage> = store::inspect::sizes_of_tables(&partitions)
        .into_iter()
        .map(|t| TableStorage {
            compression_ratio: (t.compressed > 0)
                .then(|| ((t.uncompressed as f64 / t.compressed as f64) * 100.0).round() / 100.0),
            retention: in_force(&reads.retention, &t.table),
            table: t.table,
            rows: t.rows,
            bytes: t.bytes,
            parts: t.parts,
            oldest_partition: t.oldest_partition,
            newest_partition: t.newest_partition,
        })
        .collect();
    Ok(Storage {
        clickhouse_version: version,
        database: store.config().database.clone(),
        total_bytes: tables.iter().map(|t| t.bytes).sum(),
        max_disk: reads.retention.max_disk,
        tables,
    })
}

fn days(limit: Duration) -> String {
    duration::format_ns(limit.as_nanos() as u64)
}

/// What `retention` says of `table`.
pub fn in_force(retention: &Retention, table: &str) -> RetentionInForce {
    match retention.policy(table) {
        Policy::Class {
            class,
            limit,
            capped_by,
        } => RetentionInForce {
            class: Some(class.name()),
            limit: limit.map(days),
            note: match (limit, capped_by) {
                (None, _) => format!("`{}` is off: kept forever", class.name()),
                (Some(_), Some(by)) => format!(
                    "`{}`, capped by `{}`: never kept longer than its records",
                    class.name(),
                    by.name()
                ),
                (Some(_), None) => format!(
                    "`{}`: whole partitions are dropped once past the limit",
                    class.name()
                ),
            },
        },
        other => RetentionInForce {
            class: None,
            limit: None,
            note: match other {
                Policy::PrunedByCorrelator => {
                    "dropped by the correlator once read (five-minute partitions)".into()
                }
                Policy::State => "state (a row per rule, worker or migration): kept".into(),
                _ => "not governed by retention: kept".into(),
            },
        },
    }
}
