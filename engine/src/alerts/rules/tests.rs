use super::*;
use domain::keys::KeyTypes;

const ORDER: &str = r#"
id = "order-to-delivery"
key = "order"
[[stages]]
id = "captured"
system = "crm"
event = "crm.order.created"
[[stages]]
id = "sales_order"
system = "erp"
event = "erp.sales_order.created"
[[slas]]
id = "order-entry"
from = "captured"
to = "sales_order"
within = "15m"
"#;

fn processes() -> Processes {
    Processes {
        list: vec![Processes::parse(ORDER, "order.toml", &KeyTypes::default()).unwrap()],
        ..Default::default()
    }
}

fn parse(text: &str) -> Result<Vec<Rule>, String> {
    Rules::parse(text, "alerts/x.toml", &processes())
        .map(|v| v.into_iter().map(|(r, _)| r).collect())
        .map_err(|e| e.to_string())
}

/// Each bad file and the start of the message it must give.
#[test]
fn mistakes_name_the_file_the_line_and_the_fix() {
    let cases: &[(&str, &str)] = &[
        (
            "[[rules]]\nid = \"a\"\nkind = \"sla_breach\"\nprocess = \"order-to-delivery\"\nthreshold = 1\n",
            "alerts/x.toml:3: rule `a`: kind `sla_breach` is not known; use one of sla_breaches,",
        ),
        (
            "[[rules]]\nid = \"a\"\nkind = \"sla_breaches\"\nprocess = \"order\"\nthreshold = 1\n",
            "alerts/x.toml:4: rule `a` names process `order`, which is not defined; defined processes: order-to-delivery",
        ),
        (
            "[[rules]]\nid = \"a\"\nkind = \"open_breaches\"\nprocess = \"order-to-delivery\"\nsla = \"entry\"\n",
            "alerts/x.toml:5: rule `a` names SLA `entry`, which process `order-to-delivery` does not define; its SLAs: order-entry",
        ),
        (
            "[[rules]]\nid = \"a\"\nkind = \"sla_breaches\"\nprocess = \"order-to-delivery\"\n",
            "alerts/x.toml:2: rule `a` (sla_breaches) needs `threshold`",
        ),
        (
            "[[rules]]\nid = \"a\"\nkind = \"system_silence\"\nsystem = \"mes\"\nsilent_for = \"5 minutes\"\n",
            "alerts/x.toml:5: rule `a`: silent_for `5 minutes` is not a duration",
        ),
        (
            "[[rules]]\nid = \"a\"\nkind = \"stage_latency\"\nprocess = \"order-to-delivery\"\nfrom = \"sales_order\"\nto = \"captured\"\nlimit = \"5m\"\n",
            "alerts/x.toml:6: rule `a`: stage `captured` does not come after `sales_order`",
        ),
        (
            "[[rules]]\nid = \"a\"\nkind = \"stage_latency\"\nprocess = \"order-to-delivery\"\nfrom = \"captured\"\nto = \"shipped\"\nlimit = \"5m\"\n",
            "alerts/x.toml:6: rule `a` names stage `shipped`, which process `order-to-delivery` does not define; defined stages: captured, sales_order",
        ),
        (
            "[[rules]]\nid = \"a\"\nkind = \"dead_letters\"\nsilent_for = \"5m\"\n",
            "alerts/x.toml:4: rule `a`: `silent_for` has no meaning for kind dead_letters",
        ),
        (
            "[[rules]]\nid = \"a\"\nkind = \"dead_letters\"\nseverity = \"page\"\n",
            "alerts/x.toml:4: rule `a`: severity `page` is not one of critical, warning, info",
        ),
        (
            "[[rules]]\nid = \"a\"\nkind = \"error_rate\"\nthreshold = 5\n",
            "alerts/x.toml:2: rule `a` (error_rate) needs `system` or `event_type`",
        ),
        (
            "[[rules]]\nid = \"a\"\nkind = \"dead_letters\"\n[[rules]]\nid = \"a\"\nkind = \"dead_letters\"\n",
            "alerts/x.toml:5: alert rule id `a` is defined twice (first at line 2)",
        ),
        (
            "[[rules]]\nid = \"a\"\nkind = \"dead_letters\"\nthreshhold = 1\n",
            "alerts/x.toml:4: unknown field `threshhold`",
        ),
    ];
    for (text, want) in cases {
        let err = parse(text).unwrap_err();
        assert!(err.starts_with(want), "{err}\n  wanted: {want}");
    }
}

