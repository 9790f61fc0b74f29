//! What every page shares: the request's path and query (kept in every link
//! that changes the range), the time range picker, the auto-refresh choice,
//! and the search box's text.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use domain::now_ns;
use domain::text::percent_decode;

use super::ErrorPage;
use crate::auth::{Identity, Role};
use crate::error::AppError;
use crate::links::urlencode;
use crate::read::time_range;

/// The range presets offered by the picker, as `from` values.
pub const PRESETS: [(&str, &str); 4] = [
    ("now-15m", "15 min"),
    ("now-1h", "1 hour"),
    ("now-24h", "24 hours"),
    ("now-7d", "7 days"),
];

/// Auto-refresh choices, in seconds (0: off).
pub const REFRESHES: [(u32, &str); 4] = [(0, "off"), (10, "10 s"), (30, "30 s"), (60, "1 min")];

pub struct Chrome {
    pub title: String,
    /// The request path, without query.
    pub path: String,
    /// The query's pairs, as sent.
    pub query: Vec<(String, String)>,
    /// `from` and `to` as given (default `now-24h` and `now`).
    pub from: String,
    pub to: String,
    /// The range, resolved.
    pub from_ns: u64,
    pub to_ns: u64,
    /// The range with its cache key.
    pub window: time_range::Window,
    /// Seconds between reloads; 0 for none.
    pub refresh: u32,
    /// The plants to choose from, on the pages that filter by plant (the
    /// overview and systems pages fill it); empty: no plant chooser.
    pub plants: Vec<String>,
    /// What the search box shows.
    pub search: String,
    pub version: &'static str,
    /// Who is looking (found by `crate::access`, which names this module, not
    /// the other way round).
    pub identity: Identity,
}

impl Chrome {
    /// A query parameter's value, when present and not empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The plant chosen (`plant=`), or "" for all.
    pub fn plant(&self) -> &str {
        self.window.plant.as_deref().unwrap_or("")
    }

    /// This page for another plant ("" for all).
    pub fn plant_link(&self, plant: &str) -> String {
        self.link(&[("plant", plant)])
    }

    /// The signed-in user's name and role, for the header.
    pub fn user(&self) -> Option<(String, &'static str)> {
        match &self.identity {
            Identity::User { session, .. } => Some((session.user.clone(), session.role.as_str())),
            Identity::ApiKey { name, role } => Some((format!("API key {name}"), role.as_str())),
            Identity::Open | Identity::Anonymous => None,
        }
    }

    /// The CSRF token for this page's forms that change state.
    pub fn csrf(&self) -> &str {
        match &self.identity {
            Identity::User { csrf, .. } => csrf,
            _ => "",
        }
    }

    /// No users are configured.
    pub fn is_open(&self) -> bool {
        matches!(self.identity, Identity::Open)
    }

    pub fn is_admin(&self) -> bool {
        self.identity.role() >= Role::Admin
    }

    /// Whether a sign-out button belongs in the header.
    pub fn signed_in(&self) -> bool {
        matches!(self.identity, Identity::User { .. })
    }

    /// Forgets the range and refresh of the request (they were invalid).
    fn drop_range(&mut self) {
        self.query
            .retain(|(k, _)| !matches!(k.as_str(), "from" | "to" | "refresh" | "plant"));
        self.from = time_range::DEFAULT_FROM.into();
        self.to = time_range::DEFAULT_TO.into();
        self.refresh = 0;
    }

    /// This page's URL with `changes` applied (an empty value removes the
    /// parameter); the cursor goes whenever anything else changes.
    pub fn link(&self, changes: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(String, String)> = self
            .query
            .iter()
            .filter(|(k, _)| k != "cursor" && !changes.iter().any(|(c, _)| c == k))
            .cloned()
            .collect();
        for (k, v) in changes {
            if !v.is_empty() {
                pairs.push((k.to_string(), v.to_string()));
            }
        }
        with_query(&self.path, &pairs)
    }

    /// `path` with this page's range and refresh carried over.
    pub fn keep_range(&self, path: &str) -> String {
        with_query(path, &self.range_hidden())
    }

    /// `path` with this page's range and refresh, plus `extra` parameters.
    pub fn href(&self, path: &str, extra: &[(&str, &str)]) -> String {
        let mut pairs = self.range_hidden();
        pairs.extend(
            extra
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        with_query(path, &pairs)
    }

    pub fn preset_link(&self, from: &str) -> String {
        self.link(&[("from", from), ("to", "now")])
    }

    pub fn is_preset(&self, from: &str) -> bool {
        self.from == from && self.to == "now"
    }

    pub fn is_custom(&self) -> bool {
        !PRESETS.iter().any(|(p, _)| self.is_preset(p))
    }

    pub fn refresh_link(&self, seconds: &u32) -> String {
        let value = if *seconds == 0 {
            String::new()
        } else {
            seconds.to_string()
        };
        self.link(&[("refresh", &value)])
    }

    pub fn presets(&self) -> &'static [(&'static str, &'static str)] {
        &PRESETS
    }

