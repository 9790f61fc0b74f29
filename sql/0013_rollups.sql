-- Per-minute and per-hour rollups, so that an aggregate over a range reads
-- its whole (UTC) hours from the *_hours tables and only the minutes at its
-- ends from the *_minutes tables: hours x series plus at most two hours of
-- minutes x series, never the spans or events of the range (issue 16).
-- Hours are UTC hours (`toStartOfHour(t, 'UTC')`), whatever the server's
-- time zone, so a reader knows where they start.
--
-- span_minutes: per (minute of start, service, span name): spans, errors
-- (status_code = 2) and the newest start_ns. Filled by span_minutes_mv in
-- the same INSERT that writes spans_v2, so a span counts once per insert:
-- the collector drops a redelivered span it stored recently before it
-- reaches spans_v2 (see ARCHITECTURE.md, Rollups).
CREATE TABLE IF NOT EXISTS span_minutes {{on_cluster}} (
    minute DateTime,
    service String,
    name String,
    spans AggregateFunction(count),
    errors AggregateFunction(sum, UInt64),
    newest_ns AggregateFunction(max, UInt64)
) ENGINE = {{engine AggregatingMergeTree() | shard cityHash64(service, name)}}
PARTITION BY toDate(minute)
ORDER BY (minute, service, name);

CREATE MATERIALIZED VIEW IF NOT EXISTS span_minutes_mv {{on_cluster}} TO span_minutes AS
SELECT toStartOfMinute(start_time) AS minute, service, name,
       countState() AS spans,
       sumState(toUInt64(status_code = 2)) AS errors,
       maxState(start_ns) AS newest_ns
FROM spans_v2
GROUP BY minute, service, name;

CREATE TABLE IF NOT EXISTS span_hours {{on_cluster}} (
    hour DateTime,
    service String,
    name String,
    spans AggregateFunction(count),
    errors AggregateFunction(sum, UInt64),
    newest_ns AggregateFunction(max, UInt64)
) ENGINE = {{engine AggregatingMergeTree() | shard cityHash64(service, name)}}
PARTITION BY toDate(hour)
ORDER BY (hour, service, name);

CREATE MATERIALIZED VIEW IF NOT EXISTS span_hours_mv {{on_cluster}} TO span_hours AS
SELECT toStartOfHour(start_time, 'UTC') AS hour, service, name,
       countState() AS spans,
       sumState(toUInt64(status_code = 2)) AS errors,
       maxState(start_ns) AS newest_ns
FROM spans_v2
GROUP BY hour, service, name;

-- Duration histograms: spans per (minute or hour of start, service, span
-- name, duration bucket). The buckets are log-linear (`domain::histogram`:
-- 8 per power of two, so a quantile is known to within 12.5 %, from 1 ns
-- to centuries); the expression is `domain::histogram::bucket` in exact
-- integer arithmetic (the floating log2 only guesses the top bit, which the
-- two shifts correct). A histogram is rows, not a sumMap state: summing
-- plain rows is what ClickHouse does fastest (merging sumMap states cost
-- 2.5 s for a day of minutes on 18.16).
CREATE TABLE IF NOT EXISTS span_duration_minutes {{on_cluster}} (
    minute DateTime,
    service String,
    name String,
    bucket UInt16,
    spans UInt64
) ENGINE = {{engine SummingMergeTree() | shard cityHash64(service, name)}}
PARTITION BY toDate(minute)
ORDER BY (minute, service, name, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS span_duration_minutes_mv {{on_cluster}} TO span_duration_minutes AS
WITH greatest(duration_ns, 8) AS g,
     toUInt64(floor(log2(g))) AS m0,
     toUInt64(m0 + (bitShiftRight(g, m0 + 1) > 0) - (bitShiftRight(g, m0) = 0)) AS m
SELECT toStartOfMinute(start_time) AS minute, service, name,
       toUInt16(if(duration_ns < 8, duration_ns,
                   toUInt64((m - 2) * 8 + bitAnd(bitShiftRight(g, m - 3), 7)))) AS bucket,
       count() AS spans
FROM spans_v2
GROUP BY minute, service, name, bucket;

CREATE TABLE IF NOT EXISTS span_duration_hours {{on_cluster}} (
    hour DateTime,
    service String,
    name String,
    bucket UInt16,
    spans UInt64
) ENGINE = {{engine SummingMergeTree() | shard cityHash64(service, name)}}
PARTITION BY toDate(hour)
ORDER BY (hour, service, name, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS span_duration_hours_mv {{on_cluster}} TO span_duration_hours AS
WITH greatest(duration_ns, 8) AS g,
     toUInt64(floor(log2(g))) AS m0,
     toUInt64(m0 + (bitShiftRight(g, m0 + 1) > 0) - (bitShiftRight(g, m0) = 0)) AS m
SELECT toStartOfHour(start_time, 'UTC') AS hour, service, name,
       toUInt16(if(duration_ns < 8, duration_ns,
                   toUInt64((m - 2) * 8 + bitAnd(bitShiftRight(g, m - 3), 7)))) AS bucket,
       count() AS spans
FROM spans_v2
GROUP BY hour, service, name, bucket;

-- event_minutes: per (minute of the event's time, system, type, outcome):
-- events and the newest time_ns. The writer stores an event once (it drops
-- one whose source and id are already stored), so the view counts it once.
CREATE TABLE IF NOT EXISTS event_minutes {{on_cluster}} (
    minute DateTime,
    system String,
    type String,
    outcome String,
    events AggregateFunction(count),
    newest_ns AggregateFunction(max, UInt64)
) ENGINE = {{engine AggregatingMergeTree() | shard cityHash64(system, type)}}
PARTITION BY toDate(minute)
ORDER BY (minute, system, type, outcome);

CREATE MATERIALIZED VIEW IF NOT EXISTS event_minutes_mv {{on_cluster}} TO event_minutes AS
SELECT toStartOfMinute(time) AS minute, system, type, outcome,
       countState() AS events,
       maxState(time_ns) AS newest_ns
FROM events
GROUP BY minute, system, type, outcome;

CREATE TABLE IF NOT EXISTS event_hours {{on_cluster}} (
    hour DateTime,
    system String,
    type String,
    outcome String,
    events AggregateFunction(count),
    newest_ns AggregateFunction(max, UInt64)
) ENGINE = {{engine AggregatingMergeTree() | shard cityHash64(system, type)}}
PARTITION BY toDate(hour)
ORDER BY (hour, system, type, outcome);

CREATE MATERIALIZED VIEW IF NOT EXISTS event_hours_mv {{on_cluster}} TO event_hours AS
SELECT toStartOfHour(time, 'UTC') AS hour, system, type, outcome,
       countState() AS events,
       maxState(time_ns) AS newest_ns
FROM events
GROUP BY hour, system, type, outcome;

-- edge_minutes: per (minute of the child span's start, parent service,
-- child service): calls and the child's errors. A view cannot see a span's
-- parent, so the collector pairs them (`domain::service_graph`, as the
-- OpenTelemetry Collector's servicegraph connector does) and writes the
-- increments; rows of one key are summed on merge and by every read.
CREATE TABLE IF NOT EXISTS edge_minutes {{on_cluster}} (
    minute DateTime,
    parent String,
    child String,
    calls UInt64,
    errors UInt64
) ENGINE = {{engine SummingMergeTree() | shard cityHash64(parent, child)}}
PARTITION BY toDate(minute)
ORDER BY (minute, parent, child);
