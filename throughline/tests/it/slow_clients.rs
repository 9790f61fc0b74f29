//! Slow and idle clients: every listener (OTLP/HTTP, OTLP/gRPC, the console)
//! closes connections that send nothing, or a request head one line at a
//! time, within the header timeout, and a body trickled byte by byte within
//! the body timeout, while everyone else is served at once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use collector::connections::ConnectionLimits;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::harness::{TestApp, TestConfig};

/// Every timeout of these tests: short, so that they stay fast.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How much later than its timeout a close may come on a busy machine.
const SLACK: Duration = Duration::from_secs(4);
/// How long a client that is served may take.
const SERVED_WITHIN: Duration = Duration::from_secs(1);
const IDLE_CLIENTS: usize = 500;
const SLOW_CLIENTS: usize = 50;

fn short_timeouts() -> TestConfig {
    TestConfig {
        connections: ConnectionLimits {
            header_read_timeout: TIMEOUT,
            body_read_timeout: TIMEOUT,
            idle_timeout: TIMEOUT,
            max_connections: None,
        },
        ..Default::default()
    }
}

/// Reads `stream` until the server closes it (end of stream or reset).
async fn until_closed(stream: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// A client that connects and sends nothing: how long after connecting the
/// server closed it (`None`: still open after `TIMEOUT + SLACK`).
async fn idle_client(addr: SocketAddr) -> JoinHandle<Option<Duration>> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let opened = Instant::now();
    tokio::spawn(async move {
        tokio::time::timeout(TIMEOUT + SLACK, until_closed(&mut stream))
            .await
            .ok()
            .map(|_| opened.elapsed())
    })
}

/// A client that sends a request head one header line a second and never
/// ends it: how long after connecting the server closed it.
async fn slow_header_client(addr: SocketAddr) -> JoinHandle<Option<Duration>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let opened = Instant::now();
    tokio::spawn(async move {
        let (mut reader, mut writer) = stream.into_split();
        let trickle = async move {
            let mut line = 0;
            let mut next = b"POST /v1/traces HTTP/1.1\r\n".to_vec();
            // A write that fails means the server closed the connection.
            while writer.write_all(&next).await.is_ok() {
                tokio::time::sleep(Duration::from_secs(1)).await;
                line += 1;
                next = format!("x-slow-{line}: {line}\r\n").into_bytes();
            }
        };
        let closed = async {
            tokio::select! {
                _ = until_closed(&mut reader) => {}
                _ = trickle => {}
            }
        };
        tokio::time::timeout(TIMEOUT + SLACK, closed)
            .await
            .ok()
            .map(|_| opened.elapsed())
    })
}

/// A small OTLP/JSON trace export.
fn export_json() -> String {
    let now = domain::now_ns();
    serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "patient"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a", "spanId": "7b7b7b7b7b7b7b7b",
            "name": "served", "kind": 2,
            "startTimeUnixNano": (now - 1_000_000).to_string(),
            "endTimeUnixNano": now.to_string(),
        }]}],
    }]})
    .to_string()
}

/// `work` finishes within [`SERVED_WITHIN`]; its answer.
async fn served<T>(what: &str, work: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let answer = tokio::time::timeout(SERVED_WITHIN, work)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {SERVED_WITHIN:?}"));
    eprintln!("{what}: answered in {:?}", started.elapsed());
    answer
}

