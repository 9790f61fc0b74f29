//! TLS: one certificate for every listener of the process (the collector's
//! two and the console). Only the subcommands that listen read its files.

use std::path::PathBuf;

use collector::tls::Tls;

use super::{component_args, ConfigError};

component_args! {
    /// The certificate and key every listener serves.
    pub struct TlsArgs {
        /// TLS certificate (PEM: the server certificate, then any intermediates); with --tls-key, every listener (OTLP/gRPC, OTLP/HTTP, console) serves TLS
        #[arg(long, env = "THROUGHLINE_TLS_CERT", value_name = "FILE")]
        pub tls_cert: Option<PathBuf>,
        /// TLS private key of the certificate (PEM: PKCS#8, PKCS#1 or SEC1)
        #[arg(long, env = "THROUGHLINE_TLS_KEY", value_name = "FILE")]
        pub tls_key: Option<PathBuf>,
    }
}

impl TlsArgs {
    /// Reads and checks both files; `None`: plain HTTP and gRPC.
    pub fn load(self) -> Result<Option<Tls>, ConfigError> {
        match (self.tls_cert, self.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Tls::load(&cert, &key)
                .map(Some)
                .map_err(|e| ConfigError::Invalid(e.to_string())),
            (Some(_), None) | (None, Some(_)) => Err(ConfigError::Invalid(
                "tls_cert and tls_key go together: give both (the certificate and its private key, PEM files) to serve TLS, or neither".into(),
            )),
        }
    }
}
