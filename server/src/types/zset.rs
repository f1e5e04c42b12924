//! Sorted sets: the value type behind `Value::ZSet`.
//!
//! # Encodings (Redis 7.0's, and when each is used)
//!
//! ```text
//! ZSet ─ Listpack   member, score, member, score ...   ordered by (score, member); the bytes are
//!      │            exactly Redis's OBJ_ENCODING_LISTPACK blob (RDB_TYPE_ZSET_LISTPACK as is)
//!      └ Big (box)  dict: hash table of members, each one allocation [score f64][member bytes]
//!                   order: chunks of (score, member ptr) sorted by (score, member), a copy of
//!                          each chunk's last record to find a chunk in one contiguous array,
//!                          and a Fenwick tree over the chunk lengths for ranks in O(log n)
//! ```
//!
//! A sorted set is a listpack while it has at most `zset-max-listpack-entries` members and each
//! member is at most `zset-max-listpack-value` bytes; [`ZSet::add`] converts it to the large
//! encoding past either threshold (Redis's `zsetAdd`), and nothing converts back except the
//! result of a store command ([`ZSet::from_pairs`], Redis's `zsetConvertToListpackIfNeeded`).
//! OBJECT ENCODING names them `listpack` and `skiplist`.
//!
//! Scores in the listpack are written as Redis 7.0's `zzlInsertAt` writes them: an integer entry
//! when the double is integral and within ±`LLONG_MAX/2` (`double2ll`), otherwise the `%.17g`
//! text of `d2string` (`inf`, `-inf`, `1.5`, `1e+20`), so the blob is byte-identical to Redis's.
//!
//! ## Why not a skiplist for the large encoding
//!
//! The large encoding needs score by member, rank queries and ordered walks both ways. Redis's
//! skiplist costs a node per member (score, member pointer, backward pointer and 1.33 levels
//! of forward pointer + span on average) plus a dict entry; an insert writes the new node and
//! the predecessors at each level, each in its own allocation, so several pages under a
//! snapshot child. Sorted chunks of 24-byte (score, member) records cost about 32 bytes a
//! member at their average fill, and an insert moves records inside one chunk (one or two
//! pages) plus a few Fenwick words. No crate offers an order-statistics map whose members can
//! be shared with a hash index without a second copy, which is why this is written here.
//!
//! ## Ownership (the one `unsafe` here)
//!
//! The dict owns each member in a `Box<[u8]>` that also holds its score (so a dict bucket is a
//! 16-byte pointer, with no separate score: at a million members that is 16 MB less than a
//! `HashMap<member, f64>`); the order records point at the member bytes. A boxed slice's bytes
//! never move while the box lives (a rehash moves the box, not its heap bytes; a new score is
//! written in place), and a member taken out of the dict is dropped only after its record is
//! removed, so a record's pointer is always valid while the `Big` lives. The pointers are
//! private and never outlive `&self`.
//!
//! What this module may touch: its own value only (see `types/mod.rs`).

use std::cmp::Ordering;
use std::collections::HashSet;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use forkdb_protocol::format_double;
use forkdb_snapshot::blob::listpack::Where;
use forkdb_snapshot::blob::{listpack, Elem, Listpack, Pos};

/// The encoding thresholds (`zset-max-listpack-entries`, `zset-max-listpack-value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub entries: usize,
    pub value: usize,
}

/// A member as stored: a listpack keeps a canonical integer member as an integer entry.
pub type Member<'a> = Elem<'a>;

/// What [`ZSet::add`] did (Redis's `ZADD_OUT_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AddOutcome {
    /// The resulting score would be NaN: nothing changed.
    Nan,
    /// Nothing done (NX on an existing member, XX on a missing one, GT/LT refused). Carries
    /// no score.
    Nop,
    /// A new member with this score.
    Added(f64),
    /// The member's score changed to this.
    Updated(f64),
    /// The member exists with this same score (re-added with the same score, or a zero increment).
    Same(f64),
}

/// ZADD's flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddFlags {
    pub incr: bool,
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

/// A sorted set. A small handle: the large encoding is boxed.
#[derive(Debug, Clone)]
pub struct ZSet(Repr);

#[derive(Debug, Clone)]
enum Repr {
    Listpack(Listpack),
    Big(Box<Big>),
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet(Repr::Listpack(Listpack::new()))
    }
}

/// Orders two members as Redis's `sdscmp` (bytes, then length).
fn cmp_members(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}

/// Orders (score, member) pairs as the skiplist does.
fn cmp_pair(sa: f64, ma: &[u8], sb: f64, mb: &[u8]) -> Ordering {
    match sa.partial_cmp(&sb) {
        Some(Ordering::Equal) | None => cmp_members(ma, mb),
        Some(o) => o,
    }
}

/// The bytes of a member elem (an integer entry as its decimal text).
pub fn member_bytes<'a>(e: &Elem<'a>, buf: &'a mut itoa::Buffer) -> &'a [u8] {
    match *e {
        Elem::Str(s) => s,
        Elem::Int(v) => buf.format(v).as_bytes(),
    }
}

/// Redis's `zzlStrtod`/`zzlGetScore`: the score a listpack entry holds.
fn elem_score(e: Elem<'_>) -> f64 {
    match e {
        Elem::Int(v) => v as f64,
        Elem::Str(s) => parse_stored_score(s),
    }
}

/// `strtod` of a score Redis wrote (`%.17g`, `inf`, `-inf`); anything else reads as 0 as
/// `strtod` of garbage would (a foreign listpack is validated for structure, not scores).
fn parse_stored_score(s: &[u8]) -> f64 {
    let Ok(t) = std::str::from_utf8(s) else {
        return 0.0;
    };
    match t {
        "inf" | "+inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => t.parse().unwrap_or(0.0),
    }
}

/// Redis's `double2ll` (7.0): the integer a score is, when it is integral and within
/// ±`LLONG_MAX/2`.
fn double2ll(d: f64) -> Option<i64> {
    const HALF: f64 = (i64::MAX / 2) as f64;
    if !(-HALF..=HALF).contains(&d) {
        return None;
    }
    let ll = d as i64;
    (ll as f64 == d).then_some(ll)
}

/// Appends or inserts `member`, `score` as `zzlInsertAt` does (before `before`, or at the tail).
fn lp_insert_at(lp: &mut Listpack, before: Option<Pos>, member: &[u8], score: f64) {
    let text;
    let score_elem = match double2ll(score) {
        Some(v) => Elem::Int(v),
        None => {
            text = format_double(score);
            Elem::Str(text.as_bytes())
        }
    };
    // The listpack grows past 4 GiB only if a member does; the thresholds keep members small
    // (a long member converts the set first), so these cannot fail in practice.
    match before {
        None => {
            let _ = lp.append(member);
            let _ = lp.append(score_elem);
        }
        Some(p) => {
            if let Ok(m) = lp.insert(p, Where::Before, member) {
                let _ = lp.insert(m, Where::After, score_elem);
            }
        }
    }
}

