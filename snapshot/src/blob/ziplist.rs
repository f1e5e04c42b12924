//! Redis's ziplist (`src/ziplist.c`), read only: the compact format of small
//! lists, hashes and sorted sets in RDB files of Redis before 7.0
//! (`LIST_ZIPLIST` 10, `ZSET_ZIPLIST` 12, `HASH_ZIPLIST` 13, and the nodes of
//! `LIST_QUICKLIST` 14). Redis 7.0 converts them to listpacks when it loads
//! them, and so does forkdb's loader; nothing writes a ziplist any more.
//!
//! # Layout
//!
//! ```text
//! +---------------------------+-----------------------------------------------+
//! | bytes                     | meaning                                       |
//! +---------------------------+-----------------------------------------------+
//! | <u32 LE zlbytes>          | size of the whole ziplist                     |
//! | <u32 LE zltail>           | offset of the last entry (10 when empty)      |
//! | <u16 LE zllen>            | number of entries; 65535 = unknown            |
//! | <entry> ...               | <prevlen> <encoding> <data>                   |
//! | FF                        | zlend                                         |
//! +---------------------------+-----------------------------------------------+
//!
//! <prevlen>: size of the previous entry (0 for the first):
//!   00..FD                   one byte
//!   FE <u32 LE>              5 bytes (may also hold a value < 254: Redis
//!                            never shrinks a prevlen field)
//! <encoding> (first byte):
//!   00pppppp                 string of p <= 63 bytes
//!   01pppppp qqqqqqqq        string, 14-bit length, big-endian
//!   10000000 <u32 BE>        string, 32-bit length, big-endian (the low 6
//!                            bits of the first byte are not checked)
//!   C0 <2 bytes>             int16        D0 <4 bytes>   int32
//!   E0 <8 bytes>             int64        F0 <3 bytes>   24-bit int
//!   FE <1 byte>              int8         F1..FD         value 0..12 (x - 0xF1)
//!   other 11xxxxxx           invalid
//! ```
//!
//! # Guarantees
//!
//! [`Ziplist::new`] validates as Redis's `ziplistValidateIntegrity(deep=1)`:
//! zlbytes equals the blob size, the last byte is FF, zltail lies inside,
//! every entry's prevlen, encoding and data lie inside the blob, every
//! prevlen equals the size of the entry before it, the entries end exactly
//! at the FF, zltail is the offset of the last entry, and zllen is right
//! unless it is 65535. It never panics and never reads outside the slice;
//! iteration over a validated ziplist cannot fail.

use super::{read_le, sign_extend, BlobError, BlobKind, Elem};

/// Size of the header: zlbytes, zltail, zllen.
pub const HEADER_SIZE: usize = 10;
/// The terminator byte.
pub const END: u8 = 0xFF;
const BIG_PREVLEN: u8 = 0xFE;

/// A validated ziplist, borrowed from the bytes it was read from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ziplist<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl std::fmt::Debug for Ziplist<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One decoded entry: where it starts, its sizes and element.
struct Entry<'a> {
    prevlen: u64,
    /// prevlen field + encoding + data.
    size: usize,
    elem: Elem<'a>,
}

