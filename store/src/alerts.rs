//! What the alert evaluator reads and writes: the figures its rules watch
//! (breaches in a window, instances started, event outcomes, customers
//! behind orders) and its own state, history and notification log.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::query::key_tuple_placeholders;
use super::rows::BreachRow;
use super::{Store, StoreError};

/// Items per `IN` list.
const CHUNK: usize = 1000;

/// A rule's state, as the evaluator left it.
#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq)]
pub struct AlertStateRow {
    pub rule_id: String,
    pub phase: String,
    pub since_ns: u64,
    pub fired_ns: u64,
    pub resolved_ns: u64,
    /// `firing`, `resolved` or empty: the notification due.
    pub notice: String,
    /// Receivers that have the notification due.
    pub delivered: Vec<String>,
    /// Receivers that got this firing's notice: only they get its resolve.
    pub fired_to: Vec<String>,
    pub sent_ns: u64,
    pub value: f64,
    pub value_text: String,
    pub summary: String,
    /// What makes it fire: `order:SO-1`, `system:mes`, ...
    pub affected: Vec<String>,
    pub orders: u64,
    pub customers: u64,
    pub evaluated_ns: u64,
    pub updated_ns: u64,
}

/// A rule's phase change.
#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq)]
pub struct AlertHistoryRow {
    pub rule_id: String,
    /// Seconds, for partitioning.
    pub at: u32,
    pub at_ns: u64,
    pub from_phase: String,
    pub to_phase: String,
    pub value: f64,
    pub value_text: String,
}

/// One attempt to deliver a notification.
#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq)]
pub struct AlertNotificationRow {
    pub rule_id: String,
    pub receiver: String,
    pub notice: String,
    pub attempt: u32,
    pub at: u32,
    pub at_ns: u64,
    pub ok: u8,
    /// The HTTP status or the error.
    pub detail: String,
}

/// Events over a range: how many, failed (`failed` or `dead_lettered`),
/// dead-lettered, and the distinct orders and customers the failed ones name.
#[derive(Debug, Clone, Default, Row, Deserialize, PartialEq)]
pub struct EventOutcomes {
    pub events: u64,
    pub failed: u64,
    pub dead: u64,
    pub orders: u64,
    pub customers: u64,
}

/// An instance's stages, for stage-to-stage durations.
#[derive(Debug, Clone, Row, Deserialize, PartialEq)]
pub struct InstanceStages {
    pub root_value: String,
    pub stage_ids: Vec<String>,
    pub stage_times: Vec<u64>,
}

impl Store {
    /// The stages of the instances of a process started in `[from_ns, to_ns]`
    /// (at most `limit`, newest first).
    pub async fn instance_stages(
        &self,
        process_id: &str,
        from_ns: u64,
        to_ns: u64,
        limit: usize,
    ) -> Result<Vec<InstanceStages>, StoreError> {
        self.query(
            "SELECT ?fields FROM process_instances FINAL \
                 WHERE process_id = ? AND start_ns >= ? AND start_ns <= ? \
                 ORDER BY start_ns DESC LIMIT ?",
        )
        .bind(process_id)
        .bind(from_ns)
        .bind(to_ns)
        .bind(limit as u64)
        .fetch_all::<InstanceStages>()
        .await
    }

    pub async fn alert_states(&self) -> Result<Vec<AlertStateRow>, StoreError> {
        self.query("SELECT ?fields FROM alert_state FINAL ORDER BY rule_id")
            .fetch_all::<AlertStateRow>()
            .await
    }

    pub async fn write_alert_states(&self, rows: &[AlertStateRow]) -> Result<(), StoreError> {
        self.insert_rows("alert_state", rows).await
    }

    pub async fn write_alert_history(&self, rows: &[AlertHistoryRow]) -> Result<(), StoreError> {
        self.insert_rows("alert_history", rows).await
    }

    pub async fn write_alert_notifications(
        &self,
        rows: &[AlertNotificationRow],
    ) -> Result<(), StoreError> {
        self.insert_rows("alert_notifications", rows).await
    }

    /// A rule's newest phase changes, newest first.
    pub async fn alert_history(
        &self,
        rule_id: &str,
        limit: usize,
    ) -> Result<Vec<AlertHistoryRow>, StoreError> {
        self.query(
            "SELECT ?fields FROM alert_history FINAL WHERE rule_id = ? \
                 ORDER BY at_ns DESC LIMIT ?",
        )
        .bind(rule_id)
        .bind(limit as u64)
        .fetch_all::<AlertHistoryRow>()
        .await
    }

    /// A rule's newest delivery attempts, newest first.
    pub async fn alert_notifications(
        &self,
        rule_id: &str,
        limit: usize,
    ) -> Result<Vec<AlertNotificationRow>, StoreError> {
        self.query(
            "SELECT ?fields FROM alert_notifications FINAL WHERE rule_id = ? \
                 ORDER BY at_ns DESC, attempt DESC LIMIT ?",
        )
        .bind(rule_id)
        .bind(limit as u64)
        .fetch_all::<AlertNotificationRow>()
        .await
    }

