//! [`Table`]: the keyspace's hash table, a dense vector of (key, value) plus a hash index of
//! `u32` positions into it. Each database has two: `dict` (key → entry) and `expires` (key →
//! absolute expiry in ms, only keys with a TTL, as Redis's `db->expires`).
//!
//! What it owns: the layout and the rules the store's walks rely on. The dense vector gives O(1)
//! uniform random picks (RANDOMKEY, active expiry, eviction sampling) and a cursor that survives
//! inserts and deletes: a delete is a swap-remove (the *last* entry moves into the hole), so an
//! entry below a downward cursor stays below it (SCAN, the forkless save's walk; see `store.rs`).
//!
//! # Why not `IndexMap`, which has the same semantics
//!
//! Memory per key. An `IndexMap` bucket stores the key's hash beside it (8 bytes a key), its
//! index holds `usize` positions (8 bytes + 1 control byte a slot, 1.14 to 2.3 slots a key),
//! and it grows its dense vector to what the index can hold, so right after the index doubles
//! the vector has room for 1.75 times the keys (allocated, counted in `used_memory`, never
//! touched). Here no hash is stored (a resize hashes the keys again, which a doubling's walk
//! over every entry makes cheap beside its cache misses), positions are `u32` (5 bytes a slot),
//! and the vector grows by a quarter at a time once it is large (within 1.25 times the keys;
//! `realloc` moves a large vector by remapping its pages, not copying them). That is 12 to 17
//! bytes a key less for the bucket and the index, and up to 75 % of the vector's spare room.
//!
//! A table holds at most `u32::MAX` entries (a database that many keys, a set that many
//! members): 100 GiB and more of table entries alone, more than a forkdb server addresses in
//! practice; an insert past it aborts with a message saying so.
//!
//! Hashing: the keyspace's tables use SipHash-1-3 with a random key per database (std's
//! `RandomState`, the default), as the keyspace had before, for the reason Redis's dict uses
//! SipHash: keys come from clients. Both tables of a database share one hasher, so a lookup of a
//! key with a TTL hashes it once for both.
//!
//! Large sets (`types/set.rs`) use the same table with no value (`Table<(), foldhash>`): the
//! same layout saves them the same bytes per member. It is a container, not the keyspace: a
//! set reaches no database through it.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::Key;

/// From this length on the dense vector grows by a quarter when full (below it, as `Vec` does).
const QUARTER_GROWTH_FROM: usize = 1024;

#[derive(Clone)]
pub(crate) struct Table<V, S = RandomState> {
    entries: Vec<(Key, V)>,
    /// Positions in `entries`, hashed by key.
    index: HashTable<u32>,
    hasher: S,
}

impl<V, S> std::fmt::Debug for Table<V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(k, _)| k))
            .finish()
    }
}

impl<V, S: BuildHasher> Table<V, S> {
    pub(crate) fn with_hasher(hasher: S) -> Table<V, S> {
        Table::with_capacity_and_hasher(0, hasher)
    }

    pub(crate) fn with_capacity_and_hasher(n: usize, hasher: S) -> Table<V, S> {
        Table {
            entries: Vec::with_capacity(n),
            index: HashTable::with_capacity(n),
            hasher,
        }
    }

    /// Bytes on the heap: the vector's capacity, the index, the keys' own buffers (O(n)).
    pub(crate) fn heap_size(&self) -> usize {
        let spilled: usize = self
            .entries
            .iter()
            .filter(|(k, _)| k.spilled())
            .map(|(k, _)| k.len())
            .sum();
        self.entries.capacity() * std::mem::size_of::<(Key, V)>()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
            + spilled
    }

