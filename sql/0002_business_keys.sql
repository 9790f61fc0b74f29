-- One row per (business key, record carrying it): lookups by key read one
-- ordered range here, then fetch the records by their own sort keys (spans by
-- trace id, events by source and id), never scanning spans or events.
CREATE TABLE IF NOT EXISTS key_index {{on_cluster}} (
    key_type String,
    key_value String,
    time DateTime,
    time_ns UInt64,
    record_kind String,
    trace_id FixedString(16),
    span_id FixedString(8),
    record_id UInt64,
    service String,
    name String,
    event_source String,
    event_id String,
    failed UInt8,
    record_key_types Array(String),
    record_key_values Array(String)
) ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(key_type, key_value)}}
PARTITION BY toDate(time)
ORDER BY (key_type, key_value, record_kind, trace_id, span_id, record_id, event_source, event_id);

-- Two keys seen on one record, stored in both directions so that either side
-- reads its links as one ordered range. `keep` (max u64 - ingested_ns) makes
-- the first ingestion survive a merge, so FINAL tells when a link was new.
CREATE TABLE IF NOT EXISTS key_links {{on_cluster}} (
    key_type String,
    key_value String,
    linked_type String,
    linked_value String,
    seen_at DateTime,
    seen_ns UInt64,
    ingested_ns UInt64,
    keep UInt64
) ENGINE = {{engine ReplacingMergeTree(keep) | shard cityHash64(key_type, key_value)}}
PARTITION BY toYYYYMM(seen_at)
ORDER BY (key_type, key_value, linked_type, linked_value);
