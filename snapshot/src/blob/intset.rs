//! Redis's intset (`src/intset.c`): a sorted set of integers in one
//! allocation, owned, validated, read and mutated in exactly the bytes
//! redis-server builds. Redis uses it for sets whose members are all integers
//! (up to `set-max-intset-entries`, 512), and writes it as is in RDB files
//! (`SET_INTSET`, type 11).
//!
//! # Layout
//!
//! ```text
//! +---------------------------+-----------------------------------------------+
//! | bytes                     | meaning                                       |
//! +---------------------------+-----------------------------------------------+
//! | <u32 LE encoding>         | bytes per element: 2, 4 or 8                  |
//! | <u32 LE length>           | number of elements                            |
//! | <element> * length        | signed little-endian integers of `encoding`   |
//! |                           | bytes, strictly increasing                    |
//! +---------------------------+-----------------------------------------------+
//! ```
//!
//! The encoding is the smallest that holds every element *ever added*:
//! adding a value outside the current width rewrites every element wider
//! (`intsetUpgradeAndAdd`), and removing never narrows it back, exactly as in
//! Redis, so the bytes match Redis's for the same `SADD`/`SREM` sequence.
//!
//! # Guarantees
//!
//! [`Intset::from_bytes`] / [`Intset::validate`] do what Redis's
//! `intsetValidateIntegrity(deep=1)` does: a known encoding, a size of
//! exactly `8 + length * encoding` bytes, at least one element (an empty
//! intset is never written by Redis, and its loader refuses it), strictly
//! increasing elements (sorted, no duplicate). They never panic and never
//! read outside the slice. An [`Intset`] is valid at all times (it may be
//! empty in memory, as `intsetNew` makes it).
//!
//! # Memory and fork
//!
//! `Box<[u8]>` of exactly the intset's size, like [`super::Listpack`]: an
//! insert or remove moves the elements after the change point, so during a
//! save it copies the pages from there to the end.

use super::{read_le, sign_extend, BlobError, BlobKind};

/// Size of the header: encoding (4) and length (4).
pub const HEADER_SIZE: usize = 8;

/// A valid intset, owning its bytes. See the [module docs](self).
pub struct Intset {
    /// The intset (its size follows from its header), then spare capacity up to its size class:
    /// an element added or removed within the class moves bytes inside this buffer and writes
    /// nothing else (not even this handle, which sits in the keyspace entry: rewriting it, even
    /// with the same pointer, would copy the entry's page under a snapshot child).
    bytes: Box<[u8]>,
}

impl Clone for Intset {
    /// An exact copy, without the spare capacity.
    fn clone(&self) -> Self {
        Intset {
            bytes: self.as_bytes().into(),
        }
    }
}

impl PartialEq for Intset {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Intset {}

impl std::hash::Hash for Intset {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Default for Intset {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Intset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// `_intsetValueEncoding`: the smallest width holding `v`.
fn value_encoding(v: i64) -> usize {
    if i32::try_from(v).is_err() {
        8
    } else if i16::try_from(v).is_err() {
        4
    } else {
        2
    }
}

fn get_encoded(bytes: &[u8], i: usize, enc: usize) -> i64 {
    let off = HEADER_SIZE + i * enc;
    let v = match enc {
        2 => read_le::<2>(bytes, off),
        4 => read_le::<4>(bytes, off),
        _ => read_le::<8>(bytes, off),
    }
    .expect("intset: element index within the validated length");
    sign_extend(v, 8 * enc as u32)
}

fn set_encoded(bytes: &mut [u8], i: usize, enc: usize, v: i64) {
    let off = HEADER_SIZE + i * enc;
    bytes[off..off + enc].copy_from_slice(&v.to_le_bytes()[..enc]);
}

impl Intset {
    /// An empty intset with 16-bit encoding (`intsetNew`).
    pub fn new() -> Self {
        let mut b = [0u8; HEADER_SIZE];
        b[..4].copy_from_slice(&2u32.to_le_bytes());
        Intset { bytes: b.into() }
    }

