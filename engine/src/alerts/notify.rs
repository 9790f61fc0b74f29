//! Notifications: the bodies receivers expect (Alertmanager's API v2
//! alerts; Alertmanager's webhook format, version 4; a Slack incoming
//! webhook's `text`) and delivery with retries and exponential backoff,
//! every attempt reported to the caller.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::rules::Rule;
use domain::alert::Notice;
use domain::time::rfc3339;

/// Which body a receiver takes, and how it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    /// An Alertmanager's API: `POST <url>/api/v2/alerts`, re-sent while
    /// firing with an `endsAt` ahead, as Prometheus sends alerts.
    Alertmanager,
    /// A webhook that takes what Alertmanager sends its webhook receivers
    /// (version 4), once per notice.
    Webhook,
    /// A Slack incoming webhook (`{"text": ...}`), once per notice.
    SlackWebhook,
}

impl DestinationKind {
    /// The kinds a config may name.
    pub const NAMES: &'static [&'static str] = &["alertmanager", "webhook", "slack_webhook"];

    /// The kind named `text` and, for an old name, the new one.
    pub fn parse(text: &str) -> Option<(DestinationKind, Option<&'static str>)> {
        match text {
            "alertmanager" => Some((DestinationKind::Alertmanager, None)),
            "webhook" => Some((DestinationKind::Webhook, None)),
            "slack_webhook" => Some((DestinationKind::SlackWebhook, None)),
            "slack" => Some((DestinationKind::SlackWebhook, Some("slack_webhook"))),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Alertmanager => "alertmanager",
            DestinationKind::Webhook => "webhook",
            DestinationKind::SlackWebhook => "slack_webhook",
        }
    }
}

/// HTTP basic authentication of a receiver.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BasicAuth({}, ***)", self.username)
    }
}

/// One URL or several (Alertmanagers that all get the same alerts).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum Urls {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDestination {
    name: String,
    kind: String,
    url: Urls,
    basic_auth: Option<BasicAuth>,
    bearer_token: Option<String>,
}

/// A `[[receivers]]` entry of the config.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawDestination")]
pub struct Destination {
    pub name: String,
    pub kind: DestinationKind,
    /// One URL; for `alertmanager`, the base URL of each Alertmanager.
    pub urls: Vec<String>,
    pub basic_auth: Option<BasicAuth>,
    pub bearer_token: Option<String>,
    /// The kind's old name when the config used it (said at start).
    pub deprecated_kind: Option<String>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| domain::redact::url(u)).collect();
        f.debug_struct("Destination")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("urls", &urls)
            .field("basic_auth", &self.basic_auth)
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl TryFrom<RawDestination> for Destination {
    type Error = String;

    fn try_from(raw: RawDestination) -> Result<Self, String> {
        let (kind, new_name) = DestinationKind::parse(&raw.kind).ok_or_else(|| {
            format!(
                "receiver `{}`: kind `{}` is not known; use one of {}",
                raw.name,
                raw.kind,
                DestinationKind::NAMES.join(", ")
            )
        })?;
        let urls = match raw.url {
            Urls::One(u) => vec![u],
            Urls::Many(list) if kind == DestinationKind::Alertmanager && !list.is_empty() => list,
            Urls::Many(_) if kind == DestinationKind::Alertmanager => {
                return Err(format!(
                    "receiver `{}`: url is an empty list; give the base URL of at least one Alertmanager",
                    raw.name
                ))
            }
            Urls::Many(_) => {
                return Err(format!(
                    "receiver `{}`: a list of URLs is for kind alertmanager only; give {} one url",
                    raw.name, raw.kind
                ))
            }
        };
        if raw.basic_auth.is_some() && raw.bearer_token.is_some() {
            return Err(format!(
                "receiver `{}`: give basic_auth or bearer_token, not both",
                raw.name
            ));
        }
        Ok(Destination {
            name: raw.name,
            kind,
            urls,
            basic_auth: raw.basic_auth,
            bearer_token: raw.bearer_token,
            deprecated_kind: new_name.map(|_| raw.kind),
        })
    }
}

impl Destination {
    /// A receiver at one URL, without authentication.
    pub fn new(name: &str, kind: DestinationKind, url: &str) -> Destination {
        Destination {
            name: name.to_string(),
            kind,
            urls: vec![url.to_string()],
            basic_auth: None,
            bearer_token: None,
            deprecated_kind: None,
        }
    }

