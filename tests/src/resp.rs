//! A small, independent RESP2/RESP3 reply reader for the tests.
//!
//! It is deliberately separate from `forkdb-protocol`: the tests must not share a parser with the
//! server they check. [`parse`] returns the frame and the exact number of bytes it used, so callers
//! can keep the raw bytes of one reply for byte-exact comparison and still look inside it.

use std::fmt::Write as _;

/// Nesting deeper than this is treated as corrupt input (no server reply nests this deep).
const MAX_DEPTH: usize = 128;

/// One RESP reply, kept close to the wire so that [`Frame::encode`] gives back the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+...`
    Simple(String),
    /// `-...`
    Error(String),
    /// `:...`
    Integer(i64),
    /// `$n` with its payload.
    Bulk(Vec<u8>),
    /// `$-1`
    NullBulk,
    /// `*-1`
    NullArray,
    /// RESP3 `_`
    Null,
    /// `*n`
    Array(Vec<Frame>),
    /// RESP3 `,` (kept as text so that `inf` and the exact digits survive).
    Double(String),
    /// RESP3 `#t` / `#f`
    Boolean(bool),
    /// RESP3 `(`
    BigNumber(String),
    /// RESP3 `=n\r\nfmt:data`
    Verbatim { format: String, data: Vec<u8> },
    /// RESP3 `%n`
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~n`
    Set(Vec<Frame>),
    /// RESP3 `>n`
    Push(Vec<Frame>),
    /// RESP3 `|n` attribute followed by the reply it annotates.
    Attribute(Vec<(Frame, Frame)>, Box<Frame>),
}

impl Frame {
    /// The reply as it would be sent on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        fn line(out: &mut Vec<u8>, prefix: u8, body: &[u8]) {
            out.push(prefix);
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        }
        fn seq(out: &mut Vec<u8>, prefix: u8, items: &[Frame]) {
            line(out, prefix, items.len().to_string().as_bytes());
            for item in items {
                item.encode_into(out);
            }
        }
        fn pairs(out: &mut Vec<u8>, prefix: u8, items: &[(Frame, Frame)]) {
            line(out, prefix, items.len().to_string().as_bytes());
            for (k, v) in items {
                k.encode_into(out);
                v.encode_into(out);
            }
        }
        match self {
            Frame::Simple(s) => line(out, b'+', s.as_bytes()),
            Frame::Error(s) => line(out, b'-', s.as_bytes()),
            Frame::Integer(i) => line(out, b':', i.to_string().as_bytes()),
            Frame::Bulk(b) => {
                line(out, b'$', b.len().to_string().as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Frame::NullBulk => out.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Frame::Null => out.extend_from_slice(b"_\r\n"),
            Frame::Array(items) => seq(out, b'*', items),
            Frame::Double(s) => line(out, b',', s.as_bytes()),
            Frame::Boolean(b) => line(out, b'#', if *b { b"t" } else { b"f" }),
            Frame::BigNumber(s) => line(out, b'(', s.as_bytes()),
            Frame::Verbatim { format, data } => {
                line(out, b'=', (data.len() + 4).to_string().as_bytes());
                out.extend_from_slice(format.as_bytes());
                out.push(b':');
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Map(items) => pairs(out, b'%', items),
            Frame::Set(items) => seq(out, b'~', items),
            Frame::Push(items) => seq(out, b'>', items),
            Frame::Attribute(attrs, inner) => {
                pairs(out, b'|', attrs);
                inner.encode_into(out);
            }
        }
    }

    /// The RESP type and, for aggregates, the element count and the shapes of the elements
    /// (sorted, so that element order does not matter). Two replies with equal shapes differ only
    /// in scalar values and order (TTLs, ids, INFO text, CONFIG GET order...).
    pub fn shape(&self) -> String {
        fn seq<'a>(tag: char, items: impl Iterator<Item = &'a Frame>) -> String {
            let mut shapes: Vec<String> = items.map(Frame::shape).collect();
            shapes.sort();
            format!("{tag}{}[{}]", shapes.len(), shapes.join(" "))
        }
        fn pairs(tag: char, items: &[(Frame, Frame)]) -> String {
            let mut shapes: Vec<String> = items
                .iter()
                .map(|(k, v)| format!("{}=>{}", k.shape(), v.shape()))
                .collect();
            shapes.sort();
            format!("{tag}{}[{}]", shapes.len(), shapes.join(" "))
        }
        match self {
            Frame::Simple(_) => "+".into(),
            Frame::Error(_) => "-".into(),
            Frame::Integer(_) => ":".into(),
            Frame::Bulk(_) => "$".into(),
            Frame::NullBulk => "$-1".into(),
            Frame::NullArray => "*-1".into(),
            Frame::Null => "_".into(),
            Frame::Double(_) => ",".into(),
            Frame::Boolean(_) => "#".into(),
            Frame::BigNumber(_) => "(".into(),
            Frame::Verbatim { .. } => "=".into(),
            Frame::Array(items) => seq('*', items.iter()),
            Frame::Set(items) => seq('~', items.iter()),
            Frame::Push(items) => seq('>', items.iter()),
            Frame::Map(items) => pairs('%', items),
            Frame::Attribute(attrs, inner) => format!("{}{}", pairs('|', attrs), inner.shape()),
        }
    }

    /// The same reply with the elements of every array, set and map sorted (recursively), for
    /// replies whose order Redis does not define (KEYS, SCAN, CONFIG GET with a glob).
    pub fn sorted(&self) -> Frame {
        fn sort_seq(items: &[Frame]) -> Vec<Frame> {
            let mut v: Vec<Frame> = items.iter().map(Frame::sorted).collect();
            v.sort_by_key(Frame::encode);
            v
        }
        match self {
            Frame::Array(items) => Frame::Array(sort_seq(items)),
            Frame::Set(items) => Frame::Set(sort_seq(items)),
            Frame::Push(items) => Frame::Push(sort_seq(items)),
            Frame::Map(items) => {
                let mut v: Vec<(Frame, Frame)> = items
                    .iter()
                    .map(|(k, v)| (k.sorted(), v.sorted()))
                    .collect();
                v.sort_by_key(|(k, v)| (k.encode(), v.encode()));
                Frame::Map(v)
            }
            Frame::Attribute(a, inner) => Frame::Attribute(a.clone(), Box::new(inner.sorted())),
            other => other.clone(),
        }
    }

    /// The payload of a bulk, simple or verbatim string as text (lossy), for assertions.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Frame::Simple(s) | Frame::Error(s) => Some(s.clone()),
            Frame::Bulk(b) | Frame::Verbatim { data: b, .. } => {
                Some(String::from_utf8_lossy(b).into_owned())
            }
            _ => None,
        }
    }
}

/// Where two replies first differ: a path like `[3][1]` (array index) or `{"flags"}` (map key),
/// and the two differing parts. `None` if they are equal.
pub fn first_difference(a: &Frame, b: &Frame) -> Option<(String, Frame, Frame)> {
    if a == b {
        return None;
    }
    let seq = |x: &[Frame], y: &[Frame]| -> Option<(String, Frame, Frame)> {
        if x.len() != y.len() {
            return None;
        }
        x.iter().zip(y).enumerate().find_map(|(i, (p, q))| {
            first_difference(p, q).map(|(path, p, q)| (format!("[{i}]{path}"), p, q))
        })
    };
    let nested = match (a, b) {
        (Frame::Array(x), Frame::Array(y))
        | (Frame::Set(x), Frame::Set(y))
        | (Frame::Push(x), Frame::Push(y)) => seq(x, y),
        (Frame::Map(x), Frame::Map(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, ((ka, va), (kb, vb)))| {
                if ka != kb {
                    return Some((format!("<key {i}>"), ka.clone(), kb.clone()));
                }
                let key = ka.as_text().unwrap_or_else(|| i.to_string());
                first_difference(va, vb).map(|(path, p, q)| (format!("{{{key:?}}}{path}"), p, q))
            }),
        _ => None,
    };
    Some(nested.unwrap_or_else(|| (String::new(), a.clone(), b.clone())))
}

/// Parses one complete reply from the start of `buf`.
///
/// `Ok(None)` means more bytes are needed; `Err` means the bytes are not RESP.
pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
    let mut pos = 0;
    match parse_at(buf, &mut pos, 0)? {
        Some(frame) => Ok(Some((frame, pos))),
        None => Ok(None),
    }
}

fn read_line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = &buf[*pos..];
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    *pos += end + 2;
    Some(&rest[..end])
}

fn parse_int(line: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad integer {:?}", String::from_utf8_lossy(line)))
}

fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// Reads `len` payload bytes plus the trailing CRLF.
fn read_payload(buf: &[u8], pos: &mut usize, len: usize) -> Result<Option<Vec<u8>>, String> {
    if buf.len() < *pos + len + 2 {
        return Ok(None);
    }
    let data = buf[*pos..*pos + len].to_vec();
    if &buf[*pos + len..*pos + len + 2] != b"\r\n" {
        return Err("payload not followed by CRLF".into());
    }
    *pos += len + 2;
    Ok(Some(data))
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Frame>, String> {
    if depth > MAX_DEPTH {
        return Err("reply nested too deeply".into());
    }
    let Some(&tag) = buf.get(*pos) else {
        return Ok(None);
    };
    let start = *pos;
    *pos += 1;
    let Some(line) = read_line(buf, pos) else {
        *pos = start;
        return Ok(None);
    };
    let restore = |pos: &mut usize| {
        *pos = start;
        Ok(None)
    };
    macro_rules! need {
        ($e:expr) => {
            match $e {
                Some(v) => v,
                None => return restore(pos),
            }
        };
    }
    let seq = |buf: &[u8], pos: &mut usize, n: i64| -> Result<Option<Vec<Frame>>, String> {
        let mut items = Vec::with_capacity(n.clamp(0, 1024) as usize);
        for _ in 0..n {
            match parse_at(buf, pos, depth + 1)? {
                Some(f) => items.push(f),
                None => return Ok(None),
            }
        }
        Ok(Some(items))
    };
    let pairs =
        |buf: &[u8], pos: &mut usize, n: i64| -> Result<Option<Vec<(Frame, Frame)>>, String> {
            Ok(seq(buf, pos, n * 2)?.map(|v| {
                let mut it = v.into_iter();
                let mut out = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    out.push((k, v));
                }
                out
            }))
        };
    let frame = match tag {
        b'+' => Frame::Simple(text(line)),
        b'-' => Frame::Error(text(line)),
        b':' => Frame::Integer(parse_int(line)?),
        b',' => Frame::Double(text(line)),
        b'(' => Frame::BigNumber(text(line)),
        b'#' => match line {
            b"t" => Frame::Boolean(true),
            b"f" => Frame::Boolean(false),
            _ => return Err(format!("bad boolean {:?}", text(line))),
        },
        b'_' => Frame::Null,
        b'$' => match parse_int(line)? {
            -1 => Frame::NullBulk,
            n if n < 0 => return Err(format!("bad bulk length {n}")),
            n => Frame::Bulk(need!(read_payload(buf, pos, n as usize)?)),
        },
        b'=' => {
            let n = parse_int(line)?;
            if n < 4 {
                return Err(format!("bad verbatim length {n}"));
            }
            let data = need!(read_payload(buf, pos, n as usize)?);
            Frame::Verbatim {
                format: text(&data[..3]),
                data: data[4..].to_vec(),
            }
        }
        b'*' => match parse_int(line)? {
            -1 => Frame::NullArray,
            n if n < 0 => return Err(format!("bad array length {n}")),
            n => Frame::Array(need!(seq(buf, pos, n)?)),
        },
        b'~' => Frame::Set(need!(seq(buf, pos, parse_int(line)?.max(0))?)),
        b'>' => Frame::Push(need!(seq(buf, pos, parse_int(line)?.max(0))?)),
        b'%' => Frame::Map(need!(pairs(buf, pos, parse_int(line)?.max(0))?)),
        b'|' => {
            let attrs = need!(pairs(buf, pos, parse_int(line)?.max(0))?);
            let inner = need!(parse_at(buf, pos, depth + 1)?);
            Frame::Attribute(attrs, Box::new(inner))
        }
        other => return Err(format!("unknown RESP type byte {:?}", other as char)),
    };
    Ok(Some(frame))
}

/// Encodes a command as a RESP array of bulk strings, as clients send it.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Like [`show`], cut to about `max` characters.
pub fn show_short(bytes: &[u8], max: usize) -> String {
    let full = show(bytes);
    if full.len() <= max {
        return full;
    }
    let mut cut = max;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} bytes in all)", &full[..cut], bytes.len())
}

/// Shows bytes readably in failure messages: printable ASCII as is, the rest escaped.
pub fn show(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reports_incomplete() {
        let samples: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":-2\r\n",
            b"$3\r\nfoo\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"_\r\n",
            b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n",
            b"%1\r\n+a\r\n:1\r\n",
            b"=8\r\ntxt:abcd\r\n",
            b",1.5\r\n",
            b"#t\r\n",
            b"~1\r\n+x\r\n",
            b"|1\r\n+k\r\n+v\r\n:3\r\n",
        ];
        for s in samples {
            let (frame, used) = parse(s).unwrap().unwrap();
            assert_eq!(used, s.len());
            assert_eq!(&frame.encode(), s);
            for cut in 0..s.len() {
                assert_eq!(
                    parse(&s[..cut]).unwrap(),
                    None,
                    "prefix {cut} of {}",
                    show(s)
                );
            }
        }
        assert!(parse(b"?x\r\n").is_err());
    }

    #[test]
    fn finds_the_first_difference() {
        let a = parse(b"*2\r\n:1\r\n*2\r\n+x\r\n+y\r\n").unwrap().unwrap().0;
        let b = parse(b"*2\r\n:1\r\n*2\r\n+x\r\n+z\r\n").unwrap().unwrap().0;
        let (path, x, y) = first_difference(&a, &b).unwrap();
        assert_eq!(
            (path.as_str(), x, y),
            (
                "[1][1]",
                Frame::Simple("y".into()),
                Frame::Simple("z".into())
            )
        );
        assert!(first_difference(&a, &a).is_none());
        let c = parse(b"*1\r\n:1\r\n").unwrap().unwrap().0;
        assert_eq!(first_difference(&a, &c).unwrap().0, "");
    }

    #[test]
    fn sorted_and_shape() {
        let a = parse(b"*2\r\n$1\r\nb\r\n$1\r\na\r\n").unwrap().unwrap().0;
        let b = parse(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n").unwrap().unwrap().0;
        assert_ne!(a, b);
        assert_eq!(a.sorted(), b.sorted());
        assert_eq!(a.shape(), "*2[$ $]");
        assert_ne!(
            a.shape(),
            parse(b"*1\r\n$1\r\na\r\n").unwrap().unwrap().0.shape()
        );
    }
}
