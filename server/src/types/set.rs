//! Sets: the value type behind `Value::Set`, with Redis 7.0's two encodings.
//!
//! ```text
//! Set ─ Repr::Intset(Intset)     every member an integer (Redis's string2ll rules), at most
//!     │                          `set-max-intset-entries`: Redis's intset bytes, one allocation
//!     └ Repr::Table(Box<Table>)  otherwise: the keyspace's table layout with no values
//!                                (`store::dict::Table`: u32 hash index + dense vector)
//! ```
//!
//! What it owns: the members and their layout, the conversion from intset to table (one way
//! only, as in Redis 7.0: a set that became a table stays one, whatever is removed), uniform
//! random picks, and the SSCAN walk. What it may touch: nothing but its own value. Commands
//! (`cmd/set.rs`) get `&mut Set` only through the keyspace's write path.
//!
//! # Why this layout
//!
//! - **Intset**: the exact bytes redis-server builds ([`forkdb_snapshot::blob::Intset`]), so the
//!   RDB writer writes `SET_INTSET` by reference ([`Set::as_intset`]) and a small set is one
//!   allocation: a write dirties only the pages of that one blob during a save, and during a
//!   fork save not even those: its first change goes to a copy (`types::forward`).
//! - **Table**: members in one dense vector plus a hash index of `u32` positions into it (the
//!   keyspace's own table, `store::dict`, with no values).
//!   The dense vector gives what a set needs beyond lookups: a uniform random pick in O(1)
//!   (SPOP, SRANDMEMBER: Redis needs `dictGetFairRandomKey` for that), and an SSCAN cursor that
//!   is simply an index walked downwards, stable across inserts and deletes for the same reason
//!   as the keyspace's SCAN (see `store.rs`): a delete only moves the *last* member into the
//!   hole. Members are the keyspace's [`Key`]s, holding up to 23 bytes inline, so a typical
//!   member costs no allocation of its own: 24 bytes per member (the vector grows by a quarter
//!   when large) plus the index (5 bytes per slot, 1.14 to 2.3 slots a member), where Redis
//!   spends a dictEntry, an sds allocation and a bucket pointer. No hash is stored: a resize
//!   hashes the members again.
//!   The hasher is foldhash (fast, seeded per table at random): members come from clients, and
//!   a per-table random seed keeps crafted collisions from being reusable across tables.

use forkdb_snapshot::blob::{string_to_i64, Elem, Intset};
use rand::Rng;

use super::forward::Fwd;
use crate::store::dict;
use crate::store::Key;

/// A member of a table-encoded set: up to 23 bytes inline.
pub type Member = Key;

type Table = dict::Table<(), foldhash::fast::RandomState>;

/// Redis caps `set-max-intset-entries` at 2^30 (intset internals); so does forkdb.
const INTSET_HARD_MAX: usize = 1 << 30;

/// A set. See the module docs.
#[derive(Debug, Clone)]
pub struct Set {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// Forwarded to a copy on its first change during a fork save (`types::forward`).
    Intset(Fwd<Intset>),
    Table(Box<Table>),
}

impl Default for Set {
    fn default() -> Self {
        Set::new()
    }
}

/// A set read from an RDB file held the same member twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Duplicate set members detected")]
pub struct DuplicateMember;

fn new_table(capacity: usize) -> Box<Table> {
    Box::new(Table::with_capacity_and_hasher(
        capacity,
        foldhash::fast::RandomState::default(),
    ))
}

/// Inserts into a table (which grows its dense vector by a quarter when large and full, not to
/// what the index can hold: see `store::dict`).
fn insert_member(t: &mut Table, member: &[u8]) -> bool {
    t.insert(member, ())
}

impl Set {
    /// An empty intset (Redis's `createIntsetObject`): what *STORE commands start from.
    pub fn new() -> Set {
        Set {
            repr: Repr::Intset(Fwd::new(Intset::new())),
        }
    }

    /// An empty set that can hold `first` (Redis's `setTypeCreate`): an intset if `first` is an
    /// integer, else a table.
    pub fn for_member(first: &[u8]) -> Set {
        if string_to_i64(first).is_some() {
            Set::new()
        } else {
            Set {
                repr: Repr::Table(new_table(0)),
            }
        }
    }

