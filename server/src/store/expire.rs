//! Expiry: lazy (a lookup deletes the expired key it meets) and active (the cron samples keys
//! with a TTL, as Redis's `activeExpireCycle`). Both delete through the write path, so the
//! before-write hook sees the expired value and WATCHers are told; expiry does not count in
//! `dirty` (Redis 7.0 does not either).

use rand::Rng;

use super::Keyspace;
use crate::util::now_ms;

impl Keyspace {
    /// The index of a live entry: one hash of the key, and the clock is read only for keys
    /// that have a TTL. An expired entry is deleted on the way (lazy expiry).
    pub(super) fn live_index(&mut self, db: usize, key: &[u8]) -> Option<usize> {
        let d = &self.dbs[db];
        let hash = d.dict.hash(key);
        let idx = d.dict.find(hash, key)?;
        let ttl = d.dict.get_index(idx).is_some_and(|(_, e)| e.ttl);
        if ttl
            && d.expires
                .find(hash, key)
                .and_then(|i| d.expires.get_index(i))
                .is_some_and(|(_, &at)| at <= now_ms())
        {
            self.expire_at_index(db, key, idx);
            return None;
        }
        Some(idx)
    }

    /// Deletes `key` if its time has passed. Returns true if it was deleted.
    pub(super) fn expire_if_needed(&mut self, db: usize, key: &[u8], now: i64) -> bool {
        let d = &self.dbs[db];
        let Some(idx) = d.dict.index_of(key) else {
            return false;
        };
        let expired = d
            .dict
            .get_index(idx)
            .is_some_and(|(k, e)| d.is_expired(k, e, now));
        if !expired {
            return false;
        }
        self.expire_at_index(db, key, idx);
        true
    }

    /// Deletes the expired entry at `idx` through the write path (hook, delete, WATCH), and
    /// queues its DEL for replication. Every expiry goes through here: active, lazy on a read,
    /// lazy on a write (`Keyspace::write`).
    pub(super) fn expire_at_index(&mut self, db: usize, key: &[u8], idx: usize) {
        self.slot_at(db, key, Some(idx), 0).delete();
        self.expired_keys += 1;
        if let Some(q) = self.deleted_queue.as_mut() {
            q.push((db, bytes::Bytes::copy_from_slice(key)));
        }
    }

    /// A uniformly random live key, deleting expired ones met on the way.
    pub fn random_key(&mut self, db: usize) -> Option<super::Key> {
        let now = now_ms();
        let mut rng = rand::thread_rng();
        loop {
            let d = &self.dbs[db];
            if d.dict.is_empty() {
                return None;
            }
            let i = rng.gen_range(0..d.dict.len());
            let (k, e) = d.dict.get_index(i)?;
            if d.is_expired(k, e, now) {
                let k = k.clone();
                self.expire_at_index(db, &k, i);
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
                // `expires` holds exactly the keys whose entry has a TTL.
                let Some((k, &expire)) = self.dbs[db].expires.get_index(i) else {
                    continue;
                };
                if expire <= now {
                    expired_keys.push(k.clone());
                } else {
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
}
