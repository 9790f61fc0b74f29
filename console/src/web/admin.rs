//! `/admin` (admin role only): the ClickHouse this console reads (its
//! address without user info, and what is wrong with it in detail: the
//! open `/readyz` says only that something is), the process definitions,
//! alert rules, connector tokens, users and API keys this console runs with;
//! and what is stored, per table, with the retention in force
//! (`read::storage`, the answer of `/api/v1/storage`).
//! Read-only: they live in files, reviewed like code; hashes and passwords
//! are never shown.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use collector::auth::TokenConfig;

use super::{fmt, render, Chrome};
use crate::links;
use crate::read::storage::{storage, Storage};
use crate::state::AppState;

pub struct ProcessLine {
    pub id: String,
    pub name: String,
    pub key_type: String,
    pub stages: String,
    pub slas: String,
    pub file: String,
    pub href: String,
}

pub struct RuleLine {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub severity: String,
    pub for_text: String,
    pub labels: String,
    pub file: String,
    pub href: String,
}

/// ClickHouse as this console sees it.
pub struct ClickHouseLine {
    /// Without user info.
    pub url: String,
    pub database: String,
    /// Connect, statement and health check timeouts, as text.
    pub timeouts: String,
    /// `None`: it answers and is migrated; else the detail.
    pub problem: Option<String>,
    /// The server's release as it says it (`18.16.1`), once it answered.
    pub version: Option<String>,
    /// Why this process's collector cannot insert, when one runs here and
    /// cannot.
    pub writer: Option<String>,
    /// On a cluster: its name and every node's health (empty on one
    /// server, or when the configured node does not answer).
    pub cluster: Option<String>,
    pub nodes: Vec<NodeLine>,
}

/// A node of the cluster and whether it answers.
pub struct NodeLine {
    pub shard: u32,
    pub replica: u32,
    /// host:port (native), as `system.clusters` names it.
    pub address: String,
    /// `Up`, or why it does not answer (its URL without user info).
    pub status: String,
}

/// The nodes of `health`, or one line saying why they could not be listed.
fn node_lines(
    health: Result<Option<Vec<store::cluster::NodeHealth>>, store::StoreError>,
) -> Vec<NodeLine> {
    match health {
        Ok(nodes) => nodes
            .unwrap_or_default()
            .into_iter()
            .map(|n| NodeLine {
                shard: n.node.shard,
                replica: n.node.replica,
                address: format!("{}:{}", n.node.host, n.node.tcp_port),
                status: n.problem.unwrap_or_else(|| "Up".into()),
            })
            .collect(),
        Err(e) => vec![NodeLine {
            shard: 0,
            replica: 0,
            address: "?".into(),
            status: format!("the nodes could not be listed: {e}"),
        }],
    }
}

/// One correlator partition on the admin page.
pub struct PartitionLine {
    pub partition: String,
    /// How long ago it last wrote its watermark, or that it never did.
    pub heartbeat: String,
    pub down: bool,
}

fn partition_lines(
    partitions: Result<Vec<store::correlation::partitions::PartitionHealth>, store::StoreError>,
    now: u64,
) -> Vec<PartitionLine> {
    match partitions {
        Ok(partitions) => partitions
            .into_iter()
            .map(|p| PartitionLine {
                partition: p.partition,
                heartbeat: match p.heartbeat_ns {
                    Some(at) => format!("{} ago", fmt::duration(now.saturating_sub(at))),
                    None => "never (not started)".into(),
                },
                down: p.down,
            })
            .collect(),
        Err(e) => vec![PartitionLine {
            partition: "?".into(),
            heartbeat: format!("the partitions could not be read: {e}"),
            down: true,
        }],
    }
}

/// A table of the storage section, formatted (`read::storage`).
pub struct StorageLine {
    pub table: String,
    pub rows: String,
    pub bytes: String,
    pub ratio: String,
    pub oldest: String,
    pub newest: String,
    /// `14d`, `forever` or `-`.
    pub limit: String,
    pub note: String,
}

/// What is stored (`GET /api/v1/storage`'s answer, formatted).
pub struct StorageSection {
    pub total: String,
    /// The disk guard, in a sentence.
    pub guard: String,
    pub tables: Vec<StorageLine>,
}

