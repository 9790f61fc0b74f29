//! The keys linked to a key: its direct links and the walk through them
//! (down to finer keys, up to coarser ones), each level one read of the
//! keys' ranges of `key_links_v2`.
use std::collections::{BTreeMap, BTreeSet};

use clickhouse::Row;
use serde::Deserialize;

use super::{bind_keys, key_tuple_placeholders};
use crate::timeout::Statement;
use crate::{Store, StoreError};
use domain::keys::KeyTypes;
use domain::model::BusinessKey;

/// How a linked key relates to the key looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Relation {
    /// Coarser: the customer of an order, the order of a work order.
    Parent,
    /// Finer: the orders of a customer, the work orders of an order.
    Child,
    /// Same rank, seen together (an order known under two numbers).
    Peer,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Parent => "parent",
            Relation::Child => "child",
            Relation::Peer => "peer",
        }
    }
}

/// A key reached from the one looked up, and the key it was reached through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedKey {
    pub key: BusinessKey,
    pub relation: Relation,
    pub via: BusinessKey,
    /// Links followed from the key looked up: 1 for a direct link.
    pub depth: u32,
}

/// Bounds on one key lookup, so a hub key (a customer with 100k orders) answers
/// quickly with a truncated list instead of never.
#[derive(Debug, Clone, Copy)]
pub struct KeyLookupLimits {
    pub max_depth: u32,
    pub max_keys: usize,
    pub max_spans: usize,
}

impl Default for KeyLookupLimits {
    fn default() -> Self {
        Self {
            max_depth: 6,
            max_keys: 500,
            max_spans: 2000,
        }
    }
}

#[derive(Debug, Row, Deserialize)]
struct LinkRow {
    key_type: String,
    key_value: String,
    linked_type: String,
    linked_value: String,
}

/// Which way a walk through the links goes from a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// Each key's linked keys, from link rows.
fn link_map(rows: Vec<LinkRow>) -> BTreeMap<BusinessKey, BTreeSet<BusinessKey>> {
    let mut out: BTreeMap<BusinessKey, BTreeSet<BusinessKey>> = BTreeMap::new();
    for row in rows {
        out.entry(BusinessKey::new(row.key_type, row.key_value))
            .or_default()
            .insert(BusinessKey::new(row.linked_type, row.linked_value));
    }
    out
}

/// What [`Store::walk`] found.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    /// The keys linked to the start, in the walk's order.
    pub linked: Vec<LinkedKey>,
    /// `limits` cut the walk short.
    pub truncated: bool,
    /// Every key of the walk whose links were all read (the start and the
    /// keys reached going down, not those at the last depth), with them.
    pub neighbours: BTreeMap<BusinessKey, BTreeSet<BusinessKey>>,
}

impl Store {
    /// Has this key been seen on any record or link?
    pub async fn key_seen(&self, key: &BusinessKey) -> Result<bool, StoreError> {
        let count = self.key_seen_count(key).fetch_one::<u64>().await?;
        Ok(count > 0)
    }

    /// The records and links of this key, counted: a `UInt64` on every
    /// release. Current ones make a scalar subquery `Nullable`, which the
    /// RowBinary reader would read a byte off (`ifNull` keeps it plain).
    pub(crate) fn key_seen_count(&self, key: &BusinessKey) -> Statement {
        self.query(
            "SELECT ifNull((SELECT count() FROM key_index_v2 WHERE key_type = ? AND key_value = ?), 0) \
             + ifNull((SELECT count() FROM key_links_v2 WHERE key_type = ? AND key_value = ?), 0)",
        )
        .bind(key.key_type.as_str())
        .bind(key.value.as_str())
        .bind(key.key_type.as_str())
        .bind(key.value.as_str())
    }

    /// Which of `types` have a key with this exact value (for search).
    pub async fn key_types_with_value(
        &self,
        types: &[&str],
        value: &str,
    ) -> Result<Vec<String>, StoreError> {
        if types.is_empty() {
            return Ok(Vec::new());
        }
        let list = vec!["?"; types.len()].join(", ");
        let sql = format!(
            "SELECT key_type FROM ( \
               SELECT DISTINCT key_type FROM key_index_v2 WHERE key_type IN ({list}) AND key_value = ? \
               UNION ALL \
               SELECT DISTINCT key_type FROM key_links_v2 WHERE key_type IN ({list}) AND key_value = ? \
             ) GROUP BY key_type ORDER BY key_type"
        );
        let mut query = self.query(&sql);
        for _ in 0..2 {
            for t in types {
                query = query.bind(*t);
            }
            query = query.bind(value);
        }
        query.fetch_all::<String>().await
    }

    /// The keys linked directly to each of `keys`.
    pub async fn direct_links(
        &self,
        keys: &[&BusinessKey],
    ) -> Result<BTreeMap<BusinessKey, BTreeSet<BusinessKey>>, StoreError> {
        let whole: Vec<(&BusinessKey, Option<&[String]>)> =
            keys.iter().map(|k| (*k, None)).collect();
        self.direct_links_at_most(&whole, u32::MAX as usize).await
    }

