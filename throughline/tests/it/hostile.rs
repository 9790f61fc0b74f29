//! Hostile input against the real stack: SQL quotes and `<script>` in a
//! business key and its attributes stay data (stored, found, shown as text);
//! records past the limits are stored cut and marked, not refused; ids in
//! URLs are checked before anything is looked up.

use console::links::urlencode;
use serde_json::{json, Value};

use crate::harness::{attr, TestApp};
use crate::pages::page;

/// Everything a careless console would pass on to SQL or HTML.
const HOSTILE: &str = "SO-'; DROP TABLE spans_v2; --\" OR 1=1 <script>alert(1)</script>";
const SCRIPT: &str = "<script>alert(1)</script>";

fn string_attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// An OTLP/JSON trace export with one span of `service`.
fn export(
    service: &str,
    trace_id: &str,
    span_id: &str,
    name: &str,
    attributes: Vec<Value>,
    extra: Value,
) -> Value {
    let now = domain::now_ns();
    let mut span = json!({
        "traceId": trace_id, "spanId": span_id, "name": name, "kind": 2,
        "startTimeUnixNano": (now - 2_000_000).to_string(),
        "endTimeUnixNano": now.to_string(),
        "attributes": attributes,
    });
    if let (Some(span), Value::Object(extra)) = (span.as_object_mut(), extra) {
        span.extend(extra);
    }
    json!({"resourceSpans": [{
        "resource": {"attributes": [string_attr("service.name", service)]},
        "scopeSpans": [{"spans": [span]}],
    }]})
}

