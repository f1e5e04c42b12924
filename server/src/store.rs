//! The keyspace: numbered databases of entries, with expiry and WATCH bookkeeping.
//!
//! Each database is an [`IndexMap`]: a hash table for lookups plus a dense vector of entries. The
//! dense vector gives O(1) uniform random picks (RANDOMKEY, active-expiry sampling) and a SCAN
//! cursor that stays valid across inserts and deletes: SCAN walks indices downwards, and a delete
//! only ever moves the *last* entry into the hole, so an entry not yet visited stays below the cursor.
//!
//! Keys with a time to live are also listed in `expires`, so active expiry samples only those.
//!
//! Keys and string values are [`SmallVec`]s: up to 24 bytes live inside the entry itself, in the
//! dense entry vector, and only longer ones have a heap buffer. That saves a heap allocation and
//! a cache miss per short key, and it matters for snapshots: overwriting a short value writes
//! only the entry's page, where a separately allocated value would also dirty the pages of the
//! new and the freed allocation, pages the parent shares with the snapshot child
//! (copy-on-write). A longer value is overwritten in its own buffer when it fits, for the same
//! reason. Keys and values are always copied out of the client's read buffer.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use indexmap::{IndexMap, IndexSet};
use rand::Rng;
use smallvec::SmallVec;

use crate::util::{now_ms, parse_i64};

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

/// A key: inline up to [`INLINE`] bytes.
pub type Key = SmallVec<[u8; INLINE]>;

#[derive(Debug, Clone)]
pub enum Value {
    Str { data: Str, enc: StrEnc },
}

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
            data: Str::from_slice(data),
            enc: set_encoding(data),
        }
    }

    /// A string built by APPEND or SETRANGE: always `raw` in Redis.
    pub fn raw(data: Vec<u8>) -> Value {
        Value::Str {
            data: Str::from_vec(data),
            enc: StrEnc::Raw,
        }
    }

    /// The result of INCR and friends: an `int`.
    pub fn int(n: i64) -> Value {
        Value::Str {
            data: Str::from_slice(itoa::Buffer::new().format(n).as_bytes()),
            enc: StrEnc::Int,
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
            data: Str::from_vec(data),
            enc,
        }
    }

    /// The bytes of a string value.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Value::Str { data, .. } => data,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str { .. } => "string",
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            Value::Str { enc, .. } => match enc {
                StrEnc::Int => "int",
                StrEnc::Embstr => "embstr",
                StrEnc::Raw => "raw",
            },
        }
    }

    /// Bytes this value holds on the heap (for memory estimates).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str { data, .. } => data.len(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in ms since the epoch, or -1 for none.
    pub expire: i64,
    /// Last access, in seconds of the server's LRU clock (OBJECT IDLETIME).
    pub lru: u32,
    /// Logarithmic access counter, kept when an LFU maxmemory-policy is selected (OBJECT FREQ).
    pub freq: u8,
}

/// Redis's `LFU_INIT_VAL`: a new key starts here so it is not evicted before it had a chance.
pub const LFU_INIT_VAL: u8 = 5;

