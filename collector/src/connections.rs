//! What a client may cost: the connection limits of every listener (OTLP/gRPC,
//! OTLP/HTTP and events, the console), plain or over TLS, and the server
//! loop that enforces them ([`serve_http`], [`serve_grpc`]).
//!
//! Each connection has a watchdog that knows whether a request is in flight
//! (the service was called and has not answered yet):
//!
//! - **Header read timeout.** A new connection must finish its TLS
//!   handshake and deliver a whole request head (HTTP/1) within
//!   `header_read_timeout` of being accepted; on a kept-alive connection the
//!   clock starts with the first byte of the next request. A silent client, or one that sends a
//!   header line every few seconds, is closed then. Before the HTTP/2
//!   preface has arrived the same rule holds for HTTP/2.
//! - **Idle timeout.** A connection without a request in flight for
//!   `idle_timeout` (between HTTP/1 requests; HTTP/2, gRPC included, once it
//!   has no open stream) is closed: HTTP/1 at once, HTTP/2 with a GOAWAY and
//!   [`GOAWAY_GRACE`] to finish. HTTP/2 connections are also pinged after
//!   [`H2_PING_INTERVAL`] of silence and closed when the answer takes longer
//!   than [`H2_PING_TIMEOUT`].
//! - **Body read timeout.** A request body must arrive whole within
//!   `body_read_timeout` of the handler starting to read it (HTTP `408`, gRPC
//!   `DEADLINE_EXCEEDED`; the connection is then closed). Waiting for an
//!   in-flight slot (see `receivers::MAX_IN_FLIGHT`) does not count.
//! - **Connection cap.** A listener holds at most `max_connections`
//!   connections (TLS handshakes included). A connection accepted at the cap
//!   closes the connection idle the longest (or still in its handshake),
//!   preferring those that never completed a request (like nginx, which reuses idle keep-alive
//!   connections when `worker_connections` run out); when every connection
//!   has a request in flight, accepting waits until one ends (like Go's
//!   `netutil.LimitListener`) and new clients wait in the kernel's backlog.
//!   So idle and slow clients can never lock others out, and the cap bounds
//!   the file descriptors clients take: [`ConnectionLimits::for_listeners`]
//!   keeps the caps of all listeners of the process within half the soft
//!   open-file limit, so ClickHouse connections and spool files always find
//!   descriptors.
//!
//! Closed connections are counted per listener in `/metrics`
//! (`throughline_connections_closed_total`,
//! `throughline_request_body_timeouts_total`, `throughline_connections_open`)
//! and logged at debug; a listener at its cap warns at most once a minute.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{ListenerCounters, Metrics};
use crate::tls::{Tls, TlsConn, TlsListener};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Default time a client has to send a whole request head.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a request body may take to arrive, whole.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a connection may stay without a request.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap of connections per listener, where the open-file limit allows.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// An HTTP/2 connection silent this long is pinged.
pub const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
/// How long the answer to a ping may take before the connection is closed.
pub const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an HTTP/2 connection told to go away may take to finish.
pub const GOAWAY_GRACE: Duration = Duration::from_secs(1);

/// How often a listener at its cap says so.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(60);

/// The limits every listener applies to its clients (config keys
/// `header_read_timeout`, `body_read_timeout`, `idle_timeout`,
/// `max_connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// Connections at once per listener; `None`: [`DEFAULT_MAX_CONNECTIONS`],
    /// or less where the open-file limit demands it (see
    /// [`ConnectionLimits::for_listeners`]).
    pub max_connections: Option<usize>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: None,
        }
    }
}

/// Each listener's cap for a process with some listeners and an open-file
/// limit, and whether a configured cap had to be lowered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Share {
    per_listener: usize,
    lowered: bool,
}

/// All listeners together may hold half the soft open-file limit; each
/// gets an equal share of it, at most the configured cap (or the default).
fn share(configured: Option<usize>, listeners: usize, open_files: Option<u64>) -> Share {
    let wanted = configured.unwrap_or(DEFAULT_MAX_CONNECTIONS).max(1);
    let Some(open_files) = open_files else {
        return Share {
            per_listener: wanted,
            lowered: false,
        };
    };
    let budget = (open_files / 2) as usize / listeners.max(1);
    let per_listener = wanted.min(budget).max(1);
    Share {
        per_listener,
        lowered: configured.is_some() && per_listener < wanted,
    }
}