    pub fn refreshes(&self) -> &'static [(u32, &'static str)] {
        &REFRESHES
    }

    /// The range as words: `last 24 hours` or its two ends.
    pub fn range_text(&self) -> String {
        match PRESETS.iter().find(|(p, _)| self.is_preset(p)) {
            Some((_, label)) => format!("last {label}"),
            None => format!(
                "{} to {} UTC",
                super::fmt::time(self.from_ns),
                super::fmt::time(self.to_ns)
            ),
        }
    }

    /// Hidden inputs that carry the range and refresh through a form.
    pub fn range_hidden(&self) -> Vec<(String, String)> {
        self.query
            .iter()
            .filter(|(k, v)| {
                matches!(k.as_str(), "from" | "to" | "refresh" | "plant") && !v.is_empty()
            })
            .cloned()
            .collect()
    }

    /// Hidden inputs that carry everything but the range through the custom
    /// range form.
    pub fn hidden_except_range(&self) -> Vec<(String, String)> {
        self.query
            .iter()
            .filter(|(k, v)| !matches!(k.as_str(), "from" | "to" | "cursor") && !v.is_empty())
            .cloned()
            .collect()
    }
}

/// `path?k=v&...`, percent-encoded.
pub fn with_query(path: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return path.to_string();
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect();
    format!("{path}?{}", query.join("&"))
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(p, true), String::new()),
        })
        .collect()
}

impl<S: Send + Sync> FromRequestParts<S> for Chrome {
    type Rejection = ErrorPage;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let uri = &parts.uri;
        let query = parse_query(uri.query().unwrap_or(""));
        let mut chrome = Chrome {
            title: String::new(),
            // One leading slash: `//host/` in a link is another site.
            path: format!("/{}", uri.path().trim_start_matches(['/', '\\'])),
            query,
            from: String::new(),
            to: String::new(),
            from_ns: 0,
            to_ns: 0,
            window: time_range::Window {
                from_ns: 0,
                to_ns: 0,
                key: String::new(),
                plant: None,
            },
            refresh: 0,
            plants: Vec::new(),
            search: String::new(),
            version: env!("CARGO_PKG_VERSION"),
            identity: parts
                .extensions
                .get::<Identity>()
                .cloned()
                .unwrap_or(Identity::Anonymous),
        };
        chrome.from = chrome.param("from").unwrap_or("now-24h").to_string();
        chrome.to = chrome.param("to").unwrap_or("now").to_string();
        chrome.search = chrome.param("q").unwrap_or("").to_string();
        let refresh = chrome
            .param("refresh")
            .map(|r| r.trim_end_matches('s').parse::<u32>());
        match refresh {
            None => {}
            Some(Ok(seconds)) if seconds == 0 || (5..=3600).contains(&seconds) => {
                chrome.refresh = seconds
            }
            Some(_) => {
                chrome.drop_range();
                return Err(ErrorPage::new(
                    chrome,
                    AppError::BadRequest(
                        "`refresh` is a number of seconds from 5 to 3600, or 0 for off".into(),
                    ),
                ));
            }
        }
        let plant = chrome.param("plant").map(str::to_string);
        let window = time_range::window(Some(&chrome.from), Some(&chrome.to), now_ns())
            .and_then(|w| w.with_plant(plant.as_deref()));
        match window {
            Ok(w) => {
                chrome.from_ns = w.from_ns;
                chrome.to_ns = w.to_ns;
                chrome.window = w;
                Ok(chrome)
            }
            Err(e) => {
                // Show the error under a valid default range, and keep the
                // bad value out of every link on the error page.
                chrome.drop_range();
                Err(ErrorPage::new(chrome, e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_never_becomes_another_site() {
        // The path of a good request, or the overview link of a bad one.
        let chrome = |path: &str| {
            let mut parts = axum::http::Request::builder()
                .uri(path)
                .body(())
                .unwrap()
                .into_parts()
                .0;
            match futures_lite(Chrome::from_request_parts(&mut parts, &())) {
                Ok(c) => Ok(c.path),
                Err(page) => Err(page.chrome.keep_range("/")),
            }
        };
        assert_eq!(chrome("//evil.example/x"), Ok("/evil.example/x".into()));
        assert_eq!(
            chrome("/?from=yesterday&refresh=2"),
            Err("/".into()),
            "the bad range is not in the links"
        );
    }

    /// Runs a future that never waits.
    fn futures_lite<F: std::future::Future>(f: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the extractor waited"),
        }
    }

    #[test]
    fn query_round_trips() {
        let pairs = parse_query("q=SO%2D1+x&from=now-1h&bad=%zz");
        assert_eq!(pairs[0], ("q".into(), "SO-1 x".into()));
        assert_eq!(pairs[2], ("bad".into(), "%zz".into()));
        assert_eq!(
            with_query("/p", &[("q".into(), "a&b<".into())]),
            "/p?q=a%26b%3C"
        );
    }
}
