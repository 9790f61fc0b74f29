//! The console's listener: bound (loopback only while no one can sign in),
//! served plain or over TLS within the connection limits
//! (`collector::connections`) until shutdown.

use std::net::SocketAddr;

use anyhow::Context;
use collector::connections::ConnectionLimits;
use collector::tls::Tls;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// A started console.
pub struct Console {
    pub addr: SocketAddr,
    /// It serves TLS (its URL is https).
    pub tls: bool,
    task: JoinHandle<()>,
}

impl Console {
    /// Serves plain HTTP on `addr`, with the default connection limits.
    pub async fn start(
        state: AppState,
        addr: SocketAddr,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        Self::start_with(state, addr, None, ConnectionLimits::default(), shutdown).await
    }

    /// Serves on `addr`, over TLS when `tls` is given, within `limits`.
    pub async fn start_with(
        state: AppState,
        addr: SocketAddr,
        tls: Option<Tls>,
        limits: ConnectionLimits,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let addr = if state.auth.is_open() {
            let loopback = SocketAddr::from(([127, 0, 0, 1], addr.port()));
            if !addr.ip().is_loopback() {
                tracing::warn!(asked = %addr, listening = %loopback, "no users are configured, so the console has no sign-in: it listens on loopback only; add [[users]] (README, Security) to serve it on {addr}");
            } else {
                tracing::info!("no users are configured: the console has no sign-in and listens on loopback only");
            }
            if addr.ip().is_loopback() {
                addr
            } else {
                loopback
            }
        } else {
            addr
        };
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (console); pick another address with --console-addr")
        })?;
        let addr = listener.local_addr().unwrap_or(addr);
        let with_tls = tls.is_some();
        let metrics = state.metrics.clone();
        let app = crate::app(state);
        let task = tokio::spawn(async move {
            let result = collector::connections::serve_http(
                listener,
                tls.as_ref(),
                app,
                "console",
                &limits,
                metrics,
                shutdown,
            )
            .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "console server failed");
            }
        });
        collector::tls::warn_if_exposed("The console", addr, with_tls);
        let url = format!("{}://{addr}", collector::tls::scheme(with_tls));
        tracing::info!(%url, tls = with_tls, "console listening");
        Ok(Self {
            addr,
            tls: with_tls,
            task,
        })
    }

    /// The console's base URL, `http://` or `https://`.
    pub fn url(&self) -> String {
        format!("{}://{}", collector::tls::scheme(self.tls), self.addr)
    }

    pub async fn wait(self) {
        let _ = self.task.await;
    }
}
