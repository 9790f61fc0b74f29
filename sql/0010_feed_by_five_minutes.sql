-- The correlator's feed in five-minute partitions of ingestion time, so that
-- what the correlator has consumed is dropped whole (`ALTER TABLE ... DROP
-- PARTITION`, see `Store::prune_feed`) instead of kept forever at 20 to 40
-- bytes a span. Same columns and order as `correlation_feed`; the rows stored
-- before this migration are copied once (`DayCopy`), and the old table is
-- then neither written nor read (it can be dropped).
CREATE TABLE IF NOT EXISTS correlation_feed_v2 {{on_cluster}} (
    ingested DateTime,
    ingested_ns UInt64,
    record_kind String,
    record_ref String,
    system String,
    name String,
    time_ns UInt64,
    failed UInt8,
    key_types Array(String),
    key_values Array(String)
) ENGINE = {{engine MergeTree() | shard cityHash64(record_ref)}}
PARTITION BY intDiv(toUInt32(ingested), 300)
ORDER BY (ingested_ns, record_ref);
