use super::*;

const GOOD: &str = r#"id = "order-to-delivery"
name = "Order to delivery"
key = "order"

[[stages]]
id = "captured"
system = "crm"
event = "crm.order.created"

[[stages]]
id = "sales_order"
system = "erp"
event = "erp.sales_order.created"

[[stages]]
id = "produced"
system = "mes"
event = "mes.work_order.completed"   # keyed by work order; reaches the order through a key link

[[slas]]
id = "order-entry"
from = "captured"
to = "sales_order"
within = "15m"
"#;

fn parse(text: &str) -> Result<ProcessDef, DefinitionError> {
    Processes::parse(text, "processes/order.toml", &KeyTypes::default())
}

#[test]
fn the_design_example_parses() {
    let def = parse(GOOD).unwrap();
    assert_eq!(def.id, "order-to-delivery");
    assert_eq!(def.key_type, "order");
    assert_eq!(def.stages.len(), 3);
    assert_eq!(def.slas[0].from, 0);
    assert_eq!(def.slas[0].to, 1);
    assert_eq!(def.slas[0].within_ns, 900_000_000_000);
    assert!(def.stages[2].matches("event", "mes", "mes.work_order.completed"));
    assert!(!def.stages[2].matches("span", "mes", "mes.work_order.completed"));
}

/// Each mistake stops the start with the file, the line and the fix.
#[test]
fn each_mistake_names_file_line_and_fix() {
    let cases = [
        (
            GOOD.replace("from = \"captured\"", "from = \"captured2\""),
            "processes/order.toml:22: SLA `order-entry` names stage `captured2`, which is not defined; defined stages: captured, sales_order, produced",
        ),
        (
            GOOD.replace("id = \"sales_order\"", "id = \"captured\""),
            "processes/order.toml:11: stage id `captured` is defined twice (first at line 6); give each stage its own id",
        ),
        (
            GOOD.replace("within = \"15m\"", "within = \"15 minutes\""),
            "processes/order.toml:24: SLA `order-entry`: within `15 minutes` is not a duration; write it like 90s, 15m, 4h, 2d or 1h30m",
        ),
        (
            GOOD.replace("key = \"order\"", "key = \"lot\""),
            "processes/order.toml:3: key `lot` is not a known key type; use one of customer, order, work_order (or add it under [keys.types])",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse(&text).unwrap_err().to_string(), want);
    }
}

#[test]
fn duplicate_sla_ids_and_unknown_fields_are_refused() {
    let twice = format!("{GOOD}\n[[slas]]\nid = \"order-entry\"\nfrom = \"sales_order\"\nto = \"produced\"\nwithin = \"4h\"\n");
    let err = parse(&twice).unwrap_err().to_string();
    assert!(
        err.contains("SLA id `order-entry` is defined twice (first at line 21)"),
        "{err}"
    );
    let typo = GOOD.replace("system = \"crm\"", "sytem = \"crm\"");
    let err = parse(&typo).unwrap_err().to_string();
    assert!(err.starts_with("processes/order.toml:7: "), "{err}");
    assert!(err.contains("sytem"), "{err}");
}

#[test]
fn duplicate_process_ids_across_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), GOOD).unwrap();
    std::fs::write(dir.path().join("b.toml"), GOOD).unwrap();
    let err = Processes::load_dir(dir.path(), &KeyTypes::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("b.toml:1: process id `order-to-delivery` is already defined in"),
        "{err}"
    );
}

/// A named directory that is not there is a typo to report, not "no
/// processes": the start stops instead of running without them.
#[test]
fn a_processes_directory_that_does_not_exist_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Processes::load_dir(&dir.path().join("none"), &KeyTypes::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the processes directory does not exist; check the path"),
        "{err}"
    );
}

/// `owner` is a team name; `contacts` need an owner.
#[test]
fn a_process_names_its_owning_team() {
    let owned = GOOD.replacen(
        "\n",
        "\nowner = \"sales-ops\"\ncontacts = [\"#sales-ops\"]\n",
        1,
    );
    let def = parse(&owned).unwrap();
    assert_eq!(def.owner.as_deref(), Some("sales-ops"));
    assert_eq!(def.contacts, ["#sales-ops"]);
    assert_eq!(parse(GOOD).unwrap().owner, None);
    let err = parse(&GOOD.replacen("\n", "\nowner = \"Sales Ops\"\n", 1)).unwrap_err();
    assert_eq!(err.line, 2, "{err}");
    assert!(
        err.message
            .contains("owner `Sales Ops` must be a team name"),
        "{err}"
    );
    let err = parse(&GOOD.replacen("\n", "\ncontacts = [\"#x\"]\n", 1)).unwrap_err();
    assert!(err.message.contains("`contacts` without `owner`"), "{err}");
}

