//! The edge's reports to central: every `forward_heartbeat` (10 s, the
//! first one interval after the start), its
//! plant and backlog (spool bytes, spooled requests, age of the oldest
//! unsent record) to `POST /v1/plants/status`, with the forward token.
//! Reports go on while the spool is empty and while batches are being
//! retried, so central hears a live link whatever the traffic, and reads
//! silence as a link down (`plant_link_timeout`). A report that fails is
//! not retried: the next one is due soon and says more.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::upstream::{Answer, Upstream};
use crate::metrics::Metrics;
use crate::receivers::plant_status;

/// The backlog as the spool's gauges say, now: bytes, requests, age of
/// the oldest unsent record in nanoseconds (0 when none waits).
pub fn backlog(metrics: &Metrics) -> (u64, u64, u64) {
    let s = &metrics.spool;
    let (bytes, records) = (
        s.bytes.load(Ordering::Relaxed),
        s.records.load(Ordering::Relaxed),
    );
    let oldest = s.oldest_unsent_ns.load(Ordering::Relaxed);
    let age = if oldest == 0 || records == 0 {
        0
    } else {
        domain::now_ns().saturating_sub(oldest)
    };
    (bytes, records, age)
}

pub(super) async fn run(
    upstream: Upstream,
    plant: String,
    every: Duration,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let (bytes, records, age) = backlog(&metrics);
        let body = plant_status::encode(&plant, bytes, records, age);
        match upstream
            .post(plant_status::PATH, "application/json", &body)
            .await
        {
            Answer::Accepted(_) => {
                if failing {
                    tracing::info!(plant = %plant, "central takes the plant's status reports again");
                }
                failing = false;
            }
            Answer::Refused(e) | Answer::Forbidden(e) | Answer::Retry(e) => {
                if !failing {
                    tracing::warn!(plant = %plant, error = %e, "a plant status report did not reach central; retrying every heartbeat");
                }
                failing = true;
            }
            Answer::TooLarge => failing = true,
        }
    }
}
