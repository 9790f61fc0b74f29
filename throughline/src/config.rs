//! Configuration: one TOML file (`--config`), every scalar key overridable by
//! a `THROUGHLINE_*` environment variable and by a flag (flag > environment >
//! file > default). Validated once here, into [`Settings`], before anything
//! starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use collector::tls::Tls;
use domain::events::{EventConfig, EventRules};
use domain::keys::{KeyConfig, KeyTypes};
use domain::limits::Limits;
use domain::process::{duration, Processes};
use serde::Deserialize;

use collector::auth::{IngestAuth, TokenConfig};
use console::auth::{ApiKeyConfig, UserConfig};
use engine::alerts::notify::Destination;
use engine::alerts::rules::Rules;

/// The TOML file. Unknown keys are an error, so a typo never goes unnoticed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub otlp_grpc_addr: Option<SocketAddr>,
    pub otlp_http_addr: Option<SocketAddr>,
    pub console_addr: Option<SocketAddr>,
    pub clickhouse_url: Option<String>,
    pub clickhouse_connect_timeout: Option<String>,
    pub clickhouse_query_timeout: Option<String>,
    pub clickhouse_database: Option<String>,
    pub clickhouse_user: Option<String>,
    pub clickhouse_password: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_request_bytes: Option<usize>,
    pub spool_dir: Option<PathBuf>,
    pub spool_max_bytes: Option<u64>,
    pub processes_dir: Option<PathBuf>,
    pub correlator_interval: Option<String>,
    pub correlation_horizon: Option<String>,
    pub alerts_dir: Option<PathBuf>,
    pub alerts_interval: Option<String>,
    pub alerts_repeat_interval: Option<String>,
    pub external_url: Option<String>,
    /// PEM certificate chain; with `tls_key`, every listener serves TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// `[[receivers]]`: where alert notifications go (name, kind = "webhook"
    /// | "slack", url).
    #[serde(default)]
    pub receivers: Vec<Destination>,
    /// `[keys]`: extra key types and per-system attribute aliases.
    #[serde(default)]
    pub keys: KeyConfig,
    /// `[events]`: systems by CloudEvents source prefix, key paths into data.
    #[serde(default)]
    pub events: EventConfig,
    /// `[[tokens]]`: connector tokens (id, name, systems, hash); with none
    /// the collector accepts anyone.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// `[[users]]`: console users (name, role, password_hash); with none
    /// (and no API key) the console is open and listens on loopback only.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// `[[api_keys]]`: bearer keys of API clients (id, name, role, hash).
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// `[limits]`: what one record may carry (attributes, value bytes, span
    /// events and links, nesting depth); the excess is cut and marked.
    #[serde(default)]
    pub limits: Limits,
}

