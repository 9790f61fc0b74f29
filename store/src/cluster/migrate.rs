//! Migrations on a cluster: no `ON CLUSTER`, with or without ZooKeeper
//! (one path for both, state per node, and nothing waits on a distributed
//! DDL queue that a node that is down would hold up), so the
//! migrator runs each statement on every node of `system.clusters` itself,
//! every node's local tables before any node's `Distributed` tables, and
//! records each migration in the `schema_migrations` of each node (a plain
//! local table there). A node that joins later lacks every migration, so
//! the next run brings it up to date; the data steps of a migration (its
//! copies and fills, through the `Distributed` tables) run only when no
//! node had it yet, and a repartition acts on each node's local tables.
//!
//! With replicas (`replicated`), each node creates its own replica of each
//! local table (ClickHouse's way: `CREATE TABLE` per replica, named by the
//! node's `{replica}` macro), but an `ALTER` of a local table runs on one
//! replica per shard: ClickHouse replicates it to the others, where
//! running it again would fail (a column added twice). Every node must
//! answer: one that does not fails the run before any node is changed
//! (`create_database` on each first), and the next run, once it is back,
//! goes on where each node stands. A migration that alters tables first
//! waits for each node's `system.distribution_queue` (current releases) to
//! drain for the database.

use super::render::{render_cluster, LOCAL};
use crate::migrate::{checksum, statements, MigrationReport, Repartition, MIGRATIONS};
use crate::{Store, StoreError};

