//! redis-cli against the server: commands as arguments, raw and `--no-raw` output, commands on
//! stdin, `-x`, `-3` (RESP3), INFO, and `--pipe` mass insertion; and redis-benchmark's default
//! run.

use std::process::{Command, Output};
use std::time::Duration;

use forkdb_tests::server::{redis_benchmark_bin, redis_cli_bin, run_with_deadline};
use forkdb_tests::Server;

const CLI_TIMEOUT: Duration = Duration::from_secs(20);

fn cli(server: &Server, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(redis_cli_bin());
    cmd.args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(args);
    run_with_deadline(cmd, stdin, CLI_TIMEOUT)
}

/// Runs redis-cli and returns its stdout, asserting it exited 0 with nothing on stderr.
#[track_caller]
fn cli_ok(server: &Server, args: &[&str], stdin: Option<&[u8]>) -> String {
    let out = cli(server, args, stdin);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "redis-cli {args:?} exited with {}: {stdout}{stderr}",
        out.status
    );
    assert!(
        stderr.is_empty(),
        "redis-cli {args:?} wrote to stderr: {stderr}"
    );
    stdout
}

#[test]
fn commands_as_arguments() {
    let server = Server::forkdb(&[]);
    let cases: &[(&[&str], &str)] = &[
        (&["SET", "k", "v"], "OK\n"),
        (&["GET", "k"], "v\n"),
        (&["--no-raw", "GET", "k"], "\"v\"\n"),
        (&["GET", "missing"], "\n"),
        (&["--no-raw", "GET", "missing"], "(nil)\n"),
        (&["--no-raw", "INCR", "n"], "(integer) 1\n"),
        (
            &["--no-raw", "MGET", "k", "missing", "n"],
            "1) \"v\"\n2) (nil)\n3) \"1\"\n",
        ),
        (
            &["--no-raw", "INCR", "k"],
            "(error) ERR value is not an integer or out of range\n",
        ),
        (
            &["INCR", "k"],
            "ERR value is not an integer or out of range\n\n",
        ),
        (&["SET", "spaced", "a b"], "OK\n"),
        (&["--no-raw", "GET", "spaced"], "\"a b\"\n"),
        (&["--no-raw", "EXPIRE", "k", "100"], "(integer) 1\n"),
        (&["TTL", "k"], "100\n"),
        (&["--no-raw", "DBSIZE"], "(integer) 3\n"),
    ];
    let mut failures = Vec::new();
    for (args, expected) in cases {
        let out = cli(&server, args, None);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        if !out.status.success() || stdout != *expected || !stderr.is_empty() {
            failures.push(format!(
                "redis-cli {args:?}: exit {}, stdout {stdout:?}, stderr {stderr:?}; want {expected:?}",
                out.status
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} redis-cli runs differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn commands_on_stdin() {
    let server = Server::forkdb(&[]);
    let out = cli_ok(
        &server,
        &[],
        Some(b"SET a b\nGET a\nAPPEND a cd\nGET a\nINCR a\nPING\n"),
    );
    assert_eq!(
        out,
        "OK\nb\n3\nbcd\nERR value is not an integer or out of range\n\nPONG\n"
    );
    // -x: the last argument comes from stdin.
    assert_eq!(
        cli_ok(&server, &["-x", "SET", "xk"], Some(b"hello\x00world")),
        "OK\n"
    );
    assert_eq!(
        cli_ok(&server, &["--no-raw", "GET", "xk"], None),
        "\"hello\\x00world\"\n"
    );
}

#[test]
fn resp3_with_dash_3() {
    let server = Server::forkdb(&[]);
    // A map only prints like this when the server really sent a RESP3 map.
    assert_eq!(
        cli_ok(
            &server,
            &["-3", "--no-raw", "CONFIG", "GET", "maxclients"],
            None
        ),
        "1# \"maxclients\" => \"10000\"\n"
    );
    assert_eq!(
        cli_ok(&server, &["--no-raw", "CONFIG", "GET", "maxclients"], None),
        "1) \"maxclients\"\n2) \"10000\"\n"
    );
    assert_eq!(
        cli_ok(&server, &["-3", "--no-raw", "GET", "missing"], None),
        "(nil)\n"
    );
    assert_eq!(cli_ok(&server, &["-3", "SET", "k", "v"], None), "OK\n");
    assert_eq!(
        cli_ok(&server, &["-3", "--no-raw", "MGET", "k", "missing"], None),
        "1) \"v\"\n2) (nil)\n"
    );
    let hello = cli_ok(&server, &["-3", "--no-raw", "HELLO", "3"], None);
    assert!(
        hello.contains("\"proto\" => (integer) 3"),
        "HELLO 3 under -3:\n{hello}"
    );
}

#[test]
fn info_server_names_port_and_pid() {
    let server = Server::forkdb(&[]);
    let info = cli_ok(&server, &["INFO", "server"], None);
    let lines: Vec<&str> = info.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(
        lines.first().copied(),
        Some("# Server"),
        "INFO server:\n{info}"
    );
    let port_line = format!("tcp_port:{}", server.port);
    let pid_line = format!("process_id:{}", server.pid);
    assert!(
        lines.contains(&port_line.as_str()),
        "no {port_line:?} in INFO server:\n{info}"
    );
    assert!(
        lines.contains(&pid_line.as_str()),
        "no {pid_line:?} in INFO server:\n{info}"
    );
    for line in &lines[1..] {
        if !line.is_empty() {
            assert!(line.contains(':'), "INFO line without a colon: {line:?}");
        }
    }
}

#[test]
fn pipe_mass_insert() {
    const N: usize = 1000;
    let server = Server::forkdb(&[]);
    let mut input = Vec::new();
    for i in 0..N {
        input.extend_from_slice(&forkdb_tests::resp::encode_command(&[
            "SET",
            &format!("key:{i}"),
            &format!("val:{i}"),
        ]));
    }
    let out = cli_ok(&server, &["--pipe"], Some(&input));
    assert!(
        out.contains(&format!("errors: 0, replies: {N}")),
        "redis-cli --pipe said:\n{out}"
    );
    assert_eq!(cli_ok(&server, &["DBSIZE"], None), format!("{N}\n"));
    assert_eq!(cli_ok(&server, &["GET", "key:777"], None), "val:777\n");

    // Errors are counted and make redis-cli exit 1.
    let out = cli(
        &server,
        &["--pipe"],
        Some(b"SET a b\r\nINCR a\r\nSET c d\r\n"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "redis-cli --pipe with an error: {stdout}"
    );
    assert!(
        stdout.contains("errors: 1, replies: 3"),
        "redis-cli --pipe said:\n{stdout}"
    );
}

/// The tests of a default `redis-benchmark` run (short), in order; panics unless it exited 0
/// with nothing on stderr (a server's error reply makes it print "Error from server" there and
/// exit 1).
fn default_benchmark_tests(server: &Server) -> Vec<String> {
    let mut cmd = Command::new(redis_benchmark_bin());
    cmd.args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-n", "2000", "-c", "10", "--csv"]);
    let out = run_with_deadline(cmd, None, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stderr.is_empty(),
        "redis-benchmark exited with {}: {stdout}{stderr}",
        out.status
    );
    stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .map(|t| t.trim_matches('"').to_owned())
        .collect()
}

/// The default redis-benchmark run completes against forkdb, every test of it, as against
/// redis-server.
#[test]
fn default_benchmark_run_completes() {
    let want = default_benchmark_tests(&Server::redis(&[]));
    assert!(want.len() >= 20, "redis-server's run: {want:?}");
    assert_eq!(default_benchmark_tests(&Server::forkdb(&[])), want);
}
