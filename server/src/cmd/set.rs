//! Set commands (Redis 7.0's `t_set.c`).
//!
//! ```text
//! SADD key member [member ...]          SREM key member [member ...]
//! SMEMBERS key                          SCARD key
//! SISMEMBER key member                  SMISMEMBER key member [member ...]
//! SPOP key [count]                      SRANDMEMBER key [count]
//! SMOVE source destination member
//! SINTER key [key ...]                  SINTERSTORE destination key [key ...]
//! SINTERCARD numkeys key [key ...] [LIMIT limit]
//! SUNION key [key ...]                  SUNIONSTORE destination key [key ...]
//! SDIFF key [key ...]                   SDIFFSTORE destination key [key ...]
//! SSCAN key cursor [MATCH pattern] [COUNT count]
//! ```
//!
//! Replies follow Redis 7.0 in shape: the commands that answer a whole set (SMEMBERS, SINTER,
//! SUNION, SDIFF, SPOP with a count) answer a RESP3 set, SRANDMEMBER with a count an array.
//! Where Redis's algorithm decides a *STORE result's encoding (an intset while every member is an
//! integer; SDIFF's second algorithm adds then removes, so its result can be a table even when
//! only integers are left), this code runs the same algorithm, so OBJECT ENCODING agrees.
//! Changes are counted in `dirty` per element where Redis counts them so (SADD, SREM, SPOP).

use bytes::{Bytes, BytesMut};
use forkdb_protocol as proto;
use forkdb_snapshot::blob::Elem;

use super::is;
use crate::glob;
use crate::server::Ctx;
use crate::store::{Value, WrongType};
use crate::types::Set;
use crate::util::parse_i64;

/// SRANDMEMBER with a negative count returns that many picks: Redis would build a reply of any
/// size (until the client is dropped for its output buffer, or the server runs out of memory).
/// forkdb refuses counts above this (a reply of at least 256 MiB) rather than abort on memory.
const MAX_RANDOM_PICKS: u64 = 1 << 26;

fn max_intset(cx: &Ctx) -> usize {
    usize::try_from(cx.srv.config.set_max_intset_entries).unwrap_or(usize::MAX)
}

/// The header of a reply that is a set: `~n` in RESP3, an array in RESP2.
fn set_header(out: &mut BytesMut, resp3: bool, n: usize) {
    if resp3 {
        out.extend_from_slice(b"~");
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        out.extend_from_slice(b"\r\n");
    } else {
        proto::encode_array_header(n, out);
    }
}

fn elem_bulk(e: Elem<'_>, out: &mut BytesMut) {
    match e {
        Elem::Int(v) => proto::encode_bulk(itoa::Buffer::new().format(v).as_bytes(), out),
        Elem::Str(s) => proto::encode_bulk(s, out),
    }
}

pub fn sadd(cx: &mut Ctx, args: &[Bytes]) {
    let (db, max) = (cx.db(), max_intset(cx));
    let members = &args[2..];
    let mut w = cx.srv.ks.write(db, &args[1]);
    match w.get_set() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        // Nothing new: no change, so no hook, no WATCH invalidation, nothing in `dirty`.
        Ok(Some(s)) if members.iter().all(|m| s.contains(m)) => {
            drop(w);
            return cx.int(0);
        }
        Ok(Some(_)) => {}
        Ok(None) => w.put(Value::Set(Set::for_member(&args[2])), None),
    }
    let mut added = 0u64;
    if let Ok(Some(s)) = w.set_mut() {
        for m in members {
            if s.add(m, max) {
                added += 1;
            }
        }
    }
    w.count_changes(added);
    drop(w);
    cx.int(added as i64);
}

pub fn srem(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let members = &args[2..];
    let mut w = cx.srv.ks.write(db, &args[1]);
    match w.get_set() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(None) => {
            drop(w);
            return cx.int(0);
        }
        Ok(Some(s)) if !members.iter().any(|m| s.contains(m)) => {
            drop(w);
            return cx.int(0);
        }
        Ok(Some(_)) => {}
    }
    let (mut deleted, mut emptied) = (0u64, false);
    if let Ok(Some(s)) = w.set_mut() {
        for m in members {
            if s.remove(m) {
                deleted += 1;
                if s.is_empty() {
                    emptied = true;
                    break;
                }
            }
        }
    }
    if emptied {
        w.delete();
    }
    w.count_changes(deleted);
    drop(w);
    cx.int(deleted as i64);
}

