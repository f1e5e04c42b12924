//! The keyspace: numbered databases of entries, with expiry, eviction and WATCH bookkeeping. It
//! is the **one door to the data**: nothing outside this module reads or changes a table.
//!
//! # What it owns, and who may touch what
//!
//! ```text
//! Keyspace ─ dbs: Vec<Db>          private; Db's dict, expires, avg_ttl private too
//!          ├ watched, dirty_cas     WATCH registrations and the clients whose EXEC must fail
//!          ├ dirty                  changes since the last save (persist resets/subtracts it)
//!          ├ stats, clocks, flags   hits/misses/expired/evicted, LRU clock, access_frozen, lfu
//!          └ hooks                  the before-write hook (empty; see write.rs)
//! ```
//!
//! - **Reads** go through typed lookups that do lazy expiry and the hit/miss statistics:
//!   [`Keyspace::get_str`] answers [`WrongType`] for a key of another type, [`Keyspace::get`]
//!   gives any entry (TYPE, TTL, OBJECT), [`Keyspace::peek`] reads without side effects.
//!   Callers only ever get `&Entry`, never `&mut Entry`.
//! - **Writes** all pass through one path (`store/write.rs`): [`Keyspace::write`] returns a [`Slot`],
//!   a guard on one key, and only a `Slot` (or the store's own whole-key and whole-db operations
//!   built on it: RENAME, MOVE, COPY, FLUSHDB, SWAPDB, expiry, eviction, restore at load) changes
//!   an entry. Each change runs, in order: lazy expiry of the key, the `before_write` hook with
//!   the old entry, the change, then WATCH invalidation and the dirty counter.
//! - **Walks**: [`Keyspace::databases`] lends each database's (key, value, expire) by reference to
//!   the RDB writer (which must never copy a value: in the fork child a copy dirties pages);
//!   [`Keyspace::scan`], [`Keyspace::keys_matching`], [`Keyspace::random_key`] serve commands.
//! - Expiry (`store/expire.rs`) and eviction (`store/evict.rs`) live here and delete through the write path.
//!
//! Every `match` on [`Value`] in this module is exhaustive, with no `_ =>` arm: adding a type
//! makes the compiler point at each place that must decide what the new type does.
//!
//! # Layout, and the rules snapshots rely on
//!
//! Each database is a table (`store/dict.rs`): a hash index of positions plus a dense vector of
//! (key, entry). The dense vector gives O(1) uniform random picks (RANDOMKEY, active-expiry
//! sampling) and a SCAN cursor that stays valid across inserts and deletes: SCAN walks indices
//! downwards, and a delete only ever moves the *last* entry into the hole, so an entry not yet
//! visited stays below the cursor.
//!
//! Keys with a time to live have their expiry in a second table, `expires` (key → ms), as in
//! Redis: active expiry samples only those, and a key without a TTL pays nothing for it (its
//! entry's `ttl` flag says whether to look).
//!
//! What a key costs the tables (pinned by a test): a 24-byte [`Key`] and a 40-byte [`Entry`]
//! (a 32-byte [`Value`], the access metadata, the snapshot epoch, the TTL flag) in the dense
//! vector, and 5 bytes per index slot. Redis spends a dictEntry (24), an robj (16), the key's
//! sds and a bucket pointer or two.
//!
//! Keys up to 23 bytes and string values up to 29 live inside the entry itself, in the dense
//! entry vector, and only longer ones have a heap buffer. That saves a heap allocation and
//! a cache miss per short key, and it matters for snapshots: overwriting a short value writes
//! only the entry's page, where a separately allocated value would also dirty the pages of the
//! new and the freed allocation, pages the parent shares with the snapshot child
//! (copy-on-write). A longer value is overwritten in its own buffer when it fits, for the same
//! reason ([`Slot::set_str`]). Keys and values are always copied out of the client's read buffer.
//! While a snapshot child lives (`access_frozen`) no access metadata is written, and
//! [`Keyspace::reserve_headroom`] grows the tables before the fork rather than under the child.

