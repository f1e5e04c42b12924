//! The write path's contract: the hook runs before every kind of change with the old value,
//! WATCH and `dirty` follow every change, lazy expiry comes first, expiry and eviction go
//! through it, reads do not, and the snapshot-friendly rules hold.

use bytes::Bytes;

use super::write::{DbEvent, Recorded};
use super::{Keyspace, RenameOutcome, Str, Value};
use crate::util::now_ms;

const WATCHER: u64 = 7;

fn ks() -> Keyspace {
    Keyspace::new(4)
}

/// A string key with an optional expire, stored without going through the hook log.
fn seed(ks: &mut Keyspace, db: usize, key: &[u8], val: &[u8], expire: i64) {
    ks.restore(db, key, Value::string(val), expire);
    ks.hooks.log.clear();
}

fn old(db: usize, key: &[u8], val: &[u8], expire: i64) -> Recorded {
    Recorded::Key {
        db,
        key: key.to_vec(),
        old: Some((val.to_vec(), expire)),
    }
}

fn new_key(db: usize, key: &[u8]) -> Recorded {
    Recorded::Key {
        db,
        key: key.to_vec(),
        old: None,
    }
}

fn watch(ks: &mut Keyspace, db: usize, key: &[u8]) {
    ks.watch(db, &Bytes::copy_from_slice(key), WATCHER);
}

fn str_of(ks: &Keyspace, db: usize, key: &[u8]) -> Option<Vec<u8>> {
    ks.peek(db, key).map(|e| e.value.as_str().unwrap().to_vec())
}

/// Runs `change` on a keyspace holding `a` = "1" (TTL far away) and `b` = "2" in db 0, with
/// `a` and `b` watched, and checks what the hook saw, that the watcher is dirty, and `dirty`.
fn check(
    name: &str,
    change: impl FnOnce(&mut Keyspace),
    hook: &[Recorded],
    dirty: u64,
    watched_dirty: bool,
) {
    let mut ks = ks();
    let far = now_ms() + 1_000_000;
    seed(&mut ks, 0, b"a", b"1", far);
    seed(&mut ks, 0, b"b", b"2", -1);
    watch(&mut ks, 0, b"a");
    watch(&mut ks, 0, b"b");
    ks.dirty = 0;
    change(&mut ks);
    let hook: Vec<Recorded> = hook
        .iter()
        .map(|r| match r {
            // The tests write u64::MAX for "a's far expire", known only here.
            Recorded::Key {
                db,
                key,
                old: Some((v, -2)),
            } => Recorded::Key {
                db: *db,
                key: key.clone(),
                old: Some((v.clone(), far)),
            },
            r => r.clone(),
        })
        .collect();
    assert_eq!(ks.hooks.log, hook, "{name}: hook calls");
    assert_eq!(ks.dirty, dirty, "{name}: dirty");
    assert_eq!(
        ks.dirty_cas.contains(&WATCHER),
        watched_dirty,
        "{name}: WATCH"
    );
}

