//! Alerts: rules kept as files (`rules`), evaluated every interval against
//! what ClickHouse holds (`evaluate`), moved through inactive -> pending ->
//! firing -> resolved (`state`), and sent to webhooks (`notify`).
//!
//! One evaluator runs per deployment. Its state lives in ClickHouse
//! (`alert_state`): it is loaded at start, and written each cycle before
//! notifications go out (phase and the notice due) and again after them
//! (which receivers have it). So a restart never sends again a notice that
//! was delivered and recorded, and does send one that was not; only a crash
//! between a delivery and its record (milliseconds) repeats it.

pub mod evaluate;
pub mod notify;
pub mod rules;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use domain::process::Processes;
use store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

use domain::alert::{AlertRecord, Delivery, Notice, PhaseChange};
use evaluate::Finding;
use notify::{Destination, Message, Retry};
use rules::{Rule, Rules};
use state::{Lifecycle, RuleState};

/// How the evaluator runs.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub interval: Duration,
    /// While firing, the firing notice is sent again this often.
    pub repeat_interval: Duration,
    /// Where notices go (the config's `[[receivers]]`).
    pub destinations: Vec<Destination>,
    /// The console's address as on-call reaches it, for links.
    pub external_url: String,
    pub retry: Retry,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            interval: Duration::from_secs(30),
            repeat_interval: Duration::from_secs(4 * 3600),
            destinations: Vec::new(),
            external_url: "http://127.0.0.1:8080".into(),
            retry: Retry::default(),
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
    client: reqwest::Client,
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
        for rule in &rules.list {
            let link_timeout = rules.plant_link_timeout.0;
            let finding =
                match evaluate::evaluate(&self.store, &self.processes, rule, now, link_timeout)
                    .await
                {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::warn!(rule = %rule.id, error = %e, "alert rule not evaluated");
                        report.failed += 1;
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
        let mut delivered = Vec::new();
        // A receiver that failed every attempt is not tried again this
        // cycle, so one that is down costs one rule's retries, not all.
        let mut down: std::collections::HashSet<String> = Default::default();
        for (rule, mut next, finding, annotations) in evaluated {
            let Some(notice) = next.notice else { continue };
            let due: Vec<Destination> = next
                .due(&names)
                .into_iter()
                .filter_map(|name| self.settings.destinations.iter().find(|r| &r.name == name))
                .cloned()
                .collect();
            if due.is_empty() {
                continue;
            }
            let summary = annotations.get("summary").cloned().unwrap_or_default();
            let message = Message {
                notice,
                labels: rule.alert_labels(),
                annotations,
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
            let mut changed = false;
            for receiver in &due {
                if down.contains(&receiver.name) {
                    report.undelivered += 1;
                    continue;
                }
                let body = notify::body(receiver, &message);
                let attempts =
                    notify::deliver(&self.client, &receiver.url, &body, self.settings.retry).await;
                let mut ok = false;
                for a in &attempts {
                    let at_ns = domain::now_ns();
                    if a.ok {
                        tracing::info!(rule = %rule.id, receiver = %receiver.name, notice = notice.as_str(), attempt = a.number, "notification sent");
                    } else {
                        tracing::warn!(rule = %rule.id, receiver = %receiver.name, notice = notice.as_str(), attempt = a.number, detail = %a.detail, "notification failed");
                    }
                    ok |= a.ok;
                    log.push(Delivery {
                        rule_id: rule.id.clone(),
                        destination: receiver.name.clone(),
                        notice,
                        attempt: a.number,
                        at_ns,
                        ok: a.ok,
                        detail: a.detail.clone(),
                    });
                }
                if ok {
                    next.delivered_to(&receiver.name, now);
                    changed = true;
                    report.sent += 1;
                } else {
                    report.undelivered += 1;
                    down.insert(receiver.name.clone());
                }
            }
            if changed {
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