/// Decodes the entry at `p`, checking every byte it touches lies before the
/// end byte at `last` (as `zipEntrySafe`). `Err` is (offset, detail).
fn decode_entry(zl: &[u8], p: usize, last: usize) -> Result<Entry<'_>, (usize, String)> {
    let past = |what: &str| (p, format!("entry {what} runs past the end byte at {last}"));
    if p < HEADER_SIZE || p >= last {
        return Err((p, format!("entry offset {p} outside {HEADER_SIZE}..{last}")));
    }
    let (prevlen_size, prevlen) = if zl[p] < BIG_PREVLEN {
        (1usize, u64::from(zl[p]))
    } else {
        if p + 5 > last {
            return Err(past("prevlen"));
        }
        (5, read_le::<4>(zl, p + 1).ok_or_else(|| past("prevlen"))?)
    };
    let e = p + prevlen_size;
    if e >= last {
        return Err(past("encoding"));
    }
    let b = zl[e];
    // (header bytes, data length) of the encoding.
    let (lensize, len): (usize, u64) = match b >> 6 {
        0 => (1, u64::from(b & 0x3F)),
        1 => {
            if e + 2 > last {
                return Err(past("length"));
            }
            (2, (u64::from(b & 0x3F) << 8) | u64::from(zl[e + 1]))
        }
        2 => {
            if e + 5 > last {
                return Err(past("length"));
            }
            let l = zl
                .get(e + 1..e + 5)
                .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
                .ok_or_else(|| past("length"))?;
            // Redis's ZIP_ENTRY_ENCODING masks the string encodings to their
            // top two bits, so 0x81..0xBF read as 0x80 too.
            (5, u64::from(l))
        }
        _ => match b {
            0xFE => (1, 1),
            0xC0 => (1, 2),
            0xF0 => (1, 3),
            0xD0 => (1, 4),
            0xE0 => (1, 8),
            0xF1..=0xFD => (1, 0),
            _ => return Err((e, format!("invalid entry encoding 0x{b:02x}"))),
        },
    };
    let data = e + lensize;
    let end = (data as u64).saturating_add(len);
    if end > last as u64 {
        return Err(past(&format!("data ({len} bytes)")));
    }
    if prevlen > (p - HEADER_SIZE) as u64 {
        return Err((
            p,
            format!("prevlen {prevlen} reaches before the first entry"),
        ));
    }
    let end = end as usize;
    let elem = if b >> 6 != 3 {
        Elem::Str(&zl[data..end])
    } else {
        let v = match b {
            0xF1..=0xFD => i64::from(b - 0xF1),
            _ => {
                let n = (end - data) as u32;
                let mut u = 0u64;
                for (i, &x) in zl[data..end].iter().enumerate() {
                    u |= u64::from(x) << (8 * i);
                }
                sign_extend(u, 8 * n)
            }
        };
        Elem::Int(v)
    };
    Ok(Entry {
        prevlen,
        size: end - p,
        elem,
    })
}

impl<'a> Ziplist<'a> {
    /// Validates a ziplist as Redis's `ziplistValidateIntegrity(deep=1)`
    /// does and wraps it.
    pub fn new(bytes: &'a [u8]) -> Result<Self, BlobError> {
        let err =
            |off: usize, detail: String| BlobError::corrupt(BlobKind::Ziplist, bytes, off, detail);
        if bytes.len() < HEADER_SIZE + 1 {
            return Err(err(
                0,
                format!(
                    "{} bytes, shorter than header and end byte ({})",
                    bytes.len(),
                    HEADER_SIZE + 1
                ),
            ));
        }
        let zlbytes = read_le::<4>(bytes, 0).unwrap_or(0);
        if zlbytes != bytes.len() as u64 {
            return Err(err(
                0,
                format!("header says {zlbytes} bytes, the blob has {}", bytes.len()),
            ));
        }
        let last = bytes.len() - 1;
        if bytes[last] != END {
            return Err(err(
                last,
                format!("last byte is 0x{:02x}, not 0xff", bytes[last]),
            ));
        }
        let tail = read_le::<4>(bytes, 4).unwrap_or(0);
        if tail > last as u64 {
            return Err(err(
                4,
                format!("tail offset {tail} past the end byte at {last}"),
            ));
        }
        let header_count = read_le::<2>(bytes, 8).unwrap_or(0);
        let mut count = 0usize;
        let mut p = HEADER_SIZE;
        let mut prev: Option<usize> = None;
        let mut prev_size = 0u64;
        while bytes[p] != END {
            let e = decode_entry(bytes, p, last).map_err(|(o, d)| err(o, d))?;
            if e.prevlen != prev_size {
                return Err(err(
                    p,
                    format!(
                        "prevlen says {}, the entry before has {prev_size} bytes",
                        e.prevlen
                    ),
                ));
            }
            prev_size = e.size as u64;
            prev = Some(p);
            p += e.size;
            count += 1;
        }
        if p != last {
            return Err(err(p, format!("end byte at {p}, before the end at {last}")));
        }
        if let Some(prev) = prev {
            if prev as u64 != tail {
                return Err(err(
                    4,
                    format!("tail offset {tail}, the last entry is at {prev}"),
                ));
            }
        }
        if header_count != 0xFFFF && header_count != count as u64 {
            return Err(err(
                8,
                format!("header says {header_count} entries, found {count}"),
            ));
        }
        Ok(Ziplist { bytes, count })
    }

    /// The blob.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Number of entries (counted during validation).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The elements, from either end.
    pub fn iter(&self) -> Iter<'a> {
        let last = self.bytes.len() - 1;
        Iter {
            zl: self.bytes,
            front: HEADER_SIZE,
            back: if self.count == 0 {
                HEADER_SIZE
            } else {
                read_le::<4>(self.bytes, 4).unwrap_or(0) as usize
            },
            left: self.count,
            last,
        }
    }
}

