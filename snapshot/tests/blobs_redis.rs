//! The blob formats against a real redis-server 7.0: for small lists, hashes,
//! sorted sets and sets built by a sequence of commands, (a) forkdb's parsers
//! read from Redis's `DUMP` the elements Redis replies with, and (b) forkdb's
//! builders, given the same operations, produce byte-identical listpacks and
//! intsets. Also: Redis's conversion of old ziplists/zipmaps (its own
//! `tests/assets` files) to listpacks on load is what forkdb's would be.
//!
//! `DUMP` is the RDB serialization of one value (type byte, value, RDB
//! version, CRC-64); compression is turned off so the blobs are raw.

mod blob_rdb;
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use blob_rdb::{read_dump, RawValue};
use common::{RedisServer, TempDir};
use forkdb_snapshot::blob::listpack::Where;
use forkdb_snapshot::blob::{Elem, Intset, Listpack, Pos, Ziplist, Zipmap};

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// A binary-safe connection to the test's redis-server.
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn new(server: &RedisServer) -> Self {
        let w = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        Conn {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        }
    }

    fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&req).unwrap();
        let reply = self.read();
        if let Reply::Error(e) = &reply {
            panic!(
                "{:?}: {e}",
                args.iter()
                    .map(|a| String::from_utf8_lossy(&a[..a.len().min(40)]))
                    .collect::<Vec<_>>()
            );
        }
        reply
    }

    /// A command given as text words.
    fn cmds(&mut self, words: &[&str]) -> Reply {
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        self.cmd(&args)
    }

    fn read(&mut self) -> Reply {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).unwrap();
        assert!(line.ends_with(b"\r\n"), "bad reply line {line:?}");
        let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        match line[0] {
            b'+' => Reply::Status(body),
            b'-' => Reply::Error(body),
            b':' => Reply::Int(body.parse().unwrap()),
            b'$' => {
                let n: i64 = body.parse().unwrap();
                if n < 0 {
                    return Reply::Bulk(None);
                }
                let mut buf = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut buf).unwrap();
                buf.truncate(n as usize);
                Reply::Bulk(Some(buf))
            }
            b'*' => {
                let n: i64 = body.parse().unwrap();
                Reply::Array((0..n.max(0)).map(|_| self.read()).collect())
            }
            b => panic!("bad reply type {b}"),
        }
    }

    fn bulks(&mut self, words: &[&str]) -> Vec<Vec<u8>> {
        match self.cmds(words) {
            Reply::Array(items) => items
                .into_iter()
                .map(|r| match r {
                    Reply::Bulk(Some(b)) => b,
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    fn encoding(&mut self, key: &str) -> String {
        match self.cmds(&["OBJECT", "ENCODING", key]) {
            Reply::Bulk(Some(b)) => String::from_utf8(b).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    /// `DUMP key`, taken apart.
    fn dump(&mut self, key: &str) -> (u8, RawValue) {
        match self.cmds(&["DUMP", key]) {
            Reply::Bulk(Some(p)) => read_dump(&p),
            other => panic!("DUMP {key}: {other:?}"),
        }
    }
}

fn start(tag: &str) -> (TempDir, RedisServer, Conn) {
    let dir = TempDir::new(tag);
    let server = RedisServer::start(dir.path(), "dump.rdb");
    let mut c = Conn::new(&server);
    for (k, v) in [
        ("rdbcompression", "no"),
        // One quicklist node of up to 64 KiB, so a list is one listpack even
        // with the 16 KiB strings below.
        ("list-max-listpack-size", "-5"),
        ("hash-max-listpack-entries", "1024"),
        ("hash-max-listpack-value", "65536"),
        ("zset-max-listpack-entries", "1024"),
        ("zset-max-listpack-value", "65536"),
    ] {
        c.cmds(&["CONFIG", "SET", k, v]);
    }
    (dir, server, c)
}

/// Elements covering every listpack encoding: integers of every width and at
/// their edges, strings of every length encoding (6-bit, 12-bit, 32-bit) and
/// back-length size (entries of 127/128 and 16382/16383 bytes), look-alike
/// integers that must stay strings, binary and empty strings.
fn every_encoding() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "0",
        "1",
        "127",
        "128",
        "-1",
        "4095",
        "-4096",
        "4096",
        "-4097",
        "32767",
        "-32768",
        "32768",
        "8388607",
        "-8388608",
        "8388608",
        "2147483647",
        "-2147483648",
        "2147483648",
        "-2147483649",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "012",
        " 1",
        "+1",
        "-0",
        "1.5",
        "",
        "a",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.push(vec![0, 0xFF, b'\r', b'\n', 0x80]);
    // Entry sizes (encoding + data): 1+L for L < 64, 2+L below 4096, 5+L above.
    for len in [63, 64, 125, 126, 127, 4095, 4096, 16377, 16378] {
        v.push((0..len).map(|i| b'a' + (i % 26) as u8).collect());
    }
    v
}

fn listpack_of(v: &RawValue) -> Listpack {
    let blob = match v {
        RawValue::Blob(b) => b.clone(),
        RawValue::Quicklist2(nodes) => {
            assert_eq!(nodes.len(), 1, "expected one quicklist node");
            assert_eq!(nodes[0].0, 2, "container PACKED");
            nodes[0].1.clone()
        }
        other => panic!("{other:?}"),
    };
    Listpack::from_bytes(blob).unwrap_or_else(|e| panic!("Redis's listpack refused: {e}"))
}

fn elems(lp: &Listpack) -> Vec<Vec<u8>> {
    let fwd: Vec<Vec<u8>> = lp.iter().map(|e| e.to_vec()).collect();
    let mut back: Vec<Vec<u8>> = lp.iter().rev().map(|e| e.to_vec()).collect();
    back.reverse();
    assert_eq!(fwd, back, "listpack read from both ends");
    assert_eq!(lp.len(), fwd.len());
    fwd
}

/// Asserts byte identity, showing the first difference.
fn assert_same_bytes(what: &str, ours: &[u8], redis: &[u8]) {
    if ours != redis {
        let at = ours
            .iter()
            .zip(redis)
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(redis.len()));
        panic!(
            "{what}: our blob ({} bytes) differs from Redis's ({} bytes) at byte {at}: ours {:02x?}, Redis {:02x?}",
            ours.len(),
            redis.len(),
            &ours[at..(at + 16).min(ours.len())],
            &redis[at..(at + 16).min(redis.len())]
        );
    }
}

fn find_from_head(lp: &Listpack, s: &[u8]) -> Option<Pos> {
    lp.find(lp.first()?, s, 0)
}

#[test]
fn list_listpacks_match_redis() {
    let (_dir, _server, mut c) = start("blob-list");
    let mut lp = Listpack::new();
    let all = every_encoding();
    // RPUSH everything, LPUSH a few, then change things in the middle.
    for e in &all {
        c.cmd(&[b"RPUSH", b"l", e]);
        lp.append(&e[..]).unwrap();
    }
    for e in ["x", "-5", "100000"] {
        c.cmds(&["LPUSH", "l", e]);
        lp.prepend(e).unwrap();
    }
    let check = |c: &mut Conn, lp: &Listpack, step: &str| {
        assert_eq!(c.encoding("l"), "quicklist");
        let (t, v) = c.dump("l");
        assert_eq!(t, 18, "QUICKLIST_2");
        let theirs = listpack_of(&v);
        // (a) our parser reads what Redis replies.
        assert_eq!(
            elems(&theirs),
            c.bulks(&["LRANGE", "l", "0", "-1"]),
            "{step}"
        );
        // (b) our builder made the same bytes.
        assert_same_bytes(step, lp.as_bytes(), theirs.as_bytes());
    };
    check(&mut c, &lp, "pushes");

    // LSET in the middle: a longer, then a shorter element.
    for (i, v) in [
        (10i64, "a-much-longer-string-than-before"),
        (10, "7"),
        (-3, "-70000"),
    ] {
        c.cmds(&["LSET", "l", &i.to_string(), v]);
        let p = lp.seek(i).unwrap();
        lp.replace(p, v).unwrap();
    }
    check(&mut c, &lp, "LSET");

    // LINSERT before / after a pivot found as Redis compares (int entries
    // against the pivot's integer value).
    for (before, pivot, v) in [
        (true, "32767", "ins1"),
        (false, "-0", "12345678901"),
        (true, "x", ""),
    ] {
        c.cmds(&[
            "LINSERT",
            "l",
            if before { "BEFORE" } else { "AFTER" },
            pivot,
            v,
        ]);
        let p = find_from_head(&lp, pivot.as_bytes()).unwrap();
        lp.insert(p, if before { Where::Before } else { Where::After }, v)
            .unwrap();
    }
    check(&mut c, &lp, "LINSERT");

    // LREM from the head, the tail, and all: deletions in the middle.
    for v in ["2147483648", "a"] {
        c.cmds(&["RPUSH", "l", v]);
        lp.append(v).unwrap();
    }
    c.cmds(&["LREM", "l", "1", "2147483648"]);
    let p = find_from_head(&lp, b"2147483648").unwrap();
    lp.delete(p);
    c.cmds(&["LREM", "l", "-1", "a"]);
    let mut cur = lp.last();
    while let Some(p) = cur {
        if lp.get(p).eq_bytes(b"a") {
            lp.delete(p);
            break;
        }
        cur = lp.prev(p);
    }
    c.cmds(&["LREM", "l", "0", "1.5"]);
    while let Some(p) = find_from_head(&lp, b"1.5") {
        lp.delete(p);
    }
    check(&mut c, &lp, "LREM");

    // LPOP, RPOP, LTRIM (lpDeleteRange from both ends).
    c.cmds(&["LPOP", "l"]);
    lp.delete(lp.first().unwrap());
    c.cmds(&["RPOP", "l"]);
    lp.delete(lp.last().unwrap());
    c.cmds(&["LTRIM", "l", "2", "-4"]);
    lp.delete_range(0, 2);
    lp.delete_range(-3, 3);
    check(&mut c, &lp, "LPOP/RPOP/LTRIM");
}

#[test]
fn hash_listpacks_match_redis() {
    let (_dir, _server, mut c) = start("blob-hash");
    let mut lp = Listpack::new();
    // hashTypeSet: replace the value of an existing field (lpFind with
    // skip 1, lpNext, lpReplace), else append field and value.
    let hset = |c: &mut Conn, lp: &mut Listpack, f: &[u8], v: &[u8]| {
        c.cmd(&[b"HSET", b"h", f, v]);
        match lp.first().and_then(|p| lp.find(p, f, 1)) {
            Some(fp) => {
                let vp = lp.next(fp).unwrap();
                lp.replace(vp, v).unwrap();
            }
            None => {
                lp.append(f).unwrap();
                lp.append(v).unwrap();
            }
        }
    };
    let check = |c: &mut Conn, lp: &Listpack, step: &str| {
        assert_eq!(c.encoding("h"), "listpack", "{step}");
        let (t, v) = c.dump("h");
        assert_eq!(t, 16, "HASH_LISTPACK");
        let theirs = listpack_of(&v);
        assert_eq!(elems(&theirs), c.bulks(&["HGETALL", "h"]), "{step}");
        assert_same_bytes(step, lp.as_bytes(), theirs.as_bytes());
    };
    let all = every_encoding();
    for (i, e) in all.iter().enumerate() {
        // Field i is a number, so fields too take integer encodings.
        hset(
            &mut c,
            &mut lp,
            (i as i64 * 997 - 5000).to_string().as_bytes(),
            e,
        );
        hset(&mut c, &mut lp, e, format!("v{i}").as_bytes());
    }
    check(&mut c, &lp, "HSET new fields");
    // Overwrite values in the middle, longer and shorter.
    hset(&mut c, &mut lp, b"127", &[b'z'; 300]);
    hset(&mut c, &mut lp, b"127", b"-1");
    hset(&mut c, &mut lp, b"012", b"12");
    check(&mut c, &lp, "HSET overwrite");
    // HINCRBY stores the new number's text: an integer entry.
    c.cmds(&["HINCRBY", "h", "-4003", "5000000000"]);
    let fp = lp.find(lp.first().unwrap(), b"-4003", 1).unwrap();
    let vp = lp.next(fp).unwrap();
    let old = lp
        .get(vp)
        .as_i64()
        .unwrap_or_else(|| panic!("{:?}", lp.get(vp)));
    lp.replace(vp, old + 5_000_000_000).unwrap();
    check(&mut c, &lp, "HINCRBY");
    // HDEL in the middle and at both ends (lpDeleteRangeWithEntry, 2 entries).
    for f in [
        "-0",
        "2147483648",
        "-5000",
        &String::from_utf8(all[all.len() - 1].clone()).unwrap(),
    ] {
        c.cmds(&["HDEL", "h", f]);
        let fp = lp.find(lp.first().unwrap(), f.as_bytes(), 1).unwrap();
        lp.delete_range_at(fp, 2);
    }
    check(&mut c, &lp, "HDEL");
}

/// d2string of Redis 7.0 is `%.17g`, or the integer's text when the double
/// is integral; these are the texts for the scores used below.
const SCORES: &[(f64, &str)] = &[
    (1.0, "1"),
    (2.5, "2.5"),
    (-3.0, "-3"),
    (1e20, "1e+20"),
    (0.1, "0.10000000000000001"),
    (1234567890123.0, "1234567890123"),
    (-0.5, "-0.5"),
    (100000.0, "100000"),
];

/// zzlInsert: before the first pair with a greater score, or an equal score
/// and a greater member; else at the tail. Member then score.
fn zzl_insert(lp: &mut Listpack, member: &[u8], score: f64, text: &str) {
    let mut cur = lp.first();
    while let Some(ep) = cur {
        let sp = lp.next(ep).unwrap();
        let s: f64 = String::from_utf8(lp.get(sp).to_vec())
            .unwrap()
            .parse()
            .unwrap();
        let greater = s > score || (s == score && lp.get(ep).to_vec().as_slice() > member);
        if greater {
            let ep = lp.insert(ep, Where::Before, member).unwrap();
            lp.insert(ep, Where::After, text).unwrap();
            return;
        }
        cur = lp.next(sp);
    }
    lp.append(member).unwrap();
    lp.append(text).unwrap();
}

/// zzlDelete: the member and its score.
fn zzl_delete(lp: &mut Listpack, member: &[u8]) {
    let mut cur = lp.first();
    while let Some(ep) = cur {
        if lp.get(ep).eq_bytes(member) {
            lp.delete_range_at(ep, 2);
            return;
        }
        cur = lp.next(lp.next(ep).unwrap());
    }
    panic!("member not found");
}

#[test]
fn zset_listpacks_match_redis() {
    let (_dir, _server, mut c) = start("blob-zset");
    let mut lp = Listpack::new();
    let check = |c: &mut Conn, lp: &Listpack, step: &str| {
        assert_eq!(c.encoding("z"), "listpack", "{step}");
        let (t, v) = c.dump("z");
        assert_eq!(t, 17, "ZSET_LISTPACK");
        let theirs = listpack_of(&v);
        assert_eq!(
            elems(&theirs),
            c.bulks(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
            "{step}"
        );
        assert_same_bytes(step, lp.as_bytes(), theirs.as_bytes());
    };
    let all = every_encoding();
    for (i, m) in all.iter().enumerate() {
        let (score, text) = SCORES[i % SCORES.len()];
        c.cmd(&[b"ZADD", b"z", text.as_bytes(), m]);
        zzl_insert(&mut lp, m, score, text);
    }
    check(&mut c, &lp, "ZADD");
    // A new score for an existing member: delete, then insert again.
    for (m, (score, text)) in [("4096", (-3.0, "-3")), ("a", (1e20, "1e+20"))] {
        c.cmds(&["ZADD", "z", text, m]);
        zzl_delete(&mut lp, m.as_bytes());
        zzl_insert(&mut lp, m.as_bytes(), score, text);
    }
    check(&mut c, &lp, "ZADD update");
    for m in ["0", "-2147483649", "012"] {
        c.cmds(&["ZREM", "z", m]);
        zzl_delete(&mut lp, m.as_bytes());
    }
    check(&mut c, &lp, "ZREM");
}

#[test]
fn intsets_match_redis() {
    let (_dir, _server, mut c) = start("blob-intset");
    let mut set = Intset::new();
    let check = |c: &mut Conn, set: &Intset, step: &str| {
        assert_eq!(c.encoding("s"), "intset", "{step}");
        let (t, v) = c.dump("s");
        assert_eq!(t, 11, "SET_INTSET");
        let RawValue::Blob(blob) = v else {
            panic!("{v:?}")
        };
        let theirs = Intset::from_bytes(blob).unwrap_or_else(|e| panic!("{e}"));
        let mut members: Vec<i64> = c
            .bulks(&["SMEMBERS", "s"])
            .iter()
            .map(|m| String::from_utf8_lossy(m).parse().unwrap())
            .collect();
        members.sort();
        assert_eq!(theirs.iter().collect::<Vec<_>>(), members, "{step}");
        assert_same_bytes(step, set.as_bytes(), theirs.as_bytes());
    };
    let add = |c: &mut Conn, set: &mut Intset, v: i64| {
        c.cmds(&["SADD", "s", &v.to_string()]);
        set.insert(v).unwrap();
    };
    // 16-bit, then an upgrade to 32 (appended), then to 64 (prepended).
    for v in [5, -3, 300, 32767, -32768, 0, 17, 5] {
        add(&mut c, &mut set, v);
    }
    check(&mut c, &set, "16-bit");
    for v in [70000, -2147483648, 12] {
        add(&mut c, &mut set, v);
    }
    assert_eq!(set.encoding(), 4);
    check(&mut c, &set, "32-bit");
    for v in [-9223372036854775808, 9223372036854775807, 2147483648, 1] {
        add(&mut c, &mut set, v);
    }
    assert_eq!(set.encoding(), 8);
    check(&mut c, &set, "64-bit");
    // Removals in the middle and at the ends; the encoding stays 64-bit.
    for v in [
        17,
        -9223372036854775808,
        9223372036854775807,
        2147483648,
        70000,
        4,
    ] {
        c.cmds(&["SREM", "s", &v.to_string()]);
        set.remove(v);
    }
    check(&mut c, &set, "SREM");
}

/// Loads one of Redis's own asset files into redis-server 7.0 and DUMPs
/// `key`: Redis converts the old blob to a listpack on load, by appending
/// each element; forkdb's conversion must give the same bytes.
fn redis_converted(asset: &str, key: &str) -> (u8, Listpack) {
    let dir = TempDir::new("blob-convert");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/assets")
        .join(asset);
    std::fs::copy(&src, dir.path().join(asset)).unwrap();
    let server = RedisServer::start(dir.path(), asset);
    let mut c = Conn::new(&server);
    c.cmds(&["CONFIG", "SET", "rdbcompression", "no"]);
    let (t, v) = c.dump(key);
    (t, listpack_of(&v))
}

fn asset_blob(asset: &str) -> RawValue {
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/assets")
            .join(asset),
    )
    .unwrap();
    blob_rdb::read_file(&bytes).remove(0).3
}

#[test]
fn old_blobs_convert_to_the_listpacks_redis_makes() {
    // Zipmap hash: fields and values appended as strings.
    let RawValue::Blob(b) = asset_blob("hash-zipmap.rdb") else {
        panic!()
    };
    let mut ours = Listpack::new();
    for (f, v) in Zipmap::new(&b).unwrap().iter() {
        ours.append(f).unwrap();
        ours.append(v).unwrap();
    }
    let (t, theirs) = redis_converted("hash-zipmap.rdb", "hash");
    assert_eq!(t, 16);
    assert_same_bytes("zipmap hash", ours.as_bytes(), theirs.as_bytes());

    // Ziplist hash and zset, and a quicklist of ziplists: element by element.
    for (asset, key, ty) in [
        ("hash-ziplist.rdb", "hash", 16),
        ("zset-ziplist.rdb", "zset", 17),
        ("list-quicklist.rdb", "list", 18),
    ] {
        let zls = match asset_blob(asset) {
            RawValue::Blob(b) => vec![b],
            RawValue::Quicklist(n) => n,
            other => panic!("{other:?}"),
        };
        let mut ours = Listpack::new();
        for zl in &zls {
            for e in Ziplist::new(zl).unwrap().iter() {
                ours.append(e).unwrap();
            }
        }
        let (t, theirs) = redis_converted(asset, key);
        assert_eq!(t, ty, "{asset}");
        assert_same_bytes(asset, ours.as_bytes(), theirs.as_bytes());
        assert!(matches!(
            theirs.iter().next(),
            Some(Elem::Str(_) | Elem::Int(_))
        ));
    }
}
