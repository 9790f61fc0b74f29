//! Sessions in signed cookies, and the CSRF tokens of forms.
//!
//! A session cookie is `base64url(payload) "." base64url(HMAC-SHA256(key,
//! payload))` with payload `v2|user|role|expires|sid|stamp`, the stamp
//! derived from the user's password hash so that a new password ends the
//! sessions of the old one: nothing is kept on
//! the server but the ids of sessions signed out before they expired. A
//! form's CSRF token is the HMAC of the session id (or, on the sign-in form,
//! of a random nonce in a short-lived cookie), so a page of another site can
//! neither read nor forge it.
//!
//! Sign-outs are kept in a file beside the key (`revoked-sessions`, one
//! `sid expires` line appended per sign-out, pruned of expired lines at
//! start), so a cookie signed out stays dead across a restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Role;
use collector::auth::secret::{constant_time_eq, random_bytes};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tl_session";
/// The sign-in form's nonce cookie.
pub const LOGIN_COOKIE: &str = "tl_login";
/// How long a session lasts, in seconds (12 hours: a working shift and
/// some).
pub const SESSION_SECONDS: u64 = 12 * 3600;

/// A session, as read back from its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub role: Role,
    /// Unix seconds.
    pub expires: u64,
    pub sid: String,
    /// [`Signer::stamp`] of the password hash the user signed in with.
    pub stamp: String,
}

/// Signs and checks cookies and CSRF tokens with one key.
pub struct Signer {
    key: Vec<u8>,
    /// Sessions signed out, by id, with their expiry (then forgotten).
    revoked: Mutex<HashMap<String, u64>>,
    /// Where sign-outs are kept, if anywhere.
    revoked_file: Option<PathBuf>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { .. }")
    }
}

/// A file only its owner may read (like `session.key`), appended to or
/// truncated.
pub(super) fn private_file(path: &std::path::Path, append: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .mode(0o600)
        .open(path)
}

fn now_s() -> u64 {
    domain::now_ns() / 1_000_000_000
}

impl Signer {
    pub fn new(key: Vec<u8>) -> Self {
        Self {
            key,
            revoked: Mutex::new(HashMap::new()),
            revoked_file: None,
        }
    }

    /// This signer, keeping sign-outs in `path` (and reading those already
    /// there that have not expired; the file is rewritten with only those).
    pub fn keeping_revocations(mut self, path: PathBuf) -> Self {
        let now = now_s();
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        let revoked: HashMap<String, u64> = kept
            .lines()
            .filter_map(|line| {
                let (sid, expires) = line.split_once(' ')?;
                Some((sid.to_string(), expires.trim().parse::<u64>().ok()?))
            })
            .filter(|(_, expires)| *expires > now)
            .collect();
        if !kept.is_empty() {
            let text: String = revoked
                .iter()
                .map(|(sid, expires)| format!("{sid} {expires}\n"))
                .collect();
            let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
            let written = private_file(&tmp, false)
                .and_then(|mut file| {
                    use std::io::Write;
                    file.write_all(text.as_bytes())?;
                    file.sync_all()
                })
                .and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = written {
                tracing::warn!(error = %e, path = %path.display(), "cannot prune the kept sign-outs");
            }
        }
        self.revoked = Mutex::new(revoked);
        self.revoked_file = Some(path);
        self
    }

