use serde_json::json;

use super::*;
use domain::events::EventConfig;
use domain::keys::KeyTypes;
use domain::limits::Limits;
use domain::model::BusinessKey;

fn rules() -> EventRules {
    let config: EventConfig = toml::from_str("[systems]\n\"urn:plant1:mes\" = \"mes\"\n").unwrap();
    EventRules::new(&config, &KeyTypes::default()).unwrap()
}

fn check(value: serde_json::Value) -> Result<Event, String> {
    from_json(value).and_then(|raw| finish(raw, &rules(), &Limits::default(), 42))
}

fn minimal() -> serde_json::Value {
    json!({"specversion": "1.0", "id": "e-1", "source": "urn:plant1:mes:line2", "type": "mes.work_order.completed"})
}

#[test]
fn a_minimal_event_gets_arrival_time_default_outcome_and_system_from_source() {
    let e = check(minimal()).unwrap();
    assert_eq!(e.system, "mes");
    assert_eq!((e.time_ns, e.time_missing), (42, true));
    assert_eq!(e.outcome, Outcome::Ok);
    assert_eq!(e.attempt, 0);
    assert_eq!(e.trace_id, None);
}

#[test]
fn everything_maps() {
    let mut v = minimal();
    let o = v.as_object_mut().unwrap();
    o.insert("time".into(), json!("2026-11-26T13:41:28.000000123Z"));
    o.insert("system".into(), json!("mes-2"));
    o.insert("outcome".into(), json!("dead_lettered"));
    o.insert("attempt".into(), json!("3"));
    o.insert(
        "traceparent".into(),
        json!("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    );
    o.insert("orderid".into(), json!("O-1"));
    o.insert("workorderid".into(), json!("WO-88"));
    o.insert("correlationid".into(), json!("c-1"));
    o.insert("plant".into(), json!("P1"));
    o.insert("datacontenttype".into(), json!("application/json"));
    o.insert("data".into(), json!({"customer": {"id": "ACME"}, "qty": 3}));
    let e = check(v).unwrap();
    assert_eq!(e.time_ns, 1_795_700_488_000_000_123);
    assert!(!e.time_missing);
    assert_eq!(e.system, "mes-2");
    assert_eq!(e.outcome, Outcome::DeadLettered);
    assert_eq!(e.attempt, 3);
    assert_eq!(
        e.trace_id.unwrap().to_hex(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(e.span_id.unwrap().to_hex(), "b7ad6b7169203331");
    assert_eq!(e.correlation_id, "c-1");
    assert_eq!(
        e.keys,
        vec![
            BusinessKey::new("customer", "ACME"),
            BusinessKey::new("order", "O-1"),
            BusinessKey::new("work_order", "WO-88")
        ]
    );
    assert!(e
        .attributes
        .contains(&("plant".to_string(), "P1".to_string())));
    assert_eq!(e.data, r#"{"customer":{"id":"ACME"},"qty":3}"#);
}

#[test]
fn each_mistake_names_the_attribute() {
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("id", json!(null), "`id` is missing"),
        ("source", json!(""), "`source` must be a non-empty string"),
        (
            "specversion",
            json!("0.3"),
            "`specversion` \"0.3\" is not supported",
        ),
        (
            "time",
            json!("yesterday"),
            "`time` \"yesterday\" is not an RFC 3339 timestamp",
        ),
        (
            "outcome",
            json!("lost"),
            "`outcome` \"lost\" is not one of ok, failed, retried, dead_lettered",
        ),
        ("attempt", json!(-1), "`attempt` must be a whole number"),
        (
            "traceparent",
            json!("00-xyz-01"),
            "`traceparent` \"00-xyz-01\" is not a W3C traceparent",
        ),
    ];
    for (attribute, value, want) in cases {
        let mut v = minimal();
        if value.is_null() {
            v.as_object_mut().unwrap().remove(attribute);
        } else {
            v.as_object_mut().unwrap().insert(attribute.into(), value);
        }
        let err = check(v).unwrap_err();
        assert!(err.contains(want), "{attribute}: {err}");
    }
    assert!(check(json!([1]))
        .unwrap_err()
        .contains("must be a JSON object, got an array"));
}

#[test]
fn binary_headers_are_percent_decoded() {
    assert_eq!(percent_decode("caf%C3%A9%20ok%", false), "café ok%");
}

#[test]
fn an_event_past_the_limits_is_kept_cut_and_marked() {
    let limits = Limits {
        max_attributes: 3,
        max_value_bytes: 1024,
        max_depth: 2,
        ..Limits::default()
    };
    let mut v = minimal();
    let o = v.as_object_mut().unwrap();
    for i in 0..6 {
        o.insert(format!("ext{i}"), json!("x"));
    }
    o.insert("orderid".into(), json!("SO-1"));
    o.insert("long".into(), json!("a".repeat(5000)));
    o.insert("nested".into(), json!({"a": {"b": {"c": 1}}}));
    o.insert(
        "data".into(),
        json!({"x": {"y": {"order": {"id": "SO-DEEP"}}}}),
    );
    let e = finish(from_json(v).unwrap(), &rules(), &limits, 42).unwrap();
    // Three extensions kept, the key extension among them, then the marker.
    assert_eq!(e.attributes.len(), 4);
    assert!(e.attributes.contains(&("orderid".into(), "SO-1".into())));
    assert_eq!(
        e.attributes.last().unwrap(),
        &(
            domain::limits::TRUNCATED_ATTRIBUTE.to_string(),
            "attributes,value_length,depth".to_string()
        )
    );
    // The key in data deeper than the limit is not found; the extension's is.
    assert_eq!(e.keys, vec![BusinessKey::new("order", "SO-1")]);
    // The data itself is stored whole.
    assert!(e.data.contains("SO-DEEP"));
}

#[test]
fn long_data_and_texts_are_cut_after_the_keys_are_found() {
    let limits = Limits {
        max_value_bytes: 1024,
        max_body_bytes: 1024,
        ..Limits::default()
    };
    let mut v = minimal();
    let o = v.as_object_mut().unwrap();
    o.insert("subject".into(), json!("s".repeat(2000)));
    o.insert(
        "data".into(),
        json!({"note": "n".repeat(3000), "order": {"id": "SO-LATE"}}),
    );
    let e = finish(from_json(v).unwrap(), &rules(), &limits, 42).unwrap();
    assert_eq!(e.subject.len(), 1024);
    assert_eq!(e.data.len(), 1024);
    // The key past the cut was still found.
    assert_eq!(e.keys, vec![BusinessKey::new("order", "SO-LATE")]);
    assert_eq!(e.attributes.last().unwrap().1, "value_length,body_length");
}

#[test]
fn a_nested_extension_is_cut_to_the_depth_limit() {
    let limits = Limits {
        max_depth: 2,
        ..Limits::default()
    };
    let mut v = minimal();
    v.as_object_mut()
        .unwrap()
        .insert("nested".into(), json!({"a": {"b": {"c": 1}}}));
    let e = finish(from_json(v).unwrap(), &rules(), &limits, 42).unwrap();
    assert_eq!(
        e.attributes,
        vec![
            ("nested".to_string(), r#"{"a":{"b":null}}"#.to_string()),
            (
                domain::limits::TRUNCATED_ATTRIBUTE.to_string(),
                "depth".to_string()
            )
        ]
    );
}

#[test]
fn a_long_extension_name_is_cut_and_marked() {
    let limits = Limits {
        max_value_bytes: 1024,
        ..Limits::default()
    };
    let mut v = minimal();
    v.as_object_mut()
        .unwrap()
        .insert("x".repeat(3000), json!("v"));
    let e = finish(from_json(v).unwrap(), &rules(), &limits, 42).unwrap();
    assert_eq!(
        e.attributes,
        vec![
            ("x".repeat(1024), "v".to_string()),
            (
                domain::limits::TRUNCATED_ATTRIBUTE.to_string(),
                "name_length".to_string()
            )
        ]
    );
}

#[test]
fn a_control_or_bidi_character_in_a_key_system_or_id_refuses_the_event() {
    let cases = [
        (
            "orderid",
            "SO-\u{0}1",
            "`orderid` holds the control character U+0000",
        ),
        ("id", "e-\u{1b}1", "`id`"),
        ("source", "urn:plant1:mes\u{7f}", "`source`"),
        ("system", "evil-a\u{0}", "`system`"),
        ("workorderid", "WO-\u{202e}1", "U+202E"),
    ];
    for (name, value, want) in cases {
        let mut v = minimal();
        v.as_object_mut().unwrap().insert(name.into(), json!(value));
        let error = check(v).unwrap_err();
        assert!(error.contains(want), "{name}: {error}");
    }
    // A key in `data` too.
    let mut v = minimal();
    v.as_object_mut()
        .unwrap()
        .insert("data".into(), json!({"order": {"id": "SO-\u{0}"}}));
    let error = check(v).unwrap_err();
    assert!(error.contains("`order.id`"), "{error}");
}