    /// Where the body goes: the URL, or each Alertmanager's alerts API.
    pub fn targets(&self) -> Vec<String> {
        match self.kind {
            DestinationKind::Alertmanager => self
                .urls
                .iter()
                .map(|u| format!("{}/api/v2/alerts", u.trim_end_matches('/')))
                .collect(),
            _ => self.urls.clone(),
        }
    }

    /// What to say at start about an old kind name, if the config used one.
    pub fn deprecation(&self) -> Option<String> {
        self.deprecated_kind.as_ref().map(|old| {
            format!(
                "receiver `{}`: kind `{old}` is deprecated; write kind = \"{}\" (it means the same)",
                self.name,
                self.kind.as_str()
            )
        })
    }
}

/// One alert, ready to be sent.
#[derive(Debug, Clone)]
pub struct Message {
    pub notice: Notice,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_ns: u64,
    /// 0 while firing.
    pub ends_ns: u64,
    /// The rule's page on the console.
    pub generator_url: String,
    /// The console's base URL.
    pub external_url: String,
}

/// Fills `{value}`, `{threshold}`, `{orders}`, `{customers}`, `{affected}`,
/// `{rule}` and `{name}` into a rule's annotations.
pub fn render(rule: &Rule, vars: &BTreeMap<&str, String>) -> BTreeMap<String, String> {
    rule.annotations
        .iter()
        .map(|(k, template)| {
            let mut text = template.clone();
            for (name, value) in vars {
                text = text.replace(&format!("{{{name}}}"), value);
            }
            (k.clone(), text)
        })
        .collect()
}

/// Alertmanager's zero time: "no end yet".
const NO_END: &str = "0001-01-01T00:00:00Z";

fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<&[u8]> = labels
        .iter()
        .flat_map(|(k, v)| [k.as_bytes(), v.as_bytes()])
        .collect();
    format!("{:016x}", domain::hash::fnv1a(&parts))
}

/// The Alertmanager webhook body (version 4) for `receiver`.
pub fn webhook_body(receiver: &str, m: &Message) -> Value {
    let alertname = m.labels.get("alertname").cloned().unwrap_or_default();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{alertname}\"}}"),
        "truncatedAlerts": 0,
        "status": m.notice.as_str(),
        "receiver": receiver,
        "groupLabels": { "alertname": alertname },
        "commonLabels": m.labels,
        "commonAnnotations": m.annotations,
        "externalURL": m.external_url,
        "alerts": [{
            "status": m.notice.as_str(),
            "labels": m.labels,
            "annotations": m.annotations,
            "startsAt": rfc3339(m.starts_ns),
            "endsAt": if m.ends_ns == 0 { NO_END.to_string() } else { rfc3339(m.ends_ns) },
            "generatorURL": m.generator_url,
            "fingerprint": fingerprint(&m.labels),
        }],
    })
}

/// Text as Slack's markup takes it: `<`, `>` and `&` would start a link or an
/// entity (an order id from the data must not become a link).
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook body.
pub fn slack_body(m: &Message) -> Value {
    let alertname = m.labels.get("alertname").cloned().unwrap_or_default();
    let severity = m.labels.get("severity").cloned().unwrap_or_default();
    let summary = m.annotations.get("summary").cloned().unwrap_or_default();
    let head = match m.notice {
        Notice::Firing => "FIRING",
        Notice::Resolved => "RESOLVED",
    };
    json!({
        "text": format!(
            "[{head}] {} ({}): {}\n<{}|Open in Throughline>",
            slack_escape(&alertname),
            slack_escape(&severity),
            slack_escape(&summary),
            m.generator_url
        ),
    })
}

/// One alert as Alertmanager's API v2 takes it (`POST /api/v2/alerts`
/// takes a list of them). `ends_ns`: when Alertmanager is to consider it
/// resolved if it hears nothing more (ahead while firing; the resolve time
/// once resolved).
pub fn alertmanager_alert(m: &Message, ends_ns: u64) -> Value {
    json!({
        "labels": m.labels,
        "annotations": m.annotations,
        "startsAt": rfc3339(m.starts_ns),
        "endsAt": rfc3339(ends_ns),
        "generatorURL": m.generator_url,
    })
}

/// The body a once-per-notice receiver takes (an Alertmanager gets
/// [`alertmanager_alert`]s in a batch instead).
pub fn body(receiver: &Destination, m: &Message) -> Value {
    match receiver.kind {
        DestinationKind::Webhook => webhook_body(&receiver.name, m),
        DestinationKind::SlackWebhook => slack_body(m),
        DestinationKind::Alertmanager => json!([alertmanager_alert(m, m.ends_ns)]),
    }
}

