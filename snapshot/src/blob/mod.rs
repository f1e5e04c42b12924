//! Redis's compact container blobs, byte for byte: the formats small lists,
//! hashes, sets and sorted sets take in memory and in RDB files.
//!
//! forkdb keeps a small container in memory *in the format Redis writes to
//! its RDB file* (a listpack or an intset), so saving one is a single write of
//! the bytes as they are, by reference: the forked child encodes nothing and
//! copies nothing, so it dirties no page it shares with the parent. The older
//! formats are only read, from the RDB files of older Redis versions, and get
//! converted by the loader.
//!
//! | module | Redis source | Redis versions | here |
//! | --- | --- | --- | --- |
//! | [`listpack`] | `src/listpack.c` | 7.0+ (lists, hashes, zsets; sets from 7.2) | owned, validated, read and mutated |
//! | [`intset`] | `src/intset.c` | all | owned, validated, read and mutated |
//! | [`ziplist`] | `src/ziplist.c` | before 7.0 (lists, hashes, zsets, quicklist nodes) | borrowed, validated, read only |
//! | [`zipmap`] | `src/zipmap.c` | up to 2.4 (hashes) | borrowed, validated, read only |
//!
//! What every parser here guarantees: a blob from outside (an RDB file, a
//! `RESTORE` payload) is validated in full before any other use, with every
//! length and offset checked against the blob's own size; a corrupt blob is a
//! [`BlobError`] naming the byte offset and what is wrong, never a panic and
//! never a read outside the slice. The checks are those of Redis's
//! `*ValidateIntegrity(deep=1)` functions, so forkdb accepts what Redis
//! accepts; where this code is stricter or looser it says so.
//!
//! This module owns nothing but the byte formats: no RDB framing (that is
//! [`crate::decode`]/[`crate::encode`]), no server types, no I/O.

pub mod intset;
pub mod listpack;
pub mod ziplist;
pub mod zipmap;

use std::fmt;

pub use intset::Intset;
pub use listpack::{Listpack, Pos};
pub use ziplist::Ziplist;
pub use zipmap::Zipmap;

/// Which blob format an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    /// [`listpack`].
    Listpack,
    /// [`intset`].
    Intset,
    /// [`ziplist`].
    Ziplist,
    /// [`zipmap`].
    Zipmap,
}

impl fmt::Display for BlobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlobKind::Listpack => "listpack",
            BlobKind::Intset => "intset",
            BlobKind::Ziplist => "ziplist",
            BlobKind::Zipmap => "zipmap",
        })
    }
}

/// Why a blob was refused or a mutation could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// The bytes are not a valid blob of that kind.
    #[error("corrupt {kind} ({len} bytes) at byte {offset}: {detail}")]
    Corrupt {
        /// The format.
        kind: BlobKind,
        /// Offset in the blob of the field that is wrong.
        offset: usize,
        /// Size of the whole blob.
        len: usize,
        /// What is wrong, with the values found and expected.
        detail: String,
    },
    /// A mutation would make the blob larger than its format can describe
    /// (a listpack's 32-bit total length, a string's 32-bit length, an
    /// intset's 32-bit count).
    #[error("{kind} would grow to {size} bytes or elements, over its limit of {max}")]
    TooBig {
        /// The format.
        kind: BlobKind,
        /// The size the mutation would reach.
        size: u64,
        /// The largest the format allows.
        max: u64,
    },
}

impl BlobError {
    /// The offset in the blob a [`BlobError::Corrupt`] is about.
    pub fn offset(&self) -> Option<usize> {
        match self {
            BlobError::Corrupt { offset, .. } => Some(*offset),
            BlobError::TooBig { .. } => None,
        }
    }

    pub(crate) fn corrupt(kind: BlobKind, blob: &[u8], offset: usize, detail: String) -> Self {
        BlobError::Corrupt {
            kind,
            offset,
            len: blob.len(),
            detail,
        }
    }
}

/// One element of a listpack or ziplist: both store a string that reads as a
/// canonical 64-bit integer (see [`string_to_i64`]) as that integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Elem<'a> {
    /// An integer entry.
    Int(i64),
    /// A string entry, borrowed from the blob.
    Str(&'a [u8]),
}

impl<'a> Elem<'a> {
    /// The element as Redis replies with it: a string entry as is, an integer
    /// entry as its decimal text.
    pub fn to_vec(&self) -> Vec<u8> {
        match *self {
            Elem::Int(v) => v.to_string().into_bytes(),
            Elem::Str(s) => s.to_vec(),
        }
    }

    /// Whether the element equals the string `s` the way Redis's
    /// `lpCompare`/`ziplistCompare` decide it: a string entry byte for byte,
    /// an integer entry only against a canonical integer string (so `Int(12)`
    /// equals `"12"` but not `"012"`).
    pub fn eq_bytes(&self, s: &[u8]) -> bool {
        match *self {
            Elem::Str(v) => v == s,
            Elem::Int(v) => string_to_i64(s) == Some(v),
        }
    }

    /// The integer value: an integer entry's, or a string entry's when it is
    /// a canonical integer (which Redis never stores as a string, but a
    /// foreign blob may).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Elem::Int(v) => Some(v),
            Elem::Str(s) => string_to_i64(s),
        }
    }
}

