//! The spool's record payload: a [`Batch`] in a small hand-written binary
//! form (little-endian integers, `u32` lengths). It is private to the spool:
//! a record is written and read by the same build, and a version byte in
//! front lets a later build refuse (and log) records it cannot read instead
//! of misreading them.

use domain::model::{
    Batch, BusinessKey, Event, EventOrigin, LogRecord, Outcome, Span, SpanEvent, SpanId, SpanKind,
    SpanLink, StatusCode, TraceId,
};

/// Bumped whenever the encoding below changes.
const VERSION: u8 = 1;

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spool record cannot be decoded: {0}")]
pub struct DecodeError(pub String);

fn short() -> DecodeError {
    DecodeError("it ends early".into())
}

/// Appends `append_ns` and `batch` to `out`.
pub fn encode(append_ns: u64, batch: &Batch, out: &mut Vec<u8>) {
    out.push(VERSION);
    append_ns.put(out);
    batch.spans.put(out);
    batch.logs.put(out);
    batch.events.put(out);
}

/// The append time and the batch of one payload.
pub fn decode(mut input: &[u8]) -> Result<(u64, Batch), DecodeError> {
    let r = &mut input;
    let version = u8::get(r)?;
    if version != VERSION {
        return Err(DecodeError(format!(
            "it is encoding version {version}, this build reads version {VERSION}"
        )));
    }
    let append_ns = u64::get(r)?;
    let batch = Batch {
        spans: Vec::get(r)?,
        logs: Vec::get(r)?,
        events: Vec::get(r)?,
    };
    if !r.is_empty() {
        return Err(DecodeError(format!("{} bytes are left over", r.len())));
    }
    Ok((append_ns, batch))
}

trait Codec: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError>;
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if input.len() < n {
        return Err(short());
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

macro_rules! int_codec {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
                let bytes = take(input, std::mem::size_of::<$t>())?;
                Ok(<$t>::from_le_bytes(bytes.try_into().expect("length checked")))
            }
        }
    )*};
}
int_codec!(u8, u32, u64, i32);

impl Codec for bool {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(u8::get(input)? != 0)
    }
}

fn put_len(n: usize, out: &mut Vec<u8>) {
    (n as u32).put(out);
}

impl Codec for String {
    fn put(&self, out: &mut Vec<u8>) {
        put_len(self.len(), out);
        out.extend_from_slice(self.as_bytes());
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let n = u32::get(input)? as usize;
        let bytes = take(input, n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError("a string is not UTF-8".into()))
    }
}

impl<T: Codec> Codec for Vec<T> {
    fn put(&self, out: &mut Vec<u8>) {
        put_len(self.len(), out);
        for item in self {
            item.put(out);
        }
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let n = u32::get(input)? as usize;
        // Never trust a length for an allocation larger than the input.
        let mut items = Vec::with_capacity(n.min(input.len()));
        for _ in 0..n {
            items.push(T::get(input)?);
        }
        Ok(items)
    }
}

impl<T: Codec> Codec for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.put(out);
            }
        }
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(match u8::get(input)? {
            0 => None,
            _ => Some(T::get(input)?),
        })
    }
}

impl<A: Codec, B: Codec> Codec for (A, B) {
    fn put(&self, out: &mut Vec<u8>) {
        self.0.put(out);
        self.1.put(out);
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok((A::get(input)?, B::get(input)?))
    }
}

impl Codec for TraceId {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(TraceId(
            take(input, 16)?.try_into().expect("length checked"),
        ))
    }
}

impl Codec for SpanId {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(SpanId(take(input, 8)?.try_into().expect("length checked")))
    }
}

impl Codec for BusinessKey {
    fn put(&self, out: &mut Vec<u8>) {
        self.key_type.put(out);
        self.value.put(out);
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(BusinessKey {
            key_type: String::get(input)?,
            value: String::get(input)?,
        })
    }
}

impl Codec for SpanEvent {
    fn put(&self, out: &mut Vec<u8>) {
        self.time_ns.put(out);
        self.name.put(out);
        self.attributes.put(out);
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(SpanEvent {
            time_ns: u64::get(input)?,
            name: String::get(input)?,
            attributes: Vec::get(input)?,
        })
    }
}

impl Codec for SpanLink {
    fn put(&self, out: &mut Vec<u8>) {
        self.trace_id.put(out);
        self.span_id.put(out);
        self.trace_state.put(out);
        self.attributes.put(out);
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(SpanLink {
            trace_id: TraceId::get(input)?,
            span_id: SpanId::get(input)?,
            trace_state: String::get(input)?,
            attributes: Vec::get(input)?,
        })
    }
}

