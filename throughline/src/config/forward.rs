//! Forwarding: an edge collector (one per plant) that sends what it accepts
//! to a central collector instead of ClickHouse. Only `throughline
//! collector` reads these keys.

use collector::forward::ForwardSettings;
use collector::spool::WhenFull;

use super::{component_args, ConfigError};

/// The edge collector's spool limit when `spool_max_bytes` is not set: a
/// plant's WAN may be down for days.
pub const EDGE_SPOOL_MAX_BYTES: u64 = 10 << 30;

component_args! {
    /// Where an edge collector forwards, with which token, for which plant.
    pub struct ForwardArgs {
        /// Forward to this central collector's OTLP/HTTP address (https://central:4318) instead of writing to ClickHouse; no ClickHouse is needed then, and spool_max_bytes defaults to 10 GiB
        #[arg(long, env = "THROUGHLINE_FORWARD_TO", value_name = "URL")]
        pub forward_to: Option<String>,
        /// The central collector's connector token, sent as `Authorization: Bearer`
        #[arg(
            long,
            env = "THROUGHLINE_FORWARD_TOKEN",
            value_name = "TOKEN",
            hide_env_values = true
        )]
        pub forward_token: Option<String>,
        /// A PEM file of certificates to trust for the central collector's TLS besides the public roots (its private CA, or its self-signed certificate)
        #[arg(long, env = "THROUGHLINE_FORWARD_CA", value_name = "FILE")]
        pub forward_ca: Option<std::path::PathBuf>,
        /// This plant's name: the resource attribute `plant.id` and the CloudEvents extension `plant` of every forwarded record that names none
        #[arg(long, env = "THROUGHLINE_PLANT", value_name = "NAME")]
        pub plant: Option<String>,
        /// What the edge does when its spool is full: `refuse` new requests (429 / RESOURCE_EXHAUSTED; nothing acknowledged is dropped), or `drop_oldest` records while central cannot be reached (counted in throughline_forward_dropped_total) [default: refuse]
        #[arg(long, env = "THROUGHLINE_SPOOL_WHEN_FULL", value_name = "refuse|drop_oldest")]
        pub spool_when_full: Option<String>,
        /// Time between the edge's reports of its backlog to central (with `plant`); central shows the link down after plant_link_timeout without one [default: 10s]
        #[arg(long, env = "THROUGHLINE_FORWARD_HEARTBEAT", value_name = "DURATION")]
        pub forward_heartbeat: Option<String>,
    }
}

impl ForwardArgs {
    /// `None` without `forward_to`; else the forwarder's settings, checked.
    pub fn settings(self) -> Result<Option<ForwardSettings>, ConfigError> {
        let Some(url) = self.forward_to else {
            for (key, set) in [
                ("forward_token", self.forward_token.is_some()),
                ("forward_ca", self.forward_ca.is_some()),
                ("plant", self.plant.is_some()),
                ("spool_when_full", self.spool_when_full.is_some()),
                ("forward_heartbeat", self.forward_heartbeat.is_some()),
            ] {
                if set {
                    return Err(ConfigError::Invalid(format!(
                        "{key} is set but forward_to is not; {key} is for an edge collector that forwards to a central one (forward_to = \"https://central:4318\")"
                    )));
                }
            }
            return Ok(None);
        };
        let url = url.trim().to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "forward_to {:?} is not an http:// or https:// address; write the central collector's OTLP/HTTP address, like https://central:4318",
                domain::redact::url(&url)
            )));
        }
        if let Some(plant) = &self.plant {
            if plant.trim().is_empty() {
                return Err(ConfigError::Invalid(
                    "plant is empty; name the plant, like plant = \"hamburg\"".into(),
                ));
            }
            domain::text::check_printable(plant)
                .map_err(|e| ConfigError::Invalid(format!("plant {e}")))?;
        }
        let when_full = match self.spool_when_full.as_deref().map(str::trim) {
            None | Some("refuse") => WhenFull::Refuse,
            Some("drop_oldest") => WhenFull::DropOldest,
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "spool_when_full {other:?} is not a policy; write \"refuse\" (the default: 429 while full, nothing dropped) or \"drop_oldest\""
                )))
            }
        };
        let mut settings = ForwardSettings::new(url);
        settings.when_full = when_full;
        if let Some(every) = super::duration_of("forward_heartbeat", self.forward_heartbeat)? {
            settings.heartbeat = every;
        }
        if let Some(path) = &self.forward_ca {
            let pem = std::fs::read(path).map_err(|e| {
                ConfigError::Invalid(format!(
                    "forward_ca {}: {e}; name the PEM file of the certificate central's TLS certificate chains to",
                    path.display()
                ))
            })?;
            settings.ca_pem = Some(pem);
        }
        settings.token = self.forward_token.filter(|t| !t.is_empty());
        settings.plant = self.plant;
        Ok(Some(settings))
    }
}