    /// Takes an intset from outside (an RDB file, a `RESTORE` payload) after
    /// validating it in full ([`Intset::validate`]).
    pub fn from_bytes(bytes: impl Into<Box<[u8]>>) -> Result<Self, BlobError> {
        let bytes = bytes.into();
        Self::validate(&bytes)?;
        Ok(Intset { bytes })
    }

    /// Validates a foreign intset as Redis's `intsetValidateIntegrity` with
    /// `deep = 1` does (an empty one is refused), and returns its number of
    /// elements.
    pub fn validate(bytes: &[u8]) -> Result<usize, BlobError> {
        let err =
            |off: usize, detail: String| BlobError::corrupt(BlobKind::Intset, bytes, off, detail);
        if bytes.len() < HEADER_SIZE {
            return Err(err(
                0,
                format!(
                    "{} bytes, shorter than the {HEADER_SIZE}-byte header",
                    bytes.len()
                ),
            ));
        }
        let enc = read_le::<4>(bytes, 0).unwrap_or(0);
        if !matches!(enc, 2 | 4 | 8) {
            return Err(err(0, format!("encoding {enc}, expected 2, 4 or 8")));
        }
        let enc = enc as usize;
        let count = read_le::<4>(bytes, 4).unwrap_or(0);
        let expected = count * enc as u64 + HEADER_SIZE as u64;
        if expected != bytes.len() as u64 {
            return Err(err(
                4,
                format!(
                    "{count} elements of {enc} bytes need {expected} bytes, the blob has {}",
                    bytes.len()
                ),
            ));
        }
        if count == 0 {
            return Err(err(4, "empty intset".to_string()));
        }
        let count = count as usize;
        let mut prev = get_encoded(bytes, 0, enc);
        for i in 1..count {
            let cur = get_encoded(bytes, i, enc);
            if cur <= prev {
                return Err(err(
                    HEADER_SIZE + i * enc,
                    format!(
                        "element {i} ({cur}) not greater than element {} ({prev})",
                        i - 1
                    ),
                ));
            }
            prev = cur;
        }
        Ok(count)
    }

    /// The intset's bytes, exactly what an RDB file holds for it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.byte_len()]
    }

    /// The bytes, given up (exactly the intset, without spare capacity).
    pub fn into_bytes(self) -> Box<[u8]> {
        if self.bytes.len() == self.byte_len() {
            self.bytes
        } else {
            self.as_bytes().into()
        }
    }

    /// Size in bytes of the intset itself.
    fn byte_len(&self) -> usize {
        HEADER_SIZE + self.len() * self.encoding()
    }

    /// Bytes held, spare capacity included (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.bytes.len()
    }

    /// Bytes per element: 2, 4 or 8.
    pub fn encoding(&self) -> usize {
        read_le::<4>(&self.bytes, 0).unwrap_or(2) as usize
    }

    /// Number of elements (`intsetLen`).
    pub fn len(&self) -> usize {
        read_le::<4>(&self.bytes, 4).unwrap_or(0) as usize
    }

    /// Whether there is no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set_header(&mut self, enc: usize, len: usize) {
        self.bytes[..4].copy_from_slice(&(enc as u32).to_le_bytes());
        self.bytes[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    }

    /// The element at sorted position `i` (`intsetGet`).
    pub fn get(&self, i: usize) -> Option<i64> {
        (i < self.len()).then(|| get_encoded(&self.bytes, i, self.encoding()))
    }

    /// `intsetSearch`: `Ok(position)` if `v` is present, else
    /// `Err(insertion position)`.
    pub fn search(&self, v: i64) -> Result<usize, usize> {
        let len = self.len();
        if len == 0 {
            return Err(0);
        }
        let enc = self.encoding();
        let at = |i| get_encoded(&self.bytes, i, enc);
        if v > at(len - 1) {
            return Err(len);
        }
        if v < at(0) {
            return Err(0);
        }
        let (mut lo, mut hi) = (0usize, len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let cur = at(mid);
            if cur < v {
                lo = mid + 1;
            } else if cur > v {
                hi = mid;
            } else {
                return Ok(mid);
            }
        }
        Err(lo)
    }

