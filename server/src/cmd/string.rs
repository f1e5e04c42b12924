//! String commands.
//!
//! ```text
//! GET key                       SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ts|KEEPTTL]
//! SETNX key value               SETEX key seconds value        PSETEX key ms value
//! GETSET key value              GETDEL key
//! GETEX key [EX s|PX ms|EXAT ts|PXAT ts|PERSIST]
//! MGET key [key ...]            MSET key value [key value ...] MSETNX key value [key value ...]
//! APPEND key value              STRLEN key
//! GETRANGE key start end        SETRANGE key offset value
//! INCR key   DECR key   INCRBY key n   DECRBY key n   INCRBYFLOAT key f
//! ```

use bytes::Bytes;

use super::is;
use crate::server::Ctx;
use crate::store::{Value, WrongType};
use crate::util::{incr_by_float, now_ms, parse_i64, IncrFloatError};

/// The command already replied (with WRONGTYPE): it stops there.
struct Replied;

/// Reads a string key for a read command (a copy): None if missing. A key of another type is
/// answered with WRONGTYPE here.
fn read_str(cx: &mut Ctx, key: &[u8]) -> Result<Option<Bytes>, Replied> {
    let db = cx.db();
    match cx.srv.ks.get_str(db, key) {
        Ok(s) => Ok(s.map(|s| Bytes::copy_from_slice(s))),
        Err(WrongType) => {
            cx.wrongtype();
            Err(Replied)
        }
    }
}

pub fn get(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    match cx.srv.ks.get_str(db, &args[1]) {
        Ok(Some(s)) => forkdb_protocol::encode_bulk(s, cx.out),
        Ok(None) => cx.null(),
        Err(WrongType) => cx.wrongtype(),
    }
}

/// How a SET-like command changes the TTL.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ttl {
    /// Clear any TTL.
    Clear,
    /// KEEPTTL / GETEX without options: leave it.
    Keep,
    /// GETEX PERSIST.
    Persist,
    /// An absolute expiry in ms.
    At(i64),
}

const EX: u8 = 1;
const PX: u8 = 2;
const EXAT: u8 = 3;
const PXAT: u8 = 4;

/// Turns `value` of an EX/PX/EXAT/PXAT option into an absolute ms time, or replies with
/// Redis's errors (`getExpireMillisecondsOrReply`).
fn expire_at(cx: &mut Ctx, kind: u8, value: &[u8], cmd: &str) -> Option<i64> {
    let Some(n) = parse_i64(value) else {
        cx.not_int();
        return None;
    };
    let invalid = |cx: &mut Ctx| cx.err(&format!("ERR invalid expire time in '{cmd}' command"));
    if n <= 0 || (matches!(kind, EX | EXAT) && n > i64::MAX / 1000) {
        invalid(cx);
        return None;
    }
    let ms = if matches!(kind, EX | EXAT) {
        n * 1000
    } else {
        n
    };
    if matches!(kind, EX | PX) {
        let now = now_ms();
        if ms > i64::MAX - now {
            invalid(cx);
            return None;
        }
        Some(ms + now)
    } else {
        Some(ms)
    }
}

/// Parses SET's (or GETEX's) options. Returns (nx, xx, get, ttl).
fn parse_set_options(
    cx: &mut Ctx,
    args: &[Bytes],
    from: usize,
    is_getex: bool,
) -> Option<(bool, bool, bool, Ttl)> {
    let (mut nx, mut xx, mut get, mut keepttl, mut persist) = (false, false, false, false, false);
    let mut exp: Option<(u8, Bytes)> = None;
    let mut j = from;
    while j < args.len() {
        let a = &args[j];
        let next = args.get(j + 1);
        let no_expire = exp.is_none() && !keepttl && !persist;
        if !is_getex && is(a, "nx") && !xx {
            nx = true;
        } else if !is_getex && is(a, "xx") && !nx {
            xx = true;
        } else if !is_getex && is(a, "get") {
            get = true;
        } else if !is_getex && is(a, "keepttl") && no_expire {
            keepttl = true;
        } else if is_getex && is(a, "persist") && no_expire {
            persist = true;
        } else if no_expire
            && next.is_some()
            && (is(a, "ex") || is(a, "px") || is(a, "exat") || is(a, "pxat"))
        {
            let kind = if is(a, "ex") {
                EX
            } else if is(a, "px") {
                PX
            } else if is(a, "exat") {
                EXAT
            } else {
                PXAT
            };
            exp = next.map(|v| (kind, v.clone()));
            j += 1;
        } else {
            cx.syntax_err();
            return None;
        }
        j += 1;
    }
    let cmd = if is_getex { "getex" } else { "set" };
    let ttl = match exp {
        Some((kind, v)) => Ttl::At(expire_at(cx, kind, &v, cmd)?),
        None if keepttl => Ttl::Keep,
        None if persist => Ttl::Persist,
        None if is_getex => Ttl::Keep,
        None => Ttl::Clear,
    };
    Some((nx, xx, get, ttl))
}

