//! Redis 7.0's listpack (`src/listpack.c`), owned, validated, read and
//! mutated in exactly the bytes redis-server builds.
//!
//! A listpack is one allocation holding a sequence of strings and integers;
//! Redis 7.0 uses it for small lists (as quicklist nodes), hashes and sorted
//! sets (7.2: sets), and writes it as is in RDB files (`QUICKLIST_2` nodes,
//! `HASH_LISTPACK`, `ZSET_LISTPACK`, `SET_LISTPACK`).
//!
//! # Layout
//!
//! ```text
//! +---------------------------+---------------------------------------------------+
//! | bytes                     | meaning                                           |
//! +---------------------------+---------------------------------------------------+
//! | <u32 LE total bytes>      | size of the whole listpack, header and EOF too    |
//! | <u16 LE count>            | number of entries; 65535 = unknown, count by scan |
//! | <entry> ...               | entries, each <encoding+data> <backlen>           |
//! | FF                        | EOF                                               |
//! +---------------------------+---------------------------------------------------+
//!
//! Entry encodings (first byte; integers little-endian two's complement):
//! +---------------------------+---------+-----------------------------------------+
//! | first byte                | size    | meaning                                 |
//! +---------------------------+---------+-----------------------------------------+
//! | 0xxxxxxx                  | 1       | integer 0..=127                         |
//! | 10LLLLLL <data>           | 1+L     | string of L <= 63 bytes                 |
//! | 110xxxxx <1 byte>         | 2       | 13-bit integer -4096..=4095 (big-endian |
//! |                           |         | over the 5+8 bits)                      |
//! | 1110LLLL <1 byte> <data>  | 2+L     | string of L <= 4095 bytes (12-bit, high |
//! |                           |         | 4 bits in the first byte)               |
//! | F0 <u32 LE L> <data>      | 5+L     | string of L bytes                       |
//! | F1 <2 bytes>              | 3       | 16-bit integer                          |
//! | F2 <3 bytes>              | 4       | 24-bit integer                          |
//! | F3 <4 bytes>              | 5       | 32-bit integer                          |
//! | F4 <8 bytes>              | 9       | 64-bit integer                          |
//! | F5..FE                    | -       | invalid                                 |
//! | FF                        | 1       | EOF (only as the last byte)             |
//! +---------------------------+---------+-----------------------------------------+
//!
//! <backlen>: the size S of <encoding+data>, so the list can be walked from the
//! end, in 1 to 5 bytes read right to left, 7 bits each, the high bit of every
//! byte but the leftmost set:
//!   S <= 127        -> [S]
//!   S <  16383      -> [S>>7, S&127|128]
//!   S <  2097151    -> [S>>14, (S>>7)&127|128, S&127|128]
//!   S <  268435455  -> 4 bytes,  else 5 bytes
//! (the bounds are Redis's `lpEncodeBacklen`, `<` and not `<=`, copied so the
//! bytes are the same).
//! ```
//!
//! # How an element is stored
//!
//! An element given as a string is stored as an integer when it is the
//! canonical decimal text of an `i64` ([`string_to_i64`]: `"12"` is 12;
//! `"012"`, `" 1"`, `"+1"` are strings), in the smallest integer encoding
//! that holds it; otherwise as a string with the smallest length encoding.
//! That is `lpEncodeGetType`, so a listpack built here by the same sequence of
//! operations as Redis's is byte-identical to Redis's; `tests/blobs_redis.rs`
//! checks it against a real redis-server's `DUMP`.
//!
//! # Guarantees
//!
//! - [`Listpack::from_bytes`] / [`Listpack::validate`] do what Redis's
//!   `lpValidateIntegrity(deep=1)` does: header total equals the blob size,
//!   last byte is EOF, every entry's encoding is known and its data and
//!   back-length lie inside the blob, every back-length matches its entry,
//!   the entries end exactly at the EOF byte, and the header count is right
//!   unless it is 65535. They never panic and never read outside the slice.
//! - A [`Listpack`] is valid at all times: built empty or validated, and
//!   changed only by methods that keep the format.
//! - Positions ([`Pos`]) are byte offsets, like Redis's `unsigned char *p`:
//!   a mutation invalidates every `Pos` but the one it returns. A mutating
//!   method checks that the `Pos` it is given is the start of a well-formed
//!   entry and panics otherwise (a bug in the caller, like an index out of
//!   bounds), so a stale `Pos` cannot corrupt the blob unnoticed in most
//!   cases and can never cause a read outside it.
//!
//! # Memory and fork
//!
//! The bytes live in a `Box<[u8]>` (a 16-byte handle) whose length is the
//! listpack's *capacity*: the listpack's own size is its header's total, and
//! the capacity is that size rounded up to a size class, as jemalloc (Redis's
//! allocator) rounds an allocation: 16-byte steps up to 128 bytes (which
//! glibc's 16-byte chunks cost anyway), then eight classes per doubling
//! (`size_class` in the blob module). A
//! mutation rewrites the header and moves the bytes after the change point
//! (`memmove`, as `lpInsert` does) inside that buffer, and only a size that
//! leaves the class (above it, or under half of it) reallocates. That is
//! what jemalloc gives Redis for free and glibc does not: with an exact-size
//! buffer every LPUSH was a `realloc` that moved the listpack, and every LPOP
//! a shrinking one that wrote a free chunk's header into its tail, and while a
//! forked child is saving each of those writes copies a page. Now a change
//! dirties at most the pages of that one listpack (8 KiB for a quicklist node
//! at `list-max-listpack-size -2`, about 17 KiB for a hash at 128 entries of
//! 64 bytes) and nothing else. Measured under a save (10 000 lists of 100
//! elements, 4000 LPUSH+LPOP pairs): 5190 parent faults before, 4136 after,
//! redis-server 3102; the rest is the 2 KiB buffer straddling two pages where
//! jemalloc's 2 KiB regions never do. Sets (intsets, the same scheme): 2273
//! before, 1250 after, redis-server 1393. Reads never
//! write: unlike Redis's `lpLength`, [`Listpack::len`] does not store a
//! recounted element count into a header that says 65535 (so past 65534
//! entries the header may differ from Redis's, which no default threshold
//! reaches).
//!
//! [`string_to_i64`]: super::string_to_i64

