//! Options, read as redis-server reads them: `forkdb-server [config-file] [--name value ...]`.
//!
//! The config file has redis.conf syntax (one directive a line, `#` comments, arguments split
//! like redis-cli splits them, with quotes). Command-line options are appended to the file's text as
//! further lines, exactly as redis-server does, so both go through one parser and a bad option is
//! reported with its line. Each option is one row of [`OPTIONS`]: its name, flags, and how to read and
//! write it; CONFIG GET / SET / REWRITE use the same rows.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::util::parse_memory;

/// Option flags.
pub const IMMUTABLE: u8 = 1;
/// Refused by CONFIG SET unless `enable-protected-configs` allows it (Redis 7).
pub const PROTECTED: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectedMode {
    No,
    Yes,
    Local,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub config_file: Option<PathBuf>,
    pub port: u16,
    pub bind: Vec<String>,
    /// Absolute path of the working directory (the process chdir()s there, as Redis does).
    pub dir: PathBuf,
    pub dbfilename: String,
    /// Save points: (seconds, changes).
    pub save: Vec<(u64, u64)>,
    pub requirepass: String,
    pub databases: usize,
    pub maxclients: u64,
    pub timeout: u64,
    pub loglevel: String,
    pub logfile: String,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    pub hz: u32,
    pub enable_protected_configs: ProtectedMode,
    pub protected_mode: bool,
    pub appendonly: bool,
    pub daemonize: bool,
    pub rdbcompression: bool,
    pub rdbchecksum: bool,
    pub stop_writes_on_bgsave_error: bool,
    pub rdb_key_save_delay: i64,
    /// The encoding thresholds of the container types (Redis 7.0's names; see `crate::types`).
    pub hash_max_listpack_entries: u64,
    pub hash_max_listpack_value: u64,
    pub zset_max_listpack_entries: u64,
    pub zset_max_listpack_value: u64,
    pub set_max_intset_entries: u64,
    pub list_max_listpack_size: i64,
    pub list_compress_depth: i64,
    /// `key-load-delay`: microseconds to wait after each key loaded (a testing knob, as in
    /// Redis 7.0; negative = 1 µs with probability 1/-n, Redis's `debugDelay`).
    pub key_load_delay: i64,
    pub oom_score_adj_values: [i32; 3],
    pub disable_thp: bool,
    /// 0 = no limit. Over the limit, writes that may grow memory evict or fail per the policy.
    pub maxmemory: u64,
    pub maxmemory_policy: String,
    /// `sanitize-dump-payload` (no|yes|clients): accepted and reported; forkdb validates every
    /// RESTORE payload and RDB value in depth whatever it says (as Redis does with `yes`).
    pub sanitize_dump_payload: &'static str,
    pub enable_debug_command: ProtectedMode,
    pub lfu_log_factor: u32,
    pub lfu_decay_time: u32,
    /// SLOWLOG: commands slower than this many microseconds are logged (0: all; negative: none).
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: u64,
    /// LATENCY: events at or over this many milliseconds are recorded (0: off).
    pub latency_monitor_threshold: u64,
    /// INFO latencystats and LATENCY HISTOGRAM: per-command latency histograms.
    pub latency_tracking: bool,
    pub latency_tracking_info_percentiles: Vec<f64>,
    /// forkdb's own: grow tables before a snapshot fork rather than during it (see
    /// `Keyspace::reserve_headroom`). A switch so its effect on COW can be measured.
    pub snapshot_headroom: bool,
    /// forkdb's own: while a snapshot child lives, lookups leave per-key access time and LFU
    /// counter alone (Redis does this always; see `Keyspace::access_frozen`). A switch so its
    /// effect on COW can be measured.
    pub snapshot_freeze_access: bool,
    /// forkdb's own: milliseconds between two samples of a save's timeline (SNAPSHOT).
    pub snapshot_sample_interval: u64,
    /// forkdb's own: the child gives back the pages of values it has written (see persist.rs).
    pub snapshot_child_release: bool,
    /// forkdb's own: keys and values up to 24 bytes live inside their entry (see store.rs).
    pub inline_values: bool,
    /// `client-output-buffer-limit`, indexed by [`ClientClass`].
    pub client_obuf_limits: [ObufLimit; 3],
    /// `bgsave-default-method` (Valkey 9.2's name): the method of a BGSAVE that names none, of
    /// save points and of BGSAVE SCHEDULE.
    pub bgsave_default_method: SaveMethod,
    /// forkdb's own: the longest slice, in microseconds, the forkless walk takes from the event
    /// loop per turn (see `persist/forkless.rs`).
    pub bgsave_forkless_slice_us: u64,
    /// forkdb's own: bytes of entries the forkless walk may have queued for the writer thread
    /// before it waits (the write path may queue up to twice this before a write waits).
    pub bgsave_forkless_queue_bytes: u64,
    /// forkdb's own: how much lower than the server's the forkless writer thread's CPU priority
    /// is (a nice increment, 0-19; see `persist/forkless.rs`).
    pub bgsave_forkless_writer_nice: u64,
    /// `idle-poll-max-us`: the longest poll for client input before the event loop sleeps
    /// (`idlepoll`; 0: never poll).
    pub idle_poll_max_us: u64,
    /// Replication, master side (see `crate::repl`): the backlog's size in bytes, and how long it
    /// is kept once the last replica is gone (0: for ever).
    pub repl_backlog_size: u64,
    pub repl_backlog_ttl: u64,
    /// Seconds between the PINGs a master sends down the stream.
    pub repl_ping_replica_period: u64,
    /// Seconds without an ACK after which an online replica is dropped.
    pub repl_timeout: u64,
    /// Full syncs stream the snapshot to replicas that can read it (`capa eof`) through a pipe
    /// rather than a file; the fork waits `repl-diskless-sync-delay` seconds for more replicas,
    /// or until `repl-diskless-sync-max-replicas` wait (0: no such limit). Redis 7.0's defaults.
    pub repl_diskless_sync: bool,
    pub repl_diskless_sync_delay: u64,
    pub repl_diskless_sync_max_replicas: u64,
    /// Writes are refused with `-NOREPLICAS` unless this many replicas have acked within
    /// `min-replicas-max-lag` seconds (0: no check).
    pub min_replicas_to_write: u64,
    pub min_replicas_max_lag: u64,
    /// Replication, replica side: the credentials sent to the master, and whether clients may
    /// write to a replica.
    pub masterauth: String,
    pub masteruser: String,
    pub replica_read_only: bool,
    /// While the link to the master is down, a replica answers commands (yes) or `-MASTERDOWN`.
    pub replica_serve_stale_data: bool,
    /// `replicaof host port` at start-up: the master to follow once the data set is loaded.
    pub replicaof: Option<(String, u16)>,
}

