//! Instances and breaches: written by the correlator, read back by it and
//! by the API a page at a time.

use super::{RootShare, CHUNK};
use crate::query::key_tuple_placeholders;
use crate::rows::{convert, BreachRow, InstanceRow};
use crate::timeout::Statement;
use crate::{Store, StoreError};
use domain::instance::{Breach, InstanceRecord};

/// Which instances to list.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    pub process_id: String,
    pub status: Option<String>,
    pub root_value: Option<String>,
    pub from_ns: u64,
    pub to_ns: u64,
    pub limit: usize,
    /// Continue after (start_ns, root_value), newest first.
    pub after: Option<(u64, String)>,
    /// Of one plant only (`sql/0018_instance_plants.sql`).
    pub plant: Option<String>,
}

impl InstanceFilter {
    /// The conditions of a page after the filter's own (`status`, `after`)
    /// and its order and limit, for the statements that list instances.
    pub(crate) fn push_page_conditions(&self, sql: &mut String) {
        if self.status.is_some() {
            sql.push_str(" AND status = ?");
        }
        if self.after.is_some() {
            sql.push_str(" AND (start_ns < ? OR (start_ns = ? AND root_value < ?))");
        }
        sql.push_str(" ORDER BY start_ns DESC, root_value DESC LIMIT ?");
    }

    /// Binds what [`InstanceFilter::push_page_conditions`] asked for, but
    /// the limit.
    pub(crate) fn bind_page_conditions(&self, mut query: Statement) -> Statement {
        if let Some(status) = &self.status {
            query = query.bind(status.as_str());
        }
        if let Some((start, root)) = &self.after {
            query = query.bind(*start).bind(*start).bind(root.as_str());
        }
        query
    }
}

/// Which breaches to list.
#[derive(Debug, Clone, Default)]
pub struct BreachFilter {
    pub process_id: Option<String>,
    pub sla_id: Option<String>,
    /// `Some(true)`: open only; `Some(false)`: closed only.
    pub open: Option<bool>,
    pub from_ns: u64,
    pub to_ns: u64,
    pub limit: usize,
    /// Continue after (due_ns, process, sla, root), newest first.
    pub after: Option<(u64, String, String, String)>,
    /// Of one plant only: read from `plant_breaches_by_due`, that plant's
    /// minutes of the range.
    pub plant: Option<String>,
}

/// The first `limit` of `rows` (read one more than a page), and where the
/// next page starts when there is one.
fn page(
    mut rows: Vec<InstanceRecord>,
    limit: usize,
) -> (Vec<InstanceRecord>, Option<(u64, String)>) {
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| (r.start_ns, r.root_value.clone()))
    } else {
        None
    };
    (rows, next)
}

impl Store {
    pub async fn write_instances(&self, instances: &[InstanceRecord]) -> Result<(), StoreError> {
        let rows: Vec<InstanceRow> = instances.iter().map(InstanceRow::of).collect();
        self.insert_rows("process_instances", &rows).await
    }

    pub async fn write_breaches(&self, breaches: &[Breach]) -> Result<(), StoreError> {
        let rows: Vec<BreachRow> = breaches.iter().map(BreachRow::of).collect();
        self.insert_rows("breaches", &rows).await
    }

    /// Stored instances (latest), for instances last seen at or after
    /// `since_ns`.
    pub async fn instances_since(&self, since_ns: u64) -> Result<Vec<InstanceRecord>, StoreError> {
        let rows = self
            .query("SELECT ?fields FROM process_instances FINAL WHERE last_ns >= ?")
            .bind(since_ns)
            .fetch_all::<InstanceRow>()
            .await?;
        convert(rows, InstanceRow::record)
    }

    /// About how many instances were last seen at or after `since_ns` (rows
    /// as stored, not collapsed: enough to size the shares of a start).
    pub async fn instance_rows_since(&self, since_ns: u64) -> Result<u64, StoreError> {
        self.query("SELECT count() FROM process_instances WHERE last_ns >= ?")
            .bind(since_ns)
            .fetch_one::<u64>()
            .await
    }