/// The soft limit of open files (`ulimit -n`); `None` when unlimited or
/// unknown.
fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as u64)
}

impl ConnectionLimits {
    /// The cap of each listener connections may actually reach.
    pub fn max_connections(&self) -> usize {
        self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS)
    }

    /// Fixes the cap of each of the process's `listeners` listeners: the
    /// configured cap (or the default), lowered so that all of them together
    /// take at most half the soft open-file limit, and logs what was chosen.
    pub fn for_listeners(self, listeners: usize) -> Self {
        let open_files = open_file_limit();
        let chosen = share(self.max_connections, listeners, open_files);
        let per_listener = chosen.per_listener;
        let limit = open_files.map_or("unlimited".to_string(), |n| n.to_string());
        if chosen.lowered {
            tracing::warn!(
                "max_connections {} on each of {listeners} listeners would leave too few of the {limit} open files (ulimit -n) for ClickHouse connections and spool files; using {per_listener} per listener; raise the open-file limit (ulimit -n, systemd LimitNOFILE=) to allow more",
                self.max_connections()
            );
        }
        tracing::info!(
            max_connections = per_listener,
            listeners,
            open_file_limit = %limit,
            header_read_timeout = ?self.header_read_timeout,
            body_read_timeout = ?self.body_read_timeout,
            idle_timeout = ?self.idle_timeout,
            "connection limits (per listener; all listeners together take at most half the open-file limit)"
        );
        Self {
            max_connections: Some(per_listener),
            ..self
        }
    }
}

/// Why the server closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    HeaderTimeout,
    IdleTimeout,
    Evicted,
}