pub fn sismember(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    match cx.srv.ks.get_set(db, &args[1]) {
        Ok(s) => {
            let found = s.is_some_and(|s| s.contains(&args[2]));
            cx.int(i64::from(found));
        }
        Err(WrongType) => cx.wrongtype(),
    }
}

pub fn smismember(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let out = &mut *cx.out;
    match cx.srv.ks.get_set(db, &args[1]) {
        Ok(s) => {
            proto::encode_array_header(args.len() - 2, out);
            for m in &args[2..] {
                proto::encode_integer(i64::from(s.is_some_and(|s| s.contains(m))), out);
            }
        }
        Err(WrongType) => cx.wrongtype(),
    }
}

pub fn scard(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    match cx.srv.ks.get_set(db, &args[1]) {
        Ok(s) => {
            let n = s.map_or(0, |s| s.len() as i64);
            cx.int(n);
        }
        Err(WrongType) => cx.wrongtype(),
    }
}

pub fn smembers(cx: &mut Ctx, args: &[Bytes]) {
    sinter_generic(cx, &args[1..2], None, None);
}

pub fn spop(cx: &mut Ctx, args: &[Bytes]) {
    if args.len() == 3 {
        return spop_count(cx, args);
    }
    if args.len() > 3 {
        return cx.syntax_err();
    }
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    match w.get_set() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(None) => {
            drop(w);
            return cx.null();
        }
        Ok(Some(_)) => {}
    }
    let mut rng = rand::thread_rng();
    let (popped, emptied) = match w.set_mut() {
        Ok(Some(s)) => (s.pop_random(&mut rng), s.is_empty()),
        _ => (None, false),
    };
    if emptied {
        w.delete();
    }
    drop(w);
    match popped {
        Some(m) => cx.bulk(&m),
        None => cx.null(),
    }
}

/// `SPOP key count`: Redis's three cases (the whole set; `count` random pops; or, when few are
/// left, picking the ones that stay into a new set, whose encoding is then what adding them
/// anew gives: a table of integers can become an intset again, as in Redis).
fn spop_count(cx: &mut Ctx, args: &[Bytes]) {
    let count = match parse_i64(&args[2]) {
        Some(n) if n >= 0 => n as u64,
        _ => return cx.err("ERR value is out of range, must be positive"),
    };
    let (db, resp3, max) = (cx.db(), cx.resp3(), max_intset(cx));
    let out = &mut *cx.out;
    let mut w = cx.srv.ks.write(db, &args[1]);
    let size = match w.get_set() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(None) => return set_header(out, resp3, 0),
        Ok(Some(s)) => s.len() as u64,
    };
    if count == 0 {
        return set_header(out, resp3, 0);
    }
    let mut rng = rand::thread_rng();
    if count >= size {
        // Redis replies with the union of the one set: a copy, so a table holding only
        // integers answers in an intset's (sorted) order.
        if let Ok(Some(s)) = w.get_set() {
            let mut copy = Set::new();
            for e in s.iter() {
                copy.add_elem(e, max);
            }
            set_header(out, resp3, copy.len());
            copy.iter().for_each(|e| elem_bulk(e, out));
        }
        w.count_changes(size);
        w.delete();
        return;
    }
    w.count_changes(count);
    set_header(out, resp3, count as usize);
    let remaining = size - count;
    let Ok(Some(s)) = w.set_mut() else {
        return;
    };
    if remaining * 5 > count {
        for _ in 0..count {
            if let Some(m) = s.pop_random(&mut rng) {
                proto::encode_bulk(&m, out);
            }
        }
    } else {
        let mut kept: Option<Set> = None;
        for _ in 0..remaining {
            if let Some(m) = s.pop_random(&mut rng) {
                kept.get_or_insert_with(|| Set::for_member(&m)).add(&m, max);
            }
        }
        s.iter().for_each(|e| elem_bulk(e, out));
        *s = kept.unwrap_or_default();
    }
}

pub fn srandmember(cx: &mut Ctx, args: &[Bytes]) {
    if args.len() == 3 {
        return srandmember_count(cx, args);
    }
    if args.len() > 3 {
        return cx.syntax_err();
    }
    let db = cx.db();
    let out = &mut *cx.out;
    match cx.srv.ks.get_set(db, &args[1]) {
        Ok(Some(s)) => match s.random(&mut rand::thread_rng()) {
            Some(e) => elem_bulk(e, out),
            None => cx.null(),
        },
        Ok(None) => cx.null(),
        Err(WrongType) => cx.wrongtype(),
    }
}

