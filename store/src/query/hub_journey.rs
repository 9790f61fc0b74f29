//! A hub's journey from its own range of the key index (`crate::hubs`):
//! the hub's rows name every key of their records, so one range answers
//! for every key below the hub whose records are all in it. The keys that
//! may have records elsewhere (the caller's `irregular`, and those with a
//! record that reached no hub, `orphan_keys`) are read by their own ranges
//! beside it. A customer with 100 orders reads one range instead of 301.

use std::collections::BTreeSet;

use clickhouse::Row;
use serde::Deserialize;

use super::journey::bind_kinds;
use super::journey_scan::position_identity;
use super::{bind_keys, key_tuple_placeholders, JourneyPosition, JourneyScan};
use crate::rows::KeyIndexRead;
use crate::{Store, StoreError};
use domain::model::BusinessKey;

/// A row of a hub's range: [`KeyIndexRead`] and the record's keys.
#[derive(Debug, Row, Deserialize)]
struct HubRow {
    key_type: String,
    key_value: String,
    time_ns: u64,
    record_kind: String,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    service: String,
    name: String,
    event_source: String,
    event_id: String,
    failed: u8,
    duration_ns: u64,
    outcome: String,
    attempt: u32,
    carried_types: Vec<String>,
    carried_values: Vec<String>,
    linked: u8,
}

impl HubRow {
    /// The rows this one stands for: the hub's own (unless the record was
    /// put under the hub by a link) and one per key of the record within
    /// `keys`; `None` for a row written before the rows named their keys.
    fn expand(&self, keys: &BTreeSet<(&str, &str)>, out: &mut Vec<KeyIndexRead>) -> Option<()> {
        if self.carried_types.is_empty() {
            return None;
        }
        let read = KeyIndexRead {
            key_type: self.key_type.clone(),
            key_value: self.key_value.clone(),
            time_ns: self.time_ns,
            record_kind: self.record_kind.clone(),
            trace_id: self.trace_id,
            span_id: self.span_id,
            service: self.service.clone(),
            name: self.name.clone(),
            event_source: self.event_source.clone(),
            event_id: self.event_id.clone(),
            failed: self.failed,
            duration_ns: self.duration_ns,
            outcome: self.outcome.clone(),
            attempt: self.attempt,
        };
        for (t, v) in self.carried_types.iter().zip(&self.carried_values) {
            let own = *t == read.key_type && *v == read.key_value;
            if !own && keys.contains(&(t.as_str(), v.as_str())) {
                let mut row = read.clone();
                row.key_type = t.clone();
                row.key_value = v.clone();
                out.push(row);
            }
        }
        if self.linked == 0 {
            out.push(read);
        }
        Some(())
    }
}

/// A hub's own range of the key index, read on its own (ahead of the walk
/// that finds the hub's keys: it does not need them).
#[derive(Debug)]
pub struct HubRange {
    rows: Vec<HubRow>,
    /// Every row names its keys, there are no more than asked for, and no
    /// day of the key index predates the hub rows.
    usable: bool,
}

impl HubRange {
    /// The keys the range's records carry (the hub's own among them), for
    /// reads that can start before the walk ends; empty when the range
    /// cannot answer.
    pub fn keys(&self) -> BTreeSet<BusinessKey> {
        if !self.usable {
            return BTreeSet::new();
        }
        self.rows
            .iter()
            .flat_map(|r| r.carried_types.iter().zip(&r.carried_values))
            .map(|(t, v)| BusinessKey::new(t.clone(), v.clone()))
            .collect()
    }
}

impl Store {
    /// The rows of `hub`'s range (at most `max_rows`), and whether they can
    /// answer its journey ([`Store::hub_journey`]).
    pub async fn hub_range(
        &self,
        hub: &BusinessKey,
        max_rows: usize,
    ) -> Result<HubRange, StoreError> {
        let rows = async {
            let query = self
                .query(
                    "SELECT ?fields FROM key_index_v2 \
                     PREWHERE key_type = ? AND key_value = ? WHERE record_kind IN (?, ?) LIMIT ?",
                )
                .bind(hub.key_type.as_str())
                .bind(hub.value.as_str());
            bind_kinds(query)
                .bind(max_rows as u64 + 1)
                .fetch_all::<HubRow>()
                .await
        };
        let (whole, rows) = tokio::try_join!(self.hub_rows_whole(), rows)?;
        let usable =
            whole && rows.len() <= max_rows && rows.iter().all(|r| !r.carried_types.is_empty());
        Ok(HubRange { rows, usable })
    }

