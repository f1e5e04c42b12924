//! Hash commands, as Redis 7.0's `t_hash.c` answers them.
//!
//! ```text
//! HSET key field value [field value ...]     HMSET key field value [field value ...]
//! HSETNX key field value                     HGET key field
//! HMGET key field [field ...]                HDEL key field [field ...]
//! HGETALL key    HKEYS key    HVALS key      HLEN key
//! HEXISTS key field                          HSTRLEN key field
//! HINCRBY key field increment                HINCRBYFLOAT key field increment
//! HRANDFIELD key [count [WITHVALUES]]        HSCAN key cursor [MATCH pattern] [COUNT count]
//! ```
//!
//! Reads go through `Keyspace::get_hash`; writes open a `Slot`, decide with `Slot::get_hash`,
//! then change the value through `Slot::hash_mut` (or `put` a new hash), and `delete` the key
//! when a command empties it. The dirty counter follows Redis: HSET/HMSET count every pair given
//! and HDEL every field deleted (`Slot::count_changes`), the others one change.

use bytes::{BufMut, Bytes, BytesMut};
use forkdb_protocol::encode_bulk;
use forkdb_snapshot::blob::Elem;
use rand::seq::index::sample;
use rand::Rng;

use super::is;
use crate::glob;
use crate::server::Ctx;
use crate::store::{Value, WrongType};
use crate::types::hash::{Hash, Item, Limits};
use crate::util::{incr_by_float, parse_i64, IncrFloatError};

fn limits(cx: &Ctx) -> Limits {
    let c = &cx.srv.config;
    Limits::new(c.hash_max_listpack_entries, c.hash_max_listpack_value)
}

/// A field or value as a bulk string (a listpack integer as its decimal text).
fn bulk_item(e: Item<'_>, out: &mut BytesMut) {
    match e {
        Elem::Str(s) => encode_bulk(s, out),
        Elem::Int(n) => encode_bulk(itoa::Buffer::new().format(n).as_bytes(), out),
    }
}

/// A map header: RESP3 `%n`, RESP2 a flat array of 2n.
fn map_header(n: usize, resp3: bool, out: &mut BytesMut) {
    if resp3 {
        out.put_u8(b'%');
        out.put_slice(itoa::Buffer::new().format(n).as_bytes());
        out.put_slice(b"\r\n");
    } else {
        forkdb_protocol::encode_array_header(n.saturating_mul(2), out);
    }
}

const TOO_LARGE: &str = "ERR hash has too many fields";

/// Sets every pair of `args[2..]`; the number of new fields.
fn set_pairs(h: &mut Hash, args: &[Bytes], lim: Limits) -> Option<i64> {
    h.try_conversion(args[2..].iter().map(|a| &a[..]), lim);
    let mut created = 0;
    for p in args[2..].chunks(2) {
        created += i64::from(h.set(&p[0], &p[1], lim).ok()?);
    }
    Some(created)
}

fn hset_generic(cx: &mut Ctx, args: &[Bytes], name: &str) {
    if !args.len().is_multiple_of(2) {
        return cx.err(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }
    let lim = limits(cx);
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    let created = match w.hash_mut() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(Some(h)) => set_pairs(h, args, lim),
        Ok(None) => {
            let mut h = Hash::new();
            let created = set_pairs(&mut h, args, lim);
            // The keyspace never holds an empty hash.
            if !h.is_empty() {
                w.put(Value::Hash(h), None);
            }
            created
        }
    };
    w.count_changes(((args.len() - 2) / 2) as u64);
    drop(w);
    match created {
        None => cx.err(TOO_LARGE),
        Some(_) if name == "hmset" => cx.ok(),
        Some(n) => cx.int(n),
    }
}

pub fn hset(cx: &mut Ctx, args: &[Bytes]) {
    hset_generic(cx, args, "hset");
}

pub fn hmset(cx: &mut Ctx, args: &[Bytes]) {
    hset_generic(cx, args, "hmset");
}

/// Stores `value` at `field` of the hash at the slot's key, creating the hash if needed (the
/// caller has checked the type). False only if the table is full.
fn store_field(w: &mut crate::store::Slot, field: &[u8], value: &[u8], lim: Limits) -> bool {
    match w.hash_mut() {
        Ok(Some(h)) => {
            h.try_conversion([field, value], lim);
            h.set(field, value, lim).is_ok()
        }
        Ok(None) | Err(WrongType) => {
            let mut h = Hash::new();
            h.try_conversion([field, value], lim);
            let ok = h.set(field, value, lim).is_ok();
            if !h.is_empty() {
                w.put(Value::Hash(h), None);
            }
            ok
        }
    }
}

