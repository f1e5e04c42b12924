//! The keyspace's side of a forkless (thread) snapshot: a walk over every entry that existed
//! when the save started, and the part of the before-write hook that writes an entry out before
//! a change reaches it. What the entries become (a queue, a writer thread, a file) is the
//! persistence layer's business (`persist/forkless.rs`); this module only hands them to a
//! [`SnapSink`], each exactly once, as they were at the start.
//!
//! # Epochs: what is written, and when
//!
//! Every entry carries a snapshot epoch ([`Entry::snap`]). A save takes a fresh epoch `E`; an
//! entry is *unwritten* while its epoch is not `E`. Whoever reaches an unwritten entry first
//! (the walk, or the hook as a change is about to reach it) sends a copy of it to the sink and
//! stamps it `E`. A key created after the start is born with `E` (`Slot::insert`), so it is never
//! written; an entry moved whole (RENAME, MOVE) was stamped by the hook as it left its old key.
//! So each entry of the start is written once, in its state at the start, whatever happens after:
//!
//! ```text
//! change to key k (any Slot mutation: overwrite, DEL, expiry, eviction, RENAME, MOVE, ...)
//!   └─► before_write(db, k, old entry) ── old.snap != E ? ──► sink ← copy of old; old.snap = E
//! walk step ──► next unvisited index of the current database ── snap != E ? ──► sink ← copy
//! ```
//!
//! # The walk cursor
//!
//! Each database is walked from its last index down to 0, as SCAN walks: a delete swap-removes
//! (the last entry moves into the hole), so an entry below the cursor stays below it, and one that
//! moves from above the cursor into the unvisited part was visited already (stamped) or is new
//! (born stamped): nothing is missed and nothing is written twice. Inserts append above the
//! cursor; table growth reallocates but keeps indices.
//!
//! Whole-database changes never copy: SWAPDB swaps which table holds which *origin* database (the
//! number the entries are written under is the one they had at the start), and FLUSHDB detaches
//! the old table into the walk, which drains it from the end (each entry freed as it is written)
//! instead of dropping it at once. FLUSHALL ends the save first (as it kills a fork child).

use super::{Db, Entry, Value};

/// Where the snapshot's entries go.
pub trait SnapSink {
    /// Takes one entry, as it is now: `db` is the database it belonged to when the save started,
    /// `expire` its absolute expiry in ms (-1: none). The sink copies what it keeps: the entry
    /// may change as soon as this returns. `early`: the hook sends it, because a change is about
    /// to reach it; the sink must take it whatever its fill (it may block until there is room:
    /// the one place a write waits for the writer thread).
    fn emit(&mut self, db: u32, key: &[u8], value: &Value, expire: i64, early: bool);
    /// May the walk send more now? (When not, the walk waits: never the memory.)
    fn has_room(&self) -> bool;
    /// Hands what is buffered on (the walk calls it at the end of each step).
    fn flush(&mut self);
    /// Every entry has been sent: the sink may end its output.
    fn finish(self: Box<Self>);
}

/// What one walk step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkStep {
    /// The time or key budget of the step ran out; there is more to walk.
    More,
    /// The sink is full: wait until the writer has taken some.
    Full,
    /// Every entry of the start has been sent.
    Done,
}

/// A running forkless save's walk state (lives in the store's `Hooks`).
pub(super) struct Walk {
    /// This save's epoch.
    pub(super) epoch: u16,
    /// Origin database → the index of the table that holds it now (None: flushed; what was
    /// not yet written is in `detached`).
    at: Vec<Option<usize>>,
    /// Table index → the origin database it holds (None: a table created after the start).
    origin: Vec<Option<usize>>,
    /// Origin database → entries below this index are not visited yet.
    left: Vec<usize>,
    /// The origin database being walked.
    next: usize,
    /// Flushed tables with entries still to write: (origin, table).
    detached: Vec<(usize, Db)>,
    pub(super) sink: Box<dyn SnapSink>,
    /// Entries sent, and of those, sent early by the hook.
    pub(super) sent: u64,
    pub(super) early: u64,
}

