//! The per-connection watchdog ([`ConnState`]) and what feeds it: the IO
//! wrapper [`Watched`], the service wrapper [`Tracked`], and [`Stream`], an
//! accepted connection plain or TLS.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::ListenerCounters;
use crate::tls::TlsConn;

use super::body::{Protocol, TimedBody};
use super::{BoxError, ConnectionLimits};

/// Why the server closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    HeaderTimeout,
    IdleTimeout,
    Evicted,
}

impl Reason {
    pub(super) fn count(self, counters: &ListenerCounters) {
        let counter = match self {
            Reason::HeaderTimeout => &counters.header_timeouts,
            Reason::IdleTimeout => &counters.idle_timeouts,
            Reason::Evicted => &counters.evicted,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Reason::HeaderTimeout => "no whole request head within header_read_timeout",
            Reason::IdleTimeout => "no request within idle_timeout",
            Reason::Evicted => "idle the longest while the listener was at max_connections",
        }
    }
}

/// `ConnState` times: milliseconds since the connection was accepted.
const NEVER: u64 = u64::MAX;

/// The HTTP/2 connection preface, which tells HTTP/2 from HTTP/1.
pub(super) const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection's watchdog reads: requests in flight, and when the
/// connection last became idle. Shared by the connection's IO (bytes read),
/// its service (requests begin and end) and the listener (eviction).
pub(super) struct ConnState {
    pub(super) accepted: Instant,
    in_flight: AtomicUsize,
    /// A request head was complete at least once.
    served: AtomicBool,
    /// When the last request ended (or the connection was accepted).
    idle_since: AtomicU64,
    /// The first byte read since `idle_since`, or [`NEVER`].
    read_since_idle: AtomicU64,
    /// The client sent the HTTP/2 preface.
    pub(super) h2: AtomicBool,
    /// Wakes the watchdog when its deadline may have moved earlier.
    pub(super) changed: Notify,
    /// Set by the listener to make room at its cap.
    pub(super) evict: CancellationToken,
}

impl ConnState {
    pub(super) fn new() -> Self {
        Self {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            read_since_idle: AtomicU64::new(NEVER),
            h2: AtomicBool::new(false),
            changed: Notify::new(),
            evict: CancellationToken::new(),
        }
    }

    fn now(&self) -> u64 {
        self.accepted.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.accepted + Duration::from_millis(ms)
    }

    pub(super) fn request_started(&self) {
        self.served.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn request_ended(&self) {
        self.read_since_idle.store(NEVER, Ordering::Relaxed);
        self.idle_since.store(self.now(), Ordering::Relaxed);
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.changed.notify_one();
        }
    }

    pub(super) fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.read_since_idle.load(Ordering::Relaxed) == NEVER
            && self
                .read_since_idle
                .compare_exchange(NEVER, self.now(), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    pub(super) fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// When the connection is to be closed, and why; `None` while a request
    /// is in flight.
    pub(super) fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, Reason)> {
        if !self.idle() {
            return None;
        }
        let idle_since = self.at(self.idle_since.load(Ordering::Relaxed));
        if self.h2.load(Ordering::Relaxed) {
            return Some((idle_since + limits.idle_timeout, Reason::IdleTimeout));
        }
        if !self.served.load(Ordering::Relaxed) {
            return Some((
                self.accepted + limits.header_read_timeout,
                Reason::HeaderTimeout,
            ));
        }
        match self.read_since_idle.load(Ordering::Relaxed) {
            NEVER => Some((idle_since + limits.idle_timeout, Reason::IdleTimeout)),
            first => Some((
                self.at(first) + limits.header_read_timeout,
                Reason::HeaderTimeout,
            )),
        }
    }

    /// The order in which the listener evicts at its cap: never served
    /// first, then idle the longest.
    pub(super) fn eviction_rank(&self) -> (bool, Instant) {
        (
            self.served.load(Ordering::Relaxed),
            self.at(self.idle_since.load(Ordering::Relaxed)),
        )
    }
}

/// A connection's IO, telling its watchdog when bytes arrive and whether
/// the client speaks HTTP/2.
pub(super) struct Watched<IO> {
    pub(super) io: IO,
    pub(super) state: Arc<ConnState>,
    /// Bytes of the HTTP/2 preface seen so far; `None` once decided.
    pub(super) preface: Option<usize>,
}

impl<IO> Watched<IO> {
    pub(super) fn sniff(&mut self, bytes: &[u8]) {
        let Some(mut seen) = self.preface else {
            return;
        };
        for b in bytes {
            if *b != H2_PREFACE[seen] {
                self.preface = None;
                return;
            }
            seen += 1;
            if seen == H2_PREFACE.len() {
                self.state.h2.store(true, Ordering::Relaxed);
                self.preface = None;
                return;
            }
        }
        self.preface = Some(seen);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let this = &mut *self;
            this.sniff(&buf.filled()[before..]);
            this.state.bytes_read();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A request in flight on a connection, until its answer is ready (or it
/// is dropped).
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn new(state: Arc<ConnState>) -> Self {
        state.request_started();
        Self(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A listener's service for one connection: counts requests in flight and
/// gives each a [`TimedBody`].
pub(super) struct Tracked<S> {
    pub(super) inner: S,
    pub(super) state: Arc<ConnState>,
    pub(super) body_timeout: Duration,
    pub(super) protocol: Protocol,
    pub(super) what: &'static str,
    pub(super) counters: Arc<ListenerCounters>,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: tower_service::Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::new(self.state.clone());
        let request = request.map(|inner| TimedBody {
            inner,
            limit: self.body_timeout,
            deadline: None,
            protocol: self.protocol,
            what: self.what,
            counters: self.counters.clone(),
        });
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let _in_flight = in_flight;
            std::future::poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            inner.call(request).await.map_err(Into::into)
        })
    }
}

/// An accepted connection, plain or TLS.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsConn>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
