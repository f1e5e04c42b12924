//! Replication, as redis-server 7.0 speaks it (`src/replication.c`): this module is the master
//! side; [`replica`] is the replica side (REPLICAOF and the link to a master).
//!
//! # What it owns, and what it may touch
//!
//! ```text
//! Server.repl: Repl      the replication id and offset, the backlog, the replicas (by client
//!                        id) with their state and pending output, the ops of the running
//!                        command waiting to be propagated, WAIT's blocked clients
//! Client.repl: Handshake what REPLCONF told before SYNC/PSYNC (port, address, capa, rdb-only)
//! Keyspace.deleted_queue keys removed by expiry or eviction; `Some` only while replication is
//!                        active, drained here into DELs
//! Repl.master            replica side: the link to the master (see `replica`)
//! ```
//!
//! Besides its own files it hooks into: the dispatcher (`cmd/mod.rs`: `after_call`, `flush`,
//! the `-READONLY` / `-NOREPLICAS` / `-MASTERDOWN` checks), blocking.rs (`after_served`, and
//! WAIT blocks through it), net.rs (a replica connection is handed to [`conn`]; the cron calls
//! [`cron`]), persist's `bgsave_done` (one call), INFO, and CLIENT LIST/KILL's client types.
//!
//! It reads the keyspace only to rewrite non-deterministic commands (a key's expiry time after
//! SET EX, see [`rewrite`]); it changes nothing in it. The full sync's snapshot is an ordinary
//! BGSAVE (`Server::bgsave_start`, with `bgsave-default-method`: a fork, or a forkless save whose
//! file is the same); persistence tells [`bgsave_done`] when it ends, and the
//! replica's connection task sends the file it wrote. With `repl-diskless-sync` (and replicas
//! that announced `capa eof`) the same save writes into a pipe instead, which [`diskless`]
//! relays to the replicas as an `$EOF:` transfer. The fork child never sees a replica.
//!
//! # A replica's life
//!
//! ```text
//! REPLCONF listening-port/capa ... ─► Client.repl
//! PSYNC replid offset ─► partial: +CONTINUE, the backlog from `offset`, Online
//!                     └► full: WaitBgsaveStart ─(fork)─► +FULLRESYNC replid offset, WaitBgsaveEnd
//!                          (the stream from `offset` accumulates in the replica's buffer)
//!      disk:     bgsave_done ─► SendBulk: the task writes `$len` and the file ─► Online: the
//!                buffer, then the stream as it is fed
//!      diskless: `$EOF:<mark>`, the pipe's bytes as the relay queues them; end of file and
//!                bgsave_done(ok) ─► `<mark>`, Online; the buffer once the replica ACKs
//! ```
//!
//! The connection becomes a replica after the reply to SYNC/PSYNC is written: net.rs then hands
//! the socket to [`conn::serve_replica`], which writes what [`Repl`] queues for it and reads
//! the replica's `REPLCONF ACK`s. While the snapshot is prepared it sends a newline every second
//! (Redis's keepalive, which replicas and `redis-cli --rdb` skip).
//!
//! # The stream
//!
//! [`after_call`] runs after every command (cmd/mod.rs `call`): when the command changed
//! something (`dirty` grew, Redis's test) it queues the command, rewritten by [`rewrite`] when
//! replaying it would not give the same data (SET EX → SET PXAT, SPOP → SREM, ...), after the
//! DELs of keys it expired on the way. [`flush`] runs at the end of the execution unit (a
//! command, or EXEC with its queue) and feeds the ops, wrapped in MULTI/EXEC when there are
//! several (Redis 7.0's `propagatePendingCommands`), with a SELECT whenever the database
//! changes. Every byte fed goes to the backlog and to each replica past WaitBgsaveStart.

pub mod conn;
pub mod diskless;
pub mod replica;
pub mod rewrite;

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use forkdb_protocol as proto;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::client::ClientMeta;
use crate::config::{ClientClass, ObufLimit};
use crate::server::{Ctx, Server};
use crate::table::{self, CommandSpec};

/// What REPLCONF told before SYNC/PSYNC (kept in the client until it becomes a replica).
#[derive(Debug, Default, Clone)]
pub struct Handshake {
    pub listening_port: u16,
    pub ip_address: Option<String>,
    /// `capa eof`: the replica can read a diskless (`$EOF:`) transfer.
    pub capa_eof: bool,
    /// `capa psync2`: `+CONTINUE` carries the replication id.
    pub capa_psync2: bool,
    /// `rdb-only 1` (redis-cli --rdb): the snapshot only, no stream; closed after it.
    pub rdb_only: bool,
    /// `rdb-filter-only <filters>` (redis-cli --replica, --functions-rdb): the snapshot holds
    /// no keys, and holds the function libraries only if this is true.
    pub rdb_filter: Option<bool>,
    /// Set by SYNC/PSYNC: once its reply is written, the connection is a replica.
    pub became_replica: bool,
    /// This client is our master's link (replica side): it may write to a read-only replica.
    pub is_master: bool,
    /// The stream offset after this client's last propagated write (Redis's `c->woff`): what
    /// its WAIT waits for.
    pub woff: i64,
}

/// Where a replica is in its sync (Redis's `SLAVE_STATE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waits for a snapshot to start (another, non-replication save is running).
    WaitBgsaveStart,
    /// Its snapshot is being written; the stream from its offset accumulates.
    WaitBgsaveEnd,
    /// The snapshot file is being sent.
    SendBulk,
    Online,
}

impl State {
    fn info_name(self) -> &'static str {
        match self {
            State::WaitBgsaveStart | State::WaitBgsaveEnd => "wait_bgsave",
            State::SendBulk => "send_bulk",
            State::Online => "online",
        }
    }
}

