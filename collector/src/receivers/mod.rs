//! Receivers: the only code that knows wire formats. Each decodes a request,
//! converts it by hand into canonical records ([`domain::model`]), hands the
//! valid ones to the [`crate::pipeline::Pipeline`] and answers the sender in
//! its protocol's terms. Their `encode` modules are the way back (canonical
//! records as OTLP protobuf and CloudEvents JSON), for an edge collector's
//! forwarder ([`crate::forward`]), so the formats stay known here alone.
//!
//! Whole-request failures are classified once ([`ReceiveError`]) and mapped
//! to the wire in one place per transport.

pub mod cloudevents;
pub mod otlp;
pub mod plant_status;

use std::io::Read;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};

use crate::auth::{Access, AuthError, IngestAuth};
use crate::metrics::{self, Metrics, SignalCounters};
use crate::pipeline::{Pipeline, SubmitError};
use domain::events::EventRules;
use domain::keys::KeyTypes;
use domain::limits::{Limits, Truncated};
use domain::model::Batch;

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
    /// No valid connector token.
    #[error(transparent)]
    Unauthenticated(#[from] AuthError),
    /// A valid token, but every record is of a system it may not write for.
    #[error("{0}")]
    Forbidden(String),
    /// Ours (the spool is full or cannot be written, or we are stopping); the
    /// sender should retry with backoff.
    #[error(transparent)]
    Unavailable(#[from] SubmitError),
    /// The body did not arrive within `body_read_timeout`; the connection
    /// is closed after the answer.
    #[error(transparent)]
    BodyTimeout(#[from] crate::connections::BodyTimedOut),
}

/// What every receiver shares.
#[derive(Clone)]
pub struct ReceiverState {
    pub pipeline: Pipeline,
    pub keys: Arc<KeyTypes>,
    pub events: Arc<EventRules>,
    /// Largest request body accepted, after decompression.
    pub max_request_bytes: usize,
    /// What one record may carry; the excess is cut (see [`domain::limits`]).
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    /// The connector tokens (none: open).
    pub auth: Arc<IngestAuth>,
    /// Requests being read, decoded and spooled at once, over all
    /// transports; the rest wait with their bodies unread (see
    /// [`MAX_IN_FLIGHT`]).
    pub in_flight: Arc<tokio::sync::Semaphore>,
}

/// Requests handled at once. More wait before their body is read, so the
/// memory requests take is bounded (by this times `max_request_bytes` and
/// its decoded form), whatever the number of clients.
pub const MAX_IN_FLIGHT: usize = 32;

/// Which signal a request carries, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Spans,
    Logs,
    Events,
}

impl Signal {
    fn counters(self, metrics: &Metrics) -> &SignalCounters {
        match self {
            Signal::Spans => &metrics.spans,
            Signal::Logs => &metrics.logs,
            Signal::Events => &metrics.events,
        }
    }
}

/// Lets a request in: what its `Authorization` header may write, then an
/// in-flight slot (see [`MAX_IN_FLIGHT`]), both before its body is read.
/// The token comes first so that senders without a valid one, waiting on
/// its check, never hold the slots valid senders need.
pub(crate) async fn admit(
    state: &ReceiverState,
    authorization: Option<&str>,
) -> Result<(Access, tokio::sync::OwnedSemaphorePermit), ReceiveError> {
    let access = state.auth.authenticate(authorization).await?;
    let slot = state
        .in_flight
        .clone()
        .acquire_owned()
        .await
        .expect("the in-flight semaphore is never closed");
    Ok((access, slot))
}

/// The `Authorization` header's value.
pub(crate) fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// Takes out of `batch` the records of systems (or plants) `access` may not write for,
/// counts them, and returns each one's `(what, why)`. When nothing else is
/// left the whole request is refused: `Forbidden`.
pub(crate) fn enforce(
    state: &ReceiverState,
    access: &Access,
    batch: &mut Batch,
) -> Result<Vec<(String, String)>, ReceiveError> {
    let refused = access.retain(batch);
    if refused.is_empty() {
        return Ok(Vec::new());
    }
    let m = &state.metrics;
    for r in &refused {
        let counters = if r.what.starts_with("span") {
            &m.spans
        } else if r.what.starts_with("log") {
            &m.logs
        } else {
            &m.events
        };
        metrics::add(&counters.forbidden, 1);
    }
    let reasons: Vec<(String, String)> = refused
        .iter()
        .map(|r| (r.what.clone(), r.reason.clone()))
        .collect();
    if batch.spans.is_empty() && batch.logs.is_empty() && batch.events.is_empty() {
        return Err(ReceiveError::Forbidden(format!(
            "nothing was stored: {}",
            reasons[0].1
        )));
    }
    Ok(reasons)
}

/// Hands the valid records of one request to the pipeline and waits until
/// they are stored. `rejected` records were refused on their own already.
pub(crate) async fn ingest(
    state: &ReceiverState,
    signal: Signal,
    batch: Batch,
    rejected: usize,
) -> Result<(), ReceiveError> {
    let m = &state.metrics;
    let sizes = [
        (&m.spans, batch.spans.len()),
        (&m.logs, batch.logs.len()),
        (&m.events, batch.events.len()),
    ];
    for (counters, n) in sizes {
        metrics::add(&counters.received, n);
    }
    for span in &batch.spans {
        m.spans.count_truncated(Truncated::of(&span.attributes));
    }
    for log in &batch.logs {
        m.logs.count_truncated(Truncated::of(&log.attributes));
    }
    for event in &batch.events {
        m.events.count_truncated(Truncated::of(&event.attributes));
    }
    let counters = signal.counters(m);
    metrics::add(&counters.received, rejected);
    metrics::add(&counters.rejected, rejected);
    if let Err(e) = state.pipeline.submit(batch).await {
        for (counters, n) in sizes {
            metrics::add(&counters.rejected, n);
        }
        let counter = match e {
            SubmitError::Full { .. } => &m.requests_spool_full,
            _ => &m.requests_overloaded,
        };
        metrics::add(counter, 1);
        return Err(ReceiveError::Unavailable(e));
    }
    Ok(())
}

/// Counts a request refused as a whole.
pub(crate) fn count_refused(m: &Metrics, error: &ReceiveError) {
    let counter = match error {
        ReceiveError::BadRequest(_) => &m.requests_bad,
        ReceiveError::TooLarge { .. } => &m.requests_too_large,
        ReceiveError::UnsupportedMediaType(_) => &m.requests_unsupported,
        ReceiveError::Unauthenticated(_) => &m.requests_unauthenticated,
        ReceiveError::Forbidden(_) => &m.requests_forbidden,
        // Counted by `ingest`, which knows how many records it cost.
        ReceiveError::Unavailable(_) => return,
        // Counted by the listener (`throughline_request_body_timeouts_total`).
        ReceiveError::BodyTimeout(_) => return,
    };
    metrics::add(counter, 1);
}

pub(crate) use domain::now_ns;

/// The request body, decompressed, within the size limit.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ReceiveError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ReceiveError::TooLarge { limit });
    }
    let raw = axum::body::to_bytes(body, limit).await.map_err(|e| {
        // The only errors `to_bytes` has besides a broken connection.
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
        {
            ReceiveError::TooLarge { limit }
        } else if let Some(timed_out) = crate::connections::BodyTimedOut::find(&e) {
            ReceiveError::BodyTimeout(crate::connections::BodyTimedOut {
                limit: timed_out.limit,
            })
        } else {
            ReceiveError::BadRequest(format!("could not read the request body: {e}"))
        }
    })?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(raw),
        "gzip" => {
            let mut out = Vec::with_capacity(raw.len() * 4);
            // Read one byte past the limit to tell "exactly at" from "over".
            flate2::read::GzDecoder::new(&raw[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ReceiveError::BadRequest(format!(
                        "Content-Encoding is gzip but the body is not valid gzip: {e}"
                    ))
                })?;
            if out.len() > limit {
                return Err(ReceiveError::TooLarge { limit });
            }
            Ok(Bytes::from(out))
        }
        other => Err(ReceiveError::UnsupportedMediaType(format!(
            "Content-Encoding {other} is not supported; send gzip or no encoding"
        ))),
    }
}
