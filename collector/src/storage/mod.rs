//! Storage: the only module that knows ClickHouse row types and SQL.
//!
//! - `migrate` applies the ordered migrations of `sql/` once each, rendering
//!   their engine and `ON CLUSTER` placeholders (`template`).
//! - `rows` maps canonical records to rows and back.
//! - `write` inserts a batch into every table it touches. Every write is
//!   idempotent: tables are `ReplacingMergeTree`s keyed by the record's
//!   identity, and readers use `FINAL`, so a retried batch changes nothing.
//! - `query` answers the questions the API asks, each by reading a table
//!   ordered for it.
//! - `stats` aggregates a time range (systems, operations, service map).
//! - `server` runs a private `clickhouse-server` for `throughline up` and tests.
//!
//! Values from users reach SQL only through the client's `bind`.

pub mod correlation;
pub mod migrate;
pub mod query;
pub mod rows;
pub mod server;
pub mod stats;
pub mod template;
pub mod write;

use clickhouse::Client;

pub use crate::now_ns;

/// Where and as whom to reach ClickHouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// A failure talking to ClickHouse, classified once: retryable (the server is
/// away or overloaded) or permanent (the data or the SQL is wrong).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("{0}")]
    Migration(String),
}

/// ClickHouse error codes that mean "try again later", not "this is wrong".
const RETRYABLE_CODES: &[&str] = &[
    "Code: 159,", // TIMEOUT_EXCEEDED
    "Code: 202,", // TOO_MANY_SIMULTANEOUS_QUERIES
    "Code: 209,", // SOCKET_TIMEOUT
    "Code: 210,", // NETWORK_ERROR
    "Code: 241,", // MEMORY_LIMIT_EXCEEDED
    "Code: 252,", // TOO_MANY_PARTS
];

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        use clickhouse::error::Error as E;
        match self {
            StoreError::ClickHouse(E::Network(_) | E::TimedOut) => true,
            StoreError::ClickHouse(E::BadResponse(text)) => {
                RETRYABLE_CODES.iter().any(|code| text.contains(code))
            }
            _ => false,
        }
    }
}

/// A handle on one Throughline database. Cheap to clone (a connection pool).
#[derive(Clone)]
pub struct Store {
    client: Client,
    config: StoreConfig,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.config.url)
            .field("database", &self.config.database)
            .finish()
    }
}

fn base_client(config: &StoreConfig) -> Client {
    let mut client = Client::default()
        .with_url(&config.url)
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
        let client = base_client(&config).with_database(&config.database);
        Self { client, config }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// `SELECT 1`: is the server there and answering?
    pub async fn ping(&self) -> Result<(), StoreError> {
        base_client(&self.config)
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await?;
        Ok(())
    }

    /// Creates the database if it does not exist (the one statement that runs
    /// outside it).
    pub(crate) async fn create_database(&self) -> Result<(), StoreError> {
        base_client(&self.config)
            .query("CREATE DATABASE IF NOT EXISTS ?")
            .bind(clickhouse::sql::Identifier(&self.config.database))
            .execute()
            .await?;
        Ok(())
    }

    /// Drops the whole database: for tests that made their own.
    pub async fn drop_database(&self) -> Result<(), StoreError> {
        base_client(&self.config)
            .query("DROP DATABASE IF EXISTS ?")
            .bind(clickhouse::sql::Identifier(&self.config.database))
            .execute()
            .await?;
        Ok(())
    }
}
