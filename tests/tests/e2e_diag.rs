//! Redis's diagnostics against forkdb and redis-server doing the same: MONITOR from two clients
//! with MULTI, SLOWLOG entries, the `fork` latency event of a BGSAVE, LATENCY HISTOGRAM and INFO
//! latencystats, CLIENT LIST of the running command, and redis-cli's --memkeys and --bigkeys.

use std::process::Command;
use std::time::{Duration, Instant};

use forkdb_tests::server::{redis_cli_bin, run_with_deadline};
use forkdb_tests::{Conn, Frame, Server};

/// MONITOR lines with the parts that differ between runs (time, client port) masked.
fn masked_monitor_lines(raw: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(raw)
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| {
            // "+1700000000.123456 [0 127.0.0.1:5555] ..."
            let (time, rest) = l.split_once(' ').unwrap_or((l, ""));
            assert!(
                time.starts_with('+')
                    && time[1..].split_once('.').is_some_and(|(s, us)| {
                        s.parse::<u64>().is_ok() && us.len() == 6 && us.parse::<u32>().is_ok()
                    }),
                "bad MONITOR time in {l:?}"
            );
            let (client, args) = rest.split_once("] ").unwrap_or((rest, ""));
            let (db, addr) = client.split_once(' ').unwrap_or(("", ""));
            let ip = addr.rsplit_once(':').map_or("", |(ip, _)| ip);
            format!("{db} {ip}] {args}")
        })
        .collect()
}

/// Reads from a MONITOR connection until `count` lines came (or the deadline).
fn read_monitor(conn: &mut Conn, count: usize) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    let mut lines = 0;
    conn.set_read_timeout(Duration::from_millis(200));
    while lines < count && Instant::now() < deadline {
        if let Ok(r) = conn.read_reply() {
            lines += 1;
            out.extend_from_slice(&r);
        }
    }
    out
}

fn monitor_session(server: &Server) -> Vec<String> {
    let mut mon = server.conn();
    mon.assert_cmd(&["MONITOR"], b"+OK\r\n");
    let (mut a, mut b) = (server.conn(), server.conn());
    a.cmd(&["SET", "k", "a b\"c\n\x01\u{e9}\\"]);
    b.cmd(&["MULTI"]);
    a.cmd(&["SELECT", "3"]);
    b.cmd(&["SET", "x", "1"]);
    a.cmd(&["GET", "nosuch"]);
    b.cmd(&["INCR", "x"]);
    // Rejected (unknown, arity) and admin commands are not shown.
    a.cmd(&["NOSUCH"]);
    a.cmd(&["GET"]);
    a.cmd(&["CONFIG", "GET", "port"]);
    // The queued commands show at EXEC, before EXEC itself.
    b.cmd(&["EXEC"]);
    // Secrets are redacted; a failed AUTH still shows.
    a.cmd(&["AUTH", "secret"]);
    a.cmd(&["HELLO", "2", "AUTH", "user", "pw"]);
    a.cmd(&["PING"]);
    let lines = masked_monitor_lines(&read_monitor(&mut mon, 10));
    // The monitor may not touch the keyspace.
    let raw = mon.cmd(&["GET", "k"]);
    assert_eq!(raw, b"-ERR Replica can't interact with the keyspace\r\n");
    lines
}

#[test]
fn monitor_two_clients_with_multi_as_redis() {
    let forkdb = Server::forkdb(&[]);
    let redis = Server::redis(&[]);
    let got = monitor_session(&forkdb);
    let want = monitor_session(&redis);
    assert_eq!(got, want, "MONITOR lines (time and port masked)");
    assert_eq!(want.len(), 10, "{want:#?}");
}

