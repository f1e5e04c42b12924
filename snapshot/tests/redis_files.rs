//! Files written by a real redis-server 7.0 (tests/data, made by make.sh):
//! the reader loads them exactly, and the writer reproduces them byte for byte.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::fixture;
use forkdb_snapshot::{
    load, AuxFields, Checksum, LoadedRecord, RdbError, RdbReader, RdbWriter, SaveOptions, Value,
};

const EXP1: i64 = 4102444800123;
const EXP2: i64 = 4102444800456;

type Keyspace = BTreeMap<(u32, Vec<u8>), (Vec<u8>, Option<i64>)>;

/// What make.sh's `strings` function stores.
fn expected_strings() -> Keyspace {
    let mut m = Keyspace::new();
    let mut put = |db: u32, k: &[u8], v: &[u8], exp: Option<i64>| {
        m.insert((db, k.to_vec()), (v.to_vec(), exp));
    };
    for v in [
        "0",
        "1",
        "-1",
        "127",
        "128",
        "-128",
        "-129",
        "32767",
        "32768",
        "-32768",
        "-32769",
        "2147483647",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "9223372036854775807",
        "-0",
        "007",
        "+5",
        " 5",
        "1.5",
    ] {
        put(0, format!("int:{v}").as_bytes(), v.as_bytes(), None);
    }
    put(0, b"12345", b"integer key", None);
    put(0, b"empty", b"", None);
    put(0, b"lzf", "abcdefgh".repeat(40).as_bytes(), None);
    put(
        0,
        format!("lzf-key-{}", "k".repeat(30)).as_bytes(),
        b"v",
        None,
    );
    put(0, b"run21", &[b'a'; 21], None);
    put(0, b"run22", &[b'a'; 22], None);
    put(
        0,
        b"nocompress",
        b"the quick brown fox jumps over the lazy dog",
        None,
    );
    put(0, b"binary", b"binary\x00\x01\xff\xfe\r\n", None);
    put(0, b"ttl1", b"x", Some(EXP1));
    put(0, b"ttl2", &[b'y'; 100], Some(EXP2));
    put(1, b"db1", b"one", None);
    put(1, b"db1-ttl", b"one", Some(EXP1));
    put(15, b"db15", b"fifteen", None);
    m
}

fn read_all(bytes: &[u8]) -> (Vec<LoadedRecord>, forkdb_snapshot::LoadSummary) {
    let mut records = Vec::new();
    let summary = load(bytes, |r| {
        records.push(r);
        Ok::<(), RdbError>(())
    })
    .unwrap_or_else(|e| panic!("loading: {e}"));
    (records, summary)
}

fn keyspace(records: &[LoadedRecord]) -> Keyspace {
    let mut m = Keyspace::new();
    for r in records {
        let Value::String(v) = &r.value else {
            panic!("key {:?}: not a string", r.key)
        };
        let old = m.insert((r.db, r.key.to_vec()), (v.to_vec(), r.expire_ms));
        assert!(old.is_none(), "duplicate key {:?}", r.key);
    }
    m
}

fn aux<'a>(summary: &'a forkdb_snapshot::LoadSummary, name: &str) -> &'a str {
    std::str::from_utf8(summary.aux_value(name).unwrap()).unwrap()
}

#[test]
fn reads_redis_strings_file_exactly() {
    for (name, checksum_on) in [
        ("redis-7.0-strings.rdb", true),
        ("redis-7.0-strings-nocompress-nochecksum.rdb", false),
    ] {
        let bytes = fixture(name);
        let (records, summary) = read_all(&bytes);
        assert_eq!(keyspace(&records), expected_strings(), "{name}");
        assert_eq!(summary.version, 10);
        assert_eq!(summary.records, 34);
        assert_eq!(summary.records_with_expire, 3);
        assert_eq!(summary.select_dbs, 3);
        assert_eq!(summary.resize_dbs, 3);
        assert_eq!(summary.bytes_read, bytes.len() as u64);
        assert_eq!(aux(&summary, "redis-ver"), "7.0.15");
        assert_eq!(aux(&summary, "redis-bits"), "64");
        assert_eq!(aux(&summary, "aof-base"), "0");
        assert!(aux(&summary, "ctime").parse::<i64>().is_ok());
        let names: Vec<&[u8]> = summary.aux.iter().map(|f| &f.name[..]).collect();
        assert_eq!(
            names,
            [
                &b"redis-ver"[..],
                b"redis-bits",
                b"ctime",
                b"used-mem",
                b"aof-base"
            ]
        );
        match (checksum_on, summary.checksum) {
            (true, Checksum::Verified(c)) => {
                assert_eq!(c.to_le_bytes(), bytes[bytes.len() - 8..]);
            }
            (false, Checksum::Disabled) => {}
            (_, other) => panic!("{name}: checksum {other:?}"),
        }
    }
}

#[test]
fn resize_hints_match_redis_counts() {
    let bytes = fixture("redis-7.0-strings.rdb");
    let mut reader = RdbReader::new(&bytes[..]).unwrap();
    let mut hints = Vec::new();
    while let Some(r) = reader.next_record().unwrap() {
        let hint = reader.resize_hint().unwrap();
        assert_eq!(hint.db, r.db);
        if hints.last() != Some(&hint) {
            hints.push(hint);
        }
    }
    let got: Vec<(u32, u64, u64)> = hints.iter().map(|h| (h.db, h.keys, h.expires)).collect();
    assert_eq!(got, [(0, 31, 2), (1, 2, 1), (15, 1, 0)]);
}

