//! Notifications: the bodies receivers expect (Alertmanager's webhook
//! format, version 4; a Slack incoming webhook's `text`) and delivery with
//! retries and exponential backoff, every attempt reported to the caller.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::rules::Rule;
use domain::alert::Notice;
use domain::time::rfc3339;

/// Which body a receiver takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// Alertmanager's webhook format, version 4.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
}

/// A `[[receivers]]` entry of the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub name: String,
    pub kind: DestinationKind,
    pub url: String,
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

/// The body `receiver` takes.
pub fn body(receiver: &Destination, m: &Message) -> Value {
    match receiver.kind {
        DestinationKind::Webhook => webhook_body(&receiver.name, m),
        DestinationKind::Slack => slack_body(m),
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

/// Posts `body` to `url` until a 2xx answer or `retry.attempts` tries.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
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
        let result = client
            .post(url)
            .timeout(retry.timeout)
            .json(body)
            .send()
            .await;
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
