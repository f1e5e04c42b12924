//! Raw RESP against the server: split writes, big pipelines, inline commands, and the exact
//! `-ERR Protocol error: ...` replies (checked against redis-server with FORKDB_E2E_TARGET=redis)
//! after which the server must close the connection.

use std::io::Write;
use std::time::Duration;

use forkdb_tests::resp::{encode_command, show};
use forkdb_tests::{Conn, Server};

const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A pipeline mixing RESP arrays and an inline command, and the number of replies it produces.
fn mixed_pipeline() -> (Vec<u8>, usize) {
    let commands: &[&[&[u8]]] = &[
        &[b"SET", b"k", b"v a l"],
        &[b"GET", b"k"],
        &[b"INCR", b"n"],
        &[b"INCRBY", b"n", b"41"],
        &[b"MGET", b"k", b"n", b"missing"],
        &[b"ECHO", b"\x00\r\n$3\r\n*1\r\n"],
        &[b"APPEND", b"k", b"x"],
        &[b"GETRANGE", b"k", b"-3", b"-1"],
        &[b"DEL", b"k"],
        &[b"EXISTS", b"k"],
        &[b"SET", b"empty", b""],
        &[b"GET", b"empty"],
        &[b"GET"],
    ];
    let mut bytes = Vec::new();
    for (i, cmd) in commands.iter().enumerate() {
        bytes.extend_from_slice(&encode_command(cmd));
        if i == 4 {
            bytes.extend_from_slice(b"PING\r\n");
        }
    }
    (bytes, commands.len() + 1)
}

fn read_replies(conn: &mut Conn, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let reply = conn
            .read_reply()
            .unwrap_or_else(|e| panic!("reply {i} of {n}: {e}"));
        out.extend_from_slice(&reply);
    }
    out
}

fn flushall(conn: &mut Conn) {
    conn.assert_cmd(&["FLUSHALL"], b"+OK\r\n");
}

#[test]
fn pipeline_split_at_every_byte_gives_the_same_replies() {
    let server = Server::forkdb(&[]);
    let (pipeline, n) = mixed_pipeline();
    let mut conn = server.conn();

    flushall(&mut conn);
    conn.send(&pipeline).unwrap();
    let reference = read_replies(&mut conn, n);
    // The unsplit replies themselves are what Redis sends (checked with FORKDB_E2E_TARGET=redis).
    let expected: &[u8] =
        b"+OK\r\n$5\r\nv a l\r\n:1\r\n:42\r\n*3\r\n$5\r\nv a l\r\n$2\r\n42\r\n$-1\r\n+PONG\r\n\
        $11\r\n\x00\r\n$3\r\n*1\r\n\r\n:6\r\n$3\r\n lx\r\n:1\r\n:0\r\n+OK\r\n$0\r\n\r\n\
        -ERR wrong number of arguments for 'get' command\r\n";
    assert_eq!(show(&reference), show(expected));

    for cut in 1..pipeline.len() {
        flushall(&mut conn);
        conn.send(&pipeline[..cut]).unwrap();
        conn.send(&pipeline[cut..]).unwrap();
        let got = read_replies(&mut conn, n);
        assert_eq!(show(&got), show(&reference), "pipeline split at byte {cut}");
    }

    // One byte per write.
    flushall(&mut conn);
    for b in &pipeline {
        conn.send(std::slice::from_ref(b)).unwrap();
    }
    let got = read_replies(&mut conn, n);
    assert_eq!(
        show(&got),
        show(&reference),
        "pipeline sent one byte at a time"
    );
    conn.assert_cmd(&["PING"], b"+PONG\r\n");
    assert!(
        conn.pending().is_empty(),
        "extra bytes after the replies: {}",
        show(conn.pending())
    );
}

#[test]
fn ten_thousand_pipelined_commands_in_one_write() {
    const N: usize = 10_000;
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    let mut pipeline = Vec::new();
    for i in 0..N {
        if i % 2 == 0 {
            pipeline.extend_from_slice(&encode_command(&[
                "SET",
                &format!("key:{i}"),
                &format!("value:{i}"),
            ]));
        } else {
            pipeline.extend_from_slice(&encode_command(&["INCR", "counter"]));
        }
    }
    // Write from another thread so that a server that answers while we write cannot deadlock us.
    let mut writer = conn.stream().try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        writer.write_all(&pipeline).unwrap();
        writer.flush().unwrap();
    });
    let mut incrs = 0;
    for i in 0..N {
        let reply = conn
            .read_reply()
            .unwrap_or_else(|e| panic!("reply {i}: {e}"));
        if i % 2 == 0 {
            assert_eq!(show(&reply), show(b"+OK\r\n"), "reply {i}");
        } else {
            incrs += 1;
            assert_eq!(
                show(&reply),
                show(format!(":{incrs}\r\n").as_bytes()),
                "reply {i}"
            );
        }
    }
    sender.join().unwrap();
    conn.assert_cmd(&["DBSIZE"], format!(":{}\r\n", N / 2 + 1).as_bytes());
    conn.assert_cmd(&["GET", "key:9998"], b"$10\r\nvalue:9998\r\n");
}

