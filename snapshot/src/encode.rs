//! Writing RDB: pure `encode_*` functions over any `Write`, and [`RdbWriter`],
//! which strings them together in the order redis-server 7.0 does.
//!
//! The functions write exactly the bytes of one format item (see
//! [`crate::format`] for the table) and nothing else, so they are tested into a
//! `Vec<u8>` byte for byte against files written by redis-server. They know
//! nothing of files or checksums: [`RdbWriter`] puts a [`CrcWriter`] under them
//! and appends the checksum, and [`crate::file`] handles the file's lifecycle.
//!
//! A save, as [`RdbWriter`] does it (`rdbSaveRio` in Redis):
//!
//! ```text
//! REDIS0010
//! AUX redis-ver, redis-bits, ctime, used-mem, aof-base
//! for each non-empty db: SELECTDB n, RESIZEDB keys expires, records...
//! EOF, CRC-64 (or 8 zero bytes)
//! ```
//!
//! Containers are written by reference: [`RdbWriter::record_hash_listpack`]
//! and its siblings take the blob as `&[u8]`, [`RdbWriter::record_set`],
//! [`RdbWriter::record_hash`], [`RdbWriter::record_zset2`] and
//! [`RdbWriter::record_list_quicklist2`] take iterators of borrowed slices,
//! so a forked child reads the parent's values in place and writes to no page
//! it shares with the parent. Only [`RdbWriter::record`] of an expanded list
//! ([`crate::List::Elements`]) builds listpacks first (tests and tools).
//!
//! In a forked child: these functions and [`RdbWriter`] take no locks and do
//! not panic on any input. They allocate only in [`LzfCompressor`] (a 512 KiB
//! table when compression is on, and an output buffer that grows to the
//! largest string compressed), which relies on the process allocator being
//! usable after `fork()` in the forking thread's child: glibc malloc and
//! jemalloc both reset their locks in the child via `pthread_atfork` handlers.

use std::io::{self, Write};

use crate::blob::{Elem, Listpack};
use crate::crc::CrcWriter;
use crate::format::*;
use crate::lzf::LzfCompressor;
use crate::value::{Hash, List, ListNode, Set, Value, ZSet};

/// How to write a snapshot (Redis's `rdbcompression` and `rdbchecksum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveOptions {
    /// LZF-compress strings longer than 20 bytes when it saves at least 4 bytes.
    pub compression: bool,
    /// Write the CRC-64 at the end; when off, write 8 zero bytes, which
    /// readers take as "not computed".
    pub checksum: bool,
}

impl Default for SaveOptions {
    /// Redis's defaults: both on.
    fn default() -> Self {
        SaveOptions {
            compression: true,
            checksum: true,
        }
    }
}

/// The AUX fields redis-server 7.0 writes at the start of every file
/// (`rdbSaveInfoAuxFields`), in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuxFields<'a> {
    /// `redis-ver`: the server version the file claims to come from.
    pub redis_ver: &'a str,
    /// `redis-bits`: 64 or 32.
    pub redis_bits: u32,
    /// `ctime`: creation time, unix seconds.
    pub ctime: i64,
    /// `used-mem`: memory in use when saving, bytes.
    pub used_mem: u64,
    /// `aof-base`: whether this file is the base of a multi-part AOF.
    pub aof_base: bool,
}

impl<'a> AuxFields<'a> {
    /// Fields for a plain snapshot made now by a `redis_ver` server.
    pub fn new(redis_ver: &'a str) -> Self {
        let ctime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        AuxFields {
            redis_ver,
            redis_bits: usize::BITS,
            ctime,
            used_mem: 0,
            aof_base: false,
        }
    }
}

/// Writes the 9-byte header `REDIS0010`.
pub fn encode_header<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(MAGIC)?;
    // RDB_VERSION is 10: four ASCII digits, zero-padded, as Redis's "%04d".
    w.write_all(b"0010")
}

/// Writes a length in the shortest of the 6/14/32/64-bit forms (`rdbSaveLen`).
pub fn encode_len<W: Write>(w: &mut W, len: u64) -> io::Result<()> {
    if len < 1 << 6 {
        w.write_all(&[(LEN_6BIT << 6) | len as u8])
    } else if len < 1 << 14 {
        w.write_all(&[(LEN_14BIT << 6) | (len >> 8) as u8, len as u8])
    } else if let Ok(len32) = u32::try_from(len) {
        w.write_all(&[LEN_32BIT])?;
        w.write_all(&len32.to_be_bytes())
    } else {
        w.write_all(&[LEN_64BIT])?;
        w.write_all(&len.to_be_bytes())
    }
}

