//! Integration tests: the real binary's parts against a real ClickHouse, fed
//! by real OpenTelemetry clients. Each test runs in a database of its own.

mod harness;

mod alertmanager;
mod alerts;
mod bad_input;
mod browser;
mod cluster;
mod cluster_replicated;
mod correlator_start;
mod dashboards;
mod demo;
mod engines;
mod events;
mod faults;
mod forward;
mod hostile;
mod keys;
mod logs;
mod otlp;
mod owners;
mod pages;
mod partitions;
mod plant_late;
mod plants;
mod process_rollups;
mod processes;
mod promtool;
mod retention;
mod rollups;
mod security;
mod slo_latency;
mod slos;
mod slow_clients;
mod systems;
mod tls;
mod up;