/// One replica, as the master sees it.
pub struct Replica {
    pub meta: Rc<ClientMeta>,
    pub state: State,
    pub hs: Handshake,
    /// SYNC rather than PSYNC: no `+FULLRESYNC` line.
    pub pre_psync: bool,
    /// Bytes to write before anything else (`+FULLRESYNC`, `+CONTINUE`).
    pub head: BytesMut,
    /// The stream, from the replica's offset; written once the replica is online.
    pub buf: BytesMut,
    /// The snapshot to send (SendBulk): the file, opened when the save ended, and its size.
    pub rdb: Option<(std::fs::File, u64)>,
    /// The diskless sync (its id) whose stream this replica receives, while it does.
    pub diskless: Option<u64>,
    /// Diskless: snapshot bytes the relay read from the pipe, to write before anything else
    /// but `head` (the relay reads no more while a replica has `diskless::RELAY_MAX_QUEUED`
    /// here).
    pub stream: VecDeque<Bytes>,
    pub stream_len: usize,
    /// Diskless: the snapshot is sent, the stream waits for the replica's first ACK (Redis's
    /// `repl_start_cmd_stream_on_ack`): a replica reading an `$EOF:` transfer cannot tell
    /// where the snapshot ends if the stream's bytes follow in the same read.
    pub wait_ack: bool,
    /// When it started waiting for a snapshot (`repl-diskless-sync-delay` counts from here).
    pub wait_since: Instant,
    /// Diskless: when its task last wrote a piece of the snapshot (Redis's
    /// `repl_last_partial_write`): a replica that takes nothing for `repl-timeout` is dropped,
    /// or it would hold the whole transfer.
    pub stream_progress: Instant,
    /// Diskless with the forkless method: the writer thread writes the snapshot to this
    /// replica's socket itself (see `diskless::Target`); its task writes nothing meanwhile.
    pub direct: Option<std::sync::Arc<diskless::Target>>,
    pub ack_offset: i64,
    pub ack_time: Instant,
    /// The offset its snapshot is at (`+FULLRESYNC <replid> <offset>`).
    pub initial_offset: i64,
    /// Wakes the connection task: something to write.
    pub notify: Rc<Notify>,
}

/// The replication backlog: the last `size` bytes of the stream, for partial resyncs.
struct Backlog {
    buf: VecDeque<u8>,
    size: usize,
    /// The stream offset of `buf[0]` (Redis's `repl_backlog->offset`, 1-based).
    first: i64,
}

impl Backlog {
    fn push(&mut self, b: &[u8]) {
        self.buf.extend(b);
        if self.buf.len() > self.size {
            let excess = self.buf.len() - self.size;
            self.buf.drain(..excess);
            self.first += excess as i64;
        }
    }

    fn resize(&mut self, size: usize) {
        self.size = size.max(1);
        self.push(&[]);
    }
}

/// A client blocked in WAIT.
struct Waiter {
    id: u64,
    offset: i64,
    numreplicas: usize,
    deadline: Option<Instant>,
}

pub struct Repl {
    /// `master_replid`: the history the offsets count in. A new one whenever the backlog is
    /// created afresh (the old history is then unknown to partial resyncs).
    pub replid: String,
    /// `master_repl_offset`: bytes fed to the stream so far.
    pub offset: i64,
    backlog: Option<Backlog>,
    pub replicas: BTreeMap<u64, Replica>,
    /// The database the stream last SELECTed (Redis's `slaveseldb`); None: SELECT next time.
    seldb: Option<usize>,
    /// Ops of the running execution unit (Redis's `also_propagate`): (db, argv).
    pending: Vec<(Option<usize>, Vec<Bytes>)>,
    /// The running snapshot child was forked for replication.
    rdb_child: bool,
    /// When the last replica left (the backlog's time to live counts from here).
    no_replicas_since: Option<Instant>,
    last_ping: Instant,
    last_keepalive: Instant,
    waiters: Vec<Waiter>,
    /// Online replicas with an ACK within `min-replicas-max-lag` (Redis's `repl_good_slaves_count`).
    pub good_replicas: usize,
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    /// Replica side: the master this server follows (REPLICAOF), and the history and offset
    /// a reconnection asks to continue from.
    pub master: Option<replica::Link>,
    pub cached_master: Option<(String, i64)>,
    /// The running diskless sync, if the replication save streams into a pipe.
    diskless: Option<diskless::Sync>,
    diskless_next_id: u64,
    /// Wakes the diskless relay: a replica wrote some of its queue, or left.
    pub relay_wake: Rc<Notify>,
}

pub(crate) fn new_replid() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..40)
        .map(|_| format!("{:x}", rng.gen_range(0..16u8)))
        .collect()
}

impl Default for Repl {
    fn default() -> Self {
        Repl {
            replid: new_replid(),
            offset: 0,
            backlog: None,
            replicas: BTreeMap::new(),
            seldb: None,
            pending: Vec::new(),
            rdb_child: false,
            no_replicas_since: None,
            last_ping: Instant::now(),
            last_keepalive: Instant::now(),
            waiters: Vec::new(),
            good_replicas: 0,
            sync_full: 0,
            sync_partial_ok: 0,
            sync_partial_err: 0,
            master: None,
            cached_master: None,
            diskless: None,
            diskless_next_id: 0,
            relay_wake: Rc::new(Notify::new()),
        }
    }
}

thread_local! {
    /// The server, for the tasks replication spawns from a command (REPLICAOF's link task).
    /// Set once by net.rs; the server has one thread, so this is its only copy.
    static SHARED: std::cell::RefCell<std::rc::Weak<std::cell::RefCell<Server>>> =
        const { std::cell::RefCell::new(std::rc::Weak::new()) };
}

