//! What each subcommand does: build from settings, start, wait for a signal,
//! stop in order (listeners, then the writer, then ClickHouse; what the
//! writer did not store stays in the spool for the next start).

use std::sync::Arc;

use anyhow::Context;
use collector::metrics::Metrics;
use collector::pipeline::PipelineOptions;
use collector::spool::SpoolOptions;
use collector::{Collector, CollectorSettings};
use engine::correlator::{Correlator, CorrelatorSettings};
use store::server::PrivateServer;
use store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use console::api::AppState;
use console::serve::Console;
use engine::alerts::{AlertSettings, Evaluator};
use engine::metrics::CorrelatorMetrics;

/// Where `collector` and `console` look for ClickHouse when no URL is set.
pub const DEFAULT_CLICKHOUSE_URL: &str = "http://127.0.0.1:8123";

/// Cancels `token` on Ctrl-C or SIGTERM.
fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping");
        token.cancel();
    });
}

/// Connects to the configured ClickHouse, or (when `private` and none is
/// configured) starts one under the data directory, then migrates.
async fn open_store(
    settings: &Settings,
    private: bool,
) -> anyhow::Result<(Store, Option<PrivateServer>)> {
    let (url, server) = match (&settings.clickhouse_url, private) {
        (Some(url), _) => (url.clone(), None),
        (None, false) => (DEFAULT_CLICKHOUSE_URL.to_string(), None),
        (None, true) => {
            let dir = settings.data_dir.join("clickhouse");
            let server = PrivateServer::start(&dir)
                .await
                .with_context(|| format!("starting a private ClickHouse in {}", dir.display()))?;
            tracing::info!(url = server.url(), dir = %dir.display(), "private ClickHouse started");
            (server.url().to_string(), Some(server))
        }
    };
    let store = Store::new(settings.store_config(&url));
    let migrated = store.migrate().await;
    match migrated {
        Ok(report) => {
            for name in &report.applied {
                tracing::info!(migration = %name, "applied");
            }
            Ok((store, server))
        }
        Err(e) => {
            if let Some(server) = server {
                server.stop().await;
            }
            Err(anyhow::anyhow!(e)).with_context(|| {
                format!(
                    "preparing database `{}` at {}",
                    settings.clickhouse_database,
                    domain::redact::url(&url)
                )
            })
        }
    }
}

fn collector_settings(settings: &Settings, metrics: Arc<Metrics>) -> CollectorSettings {
    CollectorSettings {
        grpc_addr: settings.otlp_grpc_addr,
        http_addr: settings.otlp_http_addr,
        max_request_bytes: settings.max_request_bytes,
        limits: settings.limits,
        keys: Arc::new(settings.keys.clone()),
        events: Arc::new(settings.events.clone()),
        pipeline: PipelineOptions::default(),
        spool: SpoolOptions::new(&settings.spool_dir, settings.spool_max_bytes),
        metrics,
        auth: settings.ingest_auth.clone(),
        tls: settings.tls.clone(),
    }
}

fn app_state(
    settings: &Settings,
    store: Store,
    metrics: Arc<Metrics>,
    correlator: Option<Arc<CorrelatorMetrics>>,
) -> AppState {
    AppState {
        store,
        keys: Arc::new(settings.keys.clone()),
        processes: Arc::new(settings.processes.clone()),
        metrics,
        caches: Default::default(),
        alerts: Arc::new(settings.alerts.clone()),
        auth: Arc::new(console::auth::Auth::new(
            &settings.users,
            &settings.api_keys,
            &settings.ingest_auth.configured,
            console::auth::session_signer(&settings.data_dir),
            settings.secure_cookies(),
        )),
        correlator,
    }
}

async fn start_alerts(
    settings: &Settings,
    store: Store,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let evaluator = Evaluator::new(
        store,
        Arc::new(settings.alerts.clone()),
        Arc::new(settings.processes.clone()),
        AlertSettings {
            interval: settings.alerts_interval,
            repeat_interval: settings.alerts_repeat_interval,
            destinations: settings.alert_destinations.clone(),
            external_url: settings.external_url.clone(),
            ..AlertSettings::default()
        },
    )
    .await
    .context("starting the alert evaluator (loading its state)")?;
    tracing::info!(
        rules = settings.alerts.list.len(),
        destinations = settings.alert_destinations.len(),
        dir = %settings.alerts_dir.display(),
        "alert evaluator running"
    );
    let running = tokio::spawn(evaluator.run(shutdown));
    // A panic in the evaluator is said when it happens, not at shutdown.
    Ok(tokio::spawn(async move {
        if let Err(e) = running.await {
            tracing::error!(error = %e, "the alert evaluator stopped; alerts are no longer evaluated until a restart");
        }
    }))
}

async fn start_correlator(
    settings: &Settings,
    store: Store,
    metrics: Arc<CorrelatorMetrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let correlator = Correlator::new(
        store,
        Arc::new(settings.processes.clone()),
        Arc::new(settings.keys.clone()),
        CorrelatorSettings {
            interval: settings.correlator_interval,
            horizon: settings.correlation_horizon,
            ..CorrelatorSettings::default()
        },
        metrics,
    )
    .await
    .context("starting the correlator")?;
    tracing::info!(
        processes = settings.processes.list.len(),
        dir = %settings.processes_dir.display(),
        "correlator running"
    );
    Ok(tokio::spawn(correlator.run(shutdown)))
}