impl Ttl {
    /// The `expire` argument of `Slot::set_str`.
    fn expire(self) -> Option<i64> {
        match self {
            Ttl::Keep => None,
            Ttl::At(ms) => Some(ms),
            Ttl::Clear | Ttl::Persist => Some(-1),
        }
    }
}

/// Stores a string with SET's TTL rule.
fn store(cx: &mut Ctx, key: &[u8], value: &[u8], ttl: Ttl) {
    let db = cx.db();
    cx.srv.ks.write(db, key).set_str(value, ttl.expire());
}

pub fn set(cx: &mut Ctx, args: &[Bytes]) {
    let Some((nx, xx, get, ttl)) = parse_set_options(cx, args, 3, false) else {
        return;
    };
    let db = cx.db();
    let Ok(old) = (if get {
        read_str(cx, &args[1])
    } else {
        Ok(None)
    }) else {
        return;
    };
    // One lookup: the slot knows whether the key exists and overwrites in place.
    let mut w = cx.srv.ks.write(db, &args[1]);
    let found = w.exists();
    let refused = (nx && found) || (xx && !found);
    if !refused {
        w.set_str(&args[2], ttl.expire());
    }
    drop(w);
    if get {
        reply_opt(cx, old);
    } else if refused {
        cx.null();
    } else {
        cx.ok();
    }
}

fn reply_opt(cx: &mut Ctx, v: Option<Bytes>) {
    match v {
        Some(b) => cx.bulk(&b),
        None => cx.null(),
    }
}

pub fn setnx(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    let set = !w.exists();
    if set {
        w.set_str(&args[2], Ttl::Clear.expire());
    }
    drop(w);
    cx.int(i64::from(set));
}

fn setex_generic(cx: &mut Ctx, args: &[Bytes], kind: u8, cmd: &str) {
    if let Some(at) = expire_at(cx, kind, &args[2], cmd) {
        store(cx, &args[1], &args[3], Ttl::At(at));
        cx.ok();
    }
}

pub fn setex(cx: &mut Ctx, args: &[Bytes]) {
    setex_generic(cx, args, EX, "setex");
}

pub fn psetex(cx: &mut Ctx, args: &[Bytes]) {
    setex_generic(cx, args, PX, "psetex");
}

pub fn getset(cx: &mut Ctx, args: &[Bytes]) {
    let Ok(old) = read_str(cx, &args[1]) else {
        return;
    };
    store(cx, &args[1], &args[2], Ttl::Clear);
    reply_opt(cx, old);
}

pub fn getdel(cx: &mut Ctx, args: &[Bytes]) {
    let Ok(old) = read_str(cx, &args[1]) else {
        return;
    };
    if old.is_some() {
        let db = cx.db();
        cx.srv.ks.delete(db, &args[1]);
    }
    reply_opt(cx, old);
}

pub fn getex(cx: &mut Ctx, args: &[Bytes]) {
    let Some((_, _, _, ttl)) = parse_set_options(cx, args, 2, true) else {
        return;
    };
    let Ok(v) = read_str(cx, &args[1]) else {
        return;
    };
    let Some(v) = v else {
        return cx.null();
    };
    let db = cx.db();
    let mut w = cx.srv.ks.write_after_read(db, &args[1]);
    match ttl {
        Ttl::At(ms) if ms <= now_ms() => {
            w.delete();
        }
        Ttl::At(ms) => {
            w.set_expire(ms);
        }
        Ttl::Persist => {
            if w.entry().is_some_and(|e| e.expire >= 0) {
                w.set_expire(-1);
            }
        }
        Ttl::Keep | Ttl::Clear => {}
    }
    drop(w);
    cx.bulk(&v);
}

/// MGET answers null for a missing key and for a key of another type (no WRONGTYPE).
pub fn mget(cx: &mut Ctx, args: &[Bytes]) {
    cx.array(args.len() - 1);
    let db = cx.db();
    for k in &args[1..] {
        match cx.srv.ks.get_str(db, k) {
            Ok(Some(s)) => forkdb_protocol::encode_bulk(s, cx.out),
            Ok(None) | Err(WrongType) => cx.null(),
        }
    }
}

pub fn mset(cx: &mut Ctx, args: &[Bytes]) {
    if args.len().is_multiple_of(2) {
        return cx.err("ERR wrong number of arguments for 'mset' command");
    }
    for pair in args[1..].chunks(2) {
        store(cx, &pair[0], &pair[1], Ttl::Clear);
    }
    cx.ok();
}

pub fn msetnx(cx: &mut Ctx, args: &[Bytes]) {
    if args.len().is_multiple_of(2) {
        return cx.err("ERR wrong number of arguments for 'msetnx' command");
    }
    let db = cx.db();
    for pair in args[1..].chunks(2) {
        if cx.srv.ks.lookup_write(db, &pair[0]).is_some() {
            return cx.int(0);
        }
    }
    for pair in args[1..].chunks(2) {
        store(cx, &pair[0], &pair[1], Ttl::Clear);
    }
    cx.int(1);
}

