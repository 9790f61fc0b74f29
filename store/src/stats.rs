//! Aggregates over a time range, for the console's overview and systems
//! pages and the alert rules about systems. Spans, events, durations and
//! service-map edges are read from the rollups (`sql/0013_rollups.sql`),
//! never from the raw rows: a range is taken in whole minutes (the minute
//! holding its start and the one holding its end count whole), its whole
//! UTC hours read from the `*_hours` tables and the minutes at its ends
//! from the `*_minutes` ones ([`Rollup`]), so any range costs hours x
//! series plus at most two hours of minutes x series. p50 and p95 come from
//! duration histograms (`domain::histogram`: within 12.5 %).

use std::collections::HashMap;

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::timeout::Statement;
use super::{Store, StoreError};

/// What one system sent over a range: spans by `service.name`, events by
/// their system.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SystemActivity {
    pub system: String,
    pub spans: u64,
    pub span_errors: u64,
    pub events: u64,
    /// Events whose outcome was `failed` or `dead_lettered`.
    pub event_failures: u64,
    pub dead_letters: u64,
    /// The newest span or event from it up to the end of the range, looking
    /// back at most [`LAST_SEEN_LOOKBACK_NS`] before its start; 0 when none.
    pub last_seen_ns: u64,
}

/// How far before a range's start "last seen" looks.
pub const LAST_SEEN_LOOKBACK_NS: u64 = 7 * 86_400 * 1_000_000_000;

/// One operation (span name) of one service over a range.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationStats {
    pub service: String,
    pub name: String,
    pub count: u64,
    pub errors: u64,
    /// From the duration histogram: within 12.5 % (`domain::histogram`).
    pub p50_ns: u64,
    pub p95_ns: u64,
}

/// Calls from one service to another: a span whose parent span belongs to a
/// different service.
#[derive(Debug, Clone, Row, Deserialize, Serialize, PartialEq)]
pub struct ServiceEdge {
    pub parent: String,
    pub child: String,
    pub calls: u64,
    pub errors: u64,
}

/// How many times something happened in each bucket of a range.
#[derive(Debug, Clone, Row, Deserialize, PartialEq)]
pub struct BucketCount {
    #[serde(rename = "grp")]
    pub group: String,
    pub bucket: u64,
    pub count: u64,
}

/// `DateTime` bounds for partition pruning, from nanosecond bounds.
fn seconds(from_ns: u64, to_ns: u64) -> (u32, u32) {
    let s = |ns: u64| u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX);
    (s(from_ns), s(to_ns))
}

/// A range in rollup rows: its whole UTC hours `[hours_from, hours_to)`
/// from a `*_hours` table, and the minutes from the one holding its start
/// to the one holding its end that lie outside those hours from the
/// matching `*_minutes` table. So a range of any length reads at most two
/// hours of minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rollup<'a> {
    pub(crate) first_minute: u32,
    pub(crate) last_minute: u32,
    pub(crate) hours_from: u32,
    pub(crate) hours_to: u32,
    /// One plant's rollups (`sql/0017_plants.sql`, `plant_*`) instead of
    /// every record's.
    plant: Option<&'a str>,
}

impl<'a> Rollup<'a> {
    pub(crate) fn new(from_ns: u64, to_ns: u64) -> Self {
        let (from_s, to_s) = seconds(from_ns, to_ns);
        let (first_minute, last_minute) = (from_s - from_s % 60, to_s - to_s % 60);
        let hours_from = first_minute.div_ceil(3600).saturating_mul(3600);
        let hours_to = ((u64::from(last_minute) + 60) / 3600 * 3600) as u32;
        Self {
            first_minute,
            last_minute,
            hours_from,
            hours_to: hours_to.max(hours_from),
            plant: None,
        }
    }

    /// The same range in one plant's rollups (all records' when `None`).
    pub(crate) fn of_plant(self, plant: Option<&'a str>) -> Self {
        Self { plant, ..self }
    }

    /// `SELECT {columns} FROM {table}_hours` over the whole hours `UNION
    /// ALL` the same from `{table}_minutes` over the other minutes (from
    /// `plant_{table}_*`, that plant's rows only, for a plant); bind with
    /// [`Rollup::bind`].
    fn union(&self, columns: &str, table: &str) -> String {
        let (prefix, only) = match self.plant {
            Some(_) => ("plant_", "plant = ? AND "),
            None => ("", ""),
        };
        format!(
            "SELECT {columns} FROM {prefix}{table}_hours \
             WHERE {only}hour >= toDateTime(?) AND hour < toDateTime(?) \
             UNION ALL \
             SELECT {columns} FROM {prefix}{table}_minutes \
             WHERE {only}minute >= toDateTime(?) AND minute <= toDateTime(?) \
               AND (minute < toDateTime(?) OR minute >= toDateTime(?))"
        )
    }

