-- Key links with 1,024 rows per granule instead of 8,192, for the same reason
-- as 0011: a hub key's walk reads one small range per key. Same columns in
-- the same order; the rows stored before are copied once (`DayCopy`, day by
-- day of `seen_at`), and `key_links` is then neither written nor read.
CREATE TABLE IF NOT EXISTS key_links_v2 {{on_cluster}} (
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
ORDER BY (key_type, key_value, linked_type, linked_value)
SETTINGS index_granularity = 1024;
