//! Throughline on a ClickHouse cluster (`clickhouse_cluster`): every table
//! of the migrations is a local table on each node plus a `Distributed`
//! table over them (`render`, which documents the naming), the migrator
//! runs each statement on every node (`nodes`, `migrate`), and writes go
//! through the `Distributed` tables with `insert_distributed_sync = 1`, so
//! that an acknowledged insert is on its shard ([`Store::on_cluster`]).
//! `health` pings every node for `/readyz` and `/admin`.

pub mod health;
mod migrate;
pub mod nodes;
pub mod render;

pub use health::NodeHealth;
pub use nodes::Node;
pub use render::{render_cluster, ClusterStatement, LOCAL};
