//! Access control and limits: requirepass, protected configs, the DEBUG switch, idle `timeout`,
//! `maxclients`, and refusing bad options at start-up. Reply texts are Redis 7.0's (checked with
//! FORKDB_E2E_TARGET=redis).

use std::time::{Duration, Instant};

use forkdb_tests::resp::show;
use forkdb_tests::server::{self, TempDir};
use forkdb_tests::{Checks, Conn, Server};

const NOAUTH: &[u8] = b"-NOAUTH Authentication required.\r\n";
const WRONGPASS: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
const HELLO_NOAUTH: &[u8] = b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the \
HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the \
same time\r\n";

#[test]
fn requirepass_blocks_everything_until_auth() {
    let server = Server::forkdb(&["--requirepass", "s3cret"]);
    let mut conn = server.conn();
    let mut checks = Checks::new();
    let blocked: &[&[&str]] = &[
        &["PING"],
        &["ECHO", "x"],
        &["GET", "k"],
        &["SET", "k", "v"],
        &["SELECT", "1"],
        &["SWAPDB", "0", "1"],
        &["DBSIZE"],
        &["KEYS", "*"],
        &["SCAN", "0"],
        &["FLUSHALL"],
        &["CLIENT", "ID"],
        &["CLIENT", "SETNAME", "x"],
        &["CONFIG", "GET", "requirepass"],
        &["CONFIG", "SET", "requirepass", ""],
        &["INFO"],
        &["TIME"],
        &["COMMAND", "COUNT"],
        &["MULTI"],
        &["WATCH", "k"],
        &["OBJECT", "ENCODING", "k"],
        &["SHUTDOWN", "NOSAVE"],
    ];
    for cmd in blocked {
        checks.cmd(&mut conn, cmd, NOAUTH);
    }
    // A refused EXEC says so in Redis's EXECABORT form.
    checks.cmd(
        &mut conn,
        &["EXEC"],
        b"-EXECABORT Transaction discarded because of: NOAUTH Authentication required.\r\n",
    );
    // So does the DEBUG switch (enable-debug-command is checked first).
    checks.cmd(&mut conn, &["DEBUG", "SLEEP", "0"], DEBUG_REFUSED);
    // Arity and unknown-command errors come before the authentication check, as in Redis.
    checks.cmd(
        &mut conn,
        &["GET"],
        b"-ERR wrong number of arguments for 'get' command\r\n",
    );
    checks.cmd(
        &mut conn,
        &["NOSUCH", "x"],
        b"-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n",
    );
    // HELLO without AUTH is refused with its own text; RESET is allowed.
    checks.cmd(&mut conn, &["HELLO", "3"], HELLO_NOAUTH);
    checks.cmd(&mut conn, &["HELLO", "2", "SETNAME", "x"], HELLO_NOAUTH);
    checks.cmd(&mut conn, &["RESET"], b"+RESET\r\n");

    checks.cmd(&mut conn, &["AUTH", "wrong"], WRONGPASS);
    checks.cmd(&mut conn, &["AUTH", "default", "wrong"], WRONGPASS);
    checks.cmd(&mut conn, &["AUTH", "nosuchuser", "s3cret"], WRONGPASS);
    checks.cmd(
        &mut conn,
        &["AUTH"],
        b"-ERR wrong number of arguments for 'auth' command\r\n",
    );
    checks.cmd(
        &mut conn,
        &["AUTH", "a", "b", "c"],
        b"-ERR syntax error\r\n",
    );
    checks.cmd(&mut conn, &["GET", "k"], NOAUTH);
    checks.cmd(&mut conn, &["AUTH", "s3cret"], b"+OK\r\n");
    checks.cmd(&mut conn, &["SET", "k", "v"], b"+OK\r\n");
    checks.cmd(&mut conn, &["GET", "k"], b"$1\r\nv\r\n");
    checks.cmd(
        &mut conn,
        &["CONFIG", "GET", "requirepass"],
        b"*2\r\n$11\r\nrequirepass\r\n$6\r\ns3cret\r\n",
    );

    // RESET drops the authentication again.
    checks.cmd(&mut conn, &["RESET"], b"+RESET\r\n");
    checks.cmd(&mut conn, &["GET", "k"], NOAUTH);
    checks.cmd(&mut conn, &["AUTH", "default", "s3cret"], b"+OK\r\n");
    checks.cmd(&mut conn, &["GET", "k"], b"$1\r\nv\r\n");

    // QUIT works unauthenticated.
    let mut other = server.conn();
    other.send(b"PING\r\nQUIT\r\n").unwrap();
    let got = other.wait_closed(Duration::from_secs(5));
    let want = [NOAUTH, b"+OK\r\n"].concat();
    checks.check(got.as_deref() == Some(&want[..]), || {
        format!(
            "PING, QUIT unauthenticated: got {:?} (None = still open), want {} then close",
            got.as_deref().map(show),
            show(&want)
        )
    });
    checks.finish();
}