#[test]
fn monitor_is_left_with_reset_and_closed_monitors_are_dropped() {
    let server = Server::forkdb(&[]);
    let mut mon = server.conn();
    mon.assert_cmd(&["MONITOR"], b"+OK\r\n");
    let mut list = server.conn();
    let text = String::from_utf8_lossy(&list.cmd(&["CLIENT", "LIST"])).into_owned();
    assert!(text.contains("flags=O"), "{text}");
    mon.assert_cmd(&["RESET"], b"+RESET\r\n");
    list.cmd(&["SET", "a", "1"]);
    mon.assert_cmd(&["GET", "a"], b"$1\r\n1\r\n");
    // A second monitor that goes away does not stop the feed for the others.
    let mut gone = server.conn();
    gone.assert_cmd(&["MONITOR"], b"+OK\r\n");
    drop(gone);
    mon.assert_cmd(&["MONITOR"], b"+OK\r\n");
    list.cmd(&["SET", "b", "2"]);
    let lines = masked_monitor_lines(&read_monitor(&mut mon, 1));
    assert_eq!(lines, vec!["[0 127.0.0.1] \"SET\" \"b\" \"2\""]);
}

/// The arguments and client name of every SLOWLOG GET entry (id, time, duration and address
/// differ between servers; their presence and type are checked).
fn slowlog_args(conn: &mut Conn) -> Vec<(Vec<Vec<u8>>, Vec<u8>)> {
    let Frame::Array(entries) = conn.frame(&["SLOWLOG", "GET", "-1"]) else {
        panic!("SLOWLOG GET is not an array");
    };
    entries
        .into_iter()
        .map(|e| {
            let Frame::Array(f) = e else {
                panic!("entry {e:?}")
            };
            assert_eq!(f.len(), 6, "{f:?}");
            assert!(matches!(f[0], Frame::Integer(n) if n >= 0));
            assert!(matches!(f[1], Frame::Integer(t) if t > 1_600_000_000));
            assert!(matches!(f[2], Frame::Integer(us) if us >= 0));
            let Frame::Array(args) = &f[3] else {
                panic!("args {f:?}")
            };
            let Frame::Bulk(addr) = &f[4] else {
                panic!("addr {f:?}")
            };
            assert!(addr.starts_with(b"127.0.0.1:"), "{f:?}");
            let Frame::Bulk(name) = &f[5] else {
                panic!("name {f:?}")
            };
            let args = args
                .iter()
                .map(|a| match a {
                    Frame::Bulk(b) => b.clone(),
                    other => panic!("arg {other:?}"),
                })
                .collect();
            (args, name.clone())
        })
        .collect()
}

fn slowlog_session(server: &Server) -> Vec<(Vec<Vec<u8>>, Vec<u8>)> {
    let mut c = server.conn();
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["CLIENT", "SETNAME", "probe"]);
    let long = "x".repeat(200);
    c.cmd(&["SET", "k", &long]);
    let many: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let mut del = vec!["DEL"];
    del.extend(many.iter().map(String::as_str));
    c.cmd(&del);
    c.cmd(&["AUTH", "pw"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["GET", "k"]);
    c.cmd(&["EXEC"]);
    let entries = slowlog_args(&mut c);
    // SLOWLOG GET logged itself.
    assert_eq!(
        c.cmd(&["SLOWLOG", "LEN"]),
        format!(":{}\r\n", entries.len() + 1).into_bytes()
    );
    entries
}

#[test]
fn slowlog_entries_as_redis() {
    let forkdb = Server::forkdb(&[]);
    let redis = Server::redis(&[]);
    let got = slowlog_session(&forkdb);
    let want = slowlog_session(&redis);
    assert_eq!(got, want);
    // Trimmed as Redis trims: 128 bytes then "... (72 more bytes)"; 31 arguments then
    // "... (10 more arguments)".
    assert!(want
        .iter()
        .any(|(a, _)| a.len() == 32 && a[31] == b"... (10 more arguments)"));
    assert!(want
        .iter()
        .any(|(a, _)| a.len() == 3 && a[2].ends_with(b"... (72 more bytes)")));
}

fn info_field(conn: &mut Conn, section: &str, field: &str) -> Option<String> {
    let text = conn.frame(&["INFO", section]).as_text()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
}