/// Flags shared by the subcommands that serve or touch ClickHouse. Each is
/// also read from the environment variable named beside it.
#[derive(Debug, Default, Clone, Args)]
pub struct Overrides {
    /// OTLP/gRPC listen address [default: 127.0.0.1:4317]
    #[arg(long, env = "THROUGHLINE_OTLP_GRPC_ADDR", value_name = "ADDR")]
    pub otlp_grpc_addr: Option<SocketAddr>,
    /// OTLP/HTTP (and events) listen address [default: 127.0.0.1:4318]
    #[arg(long, env = "THROUGHLINE_OTLP_HTTP_ADDR", value_name = "ADDR")]
    pub otlp_http_addr: Option<SocketAddr>,
    /// Console (web pages and JSON API) listen address [default: 127.0.0.1:8080]
    #[arg(long, env = "THROUGHLINE_CONSOLE_ADDR", value_name = "ADDR")]
    pub console_addr: Option<SocketAddr>,
    /// ClickHouse HTTP interface. `up` starts a private server when unset; the
    /// other subcommands default to http://127.0.0.1:8123
    #[arg(long, env = "THROUGHLINE_CLICKHOUSE_URL", value_name = "URL")]
    pub clickhouse_url: Option<String>,
    /// How long connecting to ClickHouse may take [default: 5s]
    #[arg(
        long,
        env = "THROUGHLINE_CLICKHOUSE_CONNECT_TIMEOUT",
        value_name = "DURATION"
    )]
    pub clickhouse_connect_timeout: Option<String>,
    /// How long one ClickHouse statement may take; then a page or the API answers 503, the collector retries (health checks: 3s or this if shorter) [default: 30s]
    #[arg(
        long,
        env = "THROUGHLINE_CLICKHOUSE_QUERY_TIMEOUT",
        value_name = "DURATION"
    )]
    pub clickhouse_query_timeout: Option<String>,
    /// ClickHouse database [default: throughline]
    #[arg(long, env = "THROUGHLINE_CLICKHOUSE_DATABASE", value_name = "NAME")]
    pub clickhouse_database: Option<String>,
    /// ClickHouse user [default: the server's default user]
    #[arg(long, env = "THROUGHLINE_CLICKHOUSE_USER", value_name = "USER")]
    pub clickhouse_user: Option<String>,
    /// ClickHouse password
    #[arg(
        long,
        env = "THROUGHLINE_CLICKHOUSE_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub clickhouse_password: Option<String>,
    /// Directory for the private ClickHouse's files and the spool [default: ./data]
    #[arg(long, env = "THROUGHLINE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Largest accepted request body in bytes, after decompression [default: 16777216]
    #[arg(long, env = "THROUGHLINE_MAX_REQUEST_BYTES", value_name = "BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Directory of the collector's disk spool, where accepted requests wait for ClickHouse [default: <data_dir>/spool]
    #[arg(long, env = "THROUGHLINE_SPOOL_DIR", value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Largest spool in bytes; while it is full, requests are refused with 429 / RESOURCE_EXHAUSTED [default: 1073741824]
    #[arg(long, env = "THROUGHLINE_SPOOL_MAX_BYTES", value_name = "BYTES")]
    pub spool_max_bytes: Option<u64>,
    /// Directory of process definitions (*.toml) [default: dashboards/processes]
    #[arg(long, env = "THROUGHLINE_PROCESSES_DIR", value_name = "DIR")]
    pub processes_dir: Option<PathBuf>,
    /// Time between correlator cycles; open breaches are found within it [default: 15s]
    #[arg(long, env = "THROUGHLINE_CORRELATOR_INTERVAL", value_name = "DURATION")]
    pub correlator_interval: Option<String>,
    /// How late a key link may arrive and still connect records to instances [default: 7d]
    #[arg(long, env = "THROUGHLINE_CORRELATION_HORIZON", value_name = "DURATION")]
    pub correlation_horizon: Option<String>,
    /// Directory of alert rules (*.toml) [default: dashboards/alerts]
    #[arg(long, env = "THROUGHLINE_ALERTS_DIR", value_name = "DIR")]
    pub alerts_dir: Option<PathBuf>,
    /// Time between alert evaluations [default: 30s]
    #[arg(long, env = "THROUGHLINE_ALERTS_INTERVAL", value_name = "DURATION")]
    pub alerts_interval: Option<String>,
    /// While an alert fires, its notification is sent again this often [default: 4h]
    #[arg(
        long,
        env = "THROUGHLINE_ALERTS_REPEAT_INTERVAL",
        value_name = "DURATION"
    )]
    pub alerts_repeat_interval: Option<String>,
    /// The console's URL as on-call reaches it, for links in notifications [default: http://<console_addr>]
    #[arg(long, env = "THROUGHLINE_EXTERNAL_URL", value_name = "URL")]
    pub external_url: Option<String>,
    /// TLS certificate (PEM: the server certificate, then any intermediates); with --tls-key, every listener (OTLP/gRPC, OTLP/HTTP, console) serves TLS
    #[arg(long, env = "THROUGHLINE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key of the certificate (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, env = "THROUGHLINE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