/// `throughline up`.
pub async fn up(settings: Settings) -> anyhow::Result<()> {
    let (store, server) = open_store(&settings, true).await?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let metrics = Arc::new(Metrics::new());
    // The correlator's lag and counts go on every `/metrics`; its open
    // breaches only on the console's, which is signed in.
    let correlator_metrics = Arc::new(CorrelatorMetrics::default());
    let technical = correlator_metrics.clone();
    metrics.also(move |out| technical.render_technical(out));
    let started = async {
        let collector = Collector::start(
            store.clone(),
            collector_settings(&settings, metrics.clone()),
            shutdown.clone(),
        )
        .await?;
        let console = Console::start_with(
            app_state(
                &settings,
                store.clone(),
                metrics.clone(),
                Some(correlator_metrics.clone()),
            ),
            settings.console_addr,
            settings.tls.clone(),
            shutdown.clone(),
        )
        .await?;
        let correlator = start_correlator(
            &settings,
            store.clone(),
            correlator_metrics,
            shutdown.clone(),
        )
        .await?;
        let alerts = start_alerts(&settings, store.clone(), shutdown.clone()).await?;
        anyhow::Ok((collector, console, correlator, alerts))
    }
    .await;
    let result = match started {
        Ok((collector, console, correlator, alerts)) => {
            println!(
                "throughline is up\n  console      {}/\n  OTLP/gRPC    {}{}\n  OTLP/HTTP    {}://{}\n  ClickHouse   {} (database {})\nPress Ctrl-C to stop.",
                console.url(),
                collector.grpc_addr,
                if collector.tls { " (TLS)" } else { "" },
                collector::tls::scheme(collector.tls),
                collector.http_addr,
                domain::redact::url(&store.config().url),
                store.config().database
            );
            shutdown.cancelled().await;
            collector.wait().await;
            console.wait().await;
            let _ = correlator.await;
            let _ = alerts.await;
            Ok(())
        }
        Err(e) => Err(e),
    };
    if let Some(server) = server {
        server.stop().await;
    }
    result
}

/// Applies migrations until it succeeds (ClickHouse may come back any
/// time), backing off up to 30 s between attempts.
async fn migrate_when_reachable(store: Store, shutdown: CancellationToken) {
    let mut delay = std::time::Duration::from_secs(1);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return,
        }
        match store.migrate().await {
            Ok(report) => {
                tracing::info!(
                    applied = report.applied.len(),
                    "ClickHouse reachable; migrations applied; the spool drains"
                );
                return;
            }
            Err(e) if e.is_retryable() => {
                tracing::debug!(error = %e, "ClickHouse still not reachable");
            }
            Err(e) => {
                tracing::error!(error = %e, "migrating ClickHouse failed; inserts wait in the spool until this is fixed");
                return;
            }
        }
        delay = (delay * 2).min(std::time::Duration::from_secs(30));
    }
}

/// `throughline collector`. Starts also while ClickHouse is unreachable:
/// requests are accepted into the spool, and migrations are applied (and
/// the spool drained) once ClickHouse answers.
pub async fn collector(settings: Settings) -> anyhow::Result<()> {
    let url = settings
        .clickhouse_url
        .clone()
        .unwrap_or_else(|| DEFAULT_CLICKHOUSE_URL.to_string());
    let store = Store::new(settings.store_config(&url));
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    match store.migrate().await {
        Ok(report) => {
            for name in &report.applied {
                tracing::info!(migration = %name, "applied");
            }
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, url = %domain::redact::url(&url), "ClickHouse is not reachable; accepting into the spool and migrating once it is");
            tokio::spawn(migrate_when_reachable(store.clone(), shutdown.clone()));
        }
        Err(e) => {
            return Err(anyhow::anyhow!(e)).with_context(|| {
                format!(
                    "preparing database `{}` at {}",
                    settings.clickhouse_database,
                    domain::redact::url(&url)
                )
            })
        }
    }
    let metrics = Arc::new(Metrics::new());
    let collector =
        Collector::start(store, collector_settings(&settings, metrics), shutdown).await?;
    collector.wait().await;
    Ok(())
}

/// `throughline console`.
pub async fn console(settings: Settings) -> anyhow::Result<()> {
    let (store, _) = open_store(&settings, false).await?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let metrics = Arc::new(Metrics::new());
    let console = Console::start_with(
        app_state(&settings, store, metrics, None),
        settings.console_addr,
        settings.tls.clone(),
        shutdown,
    )
    .await?;
    console.wait().await;
    Ok(())
}

/// `throughline correlator [--alerts]`.
pub async fn correlator(settings: Settings, alerts: bool) -> anyhow::Result<()> {
    let (store, _) = open_store(&settings, false).await?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let evaluator = if alerts {
        Some(start_alerts(&settings, store.clone(), shutdown.clone()).await?)
    } else {
        None
    };
    let task = start_correlator(
        &settings,
        store,
        Arc::new(CorrelatorMetrics::default()),
        shutdown,
    )
    .await?;
    let _ = task.await;
    if let Some(evaluator) = evaluator {
        let _ = evaluator.await;
    }
    Ok(())
}

/// `throughline migrate`.
pub async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let url = settings
        .clickhouse_url
        .clone()
        .unwrap_or_else(|| DEFAULT_CLICKHOUSE_URL.to_string());
    let store = Store::new(settings.store_config(&url));
    let shown = domain::redact::url(&url);
    let report = store.migrate().await.with_context(|| {
        format!(
            "migrating database `{}` at {shown}",
            settings.clickhouse_database
        )
    })?;
    println!(
        "database `{}` at {shown}: {} migration(s) applied, {} already applied",
        settings.clickhouse_database,
        report.applied.len(),
        report.already
    );
    for name in report.applied {
        println!("  applied {name}");
    }
    Ok(())
}