/// Writes the records of a Redis file, in its order, with our writer and the
/// file's own AUX values: the result must be the same bytes, which checks
/// every encoding decision (integers, LZF, lengths, expires, RESIZEDB, EOF,
/// checksum) against Redis.
#[test]
fn writer_reproduces_redis_files_byte_for_byte() {
    for (name, options) in [
        ("redis-7.0-strings.rdb", SaveOptions::default()),
        (
            "redis-7.0-strings-nocompress-nochecksum.rdb",
            SaveOptions {
                compression: false,
                checksum: false,
            },
        ),
    ] {
        let redis_bytes = fixture(name);
        let (records, summary) = read_all(&redis_bytes);
        let aux_fields = AuxFields {
            redis_ver: aux(&summary, "redis-ver"),
            redis_bits: aux(&summary, "redis-bits").parse().unwrap(),
            ctime: aux(&summary, "ctime").parse().unwrap(),
            used_mem: aux(&summary, "used-mem").parse().unwrap(),
            aof_base: false,
        };
        let mut w = RdbWriter::new(Vec::new(), options, &aux_fields).unwrap();
        let mut i = 0;
        while i < records.len() {
            let db = records[i].db;
            let in_db: Vec<&LoadedRecord> =
                records[i..].iter().take_while(|r| r.db == db).collect();
            let expires = in_db.iter().filter(|r| r.expire_ms.is_some()).count();
            w.select_db(db, in_db.len() as u64, expires as u64).unwrap();
            for r in &in_db {
                w.record(&r.key, &r.value, r.expire_ms).unwrap();
            }
            i += in_db.len();
        }
        let ours = w.finish().unwrap();
        if ours != redis_bytes {
            let at = ours.iter().zip(&redis_bytes).position(|(a, b)| a != b);
            panic!(
                "{name}: our bytes differ from Redis's at offset {at:?} (lengths {} vs {})",
                ours.len(),
                redis_bytes.len()
            );
        }
    }
}

#[test]
fn skips_lfu_freq_and_function_library() {
    let (records, summary) = read_all(&fixture("redis-7.0-lfu-function.rdb"));
    let got: Vec<(Bytes, Value)> = records.into_iter().map(|r| (r.key, r.value)).collect();
    assert_eq!(
        got,
        [
            (Bytes::from("b"), Value::from("two")),
            (Bytes::from("a"), Value::from("1"))
        ]
    );
    assert_eq!(summary.functions.len(), 1);
    let lib = &summary.functions[0];
    assert!(lib.metadata().is_ok(), "{:?}", lib.metadata());
    // Written back, the record is the same bytes as in Redis's file.
    let mut ours = Vec::new();
    forkdb_snapshot::encode_function(
        &mut ours,
        &lib.code,
        Some(&mut forkdb_snapshot::LzfCompressor::new()),
    )
    .unwrap();
    let redis_bytes = fixture("redis-7.0-lfu-function.rdb");
    let at = lib.offset as usize;
    assert_eq!(&redis_bytes[at..at + ours.len()], &ours[..]);
    assert_eq!(summary.skipped.freq, 2);
    assert!(matches!(summary.checksum, Checksum::Verified(_)));
}

#[test]
fn skips_lru_idle() {
    let (records, summary) = read_all(&fixture("redis-7.0-lru.rdb"));
    assert_eq!(records.len(), 2);
    assert_eq!(summary.skipped.idle, 2);
    // A record's offset is that of its first annotation (IDLE here).
    let bytes = fixture("redis-7.0-lru.rdb");
    assert_eq!(
        bytes[records[0].offset as usize],
        forkdb_snapshot::format::OPCODE_IDLE
    );
}

#[test]
fn list_fixture_is_read() {
    // Redis wrote the list first (dict order), at offset 85, after RESIZEDB.
    let bytes = fixture("redis-7.0-list.rdb");
    let mut reader = RdbReader::new(&bytes[..]).unwrap();
    let rec = reader.next_record().unwrap().unwrap();
    assert_eq!(rec.offset, 85);
    assert_eq!(rec.key, "mylist");
    let forkdb_snapshot::Value::List(list @ forkdb_snapshot::List::Quicklist(_)) = &rec.value
    else {
        panic!("{:?}", rec.value)
    };
    // make.sh: `rpush mylist x y z`.
    assert_eq!(list.to_vec(), ["x", "y", "z"]);
}

#[test]
fn verify_file_on_fixtures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let summary = forkdb_snapshot::verify_file(dir.join("redis-7.0-strings.rdb")).unwrap();
    assert_eq!(summary.records, 34);
    forkdb_snapshot::verify_file(dir.join("redis-7.0-list.rdb")).unwrap();
    let err = forkdb_snapshot::verify_file(dir.join("no-such-file.rdb")).unwrap_err();
    assert!(matches!(err, RdbError::Io(_)));
}
