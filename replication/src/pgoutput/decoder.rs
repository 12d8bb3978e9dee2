//! [`Decoder`]: decodes a session's pgoutput messages in order, tracking
//! whether it is inside a streamed chunk (which decides whether data messages
//! carry an xid).

use bytes::Bytes;

use super::PgOutputMessage;
use crate::codec::{Corruption, DecodeError};

/// A stateful pgoutput decoder for one replication session.
///
/// Create a new one (or call [`Decoder::reset`]) on every reconnect.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    streaming: bool,
    in_stream: bool,
}

impl Decoder {
    /// A decoder for a session started with `streaming` on or off. With it
    /// off, the stream-control tags are [`DecodeError::UnknownTag`].
    pub fn new(streaming: bool) -> Self {
        Decoder { streaming, in_stream: false }
    }

    /// True between Stream Start and Stream Stop.
    pub fn in_stream(&self) -> bool {
        self.in_stream
    }

    /// Forgets the stream state (for a new session).
    pub fn reset(&mut self) {
        self.in_stream = false;
    }

    /// Decodes the next message of the session.
    ///
    /// A Stream Start while already in a stream, or a Stream Stop outside
    /// one, is [`Corruption::StreamState`]; the state is left unchanged.
    pub fn decode(&mut self, data: &Bytes) -> Result<PgOutputMessage, DecodeError> {
        let msg = PgOutputMessage::decode(data, self.streaming, self.in_stream)?;
        match &msg {
            PgOutputMessage::StreamStart(_) if self.in_stream => {
                return Err(DecodeError::Corrupt {
                    context: "Stream Start",
                    reason: Corruption::StreamState("Stream Start inside a stream"),
                })
            }
            PgOutputMessage::StreamStop(_) if !self.in_stream => {
                return Err(DecodeError::Corrupt {
                    context: "Stream Stop",
                    reason: Corruption::StreamState("Stream Stop outside a stream"),
                })
            }
            PgOutputMessage::StreamStart(_) => self.in_stream = true,
            PgOutputMessage::StreamStop(_) => self.in_stream = false,
            _ => {}
        }
        Ok(msg)
    }
}
