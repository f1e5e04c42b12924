//! Expiry commands.
//!
//! ```text
//! EXPIRE key seconds [NX|XX|GT|LT]          PEXPIRE key milliseconds [NX|XX|GT|LT]
//! EXPIREAT key unix-seconds [NX|XX|GT|LT]   PEXPIREAT key unix-ms [NX|XX|GT|LT]
//! TTL key   PTTL key   PERSIST key   EXPIRETIME key   PEXPIRETIME key
//! ```
//!
//! Keys expire lazily when a command touches them and actively in the cron, which samples keys
//! with a TTL as Redis's `activeExpireCycle` does (see `store::Keyspace::active_expire`).

use bytes::Bytes;

use crate::server::Ctx;
use crate::util::now_ms;

const NX: u8 = 1;
const XX: u8 = 2;
const GT: u8 = 4;
const LT: u8 = 8;

fn expire_generic(cx: &mut Ctx, args: &[Bytes], seconds: bool, relative: bool, name: &str) {
    let mut flags = 0u8;
    for a in &args[3..] {
        flags |= match crate::util::lower(a).as_str() {
            "nx" => NX,
            "xx" => XX,
            "gt" => GT,
            "lt" => LT,
            _ => return cx.err_quoting("ERR Unsupported option ", a, ""),
        };
    }
    if flags & NX != 0 && flags & (XX | GT | LT) != 0 {
        return cx.err("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if flags & GT != 0 && flags & LT != 0 {
        return cx.err("ERR GT and LT options at the same time are not compatible");
    }
    let Some(mut when) = super::int_arg(cx, &args[2]) else {
        return;
    };
    let invalid = format!("ERR invalid expire time in '{name}' command");
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return cx.err(&invalid);
        }
        when *= 1000;
    }
    let now = now_ms();
    let base = if relative { now } else { 0 };
    if when > i64::MAX - base {
        return cx.err(&invalid);
    }
    when += base;
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    let Some(current) = w.entry().map(|e| e.expire) else {
        drop(w);
        return cx.int(0);
    };
    let refused = (flags & NX != 0 && current != -1)
        || (flags & XX != 0 && current == -1)
        || (flags & GT != 0 && (current == -1 || when <= current))
        || (flags & LT != 0 && current != -1 && when >= current);
    if !refused {
        if when <= now {
            w.delete();
        } else {
            w.set_expire(when);
        }
    }
    drop(w);
    cx.int(i64::from(!refused));
}

pub fn expire(cx: &mut Ctx, args: &[Bytes]) {
    expire_generic(cx, args, true, true, "expire");
}

pub fn pexpire(cx: &mut Ctx, args: &[Bytes]) {
    expire_generic(cx, args, false, true, "pexpire");
}

pub fn expireat(cx: &mut Ctx, args: &[Bytes]) {
    expire_generic(cx, args, true, false, "expireat");
}

pub fn pexpireat(cx: &mut Ctx, args: &[Bytes]) {
    expire_generic(cx, args, false, false, "pexpireat");
}

/// The key's expiry for TTL-like replies: None if missing, Some(-1) if persistent.
fn current_expire(cx: &mut Ctx, key: &[u8]) -> Option<i64> {
    let db = cx.db();
    cx.srv.ks.get(db, key).map(|e| e.expire)
}

fn ttl_generic(cx: &mut Ctx, key: &[u8], ms: bool) {
    match current_expire(cx, key) {
        None => cx.int(-2),
        Some(-1) => cx.int(-1),
        Some(at) => {
            let ttl = (at - now_ms()).max(0);
            cx.int(if ms { ttl } else { (ttl + 500) / 1000 });
        }
    }
}

pub fn ttl(cx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(cx, &args[1], false);
}

pub fn pttl(cx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(cx, &args[1], true);
}

fn expiretime_generic(cx: &mut Ctx, key: &[u8], ms: bool) {
    match current_expire(cx, key) {
        None => cx.int(-2),
        Some(-1) => cx.int(-1),
        Some(at) => cx.int(if ms { at } else { at / 1000 }),
    }
}

pub fn expiretime(cx: &mut Ctx, args: &[Bytes]) {
    expiretime_generic(cx, &args[1], false);
}

pub fn pexpiretime(cx: &mut Ctx, args: &[Bytes]) {
    expiretime_generic(cx, &args[1], true);
}

pub fn persist(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    let had_ttl = w.entry().is_some_and(|e| e.expire >= 0);
    if had_ttl {
        w.set_expire(-1);
    }
    drop(w);
    cx.int(i64::from(had_ttl));
}
