//! What handlers and hooks reach of the server through their connection.
//!
//! Every connection of a server shares one `PeerConfig`, whose extensions
//! hold a weak reference to the server; [`ServerContext`] reads it back, so a
//! handler can push, publish, or manage the topics of its own connection.
//!
//! ```
//! use switchboard_server::ServerContext;
//! use switchboard_shared::{Context, ErrorObject, Methods};
//!
//! let mut methods = Methods::new();
//! methods.register("follow", |(room,): (String,), cx: Context| async move {
//!     cx.join(&room)?;
//!     let members = cx.server()?.subscribers(&room);
//!     Ok::<_, ErrorObject>(members)
//! });
//! ```

use switchboard_shared::{Context, PeerHandle};

use crate::config::auth::Authenticated;
use crate::error::NotServed;
use crate::handle::ServerHandle;
use crate::state::hub::ServerRef;
use crate::state::registry::Join;

/// Server access from a handler's [`Context`] (or a hook's [`PeerHandle`]).
///
/// Every method fails with [`NotServed`] (a -32603 for `?` in a handler)
/// when the connection is not served by a Switchboard server.
pub trait ServerContext {
    /// The server this connection belongs to (a cheap handle).
    fn server(&self) -> Result<ServerHandle, NotServed>;

    /// Joins this connection to `topic`, with no subscription hook or limit
    /// (the handler decides). `Ok(true)` when it was not a member yet;
    /// `Ok(false)` also when the connection has already ended.
    fn join(&self, topic: &str) -> Result<bool, NotServed>;

    /// Removes this connection from `topic`; `Ok(false)` when it was not a member.
    fn leave(&self, topic: &str) -> Result<bool, NotServed>;

    /// The typed value of type `T` the authenticator accepted this
    /// connection with ([`Identity::with`](crate::Identity::with)), if any.
    /// (The JSON auth data stays `Context::auth()`.)
    ///
    /// ```
    /// use switchboard_server::ServerContext;
    /// use switchboard_shared::{Context, ErrorObject, Methods};
    ///
    /// #[derive(Clone)]
    /// struct Claims { user: String }
    ///
    /// let mut methods = Methods::new();
    /// methods.register_sync("me", |(): (), cx: Context| {
    ///     let claims = cx.identity::<Claims>().ok_or_else(|| ErrorObject::internal("not authenticated"))?;
    ///     Ok::<_, ErrorObject>(claims.user.clone())
    /// });
    /// ```
    fn identity<T: Clone + Send + Sync + 'static>(&self) -> Option<&T>;
}

fn server_of(peer: &PeerHandle) -> Result<ServerHandle, NotServed> {
    let server = peer.config().extensions.get::<ServerRef>().ok_or(NotServed)?;
    // Gone only once the server itself is gone, with its connections.
    server.0.upgrade().map(ServerHandle::from_hub).ok_or(NotServed)
}

impl ServerContext for PeerHandle {
    fn server(&self) -> Result<ServerHandle, NotServed> {
        server_of(self)
    }

    fn join(&self, topic: &str) -> Result<bool, NotServed> {
        let server = server_of(self)?;
        Ok(server.hub().registry().join(self, topic, None) == Join::Joined)
    }

    fn leave(&self, topic: &str) -> Result<bool, NotServed> {
        let server = server_of(self)?;
        Ok(server.hub().registry().leave(self.id(), topic))
    }

    fn identity<T: Clone + Send + Sync + 'static>(&self) -> Option<&T> {
        self.info().extensions.get::<Authenticated<T>>().map(|value| &value.0)
    }
}

impl ServerContext for Context {
    fn server(&self) -> Result<ServerHandle, NotServed> {
        server_of(self.peer())
    }

    fn join(&self, topic: &str) -> Result<bool, NotServed> {
        self.peer().join(topic)
    }

    fn leave(&self, topic: &str) -> Result<bool, NotServed> {
        self.peer().leave(topic)
    }

    fn identity<T: Clone + Send + Sync + 'static>(&self) -> Option<&T> {
        self.info().extensions.get::<Authenticated<T>>().map(|value| &value.0)
    }
}
