-- Records that reached a stage but carry no key of their process's root type:
-- they count for a root only through key links, so a link that arrives later
-- must find them again. One row per (key the record carries, record), written
-- once by the correlator when it first takes the record; it reads them by key
-- when a new link touches one of those keys, and loads their keys into its
-- filter at start. Only these records, never every span: the table stays a
-- small fraction of the feed, and re-resolving a late link reads it instead
-- of the key index.
CREATE TABLE IF NOT EXISTS correlator_walks {{on_cluster}} (
    key_type String,
    key_value String,
    time DateTime,
    record_kind String,
    record_ref String,
    system String,
    name String,
    time_ns UInt64,
    failed UInt8,
    key_types Array(String),
    key_values Array(String)
) ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(key_type, key_value)}}
PARTITION BY toYYYYMM(time)
ORDER BY (key_type, key_value, record_ref);
