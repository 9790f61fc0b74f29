//! TLS for every listener (OTLP/gRPC, OTLP/HTTP and events, the console), and
//! the warning for a listener that is reachable from the network in clear
//! text.
//!
//! One certificate and key (PEM files) serve all listeners. They are read and
//! checked once, at start ([`Tls::load`]), so a wrong file stops the start
//! with a message naming it. rustls runs on the `ring` provider: it needs no C
//! toolchain beyond what `ring` builds.
//!
//! Handshakes never run on the accept loop: [`TlsListener`] accepts TCP
//! connections in a task of its own and hands each to a handshake task with a
//! deadline ([`HANDSHAKE_TIMEOUT`]), so a slow or silent client delays only
//! itself. Each connection takes its slot under the listener's cap
//! ([`crate::connections::Slots`]) before its handshake, so handshakes count
//! against `max_connections` too. Finished connections wait in a bounded
//! channel for the server ([`crate::connections`]) to take them. A failed handshake (plain HTTP to a TLS port, a client that does
//! not trust the certificate) is logged at debug and counted in
//! `throughline_tls_handshake_failures_total`; it is never fatal.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use crate::connections::{Slot, Slots};
use crate::metrics::Metrics;

/// How long a client may take to finish its TLS handshake, unless told
/// otherwise ([`TlsListener::with_deadline`]; the listeners use their
/// `header_read_timeout`, 10 s by default).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once, per listener; past it, accepting waits.
const MAX_HANDSHAKES: usize = 1024;

/// Finished connections waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// Warns when `what` listens on `addr` beyond this machine without TLS:
/// whatever crosses that listener can be read on the network.
pub fn warn_if_exposed(what: &str, addr: SocketAddr, tls: bool) -> bool {
    let exposed = !addr.ip().is_loopback() && !tls;
    if exposed {
        tracing::warn!(
            "{what} listens on {addr} without TLS: tokens, passwords and business data cross the network in clear text; set tls_cert and tls_key"
        );
    }
    exposed
}

/// Makes ring the process's default rustls provider (once; later calls do
/// nothing). Clients that build on the process default, such as the
/// OpenTelemetry SDK's HTTP exporter when built with rustls but no provider,
/// panic without one.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The scheme of a listener's URL: `https` with TLS, else `http`.
pub fn scheme(tls: bool) -> &'static str {
    if tls {
        "https"
    } else {
        "http"
    }
}

/// A certificate chain and its key, checked, as server configurations for
/// HTTP listeners (ALPN `h2`, `http/1.1`) and gRPC (`h2`).
#[derive(Clone)]
pub struct Tls {
    cert_path: PathBuf,
    http: Arc<ServerConfig>,
    grpc: Arc<ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert_path)
            .finish_non_exhaustive()
    }
}

/// Why a certificate or key cannot be used. Names the setting and the file,
/// and says what to give instead.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {setting} {path}: {source}; give the path of a PEM file")]
    Read {
        setting: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("tls_cert {path} holds no certificate{detail}; give the PEM file with the server certificate (-----BEGIN CERTIFICATE-----), followed by any intermediates")]
    NoCertificate { path: String, detail: String },
    #[error("tls_key {path} holds no private key{detail}; give the PEM file with the certificate's PKCS#8, PKCS#1 or SEC1 key")]
    NoKey { path: String, detail: String },
    #[error("tls_key {key} does not fit tls_cert {cert} ({message}); give the key the certificate was issued for")]
    Mismatch {
        cert: String,
        key: String,
        message: String,
    },
}

impl Tls {
    /// Reads and checks the PEM files `cert` (the chain, server certificate
    /// first) and `key`.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |setting, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                setting,
                path: path.display().to_string(),
                source,
            })
        };
        let cert_pem = read("tls_cert", cert)?;
        let key_pem = read("tls_key", key)?;
        let cert_name = cert.display().to_string();
        let key_name = key.display().to_string();
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::NoCertificate {
                path: cert_name.clone(),
                detail: format!(" that can be read ({e})"),
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: cert_name,
                detail: String::new(),
            });
        }
        let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
            path: key_name.clone(),
            detail: match e {
                rustls::pki_types::pem::Error::NoItemsFound => String::new(),
                e => format!(" that can be read ({e})"),
            },
        })?;
        let config = |alpn: &[&[u8]]| {
            let mut config = ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key_der.clone_key())
            .map_err(|e| TlsError::Mismatch {
                cert: cert_name.clone(),
                key: key_name.clone(),
                message: e.to_string(),
            })?;
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(config))
        };
        Ok(Self {
            http: config(&[b"h2", b"http/1.1"])?,
            grpc: config(&[b"h2"])?,
            cert_path: cert.to_path_buf(),
        })
    }

    /// For HTTP listeners: HTTP/2 or HTTP/1.1, as the client prefers.
    pub fn http_config(&self) -> Arc<ServerConfig> {
        self.http.clone()
    }

    /// For gRPC: HTTP/2 only.
    pub fn grpc_config(&self) -> Arc<ServerConfig> {
        self.grpc.clone()
    }
}