/// How a background save takes its snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMethod {
    /// A `fork()`ed child writes what it inherited (Redis's way).
    Fork,
    /// The keyspace's own thread walks the data and a writer thread writes it; the write path
    /// writes an entry out before changing it (`persist/forkless.rs`).
    Forkless,
}

impl SaveMethod {
    pub fn name(self) -> &'static str {
        match self {
            SaveMethod::Fork => "fork",
            SaveMethod::Forkless => "forkless",
        }
    }
}

/// The client classes `client-output-buffer-limit` names, in Redis's order (`CLIENT_TYPE_*`).
/// forkdb has no replicas and no Pub/Sub yet: their limits are kept, shown and rewritten, and
/// apply once such clients exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientClass {
    Normal = 0,
    Replica = 1,
    Pubsub = 2,
}

/// One class's output buffer limit: a client whose pending replies reach `hard` bytes, or
/// stay at or above `soft` bytes for more than `soft_seconds`, is closed. 0 = no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObufLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: u64,
}

/// Redis's `clientBufferLimitsDefaults`.
pub const OBUF_LIMIT_DEFAULTS: [ObufLimit; 3] = [
    ObufLimit {
        hard: 0,
        soft: 0,
        soft_seconds: 0,
    },
    ObufLimit {
        hard: 256 << 20,
        soft: 64 << 20,
        soft_seconds: 60,
    },
    ObufLimit {
        hard: 32 << 20,
        soft: 8 << 20,
        soft_seconds: 60,
    },
];

/// Redis's class names for CONFIG GET (`getClientTypeName`).
const OBUF_CLASS_NAMES: [&str; 3] = ["normal", "slave", "pubsub"];

/// `client-output-buffer-limit <class> <hard> <soft> <soft seconds> [...]`, as Redis's
/// `updateClientOutputBufferLimit`: all or nothing, only the classes named change.
fn parse_obuf_limits(v: &str, current: [ObufLimit; 3]) -> Result<[ObufLimit; 3], String> {
    let args: Vec<&str> = v.split_whitespace().collect();
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut out = current;
    for group in args.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => ClientClass::Normal,
            "slave" | "replica" => ClientClass::Replica,
            "pubsub" => ClientClass::Pubsub,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = parse_memory(group[1]).ok_or_else(bad)?;
        let soft = parse_memory(group[2]).ok_or_else(bad)?;
        let secs = crate::util::parse_i64(group[3].as_bytes())
            .filter(|s| *s >= 0)
            .ok_or_else(bad)?;
        out[class as usize] = ObufLimit {
            hard,
            soft,
            soft_seconds: secs as u64,
        };
    }
    Ok(out)
}

fn format_obuf_limits(limits: &[ObufLimit; 3]) -> String {
    let mut s = String::new();
    for (name, l) in OBUF_CLASS_NAMES.iter().zip(limits) {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "{name} {} {} {}", l.hard, l.soft, l.soft_seconds);
    }
    s
}