    /// Whether `v` is a member (`intsetFind`).
    pub fn contains(&self, v: i64) -> bool {
        value_encoding(v) <= self.encoding() && self.search(v).is_ok()
    }

    /// Adds `v` (`intsetAdd`); `Ok(false)` if it was already there. Fails
    /// only when the set already holds `u32::MAX` elements.
    pub fn insert(&mut self, v: i64) -> Result<bool, BlobError> {
        let len = self.len();
        if len >= u32::MAX as usize {
            return Err(BlobError::TooBig {
                kind: BlobKind::Intset,
                size: len as u64 + 1,
                max: u64::from(u32::MAX),
            });
        }
        let cur = self.encoding();
        let venc = value_encoding(v);
        if venc > cur {
            // A value wider than every element is below or above all of them.
            let need = HEADER_SIZE + (len + 1) * venc;
            if need > self.bytes.len() {
                super::realloc_to_class(&mut self.bytes, need);
            }
            let prepend = usize::from(v < 0);
            // Back to front, so no element is overwritten before it is read.
            for i in (0..len).rev() {
                let x = get_encoded(&self.bytes, i, cur);
                set_encoded(&mut self.bytes, i + prepend, venc, x);
            }
            set_encoded(&mut self.bytes, if prepend == 1 { 0 } else { len }, venc, v);
            self.set_header(venc, len + 1);
            return Ok(true);
        }
        let pos = match self.search(v) {
            Ok(_) => return Ok(false),
            Err(pos) => pos,
        };
        let need = HEADER_SIZE + (len + 1) * cur;
        if need > self.bytes.len() {
            super::realloc_to_class(&mut self.bytes, need);
        }
        let at = HEADER_SIZE + pos * cur;
        self.bytes
            .copy_within(at..HEADER_SIZE + len * cur, at + cur);
        set_encoded(&mut self.bytes, pos, cur, v);
        self.set_header(cur, len + 1);
        Ok(true)
    }

    /// Removes `v` (`intsetRemove`); `false` if it was not there. The
    /// encoding stays as wide as it was.
    pub fn remove(&mut self, v: i64) -> bool {
        let enc = self.encoding();
        if value_encoding(v) > enc {
            return false;
        }
        let Ok(pos) = self.search(v) else {
            return false;
        };
        let len = self.len();
        let at = HEADER_SIZE + pos * enc;
        self.bytes
            .copy_within(at + enc..HEADER_SIZE + len * enc, at);
        self.set_header(enc, len - 1);
        let (need, cap) = (HEADER_SIZE + (len - 1) * enc, self.bytes.len());
        if need < cap / 2 && cap > 128 {
            // Well under its class: a smaller buffer, as a shrinking realloc would.
            super::realloc_to_class(&mut self.bytes, need);
        }
        true
    }

    /// The smallest element.
    pub fn min(&self) -> Option<i64> {
        self.get(0)
    }

    /// The largest element.
    pub fn max(&self) -> Option<i64> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// The elements in increasing order (or decreasing, with `rev`).
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            set: self,
            enc: self.encoding(),
            front: 0,
            back: self.len(),
        }
    }
}

/// Iterator over an intset's elements in order.
#[derive(Clone)]
pub struct Iter<'a> {
    set: &'a Intset,
    enc: usize,
    front: usize,
    back: usize,
}

