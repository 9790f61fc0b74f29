//! What the binary writes to standard error when that is a file or a pipe:
//! text without terminal colour codes, or one JSON object per line.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `throughline collector` on ephemeral ports with ClickHouse unreachable
/// (it starts anyway), its standard error in a file, until it has said it
/// listens; returns what it wrote.
fn collector_log(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_throughline"))
        .arg("collector")
        .args(["--clickhouse-url", "http://127.0.0.1:9"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--otlp-grpc-addr", "127.0.0.1:0"])
        .args(["--otlp-http-addr", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "info")
        .env_remove("THROUGHLINE_LOG_FORMAT")
        .env_remove("THROUGHLINE_CONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("collector listening") {
            break text;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the collector exited:\n{text}"
        );
        assert!(
            Instant::now() < deadline,
            "no `collector listening`:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    text
}

#[test]
fn logs_to_a_file_carry_no_colour_codes() {
    let text = collector_log(&[]);
    assert!(!text.contains("\x1b["), "{text:?}");
    assert!(text.contains(" INFO "), "{text}");
    assert!(text.contains("ClickHouse is not reachable"), "{text}");
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let text = collector_log(&["--log-format", "json"]);
    let mut messages = Vec::new();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{text}"));
        assert!(value["timestamp"].is_string(), "{line}");
        assert!(value["level"].is_string(), "{line}");
        messages.push(value["fields"]["message"].as_str().unwrap().to_string());
    }
    assert!(
        messages.iter().any(|m| m == "collector listening"),
        "{messages:?}"
    );
    assert!(!text.contains("\x1b["), "{text:?}");
}
