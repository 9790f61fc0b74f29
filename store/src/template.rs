//! Migration templates: the SQL in `sql/` names no table engine and no
//! `ON CLUSTER`; placeholders stand for them, so that one migration serves a
//! single server and a cluster. Version gates let one migration use a
//! feature of current releases and keep the 18.16 path.
//!
//! - `{{on_cluster}}` is empty on a single server, and on a cluster without
//!   distributed DDL (the only cluster rendering so far: the migrator runs
//!   each statement on every node, `store::cluster`).
//! - `{{engine E | shard S}}` is the engine `E` on a single server; `S` is the
//!   sharding key a cluster deployment puts behind its `Distributed` table
//!   (one trace's spans, one key's index rows on one shard); on a cluster
//!   the table becomes `<table>_local` of engine `E` on every node plus
//!   `<table>`, `Distributed` over them by `S` (`store::cluster::render`).
//! - `{{if F: NEW}}` is `NEW` on a server that has feature `F`
//!   ([`Feature::name`]: `codecs`, `skip_indexes`, ...; the release it
//!   came in is [`Feature::since`]) and nothing on one that lacks it;
//!   `{{if F: NEW | else: OLD}}` is `OLD` there. `NEW` and `OLD` may hold
//!   placeholders themselves. A statement that renders to nothing is not
//!   sent.

use crate::version::{Feature, ServerVersion};

/// A placeholder the renderer does not know, or one left open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

impl TemplateError {
    pub(crate) fn new(text: String) -> Self {
        Self(text)
    }
}

/// The separator of a gate's two renderings.
const ELSE: &str = "| else:";

/// Renders a migration for a single ClickHouse server of `version`.
pub fn render_single(sql: &str, version: ServerVersion) -> Result<String, TemplateError> {
    render_with_shard(sql, version, &mut None)
}