use super::{read_le, sign_extend, string_to_i64, BlobError, BlobKind, Elem};

/// Size of the header: total bytes (4) and count (2).
pub const HEADER_SIZE: usize = 6;
/// The header count meaning "unknown, scan to count".
pub const COUNT_UNKNOWN: u16 = u16::MAX;
/// The terminator byte.
pub const EOF: u8 = 0xFF;
/// Redis's `LISTPACK_MAX_SAFETY_SIZE`: callers should not grow a listpack
/// past 1 GiB (see [`Listpack::safe_to_add`]).
pub const MAX_SAFE_SIZE: usize = 1 << 30;

const ENC_13BIT_INT: u8 = 0xC0;
const ENC_12BIT_STR: u8 = 0xE0;
const ENC_32BIT_STR: u8 = 0xF0;
const ENC_16BIT_INT: u8 = 0xF1;
const ENC_24BIT_INT: u8 = 0xF2;
const ENC_32BIT_INT: u8 = 0xF3;
const ENC_64BIT_INT: u8 = 0xF4;
const ENC_6BIT_STR: u8 = 0x80;

/// The position of an entry in a [`Listpack`]: its byte offset. Valid until
/// the next mutation of that listpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos(u32);

impl Pos {
    /// The byte offset of the entry in the listpack.
    pub fn offset(self) -> usize {
        self.0 as usize
    }
}

/// Where [`Listpack::insert`] puts the new element relative to a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// Before the entry (Redis's `LP_BEFORE`).
    Before,
    /// After the entry (`LP_AFTER`).
    After,
}

/// Bytes needed for the back-length of an entry of `l` bytes
/// (`lpEncodeBacklen(NULL, l)`).
#[inline]
fn backlen_size(l: u64) -> usize {
    if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2097151 {
        3
    } else if l < 268435455 {
        4
    } else {
        5
    }
}

/// Writes the back-length of `l` into `buf` (exactly `backlen_size(l)` bytes).
fn write_backlen(buf: &mut [u8], l: u64) {
    let n = buf.len();
    debug_assert_eq!(n, backlen_size(l));
    if n == 1 {
        buf[0] = l as u8;
        return;
    }
    // buf[0] holds the highest 7-bit group without the continuation bit,
    // each later byte a lower group with it.
    for (i, b) in buf.iter_mut().enumerate() {
        let shift = 7 * (n - 1 - i) as u32;
        let group = ((l >> shift) & 127) as u8;
        *b = if i == 0 {
            (l >> shift) as u8
        } else {
            group | 128
        };
    }
}

/// Reads a back-length ending at `end` (inclusive), right to left, as
/// `lpDecodeBacklen`; `None` when it would take more than 5 bytes or run
/// before the start of the slice.
fn decode_backlen(lp: &[u8], end: usize) -> Option<u64> {
    let mut val = 0u64;
    let mut shift = 0u32;
    let mut i = end;
    loop {
        let b = *lp.get(i)?;
        val |= u64::from(b & 127) << shift;
        if b & 128 == 0 {
            return Some(val);
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
        i = i.checked_sub(1)?;
    }
}

/// Bytes of the encoding field (first byte plus length bytes) of an entry
/// starting with `b` (`lpCurrentEncodedSizeBytes`); `None` for an invalid
/// first byte. Not called on EOF.
#[inline]
fn header_bytes(b: u8) -> Option<usize> {
    match b {
        // 7-bit uint, 6-bit string, 13-bit int.
        0x00..=0xDF => Some(1),
        0xE0..=0xEF => Some(2),
        ENC_32BIT_STR => Some(5),
        ENC_16BIT_INT | ENC_24BIT_INT | ENC_32BIT_INT | ENC_64BIT_INT => Some(1),
        _ => None,
    }
}

/// Size of <encoding+data> of the entry at `p` (`lpCurrentEncodedSizeUnsafe`),
/// reading only within `lp`; `None` if its length bytes are cut off or the
/// encoding is invalid.
#[inline]
fn encoded_size(lp: &[u8], p: usize) -> Option<u64> {
    let b = *lp.get(p)?;
    Some(match b {
        0x00..=0x7F => 1,
        0x80..=0xBF => 1 + u64::from(b & 0x3F),
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 2 + ((u64::from(b & 0x0F) << 8) | u64::from(*lp.get(p + 1)?)),
        ENC_32BIT_STR => 5 + read_le::<4>(lp, p + 1)?,
        ENC_16BIT_INT => 3,
        ENC_24BIT_INT => 4,
        ENC_32BIT_INT => 5,
        ENC_64BIT_INT => 9,
        _ => return None,
    })
}

/// Checks the entry at `p` of a listpack whose EOF is its last byte, as
/// `lpValidateNext` does, and returns the offset of the next entry (or of the
/// EOF). `Err` carries the offset and detail.
fn check_entry(lp: &[u8], p: usize) -> Result<usize, (usize, String)> {
    let last = lp.len() - 1; // the EOF byte
    if p < HEADER_SIZE || p >= last {
        return Err((p, format!("entry offset {p} outside {HEADER_SIZE}..{last}")));
    }
    let b = lp[p];
    let hdr = header_bytes(b).ok_or_else(|| (p, format!("invalid encoding byte 0x{b:02x}")))?;
    if p + hdr > last {
        return Err((
            p,
            format!("encoding 0x{b:02x} needs {hdr} header bytes, runs past the end"),
        ));
    }
    let size = encoded_size(lp, p).ok_or_else(|| (p, "unreadable entry header".to_string()))?;
    let total = size + backlen_size(size) as u64;
    let next = (p as u64).saturating_add(total);
    if next > last as u64 {
        return Err((
            p,
            format!("entry of {total} bytes (encoding 0x{b:02x}) runs past the EOF at {last}"),
        ));
    }
    let next = next as usize;
    match decode_backlen(lp, next - 1) {
        Some(back) if back == size => Ok(next),
        Some(back) => Err((
            next - 1,
            format!("back-length says {back} bytes, the entry at {p} has {size}"),
        )),
        None => Err((next - 1, "back-length longer than 5 bytes".to_string())),
    }
}

/// An element encoded for insertion: an integer's bytes, or a string's
/// header and data.
struct Encoded<'a> {
    head: [u8; 9],
    head_len: usize,
    data: &'a [u8],
}

