//! The nodes of a cluster, as the server at the configured URL knows them
//! (`system.clusters`, from its `remote_servers` configuration), and a
//! store on each: without ZooKeeper there is no distributed DDL, so the
//! migrator runs each statement on every node itself.
//!
//! `system.clusters` names each node's native (TCP) port, not its HTTP
//! one, and marks the configured node `is_local`; ClickHouse 18.16 marks
//! every replica of the local shard so, so among several the configured
//! node is the one on the URL's host, else (replicas sharing a host) the
//! one that sees this very query through `remote()`.
//! Every node is taken to serve HTTP at the same distance from its
//! TCP port as the configured node does: 8123 and 9000 on every node, as
//! ClickHouse ships, or any other pair used alike everywhere.

use clickhouse::Row;
use serde::Deserialize;

use crate::{Store, StoreConfig, StoreError};

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub shard: u32,
    pub replica: u32,
    pub host: String,
    pub tcp_port: u16,
    /// The HTTP interface the migrator talks to.
    pub url: String,
    /// The node of the configured URL.
    pub local: bool,
}

#[derive(Debug, Row, Deserialize)]
struct ClusterRow {
    shard_num: u32,
    replica_num: u32,
    host_name: String,
    port: u16,
    is_local: u8,
}

/// `url`'s scheme (with `://` and any user info), host and port.
fn split_url(url: &str) -> Option<(&str, &str, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let at = authority.rfind('@').map_or(0, |i| i + 1);
    let (host, port) = authority[at..].rsplit_once(':')?;
    let prefix_len = scheme.len() + 3 + at;
    Some((&url[..prefix_len], host, port.parse().ok()?))
}

/// The rows that may be the configured node: those marked `is_local`, and
/// of several, those on `url`'s host if any is.
fn local_candidates<'a>(
    url: &str,
    cluster: &str,
    rows: &'a [ClusterRow],
) -> Result<Vec<&'a ClusterRow>, StoreError> {
    let (_, host, _) = split_url(url).ok_or_else(|| {
        StoreError::Migration(format!(
            "clickhouse_url `{url}` names no port; a cluster's nodes are found from it"
        ))
    })?;
    if rows.is_empty() {
        return Err(StoreError::Migration(format!(
            "cluster `{cluster}` is not in system.clusters of the server at {url}; \
             add it to its remote_servers configuration"
        )));
    }
    let local: Vec<&ClusterRow> = rows.iter().filter(|r| r.is_local == 1).collect();
    if local.is_empty() {
        return Err(StoreError::Migration(format!(
            "the server at {url} is not a node of cluster `{cluster}`; \
             set clickhouse_url to one of its nodes"
        )));
    }
    let on_host: Vec<&ClusterRow> = local
        .iter()
        .copied()
        .filter(|r| r.host_name == host)
        .collect();
    Ok(if on_host.is_empty() { local } else { on_host })
}

/// The HTTP URLs of `rows`, each `http_port - tcp_port` of the configured
/// node (`rows[local]`) away from its TCP port, with `url`'s scheme and
/// user info.
fn node_urls(
    url: &str,
    cluster: &str,
    rows: Vec<ClusterRow>,
    local: usize,
) -> Result<Vec<Node>, StoreError> {
    let (prefix, _, http_port) = split_url(url).ok_or_else(|| {
        StoreError::Migration(format!(
            "clickhouse_url `{url}` names no port; a cluster's nodes are found from it"
        ))
    })?;
    let offset = i32::from(http_port) - i32::from(rows[local].port);
    rows.into_iter()
        .map(|r| {
            let port = u16::try_from(i32::from(r.port) + offset).map_err(|_| {
                StoreError::Migration(format!(
                    "cluster `{cluster}`: node {}:{} has no HTTP port {offset:+} from its \
                     TCP port; give every node the same pair of ports",
                    r.host_name, r.port
                ))
            })?;
            Ok(Node {
                shard: r.shard_num,
                replica: r.replica_num,
                url: format!("{prefix}{}:{port}", r.host_name),
                host: r.host_name,
                tcp_port: r.port,
                local: false,
            })
        })
        .enumerate()
        .map(|(i, node)| {
            node.map(|n| Node {
                local: i == local,
                ..n
            })
        })
        .collect()
}