/// The (member, score) pairs of a listpack, in order.
fn lp_pairs(lp: &Listpack) -> impl DoubleEndedIterator<Item = (Elem<'_>, f64)> + '_ {
    struct Pairs<'a>(forkdb_snapshot::blob::listpack::Iter<'a>);
    impl<'a> Iterator for Pairs<'a> {
        type Item = (Elem<'a>, f64);
        fn next(&mut self) -> Option<Self::Item> {
            let m = self.0.next()?;
            let s = self.0.next()?;
            Some((m, elem_score(s)))
        }
    }
    impl DoubleEndedIterator for Pairs<'_> {
        fn next_back(&mut self) -> Option<Self::Item> {
            let s = self.0.next_back()?;
            let m = self.0.next_back()?;
            Some((m, elem_score(s)))
        }
    }
    Pairs(lp.iter())
}

/// Finds `member` in a listpack: (position of the member entry, its score).
fn lp_find(lp: &Listpack, member: &[u8]) -> Option<(Pos, f64)> {
    let first = lp.first()?;
    let p = lp.find(first, member, 1)?;
    let s = lp.next(p)?;
    Some((p, elem_score(lp.get(s))))
}

/// Inserts a pair in order (`zzlInsert`): before the first entry with a greater score, or an
/// equal score and a greater member.
fn lp_insert(lp: &mut Listpack, member: &[u8], score: f64) {
    let mut cur = lp.first();
    let mut buf = itoa::Buffer::new();
    while let Some(p) = cur {
        let Some(sp) = lp.next(p) else { break };
        let s = elem_score(lp.get(sp));
        let e = lp.get(p);
        let m = member_bytes(&e, &mut buf);
        if s > score || (s == score && cmp_members(m, member) == Ordering::Greater) {
            lp_insert_at(lp, Some(p), member, score);
            return;
        }
        cur = lp.next(sp);
    }
    lp_insert_at(lp, None, member, score);
}

/// One record of the large encoding's order: the score and the member's bytes (owned by the
/// dict; see the module docs).
#[derive(Clone, Copy)]
struct Node {
    score: f64,
    ptr: *const u8,
    len: usize,
}

impl Node {
    fn member(&self) -> &[u8] {
        // SAFETY: `ptr`/`len` are the bytes of a `Box<[u8]>` the dict owns; a node is removed
        // before its member leaves the dict (module docs), so they are live while `self` is.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A member of the large encoding as the dict owns it: its score (8 bytes, native order) then
/// its bytes, in one allocation. The dict finds it by the member bytes alone.
struct Owned(Box<[u8]>);

impl Owned {
    fn new(member: &[u8], score: f64) -> Self {
        let mut v = Vec::with_capacity(8 + member.len());
        v.extend_from_slice(&score.to_ne_bytes());
        v.extend_from_slice(member);
        Owned(v.into_boxed_slice())
    }
    fn member(&self) -> &[u8] {
        self.0.get(8..).unwrap_or(&[])
    }
    fn score(&self) -> f64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.0.get(..8).unwrap_or(&[0; 8]));
        f64::from_ne_bytes(b)
    }
    fn set_score(&mut self, score: f64) {
        if let Some(b) = self.0.get_mut(..8) {
            b.copy_from_slice(&score.to_ne_bytes());
        }
    }
    fn node(&self) -> Node {
        let m = self.member();
        Node {
            score: self.score(),
            ptr: m.as_ptr(),
            len: m.len(),
        }
    }
}

/// Records per chunk at most; a full chunk splits in two.
const CHUNK: usize = 128;

/// The large encoding.
struct Big {
    /// The members, found by their bytes (hashed with `seed`).
    dict: HashTable<Owned>,
    /// foldhash, seeded at random per set: fast (ZADD of an existing member hashes it once),
    /// and members chosen offline cannot aim at one bucket.
    seed: foldhash::fast::RandomState,
    /// Non-empty sorted chunks, in order.
    chunks: Vec<Vec<Node>>,
    /// A copy of each chunk's last record: the search for a chunk walks this one contiguous
    /// array instead of loading a record from each chunk's own allocation on the way (at 86 000
    /// members, ten cache misses a search saved).
    lasts: Vec<Node>,
    /// Fenwick tree (1-based) over the chunk lengths.
    fen: Vec<usize>,
}

// SAFETY: the raw pointers in `Node` point into boxes this same value owns (module docs);
// nothing is shared between values, so moving a `Big` to another thread moves its members too.
unsafe impl Send for Big {}
// SAFETY: `&Big` only reads the members through those pointers.
unsafe impl Sync for Big {}

impl std::fmt::Debug for Big {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Big")
            .field("len", &self.dict.len())
            .finish()
    }
}

impl Clone for Big {
    fn clone(&self) -> Self {
        let mut b = Big::with_capacity(self.dict.len());
        for (m, s) in self.iter() {
            b.insert(m, s);
        }
        b
    }
}

impl Big {
    fn with_capacity(n: usize) -> Self {
        Big {
            dict: HashTable::with_capacity(n),
            seed: foldhash::fast::RandomState::default(),
            chunks: Vec::new(),
            lasts: Vec::new(),
            fen: vec![0],
        }
    }

    fn len(&self) -> usize {
        self.dict.len()
    }

    fn get(&self, member: &[u8]) -> Option<&Owned> {
        let h = self.seed.hash_one(member);
        self.dict.find(h, |o| o.member() == member)
    }

    /// Recomputes the Fenwick tree and `lasts` after chunks were added, removed or merged.
    fn rebuild_index(&mut self) {
        let n = self.chunks.len();
        self.fen.clear();
        self.fen.resize(n + 1, 0);
        for i in 1..=n {
            self.fen[i] += self.chunks[i - 1].len();
            let j = i + (i & i.wrapping_neg());
            if j <= n {
                let v = self.fen[i];
                self.fen[j] += v;
            }
        }
        self.lasts.clear();
        self.lasts
            .extend(self.chunks.iter().filter_map(|ch| ch.last().copied()));
    }

    fn fen_add(&mut self, chunk: usize, add: bool) {
        let mut i = chunk + 1;
        while i < self.fen.len() {
            if add {
                self.fen[i] += 1;
            } else {
                self.fen[i] -= 1;
            }
            i += i & i.wrapping_neg();
        }
    }

    /// Records in the chunks before `chunk`.
    fn prefix(&self, chunk: usize) -> usize {
        let mut i = chunk;
        let mut sum = 0;
        while i > 0 {
            sum += self.fen[i];
            i -= i & i.wrapping_neg();
        }
        sum
    }

