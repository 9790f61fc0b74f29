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

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, Response};
use hyper::body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::tls::{Tls, TlsListener};

mod body;
mod slots;
mod watch;

pub use body::{BodyTimedOut, TimedBody};
pub use slots::{Slot, Slots};

use body::Protocol;
use watch::{Reason, Stream, Tracked, Watched};

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
mod tests;
