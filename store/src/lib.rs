//! The store: the only crate that knows ClickHouse, its SQL and its row types.
//! It must never know a wire format, an HTTP route or a page; it takes and
//! returns domain records and answers named for the question they answer.
//!
//! - `migrate` applies the ordered migrations of `sql/` once each, rendering
//!   their engine and `ON CLUSTER` placeholders (`template`).
//! - `rows` maps canonical records to rows and back.
//! - `write` inserts a batch into every table it touches. Every write is
//!   idempotent: tables are `ReplacingMergeTree`s keyed by the record's
//!   identity, and readers use `FINAL`, so a retried batch changes nothing.
//! - `query` answers the questions the API asks, each by reading a table
//!   ordered for it.
//! - `stats` aggregates a time range (systems, operations, service map);
//!   `process_rollups` the processes' (from `sql/0015`).
//! - `server` runs a private `clickhouse-server` for `throughline up` and tests.
//! - `inspect` is the read-only view of what is stored that operators and
//!   tests take: tables, row counts, sizes on disk, raw records of a range.
//!   `testing` (feature `testing`, dev-dependencies only) sets up databases
//!   as earlier releases left them, and faults.
//! - `timeout` bounds every call: connecting, each statement, health checks.
//! - `version` asks the server's release once (`ServerVersion::supports`).
//! - `retention` drops whole partitions past each data class's limit, and
//!   the oldest first while the database is over its disk limit.
//!
//! Values from users reach SQL only through the client's `bind`.

pub mod alerts;
pub mod cluster;
pub mod compaction;
pub mod correlation;
pub mod hubs;
pub mod inspect;
pub mod migrate;
pub mod plants;
pub mod process_rollups;
pub mod query;
mod recent;
pub mod retention;
pub mod rollups;
mod rows;
pub mod server;
pub mod stats;
pub mod template;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timeout;
pub mod version;
pub mod write;

use std::time::Duration;

use clickhouse::Client;
pub use hubs::HubTypes;
pub use timeout::Timeouts;
use timeout::{bounded, Statement};

/// Key links the writer remembers having written (about 16 bytes each).
const LINKS_REMEMBERED: usize = 500_000;

/// Where and as whom to reach ClickHouse, and how long it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub timeouts: Timeouts,
    /// How inserts travel: LZ4-compressed blocks (the default) or plain.
    pub compression: Compression,
}

/// How the client compresses what it sends (ClickHouse's compressed block
/// format on inserts) and asks for answers. `None` for a front that speaks
/// plain HTTP only (a proxy, or the test suite's chDB front,
/// `scripts/chdb-server.py`); Vector's ClickHouse sink has the same knob.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    #[default]
    Lz4,
    None,
}

impl Compression {
    /// `lz4` or `none`, as configured.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "lz4" => Some(Compression::Lz4),
            "none" => Some(Compression::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Lz4 => "lz4",
            Compression::None => "none",
        }
    }

    fn client(self) -> clickhouse::Compression {
        match self {
            Compression::Lz4 => clickhouse::Compression::Lz4,
            Compression::None => clickhouse::Compression::None,
        }
    }
}

/// A failure talking to ClickHouse, classified once, here: a data error
/// (ClickHouse refused the rows; permanent) or retryable (anything else: the
/// server away, slow, overloaded, restarting).
///
/// Its text never holds the user info of a URL: a client error may quote
/// the URL it used, so its text, with its causes, goes through
/// `domain::redact` here, and it is not handed on as a `source` (which
/// `anyhow` would print as it is).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ClickHouse: {}", client_error_text(.0))]
    ClickHouse(clickhouse::error::Error),
    #[error("{}", domain::redact::urls_in(.0))]
    Migration(String),
    /// No answer within a deadline of `timeout` (retryable).
    #[error("ClickHouse did not answer within {0:?}; check that it is running and not overloaded")]
    Timeout(Duration),
}

impl From<clickhouse::error::Error> for StoreError {
    fn from(e: clickhouse::error::Error) -> Self {
        StoreError::ClickHouse(e)
    }
}

/// A client error with its causes (`network error: ...: tcp connect error:
/// Connection refused`), each said once, URLs without user info.
fn client_error_text(error: &clickhouse::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    domain::redact::urls_in(&text)
}

/// ClickHouse error codes that mean "this data is wrong": sending the same
/// rows again fails again. Every other server answer (the server away, a
/// timeout, overload, a missing table while someone migrates) may pass later.
const DATA_ERROR_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,  // ATTEMPT_TO_READ_AFTER_EOF
    33,  // CANNOT_READ_ALL_DATA
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
];

/// The `NNN` of a ClickHouse exception text `Code: NNN, ...`.
fn error_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + 6..];
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

