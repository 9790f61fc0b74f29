//! How integration events get their system and business keys: the `[events]`
//! configuration and the rules built from it. Wire formats stay in the
//! receivers; this module works on decoded values.
//!
//! - System: the event's `system` (a CloudEvents extension), else the system
//!   of the longest configured `source` prefix, else `unknown`.
//! - Keys: the extensions `orderid`, `workorderid`, `customerid` (for any key
//!   type: its name without `_`, then `id`), then `data` flattened into dotted
//!   attribute names (`{"sap": {"sales_order": 1}}` is `sap.sales_order`) run
//!   through the same canonical names and aliases as span attributes, then
//!   configured JSON pointers into `data` per event type or per system.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::keys::KeyTypes;
use crate::limits::{Limits, Truncated};
use crate::model::{Attributes, BusinessKey};

/// The system of an event no rule names.
pub const UNKNOWN_SYSTEM: &str = "unknown";

/// Most leaves of `data` looked at for keys (its depth is `[limits]`
/// `max_depth`).
const MAX_LEAVES: usize = 512;

/// The `[events]` section of the configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventConfig {
    /// `source` prefix -> system: `"urn:plant1:mes" = "mes"`.
    #[serde(default)]
    pub systems: BTreeMap<String, String>,
    /// By event type or system, JSON pointer into `data` -> key type:
    /// `[events.key_paths."mes.work_order.completed"] "/wo/number" = "work_order"`.
    #[serde(default)]
    pub key_paths: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventConfigError {
    #[error("[events.key_paths.\"{scope}\"]: `{pointer}` is not a JSON pointer; write it like \"/order/id\"")]
    BadPointer { scope: String, pointer: String },
    #[error("[events.key_paths.\"{scope}\"]: `{pointer}` maps to unknown key type `{key_type}`; known types: {known}")]
    UnknownKeyType {
        scope: String,
        pointer: String,
        key_type: String,
        known: String,
    },
    #[error("[events.systems]: source prefix `{0}` maps to an empty system name")]
    EmptySystem(String),
}

/// The validated rules.
#[derive(Debug, Clone)]
pub struct EventRules {
    keys: KeyTypes,
    /// Longest prefix first.
    systems: Vec<(String, String)>,
    key_paths: BTreeMap<String, BTreeMap<String, String>>,
    /// CloudEvents extension name (`workorderid`) -> canonical attribute
    /// (`work_order.id`).
    extensions: BTreeMap<String, String>,
}

impl EventRules {
    pub fn new(config: &EventConfig, keys: &KeyTypes) -> Result<Self, EventConfigError> {
        for (scope, paths) in &config.key_paths {
            for (pointer, key_type) in paths {
                if !pointer.starts_with('/') {
                    return Err(EventConfigError::BadPointer {
                        scope: scope.clone(),
                        pointer: pointer.clone(),
                    });
                }
                if keys.rank(key_type).is_none() {
                    return Err(EventConfigError::UnknownKeyType {
                        scope: scope.clone(),
                        pointer: pointer.clone(),
                        key_type: key_type.clone(),
                        known: keys.names().join(", "),
                    });
                }
            }
        }
        let mut systems: Vec<(String, String)> = Vec::new();
        for (prefix, system) in &config.systems {
            if system.trim().is_empty() {
                return Err(EventConfigError::EmptySystem(prefix.clone()));
            }
            systems.push((prefix.clone(), system.clone()));
        }
        systems.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let extensions = keys
            .names()
            .into_iter()
            .map(|t| (format!("{}id", t.replace('_', "")), format!("{t}.id")))
            .collect();
        Ok(Self {
            keys: keys.clone(),
            systems,
            key_paths: config.key_paths.clone(),
            extensions,
        })
    }

    /// The system that owns events from `source`, if any: the one its
    /// configured prefix (`[events.systems]`) maps it to, or for
    /// `otlp-log:<service>` (the source of OTLP log events) that service.
    /// A connector token must be bound to it to send events of that
    /// source, whatever `system` the event says, so that no system can
    /// take another's `source` + `id` (which identify an event).
    pub fn owner_of<'a>(&'a self, source: &'a str) -> Option<&'a str> {
        if let Some(service) = source.strip_prefix(LOG_EVENT_SOURCE_PREFIX) {
            return Some(service);
        }
        self.mapped_system(source)
    }

    /// The system `[events.systems]` maps `source` to (longest prefix).
    fn mapped_system(&self, source: &str) -> Option<&str> {
        self.systems
            .iter()
            .find(|(prefix, _)| source.starts_with(prefix.as_str()))
            .map(|(_, system)| system.as_str())
    }

    /// The system of an event from `source`, when it names none itself.
    pub fn system_for(&self, source: &str) -> String {
        self.mapped_system(source)
            .unwrap_or(UNKNOWN_SYSTEM)
            .to_string()
    }

    /// The canonical attribute a key extension stands for (`orderid` ->
    /// `order.id`).
    pub fn key_extension(&self, name: &str) -> Option<&str> {
        self.extensions.get(name).map(String::as_str)
    }

