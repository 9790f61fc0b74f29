//! The Throughline collector: the ingest side and nothing else. It receives
//! OTLP spans and logs (gRPC and HTTP) and CloudEvents, turns them into
//! domain records with their business keys, makes them durable in its spool
//! and writes them to ClickHouse through `store`; around that, who may
//! write (`auth`), the listeners (`tls`, `connections`) and the health and
//! metrics endpoints (`ops`, `metrics`).
//!
//! Data flows one way: `receivers` (the only code that knows a wire format)
//! -> domain records -> `pipeline` -> `spool` (durable on disk: the
//! acknowledgement) -> the pipeline's writer -> `store`; on an edge
//! collector (`Collector::forwarding`) the spool is drained by `forward`
//! to a central collector instead, with no ClickHouse at all.
//!
//! It never correlates, evaluates alert rules, renders a page or writes
//! SQL: it stores records and reports on itself. The console reuses its
//! listeners, credential hashing, `Metrics` and health router, so one
//! process serves both alike.

pub mod auth;
pub mod connections;
pub mod forward;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod receivers;
pub mod rollups;
pub mod spool;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use domain::events::EventRules;
use domain::keys::KeyTypes;
use pipeline::{Pipeline, PipelineOptions};
use receivers::otlp::{grpc, http};
use receivers::ReceiverState;
use spool::dead_letter::DeadLetters;
use spool::{Spool, SpoolOptions};
use store::Store;

/// Default size limit of one request body, after decompression: 16 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// What the collector needs to start.
#[derive(Debug, Clone)]
pub struct CollectorSettings {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub max_request_bytes: usize,
    /// What one record may carry (the `[limits]` section).
    pub limits: domain::limits::Limits,
    pub keys: Arc<KeyTypes>,
    pub events: Arc<EventRules>,
    pub pipeline: PipelineOptions,
    /// Where the spool lives and how large it may grow.
    pub spool: SpoolOptions,
    /// Shared with whatever else serves `/metrics` in this process.
    pub metrics: Arc<metrics::Metrics>,
    /// The connector tokens; [`auth::IngestAuth::open`] for none.
    pub auth: Arc<auth::IngestAuth>,
    /// Serve both listeners over TLS with this certificate.
    pub tls: Option<tls::Tls>,
    /// Timeouts and the cap of connections, for each of the two listeners.
    pub connections: connections::ConnectionLimits,
}

/// Where the collector's records go.
pub enum Sink {
    /// ClickHouse, through the pipeline's writer.
    Store(Box<Store>),
    /// A central collector, through the forwarder (an edge collector: no
    /// ClickHouse).
    Forward(forward::ForwardSettings),
}

/// A started collector: where it listens, and its tasks.
pub struct Collector {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The spool: tests and benchmarks wait on [`Spool::drained`].
    pub spool: Spool,
    /// Both listeners serve TLS.
    pub tls: bool,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} ({what}): {source}; pick another address with {flag}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        flag: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Spool(#[from] spool::OpenError),
    #[error("cannot forward to the central collector: {0}")]
    Forward(String),
    #[error("cannot open the dead-letter file in {dir}: {source}")]
    DeadLetters {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

async fn bind(
    addr: SocketAddr,
    what: &'static str,
    flag: &'static str,
) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            what,
            addr,
            flag,
            source,
        })
}

impl Collector {
    /// Opens the spool (what an earlier run left in it is written first),
    /// binds both OTLP listeners and serves until `shutdown` is cancelled;
    /// then stops accepting, finishes what is in flight, and lets the writer
    /// store what it can (the rest stays in the spool for the next start).
    pub async fn start(
        store: Store,
        settings: CollectorSettings,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        Self::start_with(Sink::Store(Box::new(store)), settings, shutdown).await
    }

    /// [`Collector::start`] for an edge collector: the same listeners and
    /// spool, drained by the forwarder to the central collector of
    /// `forward` instead of ClickHouse.
    pub async fn forwarding(
        forward: forward::ForwardSettings,
        settings: CollectorSettings,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        Self::start_with(Sink::Forward(forward), settings, shutdown).await
    }

