-- Plants (issue 19): the rollups of 0013 again, with the plant as the
-- first dimension, so that the overview and systems pages filtered by one
-- plant read that plant's hours and minutes x series and nothing else.
-- A record's plant is the resource attribute `plant.id` of a span (an edge
-- collector adds it) and the `plant` extension of an event (kept among its
-- attributes). The views take it from the row as written, so the raw
-- tables need no new column; records that name no plant are not counted
-- here at all (the unfiltered pages read the rollups of 0013, which count
-- every record), so a deployment without plants pays nothing.
-- Counted from this migration on: records stored before it are in the
-- rollups of 0013, not in these.
CREATE TABLE IF NOT EXISTS plant_span_minutes {{on_cluster}} (
    plant String,
    minute DateTime,
    service String,
    name String,
    spans AggregateFunction(count),
    errors AggregateFunction(sum, UInt64),
    newest_ns AggregateFunction(max, UInt64)
) ENGINE = {{engine AggregatingMergeTree() | shard cityHash64(plant, service, name)}}
PARTITION BY toDate(minute)
ORDER BY (plant, minute, service, name);

CREATE MATERIALIZED VIEW IF NOT EXISTS plant_span_minutes_mv {{on_cluster}} TO plant_span_minutes AS
SELECT resource_values[indexOf(resource_keys, 'plant.id')] AS plant,
       toStartOfMinute(start_time) AS minute, service, name,
       countState() AS spans,
       sumState(toUInt64(status_code = 2)) AS errors,
       maxState(start_ns) AS newest_ns
FROM spans_v2
WHERE indexOf(resource_keys, 'plant.id') > 0
GROUP BY plant, minute, service, name;

CREATE TABLE IF NOT EXISTS plant_span_hours {{on_cluster}} (
    plant String,
    hour DateTime,
    service String,
    name String,
    spans AggregateFunction(count),
    errors AggregateFunction(sum, UInt64),
    newest_ns AggregateFunction(max, UInt64)
) ENGINE = {{engine AggregatingMergeTree() | shard cityHash64(plant, service, name)}}
PARTITION BY toDate(hour)
ORDER BY (plant, hour, service, name);

CREATE MATERIALIZED VIEW IF NOT EXISTS plant_span_hours_mv {{on_cluster}} TO plant_span_hours AS
SELECT resource_values[indexOf(resource_keys, 'plant.id')] AS plant,
       toStartOfHour(start_time, 'UTC') AS hour, service, name,
       countState() AS spans,
       sumState(toUInt64(status_code = 2)) AS errors,
       maxState(start_ns) AS newest_ns
FROM spans_v2
WHERE indexOf(resource_keys, 'plant.id') > 0
GROUP BY plant, hour, service, name;