impl Reason {
    fn count(self, counters: &ListenerCounters) {
        let counter = match self {
            Reason::HeaderTimeout => &counters.header_timeouts,
            Reason::IdleTimeout => &counters.idle_timeouts,
            Reason::Evicted => &counters.evicted,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn describe(self) -> &'static str {
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
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection's watchdog reads: requests in flight, and when the
/// connection last became idle. Shared by the connection's IO (bytes read),
/// its service (requests begin and end) and the listener (eviction).
struct ConnState {
    accepted: Instant,
    in_flight: AtomicUsize,
    /// A request head was complete at least once.
    served: AtomicBool,
    /// When the last request ended (or the connection was accepted).
    idle_since: AtomicU64,
    /// The first byte read since `idle_since`, or [`NEVER`].
    read_since_idle: AtomicU64,
    /// The client sent the HTTP/2 preface.
    h2: AtomicBool,
    /// Wakes the watchdog when its deadline may have moved earlier.
    changed: Notify,
    /// Set by the listener to make room at its cap.
    evict: CancellationToken,
}

impl ConnState {
    fn new() -> Self {
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

    fn request_started(&self) {
        self.served.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn request_ended(&self) {
        self.read_since_idle.store(NEVER, Ordering::Relaxed);
        self.idle_since.store(self.now(), Ordering::Relaxed);
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.changed.notify_one();
        }
    }

    fn bytes_read(&self) {
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

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// When the connection is to be closed, and why; `None` while a request
    /// is in flight.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, Reason)> {
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
    fn eviction_rank(&self) -> (bool, Instant) {
        (
            self.served.load(Ordering::Relaxed),
            self.at(self.idle_since.load(Ordering::Relaxed)),
        )
    }
}

/// A listener's connections: at most `max` at once (see the module docs).
pub struct Slots {
    what: &'static str,
    max: usize,
    permits: Arc<Semaphore>,
    /// Every connection holding a slot (TLS handshakes included), for
    /// eviction.
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next_id: AtomicU64,
    counters: Arc<ListenerCounters>,
    last_warning: Mutex<Option<Instant>>,
}

/// A connection's place under its listener's cap, from the moment it was
/// accepted (before any TLS handshake), given back when dropped. While it
/// is held, the listener may evict the connection.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    slots: Arc<Slots>,
    id: u64,
    state: Arc<ConnState>,
}

impl Slot {
    /// Resolves when the listener closes this connection to make room.
    pub async fn evicted(&self) {
        self.state.evict.cancelled().await
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots
            .conns
            .lock()
            .expect("connections lock")
            .remove(&self.id);
        self.slots.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slots {
    /// The slots of the listener `what`, counted in `metrics`.
    pub fn new(what: &'static str, max: usize, metrics: &Metrics) -> Arc<Self> {
        let max = max.max(1);
        let counters = metrics.listener(what);
        counters.limit.store(max as u64, Ordering::Relaxed);
        Arc::new(Self {
            what,
            max,
            permits: Arc::new(Semaphore::new(max)),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            counters,
            last_warning: Mutex::new(None),
        })
    }

    /// A slot for a connection just accepted. At the cap, the connection
    /// idle the longest is closed to make room; when none is idle, this
    /// waits until a connection ends.
    pub async fn admit(self: &Arc<Self>) -> Slot {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let evicted = self.evict_one();
                self.warn_at_cap(evicted);
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the connection semaphore is never closed")
            }
        };
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::new());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.conns
            .lock()
            .expect("connections lock")
            .insert(id, state.clone());
        Slot {
            _permit: permit,
            slots: self.clone(),
            id,
            state,
        }
    }

    /// Tells the idlest connection to close; false when none is idle.
    fn evict_one(&self) -> bool {
        let conns = self.conns.lock().expect("connections lock");
        let victim = conns
            .values()
            .filter(|c| c.idle() && !c.evict.is_cancelled())
            .min_by_key(|c| c.eviction_rank());
        match victim {
            Some(victim) => {
                victim.evict.cancel();
                Reason::Evicted.count(&self.counters);
                true
            }
            None => false,
        }
    }

    fn warn_at_cap(&self, evicted: bool) {
        let mut last = self.last_warning.lock().expect("warning lock");
        if last.is_some_and(|at| at.elapsed() < CAP_WARNING_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        let (what, max) = (self.what, self.max);
        if evicted {
            tracing::warn!(listener = what, max_connections = max, "{what} holds {max} connections (max_connections): closing the one idle the longest for each new one (said at most once a minute)");
        } else {
            tracing::warn!(listener = what, max_connections = max, "{what} holds {max} connections (max_connections), each with a request in flight: new connections wait until one ends (said at most once a minute); raise max_connections if this is normal load");
        }
    }
}

/// A connection's IO, telling its watchdog when bytes arrive and whether
/// the client speaks HTTP/2.
struct Watched<IO> {
    io: IO,
    state: Arc<ConnState>,
    /// Bytes of the HTTP/2 preface seen so far; `None` once decided.
    preface: Option<usize>,
}

impl<IO> Watched<IO> {
    fn sniff(&mut self, bytes: &[u8]) {
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
enum Protocol {
    /// HTTP/1.1 or HTTP/2, as the client chooses.
    Http,
    /// gRPC: HTTP/2 only.
    Grpc,
}

/// A request body that must arrive whole within `limit` of its first read.
pub struct TimedBody {
    inner: Incoming,
    limit: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    protocol: Protocol,
    what: &'static str,
    counters: Arc<ListenerCounters>,
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
struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
    body_timeout: Duration,
    protocol: Protocol,
    what: &'static str,
    counters: Arc<ListenerCounters>,
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
enum Stream {
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

/// Where a listener's connections come from, each with its slot.
enum Accepting {
    Plain {
        listener: TcpListener,
        slots: Arc<Slots>,
        what: &'static str,
    },
    Tls(TlsListener),
}

impl Accepting {
    async fn accept(&mut self) -> (Stream, SocketAddr, Slot) {
        match self {
            Accepting::Plain {
                listener,
                slots,
                what,
            } => loop {
                match listener.accept().await {
                    Ok((tcp, peer)) => return (Stream::Plain(tcp), peer, slots.admit().await),
                    Err(e) => crate::tls::accept_error(what, e).await,
                }
            },
            Accepting::Tls(listener) => {
                let (conn, peer, slot) = listener.accept().await;
                (Stream::Tls(Box::new(conn)), peer, slot)
            }
        }
    }
}

/// Serves `app` on `listener` (HTTP/1.1 or HTTP/2) until `shutdown`, over
/// TLS when `tls` is given, within `limits`. On shutdown it stops
/// accepting, lets each connection finish what is in flight, and returns
/// once all are closed.
pub async fn serve_http(
    listener: TcpListener,
    tls: Option<&Tls>,
    app: axum::Router,
    what: &'static str,
    limits: &ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let config = tls.map(Tls::http_config);
    serve(
        listener,
        config,
        app,
        Protocol::Http,
        what,
        limits,
        metrics,
        shutdown,
    )
    .await
}

/// [`serve_http`] for gRPC `routes`: HTTP/2 only.
pub async fn serve_grpc(
    listener: TcpListener,
    tls: Option<&Tls>,
    routes: tonic::service::Routes,
    what: &'static str,
    limits: &ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let config = tls.map(Tls::grpc_config);
    serve(
        listener,
        config,
        routes,
        Protocol::Grpc,
        what,
        limits,
        metrics,
        shutdown,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn serve<S, B>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    service: S,
    protocol: Protocol,
    what: &'static str,
    limits: &ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> io::Result<()>
where
    S: tower_service::Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let limits = *limits;
    let slots = Slots::new(what, limits.max_connections(), &metrics);
    let mut incoming = match tls {
        None => Accepting::Plain {
            listener,
            slots: slots.clone(),
            what,
        },
        // A client has `header_read_timeout` for its handshake too.
        Some(config) => Accepting::Tls(TlsListener::with_deadline(
            listener,
            config,
            what,
            metrics,
            slots.clone(),
            limits.header_read_timeout,
        )?),
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    if protocol == Protocol::Grpc {
        builder = builder.http2_only();
    }
    let builder = Arc::new(builder);
    // Every connection task holds a receiver; all are gone once the last
    // connection closed.
    let (all_closed, open) = tokio::sync::watch::channel(());
    loop {
        let (stream, peer, slot) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = incoming.accept() => accepted,
        };
        let state = slot.state.clone();
        let service = Tracked {
            inner: service.clone(),
            state: state.clone(),
            body_timeout: limits.body_read_timeout,
            protocol,
            what,
            counters: slots.counters.clone(),
        };
        let io = TokioIo::new(Watched {
            io: stream,
            state: state.clone(),
            preface: Some(0),
        });
        let (builder, shutdown, open) = (builder.clone(), shutdown.clone(), open.clone());
        let counters = slots.counters.clone();
        tokio::spawn(async move {
            let conn = builder.serve_connection(io, service);
            tokio::pin!(conn);
            // Once told to go away (HTTP/2), the moment it is closed
            // regardless.
            let mut closing: Option<Instant> = None;
            let mut stopping = false;
            loop {
                let deadline = closing.or_else(|| state.deadline(&limits).map(|(at, _)| at));
                let sleep = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                let reason = tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(listener = what, %peer, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = sleep => {
                        if closing.is_some() {
                            tracing::debug!(listener = what, %peer, "connection did not finish after GOAWAY; closed");
                            break;
                        }
                        match state.deadline(&limits) {
                            Some((at, reason)) if at <= Instant::now() => reason,
                            _ => continue,
                        }
                    }
                    _ = state.changed.notified() => continue,
                    _ = state.evict.cancelled(), if closing.is_none() => Reason::Evicted,
                    _ = shutdown.cancelled(), if !stopping => {
                        // HTTP/1: after the request in flight; HTTP/2: GOAWAY.
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                        continue;
                    }
                };
                if reason != Reason::Evicted {
                    // Evictions are counted when they are decided.
                    reason.count(&counters);
                }
                tracing::debug!(listener = what, %peer, "closing the connection: {}", reason.describe());
                if !state.h2.load(Ordering::Relaxed) {
                    break;
                }
                if !stopping {
                    conn.as_mut().graceful_shutdown();
                }
                closing = Some(Instant::now() + GOAWAY_GRACE);
            }
            drop(slot);
            drop(open);
        });
    }
    // Closes the listening socket at once: new clients are refused rather
    // than left waiting.
    drop(incoming);
    drop(open);
    all_closed.closed().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_leave_half_the_open_files_to_the_store() {
        let share = |configured, listeners, open_files| share(configured, listeners, open_files);
        // Plenty of files: the default, or what is configured.
        assert_eq!(share(None, 3, Some(65536)).per_listener, 512);
        assert_eq!(share(Some(2000), 3, Some(65536)).per_listener, 2000);
        assert!(!share(Some(2000), 3, Some(65536)).lowered);
        // The case: 300 open files, three listeners.
        assert_eq!(share(None, 3, Some(300)).per_listener, 50);
        assert!(!share(None, 3, Some(300)).lowered);
        // A configured cap beyond half the limit is lowered, and says so.
        let lowered = share(Some(512), 3, Some(1024));
        assert_eq!(lowered.per_listener, 170);
        assert!(lowered.lowered);
        // One listener gets all of the half.
        assert_eq!(share(None, 1, Some(1024)).per_listener, 512);
        assert_eq!(share(None, 1, Some(600)).per_listener, 300);
        // Unlimited: as configured.
        assert_eq!(share(None, 3, None).per_listener, 512);
        assert_eq!(share(Some(0), 3, Some(4)).per_listener, 1);
    }

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: None,
        }
    }

    /// `deadline` is `expected` (to the millisecond the state keeps) and
    /// for `reason`.
    fn assert_deadline(state: &ConnState, expected: Instant, reason: Reason) {
        let (at, why) = state.deadline(&limits()).expect("a deadline");
        assert_eq!(why, reason);
        let off = if at > expected {
            at - expected
        } else {
            expected - at
        };
        assert!(off < Duration::from_millis(50), "{at:?} vs {expected:?}");
    }

    #[test]
    fn deadlines_follow_the_requests() {
        let limits = limits();
        let state = ConnState::new();
        let start = state.accepted;
        // A new connection: the head must come within the header timeout.
        assert_deadline(
            &state,
            start + limits.header_read_timeout,
            Reason::HeaderTimeout,
        );
        // Bytes arriving change nothing for the first request.
        state.bytes_read();
        assert_deadline(
            &state,
            start + limits.header_read_timeout,
            Reason::HeaderTimeout,
        );
        // No deadline while a request is in flight.
        state.request_started();
        assert_eq!(state.deadline(&limits), None);
        std::thread::sleep(Duration::from_millis(100));
        state.request_ended();
        let ended = Instant::now();
        assert_deadline(&state, ended + limits.idle_timeout, Reason::IdleTimeout);
        // The next request's first byte starts the header timeout.
        std::thread::sleep(Duration::from_millis(100));
        let first_byte = Instant::now();
        state.bytes_read();
        assert_deadline(
            &state,
            first_byte + limits.header_read_timeout,
            Reason::HeaderTimeout,
        );
        // HTTP/2: only the idle timeout.
        state.h2.store(true, Ordering::Relaxed);
        assert_deadline(&state, ended + limits.idle_timeout, Reason::IdleTimeout);
    }

    #[test]
    fn the_http2_preface_is_recognised_in_pieces() {
        let watched = |chunks: &[&[u8]]| {
            let mut w = Watched {
                io: (),
                state: Arc::new(ConnState::new()),
                preface: Some(0),
            };
            for chunk in chunks {
                w.sniff(chunk);
            }
            w.state.h2.load(Ordering::Relaxed)
        };
        assert!(watched(&[H2_PREFACE]));
        assert!(watched(&[b"PRI * HT", b"TP/2.0\r\n\r\nSM\r\n\r\n\0\0"]));
        assert!(!watched(&[b"POST /v1/traces HTTP/1.1\r\n"]));
        assert!(!watched(&[b"PRI * HTTP/1.1\r\n"]));
    }
}
