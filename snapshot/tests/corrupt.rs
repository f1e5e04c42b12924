//! Damaged, truncated, hand-made and hostile inputs: the reader returns an
//! error naming the offset and the problem, and never panics.

mod common;

use common::fixture;
use forkdb_snapshot::format::*;
use forkdb_snapshot::{
    crc64, load, Checksum, LoadSummary, LoadedRecord, RdbError, RdbReader, Value,
};
use proptest::prelude::*;

fn load_all(bytes: &[u8]) -> Result<(Vec<LoadedRecord>, LoadSummary), RdbError> {
    let mut records = Vec::new();
    let summary = load(bytes, |r| {
        records.push(r);
        Ok::<(), RdbError>(())
    })?;
    Ok((records, summary))
}

/// `REDIS<version>` + body + EOF + checksum of all that.
fn file(version: &str, body: &[u8]) -> Vec<u8> {
    let mut f = format!("REDIS{version}").into_bytes();
    f.extend_from_slice(body);
    f.push(OPCODE_EOF);
    let crc = crc64(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    f
}

/// A string record with raw 1-byte lengths.
fn string_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut r = vec![TYPE_STRING, key.len() as u8];
    r.extend_from_slice(key);
    r.push(value.len() as u8);
    r.extend_from_slice(value);
    r
}

#[test]
fn flipped_value_byte_is_a_checksum_mismatch_with_offsets() {
    let mut bytes = fixture("redis-7.0-strings.rdb");
    let at = bytes.windows(7).position(|w| w == b"fifteen").unwrap();
    bytes[at] = b'F';
    let err = load_all(&bytes).unwrap_err();
    let n = bytes.len() - 8;
    let stored = u64::from_le_bytes(bytes[n..].try_into().unwrap());
    let computed = crc64(&bytes[..n]);
    assert!(
        matches!(err, RdbError::ChecksumMismatch { offset, stored: s, computed: c }
            if offset == n as u64 && s == stored && c == computed),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("checksum mismatch at offset {n} (file says {stored:#018x}, computed {computed:#018x} over bytes 0..{n})")
    );
}

#[test]
fn zero_checksum_means_not_computed() {
    let mut bytes = fixture("redis-7.0-strings.rdb");
    let n = bytes.len() - 8;
    bytes[n..].fill(0);
    let (records, summary) = load_all(&bytes).unwrap();
    assert_eq!(records.len(), 34);
    assert_eq!(summary.checksum, Checksum::Disabled);
}

#[test]
fn every_truncation_is_an_end_of_file_error_at_the_cut() {
    for name in [
        "redis-7.0-strings.rdb",
        "redis-7.0-strings-nocompress-nochecksum.rdb",
        "redis-7.0-lfu-function.rdb",
        "redis-7.0-lru.rdb",
    ] {
        let bytes = fixture(name);
        for len in 0..bytes.len() {
            match load_all(&bytes[..len]) {
                Err(RdbError::UnexpectedEof { offset, what }) => {
                    assert_eq!(offset, len as u64, "{name} cut at {len}: {what}");
                }
                other => panic!("{name} cut at {len}: {other:?}"),
            }
        }
        let err = load_all(&bytes[..bytes.len() - 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "unexpected end of file at offset {} (reading the checksum)",
                bytes.len() - 3
            )
        );
    }
}

#[test]
fn any_single_bit_flip_is_handled_without_panic() {
    let bytes = fixture("redis-7.0-strings.rdb");
    let mut ok = 0;
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            // Only the checksum bytes themselves, or nothing, may be
            // flipped without an error... and a flipped checksum is an error too.
            if load_all(&b).is_ok() {
                ok += 1;
            }
        }
    }
    assert_eq!(ok, 0, "a corrupted file loaded without error");
}

#[test]
fn unknown_opcode_names_byte_and_offset() {
    let mut body = string_record(b"k", b"v");
    body.push(0x1a);
    let bytes = file("0010", &body);
    let err = load_all(&bytes).unwrap_err();
    let offset = 9 + body.len() - 1;
    assert!(
        matches!(err, RdbError::UnknownOpcode { offset: o, opcode: 0x1a } if o == offset as u64)
    );
    assert_eq!(
        err.to_string(),
        format!("unknown opcode 0x1a at offset {offset}")
    );
}

