//! Who may write: connector tokens (`[[tokens]]` in the config), each bound
//! to the systems it writes for, and optionally to a plant. With no token
//! configured the collector is open, as it was before tokens existed; with
//! one or more, every request needs `Authorization: Bearer tlc_...` (gRPC:
//! the same metadata), and a record of a system its token is not bound to
//! is refused on its own. A token bound to a plant (an edge collector's)
//! writes only records of that plant: `plant.id` on the resource of a span
//! or log record, the `plant` extension of an event.

pub mod secret;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use domain::model::Batch;
use secret::{Entry, Verifier};

/// The prefix of connector tokens.
pub const TOKEN_PREFIX: &str = "tlc";

/// One `[[tokens]]` entry of the config.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The token's id, the part after `tlc_` (not secret).
    pub id: String,
    /// Who holds it, for the admin page and logs.
    #[serde(default)]
    pub name: String,
    /// The systems it may write for: names (`crm`), prefixes (`erp-*`), or
    /// `*` for all.
    pub systems: Vec<String>,
    /// The argon2 hash of the whole token.
    pub hash: String,
    /// The plant it may write for (an edge collector's token): only records
    /// whose `plant.id` resource attribute (events: `plant` extension) is
    /// this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plant: Option<String>,
}

/// What a verified token may do.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The token's name (its id when it has none).
    pub name: String,
    pub systems: Arc<[String]>,
    /// The plant it is bound to, if any.
    pub plant: Option<Arc<str>>,
}

/// The resource attribute and the event extension naming a record's plant
/// (what an edge collector adds; `receivers::otlp::encode`,
/// `receivers::cloudevents::encode`).
pub const PLANT_ATTRIBUTE: &str = "plant.id";
pub const PLANT_EXTENSION: &str = "plant";

/// The value of `name` in `attributes` (the first, as stored).
pub(crate) fn attribute<'a>(attributes: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Grant {
    /// Whether records of `system` may be written with this grant.
    pub fn allows(&self, system: &str) -> bool {
        self.systems
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => system.starts_with(prefix),
                None => pattern == system,
            })
    }

    /// The systems, for messages.
    pub fn systems_text(&self) -> String {
        self.systems.join(", ")
    }
}

/// Why a request was not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this collector needs a connector token: send `Authorization: Bearer <token>` (create one with `throughline token create --system <name>`)")]
    Missing,
    #[error("the connector token is not valid: it is not one of this collector's tokens (check for a typo, or create a new one with `throughline token create --system <name>`)")]
    Invalid,
}

/// Whether requests need a token, and the tokens.
#[derive(Debug)]
pub struct IngestAuth {
    tokens: Verifier<Grant>,
    pub configured: Vec<TokenConfig>,
}

/// What a request may write.
#[derive(Debug, Clone)]
pub enum Access {
    /// No tokens are configured.
    Open,
    Granted(Grant),
}

/// One record refused because its system or plant is not its token's.
#[derive(Debug, Clone)]
pub struct Refused {
    /// `span`, `log record` or `event`, with its index in its kind.
    pub what: String,
    /// Why, for the sender.
    pub reason: String,
}

