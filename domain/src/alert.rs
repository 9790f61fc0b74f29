//! What the alert evaluator keeps of each rule between cycles and restarts:
//! its phase, the notice due and who has it, its last value, its phase
//! changes and every delivery attempt.

/// Where a rule stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Inactive,
    Pending,
    Firing,
    Resolved,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Inactive => "inactive",
            Phase::Pending => "pending",
            Phase::Firing => "firing",
            Phase::Resolved => "resolved",
        }
    }

    /// The phase named `text`; anything else (an empty column) is
    /// inactive.
    pub fn parse(text: &str) -> Phase {
        match text {
            "pending" => Phase::Pending,
            "firing" => Phase::Firing,
            "resolved" => Phase::Resolved,
            _ => Phase::Inactive,
        }
    }
}

/// What to send, to every receiver that has not had it yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Firing,
    Resolved,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Notice::Firing => "firing",
            Notice::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Notice> {
        match text {
            "firing" => Some(Notice::Firing),
            "resolved" => Some(Notice::Resolved),
            _ => None,
        }
    }
}

/// A rule's state as kept in ClickHouse between cycles and restarts.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleState {
    pub phase: Phase,
    /// Since when the condition holds (pending and firing), or since when the
    /// rule is in its phase (inactive, resolved); 0 before the first cycle.
    pub since_ns: u64,
    /// When it started firing (kept after it resolved).
    pub fired_ns: u64,
    /// When it resolved; 0 while firing.
    pub resolved_ns: u64,
    /// The notification due, if any; `delivered` lists receivers that have it.
    pub notice: Option<Notice>,
    pub delivered: Vec<String>,
    /// The receivers that got the firing notice of the current (or last)
    /// firing: a resolve goes to them alone.
    pub fired_to: Vec<String>,
    /// When the current notice was first delivered to any receiver (for repeats).
    pub sent_ns: u64,
}

impl Default for RuleState {
    fn default() -> Self {
        RuleState {
            phase: Phase::Inactive,
            since_ns: 0,
            fired_ns: 0,
            resolved_ns: 0,
            notice: None,
            delivered: Vec::new(),
            fired_to: Vec::new(),
            sent_ns: 0,
        }
    }
}

/// A rule's state as the evaluator stored it: its [`RuleState`] and what
/// the last cycle found.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    pub rule_id: String,
    pub state: RuleState,
    pub value: f64,
    pub value_text: String,
    pub summary: String,
    /// What makes it fire: `order:SO-1`, `system:mes`, ...
    pub affected: Vec<String>,
    pub orders: u64,
    pub customers: u64,
    pub evaluated_ns: u64,
    pub updated_ns: u64,
}

/// A rule's phase change.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseChange {
    pub rule_id: String,
    pub at_ns: u64,
    pub from: Phase,
    pub to: Phase,
    pub value: f64,
    pub value_text: String,
}

/// One attempt to deliver a notice to a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub rule_id: String,
    /// The destination's name (a `[[receivers]]` entry).
    pub destination: String,
    pub notice: Notice,
    pub attempt: u32,
    pub at_ns: u64,
    pub ok: bool,
    /// The HTTP status or the error.
    pub detail: String,
}
