//! `Frame` → bytes.
//!
//! One function, [`encode()`], handles both protocol versions: the server builds RESP3-rich
//! frames and each connection passes its `HELLO` version. RESP2 downgrades follow Redis 7.0's
//! `networking.c` so a RESP2 client sees byte-for-byte what Redis would send:
//!
//! ```text
//! Frame          RESP3                    RESP2
//! Null           _\r\n                    $-1\r\n
//! NullArray      _\r\n                    *-1\r\n
//! Map(n pairs)   %n\r\n k v ...           *2n\r\n k v ...
//! Set            ~n\r\n ...               *n\r\n ...
//! Push           >n\r\n ...               *n\r\n ...
//! Double         ,1.5\r\n  ,inf\r\n       $3\r\n1.5\r\n  $3\r\ninf\r\n
//! Boolean        #t\r\n                   :1\r\n
//! BigNumber      (123\r\n                 $3\r\n123\r\n
//! Verbatim       =7\r\ntxt:foo\r\n        $3\r\nfoo\r\n
//! ```
//!
//! Encoding cannot fail and cannot produce a broken stream: text that would end a line early
//! (CR or LF in a status, error or big number) is replaced by spaces, as Redis's
//! `addReplyErrorFormat` does, and a verbatim format that is not three plain bytes becomes
//! `txt`.
//!
//! The `encode_*` fast paths exist because most replies are a single bulk, integer, status or
//! array header; they write directly into the output buffer without building a `Frame`.

use bytes::{BufMut, BytesMut};

use crate::double::write_double;
use crate::frame::Frame;
use crate::number::{put_i64, put_usize};

const CRLF: &[u8] = b"\r\n";

/// Append the encoding of `frame` to `out`. `resp3 == false` gives RESP2 with the downgrades
/// listed in the [module docs](self).
pub fn encode(frame: &Frame, resp3: bool, out: &mut BytesMut) {
    match frame {
        Frame::Simple(s) => encode_simple(s, out),
        Frame::Error(s) => encode_error(s, out),
        Frame::Integer(n) => encode_integer(*n, out),
        Frame::Bulk(b) => encode_bulk(b, out),
        Frame::Null => encode_null(resp3, out),
        Frame::NullArray => out.put_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
        Frame::Array(items) => {
            encode_array_header(items.len(), out);
            encode_all(items, resp3, out);
        }
        Frame::Map(pairs) => {
            if resp3 {
                header(b'%', pairs.len(), out);
            } else {
                // A Vec of pairs cannot hold more than isize::MAX bytes, so 2 * len fits.
                encode_array_header(pairs.len().saturating_mul(2), out);
            }
            for (k, v) in pairs {
                encode(k, resp3, out);
                encode(v, resp3, out);
            }
        }
        Frame::Set(items) => {
            header(if resp3 { b'~' } else { b'*' }, items.len(), out);
            encode_all(items, resp3, out);
        }
        Frame::Push(items) => {
            header(if resp3 { b'>' } else { b'*' }, items.len(), out);
            encode_all(items, resp3, out);
        }
        Frame::Double(d) => {
            let mut text = String::with_capacity(24);
            write_double(*d, &mut text);
            if resp3 {
                out.put_u8(b',');
                out.put_slice(text.as_bytes());
                out.put_slice(CRLF);
            } else {
                encode_bulk(text.as_bytes(), out);
            }
        }
        Frame::Boolean(b) => out.put_slice(match (resp3, b) {
            (true, true) => b"#t\r\n",
            (true, false) => b"#f\r\n",
            (false, true) => b":1\r\n",
            (false, false) => b":0\r\n",
        }),
        Frame::BigNumber(n) => {
            if resp3 {
                line(b'(', n, out);
            } else {
                encode_bulk(n.as_bytes(), out);
            }
        }
        Frame::Verbatim(format, payload) => {
            if resp3 {
                let format = match format.as_bytes() {
                    f @ [a, b, c] if [a, b, c].iter().all(|&&x| is_format_byte(x)) => f,
                    _ => b"txt",
                };
                // "fmt:" is 4 bytes; saturating keeps absurd sizes from wrapping.
                header(b'=', payload.len().saturating_add(4), out);
                out.reserve(payload.len().saturating_add(6));
                out.put_slice(format);
                out.put_u8(b':');
                out.put_slice(payload);
                out.put_slice(CRLF);
            } else {
                encode_bulk(payload, out);
            }
        }
    }
}

fn is_format_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b':'
}

fn encode_all(items: &[Frame], resp3: bool, out: &mut BytesMut) {
    for item in items {
        encode(item, resp3, out);
    }
}

fn header(kind: u8, len: usize, out: &mut BytesMut) {
    out.put_u8(kind);
    put_usize(out, len);
    out.put_slice(CRLF);
}

