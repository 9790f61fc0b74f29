//! Events listed by time: newest first a page at a time, or a range oldest
//! first.
use crate::rows::EventRow;
use crate::{Store, StoreError};
use domain::model::{Event, Outcome};

/// Which events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub system: Option<String>,
    pub event_type: Option<String>,
    pub outcome: Option<Outcome>,
    /// Unix nanoseconds, inclusive.
    pub from_ns: u64,
    /// Unix nanoseconds, inclusive.
    pub to_ns: u64,
    pub limit: usize,
    /// Continue after this event (the last one of the previous page).
    pub after: Option<EventPosition>,
}

/// Where an event stands in the newest-first order of [`Store::list_events`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventPosition {
    pub time_ns: u64,
    pub source: String,
    pub id: String,
}

impl Store {
    /// One page of events, newest first, and the position to continue from
    /// when there are more.
    pub async fn list_events(
        &self,
        filter: &EventFilter,
    ) -> Result<(Vec<Event>, Option<EventPosition>), StoreError> {
        let mut sql = String::from(
            "SELECT ?fields FROM events FINAL \
             WHERE time >= toDateTime(?) AND time <= toDateTime(?) \
               AND time_ns >= ? AND time_ns <= ?",
        );
        if filter.system.is_some() {
            sql.push_str(" AND system = ?");
        }
        if filter.event_type.is_some() {
            sql.push_str(" AND type = ?");
        }
        if filter.outcome.is_some() {
            sql.push_str(" AND outcome = ?");
        }
        if filter.after.is_some() {
            sql.push_str(
                " AND (time_ns < ? OR (time_ns = ? AND source < ?) \
                   OR (time_ns = ? AND source = ? AND event_id < ?))",
            );
        }
        sql.push_str(" ORDER BY time_ns DESC, source DESC, event_id DESC LIMIT ?");
        let mut query = self
            .query(&sql)
            .bind(filter.from_ns / 1_000_000_000)
            .bind(filter.to_ns.div_ceil(1_000_000_000))
            .bind(filter.from_ns)
            .bind(filter.to_ns);
        if let Some(system) = &filter.system {
            query = query.bind(system.as_str());
        }
        if let Some(event_type) = &filter.event_type {
            query = query.bind(event_type.as_str());
        }
        if let Some(outcome) = filter.outcome {
            query = query.bind(outcome.as_str());
        }
        if let Some(after) = &filter.after {
            query = query
                .bind(after.time_ns)
                .bind(after.time_ns)
                .bind(after.source.as_str())
                .bind(after.time_ns)
                .bind(after.source.as_str())
                .bind(after.id.as_str());
        }
        let rows = query
            .bind(filter.limit as u64 + 1)
            .fetch_all::<EventRow>()
            .await?;
        let mut events: Vec<Event> = rows.into_iter().map(EventRow::into_event).collect();
        let next = if events.len() > filter.limit {
            events.truncate(filter.limit);
            events.last().map(|e| EventPosition {
                time_ns: e.time_ns,
                source: e.source.clone(),
                id: e.id.clone(),
            })
        } else {
            None
        };
        Ok((events, next))
    }

    /// Events in a time range, oldest first, optionally of some types only,
    /// after the position `after` (time, source, id) when given; at most
    /// `limit`: a page, read by the sort key's order.
    pub async fn events_between(
        &self,
        from_ns: u64,
        to_ns: u64,
        types: Option<&[String]>,
        after: Option<(u64, &str, &str)>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let mut sql = String::from(
            "SELECT ?fields FROM events FINAL WHERE time >= toDateTime(?) AND time <= toDateTime(?) \
             AND time_ns >= ? AND time_ns <= ?",
        );
        if let Some(types) = types {
            if types.is_empty() {
                return Ok(Vec::new());
            }
            sql.push_str(&format!(
                " AND type IN ({})",
                vec!["?"; types.len()].join(", ")
            ));
        }
        if after.is_some() {
            sql.push_str(
                " AND (time_ns > ? OR (time_ns = ? AND (source > ? OR (source = ? AND event_id > ?))))",
            );
        }
        sql.push_str(" ORDER BY time_ns, source, event_id LIMIT ?");
        let mut query = self
            .query(&sql)
            .bind(from_ns / 1_000_000_000)
            .bind(to_ns.div_ceil(1_000_000_000))
            .bind(from_ns)
            .bind(to_ns);
        for t in types.into_iter().flatten() {
            query = query.bind(t.as_str());
        }
        if let Some((time_ns, source, id)) = after {
            query = query
                .bind(time_ns)
                .bind(time_ns)
                .bind(source)
                .bind(source)
                .bind(id);
        }
        let rows = query.bind(limit as u64).fetch_all::<EventRow>().await?;
        Ok(rows.into_iter().map(EventRow::into_event).collect())
    }
}