    /// [`Store::instances_since`] of one share of the roots.
    pub async fn instances_of_share(
        &self,
        since_ns: u64,
        share: RootShare,
    ) -> Result<Vec<InstanceRecord>, StoreError> {
        let sql = format!(
            "SELECT ?fields FROM process_instances FINAL WHERE last_ns >= ? AND {}",
            RootShare::SQL
        );
        let rows = share
            .bind(self.query(&sql).bind(since_ns))
            .fetch_all::<InstanceRow>()
            .await?;
        convert(rows, InstanceRow::record)
    }

    /// [`Store::breaches_since`] of one share of the roots.
    pub async fn breaches_of_share(
        &self,
        since_ns: u64,
        share: RootShare,
    ) -> Result<Vec<Breach>, StoreError> {
        let sql = format!(
            "SELECT ?fields FROM breaches FINAL WHERE from_ns >= ? AND {}",
            RootShare::SQL
        );
        let rows = share
            .bind(self.query(&sql).bind(since_ns))
            .fetch_all::<BreachRow>()
            .await?;
        convert(rows, BreachRow::breach)
    }

    /// Stored breaches (latest) whose start is at or after `since_ns`.
    pub async fn breaches_since(&self, since_ns: u64) -> Result<Vec<Breach>, StoreError> {
        let rows = self
            .query("SELECT ?fields FROM breaches FINAL WHERE from_ns >= ?")
            .bind(since_ns)
            .fetch_all::<BreachRow>()
            .await?;
        convert(rows, BreachRow::breach)
    }

    /// A page of instances of one process, newest start first: a key's
    /// from `process_instances` by its sort key, a range's from
    /// `instances_by_start` (`Store::instances_page`) by minute of start.
    pub async fn list_instances(
        &self,
        filter: &InstanceFilter,
    ) -> Result<(Vec<InstanceRecord>, Option<(u64, String)>), StoreError> {
        let Some(root) = &filter.root_value else {
            let rows = self.instances_page(filter).await?;
            return Ok(page(rows, filter.limit));
        };
        let mut sql = String::from(
            "SELECT ?fields FROM process_instances FINAL \
             WHERE process_id = ? AND root_value = ? AND start_ns >= ? AND start_ns <= ?",
        );
        if filter.plant.is_some() {
            sql.push_str(" AND plant = ?");
        }
        filter.push_page_conditions(&mut sql);
        let mut query = self
            .query(&sql)
            .bind(filter.process_id.as_str())
            .bind(root.as_str())
            .bind(filter.from_ns)
            .bind(filter.to_ns);
        if let Some(plant) = &filter.plant {
            query = query.bind(plant.as_str());
        }
        let rows = convert(
            filter
                .bind_page_conditions(query)
                .bind(filter.limit as u64 + 1)
                .fetch_all::<InstanceRow>()
                .await?,
            InstanceRow::record,
        )?;
        Ok(page(rows, filter.limit))
    }

    /// The instances of these (process, root value) pairs.
    pub async fn instances_of(
        &self,
        roots: &[(String, String)],
    ) -> Result<Vec<InstanceRecord>, StoreError> {
        let mut out = Vec::new();
        for chunk in roots.chunks(CHUNK) {
            let (values, prewhere) = root_values(chunk);
            let sql = format!(
                "SELECT ?fields FROM process_instances FINAL {prewhere} \
                 WHERE (process_id, root_value) IN ({}) ORDER BY start_ns",
                key_tuple_placeholders(chunk.len())
            );
            let query = bind_roots(self.query(&sql), &values, chunk);
            out.extend(convert(
                query.fetch_all::<InstanceRow>().await?,
                InstanceRow::record,
            )?);
        }
        Ok(out)
    }

    /// Breaches (open or closed, not cleared) of these instances.
    pub async fn breaches_of(&self, roots: &[(String, String)]) -> Result<Vec<Breach>, StoreError> {
        let mut out = Vec::new();
        for chunk in roots.chunks(CHUNK) {
            let (values, prewhere) = root_values(chunk);
            let sql = format!(
                "SELECT ?fields FROM breaches FINAL {prewhere} \
                 WHERE (process_id, root_value) IN ({}) AND state != 'cleared'",
                key_tuple_placeholders(chunk.len())
            );
            let query = bind_roots(self.query(&sql), &values, chunk);
            out.extend(convert(
                query.fetch_all::<BreachRow>().await?,
                BreachRow::breach,
            )?);
        }
        Ok(out)
    }

