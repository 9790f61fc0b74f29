//! The console: where it listens, who may sign in; and its URL as on-call
//! reaches it, which the alert evaluator's links use too.

use std::net::SocketAddr;

use console::auth::{ApiKeyConfig, UserConfig};

use super::collector::addr;
use super::{component_args, ConfigError};

component_args! {
    /// The console's address; `[[users]]` and `[[api_keys]]`.
    pub struct ConsoleArgs {
        /// Console (web pages and JSON API) listen address [default: 127.0.0.1:8080]
        #[arg(long, env = "THROUGHLINE_CONSOLE_ADDR", value_name = "ADDR")]
        pub console_addr: Option<SocketAddr>,
        /// `[[users]]` (file only): console users (name, role,
        /// password_hash); with none (and no API key) the console is open and
        /// listens on loopback only.
        #[arg(skip)]
        pub users: Option<Vec<UserConfig>>,
        /// `[[api_keys]]` (file only): bearer keys of API clients (id, name,
        /// role, hash).
        #[arg(skip)]
        pub api_keys: Option<Vec<ApiKeyConfig>>,
    }
}

component_args! {
    /// The console's URL as on-call reaches it.
    pub struct ExternalUrlArgs {
        /// The console's URL as on-call reaches it, for links in notifications [default: http://<console_addr>]
        #[arg(long, env = "THROUGHLINE_EXTERNAL_URL", value_name = "URL")]
        pub external_url: Option<String>,
    }
}

impl ExternalUrlArgs {
    /// The URL, by default that of a console on `console_addr`, `https://`
    /// when it serves TLS.
    pub fn settings(self, console_addr: SocketAddr, tls: bool) -> String {
        self.external_url
            .unwrap_or_else(|| format!("{}://{console_addr}", collector::tls::scheme(tls)))
    }
}

/// The console's settings, validated.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    pub addr: SocketAddr,
    pub external_url: String,
    pub users: Vec<UserConfig>,
    pub api_keys: Vec<ApiKeyConfig>,
}

impl ConsoleSettings {
    pub const DEFAULT_ADDR: &'static str = "127.0.0.1:8080";

    /// Where a console listens by default (what the alert evaluator of a
    /// `correlator --alerts` links to unless `external_url` says).
    pub fn default_addr() -> SocketAddr {
        addr(Self::DEFAULT_ADDR)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        console::auth::validate(&self.users, &self.api_keys).map_err(ConfigError::Invalid)
    }

    /// Whether cookies carry `Secure`: the console serves TLS (`tls`), or is
    /// reached over it (`external_url` is `https://`, as behind a proxy
    /// that ends TLS).
    pub fn secure_cookies(&self, tls: bool) -> bool {
        tls || self.external_url.starts_with("https://")
    }
}

impl ConsoleArgs {
    /// Defaults applied, validated; `tls`: the console serves TLS.
    pub fn settings(
        self,
        external_url: ExternalUrlArgs,
        tls: bool,
    ) -> Result<ConsoleSettings, ConfigError> {
        let addr = self
            .console_addr
            .unwrap_or_else(ConsoleSettings::default_addr);
        let settings = ConsoleSettings {
            addr,
            external_url: external_url.settings(addr, tls),
            users: self.users.unwrap_or_default(),
            api_keys: self.api_keys.unwrap_or_default(),
        };
        settings.validate()?;
        Ok(settings)
    }
}
