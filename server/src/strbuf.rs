//! [`Str`], the buffer a string value lives in, laid out for cheap snapshots.
//!
//! Three layouts, chosen by length when the value is built:
//!
//! ```text
//! len <= 24            inline in the table entry             overwrite = the entry's page only
//! 24 < len < 4096      heap buffer (the global allocator)    overwritten in place when it fits
//! len >= 4096          page-aligned heap buffer              a 4 KiB value is exactly one page
//! ```
//!
//! Why page alignment for large values: a 4096-byte buffer from malloc starts a few bytes into a
//! page and so straddles two; every write to it after a fork copies two pages, and the snapshot
//! child cannot give either back (`MADV_DONTNEED` works on whole pages). Aligned, the same value
//! is one page: a write copies one page, and once the child has written the value out it releases
//! that page, after which the parent's writes to it copy nothing at all.
//!
//! With `inline-values no` every value gets a plain exact-size heap buffer and is never
//! overwritten in place, as a classic allocator layout would: the switch exists to measure the
//! difference.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use smallvec::SmallVec;

/// Bytes kept inline.
pub const INLINE: usize = 24;
/// From this length on, values are page-aligned.
pub const PAGED_MIN: usize = 4096;
const PAGE: usize = 4096;

/// `inline-values`: see the module docs. A global because values are built far from the config;
/// it only decides how new values are laid out, never what they hold.
pub static INLINE_VALUES: AtomicBool = AtomicBool::new(true);

fn compact_layout() -> bool {
    INLINE_VALUES.load(Ordering::Relaxed)
}

/// A string value's bytes.
pub enum Str {
    Small(SmallVec<[u8; INLINE]>),
    Paged(PageBuf),
}

impl Str {
    pub fn from_slice(data: &[u8]) -> Str {
        if !compact_layout() {
            // A capacity above the inline size keeps even a short value on the heap.
            let mut v = Vec::with_capacity(data.len().max(INLINE + 1));
            v.extend_from_slice(data);
            return Str::Small(SmallVec::from_vec(v));
        }
        if data.len() >= PAGED_MIN {
            Str::Paged(PageBuf::from_slice(data))
        } else {
            Str::Small(SmallVec::from_slice(data))
        }
    }

    pub fn from_vec(data: Vec<u8>) -> Str {
        if compact_layout() && data.len() >= PAGED_MIN {
            Str::Paged(PageBuf::from_slice(&data))
        } else if compact_layout() || data.len() > INLINE {
            Str::Small(SmallVec::from_vec(data))
        } else {
            Str::from_slice(&data)
        }
    }

    /// Writes `new` over the current bytes without a new allocation, if the buffer suits it:
    /// inline into inline, or into a heap buffer it fills at least half of (a big buffer is not
    /// kept for a small value). Returns false, changing nothing, otherwise.
    pub fn overwrite(&mut self, new: &[u8]) -> bool {
        if !compact_layout() {
            return false;
        }
        match self {
            Str::Small(v) if new.len() <= INLINE => {
                if v.spilled() {
                    return false;
                }
                v.clear();
                v.extend_from_slice(new);
                true
            }
            Str::Small(v) => {
                let cap = v.capacity();
                if !v.spilled() || new.len() >= PAGED_MIN || new.len() > cap || new.len() < cap / 2
                {
                    return false;
                }
                v.clear();
                v.extend_from_slice(new);
                true
            }
            Str::Paged(p) => p.overwrite(new),
        }
    }

    /// The whole pages inside the value, if it has a heap buffer: what a snapshot child may give
    /// back once the value is written out.
    pub fn releasable_pages(&self) -> Option<(usize, usize)> {
        let (ptr, len) = match self {
            Str::Small(v) if v.spilled() => (v.as_ptr() as usize, v.len()),
            Str::Paged(p) => (p.ptr.as_ptr() as usize, p.len),
            Str::Small(_) => return None,
        };
        let start = ptr.next_multiple_of(PAGE);
        let end = (ptr + len) / PAGE * PAGE;
        (end > start).then(|| (start, end - start))
    }
}

impl std::ops::Deref for Str {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Str::Small(v) => v,
            Str::Paged(p) => p.as_slice(),
        }
    }
}

impl Clone for Str {
    fn clone(&self) -> Str {
        Str::from_slice(self)
    }
}

impl std::fmt::Debug for Str {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Str({:?})", String::from_utf8_lossy(self))
    }
}

/// A page-aligned heap buffer. Written here rather than taken from a crate: it is a few lines
/// over `std::alloc` with an explicit alignment, which `Vec`, `Box<[u8]>` and `SmallVec` do not
/// let a caller choose for bytes.
pub struct PageBuf {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
}

// SAFETY: PageBuf owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for PageBuf {}
// SAFETY: shared access only reads the bytes.
unsafe impl Sync for PageBuf {}

impl PageBuf {
    fn layout(cap: usize) -> Layout {
        // `cap` is at least PAGED_MIN, so the layout is never zero-sized; the size cannot
        // overflow isize because it came from an existing slice.
        Layout::from_size_align(cap, PAGE).unwrap_or(Layout::new::<u8>())
    }

    fn from_slice(data: &[u8]) -> PageBuf {
        let cap = data.len().max(PAGED_MIN);
        let layout = Self::layout(cap);
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout);
        };
        // SAFETY: the new allocation holds `cap >= data.len()` bytes and cannot overlap `data`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr(), data.len()) };
        PageBuf {
            ptr,
            len: data.len(),
            cap,
        }
    }

    fn overwrite(&mut self, new: &[u8]) -> bool {
        if new.len() > self.cap || new.len() < self.cap / 2 {
            return false;
        }
        // SAFETY: `new.len() <= cap`, and `new` (a client argument) does not alias our buffer.
        unsafe { std::ptr::copy_nonoverlapping(new.as_ptr(), self.ptr.as_ptr(), new.len()) };
        self.len = new.len();
        true
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `len` bytes were initialised by from_slice/overwrite.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in from_slice with this very layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.cap)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_by_length() {
        assert!(matches!(Str::from_slice(b"short"), Str::Small(ref v) if !v.spilled()));
        assert!(matches!(Str::from_slice(&[1; 100]), Str::Small(ref v) if v.spilled()));
        let big = Str::from_slice(&[7; 4096]);
        assert!(matches!(big, Str::Paged(_)));
        assert_eq!(&big[..], &[7u8; 4096][..]);
        assert_eq!(
            big.releasable_pages().map(|(_, n)| n),
            Some(4096),
            "exactly one page"
        );
        assert_eq!(Str::from_slice(&[1; 100]).releasable_pages(), None);
    }

    #[test]
    fn overwrite_in_place_only_when_it_fits() {
        let mut s = Str::from_slice(&[1; 5000]);
        assert!(s.overwrite(&[2; 4500]));
        assert_eq!(&s[..], &[2u8; 4500][..]);
        assert!(!s.overwrite(&[3; 9000]), "too big for the buffer");
        assert!(
            !s.overwrite(&[3; 10]),
            "too small to keep a 5000-byte buffer for"
        );
        let mut small = Str::from_slice(b"abc");
        assert!(small.overwrite(b"defgh"));
        assert_eq!(&small[..], b"defgh");
        let c = s.clone();
        assert_eq!(&c[..], &s[..]);
    }
}
