-- process_instances with granules of 1 024 rows instead of 8 192 (issue
-- 16). A customer's page reads the instances of its 100 orders and 200
-- work orders: 300 roots, each a granule of every part. At 8 192 rows a
-- granule that was every granule of a plant's day (556 740 rows read for
-- 58 instances, 35 to 50 ms), and it grew with the days kept.
-- Made under a new name; the migrator (`Repartition` with
-- `Shape::Granularity` in store/src/migrate.rs) copies the rows one month
-- at a time, renames the old table `process_instances_coarse` and the new
-- one into its place, and drops the old one. Same columns in the same
-- order (those of 0016 and 0018).
CREATE TABLE IF NOT EXISTS process_instances_fine {{on_cluster}} (
    process_id String,
    root_value String,
    start_ns UInt64,
    last_ns UInt64,
    status String,
    current_stage String,
    stage_ids Array(String),
    stage_times Array(UInt64),
    failed UInt8,
    open_breaches UInt32,
    updated_ns UInt64,
    plant String DEFAULT ''
) ENGINE = {{engine ReplacingMergeTree(updated_ns) | shard cityHash64(process_id, root_value)}}
PARTITION BY toYYYYMM(toDateTime(intDiv(start_ns, 1000000000)))
ORDER BY (process_id, root_value)
SETTINGS index_granularity = 1024;

{{if table_compress_blocks: ALTER TABLE process_instances_fine {{on_cluster}} MODIFY SETTING min_compress_block_size = 4096}};
