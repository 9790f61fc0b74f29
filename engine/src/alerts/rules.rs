//! Alert rule files: `[[rules]]` in `*.toml` files of `alerts_dir`, parsed
//! and validated at start like process definitions. Every mistake names the
//! file, the line and the fix, and stops the start.
//!
//! `kinds` holds what a rule watches (its `Condition`); this file the rule,
//! the set of rules and the parsing and checking of the files.

mod kinds;

use std::collections::BTreeMap;
use std::path::Path;

use domain::process::definition::{line_of, read_toml_dir, valid_id};
use domain::process::{duration, DefinitionError, Processes};
use serde::Deserialize;
use toml::Spanned;

use kinds::default_summary;
pub use kinds::{number, Condition, Measure, KINDS};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    name: Option<String>,
    kind: Spanned<String>,
    process: Option<Spanned<String>>,
    /// Every process this team owns: one rule per process.
    team: Option<Spanned<String>>,
    sla: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    to: Option<Spanned<String>>,
    percentile: Option<Spanned<f64>>,
    limit: Option<Spanned<String>>,
    system: Option<Spanned<String>>,
    event_type: Option<Spanned<String>>,
    window: Option<Spanned<String>>,
    silent_for: Option<Spanned<String>>,
    plant: Option<Spanned<String>>,
    measure: Option<Spanned<String>>,
    threshold: Option<Spanned<f64>>,
    #[serde(rename = "for")]
    for_: Option<Spanned<String>>,
    severity: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// One validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    /// Its `alertname` label: the id, or for a rule made from a `team`
    /// rule (`<id>-<process>`), that rule's id, so Alertmanager groups
    /// them and the `process` label tells them apart.
    pub alertname: String,
    /// The team whose processes a `team` rule covers.
    pub team: Option<String>,
    /// The team that owns what the rule watches (its process, or its
    /// system in `[systems.<name>]`); `None` when nothing names one.
    pub owner: Option<String>,
    pub name: String,
    pub condition: Condition,
    /// How long the condition must hold before the rule fires.
    pub for_ns: u64,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    /// Templates: `{value}`, `{threshold}`, `{orders}`, `{customers}`,
    /// `{affected}`, `{rule}` are filled in when a notification is sent.
    pub annotations: BTreeMap<String, String>,
    /// Where it was defined, for messages.
    pub file: String,
}

impl Rule {
    /// The labels an alert of this rule carries: `alertname`, `severity`,
    /// what it watches, `owner` and `team` (the owner of what it watches,
    /// or `unowned`), then the rule's own (which win).
    pub fn alert_labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_string(), self.alertname.clone());
        labels.insert("severity".to_string(), self.severity.clone());
        let owner = self.owner.as_deref().unwrap_or(domain::process::UNOWNED);
        labels.insert("owner".to_string(), owner.to_string());
        labels.insert("team".to_string(), owner.to_string());
        labels.insert("kind".to_string(), self.condition.kind().to_string());
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                labels.insert(k.to_string(), v.clone());
            }
        };
        match &self.condition {
            Condition::SlaBreaches { process, sla, .. }
            | Condition::OpenBreaches { process, sla, .. } => {
                put("process", &Some(process.clone()));
                put("sla", sla);
            }
            Condition::StageLatency { process, .. } => put("process", &Some(process.clone())),
            Condition::SloBurn { process, slo, .. } => {
                put("process", &Some(process.clone()));
                put("slo", &Some(slo.clone()));
            }
            Condition::SystemSilence { system, .. } => put("system", system),
            Condition::PlantBacklog { plant, .. } => put("plant", plant),
            Condition::ErrorRate {
                system, event_type, ..
            }
            | Condition::DeadLetters {
                system, event_type, ..
            } => {
                put("system", system);
                put("event_type", event_type);
            }
        }
        for (k, v) in &self.labels {
            labels.insert(k.clone(), v.clone());
        }
        labels
    }
}

/// Every rule of a deployment, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub list: Vec<Rule>,
    /// When a plant's link counts as down (`plant_link_timeout`): for the
    /// `plant_backlog` rules, the open-breach annotations and the console.
    pub plant_link_timeout: domain::plant::LinkTimeout,
}

const SEVERITIES: &[&str] = &["critical", "warning", "info"];

