//! Retention: how long each class of data is kept, enforced by dropping
//! whole partitions (`ALTER TABLE ... DROP PARTITION ID`, the same on 18.16
//! and on current releases: no `TTL`, no mutation, no rewrite). A partition
//! goes once it lies wholly before `now - limit` of its table's class; the
//! partitions are read from `system.parts` (`Store::partitions`, the
//! database's active parts), so a pass costs one row a partition and a
//! statement a dropped one, whatever the tables hold.
//!
//! The key index holds a row per key of each span, event and log record, in
//! day partitions of the record's time: a partition cannot be cut by record
//! kind, so the key index is kept no longer than the span class (nor than
//! its own `keys` class): a key-index row never outlives its span. Events
//! and log records kept longer than spans stay in their tables, the event
//! list and the instances, but a key's journey reaches back only as far as
//! the span class.
//!
//! The disk guard: with `max_disk` set, when the database's active bytes
//! exceed it after the pass by age, the oldest partition of the largest
//! class goes first, one at a time, until it fits (a span partition takes
//! the key-index partitions of its day and before with it). A partition
//! that still holds the present (today's, this month's) is never dropped.
//!
//! On a cluster the partitions are those of every node's local tables,
//! summed by the name of their `Distributed` table (so `max_disk` is the
//! whole cluster's), and a partition is dropped on every node.
//!
//! `correlator_state` and `alert_state` have no time partition and are not
//! governed (see [`Policy`]); the correlator prunes `correlation_feed_v2`
//! itself. `process_instances` and `breaches` are partitioned by the month
//! of the instance's start and of the breach's due time since migration
//! 0016; the unpartitioned tables it replaces leave no partition of a
//! month (their one partition, `all`, is never dropped).

use std::time::Duration;

use clickhouse::sql::Identifier;
use time::{Date, Month};

use crate::inspect::PartitionSize;
use crate::{Store, StoreError};

/// A class of data with a lifetime of its own (a key of `[retention]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Spans,
    Logs,
    Events,
    /// The key index, key links and the correlator's walking records.
    Keys,
    /// Process steps, instances, breaches and their rollups.
    Instances,
    /// Alert history and notification attempts.
    Alerts,
    /// The per-minute and per-hour rollups of spans, events and calls.
    Rollups,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::Spans,
        Class::Logs,
        Class::Events,
        Class::Keys,
        Class::Instances,
        Class::Alerts,
        Class::Rollups,
    ];

    /// Its key in `[retention]`.
    pub fn name(self) -> &'static str {
        match self {
            Class::Spans => "spans",
            Class::Logs => "logs",
            Class::Events => "events",
            Class::Keys => "keys",
            Class::Instances => "instances",
            Class::Alerts => "alerts",
            Class::Rollups => "rollups",
        }
    }
}

const DAY: Duration = Duration::from_secs(86_400);

/// How long each class is kept (`None`: forever), and the disk guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub spans: Option<Duration>,
    pub logs: Option<Duration>,
    pub events: Option<Duration>,
    pub keys: Option<Duration>,
    pub instances: Option<Duration>,
    pub alerts: Option<Duration>,
    pub rollups: Option<Duration>,
    /// Bytes the database's active parts may take; `None`: no limit.
    pub max_disk: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            spans: Some(14 * DAY),
            logs: Some(14 * DAY),
            events: Some(90 * DAY),
            keys: Some(400 * DAY),
            instances: Some(400 * DAY),
            alerts: Some(400 * DAY),
            rollups: Some(90 * DAY),
            max_disk: None,
        }
    }
}

impl Retention {
    /// Nothing is ever dropped.
    pub const FOREVER: Retention = Retention {
        spans: None,
        logs: None,
        events: None,
        keys: None,
        instances: None,
        alerts: None,
        rollups: None,
        max_disk: None,
    };

    /// The limit of a class as configured.
    pub fn limit(&self, class: Class) -> Option<Duration> {
        match class {
            Class::Spans => self.spans,
            Class::Logs => self.logs,
            Class::Events => self.events,
            Class::Keys => self.keys,
            Class::Instances => self.instances,
            Class::Alerts => self.alerts,
            Class::Rollups => self.rollups,
        }
    }