/// Everything validated, with defaults applied.
#[derive(Debug, Clone)]
pub struct Settings {
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    pub console_addr: SocketAddr,
    /// `None`: `up` runs a private server.
    pub clickhouse_url: Option<String>,
    /// Connect and statement timeouts of every ClickHouse call.
    pub clickhouse_timeouts: store::Timeouts,
    pub clickhouse_database: String,
    pub clickhouse_user: Option<String>,
    pub clickhouse_password: Option<String>,
    pub data_dir: PathBuf,
    pub max_request_bytes: usize,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub keys: KeyTypes,
    pub events: EventRules,
    pub limits: Limits,
    pub processes_dir: PathBuf,
    pub processes: Processes,
    pub correlator_interval: Duration,
    pub correlation_horizon: Duration,
    pub alerts_dir: PathBuf,
    pub alerts: Rules,
    pub alerts_interval: Duration,
    pub alerts_repeat_interval: Duration,
    pub external_url: String,
    pub alert_destinations: Vec<Destination>,
    /// The connector tokens, validated.
    pub ingest_auth: Arc<IngestAuth>,
    pub users: Vec<UserConfig>,
    pub api_keys: Vec<ApiKeyConfig>,
    /// The certificate every listener serves; `None`: plain HTTP and gRPC.
    pub tls: Option<Tls>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("default addresses are valid")
}