/// The INT8/16/32 encoding of `s` if Redis would use one (`rdbTryIntegerEncoding`):
/// `s` is a canonical decimal integer (what `string2ll` accepts: `0`, or an
/// optional `-` and a non-zero digit then digits) that fits in 32 bits.
/// Returns the buffer and how many bytes of it to write.
fn int_encoding(s: &[u8]) -> Option<([u8; 5], usize)> {
    if s.is_empty() || s.len() > INT_ENCODING_MAX_LEN {
        return None;
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits {
        [b'0'] if !negative => {}
        [b'1'..=b'9', rest @ ..] if rest.iter().all(u8::is_ascii_digit) => {}
        _ => return None,
    }
    // At most 11 bytes: at most 11 digits, which fit in i64 without overflow.
    let magnitude = digits
        .iter()
        .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    let value = if negative { -magnitude } else { magnitude };
    let mut buf = [0u8; 5];
    let tag = LEN_ENCVAL << 6;
    if let Ok(v) = i8::try_from(value) {
        buf[0] = tag | ENC_INT8;
        buf[1] = v as u8;
        Some((buf, 2))
    } else if let Ok(v) = i16::try_from(value) {
        buf[0] = tag | ENC_INT16;
        buf[1..3].copy_from_slice(&v.to_le_bytes());
        Some((buf, 3))
    } else if let Ok(v) = i32::try_from(value) {
        buf[0] = tag | ENC_INT32;
        buf[1..5].copy_from_slice(&v.to_le_bytes());
        Some((buf, 5))
    } else {
        None
    }
}

/// Writes a string as Redis's `rdbSaveRawString` does: as an integer when it
/// is a short canonical decimal; else LZF-compressed when `lzf` is given, the
/// string is longer than 20 bytes and the result is at least 4 bytes shorter;
/// else raw.
pub fn encode_string<W: Write>(
    w: &mut W,
    s: &[u8],
    lzf: Option<&mut LzfCompressor>,
) -> io::Result<()> {
    if let Some((buf, n)) = int_encoding(s) {
        return w.write_all(&buf[..n]);
    }
    if let Some(lzf) = lzf {
        if s.len() > LZF_MIN_LEN {
            if let Some(compressed) = lzf.compress(s, s.len() - LZF_MIN_SAVING) {
                w.write_all(&[(LEN_ENCVAL << 6) | ENC_LZF])?;
                encode_len(w, compressed.len() as u64)?;
                encode_len(w, s.len() as u64)?;
                return w.write_all(compressed);
            }
        }
    }
    encode_len(w, s.len() as u64)?;
    w.write_all(s)
}

/// Writes a function library (`rdbSaveFunctions`): FUNCTION2 and the
/// library's code as one string, which Redis writes with `rdbSaveRawString`,
/// so it may be LZF-compressed.
pub fn encode_function<W: Write>(
    w: &mut W,
    code: &[u8],
    lzf: Option<&mut LzfCompressor>,
) -> io::Result<()> {
    w.write_all(&[OPCODE_FUNCTION2])?;
    encode_string(w, code, lzf)
}

/// Writes an AUX field (`rdbSaveAuxField`); name and value are strings, so
/// they get the integer and LZF encodings too.
pub fn encode_aux<W: Write>(
    w: &mut W,
    name: &[u8],
    value: &[u8],
    mut lzf: Option<&mut LzfCompressor>,
) -> io::Result<()> {
    w.write_all(&[OPCODE_AUX])?;
    encode_string(w, name, lzf.as_deref_mut())?;
    encode_string(w, value, lzf)
}

/// Writes SELECTDB: the following records belong to `db`.
pub fn encode_select_db<W: Write>(w: &mut W, db: u32) -> io::Result<()> {
    w.write_all(&[OPCODE_SELECTDB])?;
    encode_len(w, u64::from(db))
}

/// Writes RESIZEDB: how many keys, and keys with an expire, the current db has.
pub fn encode_resize_db<W: Write>(w: &mut W, keys: u64, expires: u64) -> io::Result<()> {
    w.write_all(&[OPCODE_RESIZEDB])?;
    encode_len(w, keys)?;
    encode_len(w, expires)
}

/// A quicklist node as the writer takes it: borrowed from the caller's list,
/// written as is (`RDB_TYPE_LIST_QUICKLIST_2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuicklistNode<'a> {
    /// A `PACKED` node: the bytes of a listpack.
    Packed(&'a [u8]),
    /// A `PLAIN` node: one element.
    Plain(&'a [u8]),
}

/// An iterator that said `expected` items but gave another number: the
/// record's length prefix is wrong, so the file would be corrupt.
fn count_mismatch(expected: usize, got: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("container iterator announced {expected} items and gave {got}"),
    )
}

/// Writes an element of a listpack as an RDB string, its integer formatted
/// on the stack.
fn encode_elem<W: Write>(
    w: &mut W,
    e: Elem<'_>,
    lzf: Option<&mut LzfCompressor>,
) -> io::Result<()> {
    match e {
        Elem::Str(s) => encode_string(w, s, lzf),
        Elem::Int(v) => encode_string(w, IntBuf::new().format(i128::from(v)), lzf),
    }
}

/// Writes the body of a `LIST_QUICKLIST_2` value (`rdbSaveObject`): the node
/// count, then per node its container (1 plain, 2 packed) and its bytes as
/// one string (LZF-compressed like any string).
pub fn encode_quicklist2<'a, W: Write>(
    w: &mut W,
    nodes: impl ExactSizeIterator<Item = QuicklistNode<'a>>,
    mut lzf: Option<&mut LzfCompressor>,
) -> io::Result<()> {
    let expected = nodes.len();
    encode_len(w, expected as u64)?;
    let mut got = 0usize;
    for node in nodes {
        got += 1;
        if got > expected {
            return Err(count_mismatch(expected, got));
        }
        let (container, bytes) = match node {
            QuicklistNode::Packed(b) => (QUICKLIST_NODE_PACKED, b),
            QuicklistNode::Plain(b) => (QUICKLIST_NODE_PLAIN, b),
        };
        encode_len(w, container)?;
        encode_string(w, bytes, lzf.as_deref_mut())?;
    }
    if got != expected {
        return Err(count_mismatch(expected, got));
    }
    Ok(())
}

