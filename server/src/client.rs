//! Per-connection state.
//!
//! A connection's task owns its [`Client`] (database, auth, MULTI queue, WATCHed keys) and touches it
//! on every command. What other connections must see (CLIENT LIST, CLIENT KILL, the idle timeout) is
//! in [`ClientMeta`], shared through the server's client registry with `Cell`s: the server is
//! single-threaded, so these are plain loads and stores.
//!
//! # Buffer memory
//!
//! The connection task (net.rs) owns the query and reply buffers; it publishes their sizes here
//! after every batch, so that CLIENT LIST (`qbuf`, `qbuf-free`, `omem`, `tot-mem`), INFO
//! (`mem_clients_normal`, `client_recent_max_*_buffer`) and the cron (the idle resize, the
//! output buffer soft limit) read them without touching the buffers.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::config::ObufLimit;

/// Reply bytes Redis keeps in a client's fixed 16 KiB reply buffer (`PROTO_REPLY_CHUNK_BYTES`)
/// before it starts its reply list. `omem`, and so `client-output-buffer-limit`, count only the
/// bytes past it, as Redis counts only the list.
pub const REPLY_STATIC_BYTES: usize = 16 * 1024;

/// What a connection costs besides its buffers: this struct, the task's [`Client`], the request
/// parser and the task itself (Redis counts `zmalloc_size(c)` the same way).
pub const CLIENT_STRUCT_BYTES: usize = std::mem::size_of::<ClientMeta>()
    + std::mem::size_of::<Client>()
    + std::mem::size_of::<forkdb_protocol::RequestParser>()
    + 512;

/// What the registry knows of a connection.
pub struct ClientMeta {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub created: Instant,
    pub name: RefCell<Option<Bytes>>,
    pub lib_name: RefCell<Option<Bytes>>,
    pub lib_ver: RefCell<Option<Bytes>>,
    pub db: Cell<usize>,
    pub last_cmd: Cell<&'static str>,
    pub last_interaction: Cell<Instant>,
    pub resp: Cell<u8>,
    /// Commands queued in MULTI, or -1 outside MULTI (CLIENT LIST's `multi=`).
    pub multi: Cell<i64>,
    /// Query buffer: bytes buffered and not yet parsed, and bytes allocated for it.
    pub qbuf: Cell<usize>,
    pub qbuf_alloc: Cell<usize>,
    /// Reply buffer: bytes allocated, and reply bytes not yet written to the socket.
    pub obuf_alloc: Cell<usize>,
    pub obuf_pending: Cell<usize>,
    /// When the pending replies were first seen over the soft output buffer limit (Redis's
    /// `obuf_soft_limit_reached_time`); `None` while under it.
    pub obuf_soft_since: Cell<Option<Instant>>,
    /// The cron asks an idle connection to give back its buffers' free space.
    pub resize: Notify,
    pub from_loopback: bool,
    /// Set by CLIENT KILL or the idle timeout; the task closes the connection when woken.
    pub killed: Cell<bool>,
    pub kill: Notify,
    /// Blocked by BLPOP and friends (CLIENT LIST's `b` flag).
    pub blocked: Cell<bool>,
    /// MONITOR: the client is a monitor; lines other clients' commands made, not yet written;
    /// woken when a line is added (see `diag`).
    pub monitor: Cell<bool>,
    pub feed: RefCell<bytes::BytesMut>,
    pub feed_ready: Notify,
    /// Bytes of the running command's arguments (`argv-mem`), and of the commands queued in
    /// MULTI with Redis's per-argument pointer (`multi-mem`).
    pub argv_mem: Cell<usize>,
    pub multi_mem: Cell<usize>,
    /// SYNC/PSYNC made this connection a replica (CLIENT LIST's `S` flag and `TYPE replica`).
    pub replica: Cell<bool>,
    /// This is the link to our master (CLIENT LIST's `M` flag and `TYPE master`).
    pub master_link: Cell<bool>,
    /// Pub/Sub: channels, patterns and shard channels subscribed to (CLIENT LIST's `sub=`,
    /// `psub=`, `ssub=`; see `pubsub`).
    pub sub: Cell<usize>,
    pub psub: Cell<usize>,
    pub ssub: Cell<usize>,
}

impl ClientMeta {
    pub fn new(id: u64, addr: String, laddr: String, fd: i32, from_loopback: bool) -> Self {
        let now = Instant::now();
        ClientMeta {
            id,
            addr,
            laddr,
            fd,
            created: now,
            name: RefCell::new(None),
            lib_name: RefCell::new(None),
            lib_ver: RefCell::new(None),
            db: Cell::new(0),
            last_cmd: Cell::new("NULL"),
            last_interaction: Cell::new(now),
            resp: Cell::new(2),
            multi: Cell::new(-1),
            qbuf: Cell::new(0),
            qbuf_alloc: Cell::new(0),
            obuf_alloc: Cell::new(0),
            obuf_pending: Cell::new(0),
            obuf_soft_since: Cell::new(None),
            resize: Notify::new(),
            from_loopback,
            killed: Cell::new(false),
            kill: Notify::new(),
            blocked: Cell::new(false),
            monitor: Cell::new(false),
            feed: RefCell::new(bytes::BytesMut::new()),
            feed_ready: Notify::new(),
            argv_mem: Cell::new(0),
            multi_mem: Cell::new(0),
            replica: Cell::new(false),
            master_link: Cell::new(false),
            sub: Cell::new(0),
            psub: Cell::new(0),
            ssub: Cell::new(0),
        }
    }

