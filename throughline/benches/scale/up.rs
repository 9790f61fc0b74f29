//! `throughline up` as a child process, as a user runs it: its own
//! private ClickHouse under the data directory, the demo plant's
//! configuration with a connector token, the sample process definitions
//! and alert rules.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{children, fetch_text, free_ports, metric, Token};

pub struct Up {
    child: Child,
    log: PathBuf,
    data_dir: PathBuf,
    /// The console, `http://127.0.0.1:port`.
    pub console: String,
    /// OTLP/HTTP and CloudEvents.
    pub http: String,
    pub authorization: String,
    pub clickhouse_url: String,
    pub database: String,
}

/// What the correlator reports on `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct CorrelatorFigures {
    pub records: f64,
    pub lag_s: f64,
}

impl Up {
    /// The store on `up`'s database, for row counts and sizes.
    pub fn store(&self) -> store::Store {
        crate::support::store(&self.clickhouse_url, &self.database)
    }

    /// Rows of `table` in `up`'s database (0 while ClickHouse does not
    /// answer).
    pub async fn rows(&self, table: &str) -> u64 {
        self.store()
            .row_count(table, store::inspect::Rows::AsWritten)
            .await
            .unwrap_or(0)
    }

    /// Waits until `table` holds `expected` rows or `deadline`; the rows
    /// and when they were all there.
    pub async fn stored(
        &self,
        table: &str,
        expected: u64,
        deadline: Instant,
    ) -> (u64, Option<Instant>) {
        loop {
            let n = self.rows(table).await;
            if n >= expected {
                return (n, Some(Instant::now()));
            }
            if Instant::now() >= deadline {
                return (n, None);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn start(data_dir: &Path) -> Up {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let token = Token::new("scale-bench");
        let config = data_dir.join("up.toml");
        let demo = std::fs::read_to_string(repo.join("sample-data/demo.toml")).unwrap();
        std::fs::write(&config, format!("{demo}\n{}", token.config)).unwrap();
        let ports = free_ports(3);
        let log = data_dir.join("up.log");
        let database = "throughline".to_string();
        // `SCALE_BIN`: another build of `throughline` to compare with.
        let bin = std::env::var_os("SCALE_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_throughline").into());
        let child = Command::new(bin)
            .arg("up")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--config")
            .arg(&config)
            .arg("--processes-dir")
            .arg(repo.join("sample-data/processes"))
            .arg("--alerts-dir")
            .arg(repo.join("sample-data/alerts"))
            .args(["--clickhouse-database", &database])
            .args(["--otlp-grpc-addr", &format!("127.0.0.1:{}", ports[0])])
            .args(["--otlp-http-addr", &format!("127.0.0.1:{}", ports[1])])
            .args(["--console-addr", &format!("127.0.0.1:{}", ports[2])])
            .env_remove("THROUGHLINE_CLICKHOUSE_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut up = Up {
            child,
            log,
            data_dir: data_dir.to_path_buf(),
            console: format!("http://127.0.0.1:{}", ports[2]),
            http: format!("http://127.0.0.1:{}", ports[1]),
            authorization: token.authorization,
            clickhouse_url: String::new(),
            database,
        };
        up.wait_ready().await;
        up.clickhouse_url = up.private_clickhouse_url();
        up
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        let client = reqwest::Client::new();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "throughline up exited early ({status}):\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let ready = client.get(format!("{}/readyz", self.console)).send().await;
            if matches!(ready, Ok(r) if r.status() == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "throughline up was not ready within 180 s:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The address of the ClickHouse `up` started, from the config it
    /// wrote for it.
    fn private_clickhouse_url(&self) -> String {
        let config = std::fs::read_to_string(self.data_dir.join("clickhouse/config.xml")).unwrap();
        let port = config
            .split("<http_port>")
            .nth(1)
            .and_then(|rest| rest.split("</http_port>").next())
            .expect("an http_port in the private ClickHouse's config");
        format!("http://127.0.0.1:{}", port.trim())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The private ClickHouse server: `up`'s child process.
    pub fn clickhouse_pid(&self) -> Option<u32> {
        children(self.pid()).into_iter().next()
    }

    /// SIGTERM, as Ctrl-C does; how long `up` took to exit, or `None` if
    /// it had not within `bound` and was killed.
    pub fn stop(mut self, bound: Duration) -> Option<Duration> {
        crate::support::stop(&mut self.child, bound)
    }
}

/// A bench that panics leaves no `up` (nor, through it, its ClickHouse)
/// behind.
impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The correlator's records read and lag, from the `/metrics` of the
/// collector at `http` (every `/metrics` of `up` carries them).
pub async fn correlator(http: &str) -> Option<CorrelatorFigures> {
    let text = fetch_text(&format!("{http}/metrics")).await.ok()?;
    Some(CorrelatorFigures {
        records: metric(&text, "throughline_correlator_records_total"),
        lag_s: metric(&text, "throughline_correlator_lag_seconds"),
    })
}
