//! Raw socket connections (`tcp://`, `unix:`): newline-delimited JSON-RPC
//! on the same engine, registry and lifecycle as WebSocket connections.
//!
//! Terms:
//! - **admission** here is what a raw socket allows: a shutdown under way and
//!   the connection limit. There is no request head, so no origin check and
//!   no authenticator (a server with one refuses to listen on a raw socket
//!   unless told otherwise, see `RawSockets`); no handshake, so no handshake
//!   timeout either. A refused socket gets one error line (`"id": null`:
//!   -32000 "Server shutting down", or -32002 "Server busy" naming the
//!   connection limit), then its write half is shut down;
//! - the **socket file** of a Unix listener is removed when its accept loop
//!   ends, if it is still the one this listener made.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard_shared::codec::encode;
use switchboard_shared::transport::Lines;
use switchboard_shared::{ConnectionInfo, ErrorObject, Id, PeerHandle};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::serve::admission::Admitted;
use crate::serve::connection;
use crate::serve::error::ServeError;
use crate::state::hub::Hub;
use crate::state::lifecycle::NoSlot;

/// How long a refused socket is given to take its error line.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);

/// Serves an accepted raw socket: admission, then lines on the engine.
pub(crate) async fn serve_lines<S>(
    hub: &Arc<Hub>,
    stream: S,
    remote: Option<SocketAddr>,
) -> Result<PeerHandle, ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let slot = match hub.reserve(remote.map(|addr| addr.ip())) {
        Ok(slot) => slot,
        Err(no_slot) => return Err(refuse(stream, no_slot, remote).await),
    };
    let info = ConnectionInfo { id: uuid::Uuid::new_v4(), remote, ..ConnectionInfo::default() };
    let settings = hub.settings();
    let lines = Lines::with_read_buffer(stream, settings.max_message_size, settings.read_buffer_size);
    // No credentials travel on a raw socket, so none expire.
    Ok(connection::start(hub, lines, Admitted { info, slot, expires: None }))
}

/// Says why in one line, closes, and reports the refusal.
async fn refuse<S: AsyncWrite + Unpin>(mut stream: S, no_slot: NoSlot, remote: Option<SocketAddr>) -> ServeError {
    let (error, refusal) = match no_slot {
        NoSlot::ShuttingDown => (ErrorObject::shutting_down(), ServeError::ShuttingDown),
        NoSlot::Full { limit } => (
            ErrorObject::server_busy(format!("the server is at its limit of {limit} connections; try again later")),
            ServeError::TooManyConnections { limit },
        ),
        NoSlot::FullForAddress { limit } => (
            ErrorObject::server_busy(format!("the limit of {limit} connections from one address is reached")),
            ServeError::TooManyFromAddress { limit },
        ),
    };
    tracing::info!(target: "switchboard::server", remote = ?remote, reason = %refusal, "raw socket connection rejected");
    let mut line = encode::error(&Id::Null, &error);
    line.push('\n');
    // The client may be gone already; the refusal is what matters.
    let _ = tokio::time::timeout(REFUSAL_WRITE, async {
        stream.write_all(line.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    refusal
}

/// A bound Unix socket, which removes its file when dropped.
#[cfg(unix)]
#[derive(Debug)]
pub(crate) struct UnixSocket {
    pub(crate) listener: tokio::net::UnixListener,
    path: std::path::PathBuf,
    /// The file's identity (device, inode) when bound: a file someone put at
    /// the path since is not removed.
    identity: Option<(u64, u64)>,
}

#[cfg(unix)]
impl UnixSocket {
    pub(crate) fn new(listener: tokio::net::UnixListener, path: std::path::PathBuf) -> Self {
        let identity = file_identity(&path).ok();
        UnixSocket { listener, path, identity }
    }
}

#[cfg(unix)]
impl Drop for UnixSocket {
    fn drop(&mut self) {
        if self.identity.is_some()
            && file_identity(&self.path).ok() == self.identity
            && let Err(error) = std::fs::remove_file(&self.path)
        {
            tracing::warn!(target: "switchboard::server", path = %self.path.display(), %error, "could not remove the socket file");
        }
    }
}

#[cfg(unix)]
fn file_identity(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}