impl StorageSection {
    fn of(storage: &Storage) -> StorageSection {
        StorageSection {
            total: fmt::bytes(storage.total_bytes),
            guard: match storage.max_disk {
                Some(max) => format!(
                    "over {} the oldest partitions of the largest class are dropped first",
                    fmt::bytes(max)
                ),
                None => "off (retention.max_disk is not set)".into(),
            },
            tables: storage
                .tables
                .iter()
                .map(|t| StorageLine {
                    table: t.table.clone(),
                    rows: fmt::count(t.rows),
                    bytes: fmt::bytes(t.bytes),
                    ratio: t
                        .compression_ratio
                        .map_or_else(|| "-".into(), |r| format!("{r:.1}×")),
                    oldest: fmt::partition(&t.oldest_partition),
                    newest: fmt::partition(&t.newest_partition),
                    limit: match (&t.retention.limit, t.retention.class) {
                        (Some(limit), _) => limit.clone(),
                        (None, Some(_)) => "forever".into(),
                        (None, None) => "-".into(),
                    },
                    note: t.retention.note.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin.html")]
pub struct AdminPage {
    pub chrome: Chrome,
    pub clickhouse: ClickHouseLine,
    /// With several correlator partitions: each one's heartbeat.
    pub partitions: Vec<PartitionLine>,
    /// When a silent partition counts as down.
    pub silent_after: String,
    /// `None`: ClickHouse could not say (see the status).
    pub storage: Option<StorageSection>,
    pub processes: Vec<ProcessLine>,
    pub rules: Vec<RuleLine>,
    pub tokens: Vec<TokenConfig>,
    pub users: Vec<(String, &'static str)>,
    pub keys: Vec<(String, String, &'static str)>,
}

pub async fn page(State(state): State<AppState>, mut chrome: Chrome) -> Response {
    chrome.title = "Administration".into();
    let processes = state
        .processes
        .list
        .iter()
        .map(|p| ProcessLine {
            id: p.id.clone(),
            name: p.name.clone(),
            key_type: p.key_type.clone(),
            stages: p
                .stages
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(" → "),
            slas: p
                .slas
                .iter()
                .map(|s| {
                    format!(
                        "{}: {} → {} within {}",
                        s.id,
                        p.stages[s.from].id,
                        p.stages[s.to].id,
                        fmt::duration(s.within_ns)
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            file: p.file.clone(),
            href: links::process(&p.id),
        })
        .collect();
    let rules = state
        .alerts
        .list
        .iter()
        .map(|r| RuleLine {
            id: r.id.clone(),
            name: r.name.clone(),
            kind: r.condition.kind(),
            severity: r.severity.clone(),
            for_text: fmt::duration(r.for_ns),
            labels: r
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            file: r.file.clone(),
            href: links::alert(&r.id),
        })
        .collect();
    let config = state.store.config();
    let problem = collector::ops::clickhouse_problem(&state.store)
        .await
        .map(|p| p.detail);
    // Asked only of a server that answers (else what an earlier ask found).
    let version = match problem {
        None => state.store.server_version().await.ok(),
        Some(_) => state.store.known_server_version(),
    };
    let nodes = match (&problem, state.store.cluster()) {
        (None, Some(_)) => node_lines(state.store.cluster_health().await),
        _ => Vec::new(),
    };
    let clickhouse = ClickHouseLine {
        cluster: state.store.cluster().map(str::to_string),
        nodes,
        url: domain::redact::url(&config.url),
        database: config.database.clone(),
        timeouts: format!(
            "connect {}, statement {}, health check {}",
            fmt::duration(config.timeouts.connect.as_nanos() as u64),
            fmt::duration(config.timeouts.query.as_nanos() as u64),
            fmt::duration(config.timeouts.health().as_nanos() as u64),
        ),
        problem,
        version: version.map(|v| v.text),
        writer: state
            .metrics
            .clickhouse_problem
            .lock()
            .expect("metrics lock")
            .clone(),
    };
    let partitions = match clickhouse.problem {
        None => {
            let now = domain::now_ns();
            partition_lines(state.store.correlator_partitions(now, None).await, now)
        }
        Some(_) => Vec::new(),
    };
    // Only of a server that answers: a page waits for one deadline at most.
    let storage = match clickhouse.problem {
        None => storage(&state).await.ok().map(|s| StorageSection::of(&s)),
        Some(_) => None,
    };
    let auth = &state.auth;
    render(&AdminPage {
        chrome,
        clickhouse,
        partitions,
        silent_after: fmt::duration(store::correlation::partitions::SILENT_AFTER.as_nanos() as u64),
        storage,
        processes,
        rules,
        tokens: auth.listed_tokens.clone(),
        users: auth
            .listed_users
            .iter()
            .map(|(n, r)| (n.clone(), r.as_str()))
            .collect(),
        keys: auth
            .listed_keys
            .iter()
            .map(|(id, n, r)| (id.clone(), n.clone(), r.as_str()))
            .collect(),
    })
}