#[test]
fn a_valid_rule_has_defaults_and_labels() {
    let rules = parse(
        "[[rules]]\nid = \"entry\"\nkind = \"sla_breaches\"\nprocess = \"order-to-delivery\"\n\
         sla = \"order-entry\"\nmeasure = \"share\"\nthreshold = 10\nfor = \"5m\"\nseverity = \"critical\"\n\
         labels = { team = \"sales-ops\" }\n",
    )
    .unwrap();
    let r = &rules[0];
    assert_eq!(r.for_ns, 300_000_000_000);
    assert_eq!(
        r.condition,
        Condition::SlaBreaches {
            process: "order-to-delivery".into(),
            sla: Some("order-entry".into()),
            window_ns: 3_600_000_000_000,
            measure: Measure::Share,
            threshold: 10.0,
        }
    );
    assert_eq!(r.condition.threshold_text(), "10%");
    let labels = r.alert_labels();
    assert_eq!(labels["alertname"], "entry");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["process"], "order-to-delivery");
    assert_eq!(labels["sla"], "order-entry");
    assert_eq!(labels["team"], "sales-ops");
    assert!(r.annotations["summary"].contains("{orders}"));
}

#[test]
fn ids_are_unique_across_files() {
    let a = "[[rules]]\nid = \"dl\"\nkind = \"dead_letters\"\n";
    let err = Rules::parse_all([("a.toml", a), ("b.toml", a)], &processes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "b.toml:2: alert rule id `dl` is already defined at a.toml:2; give each rule its own id"
    );
}

/// Owners of two processes and a system: every alert carries its owner as
/// `owner` and `team`; a `team` rule becomes one rule per process of the
/// team, grouped under one alertname.
#[test]
fn alerts_carry_their_owner_and_a_team_rule_covers_the_teams_processes() {
    let keys = KeyTypes::default();
    let owned = |id: &str, team: &str| {
        let text = ORDER.replace(
            "id = \"order-to-delivery\"",
            &format!("id = \"{id}\"\nowner = \"{team}\"\ncontacts = [\"#{team}\"]"),
        );
        Processes::parse(&text, "p.toml", &keys).unwrap()
    };
    let mut processes = Processes {
        list: vec![
            owned("order-to-delivery", "sales-ops"),
            owned("returns", "sales-ops"),
            owned("maintenance", "plant"),
        ],
        ..Default::default()
    };
    processes.systems.insert(
        "mes".into(),
        domain::process::SystemDef {
            owner: "plant-it".into(),
            contacts: vec![],
        },
    );
    let text = "[[rules]]\nid = \"stuck\"\nkind = \"open_breaches\"\nteam = \"sales-ops\"\nsla = \"order-entry\"\n\
                [[rules]]\nid = \"mes-quiet\"\nkind = \"system_silence\"\nsystem = \"mes\"\nsilent_for = \"10m\"\n\
                [[rules]]\nid = \"any-quiet\"\nkind = \"system_silence\"\nsilent_for = \"10m\"\n";
    let rules: Vec<Rule> = Rules::parse(text, "t.toml", &processes)
        .unwrap()
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "stuck-order-to-delivery",
            "stuck-returns",
            "mes-quiet",
            "any-quiet"
        ]
    );
    let labels = rules[1].alert_labels();
    assert_eq!(labels["alertname"], "stuck");
    assert_eq!(labels["process"], "returns");
    assert_eq!(labels["owner"], "sales-ops");
    assert_eq!(labels["team"], "sales-ops");
    assert_eq!(rules[1].team.as_deref(), Some("sales-ops"));
    assert_eq!(rules[2].alert_labels()["owner"], "plant-it");
    assert_eq!(rules[3].alert_labels()["owner"], "unowned");

    let err = Rules::parse(
        "[[rules]]\nid = \"x\"\nkind = \"open_breaches\"\nteam = \"nobody\"\n",
        "t.toml",
        &processes,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("team `nobody` owns no process") && err.contains("plant, sales-ops"),
        "{err}"
    );
    let err = Rules::parse(
        "[[rules]]\nid = \"x\"\nkind = \"system_silence\"\nteam = \"plant\"\nsilent_for = \"1m\"\n",
        "t.toml",
        &processes,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`team` is for the kinds"), "{err}");
}

#[test]
fn plant_backlog_needs_a_limit_and_reads_plant() {
    let processes = Processes::default();
    let ok =
        "[[rules]]\nid = \"p\"\nkind = \"plant_backlog\"\nplant = \"hamburg\"\nlimit = \"15m\"\n";
    let rules = Rules::parse_all([("a.toml", ok)], &processes).unwrap();
    assert_eq!(rules.list[0].condition.threshold_text(), "15m");
    assert_eq!(rules.list[0].alert_labels()["plant"], "hamburg");
    let no_limit = "[[rules]]\nid = \"p\"\nkind = \"plant_backlog\"\n";
    let err = Rules::parse_all([("a.toml", no_limit)], &processes).unwrap_err();
    assert!(err.to_string().contains("needs `limit`"), "{err}");
    let stray =
        "[[rules]]\nid = \"s\"\nkind = \"system_silence\"\nsilent_for = \"5m\"\nplant = \"x\"\n";
    let err = Rules::parse_all([("a.toml", stray)], &processes).unwrap_err();
    assert!(err.to_string().contains("`plant` has no meaning"), "{err}");
}