/// A TCP listener whose connections come out with their TLS handshake done,
/// each with its slot under the listener's cap.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsConn, SocketAddr, Slot)>,
    local_addr: SocketAddr,
    accepting: JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Closes the listening socket; handshakes in progress end by their
        // deadline at the latest.
        self.accepting.abort();
    }
}

impl TlsListener {
    /// Starts accepting on `listener`, each connection in one of `slots`;
    /// `what` names the listener in logs.
    pub fn new(
        listener: TcpListener,
        config: Arc<ServerConfig>,
        what: &'static str,
        metrics: Arc<Metrics>,
        slots: Arc<Slots>,
    ) -> io::Result<Self> {
        Self::with_deadline(listener, config, what, metrics, slots, HANDSHAKE_TIMEOUT)
    }

    /// [`TlsListener::new`] with a handshake deadline of `deadline`.
    pub fn with_deadline(
        listener: TcpListener,
        config: Arc<ServerConfig>,
        what: &'static str,
        metrics: Arc<Metrics>,
        slots: Arc<Slots>,
        deadline: Duration,
    ) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let accepting = tokio::spawn(async move {
            loop {
                let Ok(permit) = handshakes.clone().acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_error(what, e).await;
                        continue;
                    }
                };
                let slot = slots.admit().await;
                let (acceptor, tx, metrics) = (acceptor.clone(), tx.clone(), metrics.clone());
                tokio::spawn(async move {
                    let outcome = tokio::select! {
                        outcome = tokio::time::timeout(deadline, acceptor.accept(tcp)) => outcome,
                        // Closed to make room at the cap (and counted there).
                        _ = slot.evicted() => return,
                    };
                    drop(permit);
                    match outcome {
                        Ok(Ok(tls)) => {
                            // A closed channel: the server stopped; drop it.
                            let _ = tx.send((TlsConn(tls), peer, slot)).await;
                        }
                        Ok(Err(e)) => {
                            metrics
                                .tls_handshake_failures
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(listener = what, %peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            metrics
                                .tls_handshake_failures
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(listener = what, %peer, "TLS handshake timed out");
                        }
                    }
                });
            }
        });
        Ok(Self {
            ready,
            local_addr,
            accepting,
        })
    }
}

/// Connection errors (the peer gave up) are passed over; others (out of
/// file descriptors) are logged and accepting pauses for a second, as axum
/// does for plain listeners.
pub(crate) async fn accept_error(what: &str, e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    ) {
        return;
    }
    tracing::error!(listener = what, error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

impl TlsListener {
    /// The next connection with its handshake done.
    pub async fn accept(&mut self) -> (TlsConn, SocketAddr, Slot) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task ended only if it was aborted, which happens
            // when this listener is dropped: nothing is waiting any more.
            None => std::future::pending().await,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// One server-side TLS connection over TCP.
pub struct TlsConn(tokio_rustls::server::TlsStream<TcpStream>);

impl TlsConn {
    /// The protocol the client and server agreed on by ALPN (`h2`, ...).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.0.get_ref().1.alpn_protocol()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_listener_beyond_loopback_without_tls_is_exposed() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(warn_if_exposed("OTLP/HTTP", addr("0.0.0.0:4318"), false));
        assert!(warn_if_exposed("console", addr("[::]:8080"), false));
        assert!(warn_if_exposed("console", addr("10.1.2.3:8080"), false));
        assert!(!warn_if_exposed("OTLP/HTTP", addr("0.0.0.0:4318"), true));
        assert!(!warn_if_exposed("OTLP/gRPC", addr("127.0.0.1:4317"), false));
        assert!(!warn_if_exposed("console", addr("[::1]:8080"), false));
    }

    fn certificate(dir: &Path) -> Tls {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        Tls::load(&cert, &key).unwrap()
    }

    /// A client that connects and never finishes its handshake is cut off
    /// at the deadline and counted; meanwhile others are served.
    #[tokio::test]
    async fn a_silent_client_is_dropped_at_the_deadline_and_counted() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let tls = certificate(dir.path());
        let metrics = Arc::new(Metrics::new());
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut listener = TlsListener::with_deadline(
            tcp,
            tls.http_config(),
            "test",
            metrics.clone(),
            Slots::new("test", 16, &metrics),
            Duration::from_millis(300),
        )
        .unwrap();
        let addr = listener.local_addr();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        silent.write_all(b"\x16\x03\x01").await.unwrap();

        // Someone else completes a handshake while the silent one waits.
        let mut roots = rustls::RootCertStore::empty();
        let cert = std::fs::read(dir.path().join("cert.pem")).unwrap();
        roots
            .add(CertificateDer::from_pem_slice(&cert).unwrap())
            .unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let (served, accepted) = tokio::join!(
            connector.connect(name, TcpStream::connect(addr).await.unwrap()),
            listener.accept()
        );
        served.unwrap();
        assert_eq!(accepted.0.alpn(), None);

        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the silent client is cut off");
        // Counted right after the connection was closed.
        let mut failures = 0;
        for _ in 0..50 {
            failures = metrics.tls_handshake_failures.load(Ordering::Relaxed);
            if failures > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(failures, 1);
    }
}