impl StoreError {
    /// A permanent failure caused by the rows themselves (ClickHouse refused
    /// them as data, or they cannot be encoded): retrying cannot help, so the
    /// writer sets them aside as dead letters.
    pub fn is_data_error(&self) -> bool {
        use clickhouse::error::Error as E;
        match self {
            StoreError::ClickHouse(E::BadResponse(text)) => {
                error_code(text).is_some_and(|code| DATA_ERROR_CODES.contains(&code))
                    // Current releases refuse one insert block touching more
                    // than 100 partitions (a months-long backfill in one
                    // batch) under the code of "too many parts", which is
                    // overload. Treated as data, the writer halves the batch
                    // until each part fits; no single record can hit it.
                    || (error_code(text) == Some(252)
                        && text.contains("partitions for single INSERT"))
            }
            StoreError::ClickHouse(
                E::Custom(_)
                | E::DataFormat(_)
                | E::InvalidUtf8Encoding(_)
                | E::SequenceMustHaveLength
                | E::InvalidTagEncoding(_),
            ) => true,
            _ => false,
        }
    }

    /// Worth trying again later: the server is away, slow or overloaded
    /// (also: it did not answer in time), or answered with an error that is
    /// not about the data.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::ClickHouse(_) | StoreError::Timeout(_)) && !self.is_data_error()
    }
}

/// ClickHouse's `priority` of the console's statements and of the
/// background work's: 1 is the highest; a statement waits while one of a
/// higher priority runs; 0 (the default) takes no part.
const INTERACTIVE_PRIORITY: &str = "1";
const BACKGROUND_PRIORITY: &str = "2";

/// A handle on one Throughline database. Cheap to clone (a connection pool).
#[derive(Clone)]
pub struct Store {
    /// On `config.database`.
    client: Client,
    /// On the server, for the statements that run outside the database.
    server: Client,
    config: StoreConfig,
    /// Key links this process wrote lately (see `recent`).
    links_written: std::sync::Arc<recent::RecentSet>,
    /// The key types whose rows name their records' keys ([`hubs`]).
    hubs: std::sync::Arc<HubTypes>,
    /// The server's version once asked (`version`).
    version: std::sync::Arc<std::sync::OnceLock<version::Detected>>,
    /// The cluster whose `Distributed` tables this store reads and writes
    /// (`cluster`); `None` on a single server.
    cluster: Option<String>,
    /// The cluster's local tables are `Replicated` ([`Store::replicated`]).
    replicated: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &domain::redact::url(&self.config.url))
            .field("database", &self.config.database)
            .finish()
    }
}

fn base_client(config: &StoreConfig) -> Client {
    let mut client = timeout::http_client(config.timeouts.connect)
        .with_url(&config.url)
        .with_compression(config.compression.client())
        .with_validation(false);
    if let Some(user) = &config.user {
        client = client.with_user(user);
    }
    if let Some(password) = &config.password {
        client = client.with_password(password);
    }
    client
}

impl Store {
    /// A store on `config.database`; nothing is contacted yet.
    pub fn new(config: StoreConfig) -> Self {
        let server = base_client(&config);
        let client = server.clone().with_database(&config.database);
        Self {
            client,
            server,
            config,
            links_written: std::sync::Arc::new(recent::RecentSet::new(LINKS_REMEMBERED)),
            hubs: std::sync::Arc::new(HubTypes::default()),
            version: Default::default(),
            cluster: None,
            replicated: false,
        }
    }

    /// This store on ClickHouse cluster `cluster` (a name of its
    /// `remote_servers`): migrations make local and `Distributed` tables on
    /// every node (`cluster`), and every statement runs with
    /// `insert_distributed_sync = 1` (an insert is acknowledged once it is
    /// on its shard, so nothing acknowledged waits in a node's queue) and
    /// `distributed_product_mode = 'global'` (a subquery over a
    /// `Distributed` table inside a query over another runs once, on the
    /// whole cluster, as on one server).
    pub fn on_cluster(mut self, cluster: &str) -> Self {
        let cluster_client = |c: Client| {
            c.with_setting("insert_distributed_sync", "1")
                .with_setting("distributed_product_mode", "global")
        };
        self.client = cluster_client(self.client);
        self.server = cluster_client(self.server);
        self.cluster = Some(cluster.to_string());
        self
    }

    /// This store writing hub rows for `hubs` (the configured key types'
    /// coarsest, [`domain::keys::KeyTypes::coarsest`]; the built-in
    /// `customer` unless set).
    pub fn with_hubs(mut self, hubs: HubTypes) -> Self {
        self.hubs = std::sync::Arc::new(hubs);
        self
    }

    /// The key types this store writes hub rows for.
    pub fn hubs(&self) -> &HubTypes {
        &self.hubs
    }

    /// This store for background work (the correlator, the alert
    /// evaluator, retention): each of its statements runs on one ClickHouse
    /// thread (`max_threads = 1`), so that however much a correlator cycle
    /// reads, the console's lookups find a core free; and at a lower
    /// priority than the console's ([`Store::interactive`]). Its Rust side
    /// is one task, on one core at a time, as well.
    pub fn background(&self) -> Self {
        self.with_settings(&[("max_threads", "1"), ("priority", BACKGROUND_PRIORITY)])
    }