/// Renders `sql` as [`render_single`] does, and puts the sharding key of
/// its `{{engine E | shard S}}` (the last, if several) in `shard`: what a
/// cluster deployment needs besides (`store::cluster`).
pub(crate) fn render_with_shard(
    sql: &str,
    version: ServerVersion,
    shard: &mut Option<String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = closing(after)
            .ok_or_else(|| TemplateError("a `{{` placeholder is not closed with `}}`".into()))?;
        let inner = after[..end].trim();
        if inner == "on_cluster" {
            // Nothing on a single server.
        } else if let Some(gate) = inner.strip_prefix("if ") {
            out.push_str(&render_gate(gate, version, shard)?);
        } else if let Some(spec) = inner.strip_prefix("engine ") {
            let (engine, shard_key) = spec.split_once(" | shard ").ok_or_else(|| {
                TemplateError(format!(
                    "`{{{{{inner}}}}}` must name a sharding key: `{{{{engine E | shard S}}}}`"
                ))
            })?;
            if shard_key.trim().is_empty() {
                return Err(TemplateError(format!(
                    "`{{{{{inner}}}}}` has an empty sharding key"
                )));
            }
            out.push_str(engine.trim());
            *shard = Some(shard_key.trim().to_string());
        } else {
            return Err(TemplateError(format!(
                "unknown placeholder `{{{{{inner}}}}}`; known: on_cluster, \
                 engine E | shard S, if FEATURE: NEW | else: OLD"
            )));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `F: NEW` or `F: NEW | else: OLD` (the text after `{{if `), rendered.
fn render_gate(
    gate: &str,
    version: ServerVersion,
    shard: &mut Option<String>,
) -> Result<String, TemplateError> {
    let (name, body) = gate.split_once(':').ok_or_else(|| {
        TemplateError(format!(
            "`{{{{if {gate}}}}}` names no feature: `{{{{if FEATURE: NEW | else: OLD}}}}`"
        ))
    })?;
    let feature = Feature::parse(name.trim()).ok_or_else(|| {
        TemplateError(format!(
            "`{{{{if {gate}}}}}`: unknown feature `{}`; known: {}",
            name.trim(),
            Feature::ALL.map(Feature::name).join(", ")
        ))
    })?;
    let (new, old) = match top_level(body, ELSE) {
        Some(at) => (&body[..at], &body[at + ELSE.len()..]),
        None => (body, ""),
    };
    let chosen = if version.supports(feature) { new } else { old };
    render_with_shard(chosen.trim(), version, shard)
}

/// Where the `}}` closing a placeholder whose `{{` came just before `text`
/// is, counting the placeholders nested in it.
fn closing(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with("{{") {
            depth += 1;
            i += 2;
        } else if text[i..].starts_with("}}") {
            if depth == 0 {
                return Some(i);
            }
            depth -= 1;
            i += 2;
        } else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    None
}

/// Where `needle` first occurs in `text` outside nested placeholders.
fn top_level(text: &str, needle: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < text.len() {
        let here = &text[i..];
        if depth == 0 && here.starts_with(needle) {
            return Some(i);
        }
        if here.starts_with("{{") {
            depth += 1;
            i += 2;
        } else if here.starts_with("}}") {
            depth = depth.saturating_sub(1);
            i += 2;
        } else {
            i += here.chars().next().map_or(1, char::len_utf8);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLDEST: ServerVersion = ServerVersion::OLDEST;
    const CURRENT: ServerVersion = ServerVersion {
        major: 26,
        minor: 9,
    };

    #[test]
    fn single_server_drops_cluster_and_keeps_engine() {
        let sql = "CREATE TABLE t {{on_cluster}} (a UInt8) ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(a)}} ORDER BY a";
        assert_eq!(
            render_single(sql, OLDEST).unwrap(),
            "CREATE TABLE t  (a UInt8) ENGINE = ReplacingMergeTree() ORDER BY a"
        );
    }

    #[test]
    fn engine_without_sharding_key_is_refused() {
        let err = render_single("ENGINE = {{engine MergeTree()}}", OLDEST).unwrap_err();
        assert!(
            err.to_string().contains("must name a sharding key"),
            "{err}"
        );
    }

    #[test]
    fn unknown_or_open_placeholders_are_refused() {
        assert!(render_single("{{database}}", OLDEST)
            .unwrap_err()
            .to_string()
            .contains("unknown placeholder"));
        assert!(render_single("{{on_cluster", OLDEST)
            .unwrap_err()
            .to_string()
            .contains("not closed"));
        assert!(render_single("{{if codecs: CODEC(ZSTD(1))", OLDEST)
            .unwrap_err()
            .to_string()
            .contains("not closed"));
    }

    #[test]
    fn a_gate_renders_the_new_text_where_the_feature_exists_and_the_old_elsewhere() {
        let sql = "a UInt64 {{if codecs: CODEC(T64, ZSTD(1))}},\n\
                   b {{if low_cardinality: LowCardinality(String) | else: String}}";
        assert_eq!(
            render_single(sql, CURRENT).unwrap(),
            "a UInt64 CODEC(T64, ZSTD(1)),\nb LowCardinality(String)"
        );
        assert_eq!(render_single(sql, OLDEST).unwrap(), "a UInt64 ,\nb String");
        // 19.11 has codecs; LowCardinality came earlier (19.3).
        let v19_11 = ServerVersion::parse("19.11").unwrap();
        assert_eq!(
            render_single(sql, v19_11).unwrap(),
            "a UInt64 CODEC(T64, ZSTD(1)),\nb LowCardinality(String)"
        );
    }

    #[test]
    fn a_gate_may_hold_placeholders_and_render_a_whole_statement_or_nothing() {
        let sql = "{{if skip_indexes: ALTER TABLE t {{on_cluster}} ADD INDEX i x TYPE set(100) GRANULARITY 1}}";
        assert_eq!(
            render_single(sql, CURRENT).unwrap(),
            "ALTER TABLE t  ADD INDEX i x TYPE set(100) GRANULARITY 1"
        );
        assert_eq!(render_single(sql, OLDEST).unwrap(), "");
    }

    #[test]
    fn a_gate_must_name_a_known_feature() {
        let err = render_single("{{if compression: CODEC(ZSTD)}}", CURRENT).unwrap_err();
        assert!(
            err.to_string().contains("unknown feature `compression`"),
            "{err}"
        );
        assert!(err.to_string().contains("codecs"), "{err}");
        let err = render_single("{{if codecs}}", CURRENT).unwrap_err();
        assert!(err.to_string().contains("names no feature"), "{err}");
    }
}
