//! `GET /api/v1/keys/{type}/{value}` and the key page: a business key, the
//! keys linked to it (transitively), a summary per key (records, failures,
//! first and last time, the instances rooted at it), and the journey (the
//! records of the key and of the linked keys below it: a customer's orders
//! and their work orders) one page at a time, newest first.
//!
//! Everything here reads the key index and the key links by their sort
//! keys; the span and event tables are read by trace (`traces`), never for
//! a key, so a hub key (a customer with hundreds of orders) costs its
//! summary and one page, not all its spans.

use domain::feed::JourneyRecord;
use domain::keys::{BadKeyValue, KeyTypes};
use domain::model::BusinessKey;
use std::collections::BTreeSet;

use domain::instance::InstanceRecord;
use store::query::{
    HubRange, JourneyPosition, KeyLookupLimits, LinkedKey, RecordCounts, Relation, Walk,
};

use super::view;
use super::view::InstanceView;
use super::Reads;
use crate::error::AppError;

/// What is known about one business key apart from its records: the keys
/// linked to it, the keys whose records make its journey (itself and the
/// keys below it), and the process instances it takes part in.
pub struct Journey {
    pub key: BusinessKey,
    pub linked: Vec<LinkedKey>,
    /// The key itself and the linked keys below it, not the parents' other
    /// children.
    pub keys: Vec<BusinessKey>,
    /// The (process, root value) of every instance it may take part in.
    pub roots: Vec<(String, String)>,
    /// More keys are linked than one lookup follows.
    pub truncated: bool,
    /// The keys of the journey that may have records outside the key's
    /// own range, when the key is a hub ([`store::HubTypes`]) and the walk
    /// read every journey key's links; `None` otherwise. See
    /// [`irregular_keys`].
    pub irregular: Option<Vec<BusinessKey>>,
    /// For a hub: its own range and the instances of the roots its records
    /// name, read beside the walk.
    pub early: Option<Early>,
}

/// What a hub's lookup reads before its walk has ended: the hub's range
/// does not depend on the walk, nor do the instances of the keys it names.
pub struct Early {
    range: HubRange,
    roots: BTreeSet<(String, String)>,
    instances: Vec<InstanceRecord>,
}

/// A key value from a URL, checked and trimmed by the rule the receivers
/// take keys by ([`domain::keys::check_key_value`]): 1 to MAX_KEY_LEN bytes,
/// no control characters or bidi controls. So any key stored can be looked
/// up, and a lookup that could find nothing says why.
pub fn check_key_value(value: &str) -> Result<&str, AppError> {
    domain::keys::check_key_value(value).map_err(|e| match e {
        BadKeyValue::Length(_) => AppError::BadRequest(e.to_string()),
        BadKeyValue::Unprintable(e) => {
            AppError::BadRequest(format!("the key value {} {e}", super::shown(value)))
        }
    })
}

/// A key from a path, checked: a known type, a value as [`check_key_value`]
/// wants it.
pub fn parse_key(state: &Reads, key_type: &str, value: &str) -> Result<BusinessKey, AppError> {
    if state.keys.rank(key_type).is_none() {
        return Err(AppError::BadRequest(format!(
            "unknown key type {}; known types: {}",
            super::shown(key_type),
            state.keys.names().join(", ")
        )));
    }
    Ok(BusinessKey::new(key_type, check_key_value(value)?))
}