impl Default for Config {
    fn default() -> Self {
        Config {
            config_file: None,
            port: 6379,
            bind: vec!["127.0.0.1".into(), "-::1".into()],
            dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            dbfilename: "dump.rdb".into(),
            save: vec![(3600, 1), (300, 100), (60, 10000)],
            requirepass: String::new(),
            databases: 16,
            maxclients: 10000,
            timeout: 0,
            loglevel: "notice".into(),
            logfile: String::new(),
            proto_max_bulk_len: 512 << 20,
            client_query_buffer_limit: 1 << 30,
            hz: 10,
            enable_protected_configs: ProtectedMode::No,
            protected_mode: true,
            appendonly: false,
            daemonize: false,
            rdbcompression: true,
            rdbchecksum: true,
            stop_writes_on_bgsave_error: true,
            rdb_key_save_delay: 0,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            set_max_intset_entries: 512,
            list_max_listpack_size: -2,
            list_compress_depth: 0,
            key_load_delay: 0,
            oom_score_adj_values: [0, 200, 800],
            disable_thp: true,
            maxmemory: 0,
            maxmemory_policy: "noeviction".into(),
            sanitize_dump_payload: "no",
            enable_debug_command: ProtectedMode::No,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            slowlog_log_slower_than: 10000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            latency_tracking: true,
            latency_tracking_info_percentiles: vec![50.0, 99.0, 99.9],
            snapshot_headroom: true,
            snapshot_freeze_access: true,
            snapshot_sample_interval: 100,
            snapshot_child_release: true,
            bgsave_default_method: SaveMethod::Fork,
            bgsave_forkless_slice_us: 100,
            bgsave_forkless_queue_bytes: 2 * 1024 * 1024,
            bgsave_forkless_writer_nice: 8,
            idle_poll_max_us: 30,
            inline_values: true,
            client_obuf_limits: OBUF_LIMIT_DEFAULTS,
            repl_backlog_size: 1 << 20,
            repl_backlog_ttl: 3600,
            repl_ping_replica_period: 10,
            repl_timeout: 60,
            repl_diskless_sync: true,
            repl_diskless_sync_delay: 5,
            repl_diskless_sync_max_replicas: 0,
            min_replicas_to_write: 0,
            min_replicas_max_lag: 10,
            masterauth: String::new(),
            masteruser: String::new(),
            replica_read_only: true,
            replica_serve_stale_data: true,
            replicaof: None,
        }
    }
}

type Getter = fn(&Config) -> String;
type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// One option: the row CONFIG GET/SET/REWRITE and the loader share.
pub struct OptSpec {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub flags: u8,
    pub get: Getter,
    pub set: Setter,
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

fn parse_int(v: &str, min: i64, max: i64) -> Result<i64, String> {
    let n: i64 = crate::util::parse_i64(v.as_bytes())
        .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

fn parse_mem(v: &str, min: u64, max: u64) -> Result<u64, String> {
    let n = parse_memory(v).ok_or_else(|| "argument must be a memory value".to_string())?;
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

fn parse_enum<'a>(v: &str, allowed: &[&'a str]) -> Result<&'a str, String> {
    let lower = v.to_ascii_lowercase();
    allowed
        .iter()
        .find(|a| **a == lower)
        .copied()
        .ok_or_else(|| {
            format!(
                "argument(s) must be one of the following: {}",
                allowed.join(", ")
            )
        })
}

/// Parses `save` as Redis 7: pairs of "seconds changes", or "" for none.
pub fn parse_save(v: &str) -> Result<Vec<(u64, u64)>, String> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    if !parts.len().is_multiple_of(2) {
        return Err("Invalid save parameters".into());
    }
    let mut points = Vec::new();
    for pair in parts.chunks(2) {
        let secs = crate::util::parse_i64(pair[0].as_bytes());
        let changes = crate::util::parse_i64(pair[1].as_bytes());
        match (secs, changes) {
            (Some(s), Some(c)) if s >= 1 && c >= 0 => points.push((s as u64, c as u64)),
            _ => return Err("Invalid save parameters".into()),
        }
    }
    Ok(points)
}

fn format_save(points: &[(u64, u64)]) -> String {
    let mut s = String::new();
    for (secs, changes) in points {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "{secs} {changes}");
    }
    s
}

/// A yes/no option stored in a `bool` field of [`Config`].
macro_rules! bool_option {
    ($name:literal, $field:ident, $flags:expr) => {
        OptSpec {
            name: $name,
            alias: None,
            flags: $flags,
            get: |c| yes_no(c.$field),
            set: |c, v| {
                c.$field = parse_bool(v)?;
                Ok(())
            },
        }
    };
}

/// An integer option in `min..=max` stored in a field of type `$ty`.
macro_rules! int_option {
    ($name:literal, $field:ident, $ty:ty, $min:expr, $max:expr, $flags:expr) => {
        OptSpec {
            name: $name,
            alias: None,
            flags: $flags,
            get: |c| c.$field.to_string(),
            set: |c, v| {
                c.$field = parse_int(v, $min, $max)? as $ty;
                Ok(())
            },
        }
    };
}

/// An option with Redis's `size_t` rules (0..=LONG_MAX) and an old name it still answers to
/// (Redis 7.0 renamed `*-ziplist-*` to `*-listpack-*`); `mem` options also take units (`64kb`).
macro_rules! size_option {
    ($name:literal, $alias:expr, $field:ident, mem) => {
        OptSpec {
            name: $name,
            alias: $alias,
            flags: 0,
            get: |c| c.$field.to_string(),
            set: |c, v| {
                c.$field = parse_mem(v, 0, i64::MAX as u64)?;
                Ok(())
            },
        }
    };
    ($name:literal, $alias:expr, $field:ident, int) => {
        OptSpec {
            name: $name,
            alias: $alias,
            flags: 0,
            get: |c| c.$field.to_string(),
            set: |c, v| {
                c.$field = parse_int(v, 0, i64::MAX)? as u64;
                Ok(())
            },
        }
    };
}

