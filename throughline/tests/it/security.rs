//! Who gets in: connector tokens on every ingest path (none, wrong, another
//! system's), console sign-in and sign-out, roles, CSRF, the lockout, the
//! session cookie's flags, API keys, and the open console's loopback rule.

use std::collections::HashMap;
use std::time::Duration;

use collector::auth::secret;
use collector::auth::TokenConfig;
use console::auth::{ApiKeyConfig, Role, UserConfig};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{json, Value};

use crate::harness::{TestApp, TestConfig};

/// A token for `systems`: its config entry and the secret.
fn token(name: &str, systems: &[&str]) -> (TokenConfig, String) {
    let (id, token) = secret::generate(collector::auth::TOKEN_PREFIX);
    (
        TokenConfig {
            id,
            name: name.into(),
            systems: systems.iter().map(|s| s.to_string()).collect(),
            hash: secret::hash(&token),
            plant: None,
        },
        token,
    )
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(service.into())),
            }),
            key_strindex: 0,
        }],
        ..Default::default()
    })
}

/// One span per `(service, trace byte)`, each of its own trace.
fn traces(spans: &[(&str, u8)]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: spans
            .iter()
            .map(|(service, n)| ResourceSpans {
                resource: resource(service),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![*n; 16],
                        span_id: vec![*n; 8],
                        name: format!("{service}.op"),
                        start_time_unix_nano: 1_764_161_400_000_000_000,
                        end_time_unix_nano: 1_764_161_400_500_000_000,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

fn logs(service: &str, body: &str) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: 1_764_161_400_000_000_000,
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(body.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn trace_hex(n: u8) -> String {
    hex::encode([n; 16])
}

async fn stored_spans(app: &TestApp, n: u8) -> usize {
    let (_, body) = app.get(&format!("/api/v1/traces/{}", trace_hex(n))).await;
    body["spans"].as_array().map_or(0, Vec::len)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn event(id: &str, system: &str) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": "urn:test", "type": "test.happened",
        "system": system, "orderid": format!("SO-{id}"),
    })
}

/// Every ingest path: no token, a wrong one, one of another system, a
/// mixed batch, the right one; nothing refused is stored.
#[tokio::test]
async fn ingest_needs_a_token_bound_to_the_records_system() {
    let (crm, crm_token) = token("crm connector", &["crm"]);
    let (mes, mes_token) = token("", &["mes"]);
    let app = TestApp::with(TestConfig {
        tokens: vec![crm.clone(), mes],
        ..Default::default()
    })
    .await;
    let wrong = format!("tlc_{}_not-the-secret", crm.id);
    let post = |path: &'static str, ct: &'static str, auth: Option<String>, body: Vec<u8>| {
        let mut request = app
            .client
            .post(app.otlp_url(path))
            .header("content-type", ct)
            .body(body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        async move { request.send().await.unwrap() }
    };
    const PB: &str = "application/x-protobuf";

    // OTLP/HTTP protobuf traces.
    let body = traces(&[("crm", 1)]).encode_to_vec();
    for auth in [
        None,
        Some(bearer(&wrong)),
        Some(bearer("garbage")),
        Some("Basic eDp5".into()),
    ] {
        let r = post("/v1/traces", PB, auth.clone(), body.clone()).await;
        assert_eq!(r.status(), 401, "{auth:?}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"throughline\""
        );
        let text = String::from_utf8_lossy(&r.bytes().await.unwrap()).to_string();
        assert!(text.contains("connector token"), "{text}");
    }
    let r = post("/v1/traces", PB, Some(bearer(&mes_token)), body.clone()).await;
    assert_eq!(r.status(), 403);
    let text = String::from_utf8_lossy(&r.bytes().await.unwrap()).to_string();
    assert!(
        text.contains("may write for mes only, not for system `crm`"),
        "{text}"
    );
    let r = post("/v1/traces", PB, Some(bearer(&crm_token)), body).await;
    assert_eq!(r.status(), 200);

    // A batch of both systems: the other system's span alone is refused.
    let mixed = traces(&[("crm", 2), ("mes", 3)]).encode_to_vec();
    let r = post("/v1/traces", PB, Some(bearer(&crm_token)), mixed).await;
    assert_eq!(r.status(), 200);
    let answer = ExportTraceServiceResponse::decode(r.bytes().await.unwrap()).unwrap();
    let partial = answer.partial_success.expect("a partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("system `mes`"),
        "{}",
        partial.error_message
    );

    // OTLP/HTTP JSON logs.
    let json_logs = serde_json::to_vec(&json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "crm"}}]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": "1764161400000000000", "body": {"stringValue": "json log"}}]}]
    }]}))
    .unwrap();
    let r = post("/v1/logs", "application/json", None, json_logs.clone()).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("connector token"));
    let r = post(
        "/v1/logs",
        "application/json",
        Some(bearer(&mes_token)),
        json_logs.clone(),
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = post(
        "/v1/logs",
        "application/json",
        Some(bearer(&crm_token)),
        json_logs,
    )
    .await;
    assert_eq!(r.status(), 200);

    // OTLP/gRPC traces and logs.
    let mut grpc = TraceServiceClient::connect(app.grpc_url()).await.unwrap();
    let with = |message, auth: Option<&str>| {
        let mut request = tonic::Request::new(message);
        if let Some(auth) = auth {
            request
                .metadata_mut()
                .insert("authorization", bearer(auth).parse().unwrap());
        }
        request
    };
    let err = grpc
        .export(with(traces(&[("crm", 4)]), None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    let err = grpc
        .export(with(traces(&[("crm", 4)]), Some(&wrong)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    let err = grpc
        .export(with(traces(&[("crm", 4)]), Some(&mes_token)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    grpc.export(with(traces(&[("crm", 5)]), Some(&crm_token)))
        .await
        .unwrap();
    let mut grpc_logs = LogsServiceClient::connect(app.grpc_url()).await.unwrap();
    let mut request = tonic::Request::new(logs("crm", "grpc log"));
    request
        .metadata_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    let err = grpc_logs.export(request).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut request = tonic::Request::new(logs("mes", "grpc log"));
    request
        .metadata_mut()
        .insert("authorization", bearer(&crm_token).parse().unwrap());
    let err = grpc_logs.export(request).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);

    // CloudEvents: structured, batched and binary.
    let structured = "application/cloudevents+json";
    let r = post(
        "/v1/events",
        structured,
        None,
        event("1", "crm").to_string().into(),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"throughline\""
    );
    let r = post(
        "/v1/events",
        structured,
        Some(bearer(&crm_token)),
        event("2", "mes").to_string().into(),
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = post(
        "/v1/events",
        "application/cloudevents-batch+json",
        Some(bearer(&crm_token)),
        json!([event("3", "crm"), event("4", "mes")])
            .to_string()
            .into(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["rejected"][0]["index"], 1);
    let binary = app
        .client
        .post(app.otlp_url("/v1/events"))
        .header("content-type", "application/json")
        .header("ce-specversion", "1.0")
        .header("ce-id", "5")
        .header("ce-source", "urn:test")
        .header("ce-type", "test.happened")
        .header("ce-system", "crm")
        .body("{}");
    let r = binary.try_clone().unwrap().send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = binary
        .header("authorization", bearer(&crm_token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A real SDK exporter with the token as a header.
    let url = app.otlp_url("/v1/traces");
    let sdk_token = crm_token.clone();
    let sdk_trace = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            use opentelemetry::trace::{Tracer, TracerProvider as _};
            use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(url)
                .with_headers(HashMap::from([(
                    "authorization".to_string(),
                    bearer(&sdk_token),
                )]))
                .build()
                .unwrap();
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_simple_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("crm")
                        .build(),
                )
                .build();
            use opentelemetry::trace::TraceContextExt;
            let trace = provider
                .tracer("t")
                .in_span("crm.sdk", |cx| cx.span().span_context().trace_id());
            provider.shutdown().unwrap();
            trace.to_string()
        })
        .join()
        .unwrap()
    })
    .await
    .unwrap();

    // What was let in is stored; nothing refused is.
    app.settled().await;
    assert_eq!(stored_spans(&app, 1).await, 1);
    assert_eq!(stored_spans(&app, 2).await, 1);
    assert_eq!(
        stored_spans(&app, 3).await,
        0,
        "the mes span of the mixed batch"
    );
    assert_eq!(stored_spans(&app, 4).await, 0);
    assert_eq!(stored_spans(&app, 5).await, 1);
    let (_, events) = app.get("/api/v1/events?limit=100").await;
    let mut ids: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["3", "5"]);
    let sdk_spans = app.trace(&sdk_trace, 1).await;
    assert_eq!(sdk_spans.len(), 1, "the SDK's span with its token");
    let metrics = app.metrics().await;
    for line in [
        "throughline_forbidden_total{signal=\"spans\"} 3",
        "throughline_forbidden_total{signal=\"logs\"} 2",
        "throughline_forbidden_total{signal=\"events\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(
        metrics.contains("throughline_requests_refused_total{reason=\"unauthenticated\"} 10"),
        "{metrics}"
    );
}

/// A token cannot take another system's event identity (`source` + `id`):
/// a source mapped to a system needs that system's token, and an event
/// whose source and id were stored from another system is not stored. A
/// span with another system's ids is kept beside it, never over it.
#[tokio::test]
async fn a_token_cannot_take_another_systems_event_or_span_ids() {
    let (crm, crm_token) = token("crm connector", &["crm"]);
    let (erp, erp_token) = token("erp connector", &["erp"]);
    let app = TestApp::with(TestConfig {
        tokens: vec![crm, erp],
        events: domain::events::EventConfig {
            systems: [("urn:erp:".to_string(), "erp".to_string())].into(),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let send = |token: &str, event: Value| {
        let request = app
            .client
            .post(app.otlp_url("/v1/events"))
            .header("content-type", "application/cloudevents+json")
            .header("authorization", bearer(token))
            .body(event.to_string());
        async move { request.send().await.unwrap() }
    };
    let posed = |source: &str, id: &str, system: &str| {
        json!({
            "specversion": "1.0", "id": id, "source": source, "type": "order.failed",
            "system": system, "outcome": "failed", "orderid": "SO-9",
        })
    };

    // A source ERP owns, and the source of ERP's OTLP log events: refused,
    // whatever `system` the event claims.
    for source in ["urn:erp:orders", "otlp-log:erp"] {
        let r = send(&crm_token, posed(source, "E1", "crm")).await;
        assert_eq!(r.status(), 403, "{source}");
        let text = r.text().await.unwrap();
        assert!(text.contains("belongs to system `erp`"), "{text}");
    }
    let r = send(&erp_token, posed("urn:erp:orders", "E1", "erp")).await;
    assert_eq!(r.status(), 200);

    // A source nobody owns: the first system to use an id keeps it.
    let r = send(&erp_token, posed("urn:shared", "E2", "erp")).await;
    assert_eq!(r.status(), 200);
    let r = send(&crm_token, posed("urn:shared", "E2", "crm")).await;
    assert_eq!(r.status(), 200);

    // ERP's span, then CRM's with the same trace and span ids, then ERP's
    // again (a redelivery).
    for (token, service) in [
        (&erp_token, "erp"),
        (&crm_token, "crm"),
        (&erp_token, "erp"),
    ] {
        let mut request = traces(&[(service, 7)]);
        request.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .push(KeyValue {
                key: "order.id".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("SO-SPAN7".into())),
                }),
                key_strindex: 0,
            });
        let r = app
            .client
            .post(app.otlp_url("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .header("authorization", bearer(token))
            .body(request.encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    app.settled().await;
    let spans = app.trace(&trace_hex(7), 2).await;
    let mut services: Vec<&str> = spans
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    services.sort();
    assert_eq!(services, ["crm", "erp"], "{spans:?}");
    // The trace's waterfall and the order's journey (drawn from the key
    // index) show both.
    for (page, path) in [
        ("waterfall", format!("/traces/{}", trace_hex(7))),
        (
            "journey",
            "/keys/order/SO-SPAN7?from=2025-01-01T00:00:00Z".to_string(),
        ),
    ] {
        let (status, html) = get_with(&app, &browser(), &path, ("accept", "text/html")).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            html.contains("erp.op") && html.contains("crm.op"),
            "the {page} shows both spans: {html}"
        );
    }
    let (_, events) = app.get("/api/v1/events?limit=100").await;
    let mut stored: Vec<(String, String)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["system"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        [
            ("E1".to_string(), "erp".to_string()),
            ("E2".into(), "erp".into())
        ]
    );
    let metrics = app.metrics().await;
    for line in [
        "throughline_forbidden_total{signal=\"events\"} 2",
        "throughline_event_id_conflicts_total 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

const ADMIN_PASSWORD: &str = "ana's long password";
const VIEWER_PASSWORD: &str = "victor's long password";

/// The console with an admin, a viewer and a viewer API key.
async fn secured() -> (TestApp, String, TokenConfig) {
    let (key_id, key) = secret::generate(console::auth::API_KEY_PREFIX);
    let (crm, _) = token("crm connector", &["crm"]);
    let app = TestApp::with(TestConfig {
        users: vec![
            UserConfig {
                name: "ana".into(),
                role: Role::Admin,
                password_hash: secret::hash(ADMIN_PASSWORD),
            },
            UserConfig {
                name: "victor".into(),
                role: Role::Viewer,
                password_hash: secret::hash(VIEWER_PASSWORD),
            },
        ],
        api_keys: vec![ApiKeyConfig {
            id: key_id,
            name: "grafana".into(),
            role: Role::Viewer,
            hash: secret::hash(&key),
        }],
        tokens: vec![crm.clone()],
        ..Default::default()
    })
    .await;
    (app, key, crm)
}

/// A browser without cookies or redirects of its own.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` of a `Set-Cookie` for `name`, and the whole header.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| (v.split(';').next().unwrap().to_string(), v.to_string()))
}

/// A hidden input's value in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

struct SignInForm {
    nonce_cookie: String,
    csrf: String,
}

async fn sign_in_form(app: &TestApp, client: &reqwest::Client) -> SignInForm {
    let r = client
        .get(format!("http://{}/login?next=%2Fbreaches", app.console))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (nonce_cookie, _) = set_cookie(&r, "tl_login").expect("a sign-in nonce cookie");
    let html = r.text().await.unwrap();
    SignInForm {
        nonce_cookie,
        csrf: hidden(&html, "csrf"),
    }
}

async fn post_login(
    app: &TestApp,
    client: &reqwest::Client,
    form: &SignInForm,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(format!("http://{}/login", app.console))
        .header("cookie", &form.nonce_cookie)
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// Signs in; the session cookie (`tl_session=...`).
async fn sign_in(app: &TestApp, client: &reqwest::Client, name: &str, password: &str) -> String {
    let form = sign_in_form(app, client).await;
    let r = post_login(
        app,
        client,
        &form,
        &[
            ("csrf", &form.csrf),
            ("next", "/breaches"),
            ("name", name),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(r.headers()["location"], "/breaches");
    let (cookie, whole) = set_cookie(&r, "tl_session").expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(whole.contains(flag), "{flag} in {whole}");
    }
    assert!(!whole.contains("Secure"), "no Secure without TLS: {whole}");
    cookie
}

async fn get_with(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    header: (&str, &str),
) -> (u16, String) {
    let r = client
        .get(format!("http://{}{path}", app.console))
        .header(header.0, header.1)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Sign-in, roles, sign-out, CSRF and the cookie's flags.
#[tokio::test]
async fn console_sign_in_roles_sign_out_and_csrf() {
    let (app, _, crm) = secured().await;
    let client = browser();
    let base = format!("http://{}", app.console);

    // Nobody: pages go to the sign-in page, the API and metrics say 401,
    // health and assets stay open.
    let r = client
        .get(format!("{base}/breaches?from=now-1h"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/login?next=%2Fbreaches%3Ffrom%3Dnow-1h"
    );
    for path in ["/api/v1/processes", "/metrics"] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("API key"),
            "{body}"
        );
    }
    for path in ["/healthz", "/assets/style.css"] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }

    // A sign-in form posted without its CSRF token, or from another
    // browser (no nonce cookie), is refused.
    let form = sign_in_form(&app, &client).await;
    let r = post_login(
        &app,
        &client,
        &form,
        &[("name", "ana"), ("password", ADMIN_PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("CSRF"));
    let r = client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf", form.csrf.as_str()),
            ("name", "ana"),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = post_login(
        &app,
        &client,
        &form,
        &[("csrf", &form.csrf), ("name", "ana"), ("password", "wrong")],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert!(set_cookie(&r, "tl_session").is_none());
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Wrong user name or password"));

    // The viewer: pages and the read API, not the admin page.
    let viewer = sign_in(&app, &client, "victor", VIEWER_PASSWORD).await;
    let (status, html) = get_with(&app, &client, "/breaches", ("cookie", &viewer)).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("victor") && html.contains("Sign out"),
        "{html}"
    );
    assert!(
        !html.contains("href=\"/admin\""),
        "no admin link for a viewer"
    );
    let (status, _) = get_with(&app, &client, "/api/v1/processes", ("cookie", &viewer)).await;
    assert_eq!(status, 200);
    let (status, html) = get_with(&app, &client, "/admin", ("cookie", &viewer)).await;
    assert_eq!(status, 403);
    assert!(html.contains("needs the admin role"), "{html}");

    // Sign-out needs the session's CSRF token; afterwards the cookie is dead.
    let csrf = hidden(
        &get_with(&app, &client, "/", ("cookie", &viewer)).await.1,
        "csrf",
    );
    let logout = |fields: Vec<(&'static str, String)>| {
        client
            .post(format!("{base}/logout"))
            .header("cookie", &viewer)
            .form(&fields)
            .send()
    };
    let r = logout(vec![]).await.unwrap();
    assert_eq!(r.status(), 403);
    let r = logout(vec![("csrf", "forged".into())]).await.unwrap();
    assert_eq!(r.status(), 403);
    let (status, _) = get_with(&app, &client, "/breaches", ("cookie", &viewer)).await;
    assert_eq!(status, 200, "a refused sign-out leaves the session");
    let r = logout(vec![("csrf", csrf)]).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let (_, cleared) = set_cookie(&r, "tl_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (status, _) = get_with(&app, &client, "/breaches", ("cookie", &viewer)).await;
    assert_eq!(status, 303, "the signed-out cookie no longer opens pages");

    // The admin sees definitions, tokens and users, never a hash.
    let admin = sign_in(&app, &client, "ANA", ADMIN_PASSWORD).await;
    let (status, html) = get_with(&app, &client, "/admin", ("cookie", &admin)).await;
    assert_eq!(status, 200);
    let token_id = format!("tlc_{}_", crm.id);
    for text in [token_id.as_str(), "crm connector", "victor", "grafana"] {
        assert!(html.contains(text), "{text} in {html}");
    }
    assert!(!html.contains("argon2"), "no hash on the page");

    // A forged or tampered cookie is nobody.
    let tampered = format!("{}x", admin);
    let (status, _) = get_with(&app, &client, "/", ("cookie", &tampered)).await;
    assert_eq!(status, 303);
}

/// API keys by role; the lockout after repeated failures.
#[tokio::test]
async fn api_keys_and_the_sign_in_lockout() {
    let (app, key, _) = secured().await;
    let client = browser();
    let auth = bearer(&key);
    let (status, _) = get_with(&app, &client, "/api/v1/processes", ("authorization", &auth)).await;
    assert_eq!(status, 200);
    let (status, text) = get_with(&app, &client, "/metrics", ("authorization", &auth)).await;
    assert_eq!(status, 200);
    assert!(text.contains("throughline_received_total"));
    let (status, _) = get_with(&app, &client, "/admin", ("authorization", &auth)).await;
    assert_eq!(status, 403, "a viewer key is no admin");
    let (status, body) = get_with(&app, &client, "/api/v1/storage", ("authorization", &auth)).await;
    assert_eq!(status, 403, "storage is for admins: {body}");
    assert!(body.starts_with('{'), "a JSON answer: {body}");
    let forged = format!("{}x", auth);
    let (status, body) = get_with(
        &app,
        &client,
        "/api/v1/processes",
        ("authorization", &forged),
    )
    .await;
    assert_eq!(status, 401);
    assert!(body.contains("not valid"), "{body}");

    // A name no user can have (here 100 kB) is wrong at once, and is not
    // remembered by the lockout.
    let form = sign_in_form(&app, &client).await;
    let huge = "a".repeat(100_000);
    let r = post_login(
        &app,
        &client,
        &form,
        &[("csrf", &form.csrf), ("name", &huge), ("password", "guess")],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains(&huge[..100]));

    // Twelve guesses sent at once get no more tries than five sent one by
    // one: five are checked (401), the rest wait (429) or are told to come
    // back (503). Then the name is locked, whatever the password; another
    // name is unaffected.
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..12 {
        let request = client
            .post(format!("http://{}/login", app.console))
            .header("cookie", &form.nonce_cookie)
            .form(&[
                ("csrf", form.csrf.clone()),
                ("name", "ana".to_string()),
                ("password", format!("guess {i}")),
            ]);
        guesses.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let statuses = guesses.join_all().await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        statuses.iter().all(|s| [401, 429, 503].contains(s)),
        "{statuses:?}"
    );
    assert!((1..=5).contains(&checked), "{statuses:?}");
    for _ in checked..5 {
        let r = post_login(
            &app,
            &client,
            &form,
            &[("csrf", &form.csrf), ("name", "ana"), ("password", "guess")],
        )
        .await;
        assert_eq!(r.status(), 401);
    }
    let r = post_login(
        &app,
        &client,
        &form,
        &[
            ("csrf", &form.csrf),
            ("name", "ana"),
            ("password", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert!(set_cookie(&r, "tl_session").is_none());
    assert!(r.text().await.unwrap().contains("Too many failed sign-ins"));
    sign_in(&app, &client, "victor", VIEWER_PASSWORD).await;
}

/// With no users the console has no sign-in, says so on every page, and
/// listens on loopback even when asked for every address.
#[tokio::test]
async fn an_open_console_says_so_and_stays_on_loopback() {
    let app = TestApp::start().await;
    let (status, html) = get_with(&app, &browser(), "/breaches", ("accept", "text/html")).await;
    assert_eq!(status, 200);
    assert!(html.contains("No users are configured"), "{html}");
    // Every answer tells the browser not to frame, sniff or leak it.
    let r = browser()
        .get(format!("http://{}/breaches", app.console))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // A page of another site that rebinds its name to 127.0.0.1 (DNS
    // rebinding) is not answered.
    let (status, text) = get_with(
        &app,
        &browser(),
        "/api/v1/processes",
        ("host", "evil.example:80"),
    )
    .await;
    assert_eq!(status, 421, "{text}");
    assert!(text.contains("answers only to localhost"), "{text}");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let console = console::serve::Console::start(
        console::state::AppState {
            reads: console::read::Reads {
                store: app.store.clone(),
                keys: Default::default(),
                processes: Default::default(),
                caches: Default::default(),
                alerts: Default::default(),
                retention: Default::default(),
            },
            metrics: std::sync::Arc::new(collector::metrics::Metrics::new()),
            auth: std::sync::Arc::new(console::auth::Auth::open()),
            correlator: None,
        },
        "0.0.0.0:0".parse().unwrap(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    assert!(console.addr.ip().is_loopback(), "{}", console.addr);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), console.wait())
        .await
        .unwrap();
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A ClickHouse URL with credentials in it (issue 21, item 2), of a server
/// that is not there: its user info never reaches the open `/readyz`, and
/// neither does its address or its error; the admin page has the detail,
/// without the user info.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_keeps_clickhouse_credentials_address_and_errors_to_itself() {
    let port = closed_port();
    let store = store::Store::new(store::StoreConfig {
        url: format!("http://probe:s3cret@127.0.0.1:{port}"),
        database: "nowhere".into(),
        user: None,
        password: None,
        timeouts: Default::default(),
        compression: Default::default(),
    });
    let (key_id, key) = secret::generate(console::auth::API_KEY_PREFIX);
    let app = TestApp::with(TestConfig {
        store: Some(store),
        api_keys: vec![ApiKeyConfig {
            id: key_id,
            name: "operator".into(),
            role: Role::Admin,
            hash: secret::hash(&key),
        }],
        ..Default::default()
    })
    .await;
    let client = browser();
    let leaks = |text: &str| {
        text.contains("s3cret")
            || text.contains("probe")
            || text.contains(&port.to_string())
            || text.contains("network error")
    };

    let r = client.get(app.otlp_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the collector keeps accepting");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "degraded", "reason": "ClickHouse is not reachable; requests are kept in the spool"})
    );

    let r = client.get(app.console_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let text = r.text().await.unwrap();
    assert!(!leaks(&text), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        json!({"status": "not ready", "reason": "ClickHouse is not reachable"})
    );

    // The admin sees where and why, without the user info.
    let (status, html) = get_with(
        &app,
        &client,
        "/admin",
        ("authorization", &format!("Bearer {key}")),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        !html.contains("s3cret") && !html.contains("probe"),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "ClickHouse at http://127.0.0.1:{port} (database `nowhere`) is not usable: ClickHouse: network error"
        )),
        "{html}"
    );
}

/// The binary prints a ClickHouse URL without its user info: in the log
/// of `collector`, and in the errors `console` and `migrate` stop with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_never_prints_clickhouse_credentials() {
    let port = closed_port();
    let url = format!("http://probe:s3cret@127.0.0.1:{port}");
    let shown = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    // Each subcommand takes only its own flags: `migrate` no data dir or
    // console address.
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_throughline"));
        command.args(args).args(["--clickhouse-url", &url]);
        if args != ["migrate"] {
            command
                .arg("--data-dir")
                .arg(dir.path())
                .args(["--console-addr", "127.0.0.1:0"]);
        }
        let out = command
            .env_remove("THROUGHLINE_CLICKHOUSE_URL")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} exits with an error");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for command in [&["migrate"][..], &["console"][..]] {
        let text = run(command);
        assert!(!text.contains("s3cret"), "{command:?}: {text}");
        assert!(text.contains(&shown), "{command:?}: {text}");
    }

    // `collector` starts without ClickHouse and says so in its log.
    let [http, grpc] = std::array::from_fn::<_, 2, _>(|_| closed_port());
    let log = dir.path().join("collector-stderr.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_throughline"))
        .arg("collector")
        .args(["--clickhouse-url", &url, "--data-dir"])
        .arg(dir.path())
        .args(["--otlp-http-addr", &format!("127.0.0.1:{http}")])
        .args(["--otlp-grpc-addr", &format!("127.0.0.1:{grpc}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let body: Value = loop {
        assert!(child.try_wait().unwrap().is_none(), "the collector exited");
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{http}/readyz")).await {
            break r.json().await.unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no collector");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains(&shown), "{text}");
}

/// A resource that names its service twice: the first `service.name` is
/// the system for the column, the stored map and the token check alike.
#[tokio::test]
async fn a_duplicate_service_name_is_the_first_for_the_column_the_map_and_the_token() {
    let (crm, crm_token) = token("crm connector", &["crm"]);
    let (erp, erp_token) = token("erp connector", &["erp"]);
    let app = TestApp::with(TestConfig {
        tokens: vec![crm, erp],
        ..Default::default()
    })
    .await;
    let body = |first: &str, second: &str, n: u8| {
        serde_json::to_vec(&json!({"resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": first}},
                {"key": "service.name", "value": {"stringValue": second}},
            ]},
            "scopeSpans": [{"spans": [{
                "traceId": trace_hex(n), "spanId": hex::encode([n; 8]), "name": "dup",
                "startTimeUnixNano": "1764161400000000000", "endTimeUnixNano": "1764161400500000000",
            }]}]
        }]}))
        .unwrap()
    };
    let client = &app;
    let send = |token: &str, body: Vec<u8>| {
        let auth = bearer(token);
        async move {
            client
                .post(
                    "/v1/traces",
                    "application/json",
                    &[("authorization", auth.as_str())],
                    body,
                )
                .await
        }
    };

    let r = send(&crm_token, body("crm", "erp", 61)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let spans = app.trace(&trace_hex(61), 1).await;
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0]["service"], "crm");
    assert_eq!(
        spans[0]["resource"],
        json!({"service.name": "crm"}),
        "the map keeps the first service.name, as the column does: {}",
        spans[0]
    );
    assert_eq!(
        spans[0]["attributes"]["throughline.truncated"],
        "duplicates"
    );

    // The erp token may not send it: the records are crm's.
    let r = send(&erp_token, body("crm", "erp", 62)).await;
    assert_eq!(r.status(), 403);
    // Nor may the crm token send the reverse: those records are erp's.
    let r = send(&crm_token, body("erp", "crm", 63)).await;
    assert_eq!(r.status(), 403);
    let r = send(&erp_token, body("erp", "crm", 64)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.trace(&trace_hex(64), 1).await[0]["resource"]["service.name"],
        "erp"
    );
    assert_eq!(
        stored_spans(&app, 62).await + stored_spans(&app, 63).await,
        0
    );

    let metrics = app.metrics().await;
    let line = "throughline_truncated_records_total{signal=\"spans\",limit=\"duplicates\"} 2";
    assert!(metrics.contains(line), "no `{line}` in\n{metrics}");
    app.stop().await;
}