fn srandmember_count(cx: &mut Ctx, args: &[Bytes]) {
    let (count, distinct) = match parse_i64(&args[2]) {
        None => return cx.not_int(),
        Some(i64::MIN) => {
            return cx.err(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            )
        }
        Some(n) => (n.unsigned_abs(), n >= 0),
    };
    if !distinct && count > MAX_RANDOM_PICKS {
        return cx.err(&format!(
            "ERR value is out of range, forkdb returns at most {MAX_RANDOM_PICKS} random members"
        ));
    }
    let db = cx.db();
    let out = &mut *cx.out;
    let s = match cx.srv.ks.get_set(db, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return proto::encode_array_header(0, out),
        Err(WrongType) => return cx.wrongtype(),
    };
    let size = s.len() as u64;
    let mut rng = rand::thread_rng();
    if count == 0 {
        proto::encode_array_header(0, out);
    } else if !distinct || count == 1 {
        proto::encode_array_header(count as usize, out);
        for _ in 0..count {
            if let Some(e) = s.random(&mut rng) {
                elem_bulk(e, out);
            }
        }
    } else if count >= size {
        proto::encode_array_header(size as usize, out);
        s.iter().for_each(|e| elem_bulk(e, out));
    } else {
        proto::encode_array_header(count as usize, out);
        for i in rand::seq::index::sample(&mut rng, size as usize, count as usize) {
            if let Some(e) = s.get(i) {
                elem_bulk(e, out);
            }
        }
    }
}

/// What a key holds, for the commands that look at two keys before changing either.
enum Held {
    Missing,
    WrongType,
    /// A set; whether it holds the member asked about.
    Set(bool),
}

fn held(cx: &mut Ctx, key: &[u8], member: &[u8]) -> Held {
    let db = cx.db();
    let w = cx.srv.ks.write(db, key);
    match w.get_set() {
        Err(WrongType) => Held::WrongType,
        Ok(None) => Held::Missing,
        Ok(Some(s)) => Held::Set(s.contains(member)),
    }
}

pub fn smove(cx: &mut Ctx, args: &[Bytes]) {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let (db, max) = (cx.db(), max_intset(cx));
    let from = held(cx, src, member);
    let to = held(cx, dst, member);
    let in_src = match (from, &to) {
        (Held::Missing, _) => return cx.int(0),
        (Held::WrongType, _) | (_, Held::WrongType) => return cx.wrongtype(),
        (Held::Set(found), _) => found,
    };
    if src == dst || !in_src {
        return cx.int(i64::from(src == dst && in_src));
    }
    let mut w = cx.srv.ks.write(db, src);
    let emptied = match w.set_mut() {
        Ok(Some(s)) => s.remove(member) && s.is_empty(),
        _ => false,
    };
    if emptied {
        w.delete();
    }
    drop(w);
    let mut w = cx.srv.ks.write(db, dst);
    match to {
        Held::Set(true) => {}
        Held::Missing => {
            let mut s = Set::for_member(member);
            s.add(member, max);
            w.put(Value::Set(s), None);
        }
        Held::Set(false) | Held::WrongType => {
            if let Ok(Some(s)) = w.set_mut() {
                s.add(member, max);
            }
        }
    }
    drop(w);
    cx.int(1);
}

/// Looks every key up as Redis's `lookupKeyRead` does (lazy expiry, hit/miss statistics), in
/// order, stopping at the first of another type. Returns how many exist, or None after replying
/// WRONGTYPE.
fn lookup_all(cx: &mut Ctx, keys: &[Bytes]) -> Option<usize> {
    let db = cx.db();
    let mut found = 0;
    for k in keys {
        match cx.srv.ks.get_set(db, k) {
            Ok(Some(_)) => found += 1,
            Ok(None) => {}
            Err(WrongType) => {
                cx.wrongtype();
                return None;
            }
        }
    }
    Some(found)
}

/// Stores `result` at `dst` as the *STORE commands do (replacing any value and its TTL), or
/// deletes `dst` when the result is empty; replies with the result's size.
fn store_result(cx: &mut Ctx, dst: &[u8], result: Set) {
    let db = cx.db();
    let n = result.len();
    let mut w = cx.srv.ks.write(db, dst);
    if n == 0 {
        w.delete();
    } else {
        w.put(Value::Set(result), Some(-1));
    }
    drop(w);
    cx.int(n as i64);
}

