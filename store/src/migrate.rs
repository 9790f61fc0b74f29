//! Ordered migrations from `sql/`, each applied once and recorded in
//! `schema_migrations`. Every statement is `IF NOT EXISTS`, so two processes
//! starting together (collector and console) may both run one without harm.
//! A migration may also copy a table into its successor ([`DayCopy`]): one
//! `INSERT ... SELECT` per day partition (current ClickHouse refuses an
//! insert block that spans more than 100 partitions), into a
//! `ReplacingMergeTree` table where a second process's copy collapses into
//! the same rows. It may also fill a table from others once ([`DayFill`]:
//! the rollups of `0013` and the instance and breach rows of `0015` from the
//! rows stored before them), or give a table a partition ([`Repartition`]:
//! `process_instances` and `breaches` in `0016`).
//!
//! A statement may hold version gates (`{{if FEATURE: ...}}`,
//! `store::template`): it is rendered for the server's version, asked once
//! ([`Store::server_version`]), and one that renders to nothing is not sent.

use std::time::Duration;

use clickhouse::sql::Identifier;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::template::render_single;
use super::timeout::COPY_TIMEOUT;
use super::{Store, StoreError};

/// One migration file, embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
    /// Rows to copy once the statements have run.
    pub copy: Option<DayCopy>,
    /// Tables to fill once the statements have run, in order.
    pub fills: &'static [DayFill],
    /// Tables to put in place of their predecessors of another shape
    /// (unpartitioned, coarser granules), once the
    /// statements (which make them) have run.
    pub repartitions: &'static [Repartition<'static>],
}

/// Gives `table` a partition: the migration's statements make `next`
/// (`table`'s columns in the same order, with `PARTITION BY partition`);
/// then every row of `table` is copied into `next`, one partition at a
/// time, `table` is renamed `old` and `next` `table`, and `old` is dropped.
/// Each step is decided by what exists, so a run cut short anywhere
/// finishes on the next: a partition whose rows `next` holds in the same
/// number is not copied again, one copied in part is dropped from `next`
/// and copied whole. Run while no collector writes (see [`DayFill`]).
#[derive(Debug, Clone, Copy)]
pub struct Repartition<'a> {
    pub table: &'a str,
    pub next: &'a str,
    pub old: &'a str,
    /// `next`'s partition expression, of `table`'s columns (a `UInt32`:
    /// `toYYYYMM(...)`).
    pub partition: &'a str,
    /// The sort key (what a `ReplacingMergeTree` collapses on): a partition
    /// is copied whole when `next` holds as many distinct keys of it as
    /// `table`.
    pub key: &'a str,
    /// What tells a table of the new shape from its predecessor.
    pub shape: Shape,
}

/// What [`Repartition`] changes, by which a table of the new shape is
/// known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A partition key, where the predecessor had none.
    Partitioned,
    /// This `index_granularity`, where the predecessor had the default.
    Granularity(u32),
}

/// Copies every row of `from` into `to` (same columns), one day at a time.
#[derive(Debug, Clone, Copy)]
pub struct DayCopy {
    pub from: &'static str,
    pub to: &'static str,
    /// The `Date` expression the two tables are partitioned by.
    pub day: &'static str,
}

/// Fills `target` from other tables, one day at a time: `insert` runs once
/// per day `days` lists (and per slice, see `pieces`), with every `?` bound
/// to the day (`YYYY-MM-DD`). A day whose `target` rows exist already is
/// skipped, so a fill cut short resumes at the day it
/// stopped. Run while no collector writes: a collector migrates before it
/// writes, but with several processes starting on one database holding
/// data, run `throughline migrate` first.
#[derive(Debug, Clone, Copy)]
pub struct DayFill {
    pub target: &'static str,
    /// The `Date` of a `target` row: `toDate(minute)` or `toDate(hour)`.
    pub day_of: &'static str,
    /// A query of one column `day`: the days to fill.
    pub days: &'static str,
    pub insert: &'static str,
    /// `insert` runs this many times a day, `{piece}` taking 0 to
    /// `{pieces}` - 1 (a join done in slices to bound its memory).
    pub pieces: u32,
}