    fn bind(&self, query: Statement) -> Statement {
        let plant = |q: Statement| match self.plant {
            Some(p) => q.bind(p),
            None => q,
        };
        plant(plant(query).bind(self.hours_from).bind(self.hours_to))
            .bind(self.first_minute)
            .bind(self.last_minute)
            .bind(self.hours_from)
            .bind(self.hours_to)
    }
}

impl Store {
    /// Every system's spans and events over `[from_ns, to_ns]` (whole
    /// minutes), by name.
    pub async fn system_activity(
        &self,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<Vec<SystemActivity>, StoreError> {
        self.system_activity_in(from_ns, to_ns, None).await
    }

    /// [`Store::system_activity`] of one plant's records (those naming it
    /// in `plant.id`, events in their `plant` extension), or of all.
    pub async fn system_activity_in(
        &self,
        from_ns: u64,
        to_ns: u64,
        plant: Option<&str>,
    ) -> Result<Vec<SystemActivity>, StoreError> {
        #[derive(Row, Deserialize)]
        struct SpanCounts {
            service: String,
            spans: u64,
            errors: u64,
            last_ns: u64,
        }
        #[derive(Row, Deserialize)]
        struct EventCounts {
            system: String,
            events: u64,
            failures: u64,
            dead: u64,
            last_ns: u64,
        }
        #[derive(Row, Deserialize)]
        struct LastSeen {
            system: String,
            last_ns: u64,
        }
        let range = Rollup::new(from_ns, to_ns).of_plant(plant);
        let spans = range
            .bind(self.query(&format!(
                "SELECT service, countMerge(spans) AS spans, sumMerge(errors) AS errors, \
                        maxMerge(newest_ns) AS last_ns \
                 FROM ({}) GROUP BY service",
                range.union("service, spans, errors, newest_ns", "span")
            )))
            .fetch_all::<SpanCounts>();
        let events = range
            .bind(self.query(&format!(
                "SELECT system, sum(n) AS events, \
                        sumIf(n, outcome IN ('failed', 'dead_lettered')) AS failures, \
                        sumIf(n, outcome = 'dead_lettered') AS dead, \
                        max(last) AS last_ns \
                 FROM ( \
                   SELECT system, outcome, countMerge(events) AS n, maxMerge(newest_ns) AS last \
                   FROM ({}) GROUP BY system, outcome \
                 ) GROUP BY system",
                range.union("system, outcome, events, newest_ns", "event")
            )))
            .fetch_all::<EventCounts>();
        // A system silent over the whole range still has a row: that is
        // when its silence matters most. Hours x systems, so looking a
        // week back costs little.
        let look =
            Rollup::new(from_ns.saturating_sub(LAST_SEEN_LOOKBACK_NS), to_ns).of_plant(plant);
        let last_seen = look
            .bind(look.bind(self.query(&format!(
                "SELECT system, max(last_ns) AS last_ns FROM ( \
                   SELECT service AS system, maxMerge(newest_ns) AS last_ns \
                   FROM ({}) GROUP BY system \
                   UNION ALL \
                   SELECT system, maxMerge(newest_ns) AS last_ns \
                   FROM ({}) GROUP BY system \
                 ) GROUP BY system",
                look.union("service, newest_ns", "span"),
                look.union("system, newest_ns", "event"),
            ))))
            .fetch_all::<LastSeen>();
        let (spans, events, last_seen) = tokio::try_join!(spans, events, last_seen)?;
        let mut out: std::collections::BTreeMap<String, SystemActivity> = Default::default();
        for s in spans {
            let a = out.entry(s.service.clone()).or_default();
            a.system = s.service;
            a.spans = s.spans;
            a.span_errors = s.errors;
            a.last_seen_ns = a.last_seen_ns.max(s.last_ns);
        }
        for e in events {
            let a = out.entry(e.system.clone()).or_default();
            a.system = e.system;
            a.events = e.events;
            a.event_failures = e.failures;
            a.dead_letters = e.dead;
            a.last_seen_ns = a.last_seen_ns.max(e.last_ns);
        }
        for l in last_seen {
            let a = out.entry(l.system.clone()).or_default();
            a.system = l.system;
            a.last_seen_ns = a.last_seen_ns.max(l.last_ns);
        }
        Ok(out.into_values().collect())
    }

    /// Events of `system` (of `event_type`, or of every type) over
    /// `[from_ns, to_ns]` (whole minutes), and how many of them failed or
    /// were dead-lettered: `(events, bad)`. From the event rollups.
    pub async fn event_outcome_counts(
        &self,
        system: &str,
        event_type: Option<&str>,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<(u64, u64), StoreError> {
        #[derive(Row, Deserialize)]
        struct Counts {
            events: u64,
            bad: u64,
        }
        let range = Rollup::new(from_ns, to_ns);
        let counts = range
            .bind(self.query(&format!(
                "SELECT sum(n) AS events, \
                        sumIf(n, outcome IN ('failed', 'dead_lettered')) AS bad \
                 FROM ( \
                   SELECT outcome, countMerge(events) AS n \
                   FROM ({}) WHERE system = ? AND (? = 0 OR type = ?) GROUP BY outcome \
                 )",
                range.union("system, type, outcome, events", "event")
            )))
            .bind(system)
            .bind(u8::from(event_type.is_some()))
            .bind(event_type.unwrap_or(""))
            .fetch_one::<Counts>()
            .await?;
        Ok((counts.events, counts.bad))
    }

    /// Rate, errors and latency of every operation over `[from_ns, to_ns]`
    /// (whole minutes); p50 and p95 from the duration histograms.
    pub async fn operation_stats(
        &self,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<Vec<OperationStats>, StoreError> {
        self.operation_stats_in(from_ns, to_ns, None).await
    }

    /// [`Store::operation_stats`] of one plant's spans, or of all.
    pub async fn operation_stats_in(
        &self,
        from_ns: u64,
        to_ns: u64,
        plant: Option<&str>,
    ) -> Result<Vec<OperationStats>, StoreError> {
        #[derive(Row, Deserialize)]
        struct Counts {
            service: String,
            name: String,
            count: u64,
            errors: u64,
        }
        #[derive(Row, Deserialize)]
        struct Bucket {
            service: String,
            name: String,
            bucket: u16,
            spans: u64,
        }
        let range = Rollup::new(from_ns, to_ns).of_plant(plant);
        let counts = range
            .bind(self.query(&format!(
                "SELECT service, name, countMerge(spans) AS count, sumMerge(errors) AS errors \
                 FROM ({}) GROUP BY service, name ORDER BY service, count DESC, name",
                range.union("service, name, spans, errors", "span")
            )))
            .fetch_all::<Counts>();
        let buckets = range
            .bind(self.query(&format!(
                "SELECT service, name, bucket, sum(spans) AS spans \
                 FROM ({}) GROUP BY service, name, bucket",
                range.union("service, name, bucket, spans", "span_duration")
            )))
            .fetch_all::<Bucket>();
        let (counts, buckets) = tokio::try_join!(counts, buckets)?;
        let mut histograms: HashMap<(String, String), Vec<(u16, u64)>> = HashMap::new();
        for b in buckets {
            histograms
                .entry((b.service, b.name))
                .or_default()
                .push((b.bucket, b.spans));
        }
        Ok(counts
            .into_iter()
            .map(|c| {
                let histogram = histograms
                    .remove(&(c.service.clone(), c.name.clone()))
                    .unwrap_or_default();
                let q = |q: f64| domain::histogram::quantile(&histogram, q).unwrap_or(0);
                OperationStats {
                    p50_ns: q(0.5),
                    p95_ns: q(0.95),
                    service: c.service,
                    name: c.name,
                    count: c.count,
                    errors: c.errors,
                }
            })
            .collect())
    }

    /// Which service calls which over `[from_ns, to_ns]` (whole minutes of
    /// the calling span's start), as the collector paired them
    /// (`domain::service_graph`). Minutes x edges: few rows.
    pub async fn service_edges(
        &self,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<Vec<ServiceEdge>, StoreError> {
        let range = Rollup::new(from_ns, to_ns);
        self.query(
            "SELECT parent, child, sum(calls) AS calls, sum(errors) AS errors \
             FROM edge_minutes WHERE minute >= toDateTime(?) AND minute <= toDateTime(?) \
             GROUP BY parent, child \
             ORDER BY calls DESC, parent, child",
        )
        .bind(range.first_minute)
        .bind(range.last_minute)
        .fetch_all::<ServiceEdge>()
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::Rollup;

    const S: u64 = 1_000_000_000;
    /// 2025-11-30 10:00:00 UTC.
    const TEN: u64 = 1_764_496_800;

    fn at(h: u64, m: u64, s: u64) -> u64 {
        (TEN + (h - 10) * 3600 + m * 60 + s) * S
    }

    fn hm(h: u64, m: u64) -> u32 {
        (TEN + (h - 10) * 3600 + m * 60) as u32
    }

    #[test]
    fn a_range_reads_its_whole_hours_and_the_minutes_around_them() {
        let r = Rollup::new(at(10, 37, 13), at(12, 30, 5));
        assert_eq!(
            (r.first_minute, r.last_minute, r.hours_from, r.hours_to),
            (hm(10, 37), hm(12, 30), hm(11, 0), hm(12, 0))
        );
        // An hour exactly: that hour, no minutes outside it.
        let r = Rollup::new(at(10, 0, 0), at(10, 59, 59));
        assert_eq!((r.hours_from, r.hours_to), (hm(10, 0), hm(11, 0)));
        assert_eq!((r.first_minute, r.last_minute), (hm(10, 0), hm(10, 59)));
    }

    #[test]
    fn a_range_within_an_hour_reads_minutes_only() {
        let r = Rollup::new(at(10, 21, 0), at(10, 39, 30));
        assert_eq!(r.hours_from, r.hours_to);
        assert_eq!((r.first_minute, r.last_minute), (hm(10, 21), hm(10, 39)));
    }
}
