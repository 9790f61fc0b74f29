//! Databases as earlier releases left them, and tables that fail on
//! purpose: what upgrade and fault tests set up. Built only with the
//! `testing` feature, which only dev-dependencies turn on; nothing a
//! deployment runs can reach it.

use domain::model::{Event, Span};

use crate::migrate::MIGRATIONS;
use crate::rows::{EventRow, SpanRow};
use crate::template::render_single;
use crate::{Store, StoreError};

/// The bookkeeping table as `migrate` makes it (`ReplacingMergeTree` by
/// version), rendered for a single server.
const APPLIED: &str = "CREATE TABLE IF NOT EXISTS schema_migrations \
    (version UInt32, name String, checksum String, applied_at DateTime) \
    ENGINE = ReplacingMergeTree() ORDER BY version";

impl Store {
    /// Creates the database with the statements of migrations up to
    /// `version` applied and recorded, as a release of that time left it;
    /// their copies and fills are not run (there is nothing to copy yet).
    /// `migrate` then applies the rest as it would on an upgrade.
    pub async fn migrate_through(&self, version: u32) -> Result<(), StoreError> {
        self.create_database().await?;
        self.query(APPLIED).execute().await?;
        for m in MIGRATIONS.iter().filter(|m| m.version <= version) {
            for statement in m.sql.split(";\n") {
                let code: String = statement
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n");
                if code.trim().is_empty() {
                    continue;
                }
                let sql = render_single(&code).map_err(|e| StoreError::Migration(e.to_string()))?;
                self.query(&sql).execute().await?;
            }
            // The fingerprint `migrate` compares (`migrate::checksum`).
            self.query("INSERT INTO schema_migrations VALUES (?, ?, ?, now())")
                .bind(m.version)
                .bind(m.name)
                .bind(format!("{:016x}", domain::hash::fnv1a(&[m.sql.as_bytes()])))
                .execute()
                .await?;
        }
        Ok(())
    }

    /// Writes `spans` into `table` (`spans`, the table of migration 0001,
    /// or `spans_v2`) and nothing else: no key index, feed or service map,
    /// as a release before those wrote them.
    pub async fn insert_spans_only(&self, table: &str, spans: &[Span]) -> Result<(), StoreError> {
        let rows: Vec<SpanRow> = spans.iter().map(SpanRow::from).collect();
        self.insert_rows(table, &rows).await
    }

    /// Writes `events` into `events` and nothing else (see
    /// [`Store::insert_spans_only`]).
    pub async fn insert_events_only(&self, events: &[Event]) -> Result<(), StoreError> {
        let rows: Vec<EventRow> = events.iter().map(EventRow::from).collect();
        self.insert_rows("events", &rows).await
    }

    /// From now on `spans_v2` refuses, as data, every span named `name`
    /// (ClickHouse's `throwIf` in a column default): a row ClickHouse
    /// will never take, for the dead-letter path.
    pub async fn refuse_spans_named(&self, name: &str) -> Result<(), StoreError> {
        self.query("ALTER TABLE spans_v2 ADD COLUMN guard UInt8 DEFAULT throwIf(name = ?)")
            .bind(name)
            .execute()
            .await
    }
}
