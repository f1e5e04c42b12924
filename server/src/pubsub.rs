//! Pub/Sub: who is subscribed to what, and delivering a published message.
//!
//! This module owns [`PubSub`] (a field of the server: channel → subscribers, pattern →
//! subscribers, shard channel → subscribers) and each connection's [`Subs`] (what it is
//! subscribed to, kept in its `Client`). The commands are in `cmd/pubsub.rs`; they and the end
//! of a connection (net.rs) are the only callers.
//!
//! A message goes to the other subscribers' connections the way MONITOR lines do (see `diag`):
//! it is appended to the subscriber's `ClientMeta::feed` and its task is woken through
//! `feed_ready`; the server is one thread, so the publisher's command delivers to every
//! subscriber before its own reply is written, as Redis's `publishCommand` does. A subscriber
//! that publishes gets its own message in its reply buffer, before PUBLISH's reply, as in Redis
//! where both go to the same output buffer. The `pubsub` class of `client-output-buffer-limit`
//! is checked at each delivery (Redis checks it in `_addReplyProtoToList`), so a subscriber that
//! does not read is closed before its feed grows past the hard limit.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use forkdb_protocol as proto;
use indexmap::{IndexMap, IndexSet};
use tracing::warn;

use crate::client::{Client, ClientMeta};
use crate::config::ClientClass;
use crate::server::Server;

/// The three kinds of subscription, each with its own registry and reply words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    pub fn subscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
            Kind::Shard => b"ssubscribe",
        }
    }

    pub fn unsubscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
            Kind::Shard => b"sunsubscribe",
        }
    }
}

type Registry = IndexMap<Bytes, Vec<Rc<ClientMeta>>, foldhash::fast::RandomState>;

/// The server's side: every subscribed name and its subscribers, in subscription order.
#[derive(Default)]
pub struct PubSub {
    pub channels: Registry,
    pub patterns: Registry,
    pub shard: Registry,
}

impl PubSub {
    fn registry(&mut self, kind: Kind) -> &mut Registry {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }
}

/// A connection's side: what it is subscribed to.
#[derive(Default)]
pub struct Subs {
    pub channels: IndexSet<Bytes>,
    pub patterns: IndexSet<Bytes>,
    pub shard: IndexSet<Bytes>,
}

impl Subs {
    pub fn set(&mut self, kind: Kind) -> &mut IndexSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// The count SUBSCRIBE and friends reply with: channels and patterns together, shard
    /// channels on their own (Redis 7.0's `clientSubscriptionsCount` and
    /// `clientShardSubscriptionsCount`).
    pub fn count_for(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }

    /// Redis's `CLIENT_PUBSUB`: subscribed to anything (RESP2 is then restricted).
    pub fn active(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard.is_empty())
    }
}

/// Publishes the client's counts for CLIENT LIST (`sub=`, `psub=`, `ssub=`, flag `P`).
fn publish_counts(client: &Client) {
    let m = &client.meta;
    m.sub.set(client.subs.channels.len());
    m.psub.set(client.subs.patterns.len());
    m.ssub.set(client.subs.shard.len());
}

/// Adds a subscription; false if the client had it already.
pub fn subscribe(srv: &mut Server, client: &mut Client, kind: Kind, name: &[u8]) -> bool {
    if client.subs.set(kind).contains(name) {
        return false;
    }
    // Copied: the argument may be a slice of the shared read buffer.
    let name = Bytes::copy_from_slice(name);
    client.subs.set(kind).insert(name.clone());
    srv.pubsub
        .registry(kind)
        .entry(name)
        .or_default()
        .push(client.meta.clone());
    publish_counts(client);
    true
}

/// Removes a subscription; false if the client did not have it.
pub fn unsubscribe(srv: &mut Server, client: &mut Client, kind: Kind, name: &[u8]) -> bool {
    if !client.subs.set(kind).shift_remove(name) {
        return false;
    }
    let reg = srv.pubsub.registry(kind);
    if let Some(list) = reg.get_mut(name) {
        list.retain(|m| m.id != client.meta.id);
        if list.is_empty() {
            reg.swap_remove(name);
        }
    }
    publish_counts(client);
    true
}

