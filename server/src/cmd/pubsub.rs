//! The Pub/Sub commands, as Redis 7.0 has them on a server without cluster mode.
//!
//! ```text
//! SUBSCRIBE channel [channel ...]        PSUBSCRIBE pattern [pattern ...]
//! UNSUBSCRIBE [channel ...]              PUNSUBSCRIBE [pattern ...]
//! SSUBSCRIBE shardchannel [...]          SUNSUBSCRIBE [shardchannel ...]
//! PUBLISH channel message                SPUBLISH shardchannel message
//! PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT
//!      | SHARDCHANNELS [pattern] | SHARDNUMSUB [shardchannel ...] | HELP
//! ```
//!
//! The registry and delivery are in `crate::pubsub`; the RESP2 subscribed-mode restriction is
//! checked in dispatch (`cmd::execute`), and PING's reply in that mode in `conn::ping`.

use bytes::Bytes;
use forkdb_protocol as proto;

use crate::pubsub::{self, Kind};
use crate::server::Ctx;

/// `*3 (un)subscribe name count`, a push in RESP3; `name` None is the null of an UNSUBSCRIBE
/// of nothing.
fn reply(cx: &mut Ctx, word: &[u8], name: Option<&[u8]>, count: usize) {
    cx.out.extend_from_slice(if cx.client.resp3 {
        b">3\r\n"
    } else {
        b"*3\r\n"
    });
    cx.bulk(word);
    match name {
        Some(n) => cx.bulk(n),
        None => cx.null(),
    }
    cx.int(count as i64);
}

fn subscribe_generic(cx: &mut Ctx, args: &[Bytes], kind: Kind) {
    for name in &args[1..] {
        pubsub::subscribe(cx.srv, cx.client, kind, name);
        let count = cx.client.subs.count_for(kind);
        reply(cx, kind.subscribe_word(), Some(name), count);
    }
}

fn unsubscribe_generic(cx: &mut Ctx, args: &[Bytes], kind: Kind) {
    if args.len() > 1 {
        for name in &args[1..] {
            pubsub::unsubscribe(cx.srv, cx.client, kind, name);
            let count = cx.client.subs.count_for(kind);
            reply(cx, kind.unsubscribe_word(), Some(name), count);
        }
        return;
    }
    // Every subscription of the kind, one reply each; none at all is one reply with a null.
    let names: Vec<Bytes> = cx.client.subs.set(kind).iter().cloned().collect();
    if names.is_empty() {
        let count = cx.client.subs.count_for(kind);
        return reply(cx, kind.unsubscribe_word(), None, count);
    }
    for name in names {
        pubsub::unsubscribe(cx.srv, cx.client, kind, &name);
        let count = cx.client.subs.count_for(kind);
        reply(cx, kind.unsubscribe_word(), Some(&name), count);
    }
}

pub fn subscribe(cx: &mut Ctx, args: &[Bytes]) {
    subscribe_generic(cx, args, Kind::Channel);
}

pub fn psubscribe(cx: &mut Ctx, args: &[Bytes]) {
    subscribe_generic(cx, args, Kind::Pattern);
}

pub fn ssubscribe(cx: &mut Ctx, args: &[Bytes]) {
    subscribe_generic(cx, args, Kind::Shard);
}

pub fn unsubscribe(cx: &mut Ctx, args: &[Bytes]) {
    unsubscribe_generic(cx, args, Kind::Channel);
}

pub fn punsubscribe(cx: &mut Ctx, args: &[Bytes]) {
    unsubscribe_generic(cx, args, Kind::Pattern);
}

pub fn sunsubscribe(cx: &mut Ctx, args: &[Bytes]) {
    unsubscribe_generic(cx, args, Kind::Shard);
}

fn publish_generic(cx: &mut Ctx, args: &[Bytes], shard: bool) {
    let n = pubsub::publish(cx.srv, cx.client, cx.out, &args[1], &args[2], shard);
    // replication: Redis propagates PUBLISH whatever it changed (`forceCommandPropagation`),
    // so that a replica's subscribers get the master's messages.
    crate::repl::force_propagate(cx.srv, cx.client.db, args);
    cx.int(n as i64);
}

pub fn publish(cx: &mut Ctx, args: &[Bytes]) {
    publish_generic(cx, args, false);
}

pub fn spublish(cx: &mut Ctx, args: &[Bytes]) {
    publish_generic(cx, args, true);
}

/// CHANNELS / SHARDCHANNELS: the names with subscribers that match the pattern (all without).
fn channels_generic(cx: &mut Ctx, args: &[Bytes], shard: bool) {
    let reg = if shard {
        &cx.srv.pubsub.shard
    } else {
        &cx.srv.pubsub.channels
    };
    let pattern = args.get(2);
    let names: Vec<Bytes> = reg
        .keys()
        .filter(|c| pattern.is_none_or(|p| crate::glob::matches(p, c, false)))
        .cloned()
        .collect();
    cx.array(names.len());
    for n in &names {
        proto::encode_bulk(n, cx.out);
    }
}

fn numsub_generic(cx: &mut Ctx, args: &[Bytes], shard: bool) {
    // A flat array of pairs, in RESP3 too (Redis 7.0's `addReplyArrayLen`).
    cx.array((args.len() - 2) * 2);
    for name in &args[2..] {
        let reg = if shard {
            &cx.srv.pubsub.shard
        } else {
            &cx.srv.pubsub.channels
        };
        let n = reg.get(&name[..]).map_or(0, Vec::len);
        cx.bulk(name);
        cx.int(n as i64);
    }
}

pub fn pubsub_channels(cx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 3 {
        return arity_err(cx, args);
    }
    channels_generic(cx, args, false);
}

pub fn pubsub_shardchannels(cx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 3 {
        return arity_err(cx, args);
    }
    channels_generic(cx, args, true);
}

/// More than one pattern: Redis's `addReplySubcommandSyntaxError` (the subcommand's arity, -2,
/// lets the extra arguments through dispatch).
fn arity_err(cx: &mut Ctx, args: &[Bytes]) {
    let sub = &args[1][..args[1].len().min(128)];
    cx.err_quoting(
        "ERR unknown subcommand or wrong number of arguments for '",
        sub,
        "'. Try PUBSUB HELP.",
    );
}

pub fn pubsub_numsub(cx: &mut Ctx, args: &[Bytes]) {
    numsub_generic(cx, args, false);
}

pub fn pubsub_shardnumsub(cx: &mut Ctx, args: &[Bytes]) {
    numsub_generic(cx, args, true);
}

pub fn pubsub_numpat(cx: &mut Ctx, _args: &[Bytes]) {
    cx.int(cx.srv.pubsub.patterns.len() as i64);
}

pub fn pubsub_help(cx: &mut Ctx, _args: &[Bytes]) {
    super::conn::help_reply(
        cx,
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
}
