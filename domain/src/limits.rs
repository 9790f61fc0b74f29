//! Limits on what one record may carry: attributes per map, bytes per
//! attribute value and name (and per status message or other short text),
//! bytes of a log body or event `data`, events and links per span, levels
//! of nesting.
//!
//! A sender that goes past a limit loses only the excess, never the record:
//! the receivers cut it down and mark it with the attribute
//! [`TRUNCATED_ATTRIBUTE`] naming what was cut (`attributes,value_length`),
//! and `/metrics` counts it (`throughline_truncated_records_total`). When
//! attributes are cut, those that carry a business key are kept first, so a
//! cut record still joins its journey. A name given twice in one map keeps
//! its first value (the later ones are dropped and marked `duplicates`), so
//! a record's columns, keys and stored map never disagree.
//!
//! The defaults follow the OpenTelemetry SDK's span limits (128 attributes,
//! events and links) with a value length the SDKs leave unlimited, set here
//! so one attribute cannot fill a row.

use serde::Deserialize;

use crate::model::Attributes;

/// The attribute that marks a record whose content was cut, listing the
/// limits it went past.
pub const TRUNCATED_ATTRIBUTE: &str = "throughline.truncated";

/// The smallest `max_value_bytes` accepted: a business key value (at most
/// [`crate::keys::MAX_KEY_LEN`] bytes) is never cut into another key.
pub const MIN_VALUE_BYTES: usize = 1024;

/// The smallest `max_body_bytes` accepted.
pub const MIN_BODY_BYTES: usize = 1024;

/// The `[limits]` section of the configuration.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Attributes kept per map (resource, span, span event, link, log
    /// record, event extensions); business keys are kept first. Default 128.
    pub max_attributes: usize,
    /// Bytes kept of an attribute value and of an attribute name, cut at a
    /// character boundary; at least 1024. Default 4096. Also bounds span,
    /// span event and event names, status messages, and an event's id,
    /// source, type, subject and correlation and causation ids.
    pub max_value_bytes: usize,
    /// Bytes kept of a log record's body or a CloudEvent's `data`, cut at a
    /// character boundary (business keys are looked for in the whole
    /// `data` first); at least 1024. Default 262144 (256 KiB).
    pub max_body_bytes: usize,
    /// Span events kept per span (the first ones). Default 128.
    pub max_span_events: usize,
    /// Links kept per span (the first ones). Default 128.
    pub max_span_links: usize,
    /// Levels of nested arrays and maps kept in a value (an OTLP array or
    /// kvlist, a CloudEvents extension, `data` searched for keys); deeper
    /// content becomes null. Default 8.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_attributes: 128,
            max_value_bytes: 4096,
            max_body_bytes: 256 * 1024,
            max_span_events: 128,
            max_span_links: 128,
            max_depth: 8,
        }
    }
}

