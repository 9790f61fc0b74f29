-- OTLP log records, including those that are integration events (event_name
-- set). record_id is a hash of the record's content, so a redelivered record
-- has the same sort key and collapses on merge.
CREATE TABLE IF NOT EXISTS logs {{on_cluster}} (
    time DateTime,
    time_ns UInt64,
    observed_ns UInt64,
    record_id UInt64,
    trace_id FixedString(16),
    span_id FixedString(8),
    severity_number Int32,
    severity_text String,
    body String,
    event_name String,
    service String,
    attr_keys Array(String),
    attr_values Array(String),
    resource_keys Array(String),
    resource_values Array(String),
    scope_name String,
    scope_version String,
    key_types Array(String),
    key_values Array(String)
) ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(service)}}
PARTITION BY toDate(time)
ORDER BY (service, time_ns, record_id);
