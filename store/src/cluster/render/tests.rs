use super::*;
use crate::migrate::{statements, MIGRATIONS};

const CURRENT: ServerVersion = ServerVersion {
    major: 26,
    minor: 9,
};

fn cluster(sql: &str, version: ServerVersion) -> ClusterStatement {
    render_cluster(sql, version, "plant", "throughline", false).unwrap()
}

#[test]
fn a_table_becomes_a_local_table_and_a_distributed_one_by_its_sharding_key() {
    let sql = "CREATE TABLE IF NOT EXISTS spans {{on_cluster}} (a UInt8)\n\
               ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(a)}} ORDER BY a";
    assert_eq!(
        cluster(sql, ServerVersion::OLDEST),
        ClusterStatement {
            local: Some(
                "CREATE TABLE IF NOT EXISTS spans_local  (a UInt8)\n\
                 ENGINE = ReplacingMergeTree() ORDER BY a"
                    .into()
            ),
            distributed: Some(
                "CREATE TABLE IF NOT EXISTS spans AS spans_local ENGINE = \
                 Distributed('plant', 'throughline', 'spans_local', cityHash64(a))"
                    .into()
            ),
        }
    );
}

#[test]
fn a_view_reads_and_feeds_the_local_tables_of_its_node() {
    let sql = "CREATE MATERIALIZED VIEW IF NOT EXISTS m {{on_cluster}} TO minutes AS\n\
               SELECT toStartOfMinute(start_time) AS minute FROM spans_v2\nGROUP BY minute";
    assert_eq!(
        cluster(sql, ServerVersion::OLDEST),
        ClusterStatement {
            local: Some(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS m  TO minutes_local AS\n\
                 SELECT toStartOfMinute(start_time) AS minute FROM spans_v2_local\nGROUP BY minute"
                    .into()
            ),
            distributed: None,
        }
    );
}

#[test]
fn column_changes_alter_both_tables_and_storage_changes_the_local_one() {
    let add = cluster(
        "ALTER TABLE key_index {{on_cluster}} ADD COLUMN d UInt64 DEFAULT 0",
        ServerVersion::OLDEST,
    );
    assert_eq!(
        add.local.as_deref(),
        Some("ALTER TABLE key_index_local  ADD COLUMN d UInt64 DEFAULT 0")
    );
    assert_eq!(
        add.distributed.as_deref(),
        Some("ALTER TABLE key_index  ADD COLUMN d UInt64 DEFAULT 0")
    );
    let codec = cluster(
        "{{if codecs: ALTER TABLE e {{on_cluster}} MODIFY COLUMN t UInt64 CODEC(T64)}}",
        CURRENT,
    );
    assert_eq!(
        codec.local.as_deref(),
        Some("ALTER TABLE e_local  MODIFY COLUMN t UInt64 CODEC(T64)")
    );
    assert_eq!(codec.distributed, None);
    assert_eq!(
        cluster(
            "{{if codecs: ALTER TABLE e {{on_cluster}} MODIFY COLUMN t UInt64 CODEC(T64)}}",
            ServerVersion::OLDEST
        ),
        ClusterStatement::default()
    );
}

#[test]
fn a_replicated_table_gets_the_replicated_engine_with_a_path_per_shard_and_table() {
    let sql = "CREATE TABLE IF NOT EXISTS links {{on_cluster}} (a UInt8, keep UInt8)\n\
               ) ENGINE = {{engine ReplacingMergeTree(keep) | shard cityHash64(a)}}\n\
               PARTITION BY a ORDER BY a";
    let out = render_cluster(sql, ServerVersion::OLDEST, "plant", "tl", true).unwrap();
    assert_eq!(
        out.local.as_deref(),
        Some(
            "CREATE TABLE IF NOT EXISTS links_local  (a UInt8, keep UInt8)\n\
             ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tl/links_local', \
             '{replica}', keep)\nPARTITION BY a ORDER BY a"
        )
    );
    let plain = "CREATE TABLE t (a UInt8) ENGINE = {{engine MergeTree() | shard a}} ORDER BY a";
    let out = render_cluster(plain, ServerVersion::OLDEST, "plant", "tl", true).unwrap();
    assert_eq!(
        out.local.as_deref(),
        Some(
            "CREATE TABLE t_local (a UInt8) ENGINE = ReplicatedMergeTree(\
             '/clickhouse/tables/{shard}/tl/t_local', '{replica}') ORDER BY a"
        )
    );
    // Every migration's tables have an engine to replicate.
    for m in MIGRATIONS {
        for statement in statements(m.sql) {
            for version in [ServerVersion::OLDEST, CURRENT] {
                let out = render_cluster(&statement, version, "plant", "tl", true)
                    .unwrap_or_else(|e| panic!("{} for {version}: {e}", m.name));
                if let Some(local) = out.local.filter(|l| l.starts_with("CREATE TABLE")) {
                    assert!(local.contains("ENGINE = Replicated"), "{local}");
                }
            }
        }
    }
}