/// Writes the body of a `SET` value: the count, then each member.
pub fn encode_set<'a, W: Write>(
    w: &mut W,
    members: impl ExactSizeIterator<Item = &'a [u8]>,
    lzf: Option<&mut LzfCompressor>,
) -> io::Result<()> {
    encode_elems(w, members.map(Elem::Str), lzf)
}

fn encode_elems<'a, W: Write>(
    w: &mut W,
    members: impl ExactSizeIterator<Item = Elem<'a>>,
    mut lzf: Option<&mut LzfCompressor>,
) -> io::Result<()> {
    let expected = members.len();
    encode_len(w, expected as u64)?;
    let mut got = 0usize;
    for m in members {
        got += 1;
        if got > expected {
            return Err(count_mismatch(expected, got));
        }
        encode_elem(w, m, lzf.as_deref_mut())?;
    }
    if got != expected {
        return Err(count_mismatch(expected, got));
    }
    Ok(())
}

/// Writes the body of a `HASH` value: the count, then field and value of
/// each pair.
pub fn encode_hash<'a, W: Write>(
    w: &mut W,
    pairs: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    mut lzf: Option<&mut LzfCompressor>,
) -> io::Result<()> {
    let expected = pairs.len();
    encode_len(w, expected as u64)?;
    let mut got = 0usize;
    for (f, v) in pairs {
        got += 1;
        if got > expected {
            return Err(count_mismatch(expected, got));
        }
        encode_string(w, f, lzf.as_deref_mut())?;
        encode_string(w, v, lzf.as_deref_mut())?;
    }
    if got != expected {
        return Err(count_mismatch(expected, got));
    }
    Ok(())
}

/// Writes the body of a `ZSET_2` value: the count, then each member and its
/// score as a little-endian binary double (`rdbSaveBinaryDoubleValue`).
/// Redis 7.0 walks its skiplist from the tail (highest score) to the head,
/// so that loading inserts every element at the head in O(1); give the
/// members in that order to write the same bytes.
pub fn encode_zset2<'a, W: Write>(
    w: &mut W,
    members: impl ExactSizeIterator<Item = (&'a [u8], f64)>,
    mut lzf: Option<&mut LzfCompressor>,
) -> io::Result<()> {
    let expected = members.len();
    encode_len(w, expected as u64)?;
    let mut got = 0usize;
    for (m, score) in members {
        got += 1;
        if got > expected {
            return Err(count_mismatch(expected, got));
        }
        encode_string(w, m, lzf.as_deref_mut())?;
        w.write_all(&score.to_le_bytes())?;
    }
    if got != expected {
        return Err(count_mismatch(expected, got));
    }
    Ok(())
}

