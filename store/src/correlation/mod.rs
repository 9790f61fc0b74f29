//! What the correlator reads and writes, and what the API asks of its
//! results: the feed (`feed`), walking records by key (`walks`), first
//! sightings of links and steps (`steps`), instances and breaches
//! (`instances`), the watermark (here), and whether each correlator
//! partition still writes its own (`partitions`).

mod feed;
mod instances;
pub mod partitions;
mod steps;
mod walks;

pub use instances::{BreachFilter, InstanceFilter};
pub use steps::StageFirst;

use clickhouse::Row;
use serde::Deserialize;

use super::{Store, StoreError};

/// Items per `IN` list.
const CHUNK: usize = 1000;

/// One of `count` shares of the root values, by `cityHash64(root_value)`:
/// what a correlator reads at start one share at a time, so that a start
/// after a plant's day holds one share's rows at once, not the day's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootShare {
    pub index: u64,
    pub count: u64,
}

impl RootShare {
    /// The condition on `root_value` (binds: count, index).
    const SQL: &'static str = "cityHash64(root_value) % ? = ?";

    fn bind(self, statement: crate::timeout::Statement) -> crate::timeout::Statement {
        statement.bind(self.count.max(1)).bind(self.index)
    }
}

#[derive(Debug, Row, Deserialize)]
struct Watermark {
    watermark_ns: u64,
}

#[derive(Debug, Row, serde::Serialize)]
struct WatermarkRow {
    name: String,
    watermark_ns: u64,
    updated_ns: u64,
}

impl Store {
    pub async fn load_watermark(&self, name: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .query("SELECT watermark_ns FROM correlator_state FINAL WHERE name = ?")
            .bind(name)
            .fetch_optional::<Watermark>()
            .await?
            .map(|w| w.watermark_ns))
    }

    pub async fn save_watermark(&self, name: &str, watermark_ns: u64) -> Result<(), StoreError> {
        self.insert_rows(
            "correlator_state",
            &[WatermarkRow {
                name: name.to_string(),
                watermark_ns,
                updated_ns: domain::now_ns(),
            }],
        )
        .await
    }
}