impl<'a> From<&'a [u8]> for Elem<'a> {
    fn from(s: &'a [u8]) -> Self {
        Elem::Str(s)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Elem<'a> {
    fn from(s: &'a [u8; N]) -> Self {
        Elem::Str(s)
    }
}

impl<'a> From<&'a str> for Elem<'a> {
    fn from(s: &'a str) -> Self {
        Elem::Str(s.as_bytes())
    }
}

impl<'a> From<&'a Vec<u8>> for Elem<'a> {
    fn from(s: &'a Vec<u8>) -> Self {
        Elem::Str(s)
    }
}

impl From<i64> for Elem<'_> {
    fn from(v: i64) -> Self {
        Elem::Int(v)
    }
}

/// Redis's `LONG_STR_SIZE`: a string this long or longer is never an integer.
const LONG_STR_SIZE: usize = 21;

/// Redis's `string2ll` / `lpStringToInt64`: the integer a string is the
/// canonical decimal text of, or `None`. Canonical means what `ll2string`
/// would print back: optional `-`, no leading zero (but `"0"` itself), no
/// `+`, no spaces, no `-0`, within `i64`, shorter than 21 bytes. So `"12"` is
/// 12, while `"012"`, `" 1"`, `"+1"`, `"-0"` and `"1.0"` are strings.
///
/// Hand-written because it must accept exactly what Redis accepts (Rust's
/// `str::parse` takes `+1` and `007`), which decides how an element is stored.
pub fn string_to_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= LONG_STR_SIZE {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut v = u64::from(first - b'0');
    for &d in rest {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        // -(i64::MIN) is one more than i64::MAX.
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Little-endian unsigned integer of `N <= 8` bytes at `off`, if in bounds.
#[inline]
pub(crate) fn read_le<const N: usize>(bytes: &[u8], off: usize) -> Option<u64> {
    let b = bytes.get(off..off.checked_add(N)?)?;
    let mut v = 0u64;
    for (i, &x) in b.iter().enumerate() {
        v |= u64::from(x) << (8 * i);
    }
    Some(v)
}

/// Sign-extends the low `bits` bits of `v`.
#[inline]
pub(crate) fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// The capacity a blob of `n` bytes is given when it must grow: what fills an allocator chunk
/// of a size class. Chunks go in 16-byte steps up to 128 bytes, then eight classes per doubling
/// (jemalloc, Redis's allocator, has four: with four, 100k lists of 100 short items took 9% more
/// memory than exact sizes, with eight 4%, for the same copy-on-write, measured); glibc's chunk
/// of C bytes holds C - 8, so the capacity is the class minus 8 and the chunk is exactly the
/// class (no byte more than glibc's own rounding up to 128, and no second rounding above). A change that stays within its class moves
/// bytes inside the buffer and writes nothing else: see the listpack module's "Memory and fork".
pub(crate) fn size_class(n: usize) -> usize {
    const CHUNK_HEADER: usize = 8;
    let chunk = n + CHUNK_HEADER;
    let chunk = if chunk <= 128 {
        chunk.next_multiple_of(16).max(32)
    } else {
        chunk.next_multiple_of((chunk.next_power_of_two() / 16).max(16))
    };
    chunk - CHUNK_HEADER
}

/// Gives `buf` the capacity of `n` bytes' class, keeping its bytes (those that fit): one
/// `realloc`, which the allocator does in place when it can (building a new buffer and freeing
/// the old one instead left a trail of freed chunks behind every container that grew: lists
/// filled element by element took 9% more RSS, measured).
pub(crate) fn realloc_to_class(buf: &mut Box<[u8]>, n: usize) {
    let cap = size_class(n);
    let mut v = std::mem::take(buf).into_vec();
    if cap > v.len() {
        v.reserve_exact(cap - v.len());
        v.resize(cap, 0);
    } else {
        v.truncate(cap);
        v.shrink_to_fit();
    }
    *buf = v.into_boxed_slice();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_to_i64_follows_redis_string2ll() {
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("12", 12),
            ("-1", -1),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ];
        for &(s, v) in ok {
            assert_eq!(string_to_i64(s.as_bytes()), Some(v), "{s}");
        }
        for s in [
            "",
            "-",
            "012",
            " 1",
            "1 ",
            "+1",
            "-0",
            "00",
            "1.0",
            "1e3",
            "9223372036854775808",
            "-9223372036854775809",
            "18446744073709551616",
            "99999999999999999999",
            "000000000000000000001",
        ] {
            assert_eq!(string_to_i64(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn elem_compares_like_lp_compare() {
        assert!(Elem::Int(12).eq_bytes(b"12"));
        assert!(!Elem::Int(12).eq_bytes(b"012"));
        assert!(Elem::Str(b"012").eq_bytes(b"012"));
        assert!(!Elem::Str(b"12").eq_bytes(b"012"));
        assert_eq!(Elem::Int(-5).to_vec(), b"-5");
    }

    #[test]
    fn sign_extension() {
        assert_eq!(sign_extend(0x1fff, 13), -1);
        assert_eq!(sign_extend(0x0fff, 13), 4095);
        assert_eq!(sign_extend(0x1000, 13), -4096);
        assert_eq!(sign_extend(0xff_ffff, 24), -1);
        assert_eq!(sign_extend(u64::MAX, 64), -1);
    }
}