/// Redis 7.0's default `list-max-listpack-size` (-2): a node grows while its
/// listpack, plus the new element and an 8-byte estimate of its overhead,
/// stays within 8 KiB (`_quicklistNodeAllowInsert`).
const LIST_NODE_MAX_BYTES: usize = 8192;
const LIST_NODE_OVERHEAD_ESTIMATE: usize = 8;

/// Elements packed into listpack nodes as `RPUSH` into an empty list makes
/// them in Redis 7.0 with default settings. For [`Value`]s only (tests and
/// tools): it allocates.
fn pack_list(elements: &[bytes::Bytes]) -> io::Result<Vec<Listpack>> {
    let mut nodes: Vec<Listpack> = Vec::new();
    for e in elements {
        let fits = nodes.last().is_some_and(|lp| {
            lp.total_bytes() + e.len() + LIST_NODE_OVERHEAD_ESTIMATE <= LIST_NODE_MAX_BYTES
        });
        if !fits {
            nodes.push(Listpack::new());
        }
        if let Some(lp) = nodes.last_mut() {
            lp.append(&e[..])
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
        }
    }
    Ok(nodes)
}

/// Writes a value's body (what follows the key).
fn encode_value<W: Write>(
    w: &mut W,
    value: &Value,
    lzf: Option<&mut LzfCompressor>,
) -> io::Result<()> {
    match value {
        Value::String(s) => encode_string(w, s, lzf),
        Value::List(List::Quicklist(nodes)) => encode_quicklist2(
            w,
            nodes.iter().map(|n| match n {
                ListNode::Packed(lp) => QuicklistNode::Packed(lp.as_bytes()),
                ListNode::Plain(b) => QuicklistNode::Plain(b),
            }),
            lzf,
        ),
        Value::List(List::Elements(elements)) => {
            let nodes = pack_list(elements)?;
            encode_quicklist2(
                w,
                nodes.iter().map(|lp| QuicklistNode::Packed(lp.as_bytes())),
                lzf,
            )
        }
        Value::Set(Set::Intset(is)) => encode_string(w, is.as_bytes(), lzf),
        Value::Set(Set::Listpack(lp)) => {
            let n = lp.len();
            encode_elems(w, ExactLen(lp.iter(), n), lzf)
        }
        Value::Set(Set::Members(m)) => encode_set(w, m.iter().map(|b| &b[..]), lzf),
        Value::Hash(Hash::Listpack(lp)) => encode_string(w, lp.as_bytes(), lzf),
        Value::Hash(Hash::Pairs(p)) => encode_hash(w, p.iter().map(|(f, v)| (&f[..], &v[..])), lzf),
        Value::ZSet(ZSet::Listpack(lp)) => encode_string(w, lp.as_bytes(), lzf),
        Value::ZSet(ZSet::Members(m)) => encode_zset2(w, m.iter().map(|(k, s)| (&k[..], *s)), lzf),
    }
}

/// An iterator with a length known from elsewhere.
struct ExactLen<I>(I, usize);

impl<I: Iterator> Iterator for ExactLen<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let item = self.0.next()?;
        self.1 = self.1.saturating_sub(1);
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<I: Iterator> ExactSizeIterator for ExactLen<I> {}

/// Writes one key (`rdbSaveKeyValuePair`): `EXPIRETIME_MS <i64 LE>` when the
/// key has an absolute expire time in unix milliseconds, then the type byte,
/// the key and the value.
pub fn encode_record<W: Write>(
    w: &mut W,
    key: &[u8],
    value: &Value,
    expire_ms: Option<i64>,
    mut lzf: Option<&mut LzfCompressor>,
) -> io::Result<()> {
    encode_record_head(w, key, value.type_code(), expire_ms, lzf.as_deref_mut())?;
    encode_value(w, value, lzf)
}

/// [`encode_record`] for a string value the caller holds as a slice. A forked
/// child writes through this: building a [`Value`] would clone a `Bytes`, and
/// the reference count that clone updates lives in a page shared with the
/// parent, which the write would copy.
pub fn encode_string_record<W: Write>(
    w: &mut W,
    key: &[u8],
    value: &[u8],
    expire_ms: Option<i64>,
    mut lzf: Option<&mut LzfCompressor>,
) -> io::Result<()> {
    encode_record_head(w, key, TYPE_STRING, expire_ms, lzf.as_deref_mut())?;
    encode_string(w, value, lzf)
}

