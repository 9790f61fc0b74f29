//! What the alert evaluator reads and writes: the figures its rules watch
//! (breaches in a window, instances started, event outcomes, customers
//! behind orders) and its own state, history and notification log.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::query::key_tuple_placeholders;
use super::rows::{convert, seconds, BreachRow};
use super::{Store, StoreError};
use domain::alert::{AlertRecord, Delivery, Notice, Phase, PhaseChange, RuleState};
use domain::instance::{Breach, StageTimes};

/// Items per `IN` list.
const CHUNK: usize = 1000;

/// A rule's state, as the evaluator left it. `notice` is `firing`,
/// `resolved` or empty.
#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq)]
struct AlertStateRow {
    rule_id: String,
    phase: String,
    since_ns: u64,
    fired_ns: u64,
    resolved_ns: u64,
    notice: String,
    delivered: Vec<String>,
    fired_to: Vec<String>,
    sent_ns: u64,
    value: f64,
    value_text: String,
    summary: String,
    affected: Vec<String>,
    orders: u64,
    customers: u64,
    evaluated_ns: u64,
    updated_ns: u64,
}

impl AlertStateRow {
    fn of(r: &AlertRecord) -> Self {
        let s = &r.state;
        AlertStateRow {
            rule_id: r.rule_id.clone(),
            phase: s.phase.as_str().into(),
            since_ns: s.since_ns,
            fired_ns: s.fired_ns,
            resolved_ns: s.resolved_ns,
            notice: s.notice.map(|n| n.as_str().to_string()).unwrap_or_default(),
            delivered: s.delivered.clone(),
            fired_to: s.fired_to.clone(),
            sent_ns: s.sent_ns,
            value: r.value,
            value_text: r.value_text.clone(),
            summary: r.summary.clone(),
            affected: r.affected.clone(),
            orders: r.orders,
            customers: r.customers,
            evaluated_ns: r.evaluated_ns,
            updated_ns: r.updated_ns,
        }
    }

    fn record(self) -> AlertRecord {
        AlertRecord {
            state: RuleState {
                phase: Phase::parse(&self.phase),
                notice: Notice::parse(&self.notice),
                since_ns: self.since_ns,
                fired_ns: self.fired_ns,
                resolved_ns: self.resolved_ns,
                delivered: self.delivered,
                fired_to: self.fired_to,
                sent_ns: self.sent_ns,
            },
            rule_id: self.rule_id,
            value: self.value,
            value_text: self.value_text,
            summary: self.summary,
            affected: self.affected,
            orders: self.orders,
            customers: self.customers,
            evaluated_ns: self.evaluated_ns,
            updated_ns: self.updated_ns,
        }
    }
}

/// A rule's phase change; `at` in seconds, for partitioning.
#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq)]
struct AlertHistoryRow {
    rule_id: String,
    at: u32,
    at_ns: u64,
    from_phase: String,
    to_phase: String,
    value: f64,
    value_text: String,
}

impl AlertHistoryRow {
    fn of(c: &PhaseChange) -> Self {
        AlertHistoryRow {
            rule_id: c.rule_id.clone(),
            at: seconds(c.at_ns),
            at_ns: c.at_ns,
            from_phase: c.from.as_str().into(),
            to_phase: c.to.as_str().into(),
            value: c.value,
            value_text: c.value_text.clone(),
        }
    }

    fn change(self) -> PhaseChange {
        PhaseChange {
            rule_id: self.rule_id,
            at_ns: self.at_ns,
            from: Phase::parse(&self.from_phase),
            to: Phase::parse(&self.to_phase),
            value: self.value,
            value_text: self.value_text,
        }
    }
}

/// One attempt to deliver a notification; `receiver` is the destination.
#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq)]
struct AlertNotificationRow {
    rule_id: String,
    receiver: String,
    notice: String,
    attempt: u32,
    at: u32,
    at_ns: u64,
    ok: u8,
    detail: String,
}

impl AlertNotificationRow {
    fn of(d: &Delivery) -> Self {
        AlertNotificationRow {
            rule_id: d.rule_id.clone(),
            receiver: d.destination.clone(),
            notice: d.notice.as_str().into(),
            attempt: d.attempt,
            at: seconds(d.at_ns),
            at_ns: d.at_ns,
            ok: d.ok as u8,
            detail: d.detail.clone(),
        }
    }