-- Duration histograms per plant: the bucket expression of 0013.
CREATE TABLE IF NOT EXISTS plant_span_duration_minutes {{on_cluster}} (
    plant String,
    minute DateTime,
    service String,
    name String,
    bucket UInt16,
    spans UInt64
) ENGINE = {{engine SummingMergeTree() | shard cityHash64(plant, service, name)}}
PARTITION BY toDate(minute)
ORDER BY (plant, minute, service, name, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS plant_span_duration_minutes_mv {{on_cluster}} TO plant_span_duration_minutes AS
WITH greatest(duration_ns, 8) AS g,
     toUInt64(floor(log2(g))) AS m0,
     toUInt64(m0 + (bitShiftRight(g, m0 + 1) > 0) - (bitShiftRight(g, m0) = 0)) AS m
SELECT resource_values[indexOf(resource_keys, 'plant.id')] AS plant,
       toStartOfMinute(start_time) AS minute, service, name,
       toUInt16(if(duration_ns < 8, duration_ns,
                   toUInt64((m - 2) * 8 + bitAnd(bitShiftRight(g, m - 3), 7)))) AS bucket,
       count() AS spans
FROM spans_v2
WHERE indexOf(resource_keys, 'plant.id') > 0
GROUP BY plant, minute, service, name, bucket;

CREATE TABLE IF NOT EXISTS plant_span_duration_hours {{on_cluster}} (
    plant String,
    hour DateTime,
    service String,
    name String,
    bucket UInt16,
    spans UInt64
) ENGINE = {{engine SummingMergeTree() | shard cityHash64(plant, service, name)}}
PARTITION BY toDate(hour)
ORDER BY (plant, hour, service, name, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS plant_span_duration_hours_mv {{on_cluster}} TO plant_span_duration_hours AS
WITH greatest(duration_ns, 8) AS g,
     toUInt64(floor(log2(g))) AS m0,
     toUInt64(m0 + (bitShiftRight(g, m0 + 1) > 0) - (bitShiftRight(g, m0) = 0)) AS m
SELECT resource_values[indexOf(resource_keys, 'plant.id')] AS plant,
       toStartOfHour(start_time, 'UTC') AS hour, service, name,
       toUInt16(if(duration_ns < 8, duration_ns,
                   toUInt64((m - 2) * 8 + bitAnd(bitShiftRight(g, m - 3), 7)))) AS bucket,
       count() AS spans
FROM spans_v2
WHERE indexOf(resource_keys, 'plant.id') > 0
GROUP BY plant, hour, service, name, bucket;

CREATE TABLE IF NOT EXISTS plant_event_minutes {{on_cluster}} (
    plant String,
    minute DateTime,
    system String,
    type String,
    outcome String,
    events AggregateFunction(count),
    newest_ns AggregateFunction(max, UInt64)
) ENGINE = {{engine AggregatingMergeTree() | shard cityHash64(plant, system, type)}}
PARTITION BY toDate(minute)
ORDER BY (plant, minute, system, type, outcome);

CREATE MATERIALIZED VIEW IF NOT EXISTS plant_event_minutes_mv {{on_cluster}} TO plant_event_minutes AS
SELECT attr_values[indexOf(attr_keys, 'plant')] AS plant,
       toStartOfMinute(time) AS minute, system, type, outcome,
       countState() AS events,
       maxState(time_ns) AS newest_ns
FROM events
WHERE indexOf(attr_keys, 'plant') > 0
GROUP BY plant, minute, system, type, outcome;

CREATE TABLE IF NOT EXISTS plant_event_hours {{on_cluster}} (
    plant String,
    hour DateTime,
    system String,
    type String,
    outcome String,
    events AggregateFunction(count),
    newest_ns AggregateFunction(max, UInt64)
) ENGINE = {{engine AggregatingMergeTree() | shard cityHash64(plant, system, type)}}
PARTITION BY toDate(hour)
ORDER BY (plant, hour, system, type, outcome);

CREATE MATERIALIZED VIEW IF NOT EXISTS plant_event_hours_mv {{on_cluster}} TO plant_event_hours AS
SELECT attr_values[indexOf(attr_keys, 'plant')] AS plant,
       toStartOfHour(time, 'UTC') AS hour, system, type, outcome,
       countState() AS events,
       maxState(time_ns) AS newest_ns
FROM events
WHERE indexOf(attr_keys, 'plant') > 0
GROUP BY plant, hour, system, type, outcome;

-- plant_links: what each plant's edge collector last reported of itself
-- (`POST /v1/plants/status` every `forward_heartbeat`, also while its
-- spool is empty): its backlog (bytes, records, age of the oldest unsent
-- record when it reported), and when central heard it. One row per
-- report; the newest per plant wins (readers take argMax by received_ns
-- over few rows). Central shows a plant's link down when it heard nothing
-- for `plant_link_timeout`.
CREATE TABLE IF NOT EXISTS plant_links {{on_cluster}} (
    plant String,
    received_ns UInt64,
    backlog_bytes UInt64,
    backlog_records UInt64,
    oldest_age_ns UInt64
) ENGINE = {{engine ReplacingMergeTree(received_ns) | shard cityHash64(plant)}}
ORDER BY plant;
