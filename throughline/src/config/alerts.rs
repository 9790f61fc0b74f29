//! Alert rules (which the evaluator runs and the console shows) and the
//! evaluator's timing and receivers.

use std::path::PathBuf;

use domain::process::Processes;
use engine::alerts::notify::Destination;
use engine::alerts::rules::Rules;
use engine::alerts::AlertSettings;

use super::{component_args, duration_of, ConfigError};

component_args! {
    /// Where the alert rules are.
    pub struct RulesArgs {
        /// Directory of alert rules (*.toml) [default: none, no rules]
        #[arg(long, env = "THROUGHLINE_ALERTS_DIR", value_name = "DIR")]
        pub alerts_dir: Option<PathBuf>,
        /// A plant whose edge collector has not reported for this long shows its link down (console, `plant_backlog` rules, open-breach alerts) [default: 1m]
        #[arg(long, env = "THROUGHLINE_PLANT_LINK_TIMEOUT", value_name = "DURATION")]
        pub plant_link_timeout: Option<String>,
    }
}

/// The alert rules, loaded and validated, and where they came from.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// `None`: no directory was given, so no rule is defined.
    pub dir: Option<PathBuf>,
    pub rules: Rules,
}

impl RulesArgs {
    /// Loads and validates every rule of the directory, if one is given,
    /// against the processes they name, and adds each SLO's burn-rate
    /// rules; a mistake is said with its file, line and fix.
    pub fn load(self, processes: &Processes) -> Result<RuleSet, ConfigError> {
        let mut rules =
            match &self.alerts_dir {
                Some(dir) => Rules::load_dir(dir, processes)
                    .map_err(|e| ConfigError::Invalid(e.to_string()))?,
                // No rule files: the SLOs' burn-rate alerts alone.
                None => Rules::parse_all([], processes)
                    .map_err(|e| ConfigError::Invalid(e.to_string()))?,
            };
        if let Some(t) = duration_of("plant_link_timeout", self.plant_link_timeout)? {
            rules.plant_link_timeout = domain::plant::LinkTimeout(t.as_nanos() as u64);
        }
        Ok(RuleSet {
            dir: self.alerts_dir,
            rules,
        })
    }
}

component_args! {
    /// How often the evaluator runs, how often it repeats a notice, and
    /// `[[receivers]]`.
    pub struct AlertArgs {
        /// Time between alert evaluations [default: 30s]
        #[arg(long, env = "THROUGHLINE_ALERTS_INTERVAL", value_name = "DURATION")]
        pub alerts_interval: Option<String>,
        /// While an alert fires, its notification is sent again this often [default: 4h]
        #[arg(
            long,
            env = "THROUGHLINE_ALERTS_REPEAT_INTERVAL",
            value_name = "DURATION"
        )]
        pub alerts_repeat_interval: Option<String>,
        /// An Alertmanager gets a firing alert again at most this often; its
        /// `endsAt` lies 4 x max(alerts_interval, this) ahead [default: 1m]
        #[arg(long, env = "THROUGHLINE_ALERTS_RESEND_DELAY", value_name = "DURATION")]
        pub alerts_resend_delay: Option<String>,
        /// `[[receivers]]` (file only): where alert notifications go (name,
        /// kind = "alertmanager" | "webhook" | "slack_webhook", url, and
        /// optionally basic_auth = { username, password } or bearer_token).
        #[arg(skip)]
        pub receivers: Option<Vec<Destination>>,
    }
}

impl AlertArgs {
    /// The evaluator's settings: its own defaults ([`AlertSettings::default`])
    /// where a key is unset; links go to `external_url`.
    pub fn settings(self, external_url: String) -> Result<AlertSettings, ConfigError> {
        let default = AlertSettings::default();
        let settings = AlertSettings {
            interval: duration_of("alerts_interval", self.alerts_interval)?
                .unwrap_or(default.interval),
            repeat_interval: duration_of("alerts_repeat_interval", self.alerts_repeat_interval)?
                .unwrap_or(default.repeat_interval),
            resend_delay: duration_of("alerts_resend_delay", self.alerts_resend_delay)?
                .unwrap_or(default.resend_delay),
            destinations: self.receivers.unwrap_or_default(),
            external_url,
            ..default
        };
        validate_destinations(&settings.destinations)?;
        Ok(settings)
    }
}

/// Each receiver has a name of its own and http(s) URLs.
pub fn validate_destinations(destinations: &[Destination]) -> Result<(), ConfigError> {
    let mut names = std::collections::BTreeSet::new();
    for r in destinations {
        if r.name.trim().is_empty() || !names.insert(r.name.clone()) {
            return Err(ConfigError::Invalid(format!(
                "receiver name `{}` is empty or used twice; give each [[receivers]] entry its own name",
                r.name
            )));
        }
        for url in &r.urls {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(ConfigError::Invalid(format!(
                    "receiver `{}`: url `{}` must be an http:// or https:// URL",
                    r.name,
                    domain::redact::url(url)
                )));
            }
        }
    }
    Ok(())
}
