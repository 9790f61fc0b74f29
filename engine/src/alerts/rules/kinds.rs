//! What a rule watches: its kinds (`KINDS`), the `Condition` of each with
//! its `Measure`, how a threshold reads, and the summary of a rule that
//! gives none.

use domain::process::duration;

/// Count breaches, or their share of the instances started in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Count,
    /// Percent of instances.
    Share,
}

/// What a rule watches. The condition holds when the value is above the
/// threshold (or the limit, for durations).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Breaches (open or closed) of a process, or of one SLA, due within the
    /// last `window_ns` (a count), or the percentage of the instances
    /// started in the window that breached (a share).
    SlaBreaches {
        process: String,
        sla: Option<String>,
        window_ns: u64,
        measure: Measure,
        threshold: f64,
    },
    /// Open breaches now, of a process or one SLA.
    OpenBreaches {
        process: String,
        sla: Option<String>,
        threshold: f64,
    },
    /// The `percentile` (0-100) of the time from stage `from` to stage `to`,
    /// over instances started within `window_ns`, above `limit_ns`. An
    /// instance still waiting for `to` longer than the limit counts with its
    /// wait so far.
    StageLatency {
        process: String,
        from: String,
        to: String,
        percentile: f64,
        window_ns: u64,
        limit_ns: u64,
    },
    /// No span or event from `system` (any system seen in the last week when
    /// `None`) for `silent_for_ns`.
    SystemSilence {
        system: Option<String>,
        silent_for_ns: u64,
    },
    /// Percent of failed spans and failed or dead-lettered events of a system
    /// (or of failed events of one event type) over `window_ns`.
    ErrorRate {
        system: Option<String>,
        event_type: Option<String>,
        window_ns: u64,
        threshold: f64,
    },
    /// Dead-lettered events (of a system / event type, or all) within
    /// `window_ns`, above `threshold`.
    DeadLetters {
        system: Option<String>,
        event_type: Option<String>,
        window_ns: u64,
        threshold: f64,
    },
    /// An SLO's error budget burning: holds when, for one of `windows`
    /// (burn rate, long window, short window), both windows burn faster
    /// than the rate. Made from each `[[slos]]` of a process (`Rules::slo_rules`),
    /// never written in a rule file.
    SloBurn {
        process: String,
        slo: String,
        windows: Vec<(f64, u64, u64)>,
    },
    /// A plant (any plant whose edge collector reports, when `None`) more
    /// than `limit_ns` behind: the age of the oldest record in its edge's
    /// spool as last reported (growing since), or the time since its last
    /// report, whichever is longer.
    PlantBacklog {
        plant: Option<String>,
        limit_ns: u64,
    },
}

impl Condition {
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::SlaBreaches { .. } => "sla_breaches",
            Condition::OpenBreaches { .. } => "open_breaches",
            Condition::StageLatency { .. } => "stage_latency",
            Condition::SystemSilence { .. } => "system_silence",
            Condition::ErrorRate { .. } => "error_rate",
            Condition::DeadLetters { .. } => "dead_letters",
            Condition::SloBurn { .. } => "slo_burn",
            Condition::PlantBacklog { .. } => "plant_backlog",
        }
    }

    /// The threshold as people read it: `5`, `10%`, `5m`.
    pub fn threshold_text(&self) -> String {
        match self {
            Condition::SlaBreaches {
                measure: Measure::Share,
                threshold,
                ..
            }
            | Condition::ErrorRate { threshold, .. } => format!("{}%", number(*threshold)),
            Condition::SlaBreaches { threshold, .. }
            | Condition::OpenBreaches { threshold, .. }
            | Condition::DeadLetters { threshold, .. } => number(*threshold),
            Condition::StageLatency { limit_ns, .. } => duration::format_ns(*limit_ns),
            Condition::SystemSilence { silent_for_ns, .. } => duration::format_ns(*silent_for_ns),
            Condition::SloBurn { windows, .. } => windows
                .iter()
                .map(|(rate, long, short)| {
                    format!(
                        "{}x over {} and {}",
                        number(*rate),
                        duration::format_ns(*long),
                        duration::format_ns(*short)
                    )
                })
                .collect::<Vec<_>>()
                .join(", or "),
            Condition::PlantBacklog { limit_ns, .. } => duration::format_ns(*limit_ns),
        }
    }
}

/// `5` for 5.0, `2.5` for 2.5.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

/// Kinds a rule may have.
pub const KINDS: &[&str] = &[
    "sla_breaches",
    "open_breaches",
    "stage_latency",
    "system_silence",
    "error_rate",
    "dead_letters",
    "plant_backlog",
];

/// The summary of a rule that gives none.
pub(super) fn default_summary(c: &Condition) -> String {
    match c {
        Condition::SlaBreaches { .. } => {
            "{value} SLA breaches (threshold {threshold}): {orders} orders of {customers} customers affected".into()
        }
        Condition::OpenBreaches { .. } => {
            "{value} open SLA breaches (threshold {threshold}): {orders} orders of {customers} customers affected".into()
        }
        Condition::StageLatency { .. } => {
            "stage latency {value} (limit {threshold}): {orders} orders of {customers} customers affected".into()
        }
        Condition::SystemSilence { .. } => "silent for {value} (limit {threshold}): {affected}".into(),
        Condition::ErrorRate { .. } => {
            "error rate {value} (threshold {threshold}): {orders} orders of {customers} customers affected".into()
        }
        Condition::DeadLetters { .. } => {
            "{value} dead-lettered events (threshold {threshold}): {orders} orders of {customers} customers affected".into()
        }
        Condition::SloBurn { .. } => {
            "{name}: the error budget burns at {value} (alert at {threshold})".into()
        }
        Condition::PlantBacklog { .. } => "{value} behind (limit {threshold}): {affected}".into(),
    }
}
