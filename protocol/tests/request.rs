//! RequestParser against the behaviour of redis-server 7.0.15.
//!
//! Every expected error text and every "accepted / empty / error" outcome below was checked by
//! sending the same raw bytes to a real redis-server 7.0.15 (python sockets).

use forkdb_protocol::request::split_args;
use forkdb_protocol::{Bytes, BytesMut, Limits, ProtocolError, RequestParser};

type Outcome = Result<Vec<Vec<Vec<u8>>>, ProtocolError>;

/// Feed `input` in one piece and collect every complete command until the parser needs more.
fn parse_all(input: &[u8]) -> Outcome {
    parse_chunks(&[input])
}

fn parse_chunks(chunks: &[&[u8]]) -> Outcome {
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(args) = parser.parse(&mut buf)? {
            out.push(args.iter().map(|a| a.to_vec()).collect());
        }
    }
    Ok(out)
}

fn cmd(args: &[&str]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

fn err_text(input: &[u8]) -> String {
    match parse_all(input) {
        Err(e) => e.to_string(),
        Ok(cmds) => panic!(
            "expected an error for {:?}, got {cmds:?}",
            input.escape_ascii().to_string()
        ),
    }
}

#[test]
fn error_texts_are_redis_7_0s() {
    let cases: &[(&[u8], &str)] = &[
        (b"*abc\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*01\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*+1\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*-0\r\n", "ERR Protocol error: invalid multibulk length"),
        (
            b"*2147483648\r\n",
            "ERR Protocol error: invalid multibulk length",
        ),
        (
            b"*99999999999999999999\r\n",
            "ERR Protocol error: invalid multibulk length",
        ),
        (b"*1\r\n$-1\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$abc\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$\r\n", "ERR Protocol error: invalid bulk length"),
        (
            b"*1\r\n$536870913\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (
            b"*1\r\n$99999999999999999999\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (
            b"*1\r\nfoo\r\n",
            "ERR Protocol error: expected '$', got 'f'",
        ),
        (b"*1\r\n:4\r\n", "ERR Protocol error: expected '$', got ':'"),
        // Redis maps CR/LF in error texts to spaces.
        (b"*1\r\n\r\n", "ERR Protocol error: expected '$', got ' '"),
        (
            b"SET b 'it''s'\r\n",
            "ERR Protocol error: unbalanced quotes in request",
        ),
        (
            b"SET c \"ab\r\n",
            "ERR Protocol error: unbalanced quotes in request",
        ),
        (
            b"SET c \"ab\"x\r\n",
            "ERR Protocol error: unbalanced quotes in request",
        ),
        (
            b"ECHO a\"b c\"d\r\n",
            "ERR Protocol error: unbalanced quotes in request",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            err_text(input),
            *want,
            "input {:?}",
            input.escape_ascii().to_string()
        );
    }
    assert_eq!(
        ProtocolError::ExpectedDollar(0xff).to_string(),
        "ERR Protocol error: expected '$', got '\u{ff}'"
    );
}

#[test]
fn too_big_lines() {
    let digits = vec![b'1'; 70_000];
    let mut inline = vec![b'A'; 70_000];
    assert_eq!(
        err_text(&inline),
        "ERR Protocol error: too big inline request"
    );
    let mut mbulk = b"*".to_vec();
    mbulk.extend_from_slice(&digits);
    assert_eq!(
        err_text(&mbulk),
        "ERR Protocol error: too big mbulk count string"
    );
    let mut bulk = b"*1\r\n$".to_vec();
    bulk.extend_from_slice(&digits);
    assert_eq!(
        err_text(&bulk),
        "ERR Protocol error: too big bulk count string"
    );
    // Once terminated, a long length line is parsed (and rejected as a length), as Redis does
    // when the line arrives whole.
    bulk.extend_from_slice(b"\r\n");
    assert_eq!(err_text(&bulk), "ERR Protocol error: invalid bulk length");
    // A terminated long inline line is a command.
    inline.extend_from_slice(b"\r\n");
    assert_eq!(parse_all(&inline).unwrap().len(), 1);
    // Exactly at the limit is still "need more".
    assert_eq!(parse_all(&vec![b'A'; 64 * 1024]).unwrap().len(), 0);
}

#[test]
fn unauthenticated_limits() {
    let check = |input: &[u8]| {
        let mut p = RequestParser::new(Limits::default());
        p.set_unauthenticated(true);
        let mut buf = BytesMut::from(input);
        p.parse(&mut buf).map(|o| o.map(|a| a.len()))
    };
    assert_eq!(
        check(b"*11\r\n").unwrap_err().to_string(),
        "ERR Protocol error: unauthenticated multibulk length"
    );
    assert_eq!(
        check(b"*10\r\n$16385\r\n").unwrap_err().to_string(),
        "ERR Protocol error: unauthenticated bulk length"
    );
    assert_eq!(check(b"*10\r\n$16384\r\n"), Ok(None));
    // The proto-max-bulk-len check comes first.
    assert_eq!(
        check(b"*1\r\n$536870913\r\n").unwrap_err().to_string(),
        "ERR Protocol error: invalid bulk length"
    );
    // Inline commands have no such limit, and *-1 stays an empty command.
    assert_eq!(check(b"AUTH pw\r\n"), Ok(Some(2)));
    assert_eq!(check(b"*-1\r\n"), Ok(Some(0)));
}

#[test]
fn limits_are_configurable() {
    let mut p = RequestParser::new(Limits::default());
    p.set_limits(Limits {
        max_bulk_len: 3,
        ..Limits::default()
    });
    let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n"[..]);
    assert_eq!(p.parse(&mut buf), Err(ProtocolError::InvalidBulkLength));
    p.set_limits(Limits {
        max_multibulk_len: 2,
        ..Limits::default()
    });
    let mut buf = BytesMut::from(&b"*3\r\n"[..]);
    assert_eq!(
        p.parse(&mut buf),
        Err(ProtocolError::InvalidMultibulkLength)
    );
}

#[test]
fn empty_commands() {
    assert_eq!(
        parse_all(b"*-1\r\n*0\r\n*-5\r\n\r\n\n  \n").unwrap(),
        vec![vec![]; 6] as Vec<Vec<Vec<u8>>>
    );
}

#[test]
fn redis_leniencies_are_kept() {
    // Redis skips the 2 bytes after a bulk and after a length line's '\r' unchecked.
    assert_eq!(
        parse_all(b"*1\r\n$4\r\nPINGXY*1\r\n$4\r\nPING\r\n").unwrap(),
        vec![cmd(&["PING"]), cmd(&["PING"])]
    );
    assert_eq!(
        parse_all(b"*1\rX$4\rXPING\r\n").unwrap(),
        vec![cmd(&["PING"])]
    );
    // Bulks may be empty and binary.
    assert_eq!(
        parse_all(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$3\r\n\x00\r\n\r\n").unwrap(),
        vec![vec![b"SET".to_vec(), vec![], vec![0, b'\r', b'\n']]]
    );
    // The largest accepted counts start a command without allocating for them.
    assert_eq!(
        parse_all(b"*2147483647\r\n$536870912\r\n").unwrap().len(),
        0
    );
}

#[test]
fn inline_lines() {
    assert_eq!(
        parse_all(b"SET a b\r\n").unwrap(),
        vec![cmd(&["SET", "a", "b"])]
    );
    assert_eq!(parse_all(b"PING\n").unwrap(), vec![cmd(&["PING"])]);
    // Only one '\r' before '\n' is the terminator; others separate arguments.
    assert_eq!(
        parse_all(b"ECHO x\r\r\n").unwrap(),
        vec![cmd(&["ECHO", "x"])]
    );
    assert_eq!(
        parse_all(b"ECHO a\rb\r\n").unwrap(),
        vec![cmd(&["ECHO", "a", "b"])]
    );
    // \v is skipped between arguments but is part of an unquoted one.
    assert_eq!(
        parse_all(b"\x0bECHO x\r\n").unwrap(),
        vec![cmd(&["ECHO", "x"])]
    );
    assert_eq!(
        parse_all(b"ECHO a\x0bb\r\n").unwrap(),
        vec![cmd(&["ECHO", "a\x0bb"])]
    );
    // A line split anywhere, including between '\r' and '\n'.
    assert_eq!(
        parse_chunks(&[b"SE", b"T a", b" b\r", b"\nGET a\r\n"]).unwrap(),
        vec![cmd(&["SET", "a", "b"]), cmd(&["GET", "a"])]
    );
}

#[test]
fn sdssplitargs_quoting() {
    let split = |s: &[u8]| split_args(s).map(|v| v.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
    let ok = |s: &[u8], want: &[&[u8]]| {
        assert_eq!(
            split(s),
            Some(want.iter().map(|w| w.to_vec()).collect()),
            "{:?}",
            s.escape_ascii().to_string()
        )
    };
    ok(b"SET a \"a\\x41\"", &[b"SET", b"a", b"aA"]);
    ok(b"SET b 'it\\'s'", &[b"SET", b"b", b"it's"]);
    ok(b"ECHO \"\\x4z\"", &[b"ECHO", b"x4z"]);
    ok(b"ECHO \"\\q\\n\"", &[b"ECHO", b"q\n"]);
    ok(b"\"\\r\\t\\b\\a\\\\\\\"\"", &[b"\r\t\x08\x07\\\""]);
    ok(b"\"\\xff\\x00\"", &[b"\xff\x00"]);
    ok(b"ECHO \"\"", &[b"ECHO", b""]);
    ok(b"ECHO ''", &[b"ECHO", b""]);
    ok(b"a\"b c\"", &[b"ab c"]);
    ok(b"'a b' \"c d\"\te", &[b"a b", b"c d", b"e"]);
    ok(b"'\\n'", &[b"\\n"]);
    ok(b"   ", &[]);
    ok(b"", &[]);
    for bad in [
        &b"'it''s'"[..],
        b"\"ab",
        b"'ab",
        b"\"ab\"x",
        b"\"a\\",
        b"'a\\'",
    ] {
        assert_eq!(split(bad), None, "{:?}", bad.escape_ascii().to_string());
    }
}

fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn ten_thousand_pipelined_commands() {
    let mut input = Vec::new();
    for i in 0..10_000 {
        if i % 3 == 0 {
            input.extend_from_slice(format!("SET key:{i} \"v {i}\"\r\n").as_bytes());
        } else {
            let key = format!("key:{i}");
            input.extend_from_slice(&multibulk(&[b"SET", key.as_bytes(), b"value"]));
        }
    }
    let cmds = parse_all(&input).unwrap();
    assert_eq!(cmds.len(), 10_000);
    assert_eq!(cmds[9_998], cmd(&["SET", "key:9998", "value"]));
    assert_eq!(cmds[9_999], cmd(&["SET", "key:9999", "v 9999"]));
}

#[test]
fn pipeline_split_at_every_byte_boundary() {
    let mut input = multibulk(&[b"SET", b"k", b"v\r\n$x"]);
    input.extend_from_slice(b"*0\r\nGET 'a b' \"\\x41\"\r\n");
    input.extend_from_slice(&multibulk(&[b"", b"PING"]));
    input.extend_from_slice(b"*-1\r\n\n");
    let whole = parse_all(&input).unwrap();
    assert_eq!(whole.len(), 6);
    for i in 0..=input.len() {
        for j in i..=input.len() {
            let (a, rest) = input.split_at(i);
            let (b, c) = rest.split_at(j - i);
            assert_eq!(
                parse_chunks(&[a, b, c]).unwrap(),
                whole,
                "split at {i}, {j}"
            );
        }
    }
    // And one byte at a time.
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(parse_chunks(&bytes).unwrap(), whole);
}

#[test]
fn big_bulk_in_pieces_is_linear_and_zero_copy() {
    const LEN: usize = 64 * 1024 * 1024;
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::from(&format!("*2\r\n$3\r\nSET\r\n${LEN}\r\n")[..]);
    assert_eq!(parser.parse(&mut buf), Ok(None));
    // The whole bulk was reserved when its header arrived.
    assert!(buf.capacity() >= LEN + 2);
    let piece = vec![b'x'; 16 * 1024];
    let mut fed = 0;
    while fed < LEN {
        let n = piece.len().min(LEN - fed);
        buf.extend_from_slice(&piece[..n]);
        fed += n;
        assert_eq!(parser.parse(&mut buf), Ok(None));
    }
    buf.extend_from_slice(b"\r\n");
    let args = parser.parse(&mut buf).unwrap().unwrap();
    assert_eq!(args[0], Bytes::from_static(b"SET"));
    assert_eq!(args[1].len(), LEN);
    assert!(args[1].iter().all(|&b| b == b'x'));
    assert!(buf.is_empty());
}

#[test]
fn parser_is_reusable_after_partial_state() {
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n"[..]);
    assert_eq!(parser.parse(&mut buf), Ok(None));
    assert!(buf.is_empty(), "complete arguments are consumed");
    buf.extend_from_slice(b"$1\r\nk\r\n*1\r\n$4\r\nPING\r\n");
    assert_eq!(
        parser.parse(&mut buf).unwrap().unwrap(),
        vec![Bytes::from_static(b"GET"), Bytes::from_static(b"k")]
    );
    assert_eq!(
        parser.parse(&mut buf).unwrap().unwrap(),
        vec![Bytes::from_static(b"PING")]
    );
    assert_eq!(parser.parse(&mut buf), Ok(None));
}

/// Reads `input` as forkdb's connection task does, zero-copy, in reads of at most 16 KiB into a
/// buffer that is reclaimed in place when short of room (else grown). With `detach`, the
/// incomplete command's arguments are copied out at the end of each read. Returns the commands
/// and how many times the buffer could not be reclaimed in place.
fn read_like_a_connection(input: &[u8], detach: bool) -> (Vec<Vec<Vec<u8>>>, usize) {
    const CHUNK: usize = 16 * 1024;
    let mut parser = RequestParser::new(Limits::default());
    parser.set_zero_copy(true);
    let mut buf = BytesMut::with_capacity(CHUNK);
    let mut out = Vec::new();
    let mut grown = 0;
    let mut fed = 0;
    while fed < input.len() {
        if buf.capacity() - buf.len() < CHUNK / 4 && !buf.try_reclaim(CHUNK / 2) {
            buf.reserve(CHUNK);
            grown += 1;
        }
        let n = (buf.capacity() - buf.len()).min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + n]);
        fed += n;
        while let Some(args) = parser.parse(&mut buf).unwrap() {
            out.push(args.iter().map(|a| a.to_vec()).collect());
        }
        if detach {
            parser.detach_partial();
        }
    }
    (out, grown)
}

#[test]
fn detached_partial_commands_let_the_read_buffer_be_reused() {
    // ZADDs of 100 members (~1.9 KB): nearly every 16 KiB read ends inside one.
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for k in 0..200 {
        let mut args = vec![b"ZADD".to_vec(), format!("z:{k}").into_bytes()];
        for m in 0..100 {
            args.push(m.to_string().into_bytes());
            args.push(format!("member{m:03}").into_bytes());
        }
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        input.extend_from_slice(&multibulk(&refs));
        expected.push(args);
    }
    let (cmds, grown) = read_like_a_connection(&input, true);
    assert_eq!(cmds, expected);
    assert_eq!(grown, 0, "one buffer for the whole pipeline");
    // Without the copy the arguments pin the buffer and every short read needs a new one.
    let (cmds, grown) = read_like_a_connection(&input, false);
    assert_eq!(cmds, expected);
    assert!(grown > 10, "grown {grown} times");
}

#[test]
fn detach_partial_leaves_big_arguments_in_place() {
    const LEN: usize = 40 * 1024;
    let mut parser = RequestParser::new(Limits::default());
    parser.set_zero_copy(true);
    let mut buf = BytesMut::from(&format!("*3\r\n$3\r\nSET\r\n${LEN}\r\n")[..]);
    assert_eq!(parser.parse(&mut buf), Ok(None));
    buf.extend_from_slice(&vec![b'x'; LEN]);
    buf.extend_from_slice(b"\r\n$1\r");
    let big_at = buf.as_ptr();
    assert_eq!(parser.parse(&mut buf), Ok(None));
    parser.detach_partial();
    // Detaching again (another read that ended inside the command) changes nothing.
    buf.extend_from_slice(b"\n");
    assert_eq!(parser.parse(&mut buf), Ok(None));
    parser.detach_partial();
    buf.extend_from_slice(b"v\r\n");
    let args = parser.parse(&mut buf).unwrap().unwrap();
    assert_eq!(args[0], Bytes::from_static(b"SET"));
    assert_eq!(args[1].len(), LEN);
    assert_eq!(
        args[1].as_ptr(),
        big_at,
        "the big argument is still a slice of the buffer"
    );
    assert_eq!(args[2], Bytes::from_static(b"v"));
}
