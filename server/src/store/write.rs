//! The one write path: every change to a key passes through a [`Slot`].
//!
//! ```text
//! ks.write(db, key) ──► lazy expiry of key ──► Slot (reads: entry, get_str, exists)
//!                                                │ first mutating call (set_str, set_int, put,
//!                                                │ set_expire, delete):
//!                                                ├─► hook: before_write(db, key, old entry)
//!                                                ├─► the change
//!   Slot dropped ◄───────────────────────────────┘
//!        └─► WATCH invalidation (touch → dirty_cas), dirty counter
//! ```
//!
//! A command opens a `Slot`, decides with reads through it (type checks answer [`WrongType`]
//! before anything changes), then calls the mutating methods; the hook runs once per `Slot`,
//! before its first change, with the entry as it was, and the `Slot`'s drop tells WATCHers and
//! adds one to `dirty` when anything changed. A `Slot` that only read changes nothing. No
//! `&mut Entry` ever leaves this module, so there is no other way to change an entry.
//!
//! Whole-key operations (RENAME, MOVE, COPY) are store methods built from two `Slot`s, each
//! hooked, counted once in `dirty` as Redis counts them. Whole-database operations (FLUSHDB,
//! FLUSHALL, SWAPDB, DEBUG RELOAD's flush) call `Hooks::db_flushed` / `Hooks::dbs_swapped` once
//! per database, handing over its whole old content, not the per-key hook once per key: a flush must stay O(1) in
//! hook calls when nothing listens, and the listener can walk the content itself.
//!
//! Expiry, eviction and restoring from an RDB file use the same `Slot`, with their own
//! accounting: they add nothing to `dirty` (a load resets it; Redis counts neither expiry
//! nor eviction), but they call the hook and tell WATCHers.
//!
//! # How a command uses it (and how a new type joins)
//!
//! ```text
//! let mut w = cx.srv.ks.write(db, key);        // lazy expiry done; nothing changed yet
//! let old = match w.get_str() {                // typed read: WRONGTYPE before any change
//!     Ok(old) => old,
//!     Err(WrongType) => { drop(w); return cx.wrongtype(); }
//! };
//! ... decide from `old` (errors here change nothing) ...
//! w.set_str(new, None);                        // hook(old entry), then the change
//! drop(w);                                     // WATCH + dirty; then reply through `cx`
//! ```
//!
//! A new type (say `Value::List`) adds, each with an exhaustive `match` like the string ones:
//! `Value::as_list` (beside `Value::as_str`), `Keyspace::get_list` for read commands,
//! `Slot::get_list` for deciding, and `Slot::list_mut`, which checks the type first, then calls
//! `self.before()` and only then hands out `&mut`: call it only when the command will change
//! the value. A new key is created with `Slot::put`; a command that empties a collection
//! deletes the key with `Slot::delete` (Redis never keeps an empty list). The compiler then
//! points at the rest (`type_name`, `encoding_name`, the RDB writer, SET's in-place
//! overwrite, the test recorder).

use super::dict::Table;
use super::{access, Db, Entry, EntryRef, Key, Keyspace, Str, StrEnc, Value, WrongType};

/// A whole-database change, as the hook sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbEvent {
    /// FLUSHDB/FLUSHALL (and DEBUG RELOAD): the content is dropped.
    Flush,
    /// SWAPDB: the content moves to database `with`, whose content moves here.
    Swap { with: usize },
}

/// What the write path tells before each change.
///
/// A forkless snapshot lives here (`store/snapshot.rs`): while one runs, `before_write` writes
/// the old entry of a key the walk has not reached *before* the change reaches it, so the file
/// holds the data as of the save's start without keeping old values in memory; a flush hands
/// the old table to the walk and a swap renames which table is which database.
#[derive(Default)]
pub(super) struct Hooks {
    /// The epoch of the running forkless save, or of the last one: see `store/snapshot.rs`.
    pub(super) epoch: u16,
    /// The running forkless save's walk.
    pub(super) walk: Option<super::snapshot::Walk>,
    /// Test-only recording hook: what the write path announced, in order.
    #[cfg(test)]
    pub(super) log: Vec<Recorded>,
}

