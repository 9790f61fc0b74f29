//! The `throughline` command line: subcommands and their flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{
    CollectorCommand, ConsoleCommand, CorrelatorCommand, MigrateCommand, UpCommand,
};

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

// Parsed once per run: the size of the largest variant (`up`'s flags) does
// not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process: collector, correlator, alert evaluator and console; starts a private
    /// ClickHouse under --data-dir unless --clickhouse-url is given
    Up {
        #[command(flatten)]
        args: UpCommand,
    },
    /// The OTLP receivers (gRPC and HTTP) writing to ClickHouse, or with --forward-to forwarding to a central collector
    Collector {
        #[command(flatten)]
        args: CollectorCommand,
    },
    /// The console: JSON API, health and metrics
    Console {
        #[command(flatten)]
        args: ConsoleCommand,
    },
    /// Apply the ClickHouse migrations that are not applied yet, then exit
    Migrate {
        #[command(flatten)]
        args: MigrateCommand,
    },
    /// Correlates stored spans and events into process instances and SLA
    /// breaches (run one per deployment; `up` runs it too)
    Correlator {
        #[command(flatten)]
        args: CorrelatorCommand,
    },
    /// Connector tokens: `token create --system crm` prints a new token once
    /// and the config lines (with its hash) to add
    Token {
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// API keys for API clients (scripts, Grafana, Prometheus)
    ApiKey {
        #[command(subcommand)]
        action: ApiKeyCommand,
    },
    /// Console users: `user add --name ana --role admin` reads the password
    /// from standard input and prints the config lines to add
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Simulates a manufacturer's connectors (CRM, ERP, MES) sending spans and
    /// CloudEvents to a running collector, with incidents
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The collector's OTLP/HTTP base URL: events, and spans unless --otlp-grpc
    #[arg(
        long,
        env = "THROUGHLINE_DEMO_TARGET",
        default_value = "http://127.0.0.1:4318"
    )]
    pub target: String,
    /// Send spans over OTLP/gRPC to this endpoint (e.g. http://127.0.0.1:4317)
    #[arg(long, value_name = "URL")]
    pub otlp_grpc: Option<String>,
    /// Connector token for a collector with tokens (bound to every system:
    /// `token create --system '*'`)
    #[arg(long, env = "THROUGHLINE_DEMO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Same seed, same plant, orders and incidents
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Orders per minute
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// History generated first, fast, with past timestamps (e.g. 24h)
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub backfill: String,
    /// Live traffic after the backfill (e.g. 10m); until Ctrl-C when not given
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// No machine downtimes
    #[arg(long)]
    pub no_downtime: bool,
    /// No quality holds
    #[arg(long)]
    pub no_quality_holds: bool,
    /// No ERP migration (erp-legacy to erp-cloud)
    #[arg(long)]
    pub no_erp_migration: bool,
    /// No CRM connector outage
    #[arg(long)]
    pub no_crm_outage: bool,
    /// No duplicate or out-of-order deliveries
    #[arg(long)]
    pub no_delivery_faults: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a connector token bound to the systems it may write for
    Create {
        /// A system the token may write for (`crm`; `erp-*` for a prefix;
        /// `*` for all); repeat for more
        #[arg(long = "system", value_name = "SYSTEM", required = true)]
        systems: Vec<String>,
        /// Who holds it [default: the systems]
        #[arg(long)]
        name: Option<String>,
        /// The plant it writes for (an edge collector's token): records must carry `plant.id` (events: the `plant` extension) with this name
        #[arg(long)]
        plant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Make an API key with a role
    Create {
        /// Who uses it (grafana, prometheus, ...)
        #[arg(long)]
        name: String,
        /// viewer (read API) or admin
        #[arg(long, default_value = "viewer", value_parser = ["viewer", "admin"])]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Hash a new user's password (read from standard input) into config lines
    Add {
        #[arg(long)]
        name: String,
        /// viewer (pages and read API) or admin (also /admin)
        #[arg(long, default_value = "viewer", value_parser = ["viewer", "admin"])]
        role: String,
    },
}
