//! `GET /api/v1/owners`: every team with what it owns (processes from their
//! definitions' `owner`, systems from `[systems.<name>]`), how to reach it,
//! and the alert rules about what it owns. From the configuration alone:
//! no read of ClickHouse.

use serde::Serialize;

use super::Reads;
use crate::links;

/// A process or an alert rule a team owns, with its page.
#[derive(Debug, Clone, Serialize)]
pub struct Owned {
    pub id: String,
    pub name: String,
    pub href: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamView {
    pub team: String,
    pub contacts: Vec<String>,
    pub processes: Vec<Owned>,
    pub systems: Vec<String>,
    /// Alert rules whose alerts carry this team as `owner`.
    pub alert_rules: Vec<Owned>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Owners {
    /// By team name.
    pub teams: Vec<TeamView>,
}

/// Every team that owns a process or a system, by name.
pub fn owners(state: &Reads) -> Owners {
    let teams = state
        .processes
        .teams()
        .into_iter()
        .map(|(team, h)| TeamView {
            contacts: h.contacts,
            processes: h
                .processes
                .iter()
                .map(|id| Owned {
                    id: id.clone(),
                    name: state.processes.name_of(id).to_string(),
                    href: links::process(id),
                })
                .collect(),
            systems: h.systems,
            alert_rules: state
                .alerts
                .list
                .iter()
                .filter(|r| r.owner.as_deref() == Some(team.as_str()))
                .map(|r| Owned {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    href: links::alert(&r.id),
                })
                .collect(),
            team,
        })
        .collect();
    Owners { teams }
}