pub fn hsetnx(cx: &mut Ctx, args: &[Bytes]) {
    let lim = limits(cx);
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    match w.get_hash() {
        Err(WrongType) => {
            drop(w);
            cx.wrongtype()
        }
        Ok(Some(h)) if h.contains(&args[2]) => {
            drop(w);
            cx.int(0)
        }
        Ok(_) => {
            let ok = store_field(&mut w, &args[2], &args[3], lim);
            drop(w);
            if ok {
                cx.int(1)
            } else {
                cx.err(TOO_LARGE)
            }
        }
    }
}

pub fn hget(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let resp3 = cx.resp3();
    match cx.srv.ks.get_hash(db, &args[1]) {
        Ok(Some(h)) => match h.get(&args[2]) {
            Some(v) => bulk_item(v, cx.out),
            None => forkdb_protocol::encode_null(resp3, cx.out),
        },
        Ok(None) => cx.null(),
        Err(WrongType) => cx.wrongtype(),
    }
}

pub fn hmget(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let resp3 = cx.resp3();
    match cx.srv.ks.get_hash(db, &args[1]) {
        Err(WrongType) => cx.wrongtype(),
        Ok(h) => {
            forkdb_protocol::encode_array_header(args.len() - 2, cx.out);
            for f in &args[2..] {
                match h.and_then(|h| h.get(f)) {
                    Some(v) => bulk_item(v, cx.out),
                    None => forkdb_protocol::encode_null(resp3, cx.out),
                }
            }
        }
    }
}