/// The acceptance test of issue 21: 500 silent clients and 50 that send a
/// header line a second on each listener. Meanwhile a normal client's
/// `/healthz`, OTLP exports (HTTP and gRPC) and a console page are answered
/// within a second, and every silent and slow client is disconnected
/// within the header timeout (plus slack for a busy machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_header_clients_are_cut_off_while_others_are_served() {
    let app = TestApp::with(short_timeouts()).await;
    let listeners = [
        ("OTLP/HTTP", app.http),
        ("OTLP/gRPC", app.grpc),
        ("console", app.console),
    ];
    let mut clients = Vec::new();
    for (what, addr) in listeners {
        for _ in 0..IDLE_CLIENTS {
            clients.push((what, "idle", idle_client(addr).await));
        }
        for _ in 0..SLOW_CLIENTS {
            clients.push((what, "slow header", slow_header_client(addr).await));
        }
    }

    // Everyone else is served at once, on fresh connections.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for (what, url) in [
        ("collector /healthz", app.otlp_url("/healthz")),
        ("console /healthz", app.console_url("/healthz")),
        ("console page", app.console_url("/")),
    ] {
        let response = served(what, client.get(&url).send()).await.unwrap();
        assert_eq!(response.status(), 200, "{what}");
    }
    let response = served(
        "OTLP/HTTP export",
        client
            .post(app.otlp_url("/v1/traces"))
            .header("content-type", "application/json")
            .body(export_json())
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    served("OTLP/gRPC export", async {
        let mut grpc = TraceServiceClient::connect(app.grpc_url()).await.unwrap();
        grpc.export(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![0x7c; 16],
                        span_id: vec![0x7d; 8],
                        name: "served over gRPC".into(),
                        start_time_unix_nano: domain::now_ns() - 1_000_000,
                        end_time_unix_nano: domain::now_ns(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    })
    .await;

    // Every silent and slow client was disconnected in time.
    let mut still_open = Vec::new();
    let mut latest = Duration::ZERO;
    for (what, kind, client) in clients {
        match client.await.unwrap() {
            Some(after) => latest = latest.max(after),
            None => still_open.push(format!("{what} ({kind})")),
        }
    }
    still_open.dedup();
    assert!(
        still_open.is_empty(),
        "still open {:?} after connecting: {still_open:?}",
        TIMEOUT + SLACK
    );
    eprintln!("the last silent or slow client was closed {latest:?} after connecting");

    // Counted per listener.
    let metrics = app.metrics().await;
    for what in ["OTLP/HTTP", "OTLP/gRPC", "console"] {
        let line = format!(
            "throughline_connections_closed_total{{listener=\"{what}\",reason=\"header_timeout\"}} "
        );
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
}

/// A request body sent one byte a second is cut off at the body timeout:
/// `408` and the connection closed, whether the body is chunked or has a
/// length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_byte_by_byte_is_cut_off_by_the_body_timeout() {
    let app = TestApp::with(short_timeouts()).await;
    let trickle = |path: &'static str,
                   content_type: &'static str,
                   framing: &'static str,
                   byte: &'static [u8]| {
        let addr = app.http;
        async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut reader, mut writer) = stream.into_split();
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: {content_type}\r\n{framing}\r\n\r\n"
            );
            writer.write_all(head.as_bytes()).await.unwrap();
            let sent = Instant::now();
            let trickle = async move {
                while writer.write_all(byte).await.is_ok() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                std::future::pending::<()>().await
            };
            let answer = tokio::select! {
                answer = until_closed(&mut reader) => answer,
                _ = trickle => unreachable!(),
                _ = tokio::time::sleep(TIMEOUT + SLACK) => {
                    panic!("{path} ({framing}): still open {:?} after the head", TIMEOUT + SLACK)
                }
            };
            let answer = String::from_utf8_lossy(&answer).to_string();
            assert!(
                answer.starts_with("HTTP/1.1 408"),
                "{path} ({framing}): {answer}"
            );
            assert!(answer.contains("body_read_timeout"), "{answer}");
            sent.elapsed()
        }
    };
    let (chunked, sized) = tokio::join!(
        trickle(
            "/v1/traces",
            "application/json",
            "transfer-encoding: chunked",
            b"1\r\n{\r\n"
        ),
        trickle(
            "/v1/events",
            "application/cloudevents-batch+json",
            "content-length: 1000",
            b"["
        )
    );
    assert!(
        chunked >= TIMEOUT && sized >= TIMEOUT,
        "{chunked:?} {sized:?}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("throughline_request_body_timeouts_total{listener=\"OTLP/HTTP\"} 2"),
        "{metrics}"
    );
}

