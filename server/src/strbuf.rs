//! [`Str`], the buffer a string value lives in, laid out for cheap snapshots.
//!
//! Three layouts, chosen by length when the value is built:
//!
//! ```text
//! len <= 29            inline in the table entry             overwrite = the entry's page only
//! 29 < len < 4096      heap buffer (the global allocator)    overwritten in place when it fits
//! len >= 4096          whole pages, when rounding up to     a 4 KiB value is exactly one page
//!                      pages wastes at most 1/8 (else heap)
//! ```
//!
//! A `Str` is 32 bytes and carries the string's OBJECT ENCODING ([`StrEnc`]) itself: the
//! variant's tag, the encoding and the inline length take three bytes, and 29 bytes of value fit
//! beside them. `Value`'s other variants are small handles that rustc places after the tag, whose
//! unused values then tell `Value`'s variants apart: `Value` is 32 bytes too, and every key's
//! table entry with it (a test in `store` pins the sizes).
//!
//! Why page alignment for large values: a 4096-byte buffer from malloc starts a few bytes into a
//! page and so straddles two; every write to it after a fork copies two pages, and the snapshot
//! child cannot give either back (`MADV_DONTNEED` works on whole pages). Aligned, the same value
//! is one page: a write copies one page, and once the child has written the value out it releases
//! that page, after which the parent's writes to it copy nothing at all.
//!
//! Whole pages come from [`pages`], a small pool of page-aligned blocks carved from 1 MiB
//! `mmap` regions: `aligned_alloc(4096, 4096)` from malloc would leave a hole of almost a page
//! before each block and double the memory of a data set of 4 KiB values.
//!
//! With `inline-values no` every value gets a plain exact-size heap buffer and is never
//! overwritten in place, as a classic allocator layout would: the switch exists to measure the
//! difference.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::store::StrEnc;

/// Bytes of a string value kept inline, in the table entry.
pub const INLINE: usize = 29;
/// From this length on, values are page-aligned.
pub const PAGED_MIN: usize = 4096;
const PAGE: usize = 4096;

/// `inline-values`: see the module docs. A global because values are built far from the config;
/// it only decides how new values are laid out, never what they hold.
pub static INLINE_VALUES: AtomicBool = AtomicBool::new(true);

fn compact_layout() -> bool {
    INLINE_VALUES.load(Ordering::Relaxed)
}

/// A string value's bytes and its encoding (see the module docs for the layout).
pub struct Str(Repr);

enum Repr {
    /// The first `len` (<= [`INLINE`]) bytes of `bytes`; the rest is stale or zero.
    Inline {
        enc: StrEnc,
        len: u8,
        bytes: [u8; INLINE],
    },
    /// A heap buffer; its spare capacity lets a value be overwritten in place.
    Heap {
        enc: StrEnc,
        buf: Vec<u8>,
    },
    Paged {
        enc: StrEnc,
        buf: PageBuf,
    },
}

fn inline(data: &[u8], enc: StrEnc) -> Repr {
    let mut bytes = [0; INLINE];
    bytes[..data.len()].copy_from_slice(data);
    Repr::Inline {
        enc,
        len: data.len() as u8,
        bytes,
    }
}

impl Str {
    /// `data` with encoding `enc`, laid out by its length.
    pub fn new(data: &[u8], enc: StrEnc) -> Str {
        Str(if !compact_layout() {
            Repr::Heap {
                enc,
                buf: data.to_vec(),
            }
        } else if paged(data.len()) {
            Repr::Paged {
                enc,
                buf: PageBuf::from_slice(data),
            }
        } else if data.len() <= INLINE {
            inline(data, enc)
        } else {
            Repr::Heap {
                enc,
                buf: data.to_vec(),
            }
        })
    }

    /// As [`Str::new`], keeping `data`'s buffer when the value goes on the heap.
    pub fn from_vec(data: Vec<u8>, enc: StrEnc) -> Str {
        if compact_layout() && (paged(data.len()) || data.len() <= INLINE) {
            Str::new(&data, enc)
        } else {
            Str(Repr::Heap { enc, buf: data })
        }
    }