/// One call of the hook, as the test recorder keeps it.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Recorded {
    /// `before_write`: the key and its old (string bytes, expire), None if the key was new.
    Key {
        db: usize,
        key: Vec<u8>,
        old: Option<(Vec<u8>, i64)>,
    },
    /// `before_write_db`: the database, the event, how many keys it held.
    Db {
        db: usize,
        event: DbEvent,
        keys: usize,
    },
}

impl Hooks {
    /// Called once per [`Slot`], before its first change, with the entry and its expiry (-1:
    /// none) as they are then (None: the key does not exist and is being created).
    #[inline]
    fn before_write(&mut self, db: usize, key: &[u8], old: Option<(&mut Entry, i64)>) {
        #[cfg(test)]
        self.log.push(Recorded::Key {
            db,
            key: key.to_vec(),
            old: old.as_ref().map(|(e, expire)| match &e.value {
                Value::Str { data, .. } => (data.to_vec(), *expire),
                other => (format!("<{}>", other.type_name()).into_bytes(), *expire),
            }),
        });
        if let (Some(walk), Some((e, expire))) = (self.walk.as_mut(), old) {
            walk.before_write(db, key, e, expire);
        }
    }

    /// Called before a whole database is emptied, with its old content (which the hook may keep).
    #[inline]
    pub(super) fn db_flushed(&mut self, db: usize, content: Db) {
        #[cfg(test)]
        self.log.push(Recorded::Db {
            db,
            event: DbEvent::Flush,
            keys: content.len(),
        });
        if let Some(walk) = self.walk.as_mut() {
            walk.flushed(db, content);
        }
    }

    /// Called as databases `a` and `b` (a != b) exchange contents.
    #[inline]
    pub(super) fn dbs_swapped(&mut self, a: usize, b: usize, dbs: &[Db]) {
        #[cfg(test)]
        for (x, y) in [(a, b), (b, a)] {
            self.log.push(Recorded::Db {
                db: x,
                event: DbEvent::Swap { with: y },
                keys: dbs[x].len(),
            });
        }
        #[cfg(not(test))]
        let _ = dbs;
        if let Some(walk) = self.walk.as_mut() {
            walk.swapped(a, b);
        }
    }
}

/// A write guard on one key of one database: the only way to change an entry. See the module
/// docs for the order of events; `Keyspace::write` opens one.
pub struct Slot<'a, 'k> {
    ks: &'a mut Keyspace,
    db: usize,
    key: &'k [u8],
    /// The key's hash in this database's table, when known (one SipHash per command).
    hash: Option<u64>,
    /// Index of the live entry in the table, None while the key does not exist.
    idx: Option<usize>,
    /// The hook has run for this slot.
    hooked: bool,
    /// Something changed: the drop tells WATCHers and counts `cost` in `dirty`.
    changed: bool,
    cost: u64,
}

/// Sets (`at` >= 0) or clears (`at` < 0) the TTL of `entry`, whose key is `key`: its `expires`
/// record and the entry's `ttl` flag change together. Fields are written only when they change
/// (while a snapshot child lives, an untouched page is one the kernel need not copy).
fn set_ttl(expires: &mut Table<i64>, entry: &mut Entry, key: &[u8], at: i64) {
    if at >= 0 {
        match expires.get_mut(key) {
            Some(cur) if *cur == at => {}
            Some(cur) => *cur = at,
            None => {
                expires.insert(key, at);
            }
        }
        if !entry.ttl {
            entry.ttl = true;
        }
    } else if entry.ttl {
        expires.swap_remove(key);
        entry.ttl = false;
    }
}