    /// (chunk, offset) of rank `r` (< len).
    fn locate(&self, mut r: usize) -> (usize, usize) {
        let n = self.chunks.len();
        let mut pos = 0;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && self.fen[next] <= r {
                pos = next;
                r -= self.fen[next];
            }
            step >>= 1;
        }
        (pos, r)
    }

    fn at(&self, r: usize) -> Option<&Node> {
        if r >= self.len() {
            return None;
        }
        let (c, o) = self.locate(r);
        self.chunks.get(c)?.get(o)
    }

    /// The chunk a (score, member) belongs in, and its offset there (found or insertion point).
    fn search(&self, score: f64, member: &[u8]) -> (usize, Result<usize, usize>) {
        let key = |n: &Node| cmp_pair(n.score, n.member(), score, member);
        let c = self.lasts.partition_point(|n| key(n) == Ordering::Less);
        let c = c.min(self.chunks.len().saturating_sub(1));
        match self.chunks.get(c) {
            Some(ch) => (c, chunk_search(ch, key)),
            None => (0, Err(0)),
        }
    }

    fn rank_of(&self, score: f64, member: &[u8]) -> Option<usize> {
        let (c, r) = self.search(score, member);
        r.ok().map(|o| self.prefix(c) + o)
    }

    fn insert_node(&mut self, node: Node) {
        if self.chunks.is_empty() {
            let mut ch = Vec::with_capacity(CHUNK);
            ch.push(node);
            self.chunks.push(ch);
            self.rebuild_index();
            return;
        }
        let (c, r) = self.search(node.score, node.member());
        let o = match r {
            Ok(o) | Err(o) => o,
        };
        let last = c + 1 == self.chunks.len();
        let ch = &mut self.chunks[c];
        if ch.len() < CHUNK {
            ch.insert(o, node);
            if o + 1 == ch.len() {
                self.lasts[c] = node;
            }
            self.fen_add(c, true);
            return;
        }
        // A full chunk splits *before* the insert: inserting into it first would double its
        // vector (room for 2 * CHUNK records, kept after the split), which cost a 1M-member
        // set 60 bytes a member where its records need 24 to 32. Every chunk's vector holds
        // exactly CHUNK records.
        let tail = if last && o == ch.len() {
            // Appending in score order (timestamps, counters) would leave every chunk half
            // full after a middle split: the new record starts the next chunk instead.
            let mut tail = Vec::with_capacity(CHUNK);
            tail.push(node);
            tail
        } else {
            let at = CHUNK / 2;
            let mut tail = Vec::with_capacity(CHUNK);
            tail.extend(ch.drain(at..));
            if o <= at {
                ch.insert(o, node);
            } else {
                tail.insert(o - at, node);
            }
            tail
        };
        self.chunks.insert(c + 1, tail);
        self.rebuild_index();
    }

    /// Removes the record at offset `o` of chunk `c`.
    fn remove_at(&mut self, c: usize, o: usize) {
        let ch = &mut self.chunks[c];
        ch.remove(o);
        if ch.is_empty() {
            self.chunks.remove(c);
            self.rebuild_index();
            return;
        }
        // Merge a chunk that became small into its right neighbour when both fit in one,
        // so that deletions do not leave many near-empty chunks behind.
        let len = ch.len();
        let right = self.chunks.get(c + 1).map_or(usize::MAX, Vec::len);
        if len < CHUNK / 4 && len.saturating_add(right) <= CHUNK {
            let right = self.chunks.remove(c + 1);
            self.chunks[c].extend(right);
            self.rebuild_index();
        } else {
            if o == len {
                self.lasts[c] = self.chunks[c][len - 1];
            }
            self.fen_add(c, false);
        }
    }

    fn remove_node(&mut self, score: f64, member: &[u8]) {
        if let (c, Ok(o)) = self.search(score, member) {
            self.remove_at(c, o);
        }
    }

    /// Adds a member known to be absent.
    fn insert(&mut self, member: &[u8], score: f64) {
        let h = self.seed.hash_one(member);
        self.insert_hashed(h, member, score);
    }

    fn insert_hashed(&mut self, h: u64, member: &[u8], score: f64) {
        let owned = Owned::new(member, score);
        let node = owned.node();
        let seed = &self.seed;
        self.dict
            .insert_unique(h, owned, |o| seed.hash_one(o.member()));
        self.insert_node(node);
    }

    fn remove(&mut self, member: &[u8]) -> bool {
        let h = self.seed.hash_one(member);
        let Ok(entry) = self.dict.find_entry(h, |o| o.member() == member) else {
            return false;
        };
        // Out of the dict, the box (and so the bytes the record points at) lives on until the
        // record is gone.
        let (owned, _) = entry.remove();
        self.remove_node(owned.score(), owned.member());
        drop(owned);
        true
    }

    /// ZADD of `member`: adds it, or changes its score as ZADD's flags say (one hash lookup).
    fn add(&mut self, score: f64, member: &[u8], f: AddFlags) -> AddOutcome {
        let h = self.seed.hash_one(member);
        let Some(owned) = self.dict.find_mut(h, |o| o.member() == member) else {
            if f.xx {
                return AddOutcome::Nop;
            }
            self.insert_hashed(h, member, score);
            return AddOutcome::Added(score);
        };
        let cur = owned.score();
        let score = match new_score(cur, score, f) {
            Ok(s) => s,
            Err(out) => return out,
        };
        owned.set_score(score);
        let node = owned.node();
        self.reposition(cur, node);
        AddOutcome::Updated(score)
    }

    /// Moves the record of `node`'s member, found under its old score `old`, to where its new
    /// score puts it: in place when it stays between its neighbours (Redis's `zslUpdateScore`
    /// does the same), else out of its chunk and into the right one.
    fn reposition(&mut self, old: f64, node: Node) {
        let (c, Ok(o)) = self.search(old, node.member()) else {
            return;
        };
        let below =
            |n: &Node| cmp_pair(n.score, n.member(), node.score, node.member()) == Ordering::Less;
        let ch = &self.chunks[c];
        let prev = match o {
            0 => c.checked_sub(1).map(|p| &self.lasts[p]),
            _ => ch.get(o - 1),
        };
        let next = match ch.get(o + 1) {
            Some(n) => Some(n),
            None => self.chunks.get(c + 1).and_then(|n| n.first()),
        };
        if prev.is_none_or(below) && !next.is_some_and(below) {
            self.chunks[c][o] = node;
            if o + 1 == self.chunks[c].len() {
                self.lasts[c] = node;
            }
            return;
        }
        self.remove_at(c, o);
        self.insert_node(node);
    }

    /// Panics unless the order, `lasts`, the Fenwick tree and the dict agree.
    #[cfg(test)]
    fn check(&self) {
        let nodes: Vec<&Node> = self.chunks.iter().flatten().collect();
        assert_eq!(nodes.len(), self.dict.len());
        for w in nodes.windows(2) {
            let o = cmp_pair(w[0].score, w[0].member(), w[1].score, w[1].member());
            assert_eq!(o, Ordering::Less);
        }
        assert_eq!(self.lasts.len(), self.chunks.len());
        for (c, ch) in self.chunks.iter().enumerate() {
            let last = ch.last().expect("no empty chunk");
            assert_eq!(
                (last.score, last.ptr),
                (self.lasts[c].score, self.lasts[c].ptr)
            );
            assert_eq!(self.prefix(c + 1) - self.prefix(c), ch.len());
        }
        for n in nodes {
            let o = self.get(n.member()).expect("in the dict");
            assert_eq!((o.score(), o.member().as_ptr()), (n.score, n.ptr));
        }
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> + '_ {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .map(|n| (n.member(), n.score))
    }

    fn heap_size(&self) -> usize {
        let members: usize = self.dict.iter().map(|k| k.0.len()).sum();
        let dict = self.dict.capacity() * (std::mem::size_of::<Owned>() + 1);
        let chunks: usize = self.chunks.iter().map(|c| c.capacity() * 24 + 24).sum();
        members
            + dict
            + chunks
            + self.lasts.capacity() * 24
            + self.fen.capacity() * 8
            + std::mem::size_of::<Big>()
    }
}