#[test]
fn inline_commands_as_telnet_sends_them() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    let cases: &[(&[u8], &[u8])] = &[
        (b"PING\r\n", b"+PONG\r\n"),
        (b"ping\n", b"+PONG\r\n"),
        (b"SET a \"b c\"\r\n", b"+OK\r\n"),
        (b"GET a\r\n", b"$3\r\nb c\r\n"),
        (b"SET h \"x\\x41\\n\"\r\n", b"+OK\r\n"),
        (b"GET h\r\n", b"$3\r\nxA\n\r\n"),
        (b"SET s 'it\\'s'\r\n", b"+OK\r\n"),
        (b"GET s\r\n", b"$4\r\nit's\r\n"),
        (b"   ECHO    spaced   \r\n", b"$6\r\nspaced\r\n"),
        // Empty lines are skipped without a reply.
        (b"\r\n\r\n   \r\nPING\r\n", b"+PONG\r\n"),
        (
            b"GET\r\n",
            b"-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            b"NOSUCH x y\r\n",
            b"-ERR unknown command 'NOSUCH', with args beginning with: 'x' 'y' \r\n",
        ),
        // A stray RESP header on its own line is just an inline command.
        (
            b"$-1\r\n",
            b"-ERR unknown command '$-1', with args beginning with: \r\n",
        ),
        (
            b"\x01\x02garbage\r\n",
            b"-ERR unknown command '\x01\x02garbage', with args beginning with: \r\n",
        ),
        (b"MGET a nosuch\r\n", b"*2\r\n$3\r\nb c\r\n$-1\r\n"),
    ];
    for (input, expected) in cases {
        conn.send(input).unwrap();
        let got = conn
            .read_reply()
            .unwrap_or_else(|e| panic!("reply to {}: {e}", show(input)));
        assert_eq!(
            show(&got),
            show(expected),
            "reply to inline {}",
            show(input)
        );
    }
    conn.assert_cmd(&["PING"], b"+PONG\r\n");
}

#[test]
fn empty_and_negative_multibulk_lengths_are_ignored() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    for input in [&b"*0\r\n"[..], b"*-1\r\n", b"*-5\r\n"] {
        let mut bytes = input.to_vec();
        bytes.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        conn.send(&bytes).unwrap();
        let got = conn
            .read_reply()
            .unwrap_or_else(|e| panic!("after {}: {e}", show(input)));
        assert_eq!(show(&got), show(b"+PONG\r\n"), "{} then PING", show(input));
    }
}

