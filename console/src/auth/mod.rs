//! Who may see the console: local users (`[[users]]`, argon2 password
//! hashes) who sign in to a session cookie, and API clients with bearer API
//! keys (`[[api_keys]]`). Each has a role: `viewer` (pages and the read
//! API) or `admin` (also `/admin`: definitions, tokens, users).
//!
//! With no user and no API key configured the console is open, and
//! `run.rs` binds it to loopback only; every page says so.
//!
//! This module decides who someone is ([`Auth::identify`], sessions, the
//! sign-in lockout); `crate::access` decides, per route group, what they may
//! open.

pub mod lockout;
pub mod session;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use axum::http::{header, HeaderMap, HeaderValue};
use collector::auth::secret::{self, Entry, Verifier};
use collector::auth::TokenConfig;
use serde::{Deserialize, Serialize};

use lockout::Lockout;
use session::{Session, Signer, SESSION_COOKIE};

/// The prefix of API keys.
pub const API_KEY_PREFIX: &str = "tlk";

/// Password checks run at once.
const PASSWORD_CHECKS: usize = 2;
/// Password checks running or waiting at most.
const PASSWORD_QUEUE: usize = 16;
/// The longest password looked at; a longer one is refused unchecked.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Too many sign-ins are being checked at once; try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// What a user or API key may do; `Admin` includes `Viewer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "viewer" => Some(Role::Viewer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// One `[[users]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub role: Role,
    /// The argon2 hash of the password (`throughline user add` prints it).
    pub password_hash: String,
}

/// One `[[api_keys]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The part after `tlk_` (not secret).
    pub id: String,
    pub name: String,
    pub role: Role,
    pub hash: String,
}

/// Whether a user name is plain enough for cookies, logs and pages.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// Checks the `[[users]]` and `[[api_keys]]` entries, each mistake said
/// with its fix.
pub fn validate(users: &[UserConfig], keys: &[ApiKeyConfig]) -> Result<(), String> {
    let mut names = HashSet::new();
    for u in users {
        if !valid_user_name(&u.name) {
            return Err(format!(
                "[[users]] `{}`: a name is 1 to 64 letters, digits, `.`, `_`, `-` or `@`",
                u.name
            ));
        }
        if !names.insert(u.name.to_lowercase()) {
            return Err(format!(
                "[[users]] `{}`: the name is used twice; each user has one entry",
                u.name
            ));
        }
        secret::check_hash(&u.password_hash).map_err(|e| {
            format!(
                "[[users]] `{}`: password_hash {e}; paste the line `throughline user add` printed",
                u.name
            )
        })?;
    }
    let mut ids = HashSet::new();
    for k in keys {
        if k.id.is_empty() || !k.id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("[[api_keys]] `{}`: id must be the letters and digits after `tlk_` in the key, as `throughline api-key create` prints it", k.id));
        }
        if !ids.insert(k.id.clone()) {
            return Err(format!(
                "[[api_keys]] `{}`: the id is used twice; each key has its own id",
                k.id
            ));
        }
        secret::check_hash(&k.hash).map_err(|e| {
            format!(
                "[[api_keys]] `{}`: hash {e}; paste the line `throughline api-key create` printed",
                k.id
            )
        })?;
    }
    Ok(())
}

/// Who a request is.
#[derive(Debug, Clone)]
pub enum Identity {
    /// No users are configured: the console is open (on loopback).
    Open,
    /// Signed in, with the CSRF token of this session's forms.
    User {
        session: Session,
        csrf: String,
    },
    ApiKey {
        name: String,
        role: Role,
    },
    /// Nobody signed in, on a page anyone may open (sign-in, not found).
    Anonymous,
}

impl Identity {
    pub fn role(&self) -> Role {
        match self {
            Identity::Open => Role::Admin,
            // Never let past the guard; the lowest role for what it shows.
            Identity::Anonymous => Role::Viewer,
            Identity::User { session, .. } => session.role,
            Identity::ApiKey { role, .. } => *role,
        }
    }
}

/// The console's users, API keys, session signer and lockout.
pub struct Auth {
    users: HashMap<String, (String, String, Role)>,
    api_keys: Verifier<(String, Role)>,
    pub signer: Signer,
    pub lockout: Lockout,
    /// Password checks running (argon2 takes ~19 MiB and tens of ms each).
    password_checks: tokio::sync::Semaphore,
    /// Password checks running or waiting; past this, sign-ins are told to
    /// come back (so a flood of sign-ins cannot queue without bound).
    password_queue: tokio::sync::Semaphore,
    /// Cookies carry `Secure` (the console serves TLS).
    pub secure: bool,
    /// For the admin page: users, API keys and connector tokens, no hashes.
    pub listed_users: Vec<(String, Role)>,
    pub listed_keys: Vec<(String, String, Role)>,
    pub listed_tokens: Vec<TokenConfig>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("users", &self.listed_users)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// `users` and `keys` must have passed [`validate`].
    pub fn new(
        users: &[UserConfig],
        keys: &[ApiKeyConfig],
        tokens: &[TokenConfig],
        signer: Signer,
        secure: bool,
    ) -> Self {
        let entries = keys
            .iter()
            .map(|k| {
                (
                    k.id.clone(),
                    Entry {
                        hash: k.hash.clone(),
                        grant: (k.name.clone(), k.role),
                    },
                )
            })
            .collect();
        Self {
            users: users
                .iter()
                .map(|u| {
                    (
                        u.name.to_lowercase(),
                        (u.name.clone(), u.password_hash.clone(), u.role),
                    )
                })
                .collect(),
            api_keys: Verifier::new(API_KEY_PREFIX, entries),
            signer,
            lockout: Lockout::default(),
            password_checks: tokio::sync::Semaphore::new(PASSWORD_CHECKS),
            password_queue: tokio::sync::Semaphore::new(PASSWORD_QUEUE),
            secure,
            listed_users: users.iter().map(|u| (u.name.clone(), u.role)).collect(),
            listed_keys: keys
                .iter()
                .map(|k| (k.id.clone(), k.name.clone(), k.role))
                .collect(),
            listed_tokens: tokens
                .iter()
                .map(|t| TokenConfig {
                    hash: String::new(),
                    ..t.clone()
                })
                .collect(),
        }
    }

