//! What ships with the repository is valid: the demo's process definitions
//! and alert rules (sample-data/), the Grafana dashboards and the
//! Prometheus alerting rules (dashboards/).

use domain::keys::KeyTypes;
use domain::process::Processes;

#[test]
fn shipped_process_definitions_load() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../sample-data/processes");
    let processes = Processes::load_dir(std::path::Path::new(dir), &KeyTypes::default())
        .unwrap_or_else(|e| panic!("{e}"));
    for id in ["order-to-delivery", "quality-hold", "production-delay"] {
        assert!(processes.get(id).is_some(), "{id}");
    }
}

/// The Grafana dashboards parse, and each panel's SQL names only tables our
/// migrations create.
#[test]
fn grafana_dashboards_query_our_tables() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards/grafana");
    let tables = [
        "spans_v2",
        "events",
        "process_instances",
        "breaches",
        "process_steps",
        "key_index_v2",
    ];
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let dash: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for panel in dash["panels"].as_array().unwrap() {
            let sql = panel["targets"][0]["rawSql"].as_str().unwrap();
            let from = sql
                .split(" FROM ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap();
            assert!(
                tables.contains(&from),
                "{}: panel {} reads {from}",
                path.display(),
                panel["title"]
            );
            seen += 1;
        }
    }
    assert!(seen > 0);
}

/// The demo's alert rules in sample-data/alerts are valid against the
/// shipped processes, and cover every kind.
#[test]
fn shipped_alert_rules_load() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../sample-data");
    let processes = Processes::load_dir(
        &std::path::Path::new(root).join("processes"),
        &KeyTypes::default(),
    )
    .unwrap();
    let rules = engine::alerts::rules::Rules::load_dir(
        &std::path::Path::new(root).join("alerts"),
        &processes,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for kind in engine::alerts::rules::KINDS {
        assert!(
            rules.list.iter().any(|r| r.condition.kind() == *kind),
            "no example of {kind}"
        );
    }
}

/// The ready-made Prometheus alerting rules pass `promtool check rules`,
/// and every metric they read is one the console or the evaluator writes.
#[test]
fn prometheus_rules_pass_promtool_and_read_our_metrics() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dashboards/prometheus/throughline-rules.yml"
    );
    let out = std::process::Command::new("promtool")
        .args(["check", "rules", file])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}); run `make deps` (Debian's prometheus package)")
        });
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let sources = [
        include_str!("../../../console/src/metrics.rs"),
        include_str!("../../../engine/src/alerts/metrics.rs"),
    ]
    .concat();
    let rules = std::fs::read_to_string(file).unwrap();
    let mut names: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("throughline_"))
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 5, "{names:?}");
    for name in names {
        // Families written with a `{name}` placeholder are found by their stem.
        let stem = name.trim_start_matches("throughline_slo_");
        assert!(
            sources.contains(name)
                || (name.starts_with("throughline_slo_") && sources.contains(stem)),
            "{name} is written by neither the console nor the evaluator"
        );
    }
}
