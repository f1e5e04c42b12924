//! Lists, sets, hashes and sorted sets against a real redis-server 7.0:
//! forkdb's reader gets exactly what the server answers for a file it wrote
//! (compression on and off, small and large of each type, TTLs, several dbs),
//! forkdb's writer writes records byte-identical to Redis's, and
//! redis-check-rdb and redis-server accept forkdb's files and answer the same.
//!
//! Needs redis-server, redis-cli and redis-check-rdb (scripts/test installs
//! them); the tests fail, saying so, when they are missing.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;

use bytes::Bytes;
use common::{redis_check_rdb, RedisServer, TempDir};
use forkdb_snapshot::blob::{Intset, Listpack};
use forkdb_snapshot::{
    encode_record, load_file, AuxFields, Hash, List, ListNode, LoadedRecord, LzfCompressor,
    QuicklistNode, RdbWriter, SaveOptions, Set, Value, ZSet,
};

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// A connection speaking RESP2, binary-safe and pipelined where it matters.
struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Conn {
    fn new(port: u16) -> Conn {
        let w = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Conn { w, r }
    }

    fn send(&mut self, args: &[&[u8]]) {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&req).unwrap();
    }

    fn read(&mut self) -> Reply {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).unwrap();
        assert!(line.ends_with(b"\r\n"), "short reply {line:?}");
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
                let mut buf = vec![0; n as usize + 2];
                self.r.read_exact(&mut buf).unwrap();
                buf.truncate(n as usize);
                Reply::Bulk(Some(buf))
            }
            b'*' => {
                let n: i64 = body.parse().unwrap();
                Reply::Array((0..n.max(0)).map(|_| self.read()).collect())
            }
            other => panic!("bad reply type {other}"),
        }
    }

    fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        self.send(args);
        let r = self.read();
        if let Reply::Error(e) = &r {
            panic!(
                "{:?}: {e}",
                args.iter()
                    .map(|a| String::from_utf8_lossy(a))
                    .collect::<Vec<_>>()
            );
        }
        r
    }

    fn bulks(&mut self, args: &[&[u8]]) -> Vec<Vec<u8>> {
        match self.cmd(args) {
            Reply::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    Reply::Bulk(Some(b)) => b,
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    fn int(&mut self, args: &[&[u8]]) -> i64 {
        match self.cmd(args) {
            Reply::Int(i) => i,
            other => panic!("{other:?}"),
        }
    }

    fn str(&mut self, args: &[&str]) -> Reply {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.cmd(&a)
    }
}

const FAR_FUTURE_MS: i64 = 4102444800123; // 2100-01-01

/// Keys written by [`populate`], per db.
fn key_names() -> Vec<(u32, &'static str)> {
    vec![
        (0, "l:small"),
        (0, "l:big"),
        (0, "l:plain"),
        (0, "h:small"),
        (0, "h:big"),
        (0, "h:longval"),
        (0, "s:int"),
        (0, "s:intbig"),
        (0, "s:str"),
        (0, "z:small"),
        (0, "z:big"),
        (0, "str"),
        (2, "l:db2"),
        (2, "h:db2"),
        (2, "z:db2"),
        (2, "s:db2"),
    ]
}

/// Small and large of each type, with TTLs, in dbs 0 and 2.
fn populate(c: &mut Conn) {
    let owned = |v: Vec<String>| v;
    let run = |c: &mut Conn, args: Vec<String>| {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        c.cmd(&a);
    };
    c.str(&["SELECT", "0"]);
    run(
        c,
        owned(
            [
                "RPUSH",
                "l:small",
                "a",
                "1",
                "-5",
                "3.5",
                "",
                "9223372036854775807",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(["x".repeat(100)])
            .collect(),
        ),
    );
    // 10k items: several 8 KiB nodes.
    for chunk in 0..10 {
        let mut args = vec!["RPUSH".to_string(), "l:big".into()];
        args.extend((chunk * 1000..(chunk + 1) * 1000).map(|i| format!("item-{i}")));
        run(c, args);
    }
    // An element past the packed threshold becomes a PLAIN node.
    c.str(&["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1000"]);
    run(
        c,
        vec![
            "RPUSH".into(),
            "l:plain".into(),
            "head".into(),
            "p".repeat(9000),
            "tail".into(),
        ],
    );
    c.str(&[
        "HSET", "h:small", "f1", "v1", "n", "123", "neg", "-42", "empty", "",
    ]);
    let mut args = vec!["HSET".to_string(), "h:big".into()];
    for i in 0..600 {
        args.push(format!("field-{i}"));
        args.push(format!("value-{i}-{}", "v".repeat(i % 30)));
    }
    run(c, args);
    // A value over hash-max-listpack-value (64): a hash table with 2 fields.
    run(
        c,
        vec![
            "HSET".into(),
            "h:longval".into(),
            "short".into(),
            "1".into(),
            "long".into(),
            "L".repeat(100),
        ],
    );
    c.str(&["SADD", "s:int", "3", "1", "-7", "100000", "2"]);
    let mut args = vec!["SADD".to_string(), "s:intbig".into()];
    args.extend((0..600).map(|i| (i * 7 - 1000).to_string()));
    run(c, args);
    c.str(&["SADD", "s:str", "apple", "banana", "cherry", "12"]);
    c.str(&[
        "ZADD", "z:small", "1", "a", "2.5", "b", "-inf", "c", "inf", "d", "0", "e", "-3", "f",
    ]);
    let mut args = vec!["ZADD".to_string(), "z:big".into()];
    for i in 0..300 {
        args.push(format!("{}", (i as f64) * 1.25 - 50.0));
        args.push(format!("member-{i}"));
    }
    run(c, args);
    c.str(&["SET", "str", "plain string"]);
    for key in ["l:small", "h:big", "s:int", "z:small"] {
        c.str(&["PEXPIREAT", key, &FAR_FUTURE_MS.to_string()]);
    }
    c.str(&["PEXPIREAT", "z:big", &(FAR_FUTURE_MS + 7).to_string()]);
    c.str(&["SELECT", "2"]);
    c.str(&["RPUSH", "l:db2", "x", "y"]);
    c.str(&["HSET", "h:db2", "k", "v"]);
    c.str(&["ZADD", "z:db2", "1.5", "m"]);
    c.str(&["SADD", "s:db2", "only"]);
    c.str(&["PEXPIREAT", "h:db2", &(FAR_FUTURE_MS + 1).to_string()]);
    c.str(&["SELECT", "0"]);
}

/// A key's content in a form both sides give: lists in order, sets sorted,
/// hashes sorted by field, zsets by (score, member) with scores as f64.
#[derive(Debug, Clone, PartialEq)]
enum Content {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    ZSet(Vec<(Vec<u8>, f64)>),
}

fn zsort(v: &mut [(Vec<u8>, f64)]) {
    v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
}

fn content_of(v: &Value) -> Content {
    let b = |x: &Bytes| x.to_vec();
    match v {
        Value::String(s) => Content::Str(s.to_vec()),
        Value::List(l) => Content::List(l.to_vec().iter().map(b).collect()),
        Value::Set(s) => {
            let mut m: Vec<Vec<u8>> = s.to_vec().iter().map(b).collect();
            m.sort();
            Content::Set(m)
        }
        Value::Hash(h) => {
            let mut p: Vec<_> = h.to_vec().iter().map(|(f, v)| (b(f), b(v))).collect();
            p.sort();
            Content::Hash(p)
        }
        Value::ZSet(z) => {
            let mut p: Vec<_> = z.to_vec().iter().map(|(m, s)| (b(m), *s)).collect();
            zsort(&mut p);
            Content::ZSet(p)
        }
    }
}

/// What the server answers for a key: its content and PEXPIRETIME.
fn server_content(c: &mut Conn, db: u32, key: &str) -> (Content, Option<i64>) {
    c.str(&["SELECT", &db.to_string()]);
    let k = key.as_bytes();
    let t = match c.cmd(&[b"TYPE", k]) {
        Reply::Status(s) => s,
        other => panic!("{other:?}"),
    };
    let content = match t.as_str() {
        "string" => match c.cmd(&[b"GET", k]) {
            Reply::Bulk(Some(v)) => Content::Str(v),
            other => panic!("{other:?}"),
        },
        "list" => Content::List(c.bulks(&[b"LRANGE", k, b"0", b"-1"])),
        "set" => {
            let mut m = c.bulks(&[b"SMEMBERS", k]);
            m.sort();
            Content::Set(m)
        }
        "hash" => {
            let flat = c.bulks(&[b"HGETALL", k]);
            let mut p: Vec<_> = flat
                .chunks(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect();
            p.sort();
            Content::Hash(p)
        }
        "zset" => {
            let flat = c.bulks(&[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"]);
            let mut p: Vec<_> = flat
                .chunks(2)
                .map(|p| {
                    let s = String::from_utf8(p[1].clone()).unwrap();
                    (p[0].clone(), s.parse::<f64>().unwrap())
                })
                .collect();
            zsort(&mut p);
            Content::ZSet(p)
        }
        other => panic!("key {key}: type {other}"),
    };
    let exp = c.int(&[b"PEXPIRETIME", k]);
    let exp = (exp >= 0).then_some(exp);
    (content, exp)
}

type Keys = BTreeMap<(u32, String), (Content, Option<i64>)>;

fn server_keys(c: &mut Conn) -> Keys {
    let mut out = Keys::new();
    for (db, key) in key_names() {
        out.insert((db, key.to_string()), server_content(c, db, key));
    }
    c.str(&["SELECT", "0"]);
    out
}

fn read_records(path: &Path) -> Vec<LoadedRecord> {
    let mut recs = Vec::new();
    load_file(path, |r| {
        recs.push(r);
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    recs
}

fn records_keys(recs: &[LoadedRecord]) -> Keys {
    recs.iter()
        .map(|r| {
            (
                (r.db, String::from_utf8(r.key.to_vec()).unwrap()),
                (content_of(&r.value), r.expire_ms),
            )
        })
        .collect()
}

fn find<'a>(recs: &'a [LoadedRecord], db: u32, key: &str) -> &'a LoadedRecord {
    recs.iter()
        .find(|r| r.db == db && r.key == key.as_bytes())
        .unwrap_or_else(|| panic!("no key {key} in db {db}"))
}

/// Redis's file, saved with compression on and off, and what the server
/// answered for every key.
struct RedisFiles {
    _dir: TempDir,
    compressed: std::path::PathBuf,
    plain: std::path::PathBuf,
    keys: Keys,
    /// OBJECT ENCODING of every container key.
    encodings: BTreeMap<(u32, String), String>,
}

fn redis_files() -> RedisFiles {
    let dir = TempDir::new("containers-redis");
    let redis = RedisServer::start_with(dir.path(), "dump.rdb", &["--enable-debug-command", "yes"]);
    let mut c = Conn::new(redis.port);
    populate(&mut c);
    let keys = server_keys(&mut c);
    let mut encodings = BTreeMap::new();
    for (db, key) in key_names() {
        c.str(&["SELECT", &db.to_string()]);
        let Reply::Bulk(Some(enc)) = c.str(&["OBJECT", "ENCODING", key]) else {
            panic!("{key}")
        };
        encodings.insert((db, key.to_string()), String::from_utf8(enc).unwrap());
    }
    c.str(&["SELECT", "0"]);
    c.str(&["CONFIG", "SET", "rdbcompression", "yes"]);
    c.str(&["SAVE"]);
    let compressed = dir.path().join("redis-compressed.rdb");
    std::fs::rename(dir.path().join("dump.rdb"), &compressed).unwrap();
    c.str(&["CONFIG", "SET", "rdbcompression", "no"]);
    c.str(&["SAVE"]);
    let plain = dir.path().join("redis-plain.rdb");
    std::fs::rename(dir.path().join("dump.rdb"), &plain).unwrap();
    drop(c);
    drop(redis);
    RedisFiles {
        _dir: dir,
        compressed,
        plain,
        keys,
        encodings,
    }
}

#[test]
fn forkdb_reads_what_redis_wrote() {
    let files = redis_files();
    assert_eq!(files.keys.len(), key_names().len());
    for path in [&files.compressed, &files.plain] {
        let recs = read_records(path);
        assert_eq!(records_keys(&recs), files.keys, "{}", path.display());

        // The forms: what Redis holds as a listpack or intset comes as that
        // blob, what it holds as a hash table or skiplist comes expanded.
        for r in &recs {
            let key = String::from_utf8(r.key.to_vec()).unwrap();
            let enc = &files.encodings[&(r.db, key.clone())];
            let form = match &r.value {
                Value::List(List::Quicklist(_)) => "quicklist",
                Value::Set(Set::Intset(_)) => "intset",
                Value::Hash(Hash::Listpack(_)) | Value::ZSet(ZSet::Listpack(_)) => "listpack",
                Value::Set(Set::Members(_)) | Value::Hash(Hash::Pairs(_)) => "hashtable",
                Value::ZSet(ZSet::Members(_)) => "skiplist",
                Value::String(_) => "embstr",
                other => panic!("{key}: unexpected form {other:?}"),
            };
            assert_eq!(form, enc, "{key}");
        }
        for (key, want) in [
            ("h:big", "hashtable"),
            ("h:longval", "hashtable"),
            ("s:intbig", "hashtable"),
            ("z:big", "skiplist"),
            ("h:small", "listpack"),
            ("z:small", "listpack"),
            ("s:int", "intset"),
        ] {
            assert_eq!(files.encodings[&(0, key.to_string())], want, "{key}");
        }
        let nodes = |key: &str| match &find(&recs, 0, key).value {
            Value::List(List::Quicklist(nodes)) => (
                nodes.len(),
                nodes
                    .iter()
                    .filter(|n| matches!(n, ListNode::Plain(_)))
                    .count(),
            ),
            other => panic!("{other:?}"),
        };
        assert_eq!(nodes("l:small"), (1, 0));
        assert_eq!(nodes("l:plain"), (3, 1));
        assert!(nodes("l:big").0 >= 5, "{:?}", nodes("l:big"));
    }
}

/// Every record forkdb encodes from what it read is byte for byte the
/// record redis-server wrote (same compression setting), and small
/// containers built from scratch with the blob modules, in the order the
/// commands built them, are Redis's blobs.
#[test]
fn forkdb_records_are_byte_identical_to_redis() {
    let files = redis_files();
    for (path, compress) in [(&files.compressed, true), (&files.plain, false)] {
        let file = std::fs::read(path).unwrap();
        let recs = read_records(path);
        let mut lzf = LzfCompressor::new();
        for r in &recs {
            let mut ours = Vec::new();
            encode_record(
                &mut ours,
                &r.key,
                &r.value,
                r.expire_ms,
                compress.then_some(&mut lzf),
            )
            .unwrap();
            let at = r.offset as usize;
            assert_eq!(
                &file[at..at + ours.len()],
                &ours[..],
                "{}: key {:?}",
                path.display(),
                r.key
            );
        }
        // Built from scratch: HSET h:small f1 v1 n 123 neg -42 empty "".
        let mut lp = Listpack::new();
        for e in ["f1", "v1", "n", "123", "neg", "-42", "empty", ""] {
            lp.append(e).unwrap();
        }
        assert_eq!(
            find(&recs, 0, "h:small").value,
            Value::Hash(Hash::Listpack(lp))
        );
        let mut is = Intset::new();
        for v in [3, 1, -7, 100000, 2] {
            is.insert(v).unwrap();
        }
        assert_eq!(find(&recs, 0, "s:int").value, Value::Set(Set::Intset(is)));
        let mut lp = Listpack::new();
        for e in [
            "a",
            "1",
            "-5",
            "3.5",
            "",
            "9223372036854775807",
            &"x".repeat(100),
        ] {
            lp.append(e).unwrap();
        }
        assert_eq!(
            find(&recs, 0, "l:small").value,
            Value::List(List::Quicklist(vec![ListNode::Packed(lp)]))
        );
    }
}

/// Writes every record through the by-reference writer methods.
fn write_by_reference(path: &Path, recs: &[LoadedRecord], options: SaveOptions) {
    let mut by_db: BTreeMap<u32, Vec<&LoadedRecord>> = BTreeMap::new();
    for r in recs {
        by_db.entry(r.db).or_default().push(r);
    }
    let out = std::fs::File::create(path).unwrap();
    let mut w = RdbWriter::new(out, options, &AuxFields::new("7.0.15")).unwrap();
    for (db, rs) in by_db {
        let expires = rs.iter().filter(|r| r.expire_ms.is_some()).count();
        w.select_db(db, rs.len() as u64, expires as u64).unwrap();
        for r in rs {
            let (k, e) = (&r.key[..], r.expire_ms);
            match &r.value {
                Value::String(s) => w.record_string(k, s, e),
                Value::List(List::Quicklist(nodes)) => w.record_list_quicklist2(
                    k,
                    nodes.iter().map(|n| match n {
                        ListNode::Packed(lp) => QuicklistNode::Packed(lp.as_bytes()),
                        ListNode::Plain(b) => QuicklistNode::Plain(b),
                    }),
                    e,
                ),
                Value::Hash(Hash::Listpack(lp)) => w.record_hash_listpack(k, lp.as_bytes(), e),
                Value::Hash(Hash::Pairs(p)) => {
                    w.record_hash(k, p.iter().map(|(f, v)| (&f[..], &v[..])), e)
                }
                Value::Set(Set::Intset(is)) => w.record_set_intset(k, is.as_bytes(), e),
                Value::Set(Set::Members(m)) => w.record_set(k, m.iter().map(|b| &b[..]), e),
                Value::ZSet(ZSet::Listpack(lp)) => w.record_zset_listpack(k, lp.as_bytes(), e),
                Value::ZSet(ZSet::Members(m)) => {
                    w.record_zset2(k, m.iter().map(|(b, s)| (&b[..], *s)), e)
                }
                other => w.record(k, other, e),
            }
            .unwrap();
        }
    }
    w.finish().unwrap().sync_all().unwrap();
}

#[test]
fn redis_loads_what_forkdb_wrote() {
    let files = redis_files();
    let recs = read_records(&files.compressed);
    for (name, compression) in [("ours-compressed.rdb", true), ("ours-plain.rdb", false)] {
        let dir = TempDir::new("containers-ours");
        let path = dir.path().join(name);
        let options = SaveOptions {
            compression,
            checksum: true,
        };
        write_by_reference(&path, &recs, options);
        // The same bytes as Redis's file past the AUX fields (which hold
        // ctime and used-mem): same records, same order, same encodings.
        let ours = std::fs::read(&path).unwrap();
        let theirs = std::fs::read(if compression {
            &files.compressed
        } else {
            &files.plain
        })
        .unwrap();
        let tail = |b: &[u8]| {
            let at = b.iter().position(|&x| x == 0xFE).unwrap();
            b[at..b.len() - 8].to_vec()
        };
        assert!(
            tail(&ours) == tail(&theirs),
            "{name}: records differ from Redis's"
        );

        let check = redis_check_rdb(&path);
        assert!(
            check.status.success(),
            "redis-check-rdb refused {name}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        let redis = RedisServer::start(dir.path(), name);
        let mut c = Conn::new(redis.port);
        assert_eq!(server_keys(&mut c), files.keys, "{name}");
        // The reader agrees with itself on our file.
        assert_eq!(records_keys(&read_records(&path)), files.keys);
    }
}

/// `RdbWriter::record(&Value)` for the expanded forms: Redis loads them with
/// the same content (the list packed into nodes as RPUSH would).
#[test]
fn expanded_values_written_and_loaded_by_redis() {
    let dir = TempDir::new("containers-expanded");
    let b = |s: &str| Bytes::from(s.to_string());
    let list: Vec<Bytes> = (0..3000).map(|i| b(&format!("e{i}"))).collect();
    let values = vec![
        ("list", Value::List(List::Elements(list.clone()))),
        (
            "set",
            Value::Set(Set::Members(vec![b("a"), b("17"), b("-3")])),
        ),
        (
            "hash",
            Value::Hash(Hash::Pairs(vec![(b("f"), b("v")), (b("9"), b(""))])),
        ),
        (
            "zset",
            Value::ZSet(ZSet::Members(vec![
                (b("hi"), f64::INFINITY),
                (b("mid"), 0.1),
                (b("lo"), -1e300),
            ])),
        ),
    ];
    let path = dir.path().join("expanded.rdb");
    let mut w = RdbWriter::new(
        Vec::new(),
        SaveOptions::default(),
        &AuxFields::new("7.0.15"),
    )
    .unwrap();
    w.select_db(0, values.len() as u64, 0).unwrap();
    for (k, v) in &values {
        w.record(k.as_bytes(), v, None).unwrap();
    }
    std::fs::write(&path, w.finish().unwrap()).unwrap();
    assert!(redis_check_rdb(&path).status.success());
    let redis = RedisServer::start(dir.path(), "expanded.rdb");
    let mut c = Conn::new(redis.port);
    for (k, v) in &values {
        assert_eq!(server_content(&mut c, 0, k).0, content_of(v), "{k}");
    }
    // 3000 short elements: RPUSH in Redis makes the same nodes as our packing.
    let recs = read_records(&path);
    let Value::List(List::Quicklist(ours)) = &find(&recs, 0, "list").value else {
        panic!()
    };
    let mut args: Vec<&[u8]> = vec![b"RPUSH", b"list2"];
    args.extend(list.iter().map(|e| &e[..]));
    c.cmd(&args);
    c.str(&["SAVE"]);
    let recs = read_records(&dir.path().join("expanded.rdb"));
    let Value::List(List::Quicklist(theirs)) = &find(&recs, 0, "list2").value else {
        panic!()
    };
    assert_eq!(ours, theirs);
}