/// Leaves every subscription without replying (RESET, and a connection that ends).
pub fn forget(srv: &mut Server, client: &mut Client) {
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        let names: Vec<Bytes> = client.subs.set(kind).iter().cloned().collect();
        for name in names {
            unsubscribe(srv, client, kind, &name);
        }
    }
}

/// `*3 message channel payload`, or a RESP3 push; `pmessage` has the pattern first.
fn encode_message(
    out: &mut BytesMut,
    resp3: bool,
    word: &[u8],
    pattern: Option<&[u8]>,
    channel: &[u8],
    msg: &[u8],
) {
    let n = if pattern.is_some() { 4 } else { 3 };
    out.extend_from_slice(if resp3 { b">" } else { b"*" });
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
    proto::encode_bulk(word, out);
    if let Some(p) = pattern {
        proto::encode_bulk(p, out);
    }
    proto::encode_bulk(channel, out);
    proto::encode_bulk(msg, out);
}

/// Delivers a message to every subscriber of `channel` (and, unless `shard`, of each pattern
/// that matches it). Returns how many received it (PUBLISH's reply).
pub fn publish(
    srv: &mut Server,
    client: &Client,
    out: &mut BytesMut,
    channel: &[u8],
    msg: &[u8],
    shard: bool,
) -> usize {
    let limit = srv.config.client_obuf_limits[ClientClass::Pubsub as usize];
    let now = srv.clock;
    let deliver = |m: &Rc<ClientMeta>, word: &[u8], pattern: Option<&[u8]>| {
        if m.id == client.meta.id {
            encode_message(out, client.resp3, word, pattern, channel, msg);
            return;
        }
        if m.killed.get() {
            return;
        }
        let mut feed = m.feed.borrow_mut();
        let before = feed.len();
        encode_message(&mut feed, m.resp.get() == 3, word, pattern, channel, msg);
        m.obuf_pending
            .set(m.obuf_pending.get() + (feed.len() - before));
        if m.obuf_limit_reached(&limit, now) {
            warn!(
                "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
                m.info_line()
            );
            *feed = BytesMut::new();
            drop(feed);
            m.request_kill();
            return;
        }
        drop(feed);
        m.feed_ready.notify_one();
    };
    let mut receivers = 0;
    let (reg, word): (&Registry, &[u8]) = if shard {
        (&srv.pubsub.shard, b"smessage")
    } else {
        (&srv.pubsub.channels, b"message")
    };
    let mut deliver = deliver;
    if let Some(list) = reg.get(channel) {
        for m in list {
            deliver(m, word, None);
            receivers += 1;
        }
    }
    if !shard {
        for (pattern, list) in &srv.pubsub.patterns {
            if !crate::glob::matches(pattern, channel, false) {
                continue;
            }
            for m in list {
                deliver(m, b"pmessage", Some(pattern));
                receivers += 1;
            }
        }
    }
    receivers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_frames_as_redis_sends_them() {
        let mut out = BytesMut::new();
        encode_message(&mut out, false, b"message", None, b"c1", b"hello");
        assert_eq!(
            &out[..],
            b"*3\r\n$7\r\nmessage\r\n$2\r\nc1\r\n$5\r\nhello\r\n"
        );
        out.clear();
        encode_message(&mut out, true, b"pmessage", Some(b"c*"), b"c1", b"x");
        assert_eq!(
            &out[..],
            b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nc1\r\n$1\r\nx\r\n"
        );
    }

    #[test]
    fn counts_are_redis_s() {
        let mut s = Subs::default();
        s.channels.insert(Bytes::from_static(b"a"));
        s.patterns.insert(Bytes::from_static(b"b*"));
        s.shard.insert(Bytes::from_static(b"s"));
        assert_eq!(s.count_for(Kind::Channel), 2);
        assert_eq!(s.count_for(Kind::Pattern), 2);
        assert_eq!(s.count_for(Kind::Shard), 1);
        assert!(s.active());
        assert!(!Subs::default().active());
    }
}