/// Each input gets exactly this reply, then the server closes the connection.
#[test]
fn protocol_errors_reply_then_close() {
    let server = Server::forkdb(&[]);
    const BULK: &[u8] = b"-ERR Protocol error: invalid bulk length\r\n";
    const MULTIBULK: &[u8] = b"-ERR Protocol error: invalid multibulk length\r\n";
    const NESTED: &[u8] = b"-ERR Protocol error: expected '$', got '*'\r\n";
    const QUOTES: &[u8] = b"-ERR Protocol error: unbalanced quotes in request\r\n";
    // Sizes chosen so the server has read all of our bytes when it gives up (64 KiB + 1), so the
    // close is a clean FIN and not a reset that could eat the reply.
    let too_long = 64 * 1024 + 1;
    let big_inline = vec![b'A'; too_long];
    let mut big_mbulk = b"*".to_vec();
    big_mbulk.resize(too_long, b'1');
    let mut big_bulk = b"*1\r\n$".to_vec();
    big_bulk.resize(4 + too_long, b'1');
    let deep: Vec<u8> = b"*1\r\n".repeat(1000);

    let cases: Vec<(&str, Vec<u8>, &[u8])> = vec![
        (
            "bulk length over 512 MiB",
            b"*1\r\n$1000000000\r\n".to_vec(),
            BULK,
        ),
        (
            "bulk length 512 MiB + 1",
            b"*1\r\n$536870913\r\n".to_vec(),
            BULK,
        ),
        (
            "null bulk inside a command",
            b"*1\r\n$-1\r\n".to_vec(),
            BULK,
        ),
        ("negative bulk length", b"*1\r\n$-5\r\n".to_vec(), BULK),
        ("bulk length not a number", b"*1\r\n$abc\r\n".to_vec(), BULK),
        (
            "bulk length with a space",
            b"*1\r\n$ 4\r\nPING\r\n".to_vec(),
            BULK,
        ),
        (
            "bulk length with a leading zero",
            b"*1\r\n$04\r\nPING\r\n".to_vec(),
            BULK,
        ),
        (
            "multibulk length not a number",
            b"*abc\r\n".to_vec(),
            MULTIBULK,
        ),
        (
            "multibulk length too large",
            b"*3000000000\r\n".to_vec(),
            MULTIBULK,
        ),
        (
            "multibulk length with a plus",
            b"*+1\r\n$4\r\nPING\r\n".to_vec(),
            MULTIBULK,
        ),
        (
            "multibulk length with a leading zero",
            b"*01\r\n$4\r\nPING\r\n".to_vec(),
            MULTIBULK,
        ),
        (
            "nested array",
            b"*1\r\n*1\r\n*1\r\n$4\r\nPING\r\n".to_vec(),
            NESTED,
        ),
        ("deeply nested arrays", deep, NESTED),
        (
            "integer inside a command",
            b"*1\r\n:1\r\n".to_vec(),
            b"-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            "unbalanced inline quotes",
            b"SET a \"b c\r\n".to_vec(),
            QUOTES,
        ),
        (
            "text right after a closing quote",
            b"SET k \"a\"b\r\n".to_vec(),
            QUOTES,
        ),
        (
            "inline request over 64 KiB",
            big_inline,
            b"-ERR Protocol error: too big inline request\r\n",
        ),
        (
            "multibulk count over 64 KiB",
            big_mbulk,
            b"-ERR Protocol error: too big mbulk count string\r\n",
        ),
        (
            "bulk count over 64 KiB",
            big_bulk,
            b"-ERR Protocol error: too big bulk count string\r\n",
        ),
        (
            "valid command before the bad one is answered",
            b"*1\r\n$4\r\nPING\r\n*1\r\n*1\r\n".to_vec(),
            b"+PONG\r\n-ERR Protocol error: expected '$', got '*'\r\n",
        ),
    ];
    let mut failures = Vec::new();
    for (name, input, expected) in cases {
        let mut conn = server.conn();
        // A write error is fine: the server may close while we are still sending.
        let _ = conn.send(&input);
        match conn.wait_closed(CLOSE_TIMEOUT) {
            Some(got) if got == expected => {}
            Some(got) => failures.push(format!("{name}: got {} then close, want {}", show(&got), show(expected))),
            None => failures.push(format!(
                "{name}: connection still open after {CLOSE_TIMEOUT:?}; received {}, want {} then close",
                show(conn.pending()),
                show(expected)
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} protocol error cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The server is still fine for everyone else.
    server.conn().assert_cmd(&["PING"], b"+PONG\r\n");
}

#[test]
fn command_errors_keep_the_connection_open() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    let errors: &[&[&str]] = &[
        &["GET"],
        &["NOSUCHCOMMAND"],
        &["SET", "k", "v", "NX", "XX"],
        &["INCR", "k", "extra"],
        &["SELECT", "100"],
        &["CLIENT", "NOSUCH"],
    ];
    for cmd in errors {
        let reply = conn.cmd(cmd);
        assert!(
            reply.starts_with(b"-ERR "),
            "{cmd:?} should fail, got {}",
            show(&reply)
        );
        conn.assert_cmd(&["PING"], b"+PONG\r\n");
    }
}

#[test]
fn quit_replies_ok_and_closes() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    // The PING after QUIT is never answered.
    conn.send(b"PING\r\nQUIT\r\nPING\r\n").unwrap();
    let got = conn
        .wait_closed(CLOSE_TIMEOUT)
        .expect("server closes after QUIT");
    assert_eq!(show(&got), show(b"+PONG\r\n+OK\r\n"));
}

#[test]
fn large_binary_values_round_trip() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    let value: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    conn.assert_cmd(&[&b"SET"[..], b"big", &value], b"+OK\r\n");
    let mut expected = format!("${}\r\n", value.len()).into_bytes();
    expected.extend_from_slice(&value);
    expected.extend_from_slice(b"\r\n");
    let got = conn.cmd(&["GET", "big"]);
    assert!(
        got == expected,
        "GET big returned {} bytes, want {}",
        got.len(),
        expected.len()
    );
    conn.assert_cmd(
        &["STRLEN", "big"],
        format!(":{}\r\n", value.len()).as_bytes(),
    );
}

#[test]
fn shutdown_nosave_closes_clients_and_exits_zero() {
    let mut server = Server::forkdb(&[]);
    let mut other = server.conn();
    other.assert_cmd(&["PING"], b"+PONG\r\n");
    let mut conn = server.conn();
    conn.send_cmd(&["SHUTDOWN", "NOSAVE"]).unwrap();
    let got = conn
        .wait_closed(Duration::from_secs(10))
        .expect("SHUTDOWN closes the connection");
    assert_eq!(show(&got), show(b""), "SHUTDOWN sends no reply");
    assert!(
        other.wait_closed(Duration::from_secs(10)).is_some(),
        "other clients are disconnected"
    );
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("server exits after SHUTDOWN");
    assert!(
        status.success(),
        "exit status after SHUTDOWN NOSAVE: {status}"
    );
}
