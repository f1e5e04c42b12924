//! The command table: every command's name, arity (Redis's convention: N exactly, -N at least N,
//! counting the name), flags, key positions and documentation. Dispatch and the COMMAND command
//! read the same rows, so what redis-cli learns from `COMMAND DOCS` is what the server does.
//!
//! The `write` flag marks commands refused with `-MISCONF` after a failed background save; the
//! dirty counter (`rdb_changes_since_last_save`) is advanced by the handlers themselves, by the
//! number of keys they really changed, as Redis's do (a `SET NX` that sets nothing adds nothing).

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::cmd;
use crate::server::Ctx;

pub type Handler = fn(&mut Ctx, &[Bytes]);

pub const WRITE: u32 = 1;
pub const READONLY: u32 = 1 << 1;
pub const DENYOOM: u32 = 1 << 2;
pub const ADMIN: u32 = 1 << 3;
pub const NOSCRIPT: u32 = 1 << 4;
pub const LOADING: u32 = 1 << 5;
pub const STALE: u32 = 1 << 6;
pub const FAST: u32 = 1 << 7;
pub const NO_AUTH: u32 = 1 << 8;
pub const NO_MULTI: u32 = 1 << 9;
pub const ALLOW_BUSY: u32 = 1 << 10;
pub const SKIP_SLOWLOG: u32 = 1 << 11;

/// Flag names as COMMAND reports them, in Redis's order.
pub const FLAG_NAMES: &[(u32, &str)] = &[
    (WRITE, "write"),
    (READONLY, "readonly"),
    (DENYOOM, "denyoom"),
    (ADMIN, "admin"),
    (NOSCRIPT, "noscript"),
    (LOADING, "loading"),
    (STALE, "stale"),
    (SKIP_SLOWLOG, "skip_slowlog"),
    (FAST, "fast"),
    (NO_AUTH, "no_auth"),
    (NO_MULTI, "no_multi"),
    (ALLOW_BUSY, "allow_busy"),
];

pub struct CommandSpec {
    /// Lower-case full name: `get`, or `client|kill` for a subcommand (as Redis names them in
    /// errors, COMMAND and commandstats).
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    /// Arguments in a compact form that `COMMAND DOCS` expands (see `cmd::command`).
    pub args: &'static str,
    pub handler: Handler,
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $group:literal, $since:literal, $summary:literal, $cx:literal, $args:literal, $handler:expr) => {
        spec!(
            $name,
            $arity,
            $flags,
            $keys,
            $group,
            $since,
            $summary,
            $cx,
            $args,
            $handler,
            &[]
        )
    };
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $group:literal, $since:literal, $summary:literal, $cx:literal, $args:literal, $handler:expr, $subs:expr) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $keys.0,
            last_key: $keys.1,
            step: $keys.2,
            group: $group,
            since: $since,
            summary: $summary,
            complexity: $cx,
            args: $args,
            handler: $handler,
            subcommands: $subs,
        }
    };
}

const NOKEY: (i32, i32, i32) = (0, 0, 0);
const KEY1: (i32, i32, i32) = (1, 1, 1);

use cmd::{command, conn, expire, keys, multi, save, string, sys};

static CLIENT_SUBS: &[CommandSpec] = &[
    spec!("client|id", 2, NOSCRIPT | LOADING | STALE, NOKEY, "connection", "5.0.0", "Returns the unique client ID of the connection.", "O(1)", "", conn::client_id),
    spec!("client|setname", 3, NOSCRIPT | LOADING | STALE, NOKEY, "connection", "2.6.9", "Sets the connection name.", "O(1)", "connection-name:string", conn::client_setname),
    spec!("client|getname", 2, NOSCRIPT | LOADING | STALE, NOKEY, "connection", "2.6.9", "Returns the name of the connection.", "O(1)", "", conn::client_getname),
    spec!("client|list", -2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEY, "connection", "2.4.0", "Lists open connections.", "O(N) where N is the number of client connections", "?TYPE=client-type:(NORMAL|MASTER|REPLICA|PUBSUB) ?ID=client-id:integer*", conn::client_list),
    spec!("client|info", 2, NOSCRIPT | LOADING | STALE, NOKEY, "connection", "6.2.0", "Returns information about the connection.", "O(1)", "", conn::client_info),
    spec!("client|kill", -3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEY, "connection", "2.4.0", "Terminates open connections.", "O(N) where N is the number of client connections", "filter:(ip:port:string|ID=client-id:integer|ADDR=ip:port:string|LADDR=ip:port:string|SKIPME=yes/no:string)", conn::client_kill),
    spec!("client|help", 2, LOADING | STALE, NOKEY, "connection", "5.0.0", "Returns helpful text about the different subcommands.", "O(1)", "", conn::client_help),
];

