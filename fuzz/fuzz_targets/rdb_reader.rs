//! Feeds arbitrary bytes to the RDB loader, as a start-up load would read a damaged file. Every
//! outcome but a panic (or a sanitizer report) is fine: a bad file must give an error naming its
//! offset, never a crash. What loads must also write back and read back with the same content
//! (lists, sets, hashes and sorted sets in every encoding included).
//!
//! Seed the corpus with real files holding every type:
//! `cp ../snapshot/tests/data/*.rdb ../snapshot/tests/assets/*.rdb corpus/rdb_reader/`, and the
//! hand-built 7.2/7.4 files: `FORKDB_RDB_SEEDS=$PWD/corpus/rdb_reader cargo test -p
//! forkdb-snapshot --test containers_files` (from the workspace root, with an absolute path).
#![no_main]

use std::convert::Infallible;

use forkdb_snapshot::{AuxFields, LoadedRecord, RdbWriter, SaveOptions, Value};
use libfuzzer_sys::fuzz_target;

/// A value's content, regardless of the form it is held in: a list read back
/// is a quicklist whatever it was written from, a 7.2 set listpack is written
/// as a plain set.
fn same_content(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::List(x), Value::List(y)) => x.to_vec() == y.to_vec(),
        (Value::Set(x), Value::Set(y)) => x.to_vec() == y.to_vec(),
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut records: Vec<LoadedRecord> = Vec::new();
    let result = forkdb_snapshot::load(data, |r| {
        records.push(r);
        Ok::<(), Infallible>(())
    });
    let Ok(_) = result.map_err(|e| e.to_string()) else {
        return;
    };
    let mut w = RdbWriter::new(Vec::new(), SaveOptions::default(), &AuxFields::new("7.0.15"))
        .expect("writing to a Vec");
    w.select_db(0, records.len() as u64, 0).expect("writing to a Vec");
    for r in &records {
        w.record(&r.key, &r.value, r.expire_ms)
            .expect("a loaded value writes");
    }
    let file = w.finish().expect("writing to a Vec");
    let mut back: Vec<LoadedRecord> = Vec::new();
    forkdb_snapshot::load(&file[..], |r| {
        back.push(r);
        Ok::<(), Infallible>(())
    })
    .expect("what forkdb writes, forkdb reads");
    assert_eq!(back.len(), records.len());
    for (a, b) in records.iter().zip(&back) {
        assert_eq!(a.key, b.key);
        assert_eq!(a.expire_ms, b.expire_ms);
        assert!(same_content(&a.value, &b.value), "{:?} != {:?}", a.value, b.value);
    }
});
