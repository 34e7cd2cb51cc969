//! The WebSocket transport: text messages are frames, pings keep the
//! connection alive, and a close frame carries the code and reason.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use super::{Inbound, Transport};
use crate::peer::CloseReason;

impl<S> Transport for WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Frame = Message;
    type Error = WsError;
    type Io = WebSocketStream<S>;

    fn into_io(self) -> Self {
        self
    }

    #[inline]
    fn text(text: Utf8Bytes) -> Message {
        Message::Text(text)
    }

    /// A text message whose payload is not checked for UTF-8 again (the
    /// same frame on the wire as [`Message::Text`]).
    #[inline]
    fn encoded(text: Bytes) -> Message {
        Message::Frame(Frame::message(text, OpCode::Data(Data::Text), true))
    }

    #[inline]
    fn ping() -> Option<Message> {
        Some(Message::Ping(Bytes::new()))
    }

    #[inline]
    fn close(code: CloseCode, reason: Utf8Bytes) -> Option<Message> {
        Some(Message::Close(Some(CloseFrame { code, reason })))
    }

    #[inline]
    fn read(item: Option<Result<Message, WsError>>) -> Inbound {
        match item {
            None => Inbound::Closed { code: None, reason: String::new() },
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                Inbound::TooBig { size, max: max_size }
            }
            Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                Inbound::Closed { code: None, reason: String::new() }
            }
            Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                Inbound::Ended(CloseReason::Remote { code: None, reason: "reset without closing handshake".into() })
            }
            Some(Err(e)) => Inbound::Ended(CloseReason::Transport(e.to_string())),
            Some(Ok(Message::Text(text))) => Inbound::Text(text),
            Some(Ok(Message::Binary(bytes))) => Inbound::Binary(bytes),
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) =
                    frame.map_or((None, String::new()), |f| (Some(u16::from(f.code)), f.reason.to_string()));
                Inbound::Closed { code, reason }
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Inbound::Heard,
        }
    }
}
