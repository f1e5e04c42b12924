//! List commands (Redis 7.0's `t_list.c`), on the quicklist of `types/list.rs`.
//!
//! ```text
//! LPUSH key element [element ...]      RPUSH key element [element ...]
//! LPUSHX key element [element ...]     RPUSHX key element [element ...]
//! LPOP key [count]                     RPOP key [count]
//! LLEN key                             LINDEX key index
//! LRANGE key start stop                LSET key index element
//! LINSERT key BEFORE|AFTER pivot element
//! LREM key count element               LTRIM key start stop
//! LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
//! LMOVE source destination LEFT|RIGHT LEFT|RIGHT
//! RPOPLPUSH source destination
//! LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
//! BLPOP key [key ...] timeout          BRPOP key [key ...] timeout
//! BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
//! BRPOPLPUSH source destination timeout
//! BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
//! ```
//!
//! Arguments are checked in Redis's order (options and integers first where Redis parses them
//! first, then the key's type), so the first error is Redis's. Changes go through the write
//! path; commands that push or pop N elements count N changes, as Redis's `server.dirty += N`.
//! The blocking forms block through `crate::blocking`, and each gives it a `serve_*` function
//! that runs the command for the one key that became ready.

use bytes::Bytes;
use forkdb_snapshot::blob::Elem;

use super::is;
use crate::blocking;
use crate::server::Ctx;
use crate::store::{Value, WrongType};
use crate::types::list::{End, List};
use crate::util::parse_i64;

fn fill(cx: &Ctx) -> i64 {
    cx.srv.config.list_max_listpack_size
}

/// `LEFT`/`RIGHT` (`getListPositionFromObjectOrReply`).
fn position(arg: &[u8]) -> Option<End> {
    if is(arg, "left") {
        Some(End::Head)
    } else if is(arg, "right") {
        Some(End::Tail)
    } else {
        None
    }
}

fn push_generic(cx: &mut Ctx, args: &[Bytes], end: End, only_existing: bool) {
    let fill = fill(cx);
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    let len = match w.get_list() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(None) if only_existing => {
            drop(w);
            return cx.int(0);
        }
        Ok(None) => {
            let mut l = List::new();
            for e in &args[2..] {
                l.push(end, e, fill);
            }
            let n = l.len();
            w.put(Value::List(l), None);
            n
        }
        Ok(Some(_)) => match w.list_mut() {
            Ok(Some(l)) => {
                for e in &args[2..] {
                    l.push(end, e, fill);
                }
                l.len()
            }
            _ => 0,
        },
    };
    w.count_changes((args.len() - 2) as u64);
    drop(w);
    cx.int(len as i64);
}

pub fn lpush(cx: &mut Ctx, args: &[Bytes]) {
    push_generic(cx, args, End::Head, false);
}

pub fn rpush(cx: &mut Ctx, args: &[Bytes]) {
    push_generic(cx, args, End::Tail, false);
}

pub fn lpushx(cx: &mut Ctx, args: &[Bytes]) {
    push_generic(cx, args, End::Head, true);
}

pub fn rpushx(cx: &mut Ctx, args: &[Bytes]) {
    push_generic(cx, args, End::Tail, true);
}

/// Pops up to `count` elements from `key` (a non-empty list), deleting the key when emptied.
/// Returns them, or WrongType; None if the key is missing.
fn pop_n(
    cx: &mut Ctx,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Option<Vec<Vec<u8>>>, WrongType> {
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, key);
    match w.get_list()? {
        None => return Ok(None),
        Some(l) if l.is_empty() => return Ok(None),
        Some(_) => {}
    }
    let mut out = Vec::new();
    let mut empty = false;
    if let Ok(Some(l)) = w.list_mut() {
        while out.len() < count {
            match l.pop(end) {
                Some(v) => out.push(v),
                None => break,
            }
        }
        empty = l.is_empty();
    }
    if empty {
        w.delete();
    }
    w.count_changes(out.len() as u64);
    Ok(Some(out))
}