/// Called once by net.rs `run` with the shared server.
pub fn set_shared(srv: &crate::net::Shared) {
    SHARED.with(|s| *s.borrow_mut() = Rc::downgrade(srv));
}

fn shared() -> Option<crate::net::Shared> {
    SHARED.with(|s| s.borrow().upgrade())
}

/// `*N\r\n` and each argument as a bulk string: a command as the stream carries it.
pub fn encode_command(argv: &[Bytes], out: &mut BytesMut) {
    proto::encode_array_header(argv.len(), out);
    for a in argv {
        proto::encode_bulk(a, out);
    }
}

impl Repl {
    /// Something listens to the stream: writes must be propagated.
    pub fn active(&self) -> bool {
        self.backlog.is_some()
    }

    /// Appends `bytes` to the stream: the backlog, and every replica that takes the stream.
    /// A replica whose pending output passes its `client-output-buffer-limit` is dropped.
    fn append(&mut self, bytes: &[u8], limit: &ObufLimit, now: Instant) {
        let Some(backlog) = self.backlog.as_mut() else {
            return;
        };
        backlog.push(bytes);
        self.offset += bytes.len() as i64;
        let mut dropped = Vec::new();
        for (id, r) in self.replicas.iter_mut() {
            if r.state == State::WaitBgsaveStart || r.hs.rdb_only {
                continue;
            }
            r.buf.extend_from_slice(bytes);
            r.meta.obuf_pending.set(r.buf.len());
            if r.meta.obuf_limit_reached(limit, now) {
                warn!(
                    "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
                    r.meta.info_line()
                );
                dropped.push(*id);
            } else if r.state == State::Online {
                r.notify.notify_one();
            }
        }
        for id in dropped {
            self.drop_replica(id);
        }
    }

    /// Feeds one command, with a SELECT first if `db` is not the stream's current database
    /// (Redis's `replicationFeedSlaves`). `db` None: no database (PING, REPLCONF GETACK).
    fn feed(&mut self, db: Option<usize>, argv: &[Bytes], limit: &ObufLimit, now: Instant) {
        if !self.active() {
            return;
        }
        let mut b = BytesMut::new();
        if let Some(db) = db {
            if self.seldb != Some(db) {
                let n = db.to_string();
                encode_command(&[Bytes::from_static(b"SELECT"), Bytes::from(n)], &mut b);
                self.seldb = Some(db);
            }
        }
        encode_command(argv, &mut b);
        self.append(&b, limit, now);
    }

    /// Removes a replica: its buffers are freed now, and its connection is closed.
    pub fn drop_replica(&mut self, id: u64) {
        if let Some(r) = self.replicas.remove(&id) {
            if let Some(t) = &r.direct {
                t.leave();
            }
            r.meta.request_kill();
            r.notify.notify_one();
        }
        if self.replicas.is_empty() {
            self.no_replicas_since = Some(Instant::now());
        }
        // The relay re-counts the replicas of its sync (none left: the save is stopped).
        self.relay_wake.notify_one();
    }

    fn create_backlog(&mut self, size: u64) {
        if self.backlog.is_some() {
            return;
        }
        // A new history: offsets of an old one mean nothing to it (Redis changes the replid
        // when it creates the backlog with no replicas).
        self.replid = new_replid();
        self.backlog = Some(Backlog {
            buf: VecDeque::new(),
            size: size.max(1) as usize,
            first: self.offset + 1,
        });
        self.seldb = None;
    }

    /// The stream from `from` (1-based), if the backlog still holds it.
    fn backlog_from(&self, from: i64) -> Option<Vec<u8>> {
        let b = self.backlog.as_ref()?;
        let end = b.first + b.buf.len() as i64;
        if from < b.first || from > end {
            return None;
        }
        let skip = (from - b.first) as usize;
        Some(b.buf.iter().skip(skip).copied().collect())
    }
}

fn replica_limit(srv: &Server) -> ObufLimit {
    srv.config.client_obuf_limits[ClientClass::Replica as usize]
}

/// Keeps `Keyspace::deleted_queue` on exactly while the stream is.
fn sync_delete_queue(srv: &mut Server) {
    match (srv.repl.active(), srv.ks.deleted_queue.is_some()) {
        (true, false) => srv.ks.deleted_queue = Some(Vec::new()),
        (false, true) => srv.ks.deleted_queue = None,
        _ => {}
    }
}

/// Called after each command ran (cmd/mod.rs `call`, also for each command EXEC runs): queues
/// the DELs of keys it expired or evicted, then the command itself (rewritten where Redis
/// rewrites it) if it changed something.
pub fn after_call(
    srv: &mut Server,
    db: usize,
    spec: &'static CommandSpec,
    args: &[Bytes],
    reply: &[u8],
    changed: bool,
) {
    if !srv.repl.active() {
        return;
    }
    queue_deleted(srv);
    // EXEC's own change is that of the commands it ran, each queued by its own call.
    if !changed || spec.name == "exec" {
        return;
    }
    for (db, argv) in rewrite::rewrite(srv, db, spec.name, args, reply) {
        srv.repl.pending.push((Some(db), argv));
    }
}

/// Queues a command that changed no data but goes to replicas all the same (Redis's
/// `forceCommandPropagation`: PUBLISH, so that a replica's subscribers get the master's
/// messages). The arguments are copied: they may be slices of the shared read buffer.
pub fn force_propagate(srv: &mut Server, db: usize, args: &[Bytes]) {
    if !srv.repl.active() {
        return;
    }
    let argv = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
    srv.repl.pending.push((Some(db), argv));
}

/// A blocked client was served from a ready key (blocking.rs): the pop it made, as Redis
/// propagates it.
pub fn after_served(srv: &mut Server, db: usize, args: &[Bytes], key: &[u8], reply: &[u8]) {
    if !srv.repl.active() {
        return;
    }
    queue_deleted(srv);
    for (db, argv) in rewrite::served(db, args, key, reply) {
        srv.repl.pending.push((Some(db), argv));
    }
}

