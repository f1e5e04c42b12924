//! Hashes: the value type behind `Value::Hash`, with Redis 7.0's two encodings.
//!
//! ```text
//! Hash ─ Listpack(Listpack)   field, value, field, value ... in one allocation, byte-identical
//!      │                      to Redis's (OBJECT ENCODING "listpack"); RDB HASH_LISTPACK as is
//!      └ Table(Box<Table>)    past a threshold, once and never back ("hashtable"):
//!          pairs: Vec<Pair>       dense; Pair = one exact-size allocation [varint flen][field][value]
//!          index: HashTable<u32>  hashbrown table of positions in `pairs` (4 bytes + 1 control byte)
//! ```
//!
//! The conversion rules are Redis 7.0's `t_hash.c`: a hash stays a listpack while it has at most
//! `hash-max-listpack-entries` fields and no field or value longer than `hash-max-listpack-value`
//! bytes; [`Hash::try_conversion`] (Redis's `hashTypeTryConversion`, over a command's arguments
//! before any change) and [`Hash::set`] (`hashTypeSet`: a long field or value before, too many
//! fields after) convert it. Nothing converts a table back, as in Redis.
//!
//! # Why this table layout
//!
//! Memory: a field costs its pair allocation (field and value together: one malloc chunk, not
//! two), 16 bytes in `pairs` and about 5/0.875 bytes of index: for short fields that is less
//! than Redis's dictEntry plus two sds strings plus a bucket pointer. No hash is stored per
//! entry; a resize recomputes them from the fields (foldhash, seeded per table).
//!
//! Copy-on-write during a snapshot: a listpack's first change during a fork save goes to a copy
//! that the old buffer and the handle never see (`types::forward`). In a table, updating a value
//! of the same length rewrites it inside its pair (one page); otherwise one new pair replaces
//! the old. An insert or delete touches the end of `pairs`, one index slot and one pair. The
//! index only rehashes when it grows (doubling) or shrinks after many deletes; unlike Redis's
//! incremental rehash, which it defers while a child lives, that rewrites the whole index at
//! once: a table that grows under a snapshot copies its index (5 bytes per slot), not its pairs.
//!
//! Random access and a stable cursor come from the dense vector, as in the keyspace (see
//! `store.rs`): HRANDFIELD picks positions uniformly, HSCAN walks positions downwards, and a
//! delete moves only the *last* pair into the hole, so a pair not yet visited stays below the
//! cursor (a moved one may be returned twice, which SCAN allows).
//!
//! # For the RDB writer and loader
//!
//! [`Hash::as_listpack`] lends the listpack bytes (`RDB_TYPE_HASH_LISTPACK`, written as is);
//! otherwise [`Hash::pairs`] lends (field, value) pairs in table order (`RDB_TYPE_HASH`: length,
//! then field and value strings). [`Hash::from_listpack`] adopts a validated listpack, and
//! [`Hash::from_pairs`] builds from loaded pairs; both pick the encoding by the thresholds and
//! refuse a duplicated field, as Redis's loader does.
//!
//! What this module may touch: its own value only (see `types/mod.rs`).

use std::hash::BuildHasher;

use forkdb_snapshot::blob::{Elem, Listpack};
use hashbrown::HashTable;

use super::forward::Fwd;

/// The thresholds of the listpack encoding (`hash-max-listpack-entries`/`-value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Limits {
    pub fn new(max_entries: u64, max_value: u64) -> Limits {
        Limits {
            max_entries: usize::try_from(max_entries).unwrap_or(usize::MAX),
            max_value: usize::try_from(max_value).unwrap_or(usize::MAX),
        }
    }
}

/// Why content from outside (an RDB file, RESTORE) cannot be a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("hash listpack has an odd number of entries ({0})")]
    OddEntries(usize),
    #[error("hash has a duplicated field")]
    DuplicateField,
    /// Redis's loader skips such a key (`emptykey`) rather than failing the load.
    #[error("hash is empty")]
    Empty,
    #[error("hash has more than {} fields", u32::MAX)]
    TooLarge,
}

/// A field or value as held: a listpack keeps canonical integers as integers.
pub type Item<'a> = Elem<'a>;

/// A hash (see the module docs).
#[derive(Debug, Clone)]
pub struct Hash(Repr);

