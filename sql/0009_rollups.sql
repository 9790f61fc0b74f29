-- Per-minute rollups, so that an aggregate over a range reads minutes x
-- series, never the spans or events of the range (issue 16).
--
-- span_minutes: per (minute of start, service, span name): spans, errors
-- (status_code = 2), the newest start_ns and a histogram of durations over
-- log-linear buckets (`domain::histogram`: 8 buckets per power of two, so a
-- quantile is known to within 12.5 %, from 1 ns to centuries). Filled by
-- span_minutes_mv in the same INSERT that writes spans_v2, so a span counts
-- once per insert: the collector drops a redelivered span it stored
-- recently before it reaches spans_v2 (see ARCHITECTURE.md, Rollups).
-- The bucket expression is `domain::histogram::bucket` in SQL: exact
-- integer arithmetic (the floating log2 only guesses the top bit, which the
-- two shifts correct).
CREATE TABLE IF NOT EXISTS span_minutes {{on_cluster}} (
    minute DateTime,
    service String,
    name String,
    spans AggregateFunction(count),
    errors AggregateFunction(sum, UInt64),
    newest_ns AggregateFunction(max, UInt64),
    durations AggregateFunction(sumMap, Array(UInt16), Array(UInt64))
) ENGINE = {{engine AggregatingMergeTree() | shard cityHash64(service, name)}}
PARTITION BY toDate(minute)
ORDER BY (minute, service, name);

CREATE MATERIALIZED VIEW IF NOT EXISTS span_minutes_mv {{on_cluster}} TO span_minutes AS
WITH greatest(duration_ns, 8) AS g,
     toUInt64(floor(log2(g))) AS m0,
     toUInt64(m0 + (bitShiftRight(g, m0 + 1) > 0) - (bitShiftRight(g, m0) = 0)) AS m
SELECT toStartOfMinute(start_time) AS minute, service, name,
       countState() AS spans,
       sumState(toUInt64(status_code = 2)) AS errors,
       maxState(start_ns) AS newest_ns,
       sumMapState([toUInt16(if(duration_ns < 8, duration_ns,
                                toUInt64((m - 2) * 8 + bitAnd(bitShiftRight(g, m - 3), 7))))],
                   [toUInt64(1)]) AS durations
FROM spans_v2
GROUP BY minute, service, name;

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