pub fn hdel(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    let any = match w.get_hash() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(None) => false,
        Ok(Some(h)) => args[2..].iter().any(|f| h.contains(f)),
    };
    let mut deleted = 0;
    if any {
        let mut emptied = false;
        if let Ok(Some(h)) = w.hash_mut() {
            for f in &args[2..] {
                if h.delete(f) {
                    deleted += 1;
                    if h.is_empty() {
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
    }
    drop(w);
    cx.int(deleted as i64);
}

pub fn hlen(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    match cx.srv.ks.get_hash(db, &args[1]) {
        Ok(h) => {
            let n = h.map_or(0, Hash::len);
            cx.int(n as i64)
        }
        Err(WrongType) => cx.wrongtype(),
    }
}

pub fn hstrlen(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    match cx.srv.ks.get_hash(db, &args[1]) {
        Ok(h) => {
            let n = match h.and_then(|h| h.get(&args[2])) {
                Some(Elem::Str(s)) => s.len(),
                Some(Elem::Int(n)) => itoa::Buffer::new().format(n).len(),
                None => 0,
            };
            cx.int(n as i64)
        }
        Err(WrongType) => cx.wrongtype(),
    }
}

pub fn hexists(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    match cx.srv.ks.get_hash(db, &args[1]) {
        Ok(h) => {
            let found = h.is_some_and(|h| h.contains(&args[2]));
            cx.int(i64::from(found))
        }
        Err(WrongType) => cx.wrongtype(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Keys,
    Values,
    Both,
}

fn getall_generic(cx: &mut Ctx, args: &[Bytes], part: Part) {
    let db = cx.db();
    let resp3 = cx.resp3();
    match cx.srv.ks.get_hash(db, &args[1]) {
        Err(WrongType) => cx.wrongtype(),
        Ok(h) => {
            let n = h.map_or(0, Hash::len);
            if part == Part::Both {
                map_header(n, resp3, cx.out);
            } else {
                forkdb_protocol::encode_array_header(n, cx.out);
            }
            for (f, v) in h.into_iter().flat_map(Hash::pairs) {
                if part != Part::Values {
                    bulk_item(f, cx.out);
                }
                if part != Part::Keys {
                    bulk_item(v, cx.out);
                }
            }
        }
    }
}

pub fn hgetall(cx: &mut Ctx, args: &[Bytes]) {
    getall_generic(cx, args, Part::Both);
}

pub fn hkeys(cx: &mut Ctx, args: &[Bytes]) {
    getall_generic(cx, args, Part::Keys);
}

pub fn hvals(cx: &mut Ctx, args: &[Bytes]) {
    getall_generic(cx, args, Part::Values);
}

pub fn hincrby(cx: &mut Ctx, args: &[Bytes]) {
    let Some(incr) = super::int_arg(cx, &args[3]) else {
        return;
    };
    let lim = limits(cx);
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    let old = match w.get_hash() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(h) => match h.and_then(|h| h.get(&args[2])) {
            None => Some(0),
            Some(Elem::Int(n)) => Some(n),
            Some(Elem::Str(s)) => parse_i64(s),
        },
    };
    let Some(old) = old else {
        drop(w);
        return cx.err("ERR hash value is not an integer");
    };
    let Some(new) = old.checked_add(incr) else {
        drop(w);
        return cx.err("ERR increment or decrement would overflow");
    };
    let ok = store_field(
        &mut w,
        &args[2],
        itoa::Buffer::new().format(new).as_bytes(),
        lim,
    );
    drop(w);
    if ok {
        cx.int(new)
    } else {
        cx.err(TOO_LARGE)
    }
}

pub fn hincrbyfloat(cx: &mut Ctx, args: &[Bytes]) {
    // The increment alone first: Redis refuses a bad or infinite one before the lookup.
    match incr_by_float(None, &args[3]) {
        Ok(_) => {}
        Err(IncrFloatError::NotFloat) => return cx.err("ERR value is not a valid float"),
        Err(IncrFloatError::NanOrInfinity) => return cx.err("ERR value is NaN or Infinity"),
    }
    let lim = limits(cx);
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    let cur = match w.get_hash() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(h) => h.and_then(|h| h.get(&args[2])).map(|e| e.to_vec()),
    };
    // The increment is valid, so NotFloat is about the current value.
    let text = match incr_by_float(Some(cur.as_deref().unwrap_or(b"0")), &args[3]) {
        Ok(text) => text,
        Err(IncrFloatError::NotFloat) => {
            drop(w);
            return cx.err("ERR hash value is not a float");
        }
        Err(IncrFloatError::NanOrInfinity) => {
            drop(w);
            return cx.err("ERR increment would produce NaN or Infinity");
        }
    };
    let ok = store_field(&mut w, &args[2], &text, lim);
    drop(w);
    if ok {
        cx.bulk(&text)
    } else {
        cx.err(TOO_LARGE)
    }
}

/// One pair of an HRANDFIELD reply: RESP3 nests a pair with its value in an array.
fn reply_pair(f: Item<'_>, v: Item<'_>, withvalues: bool, resp3: bool, out: &mut BytesMut) {
    if withvalues && resp3 {
        forkdb_protocol::encode_array_header(2, out);
    }
    bulk_item(f, out);
    if withvalues {
        bulk_item(v, out);
    }
}

pub fn hrandfield(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let resp3 = cx.resp3();
    if args.len() == 2 {
        return match cx.srv.ks.get_hash(db, &args[1]) {
            Ok(Some(h)) if !h.is_empty() => {
                let i = rand::thread_rng().gen_range(0..h.len());
                match h.pair_at(i) {
                    Some((f, _)) => bulk_item(f, cx.out),
                    None => forkdb_protocol::encode_null(resp3, cx.out),
                }
            }
            Ok(_) => cx.null(),
            Err(WrongType) => cx.wrongtype(),
        };
    }
    let Some(l) = super::int_arg(cx, &args[2]) else {
        return;
    };
    if l == i64::MIN {
        return cx.err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        );
    }
    if args.len() > 4 || (args.len() == 4 && !is(&args[3], "withvalues")) {
        return cx.syntax_err();
    }
    let withvalues = args.len() == 4;
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return cx.err("ERR value is out of range");
    }
    let h = match cx.srv.ks.get_hash(db, &args[1]) {
        Ok(Some(h)) if !h.is_empty() => h,
        Ok(_) => return forkdb_protocol::encode_array_header(0, cx.out),
        Err(WrongType) => return cx.wrongtype(),
    };
    let out = &mut *cx.out;
    let count = l.unsigned_abs();
    let size = h.len();
    let per = |n: u64| if withvalues && !resp3 { n * 2 } else { n };
    if count == 0 {
        return forkdb_protocol::encode_array_header(0, out);
    }
    let mut rng = rand::thread_rng();
    // Negative count (or 1): picks with repetition, in random order.
    if l < 0 || count == 1 {
        forkdb_protocol::encode_array_header(per(count) as usize, out);
        // A listpack is walked once into positions; a table is indexed directly.
        let small: Vec<(Item<'_>, Item<'_>)> = match h.as_listpack() {
            Some(_) => h.pairs().collect(),
            None => Vec::new(),
        };
        for _ in 0..count {
            let i = rng.gen_range(0..size);
            let pair = if small.is_empty() {
                h.pair_at(i)
            } else {
                small.get(i).copied()
            };
            if let Some((f, v)) = pair {
                reply_pair(f, v, withvalues, resp3, out);
            }
        }
        return;
    }
    let count = count.min(size as u64) as usize;
    forkdb_protocol::encode_array_header(per(count as u64) as usize, out);
    if count >= size {
        for (f, v) in h.pairs() {
            reply_pair(f, v, withvalues, resp3, out);
        }
        return;
    }
    // Distinct positions, uniformly.
    let picks = sample(&mut rng, size, count);
    if h.as_listpack().is_some() {
        let all: Vec<(Item<'_>, Item<'_>)> = h.pairs().collect();
        for i in picks {
            let (f, v) = all[i];
            reply_pair(f, v, withvalues, resp3, out);
        }
    } else {
        for i in picks {
            if let Some((f, v)) = h.pair_at(i) {
                reply_pair(f, v, withvalues, resp3, out);
            }
        }
    }
}

/// Redis's `parseScanCursorOrReply`: `strtoul`, so an optional sign (a negative cursor wraps)
/// and digits, nothing after, no leading space, no overflow; an empty string is cursor 0.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (neg, digits) = match arg.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        Some((c, _)) if c.is_ascii_whitespace() => return None,
        _ => (false, arg),
    };
    if digits.is_empty() {
        // strtoul("") is 0 with nothing left over; a lone sign leaves the sign unparsed.
        return arg.is_empty().then_some(0);
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { n.wrapping_neg() } else { n })
}

