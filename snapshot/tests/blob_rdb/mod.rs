//! A minimal RDB reader for the blob tests: it takes apart the value types
//! the crate's reader does not load yet (lists, sets, zsets, hashes in every
//! encoding) far enough to hand their blobs to `forkdb_snapshot::blob`. Test
//! code only: it panics on anything unexpected, which fails the test.

#![allow(dead_code)] // each test binary uses a different subset

/// A cursor over RDB bytes.
pub struct Cur<'a> {
    pub b: &'a [u8],
    pub pos: usize,
}

impl<'a> Cur<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Cur { b, pos: 0 }
    }

    pub fn u8(&mut self) -> u8 {
        let v = self.b[self.pos];
        self.pos += 1;
        v
    }

    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        s
    }

    /// `<len>`: (value, whether it is a special string encoding).
    pub fn len_enc(&mut self) -> (u64, bool) {
        let b = self.u8();
        match b >> 6 {
            0 => (u64::from(b & 0x3F), false),
            1 => (u64::from(b & 0x3F) << 8 | u64::from(self.u8()), false),
            2 if b == 0x80 => (
                u64::from(u32::from_be_bytes(self.take(4).try_into().unwrap())),
                false,
            ),
            2 if b == 0x81 => (u64::from_be_bytes(self.take(8).try_into().unwrap()), false),
            3 => (u64::from(b & 0x3F), true),
            _ => panic!("bad length byte 0x{b:02x} at {}", self.pos - 1),
        }
    }

    pub fn len(&mut self) -> usize {
        let (v, enc) = self.len_enc();
        assert!(!enc, "expected a length at {}", self.pos);
        v as usize
    }

    /// `<str>` in any of its encodings.
    pub fn string(&mut self) -> Vec<u8> {
        let (v, enc) = self.len_enc();
        if !enc {
            return self.take(v as usize).to_vec();
        }
        match v {
            0 => (self.u8() as i8).to_string().into_bytes(),
            1 => i16::from_le_bytes(self.take(2).try_into().unwrap())
                .to_string()
                .into_bytes(),
            2 => i32::from_le_bytes(self.take(4).try_into().unwrap())
                .to_string()
                .into_bytes(),
            3 => {
                let clen = self.len();
                let ulen = self.len();
                let c = self.take(clen);
                let out = lzf::decompress(c, ulen).expect("LZF data");
                assert_eq!(out.len(), ulen);
                out
            }
            _ => panic!("bad string encoding {v} at {}", self.pos),
        }
    }
}

/// A value as the file holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// Type 0.
    String(Vec<u8>),
    /// Types 1, 2: a sequence of strings.
    Seq(Vec<Vec<u8>>),
    /// Type 3 (ASCII scores) and 5 (binary scores): members and scores as
    /// Redis replies with them.
    Zset(Vec<(Vec<u8>, String)>),
    /// Type 4.
    Pairs(Vec<(Vec<u8>, Vec<u8>)>),
    /// Types 9-13, 16, 17, 20: one blob.
    Blob(Vec<u8>),
    /// Type 14: ziplist nodes.
    Quicklist(Vec<Vec<u8>>),
    /// Type 18: (container, listpack) nodes.
    Quicklist2(Vec<(u64, Vec<u8>)>),
}

/// Reads the value of type `t` at the cursor.
pub fn read_value(c: &mut Cur<'_>, t: u8) -> RawValue {
    match t {
        0 => RawValue::String(c.string()),
        1 | 2 => {
            let n = c.len();
            RawValue::Seq((0..n).map(|_| c.string()).collect())
        }
        3 => {
            let n = c.len();
            RawValue::Zset(
                (0..n)
                    .map(|_| {
                        let m = c.string();
                        let l = c.u8();
                        let s = match l {
                            253 => "nan".to_string(),
                            254 => "inf".to_string(),
                            255 => "-inf".to_string(),
                            _ => String::from_utf8(c.take(usize::from(l)).to_vec()).unwrap(),
                        };
                        (m, s)
                    })
                    .collect(),
            )
        }
        5 => {
            let n = c.len();
            RawValue::Zset(
                (0..n)
                    .map(|_| {
                        let m = c.string();
                        let score = f64::from_le_bytes(c.take(8).try_into().unwrap());
                        (m, score.to_string())
                    })
                    .collect(),
            )
        }
        4 => {
            let n = c.len();
            RawValue::Pairs((0..n).map(|_| (c.string(), c.string())).collect())
        }
        9..=13 | 16 | 17 | 20 => RawValue::Blob(c.string()),
        14 => {
            let n = c.len();
            RawValue::Quicklist((0..n).map(|_| c.string()).collect())
        }
        18 => {
            let n = c.len();
            RawValue::Quicklist2(
                (0..n)
                    .map(|_| {
                        let container = c.len() as u64;
                        (container, c.string())
                    })
                    .collect(),
            )
        }
        _ => panic!("value type {t} not handled by the test reader"),
    }
}

/// Every key of a whole RDB file: (db, type, key, value).
pub fn read_file(b: &[u8]) -> Vec<(u64, u8, Vec<u8>, RawValue)> {
    assert_eq!(&b[..5], b"REDIS");
    let mut c = Cur::new(b);
    c.pos = 9;
    let mut db = 0;
    let mut out = Vec::new();
    loop {
        let t = c.u8();
        match t {
            0xFF => return out,
            0xFA => {
                c.string();
                c.string();
            }
            0xFE => db = c.len() as u64,
            0xFB => {
                c.len();
                c.len();
            }
            0xFC => {
                c.take(8);
            }
            0xFD => {
                c.take(4);
            }
            0xF8 => {
                c.len();
            }
            0xF9 => {
                c.u8();
            }
            _ => {
                let key = c.string();
                let v = read_value(&mut c, t);
                out.push((db, t, key, v));
            }
        }
    }
}

/// Takes a `DUMP` payload apart: (type, value), after checking its trailer
/// (RDB version 10, CRC-64 of everything before the checksum).
pub fn read_dump(payload: &[u8]) -> (u8, RawValue) {
    let n = payload.len();
    assert!(n > 10, "DUMP payload too short: {payload:?}");
    let crc = u64::from_le_bytes(payload[n - 8..].try_into().unwrap());
    assert_eq!(crc, forkdb_snapshot::crc64(&payload[..n - 8]), "DUMP CRC");
    assert_eq!(&payload[n - 10..n - 8], &[10, 0], "DUMP RDB version");
    let mut c = Cur::new(&payload[..n - 10]);
    let t = c.u8();
    let v = read_value(&mut c, t);
    assert_eq!(c.pos, n - 10, "DUMP value not fully read");
    (t, v)
}