impl Walk {
    pub(super) fn new(epoch: u16, dbs: &[Db], sink: Box<dyn SnapSink>) -> Walk {
        let n = dbs.len();
        Walk {
            epoch,
            at: (0..n).map(Some).collect(),
            origin: (0..n).map(Some).collect(),
            left: dbs.iter().map(Db::len).collect(),
            next: 0,
            detached: Vec::new(),
            sink,
            sent: 0,
            early: 0,
        }
    }

    pub(super) fn into_sink(self) -> Box<dyn SnapSink> {
        self.sink
    }

    /// The hook's part: `entry`, in table `db`, is about to change.
    pub(super) fn before_write(&mut self, db: usize, key: &[u8], entry: &mut Entry, expire: i64) {
        if entry.snap == self.epoch {
            return;
        }
        entry.snap = self.epoch;
        // A table made after the start holds only entries born or stamped with this epoch.
        let Some(origin) = self.origin.get(db).copied().flatten() else {
            return;
        };
        self.sent += 1;
        self.early += 1;
        self.sink
            .emit(origin as u32, key, &entry.value, expire, true);
    }

    /// Table `db` is being emptied; `old` is its content. Kept for the walk if it holds
    /// entries of the start, else dropped here.
    pub(super) fn flushed(&mut self, db: usize, old: Db) {
        let Some(origin) = self.origin.get(db).copied().flatten() else {
            return;
        };
        self.origin[db] = None;
        self.at[origin] = None;
        if !old.is_empty() {
            self.detached.push((origin, old));
        }
    }

    /// Tables `a` and `b` exchanged contents.
    pub(super) fn swapped(&mut self, a: usize, b: usize) {
        self.origin.swap(a, b);
        for t in [a, b] {
            if let Some(o) = self.origin[t] {
                self.at[o] = Some(t);
            }
        }
    }

    /// Sends up to `max_keys` unwritten entries, or until `deadline`.
    pub(super) fn step(
        &mut self,
        dbs: &mut [Db],
        max_keys: usize,
        deadline: std::time::Instant,
    ) -> WalkStep {
        let mut visited = 0usize;
        loop {
            if visited >= max_keys || (visited % 32 == 31 && std::time::Instant::now() >= deadline)
            {
                self.sink.flush();
                return WalkStep::More;
            }
            if !self.sink.has_room() {
                self.sink.flush();
                return WalkStep::Full;
            }
            visited += 1;
            if self.next < self.at.len() {
                let o = self.next;
                let Some(t) = self.at[o] else {
                    self.next += 1;
                    continue;
                };
                let Db { dict, expires, .. } = &mut dbs[t];
                let left = self.left[o].min(dict.len());
                if left == 0 {
                    self.left[o] = 0;
                    self.next += 1;
                    continue;
                }
                self.left[o] = left - 1;
                let Some((k, e)) = dict.get_index_mut(left - 1) else {
                    continue;
                };
                if e.snap == self.epoch {
                    continue;
                }
                e.snap = self.epoch;
                self.sent += 1;
                let expire = if e.ttl {
                    expires.get(k).copied().unwrap_or(-1)
                } else {
                    -1
                };
                self.sink.emit(o as u32, k, &e.value, expire, false);
            } else if let Some((o, table)) = self.detached.last_mut() {
                let o = *o;
                // Popped from the end: each entry is freed as it is written, so a flushed table
                // shrinks as the walk drains it rather than living to the save's end.
                match table.dict.pop() {
                    Some((key, e)) => {
                        let expire = if e.ttl {
                            table.expires.swap_remove(&key).unwrap_or(-1)
                        } else {
                            -1
                        };
                        if e.snap != self.epoch {
                            self.sent += 1;
                            self.sink.emit(o as u32, &key, &e.value, expire, false);
                        }
                    }
                    None => {
                        self.detached.pop();
                    }
                }
            } else {
                self.sink.flush();
                return WalkStep::Done;
            }
        }
    }
}
