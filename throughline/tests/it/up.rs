//! `throughline up` as a user runs it: the real binary, no ClickHouse running.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Three distinct free ports (all held until all are chosen).
fn free_ports() -> (u16, u16, u16) {
    let l: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let p: Vec<u16> = l.iter().map(|l| l.local_addr().unwrap().port()).collect();
    (p[0], p[1], p[2])
}

struct Up {
    child: Child,
    /// Its stderr, quoted when it fails.
    log: std::path::PathBuf,
    console: String,
    http: String,
}

impl Up {
    fn start(data_dir: &std::path::Path) -> Up {
        Self::start_with(data_dir, &[])
    }

    /// With `args` added to those every `up` here gets.
    fn start_with(data_dir: &std::path::Path, args: &[&str]) -> Up {
        let (grpc, http, console) = free_ports();
        let log = data_dir.join("up-stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_throughline"))
            .arg("up")
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--otlp-grpc-addr", &format!("127.0.0.1:{grpc}")])
            .args(["--otlp-http-addr", &format!("127.0.0.1:{http}")])
            .args(["--console-addr", &format!("127.0.0.1:{console}")])
            // The fixture's spans are dated 2025-11-26: past the default
            // retention, which would drop them at the second start.
            .args(["--retention-spans", "off", "--retention-keys", "off"])
            .args(["--retention-rollups", "off"])
            .env_remove("THROUGHLINE_CLICKHOUSE_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Up {
            child,
            log,
            console: format!("http://127.0.0.1:{console}"),
            http: format!("http://127.0.0.1:{http}"),
        }
    }

    async fn wait_ready(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "throughline up exited early:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            let ready = client.get(format!("{}/readyz", self.console)).send().await;
            if matches!(ready, Ok(r) if r.status() == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "throughline up was not ready within 90 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGTERM, as Ctrl-C or a service manager would; waits for a clean exit.
    fn stop(mut self) {
        unsafe {
            libc_kill(self.child.id() as i32, 15);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "throughline up exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "throughline up did not stop within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_starts_its_own_clickhouse_and_a_second_up_finds_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    let mut first = Up::start(dir.path());
    first.wait_ready(&client).await;
    for health in ["/healthz", "/readyz", "/metrics"] {
        for base in [&first.console, &first.http] {
            let r = client.get(format!("{base}{health}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{base}{health}");
        }
    }
    // The server's release, asked at start, is named when ready (issue 17);
    // the retention pass runs here and its counter is on /metrics.
    let ready: serde_json::Value = client
        .get(format!("{}/readyz", first.console))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let version = ready["clickhouse_version"].as_str().unwrap_or_default();
    assert!(
        store::version::ServerVersion::parse(version).is_some(),
        "{ready}"
    );
    let metrics = client
        .get(format!("{}/metrics", first.http))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("# TYPE throughline_retention_dropped_partitions_total counter"),
        "{metrics}"
    );
    let log = std::fs::read_to_string(&first.log).unwrap();
    assert!(
        log.contains("retention running") && log.contains(version),
        "{log}"
    );
    let body = include_bytes!("../../../sample-data/fixtures/otlp-traces.json").to_vec();
    let r = client
        .post(format!("{}/v1/traces", first.http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Acknowledged means in the spool; the writer stores it right after.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = client
            .get(format!("{}/metrics", first.console))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("throughline_written_total{signal=\"spans\"} 2")
            && metrics.contains("throughline_spool_records 0")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the spans were not stored within 30 s:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.stop();

    let mut second = Up::start(dir.path());
    second.wait_ready(&client).await;
    let trace: serde_json::Value = client
        .get(format!(
            "{}/api/v1/traces/5b8efff798038103d269b633813fc60c",
            second.console
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(trace["span_count"], 2, "{trace}");
    second.stop();
}

/// GET `path` on `base`: the status and the body.
async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, String) {
    let r = client.get(format!("{base}{path}")).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The end-to-end smoke run on the run's ClickHouse, whichever engine it is
/// (`make test` runs it on 18.16 and on the current engine, chDB): `up`
/// with the sample processes and alert rules migrates a new database, names
/// the server's release, stores spans and events, correlates them, and
/// every page and the API answer over them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throughline_up_on_the_runs_clickhouse_serves_every_page_over_what_it_stored() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let url = crate::harness::clickhouse_url();
    let database = crate::harness::unique_database();
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../sample-data");
    let processes = format!("{samples}/processes");
    let alerts = format!("{samples}/alerts");
    let mut up = Up::start_with(
        dir.path(),
        &[
            "--clickhouse-url",
            &url,
            "--clickhouse-database",
            &database,
            "--processes-dir",
            &processes,
            "--alerts-dir",
            &alerts,
            "--correlator-interval",
            "1s",
            "--alerts-interval",
            "1s",
        ],
    );
    up.wait_ready(&client).await;
    let (_, ready) = get(&client, &up.console, "/readyz").await;
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    let version = ready["clickhouse_version"].as_str().unwrap_or_default();
    assert!(
        store::version::ServerVersion::parse(version).is_some(),
        "{ready}"
    );

    let traces = include_bytes!("../../../sample-data/fixtures/otlp-traces.json").to_vec();
    let events = include_bytes!("../../../sample-data/fixtures/cloudevents-batch.json").to_vec();
    for (path, content_type, body) in [
        ("/v1/traces", "application/json", traces),
        ("/v1/events", "application/cloudevents-batch+json", events),
    ] {
        let r = client
            .post(format!("{}{path}", up.http))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // Stored, and the correlator has read what was stored.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, metrics) = get(&client, &up.console, "/metrics").await;
        if metrics.contains("throughline_written_total{signal=\"spans\"} 2")
            && metrics.contains("throughline_spool_records 0")
            && metrics.lines().any(|l| {
                l.starts_with("throughline_correlator_records_total") && !l.ends_with(" 0")
            })
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not stored and correlated within 60 s:\n{metrics}\n{}",
            std::fs::read_to_string(&up.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let trace = "5b8efff798038103d269b633813fc60c";
    for path in [
        "/",
        "/systems?from=now-30d",
        "/processes/order-to-delivery?from=now-30d",
        "/breaches?from=now-30d",
        "/alerts",
        "/admin",
        "/keys/order/SO-4711?from=now-30d",
        &format!("/traces/{trace}"),
        "/search?q=SO-4711",
        "/api/v1/systems?from=now-30d",
        "/api/v1/systems/map?from=now-30d",
        "/api/v1/systems/operations?from=now-30d",
        "/api/v1/processes",
        "/api/v1/processes/order-to-delivery?from=now-30d",
        "/api/v1/breaches?from=now-30d",
        "/api/v1/events?from=now-30d",
        "/api/v1/keys/order/SO-4711",
        "/api/v1/alerts",
        "/api/v1/storage",
    ] {
        let (status, body) = get(&client, &up.console, path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, body) = get(&client, &up.console, &format!("/api/v1/traces/{trace}")).await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["span_count"], 2, "{body}");
    let (_, body) = get(&client, &up.console, "/api/v1/events?from=now-30d").await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        !body["events"].as_array().unwrap().is_empty(),
        "the fixture's events: {body}"
    );
    up.stop();
    store::Store::new(store::StoreConfig {
        url,
        database,
        user: None,
        password: None,
        timeouts: Default::default(),
        compression: crate::harness::clickhouse_compression(),
    })
    .drop_database()
    .await
    .unwrap();
}

#[test]
fn up_without_a_clickhouse_binary_says_how_to_install_one() {
    let dir = tempfile::tempdir().unwrap();
    let empty_path = dir.path().join("bin");
    std::fs::create_dir(&empty_path).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_throughline"))
        .args(["up", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("PATH", &empty_path)
        .env_remove("THROUGHLINE_CLICKHOUSE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no ClickHouse server binary found on PATH"),
        "{stderr}"
    );
    assert!(
        stderr.contains("apt-get install clickhouse-server clickhouse-client"),
        "{stderr}"
    );
    assert!(stderr.contains("--clickhouse-url"), "{stderr}");
}

#[test]
fn a_config_file_with_a_typo_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("throughline.toml");
    std::fs::write(&config, "otlp_grpc_adress = \"127.0.0.1:4317\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_throughline"))
        .args(["up", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("otlp_grpc_adress"), "{stderr}");
    assert!(stderr.contains("throughline.toml"), "{stderr}");
}

#[test]
fn an_invalid_process_definition_stops_the_start_with_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let processes = dir.path().join("processes");
    std::fs::create_dir(&processes).unwrap();
    std::fs::write(
        processes.join("order.toml"),
        "id = \"o\"\nkey = \"order\"\n[[stages]]\nid = \"a\"\nsystem = \"crm\"\nevent = \"x\"\n[[slas]]\nid = \"s\"\nfrom = \"a\"\nto = \"b\"\nwithin = \"1h\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_throughline"))
        .args(["correlator", "--processes-dir"])
        .arg(&processes)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "order.toml:10: SLA `s` names stage `b`, which is not defined; defined stages: a"
        ),
        "{stderr}"
    );
}

/// The reported bug: a broken alert rule stopped `throughline migrate`,
/// which uses no rule. It reads ClickHouse's keys and nothing else of the
/// shared config file, nor the other components' variables.
#[test]
fn migrate_succeeds_with_a_broken_alert_rules_dir() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = dir.path().join("alerts");
    std::fs::create_dir(&alerts).unwrap();
    std::fs::write(
        alerts.join("plant.toml"),
        "[[rules]]\nid = \"quiet\"\nkind = \"system_silence\"\nsilent_for = \"ten minutes\"\n",
    )
    .unwrap();
    let config = dir.path().join("throughline.toml");
    std::fs::write(
        &config,
        format!(
            "alerts_dir = {:?}\nprocesses_dir = {:?}\ntls_cert = \"/no/such/cert.pem\"\ntls_key = \"/no/such/key.pem\"\n",
            alerts.display().to_string(),
            alerts.display().to_string()
        ),
    )
    .unwrap();
    let database = crate::harness::unique_database();
    let out = Command::new(env!("CARGO_BIN_EXE_throughline"))
        .args(["migrate", "--config"])
        .arg(&config)
        .args(["--clickhouse-url", &crate::harness::clickhouse_url()])
        .args(["--clickhouse-database", &database])
        .env("THROUGHLINE_ALERTS_DIR", &alerts)
        .env("THROUGHLINE_SPOOL_MAX_BYTES", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!("database `{database}` at ")),
        "{stdout}"
    );
    assert!(stdout.contains("migration(s) applied"), "{stdout}");

    // The rules are broken indeed: the evaluator refuses to start on them
    // (with no processes: an empty directory).
    let empty = dir.path().join("no-processes");
    std::fs::create_dir(&empty).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_throughline"))
        .args(["correlator", "--alerts", "--processes-dir"])
        .arg(&empty)
        .arg("--config")
        .arg(&config)
        .env_remove("THROUGHLINE_PROCESSES_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plant.toml:4: rule `quiet`: silent_for `ten minutes`"),
        "{stderr}"
    );
}
