//! A counting global allocator, so INFO's `used_memory` is the bytes the server really holds.
//!
//! It wraps the system allocator (glibc malloc, whose `fork()` handlers keep malloc usable in a
//! forked child) and keeps one relaxed atomic counter: the server is single-threaded, so the
//! counter is uncontended and costs an add per allocation.
//!
//! # Why glibc malloc, and [`trim_after_free`]
//!
//! Measured by hand on this server (2 cores, shared), the same release binary run with glibc
//! 2.36 and with Debian's jemalloc 5.3 and mimalloc 2.0.9 preloaded: one million 32-byte keys
//! (DEBUG POPULATE) cost 170 B of RSS each with glibc, 166 with jemalloc, 163 with mimalloc; a
//! save of 64 MiB of 4 KiB values under uniform overwrites at full speed (`forkdb-cow run`, fresh
//! server each) peaked at 1.37× its baseline with glibc, 1.38× with jemalloc (both ~96k
//! writes/s), 1.36× with mimalloc (154k writes/s). No alternative wins enough to justify a
//! second allocator and its fork rules (jemalloc's background threads would have to stay off,
//! so it only returns memory when later calls drive its decay, and idles at what it held). Where glibc loses is giving memory back: free chunks
//! in the middle of its heap stay resident, and it trims the top only past `M_TRIM_THRESHOLD`,
//! which its dynamic mmap threshold raises up to 64 MiB once a big block was freed. After 6
//! cycles of 9000 connections (with idle connections already holding no buffers) the server
//! kept 37 MiB of RSS (jemalloc 27, mimalloc 9) though it used 1.2; after three 24 MiB values'
//! query buffers went, 27 MiB. So [`configure`] fixes the mmap threshold, and the cron calls
//! [`trim_after_free`] once a second: 3.9 MiB after the churn, 3.0 after the big values.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// INFO's `mem_allocator`.
pub const ALLOCATOR_NAME: &str = "libc";

pub struct CountingAlloc;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
            ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

/// Bytes currently allocated through the global allocator, plus the blocks of
/// `strbuf::pages`, which come straight from `mmap`.
pub fn used_memory() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
}

/// Counts memory obtained outside the global allocator (`strbuf::pages`).
pub fn count_external(bytes: usize, allocated: bool) {
    if allocated {
        ALLOCATED.fetch_add(bytes, Ordering::Relaxed);
    } else {
        ALLOCATED.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Resident memory beyond the allocations must have grown by this much since the last trim
/// before the cron trims again. Big enough that steady traffic, whose free memory is reused,
/// does not trigger it.
pub const TRIM_STEP: usize = 16 << 20;

/// Blocks from this size up get their own mapping, returned to the kernel when freed.
///
/// glibc starts at 128 KiB but raises the threshold to the size of each mapped block freed (up
/// to 32 MiB), and the trim threshold to twice that: after one 24 MiB query buffer was freed,
/// the next ones came from the heap and stayed resident once freed. A fixed threshold keeps
/// big buffers and big values in mappings of their own. That also spares a save copies: a big
/// value overwritten while a child lives gets fresh pages instead of writing into freed heap
/// pages the child still shares.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Sets the allocator up; call first thing in `main`, before anything big is allocated.
pub fn configure() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes malloc's tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

thread_local! {
    /// RSS minus `used_memory` just after the last trim (or its lowest value since): what the
    /// process holds beyond its allocations that a trim cannot give back (code, stacks, malloc's
    /// headers and partly used pages).
    static OVERHEAD_BASE: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// Gives free heap memory back to the kernel (`malloc_trim(0)`, which also releases whole free
/// pages in the middle of the heap) once the process holds [`TRIM_STEP`] more resident memory
/// beyond its allocations than just after the last trim: after many connections closed, or big
/// values were deleted. Returns whether it trimmed. The cron calls it once a second; it costs a
/// read of /proc/self/statm, and the trim itself a walk of malloc's free lists.
///
/// Not while a snapshot child lives: `malloc_trim` first consolidates the small free chunks,
/// writing their headers, and every page it writes is a page copied for the child.
pub fn trim_after_free(child_active: bool) -> bool {
    #[cfg(target_env = "gnu")]
    {
        if child_active {
            return false;
        }
        let overhead = rss_bytes().saturating_sub(used_memory());
        let base = OVERHEAD_BASE.with(|b| {
            let base = b.get().min(overhead);
            b.set(base);
            base
        });
        if overhead - base < TRIM_STEP {
            return false;
        }
        // SAFETY: malloc_trim only releases the allocator's own free memory; the server is
        // single-threaded, so no allocation runs concurrently.
        unsafe {
            libc::malloc_trim(0);
        }
        let after = rss_bytes().saturating_sub(used_memory());
        OVERHEAD_BASE.with(|b| b.set(after));
        true
    }
    #[cfg(not(target_env = "gnu"))]
    {
        let _ = child_active;
        false
    }
}

/// Resident set size of this process, from /proc/self/statm.
pub fn rss_bytes() -> usize {
    let page = 4096;
    let mut buf = [0u8; 256];
    forkdb_snapshot::fork::read_small_file(c"/proc/self/statm", &mut buf)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<usize>().ok())
        })
        .map(|pages| pages * page)
        .unwrap_or(0)
}

/// Total memory of the machine, from /proc/meminfo.
pub fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
