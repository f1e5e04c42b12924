//! Sets beyond single replies (those are in `corpus/12_sets.txt`): what the set commands add to
//! the dirty counter and which WATCHes they break, both compared with redis-server; an SSCAN walk
//! over a hashtable that changes between calls; and the uniformity of random picks.

use std::collections::{HashMap, HashSet};

use forkdb_tests::{Conn, Frame, Server};

fn info_field(conn: &mut Conn, section: &str, field: &str) -> String {
    let text = conn
        .frame(&["INFO", section])
        .as_text()
        .expect("INFO is a bulk string");
    text.split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{text}"))
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Commands whose effect on `rdb_changes_since_last_save` does not depend on random picks.
const DIRTY_SCRIPT: &[&str] = &[
    "SADD s a b c",
    "SADD s a",
    "SADD s a d",
    "SREM s z",
    "SREM s a z b",
    "SADD i 1 2 3 4 5 6 7 8 9 10",
    "SPOP i 3",
    "SPOP i 0",
    "SPOP i",
    "SPOP i 100",
    "SPOP i 1",
    "SADD m 1 2 3",
    "SMOVE m n 1",
    "SMOVE m n 9",
    "SADD n 2",
    "SMOVE m n 2",
    "SMOVE m m 3",
    "SINTERSTORE d m n",
    "SINTERSTORE d m nokey",
    "SINTERSTORE d m nokey",
    "SUNIONSTORE d m n",
    "SDIFFSTORE d m m",
    "SDIFFSTORE d m m",
    "SREM m 3",
    "SREM s c d",
];

fn dirty_trace(server: &Server) -> Vec<String> {
    let mut conn = server.conn();
    let mut trace = Vec::new();
    for line in DIRTY_SCRIPT {
        let before: i64 = info_field(&mut conn, "persistence", "rdb_changes_since_last_save")
            .parse()
            .unwrap();
        let reply = conn.frame(&words(line));
        let after: i64 = info_field(&mut conn, "persistence", "rdb_changes_since_last_save")
            .parse()
            .unwrap();
        let shown = match reply {
            Frame::Integer(n) => n.to_string(),
            Frame::Error(e) => e,
            _ => "-".to_string(),
        };
        trace.push(format!("{line} -> {shown}, dirty +{}", after - before));
    }
    trace
}

/// Redis counts SADD, SREM and SPOP per element, SMOVE once per key changed, a *STORE once, and
/// nothing for a command that changed nothing.
#[test]
fn dirty_counter_matches_redis() {
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let want = dirty_trace(&redis);
    let got = dirty_trace(&forkdb);
    assert_eq!(got, want, "forkdb (left) vs redis-server (right)");
    // The comparison must have seen per-element counting, or it proves little.
    assert!(want.iter().any(|l| l.ends_with("dirty +3")), "{want:#?}");
}

/// (setup, the command another client runs while `k` is watched)
const WATCH_CASES: &[(&str, &str)] = &[
    ("SADD k a", "SADD k a"),
    ("SADD k a", "SADD k b"),
    ("SADD k a", "SREM k z"),
    ("SADD k a b", "SREM k a"),
    ("SADD k a", "SPOP k"),
    ("SADD k a", "SPOP k 0"),
    ("SADD k a", "SMOVE k other a"),
    ("SADD k a", "SMOVE src k a"),
    ("SADD src a", "SMOVE src k a"),
    ("SADD src a", "SMOVE src k b"),
    ("SADD src a", "SINTERSTORE k src"),
    ("SADD src a", "SINTERSTORE k src nokey"),
    ("SADD k a", "SINTERSTORE k src nokey"),
    ("SADD src a", "SDIFFSTORE k src src"),
    ("SADD src a", "SUNIONSTORE k src"),
    ("SADD k a", "SRANDMEMBER k 5"),
    ("SADD k a", "SINTERCARD 1 k"),
];

fn watch_outcomes(server: &Server) -> Vec<String> {
    let mut a = server.conn();
    let mut b = server.conn();
    let mut out = Vec::new();
    for (setup, cmd) in WATCH_CASES {
        a.frame(&["FLUSHALL"]);
        a.frame(&words(setup));
        a.frame(&["WATCH", "k"]);
        b.frame(&words(cmd));
        a.frame(&["MULTI"]);
        a.frame(&["PING"]);
        let exec = a.frame(&["EXEC"]);
        let broke = matches!(exec, Frame::NullArray | Frame::Null);
        out.push(format!("{setup}; {cmd} -> watch broken: {broke}"));
    }
    out
}

#[test]
fn watch_breaks_like_redis() {
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let want = watch_outcomes(&redis);
    let got = watch_outcomes(&forkdb);
    assert_eq!(got, want, "forkdb (left) vs redis-server (right)");
    assert!(want.iter().any(|l| l.ends_with("true")));
    assert!(want.iter().any(|l| l.ends_with("false")));
}

fn scan_page(conn: &mut Conn, cursor: &str) -> (String, Vec<String>) {
    match conn.frame(&["SSCAN", "big", cursor, "COUNT", "7"]) {
        Frame::Array(parts) if parts.len() == 2 => {
            let next = parts[0].as_text().expect("cursor");
            let Frame::Array(items) = &parts[1] else {
                panic!("SSCAN members: {:?}", parts[1]);
            };
            (next, items.iter().filter_map(Frame::as_text).collect())
        }
        other => panic!("SSCAN: {other:?}"),
    }
}

/// SSCAN's guarantee: a member present for the whole walk is returned, whatever is added and
/// removed between the calls.
#[test]
fn sscan_walk_survives_changes() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    let mut add = vec!["SADD".to_string(), "big".to_string()];
    add.extend((0..1000).map(|i| format!("m{i}")));
    assert_eq!(conn.frame(&add), Frame::Integer(1000));
    assert_eq!(
        conn.frame(&["OBJECT", "ENCODING", "big"]),
        Frame::Bulk(b"hashtable".to_vec())
    );
    let mut seen = HashSet::new();
    let mut removed = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, items) = scan_page(&mut conn, &cursor);
        seen.extend(items);
        calls += 1;
        // Between calls: remove one member seen and one not yet seen, add a new one.
        let victim_seen = seen.iter().find(|m| !removed.contains(*m)).cloned();
        let victim_unseen = (0..1000)
            .map(|i| format!("m{i}"))
            .find(|m| !seen.contains(m) && !removed.contains(m));
        for v in victim_seen.into_iter().chain(victim_unseen) {
            conn.frame(&["SREM", "big", &v]);
            removed.insert(v);
        }
        conn.frame(&["SADD", "big", &format!("new{calls}")]);
        cursor = next;
        if cursor == "0" {
            break;
        }
        assert!(calls < 10_000, "SSCAN does not end");
    }
    let missed: Vec<String> = (0..1000)
        .map(|i| format!("m{i}"))
        .filter(|m| !removed.contains(m) && !seen.contains(m))
        .collect();
    assert!(missed.is_empty(), "never returned: {missed:?}");
    assert!(calls > 10, "the walk should take many calls, took {calls}");
}

