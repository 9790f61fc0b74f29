-- Integration events (CloudEvents, and OTLP log records that are events).
-- source + event_id identify an event: the writer drops a redelivery it finds
-- already stored, and the sort key collapses any that slip through on merge;
-- readers use FINAL.
CREATE TABLE IF NOT EXISTS events {{on_cluster}} (
    time DateTime,
    time_ns UInt64,
    time_missing UInt8,
    received_ns UInt64,
    source String,
    event_id String,
    system String,
    type String,
    subject String,
    outcome String,
    attempt UInt32,
    trace_id FixedString(16),
    span_id FixedString(8),
    correlation_id String,
    causation_id String,
    data String,
    data_content_type String,
    attr_keys Array(String),
    attr_values Array(String),
    key_types Array(String),
    key_values Array(String),
    origin String
) ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(source, event_id)}}
PARTITION BY toDate(time)
ORDER BY (source, event_id);

-- The events that carry a trace context, ordered by trace id, so that a trace
-- lookup finds its events without scanning the events table.
CREATE TABLE IF NOT EXISTS trace_events {{on_cluster}} (
    trace_id FixedString(16),
    span_id FixedString(8),
    time DateTime,
    time_ns UInt64,
    source String,
    event_id String
) ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(trace_id)}}
PARTITION BY toDate(time)
ORDER BY (trace_id, source, event_id);
