//! Which service calls which, counted as spans are written, the way the
//! OpenTelemetry Collector's `servicegraph` connector does it: a span whose
//! parent span belongs to another service is one call from the parent's
//! service to the span's, in the minute the child started, an error when
//! the child's status is an error.
//!
//! A rollup cannot join a span to its parent, so [`ServiceGraph`] keeps a
//! bounded memory of recent spans (`(trace id, span id) -> service`) and of
//! children whose parent it has not seen yet. When the second of a pair
//! arrives, the edge is counted. The limits, by design:
//! - a parent that arrives more than [`ServiceGraph::ttl_ns`] after its
//!   child (or after [`ServiceGraph::max_items`] other spans) is not paired,
//!   and that call is not counted;
//! - a restart forgets the pending ones;
//! - with several collectors, a parent and its child must reach the same
//!   one: balance by trace id (the OpenTelemetry Collector's
//!   `loadbalancing` exporter with `routing_key: traceID`).
//!
//! The caller hands each span once (after dropping redeliveries), and
//! writes the returned increments.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::model::{Span, SpanId, StatusCode, TraceId};

/// Calls from one service to another in one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeCount {
    /// The start of the minute the child span started in, Unix nanoseconds.
    pub minute_ns: u64,
    pub parent: String,
    pub child: String,
    pub calls: u64,
    pub errors: u64,
}

type Key = (TraceId, SpanId);

/// A child span waiting for its parent.
#[derive(Debug)]
struct Child {
    service: String,
    start_ns: u64,
    error: bool,
}

/// Recent spans and the children waiting for their parents; see the
/// module docs.
#[derive(Debug)]
pub struct ServiceGraph {
    /// At most this many spans are remembered, and this many children wait.
    pub max_items: usize,
    /// How long a span or a waiting child is remembered.
    pub ttl_ns: u64,
    spans: HashMap<Key, (String, u64)>,
    span_order: VecDeque<(u64, Key)>,
    waiting: HashMap<Key, (Vec<Child>, u64)>,
    waiting_order: VecDeque<(u64, Key)>,
    waiting_children: usize,
    /// Children dropped unpaired (their parent never came in time).
    pub expired_children: u64,
}

const MINUTE_NS: u64 = 60 * 1_000_000_000;

impl Default for ServiceGraph {
    /// 200,000 spans and waiting children, for 10 minutes each.
    fn default() -> Self {
        Self::new(200_000, 10 * MINUTE_NS)
    }
}

impl ServiceGraph {
    pub fn new(max_items: usize, ttl_ns: u64) -> Self {
        Self {
            max_items: max_items.max(1),
            ttl_ns,
            spans: HashMap::new(),
            span_order: VecDeque::new(),
            waiting: HashMap::new(),
            waiting_order: VecDeque::new(),
            waiting_children: 0,
            expired_children: 0,
        }
    }

    /// Spans remembered and children waiting now.
    pub fn len(&self) -> (usize, usize) {
        (self.spans.len(), self.waiting_children)
    }

    /// Pairs `spans` with what is remembered and with each other at
    /// `now_ns`; the calls found, summed per minute and pair of services.
    pub fn observe<'a>(
        &mut self,
        spans: impl IntoIterator<Item = &'a Span>,
        now_ns: u64,
    ) -> Vec<EdgeCount> {
        self.expire(now_ns);
        let mut edges: BTreeMap<(u64, String, String), (u64, u64)> = BTreeMap::new();
        let mut count = |parent: &str, child: &str, start_ns: u64, error: bool| {
            if parent == child {
                return;
            }
            let minute = start_ns - start_ns % MINUTE_NS;
            let e = edges
                .entry((minute, parent.to_string(), child.to_string()))
                .or_default();
            e.0 += 1;
            e.1 += u64::from(error);
        };
        for span in spans {
            let key = (span.trace_id, span.span_id);
            let error = span.status_code == StatusCode::Error;
            if let Entry::Vacant(slot) = self.spans.entry(key) {
                slot.insert((span.service.clone(), now_ns));
                self.span_order.push_back((now_ns, key));
            }
            if let Some(parent) = span.parent_span_id {
                let parent_key = (span.trace_id, parent);
                match self.spans.get(&parent_key) {
                    Some((service, _)) => count(service, &span.service, span.start_ns, error),
                    None => {
                        let (children, _) = self.waiting.entry(parent_key).or_insert_with(|| {
                            self.waiting_order.push_back((now_ns, parent_key));
                            (Vec::new(), now_ns)
                        });
                        children.push(Child {
                            service: span.service.clone(),
                            start_ns: span.start_ns,
                            error,
                        });
                        self.waiting_children += 1;
                    }
                }
            }
            if let Some((children, _)) = self.waiting.remove(&key) {
                self.waiting_children -= children.len();
                let service = &self.spans[&key].0;
                for child in children {
                    count(service, &child.service, child.start_ns, child.error);
                }
            }
            self.shrink();
        }
        edges
            .into_iter()
            .map(|((minute_ns, parent, child), (calls, errors))| EdgeCount {
                minute_ns,
                parent,
                child,
                calls,
                errors,
            })
            .collect()
    }

    /// Forgets what is older than the time to live.
    fn expire(&mut self, now_ns: u64) {
        let cutoff = now_ns.saturating_sub(self.ttl_ns);
        while self.span_order.front().is_some_and(|(at, _)| *at < cutoff) {
            self.pop_span();
        }
        while self
            .waiting_order
            .front()
            .is_some_and(|(at, _)| *at < cutoff)
        {
            self.pop_waiting();
        }
    }

    /// Forgets the oldest beyond the size limits.
    fn shrink(&mut self) {
        while self.spans.len() > self.max_items && self.pop_span() {}
        while self.waiting_children > self.max_items && self.pop_waiting() {}
    }

    fn pop_span(&mut self) -> bool {
        let Some((at, key)) = self.span_order.pop_front() else {
            return false;
        };
        if self.spans.get(&key).is_some_and(|(_, t)| *t == at) {
            self.spans.remove(&key);
        }
        true
    }

    fn pop_waiting(&mut self) -> bool {
        let Some((at, key)) = self.waiting_order.pop_front() else {
            return false;
        };
        if self.waiting.get(&key).is_some_and(|(_, t)| *t == at) {
            if let Some((children, _)) = self.waiting.remove(&key) {
                self.waiting_children -= children.len();
                self.expired_children += children.len() as u64;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests;