/// The journey of `key`: the linked keys, and which instances it may take
/// part in; the caller reads the instances ([`instances`]) and the records
/// (full spans and events for the API, key index rows for the page), side by
/// side.
pub async fn journey(state: &Reads, key: BusinessKey) -> Result<Journey, AppError> {
    let limits = KeyLookupLimits::default();
    let is_hub = store::HubTypes::of(&state.keys).is_hub(&key.key_type);
    let (walk, early) = tokio::try_join!(
        async { Ok::<_, AppError>(state.store.walk(&key, &state.keys, limits).await?) },
        async {
            if !is_hub {
                return Ok(None);
            }
            let range = state.store.hub_range(&key, SCAN_ROWS).await?;
            let roots = roots_of(state, range.keys().iter());
            let instances = state.store.instances_of(&roots).await?;
            Ok(Some(Early {
                range,
                roots: roots.into_iter().collect(),
                instances,
            }))
        },
    )?;
    let irregular = irregular_keys(&state.keys, &key, &walk);
    let (linked, truncated) = (walk.linked, walk.truncated);
    // A key with a link has been seen (on the records that linked it); only
    // a key without any costs the second read.
    if linked.is_empty() && !state.store.key_seen(&key).await? {
        return Err(AppError::NotFound(format!(
            "no span, event or link has carried {} `{}`",
            key.key_type, key.value
        )));
    }
    let keys: Vec<BusinessKey> = std::iter::once(key.clone())
        .chain(
            linked
                .iter()
                .filter(|l| l.relation != Relation::Parent)
                .map(|l| l.key.clone()),
        )
        .collect();
    // The process instances the key takes part in: those rooted at it or at
    // a key of the root type linked to it.
    let roots = roots_of(
        state,
        std::iter::once(&key).chain(linked.iter().map(|l| &l.key)),
    );
    Ok(Journey {
        key,
        linked,
        keys,
        roots,
        truncated,
        irregular,
        early,
    })
}

