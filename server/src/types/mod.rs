//! The container value types, one module each: lists, hashes, sets and sorted sets.
//!
//! What each owns: the in-memory layout of its type (the compact encoding Redis 7.0 uses for
//! small values — listpack, intset — and the large one past the `*-max-*` thresholds, with the
//! conversions between them) and the operations its commands need. What each may touch: its own
//! value only. A type never reaches the keyspace: commands get a `&mut` to a value from the
//! keyspace's write path (`store::Slot::list_mut` and its siblings), which has already told the
//! `before_write` hook, so a type module cannot change data behind the snapshot's back.
//!
//! While a fork save's child lives, small lists and listpack-encoded sorted sets move to new
//! memory on their first write and their old buffers wait, untouched, for the child to end
//! ([`should_move`], [`fork_save_started`], [`fork_save_ended`]; `persist` calls the last two),
//! so such a write copies no page the child shares. Small hashes and intsets are forwarded to a
//! copy instead, so that their handle in the keyspace slot stays unwritten too ([`forward`]; the
//! keyspace heals them when the save ends).

pub(crate) mod forward;
pub mod hash;
pub mod list;
pub mod set;
pub mod zset;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::time::{Duration, Instant};

use forkdb_snapshot::blob::Listpack;

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

/// Containers at most this large (bytes on the heap) move on their first write during a fork
/// save; larger ones are changed in place, where copy-on-write copies only the pages a write
/// touches (moving a large one would copy all of it).
pub const MOVE_MAX: usize = 8 * 1024;

/// What the running fork save moved (see [`should_move`]).
struct Shelter {
    /// Addresses of the buffers made by a move in this save (or after the fork): written in
    /// place from then on.
    moved: HashSet<usize>,
    /// The moved containers' old buffers as they were at the fork, untouched until the child is
    /// gone.
    old: Vec<Box<dyn Any>>,
    /// The same for moved listpacks, held as they are (a 16-byte handle each, where a
    /// `Box<dyn Any>` costs a 32-byte allocation plus a 16-byte pointer: at 10 000 moves,
    /// 0.3 MiB of fresh memory).
    old_listpacks: Vec<Listpack>,
    /// Their bytes on the heap.
    old_bytes: usize,
    /// Bytes of the copies that [`forward`] made in this save, and how many it may make.
    forwarded: usize,
    forward_budget: usize,
    /// Keys at the fork, and the rate meter of first writes to buffers of the fork: see
    /// [`FORWARD_RATE_WINDOW`].
    keys: usize,
    window_start: Instant,
    window_writes: u32,
    /// No window has been measured yet, or the last one was too fast
    /// ([`FORWARD_RATE_SECS`]): nothing is forwarded.
    too_fast: bool,
}

/// Forwarding waits until first writes (to buffers of the fork) are known to come slower than
/// [`FORWARD_RATE_SECS`]'s rate, measured over windows of this many writes, and stops again after
/// a faster window. The first window's writes go in place (at most this many pages) rather than
/// be copied before the rate is known: at full speed those copies would come on top of every
/// page. The window spans several pipelined batches of a paced client (a burst of 64 commands
/// is no rate).
pub const FORWARD_RATE_WINDOW: u32 = 256;

/// Forwarding stops under first writes that would reach as many containers as there are keys
/// within this many seconds (or faster than [`FORWARD_RATE_FLOOR`] a second, whatever the
/// keys): a save lasting that long reaches most of them, so the pages of those left in place are
/// copied anyway and each copy only adds to them. 50 000 intsets under SREM+SADD at full speed
/// (3.5 million writes in 4 s) took 8.4 MiB with copies up to the budget, 6.9 in place
/// (redis-server 7.0); at 2000 writes a second, 1.3 MiB forwarded against 5.3 in place. A
/// server that copies pages under such writes runs them at a few 100 000 a second, and a stall
/// of a few milliseconds made a window of 256 look slower than 100 000 a second often enough
/// to use the whole budget in one run of ten: the bar is kept well below that.
pub const FORWARD_RATE_SECS: usize = 10;

