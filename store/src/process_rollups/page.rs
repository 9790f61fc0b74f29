//! A page of a process's newest instances in a range, from
//! `instances_by_start` (sorted by minute of start; one plant's from
//! `plant_instances_by_start`, sorted by plant first), read in widening
//! windows back from the range's end.

use domain::instance::InstanceRecord;

use super::minute_of;
use super::rows::ByStartRow;
use crate::correlation::InstanceFilter;
use crate::{Store, StoreError};

/// The first window of minutes a page of instances reads; each next one
/// is twice as wide, until the page is full or the range read.
const FIRST_WINDOW_S: u32 = 600;

impl Store {
    /// A page of the instances of `filter.process_id` started in its range
    /// (optionally of one status), newest start first, after
    /// `filter.after`; `filter.root_value` is not looked at (a key's
    /// instance is read by its key from `process_instances`). Reads
    /// windows of minutes back from the range's end, each twice as wide
    /// as the one before, until the page is full: a page of the newest
    /// reads their last minutes, not the range.
    pub async fn instances_page(
        &self,
        filter: &InstanceFilter,
    ) -> Result<Vec<InstanceRecord>, StoreError> {
        let lowest = minute_of(filter.from_ns);
        let to_ns = match &filter.after {
            Some((start, _)) => filter.to_ns.min(*start),
            None => filter.to_ns,
        };
        if to_ns < filter.from_ns {
            return Ok(Vec::new());
        }
        let want = filter.limit + 1;
        let mut out: Vec<InstanceRecord> = Vec::new();
        let (mut top, mut width) = (minute_of(to_ns), FIRST_WINDOW_S);
        loop {
            let bottom = top.saturating_sub(width - 60).max(lowest);
            // One plant's instances: its rows by minute of start.
            let mut sql = String::from(match filter.plant {
                None => "SELECT ?fields FROM instances_by_start FINAL WHERE",
                Some(_) => "SELECT ?fields FROM plant_instances_by_start FINAL WHERE plant = ? AND",
            });
            sql.push_str(
                " process_id = ? AND start_minute >= toDateTime(?) \
                   AND start_minute <= toDateTime(?) \
                   AND deleted = 0 AND start_ns >= ? AND start_ns <= ?",
            );
            filter.push_page_conditions(&mut sql);
            let mut query = self.query(&sql);
            if let Some(plant) = &filter.plant {
                query = query.bind(plant.as_str());
            }
            let query = query
                .bind(filter.process_id.as_str())
                .bind(bottom)
                .bind(top)
                .bind(filter.from_ns)
                .bind(filter.to_ns);
            let rows = filter
                .bind_page_conditions(query)
                .bind((want - out.len()) as u64)
                .fetch_all::<ByStartRow>()
                .await?;
            for row in rows {
                out.push(row.record()?);
            }
            if out.len() >= want || bottom <= lowest {
                return Ok(out);
            }
            top = bottom - 60;
            width = width.saturating_mul(2);
        }
    }
}