fn pop_generic(cx: &mut Ctx, args: &[Bytes], end: End) {
    if args.len() > 3 {
        let name = if end == End::Head { "lpop" } else { "rpop" };
        return cx.err(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_i64(a) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return cx.err("ERR value is out of range, must be positive"),
        },
    };
    let db = cx.db();
    let exists = {
        let w = cx.srv.ks.write(db, &args[1]);
        match w.get_list() {
            Err(WrongType) => None,
            Ok(l) => Some(l.is_some_and(|l| !l.is_empty())),
        }
    };
    match exists {
        None => return cx.wrongtype(),
        Some(false) => {
            return if count.is_some() {
                cx.null_array()
            } else {
                cx.null()
            }
        }
        Some(true) => {}
    }
    if count == Some(0) {
        return cx.array(0);
    }
    match pop_n(cx, &args[1], end, count.unwrap_or(1)) {
        Err(WrongType) => cx.wrongtype(),
        Ok(None) => cx.null(),
        Ok(Some(v)) => {
            if count.is_some() {
                cx.array(v.len());
            }
            for e in &v {
                cx.bulk(e);
            }
        }
    }
}

pub fn lpop(cx: &mut Ctx, args: &[Bytes]) {
    pop_generic(cx, args, End::Head);
}

pub fn rpop(cx: &mut Ctx, args: &[Bytes]) {
    pop_generic(cx, args, End::Tail);
}

pub fn llen(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    match cx.srv.ks.get_list(db, &args[1]) {
        Err(WrongType) => cx.wrongtype(),
        Ok(l) => {
            let n = l.map_or(0, List::len);
            cx.int(n as i64)
        }
    }
}

pub fn lindex(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let idx = parse_i64(&args[2]);
    let l = match cx.srv.ks.get_list(db, &args[1]) {
        Err(WrongType) => return cx.wrongtype(),
        Ok(None) => return cx.null(),
        Ok(Some(l)) => l,
    };
    let Some(idx) = idx else {
        return cx.not_int();
    };
    match l.get(idx) {
        Some(e) => {
            let e = e.to_vec();
            cx.bulk(&e)
        }
        None => cx.null(),
    }
}

/// LRANGE's and the pops' index arithmetic (`addListRangeReply`): the elements from `start` to
/// `end` inclusive, negative from the tail, clamped.
fn clamp_range(len: i64, mut start: i64, mut end: i64) -> Option<(i64, i64)> {
    if start < 0 {
        start = len.saturating_add(start);
    }
    if end < 0 {
        end = len.saturating_add(end);
    }
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start, end))
}

pub fn lrange(cx: &mut Ctx, args: &[Bytes]) {
    let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return cx.not_int();
    };
    let db = cx.db();
    // One lookup (one keyspace hit, as Redis counts): the reply is written while the list is
    // borrowed, so the context is split into the server and the output buffer.
    let Ctx { srv, out, .. } = cx;
    let l = match srv.ks.get_list(db, &args[1]) {
        Err(WrongType) => return cx.wrongtype(),
        Ok(None) => return cx.array(0),
        Ok(Some(l)) => l,
    };
    let Some((start, end)) = clamp_range(l.len() as i64, start, end) else {
        forkdb_protocol::encode_array_header(0, out);
        return;
    };
    let n = (end - start + 1) as usize;
    forkdb_protocol::encode_array_header(n, out);
    let mut buf = itoa::Buffer::new();
    for e in l.iter_from(start, false).take(n) {
        match e {
            Elem::Str(s) => forkdb_protocol::encode_bulk(s, out),
            Elem::Int(v) => forkdb_protocol::encode_bulk(buf.format(v).as_bytes(), out),
        }
    }
}

pub fn lset(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    match w.get_list() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(None) => {
            drop(w);
            return cx.err("ERR no such key");
        }
        Ok(Some(l)) => {
            let Some(idx) = parse_i64(&args[2]) else {
                drop(w);
                return cx.not_int();
            };
            if l.get(idx).is_none() {
                drop(w);
                return cx.err("ERR index out of range");
            }
            let fill = cx.srv.config.list_max_listpack_size;
            if let Ok(Some(l)) = w.list_mut() {
                l.set(idx, &args[3], fill);
            }
        }
    }
    drop(w);
    cx.ok();
}

pub fn linsert(cx: &mut Ctx, args: &[Bytes]) {
    let after = if is(&args[2], "after") {
        true
    } else if is(&args[2], "before") {
        false
    } else {
        return cx.syntax_err();
    };
    let fill = fill(cx);
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    match w.get_list() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(None) => {
            drop(w);
            return cx.int(0);
        }
        Ok(Some(l)) => {
            // Look first, so that a missing pivot changes nothing (no hook, no dirty).
            if !l.iter().any(|e| e.eq_bytes(&args[3])) {
                drop(w);
                return cx.int(-1);
            }
        }
    }
    let mut len = 0;
    if let Ok(Some(l)) = w.list_mut() {
        l.insert(&args[3], after, &args[4], fill);
        len = l.len();
    }
    drop(w);
    cx.int(len as i64);
}

