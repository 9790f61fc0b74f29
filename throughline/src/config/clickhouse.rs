//! ClickHouse: where the data is. Every subcommand that serves, and
//! `migrate`, reads these keys and nothing else of this file.

use super::{component_args, duration_of, ConfigError};

component_args! {
    /// ClickHouse's address, database and credentials.
    pub struct ClickHouseArgs {
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
        /// How inserts travel to ClickHouse: `lz4` (compressed blocks) or `none` (plain, for a proxy or front that speaks no compressed block format) [default: lz4]
        #[arg(
            long,
            env = "THROUGHLINE_CLICKHOUSE_COMPRESSION",
            value_name = "lz4|none"
        )]
        pub clickhouse_compression: Option<String>,
        /// A ClickHouse cluster (a name in the `remote_servers` of clickhouse_url's server) to work on: every table is a local `<table>_local` on each node plus `<table>`, `Distributed` over them, and migrations run on every node of the cluster [default: none, one server]
        #[arg(long, env = "THROUGHLINE_CLICKHOUSE_CLUSTER", value_name = "NAME")]
        pub clickhouse_cluster: Option<String>,
        /// With clickhouse_cluster: the cluster's shards have replicas, so each local table is the `Replicated` variant of its engine (ZooKeeper, `{shard}` and `{replica}` macros on every node) [default: false]
        #[arg(
            long,
            env = "THROUGHLINE_CLICKHOUSE_REPLICATED",
            value_name = "true|false"
        )]
        pub clickhouse_replicated: Option<bool>,
    }
}

/// ClickHouse, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseSettings {
    /// `None`: `up` runs a private server; the others use [`Self::DEFAULT_URL`].
    pub url: Option<String>,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Connect and statement timeouts of every ClickHouse call.
    pub timeouts: store::Timeouts,
    pub compression: store::Compression,
    /// `Some`: the cluster of `remote_servers` to work on.
    pub cluster: Option<String>,
    /// The cluster's local tables are `Replicated`.
    pub replicated: bool,
}

impl Default for ClickHouseSettings {
    fn default() -> Self {
        Self {
            url: None,
            database: "throughline".into(),
            user: None,
            password: None,
            timeouts: store::Timeouts::default(),
            compression: store::Compression::default(),
            cluster: None,
            replicated: false,
        }
    }
}

impl ClickHouseArgs {
    /// Defaults applied, validated.
    pub fn settings(self) -> Result<ClickHouseSettings, ConfigError> {
        let default = ClickHouseSettings::default();
        let settings = ClickHouseSettings {
            url: self.clickhouse_url.or(default.url),
            database: self.clickhouse_database.unwrap_or(default.database),
            user: self.clickhouse_user.or(default.user),
            password: self.clickhouse_password.or(default.password),
            timeouts: store::Timeouts {
                connect: duration_of(
                    "clickhouse_connect_timeout",
                    self.clickhouse_connect_timeout,
                )?
                .unwrap_or(default.timeouts.connect),
                query: duration_of("clickhouse_query_timeout", self.clickhouse_query_timeout)?
                    .unwrap_or(default.timeouts.query),
            },
            compression: match self.clickhouse_compression {
                None => default.compression,
                Some(text) => store::Compression::parse(&text).ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "clickhouse_compression `{text}` is not known; write lz4 or none"
                    ))
                })?,
            },
            cluster: self.clickhouse_cluster.or(default.cluster),
            replicated: self.clickhouse_replicated.unwrap_or(default.replicated),
        };
        settings.validate()?;
        Ok(settings)
    }
}

impl ClickHouseSettings {
    /// Where the subcommands other than `up` look for ClickHouse when no URL
    /// is set.
    pub const DEFAULT_URL: &'static str = "http://127.0.0.1:8123";

    pub fn validate(&self) -> Result<(), ConfigError> {
        let database = &self.database;
        let plain = !database.is_empty()
            && database.len() <= 64
            && database
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !plain {
            return Err(ConfigError::Invalid(format!(
                "clickhouse_database `{database}` is not a plain name; use letters, digits and `_`"
            )));
        }
        if let Some(cluster) = &self.cluster {
            let plain = !cluster.is_empty()
                && cluster
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !plain {
                return Err(ConfigError::Invalid(format!(
                    "clickhouse_cluster `{cluster}` is not a plain name; use letters, digits, `_` and `-`"
                )));
            }
        }
        if self.replicated && self.cluster.is_none() {
            return Err(ConfigError::Invalid(
                "clickhouse_replicated needs clickhouse_cluster: replicas are a cluster's".into(),
            ));
        }
        if let Some(url) = &self.url {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(ConfigError::Invalid(format!(
                    "clickhouse_url `{}` must be ClickHouse's HTTP interface, like http://127.0.0.1:8123",
                    domain::redact::url(url)
                )));
            }
        }
        Ok(())
    }

    /// The configured URL, else [`Self::DEFAULT_URL`].
    pub fn url_or_default(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| Self::DEFAULT_URL.to_string())
    }

    /// The store on ClickHouse at `url`, on the configured cluster if any.
    pub fn store(&self, url: &str) -> store::Store {
        let store = store::Store::new(self.store_config(url));
        match &self.cluster {
            Some(cluster) if self.replicated => store.on_cluster(cluster).replicated(),
            Some(cluster) => store.on_cluster(cluster),
            None => store,
        }
    }

    /// The store's settings for ClickHouse at `url`.
    pub fn store_config(&self, url: &str) -> store::StoreConfig {
        store::StoreConfig {
            url: url.to_string(),
            database: self.database.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            timeouts: self.timeouts,
            compression: self.compression,
        }
    }
}