impl Store {
    /// The nodes of `cluster`, in shard and replica order.
    pub async fn cluster_nodes(&self, cluster: &str) -> Result<Vec<Node>, StoreError> {
        let rows = self
            .server_query(
                "SELECT shard_num, replica_num, host_name, port, is_local \
                 FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num",
            )
            .bind(cluster)
            .fetch_all::<ClusterRow>()
            .await?;
        let url = &self.config().url;
        let candidates = local_candidates(url, cluster, &rows)?;
        let mut local = candidates[0];
        if candidates.len() > 1 {
            let mut found = None;
            for candidate in candidates {
                if self
                    .is_this_server(&candidate.host_name, candidate.port)
                    .await
                {
                    found = Some(candidate);
                    break;
                }
            }
            local = found.ok_or_else(|| {
                StoreError::Migration(format!(
                    "cluster `{cluster}`: none of the replicas of the server at {} is it; \
                     set clickhouse_url to a node of the cluster",
                    domain::redact::url(url)
                ))
            })?;
        }
        let at = rows
            .iter()
            .position(|r| std::ptr::eq(r, local))
            .expect("a candidate is a row");
        node_urls(url, cluster, rows, at)
    }

    /// Is the server at `host`:`tcp_port` the one this store talks to? It
    /// is when, asked through `remote()`, it lists this very query among
    /// the ones it runs as their initiator (a query `remote()` sends on is
    /// not an initial one).
    async fn is_this_server(&self, host: &str, tcp_port: u16) -> bool {
        static ASKED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let marker = format!(
            "throughline-which-node-{}-{}-{}",
            std::process::id(),
            ASKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            domain::now_ns()
        );
        let seen = self
            .server_query(
                "SELECT count() FROM remote(?, system.processes) \
                 WHERE is_initial_query AND query LIKE ?",
            )
            .bind(format!("{host}:{tcp_port}"))
            .bind(format!("%{marker}%"))
            .fetch_one::<u64>()
            .await;
        // One that does not answer is not the one answering this store.
        seen.is_ok_and(|n| n > 0)
    }

    /// A store on each node of this store's cluster (`None` on a single
    /// server): for what acts on the local tables (migrations, retention,
    /// the feed's pruning, storage figures).
    pub(crate) async fn node_stores(&self) -> Result<Option<Vec<Store>>, StoreError> {
        let Some(cluster) = self.cluster() else {
            return Ok(None);
        };
        let nodes = self.cluster_nodes(cluster).await?;
        Ok(Some(nodes.iter().map(|n| self.on_node(n)).collect()))
    }

    /// A store on the same database of `node`, that writes no
    /// `Distributed` table (for the migrator's statements on each node).
    pub(crate) fn on_node(&self, node: &Node) -> Store {
        Store::new(StoreConfig {
            url: node.url.clone(),
            ..self.config().clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(shard: u32, port: u16, local: bool) -> ClusterRow {
        ClusterRow {
            shard_num: shard,
            replica_num: 1,
            host_name: "127.0.0.1".into(),
            port,
            is_local: u8::from(local),
        }
    }

    #[test]
    fn each_node_serves_http_as_far_from_its_tcp_port_as_the_configured_one() {
        let nodes = node_urls(
            "http://u:p@127.0.0.1:20001",
            "plant",
            vec![row(1, 20000, true), row(2, 30000, false)],
            0,
        )
        .unwrap();
        assert_eq!(nodes[0].url, "http://u:p@127.0.0.1:20001");
        assert_eq!(nodes[1].url, "http://u:p@127.0.0.1:30001");
        assert!(nodes[0].local && !nodes[1].local);
        assert_eq!(nodes[1].shard, 2);
    }

    /// ClickHouse 18.16 marks every replica of the local shard `is_local`:
    /// the one on the URL's host is the configured node; replicas that
    /// share a host stay candidates (asked through `remote()`).
    #[test]
    fn of_several_local_replicas_the_one_on_the_urls_host_is_this_node() {
        let mut other = row(1, 9000, true);
        other.host_name = "ch1b".into();
        let mut this = row(1, 9000, true);
        this.host_name = "ch1a".into();
        let rows = [other, this, row(2, 9000, false)];
        let found = local_candidates("http://ch1a:8123", "plant", &rows).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].host_name, "ch1a");
        let shared = [row(1, 9000, true), row(1, 9002, true)];
        let found = local_candidates("http://127.0.0.1:8123", "plant", &shared).unwrap();
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn a_missing_cluster_or_a_url_outside_it_is_said() {
        let err = local_candidates("http://127.0.0.1:8123", "plant", &[]).unwrap_err();
        assert!(err.to_string().contains("remote_servers"), "{err}");
        let err =
            local_candidates("http://127.0.0.1:8123", "plant", &[row(1, 9000, false)]).unwrap_err();
        assert!(
            err.to_string().contains("not a node of cluster `plant`"),
            "{err}"
        );
    }
}
