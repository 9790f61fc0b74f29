-- What the correlator reads: one row per stored span or event that carries a
-- business key, in ingestion order. ingested_ns is unique per row within a
-- collector's write; (ingested_ns, record_ref) orders all rows.
CREATE TABLE IF NOT EXISTS correlation_feed {{on_cluster}} (
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
PARTITION BY toDate(ingested)
ORDER BY (ingested_ns, record_ref);

-- A record that reached a stage of a process instance. One row per
-- (process, root key value, stage, record); the correlator writes each once.
CREATE TABLE IF NOT EXISTS process_steps {{on_cluster}} (
    process_id String,
    root_value String,
    stage_id String,
    record_ref String,
    time DateTime,
    time_ns UInt64,
    failed UInt8,
    via_type String,
    via_value String,
    written_ns UInt64
) ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(process_id, root_value)}}
PARTITION BY toYYYYMM(time)
ORDER BY (process_id, root_value, stage_id, record_ref);

-- Each instance's latest evaluation; readers use FINAL.
CREATE TABLE IF NOT EXISTS process_instances {{on_cluster}} (
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
ORDER BY (process_id, root_value);

-- Each SLA's breach of each instance, latest state (open, closed, or cleared
-- when a late-arriving record showed it was met); readers use FINAL.
CREATE TABLE IF NOT EXISTS breaches {{on_cluster}} (
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
ORDER BY (process_id, sla_id, root_value);

-- Where the correlator stopped: it resumes from here.
CREATE TABLE IF NOT EXISTS correlator_state {{on_cluster}} (
    name String,
    watermark_ns UInt64,
    updated_ns UInt64
) ENGINE = {{engine ReplacingMergeTree(updated_ns) | shard cityHash64(name)}}
ORDER BY name;