#[test]
fn unsupported_types_are_named() {
    for (code, kind, encoding) in [
        (TYPE_STREAM_LISTPACKS, "stream", "listpacks"),
        (TYPE_STREAM_LISTPACKS_2, "stream", "listpacks v2"),
        (TYPE_STREAM_LISTPACKS_3, "stream", "listpacks v3"),
        (TYPE_MODULE_PRE_GA, "module", "pre-release"),
        (TYPE_MODULE_2, "module", "value"),
    ] {
        let mut body = string_record(b"ok", b"1");
        body.extend_from_slice(&[code, 3, b'b', b'a', b'd', 0x00]);
        let bytes = file("0010", &body);
        let err = load_all(&bytes).unwrap_err();
        let want = format!(
            "unsupported value type {code} ({kind} as {encoding}) at offset {}, key \"bad\"",
            9 + 6
        );
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn containers_with_an_empty_blob_are_corrupt_values() {
    for (code, kind, encoding, what) in [
        (
            TYPE_HASH_LISTPACK,
            "hash",
            "listpack",
            "Hash listpack integrity check failed.",
        ),
        (
            TYPE_ZSET_LISTPACK,
            "zset",
            "listpack",
            "Zset listpack integrity check failed.",
        ),
        (
            TYPE_SET_INTSET,
            "set",
            "intset",
            "Intset integrity check failed.",
        ),
        (
            TYPE_LIST_ZIPLIST,
            "list",
            "ziplist",
            "List ziplist integrity check failed.",
        ),
    ] {
        let mut body = string_record(b"ok", b"1");
        body.extend_from_slice(&[code, 3, b'b', b'a', b'd', 0x00]);
        let bytes = file("0010", &body);
        let err = load_all(&bytes).unwrap_err();
        let want = format!(
            "corrupt {kind} value (type {code}, {encoding}) of key \"bad\" at offset {}: {what} (",
            9 + 6 + 5
        );
        assert!(err.to_string().starts_with(&want), "{err}");
    }
}

#[test]
fn bad_magic_and_versions() {
    let err = load_all(b"RADIS0010\xff").unwrap_err();
    assert!(matches!(err, RdbError::BadMagic { .. }));
    assert_eq!(
        err.to_string(),
        "bad magic: file starts with \"RADIS0010\", expected \"REDIS\" at offset 0"
    );
    for v in ["0000", "0013", "00a1", "-001", "9999"] {
        let err = load_all(&file(v, &[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("unsupported RDB version {v} at offset 5 (this reader handles 1 to 12)")
        );
    }
    for v in 1..=12 {
        let (_, summary) = load_all(&file(&format!("{v:04}"), &string_record(b"k", b"v"))).unwrap();
        assert_eq!(summary.version, v);
        let expected = if v >= 5 { "verified" } else { "absent" };
        let got = match summary.checksum {
            Checksum::Verified(_) => "verified",
            Checksum::Absent => "absent",
            other => panic!("{other:?}"),
        };
        assert_eq!(got, expected, "version {v}");
    }
}

#[test]
fn old_version_file_with_second_expires_and_no_checksum() {
    // RDB 3 as Redis 2.6 would write it: no AUX, EXPIRETIME in seconds, and
    // EOF is the last byte.
    let mut bytes = b"REDIS0003".to_vec();
    bytes.extend_from_slice(&[OPCODE_SELECTDB, 2, OPCODE_EXPIRETIME]);
    bytes.extend_from_slice(&2_000_000_000i32.to_le_bytes());
    bytes.extend_from_slice(&string_record(b"k", b"v"));
    bytes.push(OPCODE_EOF);
    let (records, summary) = load_all(&bytes).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].db, 2);
    assert_eq!(records[0].expire_ms, Some(2_000_000_000_000));
    assert_eq!(summary.checksum, Checksum::Absent);
    assert_eq!(summary.bytes_read, bytes.len() as u64);
}

#[test]
fn skips_module_aux_functions_and_slot_info() {
    let mut body = vec![OPCODE_MODULE_AUX, 0x80, 0x12, 0x34, 0x56, 0x78, 2, 2];
    body.extend_from_slice(&[1, 0x3f]); // SINT 63
    body.extend_from_slice(&[2, 0x40, 0xff]); // UINT 255 (14-bit form)
    body.push(3);
    body.extend_from_slice(&1.5f32.to_le_bytes());
    body.push(4);
    body.extend_from_slice(&2.5f64.to_le_bytes());
    body.extend_from_slice(&[5, 3, b'a', b'b', b'c']);
    body.push(0); // module EOF
                  // 7.0-rc FUNCTION: with a description, then without.
    body.extend_from_slice(&[
        OPCODE_FUNCTION_PRE_GA,
        1,
        b'n',
        3,
        b'l',
        b'u',
        b'a',
        1,
        1,
        b'd',
    ]);
    body.extend_from_slice(&[4, b'c', b'o', b'd', b'e']);
    body.extend_from_slice(&[
        OPCODE_FUNCTION_PRE_GA,
        1,
        b'n',
        3,
        b'l',
        b'u',
        b'a',
        0,
        1,
        b'x',
    ]);
    body.extend_from_slice(&[OPCODE_FUNCTION2, 2, b'#', b'!']);
    body.extend_from_slice(&[OPCODE_SLOT_INFO, 5, 1, 0]);
    body.extend_from_slice(&[OPCODE_FREQ, 7, OPCODE_IDLE, 0x40, 0x10]);
    body.extend_from_slice(&string_record(b"k", b"v"));
    let (records, summary) = load_all(&file("0012", &body)).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value, Value::from("v"));
    assert_eq!(summary.skipped.module_aux, 1);
    // The 7.0-rc records come back in FUNCTION2's form, as Redis 7.0 rebuilds them.
    let codes: Vec<&[u8]> = summary.functions.iter().map(|f| &f.code[..]).collect();
    assert_eq!(
        codes,
        [&b"#!lua name=n\ncode"[..], b"#!lua name=n\nx", b"#!"]
    );
    assert_eq!(
        summary.functions[0].metadata(),
        Ok((&b"lua"[..], &b"n"[..]))
    );
    assert_eq!(
        summary.functions[2].metadata(),
        Err("Missing library metadata")
    );
    assert_eq!(summary.skipped.slot_info, 1);
    assert_eq!(summary.skipped.freq, 1);
    assert_eq!(summary.skipped.idle, 1);
}

#[test]
fn malformed_module_aux_is_an_error() {
    let bad_when = file("0010", &[OPCODE_MODULE_AUX, 1, 3, 2, 0]);
    let err = load_all(&bad_when).unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt RDB at offset 9: MODULE_AUX with when opcode 3, expected 2"
    );
    let bad_opcode = file("0010", &[OPCODE_MODULE_AUX, 1, 2, 2, 9, 0]);
    let err = load_all(&bad_opcode).unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt RDB at offset 13: unknown module value opcode 9"
    );
}

