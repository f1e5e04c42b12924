//! Expiry in time: keys vanish when read after their TTL (lazy), vanish without being touched
//! (active), and INFO keyspace reports keys, expires and avg_ttl. Every wait is a poll with a
//! deadline.

use std::time::Duration;

use forkdb_tests::resp::{encode_command, show};
use forkdb_tests::{poll_until, Conn, Server};

const DEADLINE: Duration = Duration::from_secs(10);

fn integer(conn: &mut Conn, args: &[&str]) -> i64 {
    let reply = conn.cmd(args);
    let text = std::str::from_utf8(&reply).unwrap_or_default();
    text.strip_prefix(':')
        .and_then(|t| t.strip_suffix("\r\n"))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{args:?} gave {}", show(&reply)))
}

#[test]
fn lazy_expiry_on_read() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    conn.assert_cmd(&["SET", "long", "v", "EX", "1000"], b"+OK\r\n");
    conn.assert_cmd(&["SET", "short", "v", "PX", "50"], b"+OK\r\n");
    let pttl = integer(&mut conn, &["PTTL", "short"]);
    assert!(pttl <= 50, "PTTL right after PX 50: {pttl}");
    poll_until(DEADLINE, "GET of a PX 50 key to return nil", || {
        (conn.cmd(&["GET", "short"]) == b"$-1\r\n").then_some(())
    });
    conn.assert_cmd(&["EXISTS", "short"], b":0\r\n");
    conn.assert_cmd(&["TTL", "short"], b":-2\r\n");
    conn.assert_cmd(&["PTTL", "short"], b":-2\r\n");
    conn.assert_cmd(&["EXPIRETIME", "short"], b":-2\r\n");
    conn.assert_cmd(&["GET", "long"], b"$1\r\nv\r\n");
    conn.assert_cmd(&["DBSIZE"], b":1\r\n");

    // Every kind of read sees an expired key as missing.
    conn.assert_cmd(&["MSET", "a", "1", "b", "2"], b"+OK\r\n");
    conn.assert_cmd(&["PEXPIRE", "a", "30"], b":1\r\n");
    poll_until(DEADLINE, "EXISTS of a PEXPIRE 30 key to return 0", || {
        (conn.cmd(&["EXISTS", "a"]) == b":0\r\n").then_some(())
    });
    conn.assert_cmd(&["MGET", "a", "b"], b"*2\r\n$-1\r\n$1\r\n2\r\n");
    conn.assert_cmd(&["GETRANGE", "a", "0", "-1"], b"$0\r\n\r\n");
    conn.assert_cmd(&["STRLEN", "a"], b":0\r\n");
    conn.assert_cmd(&["TYPE", "a"], b"+none\r\n");
    conn.assert_cmd(&["INCR", "a"], b":1\r\n");
    conn.assert_cmd(&["TTL", "a"], b":-1\r\n");
}

#[test]
fn ttl_survives_rename_and_persist_stops_it() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    conn.assert_cmd(&["SET", "moved", "v", "PX", "100"], b"+OK\r\n");
    conn.assert_cmd(&["RENAME", "moved", "renamed"], b"+OK\r\n");
    conn.assert_cmd(&["SET", "kept", "v", "PX", "100"], b"+OK\r\n");
    conn.assert_cmd(&["PERSIST", "kept"], b":1\r\n");
    conn.assert_cmd(&["SET", "control", "v", "PX", "100"], b"+OK\r\n");
    poll_until(DEADLINE, "the control key to expire", || {
        (conn.cmd(&["EXISTS", "control"]) == b":0\r\n").then_some(())
    });
    poll_until(DEADLINE, "the renamed key to expire", || {
        (conn.cmd(&["EXISTS", "renamed"]) == b":0\r\n").then_some(())
    });
    conn.assert_cmd(&["GET", "kept"], b"$1\r\nv\r\n");
    conn.assert_cmd(&["TTL", "kept"], b":-1\r\n");
}