pub(crate) mod dict;
mod evict;
mod expire;
mod key;
mod snapshot;
#[cfg(test)]
mod tests;
mod write;

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use crate::util::{now_ms, parse_i64};

pub use key::{Key, KEY_INLINE};
pub use snapshot::{SnapSink, WalkStep};
pub use write::{DbEvent, RenameOutcome, Slot};

/// How a string is held, as OBJECT ENCODING reports it (Redis's `int`, `embstr`, `raw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrEnc {
    Int,
    Embstr,
    Raw,
}

/// Strings up to this length are `embstr` in Redis (`OBJ_ENCODING_EMBSTR_SIZE_LIMIT`).
const EMBSTR_LIMIT: usize = 44;

pub use crate::strbuf::{Str, INLINE, INLINE_VALUES};

/// The reply for a command on a key of another type (Redis's `shared.wrongtypeerr`).
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// A typed lookup found the key holding a value of another type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", WRONGTYPE)]
pub struct WrongType;

pub use crate::types::{Hash, List, Set, ZSet};

/// A key's value. Each container variant's type lives in `crate::types`; its size adds to every
/// entry of the table (entries sit in one dense vector), so container types are small handles
/// (a test pins `size_of::<Value>()`).
#[derive(Debug, Clone)]
pub enum Value {
    /// A string; its encoding travels in the [`Str`] (see `strbuf`: that keeps `Value` at 32 bytes).
    Str {
        data: Str,
    },
    List(List),
    Hash(Hash),
    Set(Set),
    ZSet(ZSet),
}

/// Typed access to one container variant: `Value::$as`/`$as_mut`, `Keyspace::$get` (read
/// commands) and `Slot::$get`/`$mut` (commands that write), each answering [`WrongType`] for a
/// key of another type. One macro so that the four container types cannot drift apart.
macro_rules! container_access {
    ($variant:ident, $ty:ty, $as:ident, $as_mut:ident, $get:ident, $mut:ident) => {
        impl Value {
            /// The value as this type, or [`WrongType`].
            pub fn $as(&self) -> Result<&$ty, WrongType> {
                match self {
                    Value::$variant(v) => Ok(v),
                    _ => Err(WrongType),
                }
            }

            /// Mutable access for the write path only (see `store/write.rs`).
            fn $as_mut(&mut self) -> Result<&mut $ty, WrongType> {
                match self {
                    Value::$variant(v) => Ok(v),
                    _ => Err(WrongType),
                }
            }
        }

        impl Keyspace {
            /// Typed read (lazy expiry and hit/miss statistics as [`Keyspace::get`]).
            pub fn $get(&mut self, db: usize, key: &[u8]) -> Result<Option<&$ty>, WrongType> {
                match self.get(db, key) {
                    Some(e) => e.value.$as().map(Some),
                    None => Ok(None),
                }
            }
        }

        impl write::Slot<'_, '_> {
            /// Typed read through the slot, to decide before changing anything.
            pub fn $get(&self) -> Result<Option<&$ty>, WrongType> {
                match self.entry() {
                    Some(e) => e.value.$as().map(Some),
                    None => Ok(None),
                }
            }

            /// The value to change in place: checks the type first (nothing is told or changed
            /// on [`WrongType`] or a missing key), then tells the `before_write` hook, then
            /// hands out `&mut`. Call it only when the command will change the value; a command
            /// that empties the container then calls [`Slot::delete`].
            pub fn $mut(&mut self) -> Result<Option<&mut $ty>, WrongType> {
                match self.entry() {
                    None => return Ok(None),
                    Some(e) => {
                        e.value.$as()?;
                    }
                }
                self.before();
                self.entry_mut().map(|e| e.value.$as_mut()).transpose()
            }
        }
    };
}

container_access!(List, List, as_list, as_list_mut, get_list, list_mut);
container_access!(Hash, Hash, as_hash, as_hash_mut, get_hash, hash_mut);
container_access!(Set, Set, as_set, as_set_mut, get_set, set_mut);
container_access!(ZSet, ZSet, as_zset, as_zset_mut, get_zset, zset_mut);

