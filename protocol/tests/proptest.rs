//! Property tests: encode → split at random points → decode gives the same value back, and no
//! byte sequence, however split, makes either parser panic.

use forkdb_protocol::{
    encode, request::split_args, Bytes, BytesMut, Frame, FrameDecoder, Limits, RequestParser,
};
use proptest::prelude::*;

fn leaf() -> impl Strategy<Value = Frame> {
    prop_oneof![
        "[^\r\n]{0,12}".prop_map(Frame::Simple),
        "[^\r\n]{0,12}".prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|v| Frame::Bulk(Bytes::from(v))),
        Just(Frame::Null),
        Just(Frame::NullArray),
        any::<f64>()
            .prop_filter("NaN != NaN", |d| !d.is_nan())
            .prop_map(Frame::Double),
        any::<bool>().prop_map(Frame::Boolean),
        "-?[1-9][0-9]{0,40}|0".prop_map(Frame::BigNumber),
        ("[a-z]{3}", proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(f, p)| Frame::Verbatim(f, Bytes::from(p))),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    leaf().prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Set),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Push),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Frame::Map),
        ]
    })
}

/// What the decoder returns for the RESP3 encoding: RESP3 has one null.
fn resp3_view(f: &Frame) -> Frame {
    match f {
        Frame::NullArray => Frame::Null,
        Frame::Array(v) => Frame::Array(v.iter().map(resp3_view).collect()),
        Frame::Set(v) => Frame::Set(v.iter().map(resp3_view).collect()),
        Frame::Push(v) => Frame::Push(v.iter().map(resp3_view).collect()),
        Frame::Map(v) => Frame::Map(
            v.iter()
                .map(|(k, v)| (resp3_view(k), resp3_view(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Cut `bytes` at the given points (taken modulo its length).
fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points
        .windows(2)
        .map(|w| bytes[w[0]..w[1]].to_vec())
        .collect()
}

fn decode_chunks(pieces: &[Vec<u8>]) -> Vec<Frame> {
    let mut dec = FrameDecoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        while let Some(f) = dec.decode(&mut buf).expect("valid stream") {
            out.push(f);
        }
    }
    assert!(buf.is_empty());
    out
}

fn parse_chunks(pieces: &[Vec<u8>]) -> Vec<Vec<Bytes>> {
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        while let Some(args) = parser.parse(&mut buf).expect("valid requests") {
            out.push(args);
        }
    }
    assert!(buf.is_empty());
    out
}

/// Feed garbage in pieces until the parser errors or runs dry; only panics matter.
fn feed_garbage(pieces: &[Vec<u8>]) {
    let mut parser = RequestParser::new(Limits {
        max_inline_len: 64,
        max_bulk_len: 1 << 20,
        max_multibulk_len: 1000,
    });
    let mut dec = FrameDecoder::new();
    let mut req = BytesMut::new();
    let mut rep = BytesMut::new();
    let (mut req_dead, mut rep_dead) = (false, false);
    for piece in pieces {
        if !req_dead {
            req.extend_from_slice(piece);
            loop {
                match parser.parse(&mut req) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        assert!(e.to_string().starts_with("ERR Protocol error: "));
                        req_dead = true;
                        break;
                    }
                }
            }
        }
        if !rep_dead {
            rep.extend_from_slice(piece);
            loop {
                match dec.decode(&mut rep) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        let _ = e.to_string();
                        rep_dead = true;
                        break;
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn frames_round_trip_resp3(frames in proptest::collection::vec(frame(), 1..4),
                               cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let mut buf = BytesMut::new();
        for f in &frames {
            encode(f, true, &mut buf);
        }
        let decoded = decode_chunks(&chunks(&buf, &cuts));
        let want: Vec<Frame> = frames.iter().map(resp3_view).collect();
        prop_assert_eq!(decoded, want);
    }

    #[test]
    fn frames_round_trip_resp2(frames in proptest::collection::vec(frame(), 1..4),
                               cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let mut buf = BytesMut::new();
        for f in &frames {
            encode(f, false, &mut buf);
        }
        let decoded = decode_chunks(&chunks(&buf, &cuts));
        let want: Vec<Frame> = frames.iter().map(Frame::to_resp2).collect();
        prop_assert_eq!(decoded, want);
    }

    #[test]
    fn multibulk_requests_round_trip(
        cmds in proptest::collection::vec(
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 1..6), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut wire = Vec::new();
        for cmd in &cmds {
            wire.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
            for arg in cmd {
                wire.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                wire.extend_from_slice(arg);
                wire.extend_from_slice(b"\r\n");
            }
        }
        let parsed = parse_chunks(&chunks(&wire, &cuts));
        let parsed: Vec<Vec<Vec<u8>>> =
            parsed.iter().map(|c| c.iter().map(|a| a.to_vec()).collect()).collect();
        prop_assert_eq!(parsed, cmds);
    }

    #[test]
    fn quoted_inline_requests_round_trip(
        cmds in proptest::collection::vec(
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 1..5), 1..5),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        // Quote every argument with \xHH escapes, the way redis-cli would need to.
        let mut wire = Vec::new();
        for cmd in &cmds {
            for (i, arg) in cmd.iter().enumerate() {
                if i > 0 {
                    wire.push(b' ');
                }
                wire.push(b'"');
                for b in arg {
                    wire.extend_from_slice(format!("\\x{b:02x}").as_bytes());
                }
                wire.push(b'"');
            }
            wire.extend_from_slice(b"\r\n");
        }
        let parsed = parse_chunks(&chunks(&wire, &cuts));
        let parsed: Vec<Vec<Vec<u8>>> =
            parsed.iter().map(|c| c.iter().map(|a| a.to_vec()).collect()).collect();
        prop_assert_eq!(parsed, cmds);
    }

    #[test]
    fn split_args_never_panics(line in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = split_args(&line);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512),
                                   cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        feed_garbage(&chunks(&bytes, &cuts));
    }

    #[test]
    fn protocol_shaped_bytes_never_panic(
        tokens in proptest::collection::vec(prop_oneof![
            Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()), Just(b"\r".to_vec()),
            Just(b"-1".to_vec()), Just(b"0".to_vec()), Just(b"3".to_vec()), Just(b"%".to_vec()),
            Just(b"|".to_vec()), Just(b"=".to_vec()), Just(b"\"".to_vec()), Just(b"'".to_vec()),
            Just(b"\\x".to_vec()), Just(b" ".to_vec()), Just(b"\n".to_vec()),
            Just(b"99999999999999999999".to_vec()), Just(b"2147483647".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..4),
        ], 0..64),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let bytes = tokens.concat();
        feed_garbage(&chunks(&bytes, &cuts));
    }

    #[test]
    fn mutated_valid_streams_never_panic(frames in proptest::collection::vec(frame(), 1..3),
                                         flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
                                         cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let mut buf = BytesMut::new();
        for f in &frames {
            encode(f, true, &mut buf);
        }
        let mut bytes = buf.to_vec();
        for (at, b) in flips {
            let len = bytes.len();
            bytes[at % len] = b;
        }
        feed_garbage(&chunks(&bytes, &cuts));
    }
}
