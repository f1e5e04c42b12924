//! Per-connection state.
//!
//! A connection's task owns its [`Client`] (database, auth, MULTI queue, WATCHed keys) and touches it
//! on every command. What other connections must see (CLIENT LIST, CLIENT KILL, the idle timeout) is
//! in [`ClientMeta`], shared through the server's client registry with `Cell`s: the server is
//! single-threaded, so these are plain loads and stores.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

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
    pub qbuf: Cell<usize>,
    pub from_loopback: bool,
    /// Set by CLIENT KILL or the idle timeout; the task closes the connection when woken.
    pub killed: Cell<bool>,
    pub kill: Notify,
    /// Blocked by BLPOP and friends (CLIENT LIST's `b` flag).
    pub blocked: Cell<bool>,
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
            from_loopback,
            killed: Cell::new(false),
            kill: Notify::new(),
            blocked: Cell::new(false),
        }
    }

    pub fn request_kill(&self) {
        self.killed.set(true);
        self.kill.notify_one();
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
        let flags = if self.blocked.get() {
            "b"
        } else if multi >= 0 {
            "x"
        } else {
            "N"
        };
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem={} events=r cmd={} user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            now.duration_since(self.created).as_secs(),
            now.duration_since(self.last_interaction.get()).as_secs(),
            flags,
            self.db.get(),
            multi,
            self.qbuf.get(),
            16384usize.saturating_sub(self.qbuf.get()),
            16384 + self.qbuf.get(),
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
    /// WATCHed keys: (db, key). Whether each was already expired is kept by the keyspace.
    pub watched: Vec<(usize, Bytes)>,
    /// Reply, then close (QUIT, protocol errors).
    pub close_after_reply: bool,
    /// Blocked by BLPOP and friends: the task waits on this (see `blocking.rs`).
    pub blocked: Option<crate::blocking::Wait>,
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
            watched: Vec::new(),
            close_after_reply: false,
            blocked: None,
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