    /// The keys linked directly to each of `keys`, at most `per_key` of
    /// each: the keys' ranges of `key_links`, by its sort key. A key given
    /// with `Some(types)` reads only its links to those types (the narrower
    /// ranges `(key, linked_type)` of the sort key: a walk up from an order
    /// to its customer does not read the customer's hundred orders).
    async fn direct_links_at_most(
        &self,
        keys: &[(&BusinessKey, Option<&[String]>)],
        per_key: usize,
    ) -> Result<BTreeMap<BusinessKey, BTreeSet<BusinessKey>>, StoreError> {
        let whole: Vec<&BusinessKey> = keys
            .iter()
            .filter(|(_, types)| types.is_none())
            .map(|(k, _)| *k)
            .collect();
        let typed: Vec<(&BusinessKey, &String)> = keys
            .iter()
            .filter_map(|(k, types)| Some(types.as_ref()?.iter().map(move |t| (*k, t))))
            .flatten()
            .collect();
        if whole.is_empty() && typed.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut ranges = Vec::new();
        if !whole.is_empty() {
            ranges.push(format!(
                "(key_type, key_value) IN ({})",
                key_tuple_placeholders(whole.len())
            ));
        }
        if !typed.is_empty() {
            ranges.push(format!(
                "(key_type, key_value, linked_type) IN ({})",
                vec!["(?, ?, ?)"; typed.len()].join(", ")
            ));
        }
        let sql = format!(
            "SELECT key_type, key_value, linked_type, linked_value FROM key_links_v2 \
             WHERE {} \
             GROUP BY key_type, key_value, linked_type, linked_value \
             LIMIT ? BY key_type, key_value",
            ranges.join(" OR ")
        );
        let mut query = bind_keys(self.query(&sql), &whole);
        for (key, linked_type) in &typed {
            query = query
                .bind(key.key_type.as_str())
                .bind(key.value.as_str())
                .bind(linked_type.as_str());
        }
        let rows = query.bind(per_key as u64).fetch_all::<LinkRow>().await?;
        Ok(link_map(rows))
    }

    /// The links of `start` and of each key linked to it, at most
    /// `per_key` of each, in one read: the second level as the walk of
    /// [`Store::linked_keys`] reads it (a key coarser than `start` only its
    /// links to coarser types still, the others all theirs). An order's
    /// walk is then one read instead of two, a customer's two instead of
    /// three. (`key_type = ? AND key_value = ?`, not `(key_type, key_value)
    /// = (?, ?)`: 18.16 uses no index for a tuple equality, and the OR then
    /// read the whole table.)
    async fn two_levels(
        &self,
        start: &BusinessKey,
        types: &KeyTypes,
        per_key: usize,
    ) -> Result<BTreeMap<BusinessKey, BTreeSet<BusinessKey>>, StoreError> {
        let names: Vec<&str> = types.names();
        let ranks: Vec<u8> = names
            .iter()
            .map(|n| types.rank(n).unwrap_or(u8::MAX))
            .collect();
        let start_rank = types.rank(&start.key_type).unwrap_or(u8::MAX);
        // Unknown types (dropped from the config since) rank as the finest.
        let rows = self
            .query(
                "SELECT key_type, key_value, linked_type, linked_value FROM key_links_v2 \
                 WHERE (key_type = ? AND key_value = ?) \
                    OR ((key_type, key_value) IN ( \
                          SELECT linked_type, linked_value FROM key_links_v2 \
                          WHERE key_type = ? AND key_value = ?) \
                        AND (transform(key_type, ?, ?, 255) >= ? \
                             OR transform(linked_type, ?, ?, 255) < transform(key_type, ?, ?, 255))) \
                 GROUP BY key_type, key_value, linked_type, linked_value \
                 LIMIT ? BY key_type, key_value",
            )
            .bind(start.key_type.as_str())
            .bind(start.value.as_str())
            .bind(start.key_type.as_str())
            .bind(start.value.as_str())
            .bind(&names)
            .bind(&ranks)
            .bind(start_rank)
            .bind(&names)
            .bind(&ranks)
            .bind(&names)
            .bind(&ranks)
            .bind(per_key as u64)
            .fetch_all::<LinkRow>()
            .await?;
        Ok(link_map(rows))
    }

    /// The keys linked to `start`, transitively ([`Store::walk`]), and
    /// whether `limits` cut the walk short.
    pub async fn linked_keys(
        &self,
        start: &BusinessKey,
        types: &KeyTypes,
        limits: KeyLookupLimits,
    ) -> Result<(Vec<LinkedKey>, bool), StoreError> {
        let walk = self.walk(start, types, limits).await?;
        Ok((walk.linked, walk.truncated))
    }

