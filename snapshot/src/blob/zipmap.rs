//! Redis's zipmap (`src/zipmap.c`), read only: the compact format of small
//! hashes in RDB files of Redis up to 2.4 (`HASH_ZIPMAP`, type 9). Redis 7.0
//! converts it on load (to a listpack, or a hash table when big), and so
//! will forkdb's loader.
//!
//! # Layout
//!
//! ```text
//! +---------------------------+-----------------------------------------------+
//! | bytes                     | meaning                                       |
//! +---------------------------+-----------------------------------------------+
//! | <u8 zmlen>                | number of pairs; 254 or more = unknown        |
//! | <len> <field>             | a field                                       |
//! | <len> <u8 free> <value>   | its value, then `free` unused bytes           |
//! |   ...                     | more pairs                                    |
//! | FF                        | end                                           |
//! +---------------------------+-----------------------------------------------+
//!
//! <len>: 00..FD  one byte
//!        FE <u32 LE>  5 bytes (Redis wrote the host's order; every machine
//!                     Redis ran on in practice is little-endian)
//!        FF           is the end marker where a field's <len> would be
//! ```
//!
//! # Guarantees
//!
//! [`Zipmap::new`] validates as Redis's `zipmapValidateIntegrity(deep=1)`:
//! the last byte is FF, every length, field, value and free space lies inside
//! the blob, there is at least one pair, and zmlen is right unless it is 254
//! (Redis's `ZIPMAP_BIGLEN`). Like Redis, it stops at the first end marker:
//! bytes between it and the last byte are ignored (Redis never writes any).
//! It does not check for duplicate fields (Redis's loader does, when it
//! builds the hash; so must forkdb's). Never panics, never reads outside the
//! slice. A zipmap has no back links, so it is read front to back only.

use super::{read_le, BlobError, BlobKind};

/// zmlen value meaning "unknown, count by scan".
pub const BIGLEN: u8 = 254;
/// The end marker.
pub const END: u8 = 0xFF;

/// A validated zipmap, borrowed from the bytes it was read from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Zipmap<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl std::fmt::Debug for Zipmap<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Reads a <len> at `p`; (length, bytes of the field). Caller checks bounds
/// of what follows.
fn read_len(zm: &[u8], p: usize) -> Option<(u64, usize)> {
    let b = *zm.get(p)?;
    if b < BIGLEN {
        Some((u64::from(b), 1))
    } else {
        Some((read_le::<4>(zm, p + 1)?, 5))
    }
}

/// A pair read by [`read_pair`]: field, value, offset of what follows.
type Pair<'a> = (&'a [u8], &'a [u8], usize);

/// One pair at `p`: (field, value, offset of what follows). Every byte
/// checked to lie at or before `last` (the final byte). `Err` is
/// (offset, detail).
fn read_pair(zm: &[u8], p: usize, last: usize) -> Result<Pair<'_>, (usize, String)> {
    let past = |at: usize, what: &str| (at, format!("{what} runs past the end at {last}"));
    let (klen, s) = read_len(zm, p).ok_or_else(|| past(p, "field length"))?;
    if p + s > last {
        return Err(past(p, "field length"));
    }
    let k = p + s;
    let v_at = (k as u64).saturating_add(klen);
    if v_at > last as u64 {
        return Err(past(p, &format!("field of {klen} bytes")));
    }
    let v_at = v_at as usize;
    let (vlen, s) = read_len(zm, v_at).ok_or_else(|| past(v_at, "value length"))?;
    if v_at + s > last {
        return Err(past(v_at, "value length"));
    }
    let free = u64::from(zm[v_at + s]);
    let v = v_at + s + 1;
    let next = (v as u64).saturating_add(vlen).saturating_add(free);
    if next > last as u64 {
        return Err(past(
            v_at,
            &format!("value of {vlen} bytes and {free} free bytes"),
        ));
    }
    Ok((&zm[k..v_at], &zm[v..v + vlen as usize], next as usize))
}

