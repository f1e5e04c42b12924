//! A general, bounded RESP2/RESP3 decoder for replies, for tests and tools (a client, a
//! replica link, the fuzz target).
//!
//! # Architecture
//!
//! The decoder works token by token: a line (`+OK`, `:1`, `*3`, `$5`, ...) or the body of a
//! blob (`$`, `!`, `=`). Each complete token is consumed from the front of the caller's buffer
//! at once, so nothing is ever rescanned:
//!
//! - an aggregate header pushes a [`Partial`] on an explicit stack (no recursion, so nesting
//!   depth is a counter, capped by [`DecoderLimits::max_depth`]);
//! - a scalar is handed to the innermost open aggregate, and every aggregate it completes is
//!   popped and handed to its parent in turn; when the stack empties, the frame is returned;
//! - a blob header records the pending length, and the body is taken once that many bytes
//!   (plus CRLF) are buffered; only lengths are compared while waiting;
//! - an unterminated line remembers how far it was searched.
//!
//! Every number read from the wire is checked against a cap before it sizes anything: blob
//! lengths against `max_bulk_len`, aggregate counts against `max_aggregate_len` (and
//! preallocation is capped at 1024 elements whatever the count), line lengths against
//! `max_line_len`.
//!
//! Unlike the request parser, which mirrors Redis's leniency, this decoder is strict: a
//! missing CRLF after a blob, a non-canonical number or an unknown type byte is an error that
//! says what was expected, what was found and at which stream offset.
//!
//! RESP3 attributes (`|`) are parsed and dropped: [`Frame`] has no place for them and they
//! annotate the value that follows, which is returned. Blob errors (`!`) become
//! [`Frame::Error`]; text that is not UTF-8 in simple strings, errors and verbatim formats is
//! converted lossily.

use bytes::{Buf, BytesMut};

use crate::frame::Frame;
use crate::number::string2ll;

/// Bounds applied to everything the decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Longest blob (`$`, `!`, `=`) accepted (default 512 MiB, Redis's `proto-max-bulk-len`).
    pub max_bulk_len: u64,
    /// Largest aggregate count accepted (default `i32::MAX`; for a map, pairs).
    pub max_aggregate_len: u64,
    /// Deepest nesting of aggregates (default 128).
    pub max_depth: usize,
    /// Longest line (simple string, error, number, header) without its CRLF (default 1 MiB).
    pub max_line_len: usize,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_bulk_len: 512 * 1024 * 1024,
            max_aggregate_len: i32::MAX as u64,
            max_depth: 128,
            max_line_len: 1024 * 1024,
        }
    }
}

/// Preallocation cap for aggregates: the announced count is only a claim until the elements
/// arrive.
const MAX_PREALLOC: usize = 1024;
/// Blobs at least this long get their buffer space reserved when the header arrives.
const RESERVE_AT: usize = 32 * 1024;

