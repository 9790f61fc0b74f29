//! How every listener treats slow, idle and too many clients (the
//! collector's two and the console's).

use super::{component_args, duration_of, ConfigError};
use collector::connections::ConnectionLimits;

component_args! {
    /// Header, body and idle timeouts and the cap of connections.
    pub struct ListenerArgs {
        /// Time a client has to send a whole request head; a silent or slow client is disconnected after it [default: 10s]
        #[arg(long, env = "THROUGHLINE_HEADER_READ_TIMEOUT", value_name = "DURATION")]
        pub header_read_timeout: Option<String>,
        /// Time a request body may take to arrive whole (408 / DEADLINE_EXCEEDED after it) [default: 30s]
        #[arg(long, env = "THROUGHLINE_BODY_READ_TIMEOUT", value_name = "DURATION")]
        pub body_read_timeout: Option<String>,
        /// Time a connection may stay open without a request [default: 60s]
        #[arg(long, env = "THROUGHLINE_IDLE_TIMEOUT", value_name = "DURATION")]
        pub idle_timeout: Option<String>,
        /// Connections each listener holds at once; at the cap the one idle the longest is closed [default: 512, less where half the open-file limit does not allow it]
        #[arg(long, env = "THROUGHLINE_MAX_CONNECTIONS", value_name = "N")]
        pub max_connections: Option<usize>,
    }
}

impl ListenerArgs {
    /// Defaults applied and checked; each listener's cap is fixed at start
    /// against the open-file limit (`ConnectionLimits::for_listeners`).
    pub fn settings(self) -> Result<ConnectionLimits, ConfigError> {
        let defaults = ConnectionLimits::default();
        let limits = ConnectionLimits {
            header_read_timeout: duration_of("header_read_timeout", self.header_read_timeout)?
                .unwrap_or(defaults.header_read_timeout),
            body_read_timeout: duration_of("body_read_timeout", self.body_read_timeout)?
                .unwrap_or(defaults.body_read_timeout),
            idle_timeout: duration_of("idle_timeout", self.idle_timeout)?
                .unwrap_or(defaults.idle_timeout),
            max_connections: self.max_connections,
        };
        if limits.max_connections == Some(0) {
            return Err(ConfigError::Invalid(
                "max_connections 0 would refuse every client; use at least 1 (default: 512)".into(),
            ));
        }
        Ok(limits)
    }
}
