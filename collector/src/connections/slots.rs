//! The cap of a listener's connections: [`Slots`] hands each accepted
//! connection a [`Slot`], and at the cap closes the one idle the longest.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::metrics::{ListenerCounters, Metrics};

use super::watch::{ConnState, Reason};

/// How often a listener at its cap says so.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(60);

/// A listener's connections: at most `max` at once (see the `connections`
/// module docs).
pub struct Slots {
    what: &'static str,
    max: usize,
    permits: Arc<Semaphore>,
    /// Every connection holding a slot (TLS handshakes included), for
    /// eviction.
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next_id: AtomicU64,
    pub(super) counters: Arc<ListenerCounters>,
    last_warning: Mutex<Option<Instant>>,
}

/// A connection's place under its listener's cap, from the moment it was
/// accepted (before any TLS handshake), given back when dropped. While it
/// is held, the listener may evict the connection.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    slots: Arc<Slots>,
    id: u64,
    pub(super) state: Arc<ConnState>,
}

impl Slot {
    /// Resolves when the listener closes this connection to make room.
    pub async fn evicted(&self) {
        self.state.evict.cancelled().await
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots
            .conns
            .lock()
            .expect("connections lock")
            .remove(&self.id);
        self.slots.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slots {
    /// The slots of the listener `what`, counted in `metrics`.
    pub fn new(what: &'static str, max: usize, metrics: &Metrics) -> Arc<Self> {
        let max = max.max(1);
        let counters = metrics.listener(what);
        counters.limit.store(max as u64, Ordering::Relaxed);
        Arc::new(Self {
            what,
            max,
            permits: Arc::new(Semaphore::new(max)),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            counters,
            last_warning: Mutex::new(None),
        })
    }

    /// A slot for a connection just accepted. At the cap, the connection
    /// idle the longest is closed to make room; when none is idle, this
    /// waits until a connection ends.
    pub async fn admit(self: &Arc<Self>) -> Slot {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let evicted = self.evict_one();
                self.warn_at_cap(evicted);
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the connection semaphore is never closed")
            }
        };
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::new());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.conns
            .lock()
            .expect("connections lock")
            .insert(id, state.clone());
        Slot {
            _permit: permit,
            slots: self.clone(),
            id,
            state,
        }
    }

    /// Tells the idlest connection to close; false when none is idle.
    fn evict_one(&self) -> bool {
        let conns = self.conns.lock().expect("connections lock");
        let victim = conns
            .values()
            .filter(|c| c.idle() && !c.evict.is_cancelled())
            .min_by_key(|c| c.eviction_rank());
        match victim {
            Some(victim) => {
                victim.evict.cancel();
                Reason::Evicted.count(&self.counters);
                true
            }
            None => false,
        }
    }

    fn warn_at_cap(&self, evicted: bool) {
        let mut last = self.last_warning.lock().expect("warning lock");
        if last.is_some_and(|at| at.elapsed() < CAP_WARNING_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        let (what, max) = (self.what, self.max);
        if evicted {
            tracing::warn!(listener = what, max_connections = max, "{what} holds {max} connections (max_connections): closing the one idle the longest for each new one (said at most once a minute)");
        } else {
            tracing::warn!(listener = what, max_connections = max, "{what} holds {max} connections (max_connections), each with a request in flight: new connections wait until one ends (said at most once a minute); raise max_connections if this is normal load");
        }
    }
}
