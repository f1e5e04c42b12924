//! The reply value model.
//!
//! [`Frame`] is a RESP3 superset: the server always builds the richest form (a `Map`, a
//! `Double`, a `Boolean`) and the encoder decides per connection how it goes on the wire, so
//! command code never branches on the protocol version. The RESP2 downgrades are those of
//! Redis's `networking.c` (`addReplyMapLen` becomes a flat array, `addReplyDouble` a bulk
//! string, `addReplyBool` an integer, ...); see [`crate::encode()`].

use std::fmt;

use bytes::Bytes;

/// A RESP value as the server replies with it (RESP3 superset; RESP2 encoding downgrades).
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+OK`. CR and LF cannot be sent in a status line; the encoder turns them into spaces.
    Simple(String),
    /// `-ERR ...`: the text without the leading `-` and without CRLF, e.g. `"ERR syntax error"`.
    Error(String),
    /// `:1`
    Integer(i64),
    /// `$3\r\nfoo`
    Bulk(Bytes),
    /// RESP2 `$-1`, RESP3 `_`.
    Null,
    /// RESP2 `*-1`, RESP3 `_`.
    NullArray,
    /// `*N`
    Array(Vec<Frame>),
    /// RESP3 `%N`; RESP2 a flat array of 2N.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~N`; RESP2 an array.
    Set(Vec<Frame>),
    /// RESP3 `,1.5`; RESP2 a bulk string. Both spelled as Redis 7.0's `%.17g`
    /// (see [`crate::format_double`]).
    Double(f64),
    /// RESP3 `#t` / `#f`; RESP2 `:1` / `:0`.
    Boolean(bool),
    /// RESP3 `(123`; RESP2 a bulk string.
    BigNumber(String),
    /// RESP3 `=len\r\ntxt:...`; RESP2 a bulk string of the payload only. The first field is
    /// the 3-letter format (`"txt"`, `"mkd"`).
    Verbatim(String, Bytes),
    /// RESP3 `>N`; RESP2 an array (how Redis sends pub/sub messages to RESP2 clients).
    Push(Vec<Frame>),
}

impl Frame {
    /// `+OK`, the most common reply.
    pub fn ok() -> Frame {
        Frame::Simple("OK".to_owned())
    }

    /// An error reply; `msg` carries its own prefix (`"ERR ..."`, `"WRONGTYPE ..."`).
    pub fn error(msg: impl Into<String>) -> Frame {
        Frame::Error(msg.into())
    }

    /// A bulk string from anything `Bytes` converts from (`&'static str`, `String`,
    /// `Vec<u8>`, `Bytes`, ...).
    pub fn bulk(b: impl Into<Bytes>) -> Frame {
        Frame::Bulk(b.into())
    }

    /// What a decoder reading the RESP2 encoding of `self` gets back: the RESP3-only types
    /// replaced by their RESP2 downgrades, recursively. Useful to compare a RESP2 reply with
    /// the frame that produced it.
    pub fn to_resp2(&self) -> Frame {
        match self {
            Frame::Map(pairs) => Frame::Array(
                pairs
                    .iter()
                    .flat_map(|(k, v)| [k.to_resp2(), v.to_resp2()])
                    .collect(),
            ),
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
                Frame::Array(items.iter().map(Frame::to_resp2).collect())
            }
            Frame::Double(d) => Frame::Bulk(Bytes::from(crate::format_double(*d))),
            Frame::Boolean(b) => Frame::Integer(i64::from(*b)),
            Frame::BigNumber(n) => Frame::Bulk(Bytes::from(n.clone().into_bytes())),
            Frame::Verbatim(_, payload) => Frame::Bulk(payload.clone()),
            other => other.clone(),
        }
    }
}

impl From<&'static str> for Frame {
    fn from(s: &'static str) -> Frame {
        Frame::bulk(s)
    }
}

impl From<i64> for Frame {
    fn from(n: i64) -> Frame {
        Frame::Integer(n)
    }
}

/// A redis-cli-like rendering, handy in test failure messages (not a wire format).
impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, open: &str, items: &[Frame]) -> fmt::Result {
            f.write_str(open)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str("]")
        }
        match self {
            Frame::Simple(s) => write!(f, "{s}"),
            Frame::Error(s) => write!(f, "(error) {s}"),
            Frame::Integer(n) => write!(f, "(integer) {n}"),
            Frame::Bulk(b) => write!(f, "\"{}\"", b.escape_ascii()),
            Frame::Null | Frame::NullArray => f.write_str("(nil)"),
            Frame::Array(items) => list(f, "[", items),
            Frame::Set(items) => list(f, "set[", items),
            Frame::Push(items) => list(f, "push[", items),
            Frame::Map(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} => {v}")?;
                }
                f.write_str("}")
            }
            Frame::Double(d) => write!(f, "(double) {}", crate::format_double(*d)),
            Frame::Boolean(b) => write!(f, "({b})"),
            Frame::BigNumber(n) => write!(f, "(big number) {n}"),
            Frame::Verbatim(format, payload) => {
                write!(f, "{format}:\"{}\"", payload.escape_ascii())
            }
        }
    }
}
