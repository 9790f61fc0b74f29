//! Process definitions (which the correlator, the alert rules and the
//! console read) and the correlator's timing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use domain::keys::KeyTypes;
use domain::process::{Processes, SystemDef};
use engine::correlator::{CorrelatorSettings, PartitionError};

use super::{component_args, duration_of, ConfigError};

component_args! {
    /// Where the process definitions are.
    pub struct ProcessesArgs {
        /// Directory of process definitions (*.toml) [default: none, no processes]
        #[arg(long, env = "THROUGHLINE_PROCESSES_DIR", value_name = "DIR")]
        pub processes_dir: Option<PathBuf>,
        /// `[systems.<name>]` (file only): who owns each system (owner, a
        /// team name, and optional contacts).
        #[arg(skip)]
        pub systems: Option<BTreeMap<String, SystemDef>>,
    }
}

/// The process definitions, loaded and validated, and where they came from.
#[derive(Debug, Clone, Default)]
pub struct ProcessSet {
    /// `None`: no directory was given, so no process is defined.
    pub dir: Option<PathBuf>,
    pub processes: Processes,
}

impl ProcessesArgs {
    /// Loads and validates every definition of the directory, if one is
    /// given, and the systems' owners; a mistake is said with its file,
    /// line and fix.
    pub fn load(self, keys: &KeyTypes) -> Result<ProcessSet, ConfigError> {
        let systems = self.systems.unwrap_or_default();
        domain::process::owners::check_systems(&systems).map_err(ConfigError::Invalid)?;
        let mut processes = match &self.processes_dir {
            Some(dir) => {
                Processes::load_dir(dir, keys).map_err(|e| ConfigError::Invalid(e.to_string()))?
            }
            None => Processes::default(),
        };
        processes.systems = systems;
        Ok(ProcessSet {
            dir: self.processes_dir,
            processes,
        })
    }
}

component_args! {
    /// How often the correlator runs and how late a link may come.
    pub struct CorrelatorArgs {
        /// Time between correlator cycles; open breaches are found within it [default: 15s]
        #[arg(long, env = "THROUGHLINE_CORRELATOR_INTERVAL", value_name = "DURATION")]
        pub correlator_interval: Option<String>,
        /// How late a key link may arrive and still connect records to instances [default: 7d]
        #[arg(long, env = "THROUGHLINE_CORRELATION_HORIZON", value_name = "DURATION")]
        pub correlation_horizon: Option<String>,
        /// This correlator's share when N correlators run: K/N owns the instances whose root key's FNV-1a 64 hash is K mod N; only 0/N may run the alerts and retention [default: 0/1, all]
        #[arg(long, env = "THROUGHLINE_CORRELATOR_PARTITION", value_name = "K/N")]
        pub correlator_partition: Option<String>,
    }
}

impl CorrelatorArgs {
    /// The correlator's settings: its own defaults
    /// ([`CorrelatorSettings::default`]) where a key is unset.
    pub fn settings(self) -> Result<CorrelatorSettings, ConfigError> {
        let default = CorrelatorSettings::default();
        Ok(CorrelatorSettings {
            interval: duration_of("correlator_interval", self.correlator_interval)?
                .unwrap_or(default.interval),
            horizon: duration_of("correlation_horizon", self.correlation_horizon)?
                .unwrap_or(default.horizon),
            partition: match self.correlator_partition {
                Some(p) => p
                    .parse()
                    .map_err(|e: PartitionError| ConfigError::Invalid(e.to_string()))?,
                None => default.partition,
            },
            ..default
        })
    }
}
