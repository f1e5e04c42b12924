//! The request parser: what clients send, as Redis 7.0 reads it.
//!
//! A port of `processInputBuffer` / `processMultibulkBuffer` / `processInlineBuffer` from
//! Redis's `networking.c`, including its quirks, because clients and tests probe them:
//!
//! - A request starting with `*` is multibulk, anything else is an inline command line.
//! - Lengths are read with `string2ll`, so `*01`, `*+1`, `*-0` and `$-1` are errors, while any
//!   negative or zero multibulk count (`*-1`, `*0`, `*-5`) is an empty command the caller skips.
//! - A length line ends at the first `\r`; Redis then skips two bytes without checking that the
//!   second is `\n`, and skips the two bytes after a bulk's data unchecked too. We do the same,
//!   so a stream Redis accepts is accepted here.
//! - A line that is still unterminated when more than `max_inline_len` bytes are buffered is an
//!   error ("too big inline request", "too big mbulk count string", "too big bulk count
//!   string"); a terminated line is parsed whatever its length, as Redis does. The outcome for
//!   an oversized line thus depends on how much the caller had read, exactly as in Redis, which
//!   reads 16 KiB at a time: to behave like Redis, call [`RequestParser::parse`] after each read.
//! - An inline line ends at `\n`, a `\r` just before it is dropped, and the line is split with
//!   `sdssplitargs` rules (quotes, `\xHH` and C escapes in double quotes, `\'` in single quotes,
//!   a closing quote must be followed by a space or the end).
//!
//! Deliberate deviation: Redis scans with `strchr`, so a NUL byte in an inline line or a length
//! line makes it wait for a terminator it never sees until the "too big" limit; here NUL is an
//! ordinary byte (the line is parsed, the NUL stays in the argument or makes the length
//! invalid).
//!
//! # Resumability without rescanning
//!
//! The parser consumes each complete argument from the front of the caller's buffer as soon as
//! it has it and keeps the partial command in its own state, so a command split anywhere
//! parses the same. For a line it remembers how many bytes were already searched for the
//! terminator (`scanned`); for a pending bulk it only compares the buffered length with the
//! announced one. Either way each byte is looked at once, so a 100 MB value arriving in pieces
//! costs linear time.
//!
//! # Memory
//!
//! - The argument vector is preallocated for at most 1024 entries whatever the announced
//!   count (as Redis's `argv_len`), so `*2147483647\r\n` costs nothing until arguments arrive.
//! - Arguments shorter than [`BIG_ARG`] are copied out of the read buffer: a stored value must
//!   not keep a whole read buffer alive. Larger ones (Redis's `PROTO_MBULK_BIG_ARG`) are split
//!   off zero-copy, and when such a bulk's header arrives the buffer reserves room for the
//!   whole bulk so the rest is read straight into place instead of by repeated doubling.

use bytes::{Buf, Bytes, BytesMut};

use crate::number::string2ll;

/// Arguments at least this long are handed out zero-copy and get their buffer space reserved
/// up front (Redis's `PROTO_MBULK_BIG_ARG`, 32 KiB).
pub const BIG_ARG: usize = 32 * 1024;

/// Above this many announced arguments an unauthenticated client is refused (Redis hardcodes
/// 10 since the CVE-2021-32675 fix).
const UNAUTH_MAX_MULTIBULK: i64 = 10;
/// Above this bulk length an unauthenticated client is refused (Redis hardcodes 16384).
const UNAUTH_MAX_BULK: i64 = 16384;
/// Cap on the argv preallocation (Redis: `c->argv_len = min(c->multibulklen, 1024)`).
const MAX_PREALLOC_ARGS: usize = 1024;

/// Size limits for requests, Redis's configuration knobs of the same meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `proto-max-bulk-len`: longest accepted bulk argument (default 512 MiB).
    pub max_bulk_len: u64,
    /// `PROTO_INLINE_MAX_SIZE`: how many bytes may be buffered without finding the end of an
    /// inline command or of a length line (default 64 KiB).
    pub max_inline_len: usize,
    /// Largest accepted multibulk count (default `i32::MAX`, as Redis's `INT_MAX` check).
    pub max_multibulk_len: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_inline_len: 64 * 1024,
            max_multibulk_len: i32::MAX as u64,
        }
    }
}