    /// Elements held.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Intset(is) => is.get().len(),
            Repr::Table(t) => t.len(),
        }
    }

    /// True when empty (the keyspace never keeps an empty container: Redis deletes the key).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoding OBJECT ENCODING reports, Redis 7.0's name.
    pub fn encoding_name(&self) -> &'static str {
        match &self.repr {
            Repr::Intset(_) => "intset",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Bytes this value holds on the heap (for memory estimates). O(n) for a table: members
    /// longer than the inline size have their own buffers.
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Intset(is) => is.get().capacity(),
            Repr::Table(t) => std::mem::size_of::<Table>() + t.heap_size(),
        }
    }

    /// Is `member` in the set (`setTypeIsMember`)? For an intset only a canonical integer
    /// can be (`"012"` is not `12`).
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Intset(is) => string_to_i64(member).is_some_and(|v| is.get().contains(v)),
            Repr::Table(t) => t.contains_key(member),
        }
    }

    /// [`Set::contains`] for a member given as an [`Elem`] (from another set's iteration):
    /// an integer is looked up in an intset without formatting it.
    pub fn contains_elem(&self, e: Elem<'_>) -> bool {
        match (e, &self.repr) {
            (Elem::Int(v), Repr::Intset(is)) => is.get().contains(v),
            (Elem::Int(v), Repr::Table(t)) => {
                t.contains_key(itoa::Buffer::new().format(v).as_bytes())
            }
            (Elem::Str(b), _) => self.contains(b),
        }
    }

    /// [`Set::add`] for a member given as an [`Elem`].
    pub fn add_elem(&mut self, e: Elem<'_>, max_intset: usize) -> bool {
        match e {
            Elem::Int(v) => self.add(itoa::Buffer::new().format(v).as_bytes(), max_intset),
            Elem::Str(b) => self.add(b, max_intset),
        }
    }

    /// [`Set::remove`] for a member given as an [`Elem`].
    pub fn remove_elem(&mut self, e: Elem<'_>) -> bool {
        match e {
            Elem::Int(v) => self.remove(itoa::Buffer::new().format(v).as_bytes()),
            Elem::Str(b) => self.remove(b),
        }
    }

    /// Adds `member` (`setTypeAdd`); false if it was there. An intset becomes a table when
    /// `member` is not an integer or when it would hold more than `max_intset` members.
    pub fn add(&mut self, member: &[u8], max_intset: usize) -> bool {
        let max_intset = max_intset.min(INTSET_HARD_MAX);
        match &mut self.repr {
            Repr::Table(t) => insert_member(t, member),
            Repr::Intset(is) => match string_to_i64(member) {
                Some(v) => {
                    if is.get().contains(v) {
                        // Unchanged: no copy during a fork save.
                        return false;
                    }
                    // Fails only at u32::MAX members, far above the 2^30 cap that converts first.
                    let added = is.change(|is| is.insert(v)).unwrap_or(false);
                    if added && is.get().len() > max_intset {
                        self.convert();
                    }
                    added
                }
                None => {
                    self.convert();
                    match &mut self.repr {
                        Repr::Table(t) => insert_member(t, member),
                        Repr::Intset(_) => false,
                    }
                }
            },
        }
    }

    /// Removes `member` (`setTypeRemove`); false if it was not there. Never converts back.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Intset(is) => match string_to_i64(member) {
                // Only a change (a member that is there) copies during a fork save.
                Some(v) if is.get().contains(v) => is.change(|is| is.remove(v)),
                _ => false,
            },
            Repr::Table(t) => {
                let removed = t.swap_remove(member).is_some();
                // Give memory back as Redis's `htNeedsResize` does (below 10% full), but keep
                // small tables alone.
                if removed && t.capacity() > 64 && t.len() * 10 < t.capacity() {
                    t.shrink_to_fit();
                }
                removed
            }
        }
    }

    /// After a fork save: an intset forwarded during it takes its copy back (`types::forward`).
    pub fn heal(&mut self) {
        if let Repr::Intset(is) = &mut self.repr {
            is.heal();
        }
    }

    /// Intset → table, presized (`setTypeConvert`).
    fn convert(&mut self) {
        if let Repr::Intset(is) = &self.repr {
            let is = is.get();
            let mut t = new_table(is.len() + 1);
            for v in is.iter() {
                insert_member(&mut t, itoa::Buffer::new().format(v).as_bytes());
            }
            self.repr = Repr::Table(t);
        }
    }

    /// The member at position `i`: the `i`th smallest of an intset, the `i`th entry of a table.
    pub fn get(&self, i: usize) -> Option<Elem<'_>> {
        match &self.repr {
            Repr::Intset(is) => is.get().get(i).map(Elem::Int),
            Repr::Table(t) => t.get_index(i).map(|(m, _)| Elem::Str(m)),
        }
    }

    /// A member picked uniformly at random, None when empty.
    pub fn random(&self, rng: &mut impl Rng) -> Option<Elem<'_>> {
        match self.len() {
            0 => None,
            n => self.get(rng.gen_range(0..n)),
        }
    }

    /// Removes and returns a member picked uniformly at random (SPOP), as its bytes.
    pub fn pop_random(&mut self, rng: &mut impl Rng) -> Option<Vec<u8>> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let i = rng.gen_range(0..n);
        match &mut self.repr {
            Repr::Intset(is) => {
                let v = is.get().get(i)?;
                is.change(|is| is.remove(v));
                Some(v.to_string().into_bytes())
            }
            Repr::Table(t) => t.swap_remove_index(i).map(|(m, _)| m.to_vec()),
        }
    }

    /// The members in order: ascending for an intset, entry order for a table.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Intset(is) => Iter::Int(is.get().iter()),
            Repr::Table(t) => Iter::Table(t.entries().iter()),
        }
    }

    /// One SSCAN step: calls `found` for the members visited, returns the next cursor (0 when
    /// done). An intset is returned whole in one call with cursor 0, as Redis does for its
    /// compact encodings; a table is walked by index downwards from `cursor` (0 starts at the
    /// top), `count` entries per call, which no insert or delete can make skip a member that
    /// stays in the set (see the module docs).
    pub fn scan(&self, cursor: u64, count: usize, mut found: impl FnMut(Elem<'_>)) -> u64 {
        match &self.repr {
            Repr::Intset(is) => {
                is.get().iter().for_each(|v| found(Elem::Int(v)));
                0
            }
            Repr::Table(t) => {
                let len = t.len() as u64;
                let mut upper = if cursor == 0 || cursor > len {
                    len
                } else {
                    cursor
                };
                let mut visited = 0;
                while upper > 0 && visited < count {
                    upper -= 1;
                    visited += 1;
                    if let Some((m, _)) = t.get_index(upper as usize) {
                        found(Elem::Str(m));
                    }
                }
                upper
            }
        }
    }

    /// The intset's bytes, exactly what an RDB file's `SET_INTSET` (type 11) holds; None for a
    /// table, which the RDB writer writes as `SET` (type 2): the length, then each member of
    /// [`Set::iter`] as a string.
    pub fn as_intset(&self) -> Option<&[u8]> {
        match &self.repr {
            Repr::Intset(is) => Some(is.get().as_bytes()),
            Repr::Table(_) => None,
        }
    }

    /// The members of a table, by reference, for the RDB writer's `SET` record (its length
    /// goes first, so the iterator knows it); None for an intset, which the writer takes whole
    /// from [`Set::as_intset`].
    pub fn table_members(&self) -> Option<impl ExactSizeIterator<Item = &[u8]>> {
        match &self.repr {
            Repr::Intset(_) => None,
            Repr::Table(t) => Some(t.iter().map(|(m, _)| &m[..])),
        }
    }

    /// A set from a validated intset read from an RDB file or a RESTORE payload, adopted as
    /// is; converted to a table if it holds more than `max_intset` members (Redis's loader).
    pub fn from_intset(is: Intset, max_intset: usize) -> Set {
        let mut s = Set {
            repr: Repr::Intset(Fwd::new(is)),
        };
        if s.len() > max_intset.min(INTSET_HARD_MAX) {
            s.convert();
        }
        s
    }

    /// A set from members read one by one (an RDB `SET`, or a 7.2 `SET_LISTPACK`), in the
    /// encoding Redis 7.0's loader gives it: a table from the start when there are more than
    /// `max_intset`, else an intset until a member is not an integer. A member given twice is
    /// an error, as in Redis's loader.
    pub fn from_members<'a>(
        members: impl ExactSizeIterator<Item = Elem<'a>>,
        max_intset: usize,
    ) -> Result<Set, DuplicateMember> {
        let n = members.len();
        let mut s = if n > max_intset.min(INTSET_HARD_MAX) {
            Set {
                repr: Repr::Table(new_table(n)),
            }
        } else {
            Set::new()
        };
        for m in members {
            if !s.add_elem(m, max_intset) {
                return Err(DuplicateMember);
            }
        }
        Ok(s)
    }
}

