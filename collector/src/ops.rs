//! `/healthz`, `/readyz` and `/metrics`, served beside every listener that
//! faces operators (the OTLP/HTTP address and the console address).
//!
//! `/readyz` is open, so it says only what is wrong in general terms ("ClickHouse is
//! not reachable"); the detail (ClickHouse's address without user info, its
//! error) goes to the log, once per change, and to the console's `/admin`.
//! A ready answer names the server's release (`clickhouse_version`, asked
//! once) so an operator sees which ClickHouse is behind it. On a cluster
//! it lists the nodes (shard, replica, `up` or `down`; no address) and a
//! node that does not answer makes it "degraded", not failed: the other
//! shards still serve (`/admin` names the node and its error). The
//! console's answer lists the correlator partitions, if several share the
//! work, and one that stopped makes it "degraded" too.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use std::sync::{Arc, Mutex};

use crate::metrics::Metrics;
use crate::spool::Spool;
use store::cluster::NodeHealth;
use store::correlation::partitions::{PartitionHealth, SILENT_AFTER};
use store::{Store, StoreError};

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// What the operator endpoints read.
#[derive(Clone)]
struct OpsState {
    store: Store,
    metrics: Arc<Metrics>,
    /// The collector's spool; `None` for the console.
    spool: Option<Spool>,
    /// The last problem written to the log, so a probe every few seconds
    /// logs a problem once, and its end.
    logged: Arc<Mutex<Option<String>>>,
}

/// Why ClickHouse cannot serve this process: a reason anyone may read, and
/// the detail (ClickHouse's address without user info, and its error) for
/// the log and the admin page only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// For the open `/readyz`: no address, no error text.
    pub reason: String,
    /// For the log and `/admin`: URLs without their user info.
    pub detail: String,
}

/// Asks ClickHouse whether it answers and is migrated (`SELECT` of the
/// applied migrations): `None` when it is.
pub async fn clickhouse_problem(store: &Store) -> Option<Problem> {
    let at = format!(
        "ClickHouse at {} (database `{}`)",
        domain::redact::url(&store.config().url),
        store.config().database
    );
    match store.migrations_current().await {
        Ok(true) => None,
        Ok(false) => Some(Problem {
            reason:
                "ClickHouse is reachable but migrations are not applied; run `throughline migrate`"
                    .into(),
            detail: format!(
                "{at} is reachable but migrations are not applied; run `throughline migrate`"
            ),
        }),
        Err(e) => Some(Problem {
            reason: "ClickHouse is not reachable".into(),
            detail: format!("{at} is not usable: {e}"),
        }),
    }
}

/// Logs `detail` when it differs from what was logged last, and the end of
/// a problem once.
fn log_change(logged: &Mutex<Option<String>>, detail: Option<&str>) {
    let mut logged = logged.lock().expect("readiness log lock");
    if logged.as_deref() == detail {
        return;
    }
    match detail {
        Some(detail) => tracing::warn!(problem = %detail, "not ready"),
        None => tracing::info!("ready again"),
    }
    *logged = detail.map(str::to_string);
}

async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    let OpsState {
        store,
        metrics,
        spool,
        logged,
    } = state;
    if let Some(spool) = spool {
        return collector_readiness(&store, &metrics, &spool, &logged).await;
    }
    let problem = clickhouse_problem(&store).await;
    log_change(&logged, problem.as_ref().map(|p| p.detail.as_str()));
    let answer = match problem {
        None => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Some(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "not ready", "reason": problem.reason })),
        ),
    };
    let answer = with_nodes(with_version(answer, &store).await, &store).await;
    with_partitions(answer, &store).await
}

/// With correlator partitions (`--correlator-partition K/N`), a ready or
/// degraded answer with each one's status: one that stopped writing its
/// watermark (`store::correlation::partitions`) makes it "degraded" (still
/// 200: collecting and reading go on; that partition's instances wait).
async fn with_partitions(
    answer: (StatusCode, Json<serde_json::Value>),
    store: &Store,
) -> (StatusCode, Json<serde_json::Value>) {
    if answer.1["status"] == "not ready" {
        return answer;
    }
    partitions_answer(
        answer,
        store.correlator_partitions(domain::now_ns(), None).await,
    )
}

fn partitions_answer(
    (status, Json(mut body)): (StatusCode, Json<serde_json::Value>),
    partitions: Result<Vec<PartitionHealth>, StoreError>,
) -> (StatusCode, Json<serde_json::Value>) {
    // Unreadable: the ClickHouse answer above says why, if anything.
    let Ok(partitions) = partitions else {
        return (status, Json(body));
    };
    if partitions.is_empty() {
        return (status, Json(body));
    }
    body["correlator_partitions"] = partitions
        .iter()
        .map(|p| {
            serde_json::json!({
                "partition": p.partition,
                "status": if p.down { "down" } else { "up" },
            })
        })
        .collect();
    let down: Vec<&str> = partitions
        .iter()
        .filter(|p| p.down)
        .map(|p| p.partition.as_str())
        .collect();
    if !down.is_empty() && body["status"] == "ready" {
        body["status"] = "degraded".into();
        body["reason"] = format!(
            "correlator partition {} wrote no watermark for over {}s (stopped, or never started); \
             its instances and breaches are not evaluated meanwhile",
            down.join(", "),
            SILENT_AFTER.as_secs()
        )
        .into();
    }
    (status, Json(body))
}

