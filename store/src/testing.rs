//! Databases as earlier releases left them, and tables that fail on
//! purpose: what upgrade and fault tests set up. Built only with the
//! `testing` feature, which only dev-dependencies turn on; nothing a
//! deployment runs can reach it.

use domain::model::{BusinessKey, Event, Span, TraceId};

use clickhouse::sql::Identifier;
use clickhouse::Row;
use serde::Deserialize;

use crate::migrate::{checksum, statements, MIGRATIONS};
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

    /// Takes the database back to a release that had applied migrations up
    /// to `version`: drops `tables` (those the later migrations made) and
    /// records only the migrations up to `version` as applied, so that
    /// `migrate` runs the later ones again as an upgrade would.
    pub async fn unapply_after(&self, version: u32, tables: &[&str]) -> Result<(), StoreError> {
        for table in tables {
            self.query("DROP TABLE IF EXISTS ?")
                .bind(clickhouse::sql::Identifier(table))
                .execute()
                .await?;
        }
        self.query("DROP TABLE IF EXISTS schema_migrations")
            .execute()
            .await?;
        self.create_bookkeeping().await?;
        for m in MIGRATIONS.iter().filter(|m| m.version <= version) {
            self.record_applied(m, &checksum(m.sql)).await?;
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

    /// Gives `table` the `plant` column of migration 0018 (which then finds
    /// it there), so that the current writer, which names it, can write an
    /// earlier release's rows into an earlier release's table.
    pub async fn add_plant_column(&self, table: &str) -> Result<(), StoreError> {
        self.query("ALTER TABLE ? ADD COLUMN plant String DEFAULT ''")
            .bind(Identifier(table))
            .execute()
            .await
    }

    /// Gives `key_index_v2` the columns of migration 0020 and makes its
    /// `orphan_keys` (which it then finds there), so that the current
    /// writer, which names them, can write an earlier release's rows.
    pub async fn add_hub_columns(&self) -> Result<(), StoreError> {
        for sql in [
            "ALTER TABLE key_index_v2 ADD COLUMN carried_types Array(String)",
            "ALTER TABLE key_index_v2 ADD COLUMN carried_values Array(String)",
            "ALTER TABLE key_index_v2 ADD COLUMN linked UInt8 DEFAULT 0",
            "CREATE TABLE orphan_keys (key_type String, key_value String, day Date) \
             ENGINE = ReplacingMergeTree() PARTITION BY day ORDER BY (key_type, key_value)",
        ] {
            self.query(sql).execute().await?;
        }
        Ok(())
    }

    /// Writes `instances` and `breaches` as a release before migration
    /// 0018 did: without the `plant` column, which their tables lack then.
    pub async fn write_instances_before_plants(
        &self,
        instances: &[domain::instance::InstanceRecord],
        breaches: &[domain::instance::Breach],
    ) -> Result<(), StoreError> {
        for r in instances {
            self.query(
                "INSERT INTO process_instances (process_id, root_value, start_ns, last_ns, \
                 status, current_stage, stage_ids, stage_times, failed, open_breaches, \
                 updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.process_id.as_str())
            .bind(r.root_value.as_str())
            .bind(r.start_ns)
            .bind(r.last_ns)
            .bind(r.status.as_str())
            .bind(r.current_stage.as_str())
            .bind(&r.stages.ids)
            .bind(&r.stages.times)
            .bind(u8::from(r.failed))
            .bind(r.open_breaches)
            .bind(r.updated_ns)
            .execute()
            .await?;
        }
        for b in breaches {
            self.query(
                "INSERT INTO breaches (process_id, sla_id, root_value, from_ns, due_ns, to_ns, \
                 late_ns, state, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(b.process_id.as_str())
            .bind(b.sla_id.as_str())
            .bind(b.root_value.as_str())
            .bind(b.from_ns)
            .bind(b.due_ns)
            .bind(b.to_ns)
            .bind(b.late_ns)
            .bind(b.state.as_str())
            .bind(b.updated_ns)
            .execute()
            .await?;
        }
        Ok(())
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

/// Where a run of migration 0016 stops short (a crash, a kill), for
/// [`Store::migrate_16_cut_short`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutShort {
    /// The tables with a partition are made and hold one row of their
    /// predecessors: a month copied in part.
    MidCopy,
    /// Every row is copied and the old tables renamed, but the new ones
    /// not yet (where the two renames are not one step).
    BetweenRenames,
    /// One run finished, and a second process, which had seen the old
    /// tables, got half through its own renames: the new tables (every
    /// row) are under the old tables' backup names, nothing under theirs.
    RenamedAway,
}

impl Store {
    /// Runs migration 0016 (on a database migrated through 15) as far as
    /// `at`, without recording it.
    pub async fn migrate_16_cut_short(&self, at: CutShort) -> Result<(), StoreError> {
        let m = MIGRATIONS
            .iter()
            .find(|m| m.version == 16)
            .expect("migration 16");
        for statement in statements(m.sql) {
            self.execute_template(&statement, "0016 cut short").await?;
        }
        for r in m.repartitions {
            let copy = match at {
                CutShort::MidCopy => "INSERT INTO ? SELECT * FROM ? LIMIT 1",
                CutShort::BetweenRenames | CutShort::RenamedAway => "INSERT INTO ? SELECT * FROM ?",
            };
            self.query(copy)
                .bind(Identifier(r.next))
                .bind(Identifier(r.table))
                .execute()
                .await?;
            let rename = |from: &'static str, to: &'static str| {
                self.query("RENAME TABLE ? TO ?")
                    .bind(Identifier(from))
                    .bind(Identifier(to))
                    .execute()
            };
            match at {
                CutShort::MidCopy => {}
                CutShort::BetweenRenames => rename(r.table, r.old).await?,
                CutShort::RenamedAway => {
                    self.query("DROP TABLE ?")
                        .bind(Identifier(r.table))
                        .execute()
                        .await?;
                    rename(r.next, r.old).await?;
                }
            }
        }
        Ok(())
    }

    /// The tables of the database, by name.
    pub async fn table_names(&self) -> Result<Vec<String>, StoreError> {
        self.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name",
        )
        .fetch_all::<String>()
        .await
    }

    /// `table` as the server would create it (`system.tables`), what the
    /// migrations made of it.
    pub async fn create_table_query(&self, table: &str) -> Result<String, StoreError> {
        self.query(
            "SELECT create_table_query FROM system.tables \
             WHERE database = currentDatabase() AND name = ?",
        )
        .bind(table)
        .fetch_one::<String>()
        .await
    }

    /// `table`'s data-skipping indexes as `name type expr granularity`
    /// (`system.data_skipping_indices`: current releases only).
    pub async fn skip_indexes(&self, table: &str) -> Result<Vec<String>, StoreError> {
        self.query(
            "SELECT concat(name, ' ', type, ' ', expr, ' ', toString(granularity)) \
             FROM system.data_skipping_indices \
             WHERE database = currentDatabase() AND table = ? ORDER BY name",
        )
        .bind(table)
        .fetch_all::<String>()
        .await
    }

    /// `table`'s columns that have a codec, with it (`system.columns`'
    /// `compression_codec`: releases with codecs only).
    pub async fn column_codecs(&self, table: &str) -> Result<Vec<(String, String)>, StoreError> {
        #[derive(Debug, Row, Deserialize)]
        struct Codec {
            name: String,
            compression_codec: String,
        }
        let rows = self
            .query(
                "SELECT name, compression_codec FROM system.columns \
                 WHERE database = currentDatabase() AND table = ? AND compression_codec != '' \
                 ORDER BY name",
            )
            .bind(table)
            .fetch_all::<Codec>()
            .await?;
        Ok(rows
            .into_iter()
            .map(|c| (c.name, c.compression_codec))
            .collect())
    }
}

impl Store {
    /// This store, refusing any statement that would read more than `rows`
    /// rows (ClickHouse's `max_rows_to_read`, checked against what the index
    /// leaves to read before reading): a read by index passes, a scan fails.
    pub fn with_read_limit(mut self, rows: u64) -> Store {
        self.client = self
            .client
            .with_setting("max_rows_to_read", rows.to_string());
        self
    }

    /// Adds `rows` rows that no lookup asks for to the span table, the key
    /// index and the key links (one `INSERT ... SELECT` each), so that a
    /// read that scans them exceeds [`Store::with_read_limit`].
    pub async fn pad_lookup_tables(&self, rows: u64) -> Result<(), StoreError> {
        for sql in [
            "INSERT INTO spans_v2 (start_time, start_ns, trace_id, span_id, service, name) \
             SELECT now(), 0, toFixedString(reinterpretAsString(number + 1000000007), 16), \
                    toFixedString(reinterpretAsString(number + 1), 8), 'pad', 'pad' \
             FROM system.numbers LIMIT ?",
            "INSERT INTO key_index_v2 (key_type, key_value, time, time_ns, record_kind, \
                    trace_id, span_id, service, name) \
             SELECT if(number % 2 = 0, 'order', 'customer'), concat('PAD-', toString(number)), \
                    now(), 0, 'span', toFixedString(reinterpretAsString(number + 1000000007), 16), \
                    toFixedString(reinterpretAsString(number + 1), 8), 'pad', 'pad' \
             FROM system.numbers LIMIT ?",
            "INSERT INTO key_links_v2 (key_type, key_value, linked_type, linked_value, seen_at, \
                    ingested_ns, keep) \
             SELECT if(number % 2 = 0, 'order', 'customer'), concat('PAD-', toString(number)), \
                    'work_order', concat('PAD-WO-', toString(number)), now(), 1, 1 \
             FROM system.numbers LIMIT ?",
        ] {
            self.query(sql).bind(rows).execute().await?;
        }
        Ok(())
    }
}