#[test]
fn other_statements_are_refused_with_the_reason() {
    let err = render_cluster("RENAME TABLE a TO b", CURRENT, "c", "d", false).unwrap_err();
    assert!(
        err.to_string().contains("unknown kind of statement"),
        "{err}"
    );
    let err = render_cluster(
        "CREATE TABLE t (a UInt8) ENGINE = Memory",
        CURRENT,
        "c",
        "d",
        false,
    )
    .unwrap_err();
    assert!(err.to_string().contains("without `{{engine"), "{err}");
}

/// The column names of `ORDER BY (a, b)` or `ORDER BY a` in `sql`.
fn sort_key(sql: &str) -> Vec<String> {
    let line = sql
        .lines()
        .find_map(|l| l.trim().strip_prefix("ORDER BY "))
        .unwrap_or_else(|| panic!("no ORDER BY in {sql}"));
    line.trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(|c| c.trim().to_string())
        .collect()
}

/// The columns a sharding expression like `cityHash64(a, b)` reads.
fn shard_columns(expr: &str) -> Vec<String> {
    let inner = expr
        .strip_prefix("cityHash64(")
        .and_then(|e| e.strip_suffix(')'))
        .unwrap_or_else(|| panic!("sharding key `{expr}` is not cityHash64(columns)"));
    inner.split(',').map(|c| c.trim().to_string()).collect()
}

/// Every migration renders for a cluster on 18.16 and on current
/// releases; every table is a local table plus a `Distributed` one whose
/// sharding key reads sort-key columns only, so that rows one
/// `ReplacingMergeTree` (or summing engine) would collapse, which share
/// the whole sort key, always land on one shard; every view reads and
/// feeds local tables; every ALTER acts on a local table.
#[test]
fn every_migration_renders_for_a_cluster_with_duplicates_on_one_shard() {
    let mut tables = 0;
    let mut views = 0;
    for m in MIGRATIONS {
        for statement in statements(m.sql) {
            for version in [ServerVersion::OLDEST, CURRENT] {
                let out = render_cluster(&statement, version, "plant", "throughline", false)
                    .unwrap_or_else(|e| panic!("{} for {version}: {e}", m.name));
                let Some(local) = &out.local else {
                    assert_eq!(out.distributed, None);
                    continue;
                };
                if local.starts_with("CREATE TABLE") {
                    let name = local
                        .split_whitespace()
                        .nth(5)
                        .unwrap()
                        .strip_suffix(LOCAL)
                        .unwrap_or_else(|| panic!("{}: {local}", m.name));
                    let distributed = out.distributed.as_deref().unwrap();
                    let shard = distributed
                        .split_once(&format!("'{name}{LOCAL}', "))
                        .and_then(|(_, s)| s.strip_suffix(')'))
                        .unwrap_or_else(|| panic!("{}: {distributed}", m.name));
                    let key = sort_key(local);
                    for column in shard_columns(shard) {
                        assert!(
                            key.contains(&column),
                            "{}: {name} is sharded by {column}, not in its sort key {key:?}",
                            m.name
                        );
                    }
                    assert!(distributed.starts_with(&format!(
                        "CREATE TABLE IF NOT EXISTS {name} AS {name}{LOCAL} ENGINE = Distributed("
                    )));
                    tables += 1;
                } else if local.starts_with("CREATE MATERIALIZED VIEW") {
                    let words: Vec<&str> = local.split_whitespace().collect();
                    let to = words.iter().position(|w| *w == "TO").unwrap();
                    let from = words.iter().position(|w| *w == "FROM").unwrap();
                    assert!(words[to + 1].ends_with(LOCAL), "{}: {local}", m.name);
                    assert!(words[from + 1].ends_with(LOCAL), "{}: {local}", m.name);
                    assert_eq!(out.distributed, None);
                    views += 1;
                } else {
                    let table = local.split_whitespace().nth(2).unwrap();
                    assert!(table.ends_with(LOCAL), "{}: {local}", m.name);
                }
            }
        }
    }
    // 46 tables and 14 views (0017's plant rollups, 0018's plant
    // instances, 0020's orphan keys and legacy days and 0021's instances
    // among them), each rendered for two versions.
    assert_eq!((tables, views), (2 * 46, 2 * 14));
}
