//! FrameDecoder on hand-written streams: every RESP3 type, the strictness errors and limits.

use forkdb_protocol::{encode, Bytes, BytesMut, DecodeError, DecoderLimits, Frame, FrameDecoder};

fn decode_one(input: &[u8]) -> Result<Option<Frame>, DecodeError> {
    let mut buf = BytesMut::from(input);
    FrameDecoder::new().decode(&mut buf)
}

fn ok(input: &[u8]) -> Frame {
    decode_one(input).unwrap().expect("a complete frame")
}

fn err(input: &[u8]) -> String {
    decode_one(input).unwrap_err().to_string()
}

#[test]
fn every_type() {
    assert_eq!(ok(b"+OK\r\n"), Frame::ok());
    assert_eq!(ok(b"-ERR x\r\n"), Frame::error("ERR x"));
    assert_eq!(ok(b":-42\r\n"), Frame::Integer(-42));
    assert_eq!(ok(b"$3\r\na\r\n\r\n"), Frame::bulk("a\r\n"));
    assert_eq!(ok(b"$-1\r\n"), Frame::Null);
    assert_eq!(ok(b"*-1\r\n"), Frame::NullArray);
    assert_eq!(ok(b"_\r\n"), Frame::Null);
    assert_eq!(ok(b"*0\r\n"), Frame::Array(vec![]));
    assert_eq!(ok(b",1.5\r\n"), Frame::Double(1.5));
    assert_eq!(ok(b",-inf\r\n"), Frame::Double(f64::NEG_INFINITY));
    assert!(matches!(ok(b",nan\r\n"), Frame::Double(d) if d.is_nan()));
    assert_eq!(ok(b",1e+20\r\n"), Frame::Double(1e20));
    assert_eq!(ok(b"#f\r\n"), Frame::Boolean(false));
    assert_eq!(ok(b"(-123\r\n"), Frame::BigNumber("-123".into()));
    assert_eq!(ok(b"!5\r\nERR x\r\n"), Frame::error("ERR x"));
    assert_eq!(
        ok(b"=15\r\ntxt:Some string\r\n"),
        Frame::Verbatim("txt".into(), Bytes::from_static(b"Some string"))
    );
    assert_eq!(
        ok(b"%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n~0\r\n"),
        Frame::Map(vec![
            (Frame::Simple("a".into()), Frame::Integer(1)),
            (
                Frame::Simple("b".into()),
                Frame::Array(vec![Frame::Set(vec![])])
            ),
        ])
    );
    assert_eq!(
        ok(b">2\r\n$7\r\nmessage\r\n_\r\n"),
        Frame::Push(vec![Frame::bulk("message"), Frame::Null])
    );
}

#[test]
fn attributes_are_dropped() {
    // The RESP3 spec's example: an attribute before an array, and one inside it.
    let input = b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n|0\r\n:1\r\n:2\r\n";
    assert_eq!(
        ok(input),
        Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)])
    );
}

#[test]
fn several_frames_and_partial_input() {
    let mut dec = FrameDecoder::new();
    let mut buf = BytesMut::from(&b"*2\r\n:1\r\n"[..]);
    assert_eq!(dec.decode(&mut buf).unwrap(), None);
    buf.extend_from_slice(b":2\r\n+x\r\n$2\r\nab");
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        Some(Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)]))
    );
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        Some(Frame::Simple("x".into()))
    );
    assert_eq!(dec.decode(&mut buf).unwrap(), None);
    assert!(matches!(
        dec.decode_eof(&mut buf),
        Err(DecodeError::UnexpectedEof { .. })
    ));
    let mut empty = BytesMut::new();
    assert_eq!(FrameDecoder::new().decode_eof(&mut empty).unwrap(), None);
}

