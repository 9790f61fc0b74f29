//! Hub rows: a hub's journey (a customer's records, and those of its orders
//! and work orders) kept in one range of the key index, so that a lookup of
//! a customer with 100 orders reads one range and not a granule of each of
//! its 301 keys in every part (issue 16).
//!
//! A hub is a key of the coarsest configured type ([`HubTypes`]). Two kinds
//! of rows put a record in a hub's range:
//! - the record carries the hub key: its row of that key names all the
//!   record's keys (`carried_types`, `carried_values`);
//! - the record carries no hub key at all (an ERP event naming only its
//!   work order): when it is written, each of its keys linked to exactly
//!   one hub puts a row of the record under that hub (`linked = 1`, with
//!   all its keys). A key linked to no hub then is written to `orphan_keys`
//!   for the record's day; a key linked to two hubs is read by its own
//!   range at lookup anyway (see `query::hub_journey`).
//!
//! The rule a lookup relies on: every record of a key `k` whose only hub
//! is `h` and which is not in `orphan_keys` is in `h`'s range. A record
//! carrying `k` and a hub carries `h` (it would have linked `k` to a second
//! hub otherwise); one carrying no hub was written under `h`, or under no
//! hub and then `k` is an orphan, or `k` had a second hub then, which the
//! links still show.

use std::collections::{BTreeSet, HashMap, HashSet};

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use crate::query::bind_keys;
use crate::{Store, StoreError};
use domain::keys::KeyTypes;
use domain::model::BusinessKey;

/// Migration `0020`'s fill: the days the key index held before its rows
/// named their keys.
pub(crate) const LEGACY_DAYS: &[crate::migrate::DayFill] = &[crate::migrate::DayFill {
    target: "hub_legacy_days",
    day_of: "day",
    days: "SELECT DISTINCT toString(toDate(time)) AS day FROM key_index_v2",
    insert: "INSERT INTO hub_legacy_days (day) SELECT toDate(?)",
    pieces: 1,
}];

/// Keys per statement when looking up the hubs of a batch's keys.
const LOOKUP_CHUNK: usize = 1000;

/// The key types that are hubs: the coarsest configured
/// ([`KeyTypes::coarsest`]), `customer` by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubTypes(Vec<String>);

impl HubTypes {
    pub fn new<S: Into<String>>(types: impl IntoIterator<Item = S>) -> Self {
        HubTypes(types.into_iter().map(Into::into).collect())
    }

    /// The hubs of a key configuration: its coarsest types.
    pub fn of(keys: &KeyTypes) -> Self {
        Self::new(keys.coarsest())
    }

    pub fn is_hub(&self, key_type: &str) -> bool {
        self.0.iter().any(|t| t == key_type)
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// A record that carries keys, none of them a hub's: it is in a hub's
    /// range only through rows written under the hubs its keys lead to.
    pub fn without_hub(&self, keys: &[BusinessKey]) -> bool {
        !keys.is_empty() && !keys.iter().any(|k| self.is_hub(&k.key_type))
    }
}

impl Default for HubTypes {
    fn default() -> Self {
        Self::of(&KeyTypes::default())
    }
}

/// The hubs each key of a batch's hub-less records is linked to (at most
/// two: a key with two is no hub's alone).
#[derive(Debug, Default)]
pub(crate) struct HubLinks {
    of: HashMap<BusinessKey, BTreeSet<BusinessKey>>,
}

impl HubLinks {
    fn add(&mut self, key: &BusinessKey, hub: &BusinessKey) {
        let hubs = self.of.entry(key.clone()).or_default();
        if hubs.len() < 2 {
            hubs.insert(hub.clone());
        }
    }

    /// The hubs a record without a hub key is written under: each that is
    /// the only hub of one of its keys.
    pub(crate) fn sole_hubs<'a>(&'a self, keys: &[BusinessKey]) -> BTreeSet<&'a BusinessKey> {
        keys.iter()
            .filter_map(|k| {
                let hubs = self.of.get(k)?;
                (hubs.len() == 1).then(|| hubs.iter().next()).flatten()
            })
            .collect()
    }

    /// The keys of a hub-less record that lead to no hub.
    pub(crate) fn orphans<'a>(
        &'a self,
        keys: &'a [BusinessKey],
    ) -> impl Iterator<Item = &'a BusinessKey> + 'a {
        keys.iter()
            .filter(|k| self.of.get(*k).is_none_or(|h| h.is_empty()))
    }
}