    fn delivery(self) -> Result<Delivery, StoreError> {
        Ok(Delivery {
            notice: Notice::parse(&self.notice).ok_or_else(|| {
                StoreError::Migration(format!(
                    "alert_notifications.notice holds `{}`, which this version of Throughline does not know; run the version that wrote it, or a newer one",
                    self.notice
                ))
            })?,
            rule_id: self.rule_id,
            destination: self.receiver,
            attempt: self.attempt,
            at_ns: self.at_ns,
            ok: self.ok != 0,
            detail: self.detail,
        })
    }
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
struct InstanceStages {
    root_value: String,
    stage_ids: Vec<String>,
    stage_times: Vec<u64>,
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
    ) -> Result<Vec<(String, StageTimes)>, StoreError> {
        Ok(self
            .query(
                "SELECT ?fields FROM process_instances FINAL \
                 WHERE process_id = ? AND start_ns >= ? AND start_ns <= ? \
                 ORDER BY start_ns DESC LIMIT ?",
            )
            .bind(process_id)
            .bind(from_ns)
            .bind(to_ns)
            .bind(limit as u64)
            .fetch_all::<InstanceStages>()
            .await?
            .into_iter()
            .map(|r| {
                (
                    r.root_value,
                    StageTimes {
                        ids: r.stage_ids,
                        times: r.stage_times,
                    },
                )
            })
            .collect())
    }

    pub async fn alert_states(&self) -> Result<Vec<AlertRecord>, StoreError> {
        Ok(self
            .query("SELECT ?fields FROM alert_state FINAL ORDER BY rule_id")
            .fetch_all::<AlertStateRow>()
            .await?
            .into_iter()
            .map(AlertStateRow::record)
            .collect())
    }

    pub async fn write_alert_states(&self, states: &[AlertRecord]) -> Result<(), StoreError> {
        let rows: Vec<AlertStateRow> = states.iter().map(AlertStateRow::of).collect();
        self.insert_rows("alert_state", &rows).await
    }

    pub async fn write_alert_history(&self, changes: &[PhaseChange]) -> Result<(), StoreError> {
        let rows: Vec<AlertHistoryRow> = changes.iter().map(AlertHistoryRow::of).collect();
        self.insert_rows("alert_history", &rows).await
    }

    pub async fn write_alert_notifications(
        &self,
        deliveries: &[Delivery],
    ) -> Result<(), StoreError> {
        let rows: Vec<AlertNotificationRow> =
            deliveries.iter().map(AlertNotificationRow::of).collect();
        self.insert_rows("alert_notifications", &rows).await
    }

    /// A rule's newest phase changes, newest first.
    pub async fn alert_history(
        &self,
        rule_id: &str,
        limit: usize,
    ) -> Result<Vec<PhaseChange>, StoreError> {
        Ok(self
            .query(
                "SELECT ?fields FROM alert_history FINAL WHERE rule_id = ? \
                 ORDER BY at_ns DESC LIMIT ?",
            )
            .bind(rule_id)
            .bind(limit as u64)
            .fetch_all::<AlertHistoryRow>()
            .await?
            .into_iter()
            .map(AlertHistoryRow::change)
            .collect())
    }

    /// A rule's newest delivery attempts, newest first.
    pub async fn alert_notifications(
        &self,
        rule_id: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = self
            .query(
                "SELECT ?fields FROM alert_notifications FINAL WHERE rule_id = ? \
                 ORDER BY at_ns DESC, attempt DESC LIMIT ?",
            )
            .bind(rule_id)
            .bind(limit as u64)
            .fetch_all::<AlertNotificationRow>()
            .await?;
        convert(rows, AlertNotificationRow::delivery)
    }

    /// Open breaches now of a process, or one SLA.
    pub async fn open_breaches(
        &self,
        process_id: &str,
        sla_id: Option<&str>,
    ) -> Result<Vec<Breach>, StoreError> {
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
        convert(query.fetch_all::<BreachRow>().await?, BreachRow::breach)
    }

    /// Instances of a process started in `[from_ns, to_ns]` (whole
    /// minutes), from the process rollups.
    pub async fn instances_started_count(
        &self,
        process_id: &str,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<u64, StoreError> {
        Ok(self
            .process_rollups(from_ns, to_ns)
            .await?
            .get(process_id)
            .map_or(0, |r| r.started))
    }

    /// Of the instances of a process started in `[from_ns, to_ns]` (whole
    /// minutes), how many breached (one SLA, or any) so far, from the
    /// process rollups.
    pub async fn instances_breached_count(
        &self,
        process_id: &str,
        sla_id: Option<&str>,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<u64, StoreError> {
        let rollups = self.process_rollups(from_ns, to_ns).await?;
        let Some(r) = rollups.get(process_id) else {
            return Ok(0);
        };
        Ok(match sla_id {
            Some(sla) => r.slas.get(sla).map_or(0, |c| c.breached),
            None => r.any_breached,
        })
    }

    /// How many distinct keys of `linked_type` the keys `(type, value)` are
    /// linked to (the customers of some orders). `DISTINCT` needs no
    /// `FINAL`: a link's unmerged copies name the same value, and without it
    /// only the sort-key columns of the keys' granules are read.
    pub async fn linked_count(
        &self,
        keys: &[(String, String)],
        linked_type: &str,
    ) -> Result<u64, StoreError> {
        let mut values = std::collections::BTreeSet::new();
        for chunk in keys.chunks(CHUNK) {
            let sql = format!(
                "SELECT DISTINCT linked_value FROM key_links_v2 \
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