#[test]
fn absurd_lengths_are_refused_before_allocating() {
    // A key claiming 2^64-1 bytes.
    let mut body = vec![TYPE_STRING, LEN_64BIT];
    body.extend_from_slice(&u64::MAX.to_be_bytes());
    let err = load_all(&file("0010", &body)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "corrupt RDB at offset 10: a key has length {}, over the limit of 536870912 bytes",
            u64::MAX
        )
    );

    // A 500 MB value backed by 3 bytes: an end-of-file error, after reading
    // in chunks (not a 500 MB allocation).
    let mut body = vec![TYPE_STRING, 1, b'k', LEN_32BIT];
    body.extend_from_slice(&500_000_000u32.to_be_bytes());
    body.extend_from_slice(b"abc");
    let err = load_all(&file("0010", &body)).unwrap_err();
    assert!(
        matches!(
            err,
            RdbError::UnexpectedEof {
                what: "a string value",
                ..
            }
        ),
        "{err}"
    );

    // LZF claiming 400 MB from 10 compressed bytes.
    let mut body = vec![TYPE_STRING, 1, b'k', 0xc3, 10, LEN_32BIT];
    body.extend_from_slice(&400_000_000u32.to_be_bytes());
    body.extend_from_slice(&[0; 10]);
    let err = load_all(&file("0010", &body)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt RDB at offset 12: a string value: LZF header claims 400000000 bytes from 10 compressed bytes"
    );

    // LZF data that does not decode to the claimed length.
    let body = [TYPE_STRING, 1, b'k', 0xc3, 3, 10, 0x01, b'a', b'b'];
    let err = load_all(&file("0010", &body)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt RDB at offset 12: a string value: LZF data expands to 2 bytes, the header says 10"
    );

    // A lower limit set by the caller.
    let bytes = file("0010", &string_record(b"k", b"0123456789"));
    let mut reader = RdbReader::new(&bytes[..]).unwrap();
    reader.set_max_string_len(5);
    let err = reader.next_record().unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt RDB at offset 12: a string value has length 10, over the limit of 5 bytes"
    );
}

