//! The container reader on files that are not redis-server 7.0's own: the
//! RDB files of Redis 7.0's test suite (`tests/assets/`), hand-built files
//! for the encodings neither those nor a 7.0 server write (string-score
//! ZSET, linked list, quicklist v1, 7.2's SET_LISTPACK, 7.4's hashes with
//! field TTLs), and corrupt containers, which must give an error naming the
//! offset and the key, never a panic.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::redis_check_rdb;
use forkdb_snapshot::blob::{Elem, Intset, Listpack};
use forkdb_snapshot::format::*;
use forkdb_snapshot::{
    crc64, encode_len, encode_string, AuxFields, Hash, List, ListNode, LoadSummary, LoadedRecord,
    RdbError, RdbReader, RdbWriter, SaveOptions, Set, Value, ZSet,
};

fn asset_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/assets")
        .join(name)
}

fn load_bytes(
    bytes: &[u8],
    now_ms: Option<i64>,
) -> Result<(Vec<LoadedRecord>, LoadSummary), RdbError> {
    let mut reader = RdbReader::new(bytes)?;
    if let Some(now) = now_ms {
        reader.set_now_ms(now);
    }
    let mut recs = Vec::new();
    while let Some(r) = reader.next_record()? {
        recs.push(r);
    }
    Ok((recs, reader.into_summary()))
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A score as Redis prints it for these files (integers without a point).
fn score(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e17 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// One key in the format of Redis's test helper `csvdump`.
fn csv_line(r: &LoadedRecord) -> String {
    let (kind, items): (&str, Vec<String>) = match &r.value {
        Value::String(x) => ("string", vec![s(x)]),
        Value::List(l) => ("list", l.to_vec().iter().map(|e| s(e)).collect()),
        Value::Set(x) => {
            let mut m: Vec<String> = x.to_vec().iter().map(|e| s(e)).collect();
            m.sort();
            ("set", m)
        }
        Value::ZSet(z) => {
            let mut v = z.to_vec();
            v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
            (
                "zset",
                v.iter().flat_map(|(m, sc)| [s(m), score(*sc)]).collect(),
            )
        }
        Value::Hash(h) => {
            let mut v: Vec<(String, String)> =
                h.to_vec().iter().map(|(f, v)| (s(f), s(v))).collect();
            v.sort();
            ("hash", v.into_iter().flat_map(|(f, v)| [f, v]).collect())
        }
    };
    let mut line = format!("\"{}\",\"{}\",\"{kind}\",", r.db, s(&r.key));
    for i in &items {
        line.push_str(&format!("\"{i}\","));
    }
    if kind == "string" {
        line.pop();
    }
    line
}

#[test]
fn encodings_rdb_loads_as_redis_test_suite_expects() {
    let bytes = std::fs::read(asset_path("encodings.rdb")).unwrap();
    let (mut recs, summary) = load_bytes(&bytes, None).unwrap();
    assert_eq!(summary.version, 4);
    recs.sort_by(|a, b| a.key.cmp(&b.key));
    let got: Vec<String> = recs.iter().map(csv_line).collect();
    // tests/integration/rdb.tcl, "RDB encoding loading test" (Redis 7.0.15).
    let want = [
        format!("\"0\",\"compressible\",\"string\",\"{}\"", "a".repeat(137)),
        r#""0","hash","hash","a","1","aa","10","aaa","100","b","2","bb","20","bbb","200","c","3","cc","30","ccc","300","ddd","400","eee","5000000000","#.to_string(),
        r#""0","hash_zipped","hash","a","1","b","2","c","3","#.to_string(),
        r#""0","list","list","1","2","3","a","b","c","100000","6000000000","1","2","3","a","b","c","100000","6000000000","1","2","3","a","b","c","100000","6000000000","#.to_string(),
        r#""0","list_zipped","list","1","2","3","a","b","c","100000","6000000000","#.to_string(),
        r#""0","number","string","10""#.to_string(),
        r#""0","set","set","1","100000","2","3","6000000000","a","b","c","#.to_string(),
        r#""0","set_zipped_1","set","1","2","3","4","#.to_string(),
        r#""0","set_zipped_2","set","100000","200000","300000","400000","#.to_string(),
        r#""0","set_zipped_3","set","1000000000","2000000000","3000000000","4000000000","5000000000","6000000000","#.to_string(),
        r#""0","string","string","Hello World""#.to_string(),
        r#""0","zset","zset","a","1","b","2","c","3","aa","10","bb","20","cc","30","aaa","100","bbb","200","ccc","300","aaaa","1000","cccc","123456789","bbbb","5000000000","#.to_string(),
        r#""0","zset_zipped","zset","a","1","b","2","c","3","#.to_string(),
    ];
    assert_eq!(got, want);
    // The old encodings arrive in the forms forkdb keeps: ziplists as
    // listpacks, the linked list and string-score zset expanded.
    let form = |key: &str| &recs.iter().find(|r| r.key == key.as_bytes()).unwrap().value;
    assert!(matches!(form("list"), Value::List(List::Elements(_))));
    assert!(matches!(
        form("list_zipped"),
        Value::List(List::Elements(_))
    ));
    assert!(matches!(
        form("hash_zipped"),
        Value::Hash(Hash::Listpack(_))
    ));
    assert!(matches!(
        form("zset_zipped"),
        Value::ZSet(ZSet::Listpack(_))
    ));
    assert!(matches!(form("zset"), Value::ZSet(ZSet::Members(_))));
    assert!(matches!(form("set_zipped_3"), Value::Set(Set::Intset(_))));
}

#[test]
fn small_old_assets_load() {
    let one = |name: &str| {
        let bytes = std::fs::read(asset_path(name)).unwrap();
        load_bytes(&bytes, None)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .0
    };
    // convert-zipmap-hash-on-load.tcl, convert-ziplist-hash-on-load.tcl.
    for name in ["hash-zipmap.rdb", "hash-ziplist.rdb"] {
        let recs = one(name);
        assert_eq!(recs.len(), 1, "{name}");
        let mut lp = Listpack::new();
        for e in ["f1", "v1", "f2", "v2"] {
            lp.append(e).unwrap();
        }
        assert_eq!(recs[0].value, Value::Hash(Hash::Listpack(lp)), "{name}");
    }
    // convert-ziplist-zset-on-load.tcl: zrange withscores = one 1 two 2.
    let recs = one("zset-ziplist.rdb");
    let Value::ZSet(z) = &recs[0].value else {
        panic!()
    };
    assert_eq!(
        z.to_vec(),
        [(Bytes::from("one"), 1.0), (Bytes::from("two"), 2.0)]
    );
    // rdb.tcl "test old version rdb file": get x = 7, lpop list = 7.
    let recs = one("list-quicklist.rdb");
    let Value::List(List::Quicklist(nodes)) = &recs[0].value else {
        panic!()
    };
    assert_eq!(nodes.len(), 1);
    assert_eq!(recs[0].value, Value::List(List::Quicklist(nodes.clone())));
    let ListNode::Packed(lp) = &nodes[0] else {
        panic!()
    };
    assert_eq!(lp.iter().collect::<Vec<_>>(), [Elem::Int(7)]);
    assert_eq!(recs[1].value, Value::from("7"));
    // rdb.tcl "script won't load anymore if it's in rdb": loads, no key (the
    // script is an AUX field).
    assert_eq!(one("scriptbackup.rdb").len(), 0);
}

#[test]
fn empty_keys_are_skipped_as_redis_does() {
    // corrupt-dump.tcl "load corrupted rdb with empty keys": dbsize 0,
    // "empty keys skipped: 9".
    let bytes = std::fs::read(asset_path("corrupt_empty_keys.rdb")).unwrap();
    let (recs, summary) = load_bytes(&bytes, None).unwrap();
    assert!(recs.is_empty(), "{recs:?}");
    assert_eq!(summary.skipped.empty_keys, 9);
    // And redis-server 7.0 does the same with this file.
    let dir = common::TempDir::new("empty-keys");
    std::fs::copy(
        asset_path("corrupt_empty_keys.rdb"),
        dir.path().join("e.rdb"),
    )
    .unwrap();
    let redis = common::RedisServer::start(dir.path(), "e.rdb");
    assert_eq!(redis.cli_int(0, &["DBSIZE"]), 0);
    assert!(
        redis.log().contains("empty keys skipped: 9"),
        "{}",
        redis.log()
    );
}

#[test]
fn corrupt_ziplist_asset_is_refused_with_key_and_offset() {
    // corrupt-dump.tcl "load corrupted rdb with no CRC - #3505".
    let bytes = std::fs::read(asset_path("corrupt_ziplist.rdb")).unwrap();
    let err = load_bytes(&bytes, None).unwrap_err();
    let RdbError::CorruptValue {
        offset,
        ref key,
        ref detail,
        kind,
        ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!(key, "key:000000000091");
    assert_eq!(kind, "hash");
    assert!(
        detail.starts_with("Hash ziplist integrity check failed."),
        "{detail}"
    );
    // The offset is that of the blob: the key precedes it.
    let at = offset as usize;
    assert_eq!(&bytes[at - 16..at], b"key:000000000091");
    assert!(
        err.to_string().contains("key \"key:000000000091\""),
        "{err}"
    );
}

/// Our verdict on every asset agrees with redis-check-rdb's, but for the
/// empty keys, which redis-check-rdb refuses and redis-server skips (see
/// `empty_keys_are_skipped_as_redis_does`; forkdb follows the server).
#[test]
fn assets_accepted_and_refused_as_redis_check_rdb_does() {
    let mut checked = 0;
    for entry in std::fs::read_dir(asset_path("")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rdb") || path.ends_with("corrupt_empty_keys.rdb") {
            continue;
        }
        checked += 1;
        let ours = load_bytes(&std::fs::read(&path).unwrap(), None);
        let theirs = redis_check_rdb(&path);
        assert_eq!(
            ours.is_ok(),
            theirs.status.success(),
            "{}: ours {:?}, redis-check-rdb: {}",
            path.display(),
            ours.as_ref().err().map(|e| e.to_string()),
            String::from_utf8_lossy(&theirs.stdout)
        );
    }
    assert_eq!(checked, 7);
}

// ---- hand-built files ----

/// A whole file: header of `version`, body, EOF, CRC.
fn file(version: u32, body: &[u8]) -> Vec<u8> {
    let mut f = format!("REDIS{version:04}").into_bytes();
    f.extend_from_slice(body);
    f.push(OPCODE_EOF);
    let crc = crc64(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    // FORKDB_RDB_SEEDS=<dir>: keep every hand-built file as a fuzzing seed
    // (fuzz/fuzz_targets/rdb_reader.rs).
    if let Some(dir) = std::env::var_os("FORKDB_RDB_SEEDS") {
        let name = format!("hand-{crc:016x}.rdb");
        std::fs::write(Path::new(&dir).join(name), &f).unwrap();
    }
    f
}

fn len(out: &mut Vec<u8>, n: u64) {
    encode_len(out, n).unwrap();
}

fn string(out: &mut Vec<u8>, b: &[u8]) {
    encode_string(out, b, None).unwrap();
}

/// A record head: type byte and key.
fn head(code: u8, key: &str) -> Vec<u8> {
    let mut out = vec![code];
    string(&mut out, key.as_bytes());
    out
}

fn listpack(elems: &[Elem<'_>]) -> Vec<u8> {
    let mut lp = Listpack::new();
    for e in elems {
        lp.append(*e).unwrap();
    }
    lp.as_bytes().to_vec()
}

/// A ziplist of short strings (prevlen 1 byte, 6-bit string lengths).
fn ziplist(elems: &[&str]) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut prev = 0usize;
    let mut tail = 10usize;
    for e in elems {
        assert!(e.len() < 64);
        tail = 10 + entries.len();
        entries.push(prev as u8);
        entries.push(e.len() as u8);
        entries.extend_from_slice(e.as_bytes());
        prev = 2 + e.len();
    }
    let total = 10 + entries.len() + 1;
    let mut z = Vec::new();
    z.extend_from_slice(&(total as u32).to_le_bytes());
    z.extend_from_slice(&(tail as u32).to_le_bytes());
    z.extend_from_slice(&(elems.len() as u16).to_le_bytes());
    z.extend_from_slice(&entries);
    z.push(0xFF);
    z
}

fn one_value(version: u32, body: &[u8]) -> Result<Value, RdbError> {
    let (recs, _) = load_bytes(&file(version, body), Some(1_000_000))?;
    assert_eq!(recs.len(), 1);
    Ok(recs.into_iter().next().unwrap().value)
}

#[test]
fn string_score_zset_reads_as_rdb_load_double_value() {
    let mut body = head(TYPE_ZSET, "z");
    len(&mut body, 5);
    for (m, sc) in [
        ("a", &b"1.5"[..]),
        ("b", b"  -2e3junk"),
        ("c", b"inf"),
        ("pinf", &[DOUBLE_POS_INF][..]),
        ("ninf", &[DOUBLE_NEG_INF][..]),
    ] {
        string(&mut body, m.as_bytes());
        if sc.len() == 1 && sc[0] >= DOUBLE_NAN {
            body.push(sc[0]);
        } else {
            body.push(sc.len() as u8);
            body.extend_from_slice(sc);
        }
    }
    let v = one_value(9, &body).unwrap();
    let Value::ZSet(ZSet::Members(m)) = v else {
        panic!("{v:?}")
    };
    let b = Bytes::from;
    assert_eq!(
        m,
        [
            (b("a"), 1.5),
            (b("b"), -2000.0),
            (b("c"), f64::INFINITY),
            (b("pinf"), f64::INFINITY),
            (b("ninf"), f64::NEG_INFINITY)
        ]
    );

    // NaN, as the 253 marker or as text: refused like Redis.
    for nan in [&[DOUBLE_NAN][..], &[3, b'n', b'a', b'n'][..]] {
        let mut body = head(TYPE_ZSET, "znan");
        len(&mut body, 1);
        string(&mut body, b"m");
        let at = 9 + body.len();
        body.extend_from_slice(nan);
        let err = one_value(9, &body).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("corrupt zset value (type 3, skiplist v1) of key \"znan\" at offset {at}: Zset with NAN score detected")
        );
    }
}

#[test]
fn linked_list_and_quicklist_v1() {
    let mut body = head(TYPE_LIST, "l");
    len(&mut body, 3);
    for e in ["x", "12", ""] {
        string(&mut body, e.as_bytes());
    }
    // Quicklist v1: two ziplist nodes and an empty one, which Redis skips.
    body.extend_from_slice(&head(TYPE_LIST_QUICKLIST, "q"));
    len(&mut body, 3);
    for node in [ziplist(&["a", "b"]), ziplist(&[]), ziplist(&["c", "123"])] {
        string(&mut body, &node);
    }
    // A quicklist whose only node is empty: the key is skipped.
    body.extend_from_slice(&head(TYPE_LIST_QUICKLIST, "empty"));
    len(&mut body, 1);
    string(&mut body, &ziplist(&[]));
    let (recs, summary) = load_bytes(&file(8, &body), None).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(summary.skipped.empty_keys, 1);
    let b = Bytes::from;
    assert_eq!(
        recs[0].value,
        Value::List(List::Elements(vec![b("x"), b("12"), b("")]))
    );
    let lp = |e: &[&str]| {
        let mut lp = Listpack::new();
        for x in e {
            lp.append(*x).unwrap();
        }
        ListNode::Packed(lp)
    };
    assert_eq!(
        recs[1].value,
        Value::List(List::Quicklist(vec![lp(&["a", "b"]), lp(&["c", "123"])]))
    );
}

#[test]
fn set_listpack_of_redis_7_2() {
    let mut body = head(TYPE_SET_LISTPACK, "s");
    string(
        &mut body,
        &listpack(&[Elem::Str(b"a"), Elem::Int(5), Elem::Str(b"b")]),
    );
    let v = one_value(11, &body).unwrap();
    let Value::Set(set @ Set::Listpack(_)) = &v else {
        panic!("{v:?}")
    };
    assert_eq!(
        set.to_vec(),
        [Bytes::from("a"), Bytes::from("5"), Bytes::from("b")]
    );
    // Redis 7.0 has no SET_LISTPACK: written back as a plain set.
    assert_eq!(v.type_code(), TYPE_SET);
    let mut w = RdbWriter::new(
        Vec::new(),
        SaveOptions::default(),
        &AuxFields::new("7.0.15"),
    )
    .unwrap();
    w.select_db(0, 1, 0).unwrap();
    w.record(b"s", &v, None).unwrap();
    let (recs, _) = load_bytes(&w.finish().unwrap(), None).unwrap();
    let Value::Set(back) = &recs[0].value else {
        panic!()
    };
    assert_eq!(back.to_vec(), set.to_vec());

    // A duplicate (the integer 5 and the string "5" are the same member).
    let mut body = head(TYPE_SET_LISTPACK, "dup");
    string(
        &mut body,
        &listpack(&[Elem::Int(5), Elem::Str(b"x"), Elem::Int(5)]),
    );
    let err = one_value(11, &body).unwrap_err();
    assert!(
        err.to_string().contains("of key \"dup\"")
            && err
                .to_string()
                .contains("Set listpack integrity check failed. (duplicate \"5\""),
        "{err}"
    );
}

/// 7.4's hashes with field TTLs: expired fields dropped, a live TTL refused
/// (forkdb cannot hold a field TTL), a hash with every field expired skipped.
#[test]
fn hashes_with_field_ttls_of_redis_7_4() {
    const NOW: i64 = 1_000_000;
    let past = NOW - 10;
    let future = NOW + 10_000;
    let b = Bytes::from;

    // HASH_LISTPACK_EX (minExpire, then field, value, TTL triples) and its
    // pre-GA form (no minExpire).
    for code in [TYPE_HASH_LISTPACK_EX, TYPE_HASH_LISTPACK_EX_PRE_GA] {
        let build = |ttls: [i64; 2]| {
            let mut body = head(code, "h");
            if code == TYPE_HASH_LISTPACK_EX {
                body.extend_from_slice(&past.to_le_bytes());
            }
            string(
                &mut body,
                &listpack(&[
                    Elem::Str(b"keep"),
                    Elem::Str(b"v1"),
                    Elem::Int(ttls[0]),
                    Elem::Str(b"gone"),
                    Elem::Str(b"v2"),
                    Elem::Int(ttls[1]),
                ]),
            );
            body
        };
        let v = one_value(12, &build([0, past])).unwrap();
        let Value::Hash(h @ Hash::Listpack(_)) = &v else {
            panic!("{v:?}")
        };
        assert_eq!(h.to_vec(), [(b("keep"), b("v1"))]);

        let err = one_value(12, &build([0, future])).unwrap_err();
        assert!(
            matches!(err, RdbError::UnrepresentableValue { offset: 9, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("key \"h\""), "{err}");
        assert!(
            err.to_string().contains("field \"gone\" has its own TTL"),
            "{err}"
        );

        let (recs, summary) = load_bytes(&file(12, &build([past, past])), Some(NOW)).unwrap();
        assert!(recs.is_empty());
        assert_eq!(summary.skipped.empty_keys, 1);
    }

    // HASH_METADATA: minExpire, count, then TTL (relative: minExpire + ttl -
    // 1; 0 = none), field, value; pre-GA: absolute TTLs, no minExpire.
    for code in [TYPE_HASH_METADATA, TYPE_HASH_METADATA_PRE_GA] {
        let build = |gone_at: i64| {
            let mut body = head(code, "hm");
            let min = past - 5;
            if code == TYPE_HASH_METADATA {
                body.extend_from_slice(&min.to_le_bytes());
            }
            len(&mut body, 2);
            len(&mut body, 0);
            string(&mut body, b"keep");
            string(&mut body, b"v1");
            let ttl = if code == TYPE_HASH_METADATA {
                gone_at - min + 1
            } else {
                gone_at
            };
            len(&mut body, ttl as u64);
            string(&mut body, b"gone");
            string(&mut body, b"v2");
            body
        };
        let v = one_value(12, &build(past)).unwrap();
        assert_eq!(v, Value::Hash(Hash::Pairs(vec![(b("keep"), b("v1"))])));
        let err = one_value(12, &build(future)).unwrap_err();
        assert!(
            matches!(err, RdbError::UnrepresentableValue { .. }),
            "{err:?}"
        );
    }
}

#[test]
fn streams_and_modules_are_refused_naming_type_key_and_offset() {
    for (code, kind, encoding) in [
        (TYPE_STREAM_LISTPACKS, "stream", "listpacks"),
        (TYPE_STREAM_LISTPACKS_3, "stream", "listpacks v3"),
        (TYPE_MODULE_2, "module", "value"),
    ] {
        let mut body = head(TYPE_STRING, "ok");
        string(&mut body, b"1");
        let at = 9 + body.len();
        body.extend_from_slice(&head(code, "thekey"));
        body.extend_from_slice(&[0, 0, 0]);
        let err = load_bytes(&file(11, &body), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("unsupported value type {code} ({kind} as {encoding}) at offset {at}, key \"thekey\"")
        );
    }
}

// ---- corrupt containers ----

/// Loads a one-record file and returns the error, checking it names the key
/// and an offset inside the record.
fn corrupt(version: u32, body: &[u8], key: &str) -> RdbError {
    let bytes = file(version, body);
    let err = load_bytes(&bytes, Some(1_000_000)).unwrap_err();
    let offset = err.offset().unwrap();
    assert!(offset >= 9 && offset < bytes.len() as u64, "{err}");
    assert!(err.to_string().contains(&format!("key \"{key}\"")), "{err}");
    err
}

#[test]
fn corrupt_containers_are_refused_with_offset_and_key() {
    // A listpack whose header lies about its size.
    let mut lp = listpack(&[Elem::Str(b"f"), Elem::Str(b"v")]);
    lp[0] += 1;
    let mut body = head(TYPE_HASH_LISTPACK, "badlp");
    let at = 9 + body.len();
    string(&mut body, &lp);
    let err = corrupt(10, &body, "badlp");
    assert_eq!(err.offset(), Some(at as u64));
    assert!(
        err.to_string()
            .contains("Hash listpack integrity check failed. (corrupt listpack"),
        "{err}"
    );

    // An odd hash listpack.
    let mut body = head(TYPE_HASH_LISTPACK, "odd");
    string(
        &mut body,
        &listpack(&[Elem::Str(b"f"), Elem::Str(b"v"), Elem::Str(b"g")]),
    );
    let err = corrupt(10, &body, "odd");
    assert!(
        err.to_string()
            .ends_with("Hash listpack integrity check failed. (3 elements, not a multiple of 2)"),
        "{err}"
    );

    // A duplicate zset listpack member.
    let mut body = head(TYPE_ZSET_LISTPACK, "zdup");
    string(
        &mut body,
        &listpack(&[Elem::Str(b"m"), Elem::Int(1), Elem::Str(b"m"), Elem::Int(2)]),
    );
    let err = corrupt(10, &body, "zdup");
    assert!(
        err.to_string()
            .contains("Zset listpack integrity check failed. (duplicate \"m\""),
        "{err}"
    );

    // A duplicate set member, a duplicate hash field, a duplicate zset member.
    let mut body = head(TYPE_SET, "sdup");
    len(&mut body, 3);
    for m in ["a", "b", "a"] {
        string(&mut body, m.as_bytes());
    }
    let err = corrupt(10, &body, "sdup");
    assert!(
        err.to_string()
            .contains(": Duplicate set members detected (member \"a\")"),
        "{err}"
    );
    let mut body = head(TYPE_HASH, "hdup");
    len(&mut body, 2);
    for m in ["f", "1", "f", "2"] {
        string(&mut body, m.as_bytes());
    }
    let err = corrupt(10, &body, "hdup");
    assert!(
        err.to_string()
            .contains(": Hash with dup elements (field \"f\")"),
        "{err}"
    );
    let mut body = head(TYPE_ZSET_2, "z2dup");
    len(&mut body, 2);
    for m in ["m", "m"] {
        string(&mut body, m.as_bytes());
        body.extend_from_slice(&1.0f64.to_le_bytes());
    }
    let err = corrupt(10, &body, "z2dup");
    assert!(
        err.to_string()
            .contains(": Duplicate zset fields detected (member \"m\")"),
        "{err}"
    );

    // An intset out of order, a bad quicklist container, an empty node.
    let mut is = Intset::new();
    is.insert(1).unwrap();
    is.insert(2).unwrap();
    let mut bad = is.as_bytes().to_vec();
    bad.swap(8, 10);
    let mut body = head(TYPE_SET_INTSET, "is");
    string(&mut body, &bad);
    let err = corrupt(10, &body, "is");
    assert!(
        err.to_string().contains("Intset integrity check failed."),
        "{err}"
    );
    let mut body = head(TYPE_LIST_QUICKLIST_2, "ql");
    len(&mut body, 1);
    len(&mut body, 3);
    string(&mut body, b"x");
    let err = corrupt(10, &body, "ql");
    assert!(
        err.to_string()
            .contains("Quicklist integrity check failed. (node container 3"),
        "{err}"
    );
    let mut body = head(TYPE_LIST_QUICKLIST_2, "ql0");
    len(&mut body, 1);
    len(&mut body, QUICKLIST_NODE_PLAIN);
    string(&mut body, b"");
    let err = corrupt(10, &body, "ql0");
    assert!(err.to_string().contains("empty quicklist node"), "{err}");

    // A zset listpack whose score is not a number.
    let mut body = head(TYPE_ZSET_LISTPACK, "zs");
    string(&mut body, &listpack(&[Elem::Str(b"m"), Elem::Str(b"abc")]));
    corrupt(10, &body, "zs");
}

#[test]
fn hostile_lengths_cost_no_memory_and_truncation_names_the_key() {
    // 2^40 elements announced, 1 given.
    for code in [
        TYPE_LIST,
        TYPE_SET,
        TYPE_HASH,
        TYPE_ZSET_2,
        TYPE_LIST_QUICKLIST_2,
    ] {
        let mut body = head(code, "huge");
        len(&mut body, 1 << 40);
        string(&mut body, b"x");
        let bytes = file(10, &body);
        let err = load_bytes(&bytes[..bytes.len() - 9], None).unwrap_err();
        assert!(
            err.to_string().contains("key \"huge\"")
                && err.to_string().contains("unexpected end of file"),
            "{err}"
        );
    }
}

/// A file with every container form, written by forkdb: each of its
/// truncations and many single-byte changes load or fail cleanly.
#[test]
fn damaged_container_files_never_panic() {
    let b = |s: &str| Bytes::from(s.to_string());
    let mut lp = Listpack::new();
    for e in ["f", "v", "g", "12"] {
        lp.append(e).unwrap();
    }
    let mut zl = Listpack::new();
    for e in ["a", "1", "b", "2.5"] {
        zl.append(e).unwrap();
    }
    let mut is = Intset::new();
    for v in [1, 300, 70000] {
        is.insert(v).unwrap();
    }
    let values = [
        Value::List(List::Elements(
            (0..50).map(|i| b(&format!("e{i}"))).collect(),
        )),
        Value::List(List::Quicklist(vec![
            ListNode::Plain(b("plain")),
            ListNode::Packed(lp.clone()),
        ])),
        Value::Set(Set::Intset(is)),
        Value::Set(Set::Members(vec![b("x"), b("y")])),
        Value::Hash(Hash::Listpack(lp)),
        Value::Hash(Hash::Pairs(vec![(b("k"), b("v"))])),
        Value::ZSet(ZSet::Listpack(zl)),
        Value::ZSet(ZSet::Members(vec![(b("m"), 1.0), (b("n"), -1.0)])),
    ];
    let mut w = RdbWriter::new(
        Vec::new(),
        SaveOptions {
            compression: true,
            checksum: false,
        },
        &AuxFields::new("7.0.15"),
    )
    .unwrap();
    w.select_db(0, values.len() as u64, 0).unwrap();
    for (i, v) in values.iter().enumerate() {
        w.record(format!("k{i}").as_bytes(), v, Some(4102444800000))
            .unwrap();
    }
    let good = w.finish().unwrap();
    let (recs, _) = load_bytes(&good, None).unwrap();
    // The expanded list comes back as the quicklist it was written as.
    let Value::List(first) = &recs[0].value else {
        panic!()
    };
    let Value::List(want) = &values[0] else {
        panic!()
    };
    assert_eq!(first.to_vec(), want.to_vec());
    assert!(matches!(first, List::Quicklist(_)));
    let rest: Vec<Value> = recs[1..].iter().map(|r| r.value.clone()).collect();
    assert_eq!(rest, values[1..]);
    for cut in 0..good.len() {
        if let Err(e) = load_bytes(&good[..cut], None) {
            let _ = e.to_string();
        }
    }
    for i in 9..good.len() {
        for x in [0x01u8, 0x80, 0xFF] {
            let mut bad = good.clone();
            bad[i] ^= x;
            if let Err(e) = load_bytes(&bad, None) {
                assert!(e.offset().is_some() || matches!(e, RdbError::Io(_)), "{e}");
            }
        }
    }
}
