//! What the benchmarks share: knobs from the environment, OTLP attribute
//! builders, percentiles, a process's memory from `/proc`, figures from
//! `/metrics`, free ports, a connector token, the store of a database and
//! SIGTERM. Each bench is its own crate and uses part of this module, so
//! the parts one does not use are not dead code.
#![allow(dead_code)]

pub mod erp;

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

/// The environment variable `name` parsed, or `default` when it is unset
/// or not a number.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A string attribute.
pub fn text(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        key_strindex: 0,
    }
}

/// An integer attribute.
pub fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        key_strindex: 0,
    }
}

/// The `p` quantile (0..=1) of sorted durations, by the one rule of
/// `domain::quantile` (nearest rank); zero for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    domain::quantile::rank(sorted.len() as u64, p).map_or(Duration::ZERO, |r| sorted[r as usize])
}

/// Milliseconds, for tables.
pub fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// `VmRSS` and `VmHWM` (the peak) of a process, in KiB; zeros once it is
/// gone.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds (user + system, all threads) `pid` has used so far; 0 once
/// it is gone.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime: fields 14 and 15 of stat(5), 12 and 13 after `)`.
    // SAFETY: sysconf reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) as f64 / hz
}

/// The child processes of `pid` (of all its threads).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out.sort_unstable();
    out.dedup();
    out
}

pub async fn fetch_text(url: &str) -> reqwest::Result<String> {
    reqwest::get(url).await?.text().await
}

/// The value of an unlabelled metric in Prometheus text (0 when absent).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` distinct free ports: all are held until all are chosen.
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A connector token for every system, as a deployment with tokens has
/// one: the `[[tokens]]` lines of a config file, and the `Authorization`
/// header its requests carry.
pub struct Token {
    pub config: String,
    pub authorization: String,
}

impl Token {
    pub fn new(name: &str) -> Token {
        let (id, secret) = collector::auth::secret::generate(collector::auth::TOKEN_PREFIX);
        Token {
            config: format!(
                "[[tokens]]\nid = \"{id}\"\nname = \"{name}\"\nsystems = [\"*\"]\nhash = \"{}\"\n",
                collector::auth::secret::hash(&secret)
            ),
            authorization: format!("Bearer {secret}"),
        }
    }
}

/// The store on `database` of the ClickHouse at `url`: row counts and
/// sizes on disk come through `store::inspect`.
pub fn store(url: &str, database: &str) -> store::Store {
    store::Store::new(store::StoreConfig {
        url: url.to_string(),
        database: database.to_string(),
        user: None,
        password: None,
        timeouts: Default::default(),
        compression: Default::default(),
    })
}

/// Sends SIGTERM to `pid`.
pub fn sigterm(pid: u32) {
    // SAFETY: kill(2) with a pid we started; no memory is shared.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
}

/// SIGTERM, then waits up to `bound` for the child to exit (SIGKILL after
/// it); how long it took to exit, or `None` if it had to be killed.
pub fn stop(child: &mut std::process::Child, bound: Duration) -> Option<Duration> {
    let started = Instant::now();
    sigterm(child.id());
    while started.elapsed() < bound {
        if let Ok(Some(_)) = child.try_wait() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}