/// The members of a [`Set`] in order (see [`Set::iter`]).
pub enum Iter<'a> {
    Int(forkdb_snapshot::blob::intset::Iter<'a>),
    Table(std::slice::Iter<'a, (Member, ())>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;

    fn next(&mut self) -> Option<Elem<'a>> {
        match self {
            Iter::Int(it) => it.next().map(Elem::Int),
            Iter::Table(it) => it.next().map(|(m, _)| Elem::Str(m)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Int(it) => it.size_hint(),
            Iter::Table(it) => it.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &Set) -> Vec<Vec<u8>> {
        s.iter().map(|e| e.to_vec()).collect()
    }

    fn sorted(s: &Set) -> Vec<Vec<u8>> {
        let mut m = members(s);
        m.sort();
        m
    }

    #[test]
    fn an_intset_is_forwarded_once_per_fork_save_leaving_its_handle_alone() {
        use crate::types::{fork_save_ended, fork_save_started, set_forward_budget};
        use crate::types::{forward, kept_bytes};
        let own = |s: &Set| match &s.repr {
            Repr::Intset(is) => (
                is.own().as_bytes().as_ptr() as usize,
                is.own().as_bytes().to_vec(),
                is.is_forwarded(),
            ),
            Repr::Table(_) => panic!("not an intset"),
        };
        let mut s = Set::new();
        for j in 0..50 {
            s.add((2 * j).to_string().as_bytes(), 512);
        }
        let (at0, bytes0, _) = own(&s);
        let cap0 = s.heap_size();
        fork_save_started(1_000_000);
        set_forward_budget(1 << 20, true);
        // What changes nothing copies nothing: a member already there, one that is not.
        assert!(!s.add(b"4", 512));
        assert!(!s.remove(b"5"));
        assert!(s.contains(b"4"));
        assert_eq!(own(&s), (at0, bytes0.clone(), false));
        // The first change goes to a copy: the handle and its buffer stay as at the fork.
        assert!(s.remove(b"4"));
        assert!(s.add(b"5", 512));
        assert_eq!(own(&s), (at0, bytes0.clone(), true));
        assert_eq!((forward::live(), kept_bytes()), (1, cap0));
        assert!(!s.contains(b"4") && s.contains(b"5"));
        let popped = s.pop_random(&mut rand::thread_rng()).unwrap();
        assert!(!s.contains(&popped));
        assert_eq!(own(&s), (at0, bytes0.clone(), true));
        assert_eq!(forward::live(), 1);
        let want = members(&s);
        assert_eq!(want.len(), 49);
        assert_eq!(members(&s.clone()), want);
        assert_eq!(s.as_intset(), s.clone().as_intset());
        fork_save_ended();
        s.heal();
        assert!(!own(&s).2);
        assert_eq!(members(&s), want);
        assert_eq!((forward::live(), kept_bytes()), (0, 0));
        // A change after the save, to a handle that was not healed, takes the copy back first.
        fork_save_started(1_000_000);
        set_forward_budget(1 << 20, true);
        assert!(s.add(b"1001", 512));
        assert!(own(&s).2);
        fork_save_ended();
        assert!(s.add(b"1003", 512));
        assert!(!own(&s).2);
        assert!(s.contains(b"1001") && s.contains(b"1003"));
        assert_eq!(forward::live(), 0);
    }

    #[test]
    fn integers_stay_an_intset_in_redis_bytes() {
        let mut s = Set::for_member(b"3");
        assert!(s.add(b"3", 512));
        assert!(s.add(b"-1", 512));
        assert!(s.add(b"2", 512));
        assert!(!s.add(b"2", 512));
        assert_eq!(s.encoding_name(), "intset");
        assert_eq!(members(&s), [b"-1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
        // encoding 2, length 3, then -1, 2, 3 as little-endian i16.
        assert_eq!(
            s.as_intset().unwrap(),
            [2, 0, 0, 0, 3, 0, 0, 0, 0xff, 0xff, 2, 0, 3, 0]
        );
        assert!(s.contains(b"2"));
        assert!(!s.contains(b"02"), "only canonical integers are members");
        assert!(!s.contains(b"x"));
    }

    #[test]
    fn a_non_integer_converts_for_good() {
        let mut s = Set::for_member(b"1");
        s.add(b"1", 512);
        s.add(b"012", 512);
        assert_eq!(s.encoding_name(), "hashtable");
        assert_eq!(sorted(&s), [b"012".to_vec(), b"1".to_vec()]);
        assert!(s.remove(b"012"));
        assert_eq!(s.encoding_name(), "hashtable", "no conversion back");
        assert!(s.contains(b"1"));
        assert!(s.as_intset().is_none());
        assert_eq!(Set::for_member(b"a").encoding_name(), "hashtable");
    }

    #[test]
    fn more_than_max_entries_converts() {
        let mut s = Set::new();
        for i in 0..4 {
            s.add(i.to_string().as_bytes(), 4);
        }
        assert_eq!(s.encoding_name(), "intset");
        assert!(!s.add(b"3", 4), "a duplicate does not convert");
        assert_eq!(s.encoding_name(), "intset");
        s.add(b"4", 4);
        assert_eq!(s.encoding_name(), "hashtable");
        assert_eq!(s.len(), 5);
        assert!((0..5).all(|i| s.contains(i.to_string().as_bytes())));
    }

    #[test]
    fn remove_and_pop_empty_the_set() {
        let mut rng = rand::thread_rng();
        for first in [&b"1"[..], b"a"] {
            let mut s = Set::for_member(first);
            for m in [first, b"2", b"3"] {
                s.add(m, 512);
            }
            assert!(s.remove(b"2"));
            assert!(!s.remove(b"2"));
            assert!(!s.remove(b"nope"));
            let mut popped = vec![s.pop_random(&mut rng).unwrap()];
            popped.push(s.pop_random(&mut rng).unwrap());
            popped.sort();
            let mut want = vec![first.to_vec(), b"3".to_vec()];
            want.sort();
            assert_eq!(popped, want);
            assert!(s.is_empty());
            assert!(s.pop_random(&mut rng).is_none());
            assert!(s.random(&mut rng).is_none());
        }
    }

    #[test]
    fn random_picks_reach_every_member() {
        let mut rng = rand::thread_rng();
        for first in [&b"0"[..], b"x"] {
            let mut s = Set::for_member(first);
            s.add(first, 512);
            for i in 1..20 {
                s.add(i.to_string().as_bytes(), 512);
            }
            let mut seen = std::collections::HashSet::new();
            for _ in 0..2000 {
                seen.insert(s.random(&mut rng).unwrap().to_vec());
            }
            assert_eq!(seen.len(), 20);
        }
    }

    #[test]
    fn scan_sees_every_member_despite_deletes() {
        let mut s = Set::for_member(b"m");
        for i in 0..100 {
            s.add(format!("m{i}").as_bytes(), 512);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut deleted = 0;
        loop {
            cursor = s.scan(cursor, 7, |e| {
                seen.insert(e.to_vec());
            });
            // Delete members already returned: what stays must still be found.
            if deleted < 30 {
                let victim = seen.iter().find(|m| s.contains(m)).cloned();
                if let Some(v) = victim {
                    s.remove(&v);
                    deleted += 1;
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for m in s.iter() {
            assert!(seen.contains(&m.to_vec()));
        }
        let mut ints = Set::new();
        ints.add(b"5", 512);
        ints.add(b"1", 512);
        let mut got = Vec::new();
        assert_eq!(ints.scan(0, 1, |e| got.push(e.to_vec())), 0);
        assert_eq!(got, [b"1".to_vec(), b"5".to_vec()]);
    }

    #[test]
    fn loaded_content_takes_the_loaders_encoding() {
        let mut is = Intset::new();
        for v in [1, 2, 3] {
            is.insert(v).unwrap();
        }
        assert_eq!(Set::from_intset(is.clone(), 512).encoding_name(), "intset");
        let big = Set::from_intset(is, 2);
        assert_eq!(big.encoding_name(), "hashtable");
        assert_eq!(big.len(), 3);

        let ints = [Elem::Int(5), Elem::Str(b"7")];
        let s = Set::from_members(ints.into_iter(), 512).unwrap();
        assert_eq!(s.encoding_name(), "intset");
        let mixed = [Elem::Str(b"a"), Elem::Int(1)];
        let s = Set::from_members(mixed.into_iter(), 512).unwrap();
        assert_eq!(s.encoding_name(), "hashtable");
        let many = [Elem::Int(1), Elem::Int(2), Elem::Int(3)];
        let s = Set::from_members(many.into_iter(), 2).unwrap();
        assert_eq!(s.encoding_name(), "hashtable");
        let dup = [Elem::Int(1), Elem::Str(b"1")];
        assert_eq!(
            Set::from_members(dup.into_iter(), 512).unwrap_err(),
            DuplicateMember
        );
    }

    /// The dense vector of a large table stays within a quarter of its members (plus one
    /// growth step), where indexmap's policy left up to 1.75 times.
    #[test]
    fn a_large_table_does_not_overallocate() {
        let mut s = Set::for_member(b"m");
        for i in 0..200_000 {
            s.add(format!("m{i}").as_bytes(), 512);
            if let Repr::Table(t) = &s.repr {
                if i >= 2048 {
                    assert!(
                        t.vec_capacity() * 4 <= t.len() * 5 + 4,
                        "{} members, capacity {}",
                        t.len(),
                        t.vec_capacity()
                    );
                }
            }
        }
        assert_eq!(s.len(), 200_000);
    }

    #[test]
    fn the_handle_is_small() {
        assert!(std::mem::size_of::<Set>() <= 24);
    }
}