/// The encoding SET gives a string: Redis's `tryObjectEncoding` picks int, embstr or raw.
pub fn set_encoding(data: &[u8]) -> StrEnc {
    if data.len() <= 20 && parse_i64(data).is_some() {
        StrEnc::Int
    } else if data.len() <= EMBSTR_LIMIT {
        StrEnc::Embstr
    } else {
        StrEnc::Raw
    }
}

impl Value {
    /// A string as SET stores it.
    pub fn string(data: &[u8]) -> Value {
        Value::Str {
            data: Str::new(data, set_encoding(data)),
        }
    }

    /// A string built by APPEND or SETRANGE: always `raw` in Redis.
    pub fn raw(data: Vec<u8>) -> Value {
        Value::Str {
            data: Str::from_vec(data, StrEnc::Raw),
        }
    }

    /// The result of INCR and friends: an `int`.
    pub fn int(n: i64) -> Value {
        Value::Str {
            data: Str::new(itoa::Buffer::new().format(n).as_bytes(), StrEnc::Int),
        }
    }

    /// A string made by `createStringObject` (INCRBYFLOAT): embstr when short.
    pub fn created(data: Vec<u8>) -> Value {
        let enc = if data.len() <= EMBSTR_LIMIT {
            StrEnc::Embstr
        } else {
            StrEnc::Raw
        };
        Value::Str {
            data: Str::from_vec(data, enc),
        }
    }

    /// The string, or [`WrongType`] for a value of another type.
    pub fn as_str(&self) -> Result<&Str, WrongType> {
        match self {
            Value::Str { data, .. } => Ok(data),
            Value::List(_) | Value::Hash(_) | Value::Set(_) | Value::ZSet(_) => Err(WrongType),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str { .. } => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            Value::Str { data } => match data.enc() {
                StrEnc::Int => "int",
                StrEnc::Embstr => "embstr",
                StrEnc::Raw => "raw",
            },
            Value::List(v) => v.encoding_name(),
            Value::Hash(v) => v.encoding_name(),
            Value::Set(v) => v.encoding_name(),
            Value::ZSet(v) => v.encoding_name(),
        }
    }

    /// Is this one of the integers Redis shares between keys (0..10000, OBJECT REFCOUNT)?
    pub fn is_shared_int(&self) -> bool {
        match self {
            Value::Str { data } => {
                data.enc() == StrEnc::Int
                    && parse_i64(data).is_some_and(|n| (0..10000).contains(&n))
            }
            Value::List(_) | Value::Hash(_) | Value::Set(_) | Value::ZSet(_) => false,
        }
    }

    /// Bytes this value holds on the heap (for memory estimates).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str { data, .. } => data.len(),
            Value::List(v) => v.heap_size(),
            Value::Hash(v) => v.heap_size(),
            Value::Set(v) => v.heap_size(),
            Value::ZSet(v) => v.heap_size(),
        }
    }
}

/// One key's value and metadata, as its table holds it: 40 bytes, beside a 24-byte [`Key`] (a
/// test pins both). The TTL is not here: like Redis, the store keeps it in the database's
/// `expires` table, and `ttl` says whether to look there, so that a key without one costs
/// nothing for it. Outside this module entries are read as an [`EntryRef`]: every change goes
/// through the write path.
#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    /// Last access, in seconds of the server's LRU clock (OBJECT IDLETIME).
    pub lru: u32,
    /// Snapshot epoch: equal to a running forkless save's epoch once this entry is written to
    /// that save's file, or if it was created after the save started (see `store/snapshot.rs`).
    snap: u16,
    /// Logarithmic access counter, kept when an LFU maxmemory-policy is selected (OBJECT FREQ).
    pub freq: u8,
    /// The key has a TTL: its absolute expiry is in the database's `expires` table.
    ttl: bool,
}