/// The rate that stops forwarding is never under this many writes a second: a small keyspace
/// is saved in a fraction of a second, and what its copies can cost is bounded by the budget.
pub const FORWARD_RATE_FLOOR: usize = 10_000;

/// The share of the memory in use at the fork that a save's forwarded copies may take
/// (1/`FORWARD_SHARE`): see [`forward`]. 100 000 hashes of 10 fields under 8000 HSETs during a
/// save forward 2.3 MiB, 7.6 % of the server's 30 MiB; at full write speed every further copy
/// adds its bytes to a page copy that comes anyway.
pub const FORWARD_SHARE: usize = 12;

thread_local! {
    /// Some while a fork save's child lives. The server is one thread and the child never
    /// changes a container, so a thread-local is the whole state.
    static SHELTER: RefCell<Option<Shelter>> = const { RefCell::new(None) };
}

/// A fork save's child was just forked, with `keys` keys: from now on a small list or sorted set
/// moves on its first write (see the types that call [`should_move`]), and a small hash or
/// intset is forwarded ([`forward`]).
pub fn fork_save_started(keys: usize) {
    SAVE_GENERATION.set(SAVE_GENERATION.get().wrapping_add(1));
    SHELTER.with(|s| {
        *s.borrow_mut() = Some(Shelter {
            moved: HashSet::new(),
            old: Vec::new(),
            old_listpacks: Vec::new(),
            old_bytes: 0,
            forwarded: 0,
            forward_budget: crate::alloc::used_memory() / FORWARD_SHARE,
            keys,
            window_start: Instant::now(),
            window_writes: 0,
            too_fast: true,
        })
    });
}

/// The child is gone: the old buffers kept since the fork are freed, and containers are
/// changed in place again.
pub fn fork_save_ended() {
    let shelter = SHELTER.with(|s| s.borrow_mut().take());
    drop(shelter);
}

/// Containers moved in the running fork save (for tests and diagnostics).
pub fn moved_in_save() -> usize {
    SHELTER.with(|s| {
        s.borrow()
            .as_ref()
            .map_or(0, |sh| sh.old.len() + sh.old_listpacks.len())
    })
}

/// A fork save's child lives: containers may move on their first write ([`should_move`]).
/// One thread-local read: what a write checks before it computes anything for a move.
pub(crate) fn fork_save_active() -> bool {
    SHELTER.with(|s| s.borrow().is_some())
}

/// Whether the container whose buffer is at `at` and holds `bytes` on the heap should move
/// before a write: a fork save's child lives, it is small, and it has not moved yet.
///
/// Why move: a container changed in place dirties the pages of its buffer (a 2 KiB listpack in
/// glibc's heap straddles two pages half the time; jemalloc's 2 KiB regions never do, which is
/// what Redis gets) and of whatever shares them, all shared with the child, so the kernel copies
/// 4 KiB or more; a moved one costs its own bytes, in pages the child never had, plus the page
/// of the keyspace slot its new handle is written into. For containers of a few hundred bytes
/// (small hashes, intsets) that slot page is most of the cost: those are forwarded instead,
/// leaving the handle alone ([`forward`]).
pub(crate) fn should_move(at: usize, bytes: usize) -> bool {
    SHELTER.with(|s| {
        s.borrow()
            .as_ref()
            .is_some_and(|sh| bytes <= MOVE_MAX && !sh.moved.contains(&at))
    })
}

/// Records a move: the new buffer at `new_at` is written in place from now on, and `old`
/// (`bytes` on the heap) is kept (unchanged, unfreed) until the child is gone.
pub(crate) fn moved<T: Any>(new_at: usize, old: T, bytes: usize) {
    SHELTER.with(|s| {
        if let Some(sh) = s.borrow_mut().as_mut() {
            sh.moved.insert(new_at);
            sh.old.push(Box::new(old));
            sh.old_bytes += bytes;
        }
    });
}

/// [`moved`] for a listpack, kept without a box of its own.
pub(crate) fn moved_listpack(new_at: usize, old: Listpack) {
    SHELTER.with(|s| {
        if let Some(sh) = s.borrow_mut().as_mut() {
            sh.moved.insert(new_at);
            sh.old_bytes += old.capacity();
            sh.old_listpacks.push(old);
        }
    });
}