impl Slot<'_, '_> {
    /// Does the key exist (it is live: lazy expiry ran when the slot was opened)?
    pub fn exists(&self) -> bool {
        self.idx.is_some()
    }

    /// The entry as it is now, if the key exists.
    pub fn entry(&self) -> Option<EntryRef<'_>> {
        self.ks.dbs[self.db].entry_ref(self.idx?)
    }

    /// The entry to change; only the typed `*_mut` accessors (store.rs) use it, after the hook.
    pub(super) fn entry_mut(&mut self) -> Option<&mut Entry> {
        let i = self.idx?;
        self.ks.dbs[self.db].dict.get_index_mut(i).map(|(_, e)| e)
    }

    /// The string, None if the key does not exist, [`WrongType`] for another type.
    pub fn get_str(&self) -> Result<Option<&Str>, WrongType> {
        match self.entry() {
            Some(e) => e.value.as_str().map(Some),
            None => Ok(None),
        }
    }

    /// Runs the hook (once per slot) and marks the slot changed: every mutating method calls
    /// this just before it changes anything.
    pub(super) fn before(&mut self) {
        self.changed = true;
        if self.hooked {
            return;
        }
        self.hooked = true;
        let Keyspace { dbs, hooks, .. } = &mut *self.ks;
        let Db { dict, expires, .. } = &mut dbs[self.db];
        let old = self.idx.and_then(|i| dict.get_index_mut(i)).map(|(_, e)| {
            let expire = if e.ttl {
                expires.get(self.key).copied().unwrap_or(-1)
            } else {
                -1
            };
            (e, expire)
        });
        hooks.before_write(self.db, self.key, old);
    }

    fn hash(&mut self) -> u64 {
        match self.hash {
            Some(h) => h,
            None => {
                let h = self.ks.dbs[self.db].dict.hash(self.key);
                self.hash = Some(h);
                h
            }
        }
    }

    /// Adds a new entry for the key (which does not exist), with expiry `expire` (-1: none).
    fn insert(&mut self, mut entry: Entry, expire: i64) {
        // Born in the running (or last) snapshot's epoch: a key created after a forkless save
        // started is not in its file (see `store/snapshot.rs`).
        entry.snap = self.ks.hooks.epoch;
        // A key that appears may serve blocked clients (Redis's `signalKeyAsReady` in dbAdd).
        self.ks.blocking.signal(self.db, self.key);
        let hash = self.hash();
        let key = self.key;
        let Db { dict, expires, .. } = &mut self.ks.dbs[self.db];
        entry.ttl = false;
        let i = match dict.find(hash, key) {
            // Not reached (`idx` None means absent), but correct if it were.
            Some(i) => {
                if let Some((_, e)) = dict.get_index_mut(i) {
                    entry.ttl = e.ttl;
                    *e = entry;
                }
                i
            }
            None => dict.insert_new(hash, Key::from_slice(key), entry),
        };
        if let Some((_, e)) = dict.get_index_mut(i) {
            set_ttl(expires, e, key, expire);
        }
        self.idx = Some(i);
    }

    /// The live entry and the `expires` table, for an in-place change.
    fn parts(&mut self) -> Option<(&mut Entry, &mut Table<i64>)> {
        let i = self.idx?;
        let Db { dict, expires, .. } = &mut self.ks.dbs[self.db];
        let (_, e) = dict.get_index_mut(i)?;
        Some((e, expires))
    }

    /// Stores a string with encoding `enc`, writing it into the old value's buffer when that is a
    /// string and it fits (see the module docs of `store` for why). `expire`: Some(-1) clears the
    /// TTL, Some(ms) sets it, None keeps the current one.
    fn store_str(&mut self, data: &[u8], enc: StrEnc, expire: Option<i64>) {
        self.before();
        let key = self.key;
        let lru = self.ks.lru_clock;
        let Some((e, expires)) = self.parts() else {
            let value = Value::Str {
                data: Str::new(data, enc),
            };
            return self.insert(Entry::new(value, lru), expire.unwrap_or(-1));
        };
        if let Some(at) = expire {
            set_ttl(expires, e, key, at);
        }
        let fits = match &mut e.value {
            Value::Str { data: buf } => {
                let fits = buf.overwrite(data);
                // Fields are written only when they change: while a snapshot child lives, an
                // untouched entry page is one the kernel need not copy.
                if fits {
                    buf.set_enc(enc);
                }
                fits
            }
            Value::List(_) | Value::Hash(_) | Value::Set(_) | Value::ZSet(_) => false,
        };
        if !fits {
            e.value = Value::Str {
                data: Str::new(data, enc),
            };
        }
    }

    /// Stores a string as SET does, overwriting the old buffer in place when it fits.
    /// `expire`: Some(-1) clears the TTL, Some(ms) sets it, None keeps it (KEEPTTL).
    pub fn set_str(&mut self, data: &[u8], expire: Option<i64>) {
        self.store_str(data, super::set_encoding(data), expire);
    }

    /// The string's bytes to change in place, at least `min_len` long: SETBIT, BITFIELD and
    /// SETRANGE write through this. A missing key becomes a string of `min_len` zero bytes; a
    /// shorter string is padded with zero bytes (Redis's `sdsgrowzero`, page-aligned from a page
    /// on: see `strbuf`). Checks the type first (nothing is told or changed on [`WrongType`]),
    /// then tells the hook, then sets the encoding to `raw` (Redis's `dbUnshareStringValue`).
    ///
    /// Why not read, copy and [`Slot::put`]: during a snapshot, rewriting a 1 MiB bitmap to flip
    /// one bit dirties its 256 pages the child shares; writing the byte in place dirties one.
    /// Call it only when the command will change the value; every field is written only if it
    /// changes, for the same reason.
    pub fn str_bytes_mut(&mut self, min_len: usize) -> Result<&mut [u8], WrongType> {
        if let Some(e) = self.entry() {
            e.value.as_str()?;
        }
        self.before();
        let lru = self.ks.lru_clock;
        if self.idx.is_none() {
            // Grown from empty rather than built from a zeroed Vec: no second copy of what
            // may be a value of hundreds of MB (SETBIT at a large offset).
            let mut data = Str::new(&[], StrEnc::Raw);
            data.grow_zeroed(min_len);
            let value = Value::Str { data };
            self.insert(Entry::new(value, lru), -1);
        }
        // Not reached without an entry (it was found or just inserted); no panic if it were.
        let Some(e) = self.entry_mut() else {
            return Err(WrongType);
        };
        match &mut e.value {
            Value::Str { data } => {
                data.set_enc(StrEnc::Raw);
                data.grow_zeroed(min_len);
                Ok(data.as_mut_slice())
            }
            Value::List(_) | Value::Hash(_) | Value::Set(_) | Value::ZSet(_) => Err(WrongType),
        }
    }

    /// Marks the string `raw` without changing its bytes, as Redis's `dbUnshareStringValue` does
    /// when SETBIT or BITFIELD open a value they end up not changing: OBJECT ENCODING then says
    /// `raw`, but nothing counts in `dirty` and no WATCH is invalidated, as in Redis. The hook
    /// still runs first (the encoding decides how a snapshot writes the value). Nothing happens
    /// for a missing key, another type, or a string that is `raw` already.
    pub fn str_mark_raw(&mut self) {
        let needs = matches!(
            self.entry().map(|e| e.value),
            Some(Value::Str { data }) if data.enc() != StrEnc::Raw
        );
        if !needs {
            return;
        }
        let changed = self.changed;
        self.before();
        self.changed = changed;
        if let Some(Value::Str { data }) = self.entry_mut().map(|e| &mut e.value) {
            data.set_enc(StrEnc::Raw);
        }
    }

    /// How many changes this slot adds to `dirty` when dropped (1 unless told), for the commands
    /// Redis counts per element: HSET one per pair given, HDEL one per field deleted, SADD/SREM/
    /// SPOP one per member, LPUSH/RPUSH one per element pushed, pops/LREM/LTRIM one per element
    /// removed, ZADD members added or updated, ZREM/ZREMRANGE*/ZPOP* members
    /// removed, BITFIELD one per field written. 0 means a command that took `&mut` changed
    /// nothing after all: nothing is counted and WATCHers are not told, as Redis signals a
    /// modified key only when the count is not 0 (the hook having seen the old entry is
    /// harmless).
    pub fn count_changes(&mut self, n: u64) {
        self.cost = n;
        if n == 0 {
            self.changed = false;
        }
    }

    /// Tells WATCHers the key was modified, though nothing changed and nothing is counted in
    /// `dirty`: Redis's `signalModifiedKey` after an LTRIM that removed nothing. No hook runs
    /// (the entry is as it was).
    pub fn signal_unchanged(&mut self) {
        if self.idx.is_some() {
            self.changed = true;
            self.cost = 0;
        }
    }

    /// Stores the integer `n` as INCR does (`int` encoding, digits written in place, TTL kept).
    pub fn set_int(&mut self, n: i64) {
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n).as_bytes();
        self.store_str(digits, StrEnc::Int, None);
    }

    /// Stores a value of any type, replacing the old one. `expire` as in [`Slot::set_str`].
    pub fn put(&mut self, value: Value, expire: Option<i64>) {
        self.before();
        // A key created or replaced may serve blocked clients (Redis's `signalKeyAsReady`).
        self.ks.blocking.signal(self.db, self.key);
        let key = self.key;
        let lru = self.ks.lru_clock;
        let Some((e, expires)) = self.parts() else {
            return self.insert(Entry::new(value, lru), expire.unwrap_or(-1));
        };
        if let Some(at) = expire {
            set_ttl(expires, e, key, at);
        }
        e.value = value;
    }

    /// Puts a whole entry (value, expire and access metadata) in place of the key's (RENAME, MOVE).
    fn put_entry(&mut self, mut entry: Entry, expire: i64) {
        self.before();
        self.ks.blocking.signal(self.db, self.key);
        let key = self.key;
        let Some((e, expires)) = self.parts() else {
            return self.insert(entry, expire);
        };
        entry.ttl = e.ttl;
        *e = entry;
        set_ttl(expires, e, key, expire);
    }

    /// RESTORE's IDLETIME/FREQ (Redis's `objectSetLRUOrLFU`): under an LFU policy `freq`
    /// becomes the key's counter; otherwise `idle_secs` back-dates its last access on the LRU
    /// clock (which wraps, as Redis's; see `Keyspace::refresh_clock`). Access metadata only: not a
    /// change of the data, so no `before_write` and no dirty count.
    pub fn set_access(&mut self, idle_secs: Option<u64>, freq: Option<u8>) {
        let (clock, lfu) = (self.ks.lru_clock, self.ks.lfu.is_some());
        let Some((e, _)) = self.parts() else {
            return;
        };
        if lfu {
            if let Some(f) = freq {
                e.freq = f;
                e.lru = clock;
            }
        } else if let Some(idle) = idle_secs {
            // Redis's `objectSetLRUOrLFU`: an idle time longer than the clock goes back is
            // set half-way ahead of the clock, which reads as the longest idle time there is.
            let idle = u32::try_from(idle).unwrap_or(u32::MAX);
            e.lru = match clock.checked_sub(idle) {
                Some(at) => at,
                None => {
                    ((u64::from(clock) + u64::from(super::LRU_CLOCK_MAX / 2))
                        % u64::from(super::LRU_CLOCK_MAX)) as u32
                }
            };
        }
    }

    /// Sets (`at` >= 0, ms since the epoch) or clears (`at` -1) the TTL of the existing key.
    /// Returns false, changing nothing, if the key does not exist.
    pub fn set_expire(&mut self, at: i64) -> bool {
        if self.idx.is_none() {
            return false;
        }
        self.before();
        let key = self.key;
        let Some((e, expires)) = self.parts() else {
            return false;
        };
        set_ttl(expires, e, key, at);
        true
    }

    /// Deletes the key. Returns its entry, None (changing nothing) if it did not exist.
    pub fn delete(&mut self) -> Option<Entry> {
        self.take().map(|(e, _)| e)
    }

    /// Deletes the key, returning its entry and its expiry (-1: none).
    fn take(&mut self) -> Option<(Entry, i64)> {
        let i = self.idx?;
        self.before();
        let Db { dict, expires, .. } = &mut self.ks.dbs[self.db];
        // A swap-remove: the last entry moves into the hole, which keeps SCAN's guarantee.
        let (_, e) = dict.swap_remove_index(i)?;
        let expire = if e.ttl {
            expires.swap_remove(self.key).unwrap_or(-1)
        } else {
            -1
        };
        self.idx = None;
        Some((e, expire))
    }
}

