//! The canonical records every receiver converts into, and every later stage reads.
//!
//! Nothing here knows a wire format or a ClickHouse row: receivers build these
//! by hand from what they decoded, storage turns them into rows. Attribute values
//! are kept as text (strings as sent, numbers and booleans in their usual text
//! form, arrays, maps and bytes as JSON) so that one key/value array shape serves
//! spans, span events, links, logs and resources alike.

use std::fmt;

/// A W3C / OTLP trace id: 16 bytes, never all zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

/// An OTLP span id: 8 bytes, never all zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

/// Why a byte string is not a usable id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be {want} bytes ({} hex digits), got {got} bytes", want * 2)]
    Length { want: usize, got: usize },
    #[error("is all zeros, which OTLP reserves for \"no id\"")]
    Zero,
    #[error("is not hex: {0:?}")]
    NotHex(String),
}

macro_rules! id_type {
    ($name:ident, $len:expr) => {
        impl $name {
            pub const LEN: usize = $len;

            /// Parses the id's raw bytes as OTLP protobuf carries them.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
                let arr: [u8; $len] = bytes.try_into().map_err(|_| IdError::Length {
                    want: $len,
                    got: bytes.len(),
                })?;
                if arr.iter().all(|b| *b == 0) {
                    return Err(IdError::Zero);
                }
                Ok(Self(arr))
            }

            /// Parses the lowercase or uppercase hex form used by OTLP/JSON, W3C
            /// `traceparent` and our URLs.
            pub fn from_hex(text: &str) -> Result<Self, IdError> {
                let bytes = hex::decode(text).map_err(|_| IdError::NotHex(text.to_string()))?;
                Self::from_bytes(&bytes)
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }
    };
}

id_type!(TraceId, 16);
id_type!(SpanId, 8);

/// Key/value attributes with values rendered as text (see the module docs).
pub type Attributes = Vec<(String, String)>;

/// Span kind, numbered as in OTLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

impl SpanKind {
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    pub fn from_u8(value: u8) -> Self {
        Self::from_otlp(value as i32)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

/// Span status code, numbered as in OTLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    Unset = 0,
    Ok = 1,
    Error = 2,
}

impl StatusCode {
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => Self::Ok,
            2 => Self::Error,
            _ => Self::Unset,
        }
    }

    pub fn from_u8(value: u8) -> Self {
        Self::from_otlp(value as i32)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unset => "unset",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

/// A business key: the (type, value) pair that ties records of different
/// systems to one order, work order, customer, ...
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BusinessKey {
    pub key_type: String,
    pub value: String,
}

impl BusinessKey {
    pub fn new(key_type: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key_type: key_type.into(),
            value: value.into(),
        }
    }
}

impl fmt::Display for BusinessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.key_type, self.value)
    }
}

/// A timestamped annotation on a span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    pub time_ns: u64,
    pub name: String,
    pub attributes: Attributes,
}

/// A link from a span to another span, possibly of another trace.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanLink {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Attributes,
}

/// An OTLP span as sent, plus the business keys found on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub trace_state: String,
    pub flags: u32,
    /// The resource's `service.name`; `unknown_service` when the sender set none.
    pub service: String,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: u64,
    /// `end - start`; zero when the sender's end came before its start.
    pub duration_ns: u64,
    pub status_code: StatusCode,
    pub status_message: String,
    pub attributes: Attributes,
    pub resource: Attributes,
    pub scope_name: String,
    pub scope_version: String,
    pub events: Vec<SpanEvent>,
    pub links: Vec<SpanLink>,
    /// Business keys found on the span or its resource, deduplicated, sorted.
    pub keys: Vec<BusinessKey>,
}

/// An OTLP log record as sent, plus the business keys found on it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// A stable hash of the record's content: a redelivered record gets the same
    /// id, so storage can keep it once.
    pub record_id: u64,
    /// The record's time; its observed time when the sender left time unset.
    pub time_ns: u64,
    pub observed_ns: u64,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub severity_number: i32,
    pub severity_text: String,
    /// The body as text (see the module docs for non-string bodies).
    pub body: String,
    /// `event_name`, or the older `event.name` attribute; empty for plain logs.
    pub event_name: String,
    pub service: String,
    pub attributes: Attributes,
    pub resource: Attributes,
    pub scope_name: String,
    pub scope_version: String,
    pub keys: Vec<BusinessKey>,
}

/// What an integration reports about the business fact or hand-over an
/// event stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Ok,
    Failed,
    Retried,
    DeadLettered,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::Failed,
        Outcome::Retried,
        Outcome::DeadLettered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Retried => "retried",
            Outcome::DeadLettered => "dead_lettered",
        }
    }

    /// Parses the names above, ignoring case.
    pub fn parse(text: &str) -> Option<Self> {
        let lower = text.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|o| o.as_str() == lower)
    }
}

/// Where an event came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOrigin {
    CloudEvent,
    OtlpLog,
}

impl EventOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOrigin::CloudEvent => "cloudevents",
            EventOrigin::OtlpLog => "otlp_log",
        }
    }
}

/// An integration event: a business fact or an integration outcome reported
/// by a connector. `source` + `id` identify it (CloudEvents' rule): a
/// redelivery has the same pair and is stored once.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub source: String,
    pub id: String,
    /// The system it speaks for: `mes`, `erp`, `crm`, ...
    pub system: String,
    /// `mes.work_order.completed`.
    pub event_type: String,
    pub subject: String,
    /// When it happened; the arrival time when the sender gave none.
    pub time_ns: u64,
    /// The sender gave no time; `time_ns` is the arrival time.
    pub time_missing: bool,
    pub received_ns: u64,
    pub outcome: Outcome,
    pub attempt: u32,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub correlation_id: String,
    pub causation_id: String,
    /// The payload as text: JSON as JSON text, other content as sent
    /// (base64 for binary data).
    pub data: String,
    pub data_content_type: String,
    /// Everything else the sender attached (CloudEvents extensions, log
    /// record attributes).
    pub attributes: Attributes,
    pub keys: Vec<BusinessKey>,
    pub origin: EventOrigin,
}

/// What one receiver call hands to the pipeline: the records that passed
/// validation, in arrival order.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub spans: Vec<Span>,
    pub logs: Vec<LogRecord>,
    pub events: Vec<Event>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.logs.is_empty() && self.events.is_empty()
    }

    pub fn len(&self) -> usize {
        self.spans.len() + self.logs.len() + self.events.len()
    }

    /// Where each list ends now, to split an appended batch off again.
    pub fn mark(&self) -> BatchMark {
        BatchMark {
            spans: self.spans.len(),
            logs: self.logs.len(),
            events: self.events.len(),
        }
    }

    pub fn append(&mut self, other: Batch) {
        self.spans.extend(other.spans);
        self.logs.extend(other.logs);
        self.events.extend(other.events);
    }

    /// Everything after `mark`, moved out.
    pub fn split_off(&mut self, mark: BatchMark) -> Batch {
        Batch {
            spans: self.spans.split_off(mark.spans),
            logs: self.logs.split_off(mark.logs),
            events: self.events.split_off(mark.events),
        }
    }
}

/// The lengths of a batch's lists at one moment; see [`Batch::mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMark {
    spans: usize,
    logs: usize,
    events: usize,
}

/// Two keys seen on the same record, in both directions so that a lookup from
/// either side reads one ordered range.
pub fn key_links(keys: &[BusinessKey]) -> Vec<(BusinessKey, BusinessKey)> {
    let mut links = Vec::new();
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            if a != b {
                links.push((a.clone(), b.clone()));
                links.push((b.clone(), a.clone()));
            }
        }
    }
    links
}