/// SINTER, SMEMBERS, SINTERSTORE (`dst`) and SINTERCARD (`card`: Some(limit), 0 for none).
fn sinter_generic(cx: &mut Ctx, keys: &[Bytes], dst: Option<&[u8]>, card: Option<u64>) {
    let Some(found) = lookup_all(cx, keys) else {
        return;
    };
    let (db, resp3, max) = (cx.db(), cx.resp3(), max_intset(cx));
    let ks = &cx.srv.ks;
    // Every key was just looked up; `peek` lends them all at once. (A key that expired in
    // between counts as missing, as it would have a moment later in Redis.)
    let mut sets: Vec<&Set> = keys
        .iter()
        .filter_map(|k| ks.peek(db, k).and_then(|e| e.value.as_set().ok()))
        .collect();
    if found < keys.len() || sets.len() < keys.len() {
        match (dst, card) {
            (Some(dst), _) => store_result(cx, dst, Set::new()),
            (None, Some(_)) => cx.int(0),
            (None, None) => set_header(cx.out, resp3, 0),
        }
        return;
    }
    // Smallest first, as Redis sorts them: the reply follows the smallest set's order.
    sets.sort_by_key(|s| s.len());
    let (first, rest) = (sets[0], &sets[1..]);
    let in_all = |e: Elem<'_>| {
        rest.iter()
            .all(|s| std::ptr::eq(*s, first) || s.contains_elem(e))
    };
    if let Some(limit) = card {
        let mut n = 0u64;
        for e in first.iter() {
            if in_all(e) {
                n += 1;
                if limit != 0 && n >= limit {
                    break;
                }
            }
        }
        return cx.int(n as i64);
    }
    match dst {
        Some(dst) => {
            let mut result = Set::new();
            for e in first.iter().filter(|e| in_all(*e)) {
                result.add_elem(e, max);
            }
            store_result(cx, dst, result);
        }
        None => {
            let members: Vec<Elem<'_>> = first.iter().filter(|e| in_all(*e)).collect();
            set_header(cx.out, resp3, members.len());
            members.into_iter().for_each(|e| elem_bulk(e, cx.out));
        }
    }
}

pub fn sinter(cx: &mut Ctx, args: &[Bytes]) {
    sinter_generic(cx, &args[1..], None, None);
}

pub fn sinterstore(cx: &mut Ctx, args: &[Bytes]) {
    sinter_generic(cx, &args[2..], Some(&args[1]), None);
}

pub fn sintercard(cx: &mut Ctx, args: &[Bytes]) {
    const NUMKEYS: &str = "ERR numkeys should be greater than 0";
    let numkeys = match parse_i64(&args[1]) {
        Some(n) if n >= 1 => n as u64,
        _ => return cx.err(NUMKEYS),
    };
    if numkeys > (args.len() - 2) as u64 {
        return cx.err("ERR Number of keys can't be greater than number of args");
    }
    let numkeys = numkeys as usize;
    let mut limit = 0u64;
    let mut j = 2 + numkeys;
    while j < args.len() {
        if is(&args[j], "limit") && j + 1 < args.len() {
            j += 1;
            limit = match parse_i64(&args[j]) {
                Some(n) if n >= 0 => n as u64,
                _ => return cx.err("ERR LIMIT can't be negative"),
            };
        } else {
            return cx.syntax_err();
        }
        j += 1;
    }
    sinter_generic(cx, &args[2..2 + numkeys], None, Some(limit));
}