/// Iterator over a ziplist's elements.
#[derive(Clone)]
pub struct Iter<'a> {
    zl: &'a [u8],
    /// Next entry from the front.
    front: usize,
    /// Next entry from the back.
    back: usize,
    left: usize,
    last: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;

    fn next(&mut self) -> Option<Elem<'a>> {
        if self.left == 0 {
            return None;
        }
        // Validated: the decode cannot fail; stop rather than panic if it did.
        let e = decode_entry(self.zl, self.front, self.last).ok()?;
        self.front += e.size;
        self.left -= 1;
        Some(e.elem)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let e = decode_entry(self.zl, self.back, self.last).ok()?;
        self.back = self.back.saturating_sub(e.prevlen as usize);
        self.left -= 1;
        Some(e.elem)
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of ziplist.c's comment: "2", "5".
    const TWO_FIVE: &[u8] = &[
        0x0f, 0, 0, 0, 0x0c, 0, 0, 0, 0x02, 0, 0x00, 0xf3, 0x02, 0xf6, 0xff,
    ];

    #[test]
    fn reads_the_example_of_ziplist_c() {
        let zl = Ziplist::new(TWO_FIVE).unwrap();
        assert_eq!(zl.iter().collect::<Vec<_>>(), [Elem::Int(2), Elem::Int(5)]);
        assert_eq!(
            zl.iter().rev().collect::<Vec<_>>(),
            [Elem::Int(5), Elem::Int(2)]
        );
    }

    #[test]
    fn every_encoding() {
        // Built by hand: int8 -2, int16 300, int24 -70000, int32 1<<30,
        // int64 1<<40, imm 12, str "hi", 14-bit str of 70 'x'.
        let mut entries: Vec<Vec<u8>> = vec![
            vec![0xFE, 0xFE],
            vec![0xC0, 0x2C, 0x01],
            {
                let v = (-70000i32).to_le_bytes();
                vec![0xF0, v[0], v[1], v[2]]
            },
            {
                let mut e = vec![0xD0];
                e.extend_from_slice(&(1i32 << 30).to_le_bytes());
                e
            },
            {
                let mut e = vec![0xE0];
                e.extend_from_slice(&(1i64 << 40).to_le_bytes());
                e
            },
            vec![0xFD],
            vec![0x02, b'h', b'i'],
            {
                let mut e = vec![0x40, 70];
                e.extend_from_slice(&[b'x'; 70]);
                e
            },
        ];
        let mut body = Vec::new();
        let mut prev = 0usize;
        let mut tail = 0;
        for e in entries.iter_mut() {
            tail = HEADER_SIZE + body.len();
            body.push(prev as u8);
            body.extend_from_slice(e);
            prev = 1 + e.len();
        }
        let mut zl = Vec::new();
        zl.extend_from_slice(&((HEADER_SIZE + body.len() + 1) as u32).to_le_bytes());
        zl.extend_from_slice(&(tail as u32).to_le_bytes());
        zl.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        zl.extend_from_slice(&body);
        zl.push(END);
        let z = Ziplist::new(&zl).unwrap();
        let x70 = [b'x'; 70];
        let want = [
            Elem::Int(-2),
            Elem::Int(300),
            Elem::Int(-70000),
            Elem::Int(1 << 30),
            Elem::Int(1 << 40),
            Elem::Int(12),
            Elem::Str(b"hi"),
            Elem::Str(&x70),
        ];
        assert_eq!(z.iter().collect::<Vec<_>>(), want);
        let mut rev: Vec<_> = z.iter().rev().collect();
        rev.reverse();
        assert_eq!(rev, want);
        for n in 0..zl.len() {
            assert!(Ziplist::new(&zl[..n]).is_err());
        }
        for i in 0..zl.len() {
            for b in [0x00, 0x3F, 0x40, 0x80, 0xC1, 0xFE, 0xFF] {
                let mut bad = zl.clone();
                bad[i] = b;
                if let Ok(z) = Ziplist::new(&bad) {
                    assert_eq!(z.iter().count(), z.len());
                    assert_eq!(z.iter().rev().count(), z.len());
                }
            }
        }
    }

    #[test]
    fn empty_ziplist() {
        let zl = [11, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0xFF];
        let z = Ziplist::new(&zl).unwrap();
        assert!(z.is_empty());
        assert_eq!(z.iter().next_back(), None);
    }
}
