//! The console in a real browser: headless Chromium, driven over WebDriver
//! by chromedriver, against the real `throughline up` binary and the real
//! ClickHouse, configured as `make demo` runs it, with six hours of the demo
//! plant sent by `throughline demo`. Screenshots of every page land in `<target>/tmp/screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use opentelemetry::trace::{Span as _, Tracer};
use opentelemetry::KeyValue;
use serde_json::{json, Value};

use crate::harness::{clickhouse_url, unique_database};
use crate::otlp::{with_sdk_at, Transport};

/// Free ports, all held until all are chosen.
fn free_ports<const N: usize>() -> [u16; N] {
    let l: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| l[i].local_addr().unwrap().port())
}

/// A child process killed when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver session: the few W3C WebDriver commands the tests use.
pub(crate) struct Browser {
    _driver: Proc,
    session: String,
    client: reqwest::Client,
    shots: PathBuf,
}

impl Browser {
    pub(crate) async fn start() -> Browser {
        let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromedriver is not installed: run scripts/install-deps.sh (make test does)");
        let [port] = free_ports::<1>();
        let driver = Proc(
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap().keep();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--no-first-run", "--disable-dev-shm-usage", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let r: Value = client
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"));
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            _driver: driver,
            session: format!("{base}/session/{id}"),
            client,
            shots,
        }
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r: Value = request.send().await.unwrap().json().await.unwrap();
        if r["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", r["value"]);
        }
        r["value"].clone()
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub(crate) async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub(crate) async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    pub(crate) async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub(crate) async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub(crate) async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Saves a screenshot of the page as `name.png`.
    pub(crate) async fn screenshot(&self, name: &str) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Waits until an element matching `css` is on the page (a form posted
    /// by a click may still be loading), and returns its text.
    pub(crate) async fn wait_text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let script = format!(
            "const e = document.querySelector({}); return e ? e.textContent : null;",
            serde_json::to_string(css).unwrap()
        );
        loop {
            if let Some(text) = self.script(&script).await.as_str() {
                return text.to_string();
            }
            assert!(Instant::now() < deadline, "no {css} appeared");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page's URL contains `part`.
    pub(crate) async fn wait_url(&self, part: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = self.url().await;
            if url.contains(part) {
                return url;
            }
            assert!(Instant::now() < deadline, "never reached {part}; at {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Browser {
    /// Ends the session, which closes Chromium (killing chromedriver alone
    /// would leave it running). Plain blocking HTTP: a drop cannot await.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let Some((host, path)) = self
            .session
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once('/'))
        else {
            return;
        };
        if let Ok(mut stream) = std::net::TcpStream::connect(host) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
            let _ = write!(
                stream,
                "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }
}

/// `12,345`, as the pages write counts.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_follows_an_order_from_the_overview_to_a_trace_in_chromium() {
    let data = tempfile::tempdir().unwrap();
    let [grpc, http, console] = free_ports::<3>();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let log = data.path().join("up.log");
    let _up = Proc(
        Command::new(env!("CARGO_BIN_EXE_throughline"))
            .arg("up")
            .args(["--clickhouse-url", &clickhouse_url()])
            .args(["--clickhouse-database", &unique_database()])
            .arg("--data-dir")
            .arg(data.path())
            .arg("--config")
            .arg(repo.join("sample-data/demo.toml"))
            .arg("--processes-dir")
            .arg(repo.join("sample-data/processes"))
            .arg("--alerts-dir")
            .arg(repo.join("sample-data/alerts"))
            .args(["--correlator-interval", "1s"])
            .args(["--otlp-grpc-addr", &format!("127.0.0.1:{grpc}")])
            .args(["--otlp-http-addr", &format!("127.0.0.1:{http}")])
            .args(["--console-addr", &format!("127.0.0.1:{console}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let site = format!("http://127.0.0.1:{console}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(client.get(format!("{site}/readyz")).send().await, Ok(r) if r.status() == 200) {
        assert!(
            Instant::now() < deadline,
            "throughline up did not get ready:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Six hours of the demo plant, through the real binary's OTel SDK and
    // CloudEvents clients; and one span whose attribute is markup.
    let demo = Command::new(env!("CARGO_BIN_EXE_throughline"))
        .arg("demo")
        .args(["--target", &format!("http://127.0.0.1:{http}")])
        .args(["--backfill", "6h", "--duration", "1s", "--seed", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(demo.success());
    let trace_id = with_sdk_at(
        format!("http://127.0.0.1:{grpc}"),
        format!("http://127.0.0.1:{http}/v1/traces"),
        Transport::HttpProtobuf,
        "mes",
        |tracer| {
            let mut span = tracer.start("mes.operator.note");
            span.set_attribute(KeyValue::new("work_order.id", "WO-XSS"));
            span.set_attribute(KeyValue::new(
                "note",
                "<script>window.__xss = 1</script><b>bold?</b>",
            ));
            let id = span.span_context().trace_id().to_string();
            span.end();
            id
        },
    )
    .await;

    // The correlator runs every second: wait until its figures settle.
    let api = |path: &str| {
        let url = format!("{site}{path}");
        let client = client.clone();
        async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let counts = |v: &Value| -> Vec<Value> {
        v["processes"]
            .as_array()
            .map(|ps| ps.iter().map(|p| p["instances"].clone()).collect())
            .unwrap_or_default()
    };
    let mut last = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = api("/api/v1/processes?from=now-7h").await;
        let started = now["processes"][0]["instances"]["started"]
            .as_u64()
            .unwrap_or(0);
        if started > 0 && counts(&now) == last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the correlator never settled: {now}"
        );
        last = counts(&now);
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    let b = Browser::start().await;
    let range = "from=now-7h";

    // Overview: every tile's figures are the API's. An SLA deadline can
    // pass between the page and the API call (open breaches need no event),
    // so a mismatch is read again a few times before it fails.
    let mut mismatch = String::new();
    for _ in 0..5 {
        b.goto(&format!("{site}/?{range}")).await;
        let health = api(&format!("/api/v1/processes?{range}")).await;
        mismatch.clear();
        for p in health["processes"].as_array().unwrap() {
            let id = p["id"].as_str().unwrap();
            for (figure, value) in [
                ("in_flight", &p["instances"]["in_flight"]),
                ("completed", &p["instances"]["completed"]),
                ("failed", &p["instances"]["failed"]),
                ("stalled", &p["instances"]["stalled"]),
                ("open_breaches", &p["open_breaches"]),
            ] {
                let shown = b
                    .text(&format!("a[data-process='{id}'] [data-figure='{figure}']"))
                    .await;
                let want = count(value.as_u64().unwrap());
                if shown != want {
                    mismatch += &format!("{id} {figure}: page {shown}, API {want}; ");
                }
            }
        }
        if mismatch.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(mismatch.is_empty(), "{mismatch}");
    let systems = api(&format!("/api/v1/systems?{range}")).await;
    assert!(!systems["systems"].as_array().unwrap().is_empty());
    for s in systems["systems"].as_array().unwrap() {
        let name = s["system"].as_str().unwrap();
        b.find(&format!("tr[data-system='{name}']")).await;
    }
    b.screenshot("overview").await;
    // Under the content security policy the console's own script runs
    // (it rewrites the footer) and the inline colours of the dots apply.
    assert!(
        b.text("footer").await.contains("your local time zone"),
        "app.js did not run"
    );
    let colour = b
        .script("return getComputedStyle(document.querySelector('tr[data-system] .dot')).backgroundColor")
        .await;
    assert!(
        !matches!(colour.as_str(), Some("rgba(0, 0, 0, 0)") | None),
        "dot colour {colour}"
    );

    // A process page: the funnel and the SLA table agree with the API.
    b.click("a[data-process='order-to-delivery']").await;
    b.wait_url("/processes/order-to-delivery").await;
    let p = api(&format!("/api/v1/processes/order-to-delivery?{range}")).await;
    assert_eq!(
        b.text("#process-figures [data-figure='started']").await,
        count(p["instances"]["started"].as_u64().unwrap())
    );
    for sla in p["slas"].as_array().unwrap() {
        let id = sla["id"].as_str().unwrap();
        let shown = b
            .text(&format!("tr[data-sla='{id}'] [data-figure='met']"))
            .await;
        assert_eq!(shown, count(sla["met"].as_u64().unwrap()), "{id}");
    }
    b.find("svg.funnel").await;
    b.screenshot("process").await;

    // Its SLO page: the demo's objective with the API's figures, the
    // burn-down chart and the burn-rate alerts. (Deadlines may pass
    // between the page and the API: read again a few times.)
    b.click("a[href^='/processes/order-to-delivery/slos']")
        .await;
    b.wait_url("/processes/order-to-delivery/slos").await;
    let mut mismatch = String::new();
    for _ in 0..5 {
        let slos = api("/api/v1/processes/order-to-delivery/slos").await;
        let slo = &slos["slos"][0];
        assert_eq!(slo["id"], "order-entry-99", "{slos}");
        mismatch.clear();
        for figure in ["good", "bad"] {
            let shown = b
                .text(&format!(
                    "[data-slo='order-entry-99'] [data-figure='{figure}']"
                ))
                .await;
            let want = slo[figure].as_u64().unwrap().to_string();
            if shown != want {
                mismatch += &format!("{figure}: page {shown}, API {want}; ");
            }
        }
        if mismatch.is_empty() {
            break;
        }
        b.goto(&format!("{site}/processes/order-to-delivery/slos"))
            .await;
    }
    assert!(mismatch.is_empty(), "{mismatch}");
    b.find("[data-slo='order-entry-99'] svg.burn-down polyline")
        .await;
    b.find("[data-slo='order-entry-99'] table.burn-alerts")
        .await;
    b.screenshot("slos").await;

    b.goto(&format!("{site}/breaches?{range}")).await;
    b.find("table#breaches").await;
    b.screenshot("breaches").await;

    b.goto(&format!("{site}/systems?{range}")).await;
    b.find("#service-map svg").await;
    b.screenshot("systems").await;

    // Alerts: every example rule is listed, and a rule's page opens.
    b.goto(&format!("{site}/alerts?{range}")).await;
    b.find("table#alerts").await;
    b.screenshot("alerts").await;
    b.goto(&format!("{site}/alerts/mes-silent?{range}")).await;
    b.find("table#history").await;

    // Search: an order id typed into the box lands on its journey...
    // The order that got furthest, so that its journey crosses systems.
    let instances = api(&format!(
        "/api/v1/processes/order-to-delivery/instances?{range}&limit=200"
    ))
    .await;
    let furthest = instances["instances"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|i| {
            i["stages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["reached"] == true)
                .count()
        })
        .unwrap_or_else(|| panic!("an order in the demo: {instances}"));
    let order = furthest["key"]["value"].as_str().unwrap().to_string();
    b.goto(&format!("{site}/?{range}")).await;
    b.type_into("#search", &order).await;
    b.click("form.search button").await;
    b.wait_url(&format!("/keys/order/{order}")).await;
    assert_eq!(b.text("#key-value").await, order);
    b.find("#journey svg").await;
    let journey = api(&format!("/api/v1/keys/order/{order}")).await;
    let lanes = b
        .script("return document.querySelectorAll('#journey svg .mark').length")
        .await;
    assert_eq!(
        lanes.as_u64().unwrap(),
        journey["span_count"].as_u64().unwrap() + journey["event_count"].as_u64().unwrap(),
        "one mark per span and event"
    );
    b.screenshot("journey").await;

    // ...and on to one of its traces.
    b.click("#raw-spans summary").await;
    b.click("#raw-spans tbody a").await;
    let url = b.wait_url("/traces/").await;
    let shown_trace = b.text("#trace-id").await;
    assert!(url.contains(&format!("/traces/{shown_trace}")), "{url}");
    b.find("#waterfall .wf-row").await;
    b.screenshot("trace").await;

    // Markup in a span attribute is text, not markup.
    b.goto(&format!("{site}/traces/{trace_id}")).await;
    b.click("#waterfall .wf-row summary").await;
    let cell = b
        .script(
            "return [...document.querySelectorAll('#waterfall table.attrs tr')]\
             .find(r => r.querySelector('th').textContent === 'note')\
             .querySelector('td').innerText",
        )
        .await;
    assert_eq!(cell, json!("<script>window.__xss = 1</script><b>bold?</b>"));
    assert_eq!(
        b.script("return window.__xss === undefined").await,
        json!(true)
    );
    assert_eq!(
        b.script("return document.querySelectorAll('#waterfall b').length")
            .await,
        json!(0)
    );
    b.screenshot("trace-escaped").await;

    // An unknown id says so; an unknown page is a 404 page.
    b.goto(&format!("{site}/search?q=NO-SUCH-ORDER")).await;
    assert!(b
        .text("#search-none")
        .await
        .contains("Nothing is known by NO-SUCH-ORDER"));
    b.screenshot("search-unknown").await;
    b.goto(&format!("{site}/no-such-page")).await;
    assert!(b
        .text("main")
        .await
        .contains("There is no page at /no-such-page"));
    b.screenshot("not-found").await;
}

/// Sign-in and sign-out in a real browser: the redirect to the form, the
/// cookie Chromium keeps (and its flags), a viewer refused the admin page,
/// and the sign-out button.
#[tokio::test]
async fn a_viewer_signs_in_and_out_in_chromium() {
    use collector::auth::secret;
    use console::auth::{Role, UserConfig};
    let app = crate::harness::TestApp::with(crate::harness::TestConfig {
        users: vec![UserConfig {
            name: "victor".into(),
            role: Role::Viewer,
            password_hash: secret::hash("victor's long password"),
        }],
        ..Default::default()
    })
    .await;
    let base = format!("http://{}", app.console);
    let b = Browser::start().await;
    b.goto(&format!("{base}/breaches?from=now-1h")).await;
    b.wait_url("/login?next=").await;
    b.screenshot("sign-in").await;
    b.type_into("input[name=name]", "victor").await;
    b.type_into("input[name=password]", "wrong password").await;
    b.click(".signin button[type=submit]").await;
    assert!(
        b.wait_text(".error-message")
            .await
            .contains("Wrong user name or password"),
        "a wrong password is said"
    );
    b.type_into("input[name=password]", "victor's long password")
        .await;
    b.click(".signin button[type=submit]").await;
    let url = b.wait_url("/breaches").await;
    assert!(url.ends_with("/breaches?from=now-1h"), "{url}");
    assert!(b.wait_text("header .who").await.contains("victor"));
    let cookies = b.call(reqwest::Method::GET, "/cookie", None).await;
    let session = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tl_session")
        .unwrap_or_else(|| panic!("no session cookie in {cookies}"));
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Lax", "{session}");
    assert_eq!(session["secure"], false, "no TLS here: {session}");
    assert_eq!(
        b.script("return document.cookie").await,
        "",
        "scripts cannot read the session"
    );
    b.goto(&format!("{base}/admin")).await;
    assert!(b.text("main").await.contains("needs the admin role"));
    b.screenshot("admin-refused").await;
    b.click("form.signout button").await;
    b.wait_url("/login").await;
    b.goto(&format!("{base}/")).await;
    b.wait_url("/login?next=").await;
}
