-- Spans as sent, one row per (trace_id, span_id). A redelivered span has the
-- same sort key and collapses into one row on merge; readers use FINAL so that
-- unmerged duplicates never change a count. Ordered by trace id: a trace lookup
-- reads one granule range per day partition, never a scan.
CREATE TABLE IF NOT EXISTS spans {{on_cluster}} (
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
ORDER BY (trace_id, span_id);