#[test]
fn hook_watch_and_dirty_follow_every_kind_of_change() {
    // -2 in an expected old value stands for a's far-away expire.
    let a = || old(0, b"a", b"1", -2);
    let b = || old(0, b"b", b"2", -1);
    check(
        "set_str over",
        |ks| ks.write(0, b"a").set_str(b"x", Some(-1)),
        &[a()],
        1,
        true,
    );
    check(
        "set_str keepttl",
        |ks| ks.write(0, b"b").set_str(b"x", None),
        &[b()],
        1,
        true,
    );
    check(
        "set_str new",
        |ks| ks.write(0, b"c").set_str(b"x", Some(-1)),
        &[new_key(0, b"c")],
        1,
        false,
    );
    check(
        "set_int",
        |ks| ks.write(0, b"b").set_int(3),
        &[b()],
        1,
        true,
    );
    check(
        "put",
        |ks| ks.write(0, b"a").put(Value::raw(b"12".to_vec()), None),
        &[a()],
        1,
        true,
    );
    check(
        "set_expire",
        |ks| {
            assert!(ks.write(0, b"b").set_expire(now_ms() + 5000));
        },
        &[b()],
        1,
        true,
    );
    check(
        "persist",
        |ks| {
            assert!(ks.write(0, b"a").set_expire(-1));
        },
        &[a()],
        1,
        true,
    );
    check(
        "delete",
        |ks| assert!(ks.delete(0, b"a").is_some()),
        &[a()],
        1,
        true,
    );
    check(
        "delete missing",
        |ks| assert!(ks.delete(0, b"zz").is_none()),
        &[],
        0,
        false,
    );
    check(
        "two changes, one hook call, one dirty",
        |ks| {
            let mut w = ks.write(0, b"b");
            w.set_str(b"x", None);
            w.set_expire(now_ms() + 5000);
        },
        &[b()],
        1,
        true,
    );
    check(
        "restore (load, DEBUG POPULATE): not dirty",
        |ks| ks.restore(0, b"b", Value::string(b"r"), -1),
        &[b()],
        0,
        true,
    );
    check(
        "rename",
        |ks| assert_eq!(ks.rename(0, b"a", b"b", false), RenameOutcome::Done),
        &[a(), b()],
        1,
        true,
    );
    check(
        "renamenx refused",
        |ks| {
            let r = ks.rename(0, b"a", b"b", true);
            assert_eq!(r, RenameOutcome::DestinationExists);
        },
        &[],
        0,
        false,
    );
    check(
        "move",
        |ks| assert!(ks.move_key(0, 1, b"a")),
        &[a(), new_key(1, b"a")],
        1,
        true,
    );
    check(
        "copy replace",
        |ks| assert!(ks.copy_key(0, b"a", 0, b"b", true)),
        &[b()],
        1,
        true,
    );
    check(
        "copy to a new key",
        |ks| assert!(ks.copy_key(0, b"a", 2, b"a", false)),
        &[new_key(2, b"a")],
        1,
        false,
    );
    check(
        "flush_db",
        |ks| assert_eq!(ks.flush_db(0), 2),
        &[Recorded::Db {
            db: 0,
            event: DbEvent::Flush,
            keys: 2,
        }],
        2,
        true,
    );
    check(
        "swap_db",
        |ks| ks.swap_db(0, 3),
        &[
            Recorded::Db {
                db: 0,
                event: DbEvent::Swap { with: 3 },
                keys: 2,
            },
            Recorded::Db {
                db: 3,
                event: DbEvent::Swap { with: 0 },
                keys: 0,
            },
        ],
        1,
        true,
    );
}

#[test]
fn the_new_values_are_there_after_each_change() {
    let mut ks = ks();
    seed(&mut ks, 0, b"a", b"1", -1);
    ks.write(0, b"a").set_int(41);
    assert_eq!(str_of(&ks, 0, b"a").unwrap(), b"41");
    assert_eq!(ks.peek(0, b"a").unwrap().value.encoding_name(), "int");
    assert_eq!(ks.rename(0, b"a", b"b", false), RenameOutcome::Done);
    assert_eq!(str_of(&ks, 0, b"a"), None);
    assert_eq!(str_of(&ks, 0, b"b").unwrap(), b"41");
    let at = now_ms() + 10_000;
    assert!(ks.write(0, b"b").set_expire(at));
    assert!(ks.move_key(0, 1, b"b"));
    assert_eq!(ks.peek(1, b"b").unwrap().expire, at);
    assert_eq!(ks.databases().nth(1).unwrap().1.expires_len(), 1);
    assert_eq!(ks.databases().next().unwrap().1.expires_len(), 0);
    assert!(ks.copy_key(1, b"b", 1, b"c", false));
    assert_eq!(ks.peek(1, b"c").unwrap().expire, at);
    assert_eq!(ks.db_len(1), 2);
}