    /// The encoding OBJECT ENCODING reports.
    pub fn enc(&self) -> StrEnc {
        match &self.0 {
            Repr::Inline { enc, .. } | Repr::Heap { enc, .. } | Repr::Paged { enc, .. } => *enc,
        }
    }

    /// Sets the encoding, writing it only if it changes (an untouched entry is a page a
    /// snapshot child does not need copied).
    pub fn set_enc(&mut self, new: StrEnc) {
        match &mut self.0 {
            Repr::Inline { enc, .. } | Repr::Heap { enc, .. } | Repr::Paged { enc, .. } => {
                if *enc != new {
                    *enc = new;
                }
            }
        }
    }

    /// Writes `new` over the current bytes without a new allocation, if the buffer suits it:
    /// inline into inline, or into a heap buffer it fills at least half of (a big buffer is not
    /// kept for a small value). Returns false, changing nothing, otherwise. The encoding is
    /// left as it is.
    pub fn overwrite(&mut self, new: &[u8]) -> bool {
        if !compact_layout() {
            return false;
        }
        match &mut self.0 {
            Repr::Inline { len, bytes, .. } if new.len() <= INLINE => {
                bytes[..new.len()].copy_from_slice(new);
                // Same length: the bytes only (fields are written only when they change).
                if usize::from(*len) != new.len() {
                    *len = new.len() as u8;
                }
                true
            }
            Repr::Inline { .. } => false,
            Repr::Heap { buf, .. } if buf.len() == new.len() && !paged(new.len()) => {
                // Same length: write the bytes only. Clearing and extending would also write the
                // length field, which lives in the table entry: a heap value's overwrite would
                // then dirty the entry's page too, and under a snapshot child every dirtied page
                // is a copy.
                buf.copy_from_slice(new);
                true
            }
            Repr::Heap { buf, .. } => {
                let cap = buf.capacity();
                // A value that would get whole pages is not squeezed into a heap buffer, and
                // one that fits inline goes inline.
                if new.len() <= INLINE || paged(new.len()) || new.len() > cap || new.len() < cap / 2
                {
                    return false;
                }
                buf.clear();
                buf.extend_from_slice(new);
                true
            }
            Repr::Paged { buf, .. } => buf.overwrite(new),
        }
    }

    /// The bytes, to change in place (SETBIT, BITFIELD, SETRANGE). Only the store's write path
    /// calls this, after the `before_write` hook.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Repr::Inline { len, bytes, .. } => &mut bytes[..usize::from(*len)],
            Repr::Heap { buf, .. } => buf,
            Repr::Paged { buf, .. } => buf.as_mut_slice(),
        }
    }

    /// Pads the value with zero bytes to `len` (nothing if it is that long already), as Redis's
    /// `sdsgrowzero`. The bytes stay where they are while the buffer has room; a value that grows
    /// to a page or more moves to whole pages when [`Str::new`] would give it pages, so
    /// a grown bitmap is laid out as one built at its final size (page-aligned).
    pub fn grow_zeroed(&mut self, len: usize) {
        if len <= self.len() {
            return;
        }
        let enc = self.enc();
        match &mut self.0 {
            Repr::Paged { buf, .. } if len <= buf.cap => buf.grow_in_place(len),
            Repr::Paged { buf, .. } => {
                // Grow by at least an eighth, the waste `paged` accepts, so that a bitmap
                // growing a byte at a time is copied O(log n) times, not once per page.
                let pages = len.div_ceil(PAGE).max(buf.cap / PAGE + buf.cap / PAGE / 8);
                let mut new = PageBuf::with_pages(buf.as_slice(), pages);
                new.grow_in_place(len);
                *buf = new;
            }
            _ if compact_layout() && paged(len) => {
                let mut new = PageBuf::with_pages(self, len.div_ceil(PAGE));
                new.grow_in_place(len);
                self.0 = Repr::Paged { enc, buf: new };
            }
            Repr::Inline {
                len: cur, bytes, ..
            } if len <= INLINE => {
                // The bytes past the length may be stale (a shorter value was written over).
                bytes[usize::from(*cur)..len].fill(0);
                *cur = len as u8;
            }
            Repr::Inline { .. } => {
                let mut buf = self.to_vec();
                buf.resize(len, 0);
                self.0 = Repr::Heap { enc, buf };
            }
            Repr::Heap { buf, .. } => buf.resize(len, 0),
        }
    }

    /// The whole pages inside the value, if it has a heap buffer: what a snapshot child may give
    /// back once the value is written out.
    pub fn releasable_pages(&self) -> Option<(usize, usize)> {
        let (ptr, len) = match &self.0 {
            Repr::Heap { buf, .. } => (buf.as_ptr() as usize, buf.len()),
            Repr::Paged { buf, .. } => (buf.ptr.as_ptr() as usize, buf.len),
            Repr::Inline { .. } => return None,
        };
        let start = ptr.next_multiple_of(PAGE);
        let end = (ptr + len) / PAGE * PAGE;
        (end > start).then(|| (start, end - start))
    }

    /// Is the value held inline, in the entry? (Tests.)
    #[cfg(test)]
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }

    /// Is the value held in whole pages? (Tests.)
    #[cfg(test)]
    pub(crate) fn is_paged(&self) -> bool {
        matches!(self.0, Repr::Paged { .. })
    }
}