/// The part of a record before its value: optional expire, type byte, key.
/// Follow it with the body of a value of that type (`encode_string` of a
/// blob, [`encode_quicklist2`], [`encode_set`], [`encode_hash`],
/// [`encode_zset2`]).
pub fn encode_record_head<W: Write>(
    w: &mut W,
    key: &[u8],
    type_code: u8,
    expire_ms: Option<i64>,
    lzf: Option<&mut LzfCompressor>,
) -> io::Result<()> {
    if let Some(ms) = expire_ms {
        w.write_all(&[OPCODE_EXPIRETIME_MS])?;
        w.write_all(&ms.to_le_bytes())?;
    }
    w.write_all(&[type_code])?;
    encode_string(w, key, lzf)
}

/// Writes the EOF opcode.
pub fn encode_eof<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(&[OPCODE_EOF])
}

/// Writes the trailing checksum, little-endian (0 = "not computed").
pub fn encode_checksum<W: Write>(w: &mut W, crc: u64) -> io::Result<()> {
    w.write_all(&crc.to_le_bytes())
}

/// Writes a whole RDB file to `W`: header and AUX fields on creation, then
/// per db [`select_db`](Self::select_db) and [`record`](Self::record)s, then
/// [`finish`](Self::finish).
///
/// ```
/// use forkdb_snapshot::{AuxFields, RdbWriter, SaveOptions, Value};
/// let mut w = RdbWriter::new(Vec::new(), SaveOptions::default(), &AuxFields::new("7.0.15"))?;
/// w.select_db(0, 1, 0)?;
/// w.record(b"greeting", &Value::from("hello"), None)?;
/// let bytes: Vec<u8> = w.finish()?;
/// assert!(bytes.starts_with(b"REDIS0010"));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// The writer does not check that records follow a `select_db`, nor that the
/// counts given there are right: the counts are only a hint to the loader.
#[derive(Debug)]
pub struct RdbWriter<W: Write> {
    out: CrcWriter<W>,
    options: SaveOptions,
    lzf: Option<LzfCompressor>,
    /// LZF is off for now, though the options have it on (see [`RdbWriter::pause_compression`]).
    lzf_paused: bool,
    records: u64,
}

impl<W: Write> RdbWriter<W> {
    /// Writes the header and the standard AUX fields.
    pub fn new(inner: W, options: SaveOptions, aux: &AuxFields<'_>) -> io::Result<Self> {
        let mut w = RdbWriter {
            out: CrcWriter::new(inner),
            options,
            lzf: options.compression.then(LzfCompressor::new),
            lzf_paused: false,
            records: 0,
        };
        encode_header(&mut w.out)?;
        // Integers are formatted on the stack: no allocation in a forked child.
        let mut buf = IntBuf::new();
        w.aux(b"redis-ver", aux.redis_ver.as_bytes())?;
        w.aux(b"redis-bits", buf.format(i128::from(aux.redis_bits)))?;
        w.aux(b"ctime", buf.format(i128::from(aux.ctime)))?;
        w.aux(b"used-mem", buf.format(i128::from(aux.used_mem)))?;
        w.aux(b"aof-base", if aux.aof_base { b"1" } else { b"0" })?;
        Ok(w)
    }

    /// Writes another AUX field (Redis allows them anywhere; loaders skip the
    /// ones they do not know).
    pub fn aux(&mut self, name: &[u8], value: &[u8]) -> io::Result<()> {
        let (out, lzf) = self.parts();
        encode_aux(out, name, value, lzf)
    }

    /// Writes a function library; Redis writes them after the AUX fields and
    /// before the first db (`rdbSaveRio`), and so should the caller.
    pub fn function(&mut self, code: &[u8]) -> io::Result<()> {
        let (out, lzf) = self.parts();
        encode_function(out, code, lzf)
    }

    /// Starts db `db`, announcing its number of keys and of keys with an expire.
    pub fn select_db(&mut self, db: u32, keys: u64, expires: u64) -> io::Result<()> {
        encode_select_db(&mut self.out, db)?;
        encode_resize_db(&mut self.out, keys, expires)
    }

    /// Makes `db` the current db again, without the RESIZEDB hint: a loader takes SELECTDB
    /// anywhere, so a writer whose records come in no fixed db order (the forkless save, whose
    /// write path sends a key of any db as a change is about to reach it) goes back and forth.
    pub fn switch_db(&mut self, db: u32) -> io::Result<()> {
        encode_select_db(&mut self.out, db)
    }

    /// Writes one key of the current db; `expire_ms` is an absolute unix time
    /// in milliseconds.
    pub fn record(&mut self, key: &[u8], value: &Value, expire_ms: Option<i64>) -> io::Result<()> {
        let (out, lzf) = self.parts();
        encode_record(out, key, value, expire_ms, lzf)?;
        self.records += 1;
        Ok(())
    }

