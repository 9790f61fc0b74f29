//! A private ClickHouse server for `throughline up` and the tests: its own
//! config, data, logs and ports under one directory, started from whichever
//! binary is on PATH (`clickhouse-server`, or `clickhouse server` from the
//! single-binary distribution), stopped when we stop.
//!
//! Ports are picked free at each start, so a system ClickHouse on 8123/9000 or
//! another private server never clashes; the data directory is what persists.
//! They come from below the kernel's ephemeral range and are never handed out
//! twice by one process, so a server restarted on its old ports finds them
//! free.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

const CONFIG_TEMPLATE: &str = include_str!("server/config.xml");
const USERS: &str = include_str!("server/users.xml");

/// How long a server may take to answer `/ping` after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "no ClickHouse server binary found on PATH (looked for `clickhouse-server` and `clickhouse`). \
         Install one (Debian/Ubuntu: `sudo apt-get install clickhouse-server clickhouse-client`), \
         or point at a running server with --clickhouse-url"
    )]
    NotFound,
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "ClickHouse exited during start-up ({status}); its error log {log} ends with:\n{tail}"
    )]
    Exited {
        status: String,
        log: String,
        tail: String,
    },
    #[error("ClickHouse did not answer /ping within {0:?}; see its logs in {1}")]
    Timeout(Duration, String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let context = context.into();
    move |source| ServerError::Io { context, source }
}

/// The command that runs a server: program and leading arguments.
fn find_binary() -> Option<(PathBuf, Vec<&'static str>)> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        let server = dir.join("clickhouse-server");
        if server.is_file() {
            return Some((server, vec![]));
        }
    }
    for dir in std::env::split_paths(&path) {
        let single = dir.join("clickhouse");
        if single.is_file() {
            return Some((single, vec!["server"]));
        }
    }
    None
}

/// Where private servers' ports come from: below Linux's default ephemeral
/// range (32768-60999), so an outgoing connection's local port never takes
/// one while its server is down for a restart, and no other
/// `bind(127.0.0.1:0)` listener is handed one.
const PORT_RANGE: std::ops::Range<u16> = 20000..32000;

/// The next port this process tries; starts at an offset from its pid so
/// that two processes (a test and the `throughline up` it runs) start apart.
static NEXT_PORT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);

/// `n` distinct free ports. A port is handed out at most once per process
/// (until the range wraps), so a server stopped for a restart keeps its
/// ports: no other server this process starts takes them meanwhile. Tests
/// that restart a process on the same ports take theirs from here too.
pub fn free_ports<const N: usize>() -> Result<[u16; N], ServerError> {
    use std::sync::atomic::Ordering;
    let span = u32::from(PORT_RANGE.end - PORT_RANGE.start);
    let _ = NEXT_PORT.compare_exchange(
        u32::MAX,
        (std::process::id().wrapping_mul(7919)) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let mut ports = [0u16; N];
    let mut held = Vec::with_capacity(N);
    let mut tried = 0;
    for port in ports.iter_mut() {
        loop {
            if tried == span {
                return Err(ServerError::Io {
                    context: format!("finding a free port in {PORT_RANGE:?}"),
                    source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
                });
            }
            tried += 1;
            let candidate =
                PORT_RANGE.start + (NEXT_PORT.fetch_add(1, Ordering::Relaxed) % span) as u16;
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", candidate)) {
                held.push(listener);
                *port = candidate;
                break;
            }
        }
    }
    Ok(ports)
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A running private server. Stop it with [`PrivateServer::stop`]; if the
/// handle is dropped instead, the process is killed.
#[derive(Debug)]
pub struct PrivateServer {
    child: Child,
    url: String,
    dir: PathBuf,
    ports: [u16; 2],
}

impl PrivateServer {
    /// Starts a server whose files live in `dir` (created if missing) and waits
    /// until it answers.
    pub async fn start(dir: &Path) -> Result<Self, ServerError> {
        Self::start_on(dir, free_ports::<2>()?).await
    }

    /// Starts a server on the given HTTP and TCP ports: for restarting one
    /// (its data in `dir`) where its clients expect it, as fault tests do.
    pub async fn start_on(dir: &Path, ports: [u16; 2]) -> Result<Self, ServerError> {
        let (program, args) = find_binary().ok_or(ServerError::NotFound)?;
        for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(io(format!("creating {}", dir.join(sub).display())))?;
        }
        let dir = dir
            .canonicalize()
            .map_err(io(format!("resolving {}", dir.display())))?;
        let [http_port, tcp_port] = ports;
        let config = CONFIG_TEMPLATE
            .replace("{{dir}}", &dir.display().to_string())
            .replace("{{http_port}}", &http_port.to_string())
            .replace("{{tcp_port}}", &tcp_port.to_string());
        let config_path = dir.join("config.xml");
        std::fs::write(&config_path, config).map_err(io("writing config.xml"))?;
        std::fs::write(dir.join("users.xml"), USERS).map_err(io("writing users.xml"))?;

        let mut command = Command::new(&program);
        command
            .args(&args)
            .arg(format!("--config-file={}", config_path.display()))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to send
        // SIGTERM to the server when the thread that started it goes away, so
        // a killed `throughline` leaves no orphan server behind.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(io(format!("starting {}", program.display())))?;
        let mut server = PrivateServer {
            child,
            url: format!("http://127.0.0.1:{http_port}"),
            dir,
            ports,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> Result<(), ServerError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = self.url.trim_start_matches("http://").to_string();
        loop {
            if let Some(status) = self.child.try_wait().map_err(io("watching ClickHouse"))? {
                let log = self.dir.join("log/clickhouse-server.err.log");
                return Err(ServerError::Exited {
                    status: status.to_string(),
                    tail: tail(&log, 15),
                    log: log.display().to_string(),
                });
            }
            if ping(&addr).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ServerError::Timeout(
                    START_TIMEOUT,
                    self.dir.join("log").display().to_string(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's HTTP interface.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its process id while it runs: for fault tests that freeze it
    /// (`SIGSTOP`: it keeps its port and answers nothing).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its HTTP and TCP ports, for [`PrivateServer::start_on`].
    pub fn ports(&self) -> [u16; 2] {
        self.ports
    }

    /// Asks the server to shut down (SIGTERM), waits for it, kills it if it
    /// takes longer than 15 s.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("ClickHouse did not stop within 15 s of SIGTERM; killing it");
                let _ = self.child.kill().await;
            }
        }
    }
}

/// `GET /ping` answered `Ok.`: a plain HTTP/1.0 request, to need no client.
async fn ping(addr: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await
    else {
        return false;
    };
    if stream
        .write_all(b"GET /ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut response = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut response)).await;
    matches!(read, Ok(Ok(_))) && response.ends_with(b"Ok.\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_outside_the_ephemeral_range_and_never_handed_out_twice() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            for port in free_ports::<2>().unwrap() {
                assert!(PORT_RANGE.contains(&port), "{port}");
                assert!(seen.insert(port), "{port} handed out twice");
            }
        }
        // A port in use is skipped.
        let next = free_ports::<1>().unwrap()[0];
        let _busy = TcpListener::bind(("127.0.0.1", next + 1));
        assert_ne!(free_ports::<1>().unwrap()[0], next + 1);
    }
}
