//! The collector: its listeners, what one request and one record may carry,
//! the spool; and the connector tokens (which the console lists too).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use collector::auth::{IngestAuth, TokenConfig};
use domain::events::{EventConfig, EventRules};
use domain::keys::KeyTypes;
use domain::limits::Limits;

use super::{component_args, ConfigError};

component_args! {
    /// The collector's listeners, request size and spool; `[limits]` and
    /// `[events]`.
    pub struct CollectorArgs {
        /// OTLP/gRPC listen address [default: 127.0.0.1:4317]
        #[arg(long, env = "THROUGHLINE_OTLP_GRPC_ADDR", value_name = "ADDR")]
        pub otlp_grpc_addr: Option<SocketAddr>,
        /// OTLP/HTTP (and events) listen address [default: 127.0.0.1:4318]
        #[arg(long, env = "THROUGHLINE_OTLP_HTTP_ADDR", value_name = "ADDR")]
        pub otlp_http_addr: Option<SocketAddr>,
        /// Largest accepted request body in bytes, after decompression [default: 16777216]
        #[arg(long, env = "THROUGHLINE_MAX_REQUEST_BYTES", value_name = "BYTES")]
        pub max_request_bytes: Option<usize>,
        /// Directory of the collector's disk spool, where accepted requests wait for ClickHouse [default: <data_dir>/spool]
        #[arg(long, env = "THROUGHLINE_SPOOL_DIR", value_name = "DIR")]
        pub spool_dir: Option<PathBuf>,
        /// Largest spool in bytes; while it is full, requests are refused with 429 / RESOURCE_EXHAUSTED [default: 1073741824]
        #[arg(long, env = "THROUGHLINE_SPOOL_MAX_BYTES", value_name = "BYTES")]
        pub spool_max_bytes: Option<u64>,
        /// Inserts into ClickHouse start at most once per this interval while there is no backlog; what arrives meanwhile joins the next insert (fewer, larger parts for ClickHouse to merge and lookups to read); 0s inserts as soon as something arrives [default: 1s]
        #[arg(long, env = "THROUGHLINE_INSERT_INTERVAL", value_name = "DURATION")]
        pub insert_interval: Option<String>,
        /// `[limits]` (file only): what one record may carry (attributes,
        /// value bytes, span events and links, nesting depth); the excess is
        /// cut and marked.
        #[arg(skip)]
        pub limits: Option<Limits>,
        /// `[events]` (file only): systems by CloudEvents source prefix, key
        /// paths into data.
        #[arg(skip)]
        pub events: Option<EventConfig>,
    }
}

component_args! {
    /// `[[tokens]]` (file only): connector tokens (id, name, systems, hash);
    /// with none the collector accepts anyone. The console lists them.
    pub struct TokensArgs {
        #[arg(skip)]
        pub tokens: Option<Vec<TokenConfig>>,
    }
}

impl TokensArgs {
    /// The tokens, validated.
    pub fn settings(self) -> Result<IngestAuth, ConfigError> {
        IngestAuth::new(&self.tokens.unwrap_or_default()).map_err(ConfigError::Invalid)
    }
}

/// The collector's settings, validated (its tokens and TLS are apart: the
/// console uses them too).
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub max_request_bytes: usize,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub insert_interval: std::time::Duration,
    pub limits: Limits,
    pub events: EventRules,
}

impl IngestSettings {
    pub const DEFAULT_GRPC_ADDR: &'static str = "127.0.0.1:4317";
    pub const DEFAULT_HTTP_ADDR: &'static str = "127.0.0.1:4318";
    /// Under the data directory unless `spool_dir` is set.
    pub const SPOOL_SUBDIR: &'static str = "spool";

    pub fn validate(&self) -> Result<(), ConfigError> {
        let Self {
            max_request_bytes,
            spool_max_bytes,
            insert_interval,
            ..
        } = self;
        if *insert_interval > std::time::Duration::from_secs(60) {
            return Err(ConfigError::Invalid(format!(
                "insert_interval {insert_interval:?} holds records back from ClickHouse too long; use at most 60s (1s is the default)"
            )));
        }
        if *max_request_bytes < 1024 {
            return Err(ConfigError::Invalid(format!(
                "max_request_bytes {max_request_bytes} is too small to hold any OTLP batch; use at least 1024"
            )));
        }
        if *spool_max_bytes < 1 << 20 {
            return Err(ConfigError::Invalid(format!(
                "spool_max_bytes {spool_max_bytes} is too small; use at least 1048576 (1 MiB)"
            )));
        }
        self.limits.validate().map_err(ConfigError::Invalid)
    }
}

impl CollectorArgs {
    /// Defaults applied (the spool under `data_dir`), `[events]` read
    /// against the key types, validated.
    pub fn settings(self, data_dir: &Path, keys: &KeyTypes) -> Result<IngestSettings, ConfigError> {
        let events = EventRules::new(&self.events.unwrap_or_default(), keys)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let settings = IngestSettings {
            grpc_addr: self
                .otlp_grpc_addr
                .unwrap_or_else(|| addr(IngestSettings::DEFAULT_GRPC_ADDR)),
            http_addr: self
                .otlp_http_addr
                .unwrap_or_else(|| addr(IngestSettings::DEFAULT_HTTP_ADDR)),
            max_request_bytes: self
                .max_request_bytes
                .unwrap_or(collector::DEFAULT_MAX_REQUEST_BYTES),
            spool_dir: self
                .spool_dir
                .unwrap_or_else(|| data_dir.join(IngestSettings::SPOOL_SUBDIR)),
            spool_max_bytes: self
                .spool_max_bytes
                .unwrap_or(collector::spool::DEFAULT_MAX_BYTES),
            insert_interval: super::duration_or_zero_of("insert_interval", self.insert_interval)?
                .unwrap_or(collector::pipeline::DEFAULT_INSERT_INTERVAL),
            limits: self.limits.unwrap_or_default(),
            events,
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// A default address.
pub(super) fn addr(text: &str) -> SocketAddr {
    text.parse().expect("default addresses are valid")
}
