//! Sorted sets: the value type behind `Value::ZSet`.
//!
//! A placeholder until the sorted sets work lands: no command creates one yet, so the keyspace never
//! holds one. What the keyspace needs of the type (its encoding name for OBJECT ENCODING, its
//! heap size for MEMORY USAGE and eviction, its length) is the interface below; the type's own
//! operations, its compact and large encodings and their conversions belong in this file, the
//! commands in `cmd/zset.rs`.

/// Sorted sets (placeholder: see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ZSet {
    _private: (),
}

impl ZSet {
    /// Elements held.
    pub fn len(&self) -> usize {
        0
    }

    /// True when empty (the keyspace never keeps an empty container: Redis deletes the key).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoding OBJECT ENCODING reports, Redis 7.0's name.
    pub fn encoding_name(&self) -> &'static str {
        "listpack"
    }

    /// Bytes this value holds on the heap (for memory estimates).
    pub fn heap_size(&self) -> usize {
        0
    }
}