static OBJECT_SUBS: &[CommandSpec] = &[
    spec!(
        "object|encoding",
        3,
        READONLY,
        (2, 2, 1),
        "generic",
        "2.2.3",
        "Returns the internal encoding of a Redis object.",
        "O(1)",
        "key",
        keys::object_encoding
    ),
    spec!(
        "object|refcount",
        3,
        READONLY,
        (2, 2, 1),
        "generic",
        "2.2.3",
        "Returns the reference count of a value of a key.",
        "O(1)",
        "key",
        keys::object_refcount
    ),
    spec!(
        "object|idletime",
        3,
        READONLY,
        (2, 2, 1),
        "generic",
        "2.2.3",
        "Returns the time since the last access to a Redis object.",
        "O(1)",
        "key",
        keys::object_idletime
    ),
    spec!(
        "object|freq",
        3,
        READONLY,
        (2, 2, 1),
        "generic",
        "4.0.0",
        "Returns the logarithmic access frequency counter of a Redis object.",
        "O(1)",
        "key",
        keys::object_freq
    ),
    spec!(
        "object|help",
        2,
        LOADING | STALE,
        NOKEY,
        "generic",
        "6.2.0",
        "Returns helpful text about the different subcommands.",
        "O(1)",
        "",
        keys::object_help
    ),
];

static CONFIG_SUBS: &[CommandSpec] = &[
    spec!(
        "config|get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NOKEY,
        "server",
        "2.0.0",
        "Returns the effective values of configuration parameters.",
        "O(N) when N is the number of configuration parameters provided",
        "parameter:string*",
        sys::config_get
    ),
    spec!(
        "config|set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NOKEY,
        "server",
        "2.0.0",
        "Sets configuration parameters in-flight.",
        "O(N) when N is the number of configuration parameters provided",
        "{parameter:string value:string}*",
        sys::config_set
    ),
    spec!(
        "config|resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NOKEY,
        "server",
        "2.0.0",
        "Resets the server's statistics.",
        "O(1)",
        "",
        sys::config_resetstat
    ),
    spec!(
        "config|rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NOKEY,
        "server",
        "2.8.0",
        "Persists the effective configuration to file.",
        "O(1)",
        "",
        sys::config_rewrite
    ),
    spec!(
        "config|help",
        2,
        LOADING | STALE,
        NOKEY,
        "server",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
        "O(1)",
        "",
        sys::config_help
    ),
];

static COMMAND_SUBS: &[CommandSpec] = &[
    spec!(
        "command|count",
        2,
        LOADING | STALE,
        NOKEY,
        "server",
        "2.8.13",
        "Returns a count of commands.",
        "O(1)",
        "",
        command::command_count
    ),
    spec!(
        "command|info",
        -2,
        LOADING | STALE,
        NOKEY,
        "server",
        "2.8.13",
        "Returns information about one, multiple or all commands.",
        "O(N) where N is the number of commands to look up",
        "?command-name:string*",
        command::command_info
    ),
    spec!(
        "command|docs",
        -2,
        LOADING | STALE,
        NOKEY,
        "server",
        "7.0.0",
        "Returns documentary information about one, multiple or all commands.",
        "O(N) where N is the number of commands to look up",
        "?command-name:string*",
        command::command_docs
    ),
    spec!(
        "command|list",
        -2,
        LOADING | STALE,
        NOKEY,
        "server",
        "7.0.0",
        "Returns a list of command names.",
        "O(N) where N is the total number of Redis commands",
        "",
        command::command_list
    ),
    spec!(
        "command|help",
        2,
        LOADING | STALE,
        NOKEY,
        "server",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
        "O(1)",
        "",
        command::command_help
    ),
];