fn queue_deleted(srv: &mut Server) {
    if let Some(q) = srv.ks.deleted_queue.as_mut() {
        for (db, key) in q.drain(..) {
            srv.repl
                .pending
                .push((Some(db), vec![Bytes::from_static(b"DEL"), key]));
        }
    }
}

/// The end of an execution unit: feeds the queued ops, in MULTI/EXEC when there are several
/// and `atomic` (Redis 7.0's `propagatePendingCommands`; commands that may touch arbitrary
/// keys, like SCAN's expiries, are not wrapped).
pub fn flush(srv: &mut Server, atomic: bool) {
    if !srv.repl.active() {
        return;
    }
    queue_deleted(srv);
    if srv.repl.pending.is_empty() {
        return;
    }
    let ops = std::mem::take(&mut srv.repl.pending);
    let limit = replica_limit(srv);
    let now = srv.clock;
    let wrap = atomic && ops.len() > 1;
    if wrap {
        srv.repl
            .feed(ops[0].0, &[Bytes::from_static(b"MULTI")], &limit, now);
    }
    for (db, argv) in &ops {
        srv.repl.feed(*db, argv, &limit, now);
    }
    if wrap {
        srv.repl
            .feed(None, &[Bytes::from_static(b"EXEC")], &limit, now);
    }
}

/// SYNC and PSYNC replid offset (Redis's `syncCommand`).
pub fn sync(cx: &mut Ctx, args: &[Bytes]) {
    if cx.client.repl.became_replica {
        return;
    }
    if cx.srv.repl.master.is_some() {
        // A replica's own offset is its master's: serving sub-replicas needs the master's
        // stream relayed as it is (Redis's chained replication), which forkdb does not do yet.
        return cx.err("ERR forkdb does not serve replicas while it is itself a replica (chained replication is not supported)");
    }
    if cx.client.repl.rdb_filter.is_some() && !cx.client.repl.capa_eof {
        return cx.err("ERR Filtered replica requires EOF capability");
    }
    let is_psync = crate::cmd::is(&args[0], "psync");
    let addr = replica_name(&cx.client.meta, &cx.client.repl);
    info!("Replica {addr} asks for synchronization");
    if is_psync {
        let Some(from) = crate::util::parse_i64(&args[2]) else {
            warn!("Replica {addr} asks for synchronization but with a wrong offset");
            return cx.not_int();
        };
        if !cx.client.repl.rdb_only && try_partial(cx, &args[1], from) {
            return;
        }
        if &args[1][..] != b"?" {
            cx.srv.repl.sync_partial_err += 1;
        }
    }
    if !cx.client.repl.rdb_only {
        let size = cx.srv.config.repl_backlog_size;
        cx.srv.repl.create_backlog(size);
        sync_delete_queue(cx.srv);
    }
    cx.srv.repl.sync_full += 1;
    info!("Full resync requested by replica {addr}");
    let now = Instant::now();
    let mut r = Replica {
        meta: cx.client.meta.clone(),
        state: State::WaitBgsaveStart,
        hs: cx.client.repl.clone(),
        pre_psync: !is_psync,
        head: BytesMut::new(),
        buf: BytesMut::new(),
        rdb: None,
        diskless: None,
        stream: VecDeque::new(),
        stream_len: 0,
        wait_ack: false,
        wait_since: now,
        stream_progress: now,
        direct: None,
        ack_offset: 0,
        ack_time: now,
        initial_offset: 0,
        notify: Rc::new(Notify::new()),
    };
    cx.client.repl.became_replica = true;
    cx.client.meta.replica.set(true);
    let id = cx.client.id();
    if let Some(functions) = cx.client.repl.rdb_filter {
        // A snapshot without keys needs no fork: it is written here, and the replica follows
        // the stream from now (Redis forks for it, diskless; the bytes are the same).
        let functions: Vec<Bytes> = if functions {
            cx.srv.persist.functions.clone()
        } else {
            Vec::new()
        };
        let empty = crate::store::Keyspace::new(1);
        let options = forkdb_snapshot::SaveOptions {
            compression: cx.srv.config.rdbcompression,
            checksum: cx.srv.config.rdbchecksum,
        };
        let used = crate::alloc::used_memory() as u64;
        match crate::persist::write_rdb(&empty, &functions, options, used, Vec::new(), |_| {}) {
            Ok(rdb) => {
                let (replid, offset) = (cx.srv.repl.replid.clone(), cx.srv.repl.offset);
                setup_full_resync(&mut r, &replid, offset);
                let _ = write!(StrBuf(&mut r.head), "${}\r\n", rdb.len());
                r.head.extend_from_slice(&rdb);
                r.state = State::Online;
                cx.srv.repl.seldb = None;
                cx.srv.repl.replicas.insert(id, r);
                cx.srv.repl.no_replicas_since = None;
            }
            Err(e) => {
                warn!(cause = %e, "Can't write the filtered snapshot for the replica");
                cx.client.repl.became_replica = false;
                cx.err("ERR BGSAVE failed, replication can't continue");
            }
        }
        return;
    }
    if cx.srv.repl.rdb_child && cx.srv.repl.diskless.is_none() && cx.srv.save_in_progress() {
        // A snapshot for replication is being written: attach to it, taking the stream a
        // replica waiting on it has buffered since (Redis's "Waiting for end of BGSAVE").
        let peer = cx
            .srv
            .repl
            .replicas
            .values()
            .find(|p| p.state == State::WaitBgsaveEnd && !p.hs.rdb_only);
        if let Some(p) = peer {
            r.buf = p.buf.clone();
            r.initial_offset = p.initial_offset;
            r.state = State::WaitBgsaveEnd;
            setup_full_resync(&mut r, &cx.srv.repl.replid, p.initial_offset);
            info!("Waiting for end of BGSAVE for SYNC");
        }
    }
    let delayed = r.state == State::WaitBgsaveStart
        && cx.srv.config.repl_diskless_sync
        && r.hs.capa_eof
        && cx.srv.config.repl_diskless_sync_delay > 0;
    cx.srv.repl.replicas.insert(id, r);
    cx.srv.repl.no_replicas_since = None;
    if delayed {
        // The cron forks once the delay has passed (or enough replicas wait), so that
        // replicas arriving meanwhile share one transfer (Redis's syncCommand).
        info!("Delay next BGSAVE for diskless SYNC");
    } else if !cx.srv.save_in_progress() {
        start_bgsave_for_replication(cx.srv);
    }
}

