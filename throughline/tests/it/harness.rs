//! Test fixtures: a ClickHouse for the whole run, and a collector + console in
//! a fresh database (and a spool directory of its own) for each test.
//!
//! ClickHouse comes from `THROUGHLINE_TEST_CLICKHOUSE_URL` when set (what
//! `make test` does: one private server for the run); otherwise this process
//! starts its own private server in a temporary directory, which dies with it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use collector::metrics::Metrics;
use collector::pipeline::PipelineOptions;
use collector::spool::{Spool, SpoolOptions};
use collector::{Collector, CollectorSettings};
use console::read::Reads;
use console::serve::Console;
use console::state::AppState;
use domain::events::{EventConfig, EventRules};
use domain::keys::{KeyConfig, KeyTypes};
use domain::process::Processes;
use engine::correlator::{Correlator, CorrelatorSettings};
use engine::metrics::CorrelatorMetrics;
use serde_json::Value;
use store::server::PrivateServer;
use store::{Store, StoreConfig};
use tokio_util::sync::CancellationToken;

pub fn clickhouse_url() -> String {
    if let Ok(url) = std::env::var("THROUGHLINE_TEST_CLICKHOUSE_URL") {
        return url;
    }
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        // The server is tied to this thread (it gets SIGTERM when the thread
        // ends), so the thread lives as long as the test process.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let dir = tempfile::tempdir().unwrap().keep();
                let server = PrivateServer::start(&dir)
                    .await
                    .expect("start a private ClickHouse for the tests");
                tx.send(server.url().to_string()).unwrap();
                let _keep = server;
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("the ClickHouse thread sends its URL")
    })
    .clone()
}

/// How the tests' store talks to ClickHouse: `none` where the server is the
/// chDB front (`scripts/with-chdb.sh` sets
/// `THROUGHLINE_TEST_CLICKHOUSE_COMPRESSION`), else the default, LZ4.
pub fn clickhouse_compression() -> store::Compression {
    match std::env::var("THROUGHLINE_TEST_CLICKHOUSE_COMPRESSION") {
        Ok(text) => store::Compression::parse(&text).unwrap_or_else(|| {
            panic!("THROUGHLINE_TEST_CLICKHOUSE_COMPRESSION `{text}`: write lz4 or none")
        }),
        Err(_) => store::Compression::default(),
    }
}

pub fn unique_database() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A database of its own, not created yet.
pub fn unmigrated_store() -> Store {
    Store::new(StoreConfig {
        url: clickhouse_url(),
        database: unique_database(),
        user: None,
        password: None,
        timeouts: Default::default(),
        compression: clickhouse_compression(),
    })
}

/// A migrated, empty database of its own.
pub async fn store() -> Store {
    let store = unmigrated_store();
    store.migrate().await.expect("migrate the test database");
    store
}

/// A server span with ids in hex, nothing on it but its service, name and
/// start.
pub fn bare_span(
    trace_id: &str,
    span_id: &str,
    service: &str,
    name: &str,
    start_ns: u64,
) -> domain::model::Span {
    use domain::model::{Span, SpanId, SpanKind, StatusCode, TraceId};
    Span {
        trace_id: TraceId::from_hex(trace_id).unwrap(),
        span_id: SpanId::from_hex(span_id).unwrap(),
        parent_span_id: None,
        trace_state: String::new(),
        flags: 0,
        service: service.into(),
        name: name.into(),
        kind: SpanKind::Server,
        start_ns,
        duration_ns: 0,
        status_code: StatusCode::Unset,
        status_message: String::new(),
        attributes: Vec::new(),
        resource: Vec::new(),
        scope_name: String::new(),
        scope_version: String::new(),
        events: Vec::new(),
        links: Vec::new(),
        keys: Vec::new(),
    }
}