macro_rules! migration {
    ($version:expr, $name:literal) => {
        migration!($version, $name, None)
    };
    ($version:expr, $name:literal, $copy:expr) => {
        migration!($version, $name, $copy, &[])
    };
    ($version:expr, $name:literal, $copy:expr, $fills:expr) => {
        migration!($version, $name, $copy, $fills, &[])
    };
    ($version:expr, $name:literal, $copy:expr, $fills:expr, $repartitions:expr) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../../sql/", $name)),
            copy: $copy,
            fills: $fills,
            repartitions: $repartitions,
        }
    };
}

/// Every migration, in order. A test checks this matches the files in `sql/`.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_spans.sql"),
    migration!(2, "0002_business_keys.sql"),
    migration!(3, "0003_logs.sql"),
    migration!(4, "0004_events.sql"),
    migration!(5, "0005_correlation.sql"),
    migration!(6, "0006_key_index_details.sql"),
    migration!(7, "0007_alerts.sql"),
    migration!(
        8,
        "0008_spans_by_service.sql",
        Some(DayCopy {
            from: "spans",
            to: "spans_v2",
            day: "toDate(start_time)",
        })
    ),
    migration!(9, "0009_correlator_walks.sql"),
    migration!(
        10,
        "0010_feed_by_five_minutes.sql",
        Some(DayCopy {
            from: "correlation_feed",
            to: "correlation_feed_v2",
            day: "toDate(ingested)",
        })
    ),
    migration!(
        11,
        "0011_key_index_granular.sql",
        Some(DayCopy {
            from: "key_index",
            to: "key_index_v2",
            day: "toDate(time)",
        })
    ),
    migration!(
        12,
        "0012_key_links_granular.sql",
        Some(DayCopy {
            from: "key_links",
            to: "key_links_v2",
            day: "toDate(seen_at)",
        })
    ),
    migration!(13, "0013_rollups.sql", None, super::rollups::ROLLUP_FILLS),
    migration!(14, "0014_key_columns_stored_once.sql"),
    migration!(
        15,
        "0015_process_rollups.sql",
        None,
        super::process_rollups::PROCESS_ROLLUP_FILLS
    ),
    migration!(
        16,
        "0016_codecs_indexes_and_instance_months.sql",
        None,
        &[],
        &[
            Repartition {
                table: "process_instances",
                next: "process_instances_by_month",
                old: "process_instances_unpartitioned",
                partition: "toYYYYMM(toDateTime(intDiv(start_ns, 1000000000)))",
                key: "process_id, root_value",
                shape: Shape::Partitioned,
            },
            Repartition {
                table: "breaches",
                next: "breaches_by_month",
                old: "breaches_unpartitioned",
                partition: "toYYYYMM(toDateTime(intDiv(due_ns, 1000000000)))",
                key: "process_id, sla_id, root_value",
                shape: Shape::Partitioned,
            },
        ]
    ),
    migration!(17, "0017_plants.sql"),
    migration!(18, "0018_instance_plants.sql"),
    migration!(19, "0019_small_compressed_blocks.sql"),
    migration!(20, "0020_hub_rows.sql", None, super::hubs::LEGACY_DAYS),
    migration!(
        21,
        "0021_instances_fine_granules.sql",
        None,
        &[],
        &[Repartition {
            table: "process_instances",
            next: "process_instances_fine",
            old: "process_instances_coarse",
            partition: "toYYYYMM(toDateTime(intDiv(start_ns, 1000000000)))",
            key: "process_id, root_value",
            shape: Shape::Granularity(1024),
        }]
    ),
];

/// `ALTER TABLE ... ADD COLUMN` has no `IF NOT EXISTS` on 18.16: a
/// statement that adds one column whose column is there already (another
/// process ran it first, or the migration is run again) is done, not
/// broken. Every `ADD COLUMN` migration adds one column per statement.
pub(crate) fn column_added_already(statement: &str, error: &StoreError) -> bool {
    statement.contains(" ADD COLUMN ")
        && statement.matches(" ADD COLUMN ").count() == 1
        && error.to_string().contains("already exists")
}

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations {{on_cluster}} (
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime
) ENGINE = {{engine ReplacingMergeTree() | shard version}}
ORDER BY version";

#[derive(Debug, Row, Serialize, Deserialize)]
pub(crate) struct AppliedRow {
    pub(crate) version: u32,
    name: String,
    pub(crate) checksum: String,
    applied_at: u32,
}

/// A migration's fingerprint, to notice a file edited after it was applied.
pub(crate) fn checksum(sql: &str) -> String {
    format!("{:016x}", domain::hash::fnv1a(&[sql.as_bytes()]))
}