#[test]
fn errors_say_what_and_where() {
    assert_eq!(
        err(b"?x\r\n"),
        "unknown RESP type byte '?' at offset 0; expected one of +-:$*_,#(!=%~>|"
    );
    assert_eq!(
        err(b"*1\r\n:x\r\n"),
        "invalid integer \"x\" in ':' line at offset 4"
    );
    assert_eq!(
        err(b"$3\r\nabcde"),
        "expected \"\\r\\n\" at offset 7, found \"de\""
    );
    assert_eq!(
        err(b"+OK\rX"),
        "expected \"\\r\\n\" at offset 3, found \"\\rX\""
    );
    assert_eq!(
        err(b"$-2\r\n"),
        "invalid length \"-2\" in '$' line at offset 0"
    );
    assert_eq!(
        err(b"%-1\r\n"),
        "invalid length \"-1\" in '%' line at offset 0"
    );
    assert_eq!(
        err(b"*01\r\n"),
        "invalid length \"01\" in '*' line at offset 0"
    );
    assert_eq!(
        err(b"$536870913\r\n"),
        "'$' length 536870913 at offset 0 exceeds the limit 536870912"
    );
    assert_eq!(
        err(b"#x\r\n"),
        "invalid boolean \"x\" in '#' line at offset 0"
    );
    assert_eq!(
        err(b",1.5x\r\n"),
        "invalid double \"1.5x\" in ',' line at offset 0"
    );
    assert_eq!(
        err(b",infinity\r\n"),
        "invalid double \"infinity\" in ',' line at offset 0"
    );
    assert_eq!(
        err(b"(12a\r\n"),
        "invalid big number \"12a\" in '(' line at offset 0"
    );
    assert_eq!(err(b"_x\r\n"), "invalid null \"x\" in '_' line at offset 0");
    assert_eq!(
        err(b"=3\r\ntxt\r\n"),
        "verbatim string payload at offset 4 has no \"xxx:\" format prefix (found \"txt\")"
    );
}

#[test]
fn limits() {
    let nested = b"*1\r\n".repeat(129);
    assert_eq!(
        decode_one(&nested).unwrap_err().to_string(),
        "aggregate at offset 512 nests deeper than 128 levels"
    );
    let mut ok_depth = b"*1\r\n".repeat(128);
    ok_depth.extend_from_slice(b":1\r\n");
    assert!(decode_one(&ok_depth).unwrap().is_some());

    let limits = DecoderLimits {
        max_line_len: 8,
        max_aggregate_len: 3,
        ..DecoderLimits::default()
    };
    let mut dec = FrameDecoder::with_limits(limits);
    let mut buf = BytesMut::from(&b"+123456789"[..]);
    assert_eq!(
        dec.decode(&mut buf).unwrap_err().to_string(),
        "line at offset 0 has no CRLF within 8 bytes"
    );
    let mut buf = BytesMut::from(&b"*4\r\n"[..]);
    assert_eq!(
        dec.decode(&mut buf).unwrap_err().to_string(),
        "'*' length 4 at offset 0 exceeds the limit 3"
    );
    // A huge announced count allocates nothing up front.
    let mut buf = BytesMut::from(&b"*2147483647\r\n"[..]);
    assert_eq!(FrameDecoder::new().decode(&mut buf).unwrap(), None);
}

#[test]
fn round_trip_of_nested_resp3() {
    let frame = Frame::Array(vec![
        Frame::Map(vec![(Frame::bulk("k"), Frame::Double(-0.5))]),
        Frame::Verbatim("mkd".into(), Bytes::from_static(b"# hi")),
        Frame::NullArray,
    ]);
    let mut buf = BytesMut::new();
    encode(&frame, true, &mut buf);
    let decoded = FrameDecoder::new().decode(&mut buf).unwrap().unwrap();
    // RESP3 has a single null, which decodes as Null.
    assert_eq!(
        decoded,
        Frame::Array(vec![
            Frame::Map(vec![(Frame::bulk("k"), Frame::Double(-0.5))]),
            Frame::Verbatim("mkd".into(), Bytes::from_static(b"# hi")),
            Frame::Null,
        ])
    );
    let mut buf = BytesMut::new();
    encode(&frame, false, &mut buf);
    assert_eq!(
        FrameDecoder::new().decode(&mut buf).unwrap().unwrap(),
        frame.to_resp2()
    );
}

