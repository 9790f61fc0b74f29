//! Parsing and validating process definition files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::duration;
use crate::keys::KeyTypes;

/// A mistake in a definition file: where, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct DefinitionError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcess {
    id: Spanned<String>,
    name: Option<String>,
    description: Option<String>,
    key: Spanned<String>,
    owner: Option<Spanned<String>>,
    #[serde(default)]
    contacts: Vec<String>,
    #[serde(default)]
    stages: Vec<RawStage>,
    #[serde(default)]
    slas: Vec<RawSla>,
    #[serde(default)]
    slos: Vec<super::slo::RawSlo>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    id: Spanned<String>,
    name: Option<String>,
    system: Spanned<String>,
    event: Option<String>,
    span: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSla {
    id: Spanned<String>,
    name: Option<String>,
    from: Spanned<String>,
    to: Spanned<String>,
    within: Spanned<String>,
}

/// One stage: reached when a record of `system` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageDef {
    pub id: String,
    pub name: String,
    pub system: String,
    /// Matches integration events of this type.
    pub event: Option<String>,
    /// Matches spans of this name (the system is the span's service).
    pub span: Option<String>,
}

impl StageDef {
    /// Does a record (`kind` is `event` or `span`) of `system` named `name`
    /// (event type or span name) reach this stage?
    pub fn matches(&self, kind: &str, system: &str, name: &str) -> bool {
        system == self.system
            && match kind {
                "event" => self.event.as_deref() == Some(name),
                "span" => self.span.as_deref() == Some(name),
                _ => false,
            }
    }
}

/// A service level: `to` within `within_ns` of `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaDef {
    pub id: String,
    pub name: String,
    /// Index into the process's stages.
    pub from: usize,
    pub to: usize,
    pub within_ns: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProcessDef {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The root key type: one instance per value of it.
    pub key_type: String,
    pub stages: Vec<StageDef>,
    pub slas: Vec<SlaDef>,
    /// Objectives on its SLAs (`[[slos]]`, see `slo`).
    pub slos: Vec<super::slo::SloDef>,
    /// The team that owns the process (`owner` in its file).
    pub owner: Option<String>,
    /// How to reach the owner.
    pub contacts: Vec<String>,
    /// Where it was defined, for messages.
    pub file: String,
}

impl ProcessDef {
    pub fn stage_index(&self, id: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.id == id)
    }
}

/// Every process of a deployment, in file name order, and who owns the
/// systems they touch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Processes {
    pub list: Vec<ProcessDef>,
    /// The config's `[systems.<name>]`: each system's owner and contacts
    /// (see `owners`).
    pub systems: BTreeMap<String, super::owners::SystemDef>,
}

/// The 1-based line of a byte offset in a definition file.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// An id as definition files write them: lowercase letters, digits, `_` and
/// `-`, starting with a letter or digit, at most 64 bytes.
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && id.len() <= 64
}

/// The `(path, text)` of every `*.toml` in `dir`, by name; none when the
/// directory does not exist. `what` names the directory in errors.
pub fn read_toml_dir(dir: &Path, what: &str) -> Result<Vec<(String, String)>, DefinitionError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // A directory that was named but is not there is a typo, not "none":
        // said, so an operator does not run without the definitions they meant.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DefinitionError {
                file: dir.display().to_string(),
                line: 0,
                message: format!(
                    "the {what} directory does not exist; check the path, or leave the setting out to run with none"
                ),
            })
        }
        Err(e) => {
            return Err(DefinitionError {
                file: dir.display().to_string(),
                line: 0,
                message: format!("cannot read the {what} directory: {e}"),
            })
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| DefinitionError {
                file: file.clone(),
                line: 0,
                message: format!("cannot read: {e}"),
            })?;
            Ok((file, text))
        })
        .collect()
}

impl Processes {
    /// Reads every `*.toml` in `dir`. A missing directory holds no processes.
    pub fn load_dir(dir: &Path, keys: &KeyTypes) -> Result<Self, DefinitionError> {
        let mut list: Vec<ProcessDef> = Vec::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (file, text) in read_toml_dir(dir, "processes")? {
            let def = Self::parse(&text, &file, keys)?;
            if let Some(other) = seen.insert(def.id.clone(), file.clone()) {
                return Err(DefinitionError {
                    file,
                    line: 1,
                    message: format!(
                        "process id `{}` is already defined in {other}; give each process its own id",
                        def.id
                    ),
                });
            }
            list.push(def);
        }
        Ok(Self {
            list,
            systems: BTreeMap::new(),
        })
    }

    pub fn get(&self, id: &str) -> Option<&ProcessDef> {
        self.list.iter().find(|p| p.id == id)
    }

    /// The name to show for process `id`: its definition's, or the id
    /// itself when no definition has it (any more).
    pub fn name_of<'a>(&'a self, id: &'a str) -> &'a str {
        self.get(id).map_or(id, |d| d.name.as_str())
    }