impl Entry {
    /// The LFU counter after decay: one step per `decay_minutes` since the last access
    /// (Redis's `LFUDecrAndReturn`).
    pub fn lfu_decayed(&self, clock: u32, decay_minutes: u32) -> u8 {
        if decay_minutes == 0 {
            return self.freq;
        }
        let periods = clock.saturating_sub(self.lru) / (60 * decay_minutes);
        self.freq.saturating_sub(periods.min(255) as u8)
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

pub type Dict = IndexMap<Key, Entry, RandomState>;

#[derive(Default)]
pub struct Db {
    pub dict: Dict,
    pub expires: IndexSet<Key, RandomState>,
    /// Sum of remaining TTLs is not kept; Redis's avg_ttl is an estimate from active expiry samples.
    pub avg_ttl: i64,
}

impl Db {
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }
}

/// All databases plus what modifies them needs to tell: WATCH registrations, the dirty counter.
pub struct Keyspace {
    pub dbs: Vec<Db>,
    /// (db, key) → ids of clients that WATCH it.
    watched: HashMap<(usize, Bytes), Vec<Watcher>>,
    /// Clients whose watched key was modified: their EXEC fails.
    pub dirty_cas: HashSet<u64>,
    /// Changes since the last successful save (Redis's `server.dirty`).
    pub dirty: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    /// Seconds since start-up, refreshed by the cron (Redis's LRU clock).
    pub lru_clock: u32,
    started: std::time::Instant,
    /// True while a snapshot child is alive (unless `snapshot-freeze-access no`): reads and
    /// writes then leave per-key access metadata alone, so they do not dirty shared pages for no
    /// data change (Redis's `lookupKey` does the same); OBJECT IDLETIME/FREQ pause during a save.
    pub access_frozen: bool,
    /// An LFU maxmemory-policy is selected: accesses update `Entry::freq` (and its time).
    pub lfu: Option<LfuParams>,
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

/// A value to store: built by the caller, or a string to copy in (maybe into the old buffer).
enum NewValue<'a> {
    Owned(Value),
    SetStr(&'a [u8]),
}

impl NewValue<'_> {
    fn into_value(self) -> Value {
        match self {
            NewValue::Owned(v) => v,
            NewValue::SetStr(data) => Value::string(data),
        }
    }
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
        Keyspace {
            dbs: (0..databases).map(|_| Db::default()).collect(),
            watched: HashMap::new(),
            dirty_cas: HashSet::new(),
            dirty: 0,
            expired_keys: 0,
            evicted_keys: 0,
            keyspace_hits: 0,
            keyspace_misses: 0,
            lru_clock: 0,
            started: std::time::Instant::now(),
            access_frozen: false,
            lfu: None,
        }
    }

    pub fn refresh_clock(&mut self) {
        self.lru_clock = self.started.elapsed().as_secs() as u32;
    }

    /// Deletes `key` if its time has passed. Returns true if it was deleted.
    fn expire_if_needed(&mut self, db: usize, key: &[u8], now: i64) -> bool {
        let expired = match self.dbs[db].dict.get(key) {
            Some(e) => e.expire >= 0 && e.expire <= now,
            None => false,
        };
        if expired {
            self.expire_now(db, key);
        }
        expired
    }

    fn expire_now(&mut self, db: usize, key: &[u8]) {
        self.remove_entry(db, key);
        self.expired_keys += 1;
        self.touch(db, key);
    }

    /// The index of a live entry: one hash of the key, and the clock is read only for keys
    /// that have a TTL. An expired entry is deleted on the way (lazy expiry).
    fn live_index(&mut self, db: usize, key: &[u8]) -> Option<usize> {
        let (idx, _, e) = self.dbs[db].dict.get_full(key)?;
        if e.expire >= 0 && e.expire <= now_ms() {
            self.expire_now(db, key);
            return None;
        }
        Some(idx)
    }