/// Every option forkdb has, in the order CONFIG GET and REWRITE list them.
pub static OPTIONS: &[OptSpec] = &[
    int_option!("port", port, u16, 0, 65535, IMMUTABLE),
    OptSpec {
        name: "bind",
        alias: None,
        flags: IMMUTABLE,
        get: |c| c.bind.join(" "),
        set: |c, v| {
            let addrs: Vec<String> = v.split_whitespace().map(str::to_string).collect();
            if addrs.is_empty() {
                return Err("Too many bind addresses specified.".into());
            }
            c.bind = addrs;
            Ok(())
        },
    },
    OptSpec {
        name: "dir",
        alias: None,
        flags: PROTECTED,
        get: |c| c.dir.display().to_string(),
        set: |c, v| {
            std::env::set_current_dir(v).map_err(|e| {
                format!(
                    "{}",
                    std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(0))
                )
            })?;
            c.dir = std::env::current_dir().map_err(|e| e.to_string())?;
            Ok(())
        },
    },
    OptSpec {
        name: "dbfilename",
        alias: None,
        flags: PROTECTED,
        get: |c| c.dbfilename.clone(),
        set: |c, v| {
            if v.contains('/') || Path::new(v).components().count() != 1 {
                return Err("dbfilename can't be a path, just a filename".into());
            }
            c.dbfilename = v.to_string();
            Ok(())
        },
    },
    OptSpec {
        name: "save",
        alias: None,
        flags: 0,
        get: |c| format_save(&c.save),
        set: |c, v| {
            c.save = parse_save(v)?;
            Ok(())
        },
    },
    OptSpec {
        name: "requirepass",
        alias: None,
        flags: 0,
        get: |c| c.requirepass.clone(),
        set: |c, v| {
            c.requirepass = v.to_string();
            Ok(())
        },
    },
    int_option!("databases", databases, usize, 1, i32::MAX as i64, IMMUTABLE),
    int_option!("maxclients", maxclients, u64, 1, i64::MAX, 0),
    int_option!("timeout", timeout, u64, 0, i32::MAX as i64, 0),
    OptSpec {
        name: "loglevel",
        alias: None,
        flags: 0,
        get: |c| c.loglevel.clone(),
        set: |c, v| {
            c.loglevel = parse_enum(v, &["debug", "verbose", "notice", "warning"])?.to_string();
            Ok(())
        },
    },
    OptSpec {
        name: "logfile",
        alias: None,
        flags: IMMUTABLE,
        get: |c| c.logfile.clone(),
        set: |c, v| {
            c.logfile = v.to_string();
            Ok(())
        },
    },
    OptSpec {
        name: "proto-max-bulk-len",
        alias: None,
        flags: 0,
        get: |c| c.proto_max_bulk_len.to_string(),
        set: |c, v| {
            c.proto_max_bulk_len = parse_mem(v, 1 << 20, i64::MAX as u64)?;
            Ok(())
        },
    },
    OptSpec {
        name: "client-query-buffer-limit",
        alias: None,
        flags: 0,
        get: |c| c.client_query_buffer_limit.to_string(),
        set: |c, v| {
            c.client_query_buffer_limit = parse_mem(v, 1 << 20, i64::MAX as u64)?;
            Ok(())
        },
    },
    OptSpec {
        name: "hz",
        alias: None,
        flags: 0,
        get: |c| c.hz.to_string(),
        set: |c, v| {
            // Redis accepts any non-negative value and clamps it to 1..=500.
            c.hz = parse_int(v, 0, i32::MAX as i64)?.clamp(1, 500) as u32;
            Ok(())
        },
    },
    OptSpec {
        name: "enable-protected-configs",
        alias: None,
        flags: IMMUTABLE,
        get: |c| protected_mode_name(c.enable_protected_configs).to_string(),
        set: |c, v| {
            c.enable_protected_configs = parse_protected_mode(v)?;
            Ok(())
        },
    },
    bool_option!("protected-mode", protected_mode, 0),
    OptSpec {
        name: "appendonly",
        alias: None,
        flags: 0,
        get: |c| yes_no(c.appendonly),
        set: |c, v| {
            if parse_bool(v)? {
                return Err("forkdb has no append-only file; only 'no' is accepted".into());
            }
            c.appendonly = false;
            Ok(())
        },
    },
    OptSpec {
        name: "daemonize",
        alias: None,
        flags: IMMUTABLE,
        get: |c| yes_no(c.daemonize),
        set: |c, v| {
            if parse_bool(v)? {
                return Err("forkdb does not daemonize; run it under a supervisor".into());
            }
            c.daemonize = false;
            Ok(())
        },
    },
    bool_option!("rdbcompression", rdbcompression, 0),
    bool_option!("rdbchecksum", rdbchecksum, IMMUTABLE),
    bool_option!(
        "stop-writes-on-bgsave-error",
        stop_writes_on_bgsave_error,
        0
    ),
    OptSpec {
        name: "key-load-delay",
        alias: None,
        flags: 0,
        get: |c| c.key_load_delay.to_string(),
        set: |c, v| {
            c.key_load_delay = parse_int(v, i32::MIN as i64, i32::MAX as i64)?;
            Ok(())
        },
    },
    size_option!(
        "hash-max-listpack-entries",
        Some("hash-max-ziplist-entries"),
        hash_max_listpack_entries,
        int
    ),
    size_option!(
        "hash-max-listpack-value",
        Some("hash-max-ziplist-value"),
        hash_max_listpack_value,
        mem
    ),
    size_option!(
        "zset-max-listpack-entries",
        Some("zset-max-ziplist-entries"),
        zset_max_listpack_entries,
        int
    ),
    size_option!(
        "zset-max-listpack-value",
        Some("zset-max-ziplist-value"),
        zset_max_listpack_value,
        mem
    ),
    size_option!("set-max-intset-entries", None, set_max_intset_entries, int),
    OptSpec {
        name: "list-max-listpack-size",
        alias: Some("list-max-ziplist-size"),
        flags: 0,
        get: |c| c.list_max_listpack_size.to_string(),
        set: |c, v| {
            c.list_max_listpack_size = parse_int(v, i32::MIN as i64, i32::MAX as i64)?;
            Ok(())
        },
    },
    OptSpec {
        name: "list-compress-depth",
        alias: None,
        flags: 0,
        get: |c| c.list_compress_depth.to_string(),
        set: |c, v| {
            c.list_compress_depth = parse_int(v, 0, i32::MAX as i64)?;
            Ok(())
        },
    },
    OptSpec {
        name: "rdb-key-save-delay",
        alias: None,
        flags: 0,
        get: |c| c.rdb_key_save_delay.to_string(),
        set: |c, v| {
            c.rdb_key_save_delay = parse_int(v, i32::MIN as i64, i32::MAX as i64)?;
            Ok(())
        },
    },
    OptSpec {
        name: "oom-score-adj-values",
        alias: None,
        flags: 0,
        get: |c| {
            let [a, b, d] = c.oom_score_adj_values;
            format!("{a} {b} {d}")
        },
        set: |c, v| {
            let parts: Vec<&str> = v.split_whitespace().collect();
            if parts.len() != 3 {
                return Err("Invalid oom-score-adj-values".into());
            }
            let mut vals = [0i32; 3];
            for (slot, p) in vals.iter_mut().zip(parts) {
                *slot = parse_int(p, -2000, 2000)
                    .map_err(|_| "Invalid oom-score-adj-values".to_string())?
                    as i32;
            }
            c.oom_score_adj_values = vals;
            Ok(())
        },
    },
    bool_option!("disable-thp", disable_thp, IMMUTABLE),
    OptSpec {
        name: "maxmemory",
        alias: None,
        flags: 0,
        get: |c| c.maxmemory.to_string(),
        set: |c, v| {
            c.maxmemory = parse_mem(v, 0, i64::MAX as u64)?;
            Ok(())
        },
    },
    OptSpec {
        name: "maxmemory-policy",
        alias: None,
        flags: 0,
        get: |c| c.maxmemory_policy.clone(),
        set: |c, v| {
            c.maxmemory_policy = parse_enum(
                v,
                &[
                    "volatile-lru",
                    "volatile-lfu",
                    "volatile-random",
                    "volatile-ttl",
                    "allkeys-lru",
                    "allkeys-lfu",
                    "allkeys-random",
                    "noeviction",
                ],
            )?
            .to_string();
            Ok(())
        },
    },
    OptSpec {
        name: "sanitize-dump-payload",
        alias: None,
        flags: 0,
        get: |c| c.sanitize_dump_payload.to_string(),
        set: |c, v| {
            c.sanitize_dump_payload = parse_enum(v, &["no", "yes", "clients"])?;
            Ok(())
        },
    },
    OptSpec {
        name: "maxmemory-clients",
        alias: None,
        flags: 0,
        get: |_| "0".into(),
        set: |_, v| {
            // forkdb does not limit client buffers as a whole; 0 (off, Redis's default) is all
            // it accepts, so a setting that would not be honoured is refused, not ignored.
            if v.trim() == "0" || v.trim() == "0%" {
                Ok(())
            } else {
                Err("forkdb does not limit client memory; only 0 is accepted".into())
            }
        },
    },
    int_option!("lfu-log-factor", lfu_log_factor, u32, 0, i32::MAX as i64, 0),
    int_option!("lfu-decay-time", lfu_decay_time, u32, 0, i32::MAX as i64, 0),
    int_option!(
        "slowlog-log-slower-than",
        slowlog_log_slower_than,
        i64,
        -1,
        i64::MAX,
        0
    ),
    int_option!("slowlog-max-len", slowlog_max_len, u64, 0, i64::MAX, 0),
    int_option!(
        "latency-monitor-threshold",
        latency_monitor_threshold,
        u64,
        0,
        i64::MAX,
        0
    ),
    bool_option!("latency-tracking", latency_tracking, 0),
    OptSpec {
        name: "latency-tracking-info-percentiles",
        alias: None,
        flags: 0,
        get: |c| {
            c.latency_tracking_info_percentiles
                .iter()
                .map(|p| crate::diag::fmt_g(*p))
                .collect::<Vec<_>>()
                .join(" ")
        },
        set: |c, v| {
            // Redis: each a number in 0..=100; an empty string clears the list.
            let mut list = Vec::new();
            for w in v.split_whitespace() {
                match w.parse::<f64>() {
                    Ok(p) if (0.0..=100.0).contains(&p) => list.push(p),
                    Err(_) => {
                        return Err("Invalid latency-tracking-info-percentiles parameters".into())
                    }
                    Ok(_) => {
                        return Err(
                            "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                                .into(),
                        )
                    }
                }
            }
            c.latency_tracking_info_percentiles = list;
            Ok(())
        },
    },
    int_option!(
        "snapshot-sample-interval",
        snapshot_sample_interval,
        u64,
        1,
        60_000,
        0
    ),
    bool_option!("snapshot-child-release", snapshot_child_release, 0),
    OptSpec {
        name: "bgsave-default-method",
        alias: None,
        flags: 0,
        get: |c| c.bgsave_default_method.name().to_string(),
        set: |c, v| {
            c.bgsave_default_method = match v.to_ascii_lowercase().as_str() {
                "fork" => SaveMethod::Fork,
                "forkless" => SaveMethod::Forkless,
                _ => return Err("argument(s) must be one of the following: fork, forkless".into()),
            };
            Ok(())
        },
    },
    int_option!(
        "bgsave-forkless-slice-us",
        bgsave_forkless_slice_us,
        u64,
        10,
        1_000_000,
        0
    ),
    size_option!(
        "bgsave-forkless-queue-bytes",
        None,
        bgsave_forkless_queue_bytes,
        mem
    ),
    int_option!(
        "bgsave-forkless-writer-nice",
        bgsave_forkless_writer_nice,
        u64,
        0,
        19,
        0
    ),
    int_option!("idle-poll-max-us", idle_poll_max_us, u64, 0, 1000, 0),
    OptSpec {
        name: "inline-values",
        alias: None,
        flags: 0,
        get: |c| yes_no(c.inline_values),
        set: |c, v| {
            c.inline_values = parse_bool(v)?;
            crate::store::INLINE_VALUES
                .store(c.inline_values, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        },
    },
    bool_option!("snapshot-table-headroom", snapshot_headroom, 0),
    bool_option!("snapshot-freeze-access", snapshot_freeze_access, 0),
    OptSpec {
        name: "client-output-buffer-limit",
        alias: None,
        flags: 0,
        get: |c| format_obuf_limits(&c.client_obuf_limits),
        set: |c, v| {
            c.client_obuf_limits = parse_obuf_limits(v, c.client_obuf_limits)?;
            Ok(())
        },
    },
    OptSpec {
        name: "enable-debug-command",
        alias: None,
        flags: IMMUTABLE,
        get: |c| protected_mode_name(c.enable_debug_command).to_string(),
        set: |c, v| {
            c.enable_debug_command = parse_protected_mode(v)?;
            Ok(())
        },
    },
    OptSpec {
        name: "repl-backlog-size",
        alias: None,
        flags: 0,
        get: |c| c.repl_backlog_size.to_string(),
        set: |c, v| {
            c.repl_backlog_size = parse_mem(v, 1, i64::MAX as u64)?;
            Ok(())
        },
    },
    int_option!(
        "repl-backlog-ttl",
        repl_backlog_ttl,
        u64,
        0,
        i32::MAX as i64,
        0
    ),
    OptSpec {
        alias: Some("repl-ping-slave-period"),
        ..int_option!(
            "repl-ping-replica-period",
            repl_ping_replica_period,
            u64,
            1,
            i32::MAX as i64,
            0
        )
    },
    int_option!("repl-timeout", repl_timeout, u64, 1, i32::MAX as i64, 0),
    bool_option!("repl-diskless-sync", repl_diskless_sync, 0),
    int_option!(
        "repl-diskless-sync-delay",
        repl_diskless_sync_delay,
        u64,
        0,
        i32::MAX as i64,
        0
    ),
    int_option!(
        "repl-diskless-sync-max-replicas",
        repl_diskless_sync_max_replicas,
        u64,
        0,
        i32::MAX as i64,
        0
    ),
    OptSpec {
        alias: Some("min-slaves-to-write"),
        ..int_option!(
            "min-replicas-to-write",
            min_replicas_to_write,
            u64,
            0,
            i32::MAX as i64,
            0
        )
    },
    OptSpec {
        alias: Some("min-slaves-max-lag"),
        ..int_option!(
            "min-replicas-max-lag",
            min_replicas_max_lag,
            u64,
            0,
            i32::MAX as i64,
            0
        )
    },
    OptSpec {
        name: "masterauth",
        alias: None,
        flags: 0,
        get: |c| c.masterauth.clone(),
        set: |c, v| {
            c.masterauth = v.to_string();
            Ok(())
        },
    },
    OptSpec {
        name: "masteruser",
        alias: None,
        flags: 0,
        get: |c| c.masteruser.clone(),
        set: |c, v| {
            c.masteruser = v.to_string();
            Ok(())
        },
    },
    OptSpec {
        alias: Some("slave-read-only"),
        ..bool_option!("replica-read-only", replica_read_only, 0)
    },
    OptSpec {
        alias: Some("slave-serve-stale-data"),
        ..bool_option!("replica-serve-stale-data", replica_serve_stale_data, 0)
    },
    OptSpec {
        name: "replicaof",
        alias: Some("slaveof"),
        flags: IMMUTABLE,
        get: |c| match &c.replicaof {
            Some((host, port)) => format!("{host} {port}"),
            None => String::new(),
        },
        set: |c, v| {
            let parts: Vec<&str> = v.split_whitespace().collect();
            match parts.as_slice() {
                [] => c.replicaof = None,
                [no, one] if no.eq_ignore_ascii_case("no") && one.eq_ignore_ascii_case("one") => {
                    c.replicaof = None
                }
                [host, port] => {
                    let port = parse_int(port, 0, 65535).map_err(|_| "Invalid master port")?;
                    c.replicaof = Some((host.to_string(), port as u16));
                }
                _ => return Err("wrong number of arguments".into()),
            }
            Ok(())
        },
    },
];

