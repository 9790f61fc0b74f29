-- Spans keyed by (trace_id, span_id, service) instead of (trace_id, span_id):
-- a connector token is bound to its systems, and with the service in the sort
-- key a span one system sends can never replace another system's span that
-- has the same ids (under the old key the last one written won). A redelivered
-- span (same ids, same service) still collapses into one row; readers use
-- FINAL. The spans stored before this migration are copied once, one day
-- partition per insert (`DayCopy` in collector/src/storage/migrate.rs); the
-- old `spans` table is then no longer written or read, and can be dropped.
CREATE TABLE IF NOT EXISTS spans_v2 {{on_cluster}} (
    start_time DateTime,
    start_ns UInt64,
    duration_ns UInt64,
    trace_id FixedString(16),
    span_id FixedString(8),
    parent_span_id FixedString(8),
    trace_state String,
    flags UInt32,
    service String,
    name String,
    kind UInt8,
    status_code UInt8,
    status_message String,
    attr_keys Array(String),
    attr_values Array(String),
    resource_keys Array(String),
    resource_values Array(String),
    scope_name String,
    scope_version String,
    event_times Array(UInt64),
    event_names Array(String),
    event_attrs Array(String),
    link_trace_ids Array(String),
    link_span_ids Array(String),
    link_trace_states Array(String),
    link_attrs Array(String),
    key_types Array(String),
    key_values Array(String)
) ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(trace_id)}}
PARTITION BY toDate(start_time)
ORDER BY (trace_id, span_id, service);