    pub fn set(&mut self, class: Class, limit: Option<Duration>) {
        match class {
            Class::Spans => self.spans = limit,
            Class::Logs => self.logs = limit,
            Class::Events => self.events = limit,
            Class::Keys => self.keys = limit,
            Class::Instances => self.instances = limit,
            Class::Alerts => self.alerts = limit,
            Class::Rollups => self.rollups = limit,
        }
    }

    /// What is in force for `table`.
    pub fn policy(&self, table: &str) -> Policy {
        if let Some(g) = governed(table) {
            let own = self.limit(g.class);
            let (limit, capped_by) = match g.capped_by {
                Some(other) => match (own, self.limit(other)) {
                    (Some(a), Some(b)) if b < a => (Some(b), Some(other)),
                    (None, Some(b)) => (Some(b), Some(other)),
                    _ => (own, None),
                },
                None => (own, None),
            };
            return Policy::Class {
                class: g.class,
                limit,
                capped_by,
            };
        }
        match table {
            "correlation_feed_v2" => Policy::PrunedByCorrelator,
            "correlator_state" | "alert_state" | "schema_migrations" => Policy::State,
            _ => Policy::Other,
        }
    }

    /// The partitions of `partitions` to drop at `now_s` (Unix seconds):
    /// first those past their class's limit, then, while the whole
    /// database (every partition of `partitions`) is over `max_disk`, the
    /// oldest of the largest class. In the order to drop them.
    pub fn plan(&self, partitions: &[PartitionSize], now_s: u64) -> Plan {
        let mut candidates: Vec<Candidate> = partitions
            .iter()
            .filter_map(|p| {
                let g = governed(&p.table)?;
                let (start_s, end_s) = g.unit.bounds(&p.partition_id)?;
                Some(Candidate {
                    partition: p,
                    governed: g,
                    start_s,
                    end_s,
                })
            })
            .collect();
        let mut plan = Plan {
            total_before: partitions.iter().map(|p| p.bytes).sum(),
            ..Plan::default()
        };
        candidates.retain(|c| {
            let limit = match self.policy(&c.partition.table) {
                Policy::Class { limit, .. } => limit,
                _ => None,
            };
            let past = limit.is_some_and(|l| c.end_s.saturating_add(l.as_secs()) <= now_s);
            if past {
                plan.drops.push(PartitionDrop::of(c.partition, Reason::Age));
            }
            !past
        });
        plan.total_after = plan.total_before - plan.drops.iter().map(|d| d.bytes).sum::<u64>();
        let Some(max) = self.max_disk else {
            return plan;
        };
        let mut sizes = std::collections::BTreeMap::<Class, u64>::new();
        for c in &candidates {
            *sizes.entry(c.governed.class).or_default() += c.partition.bytes;
        }
        // The present is never dropped.
        candidates.retain(|c| c.end_s <= now_s);
        while plan.total_after > max {
            let Some(class) = largest_class(&sizes, &candidates) else {
                plan.still_over = true;
                break;
            };
            let oldest = candidates
                .iter()
                .filter(|c| c.governed.class == class)
                .min_by_key(|c| (c.start_s, c.partition.table.as_str()))
                .expect("the largest class has a candidate");
            let start_s = oldest.start_s;
            let table = oldest.partition.table.clone();
            let partition_id = oldest.partition.partition_id.clone();
            // The partition, and what may not outlive it.
            let goes = |c: &Candidate| {
                (c.partition.table == table && c.partition.partition_id == partition_id)
                    || (c.governed.capped_by == Some(class) && c.start_s <= start_s)
            };
            for c in candidates.iter().filter(|c| goes(c)) {
                plan.drops
                    .push(PartitionDrop::of(c.partition, Reason::Disk));
                plan.total_after = plan.total_after.saturating_sub(c.partition.bytes);
                let size = sizes.entry(c.governed.class).or_default();
                *size = size.saturating_sub(c.partition.bytes);
            }
            candidates.retain(|c| !goes(c));
        }
        plan
    }
}

/// The class with the most bytes (`sizes`) that has a partition among
/// `candidates`.
fn largest_class(
    sizes: &std::collections::BTreeMap<Class, u64>,
    candidates: &[Candidate],
) -> Option<Class> {
    sizes
        .iter()
        .filter(|(class, _)| candidates.iter().any(|c| c.governed.class == **class))
        .max_by_key(|(class, bytes)| (**bytes, std::cmp::Reverse(**class)))
        .map(|(class, _)| *class)
}