#[test]
fn reads_and_unchanged_slots_do_not_write() {
    let mut ks = ks();
    seed(&mut ks, 0, b"a", b"1", -1);
    watch(&mut ks, 0, b"a");
    ks.dirty = 0;
    assert_eq!(ks.get_str(0, b"a").unwrap().unwrap().to_vec(), b"1");
    assert!(ks.get(0, b"missing").is_none());
    assert!(ks.exists(0, b"a"));
    assert!(ks.lookup_write(0, b"a").is_some());
    {
        let w = ks.write(0, b"a");
        assert!(w.exists());
        assert_eq!(w.get_str().unwrap().unwrap().to_vec(), b"1");
    }
    assert!(!ks.write(0, b"missing").set_expire(5));
    assert!(ks.hooks.log.is_empty());
    assert_eq!(ks.dirty, 0);
    assert!(ks.dirty_cas.is_empty());
    assert_eq!((ks.keyspace_hits, ks.keyspace_misses), (1, 1));
}

#[test]
fn lazy_expiry_comes_first_and_goes_through_the_hook() {
    let mut ks = ks();
    let past = now_ms() - 1;
    seed(&mut ks, 0, b"a", b"old", past);
    watch(&mut ks, 0, b"a");
    ks.dirty = 0;
    ks.write(0, b"a").set_str(b"new", None);
    // The expired value is hooked and deleted first; then the key is new (its TTL is gone).
    assert_eq!(
        ks.hooks.log,
        vec![old(0, b"a", b"old", past), new_key(0, b"a")]
    );
    assert_eq!(ks.expired_keys, 1);
    assert_eq!(ks.dirty, 1, "expiry itself is not counted");
    assert!(ks.dirty_cas.contains(&WATCHER));
    assert_eq!(ks.peek(0, b"a").unwrap().expire, -1);

    // A read expires through the same path, and a watcher that saw the key alive is told.
    let mut ks2 = Keyspace::new(1);
    seed(&mut ks2, 0, b"k", b"v", now_ms() + 1_000_000);
    watch(&mut ks2, 0, b"k");
    // Make it expire by moving its expire into the past through the write path.
    ks2.write(0, b"k").set_expire(past);
    ks2.hooks.log.clear();
    ks2.dirty_cas.clear();
    assert!(ks2.get(0, b"k").is_none());
    assert_eq!(ks2.hooks.log, vec![old(0, b"k", b"v", past)]);
    assert!(ks2.dirty_cas.contains(&WATCHER));
    assert_eq!(ks2.db_len(0), 0);
}