fn valid_database(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Settings {
    /// Reads `path` if given, applies `overrides`, validates.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let file = match path {
            None => FileConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Self::parse(&text, &path.display().to_string())?
            }
        };
        Self::resolve(file, overrides)
    }

    /// Parses the TOML text of a config file named `path` (for messages).
    pub fn parse(text: &str, path: &str) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    pub fn resolve(file: FileConfig, o: &Overrides) -> Result<Self, ConfigError> {
        let o = o.clone();
        let clickhouse_database = o
            .clickhouse_database
            .or(file.clickhouse_database)
            .unwrap_or_else(|| "throughline".into());
        if !valid_database(&clickhouse_database) {
            return Err(ConfigError::Invalid(format!(
                "clickhouse_database `{clickhouse_database}` is not a plain name; use letters, digits and `_`"
            )));
        }
        let clickhouse_url = o.clickhouse_url.or(file.clickhouse_url);
        if let Some(url) = &clickhouse_url {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(ConfigError::Invalid(format!(
                    "clickhouse_url `{}` must be ClickHouse's HTTP interface, like http://127.0.0.1:8123",
                    domain::redact::url(url)
                )));
            }
        }
        let max_request_bytes = o
            .max_request_bytes
            .or(file.max_request_bytes)
            .unwrap_or(collector::DEFAULT_MAX_REQUEST_BYTES);
        if max_request_bytes < 1024 {
            return Err(ConfigError::Invalid(format!(
                "max_request_bytes {max_request_bytes} is too small to hold any OTLP batch; use at least 1024"
            )));
        }
        let spool_max_bytes = o
            .spool_max_bytes
            .or(file.spool_max_bytes)
            .unwrap_or(collector::spool::DEFAULT_MAX_BYTES);
        if spool_max_bytes < 1 << 20 {
            return Err(ConfigError::Invalid(format!(
                "spool_max_bytes {spool_max_bytes} is too small; use at least 1048576 (1 MiB)"
            )));
        }
        let data_dir: PathBuf = o
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| "./data".into());
        let spool_dir = o
            .spool_dir
            .or(file.spool_dir)
            .unwrap_or_else(|| data_dir.join("spool"));
        let keys = KeyTypes::new(&file.keys).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let events = EventRules::new(&file.events, &keys)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        file.limits.validate().map_err(ConfigError::Invalid)?;
        let processes_dir = o
            .processes_dir
            .or(file.processes_dir)
            .unwrap_or_else(|| "dashboards/processes".into());
        let processes = Processes::load_dir(&processes_dir, &keys)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let duration_of = |name: &str, value: Option<String>, default: &str| {
            let text = value.unwrap_or_else(|| default.to_string());
            duration::parse_ns(&text)
                .filter(|ns| *ns > 0)
                .map(Duration::from_nanos)
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "{name} `{text}` is not a duration; write it like 500ms, 15s, 1m or 7d"
                    ))
                })
        };
        let clickhouse_timeouts = store::Timeouts {
            connect: duration_of(
                "clickhouse_connect_timeout",
                o.clickhouse_connect_timeout
                    .or(file.clickhouse_connect_timeout),
                "5s",
            )?,
            query: duration_of(
                "clickhouse_query_timeout",
                o.clickhouse_query_timeout.or(file.clickhouse_query_timeout),
                "30s",
            )?,
        };
        let correlator_interval = duration_of(
            "correlator_interval",
            o.correlator_interval.or(file.correlator_interval),
            "15s",
        )?;
        let correlation_horizon = duration_of(
            "correlation_horizon",
            o.correlation_horizon.or(file.correlation_horizon),
            "7d",
        )?;
        let alerts_dir = o
            .alerts_dir
            .or(file.alerts_dir)
            .unwrap_or_else(|| "dashboards/alerts".into());
        let alerts = Rules::load_dir(&alerts_dir, &processes)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let alerts_interval = duration_of(
            "alerts_interval",
            o.alerts_interval.or(file.alerts_interval),
            "30s",
        )?;
        let alerts_repeat_interval = duration_of(
            "alerts_repeat_interval",
            o.alerts_repeat_interval.or(file.alerts_repeat_interval),
            "4h",
        )?;
        let mut names = std::collections::BTreeSet::new();
        for r in &file.receivers {
            if r.name.trim().is_empty() || !names.insert(r.name.clone()) {
                return Err(ConfigError::Invalid(format!(
                    "receiver name `{}` is empty or used twice; give each [[receivers]] entry its own name",
                    r.name
                )));
            }
            if !r.url.starts_with("http://") && !r.url.starts_with("https://") {
                return Err(ConfigError::Invalid(format!(
                    "receiver `{}`: url `{}` must be an http:// or https:// URL",
                    r.name,
                    domain::redact::url(&r.url)
                )));
            }
        }
        let ingest_auth = IngestAuth::new(&file.tokens).map_err(ConfigError::Invalid)?;
        console::auth::validate(&file.users, &file.api_keys).map_err(ConfigError::Invalid)?;
        let tls = match (o.tls_cert.or(file.tls_cert), o.tls_key.or(file.tls_key)) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                Some(Tls::load(&cert, &key).map_err(|e| ConfigError::Invalid(e.to_string()))?)
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "tls_cert and tls_key go together: give both (the certificate and its private key, PEM files) to serve TLS, or neither".into(),
                ))
            }
        };
        let console_addr = o
            .console_addr
            .or(file.console_addr)
            .unwrap_or_else(|| addr("127.0.0.1:8080"));
        let external_url = o.external_url.or(file.external_url).unwrap_or_else(|| {
            format!("{}://{console_addr}", collector::tls::scheme(tls.is_some()))
        });
        Ok(Settings {
            otlp_grpc_addr: o
                .otlp_grpc_addr
                .or(file.otlp_grpc_addr)
                .unwrap_or_else(|| addr("127.0.0.1:4317")),
            otlp_http_addr: o
                .otlp_http_addr
                .or(file.otlp_http_addr)
                .unwrap_or_else(|| addr("127.0.0.1:4318")),
            console_addr,
            clickhouse_url,
            clickhouse_timeouts,
            clickhouse_database,
            clickhouse_user: o.clickhouse_user.or(file.clickhouse_user),
            clickhouse_password: o.clickhouse_password.or(file.clickhouse_password),
            data_dir,
            max_request_bytes,
            spool_dir,
            spool_max_bytes,
            keys,
            events,
            limits: file.limits,
            processes_dir,
            processes,
            correlator_interval,
            correlation_horizon,
            alerts_dir,
            alerts,
            alerts_interval,
            alerts_repeat_interval,
            external_url,
            alert_destinations: file.receivers,
            ingest_auth: Arc::new(ingest_auth),
            users: file.users,
            api_keys: file.api_keys,
            tls,
        })
    }

    /// Whether cookies carry `Secure`: the console serves TLS, or is
    /// reached over it (`external_url` is `https://`, as behind a proxy
    /// that ends TLS).
    pub fn secure_cookies(&self) -> bool {
        self.tls.is_some() || self.external_url.starts_with("https://")
    }

    /// The store settings for `url`.
    pub fn store_config(&self, url: &str) -> store::StoreConfig {
        store::StoreConfig {
            url: url.to_string(),
            database: self.clickhouse_database.clone(),
            user: self.clickhouse_user.clone(),
            password: self.clickhouse_password.clone(),
            timeouts: self.clickhouse_timeouts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_under_tls_or_behind_an_https_proxy() {
        let parse = |text: &str| {
            Settings::resolve(
                Settings::parse(text, "t.toml").unwrap(),
                &Overrides::default(),
            )
            .unwrap()
        };
        assert!(!parse("").secure_cookies());
        assert!(parse("external_url = \"https://throughline.plant1.example\"\n").secure_cookies());
        assert!(!parse("external_url = \"http://10.0.0.5:8080\"\n").secure_cookies());
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let file = Settings::parse(
            "otlp_grpc_addr = \"127.0.0.1:5317\"\nconsole_addr = \"127.0.0.1:9090\"\n\
             [keys.aliases.erp]\n\"sap.sales_order\" = \"order\"\n",
            "t.toml",
        )
        .unwrap();
        let overrides = Overrides {
            console_addr: Some(addr("127.0.0.1:9999")),
            ..Default::default()
        };
        let s = Settings::resolve(file, &overrides).unwrap();
        assert_eq!(s.otlp_grpc_addr, addr("127.0.0.1:5317"));
        assert_eq!(s.console_addr, addr("127.0.0.1:9999"));
        assert_eq!(s.otlp_http_addr, addr("127.0.0.1:4318"));
        assert_eq!(s.clickhouse_database, "throughline");
        assert_eq!(s.clickhouse_url, None);
        assert_eq!(s.spool_dir, PathBuf::from("./data/spool"));
        assert_eq!(s.spool_max_bytes, 1 << 30);
    }

    #[test]
    fn the_spool_follows_the_data_dir_unless_set() {
        let file = Settings::parse(
            "data_dir = \"/var/lib/tl\"\nspool_max_bytes = 2097152\n",
            "t.toml",
        )
        .unwrap();
        let s = Settings::resolve(file, &Overrides::default()).unwrap();
        assert_eq!(s.spool_dir, PathBuf::from("/var/lib/tl/spool"));
        assert_eq!(s.spool_max_bytes, 2 << 20);
        let o = Overrides {
            spool_dir: Some("/fast/spool".into()),
            spool_max_bytes: Some(10),
            ..Default::default()
        };
        let err = Settings::resolve(FileConfig::default(), &o).unwrap_err();
        assert!(err.to_string().contains("spool_max_bytes 10"), "{err}");
    }

    #[test]
    fn limits_default_to_the_sdk_limits_and_are_checked() {
        let s = Settings::resolve(FileConfig::default(), &Overrides::default()).unwrap();
        assert_eq!(s.limits, Limits::default());
        assert_eq!(s.limits.max_attributes, 128);
        let file = Settings::parse(
            "[limits]
max_attributes = 64
",
            "t.toml",
        )
        .unwrap();
        let s = Settings::resolve(file, &Overrides::default()).unwrap();
        assert_eq!(s.limits.max_attributes, 64);
        assert_eq!(s.limits.max_value_bytes, 4096);
        let file = Settings::parse(
            "[limits]
max_value_bytes = 100
",
            "t.toml",
        )
        .unwrap();
        let err = Settings::resolve(file, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("at least 1024"), "{err}");
        let err = Settings::parse(
            "[limits]
max_attrs = 1
",
            "t.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_attrs"), "{err}");
    }

    #[test]
    fn unknown_keys_are_an_error_naming_the_file_and_key() {
        let err =
            Settings::parse("otlp_grpc_adr = \"127.0.0.1:1\"\n", "throughline.toml").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("config file throughline.toml: "), "{text}");
        assert!(text.contains("otlp_grpc_adr"), "{text}");
        assert!(text.contains("line 1"), "{text}");
    }

    #[test]
    fn receivers_and_alert_settings() {
        let file = Settings::parse(
            "alerts_interval = \"10s\"\n[[receivers]]\nname = \"oncall\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9093/hook\"\n\
             [[receivers]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/X\"\n",
            "t.toml",
        )
        .unwrap();
        let s = Settings::resolve(file, &Overrides::default()).unwrap();
        assert_eq!(s.alerts_interval, Duration::from_secs(10));
        assert_eq!(s.alerts_repeat_interval, Duration::from_secs(4 * 3600));
        assert_eq!(s.external_url, "http://127.0.0.1:8080");
        assert_eq!(s.alert_destinations.len(), 2);
        let err = Settings::parse(
            "[[receivers]]\nname = \"x\"\nkind = \"pager\"\nurl = \"http://a\"\n",
            "t.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("pager"), "{err}");
        let file = Settings::parse(
            "[[receivers]]\nname = \"x\"\nkind = \"webhook\"\nurl = \"ftp://a\"\n",
            "t.toml",
        )
        .unwrap();
        let err = Settings::resolve(file, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("http:// or https://"), "{err}");
    }

    /// A rule file with a mistake stops the start, with its file and line.
    #[test]
    fn a_bad_alert_rule_file_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("plant.toml"),
            "[[rules]]\nid = \"quiet\"\nkind = \"system_silence\"\nsilent_for = \"ten minutes\"\n",
        )
        .unwrap();
        let o = Overrides {
            alerts_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let err = Settings::resolve(FileConfig::default(), &o).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:4: rule `quiet`: silent_for `ten minutes` is not a duration; write it like 90s, 15m, 4h, 2d or 1h30m",
                dir.path().join("plant.toml").display()
            )
        );
    }

    /// A PEM certificate and key for `localhost`, written into `dir`.
    fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    fn with_tls(cert: Option<&Path>, key: Option<&Path>) -> Result<Settings, ConfigError> {
        let o = Overrides {
            tls_cert: cert.map(Path::to_path_buf),
            tls_key: key.map(Path::to_path_buf),
            ..Default::default()
        };
        Settings::resolve(FileConfig::default(), &o)
    }

    #[test]
    fn tls_files_are_read_and_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = certificate(dir.path());
        let s = with_tls(Some(&cert), Some(&key)).unwrap();
        assert!(s.tls.is_some());
        assert_eq!(s.external_url, "https://127.0.0.1:8080");
        assert!(with_tls(None, None).unwrap().tls.is_none());

        // The file's keys work as well as the flags.
        let file = Settings::parse(
            &format!(
                "tls_cert = {:?}\ntls_key = {:?}\n",
                cert.display().to_string(),
                key.display().to_string()
            ),
            "t.toml",
        )
        .unwrap();
        assert!(Settings::resolve(file, &Overrides::default())
            .unwrap()
            .tls
            .is_some());
    }

    #[test]
    fn tls_settings_say_which_file_is_wrong_and_what_to_give() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = certificate(dir.path());
        let err =
            |cert: Option<&Path>, key: Option<&Path>| with_tls(cert, key).unwrap_err().to_string();
        let both = "tls_cert and tls_key go together: give both (the certificate and its private key, PEM files) to serve TLS, or neither";
        assert_eq!(err(Some(&cert), None), both);
        assert_eq!(err(None, Some(&key)), both);

        let missing = dir.path().join("missing.pem");
        let text = err(Some(&missing), Some(&key));
        assert!(
            text.starts_with(&format!("cannot read tls_cert {}: ", missing.display())),
            "{text}"
        );
        assert!(text.ends_with("; give the path of a PEM file"), "{text}");

        // The certificate given as the key, the key given as the certificate.
        assert_eq!(
            err(Some(&cert), Some(&cert)),
            format!("tls_key {} holds no private key; give the PEM file with the certificate's PKCS#8, PKCS#1 or SEC1 key", cert.display())
        );
        assert_eq!(
            err(Some(&key), Some(&key)),
            format!("tls_cert {} holds no certificate; give the PEM file with the server certificate (-----BEGIN CERTIFICATE-----), followed by any intermediates", key.display())
        );

        // A broken PEM section says what is wrong with it.
        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN PRIVATE KEY-----\nAAAA\n").unwrap();
        let text = err(Some(&cert), Some(&broken));
        assert!(
            text.starts_with(&format!(
                "tls_key {} holds no private key that can be read (",
                broken.display()
            )),
            "{text}"
        );

        // A key of another certificate.
        let other = tempfile::tempdir().unwrap();
        let (_, other_key) = certificate(other.path());
        let text = err(Some(&cert), Some(&other_key));
        assert!(
            text.starts_with(&format!(
                "tls_key {} does not fit tls_cert {} (",
                other_key.display(),
                cert.display()
            )),
            "{text}"
        );
        assert!(
            text.ends_with("give the key the certificate was issued for"),
            "{text}"
        );
    }

    #[test]
    fn clickhouse_timeouts_default_safe_and_are_checked() {
        let s = Settings::resolve(FileConfig::default(), &Overrides::default()).unwrap();
        assert_eq!(s.clickhouse_timeouts, store::Timeouts::default());
        assert_eq!(
            s.store_config("http://x").timeouts.connect,
            Duration::from_secs(5)
        );
        assert_eq!(
            s.store_config("http://x").timeouts.query,
            Duration::from_secs(30)
        );
        let file = Settings::parse(
            "clickhouse_connect_timeout = \"2s\"\nclickhouse_query_timeout = \"1m\"\n",
            "t.toml",
        )
        .unwrap();
        let o = Overrides {
            clickhouse_query_timeout: Some("1500ms".into()),
            ..Default::default()
        };
        let s = Settings::resolve(file, &o).unwrap();
        assert_eq!(s.clickhouse_timeouts.connect, Duration::from_secs(2));
        assert_eq!(s.clickhouse_timeouts.query, Duration::from_millis(1500));
        let o = Overrides {
            clickhouse_connect_timeout: Some("0s".into()),
            ..Default::default()
        };
        let err = Settings::resolve(FileConfig::default(), &o).unwrap_err();
        assert_eq!(
            err.to_string(),
            "clickhouse_connect_timeout `0s` is not a duration; write it like 500ms, 15s, 1m or 7d"
        );
    }

    #[test]
    fn bad_values_say_what_to_use() {
        let o = Overrides {
            clickhouse_url: Some("127.0.0.1:8123".into()),
            ..Default::default()
        };
        let err = Settings::resolve(FileConfig::default(), &o).unwrap_err();
        assert!(
            err.to_string().contains("like http://127.0.0.1:8123"),
            "{err}"
        );
        let o = Overrides {
            clickhouse_database: Some("a-b; DROP".into()),
            ..Default::default()
        };
        assert!(Settings::resolve(FileConfig::default(), &o).is_err());
    }
}
