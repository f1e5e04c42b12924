//! Property tests: whatever we write, we read back identically, with every
//! option combination and with the input arriving in arbitrary pieces.

use std::io::Read;

use bytes::Bytes;
use forkdb_snapshot::{
    AuxFields, Checksum, LoadedRecord, RdbReader, RdbWriter, SaveOptions, Value,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Rec {
    db: u32,
    key: Vec<u8>,
    value: Vec<u8>,
    expire_ms: Option<i64>,
}

/// Bytes that hit every encoding: integers (canonical or not), short and
/// long runs (LZF), arbitrary binary, empty.
fn string_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        any::<i32>().prop_map(|n| n.to_string().into_bytes()),
        "[-+0-9 ]{0,12}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..80),
        (any::<u8>(), 0usize..2000).prop_map(|(b, n)| vec![b; n]),
        ("[a-d]{1,6}", 1usize..200).prop_map(|(s, n)| s.repeat(n).into_bytes()),
    ]
}

fn record_strategy() -> impl Strategy<Value = Rec> {
    (
        prop_oneof![0u32..4, Just(15), any::<u32>()],
        string_strategy(),
        string_strategy(),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(|(db, key, value, expire_ms)| Rec {
            db,
            key,
            value,
            expire_ms,
        })
}

/// Writes records grouped by db, in the order given within each db.
fn write(records: &[Rec], options: SaveOptions) -> Vec<u8> {
    let mut w = RdbWriter::new(Vec::new(), options, &AuxFields::new("7.0.15")).unwrap();
    let mut dbs: Vec<u32> = records.iter().map(|r| r.db).collect();
    dbs.sort_unstable();
    dbs.dedup();
    for db in dbs {
        let in_db: Vec<&Rec> = records.iter().filter(|r| r.db == db).collect();
        let expires = in_db.iter().filter(|r| r.expire_ms.is_some()).count() as u64;
        w.select_db(db, in_db.len() as u64, expires).unwrap();
        for r in in_db {
            let value = Value::String(Bytes::from(r.value.clone()));
            w.record(&r.key, &value, r.expire_ms).unwrap();
        }
    }
    w.finish().unwrap()
}

/// A reader that hands out at most the next chunk size per `read` call.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    i: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.sizes[self.i % self.sizes.len()];
        self.i += 1;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn read<R: Read>(r: R) -> (Vec<LoadedRecord>, forkdb_snapshot::LoadSummary) {
    let mut reader = RdbReader::new(r).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = reader.next_record().unwrap() {
        out.push(rec);
    }
    (out, reader.into_summary())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn what_we_write_we_read(
        records in proptest::collection::vec(record_strategy(), 0..30),
        compression in any::<bool>(),
        checksum in any::<bool>(),
        sizes in proptest::collection::vec(1usize..40, 1..5),
    ) {
        let options = SaveOptions { compression, checksum };
        let bytes = write(&records, options);

        let mut expected: Vec<&Rec> = records.iter().collect();
        expected.sort_by_key(|r| r.db); // stable: order within a db kept

        for (got, summary) in [
            read(&bytes[..]),
            read(Chunked { data: &bytes, sizes: sizes.clone(), i: 0 }),
        ] {
            prop_assert_eq!(got.len(), expected.len());
            for (g, e) in got.iter().zip(&expected) {
                prop_assert_eq!(g.db, e.db);
                prop_assert_eq!(&g.key[..], &e.key[..]);
                prop_assert_eq!(&g.value, &Value::String(Bytes::from(e.value.clone())));
                prop_assert_eq!(g.expire_ms, e.expire_ms);
            }
            prop_assert_eq!(summary.bytes_read, bytes.len() as u64);
            prop_assert_eq!(summary.records, records.len() as u64);
            match summary.checksum {
                Checksum::Verified(c) => prop_assert!(checksum && c == forkdb_snapshot::crc64(&bytes[..bytes.len() - 8])),
                Checksum::Disabled => prop_assert!(!checksum),
                other => prop_assert!(false, "checksum {:?}", other),
            }
        }
    }

    /// Compression changes the bytes, never the content, and never makes a
    /// file bigger.
    #[test]
    fn compression_only_shrinks(records in proptest::collection::vec(record_strategy(), 0..20)) {
        let plain = write(&records, SaveOptions { compression: false, checksum: true });
        let packed = write(&records, SaveOptions { compression: true, checksum: true });
        prop_assert!(packed.len() <= plain.len());
        let (a, _) = read(&plain[..]);
        let (b, _) = read(&packed[..]);
        let strip = |v: Vec<LoadedRecord>| v.into_iter().map(|r| (r.db, r.key, r.value, r.expire_ms)).collect::<Vec<_>>();
        prop_assert_eq!(strip(a), strip(b));
    }
}