pub fn lrem(cx: &mut Ctx, args: &[Bytes]) {
    let Some(count) = parse_i64(&args[2]) else {
        return cx.not_int();
    };
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    match w.get_list() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(None) => {
            drop(w);
            return cx.int(0);
        }
        Ok(Some(l)) => {
            if !l.iter().any(|e| e.eq_bytes(&args[3])) {
                drop(w);
                return cx.int(0);
            }
        }
    }
    let mut removed = 0;
    let mut empty = false;
    if let Ok(Some(l)) = w.list_mut() {
        removed = l.remove(count, &args[3]);
        empty = l.is_empty();
    }
    if empty {
        w.delete();
    }
    w.count_changes(removed as u64);
    drop(w);
    cx.int(removed as i64);
}

pub fn ltrim(cx: &mut Ctx, args: &[Bytes]) {
    let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return cx.not_int();
    };
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    let len = match w.get_list() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(None) => {
            drop(w);
            return cx.ok();
        }
        Ok(Some(l)) => l.len() as i64,
    };
    // Redis's ltrimCommand arithmetic: how many to drop from each end.
    let (ltrim, rtrim) = match clamp_range(len, start, end) {
        None => (len, 0),
        Some((s, e)) => (s, len - e - 1),
    };
    if ltrim + rtrim > 0 {
        let mut empty = false;
        if let Ok(Some(l)) = w.list_mut() {
            l.delete_range(0, ltrim as usize);
            if rtrim > 0 {
                let n = l.len();
                l.delete_range(n - rtrim as usize, rtrim as usize);
            }
            empty = l.is_empty();
        }
        if empty {
            w.delete();
        }
        w.count_changes((ltrim + rtrim) as u64);
    } else {
        // Redis signals the key modified whatever LTRIM removed (a WATCHer's EXEC fails), and
        // counts what it removed: nothing here.
        w.signal_unchanged();
    }
    drop(w);
    cx.ok();
}

pub fn lpos(cx: &mut Ctx, args: &[Bytes]) {
    let (mut rank, mut count, mut maxlen) = (1i64, -1i64, 0i64);
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        if is(opt, "rank") && more {
            j += 1;
            let Some(r) = parse_i64(&args[j]) else {
                return cx.not_int();
            };
            if r == 0 {
                return cx.err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list");
            }
            rank = r;
        } else if is(opt, "count") && more {
            j += 1;
            match parse_i64(&args[j]) {
                None => return cx.not_int(),
                Some(n) if n < 0 => return cx.err("ERR COUNT can't be negative"),
                Some(n) => count = n,
            }
        } else if is(opt, "maxlen") && more {
            j += 1;
            match parse_i64(&args[j]) {
                None => return cx.not_int(),
                Some(n) if n < 0 => return cx.err("ERR MAXLEN can't be negative"),
                Some(n) => maxlen = n,
            }
        } else {
            return cx.syntax_err();
        }
        j += 1;
    }
    let from_tail = rank < 0;
    // C's `rank = -rank`: LONG_MIN stays negative, and then every match is past the rank.
    let rank = rank.wrapping_abs();
    let db = cx.db();
    let l = match cx.srv.ks.get_list(db, &args[1]) {
        Err(WrongType) => return cx.wrongtype(),
        Ok(None) => return if count != -1 { cx.array(0) } else { cx.null() },
        Ok(Some(l)) => l,
    };
    let len = l.len() as i64;
    let it = if from_tail {
        l.iter_from(-1, true)
    } else {
        l.iter_from(0, false)
    };
    let mut found = Vec::new();
    let mut matches = 0i64;
    for (index, e) in it.enumerate() {
        let index = index as i64;
        if maxlen != 0 && index >= maxlen {
            break;
        }
        if e.eq_bytes(&args[2]) {
            matches += 1;
            if matches >= rank {
                found.push(if from_tail { len - index - 1 } else { index });
                if count == -1
                    || (count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count)
                {
                    break;
                }
            }
        }
    }
    if count != -1 {
        cx.array(found.len());
        for i in found {
            cx.int(i);
        }
    } else {
        match found.first() {
            Some(&i) => cx.int(i),
            None => cx.null(),
        }
    }
}

/// What LMOVE did.
enum Moved {
    /// The source is missing (or empty): nothing moved.
    Nothing,
    WrongType,
    Value(Vec<u8>),
}

