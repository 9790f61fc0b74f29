//! Alerts: rules kept as files (`rules`), evaluated every interval against
//! what ClickHouse holds (`evaluate`), moved through inactive -> pending ->
//! firing -> resolved (`state`), and sent to receivers (`notify`):
//! Alertmanagers, which get every firing alert again while it fires (with
//! an `endsAt` ahead, so an alert expires if the evaluator stops), and
//! webhooks, which get each notice once. A rule that fails to evaluate
//! (ClickHouse down) keeps its last state, as Prometheus does: it is logged
//! and counted, and if it was firing Alertmanagers still get it, so an
//! outage longer than the `endsAt` hold does not resolve it there.
//!
//! One evaluator runs per deployment. Its state lives in ClickHouse
//! (`alert_state`): it is loaded at start, and written each cycle before
//! notifications go out (phase and the notice due) and again after them
//! (which receivers have it). So a restart never sends again a notice that
//! was delivered and recorded, and does send one that was not; only a crash
//! between a delivery and its record (milliseconds) repeats it.

pub mod evaluate;
pub mod metrics;
pub mod notify;
pub mod rules;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use domain::process::Processes;
use store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

use domain::alert::{AlertRecord, Delivery, Notice, Phase, PhaseChange};
use evaluate::Finding;
use metrics::AlertMetrics;
use notify::{Auth, Destination, DestinationKind, Message, Retry};
use rules::{Rule, Rules};
use state::{Lifecycle, RuleState};

/// How the evaluator runs.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub interval: Duration,
    /// While firing, the firing notice is sent again this often.
    pub repeat_interval: Duration,
    /// An Alertmanager gets a firing alert again at most this often (as
    /// Prometheus's `--rules.alert.resend-delay`).
    pub resend_delay: Duration,
    /// Where notices go (the config's `[[receivers]]`).
    pub destinations: Vec<Destination>,
    /// The console's address as on-call reaches it, for links.
    pub external_url: String,
    pub retry: Retry,
    /// Posts to receivers, for `/metrics`.
    pub metrics: Arc<AlertMetrics>,
}

impl AlertSettings {
    /// How far ahead of a send a firing alert's `endsAt` lies, as
    /// Prometheus sets it: 4 x max(interval, resend delay). An alert
    /// Alertmanager stops hearing about resolves that long after.
    pub fn alertmanager_hold(&self) -> Duration {
        4 * self.interval.max(self.resend_delay)
    }
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            interval: Duration::from_secs(30),
            repeat_interval: Duration::from_secs(4 * 3600),
            resend_delay: Duration::from_secs(60),
            destinations: Vec::new(),
            external_url: "http://127.0.0.1:8080".into(),
            retry: Retry::default(),
            metrics: Arc::default(),
        }
    }
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub evaluated: usize,
    pub failed: usize,
    pub transitions: usize,
    pub sent: usize,
    pub undelivered: usize,
}

pub struct Evaluator {
    store: Store,
    rules: Arc<Rules>,
    processes: Arc<Processes>,
    settings: AlertSettings,
    states: HashMap<String, RuleState>,
    /// The newest state version written or loaded: versions only grow, so
    /// `FINAL` keeps the newest row even if the clock steps back.
    last_version: u64,
    /// When each (rule, Alertmanager receiver) last had a firing alert
    /// accepted: re-sent once `resend_delay` has passed. In memory only: a
    /// restart sends every firing alert again at once, which is harmless.
    resent: HashMap<(String, String), u64>,
    /// Each rule's annotations as last rendered: a firing alert whose rule
    /// fails to evaluate is re-sent with them.
    annotations: HashMap<String, BTreeMap<String, String>>,
    client: reqwest::Client,
}

/// One alert in an Alertmanager batch: its rule, and for a notice due the
/// rule's index among this cycle's evaluated rules; `None` for a re-send
/// of a notice the receiver has (logged only in the metrics, not as
/// delivery rows), also of a rule that failed to evaluate.
struct Queued {
    rule: String,
    due: Option<usize>,
    alert: serde_json::Value,
}

fn to_record(
    rule: &Rule,
    s: &RuleState,
    f: &Finding,
    summary: &str,
    now: u64,
    version: u64,
) -> AlertRecord {
    AlertRecord {
        rule_id: rule.id.clone(),
        state: s.clone(),
        value: f.value,
        value_text: f.value_text.clone(),
        summary: summary.to_string(),
        affected: f.affected.clone(),
        orders: f.orders,
        customers: f.customers,
        evaluated_ns: now,
        updated_ns: version,
    }
}

