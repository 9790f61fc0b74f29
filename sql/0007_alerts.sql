-- Alert rules' state, kept so that a restart resumes where it stopped and
-- never repeats a notification it delivered. One row per rule, latest by
-- updated_ns; readers use FINAL.
CREATE TABLE IF NOT EXISTS alert_state {{on_cluster}} (
    rule_id String,
    phase String,
    since_ns UInt64,
    fired_ns UInt64,
    resolved_ns UInt64,
    notice String,
    delivered Array(String),
    fired_to Array(String),
    sent_ns UInt64,
    value Float64,
    value_text String,
    summary String,
    affected Array(String),
    orders UInt64,
    customers UInt64,
    evaluated_ns UInt64,
    updated_ns UInt64
) ENGINE = {{engine ReplacingMergeTree(updated_ns) | shard cityHash64(rule_id)}}
ORDER BY rule_id;

-- Each phase change of each rule.
CREATE TABLE IF NOT EXISTS alert_history {{on_cluster}} (
    rule_id String,
    at DateTime,
    at_ns UInt64,
    from_phase String,
    to_phase String,
    value Float64,
    value_text String
) ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(rule_id)}}
PARTITION BY toYYYYMM(at)
ORDER BY (rule_id, at_ns, to_phase);

-- Every attempt to deliver a notification, failed or not.
CREATE TABLE IF NOT EXISTS alert_notifications {{on_cluster}} (
    rule_id String,
    receiver String,
    notice String,
    attempt UInt32,
    at DateTime,
    at_ns UInt64,
    ok UInt8,
    detail String
) ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(rule_id)}}
PARTITION BY toYYYYMM(at)
ORDER BY (rule_id, at_ns, receiver, attempt);
