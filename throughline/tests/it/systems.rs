//! The service map: calls between systems counted from parent and child
//! spans, one call per child span.

use serde_json::{json, Value};

use crate::harness::TestApp;

/// One span of `service`, started a minute ago.
fn span(service: &str, trace: &str, id: &str, parent: &str) -> Value {
    let start = domain::now_ns() - 60_000_000_000;
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": [{
            "traceId": trace,
            "spanId": id,
            "parentSpanId": parent,
            "name": format!("{service} call"),
            "kind": 2,
            "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": (start + 1_000_000).to_string(),
        }]}],
    }]})
}

/// A parent with several children counts once per child: current ClickHouse
/// keeps one row per key on both sides of an `ANY INNER JOIN`, which made
/// crm -> erp one call here instead of two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_with_two_children_in_another_system_is_two_calls() {
    let app = TestApp::start().await;
    let trace = "5b8efff798038103d269b633813fc60c";
    for body in [
        span("crm", trace, "eee19b7ec3c1b174", ""),
        span("erp", trace, "eee19b7ec3c1b175", "eee19b7ec3c1b174"),
        span("erp", trace, "eee19b7ec3c1b176", "eee19b7ec3c1b174"),
        // A child whose parent never came is no call.
        span("mes", trace, "eee19b7ec3c1b177", "eee19b7ec3c1b999"),
    ] {
        let response = app
            .post(
                "/v1/traces",
                "application/json",
                &[],
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let (status, map) = app.get("/api/v1/systems/map?from=now-1h").await;
    assert_eq!(status, 200, "{map}");
    let edges = map["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{map}");
    assert_eq!(edges[0]["parent"], "crm");
    assert_eq!(edges[0]["child"], "erp");
    assert_eq!(edges[0]["calls"], 2, "{map}");
}
