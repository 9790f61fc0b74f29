//! Whether each node of the cluster answers, for `/readyz` and `/admin`:
//! the nodes from `system.clusters` of the configured node, each pinged at
//! once with the health check's timeout, so the answer takes one timeout
//! at most however many nodes there are.

use tokio::task::JoinSet;

use super::Node;
use crate::{Store, StoreError};

/// One node and whether it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHealth {
    pub node: Node,
    /// `None`: it answered; else why not (its address without user info).
    pub problem: Option<String>,
}

impl Store {
    /// Every node of this store's cluster and whether it answers a `SELECT
    /// 1` within the health check's timeout; `None` on a single server. An
    /// error: the configured node could not list them.
    pub async fn cluster_health(&self) -> Result<Option<Vec<NodeHealth>>, StoreError> {
        let Some(cluster) = self.cluster() else {
            return Ok(None);
        };
        let nodes = self.cluster_nodes(cluster).await?;
        let mut pings = JoinSet::new();
        for (i, node) in nodes.iter().enumerate() {
            let store = self.on_node(node);
            pings.spawn(async move { (i, store.ping().await) });
        }
        let mut problems: Vec<Option<String>> = vec![None; nodes.len()];
        while let Some(done) = pings.join_next().await {
            let (i, answer) = done.map_err(|e| StoreError::Migration(e.to_string()))?;
            problems[i] = answer.err().map(|e| {
                format!(
                    "{} does not answer: {e}",
                    domain::redact::url(&nodes[i].url)
                )
            });
        }
        Ok(Some(
            nodes
                .into_iter()
                .zip(problems)
                .map(|(node, problem)| NodeHealth { node, problem })
                .collect(),
        ))
    }
}
