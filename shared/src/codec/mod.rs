//! The JSON-RPC 2.0 codec: ids, error objects, frame decoding and encoding.
//!
//! Nothing here opens a socket; the peer engine feeds frames in and takes
//! frames out.

mod decode;
pub mod encode;
mod error;
mod id;

pub use decode::{Entry, Frame, Invalid, InvalidKind, Message, Notification, Request, Response, decode_frame};
pub use encode::EncodeError;
pub use error::{ErrorObject, code};
pub use id::{Id, InvalidId};
