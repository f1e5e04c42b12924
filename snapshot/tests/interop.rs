//! Our files against real Redis: redis-check-rdb accepts them, redis-server
//! loads them with the same keys, values and expire times, and the file
//! redis-server then saves loads back to the same data with our reader.
//!
//! Needs redis-server, redis-cli and redis-check-rdb (scripts/test installs
//! them); the tests fail, saying so, when they are missing.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{redis_check_rdb, RedisServer, TempDir};
use forkdb_snapshot::{
    load_file, save_atomically, AuxFields, RdbError, RdbWriter, SaveOptions, Value,
};

/// (db, key, value, expire_ms). Keys are printable: they go through argv.
type Dataset = Vec<(u32, String, Vec<u8>, Option<i64>)>;

/// (db, key) -> (value, expire_ms), to compare regardless of order.
type Keyspace = BTreeMap<(u32, Vec<u8>), (Vec<u8>, Option<i64>)>;

const FAR_FUTURE_MS: i64 = 4102444800123; // 2100-01-01

fn dataset() -> Dataset {
    let mut d: Dataset = Vec::new();
    for v in [
        "0",
        "-1",
        "127",
        "128",
        "-32769",
        "2147483647",
        "2147483648",
        "-0",
        "007",
    ] {
        d.push((0, format!("int:{v}"), v.as_bytes().to_vec(), None));
    }
    d.push((0, "42".into(), b"an integer key".to_vec(), None));
    d.push((0, "lzf".into(), "abc".repeat(100).into_bytes(), None));
    d.push((0, "all-bytes".into(), (0..=255u8).collect(), None));
    d.push((0, "crlf".into(), b"line1\r\nline2\n".to_vec(), None));
    d.push((0, "empty-value".into(), Vec::new(), None));
    d.push((0, String::new(), b"value of the empty key".to_vec(), None));
    d.push((0, "clé-ünïcode".into(), "välue ✓".as_bytes().to_vec(), None));
    // 1 MiB, partly compressible: LZF and a 32-bit length.
    let big: Vec<u8> = (0..1u32 << 20)
        .map(|i| {
            if i % 1000 < 500 {
                (i % 251) as u8
            } else {
                (i.wrapping_mul(2654435761) >> 13) as u8
            }
        })
        .collect();
    d.push((0, "big".into(), big, Some(FAR_FUTURE_MS + 1)));
    d.push((0, "ttl".into(), b"x".to_vec(), Some(FAR_FUTURE_MS)));
    d.push((3, "db3".into(), b"three".to_vec(), None));
    d.push((
        3,
        "db3-ttl".into(),
        "t".repeat(50).into_bytes(),
        Some(FAR_FUTURE_MS + 2),
    ));
    d.push((15, "db15".into(), b"fifteen".to_vec(), None));
    d
}

fn write_rdb(dir: &std::path::Path, name: &str, data: &Dataset, options: SaveOptions) {
    save_atomically(dir, name.as_ref(), "temp-test.rdb".as_ref(), |out| {
        let mut w = RdbWriter::new(out, options, &AuxFields::new("7.0.15"))?;
        let mut dbs: BTreeMap<u32, Vec<_>> = BTreeMap::new();
        for entry in data {
            dbs.entry(entry.0).or_default().push(entry);
        }
        for (db, entries) in dbs {
            let expires = entries.iter().filter(|e| e.3.is_some()).count();
            w.select_db(db, entries.len() as u64, expires as u64)?;
            for (_, k, v, exp) in entries {
                w.record(k.as_bytes(), &Value::String(Bytes::from(v.clone())), *exp)?;
            }
        }
        w.finish()?;
        Ok(())
    })
    .unwrap();
}

fn read_rdb(path: &std::path::Path) -> Keyspace {
    let mut m = BTreeMap::new();
    load_file(path, |r| {
        let Value::String(v) = r.value else {
            panic!("key {:?}: not a string", r.key)
        };
        m.insert((r.db, r.key.to_vec()), (v.to_vec(), r.expire_ms));
        Ok::<(), RdbError>(())
    })
    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    m
}

fn as_map(data: &Dataset) -> Keyspace {
    data.iter()
        .map(|(db, k, v, e)| ((*db, k.clone().into_bytes()), (v.clone(), *e)))
        .collect()
}

fn check_with_redis(options: SaveOptions) {
    let dir = TempDir::new("interop");
    let data = dataset();
    write_rdb(dir.path(), "ours.rdb", &data, options);
    let path = dir.path().join("ours.rdb");

    let check = redis_check_rdb(&path);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "redis-check-rdb failed:\n{report}");
    assert!(report.contains("RDB looks OK"), "{report}");
    assert!(
        report.contains(&format!("[info] {} keys read", data.len())),
        "{report}"
    );
    let expires = data.iter().filter(|e| e.3.is_some()).count();
    assert!(
        report.contains(&format!("[info] {expires} expires")),
        "{report}"
    );
    if options.checksum {
        assert!(report.contains("Checksum OK"), "{report}");
    }

    let server = RedisServer::start(dir.path(), "ours.rdb");
    for db in [0, 3, 15] {
        let expected = data.iter().filter(|e| e.0 == db).count() as i64;
        assert_eq!(server.cli_int(db, &["DBSIZE"]), expected, "db {db}");
    }
    for (db, key, value, expire) in &data {
        let got = server.cli(*db, &["GET", key]);
        assert!(
            got == *value,
            "db {db} key {key:?}: got {} bytes",
            got.len()
        );
        let pexpiretime = server.cli_int(*db, &["PEXPIRETIME", key]);
        assert_eq!(pexpiretime, expire.unwrap_or(-1), "db {db} key {key:?}");
    }
    assert!(
        server.log().contains(&format!(
            "Done loading RDB, keys loaded: {}, keys expired: 0",
            data.len()
        )),
        "{}",
        server.log()
    );

    // Redis's own save of what it loaded from us reads back the same.
    assert_eq!(server.cli(0, &["SAVE"]), b"OK");
    assert_eq!(read_rdb(&path), as_map(&data));
}

