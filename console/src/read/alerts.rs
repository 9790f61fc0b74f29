//! `GET /api/v1/alerts`: every alert rule with its state, value and since
//! when; `GET /api/v1/alerts/{id}`: one rule with what makes it fire (linked
//! to its pages), its phase changes and its delivery attempts. The state is
//! the evaluator's, read from ClickHouse.

use std::collections::BTreeMap;

use domain::alert::AlertRecord;
use domain::process::duration;
use serde::Serialize;

use super::Reads;
use crate::error::AppError;
use crate::links;
use domain::time::rfc3339;
use engine::alerts::rules::Rule;

/// History rows and delivery attempts shown per rule.
const HISTORY: usize = 50;

/// Something that makes a rule fire, with its page.
#[derive(Debug, Clone, Serialize)]
pub struct Subject {
    /// `order`, `work_order`, `customer` (an instance's root key), `system`
    /// or `event_type`.
    pub kind: String,
    pub value: String,
    pub href: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub severity: String,
    /// The team that owns what it watches; `None` when nothing names one.
    pub owner: Option<String>,
    /// The team whose every process it watches (a `team` rule).
    pub team: Option<String>,
    pub file: String,
    pub threshold: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub labels: BTreeMap<String, String>,
    /// `inactive`, `pending`, `firing`, `resolved`; `unknown` before the
    /// evaluator's first cycle.
    pub state: String,
    pub value: Option<String>,
    pub summary: Option<String>,
    /// Since when the rule is in its state.
    pub since: Option<String>,
    pub fired_at: Option<String>,
    pub resolved_at: Option<String>,
    pub evaluated_at: Option<String>,
    pub orders: u64,
    pub customers: u64,
    pub affected: Vec<Subject>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Alerts {
    pub alerts: Vec<AlertView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryView {
    pub at: String,
    pub from: String,
    pub to: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptView {
    pub at: String,
    pub receiver: String,
    pub notice: String,
    pub attempt: u32,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub alert: AlertView,
    pub history: Vec<HistoryView>,
    pub notifications: Vec<AttemptView>,
}

fn time(ns: u64) -> Option<String> {
    (ns > 0).then(|| rfc3339(ns))
}

fn subject(text: &str) -> Subject {
    let (kind, value) = text.split_once(':').unwrap_or(("", text));
    let href = match kind {
        "system" => "/systems".to_string(),
        "event_type" => links::events_api(value),
        _ => links::key(kind, value),
    };
    Subject {
        kind: kind.into(),
        value: value.into(),
        href,
    }
}

fn view(rule: &Rule, row: Option<&AlertRecord>) -> AlertView {
    AlertView {
        id: rule.id.clone(),
        name: rule.name.clone(),
        kind: rule.condition.kind().into(),
        severity: rule.severity.clone(),
        owner: rule.owner.clone(),
        team: rule.team.clone(),
        file: rule.file.clone(),
        threshold: rule.condition.threshold_text(),
        for_: duration::format_ns(rule.for_ns),
        labels: rule.alert_labels(),
        state: row.map_or("unknown".into(), |r| r.state.phase.as_str().into()),
        value: row.map(|r| r.value_text.clone()),
        summary: row.map(|r| r.summary.clone()),
        since: row.and_then(|r| time(r.state.since_ns)),
        fired_at: row.and_then(|r| time(r.state.fired_ns)),
        resolved_at: row.and_then(|r| time(r.state.resolved_ns)),
        evaluated_at: row.and_then(|r| time(r.evaluated_ns)),
        orders: row.map_or(0, |r| r.orders),
        customers: row.map_or(0, |r| r.customers),
        affected: row.map_or(Vec::new(), |r| {
            r.affected.iter().map(|a| subject(a)).collect()
        }),
    }
}

/// Every rule with its state, firing first, then pending, then by id.
pub async fn alerts(state: &Reads) -> Result<Alerts, AppError> {
    let rows = state.store.alert_states().await?;
    let mut alerts: Vec<AlertView> = state
        .alerts
        .list
        .iter()
        .map(|rule| view(rule, rows.iter().find(|r| r.rule_id == rule.id)))
        .collect();
    let rank = |s: &str| match s {
        "firing" => 0,
        "pending" => 1,
        _ => 2,
    };
    alerts.sort_by(|a, b| rank(&a.state).cmp(&rank(&b.state)).then(a.id.cmp(&b.id)));
    Ok(Alerts { alerts })
}

/// One rule with its history and delivery attempts.
pub async fn alert(state: &Reads, id: &str) -> Result<AlertDetail, AppError> {
    super::check_id("alert rule", id)?;
    let rule = state.alerts.get(id).ok_or_else(|| {
        let known: Vec<&str> = state.alerts.list.iter().map(|r| r.id.as_str()).collect();
        AppError::NotFound(format!(
            "no alert rule `{id}`; defined: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })?;
    let (rows, history, attempts) = tokio::try_join!(
        state.store.alert_states(),
        state.store.alert_history(id, HISTORY),
        state.store.alert_notifications(id, HISTORY),
    )?;
    Ok(AlertDetail {
        alert: view(rule, rows.iter().find(|r| r.rule_id == rule.id)),
        history: history
            .into_iter()
            .map(|h| HistoryView {
                at: rfc3339(h.at_ns),
                from: h.from.as_str().into(),
                to: h.to.as_str().into(),
                value: h.value_text,
            })
            .collect(),
        notifications: attempts
            .into_iter()
            .map(|a| AttemptView {
                at: rfc3339(a.at_ns),
                receiver: a.destination,
                notice: a.notice.as_str().into(),
                attempt: a.attempt,
                ok: a.ok,
                detail: a.detail,
            })
            .collect(),
    })
}
