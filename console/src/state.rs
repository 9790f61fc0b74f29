//! What every handler and page gets: the read layer's context ([`Reads`])
//! and what only the HTTP layers need (the process's metrics, sign-in, the
//! correlator's figures). It derefs to `Reads`, so a handler passes
//! `&state` to a read function.

use std::ops::Deref;
use std::sync::Arc;

use collector::metrics::Metrics;

use crate::read::Reads;

#[derive(Clone)]
pub struct AppState {
    /// What the read layer reads with.
    pub reads: Reads,
    /// The process's metrics, shown at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Users, API keys, sessions.
    pub auth: Arc<crate::auth::Auth>,
    /// The correlator of this process, if one runs here: its open breaches
    /// are the console's `/metrics` gauge; without it they are read from
    /// ClickHouse.
    pub correlator: Option<Arc<engine::metrics::CorrelatorMetrics>>,
}

impl Deref for AppState {
    type Target = Reads;

    fn deref(&self) -> &Reads {
        &self.reads
    }
}