fn replica_name(meta: &ClientMeta, hs: &Handshake) -> String {
    let ip = match &hs.ip_address {
        Some(ip) => ip.clone(),
        None => peer_ip(&meta.addr),
    };
    format!("{ip}:{}", hs.listening_port)
}

fn peer_ip(addr: &str) -> String {
    addr.parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| addr.to_string())
}

fn setup_full_resync(r: &mut Replica, replid: &str, offset: i64) {
    r.initial_offset = offset;
    r.ack_offset = offset;
    if !r.pre_psync {
        let _ = write!(StrBuf(&mut r.head), "+FULLRESYNC {replid} {offset}\r\n");
    }
    r.notify.notify_one();
}

/// `fmt::Write` into a BytesMut.
struct StrBuf<'a>(&'a mut BytesMut);

impl std::fmt::Write for StrBuf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Redis's `masterTryPartialResynchronization`: the same history and an offset the backlog
/// still holds give `+CONTINUE` and the backlog from there.
fn try_partial(cx: &mut Ctx, replid: &[u8], from: i64) -> bool {
    let repl = &cx.srv.repl;
    if replid != repl.replid.as_bytes() {
        return false;
    }
    let Some(data) = repl.backlog_from(from) else {
        return false;
    };
    let mut head = BytesMut::new();
    if cx.client.repl.capa_psync2 {
        let _ = write!(StrBuf(&mut head), "+CONTINUE {}\r\n", repl.replid);
    } else {
        head.extend_from_slice(b"+CONTINUE\r\n");
    }
    let addr = replica_name(&cx.client.meta, &cx.client.repl);
    info!(
        "Partial resynchronization request from {addr} accepted. Sending {} bytes of backlog starting from offset {from}.",
        data.len()
    );
    cx.client.repl.became_replica = true;
    cx.client.meta.replica.set(true);
    let r = Replica {
        meta: cx.client.meta.clone(),
        state: State::Online,
        hs: cx.client.repl.clone(),
        pre_psync: false,
        head,
        buf: BytesMut::from(&data[..]),
        rdb: None,
        diskless: None,
        stream: VecDeque::new(),
        stream_len: 0,
        wait_ack: false,
        wait_since: Instant::now(),
        stream_progress: Instant::now(),
        direct: None,
        ack_offset: from - 1,
        ack_time: Instant::now(),
        initial_offset: from - 1,
        notify: Rc::new(Notify::new()),
    };
    r.notify.notify_one();
    cx.srv.repl.replicas.insert(cx.client.id(), r);
    cx.srv.repl.no_replicas_since = None;
    cx.srv.repl.sync_partial_ok += 1;
    true
}

/// The cron's check for replicas waiting for a snapshot (Redis 7.0's
/// `replicationStartPendingFork`): on disk, at once; diskless, once the one that waited
/// longest has waited `repl-diskless-sync-delay`, or when `repl-diskless-sync-max-replicas`
/// wait.
fn start_pending_fork(srv: &mut Server, now: Instant) {
    let waiting: Vec<&Replica> = srv
        .repl
        .replicas
        .values()
        .filter(|r| r.state == State::WaitBgsaveStart)
        .collect();
    if waiting.is_empty() {
        return;
    }
    let max_idle = waiting
        .iter()
        .map(|r| now.duration_since(r.wait_since))
        .max()
        .unwrap_or_default();
    let c = &srv.config;
    let max = c.repl_diskless_sync_max_replicas;
    if !c.repl_diskless_sync
        || (max > 0 && waiting.len() as u64 >= max)
        || max_idle >= Duration::from_secs(c.repl_diskless_sync_delay)
    {
        start_bgsave_for_replication(srv);
    }
}

/// Forks the snapshot for every replica waiting for one (Redis's `startBgsaveForReplication`):
/// into a pipe when `repl-diskless-sync` is on and every one of them reads `$EOF:` transfers
/// (`capa eof`), else into the file.
fn start_bgsave_for_replication(srv: &mut Server) {
    let mut waiting = srv
        .repl
        .replicas
        .values()
        .filter(|r| r.state == State::WaitBgsaveStart)
        .peekable();
    if waiting.peek().is_none() {
        return;
    }
    let all_eof = waiting.all(|r| r.hs.capa_eof);
    if srv.config.repl_diskless_sync && all_eof {
        return diskless::start(srv);
    }
    info!("Starting BGSAVE for SYNC with target: disk");
    // The fork happens inside bgsave_start, with no command in between: the snapshot is the
    // data as of `offset`.
    let offset = srv.repl.offset;
    match srv.bgsave_start() {
        Ok(()) => {
            srv.repl.rdb_child = true;
            // The stream after the snapshot starts with a SELECT (Redis resets `slaveseldb`).
            srv.repl.seldb = None;
            let replid = srv.repl.replid.clone();
            for r in srv.repl.replicas.values_mut() {
                if r.state == State::WaitBgsaveStart {
                    r.state = State::WaitBgsaveEnd;
                    r.buf.clear();
                    setup_full_resync(r, &replid, offset);
                }
            }
        }
        Err(e) => {
            warn!("BGSAVE for replication failed: {e}");
            fail_waiting(srv);
        }
    }
}