impl Rules {
    /// Reads every `*.toml` in `dir`. A missing directory holds no rules.
    pub fn load_dir(dir: &Path, processes: &Processes) -> Result<Self, DefinitionError> {
        let texts = read_toml_dir(dir, "alerts")?;
        Self::parse_all(
            texts.iter().map(|(f, t)| (f.as_str(), t.as_str())),
            processes,
        )
    }

    /// Parses the files `(name, text)` and checks rule ids are unique across them.
    pub fn parse_all<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
        processes: &Processes,
    ) -> Result<Self, DefinitionError> {
        let mut list: Vec<Rule> = Vec::new();
        let mut seen: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for (file, text) in files {
            for (rule, line) in Self::parse(text, file, processes)? {
                if let Some((other, other_line)) = seen.get(&rule.id) {
                    return Err(DefinitionError {
                        file: file.to_string(),
                        line,
                        message: format!(
                            "alert rule id `{}` is already defined at {other}:{other_line}; give each rule its own id",
                            rule.id
                        ),
                    });
                }
                seen.insert(rule.id.clone(), (file.to_string(), line));
                list.push(rule);
            }
        }
        for rule in Self::slo_rules(processes)? {
            if let Some((other, other_line)) = seen.get(&rule.id) {
                return Err(DefinitionError {
                    file: other.clone(),
                    line: *other_line,
                    message: format!(
                        "alert rule id `{}` is taken by the burn-rate alert of an SLO of {}; give the rule another id",
                        rule.id, rule.file
                    ),
                });
            }
            list.push(rule);
        }
        Ok(Self {
            list,
            plant_link_timeout: Default::default(),
        })
    }

    /// Each SLO's multi-window burn-rate alerts (`SloDef::burn_alerts`,
    /// the rates for the SLO's window): a
    /// `page` rule (critical) and a `ticket` rule (warning), ids
    /// `<process>-<slo>-page` and `-ticket`.
    pub fn slo_rules(processes: &Processes) -> Result<Vec<Rule>, DefinitionError> {
        let mut out = Vec::new();
        for def in &processes.list {
            for slo in &def.slos {
                for (class, severity) in [("page", "critical"), ("ticket", "warning")] {
                    let id = format!("{}-{}-{class}", def.id, slo.id);
                    if !valid_id(&id) {
                        return Err(DefinitionError {
                            file: def.file.clone(),
                            line: 0,
                            message: format!(
                                "SLO `{}`: its burn-rate alert's id `{id}` is longer than 64 bytes; shorten the SLO or process id",
                                slo.id
                            ),
                        });
                    }
                    let condition = Condition::SloBurn {
                        process: def.id.clone(),
                        slo: slo.id.clone(),
                        windows: slo
                            .burn_alerts()
                            .into_iter()
                            .filter(|(c, ..)| *c == class)
                            .map(|(_, _, rate, long, short)| (rate, long, short))
                            .collect(),
                    };
                    let mut annotations = BTreeMap::new();
                    annotations.insert("summary".to_string(), default_summary(&condition));
                    let mut labels = BTreeMap::new();
                    labels.insert("burn".to_string(), class.to_string());
                    out.push(Rule {
                        alertname: id.clone(),
                        name: format!("{} ({class})", slo.name),
                        team: None,
                        owner: def.owner.clone(),
                        condition,
                        for_ns: 0,
                        severity: severity.to_string(),
                        labels,
                        annotations,
                        file: def.file.clone(),
                        id,
                    });
                }
            }
        }
        Ok(out)
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.list.iter().find(|r| r.id == id)
    }

    /// Parses and validates one file's text: its rules with the line of each id.
    pub fn parse(
        text: &str,
        file: &str,
        processes: &Processes,
    ) -> Result<Vec<(Rule, usize)>, DefinitionError> {
        let error = |offset: usize, message: String| DefinitionError {
            file: file.to_string(),
            line: line_of(text, offset),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            error(offset, e.message().trim().to_string())
        })?;
        let mut out = Vec::new();
        let mut ids: BTreeMap<String, usize> = BTreeMap::new();
        // A `team` rule is one rule per process of the team.
        let mut expanded: Vec<(RawRule, Option<String>)> = Vec::new();
        for r in raw.rules {
            let Some(team) = r.team.clone() else {
                expanded.push((r, None));
                continue;
            };
            let base = r.id.get_ref().clone();
            if r.process.is_some() {
                return Err(error(
                    team.span().start,
                    format!("rule `{base}`: give `team` or `process`, not both"),
                ));
            }
            if !matches!(r.kind.get_ref().as_str(), "sla_breaches" | "open_breaches") {
                return Err(error(
                    team.span().start,
                    format!("rule `{base}`: `team` is for the kinds sla_breaches and open_breaches, which watch a process"),
                ));
            }
            let owned = processes.processes_of(team.get_ref());
            if owned.is_empty() {
                let teams: Vec<String> = processes
                    .teams()
                    .into_iter()
                    .filter(|(_, h)| !h.processes.is_empty())
                    .map(|(t, _)| t)
                    .collect();
                return Err(error(
                    team.span().start,
                    format!(
                        "rule `{base}`: team `{}` owns no process (a process names its team with owner = \"<team>\"); teams that own processes: {}",
                        team.get_ref(),
                        if teams.is_empty() { "none".to_string() } else { teams.join(", ") }
                    ),
                ));
            }
            for process in owned {
                let mut one = r.clone();
                one.id = Spanned::new(r.id.span(), format!("{base}-{process}"));
                one.process = Some(Spanned::new(team.span(), process.to_string()));
                expanded.push((one, Some(base.clone())));
            }
        }
        for (r, alertname) in expanded {
            let id = r.id.get_ref().clone();
            let at = r.id.span().start;
            if !valid_id(&id) {
                return Err(error(
                    at,
                    format!("alert rule id `{id}` must be lowercase letters, digits, `-` and `_`"),
                ));
            }
            if let Some(first) = ids.get(&id) {
                return Err(error(
                    at,
                    format!("alert rule id `{id}` is defined twice (first at line {first}); give each rule its own id"),
                ));
            }
            ids.insert(id.clone(), line_of(text, at));
            let kind = r.kind.get_ref().as_str();
            let dur = |name: &str, v: &Option<Spanned<String>>, default: Option<&str>| {
                match v {
                    Some(v) => duration::parse_ns(v.get_ref())
                        .filter(|ns| *ns > 0)
                        .ok_or_else(|| {
                            error(
                                v.span().start,
                                format!(
                                    "rule `{id}`: {name} `{}` is not a duration; write it like 90s, 15m, 4h, 2d or 1h30m",
                                    v.get_ref()
                                ),
                            )
                        }),
                    None => match default {
                        Some(d) => Ok(duration::parse_ns(d).expect("valid default")),
                        None => Err(error(
                            at,
                            format!("rule `{id}` ({kind}) needs `{name}`, a duration like 15m"),
                        )),
                    },
                }
            };
            let threshold = |default: Option<f64>| {
                match &r.threshold {
                Some(t) if *t.get_ref() >= 0.0 && t.get_ref().is_finite() => Ok(*t.get_ref()),
                Some(t) => Err(error(
                    t.span().start,
                    format!("rule `{id}`: threshold must be a number of 0 or more"),
                )),
                None => default.ok_or_else(|| {
                    error(
                        at,
                        format!("rule `{id}` ({kind}) needs `threshold`: it fires when the value is above it"),
                    )
                }),
            }
            };
            let string = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
            // The process and SLA a rule names must exist.
            let process =
                |need: bool| -> Result<Option<&domain::process::ProcessDef>, DefinitionError> {
                    match &r.process {
                    Some(p) => processes.get(p.get_ref()).map(Some).ok_or_else(|| {
                        let known: Vec<&str> =
                            processes.list.iter().map(|p| p.id.as_str()).collect();
                        error(
                            p.span().start,
                            format!(
                                "rule `{id}` names process `{}`, which is not defined; defined processes: {}",
                                p.get_ref(),
                                if known.is_empty() { "none".to_string() } else { known.join(", ") }
                            ),
                        )
                    }),
                    None if need => Err(error(
                        at,
                        format!("rule `{id}` ({kind}) needs `process`, the id of a process definition"),
                    )),
                    None => Ok(None),
                }
                };
            let sla =
                |def: &domain::process::ProcessDef| -> Result<Option<String>, DefinitionError> {
                    match &r.sla {
                    Some(s) if def.slas.iter().any(|x| &x.id == s.get_ref()) => {
                        Ok(Some(s.get_ref().clone()))
                    }
                    Some(s) => Err(error(
                        s.span().start,
                        format!(
                            "rule `{id}` names SLA `{}`, which process `{}` does not define; its SLAs: {}",
                            s.get_ref(),
                            def.id,
                            def.slas.iter().map(|x| x.id.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    )),
                    None => Ok(None),
                }
                };
            let stage = |def: &domain::process::ProcessDef,
                         name: &str,
                         v: &Option<Spanned<String>>|
             -> Result<String, DefinitionError> {
                let defined = || {
                    def.stages
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                match v {
                    Some(s) if def.stage_index(s.get_ref()).is_some() => Ok(s.get_ref().clone()),
                    Some(s) => Err(error(
                        s.span().start,
                        format!(
                            "rule `{id}` names stage `{}`, which process `{}` does not define; defined stages: {}",
                            s.get_ref(),
                            def.id,
                            defined()
                        ),
                    )),
                    None => Err(error(
                        at,
                        format!("rule `{id}` (stage_latency) needs `{name}`, a stage of process `{}`: {}", def.id, defined()),
                    )),
                }
            };
            let condition = match kind {
                "sla_breaches" => {
                    let def = process(true)?.expect("required");
                    let measure = match r.measure.as_ref().map(|m| m.get_ref().as_str()) {
                        None | Some("count") => Measure::Count,
                        Some("share") => Measure::Share,
                        Some(other) => {
                            return Err(error(
                                r.measure.as_ref().expect("some").span().start,
                                format!("rule `{id}`: measure `{other}` is not `count` or `share`"),
                            ))
                        }
                    };
                    Condition::SlaBreaches {
                        process: def.id.clone(),
                        sla: sla(def)?,
                        window_ns: dur("window", &r.window, Some("1h"))?,
                        measure,
                        threshold: threshold(None)?,
                    }
                }
                "open_breaches" => {
                    let def = process(true)?.expect("required");
                    Condition::OpenBreaches {
                        process: def.id.clone(),
                        sla: sla(def)?,
                        threshold: threshold(Some(0.0))?,
                    }
                }
                "stage_latency" => {
                    let def = process(true)?.expect("required");
                    let from = stage(def, "from", &r.from)?;
                    let to = stage(def, "to", &r.to)?;
                    if def.stage_index(&from) >= def.stage_index(&to) {
                        return Err(error(
                            r.to.as_ref().expect("checked").span().start,
                            format!("rule `{id}`: stage `{to}` does not come after `{from}` in process `{}`; name a later stage as `to`", def.id),
                        ));
                    }
                    let percentile = match &r.percentile {
                        Some(p) if *p.get_ref() > 0.0 && *p.get_ref() <= 100.0 => *p.get_ref(),
                        Some(p) => {
                            return Err(error(
                                p.span().start,
                                format!(
                                "rule `{id}`: percentile must be above 0 and at most 100, like 95"
                            ),
                            ))
                        }
                        None => 95.0,
                    };
                    Condition::StageLatency {
                        process: def.id.clone(),
                        from,
                        to,
                        percentile,
                        window_ns: dur("window", &r.window, Some("1h"))?,
                        limit_ns: dur("limit", &r.limit, None)?,
                    }
                }
                "system_silence" => Condition::SystemSilence {
                    system: string(&r.system),
                    silent_for_ns: dur("silent_for", &r.silent_for, None)?,
                },
                "plant_backlog" => Condition::PlantBacklog {
                    plant: string(&r.plant),
                    limit_ns: dur("limit", &r.limit, None)?,
                },
                "error_rate" | "dead_letters" => {
                    let system = string(&r.system);
                    let event_type = string(&r.event_type);
                    let window_ns = dur("window", &r.window, Some("15m"))?;
                    if kind == "error_rate" {
                        if system.is_none() && event_type.is_none() {
                            return Err(error(
                                at,
                                format!("rule `{id}` (error_rate) needs `system` or `event_type`"),
                            ));
                        }
                        if r.threshold.as_ref().is_some_and(|t| *t.get_ref() > 100.0) {
                            return Err(error(
                                r.threshold.as_ref().expect("some").span().start,
                                format!("rule `{id}`: an error rate threshold is a percentage, 0 to 100"),
                            ));
                        }
                        Condition::ErrorRate {
                            system,
                            event_type,
                            window_ns,
                            threshold: threshold(None)?,
                        }
                    } else {
                        Condition::DeadLetters {
                            system,
                            event_type,
                            window_ns,
                            threshold: threshold(Some(0.0))?,
                        }
                    }
                }
                other => {
                    return Err(error(
                        r.kind.span().start,
                        format!(
                            "rule `{id}`: kind `{other}` is not known; use one of {}",
                            KINDS.join(", ")
                        ),
                    ))
                }
            };
            // Keys that the kind does not read are mistakes, not silence.
            let unused: Vec<(&str, Option<usize>)> = vec![
                ("process", r.process.as_ref().map(|s| s.span().start)),
                ("sla", r.sla.as_ref().map(|s| s.span().start)),
                ("from", r.from.as_ref().map(|s| s.span().start)),
                ("to", r.to.as_ref().map(|s| s.span().start)),
                ("percentile", r.percentile.as_ref().map(|s| s.span().start)),
                ("limit", r.limit.as_ref().map(|s| s.span().start)),
                ("system", r.system.as_ref().map(|s| s.span().start)),
                ("event_type", r.event_type.as_ref().map(|s| s.span().start)),
                ("window", r.window.as_ref().map(|s| s.span().start)),
                ("silent_for", r.silent_for.as_ref().map(|s| s.span().start)),
                ("plant", r.plant.as_ref().map(|s| s.span().start)),
                ("measure", r.measure.as_ref().map(|s| s.span().start)),
                ("threshold", r.threshold.as_ref().map(|s| s.span().start)),
            ];
            let reads: &[&str] = match kind {
                "sla_breaches" => &["process", "sla", "window", "measure", "threshold"],
                "open_breaches" => &["process", "sla", "threshold"],
                "stage_latency" => &["process", "from", "to", "percentile", "window", "limit"],
                "system_silence" => &["system", "silent_for"],
                "plant_backlog" => &["plant", "limit"],
                _ => &["system", "event_type", "window", "threshold"],
            };
            if let Some((key, Some(offset))) = unused
                .into_iter()
                .find(|(k, o)| o.is_some() && !reads.contains(k))
            {
                return Err(error(
                    offset,
                    format!(
                        "rule `{id}`: `{key}` has no meaning for kind {kind}; it reads {}",
                        reads.join(", ")
                    ),
                ));
            }
            let severity = match &r.severity {
                Some(s) if SEVERITIES.contains(&s.get_ref().as_str()) => s.get_ref().clone(),
                Some(s) => {
                    return Err(error(
                        s.span().start,
                        format!(
                            "rule `{id}`: severity `{}` is not one of {}",
                            s.get_ref(),
                            SEVERITIES.join(", ")
                        ),
                    ))
                }
                None => "warning".to_string(),
            };
            let for_ns = match &r.for_ {
                Some(f) => duration::parse_ns(f.get_ref()).ok_or_else(|| {
                    error(
                        f.span().start,
                        format!(
                            "rule `{id}`: for `{}` is not a duration; write it like 0s, 5m or 1h",
                            f.get_ref()
                        ),
                    )
                })?,
                None => 0,
            };
            let mut annotations = r.annotations;
            annotations
                .entry("summary".to_string())
                .or_insert_with(|| default_summary(&condition));
            let owner = match &condition {
                Condition::SlaBreaches { process, .. }
                | Condition::OpenBreaches { process, .. }
                | Condition::StageLatency { process, .. }
                | Condition::SloBurn { process, .. } => processes.process_owner(process),
                Condition::SystemSilence { system, .. }
                | Condition::ErrorRate { system, .. }
                | Condition::DeadLetters { system, .. } => {
                    system.as_deref().and_then(|s| processes.system_owner(s))
                }
                // A plant's link is its site's, which no process or system
                // names: `unowned` unless the rule's labels say.
                Condition::PlantBacklog { .. } => None,
            }
            .map(str::to_string);
            out.push((
                Rule {
                    name: r.name.unwrap_or_else(|| id.clone()),
                    alertname: alertname.unwrap_or_else(|| id.clone()),
                    team: r.team.map(Spanned::into_inner),
                    owner,
                    id,
                    condition,
                    for_ns,
                    severity,
                    labels: r.labels,
                    annotations,
                    file: file.to_string(),
                },
                line_of(text, at),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
