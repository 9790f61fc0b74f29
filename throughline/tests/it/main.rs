//! Integration tests: the real binary's parts against a real ClickHouse, fed
//! by real OpenTelemetry clients. Each test runs in a database of its own.

mod harness;

mod alerts;
mod bad_input;
mod browser;
mod cluster;
mod dashboards;
mod demo;
mod engines;
mod events;
mod faults;
mod hostile;
mod keys;
mod logs;
mod otlp;
mod pages;
mod partitions;
mod process_rollups;
mod processes;
mod retention;
mod rollups;
mod security;
mod slow_clients;
mod systems;
mod tls;
mod up;