/// A save for replication could not start: the replicas waiting for it get Redis's error and
/// are closed (disk and diskless syncs alike).
pub(super) fn fail_waiting(srv: &mut Server) {
    for id in replicas_in(srv, State::WaitBgsaveStart) {
        if let Some(r) = srv.repl.replicas.get_mut(&id) {
            r.head
                .extend_from_slice(b"-ERR BGSAVE failed, replication can't continue\r\n");
        }
        close_after_head(srv, id);
    }
}

/// The ids of the replicas in `state` (collected: the caller changes them).
fn replicas_in(srv: &Server, state: State) -> Vec<u64> {
    srv.repl
        .replicas
        .iter()
        .filter(|(_, r)| r.state == state)
        .map(|(id, _)| *id)
        .collect()
}

/// Ends a replica once what it has in `head` is written: it leaves the replica set (no more
/// stream) and its task closes the connection when `head` is empty.
pub(crate) fn close_after_head(srv: &mut Server, id: u64) {
    if let Some(r) = srv.repl.replicas.get_mut(&id) {
        r.hs.rdb_only = true;
        r.state = State::Online;
        r.buf.clear();
        r.notify.notify_one();
    }
}

/// A background save ended (persist's `bgsave_done`). If it was forked for replication, its
/// replicas get the file (or, if it failed, are dropped).
pub fn bgsave_done(srv: &mut Server, ok: bool) {
    if !std::mem::take(&mut srv.repl.rdb_child) {
        return;
    }
    if srv.repl.diskless.is_some() {
        return diskless::save_done(srv, ok);
    }
    let path = srv.config.dir.join(&srv.config.dbfilename);
    for id in replicas_in(srv, State::WaitBgsaveEnd) {
        let file = if ok {
            std::fs::File::open(&path).and_then(|f| {
                let len = f.metadata()?.len();
                Ok((f, len))
            })
        } else {
            Err(std::io::Error::other("the background save failed"))
        };
        match file {
            Ok(f) => {
                if let Some(r) = srv.repl.replicas.get_mut(&id) {
                    r.rdb = Some(f);
                    r.state = State::SendBulk;
                    r.notify.notify_one();
                }
            }
            Err(e) => {
                warn!(cause = %e, "SYNC failed. BGSAVE child returned an error");
                srv.repl.drop_replica(id);
            }
        }
    }
}

/// The replication part of the cron (Redis's `replicationCron`, run at `hz`).
pub fn cron(srv: &mut Server) {
    // Keys the active expiry removed.
    flush(srv, false);
    let now = Instant::now();
    let limit = replica_limit(srv);
    let period = Duration::from_secs(srv.config.repl_ping_replica_period.max(1));
    if !srv.repl.replicas.is_empty() && now.duration_since(srv.repl.last_ping) >= period {
        srv.repl.last_ping = now;
        srv.repl
            .feed(None, &[Bytes::from_static(b"PING")], &limit, now);
    }
    if now.duration_since(srv.repl.last_keepalive) >= Duration::from_secs(1) {
        srv.repl.last_keepalive = now;
        for r in srv.repl.replicas.values() {
            if matches!(r.state, State::WaitBgsaveStart | State::WaitBgsaveEnd) {
                r.notify.notify_one();
            }
        }
    }
    // Online replicas silent for longer than repl-timeout (redis-cli --replica never acks:
    // Redis exempts pre-PSYNC replicas the same way).
    let timeout = Duration::from_secs(srv.config.repl_timeout);
    let silent: Vec<u64> = srv
        .repl
        .replicas
        .iter()
        .filter(|(_, r)| {
            r.state == State::Online && !r.pre_psync && now.duration_since(r.ack_time) > timeout
        })
        .map(|(id, _)| *id)
        .collect();
    for id in silent {
        warn!("Disconnecting timedout replica (streaming sync)");
        srv.repl.drop_replica(id);
    }
    let stuck: Vec<u64> = srv
        .repl
        .replicas
        .iter()
        .filter(|(_, r)| {
            r.diskless.is_some()
                && !r.stream.is_empty()
                && now.duration_since(r.stream_progress) > timeout
        })
        .map(|(id, _)| *id)
        .collect();
    for id in stuck {
        warn!("Disconnecting timedout replica (full sync)");
        srv.repl.drop_replica(id);
    }
    if !srv.save_in_progress() {
        start_pending_fork(srv, now);
    }
    let ttl = srv.config.repl_backlog_ttl;
    if let (Some(since), true) = (srv.repl.no_replicas_since, srv.repl.replicas.is_empty()) {
        if ttl > 0 && since.elapsed() >= Duration::from_secs(ttl) && srv.repl.backlog.is_some() {
            info!("Replication backlog freed after {ttl} seconds without connected replicas.");
            srv.repl.backlog = None;
            srv.repl.replid = new_replid();
            sync_delete_queue(srv);
        }
    }
    if let Some(b) = srv.repl.backlog.as_mut() {
        if b.size as u64 != srv.config.repl_backlog_size {
            b.resize(srv.config.repl_backlog_size as usize);
        }
    }
    let lag = Duration::from_secs(srv.config.min_replicas_max_lag);
    srv.repl.good_replicas = srv
        .repl
        .replicas
        .values()
        .filter(|r| r.state == State::Online && now.duration_since(r.ack_time) <= lag)
        .count();
    serve_waiters(srv, now);
}