/// An entry as lookups hand it out: its value by reference, its TTL looked up beside it.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    pub value: &'a Value,
    /// Absolute expiry in ms since the epoch, or -1 for none.
    pub expire: i64,
    /// Last access, in seconds of the server's LRU clock (OBJECT IDLETIME).
    pub lru: u32,
    /// Logarithmic access counter (OBJECT FREQ).
    pub freq: u8,
}

impl EntryRef<'_> {
    /// The LFU counter after decay (see [`Entry::lfu_decayed`]).
    pub fn lfu_decayed(&self, clock: u32, decay_minutes: u32) -> u8 {
        lfu_decayed(self.freq, self.lru, clock, decay_minutes)
    }
}

/// The LFU counter `freq`, last touched at `lru`, after decay: one step per `decay_minutes`
/// since then (Redis's `LFUDecrAndReturn`).
fn lfu_decayed(freq: u8, lru: u32, clock: u32, decay_minutes: u32) -> u8 {
    if decay_minutes == 0 {
        return freq;
    }
    let periods = idle_secs(clock, lru) / (60 * decay_minutes);
    freq.saturating_sub(periods.min(255) as u8)
}

/// The largest value of the LRU clock (Redis's `LRU_CLOCK_MAX`, 24 bits).
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;

/// Seconds since `lru` on the wrapping LRU clock (Redis's `estimateObjectIdleTime`).
pub fn idle_secs(clock: u32, lru: u32) -> u32 {
    if clock >= lru {
        clock - lru
    } else {
        clock + (LRU_CLOCK_MAX - lru)
    }
}

/// Redis's `LFU_INIT_VAL`: a new key starts here so it is not evicted before it had a chance.
pub const LFU_INIT_VAL: u8 = 5;

impl Entry {
    /// A new entry, as a new key gets it: accessed now, LFU counter at its initial value. Its
    /// TTL, if any, goes in with it (`Slot::insert`).
    fn new(value: Value, lru: u32) -> Entry {
        Entry {
            value,
            lru,
            freq: LFU_INIT_VAL,
            snap: 0,
            ttl: false,
        }
    }

    /// The LFU counter after decay: one step per `decay_minutes` since the last access
    /// (Redis's `LFUDecrAndReturn`).
    pub fn lfu_decayed(&self, clock: u32, decay_minutes: u32) -> u8 {
        lfu_decayed(self.freq, self.lru, clock, decay_minutes)
    }

    /// Records an access: decay, then Redis's `LFULogIncr` (the counter grows ever more slowly).
    fn touch_lfu(&mut self, clock: u32, log_factor: u32, decay_minutes: u32) {
        let mut counter = self.lfu_decayed(clock, decay_minutes);
        if counter < 255 {
            let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
            let p = 1.0 / (base * f64::from(log_factor) + 1.0);
            if rand::random::<f64>() < p {
                counter += 1;
            }
        }
        self.freq = counter;
    }
}

/// One database. Its tables are private to the store.
pub struct Db {
    /// Key → entry.
    dict: dict::Table<Entry>,
    /// Key → absolute expiry in ms, for the keys whose entry says `ttl` (Redis's
    /// `db->expires`); active expiry and the volatile eviction policies sample it. Hashed as
    /// `dict` (one hasher), so one hash of a key serves both.
    expires: dict::Table<i64>,
    /// Sum of remaining TTLs is not kept; Redis's avg_ttl is an estimate from active expiry samples.
    avg_ttl: i64,
}

impl Default for Db {
    fn default() -> Db {
        let hasher = RandomState::new();
        Db {
            dict: dict::Table::with_hasher(hasher.clone()),
            expires: dict::Table::with_hasher(hasher),
            avg_ttl: 0,
        }
    }
}

impl Db {
    /// The expiry of `entry`, whose key is `key` (-1: none).
    fn expire_of(&self, key: &[u8], entry: &Entry) -> i64 {
        if entry.ttl {
            self.expires.get(key).copied().unwrap_or(-1)
        } else {
            -1
        }
    }