/// Why the byte stream is not valid RESP. Each variant says where (offset of the token from
/// the start of the stream) and what was found.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "unknown RESP type byte {found:?} at offset {offset}; expected one of +-:$*_,#(!=%~>|"
    )]
    InvalidType { found: char, offset: u64 },
    #[error("invalid {what} {found:?} in '{kind}' line at offset {offset}")]
    InvalidValue {
        kind: char,
        what: &'static str,
        found: String,
        offset: u64,
    },
    #[error("'{kind}' length {len} at offset {offset} exceeds the limit {max}")]
    TooLong {
        kind: char,
        len: i64,
        max: u64,
        offset: u64,
    },
    #[error("line at offset {offset} has no CRLF within {max} bytes")]
    LineTooLong { max: usize, offset: u64 },
    #[error("expected \"\\r\\n\" at offset {offset}, found {found:?}")]
    MissingCrlf { found: String, offset: u64 },
    #[error("aggregate at offset {offset} nests deeper than {max} levels")]
    TooDeep { max: usize, offset: u64 },
    #[error("verbatim string payload at offset {offset} has no \"xxx:\" format prefix (found {found:?})")]
    InvalidVerbatim { found: String, offset: u64 },
    #[error("stream ended inside a frame ({buffered} bytes buffered, {open} aggregates open)")]
    UnexpectedEof { buffered: usize, open: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggKind {
    Array,
    Map,
    Set,
    Push,
    Attribute,
}

/// An aggregate whose elements are still arriving. Maps (and attributes) collect keys and
/// values alternately and are paired when complete.
#[derive(Debug)]
struct Partial {
    kind: AggKind,
    remaining: usize,
    items: Vec<Frame>,
}

impl Partial {
    fn finish(self) -> Frame {
        match self.kind {
            AggKind::Array => Frame::Array(self.items),
            AggKind::Set => Frame::Set(self.items),
            AggKind::Push => Frame::Push(self.items),
            AggKind::Map | AggKind::Attribute => {
                let mut pairs = Vec::with_capacity(self.items.len() / 2);
                let mut it = self.items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                Frame::Map(pairs)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum BlobKind {
    Bulk,
    Error,
    Verbatim,
}

/// General RESP2/RESP3 decoder with the tokio-util `Decoder` contract. See the
/// [module docs](self).
#[derive(Debug)]
pub struct FrameDecoder {
    limits: DecoderLimits,
    stack: Vec<Partial>,
    pending: Option<(BlobKind, usize)>,
    /// Bytes at the front of the buffer already searched for the current line's CR.
    scanned: usize,
    /// Stream offset of the front of the buffer, for error messages.
    offset: u64,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::with_limits(DecoderLimits::default())
    }

    pub fn with_limits(limits: DecoderLimits) -> Self {
        FrameDecoder {
            limits,
            stack: Vec::new(),
            pending: None,
            scanned: 0,
            offset: 0,
        }
    }

    /// `Ok(Some(frame))`: a complete frame was consumed from the front of `buf`.
    /// `Ok(None)`: more bytes are needed (parts of the frame may have been consumed; the
    /// decoder keeps them). `Err`: the stream is corrupt; the decoder is reset.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let result = self.decode_inner(buf);
        if result.is_err() {
            self.stack.clear();
            self.pending = None;
            self.scanned = 0;
        }
        result
    }

    /// Like [`decode`](Self::decode) when the stream has ended: leftover bytes or a partly
    /// received frame are an error rather than "need more".
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() && self.stack.is_empty() && self.pending.is_none() => Ok(None),
            None => Err(DecodeError::UnexpectedEof {
                buffered: buf.len(),
                open: self.stack.len(),
            }),
        }
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        loop {
            let step = match self.pending {
                Some((kind, len)) => match self.blob(buf, kind, len)? {
                    Some(frame) => {
                        self.pending = None;
                        Step::Value(frame)
                    }
                    None => Step::NeedMore,
                },
                None => self.line_token(buf)?,
            };
            match step {
                Step::NeedMore => return Ok(None),
                Step::Continue => {}
                Step::Value(frame) => {
                    if let Some(frame) = self.complete(frame) {
                        return Ok(Some(frame));
                    }
                }
            }
        }
    }

    fn advance(&mut self, buf: &mut BytesMut, n: usize) {
        let n = n.min(buf.len());
        buf.advance(n);
        self.offset = self.offset.saturating_add(n as u64);
        self.scanned = 0;
    }

    /// Hand a finished value to the innermost open aggregate, closing every aggregate it
    /// completes; returns the top-level frame once there is one.
    fn complete(&mut self, mut frame: Frame) -> Option<Frame> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Some(frame);
            };
            top.items.push(frame);
            top.remaining = top.remaining.saturating_sub(1);
            if top.remaining > 0 {
                return None;
            }
            let done = self.stack.pop()?;
            if done.kind == AggKind::Attribute {
                // Attributes annotate the next value and are not elements themselves.
                return None;
            }
            frame = done.finish();
        }
    }

    /// Read one line token: a scalar, a null or empty aggregate (`Value`), an aggregate or
    /// blob header (`Continue`), or `NeedMore`.
    fn line_token(&mut self, buf: &mut BytesMut) -> Result<Step, DecodeError> {
        let Some(&kind) = buf.first() else {
            return Ok(Step::NeedMore);
        };
        let offset = self.offset;
        if !b"+-:$*_,#(!=%~>|".contains(&kind) {
            return Err(DecodeError::InvalidType {
                found: char::from(kind),
                offset,
            });
        }
        let from = self.scanned.max(1).min(buf.len());
        let cr = buf
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\r'))
            .map(|i| from + i);
        let Some(cr) = cr else {
            self.scanned = buf.len();
            if buf.len() > self.limits.max_line_len.saturating_add(1) {
                return Err(DecodeError::LineTooLong {
                    max: self.limits.max_line_len,
                    offset,
                });
            }
            return Ok(Step::NeedMore);
        };
        if cr > self.limits.max_line_len.saturating_add(1) {
            return Err(DecodeError::LineTooLong {
                max: self.limits.max_line_len,
                offset,
            });
        }
        let Some(&after) = buf.get(cr + 1) else {
            self.scanned = cr;
            return Ok(Step::NeedMore);
        };
        if after != b'\n' {
            return Err(DecodeError::MissingCrlf {
                found: String::from_utf8_lossy(buf.get(cr..cr + 2).unwrap_or(&[])).into(),
                offset: offset.saturating_add(cr as u64),
            });
        }
        let line = buf.get(1..cr).unwrap_or(&[]);
        let kind_char = char::from(kind);
        let invalid = |what: &'static str| DecodeError::InvalidValue {
            kind: kind_char,
            what,
            found: String::from_utf8_lossy(line).into_owned(),
            offset,
        };

        let value: Frame = match kind {
            b'+' => Frame::Simple(String::from_utf8_lossy(line).into_owned()),
            b'-' => Frame::Error(String::from_utf8_lossy(line).into_owned()),
            b':' => Frame::Integer(parse_integer(line).ok_or_else(|| invalid("integer"))?),
            b'_' => {
                if !line.is_empty() {
                    return Err(invalid("null"));
                }
                Frame::Null
            }
            b',' => Frame::Double(parse_double(line).ok_or_else(|| invalid("double"))?),
            b'#' => Frame::Boolean(match line {
                b"t" => true,
                b"f" => false,
                _ => return Err(invalid("boolean")),
            }),
            b'(' => {
                let digits = line.strip_prefix(b"-").unwrap_or(line);
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return Err(invalid("big number"));
                }
                Frame::BigNumber(String::from_utf8_lossy(line).into_owned())
            }
            _ => {
                let len = string2ll(line).ok_or_else(|| invalid("length"))?;
                let header = self.header(kind, len, offset)?;
                let line_len = cr + 2;
                self.advance(buf, line_len);
                if let Some(blob) = header.blob {
                    self.pending = Some(blob);
                    if blob.1 >= RESERVE_AT {
                        if let Some(missing) = blob.1.saturating_add(2).checked_sub(buf.len()) {
                            buf.reserve(missing);
                        }
                    }
                }
                return Ok(match header.immediate {
                    Some(frame) => Step::Value(frame),
                    None => Step::Continue,
                });
            }
        };
        self.advance(buf, cr + 2);
        Ok(Step::Value(value))
    }

    /// Interpret a length header; opens an aggregate, starts a blob, or yields an immediate
    /// value (nulls, empty aggregates).
    fn header(&mut self, kind: u8, len: i64, offset: u64) -> Result<Header, DecodeError> {
        let kind_char = char::from(kind);
        let too_long = |max: u64| DecodeError::TooLong {
            kind: kind_char,
            len,
            max,
            offset,
        };
        let negative = || DecodeError::InvalidValue {
            kind: kind_char,
            what: "length",
            found: len.to_string(),
            offset,
        };
        match kind {
            b'$' | b'!' | b'=' => {
                if len == -1 && kind == b'$' {
                    return Ok(Header::value(Frame::Null));
                }
                if len < 0 {
                    return Err(negative());
                }
                if len.unsigned_abs() > self.limits.max_bulk_len {
                    return Err(too_long(self.limits.max_bulk_len));
                }
                let len = usize::try_from(len).map_err(|_| too_long(self.limits.max_bulk_len))?;
                let blob_kind = match kind {
                    b'$' => BlobKind::Bulk,
                    b'!' => BlobKind::Error,
                    _ => BlobKind::Verbatim,
                };
                Ok(Header {
                    immediate: None,
                    blob: Some((blob_kind, len)),
                })
            }
            _ => {
                let agg = match kind {
                    b'*' => AggKind::Array,
                    b'%' => AggKind::Map,
                    b'~' => AggKind::Set,
                    b'>' => AggKind::Push,
                    _ => AggKind::Attribute,
                };
                if len == -1 && agg == AggKind::Array {
                    return Ok(Header::value(Frame::NullArray));
                }
                if len < 0 {
                    return Err(negative());
                }
                if len.unsigned_abs() > self.limits.max_aggregate_len {
                    return Err(too_long(self.limits.max_aggregate_len));
                }
                let count =
                    usize::try_from(len).map_err(|_| too_long(self.limits.max_aggregate_len))?;
                // Maps and attributes hold a key and a value per entry.
                let elements = if matches!(agg, AggKind::Map | AggKind::Attribute) {
                    count.checked_mul(2)
                } else {
                    Some(count)
                }
                .ok_or_else(|| too_long(self.limits.max_aggregate_len))?;
                if elements == 0 {
                    let partial = Partial {
                        kind: agg,
                        remaining: 0,
                        items: Vec::new(),
                    };
                    if agg == AggKind::Attribute {
                        return Ok(Header::none());
                    }
                    return Ok(Header::value(partial.finish()));
                }
                if self.stack.len() >= self.limits.max_depth {
                    return Err(DecodeError::TooDeep {
                        max: self.limits.max_depth,
                        offset,
                    });
                }
                self.stack.push(Partial {
                    kind: agg,
                    remaining: elements,
                    items: Vec::with_capacity(elements.min(MAX_PREALLOC)),
                });
                Ok(Header::none())
            }
        }
    }

    /// The body of a blob once `len` bytes and its CRLF are buffered.
    fn blob(
        &mut self,
        buf: &mut BytesMut,
        kind: BlobKind,
        len: usize,
    ) -> Result<Option<Frame>, DecodeError> {
        let Some(total) = len.checked_add(2) else {
            return Err(DecodeError::TooLong {
                kind: '$',
                len: i64::MAX,
                max: self.limits.max_bulk_len,
                offset: self.offset,
            });
        };
        if buf.len() < total {
            return Ok(None);
        }
        let crlf = buf.get(len..total).unwrap_or(&[]);
        if crlf != b"\r\n" {
            return Err(DecodeError::MissingCrlf {
                found: String::from_utf8_lossy(crlf).into_owned(),
                offset: self.offset.saturating_add(len as u64),
            });
        }
        let offset = self.offset;
        let data = buf.split_to(len).freeze();
        self.offset = self.offset.saturating_add(len as u64);
        self.advance(buf, 2);
        let frame = match kind {
            BlobKind::Bulk => Frame::Bulk(data),
            BlobKind::Error => Frame::Error(String::from_utf8_lossy(&data).into_owned()),
            BlobKind::Verbatim => {
                if data.get(3) != Some(&b':') {
                    return Err(DecodeError::InvalidVerbatim {
                        found: String::from_utf8_lossy(
                            data.get(..data.len().min(4)).unwrap_or(&[]),
                        )
                        .into_owned(),
                        offset,
                    });
                }
                let format = String::from_utf8_lossy(data.get(..3).unwrap_or(&[])).into_owned();
                Frame::Verbatim(format, data.slice(4..))
            }
        };
        Ok(Some(frame))
    }
}