    /// Parses and validates one definition file's text.
    pub fn parse(text: &str, file: &str, keys: &KeyTypes) -> Result<ProcessDef, DefinitionError> {
        let error = |offset: usize, message: String| DefinitionError {
            file: file.to_string(),
            line: line_of(text, offset),
            message,
        };
        let raw: RawProcess = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            error(offset, e.message().trim().to_string())
        })?;
        if !valid_id(raw.id.get_ref()) {
            return Err(error(
                raw.id.span().start,
                format!(
                    "process id `{}` must be lowercase letters, digits, `-` and `_`",
                    raw.id.get_ref()
                ),
            ));
        }
        if keys.rank(raw.key.get_ref()).is_none() {
            return Err(error(
                raw.key.span().start,
                format!(
                    "key `{}` is not a known key type; use one of {} (or add it under [keys.types])",
                    raw.key.get_ref(),
                    keys.names().join(", ")
                ),
            ));
        }
        if let Some(owner) = &raw.owner {
            if let Some(e) = super::owners::check_team(
                &format!("process `{}`", raw.id.get_ref()),
                owner.get_ref(),
            ) {
                return Err(error(owner.span().start, e));
            }
        } else if !raw.contacts.is_empty() {
            return Err(error(
                0,
                "`contacts` without `owner`: name the team that owns the process with owner = \"<team>\"".into(),
            ));
        }
        if raw.stages.is_empty() {
            return Err(error(
                0,
                "a process needs at least one [[stages]] entry".into(),
            ));
        }
        let mut stages: Vec<StageDef> = Vec::new();
        let mut stage_lines: BTreeMap<String, usize> = BTreeMap::new();
        for stage in raw.stages {
            let id = stage.id.get_ref().clone();
            let at = stage.id.span().start;
            if !valid_id(&id) {
                return Err(error(
                    at,
                    format!("stage id `{id}` must be lowercase letters, digits, `-` and `_`"),
                ));
            }
            if let Some(first) = stage_lines.get(&id) {
                return Err(error(
                    at,
                    format!("stage id `{id}` is defined twice (first at line {first}); give each stage its own id"),
                ));
            }
            stage_lines.insert(id.clone(), line_of(text, at));
            if stage.event.is_none() && stage.span.is_none() {
                return Err(error(
                    at,
                    format!("stage `{id}` matches nothing; give it `event = \"<event type>\"` or `span = \"<span name>\"`"),
                ));
            }
            if stage.system.get_ref().trim().is_empty() {
                return Err(error(
                    stage.system.span().start,
                    format!("stage `{id}` has an empty system"),
                ));
            }
            stages.push(StageDef {
                name: stage.name.unwrap_or_else(|| id.clone()),
                id,
                system: stage.system.into_inner(),
                event: stage.event,
                span: stage.span,
            });
        }
        let defined = || {
            stages
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut slas: Vec<SlaDef> = Vec::new();
        let mut sla_lines: BTreeMap<String, usize> = BTreeMap::new();
        for sla in raw.slas {
            let id = sla.id.get_ref().clone();
            let at = sla.id.span().start;
            if !valid_id(&id) {
                return Err(error(
                    at,
                    format!("SLA id `{id}` must be lowercase letters, digits, `-` and `_`"),
                ));
            }
            if let Some(first) = sla_lines.get(&id) {
                return Err(error(
                    at,
                    format!("SLA id `{id}` is defined twice (first at line {first}); give each SLA its own id"),
                ));
            }
            sla_lines.insert(id.clone(), line_of(text, at));
            let stage = |name: &Spanned<String>| {
                stages
                    .iter()
                    .position(|s| &s.id == name.get_ref())
                    .ok_or_else(|| {
                        error(
                            name.span().start,
                            format!(
                            "SLA `{id}` names stage `{}`, which is not defined; defined stages: {}",
                            name.get_ref(),
                            defined()
                        ),
                        )
                    })
            };
            let from = stage(&sla.from)?;
            let to = stage(&sla.to)?;
            if from == to {
                return Err(error(
                    sla.to.span().start,
                    format!(
                        "SLA `{id}` goes from stage `{}` to itself; name two different stages",
                        sla.to.get_ref()
                    ),
                ));
            }
            let within_ns = duration::parse_ns(sla.within.get_ref())
                .filter(|ns| *ns > 0)
                .ok_or_else(|| {
                    error(
                        sla.within.span().start,
                        format!(
                            "SLA `{id}`: within `{}` is not a duration; write it like 90s, 15m, 4h, 2d or 1h30m",
                            sla.within.get_ref()
                        ),
                    )
                })?;
            slas.push(SlaDef {
                name: sla.name.unwrap_or_else(|| id.clone()),
                id,
                from,
                to,
                within_ns,
            });
        }
        let sla_ids: Vec<(&str, u64)> = slas.iter().map(|s| (s.id.as_str(), s.within_ns)).collect();
        let stage_ids: Vec<&str> = stages.iter().map(|s| s.id.as_str()).collect();
        let mut slos: Vec<super::slo::SloDef> = Vec::new();
        for raw_slo in raw.slos {
            let at = raw_slo.id.span().start;
            let slo =
                super::slo::parse(raw_slo, &sla_ids, &stage_ids).map_err(|(o, m)| error(o, m))?;
            if slos.iter().any(|s| s.id == slo.id) {
                return Err(error(
                    at,
                    format!(
                        "SLO id `{}` is defined twice; give each SLO its own id",
                        slo.id
                    ),
                ));
            }
            slos.push(slo);
        }
        Ok(ProcessDef {
            slos,
            name: raw.name.unwrap_or_else(|| raw.id.get_ref().clone()),
            id: raw.id.into_inner(),
            description: raw.description.unwrap_or_default(),
            key_type: raw.key.into_inner(),
            stages,
            slas,
            owner: raw.owner.map(Spanned::into_inner),
            contacts: raw.contacts,
            file: file.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