#[test]
fn redis_accepts_our_file() {
    check_with_redis(SaveOptions::default());
}

#[test]
fn redis_accepts_our_file_without_compression_or_checksum() {
    check_with_redis(SaveOptions {
        compression: false,
        checksum: false,
    });
}

/// Random strings (binary, all lengths, more or less compressible, some with
/// an expire) stored by redis-server and saved by it; our writer, given the
/// same records in Redis's order and Redis's AUX values, must produce the
/// same bytes: every integer/LZF/raw decision and every LZF byte agree.
#[test]
fn writer_matches_redis_save_of_random_strings() {
    let dir = TempDir::new("interop-random");
    let server = RedisServer::start(dir.path(), "redis.rdb");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..400 {
        let len = match rnd() % 4 {
            0 => (rnd() % 40) as usize,
            1 => (rnd() % 3000) as usize,
            2 => (rnd() % 70000) as usize,
            _ => 21 + (rnd() % 30) as usize,
        };
        let period = 1 + (rnd() % 300) as usize;
        let noise = 1 + rnd() % 20;
        let alphabet = 1 + rnd() % 256;
        let base: Vec<u8> = (0..period).map(|_| (rnd() % alphabet) as u8).collect();
        let value: Vec<u8> = (0..len)
            .map(|j| {
                if rnd() % noise == 0 {
                    rnd() as u8
                } else {
                    base[j % period]
                }
            })
            .collect();
        let key = if i % 7 == 0 {
            format!("{i}")
        } else {
            format!("key:{i}:{}", "k".repeat(i % 40))
        };
        let mut args: Vec<&[u8]> = vec![b"SET", key.as_bytes(), &value];
        let at = (FAR_FUTURE_MS + i as i64).to_string();
        if i % 5 == 0 {
            args.extend_from_slice(&[b"PXAT", at.as_bytes()]);
        }
        assert_eq!(server.command(&args), b"+OK\r\n");
    }
    assert_eq!(server.cli(0, &["SAVE"]), b"OK");
    let redis_bytes = std::fs::read(dir.path().join("redis.rdb")).unwrap();

    let mut records = Vec::new();
    let summary = forkdb_snapshot::load(&redis_bytes[..], |r| {
        records.push(r);
        Ok::<(), RdbError>(())
    })
    .unwrap();
    let aux = |name: &str| std::str::from_utf8(summary.aux_value(name).unwrap()).unwrap();
    let fields = AuxFields {
        redis_ver: aux("redis-ver"),
        redis_bits: aux("redis-bits").parse().unwrap(),
        ctime: aux("ctime").parse().unwrap(),
        used_mem: aux("used-mem").parse().unwrap(),
        aof_base: false,
    };
    let mut w = RdbWriter::new(Vec::new(), SaveOptions::default(), &fields).unwrap();
    let expires = records.iter().filter(|r| r.expire_ms.is_some()).count() as u64;
    w.select_db(0, records.len() as u64, expires).unwrap();
    for r in &records {
        w.record(&r.key, &r.value, r.expire_ms).unwrap();
    }
    let ours = w.finish().unwrap();
    assert_eq!(records.len(), 400);
    if ours != redis_bytes {
        let at = ours.iter().zip(&redis_bytes).position(|(a, b)| a != b);
        panic!(
            "our bytes differ from Redis's at offset {at:?} (lengths {} vs {})",
            ours.len(),
            redis_bytes.len()
        );
    }
}

#[test]
fn our_reader_reads_our_file() {
    let dir = TempDir::new("interop-self");
    let data = dataset();
    write_rdb(dir.path(), "ours.rdb", &data, SaveOptions::default());
    assert_eq!(read_rdb(&dir.path().join("ours.rdb")), as_map(&data));
    // The big value really went through LZF: the file is much smaller
    // than the same data written raw.
    let raw_options = SaveOptions {
        compression: false,
        checksum: true,
    };
    write_rdb(dir.path(), "raw.rdb", &data, raw_options);
    let compressed = std::fs::metadata(dir.path().join("ours.rdb"))
        .unwrap()
        .len();
    let raw = std::fs::metadata(dir.path().join("raw.rdb")).unwrap().len();
    assert!(
        raw > (1 << 20) && compressed < raw * 3 / 4,
        "{compressed} vs {raw}"
    );
}

#[test]
fn redis_check_rdb_rejects_a_corrupt_file_we_also_reject() {
    // Sanity check of the oracle: a flipped byte in a value fails both.
    let dir = TempDir::new("interop-corrupt");
    let data = dataset();
    write_rdb(dir.path(), "ours.rdb", &data, SaveOptions::default());
    let path = dir.path().join("ours.rdb");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(7).position(|w| w == b"fifteen").unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    assert!(!redis_check_rdb(&path).status.success());
    let err = forkdb_snapshot::verify_file(&path).unwrap_err();
    assert!(matches!(err, RdbError::ChecksumMismatch { .. }), "{err}");
}
