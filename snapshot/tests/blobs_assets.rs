//! The blob parsers against the RDB files that ship in Redis 7.0's own
//! `tests/assets/` (copied to `tests/assets/`, see its README): every
//! ziplist, zipmap, intset and listpack in them is read, and the content must
//! be what Redis's own tests expect of those files (`tests/integration/rdb.tcl`
//! "RDB encoding loading test", `convert-zipmap-hash-on-load.tcl`,
//! `convert-ziplist-{hash,zset}-on-load.tcl`).

mod blob_rdb;

use blob_rdb::{read_file, RawValue};
use forkdb_snapshot::blob::{Elem, Intset, Listpack, Ziplist, Zipmap};

fn asset(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/assets")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The elements of a ziplist as Redis replies with them, after checking that
/// reading from the tail gives the same.
fn ziplist_elems(blob: &[u8]) -> Vec<String> {
    let zl = Ziplist::new(blob).unwrap_or_else(|e| panic!("{e}"));
    let fwd: Vec<String> = zl.iter().map(|e| s(&e.to_vec())).collect();
    let mut back: Vec<String> = zl.iter().rev().map(|e| s(&e.to_vec())).collect();
    back.reverse();
    assert_eq!(fwd, back, "ziplist read from both ends");
    assert_eq!(fwd.len(), zl.len());
    fwd
}

fn pairs(v: Vec<String>) -> Vec<(String, String)> {
    assert_eq!(v.len() % 2, 0, "odd number of entries: {v:?}");
    v.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect()
}

/// One key in the format of Redis's test helper `csvdump`: strings as is,
/// lists in order, sets sorted as strings, zsets by score, hashes by field.
fn csv_line(db: u64, key: &[u8], t: u8, v: RawValue) -> String {
    let (kind, items): (&str, Vec<String>) = match (t, v) {
        (0, RawValue::String(x)) => ("string", vec![s(&x)]),
        (1, RawValue::Seq(x)) => ("list", x.iter().map(|e| s(e)).collect()),
        (10, RawValue::Blob(b)) => ("list", ziplist_elems(&b)),
        (14, RawValue::Quicklist(nodes)) => (
            "list",
            nodes.iter().flat_map(|n| ziplist_elems(n)).collect(),
        ),
        (2, RawValue::Seq(x)) => {
            let mut m: Vec<String> = x.iter().map(|e| s(e)).collect();
            m.sort();
            ("set", m)
        }
        (11, RawValue::Blob(b)) => {
            let set = Intset::from_bytes(b).unwrap_or_else(|e| panic!("{e}"));
            let mut m: Vec<String> = set.iter().map(|v| v.to_string()).collect();
            let mut back: Vec<String> = set.iter().rev().map(|v| v.to_string()).collect();
            back.reverse();
            assert_eq!(m, back);
            m.sort();
            ("set", m)
        }
        (3 | 12, v) => {
            let mut z: Vec<(String, String)> = match v {
                RawValue::Zset(x) => x.into_iter().map(|(m, sc)| (s(&m), sc)).collect(),
                RawValue::Blob(b) => pairs(ziplist_elems(&b)),
                other => panic!("{other:?}"),
            };
            z.sort_by(|a, b| {
                let (x, y): (f64, f64) = (a.1.parse().unwrap(), b.1.parse().unwrap());
                x.partial_cmp(&y).unwrap().then_with(|| a.0.cmp(&b.0))
            });
            ("zset", z.into_iter().flat_map(|(m, sc)| [m, sc]).collect())
        }
        (4 | 9 | 13, v) => {
            let mut h: Vec<(String, String)> = match v {
                RawValue::Pairs(x) => x.iter().map(|(f, v)| (s(f), s(v))).collect(),
                RawValue::Blob(b) if t == 9 => {
                    let zm = Zipmap::new(&b).unwrap_or_else(|e| panic!("{e}"));
                    zm.iter().map(|(f, v)| (s(f), s(v))).collect()
                }
                RawValue::Blob(b) => pairs(ziplist_elems(&b)),
                other => panic!("{other:?}"),
            };
            h.sort();
            ("hash", h.into_iter().flat_map(|(f, v)| [f, v]).collect())
        }
        (t, v) => panic!("type {t}: {v:?}"),
    };
    let mut line = format!("\"{db}\",\"{}\",\"{kind}\",", s(key));
    for i in &items {
        line.push_str(&format!("\"{i}\","));
    }
    if kind == "string" {
        line.pop();
    }
    line
}

#[test]
fn encodings_rdb_reads_as_redis_test_suite_expects() {
    let mut keys = read_file(&asset("encodings.rdb"));
    keys.sort_by(|a, b| a.2.cmp(&b.2));
    let got: Vec<String> = keys
        .into_iter()
        .map(|(db, t, k, v)| csv_line(db, &k, t, v))
        .collect();
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
}

#[test]
fn hash_zipmap_rdb() {
    // convert-zipmap-hash-on-load.tcl: hlen 2, hmget f1 f2 = v1 v2.
    let keys = read_file(&asset("hash-zipmap.rdb"));
    let [(0, 9, key, RawValue::Blob(b))] = &keys[..] else {
        panic!("{keys:?}")
    };
    assert_eq!(key, b"hash");
    let zm = Zipmap::new(b).unwrap();
    assert_eq!(zm.len(), 2);
    let got: Vec<_> = zm.iter().collect();
    assert_eq!(got, [(&b"f1"[..], &b"v1"[..]), (&b"f2"[..], &b"v2"[..])]);
}

#[test]
fn hash_ziplist_rdb() {
    let keys = read_file(&asset("hash-ziplist.rdb"));
    let [(0, 13, key, RawValue::Blob(b))] = &keys[..] else {
        panic!("{keys:?}")
    };
    assert_eq!(key, b"hash");
    assert_eq!(ziplist_elems(b), ["f1", "v1", "f2", "v2"]);
}

#[test]
fn zset_ziplist_rdb() {
    // convert-ziplist-zset-on-load.tcl: zrange withscores = one 1 two 2.
    let keys = read_file(&asset("zset-ziplist.rdb"));
    let [(0, 12, key, RawValue::Blob(b))] = &keys[..] else {
        panic!("{keys:?}")
    };
    assert_eq!(key, b"zset");
    let zl = Ziplist::new(b).unwrap();
    assert_eq!(
        zl.iter().collect::<Vec<_>>(),
        [
            Elem::Str(b"one"),
            Elem::Int(1),
            Elem::Str(b"two"),
            Elem::Int(2)
        ]
    );
}

#[test]
fn list_quicklist_rdb() {
    // rdb.tcl "test old version rdb file": get x = 7, lpop list = 7.
    let keys = read_file(&asset("list-quicklist.rdb"));
    let (_, t, _, RawValue::Quicklist(nodes)) = &keys[0] else {
        panic!("{keys:?}")
    };
    assert_eq!(*t, 14);
    assert_eq!(nodes.len(), 1);
    let zl = Ziplist::new(&nodes[0]).unwrap();
    assert_eq!(zl.iter().collect::<Vec<_>>(), [Elem::Int(7)]);
    assert_eq!(keys[1].2, b"x");
    assert_eq!(keys[1].3, RawValue::String(b"7".to_vec()));
}

#[test]
fn corrupt_empty_keys_rdb_blobs_are_valid_but_empty() {
    // Redis's validators accept these empty blobs; its loader then skips the
    // keys ("skipping empty key", corrupt-dump.tcl). The blob layer must
    // accept them too, and say they are empty.
    let keys = read_file(&asset("corrupt_empty_keys.rdb"));
    let mut blobs = 0;
    for (_, t, key, v) in keys {
        let what = s(&key);
        match (t, v) {
            (10 | 12 | 13, RawValue::Blob(b)) => {
                assert!(Ziplist::new(&b).unwrap().is_empty(), "{what}");
                blobs += 1;
            }
            (16 | 17, RawValue::Blob(b)) => {
                assert!(Listpack::from_bytes(b).unwrap().is_empty(), "{what}");
                blobs += 1;
            }
            (14, RawValue::Quicklist(nodes)) => {
                for n in nodes {
                    assert!(Ziplist::new(&n).unwrap().is_empty(), "{what}");
                    blobs += 1;
                }
            }
            (_, RawValue::Seq(x)) => assert!(x.is_empty(), "{what}"),
            (_, RawValue::Pairs(x)) => assert!(x.is_empty(), "{what}"),
            (_, RawValue::Zset(x)) => assert!(x.is_empty(), "{what}"),
            (_, RawValue::Quicklist(x)) => assert!(x.is_empty(), "{what}"),
            (t, v) => panic!("{what}: type {t} {v:?}"),
        }
    }
    assert_eq!(blobs, 5);
}

#[test]
fn corrupt_ziplist_rdb_is_refused_with_an_offset() {
    // corrupt-dump.tcl: loading it must fail with "integrity check failed".
    let keys = read_file(&asset("corrupt_ziplist.rdb"));
    let mut refused = Vec::new();
    for (_, t, key, v) in keys {
        let blobs = match v {
            RawValue::Blob(b) if t == 10 || t == 12 || t == 13 => vec![b],
            RawValue::Quicklist(n) => n,
            _ => continue,
        };
        for b in blobs {
            if let Err(e) = Ziplist::new(&b) {
                assert!(e.offset().is_some());
                refused.push(format!("{}: {e}", s(&key)));
            }
        }
    }
    assert!(!refused.is_empty(), "no corrupt ziplist found");
    eprintln!("{refused:?}");
}