/// The (process, root value) of each instance `keys` may be roots of.
fn roots_of<'a>(
    state: &Reads,
    keys: impl Iterator<Item = &'a BusinessKey>,
) -> Vec<(String, String)> {
    let keys: Vec<&BusinessKey> = keys.collect();
    state
        .processes
        .list
        .iter()
        .flat_map(|def| {
            keys.iter()
                .filter(|k| k.key_type == def.key_type)
                .map(|k| (def.id.clone(), k.value.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// When `key` is a hub and the walk is whole, the keys below it whose
/// records its own range may not hold all of (`store::hubs` gives the
/// rule): keys of a hub type, keys whose links were not all read, and keys
/// linked to any key as coarse as a hub other than `key` (or of a type
/// this configuration does not know: a collector configured with another
/// hub type would not have put their records under `key`). `None` when the
/// hub's range cannot answer at all.
fn irregular_keys(types: &KeyTypes, key: &BusinessKey, walk: &Walk) -> Option<Vec<BusinessKey>> {
    let hubs = store::HubTypes::of(types);
    if !hubs.is_hub(&key.key_type) || walk.truncated {
        return None;
    }
    let hub_rank = types.rank(&key.key_type);
    let coarse = |k: &BusinessKey| types.rank(&k.key_type).is_none_or(|r| Some(r) <= hub_rank);
    Some(
        walk.linked
            .iter()
            .filter(|l| l.relation != Relation::Parent)
            .map(|l| &l.key)
            .filter(|k| {
                hubs.is_hub(&k.key_type)
                    || walk
                        .neighbours
                        .get(*k)
                        .is_none_or(|n| !n.iter().filter(|h| coarse(h)).eq(std::iter::once(key)))
            })
            .cloned()
            .collect(),
    )
}

/// One key of a journey and what the key index holds of it.
pub struct KeySummary {
    pub key: BusinessKey,
    /// How it was reached; `None` for the key looked up.
    pub link: Option<LinkedKey>,
    /// The records carrying this key (not those of the keys below it).
    pub counts: RecordCounts,
    /// The instances rooted at this key: `(process id, status)`.
    pub instances: Vec<(String, String)>,
}

/// A journey at a glance: each key's summary, the whole journey's counts
/// (what the pages of records add up to) and the instances.
pub struct Summary {
    /// The key looked up first, then the linked keys in the walk's order.
    pub keys: Vec<KeySummary>,
    /// The records of the journey (the key and the keys below it), each once.
    pub total: RecordCounts,
    pub instances: Vec<InstanceView>,
}

/// Rows of the key index a journey may have to be read in one scan
/// ([`store::query::JourneyScan`]); a larger one (a hub's) is read by a
/// query per answer, each bounded by what it returns.
const SCAN_ROWS: usize = 20_000;

/// A journey's summary and one page of its records (newest first, after
/// `after` when given; and where the next page starts). The journey's own
/// keys are read once for their counts, the total and the page when they
/// have few rows; the parents (a work order's order and customer), whose
/// records are not the journey's, only for their counts; the instances
/// beside them.
pub async fn summary_and_records(
    state: &Reads,
    j: &Journey,
    limit: usize,
    after: Option<&JourneyPosition>,
) -> Result<(Summary, Vec<JourneyRecord>, Option<JourneyPosition>), AppError> {
    let journey_keys: Vec<&BusinessKey> = j.keys.iter().collect();
    let parents: Vec<&BusinessKey> = j
        .linked
        .iter()
        .filter(|l| l.relation == Relation::Parent)
        .map(|l| &l.key)
        .collect();
    let (scan, parent_counts, instances) = tokio::try_join!(
        async {
            // A hub's journey from its own range where it is whole, else
            // from each key's.
            if let (Some(irregular), Some(early)) = (&j.irregular, &j.early) {
                let irregular: Vec<&BusinessKey> = irregular.iter().collect();
                let scan = state
                    .store
                    .hub_journey(
                        &early.range,
                        &j.key,
                        &journey_keys,
                        &irregular,
                        limit,
                        after,
                        SCAN_ROWS,
                    )
                    .await?;
                if scan.is_some() {
                    return Ok::<_, AppError>(scan);
                }
            }
            Ok::<_, AppError>(
                state
                    .store
                    .journey_scan(&journey_keys, limit, after, SCAN_ROWS)
                    .await?,
            )
        },
        async { Ok(state.store.key_summaries(&parents).await?) },
        instances_after(state, &j.roots, j.early.as_ref()),
    )?;
    let (mut per_key, total, page, next) = match scan {
        Some(scan) => (scan.per_key, scan.total, scan.page, scan.next),
        None => {
            let (per_key, total, (page, next)) = tokio::try_join!(
                state.store.key_summaries(&journey_keys),
                state.store.journey_counts(&journey_keys),
                state.store.journey_page(&journey_keys, limit, after),
            )?;
            (per_key, total, page, next)
        }
    };
    per_key.extend(parent_counts);
    Ok((assemble(j, &per_key, total, instances), page, next))
}

/// The summary from each key's counts, the journey's total and the
/// instances.
fn assemble(
    j: &Journey,
    per_key: &[(BusinessKey, RecordCounts)],
    total: RecordCounts,
    instances: Vec<InstanceView>,
) -> Summary {
    let counts = |key: &BusinessKey| {
        per_key
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, c)| *c)
            .unwrap_or_default()
    };
    let rooted = |key: &BusinessKey| {
        instances
            .iter()
            .filter(|i| i.key.key_type == key.key_type && i.key.value == key.value)
            .map(|i| (i.process.clone(), i.status.clone()))
            .collect::<Vec<_>>()
    };
    let keys = std::iter::once(KeySummary {
        key: j.key.clone(),
        link: None,
        counts: counts(&j.key),
        instances: rooted(&j.key),
    })
    .chain(j.linked.iter().map(|l| KeySummary {
        key: l.key.clone(),
        link: Some(l.clone()),
        counts: counts(&l.key),
        instances: rooted(&l.key),
    }))
    .collect();
    Summary {
        keys,
        total,
        instances,
    }
}

/// The process instances of these roots, those read already (`early`)
/// taken from there, with each SLA's state now.
async fn instances_after(
    state: &Reads,
    roots: &[(String, String)],
    early: Option<&Early>,
) -> Result<Vec<InstanceView>, AppError> {
    let Some(early) = early else {
        return instances(state, roots).await;
    };
    let wanted: BTreeSet<(&str, &str)> = roots
        .iter()
        .map(|(p, r)| (p.as_str(), r.as_str()))
        .collect();
    let mut rows: Vec<InstanceRecord> = early
        .instances
        .iter()
        .filter(|i| wanted.contains(&(i.process_id.as_str(), i.root_value.as_str())))
        .cloned()
        .collect();
    let missing: Vec<(String, String)> = roots
        .iter()
        .filter(|r| !early.roots.contains(*r))
        .cloned()
        .collect();
    rows.extend(state.store.instances_of(&missing).await?);
    rows.sort_by_key(|r| r.start_ns);
    Ok(views(state, &rows))
}

/// The process instances of these roots, with each SLA's state now.
pub async fn instances(
    state: &Reads,
    roots: &[(String, String)],
) -> Result<Vec<InstanceView>, AppError> {
    let rows = state.store.instances_of(roots).await?;
    Ok(views(state, &rows))
}

fn views(state: &Reads, rows: &[InstanceRecord]) -> Vec<InstanceView> {
    let now = domain::now_ns();
    rows.iter()
        .filter_map(|row| {
            Some(view::instance(
                state.processes.get(&row.process_id)?,
                row,
                now,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn key(t: &str, v: &str) -> BusinessKey {
        BusinessKey::new(t, v)
    }

    fn child(k: &BusinessKey, via: &BusinessKey, depth: u32) -> LinkedKey {
        LinkedKey {
            key: k.clone(),
            relation: Relation::Child,
            via: via.clone(),
            depth,
        }
    }

    #[test]
    fn keys_with_another_or_no_hub_are_read_by_their_own_ranges() {
        let types = KeyTypes::default();
        let c = key("customer", "C");
        let (o1, o2, w1, w2, w3) = (
            key("order", "O-1"),
            key("order", "O-2"),
            key("work_order", "W-1"),
            key("work_order", "W-2"),
            key("work_order", "W-3"),
        );
        let set = |keys: &[&BusinessKey]| keys.iter().map(|k| (*k).clone()).collect();
        let walk = Walk {
            linked: vec![
                child(&o1, &c, 1),
                child(&o2, &c, 1),
                child(&w1, &c, 1),
                child(&w2, &o1, 2),
                child(&w3, &o1, 2),
            ],
            truncated: false,
            neighbours: BTreeMap::from([
                (c.clone(), set(&[&o1, &o2, &w1])),
                (o1.clone(), set(&[&c, &w1, &w2, &w3])),
                // Shared with another customer.
                (o2.clone(), set(&[&c, &key("customer", "C-2")])),
                (w1.clone(), set(&[&c, &o1])),
                // Never seen with a customer.
                (w2.clone(), set(&[&o1])),
                // Linked to a coarse key of a type this configuration
                // does not know.
            ]),
        };
        let mut with_unknown = walk.clone();
        with_unknown
            .neighbours
            .insert(w3.clone(), set(&[&c, &o1, &key("plant", "P-1")]));
        assert_eq!(
            irregular_keys(&types, &c, &with_unknown),
            Some(vec![o2.clone(), w2.clone(), w3.clone()])
        );
        // W-3's links not read whole (the walk's last depth): its own range.
        assert_eq!(
            irregular_keys(&types, &c, &walk),
            Some(vec![o2.clone(), w2.clone(), w3.clone()])
        );
        let mut regular = with_unknown.clone();
        regular.neighbours.insert(w3.clone(), set(&[&c, &o1]));
        assert_eq!(irregular_keys(&types, &c, &regular), Some(vec![o2, w2]));

        // Not a hub, or a walk cut short: no hub read at all.
        assert_eq!(irregular_keys(&types, &o1, &regular), None);
        let mut cut = regular;
        cut.truncated = true;
        assert_eq!(irregular_keys(&types, &c, &cut), None);
    }
}