/// LMOVE's core (`lmoveGenericCommand`): pops from `src` at `from`, pushes to `dst` at `to`.
fn lmove_core(cx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End) -> Moved {
    let fill = fill(cx);
    let db = cx.db();
    match list_state(cx, db, src) {
        Err(WrongType) => return Moved::WrongType,
        Ok(false) => return Moved::Nothing,
        Ok(true) => {}
    }
    if src == dst {
        // One key: a rotation, in one slot.
        let mut w = cx.srv.ks.write(db, src);
        let mut v = None;
        if let Ok(Some(l)) = w.list_mut() {
            if let Some(x) = l.pop(from) {
                l.push(to, &x, fill);
                v = Some(x);
            }
        }
        return v.map_or(Moved::Nothing, Moved::Value);
    }
    if list_state(cx, db, dst).is_err() {
        return Moved::WrongType;
    }
    let v = {
        let mut w = cx.srv.ks.write(db, src);
        let mut v = None;
        let mut empty = false;
        if let Ok(Some(l)) = w.list_mut() {
            v = l.pop(from);
            empty = l.is_empty();
        }
        if empty {
            w.delete();
        }
        v
    };
    let Some(v) = v else {
        return Moved::Nothing;
    };
    let mut w = cx.srv.ks.write(db, dst);
    match w.get_list() {
        Ok(Some(_)) => {
            if let Ok(Some(l)) = w.list_mut() {
                l.push(to, &v, fill);
            }
        }
        _ => {
            let mut l = List::new();
            l.push(to, &v, fill);
            w.put(Value::List(l), None);
        }
    }
    Moved::Value(v)
}

fn lmove_reply(cx: &mut Ctx, m: Moved) {
    match m {
        Moved::Nothing => cx.null(),
        Moved::WrongType => cx.wrongtype(),
        Moved::Value(v) => cx.bulk(&v),
    }
}

pub fn lmove(cx: &mut Ctx, args: &[Bytes]) {
    let (Some(from), Some(to)) = (position(&args[3]), position(&args[4])) else {
        return cx.syntax_err();
    };
    let m = lmove_core(cx, &args[1], &args[2], from, to);
    lmove_reply(cx, m);
}

pub fn rpoplpush(cx: &mut Ctx, args: &[Bytes]) {
    let m = lmove_core(cx, &args[1], &args[2], End::Tail, End::Head);
    lmove_reply(cx, m);
}