impl<'a> Zipmap<'a> {
    /// Validates a zipmap as Redis's `zipmapValidateIntegrity(deep=1)` does
    /// and wraps it.
    pub fn new(bytes: &'a [u8]) -> Result<Self, BlobError> {
        let err =
            |off: usize, detail: String| BlobError::corrupt(BlobKind::Zipmap, bytes, off, detail);
        if bytes.len() < 2 {
            return Err(err(0, format!("{} bytes, shorter than 2", bytes.len())));
        }
        let last = bytes.len() - 1;
        if bytes[last] != END {
            return Err(err(
                last,
                format!("last byte is 0x{:02x}, not 0xff", bytes[last]),
            ));
        }
        let mut count = 0usize;
        let mut p = 1;
        while bytes[p] != END {
            p = read_pair(bytes, p, last).map_err(|(o, d)| err(o, d))?.2;
            count += 1;
        }
        if count == 0 {
            return Err(err(0, "empty zipmap".to_string()));
        }
        if bytes[0] != BIGLEN && usize::from(bytes[0]) != count {
            return Err(err(
                0,
                format!("header says {} pairs, found {count}", bytes[0]),
            ));
        }
        Ok(Zipmap { bytes, count })
    }

    /// The blob.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Number of field/value pairs.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is no pair (never, once validated).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The (field, value) pairs, in order.
    pub fn iter(&self) -> Iter<'a> {
        Iter {
            zm: self.bytes,
            p: 1,
            left: self.count,
        }
    }
}

/// Iterator over a zipmap's (field, value) pairs.
#[derive(Clone)]
pub struct Iter<'a> {
    zm: &'a [u8],
    p: usize,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        // Validated: cannot fail; stop rather than panic if it did.
        let (k, v, next) = read_pair(self.zm, self.p, self.zm.len() - 1).ok()?;
        self.p = next;
        self.left -= 1;
        Some((k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of zipmap.c's comment: "foo" => "bar", "hello" => "world".
    const EXAMPLE: &[u8] = b"\x02\x03foo\x03\x00bar\x05hello\x05\x00world\xff";

    #[test]
    fn reads_the_example_of_zipmap_c() {
        let zm = Zipmap::new(EXAMPLE).unwrap();
        let pairs: Vec<_> = zm.iter().collect();
        assert_eq!(
            pairs,
            [(&b"foo"[..], &b"bar"[..]), (&b"hello"[..], &b"world"[..])]
        );
    }

    #[test]
    fn free_bytes_and_long_lengths() {
        let mut zm = vec![BIGLEN, 0xFE];
        zm.extend_from_slice(&300u32.to_le_bytes());
        zm.extend_from_slice(&[b'k'; 300]);
        zm.extend_from_slice(&[2, 3, b'v', b'w', 0, 0, 0, END]);
        let z = Zipmap::new(&zm).unwrap();
        let (k, v) = z.iter().next().unwrap();
        assert_eq!((k.len(), v), (300, &b"vw"[..]));
    }

    #[test]
    fn corrupt_blobs_are_errors() {
        for n in 0..EXAMPLE.len() {
            assert!(Zipmap::new(&EXAMPLE[..n]).is_err());
        }
        let mut bad = EXAMPLE.to_vec();
        bad[0] = 3;
        assert_eq!(Zipmap::new(&bad).unwrap_err().offset(), Some(0));
        assert!(Zipmap::new(b"\x00\xff").is_err(), "empty");
        for i in 0..EXAMPLE.len() {
            for b in [0x00, 0x05, 0xFD, 0xFE, 0xFF] {
                let mut bad = EXAMPLE.to_vec();
                bad[i] = b;
                if let Ok(z) = Zipmap::new(&bad) {
                    assert_eq!(z.iter().count(), z.len());
                }
            }
        }
    }
}
