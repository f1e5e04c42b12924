//! A counting global allocator, so INFO's `used_memory` is the bytes the server really holds.
//!
//! It wraps the system allocator (glibc malloc, whose `fork()` handlers keep malloc usable in a
//! forked child) and keeps one relaxed atomic counter: the server is single-threaded, so the
//! counter is uncontended and costs an add per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

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