/// Bytes of the old buffers kept for the running fork save. Eviction leaves them out of the
/// memory it counts against `maxmemory`: they stand for the page copies that a write in place
/// would have made, which Redis's `used_memory` never sees either, and they go when the child
/// does (evicting keys would not free them).
pub fn kept_bytes() -> usize {
    SHELTER.with(|s| s.borrow().as_ref().map_or(0, |sh| sh.old_bytes)) + FORWARDED_BYTES.get()
}

thread_local! {
    /// Bytes of the old buffers that forwarded handles still hold (see [`forward`]).
    static FORWARDED_BYTES: Cell<usize> = const { Cell::new(0) };
    /// Fork saves started so far (wrapping): see [`save_generation`].
    static SAVE_GENERATION: Cell<u32> = const { Cell::new(0) };
}

/// The number of the running fork save, or of the last one: a buffer made while it is this
/// number and a save runs was made after that save's fork. (After 2^32 saves a buffer made
/// that many saves ago looks new and is written in place: a cost, not an error.)
pub(crate) fn save_generation() -> u32 {
    SAVE_GENERATION.get()
}

/// Whether a buffer of the fork, `bytes` on the heap, should be forwarded before a write: a fork
/// save's child lives, the buffer is small, first writes come slowly enough
/// ([`FORWARD_RATE_WINDOW`]), and the save's copies are within their budget ([`FORWARD_SHARE`]).
pub(crate) fn should_forward(bytes: usize) -> bool {
    SHELTER.with(|s| {
        let mut s = s.borrow_mut();
        let Some(sh) = s.as_mut() else {
            return false;
        };
        if sh.window_writes == 0 {
            // A window starts at its first write: the time before it, idle, is no rate.
            sh.window_start = Instant::now();
        }
        sh.window_writes += 1;
        if sh.window_writes >= FORWARD_RATE_WINDOW {
            let now = Instant::now();
            // Faster than `per_second`: the window took less than window/per_second seconds.
            let per_second = (sh.keys / FORWARD_RATE_SECS).max(FORWARD_RATE_FLOOR);
            let at_keys_rate = Duration::from_secs(u64::from(FORWARD_RATE_WINDOW))
                .checked_div(u32::try_from(per_second).unwrap_or(u32::MAX))
                .unwrap_or(Duration::ZERO);
            sh.too_fast = now.duration_since(sh.window_start) < at_keys_rate;
            sh.window_start = now;
            sh.window_writes = 0;
        }
        !sh.too_fast && bytes <= MOVE_MAX && sh.forwarded.saturating_add(bytes) <= sh.forward_budget
    })
}

/// Sets the running save's forwarding budget (unit tests run without the counting allocator,
/// so the one taken at the fork is 0 there) and, with `slow`, takes the write rate as measured
/// and slow (the first window's writes are forwarded).
#[cfg(test)]
pub(crate) fn set_forward_budget(bytes: usize, slow: bool) {
    SHELTER.with(|s| {
        if let Some(sh) = s.borrow_mut().as_mut() {
            sh.forward_budget = bytes;
            if slow {
                sh.too_fast = false;
            }
        }
    });
}

/// A buffer of `bytes` was forwarded (`added`), or its handle took the copy back or was dropped.
pub(crate) fn forwarded(bytes: usize, added: bool) {
    if added {
        FORWARDED_BYTES.set(FORWARDED_BYTES.get() + bytes);
        SHELTER.with(|s| {
            if let Some(sh) = s.borrow_mut().as_mut() {
                sh.forwarded += bytes;
            }
        });
    } else {
        FORWARDED_BYTES.set(FORWARDED_BYTES.get().saturating_sub(bytes));
    }
}

/// A buffer made after the fork (nothing of it is shared): written in place.
pub(crate) fn made_after_fork(at: usize) {
    SHELTER.with(|s| {
        if let Some(sh) = s.borrow_mut().as_mut() {
            sh.moved.insert(at);
        }
    });
}
