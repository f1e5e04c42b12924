//! [`Key`]: a key's bytes as the keyspace tables hold them, 24 bytes, inline up to 23.
//!
//! Every key sits in its table's dense vector, so its handle is paid once per key: 24 bytes
//! instead of the 32 of a `SmallVec<[u8; 24]>`. Keys of up to 23 bytes (most keys people use:
//! `user:1000:session`, `key:000000012345`) live in the handle itself and cost no allocation;
//! longer ones get an exact-size heap buffer, as Redis's sds key would.
//!
//! Written here rather than taken from a crate: it is a two-variant enum with no `unsafe`. rustc
//! stores the inline length (plus one, so never zero) in the first byte and marks the heap
//! variant with a zero there, placing the `Box<[u8]>` after it: that is all `compact_bytes`
//! (a young crate, built on `unsafe`) would give.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU8;

/// Bytes of a key held inline.
pub const KEY_INLINE: usize = 23;

/// A key (see the module docs).
#[derive(Clone)]
pub struct Key(Repr);

#[derive(Clone)]
enum Repr {
    /// `len` is the length plus one.
    Inline {
        len: NonZeroU8,
        bytes: [u8; KEY_INLINE],
    },
    Heap(Box<[u8]>),
}

impl Key {
    pub fn from_slice(key: &[u8]) -> Key {
        Key(
            match u8::try_from(key.len() + 1).ok().and_then(NonZeroU8::new) {
                Some(len) if key.len() <= KEY_INLINE => {
                    let mut bytes = [0; KEY_INLINE];
                    bytes[..key.len()].copy_from_slice(key);
                    Repr::Inline { len, bytes }
                }
                _ => Repr::Heap(key.into()),
            },
        )
    }

    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(len.get() - 1)],
            Repr::Heap(b) => b,
        }
    }

    /// Does the key have a heap buffer of its own (longer than [`KEY_INLINE`])?
    pub fn spilled(&self) -> bool {
        matches!(self.0, Repr::Heap(_))
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Hashes and compares as its bytes, so that tables keyed by `Key` are looked up by `&[u8]`.
impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?})", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_up_to_23_bytes_in_24() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        for n in [0, 1, 16, KEY_INLINE, KEY_INLINE + 1, 300] {
            let bytes: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let k = Key::from_slice(&bytes);
            assert_eq!(k.as_slice(), &bytes[..]);
            assert_eq!(k.spilled(), n > KEY_INLINE, "{n} bytes");
            assert_eq!(k.clone(), k);
            let mut a = std::collections::hash_map::DefaultHasher::new();
            let mut b = std::collections::hash_map::DefaultHasher::new();
            k.hash(&mut a);
            bytes[..].hash(&mut b);
            assert_eq!(a.finish(), b.finish(), "hashes as its bytes");
        }
    }
}