impl<'a> Encoded<'a> {
    fn new(e: Elem<'a>) -> Result<Self, BlobError> {
        match e {
            Elem::Int(v) => Ok(Self::int(v)),
            Elem::Str(s) => match string_to_i64(s) {
                Some(v) => Ok(Self::int(v)),
                None => Self::string(s),
            },
        }
    }

    /// `lpEncodeIntegerGetType`.
    fn int(v: i64) -> Self {
        let mut head = [0u8; 9];
        let u = v as u64;
        let head_len = if (0..=127).contains(&v) {
            head[0] = v as u8;
            1
        } else if (-4096..=4095).contains(&v) {
            let x = (u & 0x1FFF) as u16;
            head[0] = ENC_13BIT_INT | (x >> 8) as u8;
            head[1] = x as u8;
            2
        } else if (-32768..=32767).contains(&v) {
            head[0] = ENC_16BIT_INT;
            head[1..3].copy_from_slice(&u.to_le_bytes()[..2]);
            3
        } else if (-8388608..=8388607).contains(&v) {
            head[0] = ENC_24BIT_INT;
            head[1..4].copy_from_slice(&u.to_le_bytes()[..3]);
            4
        } else if (-2147483648..=2147483647).contains(&v) {
            head[0] = ENC_32BIT_INT;
            head[1..5].copy_from_slice(&u.to_le_bytes()[..4]);
            5
        } else {
            head[0] = ENC_64BIT_INT;
            head[1..9].copy_from_slice(&u.to_le_bytes());
            9
        };
        Encoded {
            head,
            head_len,
            data: &[],
        }
    }

    /// `lpEncodeString`'s header.
    fn string(s: &'a [u8]) -> Result<Self, BlobError> {
        let len = u32::try_from(s.len()).map_err(|_| BlobError::TooBig {
            kind: BlobKind::Listpack,
            size: s.len() as u64,
            max: u64::from(u32::MAX),
        })?;
        let mut head = [0u8; 9];
        let head_len = if len < 64 {
            head[0] = ENC_6BIT_STR | len as u8;
            1
        } else if len < 4096 {
            head[0] = ENC_12BIT_STR | (len >> 8) as u8;
            head[1] = len as u8;
            2
        } else {
            head[0] = ENC_32BIT_STR;
            head[1..5].copy_from_slice(&len.to_le_bytes());
            5
        };
        Ok(Encoded {
            head,
            head_len,
            data: s,
        })
    }

    /// Size of <encoding+data>.
    fn size(&self) -> u64 {
        (self.head_len + self.data.len()) as u64
    }

    /// Size of the whole entry, back-length included.
    fn entry_size(&self) -> usize {
        let s = self.size();
        s as usize + backlen_size(s)
    }

    fn write(&self, dst: &mut [u8]) {
        let (head, rest) = dst.split_at_mut(self.head_len);
        head.copy_from_slice(&self.head[..self.head_len]);
        let (data, back) = rest.split_at_mut(self.data.len());
        data.copy_from_slice(self.data);
        write_backlen(back, self.size());
    }
}

/// The number of bytes an element takes in a listpack, back-length included
/// (what `lpInsert` adds for it): for size thresholds such as
/// `list-max-listpack-size`.
pub fn entry_size<'a>(e: impl Into<Elem<'a>>) -> usize {
    match Encoded::new(e.into()) {
        Ok(enc) => enc.entry_size(),
        // A string over 4 GiB cannot be stored at all.
        Err(_) => usize::MAX,
    }
}

/// A valid listpack, owning its bytes. See the [module docs](self).
pub struct Listpack {
    /// The listpack, then spare capacity up to its size class (see the module docs).
    bytes: Box<[u8]>,
}

impl Clone for Listpack {
    /// An exact copy, without the spare capacity: a copy is often never changed (a snapshot's,
    /// a DUMP's); its first growth takes a size class.
    fn clone(&self) -> Self {
        Listpack {
            bytes: self.as_bytes().into(),
        }
    }
}

impl PartialEq for Listpack {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Listpack {}

impl std::hash::Hash for Listpack {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Default for Listpack {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Listpack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Listpack {
    /// An empty listpack (`lpNew`): 7 bytes, header and EOF.
    pub fn new() -> Self {
        let mut b = [0u8; HEADER_SIZE + 1];
        b[..4].copy_from_slice(&((HEADER_SIZE + 1) as u32).to_le_bytes());
        b[HEADER_SIZE] = EOF;
        Listpack { bytes: b.into() }
    }

    /// Takes a listpack from outside (an RDB file, a `RESTORE` payload)
    /// after validating it in full ([`Listpack::validate`]).
    pub fn from_bytes(bytes: impl Into<Box<[u8]>>) -> Result<Self, BlobError> {
        let bytes = bytes.into();
        Self::validate(&bytes)?;
        Ok(Listpack { bytes })
    }

