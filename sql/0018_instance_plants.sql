-- The plant of a process instance and of its breaches (issue 19), so that
-- the process and breaches pages filter by plant reading that plant's rows.
-- A record's plant (a span's or log record's resource attribute `plant.id`,
-- an event's `plant` extension) travels with it through the correlator: the
-- feed and the walks carry it, a step keeps it, and an instance's plant is
-- the first plant one of its steps named (then it stays; records of other
-- plants do not move it). Its breaches take the instance's plant. Rows
-- written before this migration read '' (no plant).
ALTER TABLE correlation_feed_v2 {{on_cluster}} ADD COLUMN plant String DEFAULT '';

ALTER TABLE correlator_walks {{on_cluster}} ADD COLUMN plant String DEFAULT '';

ALTER TABLE process_steps {{on_cluster}} ADD COLUMN plant String DEFAULT '';

ALTER TABLE process_instances {{on_cluster}} ADD COLUMN plant String DEFAULT '';

ALTER TABLE breaches {{on_cluster}} ADD COLUMN plant String DEFAULT '';

ALTER TABLE instances_by_start {{on_cluster}} ADD COLUMN plant String DEFAULT '';

ALTER TABLE breaches_by_due {{on_cluster}} ADD COLUMN plant String DEFAULT '';

-- plant_instances_by_start / plant_breaches_by_due: the rows of
-- instances_by_start / breaches_by_due that name a plant, with the plant
-- first in the sort key, so that a page of one plant's newest instances
-- (breaches) reads that plant's last minutes, not every plant's. Filled by
-- views as the correlator writes (its `deleted` / `cleared` rows under an
-- old minute carry the plant too); readers use FINAL over a few minutes.
-- A deployment without plants writes nothing here.
CREATE TABLE IF NOT EXISTS plant_instances_by_start {{on_cluster}} (
    plant String,
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
) ENGINE = {{engine ReplacingMergeTree(updated_ns) | shard cityHash64(plant, process_id)}}
PARTITION BY toYYYYMM(start_minute)
ORDER BY (plant, process_id, start_minute, root_value);

CREATE MATERIALIZED VIEW IF NOT EXISTS plant_instances_by_start_mv {{on_cluster}} TO plant_instances_by_start AS
SELECT plant, process_id, start_minute, root_value, start_ns, last_ns, status, current_stage,
       stage_ids, stage_times, failed, open_breaches, deleted, updated_ns
FROM instances_by_start
WHERE plant != '';

CREATE TABLE IF NOT EXISTS plant_breaches_by_due {{on_cluster}} (
    plant String,
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
) ENGINE = {{engine ReplacingMergeTree(updated_ns) | shard cityHash64(plant, process_id)}}
PARTITION BY toYYYYMM(due_minute)
ORDER BY (plant, due_minute, process_id, sla_id, root_value);

CREATE MATERIALIZED VIEW IF NOT EXISTS plant_breaches_by_due_mv {{on_cluster}} TO plant_breaches_by_due AS
SELECT plant, process_id, due_minute, sla_id, root_value, from_ns, due_ns, to_ns, late_ns, state,
       updated_ns
FROM breaches_by_due
WHERE plant != '';
