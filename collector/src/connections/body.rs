//! The body read timeout: [`TimedBody`] gives a request body
//! `body_read_timeout` to arrive whole, else fails with [`BodyTimedOut`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};

use crate::metrics::ListenerCounters;

use super::BoxError;

/// The request body did not arrive within `body_read_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {}s (body_read_timeout); send smaller requests, or raise body_read_timeout for slow links", limit.as_secs_f64())]
pub struct BodyTimedOut {
    pub limit: Duration,
}

impl BodyTimedOut {
    /// The timeout in `error` or any of its sources.
    pub fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyTimedOut> {
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(found) = e.downcast_ref::<BodyTimedOut>() {
                return Some(found);
            }
            next = e.source();
        }
        None
    }
}

/// How a listener's services are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    /// HTTP/1.1 or HTTP/2, as the client chooses.
    Http,
    /// gRPC: HTTP/2 only.
    Grpc,
}

/// A request body that must arrive whole within `limit` of its first read.
pub struct TimedBody {
    pub(super) inner: Incoming,
    pub(super) limit: Duration,
    pub(super) deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    pub(super) protocol: Protocol,
    pub(super) what: &'static str,
    pub(super) counters: Arc<ListenerCounters>,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let limit = this.limit;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if deadline.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.counters.body_timeouts.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            listener = this.what,
            "request body not received within body_read_timeout; answering and closing"
        );
        let timed_out = BodyTimedOut { limit };
        let error: BoxError = match this.protocol {
            Protocol::Http => Box::new(timed_out),
            Protocol::Grpc => Box::new(tonic::Status::deadline_exceeded(timed_out.to_string())),
        };
        Poll::Ready(Some(Err(error)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
