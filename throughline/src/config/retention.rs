//! `[retention]`: how long each class of data is kept, the disk guard, and
//! how often the retention pass runs. Unlike the other sections it has
//! flags and environment variables too (`--retention-spans 14d`,
//! `THROUGHLINE_RETENTION_SPANS`), each over its key in the section.
//! Loaded by the subcommands that run the pass (`up`, `correlator`) and by
//! `console`, which shows what is in force.

use std::time::Duration;

use domain::process::duration;
use engine::retention::RetentionSettings;
use serde::Deserialize;
use store::retention::Class;

use super::{duration_of, Component, ConfigError};

/// The keys of `[retention]`, each also a flag and an environment variable.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionKeys {
    /// How long spans are kept (whole day partitions are dropped; `off`: forever); the key index never outlives them [default: 14d]
    #[arg(
        long = "retention-spans",
        env = "THROUGHLINE_RETENTION_SPANS",
        value_name = "DURATION"
    )]
    pub spans: Option<String>,
    /// How long log records are kept (`off`: forever) [default: 14d]
    #[arg(
        long = "retention-logs",
        env = "THROUGHLINE_RETENTION_LOGS",
        value_name = "DURATION"
    )]
    pub logs: Option<String>,
    /// How long integration events are kept (`off`: forever) [default: 90d]
    #[arg(
        long = "retention-events",
        env = "THROUGHLINE_RETENTION_EVENTS",
        value_name = "DURATION"
    )]
    pub events: Option<String>,
    /// How long the key index (at most as long as spans), key links and the correlator's walking records are kept (`off`: forever) [default: 400d]
    #[arg(
        long = "retention-keys",
        env = "THROUGHLINE_RETENTION_KEYS",
        value_name = "DURATION"
    )]
    pub keys: Option<String>,
    /// How long process instances (by month of start), breaches (by month due), their steps and rollups are kept (`off`: forever) [default: 400d]
    #[arg(
        long = "retention-instances",
        env = "THROUGHLINE_RETENTION_INSTANCES",
        value_name = "DURATION"
    )]
    pub instances: Option<String>,
    /// How long alert history and notification attempts are kept (`off`: forever) [default: 400d]
    #[arg(
        long = "retention-alerts",
        env = "THROUGHLINE_RETENTION_ALERTS",
        value_name = "DURATION"
    )]
    pub alerts: Option<String>,
    /// How long the per-minute and per-hour rollups (overview, systems, service map) are kept (`off`: forever) [default: 90d]
    #[arg(
        long = "retention-rollups",
        env = "THROUGHLINE_RETENTION_ROLLUPS",
        value_name = "DURATION"
    )]
    pub rollups: Option<String>,
    /// Disk guard: most bytes the database may take (e.g. 50GiB); over it the oldest partitions of the largest class are dropped first [default: none]
    #[arg(
        long = "retention-max-disk",
        env = "THROUGHLINE_RETENTION_MAX_DISK",
        value_name = "BYTES"
    )]
    pub max_disk: Option<String>,
    /// Time between retention passes (one also runs at start) [default: 1h]
    #[arg(
        long = "retention-interval",
        env = "THROUGHLINE_RETENTION_INTERVAL",
        value_name = "DURATION"
    )]
    pub interval: Option<String>,
}

/// `[retention]` as a component: its one key in the file is the section.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
pub struct RetentionArgs {
    #[command(flatten)]
    #[serde(default)]
    pub retention: RetentionKeys,
}

impl Component for RetentionArgs {
    const KEYS: &'static [&'static str] = &["retention"];
    fn or(self, file: Self) -> Self {
        let (flags, file) = (self.retention, file.retention);
        RetentionArgs {
            retention: RetentionKeys {
                spans: flags.spans.or(file.spans),
                logs: flags.logs.or(file.logs),
                events: flags.events.or(file.events),
                keys: flags.keys.or(file.keys),
                instances: flags.instances.or(file.instances),
                alerts: flags.alerts.or(file.alerts),
                rollups: flags.rollups.or(file.rollups),
                max_disk: flags.max_disk.or(file.max_disk),
                interval: flags.interval.or(file.interval),
            },
        }
    }
}

/// Shortest class limit: partitions are days, so a shorter one would drop
/// yesterday's data within hours of midnight.
const SHORTEST: Duration = Duration::from_secs(86_400);
/// Shortest time between passes.
const SHORTEST_INTERVAL: Duration = Duration::from_secs(60);