    /// A page of breaches, newest due time first.
    pub async fn list_breaches(
        &self,
        filter: &BreachFilter,
    ) -> Result<(Vec<Breach>, Option<(u64, String, String, String)>), StoreError> {
        // One plant's breaches: its rows by minute due, that plant's
        // minutes of the range only.
        let mut sql = String::from(match filter.plant {
            None => "SELECT ?fields FROM breaches FINAL WHERE state != 'cleared' AND due_ns >= ? AND due_ns <= ?",
            Some(_) => "SELECT ?fields FROM plant_breaches_by_due FINAL WHERE plant = ? \
                        AND due_minute >= toDateTime(?) AND due_minute <= toDateTime(?) \
                        AND state != 'cleared' AND due_ns >= ? AND due_ns <= ?",
        });
        if filter.process_id.is_some() {
            sql.push_str(" AND process_id = ?");
        }
        if filter.sla_id.is_some() {
            sql.push_str(" AND sla_id = ?");
        }
        match filter.open {
            Some(true) => sql.push_str(" AND state = 'open'"),
            Some(false) => sql.push_str(" AND state = 'closed'"),
            None => {}
        }
        if filter.after.is_some() {
            sql.push_str(
                " AND (due_ns < ? OR (due_ns = ? AND (process_id < ? OR (process_id = ? AND \
                 (sla_id < ? OR (sla_id = ? AND root_value < ?))))))",
            );
        }
        sql.push_str(
            " ORDER BY due_ns DESC, process_id DESC, sla_id DESC, root_value DESC LIMIT ?",
        );
        let mut query = self.query(&sql);
        if let Some(plant) = &filter.plant {
            query = query
                .bind(plant.as_str())
                .bind(crate::process_rollups::minute_of(filter.from_ns))
                .bind(crate::process_rollups::minute_of(filter.to_ns));
        }
        query = query.bind(filter.from_ns).bind(filter.to_ns);
        if let Some(p) = &filter.process_id {
            query = query.bind(p.as_str());
        }
        if let Some(s) = &filter.sla_id {
            query = query.bind(s.as_str());
        }
        if let Some((due, p, s, r)) = &filter.after {
            query = query
                .bind(*due)
                .bind(*due)
                .bind(p.as_str())
                .bind(p.as_str())
                .bind(s.as_str())
                .bind(s.as_str())
                .bind(r.as_str());
        }
        let mut rows = convert(
            query
                .bind(filter.limit as u64 + 1)
                .fetch_all::<BreachRow>()
                .await?,
            BreachRow::breach,
        )?;
        let next = if rows.len() > filter.limit {
            rows.truncate(filter.limit);
            rows.last().map(|r| {
                (
                    r.due_ns,
                    r.process_id.clone(),
                    r.sla_id.clone(),
                    r.root_value.clone(),
                )
            })
        } else {
            None
        };
        Ok((rows, next))
    }
}

/// The distinct root values of `roots` and the `PREWHERE` that reads only
/// their rows' other columns. `FINAL` keeps 18.16 (and current releases by
/// default) from moving a `WHERE` to `PREWHERE`, so without it a lookup of
/// a customer's 100 orders read every column of every granule the orders
/// fall in: the whole table (124 MB at a plant's day of 600 000 instances)
/// for 60 rows, where the root values alone are 9 MB. A condition on a
/// sort-key column gives the same rows before `FINAL` as after it.
fn root_values(roots: &[(String, String)]) -> (Vec<&str>, String) {
    let values: Vec<&str> = roots
        .iter()
        .map(|(_, root)| root.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let prewhere = format!(
        "PREWHERE root_value IN ({})",
        vec!["?"; values.len()].join(", ")
    );
    (values, prewhere)
}

/// Binds [`root_values`]' values, then each root's process and value.
fn bind_roots(
    mut query: crate::timeout::Statement,
    values: &[&str],
    roots: &[(String, String)],
) -> crate::timeout::Statement {
    for value in values {
        query = query.bind(*value);
    }
    for (process, root) in roots {
        query = query.bind(process.as_str()).bind(root.as_str());
    }
    query
}
