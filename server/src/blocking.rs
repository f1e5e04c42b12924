//! Clients blocked on keys: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX,
//! BZMPOP. Redis 7.0's `blocked.c`, on forkdb's one thread.
//!
//! # What it owns, and who may touch what
//!
//! ```text
//! Keyspace.blocking: BlockingKeys    (db, key) -> ids of the clients blocked on it, in the
//!                                    order they blocked; the keys made ready since the last
//!                                    serve. The write path calls `signal` when a key is
//!                                    created or replaced (Redis's `signalKeyAsReady` in dbAdd).
//! Server.blocked: Blocked            id -> what each blocked client waits for: its keys, its
//!                                    command's arguments, the family's `serve` function, its
//!                                    database and protocol; replies made for clients whose
//!                                    task has not picked them up yet.
//! Client.blocked: Option<Wait>       the connection task's side: the wake-up and the deadline.
//! ```
//!
//! # How a client blocks, and how it is woken
//!
//! ```text
//! BLPOP k 0 ─► cmd/list.rs finds every key empty ─► block(cx, keys, deadline, serve)
//!                (registers, sets client.blocked; the command writes no reply)
//! net.rs: the task stops parsing its input, writes what it has, and awaits `wait`
//!
//! LPUSH k v (another client) ─► Slot creates k ─► BlockingKeys::signal(db, k): ready list
//! cmd::execute, after the command (after EXEC for a transaction) ─► serve_ready(srv):
//!     for each ready key, for each client blocked on it, first blocked first:
//!         its family's `serve` runs its command for that one key, writing the reply into a
//!         buffer of the blocked client (its db, its RESP version); false = the key holds no
//!         element of the right type: that client stays blocked, the next is tried
//!         the client leaves every key it waited on, its reply is stored, its task notified
//! net.rs `wait` wakes: takes the reply (or, at the deadline, answers the timeout reply)
//! ```
//!
//! Serving happens synchronously in the command loop, as Redis's `handleClientsBlockedOnKeys`
//! after `call()`: a blocked client is served before the pushing client's next command, so a
//! pipelined `LPUSH k v; LPOP k` from the pusher leaves the element to the blocked client, as
//! in Redis. The woken task only writes the reply out.
//!
//! A key that is deleted, or becomes another type, keeps its clients blocked: `serve` answers
//! false for it and they wait for a list to appear there (7.0's behaviour). A blocking command
//! inside MULTI (`srv.in_exec`) never blocks: it answers its null reply at once (the family
//! checks [`deny_blocking`]). A blocked client that disconnects is forgotten ([`forget`]).
//!
//! This module touches the keyspace only through the commands' `serve` functions (which use
//! the one write path) and its own `BlockingKeys` bookkeeping.

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::client::{Client, ClientMeta};
use crate::server::{Ctx, Server};
use crate::store::Key;

/// Serves a blocked client from the ready `key`: runs its command (`args` as it sent them) for
/// that key alone, replying into the context. Returns false, replying nothing and changing
/// nothing, when the key holds nothing to serve (missing, or another type).
pub type ServeFn = fn(&mut Ctx, &[Bytes], &[u8]) -> bool;

/// Writes the reply of a blocked command that timed out (or CLIENT UNBLOCK ... TIMEOUT).
pub type TimeoutFn = fn(resp3: bool, out: &mut BytesMut);

/// The keys clients are blocked on and the ones made ready: kept by the keyspace so that its
/// write path can signal a key as it creates it.
#[derive(Default)]
pub struct BlockingKeys {
    waiting: HashMap<(usize, Key), VecDeque<u64>>,
    ready: Vec<(usize, Key)>,
    ready_set: HashSet<(usize, Key)>,
}

impl BlockingKeys {
    /// The write path created or replaced `key`: if a client waits on it, it is ready.
    #[inline]
    pub fn signal(&mut self, db: usize, key: &[u8]) {
        if self.waiting.is_empty() {
            return;
        }
        let k = (db, Key::from_slice(key));
        if self.waiting.contains_key(&k) && self.ready_set.insert(k.clone()) {
            self.ready.push(k);
        }
    }

