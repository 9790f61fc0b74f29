//! What the correlator reads and writes: the feed of keyed records (spans,
//! events, and logs that link two keys) and the process steps it finds.

use crate::model::BusinessKey;

/// What kind of record a feed or key index entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    Span,
    Event,
    Log,
}

impl RecordKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordKind::Span => "span",
            RecordKind::Event => "event",
            RecordKind::Log => "log",
        }
    }

    pub fn parse(text: &str) -> Option<RecordKind> {
        [RecordKind::Span, RecordKind::Event, RecordKind::Log]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// One record as the correlator reads it: enough to match a stage and to
/// resolve its keys to a process's root key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRecord {
    /// When it was stored (its place in the feed); 0 when read back from
    /// the key index.
    pub ingested_ns: u64,
    pub kind: RecordKind,
    /// Its identity across tables (`span:<trace>:<span>`, `event:...`).
    pub record_ref: String,
    pub system: String,
    /// A span's name or an event's type.
    pub name: String,
    /// The record's own time.
    pub time_ns: u64,
    /// The span failed, or the event failed or was dead-lettered.
    pub failed: bool,
    pub keys: Vec<BusinessKey>,
    /// The plant the record came from (`crate::plant`), or "".
    pub plant: String,
}

/// A record that reached a stage of one process instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub process_id: String,
    pub root_value: String,
    pub stage_id: String,
    pub record_ref: String,
    pub time_ns: u64,
    pub failed: bool,
    /// The key of the record that led to the root.
    pub via: BusinessKey,
    pub written_ns: u64,
    /// The record's plant, or "".
    pub plant: String,
}

/// One record on a business key's journey, as the key index keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyRecord {
    pub kind: RecordKind,
    /// A span's trace; an event's, when it came with one (else zeros).
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub service: String,
    pub name: String,
    pub time_ns: u64,
    pub failed: bool,
    /// All keys of the record.
    pub keys: Vec<BusinessKey>,
    /// A span's duration.
    pub duration_ns: u64,
    /// An event's outcome (`ok`, `failed`, `retried`, `dead_lettered`).
    pub outcome: String,
    /// An event's delivery attempt.
    pub attempt: u32,
    pub event_source: String,
    pub event_id: String,
}
