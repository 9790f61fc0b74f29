//! How long ClickHouse may take. A server that is stopped but keeps its
//! port (`SIGSTOP`, a hung host) accepts connections and never answers;
//! without deadlines every caller (the collector's writer, `/readyz`, every
//! page) would wait for it forever. So every call has one:
//!
//! - connecting: [`Timeouts::connect`], the HTTP connector's;
//! - a statement, from sending it to its last row: [`Timeouts::query`].
//!   [`Store::query`](crate::Store) hands out a [`Statement`] whose fetches
//!   are bounded; an insert is bounded whole (`write::insert_rows`);
//! - a health check (`ping`, `migrations_current`, which `/readyz` and
//!   `/admin` call): [`Timeouts::health`], [`HEALTH_CHECK`] or the query
//!   timeout if that is shorter;
//! - a migration's copy of one day of data: [`COPY_TIMEOUT`], since it may
//!   rightly take long.
//!
//! A deadline that passes is [`StoreError::Timeout`], which is retryable:
//! the collector's writer keeps the batch in its spool and tries again.

use std::future::Future;
use std::time::Duration;

use clickhouse::{RowOwned, RowRead};

use crate::StoreError;

/// A health check's limit, unless the query timeout is shorter.
pub const HEALTH_CHECK: Duration = Duration::from_secs(3);

/// A migration's `INSERT ... SELECT` of one day partition.
pub(crate) const COPY_TIMEOUT: Duration = Duration::from_secs(3600);

/// The crate's default TCP keep-alive and idle time of pooled connections
/// (below the 3 s keep-alive timeout of ClickHouse's packaged config, which
/// the private server's config sets too: 18.16's built-in default is 10 s).
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long ClickHouse may take to accept a connection and to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To connect (TCP).
    pub connect: Duration,
    /// For one statement, from sending it to its last row.
    pub query: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            query: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// For a health check: [`HEALTH_CHECK`], or the query timeout if shorter.
    pub fn health(&self) -> Duration {
        HEALTH_CHECK.min(self.query)
    }
}

/// A ClickHouse client whose connections are made within `connect`: the
/// crate's default HTTP client otherwise.
pub(crate) fn http_client(connect: Duration) -> clickhouse::Client {
    use hyper_util::client::legacy::connect::HttpConnector;
    let mut connector = HttpConnector::new();
    connector.set_keepalive(Some(TCP_KEEPALIVE));
    connector.set_connect_timeout(Some(connect));
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        // Without a timer the pool never closes an idle connection (it only
        // drops an expired one when it would reuse it): a server being
        // stopped then waits for connections nobody uses (10 s on 18.16).
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .build(connector);
    clickhouse::Client::with_http_client(http)
}

/// `call` if it ends within `limit`; else [`StoreError::Timeout`].
pub(crate) async fn bounded<T, E: Into<StoreError>>(
    limit: Duration,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(StoreError::Timeout(limit)),
    }
}

/// One SQL statement and how long it may take: the client's query with
/// every way of running it bounded.
pub(crate) struct Statement {
    query: clickhouse::query::Query,
    limit: Duration,
}

impl Statement {
    pub(crate) fn new(query: clickhouse::query::Query, limit: Duration) -> Self {
        Statement { query, limit }
    }

    pub(crate) fn bind(self, value: impl clickhouse::sql::Bind) -> Self {
        Statement {
            query: self.query.bind(value),
            limit: self.limit,
        }
    }

    /// The same statement with another limit.
    pub(crate) fn within(self, limit: Duration) -> Self {
        Statement { limit, ..self }
    }

    pub(crate) async fn execute(self) -> Result<(), StoreError> {
        bounded(self.limit, self.query.execute()).await
    }

    pub(crate) async fn fetch_all<T: RowOwned + RowRead>(self) -> Result<Vec<T>, StoreError> {
        bounded(self.limit, self.query.fetch_all::<T>()).await
    }

    pub(crate) async fn fetch_one<T: RowOwned + RowRead>(self) -> Result<T, StoreError> {
        bounded(self.limit, self.query.fetch_one::<T>()).await
    }

    /// The statement's answer as text with its column names and types
    /// (`TabSeparatedWithNamesAndTypes`), for tests that check that both
    /// engines give the same types: with validation off, a RowBinary reader
    /// reads whatever bytes come, so a wider type goes unnoticed there.
    #[cfg(feature = "testing")]
    pub(crate) async fn fetch_typed_text(self) -> Result<String, StoreError> {
        let read = async move {
            let mut cursor = self.query.fetch_bytes("TabSeparatedWithNamesAndTypes")?;
            let bytes = cursor.collect().await?;
            Ok::<_, clickhouse::error::Error>(String::from_utf8_lossy(&bytes).into_owned())
        };
        bounded(self.limit, read).await
    }

    pub(crate) async fn fetch_optional<T: RowOwned + RowRead>(
        self,
    ) -> Result<Option<T>, StoreError> {
        bounded(self.limit, self.query.fetch_optional::<T>()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_health_check_is_never_longer_than_a_query() {
        assert_eq!(Timeouts::default().health(), HEALTH_CHECK);
        let short = Timeouts {
            connect: Duration::from_secs(1),
            query: Duration::from_millis(500),
        };
        assert_eq!(short.health(), Duration::from_millis(500));
    }

    /// A server that takes the connection and never answers (what a
    /// stopped ClickHouse does): the statement ends at its deadline, as a
    /// retryable error.
    #[tokio::test]
    async fn a_silent_server_is_a_retryable_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                held.push(socket);
            }
        });
        let store = crate::Store::new(crate::StoreConfig {
            url: format!("http://{addr}"),
            database: "x".into(),
            user: None,
            password: None,
            timeouts: Timeouts {
                connect: Duration::from_secs(1),
                query: Duration::from_millis(300),
            },
            compression: Default::default(),
        });
        let started = std::time::Instant::now();
        let error = store.ping().await.unwrap_err();
        assert!(matches!(error, StoreError::Timeout(_)), "{error}");
        assert!(error.is_retryable() && !error.is_data_error());
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            error.to_string(),
            "ClickHouse did not answer within 300ms; check that it is running and not overloaded"
        );
        let error = store.migrations_current().await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
        silent.abort();
    }
}