#[test]
fn hello_with_auth() {
    let server = Server::forkdb(&["--requirepass", "s3cret"]);
    let mut conn = server.conn();
    conn.assert_cmd(&["HELLO", "3", "AUTH", "default", "wrong"], WRONGPASS);
    conn.assert_cmd(
        &["HELLO", "3", "AUTH", "default"],
        b"-ERR Syntax error in HELLO option 'AUTH'\r\n",
    );
    conn.assert_cmd(&["GET", "k"], NOAUTH);
    let hello = conn.frame(&[
        "HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "authed",
    ]);
    let forkdb_tests::Frame::Map(fields) = hello else {
        panic!("HELLO 3 reply is not a map: {hello:?}")
    };
    let proto = fields
        .iter()
        .find(|(k, _)| k.as_text().as_deref() == Some("proto"))
        .map(|(_, v)| v.clone());
    assert_eq!(proto, Some(forkdb_tests::Frame::Integer(3)));
    conn.assert_cmd(&["GET", "k"], b"_\r\n");
    conn.assert_cmd(&["CLIENT", "GETNAME"], b"$6\r\nauthed\r\n");

    // A CONFIG SET of requirepass applies to new connections.
    conn.assert_cmd(&["CONFIG", "SET", "requirepass", ""], b"+OK\r\n");
    server.conn().assert_cmd(&["PING"], b"+PONG\r\n");
}

#[test]
fn unauthenticated_clients_get_small_protocol_limits() {
    let server = Server::forkdb(&["--requirepass", "s3cret"]);
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"*11\r\n",
            b"-ERR Protocol error: unauthenticated multibulk length\r\n",
        ),
        (
            b"*1\r\n$16385\r\n",
            b"-ERR Protocol error: unauthenticated bulk length\r\n",
        ),
    ];
    for (input, expected) in cases {
        let mut conn = server.conn();
        conn.send(input).unwrap();
        let got = conn.wait_closed(Duration::from_secs(5));
        assert_eq!(
            got.as_deref().map(show),
            Some(show(expected)),
            "{} from an unauthenticated client",
            show(input)
        );
    }
    // An authenticated client may send more.
    let mut conn = server.conn();
    conn.assert_cmd(&["AUTH", "s3cret"], b"+OK\r\n");
    let mut big = vec!["MSET"];
    big.extend(std::iter::repeat_n(["k", "v"], 10).flatten());
    conn.assert_cmd(&big, b"+OK\r\n");
}

const PROTECTED_DIR: &[u8] =
    b"-ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config\r\n";

#[test]
fn protected_configs_are_refused_by_default() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    let dir_before = conn.cmd(&["CONFIG", "GET", "dir"]);
    conn.assert_cmd(&["CONFIG", "SET", "dir", "/tmp"], PROTECTED_DIR);
    conn.assert_cmd(
        &["CONFIG", "SET", "dbfilename", "other.rdb"],
        b"-ERR CONFIG SET failed (possibly related to argument 'dbfilename') - can't set protected config\r\n",
    );
    assert_eq!(
        show(&conn.cmd(&["CONFIG", "GET", "dir"])),
        show(&dir_before),
        "dir changed anyway"
    );
    conn.assert_cmd(
        &["CONFIG", "GET", "enable-protected-configs"],
        b"*2\r\n$24\r\nenable-protected-configs\r\n$2\r\nno\r\n",
    );
}

#[test]
fn protected_configs_allowed_when_enabled() {
    let server = Server::forkdb(&["--enable-protected-configs", "yes"]);
    let mut conn = server.conn();
    conn.assert_cmd(&["CONFIG", "SET", "dir", "/tmp"], b"+OK\r\n");
    conn.assert_cmd(
        &["CONFIG", "GET", "dir"],
        b"*2\r\n$3\r\ndir\r\n$4\r\n/tmp\r\n",
    );

    // `local` allows it from a loopback connection.
    let local = Server::forkdb(&["--enable-protected-configs", "local"]);
    let tmp = TempDir::new("protected");
    let path = tmp.path().to_str().unwrap();
    local
        .conn()
        .assert_cmd(&["CONFIG", "SET", "dir", path], b"+OK\r\n");
}