/// `binary_search_by` over one chunk, which asks for the two records the next step may read
/// before it compares: a chunk is 3 KiB, a search of a large set finds little of it in the
/// cache, and without the hint each step's load waits for memory after the previous one.
/// Measured once with a throwaway probe (100 000 members, updates of random members to random
/// scores, 512 KiB written between two updates to push the set out of the closer caches, as a
/// server's network path does): 660 ns an update, 365 with the hint; asking at once for every
/// record the first four steps may read was slower (1.5 µs).
fn chunk_search(ch: &[Node], key: impl Fn(&Node) -> Ordering) -> Result<usize, usize> {
    let mut size = ch.len();
    if size == 0 {
        return Err(0);
    }
    let mut base = 0;
    while size > 1 {
        let half = size / 2;
        let mid = base + half;
        let next = (size - half) / 2;
        prefetch(ch.as_ptr().wrapping_add(base + next));
        prefetch(ch.as_ptr().wrapping_add(mid + next));
        if key(&ch[mid]) != Ordering::Greater {
            base = mid;
        }
        size -= half;
    }
    match key(&ch[base]) {
        Ordering::Equal => Ok(base),
        Ordering::Less => Err(base + 1),
        Ordering::Greater => Err(base),
    }
}

/// Asks the CPU to start loading the cache line at `p`: a hint, which never faults and changes
/// no result.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch of any address is allowed (it never faults); SSE is in every x86_64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// What ZADD's flags make of `score` for a member whose score is `cur`: the new score, or the
/// outcome that leaves the member as it is (`zsetAdd`).
fn new_score(cur: f64, score: f64, f: AddFlags) -> Result<f64, AddOutcome> {
    if f.nx {
        return Err(AddOutcome::Nop);
    }
    let mut score = score;
    if f.incr {
        score += cur;
        if score.is_nan() {
            return Err(AddOutcome::Nan);
        }
    }
    if (f.lt && score >= cur) || (f.gt && score <= cur) {
        return Err(AddOutcome::Nop);
    }
    if score == cur {
        return Err(AddOutcome::Same(score));
    }
    Ok(score)
}

impl ZSet {
    /// An empty sorted set in the encoding ZADD creates for a new key whose first member is
    /// `first_len` bytes long (`zaddGenericCommand`).
    pub fn new_for(first_len: usize, limits: Limits) -> ZSet {
        if limits.entries == 0 || first_len > limits.value {
            ZSet(Repr::Big(Box::new(Big::with_capacity(0))))
        } else {
            ZSet::default()
        }
    }

    /// A sorted set holding `pairs` (in any order, members distinct), in the encoding Redis's
    /// store commands leave: a listpack when within both thresholds
    /// (`zsetConvertToListpackIfNeeded`), else the large encoding. Also the constructor for
    /// content loaded from an RDB `ZSET`/`ZSET_2` value.
    pub fn from_pairs(mut pairs: Vec<(Vec<u8>, f64)>, limits: Limits) -> ZSet {
        let max = pairs.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
        if pairs.len() <= limits.entries && max <= limits.value {
            pairs.sort_by(|a, b| cmp_pair(a.1, &a.0, b.1, &b.0));
            let mut lp = Listpack::new();
            for (m, s) in &pairs {
                lp_insert_at(&mut lp, None, m, *s);
            }
            ZSet(Repr::Listpack(lp))
        } else {
            let mut b = Big::with_capacity(pairs.len());
            for (m, s) in &pairs {
                if b.get(m).is_none() {
                    b.insert(m, *s);
                }
            }
            ZSet(Repr::Big(Box::new(b)))
        }
    }

