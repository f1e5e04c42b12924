//! Hashes beyond what the corpus can compare byte for byte: the dirty counter each command adds
//! (compared with redis-server's), HSCAN walks of a hashtable-encoded hash (every field exactly
//! as HGETALL has it, also while fields are deleted during the walk), and HRANDFIELD's promises
//! (distinct fields for a positive count, repetitions for a negative one) on both encodings.

use std::collections::{BTreeMap, BTreeSet};

use forkdb_tests::{Conn, Frame, Server};

fn info_field(conn: &mut Conn, section: &str, name: &str) -> i64 {
    let Frame::Bulk(text) = conn.frame(&["INFO", section]) else {
        panic!("INFO {section}: not a bulk reply");
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {name}"))
}

fn bulk_strings(f: &Frame) -> Vec<Vec<u8>> {
    match f {
        Frame::Array(items) => items
            .iter()
            .map(|i| match i {
                Frame::Bulk(b) => b.clone(),
                other => panic!("not a bulk string: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// The commands and what each adds to `rdb_changes_since_last_save`, as redis-server counts it.
const DIRTY_SCRIPT: &[&[&str]] = &[
    &["HSET", "h", "a", "1", "b", "2", "c", "3"],
    &["HSET", "h", "a", "1"],
    &["HMSET", "h", "d", "4", "e", "5"],
    &["HSETNX", "h", "a", "x"],
    &["HSETNX", "h", "z", "x"],
    &["HDEL", "h", "a", "b", "nosuch"],
    &["HDEL", "h", "nosuch"],
    &["HDEL", "missing", "a"],
    &["HINCRBY", "h", "n", "5"],
    &["HINCRBYFLOAT", "h", "n", "1.5"],
    &["HINCRBY", "h", "z", "1"],
    &["HGET", "h", "a"],
    &["HDEL", "h", "c", "d", "e", "n", "z"],
    &["HSET", "s", "f"],
];

fn dirty_steps(server: &Server) -> Vec<i64> {
    let mut conn = server.conn();
    conn.cmd(&["CONFIG", "SET", "save", ""]);
    let mut steps = Vec::new();
    let mut before = info_field(&mut conn, "persistence", "rdb_changes_since_last_save");
    for cmd in DIRTY_SCRIPT {
        conn.cmd(cmd);
        let after = info_field(&mut conn, "persistence", "rdb_changes_since_last_save");
        steps.push(after - before);
        before = after;
    }
    steps
}

#[test]
fn dirty_counter_counts_like_redis() {
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let want = dirty_steps(&redis);
    let got = dirty_steps(&forkdb);
    let diffs: Vec<String> = DIRTY_SCRIPT
        .iter()
        .zip(want.iter().zip(&got))
        .filter(|(_, (w, g))| w != g)
        .map(|(c, (w, g))| format!("{c:?}: redis +{w}, forkdb +{g}"))
        .collect();
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// Fills a hash past the listpack thresholds.
fn fill_table(conn: &mut Conn, key: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut args = vec!["HSET".to_string(), key.to_string()];
        for i in chunk {
            args.push(format!("field:{i}"));
            args.push(format!("value:{i}"));
        }
        conn.cmd(&args);
    }
    assert_eq!(
        conn.cmd(&["OBJECT", "ENCODING", key]),
        b"$9\r\nhashtable\r\n"
    );
}

fn scan_all(
    conn: &mut Conn,
    key: &str,
    count: &str,
    mut between: impl FnMut(&mut Conn, &[Vec<u8>]),
) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut seen = BTreeMap::new();
    let mut cursor = b"0".to_vec();
    for _ in 0..100_000 {
        let Frame::Array(parts) = conn.frame(&[
            &b"HSCAN"[..],
            key.as_bytes(),
            &cursor,
            b"COUNT",
            count.as_bytes(),
        ]) else {
            panic!("HSCAN: not an array");
        };
        let Frame::Bulk(next) = &parts[0] else {
            panic!("HSCAN cursor: {:?}", parts[0]);
        };
        let items = bulk_strings(&parts[1]);
        assert_eq!(items.len() % 2, 0);
        let fields: Vec<Vec<u8>> = items.chunks(2).map(|p| p[0].clone()).collect();
        for p in items.chunks(2) {
            seen.insert(p[0].clone(), p[1].clone());
        }
        between(conn, &fields);
        cursor = next.clone();
        if cursor == b"0" {
            return seen;
        }
    }
    panic!("HSCAN of {key} did not end");
}

#[test]
fn hscan_walks_a_hashtable_whole() {
    for server in [Server::redis(&[]), Server::forkdb(&[])] {
        let name = server.kind.name();
        let mut conn = server.conn();
        fill_table(&mut conn, "big", 1000);
        let all = bulk_strings(&conn.frame(&["HGETALL", "big"]));
        let want: BTreeMap<Vec<u8>, Vec<u8>> = all
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        assert_eq!(want.len(), 1000);
        let got = scan_all(&mut conn, "big", "10", |_, _| {});
        assert_eq!(got, want, "{name}: HSCAN COUNT 10 against HGETALL");

        // Fields deleted during the walk after they were returned must not hide others.
        let got = scan_all(&mut conn, "big", "7", |c, fields| {
            for f in fields.iter().take(3) {
                c.cmd(&[&b"HDEL"[..], b"big", f]);
            }
        });
        assert_eq!(
            got.len(),
            1000,
            "{name}: HSCAN while deleting returned fields"
        );
    }
}

#[test]
fn hrandfield_counts_on_both_encodings() {
    for server in [Server::redis(&[]), Server::forkdb(&[])] {
        let name = server.kind.name();
        let mut conn = server.conn();
        conn.cmd(&[
            "HSET", "small", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5",
        ]);
        fill_table(&mut conn, "big", 600);
        for (key, size) in [("small", 5usize), ("big", 600)] {
            for count in [1usize, 2, 4, 5, 100, 500, 599, 600, 1000] {
                let got = bulk_strings(&conn.frame(&["HRANDFIELD", key, &count.to_string()]));
                let distinct: BTreeSet<_> = got.iter().cloned().collect();
                assert_eq!(
                    got.len(),
                    count.min(size),
                    "{name}: HRANDFIELD {key} {count}"
                );
                assert_eq!(
                    distinct.len(),
                    got.len(),
                    "{name}: HRANDFIELD {key} {count} repeats"
                );
                let got = bulk_strings(&conn.frame(&[
                    "HRANDFIELD",
                    key,
                    &count.to_string(),
                    "WITHVALUES",
                ]));
                assert_eq!(
                    got.len(),
                    2 * count.min(size),
                    "{name}: WITHVALUES {key} {count}"
                );
                for p in got.chunks(2) {
                    let value = conn.frame(&[&b"HGET"[..], key.as_bytes(), &p[0]]);
                    assert_eq!(value, Frame::Bulk(p[1].clone()), "{name}: pair of {key}");
                }
            }
            let got = bulk_strings(&conn.frame(&["HRANDFIELD", key, "-2000"]));
            assert_eq!(got.len(), 2000);
            let distinct: BTreeSet<_> = got.iter().cloned().collect();
            // 2000 picks with repetition from at most 600 fields must repeat, and with
            // overwhelming probability reach most of the small hash.
            assert!(
                distinct.len() < 2000 && distinct.len() >= size.min(5),
                "{name}: {key} -2000"
            );
        }
    }
}

/// Bytes of `used_memory` per key after adding `n` hashes of 10 short fields.
fn used_per_small_hash(server: &Server, n: usize) -> f64 {
    let mut conn = server.conn();
    let before = info_field(&mut conn, "memory", "used_memory");
    for i in 0..n {
        let mut args = vec!["HSET".to_string(), format!("hash:{i:06}")];
        for j in 0..10 {
            args.push(format!("field{j}"));
            args.push(format!("val{:05}", (i * 10 + j) % 100_000));
        }
        conn.cmd(&args);
    }
    assert_eq!(
        conn.cmd(&["OBJECT", "ENCODING", "hash:000000"]),
        b"$8\r\nlistpack\r\n"
    );
    let after = info_field(&mut conn, "memory", "used_memory");
    (after - before) as f64 / n as f64
}

/// A small hash is one listpack allocation: 10 short fields cost about what they cost in
/// redis-server (the keyspace entry is most of the difference). Were each field allocated on its
/// own, forkdb would need several times redis's memory, far past the margin.
#[test]
fn small_hashes_stay_compact() {
    let n = 10_000;
    let redis = used_per_small_hash(&Server::redis(&[]), n);
    let forkdb = used_per_small_hash(&Server::forkdb(&[]), n);
    assert!(
        forkdb <= 1.6 * redis,
        "used_memory per hash of 10 short fields: forkdb {forkdb:.0} B, redis {redis:.0} B"
    );
}