    /// Starts with records going to `sink`.
    pub async fn start_with(
        sink: Sink,
        settings: CollectorSettings,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        let grpc_listener = bind(settings.grpc_addr, "OTLP/gRPC", "--otlp-grpc-addr").await?;
        let http_listener = bind(settings.http_addr, "OTLP/HTTP", "--otlp-http-addr").await?;
        let grpc_addr = grpc_listener.local_addr().unwrap_or(settings.grpc_addr);
        let http_addr = http_listener.local_addr().unwrap_or(settings.http_addr);

        let mut options = settings.spool.clone();
        if let Sink::Forward(forward) = &sink {
            options.when_full = forward.when_full;
        }
        let metrics = settings.metrics.clone();
        let (spool, reader) = tokio::task::spawn_blocking(move || Spool::open(&options, metrics))
            .await
            .expect("opening the spool does not panic")?;
        let dead_letters =
            DeadLetters::open(spool.dir()).map_err(|source| StartError::DeadLetters {
                dir: spool.dir().display().to_string(),
                source,
            })?;
        let (pipeline, writer, ops, central) = match sink {
            Sink::Store(store) => {
                let store = *store;
                let central = Some(store.clone());
                let (pipeline, writer) = Pipeline::start(
                    store.clone(),
                    spool.clone(),
                    reader,
                    dead_letters,
                    settings.pipeline,
                    settings.metrics.clone(),
                    shutdown.clone(),
                );
                let ops = ops::collector_router(store, settings.metrics.clone(), spool.clone());
                (pipeline, writer, ops, central)
            }
            Sink::Forward(forward) => {
                let url = forward.url.clone();
                let writer = forward::Forwarder::start(
                    forward,
                    spool.clone(),
                    reader,
                    dead_letters,
                    settings.metrics.clone(),
                    shutdown.clone(),
                )
                .map_err(StartError::Forward)?;
                tracing::info!(upstream = %domain::redact::url(&url), "forwarding to a central collector");
                let ops = ops::forward_router(settings.metrics.clone(), spool.clone());
                (Pipeline::spool_only(spool.clone()), writer, ops, None)
            }
        };
        let state = ReceiverState {
            pipeline,
            keys: settings.keys.clone(),
            events: settings.events.clone(),
            max_request_bytes: settings.max_request_bytes,
            limits: settings.limits,
            metrics: settings.metrics.clone(),
            auth: settings.auth.clone(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(receivers::MAX_IN_FLIGHT)),
        };

        let (traces, logs) = grpc::services(state.clone());
        let routes = tonic::service::Routes::new(traces).add_service(logs);
        let grpc_shutdown = shutdown.clone();
        let (grpc_tls, grpc_metrics) = (settings.tls.clone(), settings.metrics.clone());
        let limits = settings.connections;
        let grpc_task = tokio::spawn(async move {
            let result = connections::serve_grpc(
                grpc_listener,
                grpc_tls.as_ref(),
                routes,
                "OTLP/gRPC",
                &limits,
                grpc_metrics,
                grpc_shutdown,
            )
            .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "OTLP/gRPC server failed");
            }
        });

        let mut app = http::router(state.clone());
        if let Some(store) = central {
            // Edge collectors' reports of their backlog: central only.
            app = app.merge(receivers::plant_status::router(state.clone(), store));
        }
        let app = app
            .merge(receivers::cloudevents::router(state))
            .merge(ops)
            .layer(axum::extract::DefaultBodyLimit::disable());
        let http_shutdown = shutdown.clone();
        let http_tls = settings.tls.clone();
        let http_task = tokio::spawn(async move {
            let result = connections::serve_http(
                http_listener,
                http_tls.as_ref(),
                app,
                "OTLP/HTTP",
                &limits,
                settings.metrics,
                http_shutdown,
            )
            .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "OTLP/HTTP server failed");
            }
        });
        if settings.auth.is_open() {
            for (what, addr) in [
                ("OTLP/gRPC", grpc_addr),
                ("OTLP/HTTP and events", http_addr),
            ] {
                if !addr.ip().is_loopback() {
                    tracing::warn!(%addr, "{what} listens on {addr} without connector tokens: anyone who reaches this port can write spans and events, and through them raise or silence alerts; add [[tokens]] (`throughline token create --system <name>`)");
                }
            }
        }
        tracing::info!(%grpc_addr, %http_addr, tokens = !settings.auth.is_open(), "collector listening");
        let with_tls = settings.tls.is_some();
        tls::warn_if_exposed("OTLP/gRPC", grpc_addr, with_tls);
        tls::warn_if_exposed("OTLP/HTTP", http_addr, with_tls);
        let scheme = tls::scheme(with_tls);
        tracing::info!(
            grpc = %format!("{scheme}://{grpc_addr}"),
            http = %format!("{scheme}://{http_addr}"),
            tls = with_tls,
            "collector listening"
        );
        Ok(Self {
            grpc_addr,
            http_addr,
            spool,
            tls: with_tls,
            tasks: vec![grpc_task, http_task, writer],
        })
    }

    /// Waits until the servers stopped and the writer stopped (having stored
    /// what it could; the rest waits in the spool).
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
