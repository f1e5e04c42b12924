//! Keyspace commands.
//!
//! ```text
//! DEL key [key ...]        UNLINK key [key ...]      EXISTS key [key ...]     TYPE key
//! KEYS pattern             SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
//! RANDOMKEY                RENAME key newkey         RENAMENX key newkey
//! COPY source destination [DB destination-db] [REPLACE]
//! MOVE key db              TOUCH key [key ...]       DBSIZE
//! FLUSHDB [ASYNC|SYNC]     FLUSHALL [ASYNC|SYNC]
//! OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key         OBJECT HELP
//! ```

use bytes::Bytes;

use super::is;
use crate::glob;
use crate::server::Ctx;
use crate::store::RenameOutcome;
use crate::util::parse_i64;

const SAME_OBJECT: &str = "ERR source and destination objects are the same";

/// DEL and UNLINK (values are freed at once either way: there is no lazy-free thread).
pub fn del(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let mut n = 0;
    for k in &args[1..] {
        if cx.srv.ks.delete(db, k).is_some() {
            n += 1;
        }
    }
    cx.int(n);
}

pub fn exists(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let n = args[1..].iter().filter(|k| cx.srv.ks.exists(db, k)).count();
    cx.int(n as i64);
}

pub fn type_cmd(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let t = cx
        .srv
        .ks
        .get(db, &args[1])
        .map(|e| e.value.type_name())
        .unwrap_or("none");
    cx.simple(t);
}

pub fn keys(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let pattern = &args[1];
    let all = pattern.as_ref() == b"*";
    let found = cx
        .srv
        .ks
        .keys_matching(db, |k| all || glob::matches(pattern, k, false));
    cx.array(found.len());
    for k in found {
        cx.bulk(&k);
    }
}

pub fn scan(cx: &mut Ctx, args: &[Bytes]) {
    let cursor = match std::str::from_utf8(&args[1])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(c) => c,
        None => return cx.err("ERR invalid cursor"),
    };
    let mut count = 10usize;
    let mut pattern: Option<Bytes> = None;
    let mut type_filter: Option<String> = None;
    let mut j = 2;
    while j < args.len() {
        let Some(val) = args.get(j + 1) else {
            return cx.syntax_err();
        };
        if is(&args[j], "count") {
            let Some(n) = super::int_arg(cx, val) else {
                return;
            };
            if n < 1 {
                return cx.syntax_err();
            }
            count = n as usize;
        } else if is(&args[j], "match") {
            pattern = Some(val.clone());
        } else if is(&args[j], "type") {
            type_filter = Some(String::from_utf8_lossy(val).to_ascii_lowercase());
        } else {
            return cx.syntax_err();
        }
        j += 2;
    }
    let db = cx.db();
    let (next, found) = cx.srv.ks.scan(db, cursor, count, |k, e| {
        pattern.as_ref().is_none_or(|p| glob::matches(p, k, false))
            && type_filter
                .as_ref()
                .is_none_or(|t| t == e.value.type_name())
    });
    cx.array(2);
    cx.bulk(next.to_string().as_bytes());
    cx.array(found.len());
    for k in found {
        cx.bulk(&k);
    }
}

pub fn randomkey(cx: &mut Ctx, _args: &[Bytes]) {
    let db = cx.db();
    match cx.srv.ks.random_key(db) {
        Some(k) => cx.bulk(&k),
        None => cx.null(),
    }
}

fn rename_generic(cx: &mut Ctx, args: &[Bytes], nx: bool) {
    let db = cx.db();
    match cx.srv.ks.rename(db, &args[1], &args[2], nx) {
        RenameOutcome::NoSuchKey => cx.err("ERR no such key"),
        RenameOutcome::SameKey | RenameOutcome::DestinationExists if nx => cx.int(0),
        RenameOutcome::SameKey | RenameOutcome::DestinationExists => cx.ok(),
        RenameOutcome::Done if nx => cx.int(1),
        RenameOutcome::Done => cx.ok(),
    }
}

pub fn rename(cx: &mut Ctx, args: &[Bytes]) {
    rename_generic(cx, args, false);
}

pub fn renamenx(cx: &mut Ctx, args: &[Bytes]) {
    rename_generic(cx, args, true);
}

/// A DB index argument as MOVE and COPY check it.
fn target_db(cx: &mut Ctx, arg: &[u8]) -> Option<usize> {
    let n = match parse_i64(arg) {
        Some(n) if n >= i32::MIN as i64 && n <= i32::MAX as i64 => n,
        _ => {
            cx.not_int();
            return None;
        }
    };
    if n < 0 || n >= cx.srv.config.databases as i64 {
        cx.err("ERR DB index is out of range");
        return None;
    }
    Some(n as usize)
}