/// `/healthz` over a fresh connection to `addr`; its status.
async fn healthz(addr: SocketAddr) -> u16 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let response = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// Whether the server closed `stream` within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    tokio::time::timeout(wait, until_closed(stream))
        .await
        .is_ok()
}

/// At `max_connections`, a new client takes the place of the connection
/// idle the longest instead of waiting behind silent ones (the timeouts
/// are long here: nothing times out during the test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_new_client_takes_the_place_of_the_idlest() {
    const CAP: usize = 20;
    let app = TestApp::with(TestConfig {
        connections: ConnectionLimits {
            max_connections: Some(CAP),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    for (what, addr) in [
        ("OTLP/HTTP", app.http),
        ("OTLP/gRPC", app.grpc),
        ("console", app.console),
    ] {
        let mut silent = Vec::new();
        for _ in 0..3 * CAP {
            silent.push(TcpStream::connect(addr).await.unwrap());
        }
        if what == "OTLP/gRPC" {
            served(what, async {
                let mut grpc = TraceServiceClient::connect(app.grpc_url()).await.unwrap();
                grpc.export(ExportTraceServiceRequest::default())
                    .await
                    .unwrap();
            })
            .await;
        } else {
            assert_eq!(served(what, healthz(addr)).await, 200, "{what}");
        }
        // The oldest silent clients made room; the newest are still there.
        assert!(
            closed_within(&mut silent[0], Duration::from_secs(1)).await,
            "{what}: the oldest silent client is still connected"
        );
        let newest = silent.last_mut().unwrap();
        assert!(
            !closed_within(newest, Duration::from_millis(300)).await,
            "{what}: the newest silent client was closed"
        );
    }
    let metrics = app.metrics().await;
    let line = "throughline_connections_closed_total{listener=\"console\",reason=\"evicted\"} ";
    assert!(metrics.contains(line), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "throughline_connections_limit{{listener=\"console\"}} {CAP}"
        )),
        "{metrics}"
    );
}

/// When every connection has a request in flight, none is closed for a
/// new one: the new client waits until a request ends (here: two bodies
/// trickled until their body timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_with_every_connection_busy_a_new_client_waits_for_one_to_end() {
    let app = TestApp::with(TestConfig {
        connections: ConnectionLimits {
            body_read_timeout: TIMEOUT,
            max_connections: Some(2),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.http).await.unwrap();
        stream
            .write_all(b"POST /v1/traces HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n1\r\n{\r\n")
            .await
            .unwrap();
        busy.push(stream);
    }
    // Both requests are in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let status = tokio::time::timeout(TIMEOUT + SLACK, healthz(app.http))
        .await
        .expect("served once a request in flight ended");
    let waited = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        waited >= TIMEOUT / 2,
        "answered after {waited:?}, while both connections were busy"
    );
    for stream in &mut busy {
        let answer = until_closed(stream).await;
        assert!(
            String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
}

/// Over TLS the same holds: clients silent before their handshake are
/// closed within the header timeout, and at the cap a new client takes the
/// place of one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_silent_clients_are_cut_off_and_make_room_at_the_cap() {
    let (_dir, cert, key, ca) = crate::tls::certificate();
    let app = TestApp::with(TestConfig {
        connections: ConnectionLimits {
            header_read_timeout: TIMEOUT,
            max_connections: Some(20),
            ..Default::default()
        },
        ..crate::tls::tls_config(&cert, &key, ca)
    })
    .await;
    let mut clients = Vec::new();
    for addr in [app.http, app.grpc, app.console] {
        for _ in 0..60 {
            clients.push((addr, idle_client(addr).await));
        }
    }
    for url in [app.otlp_url("/healthz"), app.console_url("/healthz")] {
        let response = served(&url, app.client.get(&url).send()).await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
    }
    for (addr, client) in clients {
        assert!(
            client.await.unwrap().is_some(),
            "a silent client of {addr} is still connected {:?} after connecting",
            TIMEOUT + SLACK
        );
    }
}
