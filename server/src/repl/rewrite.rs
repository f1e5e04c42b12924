//! What a command becomes in the replication stream: itself, or what Redis 7.0 rewrites it to
//! when replaying it on a replica would not give the same data (a relative TTL, a random pop,
//! a float sum, a blocking pop). The references are Redis's `rewriteClientCommandVector` and
//! `alsoPropagate` calls in `t_string.c`, `expire.c`, `t_set.c`, `t_list.c`, `t_zset.c`,
//! `t_hash.c`, `cluster.c` (RESTORE) and `blocked.c`.
//!
//! The rewrite reads what the command left: the key's expiry time in the keyspace (without
//! touching access metadata), or the command's own reply (the members SPOP popped, the value
//! INCRBYFLOAT stored, the key a blocking pop served).

use bytes::{Bytes, BytesMut};
use forkdb_protocol::{Frame, FrameDecoder};

use crate::cmd::is;
use crate::server::Server;

type Ops = Vec<(usize, Vec<Bytes>)>;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn num(n: i64) -> Bytes {
    Bytes::from(n.to_string())
}

/// The reply as a frame (None if it is not one complete frame, which a handler never leaves).
fn reply_frame(reply: &[u8]) -> Option<Frame> {
    let mut buf = BytesMut::from(reply);
    FrameDecoder::new().decode(&mut buf).ok().flatten()
}

fn bulk(f: &Frame) -> Option<Bytes> {
    match f {
        Frame::Bulk(b) => Some(b.clone()),
        Frame::Simple(s) => Some(Bytes::from(s.clone())),
        _ => None,
    }
}

fn items(f: &Frame) -> Option<&[Frame]> {
    match f {
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => Some(v),
        _ => None,
    }
}

/// The key's expiry time (ms), if it exists: None if it does not.
fn expire_of(srv: &Server, db: usize, key: &[u8]) -> Option<i64> {
    srv.ks.peek(db, key).map(|e| e.expire)
}

/// A deleted key as Redis propagates it.
fn del(key: &Bytes) -> Vec<Bytes> {
    vec![b("DEL"), key.clone()]
}

/// The ops that stand for `args` having run in `db` and replied `reply`.
pub fn rewrite(srv: &Server, db: usize, name: &str, args: &[Bytes], reply: &[u8]) -> Ops {
    let one = |argv: Vec<Bytes>| vec![(db, argv)];
    let same = || vec![(db, args.to_vec())];
    match name {
        // SET with EX/PX/EXAT/PXAT → SET key value PXAT ms (t_string.c, setGenericCommand:
        // 7.0.15 rewrites a PXAT too, so the stream always says `PXAT`, as the suite's
        // "All TTL in commands are propagated as absolute timestamp" expects).
        "set" => {
            let relative = args[3..]
                .iter()
                .any(|a| is(a, "ex") || is(a, "px") || is(a, "exat") || is(a, "pxat"));
            match (relative, expire_of(srv, db, &args[1])) {
                (true, Some(at)) if at >= 0 => one(vec![
                    b("SET"),
                    args[1].clone(),
                    args[2].clone(),
                    b("PXAT"),
                    num(at),
                ]),
                _ => same(),
            }
        }
        "setex" | "psetex" => match expire_of(srv, db, &args[1]) {
            Some(at) if at >= 0 => one(vec![
                b("SET"),
                args[1].clone(),
                args[3].clone(),
                b("PXAT"),
                num(at),
            ]),
            _ => same(),
        },
        "getset" => one(vec![b("SET"), args[1].clone(), args[2].clone()]),
        "getdel" => one(del(&args[1])),
        "getex" => match expire_of(srv, db, &args[1]) {
            None => one(del(&args[1])),
            Some(_) if args[2..].iter().any(|a| is(a, "persist")) => {
                one(vec![b("PERSIST"), args[1].clone()])
            }
            Some(at) if at >= 0 => one(vec![b("PEXPIREAT"), args[1].clone(), num(at)]),
            Some(_) => same(),
        },
        // The EXPIRE family → PEXPIREAT key ms [options] (expire.c), or DEL when the time
        // had passed and the key went.
        "expire" | "pexpire" | "expireat" | "pexpireat" => match expire_of(srv, db, &args[1]) {
            None => one(del(&args[1])),
            Some(at) if at >= 0 => {
                let mut argv = vec![b("PEXPIREAT"), args[1].clone(), num(at)];
                argv.extend(args[3..].iter().cloned());
                one(argv)
            }
            Some(_) => same(),
        },
        "incrbyfloat" => match reply_frame(reply).as_ref().and_then(bulk) {
            Some(v) => one(vec![b("SET"), args[1].clone(), v, b("KEEPTTL")]),
            None => same(),
        },
        "hincrbyfloat" => match reply_frame(reply).as_ref().and_then(bulk) {
            Some(v) => one(vec![b("HSET"), args[1].clone(), args[2].clone(), v]),
            None => same(),
        },
        // SPOP → SREM of what it popped, one member per SREM as 7.0; the whole set popped →
        // DEL (t_set.c).
        "spop" => {
            let Some(f) = reply_frame(reply) else {
                return same();
            };
            if args.len() == 2 {
                return match bulk(&f) {
                    Some(m) => one(vec![b("SREM"), args[1].clone(), m]),
                    None => Vec::new(),
                };
            }
            if expire_of(srv, db, &args[1]).is_none() {
                return one(del(&args[1]));
            }
            items(&f)
                .unwrap_or(&[])
                .iter()
                .filter_map(bulk)
                .map(|m| (db, vec![b("SREM"), args[1].clone(), m]))
                .collect()
        }
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" | "blmpop" | "lmpop" | "zmpop" | "bzmpop"
        | "blmove" | "brpoplpush" => {
            let key = reply_frame(reply)
                .as_ref()
                .and_then(items)
                .and_then(|v| v.first())
                .and_then(bulk);
            match key {
                Some(key) => served(db, args, &key, reply),
                // BLMOVE/BRPOPLPUSH reply with the element, not the key.
                None if matches!(name, "blmove" | "brpoplpush") => served(db, args, &[], reply),
                None => Vec::new(),
            }
        }
        // RESTORE with a relative TTL → the absolute time and ABSTTL (cluster.c).
        "restore" => {
            let relative = crate::util::parse_i64(&args[2]).is_some_and(|t| t > 0)
                && !args[4..].iter().any(|a| is(a, "absttl"));
            match (relative, expire_of(srv, db, &args[1])) {
                (true, Some(at)) if at >= 0 => {
                    let mut argv = args.to_vec();
                    argv[2] = num(at);
                    argv.push(b("ABSTTL"));
                    one(argv)
                }
                _ => same(),
            }
        }
        _ => same(),
    }
}