    /// Breaches (open or closed) of a process, or one SLA, due in
    /// `[from_ns, to_ns]`.
    pub async fn breaches_due(
        &self,
        process_id: &str,
        sla_id: Option<&str>,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<Vec<BreachRow>, StoreError> {
        let mut sql = String::from(
            "SELECT ?fields FROM breaches FINAL WHERE state != 'cleared' AND process_id = ? \
             AND due_ns >= ? AND due_ns <= ?",
        );
        if sla_id.is_some() {
            sql.push_str(" AND sla_id = ?");
        }
        sql.push_str(" ORDER BY due_ns DESC");
        let mut query = self.query(&sql).bind(process_id).bind(from_ns).bind(to_ns);
        if let Some(sla) = sla_id {
            query = query.bind(sla);
        }
        query.fetch_all::<BreachRow>().await
    }

    /// Open breaches now of a process, or one SLA.
    pub async fn open_breaches(
        &self,
        process_id: &str,
        sla_id: Option<&str>,
    ) -> Result<Vec<BreachRow>, StoreError> {
        let mut sql = String::from(
            "SELECT ?fields FROM breaches FINAL WHERE state = 'open' AND process_id = ?",
        );
        if sla_id.is_some() {
            sql.push_str(" AND sla_id = ?");
        }
        sql.push_str(" ORDER BY due_ns DESC");
        let mut query = self.query(&sql).bind(process_id);
        if let Some(sla) = sla_id {
            query = query.bind(sla);
        }
        query.fetch_all::<BreachRow>().await
    }

    /// Instances of a process started in `[from_ns, to_ns]`.
    pub async fn instances_started_count(
        &self,
        process_id: &str,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<u64, StoreError> {
        self.query(
            "SELECT count() FROM process_instances FINAL \
                 WHERE process_id = ? AND start_ns >= ? AND start_ns <= ?",
        )
        .bind(process_id)
        .bind(from_ns)
        .bind(to_ns)
        .fetch_one::<u64>()
        .await
    }

    /// Of the instances of a process started in `[from_ns, to_ns]`, how
    /// many breached (one SLA, or any) so far.
    pub async fn instances_breached_count(
        &self,
        process_id: &str,
        sla_id: Option<&str>,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<u64, StoreError> {
        let mut sql = String::from(
            "SELECT uniqExact(root_value) FROM breaches FINAL \
             WHERE process_id = ? AND state != 'cleared'",
        );
        if sla_id.is_some() {
            sql.push_str(" AND sla_id = ?");
        }
        sql.push_str(
            " AND root_value IN (SELECT root_value FROM process_instances FINAL \
             WHERE process_id = ? AND start_ns >= ? AND start_ns <= ?)",
        );
        let mut query = self.query(&sql).bind(process_id);
        if let Some(sla) = sla_id {
            query = query.bind(sla);
        }
        query
            .bind(process_id)
            .bind(from_ns)
            .bind(to_ns)
            .fetch_one::<u64>()
            .await
    }

    /// How many distinct keys of `linked_type` the keys `(type, value)` are
    /// linked to (the customers of some orders).
    pub async fn linked_count(
        &self,
        keys: &[(String, String)],
        linked_type: &str,
    ) -> Result<u64, StoreError> {
        let mut values = std::collections::BTreeSet::new();
        for chunk in keys.chunks(CHUNK) {
            let sql = format!(
                "SELECT DISTINCT linked_value FROM key_links FINAL \
                 WHERE (key_type, key_value) IN ({}) AND linked_type = ?",
                key_tuple_placeholders(chunk.len())
            );
            let mut query = self.query(&sql);
            for (t, v) in chunk {
                query = query.bind(t.as_str()).bind(v.as_str());
            }
            values.extend(query.bind(linked_type).fetch_all::<String>().await?);
        }
        Ok(values.len() as u64)
    }

    /// Event outcomes in `[from_ns, to_ns]`, of a system and / or an event
    /// type (all events when both are `None`).
    pub async fn event_outcomes(
        &self,
        from_ns: u64,
        to_ns: u64,
        system: Option<&str>,
        event_type: Option<&str>,
    ) -> Result<EventOutcomes, StoreError> {
        let s = |ns: u64| u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX);
        let mut sql = String::from(
            "SELECT count() AS events, \
                    countIf(outcome IN ('failed', 'dead_lettered')) AS failed, \
                    countIf(outcome = 'dead_lettered') AS dead, \
                    uniqExactArrayIf(arrayFilter((v, t) -> t = 'order', key_values, key_types), \
                        outcome IN ('failed', 'dead_lettered')) AS orders, \
                    uniqExactArrayIf(arrayFilter((v, t) -> t = 'customer', key_values, key_types), \
                        outcome IN ('failed', 'dead_lettered')) AS customers \
             FROM events FINAL \
             WHERE time >= toDateTime(?) AND time <= toDateTime(?) AND time_ns >= ? AND time_ns <= ?",
        );
        if system.is_some() {
            sql.push_str(" AND system = ?");
        }
        if event_type.is_some() {
            sql.push_str(" AND type = ?");
        }
        let mut query = self
            .query(&sql)
            .bind(s(from_ns))
            .bind(s(to_ns))
            .bind(from_ns)
            .bind(to_ns);
        if let Some(system) = system {
            query = query.bind(system);
        }
        if let Some(t) = event_type {
            query = query.bind(t);
        }
        query.fetch_one::<EventOutcomes>().await
    }
}
