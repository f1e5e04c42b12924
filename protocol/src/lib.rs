//! RESP2/RESP3 wire protocol for forkdb: request parsing and reply encoding, with no I/O.
//!
//! # Layout
//!
//! - [`frame`]: the [`Frame`] value the server replies with (a RESP3 superset).
//! - [`encode`](mod@encode): `Frame` → bytes, RESP3 or RESP2 (with Redis's downgrades), plus
//!   allocation-free fast paths for the hot replies.
//! - [`double`]: Redis 7.0's `%.17g` spelling of doubles, shared by both encodings.
//! - [`request`]: [`RequestParser`], the resumable parser for what clients send (multibulk
//!   and inline), a port of `processMultibulkBuffer` / `processInlineBuffer` from Redis's
//!   `networking.c`, with the exact error texts ([`ProtocolError`]).
//! - [`decode`]: [`FrameDecoder`], a general bounded RESP2/RESP3 reply decoder for tests and
//!   tools.
//!
//! # Why this shape
//!
//! The crate only moves bytes between a caller-owned [`BytesMut`] and values. Keeping sockets
//! out makes every edge (splits at any byte, hostile lengths, garbage) testable with plain
//! buffers, property tests and a fuzzer, and lets the server own buffering and back-pressure.
//!
//! Both parsers follow the tokio-util `Decoder` contract: `Ok(Some(_))` is a complete item,
//! `Ok(None)` means "give me more bytes" and `Err` means the stream is corrupt and the
//! connection should end. Both remember how far they got, so bytes are never rescanned when a
//! long line or a huge bulk arrives in pieces, and every length read from the wire is checked
//! against a cap before it is used for anything (allocation, arithmetic, slicing). Nothing in
//! this crate indexes a slice with an input-derived position without a bounds check, so no input
//! can make it panic.

pub mod decode;
pub mod double;
pub mod encode;
pub mod frame;
mod number;
pub mod request;

pub use bytes::{Bytes, BytesMut};
pub use decode::{DecodeError, DecoderLimits, FrameDecoder};
pub use double::format_double;
pub use encode::{
    encode, encode_array_header, encode_bulk, encode_error, encode_integer, encode_null,
    encode_simple,
};
pub use frame::Frame;
pub use number::string2ll;
pub use request::{Limits, ProtocolError, RequestParser};