    /// Validates a foreign listpack as Redis's `lpValidateIntegrity` with
    /// `deep = 1` does, and returns its number of entries. Never panics,
    /// never reads outside `bytes`.
    pub fn validate(bytes: &[u8]) -> Result<usize, BlobError> {
        let err =
            |off: usize, detail: String| BlobError::corrupt(BlobKind::Listpack, bytes, off, detail);
        if bytes.len() < HEADER_SIZE + 1 {
            return Err(err(
                0,
                format!(
                    "{} bytes, shorter than header and EOF ({})",
                    bytes.len(),
                    HEADER_SIZE + 1
                ),
            ));
        }
        let total = read_le::<4>(bytes, 0).unwrap_or(0);
        if total != bytes.len() as u64 {
            return Err(err(
                0,
                format!(
                    "header says {total} total bytes, the blob has {}",
                    bytes.len()
                ),
            ));
        }
        let last = bytes.len() - 1;
        if bytes[last] != EOF {
            return Err(err(
                last,
                format!("last byte is 0x{:02x}, not EOF (0xff)", bytes[last]),
            ));
        }
        let header_count = read_le::<2>(bytes, 4).unwrap_or(0) as u16;
        let mut count = 0usize;
        let mut p = HEADER_SIZE;
        while p < last && bytes[p] != EOF {
            p = check_entry(bytes, p).map_err(|(off, d)| err(off, d))?;
            count += 1;
        }
        if p != last {
            return Err(err(p, format!("EOF byte at {p}, before the end at {last}")));
        }
        if header_count != COUNT_UNKNOWN && usize::from(header_count) != count {
            return Err(err(
                4,
                format!("header says {header_count} entries, found {count}"),
            ));
        }
        Ok(count)
    }

    /// The listpack's bytes, exactly what an RDB file holds for it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.total_bytes()]
    }

    /// The bytes, given up (exactly the listpack, without spare capacity).
    pub fn into_bytes(self) -> Box<[u8]> {
        if self.bytes.len() == self.total_bytes() {
            self.bytes
        } else {
            self.as_bytes().into()
        }
    }

    /// Size in bytes (`lpBytes`): the header's total, which every change keeps right.
    pub fn total_bytes(&self) -> usize {
        read_le::<4>(&self.bytes, 0).unwrap_or(0) as usize
    }

    /// Bytes held, spare capacity included (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.bytes.len()
    }

    /// The count field of the header (65535: unknown).
    pub fn header_count(&self) -> u16 {
        read_le::<2>(&self.bytes, 4).unwrap_or(0) as u16
    }

    fn set_header_count(&mut self, n: u16) {
        self.bytes[4..6].copy_from_slice(&n.to_le_bytes());
    }

    fn set_total(&mut self, total: usize) {
        self.bytes[..4].copy_from_slice(&(total as u32).to_le_bytes());
    }

    /// Number of entries: the header's, or a scan when it says 65535. Does
    /// not write the count back (see the module docs).
    pub fn len(&self) -> usize {
        match self.header_count() {
            COUNT_UNKNOWN => self.iter().count(),
            n => usize::from(n),
        }
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.bytes.get(HEADER_SIZE) == Some(&EOF)
    }

    /// A copy that keeps the spare capacity (unlike `clone`): for a listpack
    /// that moves and goes on changing.
    pub fn clone_with_capacity(&self) -> Listpack {
        Listpack {
            bytes: self.bytes.clone(),
        }
    }

    /// Makes room for `additional` more bytes: the buffer takes the size
    /// class of the size it will reach, once, where element-by-element
    /// growth would pass through every class on the way. A command that adds
    /// many elements calls it first: glibc cannot reuse the chunks the
    /// smaller classes leave behind for the same class (100k sorted sets of
    /// 100 members each left 7369 free 1 KiB chunks, 77 bytes a key of RSS).
    /// Never shrinks, and does nothing past [`MAX_SAFE_SIZE`] (the insert
    /// itself then fails or grows as usual).
    pub fn reserve(&mut self, additional: usize) {
        let want = self.total_bytes().saturating_add(additional);
        if want > self.bytes.len() && want <= MAX_SAFE_SIZE {
            super::realloc_to_class(&mut self.bytes, want);
        }
    }

    /// Whether `add` more bytes keep the listpack within
    /// [`MAX_SAFE_SIZE`] (`lpSafeToAdd`).
    pub fn safe_to_add(&self, add: usize) -> bool {
        self.total_bytes().saturating_add(add) <= MAX_SAFE_SIZE
    }

    fn eof_pos(&self) -> usize {
        self.total_bytes() - 1
    }

    /// Decodes the entry at `p`: the element and the offset of the next
    /// entry. Panics (bounds check) only if `p` is not an entry start.
    fn decode(&self, p: usize) -> (Elem<'_>, usize) {
        let lp = self.as_bytes();
        let b = lp[p];
        let (elem, size) = match b {
            0x00..=0x7F => (Elem::Int(i64::from(b)), 1usize),
            0x80..=0xBF => {
                let len = usize::from(b & 0x3F);
                (Elem::Str(&lp[p + 1..p + 1 + len]), 1 + len)
            }
            0xC0..=0xDF => {
                let u = (u64::from(b & 0x1F) << 8) | u64::from(lp[p + 1]);
                (Elem::Int(sign_extend(u, 13)), 2)
            }
            0xE0..=0xEF => {
                let len = (usize::from(b & 0x0F) << 8) | usize::from(lp[p + 1]);
                (Elem::Str(&lp[p + 2..p + 2 + len]), 2 + len)
            }
            ENC_32BIT_STR => {
                let len = read_le::<4>(lp, p + 1).expect("listpack: bad position") as usize;
                (Elem::Str(&lp[p + 5..p + 5 + len]), 5 + len)
            }
            ENC_16BIT_INT => (Elem::Int(sign_extend(self.le::<2>(p + 1), 16)), 3),
            ENC_24BIT_INT => (Elem::Int(sign_extend(self.le::<3>(p + 1), 24)), 4),
            ENC_32BIT_INT => (Elem::Int(sign_extend(self.le::<4>(p + 1), 32)), 5),
            ENC_64BIT_INT => (Elem::Int(self.le::<8>(p + 1) as i64), 9),
            _ => panic!("listpack: no entry at offset {p} (byte 0x{b:02x})"),
        };
        (elem, p + size + backlen_size(size as u64))
    }

