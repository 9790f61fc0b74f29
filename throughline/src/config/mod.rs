//! Configuration, owned by components (as in Vector and the OpenTelemetry
//! Collector): one TOML file (`--config`), every scalar key overridable by a
//! `THROUGHLINE_*` environment variable and by a flag (flag > environment >
//! file > default), validated before anything starts.
//!
//! Each component declares its keys once, in a `*Args` struct made with
//! [`component_args!`]: `Option` fields that are at the same time its flags
//! (clap, with the environment variable beside each) and its keys in the
//! file (serde). Sections that exist in the file only (`[limits]`,
//! `[[tokens]]`, ...) are fields with `#[arg(skip)]`. Beside it, the
//! component's settings: its defaults, and `settings()` or `load()`, which
//! apply them and validate.
//!
//! - `clickhouse.rs`: where the data is (every subcommand that serves).
//! - `collector.rs`: listeners, request size, spool, `[limits]`, `[events]`;
//!   the connector tokens.
//! - `console.rs`: the console's address, users and API keys; its external URL.
//! - `correlator.rs`: process definitions; the correlator's timing.
//! - `alerts.rs`: alert rules; the evaluator's timing and receivers.
//! - `retention.rs`: `[retention]`, how long each class of data is kept, the
//!   disk guard and the pass's interval (a section with flags too).
//! - `forward.rs`: an edge collector's `forward_to`, `forward_token` and
//!   `plant` (`throughline collector` only).
//! - `tls.rs`: the certificate every listener serves.
//! - here: `data_dir` and `[keys]`, which several components share, and
//!   `log_format`.
//!
//! `commands.rs` composes them per subcommand: each subcommand flattens only
//! the components it uses, so it accepts only their flags and reads only the
//! files they name (`migrate` reads no process definition, alert rule or TLS
//! file; `collector` no alert rule).
//!
//! The file is shared by every subcommand, so every key of every component
//! is known to all (a key no component has is an error with its line and
//! the keys there are), but each subcommand deserializes and checks only
//! the keys of its own components. Each component is deserialized from the
//! file's text on its own, so a wrong value is said with its line. (serde's
//! `flatten` would put the components in one struct, but
//! `deny_unknown_fields` does not work with it, and values that pass
//! through it lose their line.)

mod alerts;
mod clickhouse;
mod collector;
mod commands;
mod console;
mod correlator;
mod forward;
mod listeners;
mod retention;
#[cfg(test)]
mod tests;
mod tls;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use domain::keys::{KeyConfig, KeyTypes};
use domain::process::duration;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

pub use alerts::{AlertArgs, RuleSet, RulesArgs};
pub use clickhouse::{ClickHouseArgs, ClickHouseSettings};
pub use collector::{CollectorArgs, IngestSettings, TokensArgs};
pub use commands::{
    CollectorCommand, CollectorConfig, ConsoleCommand, ConsoleConfig, CorrelatorCommand,
    CorrelatorConfig, MigrateCommand, UpCommand, UpConfig,
};
pub use console::{ConsoleArgs, ConsoleSettings, ExternalUrlArgs};
pub use correlator::{CorrelatorArgs, ProcessSet, ProcessesArgs};
pub use forward::ForwardArgs;
pub use retention::RetentionArgs;
pub use tls::TlsArgs;

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

/// A component's keys: its flags and environment variables, and its keys in
/// the file. Made by [`component_args!`].
pub trait Component: Default + DeserializeOwned {
    /// The names of its keys in the file.
    const KEYS: &'static [&'static str];
    /// Each key from `self` (the flags and environment), else from `file`.
    fn or(self, file: Self) -> Self;
}

/// Declares a component's keys once: a struct of `Option` fields that is
/// clap `Args` (a flag and an environment variable each, from its `#[arg]`)
/// and serde `Deserialize` (a key of the file each, by its name), with
/// [`Component::or`] merging flags over the file field by field.
macro_rules! component_args {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident: $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default, Clone, clap::Args, serde::Deserialize)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )*
        }

        impl $crate::config::Component for $name {
            const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];
            fn or(self, file: Self) -> Self {
                Self {
                    $($field: self.$field.or(file.$field),)*
                }
            }
        }
    };
}
pub(crate) use component_args;

component_args! {
    /// Where a process keeps its files (the private ClickHouse's, the
    /// spool, the console's session key).
    pub struct DataArgs {
        /// Directory for the private ClickHouse's files and the spool [default: ./data]
        #[arg(long, env = "THROUGHLINE_DATA_DIR", value_name = "DIR")]
        pub data_dir: Option<PathBuf>,
    }
}