/// Splits a migration into statements at `;` ending a line, dropping comments.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let statement = current.trim().trim_end_matches(';').trim().to_string();
            if !statement.is_empty() {
                out.push(statement);
            }
            current.clear();
        }
    }
    let last = current.trim();
    if !last.is_empty() {
        out.push(last.to_string());
    }
    out
}

/// What [`Store::migrate`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied: Vec<String>,
    pub already: usize,
}

impl Store {
    /// The applied migrations, read within `limit`.
    pub(crate) async fn applied(&self, limit: Duration) -> Result<Vec<AppliedRow>, StoreError> {
        self.query("SELECT ?fields FROM schema_migrations FINAL ORDER BY version")
            .within(limit)
            .fetch_all::<AppliedRow>()
            .await
    }

    /// Renders `sql` for the server's version and runs it (nothing if it
    /// renders to nothing).
    pub(crate) async fn execute_template(
        &self,
        sql: &str,
        context: &str,
    ) -> Result<(), StoreError> {
        let version = self.server_version().await?.version;
        let rendered = render_single(sql, version)
            .map_err(|e| StoreError::Migration(format!("{context}: {e}")))?;
        if rendered.trim().is_empty() {
            return Ok(());
        }
        match self.query(&rendered).execute().await {
            Err(e) if column_added_already(&rendered, &e) => Ok(()),
            // No answer in time is worth retrying, not a broken migration.
            Err(e @ StoreError::Timeout(_)) => Err(e),
            Err(e) => Err(StoreError::Migration(format!("{context}: {e}"))),
            Ok(()) => Ok(()),
        }
    }

