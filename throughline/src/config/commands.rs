// Each subcommand's components: the flags it accepts (flattened from the
// components it uses, so `--help` lists them in this order) and what it
// loads, merged with the file and validated. `log` is read first, by
// `main.rs`, to start logging before anything else is loaded. (No doc comments on these
// structs: clap would take them as the subcommands' descriptions, which
// `cli.rs` gives.)

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use collector::auth::IngestAuth;
use collector::connections::ConnectionLimits;
use collector::forward::ForwardSettings;
use collector::tls::Tls;
use domain::keys::KeyTypes;
use engine::alerts::AlertSettings;
use engine::correlator::CorrelatorSettings;
use engine::retention::RetentionSettings;
use store::retention::Retention;

use super::alerts::{AlertArgs, RuleSet, RulesArgs};
use super::clickhouse::{ClickHouseArgs, ClickHouseSettings};
use super::collector::{CollectorArgs, IngestSettings, TokensArgs};
use super::console::{ConsoleArgs, ConsoleSettings, ExternalUrlArgs};
use super::correlator::{CorrelatorArgs, ProcessSet, ProcessesArgs};
use super::forward::{ForwardArgs, EDGE_SPOOL_MAX_BYTES};
use super::listeners::ListenerArgs;
use super::retention::RetentionArgs;
use super::tls::TlsArgs;
use super::{ConfigError, ConfigFile, DataArgs, KeysArgs, LogArgs};

#[derive(Debug, Default, Clone, Args)]
pub struct UpCommand {
    #[command(flatten)]
    pub collector: CollectorArgs,
    #[command(flatten)]
    pub console: ConsoleArgs,
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub processes: ProcessesArgs,
    #[command(flatten)]
    pub correlator: CorrelatorArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub external_url: ExternalUrlArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub listeners: ListenerArgs,
    #[command(flatten)]
    pub tokens: TokensArgs,
    #[command(flatten)]
    pub keys: KeysArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// `throughline up`: a collector, a console and a correlator with the alert
/// evaluator in one process, each with the settings it would have alone
/// (the ClickHouse, key types, tokens and certificate they share are loaded
/// once).
#[derive(Debug, Clone)]
pub struct UpConfig {
    /// The private ClickHouse's files go under it (with no `clickhouse_url`).
    pub data_dir: PathBuf,
    pub collector: CollectorConfig,
    pub console: ConsoleConfig,
    /// With the alert evaluator's rules and settings.
    pub correlator: CorrelatorConfig,
}

impl UpCommand {
    pub fn load(self, file: &ConfigFile) -> Result<UpConfig, ConfigError> {
        let base = Base::load(file, self.clickhouse, self.data, self.keys)?;
        let ingest = file
            .merged(self.collector)?
            .settings(&base.data_dir, &base.keys)?;
        let processes = file.merged(self.processes)?.load(&base.keys)?;
        let correlator = file.merged(self.correlator)?.settings()?;
        let retention = file.merged(self.retention)?.settings()?;
        let rules = file.merged(self.rules)?.load(&processes.processes)?;
        let served = base.serving(file, self.tokens, self.tls, self.listeners)?;
        let console = file
            .merged(self.console)?
            .settings(file.merged(self.external_url)?, served.tls.is_some())?;
        let alerts = file
            .merged(self.alerts)?
            .settings(console.external_url.clone())?;
        Ok(UpConfig {
            data_dir: served.data_dir.clone(),
            collector: CollectorConfig::new(&served, ingest),
            correlator: CorrelatorConfig {
                clickhouse: served.clickhouse.clone(),
                keys: served.keys.clone(),
                processes: processes.clone(),
                correlator,
                // The alert evaluator runs once: with partition 0.
                alerts: correlator
                    .partition
                    .is_first()
                    .then(|| (rules.clone(), alerts)),
                retention,
            },
            console: ConsoleConfig::new(served, console, processes, rules, retention.policy),
        })
    }
}

/// What every serving subcommand loads first: ClickHouse, the data
/// directory and key types.
struct Base {
    clickhouse: ClickHouseSettings,
    data_dir: PathBuf,
    keys: KeyTypes,
}

impl Base {
    fn load(
        file: &ConfigFile,
        clickhouse: ClickHouseArgs,
        data: DataArgs,
        keys: KeysArgs,
    ) -> Result<Base, ConfigError> {
        Ok(Base {
            clickhouse: file.merged(clickhouse)?.settings()?,
            data_dir: file.merged(data)?.settings(),
            keys: file.merged(keys)?.settings()?,
        })
    }

