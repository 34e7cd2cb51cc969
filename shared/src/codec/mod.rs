//! The JSON-RPC 2.0 codec: ids, error objects, frame decoding and encoding;
//! and JSON-RPC 1.0 where a peer opts in ([`decode_frame_compat`], [`v1`]).
//!
//! Nothing here opens a socket; the peer engine feeds frames in and takes
//! frames out.

mod decode;
pub mod encode;
mod error;
mod id;
pub mod v1;

pub use decode::{
    Entry, Frame, Invalid, InvalidKind, Message, Notification, Request, Response, Version, decode_frame,
    decode_frame_compat,
};
pub use encode::EncodeError;
pub use error::{ErrorObject, code};
pub use id::{Id, InvalidId};