#[test]
fn bad_length_and_string_encodings() {
    // 0x82 is neither a 32- nor a 64-bit length marker.
    let err = load_all(&file("0010", &[OPCODE_SELECTDB, 0x82])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt RDB at offset 10: unknown length encoding 0x82 in the db number of SELECTDB"
    );
    // String encoding 4 does not exist.
    let err = load_all(&file("0010", &[TYPE_STRING, 0xc4])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt RDB at offset 10: unknown string encoding 4 in a key"
    );
    // An integer encoding where a length must be.
    let err = load_all(&file("0010", &[OPCODE_RESIZEDB, 0xc0, 1, 0])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt RDB at offset 10: expected a length for the key count of RESIZEDB, found string encoding 0"
    );
    // A db number that does not fit our u32 db index.
    let mut body = vec![OPCODE_SELECTDB, LEN_64BIT];
    body.extend_from_slice(&(1u64 << 40).to_be_bytes());
    let err = load_all(&file("0010", &body)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt RDB at offset 9: SELECTDB to db 1099511627776, out of range"
    );
}

#[test]
fn callback_errors_stop_the_load_with_the_record_offset() {
    let mut body = string_record(b"a", b"1");
    body.extend_from_slice(&[OPCODE_SELECTDB, 20]);
    body.extend_from_slice(&string_record(b"b", b"2"));
    let bytes = file("0010", &body);
    let err = load(&bytes[..], |r| {
        if r.db >= 16 {
            Err(format!("db {} is beyond the 16 configured databases", r.db))
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "record at offset 16 rejected: db 20 is beyond the 16 configured databases"
    );
}

#[test]
fn bytes_after_the_checksum_are_left_unread() {
    // An AOF-preamble file: RDB then AOF commands.
    let mut bytes = file("0010", &string_record(b"k", b"v"));
    let rdb_len = bytes.len();
    bytes.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    let (records, summary) = load_all(&bytes).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(summary.bytes_read, rdb_len as u64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes after a valid header: an answer, never a panic.
    #[test]
    fn garbage_never_panics(
        version in 1u32..=12,
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut bytes = format!("REDIS{version:04}").into_bytes();
        bytes.extend_from_slice(&body);
        let _ = load_all(&bytes);
    }

    /// Garbage made of format tokens, which gets further into the parser
    /// than uniform bytes do.
    #[test]
    fn token_soup_never_panics(
        tokens in proptest::collection::vec(prop_oneof![
            Just(vec![OPCODE_AUX]), Just(vec![OPCODE_MODULE_AUX]), Just(vec![OPCODE_FUNCTION2]),
            Just(vec![OPCODE_FUNCTION_PRE_GA]), Just(vec![OPCODE_SELECTDB]), Just(vec![OPCODE_RESIZEDB]),
            Just(vec![OPCODE_EXPIRETIME_MS]), Just(vec![OPCODE_IDLE]), Just(vec![OPCODE_FREQ]),
            Just(vec![OPCODE_SLOT_INFO]), Just(vec![TYPE_STRING]), Just(vec![0xc0]), Just(vec![0xc1]),
            Just(vec![0xc2]), Just(vec![0xc3]), Just(vec![0x80, 0, 0, 1, 0]), Just(vec![0x81]),
            Just(vec![0x40, 0x20]), (0u8..64).prop_map(|b| vec![b]), any::<u8>().prop_map(|b| vec![b]),
        ], 0..60),
    ) {
        let body: Vec<u8> = tokens.concat();
        let _ = load_all(&file("0010", &body));
    }
}