    /// With what the collector's and the console's listeners share (loaded
    /// after each component's own settings, once in `up`): connector
    /// tokens, the certificate and the connection limits.
    fn serving(
        self,
        file: &ConfigFile,
        tokens: TokensArgs,
        tls: TlsArgs,
        listeners: ListenerArgs,
    ) -> Result<Served, ConfigError> {
        Ok(Served {
            auth: Arc::new(file.merged(tokens)?.settings()?),
            tls: file.merged(tls)?.load()?,
            connections: file.merged(listeners)?.settings()?,
            clickhouse: self.clickhouse,
            data_dir: self.data_dir,
            keys: self.keys,
        })
    }
}

/// What the collector and the console both load.
struct Served {
    clickhouse: ClickHouseSettings,
    data_dir: PathBuf,
    keys: KeyTypes,
    auth: Arc<IngestAuth>,
    tls: Option<Tls>,
    connections: ConnectionLimits,
}

#[derive(Debug, Default, Clone, Args)]
pub struct CollectorCommand {
    #[command(flatten)]
    pub collector: CollectorArgs,
    #[command(flatten)]
    pub forward: ForwardArgs,
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub listeners: ListenerArgs,
    #[command(flatten)]
    pub tokens: TokensArgs,
    #[command(flatten)]
    pub keys: KeysArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// `throughline collector`: no process definition, alert rule or console
/// setting.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub clickhouse: ClickHouseSettings,
    pub keys: KeyTypes,
    pub ingest: IngestSettings,
    pub auth: Arc<IngestAuth>,
    pub tls: Option<Tls>,
    /// Timeouts and the connection cap of its listeners.
    pub connections: ConnectionLimits,
    /// Forward to a central collector instead of writing to ClickHouse
    /// (an edge collector; `throughline collector` only).
    pub forward: Option<ForwardSettings>,
}

impl CollectorCommand {
    pub fn load(self, file: &ConfigFile) -> Result<CollectorConfig, ConfigError> {
        let base = Base::load(file, self.clickhouse, self.data, self.keys)?;
        let forward = file.merged(self.forward)?.settings()?;
        let mut collector = file.merged(self.collector)?;
        if forward.is_some() && collector.spool_max_bytes.is_none() {
            collector.spool_max_bytes = Some(EDGE_SPOOL_MAX_BYTES);
        }
        let ingest = collector.settings(&base.data_dir, &base.keys)?;
        let served = base.serving(file, self.tokens, self.tls, self.listeners)?;
        Ok(CollectorConfig {
            forward,
            ..CollectorConfig::new(&served, ingest)
        })
    }
}

impl CollectorConfig {
    fn new(served: &Served, ingest: IngestSettings) -> Self {
        CollectorConfig {
            clickhouse: served.clickhouse.clone(),
            keys: served.keys.clone(),
            ingest,
            auth: served.auth.clone(),
            tls: served.tls.clone(),
            connections: served.connections,
            forward: None,
        }
    }
}

#[derive(Debug, Default, Clone, Args)]
pub struct ConsoleCommand {
    #[command(flatten)]
    pub console: ConsoleArgs,
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub processes: ProcessesArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub external_url: ExternalUrlArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub listeners: ListenerArgs,
    #[command(flatten)]
    pub tokens: TokensArgs,
    #[command(flatten)]
    pub keys: KeysArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// `throughline console`: no spool, listener of the collector or timing of
/// the workers.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    pub clickhouse: ClickHouseSettings,
    /// Where the session key and the revoked sessions are kept.
    pub data_dir: PathBuf,
    pub keys: KeyTypes,
    pub settings: ConsoleSettings,
    /// The connector tokens, listed on `/admin`.
    pub auth: Arc<IngestAuth>,
    pub processes: ProcessSet,
    pub rules: RuleSet,
    pub tls: Option<Tls>,
    /// Timeouts and the connection cap of its listener.
    pub connections: ConnectionLimits,
    /// What retention keeps, shown on `/admin` and `/api/v1/storage` (the
    /// pass runs with the correlator).
    pub retention: Retention,
}

impl ConsoleCommand {
    pub fn load(self, file: &ConfigFile) -> Result<ConsoleConfig, ConfigError> {
        let base = Base::load(file, self.clickhouse, self.data, self.keys)?;
        let processes = file.merged(self.processes)?.load(&base.keys)?;
        let rules = file.merged(self.rules)?.load(&processes.processes)?;
        let retention = file.merged(self.retention)?.settings()?;
        let served = base.serving(file, self.tokens, self.tls, self.listeners)?;
        let console = file
            .merged(self.console)?
            .settings(file.merged(self.external_url)?, served.tls.is_some())?;
        Ok(ConsoleConfig::new(
            served,
            console,
            processes,
            rules,
            retention.policy,
        ))
    }
}

impl ConsoleConfig {
    fn new(
        served: Served,
        settings: ConsoleSettings,
        processes: ProcessSet,
        rules: RuleSet,
        retention: Retention,
    ) -> Self {
        ConsoleConfig {
            clickhouse: served.clickhouse,
            data_dir: served.data_dir,
            keys: served.keys,
            settings,
            auth: served.auth,
            processes,
            rules,
            tls: served.tls,
            connections: served.connections,
            retention,
        }
    }
}

#[derive(Debug, Default, Clone, Args)]
pub struct CorrelatorCommand {
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    #[command(flatten)]
    pub processes: ProcessesArgs,
    #[command(flatten)]
    pub correlator: CorrelatorArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub external_url: ExternalUrlArgs,
    #[command(flatten)]
    pub keys: KeysArgs,
    /// Also evaluate the alert rules of --alerts-dir and send notifications
    /// (run one per deployment; `up` runs it too)
    #[arg(long = "alerts")]
    pub evaluate_alerts: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

/// `throughline correlator [--alerts]`: alert rules and receivers only with
/// `--alerts`; no listener, spool or TLS file.
#[derive(Debug, Clone)]
pub struct CorrelatorConfig {
    pub clickhouse: ClickHouseSettings,
    pub keys: KeyTypes,
    pub processes: ProcessSet,
    pub correlator: CorrelatorSettings,
    /// With `--alerts`: the rules and the evaluator's settings.
    pub alerts: Option<(RuleSet, AlertSettings)>,
    /// The retention pass runs beside the correlator (once per deployment).
    pub retention: RetentionSettings,
}

impl CorrelatorCommand {
    pub fn load(self, file: &ConfigFile) -> Result<CorrelatorConfig, ConfigError> {
        let clickhouse = file.merged(self.clickhouse)?.settings()?;
        let keys = file.merged(self.keys)?.settings()?;
        let processes = file.merged(self.processes)?.load(&keys)?;
        let correlator = file.merged(self.correlator)?.settings()?;
        let retention = file.merged(self.retention)?.settings()?;
        if self.evaluate_alerts && !correlator.partition.is_first() {
            return Err(ConfigError::Invalid(format!(
                "--alerts with correlator_partition {}: the alert evaluator runs once, \
                 with partition 0 of {}; drop --alerts here",
                correlator.partition,
                correlator.partition.count()
            )));
        }
        let alerts = if self.evaluate_alerts {
            let rules = file.merged(self.rules)?.load(&processes.processes)?;
            // No console runs here: links go to external_url, else to a
            // console on its default address.
            let external_url = file
                .merged(self.external_url)?
                .settings(ConsoleSettings::default_addr(), false);
            let settings = file.merged(self.alerts)?.settings(external_url)?;
            Some((rules, settings))
        } else {
            None
        };
        Ok(CorrelatorConfig {
            clickhouse,
            keys,
            processes,
            correlator,
            alerts,
            retention,
        })
    }
}

#[derive(Debug, Default, Clone, Args)]
pub struct MigrateCommand {
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

impl MigrateCommand {
    /// `throughline migrate`: ClickHouse, nothing else.
    pub fn load(self, file: &ConfigFile) -> Result<ClickHouseSettings, ConfigError> {
        file.merged(self.clickhouse)?.settings()
    }
}
