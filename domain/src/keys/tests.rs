use super::*;

fn attrs(pairs: &[(&str, &str)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn config(toml_aliases: &[(&str, &str, &str)]) -> KeyConfig {
    let mut config = KeyConfig::default();
    for (system, attribute, key_type) in toml_aliases {
        config
            .aliases
            .entry(system.to_string())
            .or_default()
            .insert(attribute.to_string(), key_type.to_string());
    }
    config
}

#[test]
fn canonical_attributes_on_record_and_resource_are_keys() {
    let types = KeyTypes::default();
    let keys = types
        .extract(
            "mes",
            &[
                &attrs(&[("work_order.id", "WO-88"), ("machine", "M1")]),
                &attrs(&[("order.id", " O-1 "), ("service.name", "mes")]),
            ],
        )
        .unwrap();
    assert_eq!(
        keys,
        vec![
            BusinessKey::new("order", "O-1"),
            BusinessKey::new("work_order", "WO-88")
        ]
    );
}

#[test]
fn aliases_apply_only_to_their_system_or_to_all() {
    let types = KeyTypes::new(&config(&[
        ("erp", "sap.sales_order", "order"),
        ("*", "crm.account", "customer"),
    ]))
    .unwrap();
    let record = attrs(&[("sap.sales_order", "4711"), ("crm.account", "ACME")]);
    assert_eq!(
        types.extract("erp", &[&record]).unwrap(),
        vec![
            BusinessKey::new("customer", "ACME"),
            BusinessKey::new("order", "4711")
        ]
    );
    assert_eq!(
        types.extract("mes", &[&record]).unwrap(),
        vec![BusinessKey::new("customer", "ACME")]
    );
}

#[test]
fn empty_and_oversized_values_are_not_keys() {
    let types = KeyTypes::default();
    let long = "x".repeat(MAX_KEY_LEN + 1);
    let keys = types
        .extract(
            "crm",
            &[&attrs(&[("order.id", "  "), ("customer.id", &long)])],
        )
        .unwrap();
    assert!(keys.is_empty());
}

#[test]
fn configured_types_are_found_and_ranked() {
    let mut config = KeyConfig::default();
    config
        .types
        .insert("shipment".into(), KeyTypeConfig { rank: 3 });
    let types = KeyTypes::new(&config).unwrap();
    assert_eq!(types.rank("shipment"), Some(3));
    assert_eq!(
        types
            .extract("erp", &[&attrs(&[("shipment.id", "S-1")])])
            .unwrap(),
        vec![BusinessKey::new("shipment", "S-1")]
    );
}

#[test]
fn alias_to_unknown_type_names_the_known_ones() {
    let err = KeyTypes::new(&config(&[("erp", "sap.lot", "lot")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "[keys.aliases.erp]: `sap.lot` maps to unknown key type `lot`; known types: customer, order, work_order"
    );
}

#[test]
fn bad_or_builtin_type_names_are_refused() {
    let mut config = KeyConfig::default();
    config
        .types
        .insert("Ship ment".into(), KeyTypeConfig::default());
    assert!(matches!(
        KeyTypes::new(&config),
        Err(KeyConfigError::BadTypeName(_))
    ));
    let mut config = KeyConfig::default();
    config
        .types
        .insert("order".into(), KeyTypeConfig::default());
    assert!(matches!(
        KeyTypes::new(&config),
        Err(KeyConfigError::Builtin(_))
    ));
}

#[test]
fn a_key_value_with_a_control_or_bidi_character_is_refused_naming_the_attribute() {
    let types = KeyTypes::default();
    let error = types
        .extract(
            "mes",
            &[
                &attrs(&[("order.id", "SO-1")]),
                &attrs(&[("work_order.id", "WO-\u{202e}1")]),
            ],
        )
        .unwrap_err();
    assert!(
        error.contains("`work_order.id`") && error.contains("U+202E at byte 3"),
        "{error}"
    );
    // Whitespace around a value is trimmed, as before, not refused.
    assert_eq!(
        types
            .extract("mes", &[&attrs(&[("order.id", "\tSO-1\n")])])
            .unwrap(),
        vec![BusinessKey::new("order", "SO-1")]
    );
    // The lookup checks a value by the same rule.
    assert!(check_key_value("x\u{0}y").is_err());
    assert_eq!(check_key_value(" SO-1 "), Ok("SO-1"));
}