/// How hard to try one notification.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    /// Before the second attempt; doubled before each later one.
    pub backoff: Duration,
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 3,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

/// One attempt's outcome: the HTTP status, or why there was none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub number: u32,
    pub ok: bool,
    pub detail: String,
}

/// Why a delivery got no answer, with its causes, but without the
/// receiver's URL: that may hold a secret (user info, or the path of a Slack
/// webhook), and this text is logged, stored and shown on the alert page.
fn failure(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    domain::redact::urls_in(&text)
}

/// How a receiver proves who is sending.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    #[default]
    None,
    Basic(BasicAuth),
    Bearer(String),
}

impl Auth {
    pub fn of(d: &Destination) -> Auth {
        match (&d.basic_auth, &d.bearer_token) {
            (Some(b), _) => Auth::Basic(b.clone()),
            (None, Some(t)) => Auth::Bearer(t.clone()),
            (None, None) => Auth::None,
        }
    }
}

/// Posts `body` to `url` until a 2xx answer or `retry.attempts` tries.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    retry: Retry,
) -> Vec<Attempt> {
    deliver_with(client, url, &Auth::None, body, retry).await
}

/// [`deliver`] with the receiver's authentication.
pub async fn deliver_with(
    client: &reqwest::Client,
    url: &str,
    auth: &Auth,
    body: &Value,
    retry: Retry,
) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    let mut pause = retry.backoff;
    for number in 1..=retry.attempts.max(1) {
        if number > 1 {
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2);
        }
        let request = client.post(url).timeout(retry.timeout).json(body);
        let request = match auth {
            Auth::None => request,
            Auth::Basic(b) => request.basic_auth(&b.username, Some(&b.password)),
            Auth::Bearer(t) => request.bearer_auth(t),
        };
        let result = request.send().await;
        let attempt = match result {
            Ok(r) if r.status().is_success() => Attempt {
                number,
                ok: true,
                detail: format!("HTTP {}", r.status().as_u16()),
            },
            Ok(r) => Attempt {
                number,
                ok: false,
                detail: format!("HTTP {}", r.status().as_u16()),
            },
            Err(e) => Attempt {
                number,
                ok: false,
                detail: failure(e),
            },
        };
        let ok = attempt.ok;
        attempts.push(attempt);
        if ok {
            break;
        }
    }
    attempts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers 200 to one request on loopback and hands back its head.
    async fn one_request() -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v2/alerts", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&head).to_lowercase()
        });
        (url, task)
    }

    /// Basic and bearer authentication go out as `Authorization` headers.
    #[tokio::test]
    async fn receivers_send_their_basic_or_bearer_credentials() {
        let retry = Retry {
            attempts: 1,
            backoff: Duration::ZERO,
            timeout: Duration::from_secs(5),
        };
        let client = reqwest::Client::new();
        let (url, head) = one_request().await;
        let basic = Auth::Basic(BasicAuth {
            username: "tl".into(),
            password: "pw".into(),
        });
        let attempts = deliver_with(&client, &url, &basic, &json!([]), retry).await;
        assert!(attempts[0].ok, "{attempts:?}");
        // base64("tl:pw")
        assert!(head
            .await
            .unwrap()
            .contains("authorization: basic dgw6chc="));
        let (url, head) = one_request().await;
        let bearer = Auth::Bearer("t0ken".into());
        let attempts = deliver_with(&client, &url, &bearer, &json!([]), retry).await;
        assert!(attempts[0].ok, "{attempts:?}");
        assert!(head.await.unwrap().contains("authorization: bearer t0ken"));
    }

    /// A failed delivery says why, but shows neither the user info nor the
    /// path of the receiver's URL.
    #[tokio::test]
    async fn a_failed_delivery_keeps_the_url_secret() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://hook:s3cret@127.0.0.1:{port}/services/T0/B0/xoxsecret");
        let retry = Retry {
            attempts: 1,
            backoff: Duration::ZERO,
            timeout: Duration::from_secs(5),
        };
        let attempts = deliver(&reqwest::Client::new(), &url, &Value::Null, retry).await;
        let detail = &attempts[0].detail;
        assert!(!attempts[0].ok);
        assert!(
            !detail.contains("s3cret") && !detail.contains("xoxsecret"),
            "{detail}"
        );
        assert!(detail.contains("error sending request"), "{detail}");
    }
}