    /// Whether a key was made ready since the last serve.
    #[inline]
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Clients blocked, counted once per key they wait on.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The keys of database `db` that clients wait on (SWAPDB signals those that exist).
    pub fn keys_in(&self, db: usize) -> Vec<Key> {
        self.waiting
            .keys()
            .filter(|(d, _)| *d == db)
            .map(|(_, k)| k.clone())
            .collect()
    }

    fn pop_ready(&mut self) -> Option<(usize, Key)> {
        if self.ready.is_empty() {
            return None;
        }
        let k = self.ready.remove(0);
        self.ready_set.remove(&k);
        Some(k)
    }

    fn add(&mut self, db: usize, key: &[u8], id: u64) {
        self.waiting
            .entry((db, Key::from_slice(key)))
            .or_default()
            .push_back(id);
    }

    fn remove(&mut self, db: usize, key: &[u8], id: u64) {
        let k = (db, Key::from_slice(key));
        if let Some(q) = self.waiting.get_mut(&k) {
            q.retain(|&c| c != id);
            if q.is_empty() {
                self.waiting.remove(&k);
            }
        }
    }

    fn clients_on(&self, db: usize, key: &[u8]) -> Vec<u64> {
        self.waiting
            .get(&(db, Key::from_slice(key)))
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// One blocked client, as the server keeps it.
struct Entry {
    db: usize,
    keys: Vec<Key>,
    args: Vec<Bytes>,
    serve: ServeFn,
    on_timeout: TimeoutFn,
    meta: Rc<ClientMeta>,
    resp3: bool,
    wake: Rc<Notify>,
}

/// The blocked clients (see the module docs).
#[derive(Default)]
pub struct Blocked {
    clients: HashMap<u64, Entry>,
    /// Replies of clients served or unblocked, until their task picks them up.
    replies: HashMap<u64, BytesMut>,
}

impl Blocked {
    /// Clients blocked now (INFO's `blocked_clients`).
    pub fn count(&self) -> usize {
        self.clients.len()
    }

    /// Whether client `id` is blocked (WAIT's clients, in `repl`).
    pub fn is_blocked(&self, id: u64) -> bool {
        self.clients.contains_key(&id)
    }
}

/// The connection task's side of a blocked client.
#[derive(Clone)]
pub struct Wait {
    wake: Rc<Notify>,
    deadline: Option<tokio::time::Instant>,
}

/// Whether a blocking command must answer at once instead of blocking (Redis's
/// `CLIENT_DENY_BLOCKING`): inside MULTI/EXEC.
pub fn deny_blocking(cx: &Ctx) -> bool {
    cx.srv.in_exec
}

/// What a blocking command sees on a key before it may block: whether the key holds something
/// to serve ([`WrongType`] for a key of another type).
pub type ReadyFn = fn(&mut Ctx, usize, &[u8]) -> Result<bool, crate::store::WrongType>;

/// How every blocking command starts (Redis's `blpopCommand` and its kin): the first of `keys`
/// that `ready` finds something in is served now by `serve_now` (with its index); a key of the
/// wrong type answers WRONGTYPE; with nothing to serve, a client that may not block (inside
/// MULTI) gets `denied`, and any other blocks on `keys` until `serve` can serve it.
#[allow(clippy::too_many_arguments)]
pub fn serve_or_block(
    cx: &mut Ctx,
    keys: &[Bytes],
    deadline: Option<tokio::time::Instant>,
    args: &[Bytes],
    ready: ReadyFn,
    serve_now: impl FnOnce(&mut Ctx, usize),
    denied: fn(&mut Ctx),
    serve: ServeFn,
) {
    let db = cx.db();
    let mut first = None;
    for (i, k) in keys.iter().enumerate() {
        match ready(cx, db, k) {
            Err(crate::store::WrongType) => return cx.wrongtype(),
            Ok(true) => {
                first = Some(i);
                break;
            }
            Ok(false) => {}
        }
    }
    match first {
        Some(i) => serve_now(cx, i),
        None if deny_blocking(cx) => denied(cx),
        None => block(cx, keys, deadline, args, serve, null_array_reply),
    }
}

/// Parses a blocking command's timeout in seconds (Redis 7.0's `getTimeoutFromObjectOrReply`
/// with `UNIT_SECONDS`): a float, 0 = forever. Returns the deadline (None: forever), or
/// replies with Redis's error.
pub fn parse_timeout(cx: &mut Ctx, arg: &[u8]) -> Option<Option<tokio::time::Instant>> {
    let secs = match crate::util::parse_f64(arg) {
        Some(v) if !v.is_nan() => v,
        _ => {
            cx.err("ERR timeout is not a float or out of range");
            return None;
        }
    };
    // Redis truncates to whole milliseconds with `(long long)(ftval * 1000.0)`; on x86-64 a
    // value outside `long long` (1e400, inf) becomes LLONG_MIN, hence "negative" for those.
    let ms = (secs * 1000.0).trunc();
    if ms.is_nan() || ms >= i64::MAX as f64 || ms < 0.0 {
        cx.err("ERR timeout is negative");
        return None;
    }
    if ms == 0.0 {
        return Some(None);
    }
    let d = std::time::Duration::from_millis(ms as u64);
    Some(Some(
        tokio::time::Instant::now()
            .checked_add(d)
            .unwrap_or_else(|| {
                tokio::time::Instant::now() + std::time::Duration::from_secs(1 << 40)
            }),
    ))
}

/// Blocks the calling client on `keys` until one is served, the deadline passes or CLIENT
/// UNBLOCK; the command writes no reply now. `args` are kept to run the command again for the
/// key that becomes ready (`serve`).
pub fn block(
    cx: &mut Ctx,
    keys: &[Bytes],
    deadline: Option<tokio::time::Instant>,
    args: &[Bytes],
    serve: ServeFn,
    on_timeout: TimeoutFn,
) {
    let id = cx.client.id();
    let db = cx.db();
    let mut own: Vec<Key> = Vec::with_capacity(keys.len());
    for k in keys {
        // A key named twice waits once (Redis's blockForKeys skips duplicates).
        if own.iter().any(|o| o[..] == k[..]) {
            continue;
        }
        cx.srv.ks.blocking.add(db, k, id);
        own.push(Key::from_slice(k));
    }
    let wake = Rc::new(Notify::new());
    cx.srv.blocked.clients.insert(
        id,
        Entry {
            db,
            keys: own,
            args: args.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
            serve,
            on_timeout,
            meta: cx.client.meta.clone(),
            resp3: cx.client.resp3,
            wake: wake.clone(),
        },
    );
    cx.client.meta.blocked.set(true);
    cx.client.blocked = Some(Wait { wake, deadline });
}

/// Removes a client from the registry and its keys. Returns its entry.
fn unregister(srv: &mut Server, id: u64) -> Option<Entry> {
    let e = srv.blocked.clients.remove(&id)?;
    for k in &e.keys {
        srv.ks.blocking.remove(e.db, k, id);
    }
    e.meta.blocked.set(false);
    // Unblocked: the reply goes out at the end of this turn of the loop, which is when Redis's
    // write of it sets `lastinteraction`. Until then the idle timeout, which spared the client
    // while it was blocked, must not take it for idle since before it blocked and close it
    // with its reply unsent.
    e.meta.last_interaction.set(srv.clock);
    Some(e)
}

/// Ends a client's block with `reply`, waking its task (also WAIT's, from `repl`).
pub fn finish(srv: &mut Server, id: u64, reply: BytesMut) {
    if let Some(e) = unregister(srv, id) {
        srv.blocked.replies.insert(id, reply);
        e.wake.notify_one();
    }
}

/// Serves the clients blocked on the keys made ready since the last call, first blocked first
/// (Redis's `handleClientsBlockedOnKeys`). Serving may make more keys ready (BLMOVE pushes):
/// those are served in the same call.
pub fn serve_ready(srv: &mut Server) {
    while let Some((db, key)) = srv.ks.blocking.pop_ready() {
        for id in srv.ks.blocking.clients_on(db, &key) {
            let Some(e) = srv.blocked.clients.get(&id) else {
                continue;
            };
            let (serve, args, meta, resp3) = (e.serve, e.args.clone(), e.meta.clone(), e.resp3);
            let mut client = Client::new(meta, true);
            client.select(db);
            client.resp3 = resp3;
            let mut out = BytesMut::new();
            let served = {
                let mut cx = Ctx {
                    srv: &mut *srv,
                    client: &mut client,
                    out: &mut out,
                    failed: false,
                };
                serve(&mut cx, &args, &key)
            };
            if !served {
                // Not this client's type (a list client on a key that is now a sorted set,
                // or the key emptied): Redis skips it and tries the next one.
                continue;
            }
            crate::repl::after_served(srv, db, &args, &key, &out);
            srv.stats.total_net_output_bytes += out.len() as u64;
            finish(srv, id, out);
        }
    }
}

/// A blocked client's connection closed (or was killed): it waits no more.
pub fn forget(srv: &mut Server, id: u64) {
    unregister(srv, id);
    srv.blocked.replies.remove(&id);
}

/// The connection task's wait while its client is blocked: until it is served (the reply is
/// appended to `out`), its deadline passes (the timeout reply), or CLIENT UNBLOCK. Returns at
/// once, changing nothing, if the client is not blocked. A wake-up that finds nothing for the
/// client leaves it blocked (the task calls again).
pub async fn wait(srv: &crate::net::Shared, client: &mut Client, out: &mut BytesMut) {
    let Some(w) = client.blocked.clone() else {
        return;
    };
    let timed_out = match w.deadline {
        Some(d) => tokio::select! {
            _ = w.wake.notified() => false,
            _ = tokio::time::sleep_until(d) => true,
        },
        None => {
            w.wake.notified().await;
            false
        }
    };
    let mut s = srv.borrow_mut();
    let id = client.id();
    if let Some(reply) = s.blocked.replies.remove(&id) {
        out.extend_from_slice(&reply);
    } else if timed_out {
        match unregister(&mut s, id) {
            Some(e) => (e.on_timeout)(e.resp3, out),
            None => return,
        }
    } else {
        return;
    }
    client.blocked = None;
}

/// The timeout reply of the list and sorted set commands in 7.0: a null array (`*-1`; `_` in
/// RESP3), BLMOVE and BRPOPLPUSH included (`replyToBlockedClientTimedOut`).
pub fn null_array_reply(resp3: bool, out: &mut BytesMut) {
    forkdb_protocol::encode(&forkdb_protocol::Frame::NullArray, resp3, out);
}

/// CLIENT UNBLOCK client-id [TIMEOUT|ERROR]
pub fn client_unblock(cx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 4 {
        // Redis's `addReplySubcommandSyntaxError` quotes the subcommand as typed.
        let mut msg = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
        msg.extend_from_slice(&args[1]);
        msg.extend_from_slice(b"'. Try CLIENT HELP.");
        return cx.err_bytes(&msg);
    }
    let Some(id) = super::cmd::int_arg(cx, &args[2]) else {
        return;
    };
    let mut error = false;
    if let Some(r) = args.get(3) {
        if super::cmd::is(r, "error") {
            error = true;
        } else if !super::cmd::is(r, "timeout") {
            return cx.err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
        }
    }
    let Ok(id) = u64::try_from(id) else {
        return cx.int(0);
    };
    let Some(e) = cx.srv.blocked.clients.get(&id) else {
        return cx.int(0);
    };
    let resp3 = e.resp3;
    let on_timeout = e.on_timeout;
    let mut reply = BytesMut::new();
    if error {
        let msg = b"UNBLOCKED client unblocked via CLIENT UNBLOCK";
        crate::server::count_error(&mut cx.srv.stats, msg);
        crate::server::encode_error_bytes(msg, &mut reply);
    } else {
        on_timeout(resp3, &mut reply);
    }
    finish(cx.srv, id, reply);
    cx.int(1);
}