/// A blocking pop (served at once, or later from a ready `key`) as Redis propagates it: the
/// non-blocking pop of what it took (t_list.c, t_zset.c, blocked.c).
pub fn served(db: usize, args: &[Bytes], key: &[u8], reply: &[u8]) -> Ops {
    let key = Bytes::copy_from_slice(key);
    let name = crate::util::lower(&args[0]);
    let frame = reply_frame(reply);
    // The number of elements an MPOP reply ([key, [elements]]) holds.
    let popped = || {
        frame
            .as_ref()
            .and_then(items)
            .and_then(|v| v.get(1))
            .and_then(items)
            .map_or(1, <[Frame]>::len) as i64
    };
    // The LEFT/RIGHT or MIN/MAX token of an MPOP: after `numkeys` keys.
    let side = |numkeys_idx: usize| {
        let n = crate::util::parse_i64(&args[numkeys_idx])
            .unwrap_or(1)
            .max(1) as usize;
        args.get(numkeys_idx + 1 + n).cloned()
    };
    let argv = match name.as_str() {
        "blpop" => vec![b("LPOP"), key],
        "brpop" => vec![b("RPOP"), key],
        "bzpopmin" => vec![b("ZPOPMIN"), key],
        "bzpopmax" => vec![b("ZPOPMAX"), key],
        "lmpop" | "blmpop" => {
            let at = if name == "lmpop" { 1 } else { 2 };
            let cmd = match side(at) {
                Some(s) if is(&s, "right") => "RPOP",
                _ => "LPOP",
            };
            vec![b(cmd), key, num(popped())]
        }
        "zmpop" | "bzmpop" => {
            let at = if name == "zmpop" { 1 } else { 2 };
            let cmd = match side(at) {
                Some(s) if is(&s, "max") => "ZPOPMAX",
                _ => "ZPOPMIN",
            };
            vec![b(cmd), key, num(popped())]
        }
        "blmove" => vec![
            b("LMOVE"),
            args[1].clone(),
            args[2].clone(),
            args[3].clone(),
            args[4].clone(),
        ],
        "brpoplpush" => vec![b("RPOPLPUSH"), args[1].clone(), args[2].clone()],
        _ => args.to_vec(),
    };
    vec![(db, argv)]
}
