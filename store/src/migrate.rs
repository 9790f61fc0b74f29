//! Ordered migrations from `sql/`, each applied once and recorded in
//! `schema_migrations`. Every statement is `IF NOT EXISTS`, so two processes
//! starting together (collector and console) may both run one without harm.
//! A migration may also copy a table into its successor ([`DayCopy`]): one
//! `INSERT ... SELECT` per day partition (current ClickHouse refuses an
//! insert block that spans more than 100 partitions), into a
//! `ReplacingMergeTree` table where a second process's copy collapses into
//! the same rows. It may also fill a table from others once ([`DayFill`]:
//! the rollups of `0013` and the instance and breach rows of `0015` from the
//! rows stored before them).

use std::time::Duration;

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
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../../sql/", $name)),
            copy: $copy,
            fills: $fills,
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
    // 16 and 17 are taken by changes made beside this one.
    migration!(18, "0018_plants.sql"),
];

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations {{on_cluster}} (
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime
) ENGINE = {{engine ReplacingMergeTree() | shard version}}
ORDER BY version";

#[derive(Debug, Row, Serialize, Deserialize)]
struct AppliedRow {
    version: u32,
    name: String,
    checksum: String,
    applied_at: u32,
}

/// A migration's fingerprint, to notice a file edited after it was applied.
pub(crate) fn checksum(sql: &str) -> String {
    format!("{:016x}", domain::hash::fnv1a(&[sql.as_bytes()]))
}

/// Splits a migration into statements at `;` ending a line, dropping comments.
fn statements(sql: &str) -> Vec<String> {
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
    async fn applied(&self, limit: Duration) -> Result<Vec<AppliedRow>, StoreError> {
        self.query("SELECT ?fields FROM schema_migrations FINAL ORDER BY version")
            .within(limit)
            .fetch_all::<AppliedRow>()
            .await
    }

    async fn execute_template(&self, sql: &str, context: &str) -> Result<(), StoreError> {
        let rendered =
            render_single(sql).map_err(|e| StoreError::Migration(format!("{context}: {e}")))?;
        self.query(&rendered).execute().await.map_err(|e| match e {
            // No answer in time is worth retrying, not a broken migration.
            StoreError::Timeout(_) => e,
            e => StoreError::Migration(format!("{context}: {e}")),
        })
    }

    /// Creates the database and applies every migration not yet applied.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
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
        self.record_applied(migration, sum).await
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
mod tests {
    use super::*;

    #[test]
    fn every_sql_file_is_registered_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../sql");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let registered: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(files, registered, "register new sql/ files in MIGRATIONS");
        for (i, m) in MIGRATIONS.iter().enumerate() {
            let number: u32 = m.name[..4].parse().unwrap();
            assert_eq!(m.version, number, "{} has another version", m.name);
            if i > 0 {
                assert!(
                    m.version > MIGRATIONS[i - 1].version,
                    "{} is out of order",
                    m.name
                );
            }
        }
    }

    #[test]
    fn every_migration_renders_for_a_single_server() {
        for m in MIGRATIONS {
            for statement in statements(m.sql) {
                render_single(&statement).unwrap_or_else(|e| panic!("{}: {e}", m.name));
            }
        }
    }

    #[test]
    fn statements_split_at_line_ending_semicolons_and_skip_comments() {
        let sql = "-- a comment; with a semicolon\nCREATE TABLE a (x String DEFAULT ';')\nENGINE = Memory;\n\nCREATE TABLE b (y UInt8) ENGINE = Memory;\n";
        assert_eq!(
            statements(sql),
            vec![
                "CREATE TABLE a (x String DEFAULT ';')\nENGINE = Memory",
                "CREATE TABLE b (y UInt8) ENGINE = Memory"
            ]
        );
    }
}