/// SRANDMEMBER with a negative count picks uniformly (each of 10 members about 1000 times in
/// 10000 picks; the bounds are ten standard deviations wide), in both encodings.
#[test]
fn random_picks_are_uniform() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    conn.frame(&[
        "SADD", "ints", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
    ]);
    conn.frame(&[
        "SADD", "strs", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j",
    ]);
    for key in ["ints", "strs"] {
        let Frame::Array(picks) = conn.frame(&["SRANDMEMBER", key, "-10000"]) else {
            panic!("SRANDMEMBER {key}");
        };
        assert_eq!(picks.len(), 10_000);
        let mut counts: HashMap<String, usize> = HashMap::new();
        for p in picks {
            *counts.entry(p.as_text().unwrap()).or_default() += 1;
        }
        assert_eq!(counts.len(), 10, "{key}: {counts:?}");
        assert!(
            counts.values().all(|&n| (700..=1300).contains(&n)),
            "{key}: {counts:?}"
        );
        // Distinct picks: a positive count below the size gives distinct members.
        let Frame::Array(distinct) = conn.frame(&["SRANDMEMBER", key, "7"]) else {
            panic!("SRANDMEMBER {key} 7");
        };
        let unique: HashSet<String> = distinct.iter().filter_map(Frame::as_text).collect();
        assert_eq!(unique.len(), 7, "{key}: {distinct:?}");
    }
}
