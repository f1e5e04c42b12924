//! The shared server state and the context a command runs in.
//!
//! [`Server`] is owned by the server's single thread (see the crate docs) and reached from each
//! connection task through `Rc<RefCell<Server>>`, borrowed for one batch of commands at a time.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Instant;

use bytes::BytesMut;
use forkdb_protocol::{self as proto, Frame};

use crate::client::{Client, ClientMeta};
use crate::config::Config;
use crate::store::Keyspace;

/// Counters for INFO stats and commandstats.
#[derive(Default)]
pub struct Stats {
    pub total_connections_received: u64,
    pub total_commands_processed: u64,
    pub rejected_connections: u64,
    pub total_net_input_bytes: u64,
    pub total_net_output_bytes: u64,
    pub total_error_replies: u64,
    /// Error prefix ("ERR", "WRONGTYPE", ...) → count (INFO errorstats).
    pub errors: BTreeMap<String, u64>,
    /// Command full name → (calls, microseconds, failed calls, rejected calls). Updated on every
    /// command, so it uses a fast non-keyed hash: its keys are our own static names.
    pub commands: HashMap<&'static str, CmdStat, foldhash::fast::RandomState>,
    /// Ring of (instant, commands processed) used for instantaneous_ops_per_sec.
    pub ops_samples: Vec<(Instant, u64)>,
    pub ops_per_sec: u64,
    /// Commands with the `write` flag run (the SNAPSHOT timelines count writes during a save).
    pub write_commands: u64,
}

#[derive(Default, Clone, Copy)]
pub struct CmdStat {
    pub calls: u64,
    pub usec: u64,
    pub failed: u64,
    pub rejected: u64,
}

/// How a SHUTDOWN asked to end the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    Default,
    Save,
    NoSave,
}

pub struct Server {
    pub config: Config,
    pub ks: Keyspace,
    pub clients: BTreeMap<u64, Rc<ClientMeta>>,
    pub next_client_id: u64,
    pub stats: Stats,
    pub started: Instant,
    pub started_unix: i64,
    pub run_id: String,
    pub executable: String,
    /// Set by SHUTDOWN or a signal; the main loop acts on it.
    pub shutdown: Option<ShutdownMode>,
    pub shutdown_notify: Rc<tokio::sync::Notify>,
    pub last_save_unix: i64,
    pub persist: crate::persist::SaveState,
    pub peak_memory: std::cell::Cell<u64>,
    pub startup_memory: u64,
    pub active_expire_enabled: bool,
    /// True while EXEC runs its queue (BGSAVE is then scheduled rather than forked, as Redis).
    pub in_exec: bool,
    pub timelines: crate::timeline::Timelines,
    /// `Instant::now()` as of the last cron tick: a cached clock for coarse times (client idle).
    pub clock: Instant,
    /// Wakes the timeline sampler when a snapshot child starts.
    pub timeline_notify: Rc<tokio::sync::Notify>,
    /// Clients blocked on keys (see `blocking.rs`).
    pub blocked: crate::blocking::Blocked,
    /// MONITOR, SLOWLOG, LATENCY and the latency histograms (see `diag`).
    pub diag: crate::diag::Diag,
    /// Replication, master side (see `repl`).
    pub repl: crate::repl::Repl,
    /// Pub/Sub channels and patterns and their subscribers (see `pubsub`).
    pub pubsub: crate::pubsub::PubSub,
}

impl Server {
    pub fn new(config: Config) -> Self {
        let run_id: String = {
            use rand::Rng;
            let mut rng = rand::thread_rng();
            (0..40)
                .map(|_| format!("{:x}", rng.gen_range(0..16u8)))
                .collect()
        };
        let mut ks = Keyspace::new(config.databases);
        ks.lfu = config.lfu_params();
        Server {
            config,
            ks,
            clients: BTreeMap::new(),
            next_client_id: 1,
            stats: Stats::default(),
            started: Instant::now(),
            started_unix: crate::util::now_ms() / 1000,
            run_id,
            executable: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            shutdown: None,
            shutdown_notify: Rc::new(tokio::sync::Notify::new()),
            last_save_unix: crate::util::now_ms() / 1000,
            persist: crate::persist::SaveState::default(),
            peak_memory: std::cell::Cell::new(0),
            startup_memory: crate::alloc::used_memory() as u64,
            active_expire_enabled: true,
            in_exec: false,
            timelines: crate::timeline::Timelines::default(),
            clock: Instant::now(),
            timeline_notify: Rc::new(tokio::sync::Notify::new()),
            blocked: Default::default(),
            diag: crate::diag::Diag::default(),
            repl: crate::repl::Repl::default(),
            pubsub: Default::default(),
        }
    }

