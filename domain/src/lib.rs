//! Throughline's domain, the crate every other one builds on: the canonical
//! records (`model`), business keys and how they are found (`keys`), the
//! rules for integration events (`events`), what one record may carry
//! (`limits`), process definitions and durations (`process`), and the state
//! of one process instance with the SLA rule (`instance`), and URLs made safe
//! to show (`redact`).
//!
//! It owns meaning, not mechanics: it never knows a wire format, SQL, a row
//! type, a socket or a file other than the definitions it is handed, and it
//! depends on no other crate of ours. Everything here is pure and tested on
//! its own.

pub mod alert;
pub mod events;
pub mod feed;
pub mod hash;
pub mod histogram;
pub mod instance;
pub mod keys;
pub mod limits;
pub mod model;
pub mod plant;
pub mod process;
pub mod process_rollup;
pub mod quantile;
pub mod redact;
pub mod service_graph;
pub mod text;
pub mod time;

/// Unix time now, in nanoseconds.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