    /// Adopts a validated listpack (an RDB `ZSET_LISTPACK` value, checked by
    /// [`Listpack::from_bytes`]) as it is, after the checks Redis's loader makes of a sorted
    /// set's listpack (`lpValidateIntegrityAndDups` with pairs): an even number of entries and
    /// no member twice. Like `rdbLoadObject`, a listpack with more members than
    /// `zset-max-listpack-entries` is converted to the large encoding.
    pub fn from_listpack(lp: Listpack, limits: Limits) -> Result<ZSet, &'static str> {
        let n = lp.len();
        if !n.is_multiple_of(2) {
            return Err("sorted set listpack has an odd number of entries");
        }
        let mut seen = HashSet::with_capacity(n / 2);
        let mut buf = itoa::Buffer::new();
        for (m, _) in lp_pairs(&lp) {
            if !seen.insert(member_bytes(&m, &mut buf).to_vec()) {
                return Err("sorted set listpack holds a member twice");
            }
        }
        let mut z = ZSet(Repr::Listpack(lp));
        if n / 2 > limits.entries {
            z.convert_to_big();
        }
        Ok(z)
    }

    /// The listpack blob, exactly what RDB_TYPE_ZSET_LISTPACK holds, when listpack-encoded.
    pub fn as_listpack(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::Listpack(lp) => Some(lp.as_bytes()),
            Repr::Big(_) => None,
        }
    }

    /// The large encoding's (member, score) by reference, from the highest score to the lowest
    /// (the order of [`ZSet::iter_rdb`]), counted, for the RDB writer's `ZSET_2`; None for a
    /// listpack, which the writer takes whole from [`ZSet::as_listpack`].
    pub fn big_rdb(&self) -> Option<impl ExactSizeIterator<Item = (&[u8], f64)> + '_> {
        match &self.0 {
            Repr::Listpack(_) => None,
            Repr::Big(b) => Some(super::Counted::new(b.iter().rev(), b.dict.len())),
        }
    }

    /// For the RDB writer's `ZSET_2`: (member, score) from the highest to the lowest, the order
    /// `rdbSaveObject` walks the skiplist (tail to head), so a loader inserting each at the
    /// head builds it in O(1) each.
    pub fn iter_rdb(&self) -> Box<dyn Iterator<Item = (Member<'_>, f64)> + '_> {
        self.iter_rev()
    }

    /// Elements held.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Listpack(lp) => lp.len() / 2,
            Repr::Big(b) => b.len(),
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
            Repr::Big(_) => "skiplist",
        }
    }

    /// Bytes this value holds on the heap (for memory estimates).
    pub fn heap_size(&self) -> usize {
        match &self.0 {
            Repr::Listpack(lp) => lp.capacity(),
            Repr::Big(b) => b.heap_size(),
        }
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.0 {
            Repr::Listpack(lp) => lp_find(lp, member).map(|(_, s)| s),
            Repr::Big(b) => b.get(member).map(Owned::score),
        }
    }

    /// The 0-based rank of `member`, from the lowest (or the highest when `rev`).
    pub fn rank(&self, member: &[u8], rev: bool) -> Option<usize> {
        let r = match &self.0 {
            Repr::Listpack(lp) => {
                let mut buf = itoa::Buffer::new();
                lp_pairs(lp).position(|(m, _)| member_bytes(&m, &mut buf) == member)?
            }
            Repr::Big(b) => {
                let s = b.get(member)?.score();
                b.rank_of(s, member)?
            }
        };
        Some(if rev { self.len() - 1 - r } else { r })
    }

    /// Converts to the large encoding (`zsetConvert`).
    pub fn convert_to_big(&mut self) {
        if let Repr::Listpack(lp) = &self.0 {
            let mut b = Big::with_capacity(lp.len() / 2 + 1);
            let mut buf = itoa::Buffer::new();
            for (m, s) in lp_pairs(lp) {
                b.insert(member_bytes(&m, &mut buf), s);
            }
            self.0 = Repr::Big(Box::new(b));
        }
    }

    /// Room in the listpack for the pairs one command is about to add, so that the buffer
    /// takes its final size class once instead of passing through every smaller one (glibc
    /// keeps the chunks those leave behind: 77 bytes of RSS a key for 100k sets of 100
    /// members). Nothing when the set is in the large encoding or the pairs would convert it.
    /// Members already present make it an overestimate, of at most the bytes of those pairs.
    pub fn reserve_pairs<'a>(
        &mut self,
        pairs: impl ExactSizeIterator<Item = (&'a [u8], f64)>,
        limits: Limits,
    ) {
        let Repr::Listpack(lp) = &mut self.0 else {
            return;
        };
        if lp.len() / 2 + pairs.len() > limits.entries {
            return;
        }
        let mut bytes = 0usize;
        for (member, score) in pairs {
            if member.len() > limits.value {
                return;
            }
            let score_size = match double2ll(score) {
                Some(v) => listpack::entry_size(Elem::Int(v)),
                None => listpack::entry_size(Elem::Str(format_double(score).as_bytes())),
            };
            bytes = bytes
                .saturating_add(listpack::entry_size(member))
                .saturating_add(score_size);
        }
        lp.reserve(bytes);
    }

    /// Called before every change of a listpack-encoded set: while a fork save's child lives, a
    /// small listpack's first write moves it to a new buffer and keeps the old one untouched
    /// until the child is gone (see [`super::should_move`]).
    ///
    /// The new buffer holds the listpack's bytes and no spare capacity: the copy is what the
    /// move costs, and a change that needs more room takes its size class then (a `realloc`
    /// in memory made after the fork, which [`ZSet::after_change`] marks). 10 000 sets of 100
    /// members of 16 bytes under ZADD INCR: a 2307-byte listpack is a 2320-byte chunk copied
    /// instead of its class's 2560, and few INCRs change a score's encoded length.
    fn unshare(&mut self) {
        let Repr::Listpack(lp) = &mut self.0 else {
            return;
        };
        if !super::should_move(lp.as_bytes().as_ptr() as usize, lp.capacity()) {
            return;
        }
        let fresh = lp.clone();
        let old = std::mem::replace(lp, fresh);
        super::moved_listpack(lp.as_bytes().as_ptr() as usize, old);
    }

    /// After a change: a listpack that left its size class has a new address, in memory made
    /// after the fork, so it is marked as such (else its next write would move it again, and
    /// at a high write rate the copies kept until the child ends added up: 10 000 sets under
    /// ZADD INCR at full speed took 28.0 MiB, redis-server 25.7).
    fn after_change(&self) {
        if let Repr::Listpack(lp) = &self.0 {
            super::made_after_fork(lp.as_bytes().as_ptr() as usize);
        }
    }

    /// ZADD/ZINCRBY of one member (Redis's `zsetAdd`), converting to the large encoding when
    /// the new member would cross a threshold.
    pub fn add(&mut self, score: f64, member: &[u8], f: AddFlags, limits: Limits) -> AddOutcome {
        let out = self.add_one(score, member, f, limits);
        if matches!(out, AddOutcome::Added(_) | AddOutcome::Updated(_)) {
            self.after_change();
        }
        out
    }

    fn add_one(&mut self, score: f64, member: &[u8], f: AddFlags, limits: Limits) -> AddOutcome {
        if score.is_nan() {
            return AddOutcome::Nan;
        }
        let lp = match &mut self.0 {
            Repr::Big(b) => return b.add(score, member, f),
            Repr::Listpack(lp) => lp,
        };
        let Some((p, cur)) = lp_find(lp, member) else {
            if f.xx {
                return AddOutcome::Nop;
            }
            self.unshare();
            if let Repr::Listpack(lp) = &mut self.0 {
                if lp.len() / 2 + 1 > limits.entries
                    || member.len() > limits.value
                    || !lp.safe_to_add(member.len())
                {
                    self.convert_to_big();
                } else {
                    lp_insert(lp, member, score);
                    return AddOutcome::Added(score);
                }
            }
            if let Repr::Big(b) = &mut self.0 {
                b.insert(member, score);
            }
            return AddOutcome::Added(score);
        };
        let score = match new_score(cur, score, f) {
            Ok(s) => s,
            Err(out) => return out,
        };
        // A move keeps every byte offset, so `p` stays valid.
        self.unshare();
        if let Repr::Listpack(lp) = &mut self.0 {
            lp.delete_range_at(p, 2);
            lp_insert(lp, member, score);
        }
        AddOutcome::Updated(score)
    }

    /// Removes `member`; false if absent.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        if let Repr::Listpack(lp) = &self.0 {
            let Some((p, _)) = lp_find(lp, member) else {
                return false;
            };
            // A move keeps every byte offset, so `p` stays valid.
            self.unshare();
            if let Repr::Listpack(lp) = &mut self.0 {
                lp.delete_range_at(p, 2);
            }
            self.after_change();
            return true;
        }
        match &mut self.0 {
            Repr::Big(b) => b.remove(member),
            Repr::Listpack(_) => false,
        }
    }

    /// The element at rank `r` (0 = lowest).
    pub fn at(&self, r: usize) -> Option<(Member<'_>, f64)> {
        match &self.0 {
            Repr::Listpack(lp) => {
                let p = lp.seek(i64::try_from(r).ok()?.checked_mul(2)?)?;
                let s = lp.next(p)?;
                Some((lp.get(p), elem_score(lp.get(s))))
            }
            Repr::Big(b) => b.at(r).map(|n| (Elem::Str(n.member()), n.score)),
        }
    }

    /// Elements from the lowest.
    pub fn iter(&self) -> Box<dyn DoubleEndedIterator<Item = (Member<'_>, f64)> + '_> {
        match &self.0 {
            Repr::Listpack(lp) => Box::new(lp_pairs(lp)),
            Repr::Big(b) => Box::new(b.iter().map(|(m, s)| (Elem::Str(m), s))),
        }
    }

    /// Elements from the highest.
    pub fn iter_rev(&self) -> Box<dyn Iterator<Item = (Member<'_>, f64)> + '_> {
        Box::new(self.iter().rev())
    }

    /// Elements of ranks `start..end` (forward order), from `start` (or from `end - 1` down
    /// when `rev`). Walks from the nearer place: a listpack from its head, the large encoding
    /// from the located chunk.
    pub fn range(
        &self,
        start: usize,
        end: usize,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (Member<'_>, f64)> + '_> {
        let end = end.min(self.len());
        let start = start.min(end);
        let n = end - start;
        match &self.0 {
            Repr::Listpack(lp) => {
                let it = lp_pairs(lp).skip(start).take(n);
                if rev {
                    let v: Vec<_> = it.collect();
                    Box::new(v.into_iter().rev())
                } else {
                    Box::new(it)
                }
            }
            Repr::Big(b) => {
                if n == 0 {
                    return Box::new(std::iter::empty());
                }
                if rev {
                    let (c, o) = b.locate(end - 1);
                    let first = b.chunks[c][..=o].iter().rev();
                    let rest = b.chunks[..c].iter().rev().flat_map(|ch| ch.iter().rev());
                    Box::new(
                        first
                            .chain(rest)
                            .take(n)
                            .map(|nd| (Elem::Str(nd.member()), nd.score)),
                    )
                } else {
                    let (c, o) = b.locate(start);
                    let first = b.chunks[c][o..].iter();
                    let rest = b.chunks[c + 1..].iter().flat_map(|ch| ch.iter());
                    Box::new(
                        first
                            .chain(rest)
                            .take(n)
                            .map(|nd| (Elem::Str(nd.member()), nd.score)),
                    )
                }
            }
        }
    }

    /// How many elements from rank `from` on satisfy `pred` before the first that does not.
    /// `pred` must hold for a prefix of the order (a bound on scores, or on members when all
    /// scores are equal): the large encoding binary-searches, the listpack walks, as Redis's
    /// `zzlFirstInRange`-style walks do.
    pub fn count_while(&self, from: usize, mut pred: impl FnMut(&[u8], f64) -> bool) -> usize {
        match &self.0 {
            Repr::Listpack(lp) => {
                let mut buf = itoa::Buffer::new();
                let mut n = 0;
                for (m, s) in lp_pairs(lp).skip(from) {
                    if !pred(member_bytes(&m, &mut buf), s) {
                        break;
                    }
                    n += 1;
                }
                n
            }
            Repr::Big(b) => {
                let (mut lo, mut hi) = (from, b.len());
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    match b.at(mid) {
                        Some(nd) if pred(nd.member(), nd.score) => lo = mid + 1,
                        _ => hi = mid,
                    }
                }
                lo.saturating_sub(from)
            }
        }
    }

    /// Removes the elements of ranks `start..end`; returns how many.
    pub fn remove_range(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        self.unshare();
        match &mut self.0 {
            Repr::Listpack(lp) => {
                if let Some(p) = lp.seek((start * 2) as i64) {
                    lp.delete_range_at(p, (end - start) * 2);
                }
            }
            Repr::Big(b) => {
                let doomed: Vec<Box<[u8]>> = {
                    let (c, o) = b.locate(start);
                    b.chunks[c][o..]
                        .iter()
                        .chain(b.chunks[c + 1..].iter().flatten())
                        .take(end - start)
                        .map(|n| Box::from(n.member()))
                        .collect()
                };
                for m in doomed {
                    b.remove(&m);
                }
            }
        }
        self.after_change();
        end - start
    }

    /// A uniformly random element (`zsetTypeRandomElement`).
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<(Member<'_>, f64)> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        self.at(rng.gen_range(0..n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        entries: 128,
        value: 64,
    };

    #[test]
    fn a_listpack_moves_once_per_fork_save() {
        use crate::types::{fork_save_ended, fork_save_started, moved_in_save};
        let lp_at = |z: &ZSet| match &z.0 {
            Repr::Listpack(lp) => lp.as_bytes().as_ptr(),
            Repr::Big(_) => panic!("not a listpack"),
        };
        let mut z = ZSet::default();
        for j in 0..100 {
            add(&mut z, j as f64, &format!("member-{j:03}"));
        }
        let at0 = lp_at(&z);
        let (size0, cap0) = match &z.0 {
            Repr::Listpack(lp) => (lp.as_bytes().len(), lp.capacity()),
            Repr::Big(_) => panic!("not a listpack"),
        };
        assert!(
            cap0 > size0,
            "the test needs a listpack with spare capacity"
        );
        fork_save_started(1_000_000);
        // No change, no move: an absent member, the same score.
        assert!(!z.remove(b"absent"));
        assert!(matches!(
            add(&mut z, 5.0, "member-005"),
            AddOutcome::Same(_)
        ));
        assert_eq!((lp_at(&z), moved_in_save()), (at0, 0));
        // The first change moves it, keeping the old bytes as they were.
        let before = z.clone();
        assert!(z.remove(b"member-007"));
        let at1 = lp_at(&z);
        assert_ne!(at1, at0);
        assert_eq!(moved_in_save(), 1);
        // The copy has the listpack's bytes and no spare room; the old buffer is kept whole.
        match &z.0 {
            Repr::Listpack(lp) => assert_eq!(lp.capacity(), size0),
            Repr::Big(_) => panic!("not a listpack"),
        }
        assert_eq!(crate::types::kept_bytes(), cap0);
        assert_eq!(z.len(), 99);
        assert_eq!(z.score(b"member-007"), None);
        assert_eq!(z.score(b"member-008"), Some(8.0));
        // A change within the copy's size stays in place.
        add(&mut z, 1000.0, "member-001");
        assert_eq!((lp_at(&z), moved_in_save()), (at1, 1));
        // The first change that needs room takes the size class (a realloc, in memory made
        // after the fork), and is not a second move; later changes stay in place.
        add(&mut z, 7.0, "member-007");
        assert_eq!(moved_in_save(), 1);
        let at1 = lp_at(&z);
        add(&mut z, 1001.0, "member-001");
        z.remove_range(0, 1);
        assert_eq!((lp_at(&z), moved_in_save()), (at1, 1));
        // Growing past its class reallocates it (in place or not, in memory made after the
        // fork): not moved again.
        for j in 0..20 {
            add(
                &mut z,
                2000.0 + j as f64,
                &format!("grown-{j:03}-0123456789"),
            );
        }
        assert_eq!(moved_in_save(), 1);
        let at2 = lp_at(&z);
        add(&mut z, 1.0, "member-002");
        assert_eq!((lp_at(&z), moved_in_save()), (at2, 1));
        fork_save_ended();
        assert_eq!(moved_in_save(), 0);
        assert_eq!(before.len(), 100);
    }

    #[test]
    fn reserved_pairs_go_in_without_moving_the_listpack() {
        let members: Vec<String> = (0..100).map(|j| format!("m{j:07}")).collect();
        let scores: Vec<f64> = (0..100)
            .map(|j| if j % 2 == 0 { j as f64 } else { j as f64 + 0.5 })
            .collect();
        let mut z = ZSet::new_for(8, L);
        z.reserve_pairs(
            members
                .iter()
                .map(|m| m.as_bytes())
                .zip(scores.iter().copied()),
            L,
        );
        let Repr::Listpack(lp) = &z.0 else {
            panic!("not a listpack")
        };
        let (ptr, cap) = (lp.as_bytes().as_ptr(), lp.capacity());
        for (m, &s) in members.iter().zip(&scores) {
            add(&mut z, s, m);
        }
        let Repr::Listpack(lp) = &z.0 else {
            panic!("not a listpack")
        };
        assert_eq!((lp.as_bytes().as_ptr(), lp.capacity()), (ptr, cap));
        // The reservation is the final size's class: what growth one by one ends at.
        let mut grown = ZSet::new_for(8, L);
        for (m, &s) in members.iter().zip(&scores) {
            add(&mut grown, s, m);
        }
        let Repr::Listpack(g) = &grown.0 else {
            panic!("not a listpack")
        };
        assert_eq!(g.as_bytes(), lp.as_bytes());
        assert_eq!(g.capacity(), cap);
        // Pairs that would convert the set reserve nothing.
        let mut big = ZSet::new_for(8, L);
        let many: Vec<String> = (0..200).map(|j| format!("m{j}")).collect();
        big.reserve_pairs(many.iter().map(|m| (m.as_bytes(), 1.0)), L);
        let Repr::Listpack(lp) = &big.0 else {
            panic!("not a listpack")
        };
        assert_eq!(lp.capacity(), Listpack::new().capacity());
    }

    fn add(z: &mut ZSet, s: f64, m: &str) -> AddOutcome {
        z.add(s, m.as_bytes(), AddFlags::default(), L)
    }

    fn members(z: &ZSet) -> Vec<(Vec<u8>, f64)> {
        z.iter().map(|(m, s)| (m.to_vec(), s)).collect()
    }

    #[test]
    fn listpack_bytes_match_redis_zzl_insert() {
        let mut z = ZSet::new_for(1, L);
        add(&mut z, 1.5, "b");
        add(&mut z, 3.0, "a");
        add(&mut z, f64::INFINITY, "c");
        add(&mut z, 1e20, "d");
        add(&mut z, 1.5, "a");
        let lp = Listpack::from_bytes(z.as_listpack().unwrap().to_vec()).unwrap();
        assert_eq!(
            members(&z),
            vec![
                (b"a".to_vec(), 1.5),
                (b"b".to_vec(), 1.5),
                (b"d".to_vec(), 1e20),
                (b"c".to_vec(), f64::INFINITY)
            ]
        );
        let raw: Vec<Vec<u8>> = lp.iter().map(|e| e.to_vec()).collect();
        assert_eq!(raw[1], b"1.5");
        assert_eq!(raw[5], b"1e+20");
        assert_eq!(raw[7], b"inf");
        assert!(matches!(lp.iter().nth(1), Some(Elem::Str(_))));
    }

    /// The listpack redis-server 7.0.15 holds after
    /// `ZADD z 1.5 b 3 a inf c 1e20 d -0 e 0.1 f 12345 g -inf h` (from its DUMP payload with
    /// `rdbcompression no`): forkdb's bytes must be the same, so its RDB writer can write them
    /// as they are.
    #[test]
    fn listpack_is_byte_identical_to_redis() {
        let redis = "530000001000816802842d696e6605816502000181660293302e313030303030303030303030\
                     30303030311481620283312e35048161020301816702f13930038164028531652b323006816302\
                     83696e6604ff";
        let want: Vec<u8> = (0..redis.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&redis[i..i + 2], 16).unwrap())
            .collect();
        let mut z = ZSet::new_for(1, L);
        for (s, m) in [
            (1.5, "b"),
            (3.0, "a"),
            (f64::INFINITY, "c"),
            (1e20, "d"),
            (-0.0, "e"),
            (0.1, "f"),
            (12345.0, "g"),
            (f64::NEG_INFINITY, "h"),
        ] {
            add(&mut z, s, m);
        }
        assert_eq!(z.as_listpack().unwrap(), &want[..]);
    }

    #[test]
    fn rdb_views_and_constructors() {
        let lim = Limits {
            entries: 2,
            value: 64,
        };
        let pairs = vec![
            (b"b".to_vec(), 2.0),
            (b"a".to_vec(), 1.0),
            (b"c".to_vec(), 3.0),
        ];
        let big = ZSet::from_pairs(pairs.clone(), lim);
        assert_eq!(big.encoding_name(), "skiplist");
        assert!(big.as_listpack().is_none());
        // ZSET_2 order: from the highest to the lowest, as rdbSaveObject walks the skiplist.
        let order: Vec<Vec<u8>> = big.iter_rdb().map(|(m, _)| m.to_vec()).collect();
        assert_eq!(order, vec![b"c".to_vec(), b"b".to_vec(), b"a".to_vec()]);
        let small = ZSet::from_pairs(pairs[..2].to_vec(), lim);
        let lp = Listpack::from_bytes(small.as_listpack().unwrap().to_vec()).unwrap();
        let z = ZSet::from_listpack(lp.clone(), lim).unwrap();
        assert_eq!(z.encoding_name(), "listpack");
        assert_eq!(z.rank(b"b", false), Some(1));
        let tight = Limits {
            entries: 1,
            value: 64,
        };
        assert_eq!(
            ZSet::from_listpack(lp, tight).unwrap().encoding_name(),
            "skiplist"
        );
        let mut odd = Listpack::new();
        odd.append(b"a").unwrap();
        assert!(ZSet::from_listpack(odd, lim).is_err());
        let mut dup = Listpack::new();
        for e in [&b"a"[..], b"1", b"a", b"2"] {
            dup.append(e).unwrap();
        }
        assert!(ZSet::from_listpack(dup, lim).is_err());
    }

    #[test]
    fn integral_scores_are_integer_entries() {
        let mut z = ZSet::new_for(1, L);
        add(&mut z, 3.0, "x");
        add(&mut z, -0.0, "y");
        let lp = Listpack::from_bytes(z.as_listpack().unwrap().to_vec()).unwrap();
        let v: Vec<Elem> = lp.iter().collect();
        assert_eq!(v[1], Elem::Int(0));
        assert_eq!(v[3], Elem::Int(3));
    }

    #[test]
    fn converts_past_entry_and_value_thresholds() {
        let lim = Limits {
            entries: 4,
            value: 8,
        };
        let mut z = ZSet::new_for(1, lim);
        for i in 0..4 {
            z.add(
                i as f64,
                format!("m{i}").as_bytes(),
                AddFlags::default(),
                lim,
            );
        }
        assert_eq!(z.encoding_name(), "listpack");
        z.add(9.0, b"m9", AddFlags::default(), lim);
        assert_eq!(z.encoding_name(), "skiplist");
        assert_eq!(z.len(), 5);
        let mut z = ZSet::new_for(1, lim);
        z.add(1.0, b"123456789", AddFlags::default(), lim);
        assert_eq!(z.encoding_name(), "skiplist");
        assert_eq!(ZSet::new_for(9, lim).encoding_name(), "skiplist");
        // Store results go back to a listpack when small.
        let z = ZSet::from_pairs(vec![(b"a".to_vec(), 1.0)], lim);
        assert_eq!(z.encoding_name(), "listpack");
    }

    #[test]
    fn big_matches_a_model() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let lim = Limits {
            entries: 0,
            value: 64,
        };
        let mut z = ZSet::new_for(1, lim);
        let mut model: std::collections::BTreeMap<Vec<u8>, f64> = Default::default();
        for i in 0..20000 {
            let m = format!("m{}", rng.gen_range(0..800)).into_bytes();
            // Ties (few scores), and small moves of a present member's score, which mostly stay
            // between the record's neighbours and are updated in place.
            let s = match model.get(&m) {
                Some(cur) if rng.gen_bool(0.5) => cur + f64::from(rng.gen_range(-2..=2i8)) / 4.0,
                _ => f64::from(rng.gen_range(0..50u8)),
            };
            if rng.gen_bool(0.3) {
                assert_eq!(z.remove(&m), model.remove(&m).is_some());
            } else {
                z.add(s, &m, AddFlags::default(), lim);
                model.insert(m, s);
            }
            if i % 97 == 0 {
                let Repr::Big(b) = &z.0 else {
                    panic!("not big")
                };
                b.check();
            }
        }
        let mut want: Vec<(Vec<u8>, f64)> = model.into_iter().collect();
        want.sort_by(|a, b| cmp_pair(a.1, &a.0, b.1, &b.0));
        assert_eq!(members(&z), want);
        for (i, (m, s)) in want.iter().enumerate() {
            assert_eq!(z.rank(m, false), Some(i));
            assert_eq!(z.score(m), Some(*s));
            let (am, as_) = z.at(i).unwrap();
            assert_eq!((am.to_vec(), as_), (m.clone(), *s));
        }
        let r: Vec<_> = z.range(10, 20, true).map(|(m, _)| m.to_vec()).collect();
        let w: Vec<_> = want[10..20].iter().rev().map(|(m, _)| m.clone()).collect();
        assert_eq!(r, w);
        let below10 = want.iter().filter(|(_, s)| *s < 10.0).count();
        assert_eq!(z.count_while(0, |_, s| s < 10.0), below10);
        let n = z.len();
        assert_eq!(z.remove_range(5, 15), 10);
        assert_eq!(z.len(), n - 10);
        assert_eq!(z.clone().len(), n - 10);
    }

    #[test]
    fn flags() {
        let mut z = ZSet::new_for(1, L);
        add(&mut z, 1.0, "a");
        let nx = AddFlags {
            nx: true,
            ..Default::default()
        };
        assert_eq!(z.add(5.0, b"a", nx, L), AddOutcome::Nop);
        let gt = AddFlags {
            gt: true,
            ..Default::default()
        };
        assert_eq!(z.add(0.0, b"a", gt, L), AddOutcome::Nop);
        assert_eq!(z.add(2.0, b"a", gt, L), AddOutcome::Updated(2.0));
        let incr = AddFlags {
            incr: true,
            ..Default::default()
        };
        assert_eq!(
            z.add(f64::INFINITY, b"a", incr, L),
            AddOutcome::Updated(f64::INFINITY)
        );
        assert_eq!(z.add(f64::NEG_INFINITY, b"a", incr, L), AddOutcome::Nan);
        assert_eq!(z.rank(b"a", true), Some(0));
    }

    /// The large encoding's chunks never hold room for more than `CHUNK` records (a full chunk
    /// splits before the insert, not after a doubling), whether members come in random order
    /// or in score order, and order and ranks stay right across the splits.
    #[test]
    fn chunks_split_before_they_grow() {
        for ordered in [false, true] {
            let mut z = ZSet::new_for(1, L);
            let n = 5000u64;
            for i in 0..n {
                // A permutation of 0..n when not ordered (n and 2719 are coprime).
                let k = if ordered { i } else { i * 2719 % n };
                add(&mut z, k as f64, &format!("m{k}"));
            }
            let Repr::Big(b) = &z.0 else {
                panic!("{n} members are past the listpack limit");
            };
            assert!(b
                .chunks
                .iter()
                .all(|c| c.capacity() <= CHUNK && !c.is_empty()));
            let held: usize = b.chunks.iter().map(Vec::len).sum();
            assert_eq!(held, n as usize);
            if ordered {
                assert!(
                    b.chunks.len() as u64 <= n.div_ceil(CHUNK as u64),
                    "full chunks"
                );
            }
            for k in [0, 1, 63, 64, 65, 127, 128, 129, 2500, n - 1] {
                assert_eq!(z.rank(format!("m{k}").as_bytes(), false), Some(k as usize));
            }
            let scores: Vec<f64> = z.iter().map(|(_, s)| s).collect();
            assert!(scores.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