    fn le<const N: usize>(&self, off: usize) -> u64 {
        read_le::<N>(self.as_bytes(), off).expect("listpack: bad position")
    }

    /// Start of the entry before the one at `p` (or before the EOF), if any.
    fn prev_off(&self, p: usize) -> Option<usize> {
        if p <= HEADER_SIZE {
            return None;
        }
        let size = decode_backlen(self.as_bytes(), p - 1).expect("listpack: bad position");
        Some(p - backlen_size(size) - size as usize)
    }

    /// Panics unless `pos` is the start of a well-formed entry of this
    /// listpack (catches most stale positions before they corrupt it).
    fn check_pos(&self, pos: Pos) -> usize {
        let p = pos.offset();
        if let Err((_, d)) = check_entry(self.as_bytes(), p) {
            panic!("listpack: stale or foreign position {p}: {d}");
        }
        p
    }

    /// The first entry (`lpFirst`).
    pub fn first(&self) -> Option<Pos> {
        (!self.is_empty()).then_some(Pos(HEADER_SIZE as u32))
    }

    /// The last entry (`lpLast`).
    pub fn last(&self) -> Option<Pos> {
        self.prev_off(self.eof_pos()).map(|p| Pos(p as u32))
    }

    /// The entry after `pos` (`lpNext`).
    pub fn next(&self, pos: Pos) -> Option<Pos> {
        let (_, n) = self.decode(pos.offset());
        (n < self.eof_pos()).then_some(Pos(n as u32))
    }

    /// The entry before `pos` (`lpPrev`).
    pub fn prev(&self, pos: Pos) -> Option<Pos> {
        self.prev_off(pos.offset()).map(|p| Pos(p as u32))
    }

    /// The element at `pos` (`lpGet`).
    pub fn get(&self, pos: Pos) -> Elem<'_> {
        self.decode(pos.offset()).0
    }

    /// The entry at `index`, counted from the head (0 is the first) or, when
    /// negative, from the tail (-1 is the last); `None` when out of range
    /// (`lpSeek`, which walks from the nearer end when the count is known).
    pub fn seek(&self, index: i64) -> Option<Pos> {
        let n = self.header_count();
        let (forward, mut index) = if n != COUNT_UNKNOWN {
            let n = i64::from(n);
            let i = if index < 0 {
                index.checked_add(n)?
            } else {
                index
            };
            if i < 0 || i >= n {
                return None;
            }
            if i > n / 2 {
                (false, i - n)
            } else {
                (true, i)
            }
        } else {
            (index >= 0, index)
        };
        if forward {
            let mut cur = self.first();
            while index > 0 {
                cur = self.next(cur?);
                index -= 1;
            }
            cur
        } else {
            let mut cur = self.last();
            while index < -1 {
                cur = self.prev(cur?);
                index += 1;
            }
            cur
        }
    }

    /// The first entry from `from` on equal to `s` as Redis's `lpFind`
    /// compares (a string entry byte for byte, an integer entry against `s`
    /// read as a canonical integer), looking at every `skip + 1`-th entry
    /// (`skip = 1` looks only at the fields of a hash's field/value pairs).
    pub fn find(&self, from: Pos, s: &[u8], skip: usize) -> Option<Pos> {
        let needle_int = string_to_i64(s);
        let eof = self.eof_pos();
        let mut p = from.offset();
        let mut skipcnt = 0usize;
        while p < eof {
            let (elem, next) = self.decode(p);
            if skipcnt == 0 {
                let hit = match elem {
                    Elem::Str(v) => v == s,
                    Elem::Int(v) => needle_int == Some(v),
                };
                if hit {
                    return Some(Pos(p as u32));
                }
                skipcnt = skip;
            } else {
                skipcnt -= 1;
            }
            p = next;
        }
        None
    }