#[test]
fn active_expiry_and_random_key_go_through_the_hook() {
    let mut ks = ks();
    let past = now_ms() - 1;
    for i in 0..10u8 {
        seed(&mut ks, 0, &[b'k', i], b"v", past);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    assert_eq!(ks.active_expire(0, deadline), 10);
    assert_eq!(ks.hooks.log.len(), 10);
    assert!(ks
        .hooks
        .log
        .iter()
        .all(|r| matches!(r, Recorded::Key { old: Some((v, e)), .. } if v == b"v" && *e == past)));
    assert_eq!(ks.expired_keys, 10);
    assert_eq!(ks.dirty, 0);

    seed(&mut ks, 1, b"gone", b"v", past);
    assert_eq!(ks.random_key(1), None);
    assert_eq!(ks.hooks.log, vec![old(1, b"gone", b"v", past)]);
}

#[test]
fn eviction_goes_through_the_write_path() {
    let mut ks = ks();
    for k in [b"x", b"y", b"z"] {
        seed(&mut ks, 0, k, b"v", -1);
    }
    watch(&mut ks, 0, b"y");
    ks.dirty = 0;
    // "Memory" is over the limit until three keys are gone.
    let mut over = 3;
    let fits = ks.evict_to_fit(0, "allkeys-random", || {
        over -= 1;
        usize::from(over >= 0)
    });
    assert!(fits);
    assert_eq!(ks.db_len(0), 0);
    assert_eq!(ks.evicted_keys, 3);
    assert_eq!(ks.hooks.log.len(), 3);
    for k in [b"x", b"y", b"z"] {
        assert!(ks.hooks.log.contains(&old(0, k, b"v", -1)));
    }
    assert!(ks.dirty_cas.contains(&WATCHER));
    assert_eq!(ks.dirty, 0, "eviction is not counted in dirty");

    let mut ks = Keyspace::new(1);
    seed(&mut ks, 0, b"x", b"v", -1);
    assert!(!ks.evict_to_fit(0, "noeviction", || 1));
    assert!(ks.hooks.log.is_empty());
    assert!(!ks.evict_to_fit(0, "volatile-lru", || 1), "no volatile key");
    assert_eq!(ks.db_len(0), 1);
}

#[test]
fn set_overwrites_a_string_in_its_own_buffer() {
    let mut ks = Keyspace::new(1);
    let long = [b'a'; 100];
    ks.write(0, b"k").set_str(&long, Some(-1));
    let before = ks.peek(0, b"k").unwrap().value.as_str().unwrap().as_ptr();
    ks.write(0, b"k").set_str(&[b'b'; 100], None);
    let e = ks.peek(0, b"k").unwrap();
    assert_eq!(e.value.as_str().unwrap().as_ptr(), before);
    assert_eq!(e.value.as_str().unwrap().to_vec(), [b'b'; 100]);
    // INCR writes its digits over the old ones inside the entry.
    ks.write(0, b"k").set_str(b"1234", None);
    let before = ks.peek(0, b"k").unwrap().value.as_str().unwrap().as_ptr();
    ks.write(0, b"k").set_int(i64::MAX);
    let e = ks.peek(0, b"k").unwrap();
    assert_eq!(e.value.as_str().unwrap().as_ptr(), before);
    assert_eq!(e.value.encoding_name(), "int");
}

#[test]
fn no_access_metadata_is_written_while_frozen() {
    let mut ks = Keyspace::new(1);
    ks.lru_clock = 0;
    seed(&mut ks, 0, b"k", b"v", -1);
    ks.lru_clock = 100;
    ks.access_frozen = true;
    ks.get(0, b"k");
    ks.write(0, b"k").set_str(b"w", None);
    assert_eq!(ks.peek(0, b"k").unwrap().lru, 0);
    ks.access_frozen = false;
    ks.get(0, b"k");
    assert_eq!(ks.peek(0, b"k").unwrap().lru, 100);
}

#[test]
fn the_rdb_walk_lends_values_without_copying() {
    let mut ks = Keyspace::new(2);
    let at = now_ms() + 10_000;
    seed(&mut ks, 1, b"a", &[b'x'; 64], at);
    seed(&mut ks, 1, b"b", b"1", -1);
    let stored = ks.peek(1, b"a").unwrap().value.as_str().unwrap().as_ptr();
    let (i, db) = ks.databases().nth(1).unwrap();
    assert_eq!((i, db.len(), db.expires_len()), (1, 2, 1));
    let walked: Vec<_> = db.iter().collect();
    assert_eq!(walked[0].0.as_slice(), b"a");
    assert_eq!(walked[0].1.as_str().unwrap().as_ptr(), stored);
    assert_eq!(walked[0].2, Some(at));
    assert_eq!(walked[1].2, None);
}

/// What every key costs the keyspace table: its slot in the dense vector is a 24-byte key and a
/// 40-byte entry (a 32-byte value, whose container variants are small handles, plus access
/// metadata, the snapshot epoch and the TTL flag). Memory per key against redis-server depends
/// on it (docs/cow.md, "Memory per key"): a field added to `Entry`, a variant that grows `Value`
/// or a longer inline key must make this test fail rather than silently cost every key 8 bytes.
#[test]
fn the_table_slot_stays_64_bytes() {
    use std::mem::size_of;
    assert_eq!(size_of::<Str>(), 32, "Str");
    assert_eq!(
        size_of::<Value>(),
        32,
        "Value: no bigger than its string variant"
    );
    assert_eq!(size_of::<super::Entry>(), 40, "Entry");
    assert_eq!(size_of::<super::Key>(), 24, "Key");
    assert_eq!(size_of::<(super::Key, super::Entry)>(), 64, "a table slot");
}

/// `Slot::str_bytes_mut` (SETBIT, BITFIELD, SETRANGE, APPEND): the hook sees the old value, the
/// bytes change where they are (a 1 MiB value is not copied: under a snapshot a copy would
/// dirty all its pages), growth pads with zeros, the encoding becomes raw, and one change is
/// counted; `str_mark_raw` changes only the encoding, counting nothing.
#[test]
fn string_bytes_change_in_place() {
    let mut ks = ks();
    let big = vec![0u8; 1 << 20];
    ks.restore(0, b"big", Value::raw(big), -1);
    ks.hooks.log.clear();
    ks.dirty = 0;
    watch(&mut ks, 0, b"big");
    let before = ks.peek(0, b"big").unwrap().value.as_str().unwrap().as_ptr();
    assert_eq!(before as usize % 4096, 0, "a large value is page-aligned");
    ks.write(0, b"big").str_bytes_mut(10).unwrap()[5] = 0x80;
    let e = ks.peek(0, b"big").unwrap();
    let s = e.value.as_str().unwrap();
    assert_eq!(s.as_ptr(), before, "changed in place, not copied");
    assert_eq!(
        (s.len(), s[5]),
        (1 << 20, 0x80),
        "longer than asked: not shrunk"
    );
    assert_eq!(
        ks.hooks.log.len(),
        1,
        "the hook ran once, before the change"
    );
    assert_eq!((ks.dirty, ks.dirty_cas.contains(&WATCHER)), (1, true));

    // A missing key is created raw, zero-filled; a short string grows with zeros.
    ks.write(0, b"new").str_bytes_mut(3).unwrap()[2] = 1;
    assert_eq!(str_of(&ks, 0, b"new").unwrap(), [0, 0, 1]);
    seed(&mut ks, 0, b"n", b"12", -1);
    assert_eq!(ks.peek(0, b"n").unwrap().value.encoding_name(), "int");
    ks.write(0, b"n").str_bytes_mut(4).unwrap();
    assert_eq!(str_of(&ks, 0, b"n").unwrap(), b"12\0\0");
    assert_eq!(ks.peek(0, b"n").unwrap().value.encoding_name(), "raw");

    // The encoding alone: hooked, but no change counted and no WATCH invalidated.
    seed(&mut ks, 0, b"e", b"abc", -1);
    ks.dirty = 0;
    ks.dirty_cas.clear();
    watch(&mut ks, 0, b"e");
    ks.write(0, b"e").str_mark_raw();
    assert_eq!(ks.peek(0, b"e").unwrap().value.encoding_name(), "raw");
    assert_eq!((ks.dirty, ks.dirty_cas.contains(&WATCHER)), (0, false));
    assert_eq!(str_of(&ks, 0, b"e").unwrap(), b"abc");
}

// ---------------------------------------------------------------------------------------------
// The forkless walk: every entry of the start exactly once, as it was at the start
// ---------------------------------------------------------------------------------------------

mod forkless {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use rand::{Rng, SeedableRng};

    use super::super::{Keyspace, SnapSink, Value, WalkStep};

    type Data = BTreeMap<(u32, Vec<u8>), (Vec<u8>, i64)>;
    /// What a recorder was sent: (db, key, value, expire).
    type Sent = Rc<RefCell<Vec<(u32, Vec<u8>, Vec<u8>, i64)>>>;

    /// Records what it is sent; full every `room` items until the walk takes a turn off.
    struct Recorder {
        got: Sent,
        early: Rc<RefCell<u64>>,
    }

    impl SnapSink for Recorder {
        fn emit(&mut self, db: u32, key: &[u8], value: &Value, expire: i64, early: bool) {
            let Value::Str { data, .. } = value else {
                panic!("only strings in this test");
            };
            if early {
                *self.early.borrow_mut() += 1;
            }
            self.got
                .borrow_mut()
                .push((db, key.to_vec(), data.to_vec(), expire));
        }
        fn has_room(&self) -> bool {
            true
        }
        fn flush(&mut self) {}
        fn finish(self: Box<Self>) {}
    }

    fn data(ks: &Keyspace) -> Data {
        let mut out = Data::new();
        for (i, db) in ks.databases() {
            for (k, v, exp) in db.iter() {
                let Value::Str { data, .. } = v else { panic!() };
                out.insert((i as u32, k.to_vec()), (data.to_vec(), exp.unwrap_or(-1)));
            }
        }
        out
    }

    /// One random change through the store's public write operations.
    fn change(ks: &mut Keyspace, rng: &mut impl Rng, next_new: &mut u32) {
        let db = rng.gen_range(0..4usize);
        let key = format!("k{}", rng.gen_range(0..300u32)).into_bytes();
        match rng.gen_range(0..100u32) {
            0..=29 => ks.write(db, &key).set_str(b"changed", None),
            30..=44 => {
                ks.delete(db, &key);
            }
            45..=54 => {
                *next_new += 1;
                let k = format!("new{next_new}").into_bytes();
                ks.write(db, &k).set_str(b"new", None);
            }
            55..=64 => {
                let dst = format!("k{}", rng.gen_range(0..300u32)).into_bytes();
                ks.rename(db, &key, &dst, false);
            }
            65..=72 => {
                ks.move_key(db, rng.gen_range(0..4), &key);
            }
            73..=80 => {
                ks.write(db, &key)
                    .set_expire(crate::util::now_ms() + 1_000_000);
            }
            81..=84 => ks.swap_db(db, rng.gen_range(0..4)),
            85 => {
                ks.flush_db(db);
            }
            _ => {
                let dst = format!("c{}", rng.gen_range(0..300u32)).into_bytes();
                ks.copy_key(db, &key, rng.gen_range(0..4), &dst, true);
            }
        }
    }

    #[test]
    fn each_entry_of_the_start_is_sent_once_whatever_changes_meanwhile() {
        for seed in 0..40u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut ks = Keyspace::new(4);
            for db in 0..4 {
                for i in 0..rng.gen_range(0..250u32) {
                    let v = format!("v{db}-{i}-{}", "x".repeat(i as usize % 40));
                    let exp = if i % 7 == 0 {
                        crate::util::now_ms() + 9_000_000
                    } else {
                        -1
                    };
                    ks.restore(
                        db,
                        format!("k{i}").as_bytes(),
                        Value::string(v.as_bytes()),
                        exp,
                    );
                }
            }
            // Several saves in a row on the same keyspace: the epochs must keep them apart.
            for round in 0..3 {
                let want = data(&ks);
                let got = Rc::new(RefCell::new(Vec::new()));
                let early = Rc::new(RefCell::new(0));
                let total = ks.forkless_begin(Box::new(Recorder {
                    got: got.clone(),
                    early: early.clone(),
                }));
                assert_eq!(total as usize, want.len());
                let mut next_new = 0;
                let far = Instant::now() + Duration::from_secs(60);
                loop {
                    for _ in 0..rng.gen_range(0..6) {
                        change(&mut ks, &mut rng, &mut next_new);
                    }
                    if ks.forkless_step(rng.gen_range(1..20), far) == WalkStep::Done {
                        break;
                    }
                }
                drop(ks.forkless_end());
                let mut sent = Data::new();
                for (db, k, v, exp) in got.borrow().iter() {
                    let dup = sent.insert((*db, k.clone()), (v.clone(), *exp));
                    assert!(
                        dup.is_none(),
                        "seed {seed} round {round}: db{db} {k:?} sent twice"
                    );
                }
                assert_eq!(sent, want, "seed {seed} round {round}");
                assert!(
                    *early.borrow() <= total,
                    "more sent early than there were keys"
                );
            }
        }
    }

    #[test]
    fn epochs_wrap_without_skipping_an_entry() {
        let mut ks = Keyspace::new(1);
        ks.restore(0, b"a", Value::string(b"1"), -1);
        ks.hooks.epoch = u16::MAX - 1;
        for _ in 0..3 {
            let got = Rc::new(RefCell::new(Vec::new()));
            let rec = Recorder {
                got: got.clone(),
                early: Rc::new(RefCell::new(0)),
            };
            ks.forkless_begin(Box::new(rec));
            let far = Instant::now() + Duration::from_secs(60);
            while ks.forkless_step(10, far) != WalkStep::Done {}
            drop(ks.forkless_end());
            assert_eq!(got.borrow().len(), 1, "epoch {}", ks.hooks.epoch);
        }
    }
}

