//! CORS (cross-origin resource sharing) for JSON-RPC over HTTP: which other
//! web sites' pages may POST calls to the hub from a browser and read the
//! answers.
//!
//! Terms:
//! - a **preflight** is the `OPTIONS` request a browser sends before a
//!   cross-origin `POST` with `Content-Type: application/json`, asking
//!   whether the page's origin may send it;
//! - an **allowed** origin gets `204` to its preflight, with
//!   `Access-Control-Allow-Origin` naming it, and the same header on the
//!   answers to its calls; any other gets `403` and no such header, so the
//!   browser keeps the answer from the page.
//!
//! CORS only tells browsers what a page may read; whether a request is
//! served at all is the origin policy's and the authenticator's to decide,
//! for HTTP as for WebSocket upgrades.

use std::time::Duration;

/// How long a browser may cache an allowed preflight, unless set.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

/// Which origins' pages may call the hub over HTTP from a browser.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CorsPolicy {
    /// No other origin: preflights get `403`, answers carry no CORS header
    /// (same-origin pages and non-browser clients are not affected). The default.
    #[default]
    Off,
    /// Pages from the listed origins (`scheme://host[:port]`, compared
    /// without regard to ASCII case or a trailing `/`).
    AllowList {
        /// The allowed origins, e.g. `https://app.example.com`.
        origins: Vec<String>,
        /// How long a browser may cache an allowed preflight
        /// (`Access-Control-Max-Age`; browsers cap it, Chromium at 2 hours).
        max_age: Duration,
    },
}

// Read by the HTTP server (cargo feature `http`).
#[cfg_attr(not(feature = "http"), allow(dead_code))]
impl CorsPolicy {
    /// Allows pages from `origins`; preflights are cached for 10 minutes.
    pub fn allow<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CorsPolicy::AllowList { origins: origins.into_iter().map(Into::into).collect(), max_age: DEFAULT_MAX_AGE }
    }

    /// Sets how long a browser may cache an allowed preflight (no effect on [`CorsPolicy::Off`]).
    pub fn with_max_age(mut self, age: Duration) -> Self {
        if let CorsPolicy::AllowList { max_age, .. } = &mut self {
            *max_age = age;
        }
        self
    }

    /// Whether pages from `origin` may call over HTTP.
    pub(crate) fn allows(&self, origin: &str) -> bool {
        let CorsPolicy::AllowList { origins, .. } = self else { return false };
        let wanted = origin.trim_end_matches('/');
        origins.iter().any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(wanted))
    }

    /// The preflight cache time of an allow-list.
    pub(crate) fn max_age(&self) -> Option<Duration> {
        match self {
            CorsPolicy::Off => None,
            CorsPolicy::AllowList { max_age, .. } => Some(*max_age),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_allows_no_origin() {
        assert!(!CorsPolicy::Off.allows("https://app.example"));
        assert_eq!(CorsPolicy::Off.max_age(), None);
    }

    #[test]
    fn an_allow_list_matches_case_and_slash_insensitively() {
        let policy = CorsPolicy::allow(["https://App.example/"]).with_max_age(Duration::from_secs(60));
        assert!(policy.allows("https://app.example"));
        assert!(!policy.allows("https://app.example.evil"));
        assert_eq!(policy.max_age(), Some(Duration::from_secs(60)));
    }
}