/// On a cluster, a ready or degraded answer with its nodes' health
/// (`cluster_answer`).
async fn with_nodes(
    answer: (StatusCode, Json<serde_json::Value>),
    store: &Store,
) -> (StatusCode, Json<serde_json::Value>) {
    if store.cluster().is_none() || answer.1["status"] == "not ready" {
        return answer;
    }
    cluster_answer(answer, store.cluster_health().await)
}

/// `answer` with `nodes`: each node's shard, replica and status (`up`,
/// `down`); a node down makes a ready answer "degraded" (still 200), with
/// a reason that names its shard and replica, never its address.
fn cluster_answer(
    (status, Json(mut body)): (StatusCode, Json<serde_json::Value>),
    health: Result<Option<Vec<NodeHealth>>, StoreError>,
) -> (StatusCode, Json<serde_json::Value>) {
    let nodes = match health {
        Ok(Some(nodes)) => nodes,
        Ok(None) => return (status, Json(body)),
        Err(_) => {
            if body["status"] == "ready" {
                body["status"] = "degraded".into();
                body["reason"] = "the cluster's nodes could not be listed".into();
            }
            return (status, Json(body));
        }
    };
    let down: Vec<String> = nodes
        .iter()
        .filter(|n| n.problem.is_some())
        .map(|n| format!("shard {} replica {}", n.node.shard, n.node.replica))
        .collect();
    body["nodes"] = nodes
        .iter()
        .map(|n| {
            serde_json::json!({
                "shard": n.node.shard,
                "replica": n.node.replica,
                "status": if n.problem.is_some() { "down" } else { "up" },
            })
        })
        .collect();
    if !down.is_empty() && body["status"] == "ready" {
        body["status"] = "degraded".into();
        body["reason"] = format!(
            "{} of {} ClickHouse nodes do not answer ({}); what their shards hold is not read or written meanwhile",
            down.len(),
            nodes.len(),
            down.join(", ")
        )
        .into();
    }
    (status, Json(body))
}

/// A ready answer with `clickhouse_version`, the server's release (asked
/// once, then remembered; a failure to ask leaves it out). Other answers
/// stay as they are: their reason is what matters.
async fn with_version(
    (status, Json(mut body)): (StatusCode, Json<serde_json::Value>),
    store: &Store,
) -> (StatusCode, Json<serde_json::Value>) {
    if body["status"] == "ready" {
        if let Ok(version) = store.server_version().await {
            body["clickhouse_version"] = serde_json::Value::String(version.text);
        }
    }
    (status, Json(body))
}

/// The collector with a spool is ready while it can accept: ClickHouse being
/// away makes it "degraded" (still 200; it keeps accepting into the spool),
/// a full spool makes it not ready.
async fn collector_readiness(
    store: &Store,
    metrics: &Metrics,
    spool: &Spool,
    logged: &Mutex<Option<String>>,
) -> (StatusCode, Json<serde_json::Value>) {
    if spool.is_full() {
        log_change(
            logged,
            Some(&format!(
                "the spool in {} is full; requests are refused until ClickHouse takes the backlog",
                spool.dir().display()
            )),
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "not ready",
                "reason": "the spool is full; requests are refused until ClickHouse takes the backlog",
            })),
        );
    }
    let writer_problem = metrics
        .clickhouse_problem
        .lock()
        .expect("metrics lock")
        .clone();
    let problem = match writer_problem {
        Some(detail) => Some(Problem {
            reason: "ClickHouse does not take inserts; requests are kept in the spool".into(),
            detail,
        }),
        None => clickhouse_problem(store).await.map(|p| Problem {
            reason: format!("{}; requests are kept in the spool", p.reason),
            detail: format!("{}; requests are kept in the spool", p.detail),
        }),
    };
    log_change(logged, problem.as_ref().map(|p| p.detail.as_str()));
    let answer = match problem {
        None => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Some(problem) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "degraded", "reason": problem.reason })),
        ),
    };
    with_nodes(with_version(answer, store).await, store).await
}

async fn metrics_text(State(OpsState { metrics, .. }): State<OpsState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
}

/// The operator endpoints: readiness from `store`, numbers from `metrics`.
pub fn router(store: Store, metrics: Arc<Metrics>) -> Router {
    routes(OpsState {
        store,
        metrics,
        spool: None,
        logged: Default::default(),
    })
}