#[derive(Debug, Clone)]
enum Repr {
    /// Forwarded to a copy on its first change during a fork save (`types::forward`).
    Listpack(Fwd<Listpack>),
    Table(Box<Table>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::new()
    }
}

/// Largest field count a table holds (positions are `u32`, to keep the index small). At the
/// smallest pair size that is well over 100 GiB of fields.
const MAX_TABLE_LEN: usize = u32::MAX as usize;

impl Hash {
    /// An empty hash, listpack-encoded (`createHashObject`). The keyspace never keeps one empty.
    pub fn new() -> Hash {
        Hash(Repr::Listpack(Fwd::new(Listpack::new())))
    }

    /// Fields held.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Listpack(lp) => lp.get().len() / 2,
            Repr::Table(t) => t.pairs.len(),
        }
    }

    /// True when empty (the keyspace never keeps an empty container: Redis deletes the key).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoding OBJECT ENCODING reports, Redis 7.0's name.
    pub fn encoding_name(&self) -> &'static str {
        match &self.0 {
            Repr::Listpack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Bytes this value holds on the heap (for memory estimates).
    pub fn heap_size(&self) -> usize {
        match &self.0 {
            Repr::Listpack(lp) => lp.get().capacity(),
            Repr::Table(t) => t.heap_size(),
        }
    }

    /// The listpack bytes, for `RDB_TYPE_HASH_LISTPACK`; None for a table.
    pub fn as_listpack(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::Listpack(lp) => Some(lp.get().as_bytes()),
            Repr::Table(_) => None,
        }
    }

    /// After a fork save: a listpack forwarded during it takes its copy back (`types::forward`).
    pub fn heal(&mut self) {
        if let Repr::Listpack(lp) = &mut self.0 {
            lp.heal();
        }
    }

    /// Converts to the table encoding (`hashTypeConvert`); nothing if it is one already.
    pub fn convert(&mut self) {
        if let Repr::Listpack(lp) = &self.0 {
            let lp = lp.get();
            let mut t = Table::with_capacity(lp.len() / 2);
            let mut it = lp.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                // A listpack built here has no duplicated field; from_listpack checked others.
                let _ = t.insert_new(&f.to_vec(), &v.to_vec());
            }
            self.0 = Repr::Table(Box::new(t));
        }
    }

    /// Redis's `hashTypeTryConversion` over the arguments a command will store: converts when
    /// any is longer than `max_value`, or when the listpack could pass its safe size with them.
    pub fn try_conversion<'a>(&mut self, args: impl IntoIterator<Item = &'a [u8]>, lim: Limits) {
        let Repr::Listpack(lp) = &self.0 else {
            return;
        };
        let lp = lp.get();
        let mut sum = 0usize;
        for a in args {
            if a.len() > lim.max_value {
                return self.convert();
            }
            sum = sum.saturating_add(a.len());
        }
        if !lp.safe_to_add(sum) {
            self.convert();
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<Item<'_>> {
        match &self.0 {
            Repr::Listpack(lp) => {
                let lp = lp.get();
                let f = lp.find(lp.first()?, field, 1)?;
                Some(lp.get(lp.next(f)?))
            }
            Repr::Table(t) => t.get(field).map(|p| Elem::Str(p.value())),
        }
    }

    /// Does `field` exist?
    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` to `value` (`hashTypeSet`): true if the field is new. Converts to a table
    /// first when either is longer than the value limit, after when there are too many fields.
    /// Fails only when a table already holds [`MAX_TABLE_LEN`] fields.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: Limits) -> Result<bool, LoadError> {
        if field.len() > lim.max_value || value.len() > lim.max_value {
            self.convert();
        }
        let inserted = match &mut self.0 {
            Repr::Listpack(lp) => match lp.change(|lp| lp_set(lp, field, value)) {
                Some(new) => new,
                None => {
                    // Past the listpack format's limits: only a table can take it.
                    self.convert();
                    return self.set(field, value, lim);
                }
            },
            Repr::Table(t) => t.set(field, value)?,
        };
        if self.len() > lim.max_entries {
            self.convert();
        }
        Ok(inserted)
    }

    /// Deletes `field`; true if it existed.
    pub fn delete(&mut self, field: &[u8]) -> bool {
        match &mut self.0 {
            Repr::Listpack(lp) => {
                let found = lp.get().first().and_then(|f| lp.get().find(f, field, 1));
                match found {
                    Some(p) => {
                        // A forwarded copy has the same bytes, so `p` holds there too.
                        lp.change(|lp| lp.delete_range_at(p, 2));
                        true
                    }
                    None => false,
                }
            }
            Repr::Table(t) => t.delete(field),
        }
    }

    /// Every (field, value), in Redis's order for a listpack and table order for a table.
    pub fn pairs(&self) -> Pairs<'_> {
        match &self.0 {
            Repr::Listpack(lp) => Pairs::Listpack(lp.get().iter()),
            Repr::Table(t) => Pairs::Table(t.pairs.iter()),
        }
    }

    /// The (field, value) pairs of a table, by reference, for the RDB writer's `HASH` record
    /// (its length goes first, so the iterator knows it); None for a listpack, which the writer
    /// takes whole from [`Hash::as_listpack`].
    pub fn table_pairs(&self) -> Option<impl ExactSizeIterator<Item = (&[u8], &[u8])>> {
        match &self.0 {
            Repr::Listpack(_) => None,
            Repr::Table(t) => Some(t.pairs.iter().map(|p| (p.field(), p.value()))),
        }
    }

    /// The pair at position `i` of [`Hash::pairs`] (for random picks), None past the end. O(1)
    /// for a table; a walk for a listpack, which is small.
    pub fn pair_at(&self, i: usize) -> Option<(Item<'_>, Item<'_>)> {
        match &self.0 {
            Repr::Listpack(lp) => {
                let lp = lp.get();
                let f = lp.seek(i64::try_from(i.checked_mul(2)?).ok()?)?;
                Some((lp.get(f), lp.get(lp.next(f)?)))
            }
            Repr::Table(t) => t
                .pairs
                .get(i)
                .map(|p| (Elem::Str(p.field()), Elem::Str(p.value()))),
        }
    }

    /// One step of HSCAN: (next cursor, pairs). A listpack answers whole with cursor 0, as
    /// Redis does; a table walks positions downwards from `cursor` (0 starts at the end), `count`
    /// pairs per call (see the module docs for why this cursor is stable).
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<(Item<'_>, Item<'_>)>) {
        match &self.0 {
            Repr::Listpack(_) => (0, self.pairs().collect()),
            Repr::Table(t) => {
                let len = t.pairs.len() as u64;
                let mut upper = if cursor == 0 || cursor > len {
                    len
                } else {
                    cursor
                };
                let mut out = Vec::with_capacity(count.min(t.pairs.len()));
                while upper > 0 && out.len() < count {
                    upper -= 1;
                    if let Some(p) = t.pairs.get(upper as usize) {
                        out.push((Elem::Str(p.field()), Elem::Str(p.value())));
                    }
                }
                (upper, out)
            }
        }
    }

    /// Adopts a listpack read from outside (already validated as a listpack): its entries must
    /// be field/value pairs with no field twice. Converted to a table when past `lim`, as Redis's
    /// loader does.
    pub fn from_listpack(lp: Listpack, lim: Limits) -> Result<Hash, LoadError> {
        let n = lp.len();
        if !n.is_multiple_of(2) {
            return Err(LoadError::OddEntries(n));
        }
        if n == 0 {
            return Err(LoadError::Empty);
        }
        let mut fields: Vec<Vec<u8>> = Vec::with_capacity(n / 2);
        let mut too_long = false;
        for (i, e) in lp.iter().enumerate() {
            let bytes = e.to_vec();
            too_long |= bytes.len() > lim.max_value;
            if i % 2 == 0 {
                fields.push(bytes);
            }
        }
        let seed = foldhash::fast::RandomState::default();
        let mut seen = HashTable::<&[u8]>::with_capacity(n / 2);
        for f in &fields {
            let h = seed.hash_one(&f[..]);
            if seen.find(h, |x| *x == &f[..]).is_some() {
                return Err(LoadError::DuplicateField);
            }
            seen.insert_unique(h, &f[..], |x| seed.hash_one(*x));
        }
        let mut h = Hash(Repr::Listpack(Fwd::new(lp)));
        if too_long || h.len() > lim.max_entries {
            h.convert();
        }
        Ok(h)
    }

    /// Builds a hash from loaded (field, value) pairs (`RDB_TYPE_HASH`): a listpack while within
    /// `lim`, else a table. A duplicated field is refused.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        lim: Limits,
    ) -> Result<Hash, LoadError> {
        let mut h = Hash::new();
        for (f, v) in pairs {
            h.try_conversion([f, v], lim);
            if !h.set(f, v, lim)? {
                return Err(LoadError::DuplicateField);
            }
        }
        if h.is_empty() {
            return Err(LoadError::Empty);
        }
        Ok(h)
    }
}

/// Sets a field in a listpack as `hashTypeSet` does (replace the value in place, or append the
/// pair at the tail). None when the listpack format cannot take it.
fn lp_set(lp: &mut Listpack, field: &[u8], value: &[u8]) -> Option<bool> {
    if let Some(f) = lp.first().and_then(|first| lp.find(first, field, 1)) {
        let v = lp.next(f)?;
        lp.replace(v, value).ok()?;
        return Some(false);
    }
    lp.append(field).ok()?;
    if lp.append(value).is_err() {
        // Take the field back out, so the listpack stays pairs.
        let last = lp.last()?;
        lp.delete(last);
        return None;
    }
    Some(true)
}

/// Iterator over a hash's (field, value) pairs.
pub enum Pairs<'a> {
    Listpack(forkdb_snapshot::blob::listpack::Iter<'a>),
    Table(std::slice::Iter<'a, Pair>),
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (Item<'a>, Item<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Pairs::Listpack(it) => Some((it.next()?, it.next()?)),
            Pairs::Table(it) => it
                .next()
                .map(|p| (Elem::Str(p.field()), Elem::Str(p.value()))),
        }
    }
}

/// A field and its value in one exact-size allocation: `[field length, LEB128][field][value]`.
/// One malloc chunk per field instead of two, and a value update of the same length is a write
/// inside it.
#[derive(Clone)]
pub struct Pair(Box<[u8]>);

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Pair")
            .field(&String::from_utf8_lossy(self.field()))
            .field(&String::from_utf8_lossy(self.value()))
            .finish()
    }
}

impl Pair {
    fn new(field: &[u8], value: &[u8]) -> Pair {
        let mut head = [0u8; 10];
        let n = leb128(field.len(), &mut head);
        let mut v = Vec::with_capacity(n + field.len() + value.len());
        v.extend_from_slice(&head[..n]);
        v.extend_from_slice(field);
        v.extend_from_slice(value);
        Pair(v.into_boxed_slice())
    }

    /// (start of the field, start of the value).
    fn bounds(&self) -> (usize, usize) {
        let (mut len, mut shift, mut i) = (0usize, 0u32, 0usize);
        // Written by `new` only, so the varint is well formed and in bounds.
        while let Some(&b) = self.0.get(i) {
            len |= usize::from(b & 0x7f) << shift;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        (i, (i + len).min(self.0.len()))
    }

    pub fn field(&self) -> &[u8] {
        let (f, v) = self.bounds();
        &self.0[f..v]
    }

    pub fn value(&self) -> &[u8] {
        let (_, v) = self.bounds();
        &self.0[v..]
    }

    /// Replaces the value, in place when it has the old one's length.
    fn set_value(&mut self, value: &[u8]) {
        let (_, v) = self.bounds();
        if self.0.len() - v == value.len() {
            self.0[v..].copy_from_slice(value);
        } else {
            *self = Pair::new(self.field(), value);
        }
    }
}

/// Writes `n` as LEB128 into `out`, returning the bytes used.
fn leb128(mut n: usize, out: &mut [u8; 10]) -> usize {
    let mut i = 0;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out[i] = b;
            return i + 1;
        }
        out[i] = b | 0x80;
        i += 1;
    }
}

/// The hash table encoding (see the module docs).
#[derive(Clone)]
struct Table {
    pairs: Vec<Pair>,
    /// Positions in `pairs`, hashed by field.
    index: HashTable<u32>,
    /// foldhash, seeded at random per table: fast, and a field set chosen offline cannot
    /// collide on purpose. It is not a keyed PRF like the SipHash Redis's dict uses, so its
    /// resistance to an attacker who probes timings is weaker; the cost would be slower
    /// lookups, never wrong answers.
    seed: foldhash::fast::RandomState,
    /// Sum of the pairs' sizes, kept so that the heap size is O(1) (MEMORY USAGE, eviction).
    pair_bytes: usize,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.pairs).finish()
    }
}

impl Table {
    fn with_capacity(n: usize) -> Table {
        Table {
            pairs: Vec::with_capacity(n),
            index: HashTable::with_capacity(n),
            seed: foldhash::fast::RandomState::default(),
            pair_bytes: 0,
        }
    }

    fn heap_size(&self) -> usize {
        self.pair_bytes
            + self.pairs.capacity() * std::mem::size_of::<Pair>()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
    }

    fn position(&self, field: &[u8]) -> Option<usize> {
        let h = self.seed.hash_one(field);
        let pairs = &self.pairs;
        self.index
            .find(h, |&i| pairs[i as usize].field() == field)
            .map(|&i| i as usize)
    }

    fn get(&self, field: &[u8]) -> Option<&Pair> {
        self.position(field).map(|i| &self.pairs[i])
    }

    /// Adds a field known to be absent.
    fn insert_new(&mut self, field: &[u8], value: &[u8]) -> Result<(), LoadError> {
        if self.pairs.len() >= MAX_TABLE_LEN {
            return Err(LoadError::TooLarge);
        }
        let h = self.seed.hash_one(field);
        let (pairs, seed) = (&self.pairs, &self.seed);
        self.index.insert_unique(h, pairs.len() as u32, |&i| {
            seed.hash_one(pairs[i as usize].field())
        });
        let pair = Pair::new(field, value);
        self.pair_bytes += pair.0.len();
        self.pairs.push(pair);
        Ok(())
    }

    fn set(&mut self, field: &[u8], value: &[u8]) -> Result<bool, LoadError> {
        match self.position(field) {
            Some(i) => {
                let pair = &mut self.pairs[i];
                self.pair_bytes -= pair.0.len();
                pair.set_value(value);
                self.pair_bytes += pair.0.len();
                Ok(false)
            }
            None => self.insert_new(field, value).map(|()| true),
        }
    }

    fn delete(&mut self, field: &[u8]) -> bool {
        let h = self.seed.hash_one(field);
        let pairs = &self.pairs;
        let Ok(entry) = self
            .index
            .find_entry(h, |&i| pairs[i as usize].field() == field)
        else {
            return false;
        };
        let (i, _) = entry.remove();
        let i = i as usize;
        let last = self.pairs.len() - 1;
        let gone = self.pairs.swap_remove(i);
        self.pair_bytes -= gone.0.len();
        if i != last {
            // The last pair moved into the hole: its index slot follows it.
            let moved = self.seed.hash_one(self.pairs[i].field());
            if let Some(slot) = self.index.find_mut(moved, |&j| j as usize == last) {
                *slot = i as u32;
            }
        }
        // Give memory back when most of it is unused, as Redis resizes a dict after deletes.
        let len = self.pairs.len();
        if len > 64 && len * 8 < self.index.capacity() {
            let (pairs, seed) = (&self.pairs, &self.seed);
            self.index
                .shrink_to(len * 2, |&i| seed.hash_one(pairs[i as usize].field()));
            self.pairs.shrink_to(len * 2);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIM: Limits = Limits {
        max_entries: 4,
        max_value: 8,
    };

    fn text(e: Item<'_>) -> Vec<u8> {
        e.to_vec()
    }

    fn all(h: &Hash) -> Vec<(Vec<u8>, Vec<u8>)> {
        h.pairs().map(|(f, v)| (text(f), text(v))).collect()
    }

    #[test]
    fn stays_listpack_within_limits_and_matches_redis_bytes() {
        let mut h = Hash::new();
        assert!(h.set(b"a", b"1", LIM).unwrap());
        assert!(h.set(b"b", b"xy", LIM).unwrap());
        assert!(!h.set(b"a", b"22", LIM).unwrap());
        assert_eq!(h.encoding_name(), "listpack");
        assert_eq!(h.len(), 2);
        assert_eq!(h.get(b"a"), Some(Elem::Int(22)));
        assert_eq!(h.get(b"b"), Some(Elem::Str(b"xy")));
        // The same bytes lpAppend/lpReplace build: header, "a", 22, "b", "xy", EOF.
        let mut lp = Listpack::new();
        for e in [&b"a"[..], b"22", b"b", b"xy"] {
            lp.append(e).unwrap();
        }
        assert_eq!(h.as_listpack(), Some(lp.as_bytes()));
    }

    #[test]
    fn converts_past_entry_count_once() {
        let mut h = Hash::new();
        for i in 0..4 {
            h.set(format!("f{i}").as_bytes(), b"v", LIM).unwrap();
        }
        assert_eq!(h.encoding_name(), "listpack");
        h.set(b"f4", b"v", LIM).unwrap();
        assert_eq!(h.encoding_name(), "hashtable");
        assert_eq!(h.len(), 5);
        for i in 0..5 {
            assert!(h.delete(format!("f{i}").as_bytes()));
        }
        assert!(h.is_empty());
        h.set(b"x", b"y", LIM).unwrap();
        assert_eq!(h.encoding_name(), "hashtable", "never converted back");
    }

    #[test]
    fn converts_on_long_field_or_value() {
        let mut h = Hash::new();
        h.set(b"f", b"12345678", LIM).unwrap();
        assert_eq!(h.encoding_name(), "listpack");
        h.set(b"f", b"123456789", LIM).unwrap();
        assert_eq!(h.encoding_name(), "hashtable");
        let mut h = Hash::new();
        h.set(b"123456789", b"v", LIM).unwrap();
        assert_eq!(h.encoding_name(), "hashtable");
        let mut h = Hash::new();
        h.set(b"f", b"v", LIM).unwrap();
        h.try_conversion([&b"g"[..], b"123456789"], LIM);
        assert_eq!(h.encoding_name(), "hashtable");
        assert_eq!(all(&h), vec![(b"f".to_vec(), b"v".to_vec())]);
    }

    #[test]
    fn table_set_get_delete_keep_index_consistent() {
        let lim = Limits {
            max_entries: 0,
            max_value: 64,
        };
        let mut h = Hash::new();
        for i in 0..1000 {
            assert!(h
                .set(format!("f{i}").as_bytes(), format!("v{i}").as_bytes(), lim)
                .unwrap());
        }
        assert_eq!(h.encoding_name(), "hashtable");
        for i in (0..1000).step_by(3) {
            assert!(h.delete(format!("f{i}").as_bytes()));
            assert!(!h.delete(format!("f{i}").as_bytes()));
        }
        for i in 0..1000 {
            let want = (i % 3 != 0).then(|| format!("v{i}").into_bytes());
            assert_eq!(h.get(format!("f{i}").as_bytes()).map(text), want, "f{i}");
        }
        // Same length: in place; other length: a new pair.
        assert!(!h.set(b"f1", b"V1", lim).unwrap());
        assert!(!h.set(b"f2", b"a longer value", lim).unwrap());
        assert_eq!(h.get(b"f1"), Some(Elem::Str(b"V1")));
        assert_eq!(h.get(b"f2"), Some(Elem::Str(b"a longer value")));
        assert_eq!(h.len(), 666);
        let Repr::Table(t) = &h.0 else {
            panic!("a table")
        };
        let sum: usize = t.pairs.iter().map(|p| p.0.len()).sum();
        assert_eq!(t.pair_bytes, sum, "kept size");
        // Deleting down to a few shrinks and still finds everything.
        for i in 0..990 {
            h.delete(format!("f{i}").as_bytes());
        }
        assert_eq!(h.len(), 6);
        for i in 990..1000 {
            assert_eq!(h.contains(format!("f{i}").as_bytes()), i % 3 != 0);
        }
    }

    /// The handle's own buffer (address, bytes) and whether it is forwarded.
    fn own(h: &Hash) -> (usize, Vec<u8>, bool) {
        match &h.0 {
            Repr::Listpack(lp) => (
                lp.own().as_bytes().as_ptr() as usize,
                lp.own().as_bytes().to_vec(),
                lp.is_forwarded(),
            ),
            Repr::Table(_) => panic!("not a listpack"),
        }
    }

    #[test]
    fn a_listpack_is_forwarded_once_per_fork_save_leaving_its_handle_alone() {
        use crate::types::{fork_save_ended, fork_save_started, set_forward_budget};
        use crate::types::{forward, kept_bytes};
        let lim = Limits::new(128, 64);
        let mut h = Hash::new();
        for j in 0..10 {
            h.set(format!("f{j}").as_bytes(), b"0123456789abcdef", lim)
                .unwrap();
        }
        let mut other = h.clone();
        let (at0, bytes0, _) = own(&h);
        let cap0 = h.heap_size();
        fork_save_started(1_000_000);
        set_forward_budget(1 << 20, true);
        // Reads, and a delete of a missing field, change nothing and copy nothing.
        assert!(!h.delete(b"absent"));
        assert_eq!(h.get(b"f1"), Some(Elem::Str(b"0123456789abcdef")));
        assert_eq!(own(&h), (at0, bytes0.clone(), false));
        // The first change goes to a copy: the handle and its buffer stay as at the fork.
        h.set(b"f1", b"fedcba9876543210", lim).unwrap();
        assert_eq!(own(&h), (at0, bytes0.clone(), true));
        assert_eq!(h.get(b"f1"), Some(Elem::Str(b"fedcba9876543210")));
        assert_eq!((forward::live(), kept_bytes()), (1, cap0));
        // Later changes go to the same copy.
        assert!(h.delete(b"f2"));
        assert!(h.set(b"new", b"v", lim).unwrap());
        assert_eq!(own(&h), (at0, bytes0.clone(), true));
        assert_eq!(forward::live(), 1);
        let want = all(&h);
        assert_eq!(want.len(), 10);
        assert_eq!(
            all(&h.clone()),
            want,
            "a clone holds the content as it is now"
        );
        assert_eq!(h.as_listpack(), h.clone().as_listpack());
        // A hash made during the save is changed in place.
        let mut fresh = Hash::new();
        fresh.set(b"a", b"1", lim).unwrap();
        fresh.set(b"a", b"2", lim).unwrap();
        assert!(!own(&fresh).2);
        // One dropped while forwarded takes its copy with it.
        other.set(b"f0", b"x", lim).unwrap();
        assert!(own(&other).2);
        assert_eq!(forward::live(), 2);
        drop(other);
        assert_eq!(forward::live(), 1);
        fork_save_ended();
        // After the save the handle takes the copy back.
        h.heal();
        assert!(!own(&h).2);
        assert_ne!(own(&h).0, at0);
        assert_eq!(all(&h), want);
        assert_eq!((forward::live(), kept_bytes()), (0, 0));
    }

    #[test]
    fn forwarding_stops_past_its_budget_and_under_fast_writes() {
        use crate::types::{fork_save_ended, fork_save_started, set_forward_budget};
        use crate::types::{forward, FORWARD_RATE_WINDOW};
        let lim = Limits::new(128, 64);
        let mut hashes: Vec<Hash> = (0..FORWARD_RATE_WINDOW + 50)
            .map(|_| {
                let mut h = Hash::new();
                h.set(b"field", b"value-0123456789", lim).unwrap();
                h
            })
            .collect();
        let cap = hashes[0].heap_size();
        // Budget: three copies.
        fork_save_started(1_000_000);
        set_forward_budget(3 * cap, true);
        for h in hashes.iter_mut().take(10) {
            h.set(b"field", b"value-9876543210", lim).unwrap();
        }
        assert_eq!(forward::live(), 3);
        assert_eq!(hashes.iter().filter(|h| own(h).2).count(), 3);
        fork_save_ended();
        hashes.iter_mut().for_each(Hash::heal);
        assert_eq!(forward::live(), 0);
        // Rate: anything faster than the floor of writes a second stops forwarding once a
        // window is full (this loop is: it runs in well under the 25.6 ms that allows).
        fork_save_started(1);
        set_forward_budget(1 << 20, true);
        for h in hashes.iter_mut() {
            h.set(b"field", b"value-0000000000", lim).unwrap();
        }
        assert_eq!(forward::live(), FORWARD_RATE_WINDOW as usize - 1);
        assert!(hashes
            .iter()
            .all(|h| h.get(b"field") == Some(Elem::Str(b"value-0000000000"))));
        fork_save_ended();
        hashes.iter_mut().for_each(Hash::heal);
        assert_eq!(forward::live(), 0);
        // A save starts with its rate unknown: the first window's writes go in place, and once
        // it proved slow (no window is faster than `usize::MAX` keys allow), the next ones are
        // forwarded.
        fork_save_started(usize::MAX);
        set_forward_budget(1 << 20, false);
        for h in hashes.iter_mut() {
            h.set(b"field", b"value-1111111111", lim).unwrap();
        }
        let window = FORWARD_RATE_WINDOW as usize;
        assert!(hashes[..window - 1].iter().all(|h| !own(h).2));
        assert!(hashes[window - 1..].iter().all(|h| own(h).2));
        assert_eq!(forward::live(), hashes.len() - (window - 1));
        fork_save_ended();
        hashes.iter_mut().for_each(Hash::heal);
        assert_eq!(forward::live(), 0);
    }

    /// What keeps a write during a snapshot to few pages: a same-size update does not move the
    /// listpack, nor a table's pair.
    #[test]
    fn same_size_updates_stay_in_place() {
        let mut h = Hash::new();
        h.set(b"f", b"abc", LIM).unwrap();
        h.set(b"g", b"1", LIM).unwrap();
        let before = h.as_listpack().unwrap().as_ptr();
        h.set(b"f", b"xyz", LIM).unwrap();
        assert_eq!(h.as_listpack().unwrap().as_ptr(), before);
        assert_eq!(h.get(b"f"), Some(Elem::Str(b"xyz")));

        h.convert();
        let at = |h: &Hash| match &h.0 {
            Repr::Table(t) => t.get(b"f").unwrap().0.as_ptr(),
            Repr::Listpack(_) => panic!("a table"),
        };
        let before = at(&h);
        h.set(b"f", b"123", LIM).unwrap();
        assert_eq!(at(&h), before);
        assert_eq!(h.get(b"f"), Some(Elem::Str(b"123")));
    }

    #[test]
    fn pair_varint_handles_long_fields() {
        let f = vec![b'x'; 300];
        let p = Pair::new(&f, b"value");
        assert_eq!(p.field(), &f[..]);
        assert_eq!(p.value(), b"value");
        let p = Pair::new(b"", b"");
        assert_eq!((p.field(), p.value()), (&b""[..], &b""[..]));
    }

    #[test]
    fn scan_visits_every_pair_despite_deletes() {
        let lim = Limits {
            max_entries: 0,
            max_value: 64,
        };
        let mut h = Hash::new();
        for i in 0..100 {
            h.set(format!("f{i}").as_bytes(), b"v", lim).unwrap();
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut first = true;
        while first || cursor != 0 {
            first = false;
            let (next, got) = h.scan(cursor, 7);
            let got: Vec<Vec<u8>> = got.into_iter().map(|(f, _)| text(f)).collect();
            seen.extend(got);
            cursor = next;
            // Delete fields already returned: nothing unvisited may be skipped.
            for f in seen.iter().take(2).cloned().collect::<Vec<_>>() {
                h.delete(&f);
            }
        }
        assert_eq!(seen.len(), 100);
        // A listpack answers whole, cursor 0.
        let mut small = Hash::new();
        small.set(b"a", b"1", LIM).unwrap();
        assert_eq!(small.scan(0, 1).0, 0);
        assert_eq!(small.scan(0, 1).1.len(), 1);
    }

    #[test]
    fn random_access_and_loading() {
        let mut h = Hash::new();
        h.set(b"a", b"1", LIM).unwrap();
        h.set(b"b", b"2", LIM).unwrap();
        assert_eq!(h.pair_at(1), Some((Elem::Str(b"b"), Elem::Int(2))));
        assert_eq!(h.pair_at(2), None);
        let lp = Listpack::from_bytes(h.as_listpack().unwrap().to_vec()).unwrap();
        let back = Hash::from_listpack(lp, LIM).unwrap();
        assert_eq!(all(&back), all(&h));

        let mut dup = Listpack::new();
        for e in ["a", "1", "a", "2"] {
            dup.append(e).unwrap();
        }
        assert_eq!(
            Hash::from_listpack(dup, LIM).unwrap_err(),
            LoadError::DuplicateField
        );
        let mut odd = Listpack::new();
        odd.append("a").unwrap();
        assert_eq!(
            Hash::from_listpack(odd, LIM).unwrap_err(),
            LoadError::OddEntries(1)
        );
        let big = Hash::from_pairs([(&b"a"[..], &b"1"[..]), (b"b", b"123456789")], LIM).unwrap();
        assert_eq!(big.encoding_name(), "hashtable");
        assert!(big.as_listpack().is_none());
        assert_eq!(
            big.pair_at(1),
            Some((Elem::Str(b"b"), Elem::Str(b"123456789")))
        );
        assert_eq!(
            Hash::from_pairs([(&b"a"[..], &b"1"[..]), (b"a", b"2")], LIM).unwrap_err(),
            LoadError::DuplicateField
        );
    }
}