/// `[[slos]]`: an objective on one of the process's SLAs over a window.
#[test]
fn slos_name_an_sla_an_objective_and_a_window() {
    let with = |slo: &str| format!("{GOOD}\n[[slos]]\n{slo}\n");
    let def = parse(&with(
        "id = \"entry-99\"\nsla = \"order-entry\"\nobjective = 99.5\nwindow = \"7d\"",
    ))
    .unwrap();
    assert_eq!(def.slos.len(), 1);
    assert_eq!(def.slos[0].objective, 99.5);
    assert_eq!(def.slos[0].window_ns, 7 * 86_400_000_000_000);
    // Judged by the SLA's deadline: its windows lag by its `within`.
    assert_eq!(def.slos[0].lag_ns, 900_000_000_000);
    let def = parse(&with("id = \"e\"\nsla = \"order-entry\"\nobjective = 99")).unwrap();
    assert_eq!(def.slos[0].window_ns, 28 * 86_400_000_000_000);
    let err = parse(&with("id = \"e\"\nsla = \"entry\"\nobjective = 99")).unwrap_err();
    assert!(
        err.message.contains("SLA `entry`, which is not defined"),
        "{err}"
    );
    let err = parse(&with("id = \"e\"\nsla = \"order-entry\"\nobjective = 100")).unwrap_err();
    assert!(err.message.contains("above 0 and below 100"), "{err}");
}

/// An SLO on a system's events, and one that names both kinds of target.
#[test]
fn an_slo_on_events_of_a_system() {
    let with = |slo: &str| format!("{GOOD}\n[[slos]]\n{slo}\n");
    let def = parse(&with(
        "id = \"erp-ok\"\nsystem = \"erp\"\nevent_type = \"erp.sales_order.created\"\nobjective = 99.5",
    ))
    .unwrap();
    assert_eq!(
        def.slos[0].target,
        crate::process::SloTarget::Events {
            system: "erp".into(),
            event_type: Some("erp.sales_order.created".into())
        }
    );
    assert_eq!(def.slos[0].lag_ns, 0);
    let err = parse(&with(
        "id = \"x\"\nsystem = \"erp\"\nsla = \"order-entry\"\nobjective = 99",
    ))
    .unwrap_err();
    assert!(err.message.contains("needs one target"), "{err}");
}

/// An SLO on a stage latency: both stages defined and different, a
/// positive threshold; its pair's durations are kept by the rollups even
/// when no page shows them.
#[test]
fn an_slo_on_a_stage_latency() {
    let four = GOOD.replacen(
        "\n[[slas]]",
        "\n[[stages]]\nid = \"shipped\"\nsystem = \"wms\"\nevent = \"wms.shipped\"\n\n[[slas]]",
        1,
    );
    let with = |slo: &str| format!("{four}\n[[slos]]\n{slo}\n");
    let def = parse(&with(
        "id = \"fast\"\nfrom = \"sales_order\"\nto = \"shipped\"\nwithin = \"15m\"\nobjective = 99",
    ))
    .unwrap();
    assert_eq!(
        def.slos[0].target,
        crate::process::SloTarget::Latency {
            from: "sales_order".into(),
            to: "shipped".into(),
            within_ns: 900_000_000_000
        }
    );
    assert_eq!(def.slos[0].lag_ns, 900_000_000_000);
    let pairs = crate::process_rollup::duration_pairs(&def);
    assert!(pairs.contains(&(1, 3)), "{pairs:?}");
    let without = parse(&four).unwrap();
    assert!(!crate::process_rollup::duration_pairs(&without).contains(&(1, 3)));

    for (slo, message) in [
        (
            "id = \"x\"\nfrom = \"sales_order\"\nto = \"shiped\"\nwithin = \"15m\"\nobjective = 99",
            "SLO `x` names stage `shiped`, which is not defined; defined stages: captured, sales_order, produced, shipped",
        ),
        (
            "id = \"x\"\nfrom = \"shipped\"\nto = \"shipped\"\nwithin = \"15m\"\nobjective = 99",
            "goes from stage `shipped` to itself",
        ),
        (
            "id = \"x\"\nfrom = \"captured\"\nto = \"shipped\"\nwithin = \"0s\"\nobjective = 99",
            "within `0s` is not a positive duration",
        ),
        (
            "id = \"x\"\nfrom = \"captured\"\nto = \"shipped\"\nwithin = \"-5m\"\nobjective = 99",
            "within `-5m` is not a positive duration",
        ),
        (
            "id = \"x\"\nfrom = \"captured\"\nwithin = \"5m\"\nobjective = 99",
            "needs `from`, `to` and `within`",
        ),
        (
            "id = \"x\"\nsla = \"order-entry\"\nfrom = \"captured\"\nto = \"shipped\"\nwithin = \"5m\"\nobjective = 99",
            "needs one target",
        ),
    ] {
        let err = parse(&with(slo)).unwrap_err();
        assert!(err.message.contains(message), "{slo}: {err}");
    }
}