impl Drop for Slot<'_, '_> {
    fn drop(&mut self) {
        if self.changed {
            self.ks.touch(self.db, self.key);
            self.ks.dirty += self.cost;
        }
    }
}

/// What RENAME and RENAMENX did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameOutcome {
    NoSuchKey,
    /// Source and destination are the same key: nothing to do.
    SameKey,
    /// RENAMENX: the destination exists.
    DestinationExists,
    Done,
}

impl Keyspace {
    /// Opens the write path for `key`: lazy expiry first, then the guard through which reads
    /// that decide and every change go. The key's access time is recorded (unless a snapshot
    /// child lives), as Redis's `lookupKeyWrite` does. A change adds 1 to `dirty`.
    pub fn write<'a, 'k>(&'a mut self, db: usize, key: &'k [u8]) -> Slot<'a, 'k> {
        self.open(db, key, true)
    }

    /// As [`Keyspace::write`], for a command that has just read the key with a counted lookup
    /// (GETEX): its access is not recorded a second time.
    pub fn write_after_read<'a, 'k>(&'a mut self, db: usize, key: &'k [u8]) -> Slot<'a, 'k> {
        self.open(db, key, false)
    }

    fn open<'a, 'k>(&'a mut self, db: usize, key: &'k [u8], record_access: bool) -> Slot<'a, 'k> {
        let d = &self.dbs[db];
        let hash = d.dict.hash(key);
        let mut idx = d.dict.find(hash, key);
        if let Some(i) = idx {
            let now_expired = d.dict.get_index(i).is_some_and(|(_, e)| e.ttl)
                && d.expires
                    .find(hash, key)
                    .and_then(|j| d.expires.get_index(j))
                    .is_some_and(|(_, &at)| at <= crate::util::now_ms());
            if now_expired {
                self.expire_at_index(db, key, i);
                idx = None;
            } else if record_access && !self.access_frozen {
                let (clock, lfu) = (self.lru_clock, self.lfu);
                if let Some((_, e)) = self.dbs[db].dict.get_index_mut(i) {
                    access(e, clock, lfu);
                }
            }
        }
        let mut slot = self.slot_at(db, key, idx, 1);
        slot.hash = Some(hash);
        slot
    }