/// A framing error that ends the connection. `Display` is exactly the error redis-server 7.0
/// replies with before closing, without the leading `-` and the CRLF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// An inline command with no `\n` within `max_inline_len` buffered bytes.
    #[error("ERR Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// An inline command `sdssplitargs` rejects: an unclosed quote, or a closing quote
    /// followed by something other than a space.
    #[error("ERR Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A `*` line with no `\r` within `max_inline_len` buffered bytes.
    #[error("ERR Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// A `*` count that is not a canonical integer or exceeds `max_multibulk_len`.
    #[error("ERR Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// An argument that does not start with `$`. Holds the byte found; Redis prints it raw
    /// (CR and LF as spaces). `Display` shows bytes above 0x7f as the Latin-1 character of
    /// the same value, since the text must be UTF-8.
    #[error("ERR Protocol error: expected '$', got '{}'", shown_byte(*.0))]
    ExpectedDollar(u8),
    /// A `$` line with no `\r` within `max_inline_len` buffered bytes.
    #[error("ERR Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// A `$` length that is not a canonical integer, is negative, or exceeds `max_bulk_len`.
    #[error("ERR Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// More than 10 arguments announced before `AUTH`.
    #[error("ERR Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// A bulk longer than 16384 bytes announced before `AUTH`.
    #[error("ERR Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
}

/// Redis formats the byte with `%c` and then `addReplyErrorFormat` maps CR and LF to spaces.
fn shown_byte(b: u8) -> char {
    match b {
        b'\r' | b'\n' => ' ',
        other => char::from(other),
    }
}

/// Where the parser is inside the current command.
#[derive(Debug)]
enum State {
    /// At the first byte of a command; its type is decided by that byte.
    Start,
    /// Inside a multibulk command: `remaining` arguments still to read, and the announced
    /// length of the current one once its `$` line has been read.
    Multibulk {
        remaining: usize,
        args: Vec<Bytes>,
        bulk_len: Option<usize>,
        /// `args[..detached]` no longer point into a read buffer (see
        /// [`RequestParser::detach_partial`]).
        detached: usize,
    },
}

/// Resumable request parser for what clients send: multibulk (`*N\r\n$len\r\n...`) and inline
/// commands (`SET a b\r\n`, quotes and escapes as Redis's `sdssplitargs`).
///
/// One per connection. Feed it the connection's read buffer after every read; see the
/// [module docs](self) for the rules.
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    unauthenticated: bool,
    state: State,
    /// Bytes at the front of the buffer already searched, without success, for the end of the
    /// line being read. Reset whenever bytes are consumed.
    scanned: usize,
    /// Hand out small arguments as slices of the read buffer instead of copies (see
    /// [`RequestParser::set_zero_copy`]).
    zero_copy: bool,
}

