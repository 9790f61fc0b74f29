//! OTLP receivers: gRPC (`grpc`) and HTTP (`http`), protobuf and JSON (`json`),
//! sharing one conversion into canonical records (`convert`).
//!
//! Errors are classified once ([`ReceiveError`]) and mapped to the wire in one
//! place per transport: HTTP 400 / 413 / 415 / 503, gRPC `INVALID_ARGUMENT` /
//! `RESOURCE_EXHAUSTED` / `UNAVAILABLE`.

pub mod convert;
pub mod grpc;
pub mod http;
pub mod json;

use crate::pipeline::SubmitError;

/// Why a request was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The sender's fault; retrying the same bytes will fail again.
    #[error("{0}")]
    BadRequest(String),
    #[error("request body is larger than the limit of {limit} bytes; send smaller batches (the exporter's max batch size) or raise max_request_bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Ours, or ClickHouse's; the sender should retry with backoff.
    #[error(transparent)]
    Unavailable(#[from] SubmitError),
}

use std::sync::Arc;

use convert::Converted;

use crate::keys::KeyTypes;
use crate::metrics::{self, Metrics, SignalCounters};
use crate::pipeline::Pipeline;

/// What both OTLP transports share.
#[derive(Clone)]
pub struct OtlpState {
    pub pipeline: Pipeline,
    pub keys: Arc<KeyTypes>,
    /// Largest request body accepted, after decompression.
    pub max_request_bytes: usize,
    pub metrics: Arc<Metrics>,
}

/// Which signal a request carries, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Spans,
    Logs,
}

impl Signal {
    fn counters(self, metrics: &Metrics) -> &SignalCounters {
        match self {
            Signal::Spans => &metrics.spans,
            Signal::Logs => &metrics.logs,
        }
    }
}

/// Hands the valid records of one request to the pipeline and waits until
/// they are stored. Returns the conversion (for its rejections) on success.
pub(crate) async fn ingest(
    state: &OtlpState,
    signal: Signal,
    mut converted: Converted,
) -> Result<Converted, ReceiveError> {
    let counters = signal.counters(&state.metrics);
    let valid = converted.batch.len();
    metrics::add(&counters.received, valid + converted.rejected.len());
    metrics::add(&counters.rejected, converted.rejected.len());
    let batch = std::mem::take(&mut converted.batch);
    if let Err(e) = state.pipeline.submit(batch).await {
        metrics::add(&counters.rejected, valid);
        metrics::add(&state.metrics.requests_overloaded, 1);
        return Err(ReceiveError::Unavailable(e));
    }
    Ok(converted)
}

/// Counts a request refused as a whole.
pub(crate) fn count_refused(m: &Metrics, error: &ReceiveError) {
    let counter = match error {
        ReceiveError::BadRequest(_) => &m.requests_bad,
        ReceiveError::TooLarge { .. } => &m.requests_too_large,
        ReceiveError::UnsupportedMediaType(_) => &m.requests_unsupported,
        // Counted by `ingest`, which knows how many records it cost.
        ReceiveError::Unavailable(_) => return,
    };
    metrics::add(counter, 1);
}

/// Unix time now, in nanoseconds.
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