/// A replica acknowledged `offset` (REPLCONF ACK, read by its connection task).
pub fn ack(srv: &mut Server, id: u64, offset: i64) {
    if let Some(r) = srv.repl.replicas.get_mut(&id) {
        if offset > r.ack_offset {
            r.ack_offset = offset;
        }
        r.ack_time = Instant::now();
        if std::mem::take(&mut r.wait_ack) {
            // Loaded: the stream it buffered since the snapshot may go now.
            info!(
                "Synchronization with replica {} succeeded",
                replica_name(&r.meta, &r.hs)
            );
            r.notify.notify_one();
        }
    }
    if !srv.repl.waiters.is_empty() {
        serve_waiters(srv, Instant::now());
    }
}

fn acked(repl: &Repl, offset: i64) -> usize {
    repl.replicas
        .values()
        .filter(|r| r.state == State::Online && r.ack_offset >= offset)
        .count()
}

/// Answers the WAIT clients whose replicas have acknowledged enough, or whose time is up.
fn serve_waiters(srv: &mut Server, now: Instant) {
    if srv.repl.waiters.is_empty() {
        return;
    }
    let waiters = std::mem::take(&mut srv.repl.waiters);
    for w in waiters {
        let n = acked(&srv.repl, w.offset);
        if n >= w.numreplicas || w.deadline.is_some_and(|d| now >= d) {
            let mut reply = BytesMut::new();
            proto::encode_integer(n as i64, &mut reply);
            crate::blocking::finish(srv, w.id, reply);
        } else if srv.blocked.is_blocked(w.id) {
            srv.repl.waiters.push(w);
        }
    }
}

/// REPLCONF option value ... (Redis's `replconfCommand`).
pub fn replconf(cx: &mut Ctx, args: &[Bytes]) {
    if args.len().is_multiple_of(2) {
        return cx.syntax_err();
    }
    for pair in args[1..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        let is = |w: &str| crate::cmd::is(opt, w);
        if is("listening-port") {
            match crate::util::parse_i64(val).and_then(|p| u16::try_from(p).ok()) {
                Some(p) => cx.client.repl.listening_port = p,
                None => return cx.not_int(),
            }
        } else if is("ip-address") {
            if val.len() >= 46 {
                let mut msg =
                    b"ERR REPLCONF ip-address provided by replica instance is too long: ".to_vec();
                msg.extend_from_slice(&val.len().to_string().into_bytes());
                msg.extend_from_slice(b" bytes");
                return cx.err_bytes(&msg);
            }
            cx.client.repl.ip_address = Some(String::from_utf8_lossy(val).into_owned());
        } else if is("capa") {
            if crate::cmd::is(val, "eof") {
                cx.client.repl.capa_eof = true;
            } else if crate::cmd::is(val, "psync2") {
                cx.client.repl.capa_psync2 = true;
            }
        } else if is("ack") || is("getack") {
            // ACKs come from replicas, whose connection reads them itself; GETACK is for a
            // master to send. Neither gets a reply (Redis's rule).
            return;
        } else if is("rdb-filter-only") {
            let Some(filters) = forkdb_protocol::request::split_args(val) else {
                return cx.err("ERR Missing rdb-filter-only values");
            };
            let mut functions = false;
            for f in &filters {
                if crate::cmd::is(f, "functions") {
                    functions = true;
                } else {
                    return cx.err_quoting("ERR Unsupported rdb-filter-only option: ", f, "");
                }
            }
            cx.client.repl.rdb_filter = Some(functions);
        } else if is("rdb-only") {
            match crate::util::parse_i64(val) {
                Some(0) => cx.client.repl.rdb_only = false,
                Some(1) => cx.client.repl.rdb_only = true,
                Some(_) => return cx.err("ERR value is out of range, value must between 0 and 1"),
                None => return cx.not_int(),
            }
        } else {
            return cx.err_quoting("ERR Unrecognized REPLCONF option: ", opt, "");
        }
    }
    cx.ok();
}

/// ROLE, for a master: `master`, the offset, and `[ip, port, acked offset]` per online replica.
pub fn role(cx: &mut Ctx, _args: &[Bytes]) {
    if let Some(l) = &cx.srv.repl.master {
        let link = (l.host.clone(), l.port, l.state);
        return replica::role(cx, (&link.0, link.1, link.2));
    }
    let list: Vec<(String, u16, i64)> = cx
        .srv
        .repl
        .replicas
        .values()
        .filter(|r| r.state == State::Online && !r.hs.rdb_only)
        .map(|r| {
            let ip =
                r.hs.ip_address
                    .clone()
                    .unwrap_or_else(|| peer_ip(&r.meta.addr));
            (ip, r.hs.listening_port, r.ack_offset)
        })
        .collect();
    cx.array(3);
    cx.bulk(b"master");
    cx.int(cx.srv.repl.offset);
    cx.array(list.len());
    for (ip, port, off) in list {
        cx.array(3);
        cx.bulk(ip.as_bytes());
        cx.bulk(port.to_string().as_bytes());
        cx.bulk(off.to_string().as_bytes());
    }
}