    /// Redis's `CLIENT_PUBSUB`: subscribed to something. Such a client is of the `pubsub`
    /// type (CLIENT LIST/KILL TYPE) and output buffer limit class.
    pub fn is_pubsub(&self) -> bool {
        self.sub.get() + self.psub.get() + self.ssub.get() > 0
    }

    pub fn request_kill(&self) {
        self.killed.set(true);
        self.kill.notify_one();
    }

    /// Reply bytes waiting beyond Redis's fixed reply buffer: CLIENT LIST's `omem`, and what
    /// `client-output-buffer-limit` is compared with (`getClientOutputBufferMemoryUsage`).
    pub fn omem(&self) -> usize {
        self.obuf_pending.get().saturating_sub(REPLY_STATIC_BYTES)
    }

    /// Everything this connection holds: CLIENT LIST's `tot-mem`, summed in INFO's
    /// `mem_clients_normal` (`getClientMemoryUsage`).
    pub fn total_memory(&self) -> usize {
        self.qbuf_alloc.get() + self.obuf_alloc.get() + CLIENT_STRUCT_BYTES
    }

    /// Redis's `checkClientOutputBufferLimits`: true once the pending replies reach the hard
    /// limit, or have stayed at or above the soft limit for more than its seconds. Starts and
    /// clears the soft-limit clock as a side effect.
    pub fn obuf_limit_reached(&self, limit: &ObufLimit, now: Instant) -> bool {
        let used = self.omem() as u64;
        if used == 0 {
            self.obuf_soft_since.set(None);
            return false;
        }
        let hard = limit.hard > 0 && used >= limit.hard;
        let mut soft = limit.soft > 0 && used >= limit.soft;
        if soft {
            match self.obuf_soft_since.get() {
                None => {
                    self.obuf_soft_since.set(Some(now));
                    soft = false;
                }
                Some(since) => {
                    soft = now.duration_since(since).as_secs() > limit.soft_seconds;
                }
            }
        } else {
            self.obuf_soft_since.set(None);
        }
        hard || soft
    }

    /// One line of CLIENT LIST / CLIENT INFO, fields in Redis 7.0's order.
    pub fn info_line(&self) -> String {
        let now = Instant::now();
        let name = self.name.borrow();
        let name = name
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        let multi = self.multi.get();
        let flags = if self.monitor.get() {
            "O"
        } else if self.replica.get() {
            "S"
        } else if self.master_link.get() {
            "M"
        } else if self.blocked.get() {
            "b"
        } else if multi >= 0 {
            "x"
        } else if self.is_pubsub() {
            "P"
        } else {
            "N"
        };
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl={} oll={} omem={} tot-mem={} events=r cmd={} user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            now.duration_since(self.created).as_secs(),
            now.duration_since(self.last_interaction.get()).as_secs(),
            flags,
            self.db.get(),
            self.sub.get(),
            self.psub.get(),
            self.ssub.get(),
            multi,
            self.qbuf.get(),
            self.qbuf_alloc.get().saturating_sub(self.qbuf.get()),
            self.argv_mem.get(),
            if multi >= 0 { self.multi_mem.get() } else { 0 },
            // Redis's fixed reply buffer (`rbs`, `rbp`, `obl`) is the first 16 KiB of ours,
            // its reply list (`oll`, `omem`) the rest.
            self.obuf_alloc.get().min(REPLY_STATIC_BYTES),
            self.obuf_pending.get().min(REPLY_STATIC_BYTES),
            self.obuf_pending.get().min(REPLY_STATIC_BYTES),
            usize::from(self.omem() > 0),
            self.omem(),
            self.total_memory(),
            self.last_cmd.get(),
            self.resp.get(),
        )
    }
}

/// The connection task's own state.
pub struct Client {
    pub meta: Rc<ClientMeta>,
    pub db: usize,
    pub authenticated: bool,
    pub resp3: bool,
    /// Commands queued between MULTI and EXEC.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A command failed to queue (unknown, wrong arity, ...): EXEC must abort.
    pub multi_error: bool,
    /// The flags of every queued command, OR-ed: EXEC is checked with them (MISCONF, OOM).
    pub multi_flags: u32,
    /// The flags every queued command lacks, OR-ed (Redis's `mstate.cmd_inv_flags`): EXEC on a
    /// stale replica is refused if any queued command lacks `stale`.
    pub multi_inv_flags: u32,
    /// WATCHed keys: (db, key). Whether each was already expired is kept by the keyspace.
    pub watched: Vec<(usize, Bytes)>,
    /// Reply, then close (QUIT, protocol errors).
    pub close_after_reply: bool,
    /// Blocked by BLPOP and friends: the task waits on this (see `blocking.rs`).
    pub blocked: Option<crate::blocking::Wait>,
    /// What REPLCONF told, and whether SYNC/PSYNC made this connection a replica (see `repl`).
    pub repl: crate::repl::Handshake,
    /// While the network layer runs one read's commands: the clock reading that ends the last
    /// command's time and starts the next one's (see `cmd::call`), so that a pipeline of N
    /// commands reads the clock N + 1 times rather than 2N. `None` outside such a batch.
    pub batch_clock: Option<std::time::Instant>,
    /// Pub/Sub subscriptions (see `pubsub`).
    pub subs: crate::pubsub::Subs,
}