impl RetentionArgs {
    /// Defaults applied where unset, validated: what the retention worker
    /// enforces and the console shows.
    pub fn settings(self) -> Result<RetentionSettings, ConfigError> {
        let keys = self.retention;
        let default = RetentionSettings::default();
        let mut policy = default.policy;
        for (class, value) in [
            (Class::Spans, keys.spans),
            (Class::Logs, keys.logs),
            (Class::Events, keys.events),
            (Class::Keys, keys.keys),
            (Class::Instances, keys.instances),
            (Class::Alerts, keys.alerts),
            (Class::Rollups, keys.rollups),
        ] {
            if let Some(text) = value {
                policy.set(class, limit(class, &text)?);
            }
        }
        policy.max_disk = keys.max_disk.as_deref().map(bytes).transpose()?;
        let interval =
            duration_of("retention.interval", keys.interval)?.unwrap_or(default.interval);
        if interval < SHORTEST_INTERVAL {
            return Err(ConfigError::Invalid(format!(
                "retention.interval {} is too short; use at least 1m (the default is 1h)",
                shown(interval)
            )));
        }
        Ok(RetentionSettings { policy, interval })
    }
}

/// A class's limit: a duration of at least a day, or `off` (kept forever).
fn limit(class: Class, text: &str) -> Result<Option<Duration>, ConfigError> {
    let name = format!("retention.{}", class.name());
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let limit = duration_of(&name, Some(text.to_string()))?.expect("a value was given");
    if limit < SHORTEST {
        return Err(ConfigError::Invalid(format!(
            "{name} `{text}` is shorter than a day; data is dropped in whole day partitions, so use at least 1d (or `off` to keep it forever)"
        )));
    }
    Ok(Some(limit))
}

/// `53687091200`, `50GiB`, `50GB`, `512MiB`, `10 KiB`: bytes, with a binary
/// (KiB, MiB, GiB, TiB) or decimal (KB, MB, GB, TB) unit.
fn bytes(text: &str) -> Result<u64, ConfigError> {
    let wrong = || {
        ConfigError::Invalid(format!(
            "retention.max_disk `{text}` is not a size; write it like 50GiB, 500MiB or 2TB (bytes without a unit), above zero"
        ))
    };
    let trimmed = text.trim();
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let number: u64 = trimmed[..digits].parse().map_err(|_| wrong())?;
    let unit: u64 = match trimmed[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(wrong()),
    };
    match number.checked_mul(unit) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(wrong()),
    }
}

fn shown(d: Duration) -> String {
    duration::format_ns(d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::retention::Retention;

    fn load(file: &str) -> Result<RetentionSettings, ConfigError> {
        let file = super::super::ConfigFile::parse(file, "t.toml")?;
        file.merged(RetentionArgs::default())?.settings()
    }

    #[test]
    fn defaults_apply_where_nothing_is_said() {
        let settings = load("").unwrap();
        assert_eq!(settings, RetentionSettings::default());
        assert_eq!(
            settings.policy.spans,
            Some(Duration::from_secs(14 * 86_400))
        );
        assert_eq!(settings.policy.max_disk, None);
    }

    #[test]
    fn the_section_sets_each_class_the_guard_and_the_interval() {
        let settings = load(
            "[retention]\nspans = \"7d\"\nevents = \"off\"\nmax_disk = \"50GiB\"\ninterval = \"10m\"\n",
        )
        .unwrap();
        assert_eq!(settings.policy.spans, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(settings.policy.events, None);
        assert_eq!(settings.policy.logs, Retention::default().logs);
        assert_eq!(settings.policy.max_disk, Some(50 << 30));
        assert_eq!(settings.interval, Duration::from_secs(600));
    }

    #[test]
    fn a_flag_wins_over_the_file() {
        let file =
            super::super::ConfigFile::parse("[retention]\nspans = \"7d\"\n", "t.toml").unwrap();
        let flags = RetentionArgs {
            retention: RetentionKeys {
                spans: Some("3d".into()),
                ..Default::default()
            },
        };
        let settings = file.merged(flags).unwrap().settings().unwrap();
        assert_eq!(settings.policy.spans, Some(Duration::from_secs(3 * 86_400)));
    }

    #[test]
    fn mistakes_are_said_with_the_key_and_the_fix() {
        let cases = [
            (
                "[retention]\nspans = \"fortnight\"\n",
                "retention.spans `fortnight` is not a duration",
            ),
            ("[retention]\nspans = \"2h\"\n", "shorter than a day"),
            (
                "[retention]\nmax_disk = \"50 gigs\"\n",
                "retention.max_disk `50 gigs` is not a size",
            ),
            ("[retention]\nmax_disk = \"0\"\n", "above zero"),
            ("[retention]\ninterval = \"5s\"\n", "use at least 1m"),
            ("[retention]\nspanz = \"7d\"\n", "unknown field `spanz`"),
        ];
        for (file, expected) in cases {
            let error = load(file).unwrap_err().to_string();
            assert!(error.contains(expected), "{file}: {error}");
        }
    }

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(bytes("1024").unwrap(), 1024);
        assert_eq!(bytes("512MiB").unwrap(), 512 << 20);
        assert_eq!(bytes("2 TB").unwrap(), 2_000_000_000_000);
        assert!(bytes("-1GiB").is_err());
        assert!(bytes("99999999999TiB").is_err());
    }
}
