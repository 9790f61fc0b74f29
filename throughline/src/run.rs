//! What each subcommand does: build from settings, start, wait for a signal,
//! stop in order (listeners, then the writer, then ClickHouse; what the
//! writer did not store stays in the spool for the next start).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use collector::connections::ConnectionLimits;
use collector::metrics::Metrics;
use collector::pipeline::PipelineOptions;
use collector::spool::SpoolOptions;
use collector::{Collector, CollectorSettings};
use engine::correlator::Correlator;
use store::server::PrivateServer;
use store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{
    ClickHouseSettings, CollectorConfig, ConsoleConfig, CorrelatorConfig, ProcessSet, RuleSet,
    UpConfig,
};
use console::read::Reads;
use console::serve::Console;
use console::state::AppState;
use engine::alerts::{AlertSettings, Evaluator};
use engine::metrics::CorrelatorMetrics;
use engine::retention::RetentionMetrics;

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

/// Connects to the configured ClickHouse, or (when `private_dir` is given
/// and none is configured) starts one in that directory, then migrates.
async fn open_store(
    clickhouse: &ClickHouseSettings,
    private_dir: Option<&Path>,
) -> anyhow::Result<(Store, Option<PrivateServer>)> {
    let (url, server) = match (&clickhouse.url, private_dir) {
        (Some(url), _) => (url.clone(), None),
        (None, None) => (clickhouse.url_or_default(), None),
        (None, Some(dir)) => {
            if let Some(cluster) = &clickhouse.cluster {
                anyhow::bail!(
                    "clickhouse_cluster `{cluster}` needs clickhouse_url, a node of the cluster; \
                     `up` without it runs a private single server"
                );
            }
            let server = PrivateServer::start(dir)
                .await
                .with_context(|| format!("starting a private ClickHouse in {}", dir.display()))?;
            tracing::info!(url = server.url(), dir = %dir.display(), "private ClickHouse started");
            (server.url().to_string(), Some(server))
        }
    };
    let store = clickhouse.store(&url);
    let migrated = store.migrate().await;
    match migrated {
        Ok(report) => {
            for name in &report.applied {
                tracing::info!(migration = %name, "applied");
            }
            log_version(&store).await;
            Ok((store, server))
        }
        Err(e) => {
            if let Some(server) = server {
                server.stop().await;
            }
            Err(anyhow::anyhow!(e)).with_context(|| {
                format!(
                    "preparing database `{}` at {}",
                    clickhouse.database,
                    domain::redact::url(&url)
                )
            })
        }
    }
}

/// Asks the server's release once and logs it (the store remembers it for
/// `/readyz`, `/admin` and `/api/v1/storage`).
async fn log_version(store: &Store) {
    match store.server_version().await {
        Ok(detected) if detected.version < store::version::ServerVersion::OLDEST => {
            tracing::warn!(version = %detected.text, "ClickHouse is older than 18.16, the oldest release Throughline is tested on")
        }
        Ok(detected) => tracing::info!(version = %detected.text, "ClickHouse server"),
        Err(e) => tracing::warn!(error = %e, "could not ask ClickHouse for its version"),
    }
}

/// The collector's settings; `connections` with each listener's cap fixed
/// (see `ConnectionLimits::for_listeners`).
fn collector_settings(
    config: &CollectorConfig,
    metrics: Arc<Metrics>,
    connections: ConnectionLimits,
) -> CollectorSettings {
    let ingest = &config.ingest;
    CollectorSettings {
        grpc_addr: ingest.grpc_addr,
        http_addr: ingest.http_addr,
        max_request_bytes: ingest.max_request_bytes,
        limits: ingest.limits,
        keys: Arc::new(config.keys.clone()),
        events: Arc::new(ingest.events.clone()),
        pipeline: PipelineOptions {
            insert_interval: ingest.insert_interval,
            ..PipelineOptions::default()
        },
        spool: SpoolOptions::new(&ingest.spool_dir, ingest.spool_max_bytes),
        metrics,
        auth: config.auth.clone(),
        tls: config.tls.clone(),
        connections,
    }
}

