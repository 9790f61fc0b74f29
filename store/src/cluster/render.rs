//! A migration statement rendered for a cluster: what runs against the
//! local tables of every node, and what against the `Distributed` ones.
//!
//! Naming: a table `t` of a migration is `t_local` (the migration's
//! engine, on every node) plus `t`, `Distributed` over the `t_local` of
//! every shard by the migration's sharding key. Every query of the store
//! keeps reading and writing `t`; only the migrator names `t_local`.
//!
//! - `CREATE TABLE t ... ENGINE = {{engine E | shard S}}` makes `t_local`
//!   of engine `E`, then `t AS t_local ENGINE = Distributed(cluster,
//!   database, t_local, S)`.
//! - `CREATE MATERIALIZED VIEW v TO t AS SELECT ... FROM s` makes `v` on
//!   every node, `TO t_local`, `FROM s_local`: an insert through `s`
//!   lands in some node's `s_local`, whose view feeds that node's
//!   `t_local`. A view has no `Distributed` peer.
//! - `ALTER TABLE t ...` alters `t_local`; a change of columns (`ADD`,
//!   `DROP`, `MODIFY COLUMN` without a codec) alters `t` too, so that it
//!   keeps `t_local`'s columns. Codecs and data-skipping indexes concern
//!   storage, which `t` has none of.

use crate::template::{render_with_shard, TemplateError};
use crate::version::ServerVersion;

/// The suffix of the local table under each `Distributed` one.
pub const LOCAL: &str = "_local";

/// One statement for a cluster: each part runs on every node, every
/// node's `local` before any node's `distributed`. Either may be missing
/// (a view has no distributed part; a gate may render to nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterStatement {
    pub local: Option<String>,
    pub distributed: Option<String>,
}

/// Renders one migration statement for `cluster`, the database being
/// `database` (a plain name, checked by the configuration); `replicated`:
/// each local table is the `Replicated` variant of its engine (see
/// [`replicated_engine`]).
pub fn render_cluster(
    sql: &str,
    version: ServerVersion,
    cluster: &str,
    database: &str,
    replicated: bool,
) -> Result<ClusterStatement, TemplateError> {
    let mut shard = None;
    let text = render_with_shard(sql, version, &mut shard)?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(ClusterStatement::default());
    }
    let refuse = |what: &str| {
        TemplateError::new(format!(
            "cannot render for a cluster: {what}; a migration may CREATE TABLE, \
             CREATE MATERIALIZED VIEW or ALTER TABLE: `{}`",
            text.lines().next().unwrap_or("")
        ))
    };
    if text.starts_with("CREATE TABLE") {
        let (local, name) = suffix_after(text, "EXISTS")
            .or_else(|| suffix_after(text, "TABLE"))
            .ok_or_else(|| refuse("no table name"))?;
        let shard = shard.ok_or_else(|| refuse("a table without `{{engine E | shard S}}`"))?;
        let distributed = format!(
            "CREATE TABLE IF NOT EXISTS {name} AS {name}{LOCAL} \
             ENGINE = Distributed('{cluster}', '{database}', '{name}{LOCAL}', {shard})"
        );
        let local = if replicated {
            replicated_engine(&local, &format!("{name}{LOCAL}"), database)
                .ok_or_else(|| refuse("no `ENGINE = E(...)` to replicate"))?
        } else {
            local
        };
        Ok(ClusterStatement {
            local: Some(local),
            distributed: Some(distributed),
        })
    } else if text.starts_with("CREATE MATERIALIZED VIEW") {
        let (to, _) = suffix_after(text, "TO").ok_or_else(|| refuse("a view without TO"))?;
        let (local, _) = suffix_after(&to, "FROM").ok_or_else(|| refuse("a view without FROM"))?;
        Ok(ClusterStatement {
            local: Some(local),
            distributed: None,
        })
    } else if text.starts_with("ALTER TABLE") {
        let (local, _) = suffix_after(text, "TABLE").ok_or_else(|| refuse("no table name"))?;
        let columns = ["ADD COLUMN", "DROP COLUMN", "MODIFY COLUMN"]
            .iter()
            .any(|c| text.contains(c));
        let storage = text.contains("CODEC") || text.contains("INDEX");
        Ok(ClusterStatement {
            local: Some(local),
            distributed: (columns && !storage).then(|| text.to_string()),
        })
    } else {
        Err(refuse("an unknown kind of statement"))
    }
}

/// `create` (a local table's `CREATE TABLE`) with its `ENGINE = E(args)`
/// made `ReplicatedE('/clickhouse/tables/{shard}/<database>/<table>',
/// '{replica}', args)`: the replicas of one shard share a path in
/// ZooKeeper, each named by its `{replica}` macro; every node's `{shard}`
/// and `{replica}` macros come from its server configuration.
fn replicated_engine(create: &str, table: &str, database: &str) -> Option<String> {
    let at = create.find("ENGINE")? + "ENGINE".len();
    let rest = create[at..].trim_start().strip_prefix('=')?.trim_start();
    let name_at = create.len() - rest.len();
    let open = rest.find('(')?;
    let engine = &rest[..open];
    if engine.is_empty() || !engine.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let close = open + rest[open..].find(')')?;
    let args = rest[open + 1..close].trim();
    let path = format!("'/clickhouse/tables/{{shard}}/{database}/{table}', '{{replica}}'");
    let args = if args.is_empty() {
        path
    } else {
        format!("{path}, {args}")
    };
    Some(format!(
        "{}Replicated{engine}({args}){}",
        &create[..name_at],
        &rest[close + 1..]
    ))
}

/// `text` with [`LOCAL`] after the name that follows the first whole word
/// `word`, and that name.
fn suffix_after(text: &str, word: &str) -> Option<(String, String)> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut from = 0;
    let at = loop {
        let at = from + text[from..].find(word)?;
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
            break at + word.len();
        }
        from = at + word.len();
    };
    let rest = &text[at..];
    let start = at + (rest.len() - rest.trim_start().len());
    let len = text[start..]
        .find(|c: char| !is_ident(c))
        .unwrap_or(text.len() - start);
    if len == 0 {
        return None;
    }
    let name = text[start..start + len].to_string();
    let out = format!("{}{LOCAL}{}", &text[..start + len], &text[start + len..]);
    Some((out, name))
}

#[cfg(test)]
mod tests;
