//! The Origin allow-list: browsers send an `Origin` header with every
//! WebSocket upgrade, so checking it stops other web sites from using a
//! visitor's browser (and its cookies) to reach the hub.

/// What to do with an upgrade request that carries no `Origin` header
/// (command-line tools and services do not send one; browsers always do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissingOrigin {
    /// Accept it: the allow-list only guards browsers. The default.
    #[default]
    Accept,
    /// Refuse it with HTTP 403: only browsers from the listed origins may connect.
    Refuse,
}

/// Which browser origins may connect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Any origin, and none. The default.
    #[default]
    Any,
    /// Only the listed origins (`scheme://host[:port]`, compared without
    /// regard to ASCII case or a trailing `/`); any other gets HTTP 403.
    AllowList {
        /// The allowed origins, e.g. `https://app.example.com`.
        origins: Vec<String>,
        /// What a request without an `Origin` header gets.
        missing: MissingOrigin,
    },
}

impl OriginPolicy {
    /// An allow-list that accepts requests without an `Origin` header.
    pub fn allow<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        OriginPolicy::AllowList {
            origins: origins.into_iter().map(Into::into).collect(),
            missing: MissingOrigin::Accept,
        }
    }

    /// Sets what an allow-list does with a request that has no `Origin`
    /// header (no effect on [`OriginPolicy::Any`]).
    pub fn with_missing(mut self, what: MissingOrigin) -> Self {
        if let OriginPolicy::AllowList { missing, .. } = &mut self {
            *missing = what;
        }
        self
    }

    /// `Ok` when `origin` may connect, else the reason to refuse with.
    pub(crate) fn check(&self, origin: Option<&str>) -> Result<(), String> {
        let OriginPolicy::AllowList { origins, missing } = self else { return Ok(()) };
        let Some(origin) = origin else {
            return match missing {
                MissingOrigin::Accept => Ok(()),
                MissingOrigin::Refuse => Err("an Origin header is required".into()),
            };
        };
        let wanted = origin.trim_end_matches('/');
        if origins.iter().any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(wanted)) {
            Ok(())
        } else {
            Err(format!("origin {origin:?} is not allowed"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_accepts_everything() {
        assert!(OriginPolicy::Any.check(Some("https://evil.example")).is_ok());
        assert!(OriginPolicy::Any.check(None).is_ok());
    }

    #[test]
    fn allow_list_matches_case_and_slash_insensitively() {
        let policy = OriginPolicy::allow(["https://App.example/"]);
        assert!(policy.check(Some("https://app.example")).is_ok());
        assert!(policy.check(Some("https://app.example.evil")).is_err());
        assert!(policy.check(None).is_ok());
    }

    #[test]
    fn strict_allow_list_refuses_a_missing_origin() {
        let policy = OriginPolicy::AllowList { origins: vec!["https://a".into()], missing: MissingOrigin::Refuse };
        assert!(policy.check(None).is_err());
    }
}