/// What one line token amounted to.
enum Step {
    /// The buffer ends inside the token.
    NeedMore,
    /// A header was consumed; nothing to hand on yet.
    Continue,
    /// A value to hand to the innermost open aggregate (or to return at top level).
    Value(Frame),
}

/// What a header line turned into.
struct Header {
    /// A value complete at its header: a null, an empty aggregate.
    immediate: Option<Frame>,
    /// A blob whose body is to be read next.
    blob: Option<(BlobKind, usize)>,
}

impl Header {
    fn value(frame: Frame) -> Header {
        Header {
            immediate: Some(frame),
            blob: None,
        }
    }

    fn none() -> Header {
        Header {
            immediate: None,
            blob: None,
        }
    }
}

fn parse_integer(line: &[u8]) -> Option<i64> {
    std::str::from_utf8(line).ok()?.parse().ok()
}

/// RESP3 doubles: a decimal or exponent number, or `inf` / `-inf` / `nan` as Redis writes them.
fn parse_double(line: &[u8]) -> Option<f64> {
    match line {
        b"inf" | b"+inf" => Some(f64::INFINITY),
        b"-inf" => Some(f64::NEG_INFINITY),
        b"nan" | b"-nan" => Some(f64::NAN),
        _ => {
            // Rust also accepts "infinity" and "NaN" spellings; RESP does not.
            if line.iter().any(u8::is_ascii_alphabetic)
                && !line.iter().any(|&b| b == b'e' || b == b'E')
            {
                return None;
            }
            std::str::from_utf8(line).ok()?.parse().ok()
        }
    }
}