    /// Creates the database and applies every migration not yet applied.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        if let Some(cluster) = self.cluster() {
            return self.migrate_cluster(cluster).await;
        }
        self.create_database().await?;
        self.create_bookkeeping().await?;
        let applied = self.applied(self.config().timeouts.query).await?;
        let mut report = MigrationReport::default();
        for migration in MIGRATIONS {
            let sum = checksum(migration.sql);
            if let Some(done) = applied.iter().find(|a| a.version == migration.version) {
                if done.checksum != sum {
                    return Err(StoreError::Migration(format!(
                        "sql/{} was changed after it was applied to database `{}`; \
                         restore the file and put the change in a new migration",
                        migration.name,
                        self.config().database
                    )));
                }
                report.already += 1;
                continue;
            }
            self.apply_migration(migration, &sum, true).await?;
            report.applied.push(migration.name.to_string());
        }
        Ok(report)
    }

    /// Runs `migration`'s statements, then (with `with_data`) its copy and
    /// fills, and records it as applied with checksum `sum`. Without data
    /// it leaves a database as the release that added the migration left a
    /// new one (for upgrade tests: `testing::migrate_through`).
    pub(crate) async fn apply_migration(
        &self,
        migration: &Migration,
        sum: &str,
        with_data: bool,
    ) -> Result<(), StoreError> {
        for (i, statement) in statements(migration.sql).iter().enumerate() {
            let context = format!("sql/{} statement {}", migration.name, i + 1);
            self.execute_template(statement, &context).await?;
        }
        if with_data {
            self.migrate_data(migration).await?;
        }
        // The table's shape, not its data: done with or without data (an
        // empty table moves in no time).
        for repartition in migration.repartitions {
            self.repartition(repartition).await.map_err(|e| {
                StoreError::Migration(format!(
                    "sql/{}: partitioning {}: {e}",
                    migration.name, repartition.table
                ))
            })?;
        }
        self.record_applied(migration, sum).await
    }

    /// `migration`'s copy and fills, once its statements have run.
    pub(crate) async fn migrate_data(&self, migration: &Migration) -> Result<(), StoreError> {
        {
            if let Some(copy) = &migration.copy {
                self.copy_by_day(copy).await.map_err(|e| {
                    StoreError::Migration(format!(
                        "sql/{}: copying {} into {}: {e}",
                        migration.name, copy.from, copy.to
                    ))
                })?;
            }
            for fill in migration.fills {
                self.fill_by_day(fill).await.map_err(|e| {
                    StoreError::Migration(format!(
                        "sql/{}: filling {}: {e}",
                        migration.name, fill.target
                    ))
                })?;
            }
        }
        Ok(())
    }

    /// Records `migration` as applied, with checksum `sum`.
    pub(crate) async fn record_applied(
        &self,
        migration: &Migration,
        sum: &str,
    ) -> Result<(), StoreError> {
        self.insert_rows(
            "schema_migrations",
            &[AppliedRow {
                version: migration.version,
                name: migration.name.to_string(),
                checksum: sum.to_string(),
                applied_at: super::rows::unix_seconds_now(),
            }],
        )
        .await
    }

    /// The bookkeeping table, made if missing.
    pub(crate) async fn create_bookkeeping(&self) -> Result<(), StoreError> {
        self.execute_template(BOOKKEEPING, "schema_migrations")
            .await
    }

    /// Copies `copy.from` into `copy.to`, one day partition per insert.
    async fn copy_by_day(&self, copy: &DayCopy) -> Result<(), StoreError> {
        #[derive(Debug, Row, Deserialize)]
        struct Day {
            day: String,
        }
        let days = self
            .query(&format!(
                "SELECT DISTINCT toString({day}) AS day FROM {from} ORDER BY day",
                day = copy.day,
                from = copy.from
            ))
            .fetch_all::<Day>()
            .await?;
        for Day { day } in days {
            self.query(&format!(
                "INSERT INTO {to} SELECT * FROM {from} WHERE {day} = toDate(?)",
                to = copy.to,
                from = copy.from,
                day = copy.day
            ))
            .bind(day.as_str())
            // A day of a large install may rightly take long.
            .within(COPY_TIMEOUT)
            .execute()
            .await?;
        }
        Ok(())
    }

    /// Runs `fill` for every day it lists that `fill.target` has no rows of.
    async fn fill_by_day(&self, fill: &DayFill) -> Result<(), StoreError> {
        #[derive(Debug, Row, Deserialize)]
        struct Day {
            day: String,
        }
        let days = self
            .query(&format!("SELECT day FROM ({}) ORDER BY day", fill.days))
            .fetch_all::<Day>()
            .await?;
        for Day { day } in days {
            let present = self
                .query(&format!(
                    "SELECT count() FROM {} WHERE {} = toDate(?)",
                    fill.target, fill.day_of
                ))
                .bind(day.as_str())
                .fetch_one::<u64>()
                .await?;
            if present > 0 {
                continue;
            }
            for piece in 0..fill.pieces.max(1) {
                let sql = fill
                    .insert
                    .replace("{pieces}", &fill.pieces.max(1).to_string())
                    .replace("{piece}", &piece.to_string());
                let mut query = self.query(&sql);
                for _ in 0..sql.matches('?').count() {
                    query = query.bind(day.as_str());
                }
                // A day of a large install may rightly take long.
                query.within(COPY_TIMEOUT).execute().await?;
            }
        }
        Ok(())
    }

    /// Puts `r.next` in place of `r.table` (see [`Repartition`]).
    pub(crate) async fn repartition(&self, r: &Repartition<'_>) -> Result<(), StoreError> {
        #[derive(Debug, Row, Deserialize)]
        struct Table {
            name: String,
            partition_key: String,
            create_table_query: String,
        }
        let tables = self
            .query(
                "SELECT name, partition_key, create_table_query FROM system.tables \
                 WHERE database = currentDatabase() AND name IN (?, ?, ?)",
            )
            .bind(r.table)
            .bind(r.next)
            .bind(r.old)
            .fetch_all::<Table>()
            .await?;
        let key = |name: &str| {
            tables
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.partition_key.as_str())
        };
        // A table with a partition key (the granularity) is of the new shape.
        let partitioned = |name: &str| {
            tables.iter().any(|t| {
                t.name == name
                    && match r.shape {
                        Shape::Partitioned => !t.partition_key.is_empty(),
                        Shape::Granularity(g) => t
                            .create_table_query
                            .contains(&format!("index_granularity = {g}")),
                    }
            })
        };
        let exists = |name: &str| key(name).is_some();
        if partitioned(r.table) {
            // Done: what a run cut short (or a second process) left goes.
            for leftover in [r.next, r.old] {
                if exists(leftover) {
                    self.drop_table(leftover).await?;
                }
            }
            return Ok(());
        }
        if !exists(r.table) {
            // Cut short between the two renames: the copied table takes
            // the name. That is `old` if partitioned (a second process,
            // which had seen the old shape, got half through its renames
            // after ours; this run's statements made `next` again, empty),
            // else `next` (and `old`, the predecessor copied whole, goes).
            let (copied, other) = if partitioned(r.old) {
                (r.old, r.next)
            } else if partitioned(r.next) {
                (r.next, r.old)
            } else {
                return Err(self.unexpected_tables(r, &key));
            };
            self.rename_table(copied, r.table).await?;
            if partitioned(other) {
                // Of the new shape too: whatever it holds joins the rest
                // (a `ReplacingMergeTree`: a row there twice reads once).
                self.query("INSERT INTO ? SELECT * FROM ?")
                    .bind(Identifier(r.table))
                    .bind(Identifier(other))
                    .within(COPY_TIMEOUT)
                    .execute()
                    .await?;
            }
            if exists(other) {
                self.drop_table(other).await?;
            }
            return Ok(());
        }
        if !partitioned(r.next) {
            return Err(self.unexpected_tables(r, &key));
        }
        self.copy_by_partition(r).await?;
        self.query("RENAME TABLE ? TO ?, ? TO ?")
            .bind(Identifier(r.table))
            .bind(Identifier(r.old))
            .bind(Identifier(r.next))
            .bind(Identifier(r.table))
            .execute()
            .await?;
        self.drop_table(r.old).await
    }

    /// What [`Store::repartition`] found and cannot go on from.
    fn unexpected_tables<'a>(
        &self,
        r: &Repartition<'_>,
        key: &impl Fn(&str) -> Option<&'a str>,
    ) -> StoreError {
        let state = |name: &str| match key(name) {
            None => format!("{name} missing"),
            Some("") => format!("{name} without partition"),
            Some(k) => format!("{name} partitioned by {k}"),
        };
        StoreError::Migration(format!(
            "unexpected tables: {}, {}, {}; repair by hand",
            state(r.table),
            state(r.next),
            state(r.old)
        ))
    }

    async fn rename_table(&self, from: &str, to: &str) -> Result<(), StoreError> {
        self.query("RENAME TABLE ? TO ?")
            .bind(Identifier(from))
            .bind(Identifier(to))
            .execute()
            .await
    }

    /// Copies `r.table` into `r.next` one partition of `r.next` at a time,
    /// but those `r.next` holds whole already (as many distinct keys as
    /// `r.table` has in it: duplicates of a row, not yet merged on either
    /// side, count once).
    ///
    /// A partition copied in part is copied again over what is there, never
    /// dropped first: the tables collapse a row copied twice, and a second
    /// process migrating at the same time may have just finished that
    /// partition and be about to rename `r.next` into place.
    async fn copy_by_partition(&self, r: &Repartition<'_>) -> Result<(), StoreError> {
        #[derive(Debug, Row, Deserialize)]
        struct Partition {
            partition: u32,
            keys: u64,
        }
        let count = |table: &str| {
            self.query(&format!(
                "SELECT toUInt32({}) AS partition, uniqExact({}) AS keys FROM ? \
                 GROUP BY partition ORDER BY partition",
                r.partition, r.key
            ))
            .bind(Identifier(table))
            .within(COPY_TIMEOUT)
            .fetch_all::<Partition>()
        };
        let copied = count(r.next).await?;
        for Partition { partition, keys } in count(r.table).await? {
            if copied
                .iter()
                .any(|c| c.partition == partition && c.keys == keys)
            {
                continue;
            }
            self.query(&format!(
                "INSERT INTO ? SELECT * FROM ? WHERE {} = ?",
                r.partition
            ))
            .bind(Identifier(r.next))
            .bind(Identifier(r.table))
            .bind(partition)
            // A partition of a large install may rightly take long.
            .within(COPY_TIMEOUT)
            .execute()
            .await?;
        }
        Ok(())
    }

    pub(crate) async fn drop_table(&self, table: &str) -> Result<(), StoreError> {
        self.query("DROP TABLE IF EXISTS ?")
            .bind(Identifier(table))
            .execute()
            .await
    }

    /// Are all migrations this binary knows applied? (`/readyz`, `/admin`;
    /// a health check: within `Timeouts::health`.)
    pub async fn migrations_current(&self) -> Result<bool, StoreError> {
        let applied = self.applied(self.config().timeouts.health()).await?;
        Ok(MIGRATIONS
            .iter()
            .all(|m| applied.iter().any(|a| a.version == m.version)))
    }
}

#[cfg(test)]
mod tests;