/// `{affected}`: the first few subjects, and how many more.
fn affected_text(affected: &[String]) -> String {
    if affected.is_empty() {
        return "none".into();
    }
    let shown: Vec<&str> = affected.iter().take(5).map(String::as_str).collect();
    if affected.len() > shown.len() {
        format!(
            "{} and {} more",
            shown.join(", "),
            affected.len() - shown.len()
        )
    } else {
        shown.join(", ")
    }
}

impl Evaluator {
    /// Logs one delivery attempt, counts it, and keeps it for
    /// `alert_notifications`. `which`: the Alertmanager, when there are several.
    fn record(
        &self,
        log: &mut Vec<Delivery>,
        rule: &Rule,
        receiver: &Destination,
        notice: Notice,
        a: &notify::Attempt,
        which: &str,
    ) {
        if a.ok {
            tracing::info!(rule = %rule.id, receiver = %receiver.name, notice = notice.as_str(), attempt = a.number, "notification sent");
        } else {
            tracing::warn!(rule = %rule.id, receiver = %receiver.name, notice = notice.as_str(), attempt = a.number, detail = %a.detail, "notification failed");
        }
        if receiver.kind != DestinationKind::Alertmanager {
            self.settings
                .metrics
                .count(&receiver.name, receiver.kind.as_str(), a.ok);
        }
        log.push(Delivery {
            rule_id: rule.id.clone(),
            destination: receiver.name.clone(),
            notice,
            attempt: a.number,
            at_ns: domain::now_ns(),
            ok: a.ok,
            detail: format!("{which}{}", a.detail),
        });
    }

    /// An evaluator resuming from the state stored in ClickHouse.
    pub async fn new(
        store: Store,
        rules: Arc<Rules>,
        processes: Arc<Processes>,
        settings: AlertSettings,
    ) -> Result<Self, StoreError> {
        let rows = store.alert_states().await?;
        let last_version = rows.iter().map(|r| r.updated_ns).max().unwrap_or(0);
        let states = rows
            .iter()
            .map(|r| (r.rule_id.clone(), r.state.clone()))
            .collect();
        Ok(Evaluator {
            store,
            rules,
            processes,
            settings,
            states,
            last_version,
            resent: HashMap::new(),
            annotations: HashMap::new(),
            client: reqwest::Client::new(),
        })
    }