/// `DEBUG PROTOCOL <type>` replies captured from redis-server 7.0.15 under `HELLO 2` and
/// `HELLO 3`: our encoder must write the same bytes and the decoder must read them back.
#[test]
#[allow(clippy::approx_constant)] // 3.141 is the value Redis's DEBUG PROTOCOL double sends
fn matches_redis_debug_protocol_bytes() {
    let frames = vec![
        Frame::bulk("Hello World"),
        Frame::Integer(12345),
        Frame::Double(3.141),
        Frame::BigNumber("1234567999999999999999999999999999999".into()),
        Frame::Null,
        Frame::Array(vec![
            Frame::Integer(0),
            Frame::Integer(1),
            Frame::Integer(2),
        ]),
        Frame::Set(vec![
            Frame::Integer(0),
            Frame::Integer(1),
            Frame::Integer(2),
        ]),
        Frame::Map(vec![
            (Frame::Integer(0), Frame::Boolean(false)),
            (Frame::Integer(1), Frame::Boolean(true)),
            (Frame::Integer(2), Frame::Boolean(false)),
        ]),
        Frame::Verbatim(
            "txt".into(),
            Bytes::from_static(b"This is a verbatim\nstring"),
        ),
        Frame::Boolean(true),
        Frame::Boolean(false),
    ];
    let resp2: &[u8] = b"$11\r\nHello World\r\n:12345\r\n$5\r\n3.141\r\n\
$37\r\n1234567999999999999999999999999999999\r\n$-1\r\n*3\r\n:0\r\n:1\r\n:2\r\n\
*3\r\n:0\r\n:1\r\n:2\r\n*6\r\n:0\r\n:0\r\n:1\r\n:1\r\n:2\r\n:0\r\n\
$25\r\nThis is a verbatim\nstring\r\n:1\r\n:0\r\n";
    let resp3: &[u8] = b"$11\r\nHello World\r\n:12345\r\n,3.141\r\n\
(1234567999999999999999999999999999999\r\n_\r\n*3\r\n:0\r\n:1\r\n:2\r\n\
~3\r\n:0\r\n:1\r\n:2\r\n%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n\
=29\r\ntxt:This is a verbatim\nstring\r\n#t\r\n#f\r\n";
    for (resp3_on, wire) in [(false, resp2), (true, resp3)] {
        let mut out = BytesMut::new();
        for f in &frames {
            encode(f, resp3_on, &mut out);
        }
        assert_eq!(
            out.escape_ascii().to_string(),
            wire.escape_ascii().to_string()
        );
        let mut dec = FrameDecoder::new();
        let mut decoded = Vec::new();
        while let Some(f) = dec.decode(&mut out).unwrap() {
            decoded.push(f);
        }
        let want: Vec<Frame> = if resp3_on {
            frames.clone()
        } else {
            frames.iter().map(Frame::to_resp2).collect()
        };
        assert_eq!(decoded, want);
    }
    // RESP3 push and attribute replies as Redis sends them.
    let mut buf = BytesMut::from(
        &b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n\
$39\r\nSome real reply following the attribute\r\n\
>3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"[..],
    );
    let mut dec = FrameDecoder::new();
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        Some(Frame::bulk("Some real reply following the attribute"))
    );
    let push = Frame::Push(vec![
        Frame::bulk("subscribe"),
        Frame::bulk("ch"),
        Frame::Integer(1),
    ]);
    assert_eq!(dec.decode(&mut buf).unwrap(), Some(push.clone()));
    let mut out = BytesMut::new();
    encode(&push, false, &mut out);
    assert_eq!(&out[..], b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
}