struct Candidate<'a> {
    partition: &'a PartitionSize,
    governed: &'static Governed,
    start_s: u64,
    end_s: u64,
}

/// What governs a table's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Its partitions go once wholly older than `limit` (`None`: kept
    /// forever); `capped_by`: the limit is that class's, shorter than the
    /// table's own (the key index never outlives the spans).
    Class {
        class: Class,
        limit: Option<Duration>,
        capped_by: Option<Class>,
    },
    /// The correlator drops what it has read (five-minute partitions).
    PrunedByCorrelator,
    /// One row per rule, worker or migration: it does not grow with data.
    State,
    /// Not a table retention knows (a view's inner table, a table of a
    /// newer release): nothing is dropped.
    Other,
}

/// The partitioning of a governed table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// `toDate(...)`: partition id `YYYYMMDD`.
    Day,
    /// `toYYYYMM(...)`: partition id `YYYYMM`.
    Month,
}

impl Unit {
    /// The partition's `[start, end)` in Unix seconds, read as UTC days
    /// (a server in another time zone partitions by its local days, so a
    /// partition goes up to a few hours before or after its limit); `None`
    /// for an id of another shape, which is then never dropped.
    pub(crate) fn bounds(self, id: &str) -> Option<(u64, u64)> {
        let digits = |range: std::ops::Range<usize>| id.get(range)?.parse::<u32>().ok();
        let (start, end) = match self {
            Unit::Day if id.len() == 8 => {
                let month = Month::try_from(digits(4..6)? as u8).ok()?;
                let day =
                    Date::from_calendar_date(digits(0..4)? as i32, month, digits(6..8)? as u8)
                        .ok()?;
                (day, day.next_day()?)
            }
            Unit::Month if id.len() == 6 => {
                let year = digits(0..4)? as i32;
                let month = Month::try_from(digits(4..6)? as u8).ok()?;
                let first = Date::from_calendar_date(year, month, 1).ok()?;
                let next_year = if month == Month::December {
                    year + 1
                } else {
                    year
                };
                (
                    first,
                    Date::from_calendar_date(next_year, month.next(), 1).ok()?,
                )
            }
            _ => return None,
        };
        let seconds = |d: Date| u64::try_from(d.midnight().assume_utc().unix_timestamp()).ok();
        Some((seconds(start)?, seconds(end)?))
    }
}

/// A table whose partitions retention drops.
struct Governed {
    table: &'static str,
    class: Class,
    unit: Unit,
    /// A class whose limit it never outlives, if shorter than its own.
    capped_by: Option<Class>,
}

const fn table(table: &'static str, class: Class, unit: Unit) -> Governed {
    Governed {
        table,
        class,
        unit,
        capped_by: None,
    }
}

