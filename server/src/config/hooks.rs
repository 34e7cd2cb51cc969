//! Lifecycle hooks: user code run when a connection is registered and when
//! it has ended. A hook that panics is logged and otherwise ignored.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use switchboard_shared::{CloseReason, PeerHandle};

/// Runs when a connection has been upgraded and registered.
pub(crate) type ConnectHook = Arc<dyn Fn(&PeerHandle) + Send + Sync>;

/// Runs once a registered connection has ended, with the reason.
pub(crate) type DisconnectHook = Arc<dyn Fn(&PeerHandle, &CloseReason) + Send + Sync>;

/// Runs a hook, containing a panic.
pub(crate) fn run(name: &'static str, hook: impl FnOnce()) {
    if std::panic::catch_unwind(AssertUnwindSafe(hook)).is_err() {
        tracing::error!(target: "switchboard::server", hook = name, "hook panicked");
    }
}