    /// A slot on the live entry at `idx` (or the absent key), with no lookup, lazy expiry or
    /// access: for the store's own expiry, eviction and multi-key operations.
    pub(super) fn slot_at<'a, 'k>(
        &'a mut self,
        db: usize,
        key: &'k [u8],
        idx: Option<usize>,
        cost: u64,
    ) -> Slot<'a, 'k> {
        Slot {
            ks: self,
            db,
            key,
            hash: None,
            idx,
            hooked: false,
            changed: false,
            cost,
        }
    }

    /// Stores a value read from an RDB file or made by DEBUG POPULATE: through the write path
    /// (hook, WATCH), but not counted in `dirty`, as Redis counts neither. `expire` -1: none.
    pub fn restore(&mut self, db: usize, key: &[u8], value: Value, expire: i64) {
        let mut w = self.write(db, key);
        w.cost = 0;
        w.put(value, Some(expire));
    }

    /// Deletes a key (after lazy expiry). Returns the entry if it existed.
    pub fn delete(&mut self, db: usize, key: &[u8]) -> Option<Entry> {
        self.write(db, key).delete()
    }

    /// Empties one database, telling WATCHers of keys that existed. Returns the keys it held,
    /// which count in `dirty` (FLUSHDB's `server.dirty += emptyData(...)`).
    pub fn flush_db(&mut self, db: usize) -> usize {
        let n = self.dbs[db].len();
        self.touch_all_in_db(db, None);
        let old = std::mem::take(&mut self.dbs[db]);
        self.hooks.db_flushed(db, old);
        self.dirty += n as u64;
        n
    }

