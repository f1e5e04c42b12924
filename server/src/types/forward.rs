//! Forwarding: how a small hash's listpack or a set's intset is written during a fork save
//! without copying a page the child shares, and without touching the keyspace slot that holds
//! its handle.
//!
//! A container that moves on its first write (lists, sorted sets: see [`super::should_move`])
//! gets a new buffer and a new handle, and the new handle is written into the keyspace's
//! 64-byte slot: the slot's page is copied too. For a 2.5 KiB sorted set that is a small part of
//! what the move saves; for hashes of 240 bytes and intsets of 128 it is what decides. Measured
//! on the parent's pages (`/proc/PID/pagemap`, 100 000 hashes of 10 fields, 8000 HSETs during a
//! save): in place, HSET dirtied 4563 of the 5885 pages holding listpacks and none of the 1563
//! slot pages; moving each hash on its first write would have copied every slot page
//! (6.1 MiB), which at full write speed comes on top of every listpack page (the writes reach
//! them all anyway), past redis-server's figure.
//!
//! So these two are *forwarded* instead: [`Fwd`], the handle the value keeps, stays as it is, and
//! so does the buffer it points to; the first change makes a copy that a thread-local table
//! holds under the old buffer's address, and from then on reads and writes of that handle go to
//! the copy. The handle takes the copy back ([`Fwd::heal`]) once the child is gone: the
//! keyspace walks its values when the save ends (`Keyspace::heal_forwarded`: one pass over the
//! keys after a save that forwarded anything, stopping at the last copy), and a handle the walk
//! does not reach heals on its next change or drops its copy with itself.
//!
//! Under writes fast enough to reach every container before the save ends, the pages of the
//! containers still in place are copied anyway and each copy only adds to them, so forwarding
//! waits until the first writes of a save are known to be slow enough and stops while they are
//! not ([`super::FORWARD_RATE_SECS`]), and it stops for the rest of a save once the copies reach
//! a share of the memory the server used at the fork ([`super::FORWARD_SHARE`]). Measured
//! (`scripts/bench-types cow`, extra memory during the save beside redis-server 7.0's): 100 000
//! hashes under 8000 HSETs 0.89 before, 0.34 after; 50 000 intsets under 8000 SREM+SADD 0.91
//! before, 0.29 after; at full speed, where nothing is forwarded, 0.89 and 1.00 as before.
//!
//! # Why the table is sound
//!
//! A copy is boxed, so the table can grow while a reference to a copy is out. A copy leaves the
//! table only through its own handle ([`Fwd::heal`], [`Fwd::change`], dropping the handle),
//! each of which takes the handle by `&mut` or by value, so no reference that [`Fwd::get`]
//! handed out (tied to `&self`) is alive then. The key is the address of the old buffer, which
//! its handle owns until that same moment: no other buffer can have that address while the
//! entry exists. Nothing outside this module reaches the buffer inside a [`Fwd`].
//!
//! The table is per thread, as the server's data is: a value read on another thread (the
//! loader's, the forkless writer's) was never forwarded. The forked child reads its copy of the
//! table as it was at the fork, which fits its copy of the handles.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::thread::LocalKey;

use forkdb_snapshot::blob::{Intset, Listpack};

/// Boxed copies by the address of the buffer they stand for.
type Table<T> = HashMap<usize, Box<T>, foldhash::fast::RandomState>;

/// A buffer that a [`Fwd`] can forward.
pub(crate) trait Buffer: Clone + std::fmt::Debug + 'static {
    /// The address of its bytes on the heap (unique while it lives: never empty).
    fn addr(&self) -> usize;
    /// Bytes on the heap.
    fn heap_bytes(&self) -> usize;
    /// The thread's table of copies of this kind.
    fn table() -> &'static LocalKey<RefCell<Table<Self>>>;
}

thread_local! {
    /// Copies alive in the tables below: while 0 (always, outside a fork save and the walk at
    /// its end), a read costs this one thread-local load.
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static LISTPACKS: RefCell<Table<Listpack>> = RefCell::new(Table::default());
    static INTSETS: RefCell<Table<Intset>> = RefCell::new(Table::default());
}

impl Buffer for Listpack {
    fn addr(&self) -> usize {
        self.as_bytes().as_ptr() as usize
    }
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
    fn table() -> &'static LocalKey<RefCell<Table<Self>>> {
        &LISTPACKS
    }
}

impl Buffer for Intset {
    fn addr(&self) -> usize {
        self.as_bytes().as_ptr() as usize
    }
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
    fn table() -> &'static LocalKey<RefCell<Table<Self>>> {
        &INTSETS
    }
}

