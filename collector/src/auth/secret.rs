//! Secrets at rest and on the wire.
//!
//! Passwords, connector tokens and API keys are kept in the config only as
//! argon2id hashes (PHC strings, `$argon2id$v=19$...`). A token or key is
//! `<prefix>_<id>_<secret>`: the id is not secret and finds the one entry
//! to check, so a request costs at most one argon2 verification, and a
//! [`Verifier`] remembers a digest of what it verified so a connector's next
//! requests cost a hash lookup, not tens of milliseconds of argon2.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use sha2::{Digest, Sha256};

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A new credential: its id (12 hex digits) and the whole token
/// `<prefix>_<id>_<43 characters of base64url>` (256 random bits).
pub fn generate(prefix: &str) -> (String, String) {
    let id = hex::encode(random_bytes(6));
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(32));
    let token = format!("{prefix}_{id}_{secret}");
    (id, token)
}

/// The id of a token of `prefix`, or `None` when it is not shaped like one.
pub fn token_id<'a>(prefix: &str, token: &'a str) -> Option<&'a str> {
    let rest = token.strip_prefix(prefix)?.strip_prefix('_')?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && id.len() <= 32 && !secret.is_empty()).then_some(id)
}

/// The argon2id hash (PHC string) of `secret`, with a fresh salt and the
/// crate's default cost (19 MiB, 2 passes).
pub fn hash(secret: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any input")
        .to_string()
}

/// Whether `secret` matches the PHC string `phc`. Slow on purpose.
pub fn verify(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checks a configured hash is a PHC string argon2 can verify against.
pub fn check_hash(phc: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(phc).map_err(|e| format!("is not a PHC hash string ({e})"))?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(format!(
            "uses {}, but only argon2 hashes are accepted",
            parsed.algorithm
        ));
    }
    Ok(())
}

/// A hash that takes as long to check as a real one, so that an unknown
/// user name costs the same time as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy"))
}

/// Compares without stopping at the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of an `Authorization: Bearer <token>` header, if it is one.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// One configured credential: its hash and what it grants.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    pub hash: String,
    pub grant: T,
}

/// Checks tokens of one prefix against their configured hashes, and
/// remembers the ones that passed by a SHA-256 digest.
#[derive(Debug)]
pub struct Verifier<T> {
    prefix: &'static str,
    entries: HashMap<String, Entry<T>>,
    /// Id -> digest of the token that last verified for it.
    verified: Mutex<HashMap<String, [u8; 32]>>,
    /// At most two argon2 verifications run at once, so a flood of wrong
    /// tokens costs two cores' worth of hashing, not every core.
    slow: Arc<tokio::sync::Semaphore>,
}

impl<T: Clone + Send + Sync + 'static> Verifier<T> {
    pub fn new(prefix: &'static str, entries: HashMap<String, Entry<T>>) -> Self {
        Self {
            prefix,
            entries,
            verified: Mutex::new(HashMap::new()),
            slow: Arc::new(tokio::sync::Semaphore::new(2)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn remembered(&self, id: &str, digest: &[u8; 32]) -> bool {
        self.verified
            .lock()
            .expect("verifier cache lock")
            .get(id)
            .is_some_and(|d| constant_time_eq(d, digest))
    }

    /// What `token` grants, or `None` when it is not one of ours.
    pub async fn verify(&self, token: &str) -> Option<T> {
        let id = token_id(self.prefix, token)?;
        let entry = self.entries.get(id)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if self.remembered(id, &digest) {
            return Some(entry.grant.clone());
        }
        let _permit = self.slow.acquire().await.ok()?;
        // A connector's first requests arrive together: the one that got
        // the permit first may have verified this token meanwhile.
        if self.remembered(id, &digest) {
            return Some(entry.grant.clone());
        }
        let (token, hash) = (token.to_string(), entry.hash.clone());
        let ok = tokio::task::spawn_blocking(move || verify(&token, &hash))
            .await
            .unwrap_or(false);
        if !ok {
            return None;
        }
        self.verified
            .lock()
            .expect("verifier cache lock")
            .insert(id.to_string(), digest);
        Some(entry.grant.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_verifies_against_its_hash_and_nothing_else() {
        let (id, token) = generate("tlc");
        assert_eq!(token_id("tlc", &token), Some(id.as_str()));
        assert_eq!(token_id("tlk", &token), None);
        let phc = hash(&token);
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        check_hash(&phc).unwrap();
        assert!(verify(&token, &phc));
        assert!(!verify(&format!("{token}x"), &phc));
        assert!(check_hash("plain").is_err());
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[tokio::test]
    async fn the_verifier_remembers_only_the_token_that_passed() {
        let (id, token) = generate("tlc");
        let entries = HashMap::from([(
            id.clone(),
            Entry {
                hash: hash(&token),
                grant: 7u8,
            },
        )]);
        let v = Verifier::new("tlc", entries);
        assert_eq!(v.verify(&token).await, Some(7));
        assert_eq!(v.verify(&token).await, Some(7));
        let forged = format!("tlc_{id}_AAAA");
        assert_eq!(v.verify(&forged).await, None);
        assert_eq!(v.verify("tlc_000000000000_AAAA").await, None);
        assert_eq!(v.verify("nonsense").await, None);
    }
}