/// Every table with a time partition. The tables that migrations replaced
/// (`spans`, `key_index`, `key_links`, `correlation_feed`) are no longer
/// written; what an older release left in them goes with their class.
const GOVERNED: &[Governed] = &[
    table("spans_v2", Class::Spans, Unit::Day),
    table("spans", Class::Spans, Unit::Day),
    table("correlation_feed", Class::Spans, Unit::Day),
    table("logs", Class::Logs, Unit::Day),
    table("events", Class::Events, Unit::Day),
    table("trace_events", Class::Events, Unit::Day),
    Governed {
        capped_by: Some(Class::Spans),
        ..table("key_index_v2", Class::Keys, Unit::Day)
    },
    Governed {
        capped_by: Some(Class::Spans),
        ..table("key_index", Class::Keys, Unit::Day)
    },
    // Which keys a record that reached no hub carried, by the record's
    // day: it lives as long as the key index rows it speaks for.
    Governed {
        capped_by: Some(Class::Spans),
        ..table("orphan_keys", Class::Keys, Unit::Day)
    },
    // The days of the key index from before `0020`, dropped with them.
    Governed {
        capped_by: Some(Class::Spans),
        ..table("hub_legacy_days", Class::Keys, Unit::Day)
    },
    table("key_links_v2", Class::Keys, Unit::Month),
    table("key_links", Class::Keys, Unit::Month),
    table("correlator_walks", Class::Keys, Unit::Month),
    table("process_steps", Class::Instances, Unit::Month),
    // By the month of the instance's start, of the breach's due time (0016).
    table("process_instances", Class::Instances, Unit::Month),
    table("breaches", Class::Instances, Unit::Month),
    // The process rollups summarize instances: they live as long.
    table("instances_by_start", Class::Instances, Unit::Month),
    table("breaches_by_due", Class::Instances, Unit::Month),
    table("plant_instances_by_start", Class::Instances, Unit::Month),
    table("plant_breaches_by_due", Class::Instances, Unit::Month),
    table("process_minutes", Class::Instances, Unit::Month),
    table("process_hours", Class::Instances, Unit::Month),
    table("breach_minutes", Class::Instances, Unit::Month),
    table("alert_history", Class::Alerts, Unit::Month),
    table("alert_notifications", Class::Alerts, Unit::Month),
    table("span_minutes", Class::Rollups, Unit::Day),
    table("span_hours", Class::Rollups, Unit::Day),
    table("span_duration_minutes", Class::Rollups, Unit::Day),
    table("span_duration_hours", Class::Rollups, Unit::Day),
    table("event_minutes", Class::Rollups, Unit::Day),
    table("event_hours", Class::Rollups, Unit::Day),
    table("edge_minutes", Class::Rollups, Unit::Day),
    table("plant_span_minutes", Class::Rollups, Unit::Day),
    table("plant_span_hours", Class::Rollups, Unit::Day),
    table("plant_span_duration_minutes", Class::Rollups, Unit::Day),
    table("plant_span_duration_hours", Class::Rollups, Unit::Day),
    table("plant_event_minutes", Class::Rollups, Unit::Day),
    table("plant_event_hours", Class::Rollups, Unit::Day),
];

fn governed(table: &str) -> Option<&'static Governed> {
    GOVERNED.iter().find(|g| g.table == table)
}

/// Why a partition is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Wholly older than its class's limit.
    Age,
    /// The disk guard: the database was over `max_disk`.
    Disk,
}

/// A partition to drop, or dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDrop {
    pub table: String,
    pub partition_id: String,
    pub rows: u64,
    pub bytes: u64,
    pub reason: Reason,
}

impl PartitionDrop {
    fn of(p: &PartitionSize, reason: Reason) -> PartitionDrop {
        PartitionDrop {
            table: p.table.clone(),
            partition_id: p.partition_id.clone(),
            rows: p.rows,
            bytes: p.bytes,
            reason,
        }
    }
}

/// What a pass drops (or dropped), and the database's size around it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub drops: Vec<PartitionDrop>,
    /// Active bytes of the database before and (expected) after.
    pub total_before: u64,
    pub total_after: u64,
    /// The disk guard could not get under `max_disk` without dropping the
    /// present.
    pub still_over: bool,
}

impl Store {
    /// One retention pass at `now_s` (Unix seconds): reads the partitions,
    /// drops those `retention` says, in order. A failed drop ends the pass
    /// with its error; the next pass plans again from what is left.
    /// `dropped` is called after each partition is dropped.
    pub async fn retention_pass(
        &self,
        retention: &Retention,
        now_s: u64,
        mut dropped: impl FnMut(&PartitionDrop),
    ) -> Result<Plan, StoreError> {
        let partitions = self.partitions().await?;
        let plan = retention.plan(&partitions, now_s);
        // On a cluster the partition goes from every node's local table
        // (a node without it drops nothing).
        let targets: Vec<(Store, String)> = match self.node_stores().await? {
            None => vec![(self.clone(), String::new())],
            Some(nodes) => nodes
                .into_iter()
                .map(|n| (n, crate::cluster::LOCAL.to_string()))
                .collect(),
        };
        for drop in &plan.drops {
            for (store, suffix) in &targets {
                store
                    .query("ALTER TABLE ? DROP PARTITION ID ?")
                    .bind(Identifier(&format!("{}{suffix}", drop.table)))
                    .bind(drop.partition_id.as_str())
                    .execute()
                    .await?;
            }
            dropped(drop);
        }
        Ok(plan)
    }
}

#[cfg(test)]
pub(crate) mod tests;
