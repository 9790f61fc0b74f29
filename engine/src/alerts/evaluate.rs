//! A rule's condition at a moment: its value, whether it holds, and what
//! makes it hold (instances by their root key, or systems), with the orders
//! and customers affected. Reads through `Store` queries only.

use domain::instance::Breach;
use domain::process::{duration, Processes};
use domain::quantile::quantile;
use store::alerts::EventOutcomes;
use store::stats::LAST_SEEN_LOOKBACK_NS;
use store::{Store, StoreError};

use super::rules::{number, Condition, Measure, Rule};

/// Subjects kept per finding; the counts are exact, the list is a sample.
pub const MAX_AFFECTED: usize = 100;

/// What one evaluation found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Finding {
    pub holds: bool,
    pub value: f64,
    /// The value as people read it: `14`, `12.5%`, `7m30s`.
    pub value_text: String,
    /// `<key type>:<value>` of instances, or `system:<name>`.
    pub affected: Vec<String>,
    pub orders: u64,
    pub customers: u64,
    /// What the reader must know besides: for breach rules, the plants
    /// whose link is down (their stages may be waiting in an edge spool).
    pub note: Option<String>,
}

/// Orders and customers behind instances of a process rooted at `key_type`.
async fn people(store: &Store, key_type: &str, roots: &[String]) -> Result<(u64, u64), StoreError> {
    let keys: Vec<(String, String)> = roots
        .iter()
        .map(|r| (key_type.to_string(), r.clone()))
        .collect();
    let count = |wanted: &'static str| {
        let keys = &keys;
        async move {
            if keys.is_empty() {
                Ok(0)
            } else if key_type == wanted {
                Ok(keys.len() as u64)
            } else {
                store.linked_count(keys, wanted).await
            }
        }
    };
    let (orders, customers) = tokio::try_join!(count("order"), count("customer"))?;
    Ok((orders, customers))
}

/// The first [`MAX_AFFECTED`] root values as subjects (`order:SO-1`).
fn subjects(key_type: &str, roots: &[String]) -> Vec<String> {
    roots
        .iter()
        .take(MAX_AFFECTED)
        .map(|r| format!("{key_type}:{r}"))
        .collect()
}

fn distinct_roots(rows: &[Breach]) -> Vec<String> {
    let set: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.root_value.as_str()).collect();
    set.into_iter().map(str::to_string).collect()
}

/// The plants whose link is down at `now` (unheard for `timeout_ns`), said
/// for a breach alert: a stage that seems missing may be waiting in their
/// edge spool. `None` when every plant's link is up.
async fn links_down(
    store: &Store,
    now: u64,
    timeout_ns: u64,
) -> Result<Option<String>, StoreError> {
    let down: Vec<String> = store
        .plant_states(now)
        .await?
        .iter()
        .filter(|p| p.last_report.is_some() && p.link_down(now, timeout_ns))
        .map(|p| {
            let heard = p.last_report.as_ref().map_or(0, |r| r.received_ns);
            format!(
                "{} (last heard {} ago)",
                p.plant,
                duration::format_ns(now.saturating_sub(heard) / 1_000_000_000 * 1_000_000_000)
            )
        })
        .collect();
    Ok((!down.is_empty()).then(|| {
        format!(
            "link down: plant {}; stages from it may be waiting in its edge collector's spool, so these breaches may be stale",
            down.join(", plant ")
        )
    }))
}

/// `note` of a breach rule's finding: the plants whose link is down, while
/// it holds.
async fn breach_note(
    store: &Store,
    holds: bool,
    now: u64,
    timeout_ns: u64,
) -> Result<Option<String>, StoreError> {
    if holds {
        links_down(store, now, timeout_ns).await
    } else {
        Ok(None)
    }
}

