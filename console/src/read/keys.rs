//! `GET /api/v1/keys/{type}/{value}`: the spans and events carrying a
//! business key, the keys linked to it (transitively), and the spans and
//! events of the linked keys below it (a customer's orders and their work
//! orders), each list in time order.

use domain::feed::JourneyRecord;
use domain::keys::BadKeyValue;
use domain::model::BusinessKey;
use store::query::{KeyLookupLimits, LinkedKey, Relation};

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
    let (seen, (linked, truncated)) = tokio::try_join!(
        state.store.key_seen(&key),
        state.store.linked_keys(&key, &state.keys, limits),
    )?;
    if !seen {
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
    let roots: Vec<(String, String)> = state
        .processes
        .list
        .iter()
        .flat_map(|def| {
            std::iter::once(&key)
                .chain(linked.iter().map(|l| &l.key))
                .filter(|k| k.key_type == def.key_type)
                .map(|k| (def.id.clone(), k.value.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(Journey {
        key,
        linked,
        keys,
        roots,
        truncated,
    })
}

/// The records on a journey through `keys`: one per record, the newest
/// `limit` (returned by time), and whether there were more.
pub async fn journey_records(
    state: &Reads,
    keys: &[&BusinessKey],
    limit: usize,
) -> Result<(Vec<JourneyRecord>, bool), AppError> {
    Ok(state.store.journey_records(keys, limit).await?)
}

/// The process instances of these roots, with each SLA's state now.
pub async fn instances(
    state: &Reads,
    roots: &[(String, String)],
) -> Result<Vec<InstanceView>, AppError> {
    let rows = state.store.instances_of(roots).await?;
    let now = domain::now_ns();
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some(view::instance(
                state.processes.get(&row.process_id)?,
                row,
                now,
            ))
        })
        .collect())
}