/// After a BGSAVE with `latency-monitor-threshold 1`, LATENCY LATEST/HISTORY have a `fork`
/// event of `latest_fork_usec / 1000` ms exactly when that reaches the threshold (Redis's
/// `latencyAddSampleIfNeeded("fork", ...)`). ~70 MiB of keys make the fork take a few ms here.
fn fork_event(server: &Server) -> (u64, Vec<Frame>, Frame) {
    let mut c = server.conn();
    c.assert_cmd(&["DEBUG", "POPULATE", "300000", "key", "100"], b"+OK\r\n");
    c.assert_cmd(
        &["CONFIG", "SET", "latency-monitor-threshold", "1"],
        b"+OK\r\n",
    );
    c.assert_cmd(&["LATENCY", "RESET"], b":0\r\n");
    c.cmd(&["BGSAVE"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(&mut c, "persistence", "rdb_bgsave_in_progress").as_deref() != Some("0") {
        assert!(Instant::now() < deadline, "BGSAVE did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    let fork_usec: u64 = info_field(&mut c, "stats", "latest_fork_usec")
        .and_then(|v| v.parse().ok())
        .expect("latest_fork_usec");
    let Frame::Array(latest) = c.frame(&["LATENCY", "LATEST"]) else {
        panic!("LATENCY LATEST")
    };
    let history = c.frame(&["LATENCY", "HISTORY", "fork"]);
    (fork_usec, latest, history)
}

fn check_fork_event(kind: &str, (fork_usec, latest, history): (u64, Vec<Frame>, Frame)) {
    let fork: Vec<&Frame> = latest
        .iter()
        .filter(|row| matches!(row, Frame::Array(f) if f.first() == Some(&Frame::Bulk(b"fork".to_vec()))))
        .collect();
    let ms = (fork_usec / 1000) as i64;
    if ms < 1 {
        assert!(fork.is_empty(), "{kind}: fork of {fork_usec} µs recorded");
        return;
    }
    let Some(Frame::Array(row)) = fork.first() else {
        panic!("{kind}: no fork event after a fork of {fork_usec} µs: {latest:?}");
    };
    assert_eq!(row.len(), 4, "{kind}: {row:?}");
    assert_eq!(row[2], Frame::Integer(ms), "{kind}: latest {row:?}");
    assert_eq!(row[3], Frame::Integer(ms), "{kind}: max {row:?}");
    let Frame::Array(samples) = history else {
        panic!("{kind}: history {history:?}")
    };
    assert_eq!(samples.len(), 1, "{kind}: {samples:?}");
    assert!(
        matches!(&samples[0], Frame::Array(s) if s.len() == 2 && s[1] == Frame::Integer(ms)),
        "{kind}: {samples:?}"
    );
}

#[test]
fn latency_records_the_fork_as_redis() {
    let args = ["--enable-debug-command", "yes"];
    let forkdb = Server::forkdb(&args);
    check_fork_event("forkdb", fork_event(&forkdb));
    drop(forkdb);
    let redis = Server::redis(&args);
    check_fork_event("redis", fork_event(&redis));
}

#[test]
fn latency_histogram_and_latencystats() {
    let server = Server::forkdb(&[]);
    let mut c = server.conn();
    for _ in 0..5 {
        c.cmd(&["SET", "a", "1"]);
    }
    let Frame::Array(map) = c.frame(&["LATENCY", "HISTOGRAM", "set", "nosuch"]) else {
        panic!("LATENCY HISTOGRAM")
    };
    assert_eq!(map.len(), 2, "{map:?}");
    assert_eq!(map[0], Frame::Bulk(b"set".to_vec()));
    let Frame::Array(cdf) = &map[1] else {
        panic!("{map:?}")
    };
    assert_eq!(cdf[0], Frame::Bulk(b"calls".to_vec()));
    assert_eq!(cdf[1], Frame::Integer(5));
    assert_eq!(cdf[2], Frame::Bulk(b"histogram_usec".to_vec()));
    let Frame::Array(buckets) = &cdf[3] else {
        panic!("{cdf:?}")
    };
    // Cumulative: the last bucket counts every call.
    assert_eq!(buckets.last(), Some(&Frame::Integer(5)), "{buckets:?}");
    let line = info_field(&mut c, "latencystats", "latency_percentiles_usec_set")
        .expect("latencystats has set");
    let keys: Vec<&str> = line
        .split(',')
        .map(|kv| kv.split_once('=').expect(&line).0)
        .collect();
    assert_eq!(keys, ["p50", "p99", "p99.9"], "{line}");
    c.assert_cmd(
        &["CONFIG", "SET", "latency-tracking-info-percentiles", "90"],
        b"+OK\r\n",
    );
    let line = info_field(&mut c, "latencystats", "latency_percentiles_usec_set").unwrap();
    assert!(line.starts_with("p90=") && !line.contains(','), "{line}");
    c.assert_cmd(&["CONFIG", "RESETSTAT"], b"+OK\r\n");
    assert_eq!(
        info_field(&mut c, "latencystats", "latency_percentiles_usec_set"),
        None
    );
}

/// `cmd`, `argv-mem` and `multi-mem` of CLIENT INFO for the running command and in MULTI.
fn client_fields(server: &Server) -> Vec<String> {
    let mut c = server.conn();
    let mut out = Vec::new();
    let pick = |text: &str| -> String {
        text.split_whitespace()
            .filter(|f| {
                ["cmd=", "argv-mem=", "multi-mem=", "multi=", "flags="]
                    .iter()
                    .any(|p| f.starts_with(p))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    out.push(pick(&c.frame(&["CLIENT", "INFO"]).as_text().unwrap()));
    let Frame::Integer(id) = c.frame(&["CLIENT", "ID"]) else {
        panic!("CLIENT ID")
    };
    let id = id.to_string();
    out.push(pick(
        &c.frame(&["CLIENT", "LIST", "ID", &id]).as_text().unwrap(),
    ));
    c.cmd(&["MULTI"]);
    c.cmd(&["SET", "key", "value"]);
    c.cmd(&["GET", "key"]);
    let mut other = server.conn();
    let list = other.frame(&["CLIENT", "LIST"]).as_text().unwrap();
    let mine = list.lines().find(|l| l.contains("cmd=get")).unwrap_or("");
    out.push(pick(mine));
    c.cmd(&["EXEC"]);
    let list = other.frame(&["CLIENT", "LIST"]).as_text().unwrap();
    let mine = list.lines().find(|l| l.contains("cmd=exec")).unwrap_or("");
    out.push(pick(mine));
    out
}

#[test]
fn client_list_shows_the_running_command_as_redis() {
    let forkdb = Server::forkdb(&[]);
    let redis = Server::redis(&[]);
    assert_eq!(client_fields(&forkdb), client_fields(&redis));
}

fn cli(server: &Server, args: &[&str]) -> String {
    let mut cmd = Command::new(redis_cli_bin());
    cmd.args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(args);
    let out = run_with_deadline(cmd, None, Duration::from_secs(30));
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn redis_cli_memkeys_and_bigkeys() {
    let server = Server::forkdb(&[]);
    let mut c = server.conn();
    for i in 0..20 {
        c.cmd(&["SET", &format!("small{i}"), "v"]);
    }
    c.cmd(&["SET", "the-big-one", &"x".repeat(5000)]);
    let big = cli(&server, &["--bigkeys"]);
    assert!(
        big.contains("Biggest string found '\"the-big-one\"' has 5000 bytes")
            || big.contains("Biggest string found \"the-big-one\" has 5000 bytes"),
        "{big}"
    );
    assert!(big.contains("21 strings"), "{big}");
    let mem = cli(&server, &["--memkeys"]);
    assert!(mem.contains("the-big-one"), "{mem}");
    assert!(mem.contains("21 strings"), "{mem}");
    // MEMORY USAGE grows with the value (forkdb's own figure: key, value and entry bytes).
    let usage = |c: &mut Conn, k: &str| match c.frame(&["MEMORY", "USAGE", k]) {
        Frame::Integer(n) => n,
        f => panic!("{f:?}"),
    };
    let (small, large) = (usage(&mut c, "small0"), usage(&mut c, "the-big-one"));
    assert!(large - small >= 4999, "{small} {large}");
    // A key of up to 23 bytes lives in its table entry; a longer one has an allocation of its
    // own (its bytes and malloc's 16-byte header): the same value under both.
    let short = "k".repeat(23);
    let long = "k".repeat(40);
    for k in [&short, &long] {
        c.cmd(&["SET", k, "v"]);
    }
    let (s, l) = (usage(&mut c, &short), usage(&mut c, &long));
    assert_eq!(l - s, 40 + 16, "{s} {l}");
    assert!(
        (64..=128).contains(&s),
        "a short key with a short value: {s}"
    );
}