    /// No users, no keys: everyone is let in (the console is on loopback).
    pub fn open() -> Self {
        Self::new(&[], &[], &[], Signer::new(secret::random_bytes(32)), false)
    }

    pub fn is_open(&self) -> bool {
        self.users.is_empty() && self.api_keys.is_empty()
    }

    /// The valid session of the request's cookie. The role is the one
    /// configured now: a user removed or demoted in the config, or given a
    /// new password, loses what the cookie said at the next restart.
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let mut session = self.signer.open(cookie(headers, SESSION_COOKIE)?)?;
        let (_, hash, role) = self.users.get(&session.user.to_lowercase())?;
        if !Signer::matches(&self.signer.stamp(hash), &session.stamp) {
            return None;
        }
        session.role = *role;
        Some(session)
    }

    /// A new session's cookie value for a user who just signed in.
    pub fn start_session(&self, name: &str, role: Role) -> String {
        let hash = self
            .users
            .get(&name.to_lowercase())
            .map_or("", |(_, hash, _)| hash.as_str());
        self.signer.issue(name, role, &self.signer.stamp(hash)).0
    }

    /// A place among the sign-ins being checked, held until the check is
    /// done; `Err` when too many are already.
    pub fn queue_sign_in(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Busy> {
        self.password_queue.try_acquire().map_err(|_| Busy)
    }

    /// The user `name` with this password, as `(name as configured, role)`.
    /// Takes as long for an unknown name as for a wrong password; at most
    /// [`PASSWORD_CHECKS`] run at once.
    pub async fn check_password(&self, name: &str, password: &str) -> Option<(String, Role)> {
        let _running = self.password_checks.acquire().await.expect("never closed");
        let found = self.users.get(&name.to_lowercase()).cloned();
        let hash = found
            .as_ref()
            .map(|(_, h, _)| h.clone())
            .unwrap_or_else(|| secret::decoy_hash().to_string());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || secret::verify(&password, &hash))
            .await
            .unwrap_or(false);
        found.filter(|_| ok).map(|(name, _, role)| (name, role))
    }

    /// A `Set-Cookie` value with this console's flags.
    pub fn cookie(&self, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        ))
        .expect("cookie values are base64url")
    }

    /// Who sent `headers`: `None` when nobody we know (a wrong API key is
    /// `Err`, so it is not mistaken for "no credentials").
    pub async fn identify(&self, headers: &HeaderMap) -> Result<Option<Identity>, ()> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = value.to_str().ok().and_then(secret::bearer).ok_or(())?;
            let (name, role) = self.api_keys.verify(token).await.ok_or(())?;
            return Ok(Some(Identity::ApiKey { name, role }));
        }
        Ok(self.session(headers).map(|session| Identity::User {
            csrf: self.signer.csrf(&session),
            session,
        }))
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The signer of session cookies: its key kept in `<data_dir>/session.key`
/// and its sign-outs in `<data_dir>/revoked-sessions`, so sessions, and
/// their ends, outlive a restart.
pub fn session_signer(data_dir: &Path) -> Signer {
    Signer::new(session_key(data_dir)).keeping_revocations(data_dir.join("revoked-sessions"))
}

/// The key that signs session cookies: kept in `<data_dir>/session.key`
/// (made on first start, readable by its owner only) so sessions outlive a
/// restart; a fresh random key when that file cannot be kept.
fn session_key(data_dir: &Path) -> Vec<u8> {
    let path = data_dir.join("session.key");
    if let Ok(key) = std::fs::read(&path) {
        if key.len() >= 32 {
            return key;
        }
    }
    let key = secret::random_bytes(32);
    let written = std::fs::create_dir_all(data_dir).and_then(|()| {
        use std::io::Write;
        let mut file = session::private_file(&path, false)?;
        file.write_all(&key)?;
        file.sync_all()
    });
    if let Err(e) = written {
        tracing::warn!(error = %e, path = %path.display(), "cannot keep the session key; sessions end when the console restarts");
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_password_or_a_removed_user_ends_the_session() {
        let auth = |hash: &str, name: &str| {
            Auth::new(
                &[UserConfig {
                    name: name.into(),
                    role: Role::Admin,
                    password_hash: hash.into(),
                }],
                &[],
                &[],
                Signer::new(b"same key".to_vec()),
                false,
            )
        };
        let before = auth("$argon2id$old", "ana");
        let value = before.start_session("ana", Role::Admin);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{SESSION_COOKIE}={value}")).unwrap(),
        );
        assert_eq!(before.session(&headers).unwrap().user, "ana");
        // The console restarted with the same key and the same password.
        assert!(auth("$argon2id$old", "ana").session(&headers).is_some());
        // ... with a new password, or without the user.
        assert!(auth("$argon2id$new", "ana").session(&headers).is_none());
        assert!(auth("$argon2id$old", "bob").session(&headers).is_none());
    }
}