/// Does a value of `len` bytes get whole pages? From a page on, if rounding up wastes at most
/// an eighth of it.
fn paged(len: usize) -> bool {
    len >= PAGED_MIN && len.div_ceil(PAGE) * PAGE - len <= len / 8
}

impl std::ops::Deref for Str {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes, .. } => &bytes[..usize::from(*len)],
            Repr::Heap { buf, .. } => buf,
            Repr::Paged { buf, .. } => buf.as_slice(),
        }
    }
}

impl Clone for Str {
    fn clone(&self) -> Str {
        Str::new(self, self.enc())
    }
}

impl std::fmt::Debug for Str {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Str({:?}, {:?})",
            String::from_utf8_lossy(self),
            self.enc()
        )
    }
}

/// A buffer of whole pages from [`pages`].
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
    fn from_slice(data: &[u8]) -> PageBuf {
        PageBuf::with_pages(data, data.len().div_ceil(PAGE).max(1))
    }

    /// A buffer of `npages` pages (enough for `data`) holding `data`.
    fn with_pages(data: &[u8], npages: usize) -> PageBuf {
        debug_assert!(npages * PAGE >= data.len());
        let npages = npages.max(data.len().div_ceil(PAGE)).max(1);
        let ptr = pages::alloc(npages);
        // SAFETY: the block holds `npages * PAGE >= data.len()` bytes and cannot overlap `data`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr(), data.len()) };
        PageBuf {
            ptr,
            len: data.len(),
            cap: npages * PAGE,
        }
    }

    fn overwrite(&mut self, new: &[u8]) -> bool {
        if new.len() > self.cap || new.len() < self.cap / 2 {
            return false;
        }
        // SAFETY: `new.len() <= cap`, and `new` (a client argument) does not alias our buffer.
        unsafe { std::ptr::copy_nonoverlapping(new.as_ptr(), self.ptr.as_ptr(), new.len()) };
        // The length lives in the table entry: write it only if it changes (see Str::overwrite).
        if self.len != new.len() {
            self.len = new.len();
        }
        true
    }

    /// Zero-fills from the current length to `len` (<= cap) and makes that the length. The
    /// bytes past `len` may be stale (a shorter value was written over a longer one), so they
    /// are cleared rather than trusted to be the fresh pages' zeroes.
    fn grow_in_place(&mut self, len: usize) {
        debug_assert!(len <= self.cap && len >= self.len);
        let len = len.min(self.cap);
        if len <= self.len {
            return;
        }
        // SAFETY: `self.len..len` lies inside the block of `cap` bytes we own.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(self.len), 0, len - self.len) };
        self.len = len;
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the first `len` bytes are initialised and owned exclusively by `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `len` bytes were initialised by from_slice/overwrite.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        pages::free(self.ptr, self.cap / PAGE);
    }
}

/// Page-aligned blocks of whole pages. Written here rather than taken from a crate: it is a
/// free list per block size over `mmap`, and the general-purpose allocators either cannot give
/// page-aligned blocks without padding (glibc) or would replace the process's allocator.
///
/// Blocks of up to [`pages::POOLED`] pages are carved from 1 MiB regions and kept on a free
/// list per size when freed (their pages returned with `MADV_DONTNEED`, their addresses
/// reused); larger ones are their own
/// `mmap`. The pool belongs to the thread that owns the keyspace; a block freed on a thread
/// whose pool is gone is left to the process's exit.
pub mod pages {
    use std::cell::RefCell;
    use std::ptr::NonNull;

    use super::PAGE;

    /// Blocks of fewer pages than this come from the pool.
    pub const POOLED: usize = 32;
    const REGION_PAGES: usize = 256;

    #[derive(Default)]
    struct Pool {
        free: Vec<Vec<NonNull<u8>>>,
        /// The unused tail of the current region.
        next: usize,
        end: usize,
    }

    thread_local! {
        static POOL: RefCell<Pool> = RefCell::new(Pool::default());
    }

    fn map(bytes: usize) -> NonNull<u8> {
        // SAFETY: an anonymous private mapping; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        match NonNull::new(p.cast::<u8>()) {
            Some(p) if p.as_ptr() as isize != -1 => p,
            _ => std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(bytes, PAGE)
                    .unwrap_or(std::alloc::Layout::new::<u8>()),
            ),
        }
    }

    /// A block of `n` pages (n >= 1), page-aligned.
    pub fn alloc(n: usize) -> NonNull<u8> {
        crate::alloc::count_external(n * PAGE, true);
        if n >= POOLED {
            return map(n * PAGE);
        }
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.free.len() < POOLED {
                pool.free.resize_with(POOLED, Vec::new);
            }
            if let Some(p) = pool.free[n].pop() {
                return p;
            }
            if pool.end - pool.next < n * PAGE {
                // The old region's tail becomes single free pages; a new region starts.
                while pool.end - pool.next >= PAGE {
                    let p = pool.next;
                    if let Some(p) = NonNull::new(p as *mut u8) {
                        pool.free[1].push(p);
                    }
                    pool.next += PAGE;
                }
                let region = map(REGION_PAGES * PAGE);
                pool.next = region.as_ptr() as usize;
                pool.end = pool.next + REGION_PAGES * PAGE;
            }
            let p = pool.next;
            pool.next += n * PAGE;
            NonNull::new(p as *mut u8).unwrap_or(NonNull::dangling())
        })
    }

    /// Returns a block from [`alloc`] of `n` pages.
    pub fn free(p: NonNull<u8>, n: usize) {
        crate::alloc::count_external(n * PAGE, false);
        if n >= POOLED {
            // SAFETY: the block is a whole mapping of exactly this size, made by `map`.
            unsafe { libc::munmap(p.as_ptr().cast(), n * PAGE) };
            return;
        }
        // The pages go back to the kernel now (RSS falls after a DEL or FLUSHALL); the address
        // range stays in the pool, and its next user gets fresh zeroed pages.
        // SAFETY: the block belongs to the pool and nothing references it any more.
        unsafe { libc::madvise(p.as_ptr().cast(), n * PAGE, libc::MADV_DONTNEED) };
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.free.len() < POOLED {
                pool.free.resize_with(POOLED, Vec::new);
            }
            pool.free[n].push(p);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(data: &[u8]) -> Str {
        Str::new(data, StrEnc::Raw)
    }

    #[test]
    fn layouts_by_length() {
        assert!(raw(b"short").is_inline());
        assert!(raw(&[1; INLINE]).is_inline());
        assert!(!raw(&[1; INLINE + 1]).is_inline());
        assert!(!raw(&[1; 100]).is_inline());
        let big = raw(&[7; 4096]);
        assert!(big.is_paged());
        assert_eq!(&big[..], &[7u8; 4096][..]);
        assert_eq!(
            big.releasable_pages().map(|(_, n)| n),
            Some(4096),
            "exactly one page"
        );
        assert_eq!(raw(&[1; 100]).releasable_pages(), None);
        assert_eq!(std::mem::size_of::<Str>(), 32);
    }

    #[test]
    fn encoding_travels_with_the_bytes() {
        let mut s = Str::new(b"12", StrEnc::Int);
        assert_eq!(s.enc(), StrEnc::Int);
        assert!(s.overwrite(b"abc"));
        assert_eq!(s.enc(), StrEnc::Int, "overwrite leaves the encoding");
        s.set_enc(StrEnc::Embstr);
        assert_eq!((&s[..], s.enc()), (&b"abc"[..], StrEnc::Embstr));
        let c = Str::from_vec(vec![5; 100], StrEnc::Raw).clone();
        assert_eq!((&c[..], c.enc()), (&[5u8; 100][..], StrEnc::Raw));
        s.grow_zeroed(40);
        assert_eq!(s.enc(), StrEnc::Embstr, "grown to the heap, same encoding");
    }

    #[test]
    fn pool_reuses_freed_blocks() {
        let a = raw(&[1; 4096]);
        let addr = a.as_ptr();
        drop(a);
        let b = raw(&[2; 4096]);
        assert_eq!(b.as_ptr(), addr, "a freed page is handed out again");
        let big = raw(&vec![3u8; 40 * 4096]);
        assert_eq!(big.len(), 40 * 4096);
    }

    #[test]
    fn grow_zeroed_keeps_bytes_and_pages() {
        let mut s = raw(b"ab");
        s.grow_zeroed(10);
        assert_eq!(&s[..], b"ab\0\0\0\0\0\0\0\0");
        s.as_mut_slice()[9] = 1;
        // Stale inline bytes are cleared when the value grows back over them.
        assert!(s.overwrite(b"xyz"));
        s.grow_zeroed(12);
        assert_eq!(&s[..], b"xyz\0\0\0\0\0\0\0\0\0");
        s.as_mut_slice()[9] = 1;
        s.grow_zeroed(100);
        assert!(!s.is_inline() && !s.is_paged());
        assert_eq!(&s[..10], b"xyz\0\0\0\0\0\0\x01");
        s.grow_zeroed(8000);
        assert!(s.is_paged(), "a value grown to pages is page-aligned");
        assert_eq!(s.as_ptr() as usize % PAGE, 0);
        assert_eq!(&s[..10], b"xyz\0\0\0\0\0\0\x01");
        assert!(s[10..].iter().all(|&b| b == 0));
        // Stale bytes past the length are cleared when the value grows back over them.
        let mut p = raw(&[9; 8000]);
        assert!(p.overwrite(&[1; 4500]));
        p.grow_zeroed(7000);
        assert!(p[4500..].iter().all(|&b| b == 0));
        let addr = p.as_ptr();
        p.grow_zeroed(8192);
        assert_eq!(p.as_ptr(), addr, "grown within its pages: not moved");
        p.grow_zeroed(9000);
        assert_eq!(p.len(), 9000);
        assert_eq!(&p[..4500], &[1u8; 4500][..]);
        assert!(p[4500..].iter().all(|&b| b == 0));
    }

    #[test]
    fn overwrite_in_place_only_when_it_fits() {
        assert!(
            !raw(&[1; 5000]).is_paged(),
            "8 KiB for 5000 B: too much waste"
        );
        let mut s = raw(&[1; 8000]);
        assert!(s.is_paged());
        assert!(s.overwrite(&[2; 4500]));
        assert_eq!(&s[..], &[2u8; 4500][..]);
        assert!(!s.overwrite(&[3; 9000]), "too big for the buffer");
        assert!(
            !s.overwrite(&[3; 10]),
            "too small to keep a 5000-byte buffer for"
        );
        let mut small = raw(b"abc");
        assert!(small.overwrite(b"defgh"));
        assert_eq!(&small[..], b"defgh");
        assert!(!small.overwrite(&[1; INLINE + 1]), "no longer inline");
        let mut heap = raw(&[1; 100]);
        let addr = heap.as_ptr();
        assert!(heap.overwrite(&[2; 100]));
        assert!(heap.overwrite(&[3; 60]));
        assert_eq!((heap.as_ptr(), &heap[..]), (addr, &[3u8; 60][..]));
        assert!(!heap.overwrite(b"short"), "a short value goes inline");
        let c = s.clone();
        assert_eq!(&c[..], &s[..]);
    }
}
