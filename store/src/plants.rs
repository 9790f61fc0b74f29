//! Plants on central (`sql/0017_plants.sql`): the edge collectors' reports
//! of their backlog (`plant_links`), and each plant's newest stored record
//! from the plant rollups' hours. Both are read per plant, never per
//! record: a report is one row per plant after merges (the newest by
//! `received_ns` is taken), the rollups give hours x series for the
//! lookback.

use std::collections::BTreeMap;

use clickhouse::Row;
use domain::plant::{PlantReport, PlantState};
use serde::{Deserialize, Serialize};

use super::stats::LAST_SEEN_LOOKBACK_NS;
use super::{Store, StoreError};

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
struct ReportRow {
    plant: String,
    received_ns: u64,
    backlog_bytes: u64,
    backlog_records: u64,
    oldest_age_ns: u64,
}

impl ReportRow {
    fn of(r: &PlantReport) -> Self {
        Self {
            plant: r.plant.clone(),
            received_ns: r.received_ns,
            backlog_bytes: r.backlog_bytes,
            backlog_records: r.backlog_records,
            oldest_age_ns: r.oldest_age_ns,
        }
    }

    fn report(self) -> PlantReport {
        PlantReport {
            plant: self.plant,
            received_ns: self.received_ns,
            backlog_bytes: self.backlog_bytes,
            backlog_records: self.backlog_records,
            oldest_age_ns: self.oldest_age_ns,
        }
    }
}

#[derive(Row, Deserialize)]
struct Newest {
    plant: String,
    newest_ns: u64,
}

impl Store {
    /// Keeps an edge collector's report of its backlog.
    pub async fn write_plant_report(&self, report: &PlantReport) -> Result<(), StoreError> {
        self.insert_rows("plant_links", &[ReportRow::of(report)])
            .await
    }

    /// Every plant central knows at `now_ns`: those that reported, and
    /// those with records stored within [`LAST_SEEN_LOOKBACK_NS`], each
    /// with its newest record time and its last report. By plant name.
    pub async fn plant_states(&self, now_ns: u64) -> Result<Vec<PlantState>, StoreError> {
        let since = u32::try_from(now_ns.saturating_sub(LAST_SEEN_LOOKBACK_NS) / 1_000_000_000)
            .unwrap_or(u32::MAX);
        let since = since - since % 3600;
        let reports = self
            .query(
                "SELECT plant, max(t) AS received_ns, argMax(b, t) AS backlog_bytes, \
                        argMax(n, t) AS backlog_records, argMax(a, t) AS oldest_age_ns \
                 FROM ( \
                   SELECT plant, received_ns AS t, backlog_bytes AS b, \
                          backlog_records AS n, oldest_age_ns AS a \
                   FROM plant_links \
                 ) GROUP BY plant",
            )
            .fetch_all::<ReportRow>();
        let newest = self
            .query(
                "SELECT plant, max(newest) AS newest_ns FROM ( \
                   SELECT plant, maxMerge(newest_ns) AS newest FROM plant_span_hours \
                   WHERE hour >= toDateTime(?) GROUP BY plant \
                   UNION ALL \
                   SELECT plant, maxMerge(newest_ns) AS newest FROM plant_event_hours \
                   WHERE hour >= toDateTime(?) GROUP BY plant \
                 ) GROUP BY plant",
            )
            .bind(since)
            .bind(since)
            .fetch_all::<Newest>();
        let (reports, newest) = tokio::try_join!(reports, newest)?;
        let mut out: BTreeMap<String, PlantState> = BTreeMap::new();
        for n in newest {
            let s = out.entry(n.plant.clone()).or_default();
            s.plant = n.plant;
            s.newest_record_ns = n.newest_ns;
        }
        for r in reports {
            let s = out.entry(r.plant.clone()).or_default();
            s.plant = r.plant.clone();
            s.last_report = Some(r.report());
        }
        Ok(out.into_values().collect())
    }
}