    /// Runs a cycle every interval until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let started = std::time::Instant::now();
            match self.cycle(domain::now_ns()).await {
                Ok(report) if report.transitions > 0 || report.failed > 0 => {
                    tracing::info!(?report, "alert cycle")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "alert cycle failed; retrying next interval"),
            }
            let pause = self.settings.interval.saturating_sub(started.elapsed());
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One cycle at `now`: evaluate every rule, store every state (one
    /// insert), send what is due, then record the deliveries (one insert
    /// for the log, one for the states that changed).
    pub async fn cycle(&mut self, now: u64) -> Result<CycleReport, StoreError> {
        let mut report = CycleReport::default();
        let rules = self.rules.clone();
        let names: Vec<String> = self
            .settings
            .destinations
            .iter()
            .map(|r| r.name.clone())
            .collect();
        // A version above any the store holds for these rules, even when
        // the clock stepped back (two per cycle: states, then deliveries).
        let version = domain::now_ns().max(self.last_version + 2);
        self.last_version = version + 1;
        let mut evaluated: Vec<(&Rule, RuleState, Finding, BTreeMap<String, String>)> = Vec::new();
        let mut history = Vec::new();
        let mut states = Vec::new();
        // Firing rules that failed to evaluate: they keep their last state,
        // and Alertmanagers keep getting them.
        let mut unevaluated: Vec<(&Rule, RuleState)> = Vec::new();
        for rule in &rules.list {
            let link_timeout = rules.plant_link_timeout.0;
            let finding = match evaluate::evaluate(
                &self.store,
                &self.processes,
                rule,
                now,
                link_timeout,
            )
            .await
            {
                Ok(f) => f,
                Err(e) => {
                    report.failed += 1;
                    self.settings.metrics.count_failure(&rule.id);
                    let last = self.states.get(&rule.id);
                    let firing = last.is_some_and(|s| {
                        s.phase == Phase::Firing && s.notice == Some(Notice::Firing)
                    });
                    tracing::warn!(rule = %rule.id, error = %e, firing, "alert rule not evaluated; it keeps its last state");
                    if let Some(last) = last.filter(|_| firing) {
                        unevaluated.push((rule, last.clone()));
                    }
                    continue;
                }
            };
            report.evaluated += 1;
            let before = self.states.get(&rule.id).cloned().unwrap_or_default();
            let (next, transition) = before.step(
                finding.holds,
                now,
                rule.for_ns,
                self.settings.repeat_interval.as_nanos() as u64,
            );
            let vars: BTreeMap<&str, String> = [
                ("value", finding.value_text.clone()),
                ("threshold", rule.condition.threshold_text()),
                ("orders", finding.orders.to_string()),
                ("customers", finding.customers.to_string()),
                ("affected", affected_text(&finding.affected)),
                ("rule", rule.id.clone()),
                ("name", rule.name.clone()),
            ]
            .into_iter()
            .collect();
            let mut annotations = notify::render(rule, &vars);
            if let Some(note) = &finding.note {
                // Said where on-call reads first, and on its own for
                // receivers that template annotations.
                annotations.insert("plant_links".into(), note.clone());
                if let Some(summary) = annotations.get_mut("summary") {
                    summary.push_str(&format!(" ({note})"));
                }
            }
            self.annotations
                .insert(rule.id.clone(), annotations.clone());
            let summary = annotations.get("summary").cloned().unwrap_or_default();
            if let Some(t) = transition {
                report.transitions += 1;
                tracing::info!(rule = %rule.id, from = t.from.as_str(), to = t.to.as_str(), value = %finding.value_text, "alert");
                history.push(PhaseChange {
                    rule_id: rule.id.clone(),
                    at_ns: now,
                    from: t.from,
                    to: t.to,
                    value: finding.value,
                    value_text: finding.value_text.clone(),
                });
            }
            states.push(to_record(rule, &next, &finding, &summary, now, version));
            evaluated.push((rule, next, finding, annotations));
        }
        // The phase and the notice due are stored before anything is sent.
        self.store.write_alert_history(&history).await?;
        self.store.write_alert_states(&states).await?;
        for (rule, next, _, _) in &evaluated {
            self.states.insert(rule.id.clone(), next.clone());
        }

        let mut log = Vec::new();
        let mut changed = vec![false; evaluated.len()];
        // A receiver that failed every attempt is not tried again this
        // cycle, so one that is down costs one rule's retries, not all.
        let mut down: std::collections::HashSet<String> = Default::default();
        // Alertmanagers get one post per cycle with every alert due.
        let mut batches: BTreeMap<String, Vec<Queued>> = BTreeMap::new();
        let hold_ns = self.settings.alertmanager_hold().as_nanos() as u64;
        let resend_ns = self.settings.resend_delay.as_nanos() as u64;
        for (index, (rule, next, _, annotations)) in evaluated.iter_mut().enumerate() {
            let Some(notice) = next.notice else { continue };
            let due: Vec<&String> = next.due(&names);
            let message = Message {
                notice,
                labels: rule.alert_labels(),
                annotations: annotations.clone(),
                starts_ns: if next.fired_ns > 0 {
                    next.fired_ns
                } else {
                    now
                },
                ends_ns: if notice == Notice::Resolved {
                    next.resolved_ns
                } else {
                    0
                },
                generator_url: format!(
                    "{}/alerts/{}",
                    self.settings.external_url.trim_end_matches('/'),
                    rule.id
                ),
                external_url: self.settings.external_url.clone(),
            };
            for receiver in &self.settings.destinations {
                let is_due = due.contains(&&receiver.name);
                if receiver.kind == DestinationKind::Alertmanager {
                    // A firing alert goes again every resend delay, with
                    // its end ahead; a resolved one once, ending then.
                    let firing = notice == Notice::Firing;
                    let last = self
                        .resent
                        .get(&(rule.id.clone(), receiver.name.clone()))
                        .copied()
                        .unwrap_or(0);
                    let resend = firing && !is_due && now.saturating_sub(last) >= resend_ns;
                    if is_due || resend {
                        let ends = if firing {
                            now + hold_ns
                        } else {
                            message.ends_ns
                        };
                        batches
                            .entry(receiver.name.clone())
                            .or_default()
                            .push(Queued {
                                rule: rule.id.clone(),
                                due: (!resend).then_some(index),
                                alert: notify::alertmanager_alert(&message, ends),
                            });
                    }
                    continue;
                }
                if !is_due {
                    continue;
                }
                if down.contains(&receiver.name) {
                    report.undelivered += 1;
                    continue;
                }
                let body = notify::body(receiver, &message);
                let mut ok = false;
                for target in receiver.targets() {
                    let attempts = notify::deliver_with(
                        &self.client,
                        &target,
                        &Auth::of(receiver),
                        &body,
                        self.settings.retry,
                    )
                    .await;
                    for a in &attempts {
                        self.record(&mut log, rule, receiver, notice, a, "");
                    }
                    ok |= attempts.iter().any(|a| a.ok);
                }
                if ok {
                    next.delivered_to(&receiver.name, now);
                    changed[index] = true;
                    report.sent += 1;
                } else {
                    report.undelivered += 1;
                    down.insert(receiver.name.clone());
                }
            }
        }
        // The firing alerts of rules that failed to evaluate, as last known,
        // with their end ahead again.
        for (rule, last) in &unevaluated {
            let annotations = self.annotations.get(&rule.id).cloned().unwrap_or_else(|| {
                // Not evaluated since the start: no value to show.
                let vars: BTreeMap<&str, String> = [
                    ("value", "unknown".to_string()),
                    ("threshold", rule.condition.threshold_text()),
                    ("orders", "unknown".to_string()),
                    ("customers", "unknown".to_string()),
                    ("affected", "unknown".to_string()),
                    ("rule", rule.id.clone()),
                    ("name", rule.name.clone()),
                ]
                .into_iter()
                .collect();
                notify::render(rule, &vars)
            });
            let message = Message {
                notice: Notice::Firing,
                labels: rule.alert_labels(),
                annotations,
                starts_ns: last.fired_ns,
                ends_ns: 0,
                generator_url: format!(
                    "{}/alerts/{}",
                    self.settings.external_url.trim_end_matches('/'),
                    rule.id
                ),
                external_url: self.settings.external_url.clone(),
            };
            for receiver in &self.settings.destinations {
                if receiver.kind != DestinationKind::Alertmanager {
                    continue;
                }
                let last_sent = self
                    .resent
                    .get(&(rule.id.clone(), receiver.name.clone()))
                    .copied()
                    .unwrap_or(0);
                if now.saturating_sub(last_sent) >= resend_ns {
                    batches
                        .entry(receiver.name.clone())
                        .or_default()
                        .push(Queued {
                            rule: rule.id.clone(),
                            due: None,
                            alert: notify::alertmanager_alert(&message, now + hold_ns),
                        });
                }
            }
        }
        for (name, queued) in batches {
            let Some(receiver) = self.settings.destinations.iter().find(|r| r.name == name) else {
                continue;
            };
            let body = serde_json::Value::Array(queued.iter().map(|q| q.alert.clone()).collect());
            let targets = receiver.targets();
            // Each Alertmanager at once, one attempt each: what fails now
            // goes again next cycle, and a dead one delays nobody long.
            let once = Retry {
                attempts: 1,
                ..self.settings.retry
            };
            let auth = Auth::of(receiver);
            let posts = targets.iter().map(|target| {
                let (client, body, auth) = (self.client.clone(), body.clone(), auth.clone());
                let target = target.clone();
                tokio::spawn(async move {
                    notify::deliver_with(&client, &target, &auth, &body, once).await
                })
            });
            let mut answers = Vec::new();
            for post in posts.collect::<Vec<_>>() {
                answers.push(post.await.unwrap_or_default());
            }
            let mut ok = false;
            for (i, attempts) in answers.iter().enumerate() {
                let good = attempts.iter().any(|a| a.ok);
                ok |= good;
                self.settings
                    .metrics
                    .count(&receiver.name, "alertmanager", good);
                if !good {
                    let detail = attempts.last().map(|a| a.detail.as_str()).unwrap_or("");
                    tracing::warn!(receiver = %receiver.name, alertmanager = %domain::redact::url(&receiver.urls[i]), alerts = queued.len(), %detail, "alerts not accepted by an Alertmanager; sent again next cycle");
                }
            }
            for q in &queued {
                if ok {
                    self.resent
                        .insert((q.rule.clone(), receiver.name.clone()), now);
                }
                let Some(index) = q.due else { continue };
                let (rule, next, _, _) = &mut evaluated[index];
                let notice = next.notice.expect("queued with a notice");
                for (i, attempts) in answers.iter().enumerate() {
                    let which = if targets.len() > 1 {
                        format!("{}: ", domain::redact::url(&receiver.urls[i]))
                    } else {
                        String::new()
                    };
                    for a in attempts {
                        self.record(&mut log, rule, receiver, notice, a, &which);
                    }
                }
                if ok {
                    next.delivered_to(&receiver.name, now);
                    changed[index] = true;
                    report.sent += 1;
                } else {
                    report.undelivered += 1;
                }
            }
        }
        let mut delivered = Vec::new();
        for (index, (rule, next, finding, annotations)) in evaluated.into_iter().enumerate() {
            if changed[index] {
                let summary = annotations.get("summary").cloned().unwrap_or_default();
                delivered.push(to_record(rule, &next, &finding, &summary, now, version + 1));
                self.states.insert(rule.id.clone(), next);
            }
        }
        // The states whatever the log's insert did: an unrecorded delivery
        // would be sent again after a restart.
        let logged = self.store.write_alert_notifications(&log).await;
        self.store.write_alert_states(&delivered).await?;
        logged?;
        Ok(report)
    }
}
