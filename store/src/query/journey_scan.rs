//! A journey of few records read in one scan of its keys' rows: each key's
//! counts, the journey's total and a page, all from the same rows, where
//! [`Store::key_summaries`], [`Store::journey_counts`] and
//! [`Store::journey_page`] would read those rows three times. A journey
//! with more rows than the caller allows is left to them (the scan stops at
//! the limit, so a hub costs at most that many rows here).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::journey::bind_kinds;
use super::{bind_keys, key_tuple_placeholders, JourneyPosition, RecordCounts};
use crate::rows::{KeyIndexRead, RECORD_EVENT, RECORD_SPAN};
use crate::{Store, StoreError};
use domain::feed::JourneyRecord;
use domain::model::BusinessKey;

/// What one scan of a journey's rows answers.
#[derive(Debug)]
pub struct JourneyScan {
    /// Each key of the journey that has records, with its counts.
    pub per_key: Vec<(BusinessKey, RecordCounts)>,
    /// The journey's records, each once.
    pub total: RecordCounts,
    /// The page asked for, newest first, and where the next one starts.
    pub page: Vec<JourneyRecord>,
    pub next: Option<JourneyPosition>,
}

/// A record's identity in the key index: what `LIMIT 1 BY` keeps one row
/// of, in the order the pages sort by (all descending).
pub(crate) type Identity = (u64, String, [u8; 16], [u8; 8], String, String, String);

fn identity(r: &KeyIndexRead) -> Identity {
    (
        r.time_ns,
        r.record_kind.clone(),
        r.trace_id,
        r.span_id,
        r.service.clone(),
        r.event_source.clone(),
        r.event_id.clone(),
    )
}

/// The identity of the record at `p`, for comparing (`None` when the
/// position is not one this store wrote).
pub(crate) fn position_identity(p: &JourneyPosition) -> Option<Identity> {
    fn bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
        let raw: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
            .collect::<Option<_>>()?;
        raw.try_into().ok()
    }
    Some((
        p.time_ns,
        p.kind.clone(),
        bytes::<16>(&p.trace_id)?,
        bytes::<8>(&p.span_id)?,
        p.service.clone(),
        p.source.clone(),
        p.id.clone(),
    ))
}

/// Counts over rows, each record once (as `counts_sql` counts them).
#[derive(Default)]
struct Tally {
    spans: HashSet<([u8; 16], [u8; 8], String)>,
    events: HashSet<(String, String)>,
    failures: HashSet<Identity>,
    first_ns: Option<u64>,
    last_ns: u64,
}

impl Tally {
    fn add(&mut self, r: &KeyIndexRead) {
        if r.record_kind == RECORD_SPAN {
            self.spans
                .insert((r.trace_id, r.span_id, r.service.clone()));
        } else if r.record_kind == RECORD_EVENT {
            self.events
                .insert((r.event_source.clone(), r.event_id.clone()));
        }
        if r.failed == 1 {
            // Counted by identity without the time, as `counts_sql` does.
            let mut id = identity(r);
            id.0 = 0;
            self.failures.insert(id);
        }
        self.first_ns = Some(self.first_ns.map_or(r.time_ns, |f| f.min(r.time_ns)));
        self.last_ns = self.last_ns.max(r.time_ns);
    }

    fn counts(&self) -> RecordCounts {
        RecordCounts {
            spans: self.spans.len() as u64,
            events: self.events.len() as u64,
            failures: self.failures.len() as u64,
            first_ns: self.first_ns.unwrap_or(0),
            last_ns: self.last_ns,
        }
    }
}