/// SUNION and SDIFF (`diff`), and their STORE forms (`dst`): Redis's `sunionDiffGenericCommand`,
/// with its choice between two SDIFF algorithms (which decides the result's encoding).
fn sunion_diff(cx: &mut Ctx, keys: &[Bytes], dst: Option<&[u8]>, diff: bool) {
    if lookup_all(cx, keys).is_none() {
        return;
    }
    let (db, resp3, max) = (cx.db(), cx.resp3(), max_intset(cx));
    let ks = &cx.srv.ks;
    let mut sets: Vec<Option<&Set>> = keys
        .iter()
        .map(|k| ks.peek(db, k).and_then(|e| e.value.as_set().ok()))
        .collect();
    let same_set = sets[0].is_some() && keys[1..].iter().any(|k| *k == keys[0]);
    let mut result = Set::new();
    if !diff {
        for s in sets.iter().flatten() {
            for e in s.iter() {
                result.add_elem(e, max);
            }
        }
    } else if let (Some(first), false) = (sets[0], same_set) {
        let size = |s: &Option<&Set>| s.map_or(0, |s| s.len() as u64);
        let present = sets.iter().filter(|s| s.is_some()).count() as u64;
        let algo_one = first.len() as u64 * present / 2;
        let algo_two: u64 = sets.iter().map(size).sum();
        if algo_one <= algo_two {
            // Algorithm 1: each member of the first set that no other set holds. The others
            // largest first, to find a member elsewhere soonest.
            sets[1..].sort_by_key(|s| std::cmp::Reverse(size(s)));
            for e in first.iter() {
                if !sets[1..].iter().flatten().any(|s| s.contains_elem(e)) {
                    result.add_elem(e, max);
                }
            }
        } else {
            // Algorithm 2: the first set, less every member of the others.
            result = Set::new();
            for e in first.iter() {
                result.add_elem(e, max);
            }
            for s in sets[1..].iter().flatten() {
                if result.is_empty() {
                    break;
                }
                for e in s.iter() {
                    result.remove_elem(e);
                }
            }
        }
    }
    match dst {
        Some(dst) => store_result(cx, dst, result),
        None => {
            set_header(cx.out, resp3, result.len());
            result.iter().for_each(|e| elem_bulk(e, cx.out));
        }
    }
}

pub fn sunion(cx: &mut Ctx, args: &[Bytes]) {
    sunion_diff(cx, &args[1..], None, false);
}

pub fn sunionstore(cx: &mut Ctx, args: &[Bytes]) {
    sunion_diff(cx, &args[2..], Some(&args[1]), false);
}

pub fn sdiff(cx: &mut Ctx, args: &[Bytes]) {
    sunion_diff(cx, &args[1..], None, true);
}

pub fn sdiffstore(cx: &mut Ctx, args: &[Bytes]) {
    sunion_diff(cx, &args[2..], Some(&args[1]), true);
}

pub fn sscan(cx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = parse_cursor(&args[2]) else {
        return cx.err("ERR invalid cursor");
    };
    let db = cx.db();
    // The key first, then the options (Redis checks them only for a set that exists).
    match cx.srv.ks.get_set(db, &args[1]) {
        Ok(Some(_)) => {}
        Ok(None) => {
            proto::encode_array_header(2, cx.out);
            proto::encode_bulk(b"0", cx.out);
            return proto::encode_array_header(0, cx.out);
        }
        Err(WrongType) => return cx.wrongtype(),
    }
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut j = 3;
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
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(&args[j], "match") {
            pattern = Some(val);
        } else {
            return cx.syntax_err();
        }
        j += 2;
    }
    let pattern = pattern.filter(|p| *p != b"*");
    let Some(s) = cx
        .srv
        .ks
        .peek(db, &args[1])
        .and_then(|e| e.value.as_set().ok())
    else {
        proto::encode_array_header(2, cx.out);
        proto::encode_bulk(b"0", cx.out);
        return proto::encode_array_header(0, cx.out);
    };
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = s.scan(cursor, count, |e| {
        let m = e.to_vec();
        if pattern.is_none_or(|p| glob::matches(p, &m, false)) {
            found.push(m);
        }
    });
    let out = &mut *cx.out;
    proto::encode_array_header(2, out);
    proto::encode_bulk(itoa::Buffer::new().format(next).as_bytes(), out);
    proto::encode_array_header(found.len(), out);
    for m in found {
        proto::encode_bulk(&m, out);
    }
}

/// A SCAN cursor as Redis's `parseScanCursorOrReply` reads it with `strtoul`: no leading
/// blank, an optional sign (`-1` wraps to the largest cursor), decimal digits to the end, no
/// overflow; an empty argument is cursor 0.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (negative, digits) = match arg.split_first() {
        None => return Some(0),
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        Some(_) => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n = 0u64;
    for d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative { n.wrapping_neg() } else { n })
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    #[test]
    fn cursors_parse_as_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        for bad in [&b" 1"[..], b"1 ", b"abc", b"-", b"+", b"1x", b"0x10"] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }
}