fn protected_mode_name(m: ProtectedMode) -> &'static str {
    match m {
        ProtectedMode::No => "no",
        ProtectedMode::Yes => "yes",
        ProtectedMode::Local => "local",
    }
}

fn parse_protected_mode(v: &str) -> Result<ProtectedMode, String> {
    Ok(match parse_enum(v, &["no", "yes", "local"])? {
        "yes" => ProtectedMode::Yes,
        "local" => ProtectedMode::Local,
        _ => ProtectedMode::No,
    })
}

pub fn find_option(name: &str) -> Option<&'static OptSpec> {
    let lower = name.to_ascii_lowercase();
    OPTIONS
        .iter()
        .find(|o| o.name == lower || o.alias == Some(lower.as_str()))
}

/// A start-up configuration error, printed as redis-server prints its own.
#[derive(Debug)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub line_no: usize,
    pub line: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "\n*** FATAL CONFIG FILE ERROR (forkdb {}) ***",
            crate::FORKDB_VERSION
        )?;
        match &self.file {
            Some(p) => writeln!(
                f,
                "Reading the configuration file {}, at line {}",
                p.display(),
                self.line_no
            )?,
            None => writeln!(
                f,
                "Reading the configuration from the command line, at line {}",
                self.line_no
            )?,
        }
        writeln!(f, ">>> '{}'", self.line)?;
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Splits a config line into arguments as redis's `sdssplitargs`: spaces separate, "double quotes"
/// with \n \r \t \b \a \\ \" and \xHH escapes, 'single quotes' with only \'. None on unbalanced quotes.
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return Some(out);
        }
        let mut cur: Vec<u8> = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if i >= b.len() {
                    return None;
                }
                if b[i] == b'\\'
                    && i + 3 < b.len()
                    && b[i + 1] == b'x'
                    && b[i + 2].is_ascii_hexdigit()
                    && b[i + 3].is_ascii_hexdigit()
                {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).ok()?;
                    cur.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 3;
                } else if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                    cur.push(match b[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if b[i] == b'"' {
                    // A closing quote must be followed by a space or the end.
                    if i + 1 < b.len() && !b[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    inq = false;
                    i += 1;
                    break;
                } else {
                    cur.push(b[i]);
                }
            } else if insq {
                if i >= b.len() {
                    return None;
                }
                if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if b[i] == b'\'' {
                    if i + 1 < b.len() && !b[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    insq = false;
                    i += 1;
                    break;
                } else {
                    cur.push(b[i]);
                }
            } else {
                if i >= b.len() {
                    break;
                }
                match b[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        let _ = (inq, insq);
        out.push(String::from_utf8_lossy(&cur).into_owned());
    }
}

/// Builds the configuration from the process arguments (without argv[0]).
pub fn load(args: &[String]) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    let mut text = String::new();
    let mut rest = args;
    if let Some(first) = args.first() {
        if !first.starts_with("--") {
            let path = PathBuf::from(first);
            text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
                file: Some(path.clone()),
                line_no: 0,
                line: String::new(),
                message: format!(
                    "Fatal error, can't open config file '{}': {e}",
                    path.display()
                ),
            })?;
            cfg.config_file = Some(std::fs::canonicalize(&path).unwrap_or(path));
            rest = &args[1..];
        }
    }
    let file_lines = text.lines().count();
    // Command-line options become further lines: `--port 7000 --save ""` → `port 7000`, `save ""`.
    let mut extra = String::new();
    for a in rest {
        if let Some(name) = a.strip_prefix("--") {
            if !extra.is_empty() {
                extra.push('\n');
            }
            extra.push_str(name);
        } else {
            extra.push(' ');
            extra.push_str(&quote_arg(a));
        }
    }
    let mut seen_save = false;
    let file_path = cfg.config_file.clone();
    for (idx, line) in text.lines().chain(extra.lines()).enumerate() {
        let from_file = idx < file_lines;
        let fail = |message: String| ConfigError {
            file: if from_file { file_path.clone() } else { None },
            line_no: if from_file {
                idx + 1
            } else {
                idx - file_lines + 1
            },
            line: line.to_string(),
            message,
        };
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let argv = split_args(trimmed)
            .ok_or_else(|| fail("Unbalanced quotes in configuration line".into()))?;
        if argv.is_empty() {
            continue;
        }
        let name = argv[0].to_ascii_lowercase();
        let Some(opt) = find_option(&name) else {
            return Err(fail("Bad directive or wrong number of arguments".into()));
        };
        let multi = matches!(
            name.as_str(),
            "save"
                | "bind"
                | "oom-score-adj-values"
                | "client-output-buffer-limit"
                | "replicaof"
                | "slaveof"
        );
        if argv.len() < 2 || (!multi && argv.len() != 2) {
            return Err(fail("Bad directive or wrong number of arguments".into()));
        }
        let value = argv[1..].join(" ");
        if name == "save" {
            // The first `save` line replaces the defaults; later ones add points (redis.conf style).
            let points = parse_save(&value).map_err(fail)?;
            if seen_save {
                cfg.save.extend(points);
            } else {
                cfg.save = points;
            }
            seen_save = true;
            continue;
        }
        (opt.set)(&mut cfg, &value).map_err(|m| {
            if name == "dir" {
                fail(format!("Can't chdir to '{value}': {m}"))
            } else {
                fail(m)
            }
        })?;
    }
    Ok(cfg)
}

