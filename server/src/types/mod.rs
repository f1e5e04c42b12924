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
