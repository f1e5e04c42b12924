//! End-to-end test harness for forkdb.
//!
//! Layout:
//! - [`server`]: start forkdb-server or redis-server on a free loopback port with its own directory
//!   and stop it by pid on drop. `FORKDB_E2E_TARGET=redis` makes [`Server::forkdb`] start
//!   redis-server, so every test that encodes Redis behaviour can be checked against Redis itself.
//! - [`conn`]: a raw RESP connection (exact reply bytes, timeouts, close detection).
//! - [`resp`]: a small reply parser of our own (not the server's), with loose comparisons.
//! - [`corpus`]: the differential corpus format and runner used by `tests/differential.rs`.
//! - [`command_table`]: field-by-field comparison of COMMAND replies with redis-server's.

pub mod command_table;
pub mod conn;
pub mod corpus;
pub mod resp;
pub mod server;
pub mod snapshot;

pub use conn::Conn;
pub use resp::Frame;
pub use server::{forkdb_target, Kind, Server};

use std::time::{Duration, Instant};

/// The commands forkdb promises to answer like Redis 7.0 (lower case, as COMMAND names them).
/// Commands forkdb has and Redis does not (with their subcommands): left out of the comparisons
/// of COMMAND with Redis's, and tested on their own.
pub const FORKDB_ONLY_COMMANDS: &[&str] = &["snapshot"];

/// Is `name` (`cmd` or `cmd|sub`, any case) one of [`FORKDB_ONLY_COMMANDS`]?
pub fn is_forkdb_only(name: &str) -> bool {
    let top = name.split('|').next().unwrap_or(name).to_ascii_lowercase();
    FORKDB_ONLY_COMMANDS.contains(&top.as_str())
}

pub const SUPPORTED_COMMANDS: &[&str] = &[
    "ping",
    "echo",
    "quit",
    "select",
    "swapdb",
    "hello",
    "auth",
    "reset",
    "client", //
    "get",
    "set",
    "setnx",
    "setex",
    "psetex",
    "getset",
    "getdel",
    "getex",
    "mget",
    "mset",
    "msetnx",
    "append",
    "strlen",
    "getrange",
    "setrange",
    "incr",
    "decr",
    "incrby",
    "decrby",
    "incrbyfloat", //
    "del",
    "unlink",
    "exists",
    "type",
    "keys",
    "scan",
    "randomkey",
    "sort",
    "sort_ro",
    "rename",
    "renamenx",
    "copy",
    "dump",
    "restore",
    "move",
    "touch",
    "dbsize",
    "flushdb",
    "flushall",
    "object", //
    "expire",
    "pexpire",
    "expireat",
    "pexpireat",
    "ttl",
    "pttl",
    "persist",
    "expiretime",
    "pexpiretime", //
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch", //
    "monitor",
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
    "publish",
    "spublish",
    "pubsub",
    "slowlog",
    "latency",
    "memory",
    "info",
    "config",
    "time",
    "shutdown",
    "debug",
    "command",
    // lists: new names go between this line and the next marker.
    "lpush",
    "rpush",
    "lpushx",
    "rpushx",
    "lpop",
    "rpop",
    "llen",
    "lindex",
    "lrange",
    "lset",
    "linsert",
    "lrem",
    "ltrim",
    "lpos",
    "lmove",
    "rpoplpush",
    "lmpop",
    "blpop",
    "brpop",
    "blmove",
    "brpoplpush",
    "blmpop",
    // end of lists
    // hashes: new names go between this line and the next marker.
    "hset",
    "hsetnx",
    "hget",
    "hmget",
    "hmset",
    "hgetall",
    "hkeys",
    "hvals",
    "hlen",
    "hexists",
    "hdel",
    "hincrby",
    "hincrbyfloat",
    "hstrlen",
    "hrandfield",
    "hscan",
    // end of hashes
    // sets: new names go between this line and the next marker.
    "sadd",
    "srem",
    "smembers",
    "sismember",
    "smismember",
    "scard",
    "spop",
    "srandmember",
    "smove",
    "sinter",
    "sintercard",
    "sinterstore",
    "sunion",
    "sunionstore",
    "sdiff",
    "sdiffstore",
    "sscan",
    // end of sets
    // sorted sets: new names go between this line and the next marker.
    "zadd",
    "zincrby",
    "zrem",
    "zcard",
    "zscore",
    "zmscore",
    "zrank",
    "zrevrank",
    "zcount",
    "zlexcount",
    "zrange",
    "zrangestore",
    "zrevrange",
    "zrangebyscore",
    "zrevrangebyscore",
    "zrangebylex",
    "zrevrangebylex",
    "zremrangebyrank",
    "zremrangebyscore",
    "zremrangebylex",
    "zpopmin",
    "zpopmax",
    "zmpop",
    "bzpopmin",
    "bzpopmax",
    "bzmpop",
    "zrandmember",
    "zunion",
    "zinter",
    "zdiff",
    "zunionstore",
    "zinterstore",
    "zdiffstore",
    "zintercard",
    "zscan",
    // end of sorted sets
    // bitmaps and string bit operations: new names go between this line and the next marker.
    "setbit",
    "getbit",
    "bitcount",
    "bitpos",
    "bitop",
    "bitfield",
    "bitfield_ro",
    "lcs",
    "substr",
    // end of bitmaps and string bit operations
];

/// The subcommands forkdb supports, as `container|sub`.
pub const SUPPORTED_SUBCOMMANDS: &[&str] = &[
    "client|id",
    "client|setname",
    "client|getname",
    "client|list",
    "pubsub|channels",
    "pubsub|numsub",
    "pubsub|numpat",
    "pubsub|shardchannels",
    "pubsub|shardnumsub",
    "pubsub|help",
    "client|info",
    "client|kill", //
    "client|unblock",
    "object|encoding",
    "object|refcount",
    "object|idletime",
    "object|freq", //
    "config|get",
    "config|set",
    "config|resetstat",
    "config|rewrite", //
    "command|count",
    "command|info",
    "command|docs",
    "command|getkeys",
    "command|getkeysandflags",
    "slowlog|get",
    "slowlog|len",
    "slowlog|reset",
    "slowlog|help",
    "latency|latest",
    "latency|history",
    "latency|reset",
    "latency|doctor",
    "latency|graph",
    "latency|histogram",
    "latency|help",
    "memory|usage",
    "memory|stats",
    "memory|doctor",
    "memory|malloc-stats",
    "memory|purge",
    "memory|help",
];

/// Collects failed reply checks so that a test reports all of them at once.
#[derive(Default)]
pub struct Checks {
    failures: Vec<String>,
}

impl Checks {
    pub fn new() -> Checks {
        Checks::default()
    }

    /// Sends `args` on `conn` and records a failure unless the raw reply is exactly `expected`.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, conn: &mut Conn, args: &[A], expected: &[u8]) {
        let got = conn.cmd(args);
        if got != expected {
            let name: Vec<String> = args
                .iter()
                .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
                .collect();
            self.failures.push(format!(
                "`{}`\n    want {}\n    got  {}",
                name.join(" "),
                resp::show(expected),
                resp::show(&got)
            ));
        }
    }

    /// Records a failure described by `message` unless `ok`.
    pub fn check(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(message());
        }
    }

    /// Panics listing every recorded failure.
    #[track_caller]
    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} checks failed:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// Polls `f` until it returns `Some` or `timeout` passes (then panics with `what`).
#[track_caller]
pub fn poll_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