/// Copies alive (for tests, and to skip the walk at a save's end when there are none).
pub(crate) fn live() -> usize {
    LIVE.get()
}

/// A container's buffer, forwarded to a copy while a fork save's child lives (see the module
/// docs).
pub(crate) struct Fwd<T: Buffer> {
    buf: T,
    /// The fork save ([`super::save_generation`]) during which `buf` was made: during that save
    /// it is changed in place, nothing of it being shared with the child. Kept here rather than
    /// in a set of addresses, which would grow by an entry per container made during a save
    /// (the handle has room for it: a `Value` stays 32 bytes).
    made_in: u32,
}

impl<T: Buffer> Fwd<T> {
    /// A handle on a buffer made now.
    pub(crate) fn new(buf: T) -> Fwd<T> {
        Fwd {
            buf,
            made_in: super::save_generation(),
        }
    }

    /// The buffer as it is now: the copy, if there is one.
    #[inline]
    pub(crate) fn get(&self) -> &T {
        if LIVE.get() == 0 {
            return &self.buf;
        }
        let copy = T::table().with(|t| t.borrow().get(&self.buf.addr()).map(|b| &**b as *const T));
        match copy {
            // SAFETY: the box lives until this handle takes it out of the table, through
            // `&mut self` or `self`, so not while the returned `&self` borrow lives (module docs).
            Some(p) => unsafe { &*p },
            None => &self.buf,
        }
    }

    /// Runs a change. During a fork save, a buffer of the fork (not made or forwarded after it)
    /// is copied first and the change goes to the copy, within the save's budget; outside one,
    /// a handle that still has a copy takes it back first.
    #[inline]
    pub(crate) fn change<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        if LIVE.get() == 0 && !super::fork_save_active() {
            return f(&mut self.buf);
        }
        self.change_slow(f)
    }

    fn change_slow<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        let at = self.buf.addr();
        let saving = super::fork_save_active();
        let copy = T::table().with(|t| t.borrow_mut().get_mut(&at).map(|b| &mut **b as *mut T));
        if let Some(p) = copy {
            if saving {
                // SAFETY: as in `get`; `&mut self` makes this the only reference to the copy.
                return f(unsafe { &mut *p });
            }
            self.heal();
            return f(&mut self.buf);
        }
        let fresh = self.made_in == super::save_generation();
        if saving && !fresh && super::should_forward(self.buf.heap_bytes()) {
            let mut b = Box::new(self.buf.clone());
            let p = &mut *b as *mut T;
            T::table().with(|t| t.borrow_mut().insert(at, b));
            LIVE.set(LIVE.get() + 1);
            super::forwarded(self.buf.heap_bytes(), true);
            // SAFETY: as above; the box just went into the table, which keeps it.
            return f(unsafe { &mut *p });
        }
        let r = f(&mut self.buf);
        if saving && self.buf.addr() != at {
            // Reallocated, in memory made after the fork; the handle's page is written already.
            self.made_in = super::save_generation();
        }
        r
    }

    /// Takes the copy back, if there is one, freeing the old buffer (once the child is gone).
    pub(crate) fn heal(&mut self) {
        if LIVE.get() == 0 {
            return;
        }
        if let Some(b) = self.take_copy() {
            self.buf = *b;
        }
    }

    /// The copy, out of the table.
    fn take_copy(&self) -> Option<Box<T>> {
        let b = T::table()
            .try_with(|t| t.borrow_mut().remove(&self.buf.addr()))
            .ok()
            .flatten()?;
        LIVE.set(LIVE.get() - 1);
        super::forwarded(self.buf.heap_bytes(), false);
        Some(b)
    }

    /// The handle's own buffer, whatever is forwarded (tests).
    #[cfg(test)]
    pub(crate) fn own(&self) -> &T {
        &self.buf
    }

    /// Is there a copy (tests)?
    #[cfg(test)]
    pub(crate) fn is_forwarded(&self) -> bool {
        LIVE.get() != 0 && T::table().with(|t| t.borrow().contains_key(&self.buf.addr()))
    }
}

impl<T: Buffer> Drop for Fwd<T> {
    fn drop(&mut self) {
        if LIVE.get() != 0 {
            drop(self.take_copy());
        }
    }
}

impl<T: Buffer> Clone for Fwd<T> {
    /// A copy of the buffer as it is now, in a handle of its own.
    fn clone(&self) -> Self {
        Fwd::new(self.get().clone())
    }
}

impl<T: Buffer> std::fmt::Debug for Fwd<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}
