//! forkdb-server: a Redis-compatible in-memory key-value server whose snapshots fork.
//!
//! # Threading model (what makes `fork()` safe)
//!
//! The whole server runs on **one thread**: a tokio `current_thread` runtime with a `LocalSet`.
//! That thread owns the keyspace ([`store::Keyspace`]) through `Rc<RefCell<Server>>`; connection
//! tasks borrow it only between `.await` points, run one command to completion, and release it.
//! There is no `Mutex` around any part of the keyspace and no other thread can see it, so whenever
//! that thread is running code outside a command, no lock is held and no mutation is half done.
//! That is the only place the snapshot code forks from (see the `snapshot` crate and
//! `../shared/STYLE.md`, "fork() in a Rust server"): the child then inherits a consistent keyspace,
//! exactly as Redis's single-threaded event loop gives its child one.
//!
//! This is also Redis's own model, and on a small machine it is the fastest one: a command costs no
//! cross-thread hand-off, and a pipeline of N commands is parsed, executed and answered with one
//! `read` and one `write`.
//!
//! The store keeps each value in its own [`store::Entry`], so a later thread-based (forkless) snapshot
//! can add a per-entry version without changing how commands reach the data. Every change passes
//! through the keyspace's one write path ([`store::Slot`]), whose before-write hook is where such a
//! snapshot (or replication) will see each old value before it changes.
//!
//! # Layout
//! - [`config`]: options from a redis.conf-style file and `--name value` arguments; CONFIG GET/SET.
//! - [`store`]: the one door to the data. Databases, entries, typed reads (WRONGTYPE), the one
//!   write path (`Keyspace::write` → [`store::Slot`]: lazy expiry, before-write hook, change, WATCH
//!   and dirty), expiry (lazy on access, active sampling in the cron) and eviction. Nothing else
//!   touches a table: commands, persistence (the RDB walk, the loader) and INFO go through it.
//! - [`server`]: the shared state (keyspace, config, clients, stats) and the cron.
//! - [`load`]: loading the RDB file (start-up: a loader thread feeds the server's thread, which
//!   answers `-LOADING` meanwhile; DEBUG RELOAD: in one go).
//! - [`net`]: accepting connections, reading, pipelining, writing replies.
//! - [`repl`]: replication with Redis: as master (SYNC/PSYNC, the backlog, the command stream to
//!   replicas) and as replica (REPLICAOF, the link to a master).
//! - [`table`]: the command table (name, arity, flags, key positions) that dispatch and `COMMAND` use.
//! - [`cmd`]: one module per command family; each handler appends its reply to the output buffer.
//! - [`pubsub`]: Pub/Sub subscriptions and message delivery.
//! - [`glob`]: Redis's glob dialect for KEYS, SCAN MATCH and CONFIG GET.

pub mod alloc;
pub mod blocking;
pub mod client;
pub mod cmd;
pub mod config;
pub mod diag;
pub mod glob;
pub mod idlepoll;
pub mod info;
pub mod load;
pub mod net;
pub mod persist;
pub mod pubsub;
pub mod repl;
pub mod server;
pub mod store;
pub mod strbuf;
pub mod table;
pub mod timeline;
pub mod types;
pub mod util;

/// The version reported in INFO and HELLO. Clients such as redis-py and redis-cli look at
/// `redis_version` to decide which commands exist, so forkdb reports the Redis version whose
/// behaviour it follows; forkdb's own version is in `forkdb_version`.
pub const REDIS_VERSION: &str = "7.0.15";
pub const FORKDB_VERSION: &str = env!("CARGO_PKG_VERSION");
