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
use crate::store::{StrEnc, Value};
use crate::util::{incr_by_float, now_ms, parse_i64, IncrFloatError};

/// The bytes of a string value.
fn data(v: &Value) -> &[u8] {
    v.bytes()
}

/// Reads a string key for a command that will write it (a copy): None if missing.
fn current_for_write(cx: &mut Ctx, key: &[u8]) -> Option<Bytes> {
    let db = cx.db();
    cx.srv
        .ks
        .get_for_write(db, key)
        .map(|e| Bytes::copy_from_slice(data(&e.value)))
}

/// Reads a string key for a read command (a copy): None if missing.
pub fn read_str(cx: &mut Ctx, key: &[u8]) -> Option<Bytes> {
    let db = cx.db();
    cx.srv
        .ks
        .get(db, key)
        .map(|e| Bytes::copy_from_slice(data(&e.value)))
}

pub fn get(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    match cx.srv.ks.get(db, &args[1]) {
        Some(e) => {
            let d = data(&e.value);
            forkdb_protocol::encode_bulk(d, cx.out);
        }
        None => cx.null(),
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

/// Stores a string with SET's TTL rule.
fn store(cx: &mut Ctx, key: &[u8], value: &[u8], ttl: Ttl) {
    let db = cx.db();
    let expire = match ttl {
        Ttl::Keep => None,
        Ttl::At(ms) => Some(ms),
        Ttl::Clear | Ttl::Persist => Some(-1),
    };
    cx.srv.ks.set_str(db, key, value, expire);
    cx.srv.ks.dirty += 1;
}

pub fn set(cx: &mut Ctx, args: &[Bytes]) {
    let Some((nx, xx, get, ttl)) = parse_set_options(cx, args, 3, false) else {
        return;
    };
    let db = cx.db();
    let old = if get { read_str(cx, &args[1]) } else { None };
    // Only NX and XX need to know whether the key exists; a plain SET overwrites in one lookup.
    let found = (nx || xx) && cx.srv.ks.get_for_write(db, &args[1]).is_some();
    if (nx && found) || (xx && !found) {
        if get {
            reply_opt(cx, old);
        } else {
            cx.null();
        }
        return;
    }
    store(cx, &args[1], &args[2], ttl);
    if get {
        reply_opt(cx, old);
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
    if cx.srv.ks.get_for_write(db, &args[1]).is_some() {
        return cx.int(0);
    }
    store(cx, &args[1], &args[2], Ttl::Clear);
    cx.int(1);
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
    let old = read_str(cx, &args[1]);
    store(cx, &args[1], &args[2], Ttl::Clear);
    reply_opt(cx, old);
}

pub fn getdel(cx: &mut Ctx, args: &[Bytes]) {
    let old = read_str(cx, &args[1]);
    if old.is_some() {
        let db = cx.db();
        cx.srv.ks.delete(db, &args[1]);
        cx.srv.ks.dirty += 1;
    }
    reply_opt(cx, old);
}

pub fn getex(cx: &mut Ctx, args: &[Bytes]) {
    let Some((_, _, _, ttl)) = parse_set_options(cx, args, 2, true) else {
        return;
    };
    let Some(v) = read_str(cx, &args[1]) else {
        return cx.null();
    };
    let db = cx.db();
    match ttl {
        Ttl::At(ms) if ms <= now_ms() => {
            cx.srv.ks.delete(db, &args[1]);
            cx.srv.ks.dirty += 1;
        }
        Ttl::At(ms) => {
            cx.srv.ks.set_expire(db, &args[1], ms);
            cx.srv.ks.dirty += 1;
        }
        Ttl::Persist => {
            if cx.srv.ks.peek(db, &args[1]).is_some_and(|e| e.expire >= 0) {
                cx.srv.ks.set_expire(db, &args[1], -1);
                cx.srv.ks.dirty += 1;
            }
        }
        Ttl::Keep | Ttl::Clear => {}
    }
    cx.bulk(&v);
}

pub fn mget(cx: &mut Ctx, args: &[Bytes]) {
    cx.array(args.len() - 1);
    let db = cx.db();
    for k in &args[1..] {
        match cx.srv.ks.get(db, k) {
            Some(e) => forkdb_protocol::encode_bulk(data(&e.value), cx.out),
            None => cx.null(),
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
        if cx.srv.ks.get_for_write(db, &pair[0]).is_some() {
            return cx.int(0);
        }
    }
    for pair in args[1..].chunks(2) {
        store(cx, &pair[0], &pair[1], Ttl::Clear);
    }
    cx.int(1);
}

/// Redis's `checkStringLength`: a string may not grow past proto-max-bulk-len.
fn check_len(cx: &mut Ctx, total: u64) -> bool {
    if total > cx.srv.config.proto_max_bulk_len {
        cx.err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        return false;
    }
    true
}

pub fn append(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let cur = current_for_write(cx, &args[1]);
    let new = match cur {
        None => args[2].to_vec(),
        Some(old) => {
            if !check_len(cx, old.len() as u64 + args[2].len() as u64) {
                return;
            }
            let mut v = Vec::with_capacity(old.len() + args[2].len());
            v.extend_from_slice(&old);
            v.extend_from_slice(&args[2]);
            v
        }
    };
    let len = new.len() as i64;
    // A new key holds the argument as SET would (embstr/int); a grown one is raw, as in Redis.
    let value = if cx.srv.ks.peek(db, &args[1]).is_none() {
        Value::string(&new)
    } else {
        Value::raw(new)
    };
    cx.srv.ks.set_keep_ttl(db, &args[1], value);
    cx.srv.ks.dirty += 1;
    cx.int(len);
}

pub fn strlen(cx: &mut Ctx, args: &[Bytes]) {
    let n = read_str(cx, &args[1]).map(|d| d.len()).unwrap_or(0);
    cx.int(n as i64);
}

pub fn getrange(cx: &mut Ctx, args: &[Bytes]) {
    let (Some(mut start), Some(mut end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return cx.not_int();
    };
    let Some(s) = read_str(cx, &args[1]) else {
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
    let cur = current_for_write(cx, &args[1]);
    let old_len = cur.as_ref().map(|c| c.len()).unwrap_or(0);
    if value.is_empty() {
        return cx.int(old_len as i64);
    }
    let Some(end) = (offset as u64).checked_add(value.len() as u64) else {
        return cx.err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    };
    if !check_len(cx, end) {
        return;
    }
    let end = end as usize;
    let mut buf = cur.map(|c| c.to_vec()).unwrap_or_default();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[offset as usize..end].copy_from_slice(value);
    let len = buf.len() as i64;
    cx.srv.ks.set_keep_ttl(db, &args[1], Value::raw(buf));
    cx.srv.ks.dirty += 1;
    cx.int(len);
}

/// Outcome of adding to a stored integer in place.
enum Incr {
    Missing,
    NotInt,
    Overflow,
    Done(i64),
}

fn incr_generic(cx: &mut Ctx, key: &[u8], by: i64) {
    let db = cx.db();
    // One lookup: the new digits are written over the old ones inside the entry.
    let outcome = match cx.srv.ks.get_for_write(db, key) {
        None => Incr::Missing,
        Some(e) => {
            let Value::Str { data, enc } = &mut e.value;
            match parse_i64(data).map(|v| v.checked_add(by)) {
                None => Incr::NotInt,
                Some(None) => Incr::Overflow,
                Some(Some(new)) => {
                    let mut digits = itoa::Buffer::new();
                    let digits = digits.format(new).as_bytes();
                    if !data.overwrite(digits) {
                        *data = crate::store::Str::from_slice(digits);
                    }
                    *enc = StrEnc::Int;
                    Incr::Done(new)
                }
            }
        }
    };
    let new = match outcome {
        Incr::NotInt => return cx.not_int(),
        Incr::Overflow => return cx.err("ERR increment or decrement would overflow"),
        Incr::Missing => {
            cx.srv.ks.set_keep_ttl(db, key, Value::int(by));
            by
        }
        Incr::Done(new) => {
            cx.srv.ks.touch(db, key);
            new
        }
    };
    cx.srv.ks.dirty += 1;
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
    let cur = current_for_write(cx, &args[1]);
    match incr_by_float(cur.as_deref(), &args[2]) {
        Ok(text) => {
            cx.srv
                .ks
                .set_keep_ttl(db, &args[1], Value::created(text.clone()));
            cx.srv.ks.dirty += 1;
            cx.bulk(&text);
        }
        Err(IncrFloatError::NotFloat) => cx.err("ERR value is not a valid float"),
        Err(IncrFloatError::NanOrInfinity) => cx.err("ERR increment would produce NaN or Infinity"),
    }
}