    /// Writes one string key without building a [`Value`] (see [`encode_string_record`]).
    pub fn record_string(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_ms: Option<i64>,
    ) -> io::Result<()> {
        let (out, lzf) = self.parts();
        encode_string_record(out, key, value, expire_ms, lzf)?;
        self.records += 1;
        Ok(())
    }

    /// Writes a list from its quicklist nodes, borrowed (`LIST_QUICKLIST_2`).
    pub fn record_list_quicklist2<'a>(
        &mut self,
        key: &[u8],
        nodes: impl ExactSizeIterator<Item = QuicklistNode<'a>>,
        expire_ms: Option<i64>,
    ) -> io::Result<()> {
        self.head(key, TYPE_LIST_QUICKLIST_2, expire_ms)?;
        let (out, lzf) = self.parts();
        encode_quicklist2(out, nodes, lzf)?;
        self.records += 1;
        Ok(())
    }

    /// Writes a hash held as a listpack of field, value, ... (`HASH_LISTPACK`).
    pub fn record_hash_listpack(
        &mut self,
        key: &[u8],
        listpack: &[u8],
        expire_ms: Option<i64>,
    ) -> io::Result<()> {
        self.record_blob(key, TYPE_HASH_LISTPACK, listpack, expire_ms)
    }

    /// Writes a sorted set held as a listpack of member, score, ...
    /// (`ZSET_LISTPACK`).
    pub fn record_zset_listpack(
        &mut self,
        key: &[u8],
        listpack: &[u8],
        expire_ms: Option<i64>,
    ) -> io::Result<()> {
        self.record_blob(key, TYPE_ZSET_LISTPACK, listpack, expire_ms)
    }

    /// Writes a set held as an intset (`SET_INTSET`).
    pub fn record_set_intset(
        &mut self,
        key: &[u8],
        intset: &[u8],
        expire_ms: Option<i64>,
    ) -> io::Result<()> {
        self.record_blob(key, TYPE_SET_INTSET, intset, expire_ms)
    }

    /// Writes a set from its members (`SET`).
    pub fn record_set<'a>(
        &mut self,
        key: &[u8],
        members: impl ExactSizeIterator<Item = &'a [u8]>,
        expire_ms: Option<i64>,
    ) -> io::Result<()> {
        self.head(key, TYPE_SET, expire_ms)?;
        let (out, lzf) = self.parts();
        encode_set(out, members, lzf)?;
        self.records += 1;
        Ok(())
    }

    /// Writes a hash from its (field, value) pairs (`HASH`).
    pub fn record_hash<'a>(
        &mut self,
        key: &[u8],
        pairs: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
        expire_ms: Option<i64>,
    ) -> io::Result<()> {
        self.head(key, TYPE_HASH, expire_ms)?;
        let (out, lzf) = self.parts();
        encode_hash(out, pairs, lzf)?;
        self.records += 1;
        Ok(())
    }

    /// Writes a sorted set from its (member, score) pairs (`ZSET_2`); Redis
    /// gives them from the highest score to the lowest (see [`encode_zset2`]).
    pub fn record_zset2<'a>(
        &mut self,
        key: &[u8],
        members: impl ExactSizeIterator<Item = (&'a [u8], f64)>,
        expire_ms: Option<i64>,
    ) -> io::Result<()> {
        self.head(key, TYPE_ZSET_2, expire_ms)?;
        let (out, lzf) = self.parts();
        encode_zset2(out, members, lzf)?;
        self.records += 1;
        Ok(())
    }

    fn head(&mut self, key: &[u8], type_code: u8, expire_ms: Option<i64>) -> io::Result<()> {
        let (out, lzf) = self.parts();
        encode_record_head(out, key, type_code, expire_ms, lzf)
    }

    /// A value that is one blob, written as a string (`rdbSaveRawString`:
    /// LZF when compression is on and it is longer than 20 bytes).
    fn record_blob(
        &mut self,
        key: &[u8],
        type_code: u8,
        blob: &[u8],
        expire_ms: Option<i64>,
    ) -> io::Result<()> {
        self.head(key, type_code, expire_ms)?;
        let (out, lzf) = self.parts();
        encode_string(out, blob, lzf)?;
        self.records += 1;
        Ok(())
    }

    /// Stores what is written next raw (`true`), or compresses it again as the options say
    /// (`false`). The format decides raw or LZF per string, and Redis itself stores raw every
    /// string LZF does not shrink, so a file with some strings raw that could have been
    /// compressed holds the same data and loads the same everywhere; it is only larger. For a
    /// writer that has fallen behind its producer (the forkless save's writer thread), where
    /// LZF is the slowest step.
    pub fn pause_compression(&mut self, paused: bool) {
        self.lzf_paused = paused;
    }

    /// The output, and the compressor for the next string if it is to be compressed.
    fn parts(&mut self) -> (&mut CrcWriter<W>, Option<&mut LzfCompressor>) {
        let lzf = if self.lzf_paused {
            None
        } else {
            self.lzf.as_mut()
        };
        (&mut self.out, lzf)
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.out.bytes_written()
    }

    /// Writes EOF and the checksum (or 8 zero bytes), flushes, and returns the
    /// inner writer. Syncing it to disk is the caller's business.
    pub fn finish(mut self) -> io::Result<W> {
        encode_eof(&mut self.out)?;
        let crc = if self.options.checksum {
            self.out.crc()
        } else {
            0
        };
        encode_checksum(&mut self.out, crc)?;
        self.out.flush()?;
        Ok(self.out.into_inner())
    }
}