impl Limits {
    /// Checks the values make sense; the message names the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_attributes", self.max_attributes),
            ("max_span_events", self.max_span_events),
            ("max_span_links", self.max_span_links),
            ("max_depth", self.max_depth),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("[limits] {name} must be at least 1"));
            }
        }
        if self.max_value_bytes < MIN_VALUE_BYTES {
            return Err(format!(
                "[limits] max_value_bytes is {}; it must be at least {MIN_VALUE_BYTES} so business keys are never cut",
                self.max_value_bytes
            ));
        }
        if self.max_body_bytes < MIN_BODY_BYTES {
            return Err(format!(
                "[limits] max_body_bytes is {}; it must be at least {MIN_BODY_BYTES}",
                self.max_body_bytes
            ));
        }
        Ok(())
    }

    /// Cuts `value` to `max_value_bytes` at a character boundary.
    pub fn cut_value(&self, value: &mut String, truncated: &mut Truncated) {
        cut_text(
            value,
            self.max_value_bytes,
            Truncated::VALUE_LENGTH,
            truncated,
        );
    }

    /// `value` cut to `max_value_bytes` at a character boundary.
    pub fn cut_text(&self, value: &str, truncated: &mut Truncated) -> String {
        let mut value = value.to_string();
        self.cut_value(&mut value, truncated);
        value
    }

    /// Cuts a log body or event `data` to `max_body_bytes` at a character
    /// boundary.
    pub fn cut_body(&self, value: &mut String, truncated: &mut Truncated) {
        cut_text(
            value,
            self.max_body_bytes,
            Truncated::BODY_LENGTH,
            truncated,
        );
    }

    /// Cuts each name and value to `max_value_bytes`, drops a name's later
    /// duplicates (the first value wins, also over names that are the same
    /// once cut), then cuts the map to `max_attributes`, keeping those for
    /// which `is_key` holds first and the others in their order.
    pub fn cut_attributes(
        &self,
        attributes: &mut Attributes,
        is_key: impl Fn(&str) -> bool,
        truncated: &mut Truncated,
    ) {
        let mut seen = std::collections::HashSet::with_capacity(attributes.len());
        attributes.retain_mut(|(name, value)| {
            cut_text(
                name,
                self.max_value_bytes,
                Truncated::NAME_LENGTH,
                truncated,
            );
            if !seen.insert(name.clone()) {
                truncated.add(Truncated::DUPLICATES);
                return false;
            }
            self.cut_value(value, truncated);
            true
        });
        if attributes.len() <= self.max_attributes {
            return;
        }
        truncated.add(Truncated::ATTRIBUTES);
        let keys = attributes.iter().filter(|(k, _)| is_key(k)).count();
        let mut keys_left = keys.min(self.max_attributes);
        let mut others_left = self.max_attributes - keys_left;
        attributes.retain(|(k, _)| {
            let left = if is_key(k) {
                &mut keys_left
            } else {
                &mut others_left
            };
            let keep = *left > 0;
            *left = left.saturating_sub(1);
            keep
        });
    }

    /// Keeps the first `max` items of `list`.
    pub fn cut_list<T>(list: &mut Vec<T>, max: usize, flag: u16, truncated: &mut Truncated) {
        if list.len() > max {
            list.truncate(max);
            truncated.add(flag);
        }
    }

    /// A JSON value with arrays and objects deeper than `max_depth` levels
    /// replaced by null; `level` is the level of `value` itself (1 for an
    /// attribute's value).
    pub fn cut_json(
        &self,
        value: &serde_json::Value,
        level: usize,
        truncated: &mut Truncated,
    ) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::Array(_) | Value::Object(_) if level > self.max_depth => {
                truncated.add(Truncated::DEPTH);
                Value::Null
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.cut_json(v, level + 1, truncated))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.cut_json(v, level + 1, truncated)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Cuts `value` to at most `max` bytes at a character boundary, flagging
/// `flag` when it does.
fn cut_text(value: &mut String, max: usize, flag: u16, truncated: &mut Truncated) {
    if value.len() <= max {
        return;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.truncate(end);
    truncated.add(flag);
}

/// Which limits a record went past (and what else was dropped from it): a
/// small set of flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Truncated(u16);

impl Truncated {
    pub const ATTRIBUTES: u16 = 1;
    pub const VALUE_LENGTH: u16 = 2;
    pub const EVENTS: u16 = 4;
    pub const LINKS: u16 = 8;
    pub const DEPTH: u16 = 16;
    pub const BODY_LENGTH: u16 = 32;
    /// An attribute name longer than `max_value_bytes`.
    pub const NAME_LENGTH: u16 = 64;
    /// A later attribute of a name already in the map.
    pub const DUPLICATES: u16 = 128;

    /// Each flag with its name, in the order the marker lists them.
    pub const ALL: [(u16, &'static str); 8] = [
        (Self::ATTRIBUTES, "attributes"),
        (Self::VALUE_LENGTH, "value_length"),
        (Self::NAME_LENGTH, "name_length"),
        (Self::EVENTS, "events"),
        (Self::LINKS, "links"),
        (Self::DEPTH, "depth"),
        (Self::BODY_LENGTH, "body_length"),
        (Self::DUPLICATES, "duplicates"),
    ];

    pub fn add(&mut self, flag: u16) {
        self.0 |= flag;
    }

    pub fn merge(&mut self, other: Truncated) {
        self.0 |= other.0;
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, flag: u16) -> bool {
        self.0 & flag != 0
    }

    /// `attributes,value_length`: the marker's value.
    pub fn names(self) -> String {
        Self::ALL
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses a marker's value; unknown names are ignored.
    pub fn parse(text: &str) -> Self {
        let mut out = Self::default();
        for part in text.split(',') {
            if let Some((flag, _)) = Self::ALL.iter().find(|(_, name)| *name == part.trim()) {
                out.add(*flag);
            }
        }
        out
    }

    /// Appends the marker to a record's attributes when anything was cut
    /// (after the count limit, so the marker itself is never cut). A marker
    /// the sender set is removed: only the receiver says what it cut.
    pub fn mark(self, attributes: &mut Attributes) {
        attributes.retain(|(k, _)| k != TRUNCATED_ATTRIBUTE);
        if !self.is_empty() {
            attributes.push((TRUNCATED_ATTRIBUTE.to_string(), self.names()));
        }
    }

    /// The marker on a record's attributes, if any.
    pub fn of(attributes: &Attributes) -> Self {
        attributes
            .iter()
            .rev()
            .find(|(k, _)| k == TRUNCATED_ATTRIBUTE)
            .map(|(_, v)| Self::parse(v))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_long_value_is_cut_at_a_character_boundary() {
        let limits = Limits {
            max_value_bytes: 1024,
            ..Limits::default()
        };
        // 'é' is two bytes: 1023 ASCII bytes and then 'é' would end at 1025.
        let mut value = format!("{}é and more", "a".repeat(1023));
        let mut t = Truncated::default();
        limits.cut_value(&mut value, &mut t);
        assert_eq!(value, "a".repeat(1023));
        assert!(t.contains(Truncated::VALUE_LENGTH));

        let mut short = "fine".to_string();
        let mut t = Truncated::default();
        limits.cut_value(&mut short, &mut t);
        assert_eq!(short, "fine");
        assert!(t.is_empty());
    }

    #[test]
    fn cutting_attributes_keeps_business_keys_first() {
        let limits = Limits {
            max_attributes: 3,
            ..Limits::default()
        };
        let mut a = attrs(&[
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("d", "4"),
            ("order.id", "SO-1"),
            ("customer.id", "ACME"),
        ]);
        let mut t = Truncated::default();
        limits.cut_attributes(&mut a, |k| k.ends_with(".id"), &mut t);
        assert_eq!(
            a,
            attrs(&[("a", "1"), ("order.id", "SO-1"), ("customer.id", "ACME")])
        );
        assert_eq!(t.names(), "attributes");
    }

    #[test]
    fn a_long_name_is_cut_at_a_character_boundary_and_marked() {
        let limits = Limits {
            max_value_bytes: 1024,
            ..Limits::default()
        };
        let mut a = attrs(&[(&"é".repeat(600), "v"), ("short", "w")]);
        let mut t = Truncated::default();
        limits.cut_attributes(&mut a, |_| false, &mut t);
        assert!(a == attrs(&[(&"é".repeat(512), "v"), ("short", "w")]));
        assert_eq!(t.names(), "name_length");
    }

    #[test]
    fn a_later_duplicate_name_is_dropped_and_marked() {
        let mut a = attrs(&[
            ("service.name", "crm"),
            ("order.id", "SO-1"),
            ("service.name", "erp"),
            ("order.id", "SO-2"),
        ]);
        let mut t = Truncated::default();
        Limits::default().cut_attributes(&mut a, |_| false, &mut t);
        assert_eq!(a, attrs(&[("service.name", "crm"), ("order.id", "SO-1")]));
        assert_eq!(t.names(), "duplicates");

        // Names that are the same once cut are duplicates too.
        let limits = Limits {
            max_value_bytes: 1024,
            ..Limits::default()
        };
        let (one, two) = (
            format!("{}1", "n".repeat(1024)),
            format!("{}2", "n".repeat(1024)),
        );
        let mut a = attrs(&[(&one, "first"), (&two, "second")]);
        let mut t = Truncated::default();
        limits.cut_attributes(&mut a, |_| false, &mut t);
        assert!(a == attrs(&[(&"n".repeat(1024), "first")]));
        assert_eq!(t.names(), "name_length,duplicates");
    }

    #[test]
    fn json_deeper_than_the_limit_becomes_null() {
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        let value = serde_json::json!({"a": {"b": {"c": 1}}, "x": [1, [2]]});
        let mut t = Truncated::default();
        let cut = limits.cut_json(&value, 1, &mut t);
        assert_eq!(cut, serde_json::json!({"a": {"b": null}, "x": [1, null]}));
        assert!(t.contains(Truncated::DEPTH));
    }

    #[test]
    fn the_marker_lists_names_and_parses_back() {
        let mut t = Truncated::default();
        t.add(Truncated::DEPTH);
        t.add(Truncated::ATTRIBUTES);
        assert_eq!(t.names(), "attributes,depth");
        let mut a = attrs(&[("x", "1")]);
        t.mark(&mut a);
        assert_eq!(a.last().unwrap().1, "attributes,depth");
        assert_eq!(Truncated::of(&a), t);
        // A sender's own marker is not believed.
        Truncated::default().mark(&mut a);
        assert_eq!(a, attrs(&[("x", "1")]));
    }

    #[test]
    fn limits_below_their_minimum_are_refused() {
        assert!(Limits::default().validate().is_ok());
        let zero = Limits {
            max_attributes: 0,
            ..Limits::default()
        };
        assert!(zero.validate().unwrap_err().contains("max_attributes"));
        let small = Limits {
            max_value_bytes: 100,
            ..Limits::default()
        };
        assert!(small.validate().unwrap_err().contains("at least 1024"));
        let small_body = Limits {
            max_body_bytes: 10,
            ..Limits::default()
        };
        assert!(small_body
            .validate()
            .unwrap_err()
            .contains("max_body_bytes"));
    }
}
