//! The Origin check: browsers send an `Origin` header with every WebSocket
//! upgrade, and send the user's cookies (and other ambient credentials)
//! along whatever page opened the socket. Checking the origin stops other
//! web sites from using a visitor's browser to reach the hub as that
//! visitor (cross-site WebSocket hijacking).
//!
//! Terms:
//! - **same origin**: the `Origin`'s host and port equal the request's
//!   `Host` (a port left out is the default of the Origin's scheme: 80 for
//!   `http`, 443 for `https`). A page served by the hub's own host and port
//!   (the dashboard) is same-origin;
//! - an **origin pattern** is `scheme://host[:port]`, where the host may
//!   start with `*.` (any subdomain, at any depth, not the bare domain) and
//!   the port may be `*` (any port); no port means the scheme's default;
//! - a request **without an `Origin`** comes from a program, not a browser
//!   page (command-line tools, services): browsers always send one.
//!
//! The default, [`OriginPolicy::SameOrigin`], admits requests without an
//! `Origin` and same-origin requests, and refuses every other origin with
//! HTTP 403.

use std::fmt;
use std::str::FromStr;

/// What to do with an upgrade request that carries no `Origin` header
/// (command-line tools and services do not send one; browsers always do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissingOrigin {
    /// Accept it: the origin check only guards browsers. The default.
    #[default]
    Accept,
    /// Refuse it with HTTP 403: only browser pages may connect.
    Refuse,
}

/// Which browser origins may connect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Same-origin pages and clients without an `Origin`; any other origin
    /// gets HTTP 403. The default.
    #[default]
    SameOrigin,
    /// Same-origin pages, pages whose origin matches one of `origins`, and
    /// (as `missing` says) clients without an `Origin`; any other origin
    /// gets HTTP 403.
    AllowList {
        /// The allowed origin patterns, e.g. `https://*.example.com`.
        origins: Vec<OriginPattern>,
        /// What a request without an `Origin` header gets.
        missing: MissingOrigin,
    },
    /// Any origin at all: every web site a user visits may open the user's
    /// connection (with the user's cookies). Only for hubs that take no
    /// ambient credentials (every client sends a token a page cannot read);
    /// building a server with it logs a warning.
    Any,
}

impl OriginPolicy {
    /// An allow-list of origin patterns (same-origin pages and clients
    /// without an `Origin` are still admitted); fails on the first entry
    /// that is not an origin pattern.
    ///
    /// ```
    /// use switchboard_server::OriginPolicy;
    /// let policy = OriginPolicy::allow(["https://app.example.com", "https://*.example.org", "http://localhost:*"])?;
    /// assert!(policy.admits(Some("https://eu.example.org"), Some("hub.example.net")));
    /// assert!(!policy.admits(Some("https://evil.example"), Some("hub.example.net")));
    /// # Ok::<(), switchboard_server::InvalidOrigin>(())
    /// ```
    pub fn allow<I, S>(origins: I) -> Result<Self, InvalidOrigin>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let origins = origins.into_iter().map(|o| o.as_ref().parse()).collect::<Result<Vec<OriginPattern>, _>>()?;
        Ok(OriginPolicy::AllowList { origins, missing: MissingOrigin::Accept })
    }

    /// Sets what the policy does with a request that has no `Origin`
    /// header (no effect on [`OriginPolicy::Any`]; [`OriginPolicy::SameOrigin`]
    /// becomes an empty allow-list).
    pub fn with_missing(self, what: MissingOrigin) -> Self {
        match self {
            OriginPolicy::SameOrigin => OriginPolicy::AllowList { origins: Vec::new(), missing: what },
            OriginPolicy::AllowList { origins, .. } => OriginPolicy::AllowList { origins, missing: what },
            OriginPolicy::Any => OriginPolicy::Any,
        }
    }

    /// Whether a request with this `Origin` header (if any) and this
    /// `Host` header (if any) may connect. For HTTP layers that check
    /// before calling [`ServerHandle::admit`](crate::ServerHandle::admit),
    /// which checks again.
    pub fn admits(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        self.check(origin, host).is_ok()
    }

    /// `Ok` when a request with `origin` and `host` may connect, else the
    /// reason to refuse with (sent as the 403's body).
    pub(crate) fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), String> {
        let (patterns, missing) = match self {
            OriginPolicy::Any => return Ok(()),
            OriginPolicy::SameOrigin => (&[][..], MissingOrigin::Accept),
            OriginPolicy::AllowList { origins, missing } => (&origins[..], *missing),
        };
        let Some(text) = origin else {
            return match missing {
                MissingOrigin::Accept => Ok(()),
                MissingOrigin::Refuse => Err("an Origin header is required".into()),
            };
        };
        let refused = || Err(format!("origin {text:?} is not allowed to connect to this hub"));
        let Some(origin) = Origin::parse(text) else { return refused() };
        if host.is_some_and(|host| origin.is_same_as(host)) || patterns.iter().any(|p| p.matches(&origin)) {
            Ok(())
        } else {
            refused()
        }
    }
}

