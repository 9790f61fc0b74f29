//! Who owns what: a team (`owner`, a name written like an id) and how to
//! reach it (`contacts`), on each process definition (its file) and each
//! system (the config's `[systems.<name>]`). Alerts carry the owner as
//! their `owner` and `team` labels, so Alertmanager routes on them; the
//! console shows them and lists what each team owns.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::definition::{valid_id, Processes};

/// A `[systems.<name>]` entry of the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemDef {
    /// The team that owns the system (its connector, its integration).
    pub owner: String,
    /// How to reach them: channels, addresses, a rota's URL.
    #[serde(default)]
    pub contacts: Vec<String>,
}

/// The `owner` label of an alert whose process or system has none.
pub const UNOWNED: &str = "unowned";

/// A team name's mistake, said with `what` it owns; `None` when it is good.
pub fn check_team(what: &str, team: &str) -> Option<String> {
    (!valid_id(team)).then(|| {
        format!(
            "{what}: owner `{team}` must be a team name of lowercase letters, digits, `-` and `_`"
        )
    })
}

/// Checks the `[systems.<name>]` section: printable names, team names.
pub fn check_systems(systems: &BTreeMap<String, SystemDef>) -> Result<(), String> {
    for (name, def) in systems {
        if let Err(e) = crate::text::check_printable(name) {
            return Err(format!("[systems.{name:?}]: the system name {e}"));
        }
        if let Some(e) = check_team(&format!("[systems.{name}]"), &def.owner) {
            return Err(e);
        }
    }
    Ok(())
}

/// What one team owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// Process ids.
    pub processes: Vec<String>,
    /// System names.
    pub systems: Vec<String>,
    /// Every contact given on what it owns, once each, in order.
    pub contacts: Vec<String>,
}

impl Processes {
    /// The team owning process `id`, if its definition names one.
    pub fn process_owner(&self, id: &str) -> Option<&str> {
        self.get(id).and_then(|p| p.owner.as_deref())
    }

    /// The team owning `system`, if `[systems.<name>]` names one.
    pub fn system_owner(&self, system: &str) -> Option<&str> {
        self.systems.get(system).map(|s| s.owner.as_str())
    }

    /// Process ids of `team`, in definition order.
    pub fn processes_of(&self, team: &str) -> Vec<&str> {
        self.list
            .iter()
            .filter(|p| p.owner.as_deref() == Some(team))
            .map(|p| p.id.as_str())
            .collect()
    }

    /// Every team with what it owns, by team name.
    pub fn teams(&self) -> BTreeMap<String, Holdings> {
        let mut teams: BTreeMap<String, Holdings> = BTreeMap::new();
        let add = |list: &mut Vec<String>, contacts: &[String]| {
            for c in contacts {
                if !list.contains(c) {
                    list.push(c.clone());
                }
            }
        };
        for p in &self.list {
            if let Some(team) = &p.owner {
                let h = teams.entry(team.clone()).or_default();
                h.processes.push(p.id.clone());
                add(&mut h.contacts, &p.contacts);
            }
        }
        for (name, s) in &self.systems {
            let h = teams.entry(s.owner.clone()).or_default();
            h.systems.push(name.clone());
            add(&mut h.contacts, &s.contacts);
        }
        teams
    }
}