    /// Looks a key up for reading: lazy expiry, hit/miss statistics, access time.
    pub fn get(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry> {
        let Some(idx) = self.live_index(db, key) else {
            self.keyspace_misses += 1;
            return None;
        };
        self.keyspace_hits += 1;
        let (clock, lfu, touch) = (self.lru_clock, self.lfu, !self.access_frozen);
        let (_, e) = self.dbs[db].dict.get_index_mut(idx)?;
        if touch {
            access(e, clock, lfu);
        }
        Some(e)
    }

    /// Looks a key up for writing: lazy expiry, no statistics.
    pub fn get_for_write(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry> {
        let idx = self.live_index(db, key)?;
        let (clock, lfu, touch) = (self.lru_clock, self.lfu, !self.access_frozen);
        let (_, e) = self.dbs[db].dict.get_index_mut(idx)?;
        if touch {
            access(e, clock, lfu);
        }
        Some(e)
    }

    /// Does the key exist (after lazy expiry)? Does not count as a hit or miss.
    pub fn exists(&mut self, db: usize, key: &[u8]) -> bool {
        self.live_index(db, key).is_some()
    }

    /// Reads without lazy expiry or statistics, only skipping logically expired entries.
    pub fn peek(&self, db: usize, key: &[u8]) -> Option<&Entry> {
        let now = now_ms();
        self.dbs[db]
            .dict
            .get(key)
            .filter(|e| e.expire < 0 || e.expire > now)
    }

    /// Stores a value, replacing any old one. `expire` -1 clears any TTL.
    pub fn set(&mut self, db: usize, key: &[u8], value: Value, expire: i64) {
        self.store(db, key, NewValue::Owned(value), Some(expire));
    }

    /// Replaces only the value of an existing key, keeping its TTL (APPEND, INCR, SETRANGE).
    pub fn set_keep_ttl(&mut self, db: usize, key: &[u8], value: Value) {
        self.store(db, key, NewValue::Owned(value), None);
    }

    /// Stores a string as SET does (`expire` as in [`Keyspace::store`]), writing it into the
    /// old value's buffer when that fits: see the module docs for why.
    pub fn set_str(&mut self, db: usize, key: &[u8], data: &[u8], expire: Option<i64>) {
        self.store(db, key, NewValue::SetStr(data), expire);
    }

    /// Stores a value with one hash of the key (a raw entry), whether the key is new or not.
    /// `expire`: Some(-1) clears the TTL, Some(ms) sets it, None keeps the current one.
    fn store(&mut self, db: usize, key: &[u8], value: NewValue, expire: Option<i64>) {
        use indexmap::map::raw_entry_v1::{RawEntryApiV1, RawEntryMut};
        let (lru, lfu, frozen) = (self.lru_clock, self.lfu, self.access_frozen);
        let Db { dict, expires, .. } = &mut self.dbs[db];
        match dict.raw_entry_mut_v1().from_key(key) {
            RawEntryMut::Occupied(mut o) => {
                let e = o.get_mut();
                let expire = expire.unwrap_or(e.expire);
                if e.expire >= 0 && expire < 0 {
                    expires.swap_remove(key);
                } else if e.expire < 0 && expire >= 0 {
                    expires.insert(Key::from_slice(key));
                }
                let done = match (&value, &mut e.value) {
                    (NewValue::SetStr(new), Value::Str { data, enc }) => {
                        let fits = data.overwrite(new);
                        let new_enc = set_encoding(new);
                        // Fields are written only when they change: while a snapshot child
                        // lives, an untouched entry page is one the kernel need not copy.
                        if fits && *enc != new_enc {
                            *enc = new_enc;
                        }
                        fits
                    }
                    _ => false,
                };
                if !done {
                    e.value = value.into_value();
                }
                if e.expire != expire {
                    e.expire = expire;
                }
                // As Redis's lookupKey: no access-time update while a snapshot child lives.
                if !frozen {
                    access(e, lru, lfu);
                }
            }
            RawEntryMut::Vacant(v) => {
                let expire = expire.unwrap_or(-1);
                let k = Key::from_slice(key);
                if expire >= 0 {
                    expires.insert(k.clone());
                }
                v.insert(
                    k,
                    Entry {
                        value: value.into_value(),
                        expire,
                        lru,
                        freq: LFU_INIT_VAL,
                    },
                );
            }
        }
        self.touch(db, key);
    }

    fn remove_entry(&mut self, db: usize, key: &[u8]) -> Option<Entry> {
        let d = &mut self.dbs[db];
        let e = d.dict.swap_remove(key)?;
        if e.expire >= 0 {
            d.expires.swap_remove(key);
        }
        Some(e)
    }

    /// Deletes a key (after lazy expiry). Returns the entry if it existed.
    pub fn delete(&mut self, db: usize, key: &[u8]) -> Option<Entry> {
        self.live_index(db, key)?;
        let e = self.remove_entry(db, key)?;
        self.touch(db, key);
        Some(e)
    }

    /// Sets or clears the TTL of an existing key. Returns false if the key does not exist.
    pub fn set_expire(&mut self, db: usize, key: &[u8], expire: i64) -> bool {
        let d = &mut self.dbs[db];
        let Some(e) = d.dict.get_mut(key) else {
            return false;
        };
        if e.expire < 0 && expire >= 0 {
            d.expires.insert(Key::from_slice(key));
        } else if e.expire >= 0 && expire < 0 {
            d.expires.swap_remove(key);
        }
        e.expire = expire;
        self.touch(db, key);
        true
    }

    /// Empties one database, telling WATCHers of keys that existed.
    pub fn flush_db(&mut self, db: usize) -> usize {
        let n = self.dbs[db].len();
        self.touch_all_in_db(db, None);
        self.dbs[db] = Db::default();
        n
    }

    pub fn swap_db(&mut self, a: usize, b: usize) {
        self.touch_all_in_db(a, Some(b));
        self.touch_all_in_db(b, Some(a));
        self.dbs.swap(a, b);
    }

    /// A uniformly random live key, deleting expired ones met on the way.
    pub fn random_key(&mut self, db: usize) -> Option<Key> {
        let now = now_ms();
        let mut rng = rand::thread_rng();
        loop {
            let d = &self.dbs[db];
            if d.dict.is_empty() {
                return None;
            }
            let i = rng.gen_range(0..d.dict.len());
            let (k, e) = d.dict.get_index(i)?;
            if e.expire >= 0 && e.expire <= now {
                let k = k.clone();
                self.expire_if_needed(db, &k, now);
                continue;
            }
            return Some(k.clone());
        }
    }

    /// One active-expiry pass over `db`, as Redis's `activeExpireCycle`: sample up to 20 keys that
    /// have a TTL, delete the expired ones, and go on while more than a quarter of a sample had
    /// expired and time remains. Returns keys deleted.
    pub fn active_expire(&mut self, db: usize, deadline: std::time::Instant) -> u64 {
        const SAMPLE: usize = 20;
        let mut deleted = 0;
        let mut rng = rand::thread_rng();
        let mut ttl_sum: i64 = 0;
        let mut ttl_samples: i64 = 0;
        loop {
            let now = now_ms();
            let n = self.dbs[db].expires.len();
            if n == 0 {
                self.dbs[db].avg_ttl = 0;
                return deleted;
            }
            let mut expired_keys = Vec::new();
            let take = SAMPLE.min(n);
            for _ in 0..take {
                let i = rng.gen_range(0..n);
                let Some(k) = self.dbs[db].expires.get_index(i) else {
                    continue;
                };
                let expire = self.dbs[db].dict.get(k).map(|e| e.expire).unwrap_or(-1);
                if expire >= 0 && expire <= now {
                    expired_keys.push(k.clone());
                } else if expire >= 0 {
                    ttl_sum += expire - now;
                    ttl_samples += 1;
                }
            }
            let found = expired_keys.len();
            for k in expired_keys {
                if self.expire_if_needed(db, &k, now) {
                    deleted += 1;
                }
            }
            if ttl_samples > 0 {
                // Redis keeps a running average: 2% of the new sample mean, 98% of the old.
                let avg = ttl_sum / ttl_samples;
                let d = &mut self.dbs[db];
                d.avg_ttl = if d.avg_ttl == 0 {
                    avg
                } else {
                    (d.avg_ttl / 50) * 49 + avg / 50
                };
            }
            if found * 4 <= take || std::time::Instant::now() >= deadline {
                return deleted;
            }
        }
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
    pub fn touch(&mut self, db: usize, key: &[u8]) {
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
        let expired_in = |d: &Db, key: &[u8]| {
            d.dict
                .get(key)
                .is_some_and(|e| e.expire >= 0 && e.expire <= now)
        };
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
            if let Some((k, e)) = self.dbs[db].dict.get_index(upper as usize) {
                if e.expire >= 0 && e.expire <= now {
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