    /// Has the key's time passed at `now`? Reads `expires` only for an entry with a TTL.
    fn is_expired(&self, key: &[u8], entry: &Entry, now: i64) -> bool {
        entry.ttl && self.expires.get(key).is_some_and(|&at| at <= now)
    }

    /// The entry at `idx` as lookups hand it out.
    fn entry_ref(&self, idx: usize) -> Option<EntryRef<'_>> {
        let (k, e) = self.dict.get_index(idx)?;
        Some(EntryRef {
            value: &e.value,
            expire: self.expire_of(k, e),
            lru: e.lru,
            freq: e.freq,
        })
    }

    pub fn len(&self) -> usize {
        self.dict.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }

    /// Keys with a TTL (INFO keyspace `expires`, the RDB's resize-db hint).
    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    /// Redis's `avg_ttl` estimate (INFO keyspace).
    pub fn avg_ttl(&self) -> i64 {
        self.avg_ttl
    }

    /// Every entry by reference, as (key, value, expire: None when persistent), in table order.
    /// Nothing is copied: the fork child walks this, and a copy would dirty shared pages.
    /// Logically expired entries are included (the RDB writer writes them; the loader drops them).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Key, &Value, Option<i64>)> + '_ {
        self.dict.iter().map(|(k, e)| {
            let expire = self.expire_of(k, e);
            (k, &e.value, (expire >= 0).then_some(expire))
        })
    }
}

/// All databases plus what modifies them needs to tell: WATCH registrations, the dirty counter.
pub struct Keyspace {
    dbs: Vec<Db>,
    /// (db, key) → ids of clients that WATCH it.
    watched: HashMap<(usize, Bytes), Vec<Watcher>>,
    /// Clients whose watched key was modified: their EXEC fails.
    pub dirty_cas: HashSet<u64>,
    /// Changes since the last successful save (Redis's `server.dirty`). The write path adds to
    /// it; persistence resets it after a save or a load.
    pub dirty: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    /// Redis's LRU clock (Unix seconds mod 2^24), refreshed by the cron.
    pub lru_clock: u32,
    /// True while a snapshot child is alive (unless `snapshot-freeze-access no`): reads and
    /// writes then leave per-key access metadata alone, so they do not dirty shared pages for no
    /// data change (Redis's `lookupKey` does the same); OBJECT IDLETIME/FREQ pause during a save.
    pub access_frozen: bool,
    /// An LFU maxmemory-policy is selected: accesses update `Entry::freq` (and its time).
    pub lfu: Option<LfuParams>,
    /// The before-write hook's state (see `write.rs`).
    hooks: write::Hooks,
    /// Keys clients are blocked on, and those made ready (see `blocking.rs`).
    pub blocking: crate::blocking::BlockingKeys,
    /// Keys deleted by expiry or eviction, queued while replication needs them (`Some`): the
    /// replication stream carries each as a DEL (`crate::repl` drains the queue). `None` when
    /// nothing listens, so that expiry costs nothing more then.
    pub deleted_queue: Option<Vec<(usize, Bytes)>>,
}

/// A client watching a key, and whether the key was already expired when it did.
struct Watcher {
    id: u64,
    expired: bool,
}

/// `lfu-log-factor` and `lfu-decay-time`.
#[derive(Debug, Clone, Copy)]
pub struct LfuParams {
    pub log_factor: u32,
    pub decay_minutes: u32,
}

/// Records an access to an entry: its time, and its LFU counter under an LFU policy.
fn access(e: &mut Entry, clock: u32, lfu: Option<LfuParams>) {
    if let Some(p) = lfu {
        e.touch_lfu(clock, p.log_factor, p.decay_minutes);
    }
    e.lru = clock;
}

impl Keyspace {
    pub fn new(databases: usize) -> Self {
        let mut ks = Keyspace {
            dbs: (0..databases).map(|_| Db::default()).collect(),
            watched: HashMap::new(),
            dirty_cas: HashSet::new(),
            dirty: 0,
            expired_keys: 0,
            evicted_keys: 0,
            keyspace_hits: 0,
            keyspace_misses: 0,
            lru_clock: 0,
            access_frozen: false,
            blocking: Default::default(),
            lfu: None,
            hooks: write::Hooks::default(),
            deleted_queue: None,
        };
        ks.refresh_clock();
        ks
    }