/// The LRU clock wraps at 2^24 seconds, as Redis's: idle times are taken across the wrap, and
/// RESTORE IDLETIME can set an access time before the clock's zero (or the server's start).
#[test]
fn idle_times_cross_the_clock_wrap() {
    use super::{idle_secs, LRU_CLOCK_MAX};
    assert_eq!(idle_secs(100, 40), 60);
    assert_eq!(idle_secs(10, LRU_CLOCK_MAX - 5), 15);
    let mut ks = Keyspace::new(1);
    seed(&mut ks, 0, b"k", b"v", -1);
    ks.lru_clock = 1000;
    ks.write(0, b"k").set_access(Some(400), None);
    assert_eq!(idle_secs(ks.lru_clock, ks.peek(0, b"k").unwrap().lru), 400);
    ks.write(0, b"k").set_access(Some(5000), None);
    let idle = idle_secs(ks.lru_clock, ks.peek(0, b"k").unwrap().lru);
    assert!(idle > LRU_CLOCK_MAX / 2 - 2, "idle {idle}");
}

#[test]
fn the_end_of_a_fork_save_heals_every_forwarded_container() {
    use crate::types::hash::Limits;
    use crate::types::{fork_save_ended, fork_save_started, forward, set_forward_budget};
    use crate::types::{Hash, Set};
    let lim = Limits::new(128, 64);
    let mut ks = ks();
    for db in [0, 3] {
        for i in 0..20 {
            let mut h = Hash::new();
            h.set(b"f", b"0123456789", lim).unwrap();
            ks.write(db, format!("h{i}").as_bytes())
                .put(Value::Hash(h), None);
            let mut s = Set::new();
            s.add(b"1", 512);
            ks.write(db, format!("s{i}").as_bytes())
                .put(Value::Set(s), None);
        }
    }
    fork_save_started(1_000_000);
    set_forward_budget(1 << 20, true);
    for db in [0, 3] {
        for i in 0..20 {
            let (hk, sk) = (format!("h{i}"), format!("s{i}"));
            let mut w = ks.write(db, hk.as_bytes());
            let h = w.hash_mut().unwrap().unwrap();
            h.set(b"f", format!("v{db}-{i:08}").as_bytes(), lim)
                .unwrap();
            drop(w);
            let mut w = ks.write(db, sk.as_bytes());
            assert!(w.set_mut().unwrap().unwrap().add(b"2", 512));
        }
    }
    assert_eq!(forward::live(), 80);
    fork_save_ended();
    ks.heal_forwarded();
    assert_eq!(forward::live(), 0);
    for db in [0, 3] {
        for i in 0..20 {
            let h = ks
                .get_hash(db, format!("h{i}").as_bytes())
                .unwrap()
                .unwrap();
            assert_eq!(
                h.get(b"f").unwrap().to_vec(),
                format!("v{db}-{i:08}").into_bytes()
            );
            let s = ks.get_set(db, format!("s{i}").as_bytes()).unwrap().unwrap();
            assert!(s.contains(b"1") && s.contains(b"2"));
        }
    }
}