/// HSCAN's options, parsed before the lookup but reported after it, as Redis does.
enum ScanOpts {
    Ok {
        count: usize,
        pattern: Option<Bytes>,
    },
    NotInt,
    Syntax,
}

fn scan_options(args: &[Bytes]) -> ScanOpts {
    let mut count = 10usize;
    let mut pattern = None;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - i >= 2;
        if more && is(&args[i], "count") {
            match parse_i64(&args[i + 1]) {
                None => return ScanOpts::NotInt,
                Some(n) if n < 1 => return ScanOpts::Syntax,
                Some(n) => count = usize::try_from(n).unwrap_or(usize::MAX),
            }
        } else if more && is(&args[i], "match") {
            let p = &args[i + 1];
            pattern = (&p[..] != b"*").then(|| p.clone());
        } else {
            return ScanOpts::Syntax;
        }
        i += 2;
    }
    ScanOpts::Ok { count, pattern }
}

pub fn hscan(cx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = parse_cursor(&args[2]) else {
        return cx.err("ERR invalid cursor");
    };
    let opts = scan_options(args);
    let db = cx.db();
    let h = match cx.srv.ks.get_hash(db, &args[1]) {
        Ok(Some(h)) => h,
        Ok(None) => return cx.out.extend_from_slice(b"*2\r\n$1\r\n0\r\n*0\r\n"),
        Err(WrongType) => return cx.wrongtype(),
    };
    let (count, pattern) = match opts {
        ScanOpts::Ok { count, pattern } => (count, pattern),
        ScanOpts::NotInt => return cx.not_int(),
        ScanOpts::Syntax => return cx.syntax_err(),
    };
    let (next, found) = h.scan(cursor, count);
    let out = &mut *cx.out;
    let mut ibuf = itoa::Buffer::new();
    let keep: Vec<(Item<'_>, Item<'_>)> = found
        .into_iter()
        .filter(|(f, _)| match &pattern {
            None => true,
            Some(p) => match f {
                Elem::Str(s) => glob::matches(p, s, false),
                Elem::Int(n) => glob::matches(p, ibuf.format(*n).as_bytes(), false),
            },
        })
        .collect();
    forkdb_protocol::encode_array_header(2, out);
    encode_bulk(itoa::Buffer::new().format(next).as_bytes(), out);
    forkdb_protocol::encode_array_header(keep.len() * 2, out);
    for (f, v) in keep {
        bulk_item(f, out);
        bulk_item(v, out);
    }
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    #[test]
    fn cursor_parses_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b"18446744073709551616"[..],
            b" 1",
            b"1 ",
            b"x",
            b"-",
            b"1.5",
        ] {
            assert_eq!(parse_cursor(bad), None, "{:?}", bad);
        }
    }
}