impl DataArgs {
    pub const DEFAULT_DATA_DIR: &'static str = "./data";

    pub fn settings(self) -> PathBuf {
        self.data_dir
            .unwrap_or_else(|| Self::DEFAULT_DATA_DIR.into())
    }
}

/// How log lines are written to standard error.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Lines for people (colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

component_args! {
    /// How the process logs.
    pub struct LogArgs {
        /// Log format on standard error: text, or json (one object per line) [default: text]
        #[arg(long, env = "THROUGHLINE_LOG_FORMAT", value_name = "FORMAT")]
        pub log_format: Option<LogFormat>,
    }
}

impl LogArgs {
    pub fn settings(self) -> LogFormat {
        self.log_format.unwrap_or_default()
    }
}

component_args! {
    /// `[keys]` (file only): extra key types and per-system attribute
    /// aliases, for every component that reads records.
    pub struct KeysArgs {
        #[arg(skip)]
        pub keys: Option<KeyConfig>,
    }
}

impl KeysArgs {
    pub fn settings(self) -> Result<KeyTypes, ConfigError> {
        KeyTypes::new(&self.keys.unwrap_or_default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }
}

/// Every key the file may hold: those of every component.
fn known_keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            collector::CollectorArgs::KEYS,
            collector::TokensArgs::KEYS,
            forward::ForwardArgs::KEYS,
            console::ConsoleArgs::KEYS,
            console::ExternalUrlArgs::KEYS,
            clickhouse::ClickHouseArgs::KEYS,
            DataArgs::KEYS,
            KeysArgs::KEYS,
            correlator::ProcessesArgs::KEYS,
            correlator::CorrelatorArgs::KEYS,
            alerts::RulesArgs::KEYS,
            alerts::AlertArgs::KEYS,
            tls::TlsArgs::KEYS,
            listeners::ListenerArgs::KEYS,
            LogArgs::KEYS,
            retention::RetentionArgs::KEYS,
        ]
        .concat()
    })
}

/// The configuration file's text, its keys checked; each component reads
/// its own keys from it with [`ConfigFile::merged`].
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    path: String,
    text: String,
}

impl ConfigFile {
    /// Reads and checks `path`; no path is an empty file.
    pub fn read(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Checks the TOML text of a config file named `path` (for messages):
    /// it parses, and every key belongs to a component.
    pub fn parse(text: &str, path: &str) -> Result<Self, ConfigError> {
        let file = Self {
            path: path.to_string(),
            text: text.to_string(),
        };
        file.get::<KnownKeys>()?;
        Ok(file)
    }

    /// The keys of one component (the others are left alone).
    pub fn get<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(&self.text).map_err(|e| ConfigError::Parse {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    /// A component's flags (and environment) over its keys in the file.
    pub fn merged<T: Component>(&self, flags: T) -> Result<T, ConfigError> {
        Ok(flags.or(self.get()?))
    }
}

/// Deserializes a file only to check that each top-level key is one of
/// [`known_keys`]; an unknown one is refused as serde's derive refuses it,
/// so the message has its line and the keys there are.
struct KnownKeys;

impl<'de> Deserialize<'de> for KnownKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Table;
        impl<'de> Visitor<'de> for Table {
            type Value = KnownKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table of configuration keys")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KnownKeys, A::Error> {
                while map.next_key_seed(Key)?.is_some() {
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(KnownKeys)
            }
        }
        deserializer.deserialize_map(Table)
    }
}

struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Key {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a configuration key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        if known_keys().contains(&key) {
            Ok(())
        } else {
            Err(E::unknown_field(key, known_keys()))
        }
    }
}

/// A duration key that may be zero (`0s`: off): `None` when unset;
/// unreadable says how to write it.
fn duration_or_zero_of(name: &str, value: Option<String>) -> Result<Option<Duration>, ConfigError> {
    value
        .map(|text| {
            duration::parse_ns(&text)
                .map(Duration::from_nanos)
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "{name} `{text}` is not a duration; write it like 0s, 500ms, 15s or 1m"
                    ))
                })
        })
        .transpose()
}

/// A duration key: `None` when unset; zero or unreadable says how to write it.
fn duration_of(name: &str, value: Option<String>) -> Result<Option<Duration>, ConfigError> {
    value
        .map(|text| {
            duration::parse_ns(&text)
                .filter(|ns| *ns > 0)
                .map(Duration::from_nanos)
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "{name} `{text}` is not a duration; write it like 500ms, 15s, 1m or 7d"
                    ))
                })
        })
        .transpose()
}