/// An `Origin` header, parsed: scheme, host (lower case) and port (the
/// scheme's default when left out).
#[derive(Debug)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// `None` for `null` (an opaque origin) or anything that is not `scheme://host[:port]`.
    fn parse(text: &str) -> Option<Origin> {
        let url = url::Url::parse(text.trim()).ok()?;
        let host = url.host_str().filter(|h| !h.is_empty())?.to_ascii_lowercase();
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || !matches!(url.path(), "" | "/")
        {
            return None;
        }
        Some(Origin { port: url.port_or_known_default(), scheme: url.scheme().to_owned(), host })
    }

    /// Whether this origin is the one of a page served from `host` (a `Host` header).
    fn is_same_as(&self, host: &str) -> bool {
        let Ok(authority) = host.trim().parse::<http::uri::Authority>() else { return false };
        let port = authority.port_u16().or_else(|| default_port(&self.scheme));
        authority.host().eq_ignore_ascii_case(&self.host) && port.is_some() && port == self.port
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// One entry of an allow-list: `scheme://host[:port]`, the host may start
/// with `*.` (any subdomain) and the port may be `*` (any port). Compared
/// without regard to ASCII case; a trailing `/` is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    /// Lower case, without the `*.` of a subdomain wildcard.
    host: String,
    subdomains: bool,
    port: PortPattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    /// The scheme's default port.
    Default,
    Exact(u16),
    Any,
}

/// Why an allow-list entry is not an origin pattern. Each says what to fix;
/// the entry is the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidOrigin {
    /// No `scheme://` in front: write `https://app.example.com`, not `app.example.com`.
    #[error("{0:?} is not an origin pattern: it needs a scheme (https://{0})")]
    NoScheme(String),
    /// No host after `scheme://`.
    #[error("{0:?} is not an origin pattern: it names no host")]
    NoHost(String),
    /// A path, query, fragment or user name: an origin is only `scheme://host[:port]`.
    #[error("{0:?} is not an origin pattern: an origin is only scheme://host[:port], without path, query or user")]
    NotAnOrigin(String),
    /// A port that is neither a number up to 65535 nor `*`.
    #[error("{0:?} is not an origin pattern: the port must be a number or *")]
    BadPort(String),
    /// A `*` elsewhere than a leading `*.` of the host or the whole port;
    /// for every origin use `OriginPolicy::Any`.
    #[error(
        "{0:?} is not an origin pattern: * may only start the host (https://*.example.com) or be the port (http://localhost:*); to allow every origin use OriginPolicy::Any"
    )]
    Wildcard(String),
}

impl FromStr for OriginPattern {
    type Err = InvalidOrigin;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let entry = text.trim();
        let owned = || entry.to_owned();
        let Some((scheme, rest)) = entry.split_once("://") else { return Err(InvalidOrigin::NoScheme(owned())) };
        let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return Err(InvalidOrigin::NoScheme(owned()));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() {
            return Err(InvalidOrigin::NoHost(owned()));
        }
        if authority.contains(['/', '?', '#', '@']) || authority.chars().any(char::is_whitespace) {
            return Err(InvalidOrigin::NotAnOrigin(owned()));
        }
        // An IPv6 host is bracketed; the port follows the last `:` after it.
        let host_end = if authority.starts_with('[') { authority.find(']').map_or(0, |i| i + 1) } else { 0 };
        let (host, port) = match authority[host_end..].rfind(':') {
            Some(at) => (&authority[..host_end + at], Some(&authority[host_end + at + 1..])),
            None => (authority, None),
        };
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(digits) => PortPattern::Exact(digits.parse().map_err(|_| InvalidOrigin::BadPort(owned()))?),
        };
        let (subdomains, host) = match host.strip_prefix("*.") {
            Some(base) => (true, base),
            None => (false, host),
        };
        if host.is_empty() {
            return Err(InvalidOrigin::NoHost(owned()));
        }
        if host.contains('*') {
            return Err(InvalidOrigin::Wildcard(owned()));
        }
        if port == PortPattern::Default && default_port(&scheme.to_ascii_lowercase()).is_none() {
            // `chrome-extension://id` and the like: no default port to compare with.
            return Ok(OriginPattern {
                scheme: scheme.to_ascii_lowercase(),
                host: host.to_ascii_lowercase(),
                subdomains,
                port: PortPattern::Any,
            });
        }
        Ok(OriginPattern { scheme: scheme.to_ascii_lowercase(), host: host.to_ascii_lowercase(), subdomains, port })
    }
}

