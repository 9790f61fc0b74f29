//! The engine: the background workers that turn what is stored into state.
//! The `correlator` ties spans and events to process instances and finds
//! SLA breaches (including those no event announces); the `alerts`
//! evaluator watches rules, keeps their phase and notifies its destinations (the config's `[[receivers]]`).
//!
//! Each runs once per deployment and works from ClickHouse through the
//! store with a watermark or stored state, so a restart resumes and a rerun
//! writes nothing twice. `retention` drops what has outlived its class
//! (and, over the disk limit, the oldest first). The engine never serves HTTP and never knows a
//! wire format of ingest; it reads and writes only through `store`.

pub mod alerts;
pub mod correlator;
pub mod metrics;
pub mod retention;
