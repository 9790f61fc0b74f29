//! Migration templates: the SQL in `sql/` names no table engine and no
//! `ON CLUSTER`; placeholders stand for them, so that one migration serves a
//! single server and a cluster.
//!
//! - `{{on_cluster}}` is empty on a single server.
//! - `{{engine E | shard S}}` is the engine `E` on a single server; `S` is the
//!   sharding key a cluster deployment puts behind its `Distributed` table
//!   (one trace's spans, one key's index rows on one shard).

/// A placeholder the renderer does not know, or one left open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

/// Renders a migration for a single ClickHouse server.
pub fn render_single(sql: &str) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError("a `{{` placeholder is not closed with `}}`".into()))?;
        let inner = after[..end].trim();
        if inner == "on_cluster" {
            // Nothing on a single server.
        } else if let Some(spec) = inner.strip_prefix("engine ") {
            let (engine, shard) = spec.split_once(" | shard ").ok_or_else(|| {
                TemplateError(format!(
                    "`{{{{{inner}}}}}` must name a sharding key: `{{{{engine E | shard S}}}}`"
                ))
            })?;
            if shard.trim().is_empty() {
                return Err(TemplateError(format!(
                    "`{{{{{inner}}}}}` has an empty sharding key"
                )));
            }
            out.push_str(engine.trim());
        } else {
            return Err(TemplateError(format!(
                "unknown placeholder `{{{{{inner}}}}}`; known: on_cluster, engine E | shard S"
            )));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_server_drops_cluster_and_keeps_engine() {
        let sql = "CREATE TABLE t {{on_cluster}} (a UInt8) ENGINE = {{engine ReplacingMergeTree() | shard cityHash64(a)}} ORDER BY a";
        assert_eq!(
            render_single(sql).unwrap(),
            "CREATE TABLE t  (a UInt8) ENGINE = ReplacingMergeTree() ORDER BY a"
        );
    }

    #[test]
    fn engine_without_sharding_key_is_refused() {
        let err = render_single("ENGINE = {{engine MergeTree()}}").unwrap_err();
        assert!(
            err.to_string().contains("must name a sharding key"),
            "{err}"
        );
    }

    #[test]
    fn unknown_or_open_placeholders_are_refused() {
        assert!(render_single("{{database}}")
            .unwrap_err()
            .to_string()
            .contains("unknown placeholder"));
        assert!(render_single("{{on_cluster")
            .unwrap_err()
            .to_string()
            .contains("not closed"));
    }
}
