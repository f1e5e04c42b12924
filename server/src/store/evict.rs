//! Eviction: freeing memory under `maxmemory` as `maxmemory-policy` says (Redis's
//! `performEvictions`, with its sampling: 5 candidates per database per pick, the best one goes).
//! Evicted keys are deleted through the write path (hook, WATCH), not counted in `dirty`.

use rand::Rng;

use super::Keyspace;

impl Keyspace {
    /// Evicts keys until `used_memory()` is within `limit` bytes. `policy` is the
    /// `maxmemory-policy` name. Returns false if memory is still over the limit (noeviction, or
    /// nothing left to evict).
    pub fn evict_to_fit(
        &mut self,
        limit: usize,
        policy: &str,
        mut used_memory: impl FnMut() -> usize,
    ) -> bool {
        const SAMPLES: usize = 5;
        let mut rng = rand::thread_rng();
        while used_memory() > limit {
            if policy == "noeviction" {
                return false;
            }
            let volatile = policy.starts_with("volatile");
            // (db, key, score): the lowest score is evicted.
            let mut best: Option<(usize, super::Key, i64)> = None;
            for (i, db) in self.dbs.iter().enumerate() {
                let n = if volatile { db.expires.len() } else { db.len() };
                for _ in 0..SAMPLES.min(n) {
                    let idx = rng.gen_range(0..n);
                    let key = if volatile {
                        db.expires.get_index(idx).map(|(k, _)| k)
                    } else {
                        db.dict.get_index(idx).map(|(k, _)| k)
                    };
                    let Some(key) = key else { continue };
                    let Some(e) = db.dict.get(key) else { continue };
                    let score = if policy.ends_with("random") {
                        rng.gen::<i64>()
                    } else if let Some(p) = self.lfu {
                        i64::from(e.lfu_decayed(self.lru_clock, p.decay_minutes))
                    } else if policy == "volatile-ttl" {
                        db.expire_of(key, e)
                    } else {
                        // The longest idle first, across the clock's wrap.
                        -i64::from(super::idle_secs(self.lru_clock, e.lru))
                    };
                    if best.as_ref().is_none_or(|b| score < b.2) {
                        best = Some((i, key.clone(), score));
                    }
                }
            }
            let Some((db, key, _)) = best else {
                return false;
            };
            // Lazy expiry first: an expired candidate is freed as expired, not evicted.
            let Some(idx) = self.live_index(db, &key) else {
                continue;
            };
            self.slot_at(db, &key, Some(idx), 0).delete();
            self.evicted_keys += 1;
            if let Some(q) = self.deleted_queue.as_mut() {
                q.push((db, bytes::Bytes::copy_from_slice(&key)));
            }
        }
        true
    }
}