impl Codec for Span {
    fn put(&self, out: &mut Vec<u8>) {
        self.trace_id.put(out);
        self.span_id.put(out);
        self.parent_span_id.put(out);
        self.trace_state.put(out);
        self.flags.put(out);
        self.service.put(out);
        self.name.put(out);
        (self.kind as u8).put(out);
        self.start_ns.put(out);
        self.duration_ns.put(out);
        (self.status_code as u8).put(out);
        self.status_message.put(out);
        self.attributes.put(out);
        self.resource.put(out);
        self.scope_name.put(out);
        self.scope_version.put(out);
        self.events.put(out);
        self.links.put(out);
        self.keys.put(out);
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(Span {
            trace_id: TraceId::get(input)?,
            span_id: SpanId::get(input)?,
            parent_span_id: Option::get(input)?,
            trace_state: String::get(input)?,
            flags: u32::get(input)?,
            service: String::get(input)?,
            name: String::get(input)?,
            kind: SpanKind::from_u8(u8::get(input)?),
            start_ns: u64::get(input)?,
            duration_ns: u64::get(input)?,
            status_code: StatusCode::from_u8(u8::get(input)?),
            status_message: String::get(input)?,
            attributes: Vec::get(input)?,
            resource: Vec::get(input)?,
            scope_name: String::get(input)?,
            scope_version: String::get(input)?,
            events: Vec::get(input)?,
            links: Vec::get(input)?,
            keys: Vec::get(input)?,
        })
    }
}

impl Codec for LogRecord {
    fn put(&self, out: &mut Vec<u8>) {
        self.record_id.put(out);
        self.time_ns.put(out);
        self.observed_ns.put(out);
        self.trace_id.put(out);
        self.span_id.put(out);
        self.severity_number.put(out);
        self.severity_text.put(out);
        self.body.put(out);
        self.event_name.put(out);
        self.service.put(out);
        self.attributes.put(out);
        self.resource.put(out);
        self.scope_name.put(out);
        self.scope_version.put(out);
        self.keys.put(out);
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(LogRecord {
            record_id: u64::get(input)?,
            time_ns: u64::get(input)?,
            observed_ns: u64::get(input)?,
            trace_id: Option::get(input)?,
            span_id: Option::get(input)?,
            severity_number: i32::get(input)?,
            severity_text: String::get(input)?,
            body: String::get(input)?,
            event_name: String::get(input)?,
            service: String::get(input)?,
            attributes: Vec::get(input)?,
            resource: Vec::get(input)?,
            scope_name: String::get(input)?,
            scope_version: String::get(input)?,
            keys: Vec::get(input)?,
        })
    }
}

impl Codec for Outcome {
    fn put(&self, out: &mut Vec<u8>) {
        let i = Outcome::ALL.iter().position(|o| o == self).unwrap_or(0);
        (i as u8).put(out);
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let i = u8::get(input)? as usize;
        Outcome::ALL
            .get(i)
            .copied()
            .ok_or_else(|| DecodeError(format!("outcome {i} is unknown")))
    }
}

impl Codec for EventOrigin {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(match self {
            EventOrigin::CloudEvent => 0,
            EventOrigin::OtlpLog => 1,
        });
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(match u8::get(input)? {
            0 => EventOrigin::CloudEvent,
            _ => EventOrigin::OtlpLog,
        })
    }
}

impl Codec for Event {
    fn put(&self, out: &mut Vec<u8>) {
        self.source.put(out);
        self.id.put(out);
        self.system.put(out);
        self.event_type.put(out);
        self.subject.put(out);
        self.time_ns.put(out);
        self.time_missing.put(out);
        self.received_ns.put(out);
        self.outcome.put(out);
        self.attempt.put(out);
        self.trace_id.put(out);
        self.span_id.put(out);
        self.correlation_id.put(out);
        self.causation_id.put(out);
        self.data.put(out);
        self.data_content_type.put(out);
        self.attributes.put(out);
        self.keys.put(out);
        self.origin.put(out);
    }
    fn get(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(Event {
            source: String::get(input)?,
            id: String::get(input)?,
            system: String::get(input)?,
            event_type: String::get(input)?,
            subject: String::get(input)?,
            time_ns: u64::get(input)?,
            time_missing: bool::get(input)?,
            received_ns: u64::get(input)?,
            outcome: Outcome::get(input)?,
            attempt: u32::get(input)?,
            trace_id: Option::get(input)?,
            span_id: Option::get(input)?,
            correlation_id: String::get(input)?,
            causation_id: String::get(input)?,
            data: String::get(input)?,
            data_content_type: String::get(input)?,
            attributes: Vec::get(input)?,
            keys: Vec::get(input)?,
            origin: EventOrigin::get(input)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::tests::sample_batch;

    #[test]
    fn a_batch_survives_encoding() {
        let batch = sample_batch();
        let mut bytes = Vec::new();
        encode(77, &batch, &mut bytes);
        let (append_ns, back) = decode(&bytes).unwrap();
        assert_eq!(append_ns, 77);
        assert_eq!(back.spans, batch.spans);
        assert_eq!(back.logs, batch.logs);
        assert_eq!(back.events, batch.events);
    }

    #[test]
    fn truncated_or_foreign_payloads_are_errors_not_panics() {
        let mut bytes = Vec::new();
        encode(1, &sample_batch(), &mut bytes);
        for cut in [0, 1, 9, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        bytes[0] = 200;
        assert!(decode(&bytes).unwrap_err().0.contains("version 200"));
    }
}