impl Store {
    /// Reads every key index row of `keys` once and answers the journey's
    /// counts and the page after `after` (newest first, `limit` records)
    /// from them; `None` when there are more than `max_rows` rows (then the
    /// per-query reads answer), or when `after` is no position of this
    /// store's.
    pub async fn journey_scan(
        &self,
        keys: &[&BusinessKey],
        limit: usize,
        after: Option<&JourneyPosition>,
        max_rows: usize,
    ) -> Result<Option<JourneyScan>, StoreError> {
        if keys.is_empty() {
            return Ok(Some(JourneyScan {
                per_key: Vec::new(),
                total: RecordCounts::default(),
                page: Vec::new(),
                next: None,
            }));
        }
        // A position this store did not write is the per-query reads' to
        // answer (as they always have).
        let after = match after.map(position_identity) {
            Some(None) => return Ok(None),
            Some(Some(id)) => Some(id),
            None => None,
        };
        let Some(rows) = self.journey_rows(keys, max_rows).await? else {
            return Ok(None);
        };
        Ok(Some(JourneyScan::of_rows(rows, limit, after.as_ref())?))
    }

    /// Every key index row of `keys` (each key's own: not the rows under a
    /// hub that a record does not carry); `None` when there are more than
    /// `max_rows`.
    pub(crate) async fn journey_rows(
        &self,
        keys: &[&BusinessKey],
        max_rows: usize,
    ) -> Result<Option<Vec<KeyIndexRead>>, StoreError> {
        if keys.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let sql = format!(
            "SELECT ?fields FROM key_index_v2 \
             PREWHERE (key_type, key_value) IN ({}) WHERE record_kind IN (?, ?) AND linked = 0 \
             LIMIT ?",
            key_tuple_placeholders(keys.len())
        );
        let rows = bind_kinds(bind_keys(self.query(&sql), keys))
            .bind(max_rows as u64 + 1)
            .fetch_all::<KeyIndexRead>()
            .await?;
        Ok((rows.len() <= max_rows).then_some(rows))
    }
}

impl JourneyScan {
    /// The counts and the page after `after` (newest first, `limit`
    /// records) of a journey's key index rows: one row per record and key
    /// of the journey, in any order, repeats allowed (a redelivery, or one
    /// row read twice).
    pub(crate) fn of_rows(
        rows: Vec<KeyIndexRead>,
        limit: usize,
        after: Option<&Identity>,
    ) -> Result<JourneyScan, StoreError> {
        let mut per_key: BTreeMap<(String, String), Tally> = BTreeMap::new();
        let mut total = Tally::default();
        for r in &rows {
            per_key
                .entry((r.key_type.clone(), r.key_value.clone()))
                .or_default()
                .add(r);
            total.add(r);
        }
        let per_key = per_key
            .into_iter()
            .map(|((t, v), tally)| (BusinessKey::new(t, v), tally.counts()))
            .collect();
        let total = total.counts();

        // The page: one row per record, newest first, after `after`.
        // Each record once, with its keys within the journey (its rows').
        let mut records: BTreeMap<Reverse<Identity>, (KeyIndexRead, BTreeSet<BusinessKey>)> =
            BTreeMap::new();
        for r in rows {
            let id = identity(&r);
            if after.is_some_and(|a| &id >= a) {
                continue;
            }
            let key = BusinessKey::new(r.key_type.clone(), r.key_value.clone());
            records
                .entry(Reverse(id))
                .or_insert_with(|| (r, BTreeSet::new()))
                .1
                .insert(key);
        }
        let more = records.len() > limit;
        let page: Vec<(KeyIndexRead, BTreeSet<BusinessKey>)> =
            records.into_values().take(limit).collect();
        let next = if more {
            page.last().map(|(r, _)| {
                JourneyPosition::of(
                    r.time_ns,
                    &r.record_kind,
                    &r.trace_id,
                    &r.span_id,
                    &r.service,
                    &r.event_source,
                    &r.event_id,
                )
            })
        } else {
            None
        };
        Ok(JourneyScan {
            per_key,
            total,
            page: page
                .into_iter()
                .map(|(r, keys)| r.journey(keys.into_iter().collect()))
                .collect::<Result<_, _>>()?,
            next,
        })
    }
}