/// A key carried by a record that reached no hub, for the record's day.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Row, Serialize, Deserialize)]
pub(crate) struct OrphanKeyRow {
    pub key_type: String,
    pub key_value: String,
    /// Days since 1970-01-01 (ClickHouse `Date`).
    pub day: u16,
}

impl OrphanKeyRow {
    pub(crate) fn new(key: &BusinessKey, time_ns: u64) -> Self {
        OrphanKeyRow {
            key_type: key.key_type.clone(),
            key_value: key.value.clone(),
            day: (time_ns / 86_400_000_000_000).min(u16::MAX as u64) as u16,
        }
    }
}

#[derive(Debug, Row, Deserialize)]
struct HubLinkRow {
    key_type: String,
    key_value: String,
    linked_type: String,
    linked_value: String,
}

impl Store {
    /// The hubs that `keys` (the keys of a batch's hub-less records) are
    /// linked to: by the links stored, and by `records` (every record's
    /// keys in the batch, whose links are being written beside).
    pub(crate) async fn hub_links<'a>(
        &self,
        keys: &HashSet<&BusinessKey>,
        records: impl Iterator<Item = &'a [BusinessKey]>,
    ) -> Result<HubLinks, StoreError> {
        let mut links = HubLinks::default();
        if keys.is_empty() || self.hubs.names().is_empty() {
            return Ok(links);
        }
        for record in records {
            for hub in record.iter().filter(|k| self.hubs.is_hub(&k.key_type)) {
                for key in record.iter().filter(|k| keys.contains(k)) {
                    links.add(key, hub);
                }
            }
        }
        let keys: Vec<&BusinessKey> = keys.iter().copied().collect();
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            let sql = format!(
                "SELECT key_type, key_value, linked_type, linked_value FROM key_links_v2 \
                 WHERE (key_type, key_value) IN ({}) AND linked_type IN ({}) \
                 GROUP BY key_type, key_value, linked_type, linked_value \
                 LIMIT 2 BY key_type, key_value",
                crate::query::key_tuple_placeholders(chunk.len()),
                vec!["?"; self.hubs.names().len()].join(", ")
            );
            let mut query = bind_keys(self.query(&sql), chunk);
            for hub in self.hubs.names() {
                query = query.bind(hub.as_str());
            }
            for row in query.fetch_all::<HubLinkRow>().await? {
                links.add(
                    &BusinessKey::new(row.key_type, row.key_value),
                    &BusinessKey::new(row.linked_type, row.linked_value),
                );
            }
        }
        Ok(links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &str, v: &str) -> BusinessKey {
        BusinessKey::new(t, v)
    }

    #[test]
    fn the_coarsest_types_are_the_hubs() {
        assert_eq!(HubTypes::default().names(), ["customer"]);
        let hubs = HubTypes::default();
        assert!(hubs.without_hub(&[key("order", "O-1")]));
        assert!(!hubs.without_hub(&[key("order", "O-1"), key("customer", "C-1")]));
        assert!(!hubs.without_hub(&[]));
    }

    #[test]
    fn a_record_goes_under_each_hub_that_is_one_of_its_keys_only_hub() {
        let mut links = HubLinks::default();
        let (c1, c2) = (key("customer", "C-1"), key("customer", "C-2"));
        let (o1, w1, o2, w9) = (
            key("order", "O-1"),
            key("work_order", "W-1"),
            key("order", "O-2"),
            key("work_order", "W-9"),
        );
        links.add(&o1, &c1);
        links.add(&w1, &c1);
        links.add(&o2, &c1);
        links.add(&o2, &c2);
        links.add(&o2, &key("customer", "C-3"));
        assert_eq!(links.of[&o2].len(), 2, "two hubs are as good as many");
        let record = [o1.clone(), w1.clone(), o2.clone(), w9.clone()];
        assert_eq!(links.sole_hubs(&record), BTreeSet::from([&c1]));
        assert_eq!(links.orphans(&record).collect::<Vec<_>>(), [&w9]);
    }
}
