//! The pgoutput logical replication message format (PostgreSQL docs,
//! "Logical Replication Message Formats"), protocol versions 1 and 2.
//!
//! Spec-shaped types only: each message maps one-to-one to the documented
//! layout, with a `decode` and an `encode`, one file per message. Turning
//! messages into committed transactions with resolved table names is the job
//! of [`crate::txn`].
//!
//! Invariant: decoding never panics. Malformed input of any kind (short,
//! negative lengths, counts larger than the buffer, strings without NUL,
//! unknown tags or markers, trailing bytes) is a [`DecodeError`].
//!
//! Not decoded: the two-phase messages (`b`, `P`, `K`, `r`, `p`; protocol 3
//! with `two_phase on`), which Fluxbase never enables; they are
//! [`DecodeError::UnknownTag`].

mod begin;
mod commit;
mod decoder;
mod delete;
mod insert;
mod message;
mod origin;
mod relation;
mod stream;
mod truncate;
mod tuple_data;
mod typ;
mod update;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use bytes::{BufMut, Bytes, BytesMut};

pub use begin::Begin;
pub use commit::Commit;
pub use decoder::Decoder;
pub use delete::Delete;
pub use insert::Insert;
pub use message::Message;
pub use origin::Origin;
pub use relation::{Relation, RelationColumn, ReplicaIdentity};
pub use stream::{StreamAbort, StreamCommit, StreamStart, StreamStop};
pub use truncate::{Truncate, TruncateOptions};
pub use tuple_data::{OldKind, OldTuple, TupleData, TupleValue};
pub use typ::Type;
pub use update::Update;

use crate::codec::{Corruption, DecodeError, Reader};

/// Any pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PgOutputMessage {
    /// `'B'`
    Begin(Begin),
    /// `'C'`
    Commit(Commit),
    /// `'O'`
    Origin(Origin),
    /// `'R'`
    Relation(Relation),
    /// `'Y'`
    Type(Type),
    /// `'I'`
    Insert(Insert),
    /// `'U'`
    Update(Update),
    /// `'D'`
    Delete(Delete),
    /// `'T'`
    Truncate(Truncate),
    /// `'M'`
    Message(Message),
    /// `'S'` (streaming only)
    StreamStart(StreamStart),
    /// `'E'` (streaming only)
    StreamStop(StreamStop),
    /// `'c'` (streaming only)
    StreamCommit(StreamCommit),
    /// `'A'` (streaming only)
    StreamAbort(StreamAbort),
}

/// True for the tags of the stream-control messages.
pub fn is_stream_tag(tag: u8) -> bool {
    matches!(tag, StreamStart::TAG | StreamStop::TAG | StreamCommit::TAG | StreamAbort::TAG)
}

impl PgOutputMessage {
    /// Decodes one message (the payload of one XLogData).
    ///
    /// `streaming` enables the stream-control tags (`S`, `E`, `c`, `A`),
    /// which are otherwise [`DecodeError::UnknownTag`]; `in_stream` says
    /// whether the message sits between Stream Start and Stream Stop, where
    /// data messages carry an xid. [`Decoder`] tracks `in_stream` for you.
    pub fn decode(data: &Bytes, streaming: bool, in_stream: bool) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data, "pgoutput message");
        let tag = match r.u8() {
            Ok(tag) => tag,
            Err(_) => return Err(r.corrupt(Corruption::Empty)),
        };
        if is_stream_tag(tag) && !streaming {
            return Err(DecodeError::UnknownTag(tag));
        }
        let msg = match tag {
            Begin::TAG => Self::Begin(Begin::decode(&mut r)?),
            Commit::TAG => Self::Commit(Commit::decode(&mut r)?),
            Origin::TAG => Self::Origin(Origin::decode(&mut r)?),
            Relation::TAG => Self::Relation(Relation::decode(&mut r, in_stream)?),
            Type::TAG => Self::Type(Type::decode(&mut r, in_stream)?),
            Insert::TAG => Self::Insert(Insert::decode(&mut r, in_stream)?),
            Update::TAG => Self::Update(Update::decode(&mut r, in_stream)?),
            Delete::TAG => Self::Delete(Delete::decode(&mut r, in_stream)?),
            Truncate::TAG => Self::Truncate(Truncate::decode(&mut r, in_stream)?),
            Message::TAG => Self::Message(Message::decode(&mut r, in_stream)?),
            StreamStart::TAG => Self::StreamStart(StreamStart::decode(&mut r)?),
            StreamStop::TAG => Self::StreamStop(StreamStop::decode(&mut r)?),
            StreamCommit::TAG => Self::StreamCommit(StreamCommit::decode(&mut r)?),
            StreamAbort::TAG => Self::StreamAbort(StreamAbort::decode(&mut r)?),
            other => return Err(DecodeError::UnknownTag(other)),
        };
        r.finish()?;
        Ok(msg)
    }

    /// Encodes the message (tag and body), as the walsender would send it.
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Self::Begin(m) => m.encode(buf),
            Self::Commit(m) => m.encode(buf),
            Self::Origin(m) => m.encode(buf),
            Self::Relation(m) => m.encode(buf),
            Self::Type(m) => m.encode(buf),
            Self::Insert(m) => m.encode(buf),
            Self::Update(m) => m.encode(buf),
            Self::Delete(m) => m.encode(buf),
            Self::Truncate(m) => m.encode(buf),
            Self::Message(m) => m.encode(buf),
            Self::StreamStart(m) => m.encode(buf),
            Self::StreamStop(m) => m.encode(buf),
            Self::StreamCommit(m) => m.encode(buf),
            Self::StreamAbort(m) => m.encode(buf),
        }
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::new();
        self.encode(&mut buf);
        buf.freeze()
    }

    /// The message's tag byte.
    pub fn tag(&self) -> u8 {
        match self {
            Self::Begin(_) => Begin::TAG,
            Self::Commit(_) => Commit::TAG,
            Self::Origin(_) => Origin::TAG,
            Self::Relation(_) => Relation::TAG,
            Self::Type(_) => Type::TAG,
            Self::Insert(_) => Insert::TAG,
            Self::Update(_) => Update::TAG,
            Self::Delete(_) => Delete::TAG,
            Self::Truncate(_) => Truncate::TAG,
            Self::Message(_) => Message::TAG,
            Self::StreamStart(_) => StreamStart::TAG,
            Self::StreamStop(_) => StreamStop::TAG,
            Self::StreamCommit(_) => StreamCommit::TAG,
            Self::StreamAbort(_) => StreamAbort::TAG,
        }
    }
}

/// Reads the xid that data messages carry inside a stream.
fn read_xid(r: &mut Reader<'_>, in_stream: bool) -> Result<Option<u32>, DecodeError> {
    if in_stream {
        Ok(Some(r.u32()?))
    } else {
        Ok(None)
    }
}

/// Writes the in-stream xid when there is one.
fn put_xid(buf: &mut BytesMut, xid: Option<u32>) {
    if let Some(xid) = xid {
        buf.put_u32(xid);
    }
}