/// How long a migration that alters tables waits for a node's
/// `system.distribution_queue` to drain.
const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl Store {
    /// [`Store::migrate`] on `cluster`.
    pub(crate) async fn migrate_cluster(
        &self,
        cluster: &str,
    ) -> Result<MigrationReport, StoreError> {
        let listed = self.cluster_nodes(cluster).await?;
        let nodes: Vec<Store> = listed.iter().map(|n| self.on_node(n)).collect();
        // Every node answers, or none is changed.
        for (node, store) in listed.iter().zip(&nodes) {
            if let Err(e) = store.ping().await {
                return Err(StoreError::Migration(format!(
                    "node {} (shard {} replica {}) of cluster `{cluster}` does not answer, \
                     so no node was migrated; start it and run again: {e}",
                    domain::redact::url(&node.url),
                    node.shard,
                    node.replica
                )));
            }
        }
        let mut applied = Vec::with_capacity(nodes.len());
        for node in &nodes {
            node.create_database().await?;
            node.create_bookkeeping().await?;
            let done = node.applied(self.config().timeouts.query).await?;
            if !done.is_empty() && !node.has_local_tables().await? {
                return Err(StoreError::Migration(format!(
                    "database `{}` on {} was made for a single server (its tables are not \
                     `<table>{LOCAL}` under `Distributed` ones); a cluster needs a database \
                     of its own: set another clickhouse_database, or drop clickhouse_cluster",
                    self.config().database,
                    domain::redact::url(&node.config().url)
                )));
            }
            applied.push(done);
        }
        let version = self.server_version().await?.version;
        let database = self.config().database.clone();
        let mut report = MigrationReport::default();
        for migration in MIGRATIONS {
            let sum = checksum(migration.sql);
            let mut missing = Vec::new();
            for ((node, listed), done) in nodes.iter().zip(&listed).zip(&applied) {
                match done.iter().find(|a| a.version == migration.version) {
                    Some(a) if a.checksum != sum => {
                        return Err(StoreError::Migration(format!(
                            "sql/{} was changed after it was applied to database `{database}` \
                             on {}; restore the file and put the change in a new migration",
                            migration.name,
                            domain::redact::url(&node.config().url)
                        )))
                    }
                    Some(_) => {}
                    None => missing.push((node, listed.shard)),
                }
            }
            if missing.is_empty() {
                report.already += 1;
                continue;
            }
            let rendered = statements(migration.sql)
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    render_cluster(s, version, cluster, &database, self.is_replicated()).map_err(
                        |e| {
                            StoreError::Migration(format!(
                                "sql/{} statement {}: {e}",
                                migration.name,
                                i + 1
                            ))
                        },
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            if rendered.iter().any(|s| {
                [&s.local, &s.distributed]
                    .iter()
                    .any(|p| p.as_deref().is_some_and(|sql| sql.starts_with("ALTER")))
            }) {
                for (node, _) in &missing {
                    node.wait_for_distribution_queue(migration.name).await?;
                }
            }
            for distributed in [false, true] {
                // The shards whose replicated local tables were altered.
                let mut altered = vec![Vec::new(); rendered.len()];
                for (node, shard) in &missing {
                    for (i, statement) in rendered.iter().enumerate() {
                        let part = if distributed {
                            &statement.distributed
                        } else {
                            &statement.local
                        };
                        let Some(sql) = part else { continue };
                        if !distributed && self.is_replicated() && sql.starts_with("ALTER") {
                            if altered[i].contains(shard) {
                                continue;
                            }
                            altered[i].push(*shard);
                        }
                        node.execute_on_node(sql, migration.name, i + 1).await?;
                    }
                }
            }
            if missing.len() == nodes.len() {
                self.migrate_data(migration).await?;
            }
            for (node, _) in &missing {
                for r in migration.repartitions {
                    let local = |t: &str| format!("{t}{LOCAL}");
                    let (table, next, old) = (local(r.table), local(r.next), local(r.old));
                    let on_local = Repartition {
                        table: &table,
                        next: &next,
                        old: &old,
                        partition: r.partition,
                        key: r.key,
                        shape: r.shape,
                    };
                    node.repartition(&on_local).await.map_err(|e| {
                        StoreError::Migration(format!(
                            "sql/{}: partitioning {table}: {e}",
                            migration.name
                        ))
                    })?;
                    // `next` served only to make `next_local`.
                    node.drop_table(r.next).await?;
                }
                node.record_applied(migration, &sum).await?;
            }
            report.applied.push(migration.name.to_string());
        }
        Ok(report)
    }

    /// Does this node's database hold tables made for a cluster?
    async fn has_local_tables(&self) -> Result<bool, StoreError> {
        let count = self
            .query(
                "SELECT count() FROM system.tables \
                 WHERE database = currentDatabase() AND endsWith(name, ?)",
            )
            .bind(LOCAL)
            .fetch_one::<u64>()
            .await?;
        Ok(count > 0)
    }

    /// Before a migration alters a table: waits (at most
    /// [`QUEUE_WAIT`]) until this node has no insert queued for this
    /// database in `system.distribution_queue`, so that no block written
    /// in the old shape is sent after the change. Releases without that
    /// table (18.16) queue nothing here: Throughline inserts into
    /// `Distributed` tables synchronously (`insert_distributed_sync`).
    async fn wait_for_distribution_queue(&self, migration: &str) -> Result<(), StoreError> {
        let exists = self
            .query(
                "SELECT count() FROM system.tables \
                 WHERE database = 'system' AND name = 'distribution_queue'",
            )
            .fetch_one::<u64>()
            .await?;
        if exists == 0 {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + QUEUE_WAIT;
        loop {
            let files = self
                .query(
                    "SELECT toUInt64(ifNull(sum(data_files), 0)) FROM system.distribution_queue \
                     WHERE database = currentDatabase()",
                )
                .fetch_one::<u64>()
                .await?;
            if files == 0 {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(StoreError::Migration(format!(
                    "sql/{migration} alters tables, but {files} insert file(s) are still queued \
                     for database `{}` in system.distribution_queue on {} after {} s; see that \
                     table's last_exception, let the queue drain (or SYSTEM FLUSH DISTRIBUTED) \
                     and run the migration again",
                    self.config().database,
                    domain::redact::url(&self.config().url),
                    QUEUE_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// Runs one rendered statement on this node.
    async fn execute_on_node(
        &self,
        sql: &str,
        migration: &str,
        statement: usize,
    ) -> Result<(), StoreError> {
        match self.query(sql).execute().await {
            Err(e) if crate::migrate::column_added_already(sql, &e) => Ok(()),
            Err(e @ StoreError::Timeout(_)) => Err(e),
            Err(e) => Err(StoreError::Migration(format!(
                "sql/{migration} statement {statement} on {}: {e}",
                domain::redact::url(&self.config().url)
            ))),
            Ok(()) => Ok(()),
        }
    }
}