/// WAIT numreplicas timeout: blocks until that many replicas acknowledged this connection's
/// writes, or until the timeout (milliseconds, 0 = none).
pub fn wait(cx: &mut Ctx, args: &[Bytes]) {
    let Some(numreplicas) = crate::cmd::int_arg(cx, &args[1]) else {
        return;
    };
    let timeout = match crate::util::parse_i64(&args[2]) {
        Some(t) if t < 0 => return cx.err("ERR timeout is negative"),
        Some(t) => t,
        None => return cx.err("ERR timeout is not an integer or out of range"),
    };
    let offset = cx.client.repl.woff;
    let n = acked(&cx.srv.repl, offset);
    if n as i64 >= numreplicas || cx.srv.in_exec {
        return cx.int(n as i64);
    }
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout as u64));
    cx.srv.repl.waiters.push(Waiter {
        id: cx.client.id(),
        offset,
        numreplicas: numreplicas.max(0) as usize,
        deadline,
    });
    crate::blocking::block(
        cx,
        &[],
        None,
        args,
        |_, _, _| false,
        |_, out| {
            out.extend_from_slice(b":0\r\n");
        },
    );
    // Ask the replicas for their offset now rather than at their next second's ACK.
    let limit = replica_limit(cx.srv);
    let now = cx.srv.clock;
    cx.srv.repl.feed(
        None,
        &[
            Bytes::from_static(b"REPLCONF"),
            Bytes::from_static(b"GETACK"),
            Bytes::from_static(b"*"),
        ],
        &limit,
        now,
    );
}

/// The refusal of a write when `min-replicas-to-write` is not met.
pub fn deny_write_reason(srv: &Server) -> Option<&'static str> {
    let min = srv.config.min_replicas_to_write;
    (min > 0 && srv.config.min_replicas_max_lag > 0 && (srv.repl.good_replicas as u64) < min)
        .then_some("NOREPLICAS Not enough good replicas to write.")
}

/// INFO replication, master side.
pub fn info_fields(srv: &Server, s: &mut String) {
    let repl = &srv.repl;
    match &repl.master {
        Some(link) => replica::info_fields(srv, link, s),
        None => {
            let _ = write!(s, "role:master\r\n");
        }
    }
    let listed: Vec<&Replica> = repl.replicas.values().filter(|r| !r.hs.rdb_only).collect();
    let _ = write!(s, "connected_slaves:{}\r\n", listed.len());
    if srv.config.min_replicas_to_write > 0 && srv.config.min_replicas_max_lag > 0 {
        let _ = write!(s, "min_slaves_good_slaves:{}\r\n", repl.good_replicas);
    }
    for (i, r) in listed.iter().enumerate() {
        let ip =
            r.hs.ip_address
                .clone()
                .unwrap_or_else(|| peer_ip(&r.meta.addr));
        let _ = write!(
            s,
            "slave{i}:ip={ip},port={},state={},offset={},lag={}\r\n",
            r.hs.listening_port,
            r.state.info_name(),
            r.ack_offset,
            r.ack_time.elapsed().as_secs()
        );
    }
    let _ = write!(s, "master_failover_state:no-failover\r\n");
    let _ = write!(s, "master_replid:{}\r\n", repl.replid);
    let _ = write!(
        s,
        "master_replid2:0000000000000000000000000000000000000000\r\n"
    );
    let _ = write!(s, "master_repl_offset:{}\r\n", repl.offset);
    let _ = write!(s, "second_repl_offset:-1\r\n");
    match &repl.backlog {
        Some(b) => {
            let _ = write!(
                s,
                "repl_backlog_active:1\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
                b.size,
                b.first,
                b.buf.len()
            );
        }
        None => {
            let _ = write!(
                s,
                "repl_backlog_active:0\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
                srv.config.repl_backlog_size
            );
        }
    }
}

/// Bytes waiting in the replicas' output (INFO `mem_clients_slaves`).
pub fn replica_buffers(srv: &Server) -> usize {
    srv.repl
        .replicas
        .values()
        .map(|r| r.buf.len() + r.head.len() + r.stream_len)
        .sum()
}

/// INFO stats: the sync counters.
pub fn stats_fields(srv: &Server, s: &mut String) {
    let r = &srv.repl;
    let _ = write!(
        s,
        "sync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\n",
        r.sync_full, r.sync_partial_ok, r.sync_partial_err
    );
}

/// Whether the command's effects should go into the stream: it changed data (`dirty` grew), or
/// it is one Redis always propagates (FLUSHALL/FLUSHDB, even of an empty data set).
pub fn changed(spec: &CommandSpec, dirty_before: u64, dirty_after: u64, failed: bool) -> bool {
    dirty_after > dirty_before
        || (!failed && spec.has(table::WRITE) && matches!(spec.name, "flushall" | "flushdb"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_keeps_the_last_bytes_and_their_offsets() {
        let mut r = Repl::default();
        r.create_backlog(8);
        let limit = ObufLimit {
            hard: 0,
            soft: 0,
            soft_seconds: 0,
        };
        let now = Instant::now();
        r.append(b"abcdef", &limit, now);
        assert_eq!(r.backlog_from(1).unwrap(), b"abcdef");
        assert_eq!(r.backlog_from(4).unwrap(), b"def");
        assert_eq!(r.backlog_from(7).unwrap(), b"");
        assert!(r.backlog_from(8).is_none());
        r.append(b"ghij", &limit, now);
        assert_eq!(r.offset, 10);
        assert!(r.backlog_from(2).is_none(), "the first two bytes left");
        assert_eq!(r.backlog_from(3).unwrap(), b"cdefghij");
    }

    #[test]
    fn feed_selects_the_database_once() {
        let mut r = Repl::default();
        r.create_backlog(1 << 10);
        let limit = ObufLimit {
            hard: 0,
            soft: 0,
            soft_seconds: 0,
        };
        let now = Instant::now();
        let set = [
            Bytes::from_static(b"SET"),
            Bytes::from_static(b"k"),
            Bytes::from_static(b"v"),
        ];
        r.feed(Some(2), &set, &limit, now);
        r.feed(Some(2), &set, &limit, now);
        r.feed(None, &[Bytes::from_static(b"PING")], &limit, now);
        let all = r.backlog_from(1).unwrap();
        let text = String::from_utf8(all).unwrap();
        assert_eq!(
            text,
            "*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n"
        );
    }
}