/// Evaluates `rule` at `now`; a plant unheard for `link_timeout_ns` has
/// its link down.
pub async fn evaluate(
    store: &Store,
    processes: &Processes,
    rule: &Rule,
    now: u64,
    link_timeout_ns: u64,
) -> Result<Finding, StoreError> {
    let key_type = |process: &str| {
        processes
            .get(process)
            .map(|p| p.key_type.clone())
            .unwrap_or_else(|| "order".into())
    };
    match &rule.condition {
        Condition::SloBurn {
            process,
            slo,
            windows,
        } => slo_burn(store, processes, process, slo, windows, now).await,
        Condition::SlaBreaches {
            process,
            sla,
            window_ns,
            measure,
            threshold,
        } => {
            let from = now.saturating_sub(*window_ns);
            let rows = store
                .breaches_due(process, sla.as_deref(), from, now)
                .await?;
            let roots = distinct_roots(&rows);
            let kt = key_type(process);
            let (orders, customers) = people(store, &kt, &roots).await?;
            let (value, value_text) = match measure {
                Measure::Count => (rows.len() as f64, rows.len().to_string()),
                Measure::Share => {
                    let (started, breached) = tokio::try_join!(
                        store.instances_started_count(process, from, now),
                        store.instances_breached_count(process, sla.as_deref(), from, now),
                    )?;
                    let share = if started == 0 {
                        0.0
                    } else {
                        breached as f64 * 100.0 / started as f64
                    };
                    (share, format!("{}%", number(share)))
                }
            };
            let holds = value > *threshold;
            Ok(Finding {
                holds,
                value,
                value_text,
                affected: subjects(&kt, &roots),
                orders,
                customers,
                note: breach_note(store, holds, now, link_timeout_ns).await?,
            })
        }
        Condition::OpenBreaches {
            process,
            sla,
            threshold,
        } => {
            let rows = store.open_breaches(process, sla.as_deref()).await?;
            let roots = distinct_roots(&rows);
            let kt = key_type(process);
            let (orders, customers) = people(store, &kt, &roots).await?;
            let value = rows.len() as f64;
            let holds = value > *threshold;
            Ok(Finding {
                holds,
                value,
                value_text: rows.len().to_string(),
                affected: subjects(&kt, &roots),
                orders,
                customers,
                note: breach_note(store, holds, now, link_timeout_ns).await?,
            })
        }
        Condition::PlantBacklog { plant, limit_ns } => {
            let states = store.plant_states(now).await?;
            // Behind: the backlog's age, or the silence since the last
            // report, whichever is longer; never heard: over the lookback.
            let behind = |s: &domain::plant::PlantState| match &s.last_report {
                Some(r) => s
                    .backlog_age_ns(now)
                    .unwrap_or(0)
                    .max(now.saturating_sub(r.received_ns)),
                None => LAST_SEEN_LOOKBACK_NS,
            };
            let watched: Vec<(String, u64)> = match plant {
                Some(name) => vec![(
                    name.clone(),
                    states
                        .iter()
                        .find(|s| &s.plant == name)
                        .map_or(LAST_SEEN_LOOKBACK_NS, behind),
                )],
                // Every plant with an edge collector that reports.
                None => states
                    .iter()
                    .filter(|s| s.last_report.is_some())
                    .map(|s| (s.plant.clone(), behind(s)))
                    .collect(),
            };
            let late: Vec<&(String, u64)> = watched.iter().filter(|(_, b)| b > limit_ns).collect();
            let pool: Vec<&(String, u64)> = if late.is_empty() {
                watched.iter().collect()
            } else {
                late.clone()
            };
            let value_ns = pool.iter().map(|(_, b)| *b).max().unwrap_or(0);
            // Whole seconds: a figure people read, and stable between cycles.
            let value_ns = value_ns / 1_000_000_000 * 1_000_000_000;
            let value_text = if value_ns >= LAST_SEEN_LOOKBACK_NS {
                format!("over {}", duration::format_ns(LAST_SEEN_LOOKBACK_NS))
            } else {
                duration::format_ns(value_ns)
            };
            Ok(Finding {
                holds: !late.is_empty(),
                value: value_ns as f64 / 1e9,
                value_text,
                affected: late
                    .iter()
                    .map(|(name, _)| format!("plant:{name}"))
                    .collect(),
                orders: 0,
                customers: 0,
                note: None,
            })
        }
        Condition::StageLatency {
            process,
            from,
            to,
            percentile: p,
            window_ns,
            limit_ns,
        } => {
            let rows = store
                .instance_stages(process, now.saturating_sub(*window_ns), now, 500_000)
                .await?;
            let mut durations = Vec::new();
            let mut slow = Vec::new();
            for (root, stages) in &rows {
                let Some(a) = stages.time_of(from) else {
                    continue;
                };
                // An instance still waiting for `to` past the limit counts
                // with its wait so far: the missing event is what matters.
                let took = match stages.time_of(to) {
                    Some(b) if b >= a => b - a,
                    Some(_) => continue,
                    None if now.saturating_sub(a) > *limit_ns => now - a,
                    None => continue,
                };
                durations.push(took);
                if took > *limit_ns {
                    slow.push(root.clone());
                }
            }
            // Whole seconds: a figure people read.
            let value_ns =
                quantile(&mut durations, *p / 100.0).map(|v| v / 1_000_000_000 * 1_000_000_000);
            let holds = value_ns.is_some_and(|v| v > *limit_ns);
            let kt = key_type(process);
            slow.sort();
            let (orders, customers) = if holds {
                people(store, &kt, &slow).await?
            } else {
                (0, 0)
            };
            Ok(Finding {
                holds,
                value: value_ns.unwrap_or(0) as f64 / 1e9,
                value_text: value_ns.map_or("no data".into(), duration::format_ns),
                affected: if holds {
                    subjects(&kt, &slow)
                } else {
                    Vec::new()
                },
                orders,
                customers,
                note: None,
            })
        }
        Condition::SystemSilence {
            system,
            silent_for_ns,
        } => {
            let activity = store
                .system_activity(now.saturating_sub(*silent_for_ns), now)
                .await?;
            let silence = |last: u64| {
                if last == 0 {
                    LAST_SEEN_LOOKBACK_NS
                } else {
                    now.saturating_sub(last)
                }
            };
            let watched: Vec<(String, u64)> = match system {
                Some(name) => vec![(
                    name.clone(),
                    activity
                        .iter()
                        .find(|a| &a.system == name)
                        .map_or(LAST_SEEN_LOOKBACK_NS, |a| silence(a.last_seen_ns)),
                )],
                None => activity
                    .iter()
                    .map(|a| (a.system.clone(), silence(a.last_seen_ns)))
                    .collect(),
            };
            let silent: Vec<&(String, u64)> =
                watched.iter().filter(|(_, s)| s > silent_for_ns).collect();
            let value_ns = if silent.is_empty() {
                watched.iter().map(|(_, s)| *s).max().unwrap_or(0)
            } else {
                silent.iter().map(|(_, s)| *s).max().unwrap_or(0)
            };
            // Whole seconds: a figure people read, and stable between cycles.
            let value_ns = value_ns / 1_000_000_000 * 1_000_000_000;
            let value_text = if value_ns >= LAST_SEEN_LOOKBACK_NS {
                format!("over {}", duration::format_ns(LAST_SEEN_LOOKBACK_NS))
            } else {
                duration::format_ns(value_ns)
            };
            Ok(Finding {
                holds: !silent.is_empty(),
                value: value_ns as f64 / 1e9,
                value_text,
                affected: silent
                    .iter()
                    .map(|(name, _)| format!("system:{name}"))
                    .collect(),
                orders: 0,
                customers: 0,
                note: None,
            })
        }
        Condition::ErrorRate {
            system,
            event_type,
            window_ns,
            threshold,
        } => {
            let from = now.saturating_sub(*window_ns);
            let outcomes = store
                .event_outcomes(from, now, system.as_deref(), event_type.as_deref())
                .await?;
            // A system's spans count too, unless the rule is about one event type.
            let (failed, total) = match (system, event_type) {
                (Some(name), None) => {
                    let activity = store.system_activity(from, now).await?;
                    let a = activity.iter().find(|a| &a.system == name);
                    (
                        a.map_or(0, |a| a.span_errors + a.event_failures),
                        a.map_or(0, |a| a.spans + a.events),
                    )
                }
                _ => (outcomes.failed, outcomes.events),
            };
            let rate = if total == 0 {
                0.0
            } else {
                failed as f64 * 100.0 / total as f64
            };
            let holds = total > 0 && rate > *threshold;
            let text = format!("{}%", number(rate));
            Ok(event_finding(
                holds, rate, text, &outcomes, system, event_type,
            ))
        }
        Condition::DeadLetters {
            system,
            event_type,
            window_ns,
            threshold,
        } => {
            let outcomes = store
                .event_outcomes(
                    now.saturating_sub(*window_ns),
                    now,
                    system.as_deref(),
                    event_type.as_deref(),
                )
                .await?;
            let value = outcomes.dead as f64;
            let holds = value > *threshold;
            let text = outcomes.dead.to_string();
            Ok(event_finding(
                holds, value, text, &outcomes, system, event_type,
            ))
        }
    }
}