impl IngestAuth {
    /// Validates the `[[tokens]]` entries: ids unique and plain, systems
    /// given, hashes argon2 PHC strings.
    pub fn new(configured: &[TokenConfig]) -> Result<Self, String> {
        let mut entries = HashMap::new();
        for t in configured {
            let which = format!("[[tokens]] `{}`", t.id);
            if t.id.is_empty()
                || t.id.len() > 32
                || !t.id.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(format!("{which}: id must be the letters and digits after `tlc_` in the token, as `throughline token create` prints it"));
            }
            if t.plant.as_deref().is_some_and(|p| p.trim().is_empty()) {
                return Err(format!("{which}: plant is empty; name the plant the token writes for, as the edge collector's `plant` names it"));
            }
            if t.systems.is_empty() || t.systems.iter().any(|s| s.trim().is_empty()) {
                return Err(format!("{which}: systems is empty; list the systems it may write for, like systems = [\"crm\"] (or [\"*\"] for all)"));
            }
            secret::check_hash(&t.hash).map_err(|e| {
                format!("{which}: hash {e}; paste the hash line `throughline token create` printed")
            })?;
            let grant = Grant {
                name: if t.name.is_empty() {
                    t.id.clone()
                } else {
                    t.name.clone()
                },
                systems: t.systems.clone().into(),
                plant: t.plant.as_deref().map(Arc::from),
            };
            let entry = Entry {
                hash: t.hash.clone(),
                grant,
            };
            if entries.insert(t.id.clone(), entry).is_some() {
                return Err(format!(
                    "{which}: the id is used twice; each token has its own id"
                ));
            }
        }
        Ok(Self {
            tokens: Verifier::new(TOKEN_PREFIX, entries),
            configured: configured.to_vec(),
        })
    }

    /// No token: every request is let in.
    pub fn open() -> Self {
        Self::new(&[]).expect("no tokens are valid")
    }

    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// What the request with this `Authorization` header value may write.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Access, AuthError> {
        if self.is_open() {
            return Ok(Access::Open);
        }
        let token = authorization
            .and_then(secret::bearer)
            .ok_or(AuthError::Missing)?;
        self.tokens
            .verify(token)
            .await
            .map(Access::Granted)
            .ok_or(AuthError::Invalid)
    }
}

impl Access {
    /// Takes out of `batch` the records of systems (or plants) this access
    /// may not write for, and says which they were and why.
    pub fn retain(&self, batch: &mut Batch) -> Vec<Refused> {
        let Access::Granted(_) = self else {
            return Vec::new();
        };
        let mut refused = Vec::new();
        let mut keep = |what: &str, i: usize, check: Result<(), String>| match check {
            Ok(()) => true,
            Err(reason) => {
                refused.push(Refused {
                    what: format!("{what} {i}"),
                    reason,
                });
                false
            }
        };
        let mut i = 0;
        batch.spans.retain(|s| {
            i += 1;
            keep(
                "span",
                i - 1,
                self.check(&s.service, attribute(&s.resource, PLANT_ATTRIBUTE)),
            )
        });
        i = 0;
        batch.logs.retain(|l| {
            i += 1;
            keep(
                "log record",
                i - 1,
                self.check(&l.service, attribute(&l.resource, PLANT_ATTRIBUTE)),
            )
        });
        i = 0;
        batch.events.retain(|e| {
            i += 1;
            keep(
                "event",
                i - 1,
                self.check(&e.system, attribute(&e.attributes, PLANT_EXTENSION)),
            )
        });
        refused
    }

    /// Whether a record of `system` that names `plant` may be written, and
    /// if not, why (for the sender).
    pub fn check(&self, system: &str, plant: Option<&str>) -> Result<(), String> {
        let Access::Granted(g) = self else {
            return Ok(());
        };
        if !g.allows(system) {
            return Err(self.refusal(system));
        }
        match (&g.plant, plant) {
            (Some(own), Some(p)) if **own == *p => Ok(()),
            (Some(own), other) => Err(format!(
                "the token `{}` writes for plant `{own}` only, and this record {}; an edge collector adds its own plant (`plant` in its config), so give each plant's collector its own token",
                g.name,
                match other {
                    Some(p) => format!("is of plant `{p}`"),
                    None => "names no plant (`plant.id` on its resource, the `plant` extension of an event)".to_string(),
                }
            )),
            (None, _) => Ok(()),
        }
    }

    /// Whether records of `system` may be written.
    pub fn allows(&self, system: &str) -> bool {
        match self {
            Access::Open => true,
            Access::Granted(g) => g.allows(system),
        }
    }

