//! Read queries, named for what they answer. Each reads a table ordered for
//! it: spans by trace id, the key index and key links by key; none scans the
//! span table.
//!
//! - [`links`]: the keys linked to a key, and the walk through them;
//! - [`journey`]: a journey's counts and pages, from the key index alone;
//! - [`journey_scan`]: the same from one scan, for a journey of few rows;
//! - [`hub_journey`]: a hub's journey from its own range (`crate::hubs`);
//! - [`traces`]: one trace's spans and events;
//! - [`events`]: events listed by time.

mod events;
mod hub_journey;
mod journey;
mod journey_scan;
mod links;
mod traces;

pub use events::{EventFilter, EventPosition};
pub use hub_journey::HubRange;
pub use journey::{JourneyPosition, RecordCounts};
pub use journey_scan::JourneyScan;
pub use links::{KeyLookupLimits, LinkedKey, Relation, Walk};

use domain::model::BusinessKey;

/// `(a, b) IN ((?, ?), (?, ?), ...)` with one pair of placeholders per key.
pub(crate) fn key_tuple_placeholders(count: usize) -> String {
    vec!["(?, ?)"; count].join(", ")
}

/// Binds each key's type and value, in order, for
/// [`key_tuple_placeholders`].
pub(crate) fn bind_keys(
    mut query: crate::timeout::Statement,
    keys: &[&BusinessKey],
) -> crate::timeout::Statement {
    for key in keys {
        query = query.bind(key.key_type.as_str()).bind(key.value.as_str());
    }
    query
}