/// What an event rule found: its subject (system, event type) as what is
/// affected while it holds, and the orders and customers its events name.
fn event_finding(
    holds: bool,
    value: f64,
    value_text: String,
    outcomes: &EventOutcomes,
    system: &Option<String>,
    event_type: &Option<String>,
) -> Finding {
    Finding {
        holds,
        value,
        value_text,
        affected: if holds {
            subject(system, event_type)
        } else {
            Vec::new()
        },
        orders: outcomes.orders,
        customers: outcomes.customers,
        note: None,
    }
}

fn subject(system: &Option<String>, event_type: &Option<String>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = system {
        out.push(format!("system:{s}"));
    }
    if let Some(t) = event_type {
        out.push(format!("event_type:{t}"));
    }
    out
}

/// An SLO's burn: for each (rate, long, short), both windows' burn rates
/// from the process rollups, each window shifted back by the SLO's lag
/// (`SloDef::starts`). The value is the highest of the lower of each
/// pair's two (what must exceed the pair's rate).
async fn slo_burn(
    store: &Store,
    processes: &Processes,
    process: &str,
    slo: &str,
    windows: &[(f64, u64, u64)],
    now: u64,
) -> Result<Finding, StoreError> {
    let Some(def) = processes
        .get(process)
        .and_then(|p| p.slos.iter().find(|s| s.id == slo))
    else {
        return Ok(Finding::default());
    };
    use domain::process::slo::{Judged, SloTarget};
    let rate = |w: u64| async move {
        // Shifted back by the SLA's (or stage latency's) `within`: every
        // instance started in it is judged by now.
        let (from, to) = def.starts(w, now);
        let judged = match &def.target {
            SloTarget::Sla(_) | SloTarget::Latency { .. } => {
                let mut rollups = store.process_rollups(from, to).await?;
                Judged::of(def, &rollups.remove(process).unwrap_or_default())
            }
            SloTarget::Events { system, event_type } => {
                let (events, bad) = store
                    .event_outcome_counts(system, event_type.as_deref(), from, to)
                    .await?;
                Judged::events(events, bad)
            }
        };
        Ok::<f64, StoreError>(judged.burn_rate(def.objective))
    };
    let mut value = 0.0f64;
    let mut holds = false;
    for (threshold, long, short) in windows {
        let (l, s) = tokio::try_join!(rate(*long), rate(*short))?;
        let both = l.min(s);
        value = value.max(both);
        holds |= both > *threshold;
    }
    Ok(Finding {
        holds,
        value,
        value_text: format!("{}x", number(value)),
        affected: Vec::new(),
        orders: 0,
        customers: 0,
        note: None,
    })
}