fn app_state(
    config: &ConsoleConfig,
    store: Store,
    metrics: Arc<Metrics>,
    correlator: Option<Arc<CorrelatorMetrics>>,
) -> AppState {
    AppState {
        reads: Reads {
            store: store.interactive(),
            keys: Arc::new(config.keys.clone()),
            processes: Arc::new(config.processes.processes.clone()),
            caches: Default::default(),
            alerts: Arc::new(config.rules.rules.clone()),
            retention: Arc::new(config.retention),
        },
        metrics,
        auth: Arc::new(console::auth::Auth::new(
            &config.settings.users,
            &config.settings.api_keys,
            &config.auth.configured,
            console::auth::session_signer(&config.data_dir),
            config.settings.secure_cookies(config.tls.is_some()),
        )),
        correlator,
    }
}

async fn start_alerts(
    processes: &ProcessSet,
    rules: &RuleSet,
    settings: &AlertSettings,
    store: Store,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    for d in &settings.destinations {
        if let Some(warning) = d.deprecation() {
            tracing::warn!("{warning}");
        }
    }
    let evaluator = Evaluator::new(
        store,
        Arc::new(rules.rules.clone()),
        Arc::new(processes.processes.clone()),
        settings.clone(),
    )
    .await
    .context("starting the alert evaluator (loading its state)")?;
    tracing::info!(
        rules = rules.rules.list.len(),
        destinations = settings.destinations.len(),
        dir = %shown(rules.dir.as_deref()),
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
    config: &CorrelatorConfig,
    store: Store,
    metrics: Arc<CorrelatorMetrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let correlator = Correlator::new(
        store,
        Arc::new(config.processes.processes.clone()),
        Arc::new(config.keys.clone()),
        config.correlator,
        metrics,
    )
    .await
    .context("starting the correlator")?;
    tracing::info!(
        processes = config.processes.processes.list.len(),
        dir = %shown(config.processes.dir.as_deref()),
        partition = %config.correlator.partition,
        "correlator running"
    );
    Ok(tokio::spawn(correlator.run(shutdown)))
}

/// A directory for the log: its path, or `none`.
fn shown(dir: Option<&Path>) -> String {
    dir.map_or_else(|| "none".into(), |d| d.display().to_string())
}

/// What to say when no process definitions or no alert rules are
/// configured: how to add them. `None` when both are.
pub fn definitions_hint(processes_dir: Option<&Path>, alerts_dir: Option<&Path>) -> Option<String> {
    let missing = match (processes_dir, alerts_dir) {
        (Some(_), Some(_)) => return None,
        (None, None) => "no process definitions and no alert rules: add them with --processes-dir DIR and --alerts-dir DIR",
        (None, Some(_)) => "no process definitions: add them with --processes-dir DIR",
        (Some(_), None) => "no alert rules: add them with --alerts-dir DIR",
    };
    Some(format!(
        "{missing} (or processes_dir / alerts_dir in the config file; the demo's are in sample-data/processes and sample-data/alerts)"
    ))
}

/// What `up` prints once it serves: the console's pages first (where a
/// person starts), then where connectors send and where the data is.
pub fn banner(console: &str, grpc: &str, http: &str, clickhouse: &str) -> String {
    format!(
        "throughline is up\n\
         \x20 overview     {console}/\n\
         \x20 breaches     {console}/breaches?open=true\n\
         \x20 an order     {console}/keys/order/ORDER-ID   (its journey; or search on any page)\n\
         \x20 OTLP/gRPC    {grpc}\n\
         \x20 OTLP/HTTP    {http}\n\
         \x20 ClickHouse   {clickhouse}\n\
         Press Ctrl-C to stop."
    )
}

/// The retention pass, now and every interval (see `engine::retention`).
fn start_retention(
    config: &CorrelatorConfig,
    store: Store,
    metrics: Arc<RetentionMetrics>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let settings = config.retention;
    tracing::info!(
        policy = ?settings.policy,
        interval = ?settings.interval,
        "retention running"
    );
    tokio::spawn(engine::retention::run(store, settings, metrics, shutdown))
}

/// The correlator, the retention pass and, when configured, the alert
/// evaluator: their tasks (the correlator's and retention's joined as one).
async fn start_workers(
    config: &CorrelatorConfig,
    store: Store,
    metrics: Arc<CorrelatorMetrics>,
    retention: Arc<RetentionMetrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<(JoinHandle<()>, Option<JoinHandle<()>>)> {
    let store = store.background();
    let evaluator = match &config.alerts {
        Some((rules, settings)) => Some(
            start_alerts(
                &config.processes,
                rules,
                settings,
                store.clone(),
                shutdown.clone(),
            )
            .await?,
        ),
        None => None,
    };
    // Retention, like the alert evaluator, runs once: with partition 0.
    let retention = config
        .correlator
        .partition
        .is_first()
        .then(|| start_retention(config, store.clone(), retention, shutdown.clone()));
    let correlator = start_correlator(config, store, metrics, shutdown).await?;
    let both = tokio::spawn(async move {
        match retention {
            Some(retention) => {
                let _ = tokio::join!(correlator, retention);
            }
            None => {
                let _ = correlator.await;
            }
        }
    });
    Ok((both, evaluator))
}

/// `throughline up`.
pub async fn up(config: UpConfig) -> anyhow::Result<()> {
    let rules_dir = config.correlator.alerts.as_ref().map(|(r, _)| &r.dir);
    if let Some(hint) = definitions_hint(
        config.correlator.processes.dir.as_deref(),
        rules_dir.and_then(|d| d.as_deref()),
    ) {
        tracing::info!("{hint}");
    }
    let private_dir = config.data_dir.join("clickhouse");
    let (store, server) = open_store(&config.collector.clickhouse, Some(&private_dir)).await?;
    let store = store.with_hubs(store::HubTypes::of(&config.collector.keys));
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let metrics = Arc::new(Metrics::new());
    // The correlator's lag and counts go on every `/metrics`; its open
    // breaches only on the console's, which is signed in.
    let correlator_metrics = Arc::new(CorrelatorMetrics::default());
    let technical = correlator_metrics.clone();
    metrics.also(move |out| technical.render_technical(out));
    let retention_metrics = Arc::new(RetentionMetrics::default());
    let dropped = retention_metrics.clone();
    metrics.also(move |out| dropped.render(out));
    if let Some((_, alerts)) = &config.correlator.alerts {
        let sent = alerts.metrics.clone();
        metrics.also(move |out| sent.render(out));
    }
    // Three listeners: OTLP/gRPC, OTLP/HTTP, the console.
    let connections = config.collector.connections.for_listeners(3);
    let started = async {
        let collector = Collector::start(
            store.clone(),
            collector_settings(&config.collector, metrics.clone(), connections),
            shutdown.clone(),
        )
        .await?;
        let console = Console::start_with(
            app_state(
                &config.console,
                store.clone(),
                metrics.clone(),
                Some(correlator_metrics.clone()),
            ),
            config.console.settings.addr,
            config.console.tls.clone(),
            connections,
            shutdown.clone(),
        )
        .await?;
        let workers = start_workers(
            &config.correlator,
            store.clone(),
            correlator_metrics,
            retention_metrics,
            shutdown.clone(),
        )
        .await?;
        anyhow::Ok((collector, console, workers))
    }
    .await;
    let result = match started {
        Ok((collector, console, (correlator, alerts))) => {
            println!(
                "{}",
                banner(
                    &console.url(),
                    &format!(
                        "{}{}",
                        collector.grpc_addr,
                        if collector.tls { " (TLS)" } else { "" }
                    ),
                    &format!(
                        "{}://{}",
                        collector::tls::scheme(collector.tls),
                        collector.http_addr
                    ),
                    &format!(
                        "{} (database {})",
                        domain::redact::url(&store.config().url),
                        store.config().database
                    ),
                )
            );
            shutdown.cancelled().await;
            // Side by side: a stop takes the slowest part's time, not the
            // sum of all (each ends on its own once cancelled).
            let alerts = async {
                if let Some(alerts) = alerts {
                    let _ = alerts.await;
                }
            };
            let _ = tokio::join!(collector.wait(), console.wait(), correlator, alerts);
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
pub async fn collector(config: CollectorConfig) -> anyhow::Result<()> {
    if let Some(forward) = config.forward.clone() {
        return edge_collector(config, forward).await;
    }
    let url = config.clickhouse.url_or_default();
    let store = config
        .clickhouse
        .store(&url)
        .with_hubs(store::HubTypes::of(&config.keys));
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    match store.migrate().await {
        Ok(report) => {
            for name in &report.applied {
                tracing::info!(migration = %name, "applied");
            }
            log_version(&store).await;
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, url = %domain::redact::url(&url), "ClickHouse is not reachable; accepting into the spool and migrating once it is");
            tokio::spawn(migrate_when_reachable(store.clone(), shutdown.clone()));
        }
        Err(e) => {
            return Err(anyhow::anyhow!(e)).with_context(|| {
                format!(
                    "preparing database `{}` at {}",
                    config.clickhouse.database,
                    domain::redact::url(&url)
                )
            })
        }
    }
    let metrics = Arc::new(Metrics::new());
    let connections = config.connections.for_listeners(2);
    let collector = Collector::start(
        store,
        collector_settings(&config, metrics, connections),
        shutdown,
    )
    .await?;
    collector.wait().await;
    Ok(())
}

/// `throughline collector --forward-to URL`: an edge collector. It needs
/// no ClickHouse: what it accepts waits in its spool until the central
/// collector acknowledged it.
async fn edge_collector(
    config: CollectorConfig,
    forward: collector::forward::ForwardSettings,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let metrics = Arc::new(Metrics::new());
    let connections = config.connections.for_listeners(2);
    let collector = Collector::forwarding(
        forward,
        collector_settings(&config, metrics, connections),
        shutdown,
    )
    .await?;
    collector.wait().await;
    Ok(())
}

/// `throughline console`.
pub async fn console(config: ConsoleConfig) -> anyhow::Result<()> {
    let (store, _) = open_store(&config.clickhouse, None).await?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let metrics = Arc::new(Metrics::new());
    let console = Console::start_with(
        app_state(&config, store, metrics, None),
        config.settings.addr,
        config.tls.clone(),
        config.connections.for_listeners(1),
        shutdown,
    )
    .await?;
    console.wait().await;
    Ok(())
}

/// `throughline correlator [--alerts]`.
pub async fn correlator(config: CorrelatorConfig) -> anyhow::Result<()> {
    let (store, _) = open_store(&config.clickhouse, None).await?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let (correlator, evaluator) = start_workers(
        &config,
        store,
        Arc::new(CorrelatorMetrics::default()),
        Arc::new(RetentionMetrics::default()),
        shutdown,
    )
    .await?;
    let _ = correlator.await;
    if let Some(evaluator) = evaluator {
        let _ = evaluator.await;
    }
    Ok(())
}

/// `throughline migrate`: reads no process definition, alert rule or TLS
/// file, only ClickHouse's settings.
pub async fn migrate(clickhouse: ClickHouseSettings) -> anyhow::Result<()> {
    let url = clickhouse.url_or_default();
    let store = clickhouse.store(&url);
    let shown = domain::redact::url(&url);
    let report = store
        .migrate()
        .await
        .with_context(|| format!("migrating database `{}` at {shown}", clickhouse.database))?;
    println!(
        "database `{}` at {shown}: {} migration(s) applied, {} already applied",
        clickhouse.database,
        report.applied.len(),
        report.already
    );
    for name in report.applied {
        println!("  applied {name}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_banner_points_at_the_console_pages_first() {
        let text = super::banner(
            "http://127.0.0.1:8080",
            "127.0.0.1:4317",
            "http://127.0.0.1:4318",
            "http://127.0.0.1:9000 (database throughline)",
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "throughline is up");
        assert_eq!(lines[1], "  overview     http://127.0.0.1:8080/");
        assert_eq!(
            lines[2],
            "  breaches     http://127.0.0.1:8080/breaches?open=true"
        );
        assert!(
            lines[3].starts_with("  an order     http://127.0.0.1:8080/keys/order/ORDER-ID "),
            "{text}"
        );
        assert_eq!(lines[4], "  OTLP/gRPC    127.0.0.1:4317");
        assert!(!text.contains("/api/"), "{text}");
        assert_eq!(lines.last(), Some(&"Press Ctrl-C to stop."));
    }
}