    /// This store for the console's reads, which a person waits for: its
    /// statements run at a higher ClickHouse priority than the background
    /// work's ([`Store::background`]). While one of them runs, ClickHouse
    /// pauses the background statements between blocks, so a lookup is
    /// not slowed by a correlator cycle or an alert evaluation that
    /// happens to run beside it. (Statements without a priority, the
    /// collector's, are never paused; nor are merges and inserts.)
    pub fn interactive(&self) -> Self {
        self.with_settings(&[("priority", INTERACTIVE_PRIORITY)])
    }

    fn with_settings(&self, settings: &[(&str, &str)]) -> Self {
        let mut store = self.clone();
        for (name, value) in settings {
            store.client = store.client.with_setting(*name, *value);
            store.server = store.server.with_setting(*name, *value);
        }
        store
    }

    /// This store on a cluster whose shards have replicas: the migrator
    /// makes each local table of the `Replicated` variant of its engine,
    /// kept in step through ZooKeeper (`cluster::render`), and runs an
    /// `ALTER` of a local table on one replica per shard (ClickHouse
    /// replicates it to the others). Only with [`Store::on_cluster`].
    pub fn replicated(mut self) -> Self {
        self.replicated = true;
        self
    }

    /// Whether the cluster's local tables are `Replicated`.
    pub fn is_replicated(&self) -> bool {
        self.replicated
    }

    /// The cluster this store works on, if any.
    pub fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }

    /// A statement outside the database, within the query timeout.
    pub(crate) fn server_query(&self, sql: &str) -> Statement {
        Statement::new(self.server.query(sql), self.config.timeouts.query)
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// For inserts, which bound themselves (`write::insert_rows`); every
    /// other statement goes through [`Store::query`].
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// A statement on the database, within the query timeout.
    pub(crate) fn query(&self, sql: &str) -> Statement {
        Statement::new(self.client.query(sql), self.config.timeouts.query)
    }

    /// `call` (an insert, or several statements) within the query timeout.
    pub(crate) async fn bounded<T, E: Into<StoreError>>(
        &self,
        call: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, StoreError> {
        bounded(self.config.timeouts.query, call).await
    }

    /// `SELECT 1`: is the server there and answering? Within the health
    /// check's limit.
    pub async fn ping(&self) -> Result<(), StoreError> {
        Statement::new(self.server.query("SELECT 1"), self.config.timeouts.health())
            .fetch_one::<u8>()
            .await?;
        Ok(())
    }

    /// Creates the database if it does not exist (the one statement that runs
    /// outside it).
    pub(crate) async fn create_database(&self) -> Result<(), StoreError> {
        Statement::new(
            self.server.query("CREATE DATABASE IF NOT EXISTS ?"),
            self.config.timeouts.query,
        )
        .bind(clickhouse::sql::Identifier(&self.config.database))
        .execute()
        .await
    }

    /// Drops the whole database: for tests that made their own.
    pub async fn drop_database(&self) -> Result<(), StoreError> {
        Statement::new(
            self.server.query("DROP DATABASE IF EXISTS ?"),
            self.config.timeouts.query,
        )
        .bind(clickhouse::sql::Identifier(&self.config.database))
        .execute()
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(text: &str) -> StoreError {
        StoreError::ClickHouse(clickhouse::error::Error::BadResponse(text.into()))
    }

    #[test]
    fn data_errors_are_permanent_and_the_rest_retryable() {
        let thrown = bad("Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero");
        assert!(thrown.is_data_error() && !thrown.is_retryable());
        let parse = bad("Code: 27, e.displayText() = DB::Exception: Cannot parse input");
        assert!(parse.is_data_error());
        let spread = bad("Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100).");
        assert!(spread.is_data_error(), "halved until each part fits");
        for text in [
            "Code: 252, e.displayText() = DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts",
            "Code: 159, e.displayText() = DB::Exception: Timeout exceeded",
            "Code: 60, e.displayText() = DB::Exception: Table x.spans doesn't exist",
            "502 Bad Gateway",
        ] {
            assert!(bad(text).is_retryable(), "{text}");
        }
        assert!(StoreError::ClickHouse(clickhouse::error::Error::TimedOut).is_retryable());
        assert!(StoreError::Timeout(Duration::from_secs(30)).is_retryable());
        assert!(!StoreError::Migration("x".into()).is_retryable());
    }

    #[test]
    fn error_texts_and_debug_never_show_url_credentials() {
        let quoted = bad("Code: 516. DB::Exception: probe: Authentication failed (http://probe:s3cret@10.0.0.5:8123/)");
        let text = quoted.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("http://10.0.0.5:8123/"), "{text}");
        let migration =
            StoreError::Migration("sql/0001 at http://probe:s3cret@10.0.0.5:8123: refused".into());
        assert_eq!(
            migration.to_string(),
            "sql/0001 at http://10.0.0.5:8123: refused"
        );
        let store = Store::new(StoreConfig {
            url: "http://probe:s3cret@10.0.0.5:8123".into(),
            database: "x".into(),
            user: None,
            password: None,
            timeouts: Timeouts::default(),
            compression: Compression::default(),
        });
        let debug = format!("{store:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
