//! The `throughline` command line: subcommands and their flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Overrides;

#[derive(Debug, Parser)]
#[command(
    name = "throughline",
    version,
    about = "Follow business transactions (orders, work orders, customers) across MES, ERP and CRM.",
    after_help = "Every flag can also be set in the TOML file given with --config (same name, \
                  without the dashes, `_` for `-`) or in the environment variable shown beside it."
)]
pub struct Cli {
    /// TOML configuration file
    #[arg(long, global = true, env = "THROUGHLINE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process: collector, correlator and console; starts a private
    /// ClickHouse under --data-dir unless --clickhouse-url is given
    Up {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// The OTLP receivers (gRPC and HTTP) writing to ClickHouse
    Collector {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// The console: JSON API, health and metrics
    Console {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Apply the ClickHouse migrations that are not applied yet, then exit
    Migrate {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Correlates stored spans and events into process instances and SLA
    /// breaches (run one per deployment; `up` runs it too)
    Correlator {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Generates a manufacturer's demo traffic (not built yet)
    Demo {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
}
