use super::*;
use crate::version::ServerVersion;

const CURRENT: ServerVersion = ServerVersion {
    major: 26,
    minor: 9,
};

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
        assert_eq!(m.version as usize, i + 1, "{} is out of order", m.name);
    }
}

#[test]
fn every_migration_renders_for_a_single_server() {
    for m in MIGRATIONS {
        for statement in statements(m.sql) {
            for version in [ServerVersion::OLDEST, CURRENT] {
                render_single(&statement, version)
                    .unwrap_or_else(|e| panic!("{} for {version}: {e}", m.name));
            }
        }
    }
}

/// The statements of `m` rendered for `version`, those that render to
/// nothing left out (as the migrator sends them).
fn rendered(m: &Migration, version: ServerVersion) -> Vec<String> {
    statements(m.sql)
        .iter()
        .map(|s| render_single(s, version).unwrap())
        .filter(|s| !s.trim().is_empty())
        .collect()
}

#[test]
fn migration_16_uses_codecs_and_a_skip_index_on_current_releases_only() {
    let m = &MIGRATIONS[15];
    assert_eq!(m.version, 16);
    let old = rendered(m, ServerVersion::OLDEST);
    let current = rendered(m, CURRENT);
    // 18.16: the two tables with a month partition, nothing else.
    assert_eq!(old.len(), 2, "{old:#?}");
    assert!(old[0].starts_with("CREATE TABLE IF NOT EXISTS process_instances_by_month"));
    assert!(old[1].starts_with("CREATE TABLE IF NOT EXISTS breaches_by_month"));
    assert!(!old
        .iter()
        .any(|s| s.contains("CODEC") || s.contains("INDEX")));
    // Current: the codecs and the index first, then the same tables.
    assert_eq!(current.len(), 7, "{current:#?}");
    assert_eq!(
        current[0],
        "ALTER TABLE spans_v2 \n    \
         MODIFY COLUMN start_time DateTime CODEC(T64, ZSTD(1)),\n    \
         MODIFY COLUMN start_ns UInt64 CODEC(T64, ZSTD(1)),\n    \
         MODIFY COLUMN duration_ns UInt64 CODEC(T64, ZSTD(1))"
    );
    assert!(current[1].starts_with("ALTER TABLE key_index_v2"));
    assert!(current[1].contains("MODIFY COLUMN duration_ns UInt64 DEFAULT 0 CODEC(T64, ZSTD(1))"));
    assert!(current[2].starts_with("ALTER TABLE events"));
    assert_eq!(
        current[3],
        "ALTER TABLE events \n    \
         ADD INDEX IF NOT EXISTS events_system system TYPE set(100) GRANULARITY 1"
    );
    assert_eq!(
        current[4],
        "ALTER TABLE events  MATERIALIZE INDEX events_system"
    );
    assert_eq!(current[5..], old[..]);
    // 19.11 has codecs, not yet skip indexes.
    let v19_11 = ServerVersion::parse("19.11").unwrap();
    let between = rendered(m, v19_11);
    assert_eq!(between.len(), 5, "{between:#?}");
    assert!(!between.iter().any(|s| s.contains("INDEX")));
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