    /// The keys of an event of `system` and `event_type`, from its key
    /// attributes (extensions already mapped to canonical names, or a log
    /// record's attributes) and its `data`. Objects in `data` nested deeper
    /// than `limits.max_depth` are not searched, which marks `truncated`. A
    /// key value with a control character or bidi control is an error
    /// naming it ([`KeyTypes::extract`]).
    pub fn keys(
        &self,
        system: &str,
        event_type: &str,
        attributes: &Attributes,
        data: Option<&Json>,
        limits: &Limits,
        truncated: &mut Truncated,
    ) -> Result<Vec<BusinessKey>, String> {
        let mut from_data = Attributes::new();
        if let Some(data) = data {
            let mut flat = Flatten {
                max_depth: limits.max_depth,
                out: &mut from_data,
                too_deep: false,
            };
            flat.walk(data, "", 1);
            if flat.too_deep {
                truncated.add(Truncated::DEPTH);
            }
            for scope in [event_type, system] {
                for (pointer, key_type) in self.key_paths.get(scope).into_iter().flatten() {
                    if let Some(value) = data.pointer(pointer).and_then(scalar_text) {
                        from_data.push((format!("{key_type}.id"), value));
                    }
                }
            }
        }
        self.keys.extract(system, &[attributes, &from_data])
    }
}

/// A scalar JSON value as text; `None` for null, arrays and objects.
fn scalar_text(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `data`'s scalars under dotted names (`order.id`), objects at most
/// `max_depth` levels deep (`data` itself is level 1).
struct Flatten<'a> {
    max_depth: usize,
    out: &'a mut Attributes,
    too_deep: bool,
}

impl Flatten<'_> {
    fn walk(&mut self, value: &Json, prefix: &str, level: usize) {
        if self.out.len() >= MAX_LEAVES {
            return;
        }
        match value {
            Json::Object(_) if level > self.max_depth => self.too_deep = true,
            Json::Object(map) => {
                for (key, child) in map {
                    let name = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    self.walk(child, &name, level + 1);
                }
            }
            other => {
                if let Some(text) = scalar_text(other) {
                    if !prefix.is_empty() {
                        self.out.push((prefix.to_string(), text));
                    }
                }
            }
        }
    }
}

/// The source of events that came as OTLP log records: no CloudEvents
/// source exists, so the sending system stands in.
pub fn log_event_source(service: &str) -> String {
    format!("{LOG_EVENT_SOURCE_PREFIX}{service}")
}

/// What [`log_event_source`] puts before the service.
pub const LOG_EVENT_SOURCE_PREFIX: &str = "otlp-log:";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyConfig;

    fn rules(config: &str) -> EventRules {
        let config: EventConfig = toml::from_str(config).unwrap();
        let mut keys = KeyConfig::default();
        keys.aliases
            .entry("erp".into())
            .or_default()
            .insert("sap.sales_order".into(), "order".into());
        EventRules::new(&config, &KeyTypes::new(&keys).unwrap()).unwrap()
    }

    #[test]
    fn longest_source_prefix_names_the_system() {
        let r = rules("[systems]\n\"urn:plant1\" = \"plant\"\n\"urn:plant1:mes\" = \"mes\"\n");
        assert_eq!(r.system_for("urn:plant1:mes:line2"), "mes");
        assert_eq!(r.system_for("urn:plant1:other"), "plant");
        assert_eq!(r.system_for("https://elsewhere"), UNKNOWN_SYSTEM);
    }

    #[test]
    fn keys_come_from_extensions_flattened_data_aliases_and_pointers() {
        let r =
            rules("[key_paths.\"mes.work_order.completed\"]\n\"/wo/number\" = \"work_order\"\n");
        assert_eq!(r.key_extension("workorderid"), Some("work_order.id"));
        let data = serde_json::json!({
            "sap": {"sales_order": 4711},
            "customer": {"id": "ACME"},
            "wo": {"number": "WO-9"},
            "lines": [{"order": {"id": "ignored-in-arrays"}}]
        });
        let attrs = vec![("order.id".to_string(), "O-1".to_string())];
        let keys = r
            .keys(
                "erp",
                "mes.work_order.completed",
                &attrs,
                Some(&data),
                &Limits::default(),
                &mut Truncated::default(),
            )
            .unwrap();
        let got: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "customer/ACME",
                "order/4711",
                "order/O-1",
                "work_order/WO-9"
            ]
        );
    }

    #[test]
    fn bad_pointers_and_unknown_types_are_refused() {
        let keys = KeyTypes::default();
        let config: EventConfig =
            toml::from_str("[key_paths.mes]\n\"wo\" = \"work_order\"\n").unwrap();
        assert!(matches!(
            EventRules::new(&config, &keys),
            Err(EventConfigError::BadPointer { .. })
        ));
        let config: EventConfig = toml::from_str("[key_paths.mes]\n\"/wo\" = \"lot\"\n").unwrap();
        let err = EventRules::new(&config, &keys).unwrap_err().to_string();
        assert!(
            err.contains("unknown key type `lot`; known types: customer, order, work_order"),
            "{err}"
        );
    }
}
