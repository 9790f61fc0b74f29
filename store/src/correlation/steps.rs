//! Steps (a record that reached a stage of an instance), the first
//! sightings of links, and each stage's first step.

use std::collections::HashMap;

use clickhouse::Row;
use serde::Deserialize;

use super::{RootShare, CHUNK};
use crate::query::key_tuple_placeholders;
use crate::rows::StepRow;
use crate::{Store, StoreError};
use domain::feed::Step;
use domain::model::BusinessKey;

#[derive(Debug, Row, Deserialize)]
struct LinkSeen {
    key_type: String,
    key_value: String,
    linked_type: String,
    linked_value: String,
    ingested_ns: u64,
}

/// A stage's first time and whether a failed record reached it, per
/// instance, as stored.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct StageFirst {
    pub process_id: String,
    pub root_value: String,
    pub stage_id: String,
    pub time_ns: u64,
    pub failed: u8,
    /// A plant one of its steps named (the greatest, so that every read
    /// names the same), or "".
    pub plant: String,
}

impl Store {
    /// When each of these links was first stored (both directions are
    /// stored; one is enough to ask). Links never stored are absent. The
    /// earliest of a link's rows, as `FINAL` would keep it (`keep` is
    /// `u64::MAX - ingested_ns`), without `FINAL`'s merge of every column.
    pub async fn links_first_ingested(
        &self,
        links: &[(BusinessKey, BusinessKey)],
    ) -> Result<HashMap<(BusinessKey, BusinessKey), u64>, StoreError> {
        let mut out = HashMap::new();
        for chunk in links.chunks(CHUNK) {
            let sql = format!(
                "SELECT key_type, key_value, linked_type, linked_value, ingested_ns FROM key_links_v2 \
                 WHERE (key_type, key_value, linked_type, linked_value) IN ({})",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut query = self.query(&sql);
            for (a, b) in chunk {
                query = query
                    .bind(a.key_type.as_str())
                    .bind(a.value.as_str())
                    .bind(b.key_type.as_str())
                    .bind(b.value.as_str());
            }
            for row in query.fetch_all::<LinkSeen>().await? {
                let a = BusinessKey::new(row.key_type, row.key_value);
                let b = BusinessKey::new(row.linked_type, row.linked_value);
                let first = out.entry((a, b)).or_insert(row.ingested_ns);
                *first = (*first).min(row.ingested_ns);
            }
        }
        Ok(out)
    }

    pub async fn write_steps(&self, steps: &[Step]) -> Result<(), StoreError> {
        let rows: Vec<StepRow> = steps.iter().map(StepRow::of).collect();
        self.insert_rows("process_steps", &rows).await
    }

    /// Each stage's first time per instance, for instances with a step at
    /// or after `since_ns`; or, with `roots`, for those instances only.
    pub async fn stage_firsts(
        &self,
        since_ns: u64,
        roots: Option<&[(String, String)]>,
    ) -> Result<Vec<StageFirst>, StoreError> {
        let base = "SELECT process_id, root_value, stage_id, min(time_ns) AS time_ns, max(failed) AS failed, \
                    max(plant) AS plant FROM process_steps WHERE ";
        let tail = " GROUP BY process_id, root_value, stage_id";
        match roots {
            None => Ok(self
                .query(&format!(
                    "{base}(process_id, root_value) IN (SELECT process_id, root_value FROM process_steps \
                     WHERE time >= toDateTime(?)){tail}"
                ))
                .bind(since_ns / 1_000_000_000)
                .fetch_all::<StageFirst>()
                .await?),
            Some(roots) => {
                let mut out = Vec::new();
                for chunk in roots.chunks(CHUNK) {
                    let sql = format!(
                        "{base}(process_id, root_value) IN ({}){tail}",
                        key_tuple_placeholders(chunk.len())
                    );
                    let mut query = self.query(&sql);
                    for (process, root) in chunk {
                        query = query.bind(process.as_str()).bind(root.as_str());
                    }
                    out.extend(query.fetch_all::<StageFirst>().await?);
                }
                Ok(out)
            }
        }
    }

    /// [`Store::stage_firsts`] since `since_ns` of one share of the roots.
    pub async fn stage_firsts_of_share(
        &self,
        since_ns: u64,
        share: RootShare,
    ) -> Result<Vec<StageFirst>, StoreError> {
        let sql = format!(
            "SELECT process_id, root_value, stage_id, min(time_ns) AS time_ns, max(failed) AS failed, \
                    max(plant) AS plant \
             FROM process_steps WHERE {share} AND (process_id, root_value) IN ( \
               SELECT process_id, root_value FROM process_steps \
               WHERE time >= toDateTime(?) AND {share}) \
             GROUP BY process_id, root_value, stage_id",
            share = RootShare::SQL
        );
        let query = share.bind(self.query(&sql)).bind(since_ns / 1_000_000_000);
        share.bind(query).fetch_all::<StageFirst>().await
    }
}
