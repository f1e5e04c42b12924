//! The container value types, one module each: lists, hashes, sets and sorted sets.
//!
//! What each owns: the in-memory layout of its type (the compact encoding Redis 7.0 uses for
//! small values — listpack, intset — and the large one past the `*-max-*` thresholds, with the
//! conversions between them) and the operations its commands need. What each may touch: its own
//! value only. A type never reaches the keyspace: commands get a `&mut` to a value from the
//! keyspace's write path (`store::Slot::list_mut` and its siblings), which has already told the
//! `before_write` hook, so a type module cannot change data behind the snapshot's back.

pub mod hash;
pub mod list;
pub mod set;
pub mod zset;

pub use hash::Hash;
pub use list::List;
pub use set::Set;
pub use zset::ZSet;

/// An iterator that knows its length up front: the RDB writer writes a container's element
/// count before its elements, and a walk over a container's parts (chunks, nodes) does not know
/// it by itself. `len` must be what `it` yields; the writer checks, and fails the save rather
/// than write a file whose count lies.
pub struct Counted<I> {
    it: I,
    left: usize,
}

impl<I> Counted<I> {
    pub fn new(it: I, len: usize) -> Counted<I> {
        Counted { it, left: len }
    }
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.it.next()?;
        self.left = self.left.saturating_sub(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<I: Iterator> ExactSizeIterator for Counted<I> {}