/// `/healthz` and `/readyz` only, for a server that serves its own `/metrics`
/// (the console adds the business gauges; `metrics_text` gives the rest).
pub fn health_router(store: Store, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(OpsState {
            store,
            metrics,
            spool: None,
            logged: Default::default(),
        })
}

/// The collector's operator endpoints: also ready ("degraded") while
/// ClickHouse is away, since the spool keeps accepting.
pub fn collector_router(store: Store, metrics: Arc<Metrics>, spool: Spool) -> Router {
    routes(OpsState {
        store,
        metrics,
        spool: Some(spool),
        logged: Default::default(),
    })
}

/// An edge collector's operator endpoints: ready while it can accept,
/// "degraded" (still 200) while the central collector cannot be reached
/// (it keeps accepting into the spool), not ready while the spool is full.
pub fn forward_router(metrics: Arc<Metrics>, spool: Spool) -> Router {
    #[derive(Clone)]
    struct Edge {
        metrics: Arc<Metrics>,
        spool: Spool,
        logged: Arc<Mutex<Option<String>>>,
    }
    async fn edge_readyz(State(edge): State<Edge>) -> (StatusCode, Json<serde_json::Value>) {
        if edge.spool.is_full() {
            let reason = "the spool is full; requests are refused until the central collector takes the backlog";
            log_change(&edge.logged, Some(reason));
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "not ready", "reason": reason })),
            );
        }
        let problem = edge
            .metrics
            .forward
            .problem
            .lock()
            .expect("metrics lock")
            .clone();
        log_change(&edge.logged, problem.as_deref());
        match problem {
            None => (
                StatusCode::OK,
                Json(serde_json::json!({ "status": "ready" })),
            ),
            Some(_) => (
                StatusCode::OK,
                Json(serde_json::json!({
                    "status": "degraded",
                    "reason": "the central collector cannot be reached; requests are kept in the spool",
                })),
            ),
        }
    }
    async fn edge_metrics(State(edge): State<Edge>) -> impl IntoResponse {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            edge.metrics.render(),
        )
    }
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(edge_readyz))
        .route("/metrics", get(edge_metrics))
        .with_state(Edge {
            metrics,
            spool,
            logged: Default::default(),
        })
}

fn routes(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::cluster::Node;

    fn node(shard: u32, up: bool) -> NodeHealth {
        NodeHealth {
            node: Node {
                shard,
                replica: 1,
                host: format!("ch{shard}"),
                tcp_port: 9000,
                url: format!("http://ch{shard}:8123"),
                local: shard == 1,
            },
            problem: (!up).then(|| format!("http://ch{shard}:8123 does not answer")),
        }
    }

    fn ready() -> (StatusCode, Json<serde_json::Value>) {
        (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        )
    }

    #[test]
    fn a_node_down_makes_readiness_degraded_and_names_no_address() {
        let (status, Json(body)) =
            cluster_answer(ready(), Ok(Some(vec![node(1, true), node(2, false)])));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "degraded");
        assert_eq!(
            body["nodes"],
            serde_json::json!([
                { "shard": 1, "replica": 1, "status": "up" },
                { "shard": 2, "replica": 1, "status": "down" },
            ])
        );
        let reason = body["reason"].as_str().unwrap();
        assert!(
            reason.contains("1 of 2") && reason.contains("shard 2 replica 1"),
            "{reason}"
        );
        assert!(!body.to_string().contains("ch2"), "{body}");
    }

    #[test]
    fn a_silent_correlator_partition_makes_readiness_degraded() {
        let partition = |index: u32, down: bool| PartitionHealth {
            partition: format!("{index}/2"),
            index,
            count: 2,
            watermark_ns: Some(1),
            heartbeat_ns: Some(1),
            down,
        };
        let (status, Json(body)) =
            partitions_answer(ready(), Ok(vec![partition(0, false), partition(1, true)]));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "degraded");
        assert_eq!(
            body["correlator_partitions"],
            serde_json::json!([
                { "partition": "0/2", "status": "up" },
                { "partition": "1/2", "status": "down" },
            ])
        );
        assert!(
            body["reason"].as_str().unwrap().contains("partition 1/2"),
            "{body}"
        );
        // One correlator for all: nothing listed.
        let (_, Json(body)) = partitions_answer(ready(), Ok(Vec::new()));
        assert_eq!(body, serde_json::json!({ "status": "ready" }));
    }

    #[test]
    fn every_node_up_stays_ready_and_one_server_lists_none() {
        let (_, Json(body)) = cluster_answer(ready(), Ok(Some(vec![node(1, true), node(2, true)])));
        assert_eq!(body["status"], "ready");
        assert_eq!(body["nodes"].as_array().unwrap().len(), 2);
        let (_, Json(body)) = cluster_answer(ready(), Ok(None));
        assert_eq!(body, serde_json::json!({ "status": "ready" }));
    }
}
