//! The settings of the built-in methods: which are registered, and the hook
//! that decides each `rpc.subscribe`.

use std::sync::Arc;

use switchboard_shared::Context;

/// Which built-in methods (the `rpc.` names the spec reserves) a server registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Builtins {
    /// Every built-in: `rpc.discover`, `rpc.subscribe`, `rpc.unsubscribe`
    /// and `rpc.history`. The default.
    #[default]
    All,
    /// The topic methods only: `rpc.subscribe`, `rpc.unsubscribe` and
    /// `rpc.history`, no `rpc.discover`.
    Topics,
    /// None: the registry holds exactly the user's methods (handlers can
    /// still join connections to topics through `ServerContext::join`).
    None,
}

/// What the subscription hook says about one `rpc.subscribe`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionDecision {
    /// Let the connection join the topic.
    Allow,
    /// Refuse: the client gets an error object with code
    /// [`code::SUBSCRIPTION_DENIED`](switchboard_shared::code::SUBSCRIPTION_DENIED) and this reason as its `data`.
    Deny(String),
}

/// Decides each `rpc.subscribe` (the connection's context, the topic).
pub(crate) type SubscriptionFilter = Arc<dyn Fn(&Context, &str) -> SubscriptionDecision + Send + Sync>;