/// A one-line type (`+`, `-`, `(`): CR and LF would end the line early and desynchronise the
/// client, so they become spaces.
fn line(kind: u8, s: &str, out: &mut BytesMut) {
    out.reserve(s.len().saturating_add(3));
    out.put_u8(kind);
    if s.bytes().any(|b| b == b'\r' || b == b'\n') {
        out.extend(
            s.bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        out.put_slice(s.as_bytes());
    }
    out.put_slice(CRLF);
}

/// `$len\r\ndata\r\n`, what `encode(&Frame::Bulk(..))` writes.
pub fn encode_bulk(data: &[u8], out: &mut BytesMut) {
    // One reserve for the whole reply: header digits (at most 20) + 2 CRLFs + `$`.
    out.reserve(data.len().saturating_add(25));
    header(b'$', data.len(), out);
    out.put_slice(data);
    out.put_slice(CRLF);
}

/// `:n\r\n`, what `encode(&Frame::Integer(n))` writes.
pub fn encode_integer(n: i64, out: &mut BytesMut) {
    out.put_u8(b':');
    put_i64(out, n);
    out.put_slice(CRLF);
}

/// `+s\r\n`, what `encode(&Frame::Simple(s))` writes.
pub fn encode_simple(s: &str, out: &mut BytesMut) {
    line(b'+', s, out);
}

/// `-s\r\n`, what `encode(&Frame::Error(s))` writes; `s` includes its code (`"ERR ..."`).
pub fn encode_error(s: &str, out: &mut BytesMut) {
    line(b'-', s, out);
}

/// The null bulk: RESP2 `$-1\r\n`, RESP3 `_\r\n`.
pub fn encode_null(resp3: bool, out: &mut BytesMut) {
    out.put_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" });
}

/// `*len\r\n`; the caller then encodes `len` elements.
pub fn encode_array_header(len: usize, out: &mut BytesMut) {
    header(b'*', len, out);
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn enc(frame: &Frame, resp3: bool) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(frame, resp3, &mut out);
        out.to_vec()
    }

    #[test]
    fn scalars() {
        assert_eq!(enc(&Frame::ok(), false), b"+OK\r\n");
        assert_eq!(
            enc(&Frame::error("ERR syntax error"), true),
            b"-ERR syntax error\r\n"
        );
        assert_eq!(enc(&Frame::Integer(-2), false), b":-2\r\n");
        assert_eq!(enc(&Frame::bulk("foo"), false), b"$3\r\nfoo\r\n");
        assert_eq!(enc(&Frame::bulk(""), false), b"$0\r\n\r\n");
        assert_eq!(enc(&Frame::Null, false), b"$-1\r\n");
        assert_eq!(enc(&Frame::Null, true), b"_\r\n");
        assert_eq!(enc(&Frame::NullArray, false), b"*-1\r\n");
        assert_eq!(enc(&Frame::NullArray, true), b"_\r\n");
    }

    #[test]
    fn resp3_types_and_their_resp2_downgrades() {
        let map = Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1))]);
        assert_eq!(enc(&map, true), b"%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&map, false), b"*2\r\n$1\r\na\r\n:1\r\n");
        let set = Frame::Set(vec![Frame::bulk("x")]);
        assert_eq!(enc(&set, true), b"~1\r\n$1\r\nx\r\n");
        assert_eq!(enc(&set, false), b"*1\r\n$1\r\nx\r\n");
        let push = Frame::Push(vec![Frame::bulk("message")]);
        assert_eq!(enc(&push, true), b">1\r\n$7\r\nmessage\r\n");
        assert_eq!(enc(&push, false), b"*1\r\n$7\r\nmessage\r\n");
        assert_eq!(enc(&Frame::Double(1.5), true), b",1.5\r\n");
        assert_eq!(enc(&Frame::Double(1.5), false), b"$3\r\n1.5\r\n");
        assert_eq!(enc(&Frame::Double(f64::INFINITY), true), b",inf\r\n");
        assert_eq!(
            enc(&Frame::Double(f64::NEG_INFINITY), false),
            b"$4\r\n-inf\r\n"
        );
        assert_eq!(enc(&Frame::Double(f64::NAN), true), b",nan\r\n");
        assert_eq!(enc(&Frame::Boolean(true), true), b"#t\r\n");
        assert_eq!(enc(&Frame::Boolean(false), false), b":0\r\n");
        let big = Frame::BigNumber("3492890328409238509324850943850943825024385".into());
        assert_eq!(
            enc(&big, true),
            b"(3492890328409238509324850943850943825024385\r\n"
        );
        assert_eq!(
            enc(&big, false),
            b"$43\r\n3492890328409238509324850943850943825024385\r\n"
        );
        let verb = Frame::Verbatim("txt".into(), Bytes::from_static(b"Some string"));
        assert_eq!(enc(&verb, true), b"=15\r\ntxt:Some string\r\n");
        assert_eq!(enc(&verb, false), b"$11\r\nSome string\r\n");
    }

    #[test]
    fn cannot_break_the_stream() {
        assert_eq!(enc(&Frame::error("ERR a\r\nb"), false), b"-ERR a  b\r\n");
        assert_eq!(enc(&Frame::Simple("x\ny".into()), false), b"+x y\r\n");
        let verb = Frame::Verbatim("toolong".into(), Bytes::from_static(b"p"));
        assert_eq!(enc(&verb, true), b"=5\r\ntxt:p\r\n");
    }

    #[test]
    fn fast_paths_match_encode() {
        let mut a = BytesMut::new();
        encode_bulk(b"hello", &mut a);
        encode_integer(i64::MIN, &mut a);
        encode_simple("PONG", &mut a);
        encode_error("ERR x", &mut a);
        encode_null(false, &mut a);
        encode_null(true, &mut a);
        encode_array_header(3, &mut a);
        let mut b = BytesMut::new();
        for f in [
            Frame::bulk("hello"),
            Frame::Integer(i64::MIN),
            Frame::Simple("PONG".into()),
            Frame::error("ERR x"),
        ] {
            encode(&f, false, &mut b);
        }
        encode(&Frame::Null, false, &mut b);
        encode(&Frame::Null, true, &mut b);
        b.extend_from_slice(b"*3\r\n");
        assert_eq!(a, b);
    }
}