    /// Redis's `LRU_CLOCK()`: Unix seconds, modulo 2^24 (it wraps every 194 days; idle times
    /// are taken across the wrap by [`idle_secs`]). A clock of its own rather than seconds since
    /// start: RESTORE IDLETIME can set an access time from before the server started.
    pub fn refresh_clock(&mut self) {
        self.lru_clock = ((now_ms() / 1000) as u64 & u64::from(LRU_CLOCK_MAX)) as u32;
    }

    /// How many databases there are (`databases`).
    pub fn db_count(&self) -> usize {
        self.dbs.len()
    }

    /// Keys in one database, counting logically expired ones not yet deleted (DBSIZE).
    pub fn db_len(&self, db: usize) -> usize {
        self.dbs[db].len()
    }

    /// Every database with its index, for INFO and the RDB writer (which skips empty ones).
    pub fn databases(&self) -> impl Iterator<Item = (usize, &Db)> + '_ {
        self.dbs.iter().enumerate()
    }

    /// Looks a key up for reading: lazy expiry, hit/miss statistics, access time.
    pub fn get(&mut self, db: usize, key: &[u8]) -> Option<EntryRef<'_>> {
        let Some(idx) = self.live_index(db, key) else {
            self.keyspace_misses += 1;
            return None;
        };
        self.keyspace_hits += 1;
        self.accessed(db, idx)
    }

    /// Reads a string: lazy expiry, statistics, access time; [`WrongType`] for another type.
    pub fn get_str(&mut self, db: usize, key: &[u8]) -> Result<Option<&Str>, WrongType> {
        match self.get(db, key) {
            Some(e) => e.value.as_str().map(Some),
            None => Ok(None),
        }
    }

    /// Looks a key up as a command that writes does before deciding (Redis's `lookupKeyWrite`):
    /// lazy expiry and access time, no statistics. TOUCH uses it too.
    pub fn lookup_write(&mut self, db: usize, key: &[u8]) -> Option<EntryRef<'_>> {
        let idx = self.live_index(db, key)?;
        self.accessed(db, idx)
    }

    /// Does the key exist (after lazy expiry)? Does not count as a hit or miss.
    pub fn exists(&mut self, db: usize, key: &[u8]) -> bool {
        self.live_index(db, key).is_some()
    }

    /// Is `key` in the table at all, expired or not? (The loader's duplicate check: a file that
    /// holds a key twice is refused whatever the TTLs say.)
    pub fn holds(&self, db: usize, key: &[u8]) -> bool {
        self.dbs[db].dict.contains_key(key)
    }

    /// Reads without lazy expiry or statistics, only skipping logically expired entries.
    pub fn peek(&self, db: usize, key: &[u8]) -> Option<EntryRef<'_>> {
        let d = &self.dbs[db];
        let e = d.entry_ref(d.dict.index_of(key)?)?;
        (e.expire < 0 || e.expire > now_ms()).then_some(e)
    }

    /// The entry at `idx`, with its access recorded unless a snapshot child lives.
    fn accessed(&mut self, db: usize, idx: usize) -> Option<EntryRef<'_>> {
        let (clock, lfu, touch) = (self.lru_clock, self.lfu, !self.access_frozen);
        if touch {
            let (_, e) = self.dbs[db].dict.get_index_mut(idx)?;
            access(e, clock, lfu);
        }
        self.dbs[db].entry_ref(idx)
    }

    /// The live keys of `db` that `keep` accepts (KEYS).
    pub fn keys_matching(&self, db: usize, mut keep: impl FnMut(&[u8]) -> bool) -> Vec<Key> {
        let now = now_ms();
        let d = &self.dbs[db];
        d.dict
            .iter()
            .filter(|(k, e)| !d.is_expired(k, e, now) && keep(k))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Registers a WATCH by client `id`. A key that exists but has already expired is
    /// remembered as such: deleting it later is then no change (Redis 7.0's `wk->expired`).
    pub fn watch(&mut self, db: usize, key: &Bytes, id: u64) {
        let dict = &self.dbs[db].dict;
        let expired = dict.contains_key(&key[..]) && self.peek(db, key).is_none();
        let list = self.watched.entry((db, key.clone())).or_default();
        if !list.iter().any(|w| w.id == id) {
            list.push(Watcher { id, expired });
        }
    }

    pub fn unwatch(&mut self, db: usize, key: &Bytes, id: u64) {
        let k = (db, key.clone());
        if let Some(list) = self.watched.get_mut(&k) {
            list.retain(|w| w.id != id);
            if list.is_empty() {
                self.watched.remove(&k);
            }
        }
    }

    /// Has a key client `id` watches expired since the WATCH? (EXEC then fails, as in Redis.)
    pub fn watched_key_expired(&self, db: usize, key: &Bytes, id: u64) -> bool {
        let was_expired = self
            .watched
            .get(&(db, key.clone()))
            .and_then(|l| l.iter().find(|w| w.id == id))
            .is_none_or(|w| w.expired);
        !was_expired && self.dbs[db].dict.contains_key(&key[..]) && self.peek(db, key).is_none()
    }

    /// Marks clients that WATCH `key` as dirty (Redis's `signalModifiedKey`), after the change.
    /// Only the write path calls it.
    fn touch(&mut self, db: usize, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        let exists = self.dbs[db].dict.contains_key(key);
        if let Some(list) = self.watched.get_mut(&(db, Bytes::copy_from_slice(key))) {
            for w in list.iter_mut() {
                if w.expired && !exists {
                    // An already expired key was deleted: logically nothing changed.
                    w.expired = false;
                    continue;
                }
                self.dirty_cas.insert(w.id);
            }
        }
    }

    /// Before FLUSHDB/FLUSHALL/SWAPDB empty `db` (replacing its content with `other`'s for
    /// SWAPDB): marks the clients watching a key whose value changes, with Redis 7.0's rules for
    /// keys that were already expired (`touchAllWatchedKeysInDb`).
    fn touch_all_in_db(&mut self, db: usize, other: Option<usize>) {
        if self.watched.is_empty() {
            return;
        }
        let now = now_ms();
        let expired_in =
            |d: &Db, key: &[u8]| d.dict.get(key).is_some_and(|e| d.is_expired(key, e, now));
        for ((wdb, key), list) in self.watched.iter_mut() {
            if *wdb != db {
                continue;
            }
            let exists_here = self.dbs[db].dict.contains_key(&key[..]);
            let there = other.map(|o| &self.dbs[o]);
            let exists_there = there.is_some_and(|d| d.dict.contains_key(&key[..]));
            if !exists_here && !exists_there {
                continue;
            }
            let replacement_expired = there.is_some_and(|d| expired_in(d, key));
            for w in list.iter_mut() {
                if w.expired {
                    if !exists_there {
                        // The expired key is now simply gone: no logical change.
                        w.expired = false;
                        continue;
                    } else if replacement_expired {
                        // Expired before, expired after.
                        continue;
                    }
                } else if !exists_here && replacement_expired {
                    // Nothing replaced by an expired key: still nothing, but now expired.
                    w.expired = true;
                    continue;
                }
                self.dirty_cas.insert(w.id);
            }
        }
    }

    /// Starts a forkless save's walk: from now on every entry of the data set as it is at this
    /// instant goes to `sink` exactly once, from [`Keyspace::forkless_step`] or, for a key about
    /// to change, from the write path. Returns the number of keys the save covers.
    pub fn forkless_begin(&mut self, sink: Box<dyn SnapSink>) -> u64 {
        if self.hooks.epoch == u16::MAX {
            // Once in 65535 saves the epochs wrap: an entry last stamped 65535 saves ago would
            // look written. Restamping every entry to 0 first costs one pass, that rarely.
            for db in &mut self.dbs {
                for e in db.dict.values_mut() {
                    e.snap = 0;
                }
            }
            self.hooks.epoch = 0;
        }
        self.hooks.epoch += 1;
        self.hooks.walk = Some(snapshot::Walk::new(self.hooks.epoch, &self.dbs, sink));
        self.total_keys() as u64
    }

    /// One slice of the running forkless walk: at most `max_keys` entries, until `deadline`.
    pub fn forkless_step(&mut self, max_keys: usize, deadline: std::time::Instant) -> WalkStep {
        match self.hooks.walk.as_mut() {
            Some(w) => w.step(&mut self.dbs, max_keys, deadline),
            None => WalkStep::Done,
        }
    }

    /// Entries sent so far by the running forkless save, and of those, sent by the write path.
    pub fn forkless_progress(&self) -> Option<(u64, u64)> {
        self.hooks.walk.as_ref().map(|w| (w.sent, w.early))
    }

    /// Ends the running forkless save's walk (done or cancelled), handing back its sink.
    /// Tables flushed during the save that were not drained yet are dropped here.
    pub fn forkless_end(&mut self) -> Option<Box<dyn SnapSink>> {
        self.hooks.walk.take().map(|w| w.into_sink())
    }

    /// Called just before a snapshot fork: gives every table room to grow by an eighth without
    /// reallocating. Growing a table while the child lives would rewrite the whole table into new
    /// memory (hashbrown rehashes every index) at the moment memory is scarcest; growing it now,
    /// before the fork, costs no copy-on-write. Only a save that sees more than that many new
    /// keys grows a table under the child: the pressure case Redis allows with its
    /// `dict_force_resize_ratio`.
    pub fn reserve_headroom(&mut self) {
        for db in &mut self.dbs {
            let want = db.dict.len() / 8 + 64;
            if db.dict.capacity() - db.dict.len() < want {
                db.dict.reserve(want);
            }
            let want = db.expires.len() / 8 + 64;
            if db.expires.capacity() - db.expires.len() < want {
                db.expires.reserve(want);
            }
        }
    }

    /// A fork save has ended: every small hash and intset that was forwarded to a copy during it
    /// takes the copy back and frees its old buffer (`types::forward`). One pass over the keys,
    /// only after a save that forwarded something, and no data change: no hook, no `dirty`.
    pub fn heal_forwarded(&mut self) {
        for db in &mut self.dbs {
            for e in db.dict.values_mut() {
                if crate::types::forward::live() == 0 {
                    return;
                }
                match &mut e.value {
                    Value::Hash(h) => h.heal(),
                    Value::Set(s) => s.heal(),
                    Value::Str { .. } | Value::List(_) | Value::ZSet(_) => {}
                }
            }
        }
    }

    pub fn total_keys(&self) -> usize {
        self.dbs.iter().map(Db::len).sum()
    }

    /// SCAN over one database. `cursor` 0 starts; the returned cursor is 0 when done. See the
    /// module docs for why walking indices downwards is safe against concurrent deletes.
    pub fn scan(
        &mut self,
        db: usize,
        cursor: u64,
        count: usize,
        mut keep: impl FnMut(&Key, &Entry) -> bool,
    ) -> (u64, Vec<Key>) {
        let now = now_ms();
        let len = self.dbs[db].dict.len() as u64;
        let mut upper = if cursor == 0 || cursor > len {
            len
        } else {
            cursor
        };
        let mut out = Vec::new();
        let mut expired = Vec::new();
        let mut visited = 0;
        while upper > 0 && visited < count {
            upper -= 1;
            visited += 1;
            let d = &self.dbs[db];
            if let Some((k, e)) = d.dict.get_index(upper as usize) {
                if d.is_expired(k, e, now) {
                    expired.push(k.clone());
                } else if keep(k, e) {
                    out.push(k.clone());
                }
            }
        }
        for k in expired {
            self.expire_if_needed(db, &k, now);
        }
        (upper, out)
    }
}
