//! Transactions.
//!
//! ```text
//! MULTI    EXEC    DISCARD    WATCH key [key ...]    UNWATCH
//! ```
//!
//! Between MULTI and EXEC commands are checked (existence, arity, auth) and queued; a command
//! that fails those checks makes EXEC answer `-EXECABORT`. A write to a WATCHed key by anyone
//! (including expiry) marks the watcher in `Keyspace::dirty_cas`, and its EXEC answers a null array.

use bytes::Bytes;

use crate::server::Ctx;

pub fn multi(cx: &mut Ctx, _args: &[Bytes]) {
    if cx.client.multi.is_some() {
        return cx.err("ERR MULTI calls can not be nested");
    }
    cx.client.multi = Some(Vec::new());
    cx.client.multi_error = false;
    cx.client.meta.multi.set(0);
    cx.ok();
}

/// Leaves MULTI state, dropping the queue.
pub fn discard_state(cx: &mut Ctx) {
    cx.client.multi = None;
    cx.client.multi_error = false;
    cx.client.multi_flags = 0;
    cx.client.multi_inv_flags = 0;
    cx.client.meta.multi.set(-1);
}

/// Forgets every WATCH of this client.
pub fn unwatch_all(cx: &mut Ctx) {
    let id = cx.client.id();
    for (db, key) in std::mem::take(&mut cx.client.watched) {
        cx.srv.ks.unwatch(db, &key, id);
    }
    cx.srv.ks.dirty_cas.remove(&id);
}

pub fn discard(cx: &mut Ctx, _args: &[Bytes]) {
    if cx.client.multi.is_none() {
        return cx.err("ERR DISCARD without MULTI");
    }
    discard_state(cx);
    unwatch_all(cx);
    cx.ok();
}

pub fn exec(cx: &mut Ctx, _args: &[Bytes]) {
    let Some(queue) = cx.client.multi.take() else {
        return cx.err("ERR EXEC without MULTI");
    };
    let id = cx.client.id();
    // A watched key that has expired since WATCH counts as modified (Redis 7's isWatchedKeyExpired).
    let expired_since_watch = cx
        .client
        .watched
        .iter()
        .any(|(db, key)| cx.srv.ks.watched_key_expired(*db, key, id));
    let aborted = cx.client.multi_error;
    let dirty = expired_since_watch || cx.srv.ks.dirty_cas.contains(&id);
    discard_state(cx);
    unwatch_all(cx);
    if aborted {
        return cx.err("EXECABORT Transaction discarded because of previous errors.");
    }
    if dirty {
        return cx.null_array();
    }
    cx.array(queue.len());
    cx.srv.in_exec = true;
    for args in queue {
        match super::resolve(&args) {
            Ok(spec) => super::call(cx.srv, cx.client, spec, &args, cx.out),
            Err(msg) => cx.err_bytes(&msg),
        }
    }
    cx.srv.in_exec = false;
}

pub fn watch(cx: &mut Ctx, args: &[Bytes]) {
    if cx.client.multi.is_some() {
        return cx.err("ERR WATCH inside MULTI is not allowed");
    }
    let db = cx.db();
    let id = cx.client.id();
    for key in &args[1..] {
        if cx.client.watched.iter().any(|(d, k)| *d == db && k == key) {
            continue;
        }
        let key = Bytes::copy_from_slice(key);
        cx.srv.ks.watch(db, &key, id);
        cx.client.watched.push((db, key));
    }
    cx.ok();
}

pub fn unwatch(cx: &mut Ctx, _args: &[Bytes]) {
    unwatch_all(cx);
    cx.ok();
}