impl Iterator for Iter<'_> {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        if self.front >= self.back {
            return None;
        }
        let v = get_encoded(&self.set.bytes, self.front, self.enc);
        self.front += 1;
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<i64> {
        if self.front >= self.back {
            return None;
        }
        self.back -= 1;
        Some(get_encoded(&self.set.bytes, self.back, self.enc))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Intset {
    type Item = i64;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_is_intset_new() {
        let s = Intset::new();
        assert_eq!(s.as_bytes(), &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert!(s.is_empty());
        assert!(!s.contains(0));
        // Redis refuses an empty intset in a file.
        assert!(Intset::validate(s.as_bytes()).is_err());
    }

    #[test]
    fn insert_sorts_and_upgrades() {
        let mut s = Intset::new();
        assert_eq!(s.insert(5), Ok(true));
        assert_eq!(s.insert(-3), Ok(true));
        assert_eq!(s.insert(5), Ok(false));
        assert_eq!(s.as_bytes(), &[2, 0, 0, 0, 2, 0, 0, 0, 0xFD, 0xFF, 5, 0]);
        s.insert(70000).unwrap();
        assert_eq!(s.encoding(), 4);
        s.insert(-5_000_000_000).unwrap();
        assert_eq!(s.encoding(), 8);
        assert_eq!(s.iter().collect::<Vec<_>>(), [-5_000_000_000, -3, 5, 70000]);
        assert_eq!(
            s.iter().rev().collect::<Vec<_>>(),
            [70000, 5, -3, -5_000_000_000]
        );
        assert!(s.remove(-5_000_000_000));
        assert!(!s.remove(-5_000_000_000));
        assert_eq!(s.encoding(), 8, "never downgraded, as in Redis");
        assert!(s.contains(70000));
        assert!(!s.contains(i64::MAX));
        assert_eq!(s.min(), Some(-3));
        assert_eq!(s.max(), Some(70000));
        assert_eq!(Intset::validate(s.as_bytes()), Ok(3));
        assert_eq!(s.search(4), Err(1));
        assert_eq!(s.search(5), Ok(1));
    }

    #[test]
    fn corrupt_blobs_are_errors() {
        let mut s = Intset::new();
        for v in [1, 2, 3] {
            s.insert(v).unwrap();
        }
        let good = s.as_bytes().to_vec();
        for n in 0..good.len() {
            assert!(Intset::validate(&good[..n]).is_err());
        }
        let mut dup = good.clone();
        dup[10] = 1; // second element = first
        let e = Intset::validate(&dup).unwrap_err();
        assert_eq!(e.offset(), Some(10));
        let mut enc = good.clone();
        enc[0] = 3;
        assert!(Intset::validate(&enc)
            .unwrap_err()
            .to_string()
            .contains("encoding 3"));
        let mut huge = good.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Intset::validate(&huge).is_err());
    }

    /// Random adds and removes (upgrades included) against a sorted model: the intset stays
    /// valid on its exact bytes and holds the model, within a buffer of its size's class.
    #[test]
    fn mutations_match_a_model_across_size_classes() {
        use proptest::prelude::*;
        use proptest::test_runner::TestRunner;
        let op = (
            any::<bool>(),
            prop_oneof![-300i64..300, any::<i32>().prop_map(i64::from), any::<i64>()],
        );
        let mut runner = TestRunner::default();
        runner
            .run(&proptest::collection::vec(op, 1..300), |ops| {
                let mut is = Intset::new();
                let mut model = std::collections::BTreeSet::new();
                for (add, v) in ops {
                    if add {
                        prop_assert_eq!(is.insert(v).unwrap(), model.insert(v));
                    } else {
                        prop_assert_eq!(is.remove(v), model.remove(&v));
                    }
                    if !model.is_empty() {
                        // (An empty intset is valid in memory, not in a file: Redis's rule.)
                        prop_assert_eq!(Intset::validate(is.as_bytes()).unwrap(), model.len());
                    }
                    prop_assert!(is.capacity() >= is.as_bytes().len());
                    let got: Vec<i64> = is.iter().collect();
                    let want: Vec<i64> = model.iter().copied().collect();
                    prop_assert_eq!(got, want);
                    let exact = is.clone().into_bytes();
                    prop_assert_eq!(exact.as_ref(), is.as_bytes());
                }
                Ok(())
            })
            .unwrap();
    }
}