    /// Why a record of `system` was refused, for the sender.
    pub fn refusal(&self, system: &str) -> String {
        match self {
            Access::Open => String::new(),
            Access::Granted(g) => format!(
                "the token `{}` may write for {} only, not for system `{system}`; send it with that system's token",
                g.name,
                g.systems_text()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(systems: &[&str]) -> Access {
        Access::Granted(Grant {
            name: "t".into(),
            systems: systems.iter().map(|s| s.to_string()).collect(),
            plant: None,
        })
    }

    #[test]
    fn systems_match_by_name_or_prefix() {
        let Access::Granted(g) = grant(&["crm", "erp-*"]) else {
            unreachable!()
        };
        assert!(g.allows("crm"));
        assert!(g.allows("erp-cloud"));
        assert!(!g.allows("crm2"));
        assert!(!g.allows("mes"));
        let Access::Granted(all) = grant(&["*"]) else {
            unreachable!()
        };
        assert!(all.allows("anything"));
    }

    #[test]
    fn records_of_other_systems_are_taken_out() {
        // One span of `erp`, one log record and one event of `mes`.
        let mut batch = crate::spool::tests::sample_batch();
        batch.spans.push(batch.spans[0].clone());
        batch.spans[0].service = "mes".into();
        let refused = grant(&["erp"]).retain(&mut batch);
        assert_eq!(batch.spans.len(), 1);
        assert!(batch.logs.is_empty() && batch.events.is_empty());
        let what: Vec<_> = refused
            .iter()
            .map(|r| (r.what.as_str(), r.reason.contains("system `mes`")))
            .collect();
        assert_eq!(
            what,
            [("span 0", true), ("log record 0", true), ("event 0", true)]
        );
        assert!(Access::Open.retain(&mut batch).is_empty());
    }

    #[test]
    fn a_plant_token_writes_only_its_plants_records() {
        let access = Access::Granted(Grant {
            name: "hamburg-edge".into(),
            systems: vec!["*".to_string()].into(),
            plant: Some("hamburg".into()),
        });
        let mut batch = crate::spool::tests::sample_batch();
        batch.spans.push(batch.spans[0].clone());
        batch.spans[0]
            .resource
            .push((PLANT_ATTRIBUTE.into(), "hamburg".into()));
        batch.spans[1]
            .resource
            .push((PLANT_ATTRIBUTE.into(), "bremen".into()));
        batch.events[0]
            .attributes
            .push((PLANT_EXTENSION.into(), "hamburg".into()));
        let refused = access.retain(&mut batch);
        assert_eq!(
            (batch.spans.len(), batch.logs.len(), batch.events.len()),
            (1, 0, 1)
        );
        let what: Vec<_> = refused.iter().map(|r| r.what.as_str()).collect();
        assert_eq!(what, ["span 1", "log record 0"]);
        assert!(
            refused[0].reason.contains("plant `hamburg` only"),
            "{}",
            refused[0].reason
        );
        assert!(
            refused[0].reason.contains("is of plant `bremen`"),
            "{}",
            refused[0].reason
        );
        assert!(
            refused[1].reason.contains("names no plant"),
            "{}",
            refused[1].reason
        );
    }

    #[test]
    fn config_mistakes_say_what_to_fix() {
        let good = TokenConfig {
            id: "a1b2".into(),
            name: String::new(),
            systems: vec!["crm".into()],
            hash: secret::hash("x"),
            plant: None,
        };
        IngestAuth::new(std::slice::from_ref(&good)).unwrap();
        let err = IngestAuth::new(&[TokenConfig {
            systems: vec![],
            ..good.clone()
        }])
        .unwrap_err();
        assert!(err.contains("systems is empty"), "{err}");
        let err = IngestAuth::new(&[TokenConfig {
            hash: "secret".into(),
            ..good.clone()
        }])
        .unwrap_err();
        assert!(err.contains("hash"), "{err}");
        let err = IngestAuth::new(&[good.clone(), good]).unwrap_err();
        assert!(err.contains("twice"), "{err}");
    }
}
