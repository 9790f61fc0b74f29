//! What the writer keeps in memory for the per-minute rollups
//! (`sql/0013_rollups.sql`), between a batch leaving the spool and
//! ClickHouse confirming it.
//!
//! - **Redeliveries.** `span_minutes` is filled by a materialized view on
//!   every insert into `spans_v2`, so a span inserted twice would count
//!   twice there, though the raw table collapses it. [`Rollups::fresh`]
//!   drops a span (by a 128-bit hash of trace id, span id and service) or a
//!   log record (by its content id) that was stored among the last
//!   [`RECENT_SPANS`] spans or [`RECENT_LOGS`] log records, and repeats
//!   within one batch. A redelivery beyond that window is inserted again:
//!   the raw tables still keep it once, and the rollups count it twice.
//!   Events need nothing here: the store drops an event already stored.
//! - **Service-map edges.** [`Rollups::stored`] pairs the stored spans with
//!   their parents (`domain::service_graph`) and returns the calls to add
//!   to `edge_minutes`.
//!
//! Identities are remembered only once ClickHouse confirmed the batch: a
//! batch that failed is written whole again. Knows no wire format and no
//! SQL.

use std::collections::{HashSet, VecDeque};

use domain::model::{Batch, Span};
use domain::service_graph::{EdgeCount, ServiceGraph};

/// Spans remembered as stored, for dropping redeliveries (about 24 MB).
pub const RECENT_SPANS: usize = 500_000;
/// Log records remembered as stored.
pub const RECENT_LOGS: usize = 100_000;

/// The last `capacity` identities inserted, oldest forgotten first.
#[derive(Debug)]
struct Recent {
    capacity: usize,
    set: HashSet<u128>,
    order: VecDeque<u128>,
}

impl Recent {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    fn contains(&self, id: u128) -> bool {
        self.set.contains(&id)
    }

    fn insert(&mut self, id: u128) {
        if self.set.insert(id) {
            self.order.push_back(id);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

fn span_id(span: &Span) -> u128 {
    let parts = |tag: &'static [u8]| {
        domain::hash::fnv1a(&[
            tag,
            &span.trace_id.0,
            &span.span_id.0,
            span.service.as_bytes(),
        ])
    };
    (u128::from(parts(b"a")) << 64) | u128::from(parts(b"b"))
}

/// See the module docs.
#[derive(Debug)]
pub struct Rollups {
    spans: Recent,
    logs: Recent,
    graph: ServiceGraph,
}

impl Default for Rollups {
    fn default() -> Self {
        Self::new(RECENT_SPANS, RECENT_LOGS, ServiceGraph::default())
    }
}

impl Rollups {
    pub fn new(spans: usize, logs: usize, graph: ServiceGraph) -> Self {
        Self {
            spans: Recent::new(spans),
            logs: Recent::new(logs),
            graph,
        }
    }

    /// `batch` without the spans and log records stored recently or
    /// repeated in it; how many were dropped.
    pub fn fresh(&self, mut batch: Batch) -> (Batch, usize) {
        let before = batch.spans.len() + batch.logs.len();
        let mut here = HashSet::new();
        batch.spans.retain(|s| {
            let id = span_id(s);
            !self.spans.contains(id) && here.insert(id)
        });
        let mut here = HashSet::new();
        batch
            .logs
            .retain(|l| !self.logs.contains(u128::from(l.record_id)) && here.insert(l.record_id));
        let dropped = before - batch.spans.len() - batch.logs.len();
        (batch, dropped)
    }

    /// Remembers what ClickHouse confirmed of `batch` at `now_ns`; the
    /// service-map calls its spans make.
    pub fn stored(&mut self, batch: &Batch, now_ns: u64) -> Vec<EdgeCount> {
        for span in &batch.spans {
            self.spans.insert(span_id(span));
        }
        for log in &batch.logs {
            self.logs.insert(u128::from(log.record_id));
        }
        self.graph.observe(&batch.spans, now_ns)
    }
}

#[cfg(test)]
mod tests;