    /// The journey of `hub` (`keys`: the hub and the keys below it, as
    /// the walk found them) read from the hub's range ([`Store::hub_range`])
    /// and from the ranges of `irregular` keys and of `keys` with a record
    /// that reached no hub: as [`Store::journey_scan`] answers it from
    /// every key's range. `None` when that answer cannot be had this way:
    /// the range cannot answer (rows written before they named their keys,
    /// or the key index holds days from before that), there are more than
    /// `max_rows` rows, or `after` is no position of this store's.
    #[allow(clippy::too_many_arguments)]
    pub async fn hub_journey(
        &self,
        range: &HubRange,
        hub: &BusinessKey,
        keys: &[&BusinessKey],
        irregular: &[&BusinessKey],
        limit: usize,
        after: Option<&JourneyPosition>,
        max_rows: usize,
    ) -> Result<Option<JourneyScan>, StoreError> {
        let after = match after.map(position_identity) {
            Some(None) => return Ok(None),
            Some(Some(id)) => Some(id),
            None => None,
        };
        if !range.usable {
            return Ok(None);
        }
        let below: Vec<&BusinessKey> = keys.iter().copied().filter(|k| *k != hub).collect();
        let orphans = self.orphans_among(&below).await?;
        let mut read: Vec<&BusinessKey> = irregular.to_vec();
        read.extend(below.iter().copied().filter(|k| orphans.contains(*k)));
        read.sort();
        read.dedup();
        let Some(mut rows) = self.journey_rows(&read, max_rows).await? else {
            return Ok(None);
        };
        let wanted: BTreeSet<(&str, &str)> = keys
            .iter()
            .map(|k| (k.key_type.as_str(), k.value.as_str()))
            .collect();
        for row in &range.rows {
            if row.expand(&wanted, &mut rows).is_none() {
                return Ok(None);
            }
        }
        Ok(Some(JourneyScan::of_rows(rows, limit, after.as_ref())?))
    }

    /// [`Store::hub_range`] and [`Store::hub_journey`] in one.
    pub async fn hub_journey_scan(
        &self,
        hub: &BusinessKey,
        keys: &[&BusinessKey],
        irregular: &[&BusinessKey],
        limit: usize,
        after: Option<&JourneyPosition>,
        max_rows: usize,
    ) -> Result<Option<JourneyScan>, StoreError> {
        let range = self.hub_range(hub, max_rows).await?;
        self.hub_journey(&range, hub, keys, irregular, limit, after, max_rows)
            .await
    }

    /// Which of `keys` a record that reached no hub carried
    /// (`orphan_keys`).
    async fn orphans_among(
        &self,
        keys: &[&BusinessKey],
    ) -> Result<BTreeSet<BusinessKey>, StoreError> {
        if keys.is_empty() {
            return Ok(BTreeSet::new());
        }
        let sql = format!(
            "SELECT DISTINCT key_type, key_value FROM orphan_keys WHERE (key_type, key_value) IN ({})",
            key_tuple_placeholders(keys.len())
        );
        let rows = bind_keys(self.query(&sql), keys)
            .fetch_all::<(String, String)>()
            .await?;
        Ok(rows
            .into_iter()
            .map(|(t, v)| BusinessKey::new(t, v))
            .collect())
    }

    /// Whether every day the key index holds was written with hub rows:
    /// none of the days it held before migration `0020` is left
    /// (`hub_legacy_days`, dropped with them by retention).
    async fn hub_rows_whole(&self) -> Result<bool, StoreError> {
        let legacy = self
            .query("SELECT count() FROM hub_legacy_days")
            .fetch_one::<u64>()
            .await?;
        Ok(legacy == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub_row(key: (&str, &str), carried: &[(&str, &str)], linked: u8) -> HubRow {
        HubRow {
            key_type: key.0.into(),
            key_value: key.1.into(),
            time_ns: 5,
            record_kind: "span".into(),
            trace_id: [1; 16],
            span_id: [2; 8],
            service: "erp".into(),
            name: "n".into(),
            event_source: String::new(),
            event_id: String::new(),
            failed: 0,
            duration_ns: 0,
            outcome: String::new(),
            attempt: 0,
            carried_types: carried.iter().map(|(t, _)| t.to_string()).collect(),
            carried_values: carried.iter().map(|(_, v)| v.to_string()).collect(),
            linked,
        }
    }

    fn keys_of(rows: &[KeyIndexRead]) -> Vec<(String, String)> {
        let mut keys: Vec<_> = rows
            .iter()
            .map(|r| (r.key_type.clone(), r.key_value.clone()))
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn a_hub_row_stands_for_the_rows_of_its_records_keys_within_the_journey() {
        let wanted = BTreeSet::from([("customer", "C"), ("order", "O"), ("work_order", "W")]);
        let mut rows = Vec::new();
        let carried = [("customer", "C"), ("order", "O"), ("region", "R")];
        hub_row(("customer", "C"), &carried, 0)
            .expand(&wanted, &mut rows)
            .unwrap();
        assert_eq!(
            keys_of(&rows),
            [
                ("customer".into(), "C".into()),
                ("order".into(), "O".into())
            ],
            "the hub's own row and the order's; the region is not the journey's"
        );

        let mut rows = Vec::new();
        hub_row(("customer", "C"), &[("work_order", "W")], 1)
            .expand(&wanted, &mut rows)
            .unwrap();
        assert_eq!(
            keys_of(&rows),
            [("work_order".into(), "W".into())],
            "a linked row is not the hub's own record"
        );

        assert!(hub_row(("customer", "C"), &[], 0)
            .expand(&wanted, &mut Vec::new())
            .is_none());
    }
}