/// Every top-level command.
pub static COMMANDS: &[CommandSpec] = &[
    // connection
    spec!("ping", -1, FAST, NOKEY, "connection", "1.0.0", "Returns the server's liveliness response.", "O(1)", "?message:string", conn::ping),
    spec!("echo", 2, FAST, NOKEY, "connection", "1.0.0", "Returns the given string.", "O(1)", "message:string", conn::echo),
    spec!("quit", -1, ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH, NOKEY, "connection", "1.0.0", "Closes the connection.", "O(1)", "", conn::quit),
    spec!("select", 2, LOADING | STALE | FAST, NOKEY, "connection", "1.0.0", "Changes the selected database.", "O(1)", "index:integer", conn::select),
    spec!("swapdb", 3, WRITE | FAST, NOKEY, "server", "4.0.0", "Swaps two Redis databases.", "O(N) where N is the count of clients watching or blocking on keys from both databases.", "index1:integer index2:integer", conn::swapdb),
    spec!("hello", -1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, NOKEY, "connection", "6.0.0", "Handshakes with the Redis server.", "O(1)", "?{protover:integer ?AUTH={username:string password:string} ?SETNAME=clientname:string}", conn::hello),
    spec!("auth", -2, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, NOKEY, "connection", "1.0.0", "Authenticates the connection.", "O(N) where N is the number of passwords defined for the user", "?username:string password:string", conn::auth),
    spec!("reset", 1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, NOKEY, "connection", "6.2.0", "Resets the connection.", "O(1)", "", conn::reset),
    spec!("client", -2, 0, NOKEY, "connection", "2.4.0", "A container for client connection commands.", "Depends on subcommand.", "", sys::container, CLIENT_SUBS),
    // strings
    spec!("get", 2, READONLY | FAST, KEY1, "string", "1.0.0", "Returns the string value of a key.", "O(1)", "key", string::get),
    spec!("set", -3, WRITE | DENYOOM, KEY1, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "O(1)", "key value:string ?condition:(NX|XX) ?GET ?expiration:(EX=seconds:integer|PX=milliseconds:integer|EXAT=unix-time-seconds:unix-time|PXAT=unix-time-milliseconds:unix-time|KEEPTTL)", string::set),
    spec!("setnx", 3, WRITE | DENYOOM | FAST, KEY1, "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", "O(1)", "key value:string", string::setnx),
    spec!("setex", 4, WRITE | DENYOOM, KEY1, "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", "O(1)", "key seconds:integer value:string", string::setex),
    spec!("psetex", 4, WRITE | DENYOOM, KEY1, "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", "O(1)", "key milliseconds:integer value:string", string::psetex),
    spec!("getset", 3, WRITE | DENYOOM | FAST, KEY1, "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", "O(1)", "key value:string", string::getset),
    spec!("getdel", 2, WRITE | FAST, KEY1, "string", "6.2.0", "Returns the string value of a key after deleting the key.", "O(1)", "key", string::getdel),
    spec!("getex", -2, WRITE | FAST, KEY1, "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", "O(1)", "key ?expiration:(EX=seconds:integer|PX=milliseconds:integer|EXAT=unix-time-seconds:unix-time|PXAT=unix-time-milliseconds:unix-time|PERSIST)", string::getex),
    spec!("mget", -2, READONLY | FAST, (1, -1, 1), "string", "1.0.0", "Atomically returns the string values of one or more keys.", "O(N) where N is the number of keys to retrieve.", "key*", string::mget),
    spec!("mset", -3, WRITE | DENYOOM, (1, -1, 2), "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", "O(N) where N is the number of keys to set.", "{key value:string}*", string::mset),
    spec!("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", "O(N) where N is the number of keys to set.", "{key value:string}*", string::msetnx),
    spec!("append", 3, WRITE | DENYOOM | FAST, KEY1, "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.", "key value:string", string::append),
    spec!("strlen", 2, READONLY | FAST, KEY1, "string", "2.2.0", "Returns the length of a string value.", "O(1)", "key", string::strlen),
    spec!("getrange", 4, READONLY, KEY1, "string", "2.4.0", "Returns a substring of the string stored at a key.", "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.", "key start:integer end:integer", string::getrange),
    spec!("setrange", 4, WRITE | DENYOOM, KEY1, "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.", "key offset:integer value:string", string::setrange),
    spec!("incr", 2, WRITE | DENYOOM | FAST, KEY1, "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "O(1)", "key", string::incr),
    spec!("decr", 2, WRITE | DENYOOM | FAST, KEY1, "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "O(1)", "key", string::decr),
    spec!("incrby", 3, WRITE | DENYOOM | FAST, KEY1, "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "O(1)", "key increment:integer", string::incrby),
    spec!("decrby", 3, WRITE | DENYOOM | FAST, KEY1, "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", "O(1)", "key decrement:integer", string::decrby),
    spec!("incrbyfloat", 3, WRITE | DENYOOM | FAST, KEY1, "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "O(1)", "key increment:double", string::incrbyfloat),
    // keyspace
    spec!("del", -2, WRITE, (1, -1, 1), "generic", "1.0.0", "Deletes one or more keys.", "O(N) where N is the number of keys that will be removed.", "key*", keys::del),
    spec!("unlink", -2, WRITE | FAST, (1, -1, 1), "generic", "4.0.0", "Asynchronously deletes one or more keys.", "O(1) for each key removed regardless of its size.", "key*", keys::del),
    spec!("exists", -2, READONLY | FAST, (1, -1, 1), "generic", "1.0.0", "Determines whether one or more keys exist.", "O(N) where N is the number of keys to check.", "key*", keys::exists),
    spec!("type", 2, READONLY | FAST, KEY1, "generic", "1.0.0", "Determines the type of value stored at a key.", "O(1)", "key", keys::type_cmd),
    spec!("keys", 2, READONLY, NOKEY, "generic", "1.0.0", "Returns all key names that match a pattern.", "O(N) with N being the number of keys in the database", "pattern:pattern", keys::keys),
    spec!("scan", -2, READONLY, NOKEY, "generic", "2.8.0", "Iterates over the key names in the database.", "O(1) for every call. O(N) for a complete iteration.", "cursor:integer ?MATCH=pattern:pattern ?COUNT=count:integer ?TYPE=type:string", keys::scan),
    spec!("randomkey", 1, READONLY, NOKEY, "generic", "1.0.0", "Returns a random key name from the database.", "O(1)", "", keys::randomkey),
    spec!("rename", 3, WRITE, (1, 2, 1), "generic", "1.0.0", "Renames a key and overwrites the destination.", "O(1)", "key newkey:key", keys::rename),
    spec!("renamenx", 3, WRITE | FAST, (1, 2, 1), "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", "O(1)", "key newkey:key", keys::renamenx),
    spec!("copy", -3, WRITE | DENYOOM, (1, 2, 1), "generic", "6.2.0", "Copies the value of a key to a new key.", "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.", "source:key destination:key ?DB=destination-db:integer ?REPLACE", keys::copy),
    spec!("move", 3, WRITE | FAST, KEY1, "generic", "1.0.0", "Moves a key to another database.", "O(1)", "key db:integer", keys::move_cmd),
    spec!("touch", -2, READONLY | FAST, (1, -1, 1), "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", "O(N) where N is the number of keys that will be touched.", "key*", keys::touch),
    spec!("dbsize", 1, READONLY | FAST, NOKEY, "server", "1.0.0", "Returns the number of keys in the database.", "O(1)", "", keys::dbsize),
    spec!("flushdb", -1, WRITE, NOKEY, "server", "1.0.0", "Remove all keys from the current database.", "O(N) where N is the number of keys in the selected database", "?flush-type:(ASYNC|SYNC)", keys::flushdb),
    spec!("flushall", -1, WRITE, NOKEY, "server", "1.0.0", "Removes all keys from all databases.", "O(N) where N is the total number of keys in all databases", "?flush-type:(ASYNC|SYNC)", keys::flushall),
    spec!("object", -2, 0, NOKEY, "generic", "2.2.3", "A container for object introspection commands.", "Depends on subcommand.", "", sys::container, OBJECT_SUBS),
    // expiry
    spec!("expire", -3, WRITE | FAST, KEY1, "generic", "1.0.0", "Sets the expiration time of a key in seconds.", "O(1)", "key seconds:integer ?condition:(NX|XX|GT|LT)", expire::expire),
    spec!("pexpire", -3, WRITE | FAST, KEY1, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", "O(1)", "key milliseconds:integer ?condition:(NX|XX|GT|LT)", expire::pexpire),
    spec!("expireat", -3, WRITE | FAST, KEY1, "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", "O(1)", "key unix-time-seconds:unix-time ?condition:(NX|XX|GT|LT)", expire::expireat),
    spec!("pexpireat", -3, WRITE | FAST, KEY1, "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", "O(1)", "key unix-time-milliseconds:unix-time ?condition:(NX|XX|GT|LT)", expire::pexpireat),
    spec!("ttl", 2, READONLY | FAST, KEY1, "generic", "1.0.0", "Returns the expiration time in seconds of a key.", "O(1)", "key", expire::ttl),
    spec!("pttl", 2, READONLY | FAST, KEY1, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", "O(1)", "key", expire::pttl),
    spec!("persist", 2, WRITE | FAST, KEY1, "generic", "2.2.0", "Removes the expiration time of a key.", "O(1)", "key", expire::persist),
    spec!("expiretime", 2, READONLY | FAST, KEY1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", "O(1)", "key", expire::expiretime),
    spec!("pexpiretime", 2, READONLY | FAST, KEY1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", "O(1)", "key", expire::pexpiretime),
    // transactions
    spec!("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEY, "transactions", "1.2.0", "Starts a transaction.", "O(1)", "", multi::multi),
    spec!("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, NOKEY, "transactions", "1.2.0", "Executes all commands in a transaction.", "Depends on commands in the transaction", "", multi::exec),
    spec!("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEY, "transactions", "2.0.0", "Discards a transaction.", "O(N), when N is the number of queued commands", "", multi::discard),
    spec!("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, (1, -1, 1), "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", "O(1) for every key.", "key*", multi::watch),
    spec!("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEY, "transactions", "2.2.0", "Forgets about watched keys of a transaction.", "O(1)", "", multi::unwatch),
    // server
    spec!("info", -1, LOADING | STALE, NOKEY, "server", "1.0.0", "Returns information and statistics about the server.", "O(1)", "?section:string*", sys::info),
    spec!("config", -2, 0, NOKEY, "server", "2.0.0", "A container for server configuration commands.", "Depends on subcommand.", "", sys::container, CONFIG_SUBS),
    spec!("command", -1, LOADING | STALE, NOKEY, "server", "2.8.13", "Returns detailed information about all commands.", "O(N) where N is the total number of Redis commands", "", command::command, COMMAND_SUBS),
    spec!("time", 1, LOADING | STALE | FAST, NOKEY, "server", "2.6.0", "Returns the server time.", "O(1)", "", sys::time),
    spec!("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY, NOKEY, "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.", "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)", "?save-selector:(NOSAVE|SAVE) ?NOW ?FORCE ?ABORT", sys::shutdown),
    spec!("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEY, "server", "1.0.0", "A container for debugging commands.", "Depends on subcommand.", "", sys::debug),
    spec!("save", 1, ADMIN | NOSCRIPT | NO_MULTI, NOKEY, "server", "1.0.0", "Synchronously saves the database(s) to disk.", "O(N) where N is the total number of keys in all databases", "", save::save),
    spec!("bgsave", -1, ADMIN | NOSCRIPT, NOKEY, "server", "1.0.0", "Asynchronously saves the database(s) to disk.", "O(1)", "?operation:(SCHEDULE|CANCEL)", save::bgsave),
    spec!("lastsave", 1, LOADING | STALE | FAST, NOKEY, "server", "1.0.0", "Returns the Unix timestamp of the last successful save to disk.", "O(1)", "", sys::lastsave),
];

/// Looks a command up by name, case-insensitively, without allocating on the hot path.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    static INDEX: OnceLock<HashMap<&'static [u8], usize>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        COMMANDS
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_bytes(), i))
            .collect()
    });
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    index.get(&lower[..]).map(|&i| &COMMANDS[i])
}

/// Finds a subcommand of `parent`.
pub fn lookup_sub(parent: &'static CommandSpec, name: &[u8]) -> Option<&'static CommandSpec> {
    parent.subcommands.iter().find(|s| {
        let short = s.name.rsplit('|').next().unwrap_or(s.name);
        short.as_bytes().eq_ignore_ascii_case(name)
    })
}

/// Checks Redis's arity rule.
pub fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = argc as i64;
    let arity = i64::from(arity);
    if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}