/// Quotes a command-line value so that `split_args` gives it back whole.
fn quote_arg(a: &str) -> String {
    if !a.is_empty()
        && !a
            .bytes()
            .any(|c| c.is_ascii_whitespace() || c == b'"' || c == b'\'' || c == b'\\')
    {
        return a.to_string();
    }
    let mut s = String::from("\"");
    for c in a.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

impl Config {
    /// CONFIG REWRITE: rewrites the config file with the current values. Lines of known options are
    /// updated in place (the first occurrence; repeats are dropped), comments are kept, and options
    /// that differ from their default and are missing are appended, as redis does.
    pub fn rewrite(&self) -> Result<(), String> {
        let path = self
            .config_file
            .as_ref()
            .ok_or_else(|| "The server is running without a config file".to_string())?;
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let defaults = Config::default();
        let mut done: Vec<&str> = Vec::new();
        let mut out = String::new();
        for line in old.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            let name = split_args(trimmed)
                .and_then(|a| a.into_iter().next())
                .map(|n| n.to_ascii_lowercase())
                .unwrap_or_default();
            match find_option(&name) {
                Some(opt) if !done.contains(&opt.name) => {
                    done.push(opt.name);
                    out.push_str(&self.directive(opt));
                }
                Some(_) => {}
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        let mut header = false;
        for opt in OPTIONS {
            if done.contains(&opt.name)
                || (opt.get)(self) == (opt.get)(&defaults)
                || opt.name == "dir" && self.dir == defaults.dir
            {
                continue;
            }
            if !header {
                out.push_str("# Generated by CONFIG REWRITE\n");
                header = true;
            }
            out.push_str(&self.directive(opt));
        }
        let tmp = path.with_extension("tmp-rewrite");
        std::fs::write(&tmp, out)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| format!("Rewriting config file: {e}"))
    }

    fn directive(&self, opt: &OptSpec) -> String {
        let value = (opt.get)(self);
        if opt.name == "save" {
            if self.save.is_empty() {
                return "save \"\"\n".into();
            }
            return self
                .save
                .iter()
                .map(|(s, c)| format!("save {s} {c}\n"))
                .collect();
        }
        if opt.name == "bind" || opt.name == "oom-score-adj-values" {
            return format!("{} {}\n", opt.name, value);
        }
        if opt.name == "client-output-buffer-limit" {
            // One line per class, as Redis rewrites it (`replica`, not `slave`).
            return ["normal", "replica", "pubsub"]
                .iter()
                .zip(&self.client_obuf_limits)
                .map(|(class, l)| {
                    format!(
                        "client-output-buffer-limit {class} {} {} {}\n",
                        l.hard, l.soft, l.soft_seconds
                    )
                })
                .collect();
        }
        format!("{} {}\n", opt.name, quote_arg(&value))
    }

    /// The LFU parameters the keyspace needs, when an LFU policy is selected.
    pub fn lfu_params(&self) -> Option<crate::store::LfuParams> {
        self.maxmemory_policy
            .contains("lfu")
            .then_some(crate::store::LfuParams {
                log_factor: self.lfu_log_factor,
                decay_minutes: self.lfu_decay_time,
            })
    }

    /// The path of the RDB file.
    pub fn rdb_path(&self) -> PathBuf {
        self.dir.join(&self.dbfilename)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn command_line_options() {
        let c = load(&args(&[
            "--port",
            "7001",
            "--save",
            "",
            "--requirepass",
            "a b",
        ]))
        .unwrap();
        assert_eq!(c.port, 7001);
        assert!(c.save.is_empty());
        assert_eq!(c.requirepass, "a b");
    }

    #[test]
    fn unknown_option_names_it_and_the_line() {
        let e = load(&args(&["--port", "7001", "--bogus", "1"])).unwrap_err();
        assert_eq!(e.line_no, 2);
        assert_eq!(e.line, "bogus 1");
        assert!(e.to_string().contains("Bad directive"));
        let e = load(&args(&["--port", "x"])).unwrap_err();
        assert!(
            e.to_string()
                .contains("argument couldn't be parsed into an integer"),
            "{e}"
        );
    }

    #[test]
    fn save_lines_accumulate() {
        let c = load(&args(&["--save", "100 1", "--save", "50 2"])).unwrap();
        assert_eq!(c.save, vec![(100, 1), (50, 2)]);
        assert_eq!(format_save(&c.save), "100 1 50 2");
    }

    #[test]
    fn output_buffer_limits_as_redis_parses_them() {
        let c = Config::default();
        assert_eq!(
            format_obuf_limits(&c.client_obuf_limits),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        let l =
            parse_obuf_limits("normal 10mb 5mb 10 replica 1gb 0 0", c.client_obuf_limits).unwrap();
        assert_eq!(
            format_obuf_limits(&l),
            "normal 10485760 5242880 10 slave 1073741824 0 0 pubsub 33554432 8388608 60"
        );
        for (bad, why) in [
            ("normal 1 2", "Wrong number"),
            ("master 1 2 3", "Invalid client class"),
            ("normal 1x 2 3", "Error in hard"),
            ("normal 1 2 -3", "Error in hard"),
        ] {
            let e = parse_obuf_limits(bad, c.client_obuf_limits).unwrap_err();
            assert!(e.starts_with(why), "{bad}: {e}");
        }
        // A config file may spread the classes over several lines.
        let c = load(&args(&[
            "--client-output-buffer-limit",
            "normal 1mb 1mb 1",
            "--client-output-buffer-limit",
            "pubsub 0 0 0",
        ]))
        .unwrap();
        assert_eq!(c.client_obuf_limits[0].hard, 1 << 20);
        assert_eq!(c.client_obuf_limits[2].hard, 0);
        assert_eq!(c.client_obuf_limits[1], OBUF_LIMIT_DEFAULTS[1]);
    }

    #[test]
    fn split_like_redis() {
        assert_eq!(split_args(r#"save "" "#).unwrap(), vec!["save", ""]);
        assert_eq!(
            split_args(r#"a "b\x41" 'c\'d'"#).unwrap(),
            vec!["a", "bA", "c'd"]
        );
        assert!(split_args(r#"a "b"#).is_none());
    }
}