/// The parsed options of LMPOP/BLMPOP.
struct Mpop {
    keys: std::ops::Range<usize>,
    end: End,
    count: usize,
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT n]` from `numkeys_idx` (`lmpopGenericCommand`).
fn parse_mpop(cx: &mut Ctx, args: &[Bytes], numkeys_idx: usize) -> Option<Mpop> {
    let (keys, end, count) = super::parse_mpop(cx, args, numkeys_idx, position)?;
    Some(Mpop {
        keys,
        end,
        count: usize::try_from(count).unwrap_or(usize::MAX),
    })
}

/// Pops from the first non-empty list of `keys` and replies `[key, [elements]]`. Returns false
/// (replying nothing) when every key is missing; replies WRONGTYPE for the first key of
/// another type before a non-empty list.
fn mpop_keys(cx: &mut Ctx, keys: &[Bytes], end: End, count: usize) -> bool {
    for k in keys {
        match pop_n(cx, k, end, count) {
            Err(WrongType) => {
                cx.wrongtype();
                return true;
            }
            Ok(None) => continue,
            Ok(Some(v)) => {
                cx.array(2);
                cx.bulk(k);
                cx.array(v.len());
                for e in &v {
                    cx.bulk(e);
                }
                return true;
            }
        }
    }
    false
}

pub fn lmpop(cx: &mut Ctx, args: &[Bytes]) {
    let Some(m) = parse_mpop(cx, args, 1) else {
        return;
    };
    if !mpop_keys(cx, &args[m.keys.clone()], m.end, m.count) {
        cx.null_array();
    }
}

/// Whether `key` holds a non-empty list, looked up as Redis's `lookupKeyWrite` does (lazy
/// expiry, no hit/miss statistics): the check before a command that may change the key.
fn list_state(cx: &mut Ctx, db: usize, key: &[u8]) -> Result<bool, WrongType> {
    let w = cx.srv.ks.write(db, key);
    Ok(w.get_list()?.is_some_and(|l| !l.is_empty()))
}

/// BLPOP/BRPOP (the end comes from the command's name, in `serve_pop`).
fn bpop_generic(cx: &mut Ctx, args: &[Bytes]) {
    let Some(deadline) = blocking::parse_timeout(cx, &args[args.len() - 1]) else {
        return;
    };
    let keys = &args[1..args.len() - 1];
    let serve_now = |cx: &mut Ctx, i: usize| {
        serve_pop(cx, args, &keys[i]);
    };
    blocking::serve_or_block(
        cx,
        keys,
        deadline,
        args,
        list_state,
        serve_now,
        |cx: &mut Ctx| cx.null_array(),
        serve_pop,
    );
}

/// Serves BLPOP/BRPOP from `key`: `[key, element]`.
fn serve_pop(cx: &mut Ctx, args: &[Bytes], key: &[u8]) -> bool {
    let end = if is(&args[0], "blpop") {
        End::Head
    } else {
        End::Tail
    };
    match pop_n(cx, key, end, 1) {
        Ok(Some(v)) if !v.is_empty() => {
            cx.array(2);
            cx.bulk(key);
            cx.bulk(&v[0]);
            true
        }
        _ => false,
    }
}

pub fn blpop(cx: &mut Ctx, args: &[Bytes]) {
    bpop_generic(cx, args);
}

pub fn brpop(cx: &mut Ctx, args: &[Bytes]) {
    bpop_generic(cx, args);
}

pub fn blmpop(cx: &mut Ctx, args: &[Bytes]) {
    let Some(m) = parse_mpop(cx, args, 2) else {
        return;
    };
    let Some(deadline) = blocking::parse_timeout(cx, &args[1]) else {
        return;
    };
    let keys = &args[m.keys.clone()];
    let serve_now = |cx: &mut Ctx, i: usize| {
        mpop_keys(cx, &keys[i..=i], m.end, m.count);
    };
    blocking::serve_or_block(
        cx,
        keys,
        deadline,
        args,
        list_state,
        serve_now,
        |cx: &mut Ctx| cx.null_array(),
        serve_mpop,
    );
}

/// Serves BLMPOP from `key`.
fn serve_mpop(cx: &mut Ctx, args: &[Bytes], key: &[u8]) -> bool {
    let db = cx.db();
    if !matches!(list_state(cx, db, key), Ok(true)) {
        return false;
    }
    // The arguments were validated when the client blocked.
    let numkeys = parse_i64(&args[2]).unwrap_or(1).max(1) as usize;
    let end = args
        .get(3 + numkeys)
        .and_then(|a| position(a))
        .unwrap_or(End::Head);
    let count = args
        .get(5 + numkeys)
        .and_then(|a| parse_i64(a))
        .unwrap_or(1)
        .max(1) as usize;
    mpop_keys(cx, &[Bytes::copy_from_slice(key)], end, count)
}

/// BLMOVE/BRPOPLPUSH: `src`, `dst`, from, to, at arguments 1, 2 and (BLMOVE) 3, 4.
fn blmove_generic(cx: &mut Ctx, args: &[Bytes], from: End, to: End, timeout_idx: usize) {
    let Some(deadline) = blocking::parse_timeout(cx, &args[timeout_idx]) else {
        return;
    };
    let serve_now = |cx: &mut Ctx, _: usize| {
        let m = lmove_core(cx, &args[1], &args[2], from, to);
        lmove_reply(cx, m);
    };
    blocking::serve_or_block(
        cx,
        &args[1..2],
        deadline,
        args,
        list_state,
        serve_now,
        |cx: &mut Ctx| cx.null(),
        serve_move,
    );
}

/// Serves BLMOVE/BRPOPLPUSH from `key` (its source).
fn serve_move(cx: &mut Ctx, args: &[Bytes], key: &[u8]) -> bool {
    let db = cx.db();
    if !matches!(list_state(cx, db, key), Ok(true)) {
        return false;
    }
    let (from, to) = if is(&args[0], "blmove") {
        (
            position(&args[3]).unwrap_or(End::Head),
            position(&args[4]).unwrap_or(End::Head),
        )
    } else {
        (End::Tail, End::Head)
    };
    match lmove_core(cx, key, &args[2], from, to) {
        Moved::Nothing => false,
        m => {
            lmove_reply(cx, m);
            true
        }
    }
}

pub fn blmove(cx: &mut Ctx, args: &[Bytes]) {
    let (Some(from), Some(to)) = (position(&args[3]), position(&args[4])) else {
        return cx.syntax_err();
    };
    blmove_generic(cx, args, from, to, 5);
}

pub fn brpoplpush(cx: &mut Ctx, args: &[Bytes]) {
    blmove_generic(cx, args, End::Tail, End::Head, 3);
}