async fn post_json(app: &TestApp, path: &str, content_type: &str, body: &Value) -> (u16, Value) {
    let response = app
        .post(path, content_type, &[], serde_json::to_vec(body).unwrap())
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The page must show `SCRIPT` as text and never as markup.
fn assert_escaped(html: &str, what: &str) {
    assert!(
        !html.contains("<script>alert"),
        "{what}: raw <script> in the page:\n{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{what}: the value is not shown as text:\n{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_and_search_term_with_sql_quotes_and_script_are_harmless_and_shown_as_text() {
    let app = TestApp::start().await;
    let trace_id = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
    let body = export(
        SCRIPT,
        trace_id,
        "5b5b5b5b5b5b5b5b",
        &format!("post {SCRIPT}"),
        vec![
            string_attr("order.id", HOSTILE),
            string_attr("note", "' OR 1=1; DROP TABLE key_index; --"),
            string_attr(SCRIPT, SCRIPT),
        ],
        json!({}),
    );
    let (status, answer) = post_json(&app, "/v1/traces", "application/json", &body).await;
    assert_eq!(status, 200, "{answer}");

    // The API finds the key and returns its values as they were sent.
    let key_path = format!("order/{}", urlencode(HOSTILE));
    let (status, key) = app.get(&format!("/api/v1/keys/{key_path}")).await;
    assert_eq!(status, 200, "{key}");
    assert_eq!(key["key"]["value"], HOSTILE, "{key}");
    let found = crate::harness::records(&key, "span");
    assert_eq!(found.len(), 1, "{key}");
    assert_eq!(found[0]["trace_id"], trace_id, "{key}");
    let spans = app.trace(trace_id, 1).await;
    assert_eq!(attr(&spans[0], SCRIPT), SCRIPT);
    assert_eq!(
        attr(&spans[0], "note"),
        "' OR 1=1; DROP TABLE key_index; --"
    );

    // The API search finds it by the same text.
    let (status, found) = app
        .get(&format!("/api/v1/search?q={}", urlencode(HOSTILE)))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["matches"][0]["value"], HOSTILE, "{found}");

    // The pages show it as text.
    let (status, _, html) = page(&app, &format!("/keys/{key_path}")).await;
    assert_eq!(status, 200, "{html}");
    assert_escaped(&html, "key page");
    let (status, _, html) = page(&app, &format!("/traces/{trace_id}")).await;
    assert_eq!(status, 200, "{html}");
    assert_escaped(&html, "trace page");
    // The sending system's name too, in the systems list (a range of its
    // own: the default range's answer is cached from the empty start).
    let (status, _, html) = page(&app, "/systems?from=now-1h").await;
    assert_eq!(status, 200, "{html}");
    assert_escaped(&html, "systems page");
    // Search redirects to the key page with the value encoded in the path.
    let (status, location, _) = page(&app, &format!("/search?q={}", urlencode(HOSTILE))).await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/keys/order/"), "{location}");
    assert!(
        !location.contains('<') && !location.contains('"') && !location.contains(' '),
        "{location}"
    );
    let (status, _, html) = page(&app, &location).await;
    assert_eq!(status, 200, "{location}: {html}");
    assert_escaped(&html, "key page after search");
    // A search that finds nothing says so, with the term as text.
    let (status, _, html) = page(&app, &format!("/search?q={}", urlencode(SCRIPT))).await;
    assert_eq!(status, 404);
    assert_escaped(&html, "search page");

    // The tables are all still there, and still take and give data.
    let tables: Vec<String> = app
        .store
        .tables()
        .await
        .unwrap()
        .into_iter()
        .filter(|t| {
            [
                "spans",
                "spans_v2",
                "key_index_v2",
                "key_links_v2",
                "events",
            ]
            .contains(&t.as_str())
        })
        .collect();
    assert_eq!(tables.len(), 5, "{tables:?}");
    let later = export(
        "erp",
        "5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c",
        "5d5d5d5d5d5d5d5d",
        "later",
        vec![string_attr("order.id", "SO-LATER")],
        json!({}),
    );
    let (status, _) = post_json(&app, "/v1/traces", "application/json", &later).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.trace("5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c", 1).await.len(),
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_and_keys_in_urls_are_400_saying_what_to_use() {
    let app = crate::processes::app().await;
    let long = "x".repeat(300);
    let api_cases: Vec<(String, &str)> = vec![
        (
            "/api/v1/keys/nokind/SO-1".into(),
            "known types: customer, order, work_order",
        ),
        ("/api/v1/keys/order/SO%01X".into(), "control characters"),
        (
            "/api/v1/keys/order/%20%20".into(),
            "a key value is 1 to 256 bytes",
        ),
        (
            format!("/api/v1/keys/order/{long}"),
            "a key value is 1 to 256 bytes; got 300",
        ),
        ("/api/v1/traces/xyz".into(), "a trace id is 32 hex digits"),
        (format!("/api/v1/traces/{}", "0".repeat(32)), "all zeros"),
        (format!("/api/v1/traces/{long}"), "is 300 characters"),
        (
            "/api/v1/processes/Order%20To%20Delivery".into(),
            "not a valid process id",
        ),
        (
            "/api/v1/processes/a'b/instances".into(),
            "not a valid process id",
        ),
        (
            "/api/v1/processes/order-to-delivery/instances?key=SO%0A1".into(),
            "control characters",
        ),
        (
            "/api/v1/alerts/%3Cscript%3E".into(),
            "not a valid alert rule id",
        ),
        (
            "/api/v1/breaches?process=%27%3B".into(),
            "not a valid process id",
        ),
        ("/api/v1/search?q=SO%0D1".into(), "control characters"),
    ];
    for (path, want) in &api_cases {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(want),
            "{path}: {error:?} should say {want:?}"
        );
        assert!(
            error.len() < 400,
            "{path}: the message echoes too much: {error}"
        );
    }

    let page_cases = [
        ("/keys/order/SO%07X", "control characters"),
        ("/keys/%3Cscript%3E/x", "unknown key type `&lt;script&gt;`"),
        (
            "/processes/%3Cscript%3E",
            "`&lt;script&gt;` is not a valid process id",
        ),
        (
            "/alerts/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "not a valid alert rule id",
        ),
        ("/traces/%3Cscript%3E", "is not a trace id"),
        ("/search?q=%3Cb%3E%07", "control characters"),
    ];
    for (path, want) in page_cases {
        let (status, _, html) = page(&app, path).await;
        assert_eq!(status, 400, "{path}: {html}");
        assert!(html.contains(want), "{path}: should say {want:?}:\n{html}");
        assert!(!html.contains("<script>"), "{path}: raw <script>:\n{html}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_span_and_a_cloudevent_past_the_limits_are_stored_cut_and_marked() {
    let app = TestApp::start().await;
    let limits = domain::limits::Limits::default();

    // 200 attributes with the business key last, a 10 000-byte value, an
    // array 12 levels deep, and 200 span events.
    let mut attributes: Vec<Value> = (0..200)
        .map(|i| string_attr(&format!("attr.{i:03}"), "v"))
        .collect();
    attributes.insert(0, string_attr("long", &"é".repeat(5000)));
    let mut deep = json!({"stringValue": "leaf"});
    for _ in 0..12 {
        deep = json!({"arrayValue": {"values": [deep]}});
    }
    attributes.insert(1, json!({"key": "deep", "value": deep}));
    attributes.push(string_attr("order.id", "SO-BIG"));
    let events: Vec<Value> = (0..200)
        .map(|i| json!({"timeUnixNano": "1", "name": format!("event {i}")}))
        .collect();
    let trace_id = "6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e";
    let body = export(
        "erp",
        trace_id,
        "6f6f6f6f6f6f6f6f",
        "big",
        attributes,
        json!({"events": events}),
    );
    let (status, answer) = post_json(&app, "/v1/traces", "application/json", &body).await;
    assert_eq!(status, 200, "{answer}");
    // Accepted whole: no partial success, nothing rejected.
    assert!(answer.get("partialSuccess").is_none(), "{answer}");

    let spans = app.trace(trace_id, 1).await;
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(
        attr(span, "throughline.truncated"),
        "attributes,value_length,events,depth"
    );
    let attrs = span["attributes"].as_object().unwrap();
    assert_eq!(attrs.len(), limits.max_attributes + 1, "{span}");
    assert_eq!(attr(span, "order.id"), "SO-BIG", "the business key is kept");
    assert_eq!(attr(span, "long").len(), 4096);
    assert!(attr(span, "deep").contains("null"));
    assert_eq!(
        span["events"].as_array().unwrap().len(),
        limits.max_span_events
    );
    let (status, key) = app.get("/api/v1/keys/order/SO-BIG").await;
    assert_eq!(status, 200, "the cut span is found by its key: {key}");

    // A CloudEvent with 200 extensions, a long one and a key among them.
    let mut event = json!({
        "specversion": "1.0", "id": "big-1", "source": "urn:test:mes",
        "type": "mes.work_order.completed", "orderid": "SO-BIG",
        "longext": "z".repeat(20_000),
    });
    for i in 0..200 {
        event[format!("ext{i:03}")] = json!("v");
    }
    let (status, answer) =
        post_json(&app, "/v1/events", "application/cloudevents+json", &event).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 1);
    let events = app.key_events("order/SO-BIG").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let attrs = &events[0]["attributes"];
    assert_eq!(attrs["throughline.truncated"], "attributes,value_length");
    assert_eq!(attrs["orderid"], "SO-BIG", "the key extension is kept");
    assert_eq!(attrs.as_object().unwrap().len(), limits.max_attributes + 1);

    let metrics = app.metrics().await;
    for line in [
        "throughline_truncated_records_total{signal=\"spans\",limit=\"attributes\"} 1",
        "throughline_truncated_records_total{signal=\"spans\",limit=\"events\"} 1",
        "throughline_truncated_records_total{signal=\"spans\",limit=\"depth\"} 1",
        "throughline_truncated_records_total{signal=\"events\",limit=\"value_length\"} 1",
        "throughline_truncated_records_total{signal=\"events\",limit=\"depth\"} 0",
    ] {
        assert!(metrics.contains(line), "no `{line}` in\n{metrics}");
    }
    app.stop().await;
}

/// The stored names in an API answer's attribute map, each at most `max`
/// bytes; returns how many were looked at.
fn names_at_most(map: &Value, max: usize) -> usize {
    let map = map.as_object().expect("an attribute map");
    for name in map.keys() {
        assert!(
            name.len() <= max,
            "a name of {} bytes is stored",
            name.len()
        );
    }
    map.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_names_of_a_mebibyte_are_cut_and_flagged_in_every_map() {
    let app = TestApp::start().await;
    let max = domain::limits::Limits::default().max_value_bytes;
    let long = "n".repeat(1 << 20);
    let trace_id = "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a";
    let mut body = export(
        "erp",
        trace_id,
        "7b7b7b7b7b7b7b7b",
        "names",
        vec![
            string_attr("order.id", "SO-NAMES"),
            string_attr(&long, "span"),
        ],
        json!({
            "events": [{"timeUnixNano": "1", "name": "e", "attributes": [string_attr(&long, "event")]}],
            "links": [{"traceId": trace_id, "spanId": "7c7c7c7c7c7c7c7c", "attributes": [string_attr(&long, "link")]}],
        }),
    );
    body["resourceSpans"][0]["resource"]["attributes"]
        .as_array_mut()
        .unwrap()
        .push(string_attr(&long, "resource"));
    let (status, answer) = post_json(&app, "/v1/traces", "application/json", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("partialSuccess").is_none(), "{answer}");

    let (status, trace) = app.get(&format!("/api/v1/traces/{trace_id}")).await;
    assert_eq!(status, 200);
    let size = trace.to_string().len();
    assert!(size < 64 * 1024, "the trace's answer is {size} bytes");
    let span = &trace["spans"][0];
    assert_eq!(attr(span, "throughline.truncated"), "name_length", "{size}");
    assert_eq!(names_at_most(&span["attributes"], max), 3);
    assert_eq!(attr(span, &"n".repeat(max)), "span");
    assert_eq!(names_at_most(&span["resource"], max), 2);
    assert_eq!(names_at_most(&span["events"][0]["attributes"], max), 1);
    assert_eq!(names_at_most(&span["links"][0]["attributes"], max), 1);

    // A log record that is an event, and a CloudEvent with such an extension.
    let logs = json!({"resourceLogs": [{
        "resource": {"attributes": [string_attr("service.name", "erp")]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": "1764161400000000000", "eventName": "erp.names",
            "attributes": [string_attr("order.id", "SO-NAMES"), string_attr(&long, "log")],
        }]}],
    }]});
    let (status, answer) = post_json(&app, "/v1/logs", "application/json", &logs).await;
    assert_eq!(status, 200, "{answer}");
    let mut event = json!({
        "specversion": "1.0", "id": "names-1", "source": "urn:test:mes",
        "type": "mes.names", "orderid": "SO-NAMES",
    });
    event[&long] = json!("extension");
    let (status, answer) =
        post_json(&app, "/v1/events", "application/cloudevents+json", &event).await;
    assert_eq!(status, 200, "{answer}");
    let (status, key) = app.get("/api/v1/keys/order/SO-NAMES").await;
    assert_eq!(status, 200, "{key}");
    let events = app.key_events("order/SO-NAMES").await;
    assert_eq!(events.len(), 2, "{key}");
    for e in &events {
        names_at_most(&e["attributes"], max);
        assert_eq!(
            e["attributes"]["throughline.truncated"], "name_length",
            "{e}"
        );
    }
    assert!(key.to_string().len() < 64 * 1024);

    let metrics = app.metrics().await;
    for signal in ["spans", "logs", "events"] {
        let line = format!(
            "throughline_truncated_records_total{{signal=\"{signal}\",limit=\"name_length\"}}"
        );
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(&line) && !l.ends_with(" 0")),
            "no `{line}` above 0 in\n{metrics}"
        );
    }
    app.stop().await;
}

