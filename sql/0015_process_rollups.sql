-- Per-process rollups, so that the overview, the process pages and their
-- API read minutes (or hours) x processes for a range, never every instance
-- started in it (issue 16). An instance's status and SLAs change over time,
-- so these are not additive deltas (a retried cycle would count twice):
-- the correlator recomputes a whole minute from the truth whenever it
-- writes an instance that starts in it (engine/src/correlator/rollups.rs),
-- and a recomputed row replaces the one before (ReplacingMergeTree on the
-- time it was computed; readers use FINAL, over few rows).
--
-- instances_by_start: each instance's latest row (process_instances'
-- columns), sorted by its minute of start, so that recomputing a minute
-- reads that minute's instances only, and a page of the newest instances
-- of a range reads its last minutes. Written beside process_instances.
-- When an instance's start moves to an earlier minute (an earlier stage
-- arrived late), a row with deleted = 1 replaces it under the old minute.
CREATE TABLE IF NOT EXISTS instances_by_start {{on_cluster}} (
    process_id String,
    start_minute DateTime,
    root_value String,
    start_ns UInt64,
    last_ns UInt64,
    status String,
    current_stage String,
    stage_ids Array(String),
    stage_times Array(UInt64),
    failed UInt8,
    open_breaches UInt32,
    deleted UInt8,
    updated_ns UInt64
) ENGINE = {{engine ReplacingMergeTree(updated_ns) | shard cityHash64(process_id)}}
PARTITION BY toYYYYMM(start_minute)
ORDER BY (process_id, start_minute, root_value);

-- process_minutes / process_hours: per process and minute (hour) of start,
-- the aggregate of its instances (`domain::process_rollup::ProcessRollup`):
-- started and per status; instances with any SLA breached; instances per
-- stage reached (stage_ids /
-- reached); per SLA met and breached as judged when computed (sla_ids /
-- met / breached); durations per stage pair as one entry per (pair, log
-- bucket, histogram bin) (pair_from / pair_to / buckets / bins / counts).
-- Parallel arrays in one row, so that a recompute replaces the minute
-- whole; a range reads at most a few thousand such rows.
CREATE TABLE IF NOT EXISTS process_minutes {{on_cluster}} (
    process_id String,
    minute DateTime,
    started UInt64,
    in_flight UInt64,
    stalled UInt64,
    completed UInt64,
    failed UInt64,
    any_breached UInt64,
    stage_ids Array(String),
    reached Array(UInt64),
    sla_ids Array(String),
    met Array(UInt64),
    breached Array(UInt64),
    pair_from Array(String),
    pair_to Array(String),
    buckets Array(UInt16),
    bins Array(UInt8),
    counts Array(UInt64),
    computed_ns UInt64
) ENGINE = {{engine ReplacingMergeTree(computed_ns) | shard cityHash64(process_id)}}
PARTITION BY toYYYYMM(minute)
ORDER BY (process_id, minute);

CREATE TABLE IF NOT EXISTS process_hours {{on_cluster}} (
    process_id String,
    hour DateTime,
    started UInt64,
    in_flight UInt64,
    stalled UInt64,
    completed UInt64,
    failed UInt64,
    any_breached UInt64,
    stage_ids Array(String),
    reached Array(UInt64),
    sla_ids Array(String),
    met Array(UInt64),
    breached Array(UInt64),
    pair_from Array(String),
    pair_to Array(String),
    buckets Array(UInt16),
    bins Array(UInt8),
    counts Array(UInt64),
    computed_ns UInt64
) ENGINE = {{engine ReplacingMergeTree(computed_ns) | shard cityHash64(process_id)}}
PARTITION BY toYYYYMM(hour)
ORDER BY (process_id, hour);

-- breaches_by_due: each breach's latest row (breaches' columns), sorted by
-- its minute due, so that recomputing a minute of breach_minutes, and the
-- alert rules' breaches due in a window, read those minutes only. When a
-- breach's due time moves to another minute, a `cleared` row replaces it
-- under the old one.
CREATE TABLE IF NOT EXISTS breaches_by_due {{on_cluster}} (
    process_id String,
    due_minute DateTime,
    sla_id String,
    root_value String,
    from_ns UInt64,
    due_ns UInt64,
    to_ns UInt64,
    late_ns UInt64,
    state String,
    updated_ns UInt64
) ENGINE = {{engine ReplacingMergeTree(updated_ns) | shard cityHash64(process_id)}}
PARTITION BY toYYYYMM(due_minute)
ORDER BY (process_id, due_minute, sla_id, root_value);

-- breach_minutes: per process and minute due, the breaches (open or
-- closed, not cleared), recomputed from breaches_by_due.
CREATE TABLE IF NOT EXISTS breach_minutes {{on_cluster}} (
    process_id String,
    minute DateTime,
    breaches UInt64,
    computed_ns UInt64
) ENGINE = {{engine ReplacingMergeTree(computed_ns) | shard cityHash64(process_id)}}
PARTITION BY toYYYYMM(minute)
ORDER BY (process_id, minute);

-- open_breaches_now: the open breaches per process and SLA, as the
-- correlator knows them (it keeps every open breach in memory), rewritten
-- when they change.
CREATE TABLE IF NOT EXISTS open_breaches_now {{on_cluster}} (
    process_id String,
    sla_id String,
    open UInt64,
    updated_ns UInt64
) ENGINE = {{engine ReplacingMergeTree(updated_ns) | shard cityHash64(process_id)}}
ORDER BY (process_id, sla_id);
