//! TLS on every listener: real clients (the OpenTelemetry SDK's exporters over
//! gRPC and HTTP, reqwest for events and the console) reach the collector and
//! the console over TLS with a certificate made by the test; a client that
//! does not speak TLS fails without harming anyone else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use domain::events::EventConfig;
use opentelemetry::trace::{Span as _, Tracer, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::json;
use throughline::config::TlsArgs;
use tokio::io::AsyncWriteExt;

use crate::harness::{TestApp, TestConfig, TestTls};

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as PEM
/// files into a fresh directory: (dir, cert file, key file, cert PEM).
pub(crate) fn certificate() -> (tempfile::TempDir, PathBuf, PathBuf, Vec<u8>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("make a test certificate");
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let pem = made.cert.pem().into_bytes();
    (dir, cert, key, pem)
}

pub(crate) fn tls_config(cert: &Path, key: &Path, ca_pem: Vec<u8>) -> TestConfig {
    let events: EventConfig = toml::from_str("[systems]\n\"urn:plant1:mes\" = \"mes\"\n").unwrap();
    TestConfig {
        events,
        tls: Some(TestTls {
            server: collector::tls::Tls::load(cert, key).expect("the test certificate loads"),
            ca_pem,
        }),
        ..Default::default()
    }
}

/// Sends one span named `name` through the SDK's exporter over `grpc` (else
/// OTLP/HTTP protobuf), trusting only `ca_pem`; returns its trace id.
async fn send_span(app: &TestApp, grpc: bool, ca_pem: Vec<u8>, name: &'static str) -> String {
    let runtime = tokio::runtime::Handle::current();
    let (grpc_url, http_url) = (app.grpc_url(), app.otlp_url("/v1/traces"));
    assert!(grpc_url.starts_with("https://") && http_url.starts_with("https://"));
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            let exporter = if grpc {
                let _guard = runtime.enter();
                let tls = tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(&ca_pem));
                opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(grpc_url)
                    .with_tls_config(tls)
                    .build()
                    .unwrap()
            } else {
                // reqwest 0.13 (the SDK's) takes rustls' process default.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest13::blocking::Client::builder()
                    .tls_certs_merge([reqwest13::Certificate::from_pem(&ca_pem).unwrap()])
                    .build()
                    .unwrap();
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(client)
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(http_url)
                    .build()
                    .unwrap()
            };
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .build();
            let tracer = provider.tracer("throughline-tests");
            let mut span = tracer.start(name);
            span.set_attribute(KeyValue::new("order.id", "O-TLS"));
            let trace_id = span.span_context().trace_id().to_string();
            span.end();
            provider.force_flush().expect("flush over TLS");
            provider.shutdown().expect("shut the SDK down");
            trace_id
        })
        .join()
        .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_http_grpc_and_events_over_tls_arrive() {
    let (_dir, cert, key, ca) = certificate();
    let app = TestApp::with(tls_config(&cert, &key, ca.clone())).await;

    let over_http = send_span(&app, false, ca.clone(), "erp.order.post").await;
    let over_grpc = send_span(&app, true, ca.clone(), "mes.order.run").await;
    for (trace_id, name) in [(over_http, "erp.order.post"), (over_grpc, "mes.order.run")] {
        let spans = app.trace(&trace_id, 1).await;
        assert_eq!(spans.len(), 1, "{name}: {spans:#?}");
        assert_eq!(spans[0]["name"], name);
    }

    let event = json!({
        "specversion": "1.0", "id": "tls-1", "source": "urn:plant1:mes:line2",
        "type": "mes.work_order.completed", "time": "2026-11-26T08:15:00Z",
        "data": {"work_order.id": "WO-TLS"}
    });
    let r = app
        .post(
            "/v1/events",
            "application/cloudevents+json",
            &[],
            serde_json::to_vec(&event).unwrap(),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let (status, body) = app
        .get("/api/v1/events?from=2026-11-01T00:00:00Z&system=mes")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"][0]["id"], "tls-1", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_serves_pages_and_api_over_tls() {
    let (_dir, cert, key, ca) = certificate();
    let app = TestApp::with(tls_config(&cert, &key, ca)).await;
    let page = app.client.get(app.console_url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
    let (status, body) = app.get("/api/v1/systems").await;
    assert_eq!(status, 200, "{body}");
    let ready = app
        .client
        .get(app.console_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

/// Under TLS the sign-in nonce and the session cookie carry `Secure`, so a
/// browser never sends them over plain HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookies_are_secure_under_tls() {
    let (_dir, cert, key, ca) = certificate();
    let mut config = tls_config(&cert, &key, ca.clone());
    config.users = vec![console::auth::UserConfig {
        name: "ana".into(),
        role: console::auth::Role::Admin,
        password_hash: collector::auth::secret::hash("a long enough password"),
    }];
    let app = TestApp::with(config).await;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie_of = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|v| v.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie"))
    };
    let form = client.get(app.console_url("/login")).send().await.unwrap();
    let nonce = cookie_of(&form, "tl_login");
    assert!(nonce.contains("; Secure"), "{nonce}");
    let html = form.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let csrf = &html[start..start + html[start..].find('"').unwrap()];
    let signed_in = client
        .post(app.console_url("/login"))
        .header("cookie", nonce.split(';').next().unwrap())
        .form(&[
            ("csrf", csrf),
            ("name", "ana"),
            ("password", "a long enough password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let session = cookie_of(&signed_in, "tl_session");
    for flag in ["; Secure", "; HttpOnly", "; SameSite=Lax"] {
        assert!(session.contains(flag), "{flag} in {session}");
    }
}

/// Browsers pick HTTP/2 when the server offers it (ALPN `h2`): the console
/// and the OTLP/HTTP listener then speak it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_are_served_over_tls() {
    use rustls::pki_types::pem::PemObject;
    let (_dir, cert, key, ca) = certificate();
    let app = TestApp::with(tls_config(&cert, &key, ca.clone())).await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(&ca).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    for (addr, path) in [(app.console, "/api/v1/systems"), (app.http, "/healthz")] {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut send, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        let request = hyper::Request::get(format!("https://localhost:{}{path}", addr.port()))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = send.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.version(), hyper::Version::HTTP_2);
    }
    app.stop().await;
}

/// A client that speaks plain HTTP to a TLS port, or connects and says
/// nothing, fails alone: the listener goes on serving everyone else at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_and_silent_clients_fail_alone() {
    let (_dir, cert, key, ca) = certificate();
    let app = TestApp::with(tls_config(&cert, &key, ca)).await;
    let plain = reqwest::Client::new();
    for addr in [app.http, app.console, app.grpc] {
        let r = plain
            .get(format!("http://{addr}/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        assert!(r.is_err(), "plain HTTP to {addr} answered: {r:?}");
    }
    // Silent clients hold connections open without a handshake.
    let mut silent = Vec::new();
    for addr in [app.http, app.console, app.grpc] {
        for _ in 0..3 {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tcp.write_all(b"\x16\x03\x01").await.unwrap();
            silent.push(tcp);
        }
    }
    for url in [app.otlp_url("/healthz"), app.console_url("/healthz")] {
        let r = tokio::time::timeout(Duration::from_secs(5), app.client.get(&url).send())
            .await
            .unwrap_or_else(|_| panic!("{url} answers while silent clients wait"))
            .unwrap();
        assert_eq!(r.status(), 200, "{url}");
    }
    // The plain requests were counted as failed handshakes.
    let mut failures = 0;
    for _ in 0..50 {
        let text = app.metrics().await;
        failures = text
            .lines()
            .find_map(|l| l.strip_prefix("throughline_tls_handshake_failures_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if failures >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failures >= 3, "failed handshakes counted: {failures}");
    drop(silent);
}

/// A wrong key file stops the start with a message naming it.
#[test]
fn a_missing_or_garbage_key_file_is_refused_with_its_message() {
    let (dir, cert, _key, _) = certificate();
    let refused = |key: PathBuf| {
        TlsArgs {
            tls_cert: Some(cert.clone()),
            tls_key: Some(key),
        }
        .load()
        .unwrap_err()
        .to_string()
    };
    let missing = dir.path().join("nope.pem");
    let text = refused(missing.clone());
    assert!(
        text.starts_with(&format!("cannot read tls_key {}: ", missing.display())),
        "{text}"
    );
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key at all\n").unwrap();
    assert_eq!(
        refused(garbage.clone()),
        format!(
            "tls_key {} holds no private key; give the PEM file with the certificate's PKCS#8, PKCS#1 or SEC1 key",
            garbage.display()
        )
    );
}

/// Runs `throughline <args>` with its log in `log`.
fn throughline(args: &[&str], log: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_throughline"))
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("THROUGHLINE_TLS_CERT")
        .env_remove("THROUGHLINE_TLS_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Waits up to 30 s for the log to hold `text`; returns the log.
async fn log_with(child: &mut std::process::Child, log: &Path, text: &str) -> String {
    for _ in 0..300 {
        let seen = std::fs::read_to_string(log).unwrap_or_default();
        if seen.contains(text) {
            return seen;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "throughline exited early:\n{seen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no `{text}` in the log within 30 s:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real binary: `collector` with TLS says https on its listening line and
/// answers only over https; `console` beyond loopback without TLS warns,
/// naming the risk; a key file without a key stops the start (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_tls_and_warns_about_clear_text_beyond_loopback() {
    let (dir, cert, key, ca) = certificate();
    let url = crate::harness::clickhouse_url();
    let database = crate::harness::unique_database();
    let (grpc, http, console) = (free_port(), free_port(), free_port());
    let common = |data: &str| {
        vec![
            "--clickhouse-url".to_string(),
            url.clone(),
            "--clickhouse-database".into(),
            database.clone(),
            "--data-dir".into(),
            dir.path().join(data).display().to_string(),
        ]
    };

    let mut args = vec!["collector".to_string()];
    args.extend(common("collector"));
    args.extend([
        "--otlp-grpc-addr".into(),
        format!("127.0.0.1:{grpc}"),
        "--otlp-http-addr".into(),
        format!("127.0.0.1:{http}"),
        "--tls-cert".into(),
        cert.display().to_string(),
        "--tls-key".into(),
        key.display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = dir.path().join("collector.log");
    let mut collector = throughline(&args, &log);
    let seen = log_with(&mut collector, &log, "collector listening").await;
    assert!(
        seen.contains(&format!("https://127.0.0.1:{http}"))
            && seen.contains(&format!("https://127.0.0.1:{grpc}")),
        "{seen}"
    );
    assert!(!seen.contains("without TLS"), "{seen}");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let r = client
        .get(format!("https://127.0.0.1:{http}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(client
        .get(format!("http://127.0.0.1:{http}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_err());
    collector.kill().unwrap();
    collector.wait().unwrap();

    // With a user (without users the console stays on loopback whatever it
    // is asked).
    let config = dir.path().join("users.toml");
    std::fs::write(
        &config,
        format!(
            "[[users]]\nname = \"ana\"\nrole = \"admin\"\npassword_hash = \"{}\"\n",
            collector::auth::secret::hash("a long enough password")
        ),
    )
    .unwrap();
    let mut args = vec![
        "console".to_string(),
        "--config".into(),
        config.display().to_string(),
    ];
    args.extend(common("console"));
    args.extend(["--console-addr".into(), format!("0.0.0.0:{console}")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = dir.path().join("console.log");
    let mut plain = throughline(&args, &log);
    let seen = log_with(&mut plain, &log, "console listening").await;
    assert!(
        seen.contains(&format!("The console listens on 0.0.0.0:{console} without TLS: tokens, passwords and business data cross the network in clear text; set tls_cert and tls_key")),
        "{seen}"
    );
    plain.kill().unwrap();
    plain.wait().unwrap();

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_throughline"))
        .args(["collector", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&garbage)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "error: tls_key {} holds no private key; give the PEM file with the certificate's PKCS#8, PKCS#1 or SEC1 key",
            garbage.display()
        )
    );
}