/// No page carries a character that does not show as itself.
fn assert_no_raw_controls(html: &str, what: &str) {
    for c in ['\u{0}', '\u{1b}', '\u{7f}', '\u{202e}'] {
        assert!(
            !html.contains(c),
            "{what}: a raw {c:?} in the page:\n{html:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_systems_with_control_characters_are_refused_and_pages_escape_them() {
    let app = TestApp::start().await;
    let trace_id = "7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d";
    let now = domain::now_ns();
    let span = |id: &str, name: &str, attributes: Vec<Value>| {
        json!({
            "traceId": trace_id, "spanId": id, "name": name, "kind": 2,
            "startTimeUnixNano": (now - 2_000_000).to_string(),
            "endTimeUnixNano": now.to_string(), "attributes": attributes,
        })
    };
    let body = json!({"resourceSpans": [
        {
            "resource": {"attributes": [string_attr("service.name", "erp")]},
            "scopeSpans": [{"spans": [
                span("7e00000000000001", "nul", vec![string_attr("order.id", "x\u{0}y")]),
                span("7e00000000000002", "esc", vec![string_attr("order.id", "SO-\u{1b}[31m")]),
                span("7e00000000000003", "del", vec![string_attr("order.id", "SO-1\u{7f}")]),
                span("7e00000000000004", "bidi", vec![string_attr("order.id", "SO-\u{202e}1")]),
                // Kept: controls in a name and a value that are not keys
                // are data, shown escaped.
                span("7e00000000000005", "ok\u{0}\u{202e}txt.exe", vec![
                    string_attr("order.id", "SO-CTRL-OK"),
                    string_attr("note", "\u{202e}gpj.exe\u{0}\u{1b}[2J\u{7f}"),
                ]),
            ]}],
        },
        {
            "resource": {"attributes": [string_attr("service.name", "evil-a\u{0}")]},
            "scopeSpans": [{"spans": [span("7e00000000000006", "evil", vec![])]}],
        },
    ]});
    let (status, answer) = post_json(&app, "/v1/traces", "application/json", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "5", "{answer}");
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    for want in [
        "spans[0]: the order key `order.id` holds the control character U+0000 at byte 1",
        "spans[1]: the order key `order.id` holds the control character U+001B",
        "spans[2]: the order key `order.id` holds the control character U+007F",
        "spans[3]: the order key `order.id` holds the bidi control U+202E",
        "resource_spans[1].scope_spans[0].spans[0]: the resource's `service.name` holds the control character U+0000 at byte 6",
        "remove control characters and bidi controls",
    ] {
        assert!(message.contains(want), "{want:?} not in {message:?}");
    }
    assert_eq!(app.trace(trace_id, 1).await.len(), 1);

    // What was refused is not there, and looking for it says why (the same
    // rule); what was kept is found.
    for value in ["x%00y", "SO-%1B%5B31m", "SO-1%7F", "SO-%E2%80%AE1"] {
        let (status, body) = app.get(&format!("/api/v1/keys/order/{value}")).await;
        assert_eq!(status, 400, "{value}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("control"),
            "{body}"
        );
        let (status, body) = app.get(&format!("/api/v1/search?q={value}")).await;
        assert_eq!(status, 400, "{value}: {body}");
    }
    let (status, key) = app.get("/api/v1/keys/order/SO-CTRL-OK").await;
    assert_eq!(status, 200, "{key}");
    let trace_id = crate::harness::records(&key, "span")[0]["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        attr(&app.trace(&trace_id, 1).await[0], "note"),
        "\u{202e}gpj.exe\u{0}\u{1b}[2J\u{7f}",
        "the API returns data as it was sent"
    );
    let (status, systems) = app.get("/api/v1/systems?from=now-1h").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = systems["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["system"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["erp"], "{systems}");
    let (status, _) = app.get("/api/v1/events?system=evil-a%00").await;
    assert_eq!(status, 400);

    // Pages show those characters as visible escapes, never raw.
    for path in [
        format!("/traces/{trace_id}"),
        "/keys/order/SO-CTRL-OK".to_string(),
        "/systems?from=now-1h".to_string(),
        "/keys/order/x%00y".to_string(),
        "/search?q=SO-%E2%80%AE1".to_string(),
    ] {
        let (_, _, html) = page(&app, &path).await;
        assert_no_raw_controls(&html, &path);
    }
    let (status, _, html) = page(&app, &format!("/traces/{trace_id}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(r"\u{202e}gpj.exe\u{0}\u{1b}[2J\u{7f}"),
        "the note is not shown escaped:\n{html}"
    );
    assert!(html.contains(r"ok\u{0}\u{202e}txt.exe"), "{html}");
    let (status, _, html) = page(&app, "/keys/order/x%00y").await;
    assert_eq!(status, 400);
    assert!(html.contains(r"x\u{0}y"), "{html}");

    // A CloudEvent: the same rule for its keys, system and ids.
    for (name, value, want) in [
        (
            "orderid",
            "SO-\u{0}",
            "`orderid` holds the control character U+0000",
        ),
        (
            "system",
            "evil-a\u{0}",
            "`system` holds the control character U+0000",
        ),
        ("id", "e\u{202e}1", "`id` holds the bidi control U+202E"),
    ] {
        let mut event = json!({
            "specversion": "1.0", "id": "ctrl-1", "source": "urn:test:mes", "type": "mes.ctrl",
        });
        event[name] = json!(value);
        let (status, answer) =
            post_json(&app, "/v1/events", "application/cloudevents+json", &event).await;
        assert_eq!(status, 400, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(want), "{want:?} not in {error:?}");
    }
    app.stop().await;
}
