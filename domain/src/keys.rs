//! Business keys: which attributes name an order, a work order, a customer
//! (and the types a deployment adds), and how they rank.
//!
//! A key is found in the canonical attribute `<type>.id` (`order.id`) on a
//! record or its resource, or in an alias that one source system uses for it
//! (`sap.sales_order` on service `erp` is an `order`). The rank orders types
//! from coarse to fine (customer 0, order 1, work order 2): a lookup walks links
//! down to finer keys for the journey and up to coarser ones for context.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::{Attributes, BusinessKey};
use crate::text::{check_printable, Unprintable};

/// The built-in key types and their ranks.
pub const BUILTIN_TYPES: &[(&str, u8)] = &[("customer", 0), ("order", 1), ("work_order", 2)];

/// Longest key value kept; a longer value is not a business key but a mistake.
pub const MAX_KEY_LEN: usize = 256;

/// Why a text is not a key value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadKeyValue {
    /// Empty (after trimming) or longer than [`MAX_KEY_LEN`].
    #[error("a key value is 1 to {MAX_KEY_LEN} bytes; got {0}")]
    Length(usize),
    /// A control character or bidi control ([`crate::text::is_unprintable`]).
    #[error("{0}")]
    Unprintable(#[from] Unprintable),
}

/// The one rule for a key value, at ingest ([`KeyTypes::extract`]) and at
/// lookup (the console's key pages, API and search): trimmed, 1 to
/// [`MAX_KEY_LEN`] bytes, and printable ([`check_printable`]). So every
/// key stored can be looked up by its value.
pub fn check_key_value(value: &str) -> Result<&str, BadKeyValue> {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_KEY_LEN {
        return Err(BadKeyValue::Length(value.len()));
    }
    check_printable(value)?;
    Ok(value)
}

/// The `[keys]` section of the configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Key types beyond `customer`, `order` and `work_order`, each found in the
    /// attribute `<type>.id`: `[keys.types] shipment = { rank = 2 }`.
    #[serde(default)]
    pub types: BTreeMap<String, KeyTypeConfig>,
    /// Per-system attribute aliases, by `service.name` (`*` for every system):
    /// `[keys.aliases.erp] "sap.sales_order" = "order"`.
    #[serde(default)]
    pub aliases: BTreeMap<String, BTreeMap<String, String>>,
}

/// One configured key type.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyTypeConfig {
    /// Coarse (0, like `customer`) to fine (2, like `work_order`); default 2.
    #[serde(default = "default_rank")]
    pub rank: u8,
}

fn default_rank() -> u8 {
    2
}

/// A mistake in the `[keys]` configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyConfigError {
    #[error("[keys.types]: `{0}` is not a valid key type name; use lowercase letters, digits and `_`, starting with a letter")]
    BadTypeName(String),
    #[error("[keys.types]: `{0}` is built in; remove it from [keys.types]")]
    Builtin(String),
    #[error("[keys.aliases.{system}]: `{attribute}` maps to unknown key type `{key_type}`; known types: {known}")]
    UnknownAliasTarget {
        system: String,
        attribute: String,
        key_type: String,
        known: String,
    },
}

/// The validated key configuration: finds keys on records.
#[derive(Debug, Clone)]
pub struct KeyTypes {
    /// Type name -> rank.
    ranks: BTreeMap<String, u8>,
    /// Canonical attribute name (`order.id`) -> type.
    canonical: BTreeMap<String, String>,
    /// System -> attribute -> type; system `*` applies to all.
    aliases: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for KeyTypes {
    fn default() -> Self {
        Self::new(&KeyConfig::default()).expect("the built-in key types are valid")
    }
}

fn valid_type_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64
}

impl KeyTypes {
    pub fn new(config: &KeyConfig) -> Result<Self, KeyConfigError> {
        let mut ranks: BTreeMap<String, u8> = BUILTIN_TYPES
            .iter()
            .map(|(name, rank)| (name.to_string(), *rank))
            .collect();
        for (name, extra) in &config.types {
            if !valid_type_name(name) {
                return Err(KeyConfigError::BadTypeName(name.clone()));
            }
            if ranks.contains_key(name) {
                return Err(KeyConfigError::Builtin(name.clone()));
            }
            ranks.insert(name.clone(), extra.rank);
        }
        for (system, map) in &config.aliases {
            for (attribute, key_type) in map {
                if !ranks.contains_key(key_type) {
                    return Err(KeyConfigError::UnknownAliasTarget {
                        system: system.clone(),
                        attribute: attribute.clone(),
                        key_type: key_type.clone(),
                        known: ranks.keys().cloned().collect::<Vec<_>>().join(", "),
                    });
                }
            }
        }
        let canonical = ranks
            .keys()
            .map(|t| (format!("{t}.id"), t.clone()))
            .collect();
        Ok(Self {
            ranks,
            canonical,
            aliases: config.aliases.clone(),
        })
    }

    /// The rank of a known type; `None` for a type nobody configured.
    pub fn rank(&self, key_type: &str) -> Option<u8> {
        self.ranks.get(key_type).copied()
    }

    /// The coarsest types (those of the lowest rank, `customer` by
    /// default): the hubs, whose journeys the key index keeps in one range.
    pub fn coarsest(&self) -> Vec<&str> {
        let lowest = self.ranks.values().min().copied();
        self.ranks
            .iter()
            .filter(|(_, rank)| Some(**rank) == lowest)
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Known type names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.ranks.keys().map(String::as_str).collect()
    }

    /// Whether an attribute of `system` names a business key.
    pub fn is_key_attribute(&self, system: &str, attribute: &str) -> bool {
        self.key_type_of(system, attribute).is_some()
    }

    fn key_type_of(&self, system: &str, attribute: &str) -> Option<&str> {
        self.canonical
            .get(attribute)
            .or_else(|| self.aliases.get(system).and_then(|m| m.get(attribute)))
            .or_else(|| self.aliases.get("*").and_then(|m| m.get(attribute)))
            .map(String::as_str)
    }

    /// The keys on a record of `system`: from its own attributes, then its
    /// resource's; trimmed, deduplicated and sorted. Empty values and values
    /// longer than [`MAX_KEY_LEN`] are not keys. A key value with a control
    /// character or bidi control refuses the record: the error names the
    /// attribute, the character and where it is ([`check_key_value`]).
    pub fn extract(&self, system: &str, sets: &[&Attributes]) -> Result<Vec<BusinessKey>, String> {
        let mut keys = Vec::new();
        for (name, value) in sets.iter().flat_map(|attrs| attrs.iter()) {
            let Some(key_type) = self.key_type_of(system, name) else {
                continue;
            };
            match check_key_value(value) {
                Ok(value) => keys.push(BusinessKey::new(key_type, value)),
                Err(BadKeyValue::Length(_)) => {}
                Err(BadKeyValue::Unprintable(e)) => {
                    return Err(format!("the {key_type} key `{name}` {e}"));
                }
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests;
