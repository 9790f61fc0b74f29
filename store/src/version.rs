//! The server's version, asked once (`SELECT version()`) and remembered, so
//! later code can choose a feature where it exists (`supports`) and keep the
//! 18.16 path where it does not: migrations do, through `{{if FEATURE: ...}}`
//! (`store::template`); every query runs on 18.16 and on current releases
//! alike. Operators see it on `/admin`,
//! `/readyz` and `/api/v1/storage`, and `throughline` logs it at start.

use std::fmt;

use crate::timeout::Statement;
use crate::{Store, StoreError};

/// A ClickHouse release: `major.minor` (18.16, 24.8, 26.9); the patch and
/// build numbers choose no feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
}

/// Something a release may have that 18.16 does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `DateTime64` columns.
    DateTime64,
    /// Column `CODEC(...)`: `Delta`, `ZSTD`, `T64` (19.10 on).
    Codecs,
    /// Data-skipping indexes (`bloom_filter`, `tokenbf_v1`).
    SkipIndexes,
    /// Table `TTL` with `ttl_only_drop_parts`.
    TtlDropParts,
    /// `LowCardinality` without the experimental setting.
    LowCardinality,
    /// `min_compress_block_size` as a table setting (21.1 on); before, the
    /// server's profile sets it for every table.
    TableCompressBlocks,
}

impl Feature {
    pub const ALL: [Feature; 6] = [
        Feature::DateTime64,
        Feature::Codecs,
        Feature::SkipIndexes,
        Feature::TtlDropParts,
        Feature::LowCardinality,
        Feature::TableCompressBlocks,
    ];

    /// Its name in a migration's `{{if NAME: ...}}` (`store::template`).
    pub const fn name(self) -> &'static str {
        match self {
            Feature::DateTime64 => "datetime64",
            Feature::Codecs => "codecs",
            Feature::SkipIndexes => "skip_indexes",
            Feature::TtlDropParts => "ttl_drop_parts",
            Feature::LowCardinality => "low_cardinality",
            Feature::TableCompressBlocks => "table_compress_blocks",
        }
    }

    /// The feature called `name` ([`Feature::name`]).
    pub fn parse(name: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The first release that has it (as documented in ClickHouse's
    /// changelog; generally available there, not experimental).
    pub const fn since(self) -> ServerVersion {
        let (major, minor) = match self {
            Feature::LowCardinality => (19, 3),
            Feature::TableCompressBlocks => (21, 1),
            Feature::Codecs => (19, 11),
            Feature::TtlDropParts => (19, 16),
            Feature::DateTime64 => (20, 1),
            Feature::SkipIndexes => (20, 3),
        };
        ServerVersion { major, minor }
    }
}

impl ServerVersion {
    /// Debian's, the one the tests run against.
    pub const OLDEST: ServerVersion = ServerVersion {
        major: 18,
        minor: 16,
    };

    /// `18.16.1`, `26.9.2.1`: the first two numbers; `None` if the text
    /// does not start with them.
    pub fn parse(text: &str) -> Option<ServerVersion> {
        let mut numbers = text.trim().split('.');
        let major = numbers.next()?.parse().ok()?;
        let minor = numbers.next()?.parse().ok()?;
        Some(ServerVersion { major, minor })
    }

    /// Whether this release has `feature`.
    pub fn supports(self, feature: Feature) -> bool {
        self >= feature.since()
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The version as the server says it (`18.16.1`), and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub text: String,
    pub version: ServerVersion,
}

impl Store {
    /// The server's version: asked once (within the health check's
    /// limit), then remembered for the life of this handle and its clones.
    pub async fn server_version(&self) -> Result<Detected, StoreError> {
        if let Some(known) = self.version.get() {
            return Ok(known.clone());
        }
        let text = Statement::new(
            self.server.query("SELECT version()"),
            self.config.timeouts.health(),
        )
        .fetch_one::<String>()
        .await?;
        let version = ServerVersion::parse(&text).ok_or_else(|| {
            StoreError::Migration(format!(
                "ClickHouse answered `{text}` for its version, which is not a release number"
            ))
        })?;
        let detected = Detected { text, version };
        Ok(self.version.get_or_init(|| detected).clone())
    }

    /// The version if it was asked already (never contacts the server).
    pub fn known_server_version(&self) -> Option<Detected> {
        self.version.get().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_what_servers_say() {
        assert_eq!(
            ServerVersion::parse("18.16.1"),
            Some(ServerVersion {
                major: 18,
                minor: 16
            })
        );
        assert_eq!(
            ServerVersion::parse("26.9.2.1").map(|v| v.to_string()),
            Some("26.9".into())
        );
        assert_eq!(ServerVersion::parse("unknown"), None);
        assert_eq!(ServerVersion::parse("26"), None);
    }

    #[test]
    fn the_oldest_release_has_none_of_the_new_features_and_current_ones_all() {
        let current = ServerVersion::parse("26.9.2.1").unwrap();
        for feature in Feature::ALL {
            assert!(!ServerVersion::OLDEST.supports(feature), "{feature:?}");
            assert!(current.supports(feature), "{feature:?}");
        }
        let v19_11 = ServerVersion::parse("19.11.3").unwrap();
        assert!(v19_11.supports(Feature::Codecs));
        assert!(!v19_11.supports(Feature::DateTime64));
    }
}