/// What a test's collector is configured with.
pub struct TestConfig {
    pub keys: KeyConfig,
    pub events: EventConfig,
    pub max_request_bytes: usize,
    pub limits: domain::limits::Limits,
    /// Process definitions (TOML texts) for the console and correlator.
    pub processes: Vec<&'static str>,
    /// `[systems.<name>]`: each system's owner.
    pub systems: Vec<(&'static str, domain::process::SystemDef)>,
    /// Run the correlator in the background with these settings.
    pub correlator: Option<CorrelatorSettings>,
    pub spool_max_bytes: u64,
    pub pipeline: PipelineOptions,
    /// Use this store (its database migrated, or not reachable at all)
    /// instead of a fresh database.
    pub store: Option<Store>,
    /// Spool here instead of in a directory of the test's own.
    pub spool_dir: Option<std::path::PathBuf>,
    /// An alert rule file (TOML text) for the console's alert pages.
    pub alerts: Option<&'static str>,
    /// `[[tokens]]`: none leaves the collector open.
    pub tokens: Vec<collector::auth::TokenConfig>,
    /// `[[users]]` and `[[api_keys]]`: none leaves the console open.
    pub users: Vec<console::auth::UserConfig>,
    pub api_keys: Vec<console::auth::ApiKeyConfig>,
    /// The secret of one of `tokens`, for tests that send with it.
    pub token: Option<String>,
    /// Serve every listener over TLS; the app's client trusts the CA.
    pub tls: Option<TestTls>,
    /// Header, body and idle timeouts and the cap, for each listener.
    pub connections: collector::connections::ConnectionLimits,
}

/// A server certificate for the collector and console, and the PEM of the
/// certificate that clients trust for it.
#[derive(Clone)]
pub struct TestTls {
    pub server: collector::tls::Tls,
    pub ca_pem: Vec<u8>,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self {
            keys: KeyConfig::default(),
            events: EventConfig::default(),
            max_request_bytes: collector::DEFAULT_MAX_REQUEST_BYTES,
            limits: Default::default(),
            processes: Vec::new(),
            systems: Vec::new(),
            correlator: None,
            spool_max_bytes: collector::spool::DEFAULT_MAX_BYTES,
            // Tests post and wait for the insert, one after another: a
            // second's interval would make each wait a second.
            // `otlp::requests_within_an_insert_interval_share_one_insert`
            // tests the default.
            pipeline: PipelineOptions {
                insert_interval: std::time::Duration::from_millis(20),
                ..PipelineOptions::default()
            },
            store: None,
            spool_dir: None,
            alerts: None,
            tokens: Vec::new(),
            users: Vec::new(),
            api_keys: Vec::new(),
            token: None,
            tls: None,
            connections: Default::default(),
        }
    }
}

/// A collector and a console on ephemeral ports over a fresh database.
pub struct TestApp {
    pub store: Store,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub console: SocketAddr,
    pub client: reqwest::Client,
    /// [`TestConfig::token`].
    pub token: Option<String>,
    pub spool: Spool,
    /// `https` when the listeners serve TLS, else `http`.
    pub scheme: &'static str,
    shutdown: CancellationToken,
    collector: Option<Collector>,
    _spool_dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

impl TestApp {
    pub async fn start() -> Self {
        Self::with(TestConfig::default()).await
    }

    pub async fn with_keys(keys: KeyConfig) -> Self {
        Self::with(TestConfig {
            keys,
            ..Default::default()
        })
        .await
    }