    /// The elements, from either end.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            lp: self,
            front: HEADER_SIZE,
            back: self.eof_pos(),
        }
    }

    /// Makes room for `insert` bytes at `at` in place of `remove` bytes,
    /// moving the tail once, and updates the total in the header.
    fn splice_gap(&mut self, at: usize, remove: usize, insert: usize) -> Result<(), BlobError> {
        let old = self.total_bytes();
        let new = (old - remove) as u64 + insert as u64;
        if new > u64::from(u32::MAX) {
            return Err(BlobError::TooBig {
                kind: BlobKind::Listpack,
                size: new,
                max: u64::from(u32::MAX),
            });
        }
        let new = new as usize;
        if insert != remove {
            let cap = self.bytes.len();
            if new > cap {
                // Past its class: the buffer grows to the new size's class first.
                super::realloc_to_class(&mut self.bytes, new);
            }
            // Only the bytes after the change point move, inside the buffer.
            self.bytes.copy_within(at + remove..old, at + insert);
            if insert < remove && new < cap / 2 && cap > 128 {
                // Well under its class after a removal: a smaller buffer, as a shrinking
                // realloc would (never on an insert, which may be filling a `reserve`).
                super::realloc_to_class(&mut self.bytes, new);
            }
        }
        self.set_total(new);
        Ok(())
    }

    fn count_add(&mut self, added: bool, n: usize) {
        let c = self.header_count();
        if c != COUNT_UNKNOWN {
            // Saturates at 65535 = unknown, as lpInsert's `num_elements+1` does.
            let c = if added {
                (usize::from(c) + n).min(usize::from(COUNT_UNKNOWN))
            } else {
                usize::from(c).saturating_sub(n)
            };
            self.set_header_count(c as u16);
        }
    }

    /// Inserts before the entry at byte `p` (an entry start or the EOF).
    fn insert_at(&mut self, p: usize, e: Elem<'_>) -> Result<Pos, BlobError> {
        let enc = Encoded::new(e)?;
        let n = enc.entry_size();
        self.splice_gap(p, 0, n)?;
        enc.write(&mut self.bytes[p..p + n]);
        self.count_add(true, 1);
        Ok(Pos(p as u32))
    }

    /// Appends an element at the tail (`lpAppend`/`lpAppendInteger`): a
    /// string that is a canonical integer is stored as that integer.
    /// Returns its position. Fails only past the format's 4 GiB limit.
    pub fn append<'e>(&mut self, e: impl Into<Elem<'e>>) -> Result<Pos, BlobError> {
        let eof = self.eof_pos();
        self.insert_at(eof, e.into())
    }

    /// Inserts an element at the head (`lpPrepend`).
    pub fn prepend<'e>(&mut self, e: impl Into<Elem<'e>>) -> Result<Pos, BlobError> {
        self.insert_at(HEADER_SIZE, e.into())
    }

    /// Inserts an element before or after the entry at `pos`
    /// (`lpInsertString`/`lpInsertInteger`) and returns the new entry's
    /// position. Panics if `pos` is not an entry of this listpack.
    pub fn insert<'e>(
        &mut self,
        pos: Pos,
        where_: Where,
        e: impl Into<Elem<'e>>,
    ) -> Result<Pos, BlobError> {
        let p = self.check_pos(pos);
        let at = match where_ {
            Where::Before => p,
            Where::After => self.decode(p).1,
        };
        self.insert_at(at, e.into())
    }

    /// Replaces the element at `pos` (`lpReplace`/`lpReplaceInteger`) and
    /// returns its position (the same offset). Panics if `pos` is not an
    /// entry of this listpack.
    pub fn replace<'e>(&mut self, pos: Pos, e: impl Into<Elem<'e>>) -> Result<Pos, BlobError> {
        let p = self.check_pos(pos);
        let old = self.decode(p).1 - p;
        let enc = Encoded::new(e.into())?;
        let n = enc.entry_size();
        self.splice_gap(p, old, n)?;
        enc.write(&mut self.bytes[p..p + n]);
        Ok(pos)
    }

    /// Deletes the entry at `pos` (`lpDelete`) and returns the position of
    /// the entry that followed it, if any. Panics if `pos` is not an entry of
    /// this listpack.
    pub fn delete(&mut self, pos: Pos) -> Option<Pos> {
        self.delete_range_at(pos, 1)
    }

    /// Deletes up to `num` entries starting at `pos`
    /// (`lpDeleteRangeWithEntry`; `HDEL` deletes a field and its value this
    /// way) and returns the position of the entry that followed them, if any.
    /// Panics if `pos` is not an entry of this listpack.
    pub fn delete_range_at(&mut self, pos: Pos, num: usize) -> Option<Pos> {
        let first = self.check_pos(pos);
        if num == 0 {
            return Some(pos);
        }
        let eof = self.eof_pos();
        let mut tail = first;
        let mut deleted = 0usize;
        while deleted < num && tail < eof {
            tail = self.decode(tail).1;
            deleted += 1;
        }
        // Shrinking never fails.
        let _ = self.splice_gap(first, tail - first, 0);
        self.count_add(false, deleted);
        (first < self.eof_pos()).then_some(Pos(first as u32))
    }

    /// Appends every entry of `other` (`lpMerge`, which quicklist uses to
    /// merge small neighbouring nodes). Entries do not refer to their
    /// neighbours, so this is a copy of `other`'s entries; the header count
    /// becomes the sum, or 65535 when that does not fit.
    pub fn append_listpack(&mut self, other: &Listpack) -> Result<(), BlobError> {
        let body = &other.as_bytes()[HEADER_SIZE..other.eof_pos()];
        let total = self.len() + other.len();
        let eof = self.eof_pos();
        self.splice_gap(eof, 0, body.len())?;
        self.bytes[eof..eof + body.len()].copy_from_slice(body);
        self.set_header_count(total.min(usize::from(COUNT_UNKNOWN)) as u16);
        Ok(())
    }

    /// Deletes up to `num` entries from `index` on (negative: from the tail),
    /// nothing if `index` is out of range (`lpDeleteRange`; `LTRIM`).
    pub fn delete_range(&mut self, index: i64, num: usize) {
        if num == 0 {
            return;
        }
        if let Some(p) = self.seek(index) {
            self.delete_range_at(p, num);
        }
    }
}

/// Iterator over a listpack's elements, from the head or (`rev`) the tail.
#[derive(Clone)]
pub struct Iter<'a> {
    lp: &'a Listpack,
    /// Offset of the next entry from the front.
    front: usize,
    /// Offset just past the next entry from the back.
    back: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;

    fn next(&mut self) -> Option<Elem<'a>> {
        if self.front >= self.back {
            return None;
        }
        let (e, next) = self.lp.decode(self.front);
        self.front = next;
        Some(e)
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        let p = self.lp.prev_off(self.back)?;
        self.back = p;
        Some(self.lp.decode(p).0)
    }
}