impl OriginPattern {
    fn matches(&self, origin: &Origin) -> bool {
        if !origin.scheme.eq_ignore_ascii_case(&self.scheme) {
            return false;
        }
        let host_matches = if self.subdomains {
            origin.host.strip_suffix(self.host.as_str()).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        } else {
            origin.host == self.host
        };
        let port_matches = match self.port {
            PortPattern::Any => true,
            PortPattern::Exact(port) => origin.port == Some(port),
            PortPattern::Default => origin.port.is_some() && origin.port == default_port(&self.scheme),
        };
        host_matches && port_matches
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, if self.subdomains { "*." } else { "" }, self.host)?;
        match self.port {
            PortPattern::Default => Ok(()),
            PortPattern::Exact(port) => write!(f, ":{port}"),
            PortPattern::Any => f.write_str(":*"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(patterns: &[&str]) -> OriginPolicy {
        OriginPolicy::allow(patterns).unwrap()
    }

    #[test]
    fn same_origin_and_no_origin_are_admitted_by_default() {
        let policy = OriginPolicy::default();
        assert!(policy.admits(None, Some("hub.example:9000")));
        assert!(policy.admits(Some("http://hub.example:9000"), Some("hub.example:9000")));
        assert!(policy.admits(Some("http://HUB.example:9000"), Some("hub.EXAMPLE:9000")));
        assert!(!policy.admits(Some("http://evil.example:9000"), Some("hub.example:9000")));
        assert!(!policy.admits(Some("http://hub.example:9001"), Some("hub.example:9000")));
        assert!(!policy.admits(Some("null"), Some("hub.example:9000")));
        assert!(!policy.admits(Some("http://hub.example:9000"), None));
    }

    #[test]
    fn default_ports_are_filled_in_from_the_origins_scheme() {
        let policy = OriginPolicy::SameOrigin;
        assert!(policy.admits(Some("https://hub.example"), Some("hub.example")));
        assert!(policy.admits(Some("https://hub.example:443"), Some("hub.example")));
        assert!(policy.admits(Some("https://hub.example"), Some("hub.example:443")));
        assert!(policy.admits(Some("http://hub.example"), Some("hub.example:80")));
        assert!(!policy.admits(Some("http://hub.example"), Some("hub.example:443")));
        assert!(policy.admits(Some("http://[::1]:9000"), Some("[::1]:9000")));
    }

    #[test]
    fn patterns_match_exact_origins_subdomains_and_any_port() {
        let policy = allow(&["https://App.example/", "https://*.example.org", "http://localhost:*"]);
        let other_host = Some("hub.example.net");
        assert!(policy.admits(Some("https://app.example"), other_host));
        assert!(policy.admits(Some("https://app.example:443"), other_host));
        assert!(!policy.admits(Some("https://app.example:8443"), other_host));
        assert!(!policy.admits(Some("http://app.example"), other_host));
        assert!(!policy.admits(Some("https://app.example.evil"), other_host));
        assert!(policy.admits(Some("https://eu.example.org"), other_host));
        assert!(policy.admits(Some("https://a.b.example.org"), other_host));
        assert!(!policy.admits(Some("https://example.org"), other_host));
        assert!(!policy.admits(Some("https://badexample.org"), other_host));
        assert!(policy.admits(Some("http://localhost:5173"), other_host));
        assert!(policy.admits(Some("http://localhost"), other_host));
        assert!(policy.admits(None, other_host));
    }

    #[test]
    fn a_strict_policy_refuses_a_missing_origin() {
        let policy = allow(&["https://a.example"]).with_missing(MissingOrigin::Refuse);
        assert!(!policy.admits(None, Some("hub")));
        assert!(!OriginPolicy::SameOrigin.with_missing(MissingOrigin::Refuse).admits(None, Some("hub")));
    }

    #[test]
    fn any_admits_everything() {
        assert!(OriginPolicy::Any.admits(Some("https://evil.example"), Some("hub")));
        assert!(OriginPolicy::Any.admits(Some("garbage"), None));
    }

    #[test]
    fn entries_that_are_not_origin_patterns_say_why() {
        let invalid = |text: &str| text.parse::<OriginPattern>().unwrap_err();
        assert!(matches!(invalid("app.example.com"), InvalidOrigin::NoScheme(_)));
        assert!(matches!(invalid("https://"), InvalidOrigin::NoHost(_)));
        assert!(matches!(invalid("https://app.example/path"), InvalidOrigin::NotAnOrigin(_)));
        assert!(matches!(invalid("https://user@app.example"), InvalidOrigin::NotAnOrigin(_)));
        assert!(matches!(invalid("https://app.example:99999"), InvalidOrigin::BadPort(_)));
        assert!(matches!(invalid("https://*"), InvalidOrigin::Wildcard(_)));
        assert!(matches!(invalid("https://*."), InvalidOrigin::NoHost(_)));
        assert!(matches!(invalid("https://a.*.example"), InvalidOrigin::Wildcard(_)));
        assert!(matches!(invalid("*"), InvalidOrigin::NoScheme(_)));
        assert_eq!("HTTPS://*.Example.org:*".parse::<OriginPattern>().unwrap().to_string(), "https://*.example.org:*");
        assert_eq!("http://[::1]:9000".parse::<OriginPattern>().unwrap().to_string(), "http://[::1]:9000");
    }
}