/// Decimal formatting into a stack buffer.
struct IntBuf {
    buf: [u8; 40],
}

impl IntBuf {
    fn new() -> Self {
        IntBuf { buf: [0; 40] }
    }

    fn format(&mut self, v: i128) -> &[u8] {
        // 40 bytes hold any i128 (39 digits + sign is 40, i64/u64 need 20).
        let mut pos = self.buf.len();
        let mut n = v.unsigned_abs();
        loop {
            pos -= 1;
            self.buf[pos] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if v < 0 {
            pos -= 1;
            self.buf[pos] = b'-';
        }
        &self.buf[pos..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string_bytes(s: &[u8], compress: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut lzf = LzfCompressor::new();
        encode_string(&mut out, s, compress.then_some(&mut lzf)).unwrap();
        out
    }

    fn len_bytes(len: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_len(&mut out, len).unwrap();
        out
    }

    #[test]
    fn paused_compression_stores_raw_and_loads_the_same_data() {
        let compressible: Vec<u8> = b"forkdb ".repeat(200);
        // One ctime for every file, so that whole files compare.
        let aux = AuxFields::new("7.0.15");
        let records = |pause_from: usize| -> Vec<u8> {
            let mut w = RdbWriter::new(Vec::new(), SaveOptions::default(), &aux).unwrap();
            w.select_db(0, 4, 0).unwrap();
            for i in 0..4usize {
                w.pause_compression(i >= pause_from);
                w.record_string(format!("k{i}").as_bytes(), &compressible, None)
                    .unwrap();
            }
            w.finish().unwrap()
        };
        let compressed = records(4);
        let half = records(2);
        let raw = records(0);
        // Each raw record carries the whole value where LZF made it a few dozen bytes.
        let step = compressible.len() - 60;
        assert!(half.len() > compressed.len() + 2 * step, "{}", half.len());
        assert!(raw.len() > half.len() + 2 * step, "{}", raw.len());
        // Raw from the start is exactly what a writer with compression off writes (whose bytes
        // the tests compare with Redis's `rdbcompression no` files).
        let mut off = RdbWriter::new(
            Vec::new(),
            SaveOptions {
                compression: false,
                checksum: true,
            },
            &aux,
        )
        .unwrap();
        off.select_db(0, 4, 0).unwrap();
        for i in 0..4usize {
            off.record_string(format!("k{i}").as_bytes(), &compressible, None)
                .unwrap();
        }
        assert_eq!(raw, off.finish().unwrap());
        for file in [&compressed, &half, &raw] {
            let mut n = 0;
            crate::load(&file[..], |r| {
                assert_eq!(r.value, Value::from(compressible.clone()));
                n += 1;
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap();
            assert_eq!(n, 4);
        }
    }

    #[test]
    fn lengths_use_the_shortest_form() {
        assert_eq!(len_bytes(0), [0x00]);
        assert_eq!(len_bytes(63), [0x3f]);
        assert_eq!(len_bytes(64), [0x40, 0x40]);
        assert_eq!(len_bytes(16383), [0x7f, 0xff]);
        assert_eq!(len_bytes(16384), [0x80, 0, 0, 0x40, 0]);
        assert_eq!(len_bytes(u32::MAX.into()), [0x80, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(len_bytes(1 << 32), [0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn integers_follow_string2ll_and_the_32_bit_range() {
        assert_eq!(string_bytes(b"0", false), [0xc0, 0x00]);
        assert_eq!(string_bytes(b"1", false), [0xc0, 0x01]);
        assert_eq!(string_bytes(b"-128", false), [0xc0, 0x80]);
        assert_eq!(string_bytes(b"128", false), [0xc1, 0x80, 0x00]);
        assert_eq!(string_bytes(b"-32768", false), [0xc1, 0x00, 0x80]);
        assert_eq!(string_bytes(b"32768", false), [0xc2, 0x00, 0x80, 0, 0]);
        assert_eq!(
            string_bytes(b"-2147483648", false),
            [0xc2, 0x00, 0x00, 0x00, 0x80]
        );
        // Not canonical, or too big: raw.
        for raw in [
            &b"2147483648"[..],
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"-",
            b"",
            b"1.0",
            b"00000000001",
        ] {
            let mut expected = vec![raw.len() as u8];
            expected.extend_from_slice(raw);
            assert_eq!(string_bytes(raw, false), expected, "{raw:?}");
        }
    }

    #[test]
    fn lzf_only_above_20_bytes_and_when_it_saves_4() {
        // 20 bytes: never compressed.
        assert_eq!(string_bytes(&[b'a'; 20], true)[0], 20);
        // 21 repeated bytes: compressed.
        assert_eq!(string_bytes(&[b'a'; 21], true)[0], 0xc3);
        // Compression off: raw.
        assert_eq!(string_bytes(&[b'a'; 21], false)[0], 21);
        // Exactly Redis's bytes for 21 x 'a'.
        assert_eq!(
            string_bytes(&[b'a'; 21], true),
            [0xc3, 0x06, 0x15, 0x01, 0x61, 0x61, 0xe0, 0x0a, 0x00]
        );
        // Incompressible: raw.
        let noise: Vec<u8> = (0..100u32).map(|i| (i * 97 + 13) as u8).collect();
        assert_eq!(string_bytes(&noise, true)[..2], [0x40, 100]);
    }

    /// Items cut out of `tests/data/redis-7.0-strings.rdb` (redis-server 7.0.15).
    #[test]
    fn small_items_match_redis_bytes() {
        let mut lzf = LzfCompressor::new();
        let mut out = Vec::new();
        encode_header(&mut out).unwrap();
        assert_eq!(out, b"REDIS0010");
        assert_eq!(format!("REDIS{RDB_VERSION:04}").as_bytes(), out);

        out.clear();
        encode_aux(&mut out, b"redis-bits", b"64", Some(&mut lzf)).unwrap();
        assert_eq!(out, b"\xfa\x0aredis-bits\xc0\x40");

        out.clear();
        encode_select_db(&mut out, 0).unwrap();
        encode_resize_db(&mut out, 31, 2).unwrap();
        assert_eq!(out, [0xfe, 0x00, 0xfb, 0x1f, 0x02]);

        out.clear();
        let ttl1 = Value::from("x");
        encode_record(
            &mut out,
            b"ttl1",
            &ttl1,
            Some(4102444800123),
            Some(&mut lzf),
        )
        .unwrap();
        assert_eq!(
            out,
            b"\xfc\x7b\xd8\xc3\x2c\xbb\x03\x00\x00\x00\x04ttl1\x01x"
        );

        out.clear();
        let v = Value::from("integer key");
        encode_record(&mut out, b"12345", &v, None, Some(&mut lzf)).unwrap();
        assert_eq!(out, b"\x00\xc1\x39\x30\x0binteger key");

        out.clear();
        let v = Value::from("v");
        let key = format!("lzf-key-{}", "k".repeat(30));
        encode_record(&mut out, key.as_bytes(), &v, None, Some(&mut lzf)).unwrap();
        assert_eq!(out, b"\x00\xc3\x10\x26\x08lzf-key-k\xe0\x12\x00\x01kk\x01v");

        out.clear();
        encode_eof(&mut out).unwrap();
        encode_checksum(&mut out, 0x0102030405060708).unwrap();
        assert_eq!(out, [0xff, 8, 7, 6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn int_buf_formats_extremes() {
        let mut b = IntBuf::new();
        assert_eq!(b.format(0), b"0");
        assert_eq!(b.format(-7), b"-7");
        assert_eq!(b.format(i64::MIN.into()), b"-9223372036854775808");
        assert_eq!(b.format(u64::MAX.into()), b"18446744073709551615");
        assert_eq!(
            b.format(i128::MIN),
            b"-170141183460469231731687303715884105728"
        );
    }
}