    /// The keys linked to `start`, transitively: down to finer keys (a
    /// customer's orders and their work orders) and up to coarser ones (a
    /// work order's order and customer), never down from a key reached going
    /// up, so an order does not pull in its customer's other orders.
    /// Returns the keys found, whether `limits` cut the walk short, and
    /// the neighbours of each key whose links were all read.
    pub async fn walk(
        &self,
        start: &BusinessKey,
        types: &KeyTypes,
        limits: KeyLookupLimits,
    ) -> Result<Walk, StoreError> {
        // Unknown types (dropped from the config since) rank as the finest.
        let rank = |k: &BusinessKey| types.rank(&k.key_type).unwrap_or(u8::MAX);
        let mut seen: BTreeSet<BusinessKey> = BTreeSet::from([start.clone()]);
        let mut found = Vec::new();
        let mut frontier: Vec<(BusinessKey, Option<Direction>)> = vec![(start.clone(), None)];
        let mut truncated = false;
        let mut prefetched: Option<BTreeMap<BusinessKey, BTreeSet<BusinessKey>>> = None;
        let mut neighbours: BTreeMap<BusinessKey, BTreeSet<BusinessKey>> = BTreeMap::new();
        for depth in 1..=limits.max_depth {
            if frontier.is_empty() {
                break;
            }
            // A key reached going up is followed only further up: only its
            // links to coarser types are read, and a key of the coarsest
            // type is not read at all.
            let coarser: Vec<Option<Vec<String>>> = frontier
                .iter()
                .map(|(k, direction)| {
                    (*direction == Some(Direction::Up)).then(|| {
                        types
                            .names()
                            .into_iter()
                            .filter(|t| types.rank(t).unwrap_or(u8::MAX) < rank(k))
                            .map(str::to_string)
                            .collect()
                    })
                })
                .collect();
            let keys: Vec<(&BusinessKey, Option<&[String]>)> = frontier
                .iter()
                .zip(&coarser)
                .map(|((k, _), types)| (k, types.as_deref()))
                .filter(|(_, types)| types.is_none_or(|t| !t.is_empty()))
                .collect();
            // A key's neighbours are keys already seen or new ones; more new
            // ones than the walk may still take cut it short anyway, so no
            // key needs more than this many (a hub's 100k links cost one
            // bounded answer, not 100k rows).
            let per_key = limits.max_keys - found.len().min(limits.max_keys) + seen.len() + 1;
            let links = match (depth, prefetched.take()) {
                // The first read brings the second level too.
                (1, _) if !types.names().is_empty() => {
                    let mut both = self.two_levels(start, types, per_key).await?;
                    let first = both.remove(start).map(|l| (start.clone(), l));
                    prefetched = Some(both);
                    first.into_iter().collect()
                }
                (2, Some(mut second)) => keys
                    .iter()
                    .filter_map(|(k, _)| {
                        let links = second.remove(*k)?;
                        Some(((*k).clone(), links.into_iter().take(per_key).collect()))
                    })
                    .collect(),
                _ => self.direct_links_at_most(&keys, per_key).await?,
            };
            // A key cut at `per_key` may have lost a parent that a walk up
            // would follow: say the answer is incomplete.
            truncated |= links.values().any(|l| l.len() >= per_key);
            // Keys read whole: all but those followed only further up.
            for ((key, _), types) in frontier.iter().zip(&coarser) {
                if types.is_none() {
                    neighbours.insert(key.clone(), links.get(key).cloned().unwrap_or_default());
                }
            }
            let mut next = Vec::new();
            for (from, direction) in &frontier {
                let Some(neighbours) = links.get(from) else {
                    continue;
                };
                for to in neighbours {
                    let relation = match rank(to).cmp(&rank(from)) {
                        std::cmp::Ordering::Less => Relation::Parent,
                        std::cmp::Ordering::Greater => Relation::Child,
                        std::cmp::Ordering::Equal => Relation::Peer,
                    };
                    let step = match (direction, relation) {
                        (None | Some(Direction::Up), Relation::Parent) => Direction::Up,
                        (None | Some(Direction::Down), Relation::Child | Relation::Peer) => {
                            Direction::Down
                        }
                        _ => continue,
                    };
                    if seen.contains(to) {
                        continue;
                    }
                    if found.len() >= limits.max_keys {
                        truncated = true;
                        break;
                    }
                    seen.insert(to.clone());
                    let overall = match step {
                        Direction::Up => Relation::Parent,
                        Direction::Down if relation == Relation::Peer && direction.is_none() => {
                            Relation::Peer
                        }
                        Direction::Down => Relation::Child,
                    };
                    found.push(LinkedKey {
                        key: to.clone(),
                        relation: overall,
                        via: from.clone(),
                        depth,
                    });
                    next.push((to.clone(), Some(step)));
                }
            }
            frontier = next;
            if depth == limits.max_depth && !frontier.is_empty() {
                truncated = true;
            }
        }
        Ok(Walk {
            linked: found,
            truncated,
            neighbours,
        })
    }
}
