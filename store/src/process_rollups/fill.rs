//! The backfill of migration 0015.

use crate::migrate::DayFill;

/// `instances_by_start` from `process_instances`, one day of starts.
const INSTANCES_BY_START_OF_DAY: &str = "INSERT INTO instances_by_start \
    (process_id, start_minute, root_value, start_ns, last_ns, status, current_stage, \
     stage_ids, stage_times, failed, open_breaches, deleted, updated_ns) \
    SELECT process_id, toStartOfMinute(toDateTime(intDiv(start_ns, 1000000000))), \
           root_value, start_ns, last_ns, status, current_stage, stage_ids, stage_times, \
           failed, open_breaches, toUInt8(0), updated_ns \
    FROM process_instances FINAL \
    WHERE toDate(toDateTime(intDiv(start_ns, 1000000000))) = toDate(?)";

/// `breaches_by_due` from `breaches`, one day of due times.
const BREACHES_BY_DUE_OF_DAY: &str = "INSERT INTO breaches_by_due \
    (process_id, due_minute, sla_id, root_value, from_ns, due_ns, to_ns, late_ns, state, \
     updated_ns) \
    SELECT process_id, toStartOfMinute(toDateTime(intDiv(due_ns, 1000000000))), \
           sla_id, root_value, from_ns, due_ns, to_ns, late_ns, state, updated_ns \
    FROM breaches FINAL \
    WHERE toDate(toDateTime(intDiv(due_ns, 1000000000))) = toDate(?)";

/// The backfill of migration 0015: the instance and breach rows stored
/// before it, by minute. The correlator then recomputes every minute they
/// fill at its next start (it finds no `process-rollups` mark, so it
/// recomputes every minute written since 0).
pub const PROCESS_ROLLUP_FILLS: &[DayFill] = &[
    DayFill {
        target: "instances_by_start",
        day_of: "toDate(start_minute)",
        days: "SELECT DISTINCT toString(toDate(toDateTime(intDiv(start_ns, 1000000000)))) \
               AS day FROM process_instances",
        insert: INSTANCES_BY_START_OF_DAY,
        pieces: 1,
    },
    DayFill {
        target: "breaches_by_due",
        day_of: "toDate(due_minute)",
        days: "SELECT DISTINCT toString(toDate(toDateTime(intDiv(due_ns, 1000000000)))) AS day \
               FROM breaches",
        insert: BREACHES_BY_DUE_OF_DAY,
        pieces: 1,
    },
];