    fn mac(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        for p in parts {
            mac.update(p);
            mac.update(b"\x00");
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// A short keyed digest of a password hash: a session carries the one
    /// of the password it began with.
    pub fn stamp(&self, password_hash: &str) -> String {
        B64.encode(&self.mac(&[b"stamp", password_hash.as_bytes()])[..9])
    }

    /// A new session's cookie value.
    pub fn issue(&self, user: &str, role: Role, stamp: &str) -> (String, Session) {
        let session = Session {
            user: user.to_string(),
            role,
            expires: now_s() + SESSION_SECONDS,
            sid: B64.encode(random_bytes(16)),
            stamp: stamp.to_string(),
        };
        let payload = format!(
            "v2|{}|{}|{}|{}|{}",
            session.user,
            session.role.as_str(),
            session.expires,
            session.sid,
            session.stamp
        );
        let value = format!(
            "{}.{}",
            B64.encode(payload.as_bytes()),
            B64.encode(self.mac(&[b"session", payload.as_bytes()]))
        );
        (value, session)
    }

    /// The session of a cookie value, if it is ours, unexpired and not
    /// signed out.
    pub fn open(&self, value: &str) -> Option<Session> {
        let (payload, mac) = value.split_once('.')?;
        let payload = B64.decode(payload).ok()?;
        let mac = B64.decode(mac).ok()?;
        if !constant_time_eq(&mac, &self.mac(&[b"session", &payload])) {
            return None;
        }
        let text = String::from_utf8(payload).ok()?;
        let mut fields = text.split('|');
        if fields.next()? != "v2" {
            return None;
        }
        let session = Session {
            user: fields.next()?.to_string(),
            role: Role::parse(fields.next()?)?,
            expires: fields.next()?.parse().ok()?,
            sid: fields.next()?.to_string(),
            stamp: fields.next()?.to_string(),
        };
        if session.expires <= now_s()
            || self
                .revoked
                .lock()
                .expect("revoked lock")
                .contains_key(&session.sid)
        {
            return None;
        }
        Some(session)
    }

    /// Ends a session before it expires, at once in memory; then keeps it
    /// in the file (blocking I/O, outside the lock every request takes:
    /// call it off the async threads).
    pub fn revoke(&self, session: &Session) {
        let now = now_s();
        {
            let mut revoked = self.revoked.lock().expect("revoked lock");
            revoked.retain(|_, expires| *expires > now);
            revoked.insert(session.sid.clone(), session.expires);
        }
        if let Some(path) = &self.revoked_file {
            use std::io::Write;
            let written = private_file(path, true).and_then(|mut file| {
                writeln!(file, "{} {}", session.sid, session.expires)?;
                file.sync_data()
            });
            if let Err(e) = written {
                tracing::warn!(error = %e, path = %path.display(), "cannot keep a sign-out; it lasts until the console restarts");
            }
        }
    }

    /// The CSRF token of forms shown to this session.
    pub fn csrf(&self, session: &Session) -> String {
        B64.encode(self.mac(&[b"csrf", session.sid.as_bytes()]))
    }

    /// A new sign-in nonce (the cookie's value).
    pub fn login_nonce(&self) -> String {
        B64.encode(random_bytes(16))
    }

    /// The CSRF token of the sign-in form for a nonce.
    pub fn login_csrf(&self, nonce: &str) -> String {
        B64.encode(self.mac(&[b"login", nonce.as_bytes()]))
    }

    /// Whether `given` is the token `expected`, compared in constant time.
    pub fn matches(expected: &str, given: &str) -> bool {
        !given.is_empty() && constant_time_eq(expected.as_bytes(), given.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_opens_only_unchanged_and_until_signed_out() {
        let signer = Signer::new(b"k".to_vec());
        let (cookie, session) = signer.issue("ana", Role::Admin, "s");
        assert_eq!(signer.open(&cookie), Some(session.clone()));
        // Another key, a changed role, garbage.
        assert_eq!(Signer::new(b"other".to_vec()).open(&cookie), None);
        let (payload, mac) = cookie.split_once('.').unwrap();
        let text = String::from_utf8(B64.decode(payload).unwrap()).unwrap();
        let forged = B64.encode(text.replace("admin", "viewer"));
        assert_eq!(signer.open(&format!("{forged}.{mac}")), None);
        assert_eq!(signer.open("x.y"), None);
        // CSRF tokens differ per session and per nonce.
        let (_, other) = signer.issue("ana", Role::Admin, "s");
        assert_ne!(signer.csrf(&session), signer.csrf(&other));
        assert_ne!(signer.login_csrf("a"), signer.login_csrf("b"));
        signer.revoke(&session);
        assert_eq!(signer.open(&cookie), None);
    }

    #[test]
    fn a_sign_out_outlives_a_restart() {
        let dir = std::env::temp_dir().join(format!("tl-revoked-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("revoked-sessions");
        let _ = std::fs::remove_file(&path);
        let signer = Signer::new(b"k".to_vec()).keeping_revocations(path.clone());
        let (gone, gone_session) = signer.issue("ana", Role::Viewer, "s");
        let (kept, _) = signer.issue("ana", Role::Viewer, "s");
        signer.revoke(&gone_session);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
        // Another process start: same key, same file.
        let again = Signer::new(b"k".to_vec()).keeping_revocations(path.clone());
        assert_eq!(again.open(&gone), None);
        assert!(again.open(&kept).is_some());
        // Expired lines are dropped when read.
        std::fs::write(&path, "old 1\n").unwrap();
        let again = Signer::new(b"k".to_vec()).keeping_revocations(path);
        assert!(again.revoked.lock().unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