    /// SWAPDB: exchanges two databases' contents. Counts one change even for `a == b`, as Redis.
    pub fn swap_db(&mut self, a: usize, b: usize) {
        if a != b {
            self.hooks.dbs_swapped(a, b, &self.dbs);
            self.touch_all_in_db(a, Some(b));
            self.touch_all_in_db(b, Some(a));
            self.dbs.swap(a, b);
            // Keys that now exist may serve clients blocked on them (`scanDatabaseForReadyKeys`).
            for db in [a, b] {
                for key in self.blocking.keys_in(db) {
                    if self.dbs[db].dict.contains_key(&key[..]) {
                        self.blocking.signal(db, &key);
                    }
                }
            }
        }
        self.dirty += 1;
    }

    /// RENAME (`nx` false) and RENAMENX: the entry moves whole, keeping its TTL and access
    /// metadata as Redis keeps the object. One change in `dirty`.
    pub fn rename(&mut self, db: usize, src: &[u8], dst: &[u8], nx: bool) -> RenameOutcome {
        if self.lookup_write(db, src).is_none() {
            return RenameOutcome::NoSuchKey;
        }
        if src == dst {
            return RenameOutcome::SameKey;
        }
        if nx && self.lookup_write(db, dst).is_some() {
            return RenameOutcome::DestinationExists;
        }
        let Some((entry, expire)) = self.write(db, src).take() else {
            return RenameOutcome::NoSuchKey;
        };
        let mut w = self.write(db, dst);
        w.cost = 0;
        w.put_entry(entry, expire);
        RenameOutcome::Done
    }

