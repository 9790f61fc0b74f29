-- Features of current releases where they pay, each behind a named version
-- gate (`{{if FEATURE: ...}}`, see store/src/template.rs): on 18.16 these
-- statements render to nothing and are not sent.
--
-- codecs (19.11 on): T64 then ZSTD(1) on the time and duration columns of
-- the large tables that are not sort-key columns. Their values lie in a
-- narrow range in a part but in no order (the tables are sorted by trace,
-- key or event id), which LZ4 barely compresses: on 2 M span-like rows on
-- chDB 26.x, nanosecond times took 9.5 MB instead of 13.6 MB (LZ4), start
-- times 1.8 MB instead of 5.9 MB, durations 7.3 MB instead of 11.4 MB;
-- Delta or DoubleDelta did worse than ZSTD alone on unordered values. A
-- codec change alone rewrites nothing: new parts, and parts as they merge,
-- take it.
{{if codecs: ALTER TABLE spans_v2 {{on_cluster}}
    MODIFY COLUMN start_time DateTime CODEC(T64, ZSTD(1)),
    MODIFY COLUMN start_ns UInt64 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN duration_ns UInt64 CODEC(T64, ZSTD(1))}};

{{if codecs: ALTER TABLE key_index_v2 {{on_cluster}}
    MODIFY COLUMN time DateTime CODEC(T64, ZSTD(1)),
    MODIFY COLUMN time_ns UInt64 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN duration_ns UInt64 DEFAULT 0 CODEC(T64, ZSTD(1))}};

{{if codecs: ALTER TABLE events {{on_cluster}}
    MODIFY COLUMN time DateTime CODEC(T64, ZSTD(1)),
    MODIFY COLUMN time_ns UInt64 CODEC(T64, ZSTD(1)),
    MODIFY COLUMN received_ns UInt64 CODEC(T64, ZSTD(1))}};

-- skip_indexes (20.3 on): events are sorted by (source, event_id) and a
-- source speaks for one system, so a granule holds one system or a few; a
-- `set` index on `system` lets the event list filtered by system and the
-- alert rules on one system's events (`system = ?`) skip the granules of
-- the other systems instead of reading the whole day: on 2 M events of 8
-- systems on chDB 26.x, 37 granules of 245 read instead of all (a
-- `(system, type) IN` tuple alone does not use it). The trace id and the
-- key value lead the sort keys of spans_v2 and key_index_v2: a bloom filter
-- on them would skip nothing the primary index does not. Existing parts
-- are indexed by a background mutation that writes the index files only.
{{if skip_indexes: ALTER TABLE events {{on_cluster}}
    ADD INDEX IF NOT EXISTS events_system system TYPE set(100) GRANULARITY 1}};

{{if skip_indexes: ALTER TABLE events {{on_cluster}} MATERIALIZE INDEX events_system}};

-- process_instances and breaches get a month partition, of the instance's
-- start and of the breach's due time, so that retention drops them with
-- the instances class (store/src/retention.rs), like their rollups of 0015.
-- The tables are made under new names; the migrator (`Repartition` in
-- store/src/migrate.rs) copies the rows one month at a time, renames the
-- old table `*_unpartitioned` and the new one into its place, and drops the
-- old one. Same columns in the same order. A row whose start (due time)
-- moves to another month leaves its earlier row in the earlier month:
-- readers use FINAL, which merges across partitions.
CREATE TABLE IF NOT EXISTS process_instances_by_month {{on_cluster}} (
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
    updated_ns UInt64
) ENGINE = {{engine ReplacingMergeTree(updated_ns) | shard cityHash64(process_id, root_value)}}
PARTITION BY toYYYYMM(toDateTime(intDiv(start_ns, 1000000000)))
ORDER BY (process_id, root_value);

CREATE TABLE IF NOT EXISTS breaches_by_month {{on_cluster}} (
    process_id String,
    sla_id String,
    root_value String,
    from_ns UInt64,
    due_ns UInt64,
    to_ns UInt64,
    late_ns UInt64,
    state String,
    updated_ns UInt64
) ENGINE = {{engine ReplacingMergeTree(updated_ns) | shard cityHash64(process_id, root_value)}}
PARTITION BY toYYYYMM(toDateTime(intDiv(due_ns, 1000000000)))
ORDER BY (process_id, sla_id, root_value);