impl Client {
    pub fn new(meta: Rc<ClientMeta>, authenticated: bool) -> Self {
        Client {
            meta,
            db: 0,
            authenticated,
            resp3: false,
            multi: None,
            multi_error: false,
            multi_flags: 0,
            multi_inv_flags: 0,
            watched: Vec::new(),
            close_after_reply: false,
            blocked: None,
            repl: Default::default(),
            batch_clock: None,
            subs: Default::default(),
        }
    }

    pub fn id(&self) -> u64 {
        self.meta.id
    }

    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.meta.db.set(db);
    }
}

/// Seconds of history behind INFO's `client_recent_max_input_buffer` and
/// `client_recent_max_output_buffer` (Redis's `CLIENTS_PEAK_MEM_USAGE_SLOTS`).
const PEAK_SLOTS: usize = 8;

thread_local! {
    /// Redis's `ClientsPeakMemInput` / `ClientsPeakMemOutput`: per second (slot = unix time
    /// modulo 8), the largest query buffer and the largest pending reply the cron saw.
    static PEAKS: Cell<[(usize, usize); PEAK_SLOTS]> = const { Cell::new([(0, 0); PEAK_SLOTS]) };
}

/// Called by the cron once per tick before it looks at the clients: zeroes the slot after the
/// current one, so that it holds only the next second's samples (`clientsCron`).
pub fn peaks_new_tick(unix_secs: u64) {
    PEAKS.with(|p| {
        let mut v = p.get();
        v[(unix_secs as usize + 1) % PEAK_SLOTS] = (0, 0);
        p.set(v);
    });
}

/// Records one client's buffers in the current second's slot (`clientsCronTrackExpansiveClients`).
pub fn peaks_track(unix_secs: u64, meta: &ClientMeta) {
    PEAKS.with(|p| {
        let mut v = p.get();
        let slot = &mut v[unix_secs as usize % PEAK_SLOTS];
        slot.0 = slot.0.max(meta.qbuf_alloc.get());
        slot.1 = slot.1.max(meta.omem());
        p.set(v);
    });
}

/// (input, output): the largest buffers seen in the last 8 seconds (`getExpansiveClientsInfo`).
pub fn recent_max_buffers() -> (usize, usize) {
    PEAKS.with(|p| {
        p.get()
            .iter()
            .fold((0, 0), |(i, o), &(a, b)| (i.max(a), o.max(b)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn meta_with_pending(bytes: usize) -> ClientMeta {
        let m = ClientMeta::new(1, "a".into(), "b".into(), 3, true);
        m.obuf_pending.set(bytes);
        m
    }

    #[test]
    fn output_buffer_limits_as_redis_checks_them() {
        let now = Instant::now();
        let hard = ObufLimit {
            hard: 1 << 20,
            soft: 0,
            soft_seconds: 0,
        };
        // The first 16 KiB are Redis's fixed buffer: not counted.
        assert!(
            !meta_with_pending(REPLY_STATIC_BYTES + (1 << 20) - 1).obuf_limit_reached(&hard, now)
        );
        assert!(meta_with_pending(REPLY_STATIC_BYTES + (1 << 20)).obuf_limit_reached(&hard, now));

        let soft = ObufLimit {
            hard: 0,
            soft: 1 << 20,
            soft_seconds: 2,
        };
        let m = meta_with_pending(4 << 20);
        assert!(
            !m.obuf_limit_reached(&soft, now),
            "first seen: the clock starts"
        );
        assert!(!m.obuf_limit_reached(&soft, now + Duration::from_secs(2)));
        assert!(m.obuf_limit_reached(&soft, now + Duration::from_secs(3)));
        // Dropping under the soft limit resets the clock.
        m.obuf_pending.set(0);
        assert!(!m.obuf_limit_reached(&soft, now + Duration::from_secs(4)));
        m.obuf_pending.set(4 << 20);
        assert!(!m.obuf_limit_reached(&soft, now + Duration::from_secs(5)));
        assert!(!m.obuf_limit_reached(&soft, now + Duration::from_secs(7)));
        assert!(m.obuf_limit_reached(&soft, now + Duration::from_secs(8)));
        // No limit configured (normal clients by default).
        let none = ObufLimit {
            hard: 0,
            soft: 0,
            soft_seconds: 0,
        };
        assert!(!meta_with_pending(1 << 30).obuf_limit_reached(&none, now));
    }
}