#[test]
fn active_expiry_removes_untouched_keys() {
    const EXPIRING: usize = 500;
    const PERSISTENT: usize = 10;
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    let mut pipeline = Vec::new();
    for i in 0..EXPIRING {
        pipeline.extend_from_slice(&encode_command(&[
            "SET",
            &format!("tmp:{i}"),
            "v",
            "PX",
            "100",
        ]));
    }
    for i in 0..PERSISTENT {
        pipeline.extend_from_slice(&encode_command(&["SET", &format!("keep:{i}"), "v"]));
    }
    conn.send(&pipeline).unwrap();
    for i in 0..EXPIRING + PERSISTENT {
        let reply = conn
            .read_reply()
            .unwrap_or_else(|e| panic!("reply {i}: {e}"));
        assert_eq!(reply, b"+OK\r\n", "reply {i}");
    }
    // DBSIZE and INFO do not touch keys, so only active expiry can bring the count down.
    let mut last = 0;
    poll_until(DEADLINE, "active expiry to remove the PX 100 keys", || {
        last = integer(&mut conn, &["DBSIZE"]);
        (last == PERSISTENT as i64).then_some(())
    });
    let keyspace = conn
        .frame(&["INFO", "keyspace"])
        .as_text()
        .unwrap_or_default();
    assert!(
        keyspace.contains(&format!("db0:keys={PERSISTENT},expires=0,avg_ttl=0\r\n")),
        "INFO keyspace after active expiry:\n{keyspace}"
    );
}

/// Parses `dbN:keys=K,expires=E,avg_ttl=T` lines of INFO keyspace.
fn keyspace_lines(info: &str) -> Vec<(u32, i64, i64, i64)> {
    let mut out = Vec::new();
    let mut lines = info.split("\r\n");
    assert_eq!(lines.next(), Some("# Keyspace"), "INFO keyspace:\n{info:?}");
    for line in lines.filter(|l| !l.is_empty()) {
        let (db, fields) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("bad keyspace line {line:?}"));
        let db: u32 = db
            .strip_prefix("db")
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("bad db in {line:?}"));
        let values: Vec<(&str, i64)> = fields
            .split(',')
            .map(|f| {
                let (k, v) = f
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad field in {line:?}"));
                (
                    k,
                    v.parse()
                        .unwrap_or_else(|_| panic!("bad number in {line:?}")),
                )
            })
            .collect();
        let names: Vec<&str> = values.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["keys", "expires", "avg_ttl"], "fields of {line:?}");
        out.push((db, values[0].1, values[1].1, values[2].1));
    }
    assert!(
        info.ends_with("\r\n"),
        "INFO keyspace must end with CRLF: {info:?}"
    );
    out
}

#[test]
fn info_keyspace_counts_keys_and_expires() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    let info = |conn: &mut Conn| {
        conn.frame(&["INFO", "keyspace"])
            .as_text()
            .expect("INFO is a bulk string")
    };
    assert_eq!(info(&mut conn), "# Keyspace\r\n");

    conn.assert_cmd(&["SET", "plain", "v"], b"+OK\r\n");
    conn.assert_cmd(&["SET", "ex", "v", "EX", "1000"], b"+OK\r\n");
    conn.assert_cmd(&["SET", "px", "v", "PX", "2000000"], b"+OK\r\n");
    conn.assert_cmd(&["SELECT", "3"], b"+OK\r\n");
    conn.assert_cmd(&["SET", "other", "v", "EX", "100"], b"+OK\r\n");
    conn.assert_cmd(&["SELECT", "11"], b"+OK\r\n");
    conn.assert_cmd(&["MSET", "x", "1", "y", "2"], b"+OK\r\n");

    let text = info(&mut conn);
    let dbs = keyspace_lines(&text);
    assert_eq!(
        dbs.iter().map(|d| (d.0, d.1, d.2)).collect::<Vec<_>>(),
        [(0, 3, 2), (3, 1, 1), (11, 2, 0)],
        "{text}"
    );
    for (db, _, expires, avg_ttl) in &dbs {
        let max = if *db == 0 { 2_000_000 } else { 100_000 };
        assert!(
            (0..=max).contains(avg_ttl),
            "db{db} avg_ttl={avg_ttl} (expires={expires})"
        );
        if *expires == 0 {
            assert_eq!(*avg_ttl, 0, "db{db} without expires");
        }
    }
    // Exact text for a database without TTLs (matches Redis byte for byte).
    assert!(
        text.contains("\r\ndb11:keys=2,expires=0,avg_ttl=0\r\n"),
        "{text}"
    );

    conn.assert_cmd(&["SELECT", "0"], b"+OK\r\n");
    conn.assert_cmd(&["PERSIST", "ex"], b":1\r\n");
    conn.assert_cmd(&["DEL", "px"], b":1\r\n");
    let text = info(&mut conn);
    assert!(
        text.starts_with("# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n"),
        "{text}"
    );
    conn.assert_cmd(&["FLUSHALL"], b"+OK\r\n");
    assert_eq!(info(&mut conn), "# Keyspace\r\n");
}