impl RequestParser {
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            unauthenticated: false,
            state: State::Start,
            scanned: 0,
            zero_copy: false,
        }
    }

    /// With `true`, arguments of any size are slices of the read buffer (a reference count, no
    /// allocation, no copy). Only for a caller that copies whatever it keeps beyond the command:
    /// a slice kept alive keeps the whole read buffer alive. forkdb's server copies every key and
    /// value it stores, so it parses this way; the default (`false`) copies small arguments.
    pub fn set_zero_copy(&mut self, yes: bool) {
        self.zero_copy = yes;
    }

    /// Change the limits (`CONFIG SET proto-max-bulk-len`); applies from the next length read.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Tell the parser whether the client still needs `AUTH`: Redis then caps the multibulk
    /// count at 10 and bulk lengths at 16384 with its "unauthenticated ..." errors.
    pub fn set_unauthenticated(&mut self, yes: bool) {
        self.unauthenticated = yes;
    }

    /// The announced length of the bulk argument being read, once its `$len` line is in and
    /// until all its bytes are (Redis's `c->bulklen`). A caller that resizes its read buffer
    /// keeps room for it, as `clientsCronResizeQueryBuffer` does.
    pub fn pending_bulk_len(&self) -> Option<usize> {
        match &self.state {
            State::Multibulk { bulk_len, .. } => *bulk_len,
            State::Start => None,
        }
    }

    /// Copies the arguments of the incomplete command that are slices of the read buffer
    /// (zero-copy, shorter than [`BIG_ARG`]) into their own allocations, each argument once.
    ///
    /// Call it when a read ends inside a command. Those slices would otherwise keep the
    /// caller's buffer shared until the command completes, so that the next read could not
    /// reuse the buffer in place (`BytesMut::try_reclaim`) and `reserve` would allocate a new
    /// one of a different size each time, leaving the old one to be freed a moment later. Under
    /// a pipelined load that split commands across reads (100k ZADDs of 100 members), glibc
    /// carved the freed 16 KiB buffers into the values stored next and kept each one's ~1 KiB
    /// tail free for good: 35 bytes of RSS a key on 4 connections, 85 on one (2 with this).
    /// Copying the few small arguments read so far costs less than the buffer it saves. Big
    /// arguments stay where they are: their buffer was sized for them.
    pub fn detach_partial(&mut self) {
        if !self.zero_copy {
            return;
        }
        if let State::Multibulk { args, detached, .. } = &mut self.state {
            for a in args.iter_mut().skip(*detached) {
                if a.len() < BIG_ARG {
                    *a = Bytes::copy_from_slice(a);
                }
            }
            *detached = args.len();
        }
    }

    /// Parse one command from the front of `buf`, consuming its bytes.
    ///
    /// - `Ok(Some(args))`: a complete command. `args` is empty for an empty inline line or
    ///   a `*0` / `*-1` command; the caller skips those.
    /// - `Ok(None)`: more bytes are needed. Bytes of already complete arguments may have been
    ///   consumed; the parser keeps them, so call again with the same buffer plus new data.
    /// - `Err(e)`: the stream is broken; reply with `-{e}\r\n` and close the connection. The
    ///   parser is reset, but the offending bytes stay in `buf`.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let result = self.parse_inner(buf);
        if result.is_err() {
            self.state = State::Start;
            self.scanned = 0;
        }
        result
    }

    fn parse_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if let State::Start = self.state {
            match buf.first() {
                None => return Ok(None),
                Some(b'*') => match self.multibulk_count(buf)? {
                    None => return Ok(None),
                    Some(None) => return Ok(Some(Vec::new())),
                    Some(Some(count)) => {
                        self.state = State::Multibulk {
                            remaining: count,
                            args: Vec::with_capacity(count.min(MAX_PREALLOC_ARGS)),
                            bulk_len: None,
                            detached: 0,
                        };
                    }
                },
                Some(_) => return self.inline(buf),
            }
        }
        self.multibulk_args(buf)
    }

    /// Find `needle` in `buf`, searching only bytes not searched before. On a miss the
    /// searched length is remembered; on a hit the caller consumes the line and resets it.
    fn find(&mut self, buf: &[u8], needle: u8) -> Option<usize> {
        let from = self.scanned.min(buf.len());
        let found = buf
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| b == needle))
            .map(|i| from + i);
        self.scanned = found.unwrap_or(buf.len());
        found
    }

    fn consume(&mut self, buf: &mut BytesMut, n: usize) {
        buf.advance(n.min(buf.len()));
        self.scanned = 0;
    }

    /// `processInlineBuffer`.
    fn inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(newline) = self.find(buf, b'\n') else {
            if buf.len() > self.limits.max_inline_len {
                return Err(ProtocolError::TooBigInlineRequest);
            }
            return Ok(None);
        };
        let mut line = buf.get(..newline).unwrap_or(&[]);
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        let args = split_args(line).ok_or(ProtocolError::UnbalancedQuotes)?;
        self.consume(buf, newline + 1);
        Ok(Some(args))
    }

    /// Read a length line starting with its type byte: `Ok(Some((first byte, number, bytes
    /// to consume)))`, or `Ok(None)` when incomplete. Like Redis, the line ends at the first `\r` and needs one
    /// more byte (unchecked) after it. `too_big` is reported when no `\r` is in sight and more
    /// than `max_inline_len` bytes are buffered.
    fn length_line(
        &mut self,
        buf: &mut BytesMut,
        too_big: ProtocolError,
    ) -> Result<Option<(u8, Option<i64>, usize)>, ProtocolError> {
        let Some(cr) = self.find(buf, b'\r') else {
            if buf.len() > self.limits.max_inline_len {
                return Err(too_big);
            }
            return Ok(None);
        };
        let line_len = cr.saturating_add(2);
        if buf.len() < line_len {
            // Search again from the `\r` itself next time.
            self.scanned = cr;
            return Ok(None);
        }
        let kind = buf.first().copied().unwrap_or(0);
        let number = buf.get(1..cr).and_then(string2ll);
        Ok(Some((kind, number, line_len)))
    }

    /// The `*N` line: `Some(None)` for an empty command, `Some(Some(n))` to read `n` args.
    fn multibulk_count(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Option<usize>>, ProtocolError> {
        let Some((_, count, line_len)) =
            self.length_line(buf, ProtocolError::TooBigMultibulkCount)?
        else {
            return Ok(None);
        };
        let count = match count {
            Some(n) if n <= 0 || n.unsigned_abs() <= self.limits.max_multibulk_len => n,
            _ => return Err(ProtocolError::InvalidMultibulkLength),
        };
        if count > UNAUTH_MAX_MULTIBULK && self.unauthenticated {
            return Err(ProtocolError::UnauthenticatedMultibulkLength);
        }
        self.consume(buf, line_len);
        if count <= 0 {
            return Ok(Some(None));
        }
        let count = usize::try_from(count).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
        Ok(Some(Some(count)))
    }

    /// The arguments of a multibulk command, resuming wherever the last call stopped.
    fn multibulk_args(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            let (remaining, bulk_len) = match &self.state {
                State::Multibulk {
                    remaining,
                    bulk_len,
                    ..
                } => (*remaining, *bulk_len),
                State::Start => return Ok(None),
            };
            if remaining == 0 {
                let State::Multibulk { args, .. } =
                    std::mem::replace(&mut self.state, State::Start)
                else {
                    return Ok(None);
                };
                return Ok(Some(args));
            }
            match bulk_len {
                None => {
                    let Some(len) = self.bulk_header(buf)? else {
                        return Ok(None);
                    };
                    if let State::Multibulk { bulk_len, .. } = &mut self.state {
                        *bulk_len = Some(len);
                    }
                }
                Some(len) => {
                    let Some(arg) = take_bulk(buf, len, self.zero_copy) else {
                        return Ok(None);
                    };
                    if let State::Multibulk {
                        remaining,
                        args,
                        bulk_len,
                        ..
                    } = &mut self.state
                    {
                        args.push(arg);
                        *remaining = remaining.saturating_sub(1);
                        *bulk_len = None;
                    }
                }
            }
        }
    }

    /// The `$len` line of the next argument.
    fn bulk_header(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, ProtocolError> {
        let Some((kind, len, line_len)) = self.length_line(buf, ProtocolError::TooBigBulkCount)?
        else {
            return Ok(None);
        };
        if kind != b'$' {
            return Err(ProtocolError::ExpectedDollar(kind));
        }
        let len = match len {
            Some(n) if n >= 0 && n.unsigned_abs() <= self.limits.max_bulk_len => n,
            _ => return Err(ProtocolError::InvalidBulkLength),
        };
        if len > UNAUTH_MAX_BULK && self.unauthenticated {
            return Err(ProtocolError::UnauthenticatedBulkLength);
        }
        let len = usize::try_from(len).map_err(|_| ProtocolError::InvalidBulkLength)?;
        self.consume(buf, line_len);
        if len >= BIG_ARG {
            // The bulk plus its CRLF; reserving once lets the caller read the rest in place.
            let want = len.saturating_add(2);
            if let Some(missing) = want.checked_sub(buf.len()) {
                buf.reserve(missing);
            }
        }
        Ok(Some(len))
    }
}

