//! Alerts: rules kept as files (`rules`), evaluated every interval against
//! what ClickHouse holds (`evaluate`), moved through inactive -> pending ->
//! firing -> resolved (`state`), and sent to webhooks (`notify`).

pub mod rules;
pub mod state;