impl<'a> IntoIterator for &'a Listpack {
    type Item = Elem<'a>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elems(lp: &Listpack) -> Vec<Vec<u8>> {
        lp.iter().map(|e| e.to_vec()).collect()
    }

    fn valid(lp: &Listpack) {
        assert_eq!(Listpack::validate(lp.as_bytes()), Ok(lp.len()), "{lp:?}");
        let fwd: Vec<_> = lp.iter().collect();
        let mut back: Vec<_> = lp.iter().rev().collect();
        back.reverse();
        assert_eq!(fwd, back);
    }

    #[test]
    fn empty_is_lp_new() {
        let lp = Listpack::new();
        assert_eq!(lp.as_bytes(), &[7, 0, 0, 0, 0, 0, 0xFF]);
        assert!(lp.is_empty());
        assert_eq!(lp.first(), None);
        assert_eq!(lp.last(), None);
        assert_eq!(lp.seek(0), None);
        valid(&lp);
    }

    #[test]
    fn integer_encodings_and_boundaries() {
        // (value, encoded entry bytes incl. back-length)
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00, 0x01]),
            (127, &[0x7F, 0x01]),
            (128, &[0xC0, 0x80, 0x02]),
            (-1, &[0xDF, 0xFF, 0x02]),
            (4095, &[0xCF, 0xFF, 0x02]),
            (-4096, &[0xD0, 0x00, 0x02]),
            (4096, &[0xF1, 0x00, 0x10, 0x03]),
            (-4097, &[0xF1, 0xFF, 0xEF, 0x03]),
            (32767, &[0xF1, 0xFF, 0x7F, 0x03]),
            (32768, &[0xF2, 0x00, 0x80, 0x00, 0x04]),
            (-8388608, &[0xF2, 0x00, 0x00, 0x80, 0x04]),
            (8388608, &[0xF3, 0x00, 0x00, 0x80, 0x00, 0x05]),
            (i64::from(i32::MIN), &[0xF3, 0x00, 0x00, 0x00, 0x80, 0x05]),
            (
                i64::from(i32::MAX) + 1,
                &[0xF4, 0, 0, 0, 0x80, 0, 0, 0, 0, 0x09],
            ),
            (i64::MIN, &[0xF4, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x09]),
        ];
        for &(v, bytes) in cases {
            for lp in [
                {
                    let mut lp = Listpack::new();
                    lp.append(v).unwrap();
                    lp
                },
                {
                    let mut lp = Listpack::new();
                    lp.append(v.to_string().as_str()).unwrap();
                    lp
                },
            ] {
                assert_eq!(
                    &lp.as_bytes()[HEADER_SIZE..lp.total_bytes() - 1],
                    bytes,
                    "{v}"
                );
                assert_eq!(lp.get(lp.first().unwrap()), Elem::Int(v));
                valid(&lp);
            }
        }
    }

    #[test]
    fn string_encodings_and_backlen_sizes() {
        for len in [
            0usize, 1, 63, 64, 125, 126, 127, 4095, 4096, 16382, 16383, 20000,
        ] {
            let s = vec![b'x'; len];
            let mut lp = Listpack::new();
            lp.append(&s).unwrap();
            lp.append("a").unwrap();
            valid(&lp);
            assert_eq!(lp.get(lp.first().unwrap()), Elem::Str(&s));
            assert_eq!(lp.get(lp.last().unwrap()), Elem::Str(b"a"));
            assert_eq!(lp.iter().next_back(), Some(Elem::Str(b"a")));
            let head = if len < 64 {
                1
            } else if len < 4096 {
                2
            } else {
                5
            };
            let size = (head + len) as u64;
            assert_eq!(entry_size(&s[..]), head + len + backlen_size(size));
        }
    }

    #[test]
    fn look_alike_integers_stay_strings() {
        let mut lp = Listpack::new();
        for s in ["012", " 1", "+1", "-0", "1.5", "9223372036854775808", ""] {
            lp.append(s).unwrap();
        }
        for e in lp.iter() {
            assert!(matches!(e, Elem::Str(_)), "{e:?}");
        }
        valid(&lp);
    }

    #[test]
    fn mutations_keep_the_format() {
        let mut lp = Listpack::new();
        for i in 0..10 {
            lp.append(i * 1000).unwrap();
        }
        lp.prepend("head").unwrap();
        let p = lp.seek(5).unwrap();
        assert_eq!(lp.get(p), Elem::Int(4000));
        let p = lp.insert(p, Where::After, "after4000").unwrap();
        assert_eq!(lp.get(p), Elem::Str(b"after4000"));
        let p = lp.replace(p, &[b'y'; 200]).unwrap();
        assert_eq!(lp.get(p), Elem::Str(&[b'y'; 200]));
        valid(&lp);
        let next = lp.delete(p).unwrap();
        assert_eq!(lp.get(next), Elem::Int(5000));
        lp.delete_range(1, 3);
        assert_eq!(
            elems(&lp),
            ["head", "3000", "4000", "5000", "6000", "7000", "8000", "9000"]
                .map(|s| s.as_bytes().to_vec())
        );
        lp.delete_range(-2, 100);
        assert_eq!(lp.len(), 6);
        assert_eq!(lp.get(lp.seek(-1).unwrap()), Elem::Int(7000));
        assert_eq!(lp.seek(-7), None);
        assert_eq!(lp.seek(6), None);
        let f = lp.find(lp.first().unwrap(), b"5000", 0).unwrap();
        assert_eq!(lp.get(f), Elem::Int(5000));
        assert_eq!(lp.find(lp.first().unwrap(), b"05000", 0), None);
        // skip = 1 looks at entries 0, 2, 4 only.
        assert_eq!(lp.find(lp.first().unwrap(), b"3000", 1), None);
        assert!(lp.find(lp.first().unwrap(), b"4000", 1).is_some());
        let last = lp.last().unwrap();
        assert_eq!(lp.delete_range_at(last, 5), None);
        valid(&lp);
    }

    #[test]
    fn corrupt_blobs_are_errors() {
        let mut lp = Listpack::new();
        lp.append("hello").unwrap();
        lp.append(1234).unwrap();
        let good = lp.as_bytes().to_vec();
        // Every truncation and every single-byte change must be refused or
        // still be a consistent listpack.
        for n in 0..good.len() {
            assert!(Listpack::validate(&good[..n]).is_err());
        }
        for i in 0..good.len() {
            for b in [
                0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xE0, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF,
            ] {
                let mut bad = good.clone();
                bad[i] = b;
                if let Ok(lp) = Listpack::from_bytes(bad.clone()) {
                    valid(&lp);
                }
            }
        }
        let mut bad = good.clone();
        bad[4] = 3;
        let e = Listpack::validate(&bad).unwrap_err();
        assert_eq!(e.offset(), Some(4));
        assert!(
            e.to_string().contains("header says 3 entries, found 2"),
            "{e}"
        );
        // Unknown count is fine.
        let mut unk = good.clone();
        unk[4] = 0xFF;
        unk[5] = 0xFF;
        let lp = Listpack::from_bytes(unk).unwrap();
        assert_eq!(lp.len(), 2);
        assert_eq!(lp.seek(-1).map(|p| lp.get(p)), Some(Elem::Int(1234)));
    }

    #[test]
    fn count_saturates_at_unknown() {
        // 65534 entries "1" (01 01), built directly: appending them one by
        // one moves the tail each time, too slow for a unit test.
        let n = 65534usize;
        let mut b = Vec::with_capacity(HEADER_SIZE + 2 * n + 1);
        b.extend_from_slice(&((HEADER_SIZE + 2 * n + 1) as u32).to_le_bytes());
        b.extend_from_slice(&(n as u16).to_le_bytes());
        for _ in 0..n {
            b.extend_from_slice(&[1, 1]);
        }
        b.push(EOF);
        let mut lp = Listpack::from_bytes(b).unwrap();
        assert_eq!(lp.header_count(), 65534);
        lp.append(1).unwrap();
        assert_eq!(lp.header_count(), COUNT_UNKNOWN);
        assert_eq!(lp.len(), 65535);
        lp.delete(lp.first().unwrap());
        assert_eq!(lp.header_count(), COUNT_UNKNOWN);
        assert_eq!(lp.len(), 65534);
        assert_eq!(lp.seek(-1).map(|p| lp.get(p)), Some(Elem::Int(1)));
        valid(&lp);
    }

    #[test]
    fn append_listpack_is_lp_merge() {
        let (mut a, mut b, mut both) = (Listpack::new(), Listpack::new(), Listpack::new());
        for v in ["x", "12", "-70000", "yy"] {
            a.append(v).unwrap();
            both.append(v).unwrap();
        }
        for v in [&[b'z'; 300][..], b"3"] {
            b.append(v).unwrap();
            both.append(v).unwrap();
        }
        a.append_listpack(&b).unwrap();
        assert_eq!(a, both);
        a.append_listpack(&Listpack::new()).unwrap();
        assert_eq!(a, both);
    }

    #[test]
    fn reserve_takes_the_final_class_once() {
        let mut lp = Listpack::new();
        let add: usize = (0..50)
            .map(|i| entry_size(format!("elem{i}").as_bytes()))
            .sum();
        lp.reserve(add);
        let (ptr, cap) = (lp.as_bytes().as_ptr(), lp.capacity());
        assert_eq!(cap, super::super::size_class(HEADER_SIZE + 1 + add));
        for i in 0..50 {
            lp.append(format!("elem{i}").as_bytes()).unwrap();
        }
        assert_eq!((lp.as_bytes().as_ptr(), lp.capacity()), (ptr, cap));
        assert_eq!(lp.total_bytes(), HEADER_SIZE + 1 + add);
        valid(&lp);
        // Never shrinks.
        lp.reserve(0);
        assert_eq!(lp.capacity(), cap);
    }

    #[test]
    fn handle_is_two_words() {
        // What every small container costs besides its bytes.
        assert_eq!(std::mem::size_of::<Listpack>(), 16);
        assert_eq!(std::mem::size_of::<Option<Listpack>>(), 16);
    }

    #[test]
    #[should_panic(expected = "stale or foreign position")]
    fn stale_position_panics_before_writing() {
        let mut lp = Listpack::new();
        lp.append(&[b'a'; 10]).unwrap();
        let _ = lp.replace(Pos(8), "x");
    }

    /// Random inserts, replaces and deletes of strings of many sizes against a Vec model:
    /// the listpack stays valid (`validate` on its exact bytes), holds the model's elements,
    /// and its buffer grows and shrinks by size class (in place within the class).
    #[test]
    fn mutations_match_a_model_across_size_classes() {
        use proptest::prelude::*;
        use proptest::test_runner::TestRunner;
        let op = (0u8..4, 0usize..64, 0usize..600);
        let mut runner = TestRunner::default();
        runner
            .run(&proptest::collection::vec(op, 1..200), |ops| {
                let mut lp = Listpack::new();
                let mut model: Vec<Vec<u8>> = Vec::new();
                for (kind, at, size) in ops {
                    let elem = vec![b'a' + (size % 26) as u8; size];
                    match kind {
                        0 | 1 => {
                            lp.append(elem.as_slice()).unwrap();
                            model.push(elem);
                        }
                        2 if !model.is_empty() => {
                            let i = at % model.len();
                            let pos = lp.seek(i as i64).unwrap();
                            lp.replace(pos, elem.as_slice()).unwrap();
                            model[i] = elem;
                        }
                        _ if !model.is_empty() => {
                            let i = at % model.len();
                            let pos = lp.seek(i as i64).unwrap();
                            lp.delete(pos);
                            model.remove(i);
                        }
                        _ => {}
                    }
                    prop_assert_eq!(Listpack::validate(lp.as_bytes()).unwrap(), model.len());
                    prop_assert!(lp.capacity() >= lp.total_bytes());
                    // Shrunk when under half its class; small buffers (up to 128 bytes) stay.
                    prop_assert!(
                        lp.capacity() <= (super::super::size_class(lp.total_bytes()) * 2).max(128)
                    );
                    let got: Vec<Vec<u8>> = lp.iter().map(|e| e.to_vec()).collect();
                    prop_assert_eq!(&got, &model);
                    let exact = lp.clone().into_bytes();
                    prop_assert_eq!(exact.as_ref(), lp.as_bytes());
                }
                Ok(())
            })
            .unwrap();
    }
}