    /// MOVE: moves `key` from `src_db` to `dst_db` unless it is missing there or exists in
    /// `dst_db`. Returns whether it moved. One change in `dirty`.
    pub fn move_key(&mut self, src_db: usize, dst_db: usize, key: &[u8]) -> bool {
        if self.lookup_write(src_db, key).is_none() || self.lookup_write(dst_db, key).is_some() {
            return false;
        }
        let Some((entry, expire)) = self.write(src_db, key).take() else {
            return false;
        };
        let mut w = self.write(dst_db, key);
        w.cost = 0;
        w.put_entry(entry, expire);
        true
    }

    /// COPY: a copy of `src`'s value and TTL becomes `dst` (a new object: fresh access
    /// metadata, as Redis's `dup*Object`), replacing an existing `dst` only if `replace`.
    /// Returns whether it copied. One change in `dirty`.
    pub fn copy_key(
        &mut self,
        src_db: usize,
        src: &[u8],
        dst_db: usize,
        dst: &[u8],
        replace: bool,
    ) -> bool {
        let Some(e) = self.get(src_db, src) else {
            return false;
        };
        let (value, expire) = (e.value.clone(), e.expire);
        let mut w = self.write(dst_db, dst);
        if w.exists() && !replace {
            return false;
        }
        w.delete();
        w.put(value, Some(expire));
        true
    }
}
