//! Databases as earlier releases left them, and tables that fail on
//! purpose: what upgrade and fault tests set up. Built only with the
//! `testing` feature, which only dev-dependencies turn on; nothing a
//! deployment runs can reach it.

use domain::model::{BusinessKey, Event, Span, TraceId};

use crate::migrate::{checksum, MIGRATIONS};
use crate::rows::{EventRow, SpanRow};
use crate::timeout::Statement;
use crate::{Store, StoreError};

/// A statement's answer as ClickHouse typed it: the column types and each
/// row as tab-separated text (names are left out: engines spell an
/// expression's name differently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedAnswer {
    pub types: Vec<String>,
    pub rows: Vec<String>,
}

impl TypedAnswer {
    async fn of(statement: Statement) -> Result<Self, StoreError> {
        let text = statement.fetch_typed_text().await?;
        let mut lines = text.lines().skip(1);
        let types = lines
            .next()
            .unwrap_or_default()
            .split('\t')
            .map(str::to_string)
            .collect();
        Ok(TypedAnswer {
            types,
            rows: lines.map(str::to_string).collect(),
        })
    }
}

impl Store {
    /// What [`Store::key_seen`] reads, as typed (it reads a `UInt64`).
    pub async fn key_seen_typed(&self, key: &BusinessKey) -> Result<TypedAnswer, StoreError> {
        TypedAnswer::of(self.key_seen_count(key)).await
    }

    /// What [`Store::trace_seen`] reads, as typed (it reads a `UInt64`).
    pub async fn trace_seen_typed(&self, trace_id: TraceId) -> Result<TypedAnswer, StoreError> {
        TypedAnswer::of(self.trace_seen_count(trace_id)).await
    }

    /// Creates the database with the statements of migrations up to
    /// `version` applied and recorded, as a release of that time left it;
    /// their copies and fills are not run (there is nothing to copy yet).
    /// `migrate` then applies the rest as it would on an upgrade.
    pub async fn migrate_through(&self, version: u32) -> Result<(), StoreError> {
        self.create_database().await?;
        self.create_bookkeeping().await?;
        for m in MIGRATIONS.iter().filter(|m| m.version <= version) {
            self.apply_migration(m, &checksum(m.sql), false).await?;
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