    /// Gives back what a table that shrank no longer needs.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index.shrink_to(entries.len(), |&i| {
            hasher.hash_one(entries[i as usize].0.as_slice())
        });
    }

    /// The dense vector's capacity (tests of the growth policy).
    #[cfg(test)]
    pub(crate) fn vec_capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// The entries in table order.
    pub(crate) fn entries(&self) -> &[(Key, V)] {
        &self.entries
    }

    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries the table holds without growing its vector or its index.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity().min(self.index.capacity())
    }

    /// Room for `additional` more entries without growing (the vector exactly, the index to its
    /// next power of two).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.entries.reserve_exact(additional);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index.reserve(additional, |&i| {
            hasher.hash_one(entries[i as usize].0.as_slice())
        });
    }

    /// The position of `key`, whose hash is `hash`.
    pub(crate) fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(hash, |&i| entries[i as usize].0.as_slice() == key)
            .map(|&i| i as usize)
    }

    pub(crate) fn index_of(&self, key: &[u8]) -> Option<usize> {
        self.find(self.hash(key), key)
    }

    pub(crate) fn contains_key(&self, key: &[u8]) -> bool {
        self.index_of(key).is_some()
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        self.index_of(key).map(|i| &self.entries[i].1)
    }

    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.index_of(key).map(|i| &mut self.entries[i].1)
    }

    pub(crate) fn get_index(&self, i: usize) -> Option<(&Key, &V)> {
        self.entries.get(i).map(|(k, v)| (k, v))
    }

    pub(crate) fn get_index_mut(&mut self, i: usize) -> Option<(&Key, &mut V)> {
        self.entries.get_mut(i).map(|(k, v)| (&*k, v))
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (&Key, &V)> + '_ {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> + '_ {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// Adds `key` (hash `hash`), which must be absent. Returns its position (the last).
    pub(crate) fn insert_new(&mut self, hash: u64, key: Key, value: V) -> usize {
        let i = self.entries.len();
        let Ok(pos) = u32::try_from(i) else {
            // See the module docs: 2^32 entries in one table are far past any real server.
            eprintln!("forkdb: a table cannot hold more than {} entries", u32::MAX);
            std::process::abort();
        };
        if i >= QUARTER_GROWTH_FROM && i == self.entries.capacity() {
            self.entries.reserve_exact(i / 4);
        }
        self.entries.push((key, value));
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index.insert_unique(hash, pos, |&j| {
            hasher.hash_one(entries[j as usize].0.as_slice())
        });
        i
    }

    /// Sets `key` to `value`, adding it if absent. Returns true if it was added.
    pub(crate) fn insert(&mut self, key: &[u8], value: V) -> bool {
        let hash = self.hash(key);
        match self.find(hash, key) {
            Some(i) => {
                self.entries[i].1 = value;
                false
            }
            None => {
                self.insert_new(hash, Key::from_slice(key), value);
                true
            }
        }
    }

    /// Removes the entry at `i`; the last entry moves into its place (see the module docs).
    pub(crate) fn swap_remove_index(&mut self, i: usize) -> Option<(Key, V)> {
        let last = self.entries.len().checked_sub(1)?;
        let key = &self.entries.get(i)?.0;
        let hash = self.hasher.hash_one(key.as_slice());
        if let Ok(slot) = self.index.find_entry(hash, |&j| j as usize == i) {
            slot.remove();
        }
        if i != last {
            let moved = self.hasher.hash_one(self.entries[last].0.as_slice());
            if let Some(slot) = self.index.find_mut(moved, |&j| j as usize == last) {
                *slot = i as u32;
            }
        }
        Some(self.entries.swap_remove(i))
    }

    /// Removes `key`, returning its value.
    pub(crate) fn swap_remove(&mut self, key: &[u8]) -> Option<V> {
        let i = self.index_of(key)?;
        self.swap_remove_index(i).map(|(_, v)| v)
    }

    /// Removes the last entry.
    pub(crate) fn pop(&mut self) -> Option<(Key, V)> {
        let last = self.entries.len().checked_sub(1)?;
        self.swap_remove_index(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i:012}").into_bytes()
    }

    #[test]
    fn lookups_and_swap_remove_keep_positions_consistent() {
        let mut t: Table<usize> = Table::with_hasher(RandomState::new());
        for i in 0..5000 {
            let h = t.hash(&key(i));
            assert_eq!(t.insert_new(h, Key::from_slice(&key(i)), i), i);
        }
        // Remove every third key, from the front: each moves the last entry into the hole.
        for i in (0..5000).step_by(3) {
            assert_eq!(t.swap_remove(&key(i)), Some(i));
        }
        assert_eq!(t.len(), 5000 - 5000usize.div_ceil(3));
        for i in 0..5000 {
            assert_eq!(
                t.get(&key(i)).copied(),
                (i % 3 != 0).then_some(i),
                "key {i}"
            );
        }
        for (pos, (k, &v)) in t.iter().enumerate() {
            assert_eq!(k.as_slice(), &key(v)[..]);
            assert_eq!(t.index_of(k), Some(pos));
        }
        while let Some((k, v)) = t.pop() {
            assert_eq!(k.as_slice(), &key(v)[..]);
            assert_eq!(t.index_of(&k), None);
        }
        assert!(t.is_empty());
    }

    /// The dense vector grows by a quarter once large, not to the index's capacity: right
    /// after the index doubled it is not 1.75 times the entries.
    #[test]
    fn the_vector_grows_by_a_quarter() {
        let mut t: Table<()> = Table::with_hasher(RandomState::new());
        for i in 0..100_000 {
            let h = t.hash(&key(i));
            t.insert_new(h, Key::from_slice(&key(i)), ());
            assert!(
                t.entries.capacity() <= (t.len() + t.len() / 4).max(2 * QUARTER_GROWTH_FROM),
                "{} entries, capacity {}",
                t.len(),
                t.entries.capacity()
            );
        }
        let before = t.capacity();
        t.reserve(before / 8 + 64);
        assert!(t.capacity() >= t.len() + before / 8 + 64);
    }
}