    /// CONFIG RESETSTAT.
    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
        self.diag.histograms.clear();
        self.ks.expired_keys = 0;
        self.ks.evicted_keys = 0;
        self.ks.keyspace_hits = 0;
        self.ks.keyspace_misses = 0;
    }

    pub fn protocol_limits(&self) -> proto::Limits {
        proto::Limits {
            max_bulk_len: self.config.proto_max_bulk_len,
            ..proto::Limits::default()
        }
    }

    /// Frees memory as `maxmemory-policy` says until `used_memory` is within `maxmemory`: the
    /// keyspace evicts through its write path (`store::Keyspace::evict_to_fit`). Returns false if
    /// memory is still over the limit (noeviction, or nothing left to evict).
    pub fn evict_to_fit(&mut self) -> bool {
        let limit = self.config.maxmemory as usize;
        // As Redis's `freeMemoryGetNotCountedMemory` leaves out replication and AOF buffers:
        // entries a forkless save has queued for its writer are freed as they are written, and
        // an evicted key not yet written goes to that queue first, so counting the queue would
        // evict key after key without getting below the limit.
        let queue = self.persist.forkless.as_ref().map(|r| r.queue.clone());
        // Nor the containers a fork save keeps as they were (`types::kept_bytes`).
        let not_counted = move || {
            queue.as_ref().map_or(0, |q| q.figures().0 as usize) + crate::types::kept_bytes()
        };
        self.ks
            .evict_to_fit(limit, &self.config.maxmemory_policy, || {
                crate::alloc::used_memory().saturating_sub(not_counted())
            })
    }

    pub fn request_shutdown(&mut self, mode: ShutdownMode) {
        self.shutdown = Some(mode);
        self.shutdown_notify.notify_one();
    }
}

/// What a command handler works with: the server, the calling client, and the reply buffer it
/// appends to. Handlers write replies straight into `out`, so a pipeline of any depth is answered
/// from one buffer and EXEC can nest replies by writing an array header first.
pub struct Ctx<'a> {
    pub srv: &'a mut Server,
    pub client: &'a mut Client,
    pub out: &'a mut BytesMut,
    /// Set when the handler replied with an error (commandstats `failed_calls`).
    pub failed: bool,
}

impl Ctx<'_> {
    pub fn db(&self) -> usize {
        self.client.db
    }

    pub fn resp3(&self) -> bool {
        self.client.resp3
    }

    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    pub fn simple(&mut self, s: &str) {
        proto::encode_simple(s, self.out);
    }

    /// An error reply; `msg` starts with its code (`ERR ...`, `WRONGTYPE ...`). Counted in errorstats.
    pub fn err(&mut self, msg: &str) {
        self.err_bytes(msg.as_bytes());
    }

    /// [`err`](Self::err) with bytes: an error that quotes the client's input echoes it as
    /// sent (Redis formats these with printf and never re-encodes them).
    pub fn err_bytes(&mut self, msg: &[u8]) {
        self.failed = true;
        count_error(&mut self.srv.stats, msg);
        encode_error_bytes(msg, self.out);
    }

    /// An error that quotes a client's argument, as Redis's `addReplyErrorFormat("...%s...")`:
    /// the argument's raw bytes up to its first NUL (C's `%s`), never re-encoded as UTF-8.
    pub fn err_quoting(&mut self, before: &str, arg: &[u8], after: &str) {
        let arg = &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())];
        let mut msg = Vec::with_capacity(before.len() + arg.len() + after.len());
        msg.extend_from_slice(before.as_bytes());
        msg.extend_from_slice(arg);
        msg.extend_from_slice(after.as_bytes());
        self.err_bytes(&msg);
    }

    pub fn syntax_err(&mut self) {
        self.err("ERR syntax error");
    }

    pub fn not_int(&mut self) {
        self.err("ERR value is not an integer or out of range");
    }

    pub fn int(&mut self, n: i64) {
        proto::encode_integer(n, self.out);
    }

    pub fn bulk(&mut self, b: &[u8]) {
        proto::encode_bulk(b, self.out);
    }

    pub fn null(&mut self) {
        proto::encode_null(self.client.resp3, self.out);
    }

    /// The null array (`*-1` in RESP2).
    pub fn null_array(&mut self) {
        proto::encode(&Frame::NullArray, self.client.resp3, self.out);
    }

    pub fn array(&mut self, len: usize) {
        proto::encode_array_header(len, self.out);
    }

    pub fn frame(&mut self, f: &Frame) {
        proto::encode(f, self.client.resp3, self.out);
    }

    pub fn wrongtype(&mut self) {
        self.err(crate::store::WRONGTYPE);
    }
}

pub fn count_error(stats: &mut Stats, msg: &[u8]) {
    stats.total_error_replies += 1;
    let code = msg.split(|&b| b == b' ').next().unwrap_or(b"ERR");
    let code = String::from_utf8_lossy(code);
    match stats.errors.get_mut(code.as_ref()) {
        Some(n) => *n += 1,
        None => {
            stats.errors.insert(code.into_owned(), 1);
        }
    }
}

/// `-msg\r\n` with the bytes of `msg` as they are, but CR and LF as spaces: an error text may
/// quote client input, and a line break would end the reply early (Redis's `addReplyErrorFormat`
/// maps them the same way).
pub fn encode_error_bytes(msg: &[u8], out: &mut BytesMut) {
    out.reserve(msg.len() + 3);
    out.extend_from_slice(b"-");
    out.extend(
        msg.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}