const DEBUG_REFUSED: &[u8] = b"-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", \
you can run it from a local connection, otherwise you need to set this option in the configuration file, and then \
restart the server.\r\n";

#[test]
fn debug_sleep_needs_enable_debug_command() {
    let server = Server::forkdb(&[]);
    server
        .conn()
        .assert_cmd(&["DEBUG", "SLEEP", "0"], DEBUG_REFUSED);

    let server = Server::forkdb(&["--enable-debug-command", "local"]);
    let mut conn = server.conn();
    conn.assert_cmd(&["DEBUG", "SLEEP", "0"], b"+OK\r\n");
    let start = Instant::now();
    conn.assert_cmd(&["DEBUG", "SLEEP", "0.3"], b"+OK\r\n");
    assert!(
        start.elapsed() >= Duration::from_millis(290),
        "DEBUG SLEEP 0.3 took {:?}",
        start.elapsed()
    );
}

#[test]
fn timeout_closes_idle_clients() {
    let server = Server::forkdb(&["--timeout", "1"]);
    let mut idle = server.conn();
    idle.assert_cmd(&["PING"], b"+PONG\r\n");
    let start = Instant::now();
    let got = idle
        .wait_closed(Duration::from_secs(5))
        .expect("idle client closed within 5 s of --timeout 1");
    let elapsed = start.elapsed();
    assert!(got.is_empty(), "server sent {} before closing", show(&got));
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed after only {elapsed:?} with --timeout 1"
    );
    server.conn().assert_cmd(
        &["CONFIG", "GET", "timeout"],
        b"*2\r\n$7\r\ntimeout\r\n$1\r\n1\r\n",
    );
}

#[test]
fn maxclients_refuses_the_extra_connection() {
    let server = Server::forkdb(&["--maxclients", "2"]);
    // The start-up check's connection may still be being torn down: retry until two are in.
    let connect_ok = || -> Conn {
        forkdb_tests::poll_until(
            Duration::from_secs(5),
            "a connection under maxclients",
            || {
                let mut c = server.conn();
                c.send(b"*1\r\n$4\r\nPING\r\n").ok()?;
                (c.read_reply().ok()? == b"+PONG\r\n").then_some(c)
            },
        )
    };
    let mut first = connect_ok();
    let mut second = connect_ok();
    let mut third = server.conn();
    let _ = third.send(b"*1\r\n$4\r\nPING\r\n");
    let got = third
        .wait_closed(Duration::from_secs(5))
        .expect("third connection is closed");
    assert_eq!(show(&got), show(b"-ERR max number of clients reached\r\n"));
    first.assert_cmd(&["PING"], b"+PONG\r\n");
    second.assert_cmd(
        &["CONFIG", "GET", "maxclients"],
        b"*2\r\n$10\r\nmaxclients\r\n$1\r\n2\r\n",
    );
    drop(first);
    // A slot frees up once a client leaves.
    let mut again = connect_ok();
    again.assert_cmd(&["ECHO", "in"], b"$2\r\nin\r\n");
}

/// Starts the server binary directly in a fresh directory and expects it to refuse to start.
fn start_expecting_failure(config: Option<&std::path::Path>, args: &[&str]) -> String {
    let dir = TempDir::new("badstart");
    server::start_expecting_failure(config, dir.path(), args)
}

#[test]
fn unknown_option_on_the_command_line_is_fatal() {
    let text = start_expecting_failure(None, &["--no-such-option-xyz", "1"]);
    assert!(
        text.contains("no-such-option-xyz"),
        "the error does not name the option:\n{text}"
    );
    let text = start_expecting_failure(None, &["--maxclients", "abc"]);
    assert!(
        text.contains("maxclients"),
        "the error does not name the option:\n{text}"
    );
}

#[test]
fn unknown_option_in_a_config_file_names_it_and_the_line() {
    let dir = TempDir::new("badconf");
    let config = dir.path().join("bad.conf");
    std::fs::write(
        &config,
        "# a comment\nappendonly no\nno-such-option-xyz yes\n",
    )
    .unwrap();
    let text = start_expecting_failure(Some(&config), &[]);
    assert!(
        text.contains("no-such-option-xyz"),
        "the error does not name the option:\n{text}"
    );
    assert!(
        text.contains("line 3"),
        "the error does not name line 3:\n{text}"
    );
}