    pub async fn with(config: TestConfig) -> Self {
        collector::tls::install_default_provider();
        let store = match config.store {
            Some(store) => store,
            None => store().await,
        };
        let keys = Arc::new(KeyTypes::new(&config.keys).expect("valid key config"));
        let events = Arc::new(EventRules::new(&config.events, &keys).expect("valid event config"));
        let max_request_bytes = config.max_request_bytes;
        let processes = Arc::new(Processes {
            list: config
                .processes
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    Processes::parse(text, &format!("test-{i}.toml"), &keys).expect("valid process")
                })
                .collect(),
            systems: config
                .systems
                .iter()
                .map(|(name, def)| (name.to_string(), def.clone()))
                .collect(),
        });
        let shutdown = CancellationToken::new();
        let metrics = Arc::new(Metrics::new());
        let correlator_metrics = Arc::new(CorrelatorMetrics::default());
        let technical = correlator_metrics.clone();
        metrics.also(move |out| technical.render_technical(out));
        let spool_dir = tempfile::tempdir().unwrap();
        let spool_path = config
            .spool_dir
            .clone()
            .unwrap_or_else(|| spool_dir.path().to_path_buf());
        let collector = Collector::start(
            store.clone(),
            CollectorSettings {
                grpc_addr: any_port(),
                http_addr: any_port(),
                max_request_bytes,
                limits: config.limits,
                keys: keys.clone(),
                events,
                pipeline: config.pipeline,
                spool: SpoolOptions::new(&spool_path, config.spool_max_bytes),
                metrics: metrics.clone(),
                auth: Arc::new(
                    collector::auth::IngestAuth::new(&config.tokens).expect("valid tokens"),
                ),
                tls: config.tls.as_ref().map(|t| t.server.clone()),
                connections: config.connections,
            },
            shutdown.clone(),
        )
        .await
        .unwrap();
        let console = Console::start_with(
            AppState {
                reads: Reads {
                    store: store.clone(),
                    keys: keys.clone(),
                    processes: processes.clone(),
                    caches: Default::default(),
                    alerts: Arc::new(
                        engine::alerts::rules::Rules::parse_all(
                            config.alerts.map(|text| ("alerts.toml", text)),
                            &processes,
                        )
                        .expect("valid alert rules"),
                    ),
                    retention: Default::default(),
                },
                metrics: metrics.clone(),
                auth: Arc::new(console::auth::Auth::new(
                    &config.users,
                    &config.api_keys,
                    &config.tokens,
                    console::auth::session::Signer::new(collector::auth::secret::random_bytes(32)),
                    config.tls.is_some(),
                )),
                correlator: config
                    .correlator
                    .as_ref()
                    .map(|_| correlator_metrics.clone()),
            },
            any_port(),
            config.tls.as_ref().map(|t| t.server.clone()),
            config.connections,
            shutdown.clone(),
        )
        .await
        .unwrap();
        if let Some(settings) = config.correlator {
            let correlator = Correlator::new(
                store.clone(),
                processes.clone(),
                keys,
                settings,
                correlator_metrics,
            )
            .await
            .expect("start the correlator");
            tokio::spawn(correlator.run(shutdown.clone()));
        }
        TestApp {
            store,
            grpc: collector.grpc_addr,
            http: collector.http_addr,
            console: console.addr,
            client: match &config.tls {
                None => reqwest::Client::new(),
                Some(tls) => reqwest::Client::builder()
                    .add_root_certificate(reqwest::Certificate::from_pem(&tls.ca_pem).unwrap())
                    .build()
                    .unwrap(),
            },
            token: config.token,
            spool: collector.spool.clone(),
            scheme: collector::tls::scheme(config.tls.is_some()),
            shutdown,
            collector: Some(collector),
            _spool_dir: spool_dir,
        }
    }

    /// Stops the collector and waits until it let go of its spool.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(collector) = self.collector.take() {
            tokio::time::timeout(Duration::from_secs(30), collector.wait())
                .await
                .expect("the collector stops within 30 s");
        }
    }

    pub fn otlp_url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.http)
    }

    pub fn grpc_url(&self) -> String {
        format!("{}://{}", self.scheme, self.grpc)
    }

    /// Waits until the writer stored everything acknowledged so far (an
    /// acknowledgement means "in the spool"; tests read ClickHouse).
    pub async fn settled(&self) {
        tokio::time::timeout(Duration::from_secs(60), self.spool.drained())
            .await
            .expect("the collector stores what it acknowledged within 60 s");
    }

    /// GET on the console, once what was acknowledged is stored; the status
    /// and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.settled().await;
        let response = self
            .client
            .get(self.console_url(path))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// A console page's HTML, once what was acknowledged is stored.
    pub async fn page(&self, path: &str) -> String {
        self.settled().await;
        let response = self
            .client
            .get(self.console_url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        response.text().await.unwrap()
    }

    /// The console's URL of `path`.
    pub fn console_url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.console)
    }

    /// The collector's `/metrics` text, once what was acknowledged is stored.
    pub async fn metrics(&self) -> String {
        self.settled().await;
        let response = self
            .client
            .get(self.otlp_url("/metrics"))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }

    /// The console's `/metrics` text (technical and business figures).
    pub async fn console_metrics(&self) -> String {
        self.settled().await;
        let response = self
            .client
            .get(self.console_url("/metrics"))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }

    /// The events of a key's journey in full (the key API gives what the
    /// journey shows; the event list has the attributes and payloads).
    pub async fn key_events(&self, key_path: &str) -> Vec<Value> {
        let (_, key) = self.get(&format!("/api/v1/keys/{key_path}")).await;
        let (_, listed) = self
            .get("/api/v1/events?from=2000-01-01T00:00:00Z&limit=1000")
            .await;
        records(&key, "event")
            .iter()
            .filter_map(|r| {
                listed["events"]
                    .as_array()?
                    .iter()
                    .find(|e| e["source"] == r["source"] && e["id"] == r["id"])
                    .cloned()
            })
            .collect()
    }

    /// The spans of a trace per the API, waiting briefly for `want` of them.
    pub async fn trace(&self, trace_id: &str, want: usize) -> Vec<Value> {
        for _ in 0..50 {
            let (status, body) = self.get(&format!("/api/v1/traces/{trace_id}")).await;
            if status == 200 && body["spans"].as_array().map_or(0, Vec::len) >= want {
                return body["spans"].as_array().unwrap().clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, body) = self.get(&format!("/api/v1/traces/{trace_id}")).await;
        body["spans"].as_array().cloned().unwrap_or_default()
    }

    /// POST an OTLP/HTTP body; returns once what it acknowledged is stored.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.otlp_url(path))
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        self.settled().await;
        response
    }
}

/// Attributes of a span as the API returns them.
pub fn attr<'a>(span: &'a Value, key: &str) -> &'a str {
    span["attributes"][key].as_str().unwrap_or("")
}

/// The span named `name` in `spans`.
pub fn named<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span named {name} in {spans:#?}"))
}

/// The records of one kind (`span`, `event`) on a key API answer's page,
/// newest first.
pub fn records(key: &Value, kind: &str) -> Vec<Value> {
    key["records"]
        .as_array()
        .map(|r| r.iter().filter(|r| r["kind"] == kind).cloned().collect())
        .unwrap_or_default()
}