/// The `len` bytes of a bulk and the two (unchecked, as in Redis) bytes after them, once all
/// are buffered.
fn take_bulk(buf: &mut BytesMut, len: usize, zero_copy: bool) -> Option<Bytes> {
    let total = len.checked_add(2)?;
    if buf.len() < total {
        return None;
    }
    let arg = if len >= BIG_ARG || zero_copy {
        buf.split_to(len).freeze()
    } else {
        let arg = Bytes::copy_from_slice(buf.get(..len)?);
        buf.advance(len);
        arg
    };
    buf.advance(2);
    Some(arg)
}

/// C's `isspace` in the C locale, which `sdssplitargs` uses to skip blanks between arguments.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_value(b: Option<&u8>) -> Option<u8> {
    match b? {
        d @ b'0'..=b'9' => Some(d - b'0'),
        l @ b'a'..=b'f' => Some(l - b'a' + 10),
        u @ b'A'..=b'F' => Some(u - b'A' + 10),
        _ => None,
    }
}

/// Redis's `sdssplitargs` (`sds.c`) over a byte slice; `None` where it returns NULL
/// ("unbalanced quotes"). The end of the slice plays the role of C's terminating NUL.
///
/// Quirks kept: only space, `\t`, `\r`, `\n` end an unquoted token (so `\v` and `\f` are
/// token bytes, though skipped between tokens); a quote in the middle of a token opens a
/// quoted section (`a"b c"` is the one token `ab c`, `a"b c"d` is an error since a closing
/// quote must be followed by a space or the end); `\x` followed by anything but two hex digits is just `x`; `''` escapes
/// nothing (`'it''s'` is an error, `'it\'s'` is `it's`).
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut p = 0usize;
    loop {
        while line.get(p).is_some_and(|&b| is_c_space(b)) {
            p += 1;
        }
        if p >= line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let c = line.get(p).copied();
            let next = line.get(p + 1).copied();
            if in_double {
                match c {
                    None => return None,
                    Some(b'\\') if next == Some(b'x') => {
                        match (hex_value(line.get(p + 2)), hex_value(line.get(p + 3))) {
                            (Some(hi), Some(lo)) => {
                                current.push(hi * 16 + lo);
                                p += 3;
                            }
                            _ => {
                                current.push(b'x');
                                p += 1;
                            }
                        }
                    }
                    Some(b'\\') if next.is_some() => {
                        p += 1;
                        current.push(match next {
                            Some(b'n') => b'\n',
                            Some(b'r') => b'\r',
                            Some(b't') => b'\t',
                            Some(b'b') => 0x08,
                            Some(b'a') => 0x07,
                            Some(other) => other,
                            None => 0,
                        });
                    }
                    Some(b'"') => {
                        if next.is_some_and(|n| !is_c_space(n)) {
                            return None;
                        }
                        p += 1;
                        break;
                    }
                    Some(other) => current.push(other),
                }
            } else if in_single {
                match c {
                    None => return None,
                    Some(b'\\') if next == Some(b'\'') => {
                        p += 1;
                        current.push(b'\'');
                    }
                    Some(b'\'') => {
                        if next.is_some_and(|n| !is_c_space(n)) {
                            return None;
                        }
                        p += 1;
                        break;
                    }
                    Some(other) => current.push(other),
                }
            } else {
                match c {
                    None => break,
                    Some(b' ' | b'\n' | b'\r' | b'\t') => {
                        p += 1;
                        break;
                    }
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(other) => current.push(other),
                }
            }
            p += 1;
        }
        args.push(Bytes::from(current));
    }
}