pub fn copy(cx: &mut Ctx, args: &[Bytes]) {
    let src_db = cx.db();
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        if is(&args[j], "replace") {
            replace = true;
        } else if is(&args[j], "db") && j + 1 < args.len() {
            let Some(d) = target_db(cx, &args[j + 1]) else {
                return;
            };
            dst_db = d;
            j += 1;
        } else {
            return cx.syntax_err();
        }
        j += 1;
    }
    if src_db == dst_db && args[1] == args[2] {
        return cx.err(SAME_OBJECT);
    }
    // The copy has its own buffer, as Redis's dupStringObject makes.
    let copied = cx
        .srv
        .ks
        .copy_key(src_db, &args[1], dst_db, &args[2], replace);
    cx.int(i64::from(copied));
}

pub fn move_cmd(cx: &mut Ctx, args: &[Bytes]) {
    let src_db = cx.db();
    let Some(dst_db) = target_db(cx, &args[2]) else {
        return;
    };
    if src_db == dst_db {
        return cx.err(SAME_OBJECT);
    }
    let moved = cx.srv.ks.move_key(src_db, dst_db, &args[1]);
    cx.int(i64::from(moved));
}

pub fn touch(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let n = args[1..]
        .iter()
        .filter(|k| cx.srv.ks.lookup_write(db, k).is_some())
        .count();
    cx.int(n as i64);
}

pub fn dbsize(cx: &mut Ctx, _args: &[Bytes]) {
    let db = cx.db();
    cx.int(cx.srv.ks.db_len(db) as i64);
}

/// Checks FLUSHDB/FLUSHALL's optional ASYNC|SYNC.
fn flush_flags_ok(cx: &mut Ctx, args: &[Bytes]) -> bool {
    let ok = match args.len() {
        1 => true,
        2 => is(&args[1], "async") || is(&args[1], "sync"),
        _ => false,
    };
    if !ok {
        cx.syntax_err();
    }
    ok
}

pub fn flushdb(cx: &mut Ctx, args: &[Bytes]) {
    if !flush_flags_ok(cx, args) {
        return;
    }
    let db = cx.db();
    cx.srv.ks.flush_db(db);
    cx.ok();
}

pub fn flushall(cx: &mut Ctx, args: &[Bytes]) {
    if !flush_flags_ok(cx, args) {
        return;
    }
    for db in 0..cx.srv.ks.db_count() {
        cx.srv.ks.flush_db(db);
    }
    // Counts the keys it dropped, and nothing more (redis-server 7.0.15: 3 keys and no save
    // point, `rdb_changes_since_last_save` 3 → 6; an empty server stays at 0), then saves when
    // save points are set, which resets the count.
    cx.srv.after_flushall();
    cx.ok();
}

/// What OBJECT reports about a key, read without touching its access time; replies null if
/// the key is missing.
struct ObjectInfo {
    encoding: &'static str,
    shared_int: bool,
    lru: u32,
    /// The LFU counter after decay, under an LFU policy.
    freq: Option<u8>,
}

fn object_info(cx: &mut Ctx, key: &[u8]) -> Option<ObjectInfo> {
    let db = cx.db();
    let (clock, lfu) = (cx.srv.ks.lru_clock, cx.srv.ks.lfu);
    let info = cx.srv.ks.peek(db, key).map(|e| ObjectInfo {
        encoding: e.value.encoding_name(),
        shared_int: e.value.is_shared_int(),
        lru: e.lru,
        freq: lfu.map(|p| e.lfu_decayed(clock, p.decay_minutes)),
    });
    if info.is_none() {
        cx.null();
    }
    info
}

pub fn object_encoding(cx: &mut Ctx, args: &[Bytes]) {
    if let Some(o) = object_info(cx, &args[2]) {
        cx.bulk(o.encoding.as_bytes());
    }
}

/// Redis shares the integers 0..10000 between keys and reports INT_MAX as their refcount.
pub fn object_refcount(cx: &mut Ctx, args: &[Bytes]) {
    if let Some(o) = object_info(cx, &args[2]) {
        cx.int(if o.shared_int { i32::MAX as i64 } else { 1 });
    }
}

pub fn object_idletime(cx: &mut Ctx, args: &[Bytes]) {
    if let Some(o) = object_info(cx, &args[2]) {
        if cx.srv.ks.lfu.is_some() {
            return cx.err("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
        }
        let idle = crate::store::idle_secs(cx.srv.ks.lru_clock, o.lru);
        cx.int(i64::from(idle));
    }
}

pub fn object_freq(cx: &mut Ctx, args: &[Bytes]) {
    if let Some(o) = object_info(cx, &args[2]) {
        if let Some(f) = o.freq {
            return cx.int(i64::from(f));
        }
        cx.err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
}

pub fn object_help(cx: &mut Ctx, _args: &[Bytes]) {
    super::conn::help_reply(
        cx,
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
}
