//! Faults against the real ClickHouse: ClickHouse stopped while clients keep
//! sending, the collector killed with SIGKILL, a spool segment torn
//! mid-record, a full spool, rows ClickHouse refuses. In each, every record
//! the collector acknowledged must arrive in ClickHouse, once in every count
//! the API serves. Each test is bounded and stops on its own.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use collector::pipeline::PipelineOptions;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{json, Value};
use store::server::PrivateServer;
use store::{Store, StoreConfig};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, TestApp, TestConfig};

/// Spans per request; each request is one trace and one order.
const SPANS: usize = 20;
/// Events per request.
const EVENTS: usize = 5;

fn trace_hex(n: u64) -> String {
    format!("{:016x}{:016x}", 0xfa17_u64, n + 1)
}

fn text(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        key_strindex: 0,
    }
}

/// Request `n`: one trace of `SPANS` spans for order `F-n`, the span named
/// `poison` at index `poison`, if any.
fn spans_request(n: u64, poison: Option<usize>) -> ExportTraceServiceRequest {
    let trace_id = hex::decode(trace_hex(n)).unwrap();
    let start = 1_764_161_400_000_000_000u64 + n * 1_000_000;
    let spans = (0..SPANS)
        .map(|i| Span {
            trace_id: trace_id.clone(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: if poison == Some(i) {
                "poison".into()
            } else {
                "fault.step".into()
            },
            kind: 2,
            start_time_unix_nano: start + i as u64,
            end_time_unix_nano: start + i as u64 + 1_000,
            attributes: vec![
                text("order.id", format!("F-{n}")),
                text("work_order.id", format!("FW-{n}-{i}")),
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "erp".into())],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn events_body(n: u64) -> Vec<u8> {
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| {
            json!({
                "specversion": "1.0", "id": format!("ev-{n}-{i}"), "source": "urn:fault:mes",
                "type": "mes.work_order.completed", "system": "mes",
                "time": "2026-11-26T08:00:00Z", "workorderid": format!("FW-{n}-{i}"),
            })
        })
        .collect();
    serde_json::to_vec(&events).unwrap()
}

/// What the collector acknowledged: request numbers.
#[derive(Default)]
struct Acked {
    traces: Mutex<Vec<u64>>,
    events: Mutex<Vec<u64>>,
    /// Requests of log records that are events ([`log_events_request`]).
    logs: Mutex<Vec<u64>>,
}

/// Sends spans and events requests `first, first + step, ...` to `http`
/// until `stop`, noting what was acknowledged; refusals and connection
/// errors are only retried later with new requests, as a connector whose
/// batch was refused would redeliver it (redeliveries are tested elsewhere).
async fn keep_sending(
    http: String,
    stop: CancellationToken,
    acked: Arc<Acked>,
    first: u64,
    step: u64,
) {
    keep_sending_every(http, stop, acked, first, step, Duration::from_millis(20)).await
}

/// [`keep_sending`] with `pause` between requests.
async fn keep_sending_every(
    http: String,
    stop: CancellationToken,
    acked: Arc<Acked>,
    first: u64,
    step: u64,
    pause: Duration,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut n = first;
    while !stop.is_cancelled() {
        let spans = client
            .post(format!("{http}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(spans_request(n, None).encode_to_vec())
            .send()
            .await;
        if matches!(&spans, Ok(r) if r.status() == 200) {
            acked.traces.lock().unwrap().push(n);
        }
        let events = client
            .post(format!("{http}/v1/events"))
            .header("content-type", "application/cloudevents-batch+json")
            .body(events_body(n))
            .send()
            .await;
        if matches!(&events, Ok(r) if r.status() == 200) {
            acked.events.lock().unwrap().push(n);
        }
        if spans.is_err() || events.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        n += step;
        tokio::time::sleep(pause).await;
    }
}

/// Log records per [`log_events_request`].
const LOG_EVENTS: usize = 5;

/// Request `n` of OTLP log records that are events (`event_name`), bodies
/// `fl-{n}-{i}`: central stores each as a log record and as an event.
fn log_events_request(n: u64) -> ExportLogsServiceRequest {
    let records = (0..LOG_EVENTS)
        .map(|i| LogRecord {
            time_unix_nano: 1_764_161_400_000_000_000u64 + n * 1_000_000 + i as u64,
            event_name: "mes.work_order.completed".into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("fl-{n}-{i}"))),
            }),
            attributes: vec![text("work_order.id", format!("FL-{n}-{i}"))],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![text("service.name", "mes".into())],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Sends [`log_events_request`]s `first, first + step, ...` over OTLP/HTTP
/// protobuf until `stop`, noting the acknowledged ones in `acked.logs`.
async fn keep_sending_log_events(
    http: String,
    stop: CancellationToken,
    acked: Arc<Acked>,
    first: u64,
    step: u64,
    pause: Duration,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut n = first;
    while !stop.is_cancelled() {
        let sent = client
            .post(format!("{http}/v1/logs"))
            .header("content-type", "application/x-protobuf")
            .body(log_events_request(n).encode_to_vec())
            .send()
            .await;
        if matches!(&sent, Ok(r) if r.status() == 200) {
            acked.logs.lock().unwrap().push(n);
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        n += step;
        tokio::time::sleep(pause).await;
    }
}

/// Spans per trace and rows per event id, as stored (FINAL: what the API
/// reads).
async fn stored(store: &Store) -> (HashMap<String, u64>, HashMap<String, u64>) {
    let until = domain::now_ns() + 86_400_000_000_000;
    let mut spans = HashMap::new();
    for span in store.spans_between(0, until).await.unwrap() {
        *spans.entry(span.trace_id.to_hex()).or_default() += 1;
    }
    let mut events = HashMap::new();
    for event in store.events_in(0, until).await.unwrap() {
        *events.entry(event.id).or_default() += 1;
    }
    (spans, events)
}

/// Every acknowledged request is stored whole: its trace's spans and its
/// events, each once.
async fn assert_all_stored_once(store: &Store, acked: &Acked) {
    let (spans, events) = stored(store).await;
    let traces = acked.traces.lock().unwrap().clone();
    let event_requests = acked.events.lock().unwrap().clone();
    assert!(!traces.is_empty() && !event_requests.is_empty());
    for n in &traces {
        assert_eq!(
            spans.get(&trace_hex(*n)).copied(),
            Some(SPANS as u64),
            "trace of acknowledged request {n}"
        );
    }
    for n in &event_requests {
        for i in 0..EVENTS {
            assert_eq!(
                events.get(&format!("ev-{n}-{i}")).copied(),
                Some(1),
                "event {i} of acknowledged request {n}"
            );
        }
    }
}

/// The rollups count every stored span and event once: a batch replayed
/// after the collector died between storing and acknowledging it is not
/// counted again. (Not asserted where ClickHouse itself stops mid-insert:
/// a view is written after its table, not atomically with it.)
async fn assert_rollups_count_once(store: &Store) {
    let (spans, events) = stored(store).await;
    let activity = store
        .system_activity(0, domain::now_ns() + 86_400_000_000_000)
        .await
        .unwrap();
    assert_eq!(
        activity.iter().map(|a| a.spans).sum::<u64>(),
        spans.values().sum::<u64>(),
        "spans in the rollups"
    );
    assert_eq!(
        activity.iter().map(|a| a.events).sum::<u64>(),
        events.values().sum::<u64>(),
        "events in the rollups"
    );
}

/// The API's own counts for a few acknowledged requests: a trace lookup and
/// a key lookup each show the request's spans once.
async fn assert_api_counts_once(app: &TestApp, acked: &Acked) {
    let traces = acked.traces.lock().unwrap().clone();
    for n in traces.iter().step_by((traces.len() / 5).max(1)) {
        let (status, trace) = app.get(&format!("/api/v1/traces/{}", trace_hex(*n))).await;
        assert_eq!(status, 200);
        assert_eq!(trace["spans"].as_array().unwrap().len(), SPANS, "trace {n}");
        let (status, key) = app.get(&format!("/api/v1/keys/order/F-{n}")).await;
        assert_eq!(status, 200);
        assert_eq!(key["span_count"], SPANS, "order F-{n}");
        assert_eq!(
            crate::harness::records(&key, "span").len(),
            SPANS,
            "order F-{n}"
        );
    }
}

async fn readyz(http: &str) -> Value {
    reqwest::get(format!("{http}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `/readyz` until its status is `want` (at most 60 s).
async fn wait_status(http: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = readyz(http).await;
        if body["status"] == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "readyz never said {want}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn quick_retries() -> PipelineOptions {
    PipelineOptions {
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        ..TestConfig::default().pipeline
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// A store whose ClickHouse is not there.
fn unreachable_store() -> Store {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Store::new(StoreConfig {
        url: format!("http://127.0.0.1:{port}"),
        database: "nowhere".into(),
        user: None,
        password: None,
        timeouts: Default::default(),
        compression: Default::default(),
    })
}

/// ClickHouse (our own server, so stopping it harms no other test) stops
/// for 30 s while clients keep sending; the collector keeps accepting and
/// says "degraded"; after the restart every acknowledged span and event is
/// stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clickhouse_outage_of_30_s_loses_nothing_and_stores_nothing_twice() {
    let ch_dir = tempfile::tempdir().unwrap();
    let server = PrivateServer::start(ch_dir.path()).await.unwrap();
    let ports = server.ports();
    let store = Store::new(StoreConfig {
        url: server.url().to_string(),
        database: "outage".into(),
        user: None,
        password: None,
        timeouts: Default::default(),
        compression: Default::default(),
    });
    store.migrate().await.unwrap();
    let app = TestApp::with(TestConfig {
        store: Some(store.clone()),
        pipeline: quick_retries(),
        ..Default::default()
    })
    .await;
    let http = app.otlp_url("");
    let acked = Arc::new(Acked::default());
    let stop = CancellationToken::new();
    let senders: Vec<_> = (0..2)
        .map(|c| {
            tokio::spawn(keep_sending(
                http.clone(),
                stop.clone(),
                acked.clone(),
                c,
                2,
            ))
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    server.stop().await;
    let before = acked.traces.lock().unwrap().len();
    let degraded = wait_status(&http, "degraded").await;
    assert!(
        degraded["reason"].as_str().unwrap().contains("ClickHouse"),
        "{degraded}"
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    let during = acked.traces.lock().unwrap().len() - before;
    assert!(
        during > 0,
        "the collector kept accepting while ClickHouse was away"
    );
    let text = reqwest::get(format!("{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metric(&text, "throughline_spool_records") > 0.0, "{text}");
    assert!(metric(&text, "throughline_spool_bytes") > 0.0, "{text}");
    assert!(
        metric(&text, "throughline_spool_oldest_unsent_seconds") > 1.0,
        "{text}"
    );
    assert!(
        metric(&text, "throughline_insert_errors_total") > 0.0,
        "{text}"
    );
    let server = PrivateServer::start_on(ch_dir.path(), ports).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    for s in senders {
        s.await.unwrap();
    }
    app.settled().await;
    wait_status(&http, "ready").await;

    assert_all_stored_once(&store, &acked).await;
    assert_api_counts_once(&app, &acked).await;
    let metrics = app.metrics().await;
    assert!(metric(&metrics, "throughline_insert_retries_total") > 0.0);
    assert_eq!(metric(&metrics, "throughline_spool_records"), 0.0);
    assert_eq!(metric(&metrics, "throughline_dead_letters_total"), 0.0);
    app.stop().await;
    server.stop().await;
}

/// Sends `SIGCONT` to a frozen server when dropped, so a failing test leaves
/// no stopped ClickHouse behind.
struct Frozen(libc::pid_t);

impl Frozen {
    /// Stops the process and waits until the kernel says it is stopped
    /// (a signal is delivered a moment after `kill` returns).
    fn freeze(pid: u32) -> Frozen {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) }, 0);
        let frozen = Frozen(pid as libc::pid_t);
        // `pid (name) S ...`: the state follows the name's parenthesis.
        let stopped = |stat: &str| stat[stat.rfind(')').unwrap() + 2..].starts_with('T');
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let threads = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
            let all = threads.into_iter().all(|thread| {
                let path = thread.unwrap().path().join("stat");
                std::fs::read_to_string(path).is_ok_and(|stat| stopped(&stat))
            });
            if all {
                return frozen;
            }
            assert!(Instant::now() < deadline, "ClickHouse did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe {
            libc::kill(self.0, libc::SIGCONT);
        }
    }
}

/// GET `url`; its status, body and how long it took, which must be under
/// `within` (the test's own client gives up only later).
async fn answered_within(url: &str, within: Duration) -> (u16, String, Duration) {
    let client = reqwest::Client::builder()
        .timeout(within + Duration::from_secs(20))
        .build()
        .unwrap();
    let started = Instant::now();
    let response = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url} gave no answer: {e}"));
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    let took = started.elapsed();
    assert!(
        took < within,
        "{url} answered after {took:?}, not within {within:?}: {body}"
    );
    (status, body, took)
}

/// ClickHouse frozen with SIGSTOP (issue 21, item 3): it keeps its port and
/// answers nothing. With short timeouts configured, `/readyz` on both ports
/// answers within 10 s (the collector degraded, the console 503), a page
/// and an API call answer 503 within their timeout, the collector keeps
/// acknowledging into its spool; after SIGCONT everything recovers and every
/// acknowledged span and event is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_clickhouse_hangs_nothing_and_loses_nothing() {
    let ch_dir = tempfile::tempdir().unwrap();
    let server = PrivateServer::start(ch_dir.path()).await.unwrap();
    let timeouts = store::Timeouts {
        connect: Duration::from_secs(1),
        query: Duration::from_secs(2),
    };
    let store = Store::new(StoreConfig {
        url: server.url().to_string(),
        database: "frozen".into(),
        user: None,
        password: None,
        timeouts,
        compression: Default::default(),
    });
    store.migrate().await.unwrap();
    let app = TestApp::with(TestConfig {
        store: Some(store.clone()),
        pipeline: quick_retries(),
        ..Default::default()
    })
    .await;
    let http = app.otlp_url("");
    let acked = Arc::new(Acked::default());
    let stop = CancellationToken::new();
    // One request before the freeze, stored: the page and the API have
    // something to look up.
    let sender = tokio::spawn(keep_sending(
        http.clone(),
        stop.clone(),
        acked.clone(),
        0,
        1,
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    sender.await.unwrap();
    app.settled().await;
    let first = acked.traces.lock().unwrap()[0];
    assert_eq!(readyz(&http).await["status"], "ready");

    let frozen = Frozen::freeze(server.pid().expect("the server runs"));
    let ten = Duration::from_secs(10);
    let (status, body, took) = answered_within(&format!("{http}/readyz"), ten).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "degraded", "{body} after {took:?}");
    let (status, body, _) = answered_within(&app.console_url("/readyz"), ten).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": "not ready", "reason": "ClickHouse is not reachable"})
    );
    // A statement may take 2 s; a page or an API call gives up after its
    // first statement that does not answer.
    let within = timeouts.query + Duration::from_secs(3);
    let page = app.console_url(&format!("/traces/{}", trace_hex(first)));
    let (status, body, _) = answered_within(&page, within).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("The data store is not answering"), "{body}");
    let api = app.console_url(&format!("/api/v1/keys/order/F-{first}"));
    let (status, body, _) = answered_within(&api, within).await;
    assert_eq!(status, 503, "{body}");

    // The collector acknowledges into its spool all the while; its writer
    // times out and retries.
    let before = acked.traces.lock().unwrap().len();
    let stop = CancellationToken::new();
    let sender = tokio::spawn(keep_sending(
        http.clone(),
        stop.clone(),
        acked.clone(),
        1000,
        1,
    ));
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.cancel();
    sender.await.unwrap();
    assert!(
        acked.traces.lock().unwrap().len() > before,
        "the collector kept acknowledging while ClickHouse was frozen"
    );
    // The writer's insert timed out (2 s) and is retried.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let degraded = wait_status(&http, "degraded").await;
        if degraded["reason"] == "ClickHouse does not take inserts; requests are kept in the spool"
        {
            break;
        }
        assert!(Instant::now() < deadline, "{degraded}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = reqwest::get(format!("{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metric(&text, "throughline_spool_records") > 0.0, "{text}");
    assert!(
        metric(&text, "throughline_insert_errors_total") > 0.0,
        "{text}"
    );

    drop(frozen); // SIGCONT
    wait_status(&http, "ready").await;
    app.settled().await;
    let (status, body, _) = answered_within(&app.console_url("/readyz"), ten).await;
    assert_eq!(status, 200, "{body}");
    assert_all_stored_once(&store, &acked).await;
    assert_api_counts_once(&app, &acked).await;
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, "throughline_spool_records"), 0.0);
    assert_eq!(metric(&metrics, "throughline_dead_letters_total"), 0.0);
    app.stop().await;
    server.stop().await;
}

/// `N` distinct free ports that stay ours while a process restarts on them:
/// outside the kernel's ephemeral range and handed out once per test run.
fn free_ports<const N: usize>() -> [u16; N] {
    store::server::free_ports().unwrap()
}

/// The real binary as `throughline collector`.
fn spawn_collector(store: &Store, data_dir: &Path, http: u16, grpc: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_throughline"))
        .arg("collector")
        .args(["--clickhouse-url", &store.config().url])
        .args(["--clickhouse-database", &store.config().database])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--otlp-http-addr", &format!("127.0.0.1:{http}")])
        .args(["--otlp-grpc-addr", &format!("127.0.0.1:{grpc}")])
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(data_dir.join("collector-stderr.log"))
                .unwrap(),
        )
        .spawn()
        .unwrap()
}

/// Polls the collector's `/metrics` until its spool is empty (at most 60 s).
async fn wait_spool_empty(http: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = reqwest::get(format!("{http}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metric(&text, "throughline_spool_records") == 0.0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the spool was not drained within 60 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_listening(http: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the collector exited early"
        );
        if reqwest::get(format!("{http}/healthz")).await.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the collector did not listen within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `kill -9` of the collector mid-stream, then a restart on the same data
/// directory: every request acknowledged before the kill arrives, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_killed_mid_stream_delivers_every_acknowledged_record_once_after_restart() {
    let store = harness::store().await;
    let data_dir = tempfile::tempdir().unwrap();
    let [http_port, grpc_port] = free_ports();
    let http = format!("http://127.0.0.1:{http_port}");
    let mut child = spawn_collector(&store, data_dir.path(), http_port, grpc_port);
    wait_listening(&http, &mut child).await;

    let acked = Arc::new(Acked::default());
    let stop = CancellationToken::new();
    let senders: Vec<_> = (0..4)
        .map(|c| {
            tokio::spawn(keep_sending(
                http.clone(),
                stop.clone(),
                acked.clone(),
                c,
                4,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    stop.cancel();
    for s in senders {
        s.await.unwrap();
    }
    assert!(!acked.traces.lock().unwrap().is_empty());

    let mut child = spawn_collector(&store, data_dir.path(), http_port, grpc_port);
    wait_listening(&http, &mut child).await;
    wait_spool_empty(&http).await;
    assert_all_stored_once(&store, &acked).await;
    assert_rollups_count_once(&store).await;
    child.kill().unwrap();
    child.wait().unwrap();
    store.drop_database().await.unwrap();
}

/// `kill -9` of an edge collector (`collector --forward-to`) while it
/// forwards to a central collector, then a restart on the same data
/// directory: every request the edge acknowledged reaches central once,
/// with the edge's plant (issue 19).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_collector_killed_mid_forward_delivers_every_acknowledged_record_once() {
    let central = TestApp::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let [http_port, grpc_port] = free_ports();
    let http = format!("http://127.0.0.1:{http_port}");
    let url = central.otlp_url("");
    let edge = || spawn_edge(&url, None, data_dir.path(), http_port, grpc_port);
    let mut child = edge();
    wait_listening(&http, &mut child).await;

    let acked = Arc::new(Acked::default());
    let stop = CancellationToken::new();
    let senders: Vec<_> = (0..4)
        .map(|c| {
            tokio::spawn(keep_sending(
                http.clone(),
                stop.clone(),
                acked.clone(),
                c,
                4,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    stop.cancel();
    for s in senders {
        s.await.unwrap();
    }

    let mut child = edge();
    wait_listening(&http, &mut child).await;
    wait_spool_empty(&http).await;
    central.settled().await;
    assert_all_stored_once(&central.store, &acked).await;
    assert_rollups_count_once(&central.store).await;
    let until = domain::now_ns() + 86_400_000_000_000;
    for span in central.store.spans_between(0, until).await.unwrap() {
        assert!(
            span.resource
                .contains(&("plant.id".to_string(), "hamburg".to_string())),
            "{span:?}"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The real binary as an edge collector (`collector --forward-to`) of
/// plant `hamburg`, forwarding to `to` with `token` if any.
fn spawn_edge(to: &str, token: Option<&str>, data_dir: &Path, http: u16, grpc: u16) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_throughline"));
    command
        .arg("collector")
        .args(["--forward-to", to])
        .args(["--plant", crate::forward::PLANT])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--otlp-http-addr", &format!("127.0.0.1:{http}")])
        .args(["--otlp-grpc-addr", &format!("127.0.0.1:{grpc}")]);
    if let Some(token) = token {
        command.args(["--forward-token", token]);
    }
    command
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(data_dir.join("edge-stderr.log"))
                .unwrap(),
        )
        .spawn()
        .unwrap()
}

async fn metrics_of(http: &str) -> String {
    reqwest::get(format!("{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Issue 19's acceptance: connectors send spans, log records that are
/// events, and CloudEvents to an edge collector (the real binary) while a
/// proxy between it and central drops every connection for two minutes;
/// when the link is back the edge is `kill -9`ed while it forwards its
/// backlog, and restarted on the same spool. Every request the edge
/// acknowledged is stored centrally exactly once, with its plant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_minute_cut_and_an_edge_killed_mid_forward_lose_and_duplicate_nothing() {
    const CUT: Duration = Duration::from_secs(120);
    let plant = crate::forward::PLANT;
    let (central, token) = crate::forward::central(plant).await;
    let proxy = crate::forward::Proxy::start(central.http).await;
    let data_dir = tempfile::tempdir().unwrap();
    let [http_port, grpc_port] = free_ports();
    let http = format!("http://127.0.0.1:{http_port}");
    let edge = || {
        spawn_edge(
            &proxy.url(),
            Some(&token),
            data_dir.path(),
            http_port,
            grpc_port,
        )
    };
    let mut child = edge();
    wait_listening(&http, &mut child).await;

    // Three connectors, paced so that the cut spreads over a few thousand
    // requests: two send spans and CloudEvents, one log records that are
    // events.
    let acked = Arc::new(Acked::default());
    let stop = CancellationToken::new();
    let pause = Duration::from_millis(250);
    let mut senders: Vec<_> = (0..2)
        .map(|c| {
            tokio::spawn(keep_sending_every(
                http.clone(),
                stop.clone(),
                acked.clone(),
                c,
                2,
                pause,
            ))
        })
        .collect();
    senders.push(tokio::spawn(keep_sending_log_events(
        http.clone(),
        stop.clone(),
        acked.clone(),
        0,
        1,
        pause,
    )));
    tokio::time::sleep(Duration::from_secs(2)).await;

    proxy.cut.store(true, Ordering::SeqCst);
    let acked_before_cut = acked.traces.lock().unwrap().len();
    tokio::time::sleep(CUT).await;
    let m = metrics_of(&http).await;
    assert_eq!(metric(&m, "throughline_forward_upstream_up"), 0.0, "{m}");
    assert!(metric(&m, "throughline_spool_records") > 0.0, "{m}");
    // The edge kept acknowledging through the cut.
    assert!(
        acked.traces.lock().unwrap().len() > acked_before_cut + 100,
        "the edge acknowledged spans during the cut"
    );
    let forwarded_in_cut = metric(&m, "throughline_forwarded_total{signal=\"spans\"}");

    // The link is back: kill -9 the edge as soon as it forwards again (its
    // backlog is several batches), restart it on the same spool.
    proxy.cut.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = metrics_of(&http).await;
        if metric(&m, "throughline_forwarded_total{signal=\"spans\"}") > forwarded_in_cut {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edge never forwarded again:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut child = edge();
    wait_listening(&http, &mut child).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    for s in senders {
        s.await.unwrap();
    }
    wait_spool_empty(&http).await;
    central.settled().await;

    assert!(!acked.logs.lock().unwrap().is_empty());
    assert_all_stored_once(&central.store, &acked).await;
    assert_rollups_count_once(&central.store).await;
    let until = domain::now_ns() + 86_400_000_000_000;
    let plant_of = |attrs: &[(String, String)], name: &str| {
        attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    for span in central.store.spans_between(0, until).await.unwrap() {
        assert_eq!(
            plant_of(&span.resource, "plant.id").as_deref(),
            Some(plant),
            "{span:?}"
        );
    }
    let mut logs: HashMap<String, u64> = HashMap::new();
    for log in central.store.log_records_between(0, until).await.unwrap() {
        assert_eq!(
            plant_of(&log.resource, "plant.id").as_deref(),
            Some(plant),
            "{log:?}"
        );
        *logs.entry(log.body).or_default() += 1;
    }
    let mut log_events: HashMap<String, u64> = HashMap::new();
    for event in central.store.events_in(0, until).await.unwrap() {
        assert_eq!(
            plant_of(&event.attributes, "plant").as_deref(),
            Some(plant),
            "{event:?}"
        );
        if event.data.starts_with("fl-") {
            *log_events.entry(event.data).or_default() += 1;
        }
    }
    for n in acked.logs.lock().unwrap().iter() {
        for i in 0..LOG_EVENTS {
            let body = format!("fl-{n}-{i}");
            assert_eq!(logs.get(&body).copied(), Some(1), "log record {body}");
            assert_eq!(log_events.get(&body).copied(), Some(1), "its event {body}");
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A spool segment cut in the middle of its last record (a power cut
/// mid-append): the collector logs and skips it, and replays the records
/// before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_torn_mid_record_replays_the_records_before_it() {
    let spool_dir = tempfile::tempdir().unwrap();
    // ClickHouse away: the requests stay in the spool.
    let app = TestApp::with(TestConfig {
        store: Some(unreachable_store()),
        spool_dir: Some(spool_dir.path().to_path_buf()),
        pipeline: quick_retries(),
        ..Default::default()
    })
    .await;
    let client = reqwest::Client::new();
    for n in 0..3 {
        let r = client
            .post(app.otlp_url("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(spans_request(n, None).encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    app.stop().await;
    let segments: Vec<_> = std::fs::read_dir(spool_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "spool"))
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    let len = std::fs::metadata(&segments[0]).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segments[0])
        .unwrap()
        .set_len(len - 100)
        .unwrap();

    let app = TestApp::with(TestConfig {
        spool_dir: Some(spool_dir.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    app.settled().await;
    let (spans, _) = stored(&app.store).await;
    assert_eq!(spans.get(&trace_hex(0)).copied(), Some(SPANS as u64));
    assert_eq!(spans.get(&trace_hex(1)).copied(), Some(SPANS as u64));
    assert_eq!(spans.get(&trace_hex(2)), None, "the torn record");
}

/// While the spool is full, OTLP/HTTP and events answer 429 with
/// Retry-After and gRPC RESOURCE_EXHAUSTED; what was acknowledged before is
/// stored once ClickHouse is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_answers_429_and_resource_exhausted_and_drops_nothing_acknowledged() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    let spool_dir = tempfile::tempdir().unwrap();
    let app = TestApp::with(TestConfig {
        store: Some(unreachable_store()),
        spool_dir: Some(spool_dir.path().to_path_buf()),
        spool_max_bytes: 64 * 1024,
        pipeline: quick_retries(),
        ..Default::default()
    })
    .await;
    let http = app.otlp_url("");
    wait_status(&http, "degraded").await;
    let client = reqwest::Client::new();
    let mut acked = Vec::new();
    let mut refused = None;
    for n in 0..1000 {
        let r = client
            .post(format!("{http}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(spans_request(n, None).encode_to_vec())
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => acked.push(n),
            429 => {
                refused = Some(r);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let refused = refused.expect("the spool filled up");
    assert!(refused.headers().contains_key("retry-after"));
    assert!(!acked.is_empty());

    let events = client
        .post(format!("{http}/v1/events"))
        .header("content-type", "application/cloudevents-batch+json")
        .body(events_body(5000))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 429);
    assert!(events.headers().contains_key("retry-after"));

    let mut grpc = TraceServiceClient::connect(app.grpc_url()).await.unwrap();
    let status = grpc.export(spans_request(6000, None)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    // With RetryInfo, so OTLP clients retry instead of dropping the batch.
    let details = String::from_utf8_lossy(status.details());
    assert!(details.contains("google.rpc.RetryInfo"), "{status:?}");

    let ready = reqwest::get(format!("{http}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let text = reqwest::get(format!("{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metric(
            &text,
            "throughline_requests_refused_total{reason=\"spool_full\"}"
        ) >= 3.0
    );
    assert_eq!(
        metric(&text, "throughline_spool_records"),
        acked.len() as f64
    );
    app.stop().await;

    // ClickHouse back (a collector on the same spool that reaches it).
    let app = TestApp::with(TestConfig {
        spool_dir: Some(spool_dir.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    app.settled().await;
    let (spans, _) = stored(&app.store).await;
    for n in &acked {
        assert_eq!(
            spans.get(&trace_hex(*n)).copied(),
            Some(SPANS as u64),
            "request {n}"
        );
    }
    assert_eq!(spans.len(), acked.len());
}

/// A row ClickHouse refuses as data goes to the dead-letter file with the
/// reason and is counted; the rows of its request and of other requests are
/// stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_clickhouse_refuses_goes_to_dead_letters_while_the_rest_flows() {
    let store = harness::store().await;
    // This database's spans table refuses spans named `poison`.
    store.refuse_spans_named("poison").await.unwrap();
    let app = TestApp::with(TestConfig {
        store: Some(store.clone()),
        ..Default::default()
    })
    .await;
    for (n, poison) in [(0, Some(7)), (1, None)] {
        let r = app
            .post(
                "/v1/traces",
                "application/x-protobuf",
                &[],
                spans_request(n, poison).encode_to_vec(),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    app.settled().await;
    let (spans, _) = stored(&store).await;
    assert_eq!(spans.get(&trace_hex(0)).copied(), Some(SPANS as u64 - 1));
    assert_eq!(spans.get(&trace_hex(1)).copied(), Some(SPANS as u64));

    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, "throughline_dead_letters_total"), 1.0);
    let text = std::fs::read_to_string(
        app.spool
            .dir()
            .join(collector::spool::dead_letter::FILE_NAME),
    )
    .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["kind"], "span");
    assert_eq!(
        lines[0]["id"],
        format!("{}/{}", trace_hex(0), "0000000000000008")
    );
    assert!(
        lines[0]["reason"].as_str().unwrap().contains("throwIf"),
        "{text}"
    );
    assert!(lines[0]["record"].as_str().unwrap().contains("poison"));
}

/// A collector started while ClickHouse is down (a plant cut off, a restart
/// during an outage) starts anyway, accepts into its spool, says
/// "degraded", and migrates and stores everything once ClickHouse is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_started_while_clickhouse_is_down_stores_everything_once_it_is_up() {
    let ch_dir = tempfile::tempdir().unwrap();
    let [ch_http, ch_tcp, http_port, grpc_port] = free_ports();
    let store = Store::new(StoreConfig {
        url: format!("http://127.0.0.1:{ch_http}"),
        database: "late".into(),
        user: None,
        password: None,
        timeouts: Default::default(),
        compression: Default::default(),
    });
    let data_dir = tempfile::tempdir().unwrap();
    let http = format!("http://127.0.0.1:{http_port}");
    let mut child = spawn_collector(&store, data_dir.path(), http_port, grpc_port);
    wait_listening(&http, &mut child).await;
    let client = reqwest::Client::new();
    let acked = Acked::default();
    for n in 0..3 {
        let r = client
            .post(format!("{http}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(spans_request(n, None).encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        acked.traces.lock().unwrap().push(n);
        let r = client
            .post(format!("{http}/v1/events"))
            .header("content-type", "application/cloudevents-batch+json")
            .body(events_body(n))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        acked.events.lock().unwrap().push(n);
    }
    let degraded = wait_status(&http, "degraded").await;
    // The open /readyz says what, not where (the log and /admin do).
    let reason = degraded["reason"].as_str().unwrap();
    assert!(reason.starts_with("ClickHouse "), "{degraded}");
    assert!(!reason.contains(&store.config().url), "{degraded}");

    let server = PrivateServer::start_on(ch_dir.path(), [ch_http, ch_tcp])
        .await
        .unwrap();
    wait_spool_empty(&http).await;
    assert_all_stored_once(&store, &acked).await;
    wait_status(&http, "ready").await;
    child.kill().unwrap();
    child.wait().unwrap();
    server.stop().await;
}

/// More concurrent clients than requests handled at once
/// (`receivers::MAX_IN_FLIGHT`): the rest wait their turn, none is refused,
/// all are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_concurrent_clients_than_slots_wait_and_are_all_stored() {
    let app = TestApp::start().await;
    let clients = collector::receivers::MAX_IN_FLIGHT * 3;
    let tasks: Vec<_> = (0..clients as u64)
        .map(|n| {
            let url = app.otlp_url("/v1/traces");
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(url)
                    .header("content-type", "application/x-protobuf")
                    .body(spans_request(n, None).encode_to_vec())
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    app.settled().await;
    let (spans, _) = stored(&app.store).await;
    assert_eq!(spans.len(), clients);
    assert!(spans.values().all(|n| *n == SPANS as u64));
}