/// Redis's `checkStringLength` error: a string may not grow past proto-max-bulk-len.
fn too_long(cx: &mut Ctx) {
    cx.err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
}

pub fn append(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let max = cx.srv.config.proto_max_bulk_len;
    let mut w = cx.srv.ks.write(db, &args[1]);
    let old_len = match w.get_str() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        // A new key holds the argument as SET would (embstr/int); a grown one is raw, as in Redis.
        Ok(None) => {
            w.put(Value::string(&args[2]), None);
            drop(w);
            return cx.int(args[2].len() as i64);
        }
        Ok(Some(old)) => old.len(),
    };
    let len = old_len + args[2].len();
    if len as u64 > max {
        drop(w);
        return too_long(cx);
    }
    // Grown in its own buffer (geometrically, see `Str::grow_zeroed`), not copied whole: a
    // copy per APPEND is quadratic, and under a snapshot it dirties every page of the value.
    if let Ok(buf) = w.str_bytes_mut(len) {
        if let Some(tail) = buf.get_mut(old_len..len) {
            tail.copy_from_slice(&args[2]);
        }
    }
    drop(w);
    cx.int(len as i64);
}

pub fn strlen(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    match cx.srv.ks.get_str(db, &args[1]) {
        Ok(s) => {
            let n = s.map_or(0, |s| s.len());
            cx.int(n as i64);
        }
        Err(WrongType) => cx.wrongtype(),
    }
}

pub fn getrange(cx: &mut Ctx, args: &[Bytes]) {
    let (Some(mut start), Some(mut end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return cx.not_int();
    };
    let Ok(s) = read_str(cx, &args[1]) else {
        return;
    };
    let Some(s) = s else {
        return cx.bulk(b"");
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return cx.bulk(b"");
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return cx.bulk(b"");
    }
    cx.bulk(&s[start as usize..=end as usize]);
}

pub fn setrange(cx: &mut Ctx, args: &[Bytes]) {
    let Some(offset) = parse_i64(&args[2]) else {
        return cx.not_int();
    };
    if offset < 0 {
        return cx.err("ERR offset is out of range");
    }
    let value = &args[3];
    let db = cx.db();
    let max = cx.srv.config.proto_max_bulk_len;
    let mut w = cx.srv.ks.write(db, &args[1]);
    let old = match w.get_str() {
        Ok(old) => old,
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
    };
    let old_len = old.map_or(0, |s| s.len());
    if value.is_empty() {
        drop(w);
        return cx.int(old_len as i64);
    }
    let end = match (offset as u64).checked_add(value.len() as u64) {
        Some(end) if end <= max => end as usize,
        _ => {
            drop(w);
            return too_long(cx);
        }
    };
    // Written in place (`Slot::str_bytes_mut`): a copy would dirty every page of a large value.
    let len = match w.str_bytes_mut(end) {
        Ok(buf) => {
            if let Some(dst) = buf.get_mut(offset as usize..end) {
                dst.copy_from_slice(value);
            }
            buf.len()
        }
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
    };
    drop(w);
    cx.int(len as i64);
}

fn incr_generic(cx: &mut Ctx, key: &[u8], by: i64) {
    let db = cx.db();
    // One lookup: the new digits are written over the old ones inside the entry.
    let mut w = cx.srv.ks.write(db, key);
    let old = match w.get_str() {
        Ok(None) => 0,
        Ok(Some(s)) => match parse_i64(s) {
            Some(n) => n,
            None => {
                drop(w);
                return cx.not_int();
            }
        },
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
    };
    let Some(new) = old.checked_add(by) else {
        drop(w);
        return cx.err("ERR increment or decrement would overflow");
    };
    w.set_int(new);
    drop(w);
    cx.int(new);
}

pub fn incr(cx: &mut Ctx, args: &[Bytes]) {
    incr_generic(cx, &args[1], 1);
}

pub fn decr(cx: &mut Ctx, args: &[Bytes]) {
    incr_generic(cx, &args[1], -1);
}

pub fn incrby(cx: &mut Ctx, args: &[Bytes]) {
    if let Some(by) = super::int_arg(cx, &args[2]) {
        incr_generic(cx, &args[1], by);
    }
}

pub fn decrby(cx: &mut Ctx, args: &[Bytes]) {
    let Some(by) = super::int_arg(cx, &args[2]) else {
        return;
    };
    if by == i64::MIN {
        return cx.err("ERR decrement would overflow");
    }
    incr_generic(cx, &args[1], -by);
}

pub fn incrbyfloat(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    let cur = match w.get_str() {
        Ok(cur) => cur,
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
    };
    match incr_by_float(cur.map(|s| &s[..]), &args[2]) {
        Ok(text) => {
            w.put(Value::created(text.clone()), None);
            drop(w);
            cx.bulk(&text);
        }
        Err(e) => {
            drop(w);
            match e {
                IncrFloatError::NotFloat => cx.err("ERR value is not a valid float"),
                IncrFloatError::NanOrInfinity => {
                    cx.err("ERR increment would produce NaN or Infinity")
                }
            }
        }
    }
}
