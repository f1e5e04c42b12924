//! The command table: every command's name, arity (Redis's convention: N exactly, -N at least N,
//! counting the name), flags, ACL categories, key specs, tips and documentation. Dispatch and the
//! COMMAND command read the same rows, so what redis-cli learns from `COMMAND DOCS` is what the
//! server does.
//!
//! The metadata that clients read (arity, flags, ACL categories, key specs, tips, argument names,
//! types and tokens, `since` versions) follows Redis 7.0 so that `COMMAND` answers as Redis's
//! does; the summaries and complexity notes are forkdb's own words.
//!
//! The `write` flag marks commands refused with `-MISCONF` after a failed background save; the
//! dirty counter (`rdb_changes_since_last_save`) is advanced by the handlers themselves, by the
//! number of keys they really changed, as Redis's do (a `SET NX` that sets nothing adds nothing).
//!
//! # Rows
//!
//! ```text
//! spec!(name, arity, flags, group, since, handler, field: value, ...)
//! ```
//!
//! The optional named fields are those of [`CommandSpec`]: `acl` (the categories Redis gives the
//! command explicitly; `@write`, `@read`, `@admin`, `@dangerous`, `@fast` and `@slow` follow from
//! the flags as in Redis's `setImplicitACLCategories`), `tips`, `keys` (key specs, from which
//! COMMAND's legacy first/last/step are derived as Redis derives them), `args`, `summary`,
//! `complexity`, `subcommands`, `deprecated_since`, `replaced_by` and `syscmd`.
//!
//! # Arguments
//!
//! `args` lists the arguments `COMMAND DOCS` reports, separated by spaces:
//!
//! ```text
//! key                  an argument of type key named "key"
//! name:type            string, integer, double, key, pattern or unix-time; the type is what
//!                      follows the last colon, so `ip:port:string` is "ip:port", a string
//! TOKEN                a pure token (named after the token in lower case)
//! TOKEN=arg            an argument introduced by a token: `MATCH=pattern:pattern`
//! name:(a|b|...)       one of the alternatives
//! name:{a b ...}       a block of arguments that go together
//! ?arg                 optional
//! arg*                 can be repeated
//! arg**                can be repeated, each time with its token (`multiple_token`)
//! name:key#N           a key argument that refers to key spec N (not the next one in turn)
//! arg@6.2.0            the version that added the argument
//! arg!2.8.12           the version that deprecated it
//! ```
//!
//! Key arguments are numbered in order: the first refers to the first key spec, and so on.

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
pub const PUBSUB: u32 = 1 << 12;
pub const BLOCKING: u32 = 1 << 13;
pub const SKIP_MONITOR: u32 = 1 << 14;
pub const NO_ASYNC_LOADING: u32 = 1 << 15;
pub const NO_MANDATORY_KEYS: u32 = 1 << 16;
/// Never written in a row: derived from the key specs (see [`CommandSpec::legacy_keys`]).
pub const MOVABLE_KEYS: u32 = 1 << 17;

/// Flag names as COMMAND reports them, in Redis's order. (Redis's `module`, `asking`,
/// `may_replicate`, `protected`, `sentinel` and `only_sentinel` have no use here.)
pub const FLAG_NAMES: &[(u32, &str)] = &[
    (WRITE, "write"),
    (READONLY, "readonly"),
    (DENYOOM, "denyoom"),
    (ADMIN, "admin"),
    (PUBSUB, "pubsub"),
    (NOSCRIPT, "noscript"),
    (BLOCKING, "blocking"),
    (LOADING, "loading"),
    (STALE, "stale"),
    (SKIP_MONITOR, "skip_monitor"),
    (SKIP_SLOWLOG, "skip_slowlog"),
    (FAST, "fast"),
    (NO_AUTH, "no_auth"),
    (NO_MANDATORY_KEYS, "no_mandatory_keys"),
    (NO_ASYNC_LOADING, "no_async_loading"),
    (NO_MULTI, "no_multi"),
    (MOVABLE_KEYS, "movablekeys"),
    (ALLOW_BUSY, "allow_busy"),
];

/// ACL categories in the order Redis lists them (its `ACLCommandCategories`); COMMAND reports a
/// command's categories in this order, whatever the order in its row.
pub const ACL_CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Key spec flags in Redis's order; a row writes them in this order.
pub const KEY_SPEC_FLAGS: &[&str] = &[
    "RO",
    "RW",
    "OW",
    "RM",
    "access",
    "update",
    "insert",
    "delete",
    "not_key",
    "incomplete",
    "variable_flags",
];

/// Where a command's keys are, as a Redis 7.0 key spec: the search begins at argument `index`
/// (begin_search `index`) and the keys run to `lastkey` (relative to `index`; negative counts
/// from the end of the arguments) every `keystep` arguments (find_keys `range`, with no limit).
/// forkdb's commands need no other kind (`keyword` / `keynum` specs would extend this).
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// Space-separated, in [`KEY_SPEC_FLAGS`] order: `"RW access update"`.
    pub flags: &'static str,
    pub index: i32,
    pub lastkey: i32,
    pub keystep: i32,
    /// Why the flags are what they are, when that is not obvious (forkdb's words).
    pub notes: &'static str,
    /// A `keynum` find_keys spec instead of a range (SINTERCARD, ZUNIONSTORE, LMPOP, ...):
    /// the number of keys is at argument `index + keynumidx`, the keys start at `index +
    /// firstkey`, every `keystep` (then `lastkey` is unused).
    pub keynum: Option<KeyNum>,
    /// Redis's `unknown` begin_search and find_keys (SORT's BY/GET and STORE keys): the keys
    /// cannot be found from the arguments' positions (the index and range fields are unused).
    pub unknown: bool,
}

/// A `keynum` find_keys spec (see [`KeySpec::keynum`]).
#[derive(Debug, Clone, Copy)]
pub struct KeyNum {
    pub keynumidx: i32,
    pub firstkey: i32,
}

/// Keys counted by the argument at `index + keynumidx`, starting at `index + firstkey`, every
/// `keystep` arguments (Redis's `keynum` spec).
pub const fn key_keynum(
    flags: &'static str,
    index: i32,
    keynumidx: i32,
    firstkey: i32,
    keystep: i32,
) -> KeySpec {
    KeySpec {
        keynum: Some(KeyNum {
            keynumidx,
            firstkey,
        }),
        ..key_range(flags, index, 0, keystep)
    }
}

/// The key at argument `index`.
pub const fn key(flags: &'static str, index: i32) -> KeySpec {
    key_range(flags, index, 0, 1)
}

/// Keys from argument `index` to `lastkey` (relative; -1 for the last argument), every `keystep`.
pub const fn key_range(flags: &'static str, index: i32, lastkey: i32, keystep: i32) -> KeySpec {
    KeySpec {
        flags,
        index,
        lastkey,
        keystep,
        notes: "",
        keynum: None,
        unknown: false,
    }
}

/// A key spec whose keys cannot be located from positions (Redis's `unknown` type).
pub const fn key_unknown(flags: &'static str) -> KeySpec {
    KeySpec {
        unknown: true,
        ..key_range(flags, 0, 0, 0)
    }
}

impl KeySpec {
    pub const fn notes(self, notes: &'static str) -> KeySpec {
        KeySpec { notes, ..self }
    }
}

pub struct CommandSpec {
    /// Lower-case full name: `get`, or `client|kill` for a subcommand (as Redis names them in
    /// errors, COMMAND and commandstats).
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    /// ACL categories given explicitly, space-separated, without `@` (see the module doc).
    pub acl: &'static str,
    /// Command tips, space-separated, in Redis's order: `"request_policy:all_shards"`.
    pub tips: &'static str,
    pub keys: &'static [KeySpec],
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    /// Arguments in the compact form described in the module doc.
    pub args: &'static str,
    /// Set for deprecated commands: the version that deprecated it.
    pub deprecated_since: &'static str,
    pub replaced_by: &'static str,
    /// Redis's `syscmd` doc flag: a command meant for the system, not for applications.
    pub syscmd: bool,
    pub handler: Handler,
    pub subcommands: &'static [CommandSpec],
}

fn no_handler(_: &mut Ctx, _: &[Bytes]) {}

impl CommandSpec {
    /// What a row leaves out.
    const DEFAULT: CommandSpec = CommandSpec {
        name: "",
        arity: 0,
        flags: 0,
        acl: "",
        tips: "",
        keys: &[],
        group: "",
        since: "",
        summary: "",
        complexity: "",
        args: "",
        deprecated_since: "",
        replaced_by: "",
        syscmd: false,
        handler: no_handler,
        subcommands: &[],
    };

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// The legacy (first key, last key, step) triple of COMMAND and whether the keys are
    /// "movable", derived from the key specs as Redis's `populateCommandLegacyRangeSpec` does:
    /// one spec is taken as is; several must be consecutive ranges of step 1, and any that are
    /// not (or are `incomplete`) make the keys movable.
    pub fn legacy_keys(&self) -> (i32, i32, i32, bool) {
        let incomplete = |k: &KeySpec| k.flags.split(' ').any(|f| f == "incomplete");
        let absolute = |k: &KeySpec| {
            if k.lastkey < 0 {
                k.lastkey
            } else {
                k.index + k.lastkey
            }
        };
        match self.keys {
            [] => (0, 0, 0, false),
            // A keynum spec is no range: the keys move (Redis skips it and sets movablekeys).
            [k] if k.keynum.is_some() || k.unknown => (0, 0, 0, true),
            [k] => (k.index, absolute(k), k.keystep, incomplete(k)),
            specs => {
                let (mut first, mut last, mut prev_last, mut movable) =
                    (i32::MAX, 0i32, 0i32, false);
                for k in specs {
                    if k.keynum.is_some()
                        || k.unknown
                        || k.keystep != 1
                        || (prev_last != 0 && prev_last != k.index - 1)
                    {
                        movable = true;
                        continue;
                    }
                    movable |= incomplete(k);
                    first = first.min(k.index);
                    // Redis compares as unsigned, so a negative (open) end wins.
                    last = (last as u32).max(absolute(k) as u32) as i32;
                    prev_last = last;
                }
                if first == i32::MAX {
                    (0, 0, 0, true)
                } else {
                    (first, last, 1, movable)
                }
            }
        }
    }

    /// The flags COMMAND reports: the row's and `movablekeys` when the key specs call for it.
    pub fn reported_flags(&self) -> u32 {
        if self.legacy_keys().3 {
            self.flags | MOVABLE_KEYS
        } else {
            self.flags
        }
    }

    /// The ACL categories, as indexes into [`ACL_CATEGORIES`] in order: the row's, plus those
    /// Redis's `setImplicitACLCategories` adds from the flags.
    pub fn acl_categories(&self) -> Vec<usize> {
        let mut names: Vec<&str> = self.acl.split_whitespace().collect();
        let scripting = names.contains(&"scripting");
        for (flag, implied) in [
            (WRITE, &["write"][..]),
            (READONLY, &["read"]),
            (ADMIN, &["admin", "dangerous"]),
            (PUBSUB, &["pubsub"]),
            (FAST, &["fast"]),
            (BLOCKING, &["blocking"]),
        ] {
            // Scripting commands are not @read, whatever their flags.
            if self.has(flag) && !(flag == READONLY && scripting) {
                names.extend_from_slice(implied);
            }
        }
        if !names.contains(&"fast") {
            names.push("slow");
        }
        let mut cats: Vec<usize> = names
            .into_iter()
            .filter_map(|n| ACL_CATEGORIES.iter().position(|c| *c == n))
            .collect();
        cats.sort_unstable();
        cats.dedup();
        cats
    }
}

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $group:literal, $since:literal, $handler:expr $(, $field:ident: $value:expr)* $(,)?) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            group: $group,
            since: $since,
            handler: $handler,
            $($field: $value,)*
            ..CommandSpec::DEFAULT
        }
    };
}

use crate::repl;
use cmd::pubsub as ps;
#[allow(unused_imports)]
use cmd::{
    bitmap, command, conn, diag, dump, expire, hash, keys, list, multi, save, set, sort, string,
    sys, zset,
};

/// The PUBSUB subcommands (Redis 7.0's flags; CHANNELS and SHARDCHANNELS take at most one
/// pattern, checked by the handler as Redis does).
static PUBSUB_SUBS: &[CommandSpec] = &[
    spec!("pubsub|channels", -2, PUBSUB | LOADING | STALE, "pubsub", "2.8.0", ps::pubsub_channels,
        acl: "pubsub",
        args: "?pattern:pattern",
        summary: "Lists the channels that have subscribers, those matching a pattern if given.",
        complexity: "O(N), N being the number of channels with subscribers"),
    spec!("pubsub|numpat", 2, PUBSUB | LOADING | STALE, "pubsub", "2.8.0", ps::pubsub_numpat,
        acl: "pubsub",
        summary: "Counts the distinct patterns subscribed to.",
        complexity: "O(1)"),
    spec!("pubsub|numsub", -2, PUBSUB | LOADING | STALE, "pubsub", "2.8.0", ps::pubsub_numsub,
        acl: "pubsub",
        args: "?channel:string*",
        summary: "Counts each channel's subscribers (pattern subscriptions not included).",
        complexity: "O(N), N being the number of channels asked about"),
    spec!("pubsub|shardchannels", -2, PUBSUB | LOADING | STALE, "pubsub", "7.0.0", ps::pubsub_shardchannels,
        acl: "pubsub",
        args: "?pattern:pattern",
        summary: "Lists the shard channels that have subscribers, those matching a pattern if given.",
        complexity: "O(N), N being the number of shard channels with subscribers"),
    spec!("pubsub|shardnumsub", -2, PUBSUB | LOADING | STALE, "pubsub", "7.0.0", ps::pubsub_shardnumsub,
        acl: "pubsub",
        args: "?shardchannel:string*",
        summary: "Counts each shard channel's subscribers.",
        complexity: "O(N), N being the number of shard channels asked about"),
    spec!("pubsub|help", 2, LOADING | STALE, "pubsub", "6.2.0", ps::pubsub_help,
        summary: "Lists the PUBSUB subcommands.",
        complexity: "O(1)"),
];

/// SSUBSCRIBE's and SUNSUBSCRIBE's shard channels: `not_key` key specs, as Redis 7.0 gives them
/// (so that a cluster would route them by slot).
const SHARD_CHANNELS: &[KeySpec] = &[key_range("not_key", 1, -1, 1)];

/// SORT's keys: the key sorted, the keys BY/GET patterns name and the STORE destination (the
/// last two `unknown`, as in Redis 7.0). SORT_RO has the first two.
const SORT_KEYS: &[KeySpec] = &[
    SORT_RO_KEYS[0],
    SORT_RO_KEYS[1],
    key_unknown("OW update").notes("For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array"),
];

const SORT_RO_KEYS: &[KeySpec] = &[
    key("RO access", 1),
    key_unknown("RO access").notes("For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"),
];

/// The keys of commands that read or write one string, as Redis 7.0 specifies them.
const RO_ACCESS: &[KeySpec] = &[key("RO access", 1)];
const RW_ACCESS_UPDATE: &[KeySpec] = &[key("RW access update", 1)];
const RW_UPDATE: &[KeySpec] = &[key("RW update", 1)];
const OW_UPDATE: &[KeySpec] = &[key("OW update", 1)];
const RO: &[KeySpec] = &[key("RO", 1)];

/// `OBJECT <subcommand> key`.
const OBJECT_KEY: &[KeySpec] = &[key("RO", 2)];

static CLIENT_SUBS: &[CommandSpec] = &[
    spec!("client|id", 2, NOSCRIPT | LOADING | STALE, "connection", "5.0.0", conn::client_id,
        acl: "connection",
        summary: "Replies with the numeric id of this connection.",
        complexity: "O(1)"),
    spec!("client|setname", 3, NOSCRIPT | LOADING | STALE, "connection", "2.6.9", conn::client_setname,
        acl: "connection",
        args: "connection-name:string",
        summary: "Gives this connection a name.",
        complexity: "O(1)"),
    spec!("client|getname", 2, NOSCRIPT | LOADING | STALE, "connection", "2.6.9", conn::client_getname,
        acl: "connection",
        summary: "Replies with the name of this connection, if it was given one.",
        complexity: "O(1)"),
    spec!("client|list", -2, ADMIN | NOSCRIPT | LOADING | STALE, "connection", "2.4.0", conn::client_list,
        acl: "connection",
        tips: "nondeterministic_output",
        args: "?TYPE=normal_master_replica_pubsub:(NORMAL|MASTER|REPLICA|PUBSUB)@5.0.0 ?ID=id:{client-id:integer*}@6.2.0",
        summary: "Describes the open client connections, one line each.",
        complexity: "O(N), N being the number of connected clients"),
    spec!("client|info", 2, NOSCRIPT | LOADING | STALE, "connection", "6.2.0", conn::client_info,
        acl: "connection",
        tips: "nondeterministic_output",
        summary: "Describes this connection in the format of CLIENT LIST.",
        complexity: "O(1)"),
    spec!("client|kill", -3, ADMIN | NOSCRIPT | LOADING | STALE, "connection", "2.4.0", conn::client_kill,
        acl: "connection",
        args: "filter:(ip:port:string!2.8.12|new-format:(\
               ?ID=client-id:integer@2.8.12|\
               ?TYPE=normal_master_slave_pubsub:(NORMAL|MASTER@3.2.0|SLAVE|REPLICA@5.0.0|PUBSUB)@2.8.12|\
               ?USER=username:string|\
               ?ADDR=ip:port:string|\
               ?LADDR=ip:port:string@6.2.0|\
               ?SKIPME=yes/no:string)*)",
        summary: "Closes the client connections that match the given filters.",
        complexity: "O(N), N being the number of connected clients"),
    spec!("client|unblock", -3, ADMIN | NOSCRIPT | LOADING | STALE, "connection", "5.0.0", crate::blocking::client_unblock,
        acl: "connection",
        args: "client-id:integer ?timeout_error:(TIMEOUT|ERROR)",
        summary: "Unblocks a client blocked by a blocking command, as a timeout or with an error.",
        complexity: "O(log N) where N is the number of client connections"),
    spec!("client|help", 2, LOADING | STALE, "connection", "5.0.0", conn::client_help,
        acl: "connection",
        summary: "Lists the CLIENT subcommands and what they do.",
        complexity: "O(1)"),
];

static OBJECT_SUBS: &[CommandSpec] = &[
    spec!("object|encoding", 3, READONLY, "generic", "2.2.3", keys::object_encoding,
        acl: "keyspace",
        tips: "nondeterministic_output",
        keys: OBJECT_KEY,
        args: "key",
        summary: "Names the internal representation of the value at a key.",
        complexity: "O(1)"),
    spec!("object|refcount", 3, READONLY, "generic", "2.2.3", keys::object_refcount,
        acl: "keyspace",
        tips: "nondeterministic_output",
        keys: OBJECT_KEY,
        args: "key",
        summary: "Replies with the reference count of the value at a key.",
        complexity: "O(1)"),
    spec!("object|idletime", 3, READONLY, "generic", "2.2.3", keys::object_idletime,
        acl: "keyspace",
        tips: "nondeterministic_output",
        keys: OBJECT_KEY,
        args: "key",
        summary: "Replies with the seconds since a key was last read or written.",
        complexity: "O(1)"),
    spec!("object|freq", 3, READONLY, "generic", "4.0.0", keys::object_freq,
        acl: "keyspace",
        tips: "nondeterministic_output",
        keys: OBJECT_KEY,
        args: "key",
        summary: "Replies with the logarithmic access counter of a key (under an LFU policy).",
        complexity: "O(1)"),
    spec!("object|help", 2, LOADING | STALE, "generic", "6.2.0", keys::object_help,
        acl: "keyspace",
        summary: "Lists the OBJECT subcommands and what they do.",
        complexity: "O(1)"),
];

static CONFIG_SUBS: &[CommandSpec] = &[
    spec!("config|get", -3, ADMIN | NOSCRIPT | LOADING | STALE, "server", "2.0.0", sys::config_get,
        args: "parameter:{parameter:string}*",
        summary: "Reads the configuration parameters that match glob-style patterns.",
        complexity: "O(N), N being the number of patterns given"),
    spec!("config|set", -4, ADMIN | NOSCRIPT | LOADING | STALE, "server", "2.0.0", sys::config_set,
        tips: "request_policy:all_nodes response_policy:all_succeeded",
        args: "parameter_value:{parameter:string value:string}*",
        summary: "Changes configuration parameters while the server runs.",
        complexity: "O(N), N being the number of parameters given"),
    spec!("config|resetstat", 2, ADMIN | NOSCRIPT | LOADING | STALE, "server", "2.0.0", sys::config_resetstat,
        summary: "Zeroes the statistics that INFO reports.",
        complexity: "O(1)"),
    spec!("config|rewrite", 2, ADMIN | NOSCRIPT | LOADING | STALE, "server", "2.8.0", sys::config_rewrite,
        summary: "Writes the running configuration back to the configuration file.",
        complexity: "O(1)"),
    spec!("config|help", 2, LOADING | STALE, "server", "5.0.0", sys::config_help,
        summary: "Lists the CONFIG subcommands and what they do.",
        complexity: "O(1)"),
];

// forkdb's own: the copy-on-write timelines of the last saves (see `timeline`).
static SNAPSHOT_SUBS: &[CommandSpec] = &[
    spec!("snapshot|latest", 2, LOADING | STALE, "server", "0.1.0", save::snapshot_latest,
        summary: "Summarizes the running or last background save and its copy-on-write cost.",
        complexity: "O(N), N being the samples of that save"),
    spec!("snapshot|history", -2, LOADING | STALE, "server", "0.1.0", save::snapshot_history,
        args: "?count:integer",
        summary: "Summarizes the last saves, newest first.",
        complexity: "O(N), N being the saves listed"),
    spec!("snapshot|samples", 3, LOADING | STALE, "server", "0.1.0", save::snapshot_samples,
        args: "id:integer",
        summary: "Returns the timeline of one save: memory, progress and writes since the fork.",
        complexity: "O(N), N being the samples of that save"),
    spec!("snapshot|reset", 2, LOADING | STALE, "server", "0.1.0", save::snapshot_reset,
        summary: "Forgets the recorded saves.",
        complexity: "O(1)"),
    spec!("snapshot|help", 2, LOADING | STALE, "server", "0.1.0", save::snapshot_help,
        summary: "Lists the SNAPSHOT subcommands and what they do.",
        complexity: "O(1)"),
];

static COMMAND_SUBS: &[CommandSpec] = &[
    spec!("command|count", 2, LOADING | STALE, "server", "2.8.13", command::command_count,
        acl: "connection",
        summary: "Counts the commands this server has.",
        complexity: "O(1)"),
    spec!("command|info", -2, LOADING | STALE, "server", "2.8.13", command::command_info,
        acl: "connection",
        tips: "nondeterministic_output_order",
        args: "?command-name:string*",
        summary: "Describes the named commands (all of them when none is named).",
        complexity: "O(N), N being the number of commands described"),
    spec!("command|docs", -2, LOADING | STALE, "server", "7.0.0", command::command_docs,
        acl: "connection",
        tips: "nondeterministic_output_order",
        args: "?command-name:string*",
        summary: "Documents the named commands and their arguments (all of them when none is named).",
        complexity: "O(N), N being the number of commands documented"),
    spec!("command|list", -2, LOADING | STALE, "server", "7.0.0", command::command_list,
        acl: "connection",
        tips: "nondeterministic_output_order",
        args: "?FILTERBY=filterby:(MODULE=module-name:string|ACLCAT=category:string|PATTERN=pattern:pattern)",
        summary: "Lists the names of the commands, optionally filtered.",
        complexity: "O(N), N being the number of commands this server has"),
    spec!("command|getkeys", -4, LOADING | STALE, "server", "2.8.13", command::command_getkeys,
        acl: "connection",
        summary: "Lists the keys a full command names.",
        complexity: "O(N), N being the number of arguments of the command"),
    spec!("command|getkeysandflags", -4, LOADING | STALE, "server", "7.0.0",
        command::command_getkeysandflags,
        acl: "connection",
        summary: "Lists the keys a full command names, each with its access flags.",
        complexity: "O(N), N being the number of arguments of the command"),
    spec!("command|help", 2, LOADING | STALE, "server", "5.0.0", command::command_help,
        acl: "connection",
        summary: "Lists the COMMAND subcommands and what they do.",
        complexity: "O(1)"),
];

/// The SLOWLOG subcommands.
static SLOWLOG_SUBS: &[CommandSpec] = &[
    spec!("slowlog|get", -2, ADMIN | LOADING | STALE, "server", "2.2.12", diag::slowlog_get,
        tips: "request_policy:all_nodes nondeterministic_output",
        args: "?count:integer",
        summary: "Replies with the newest entries of the slow log.",
        complexity: "O(N), N being the number of entries returned"),
    spec!("slowlog|len", 2, ADMIN | LOADING | STALE, "server", "2.2.12", diag::slowlog_len,
        tips: "request_policy:all_nodes response_policy:agg_sum nondeterministic_output",
        summary: "Replies with the number of entries in the slow log.",
        complexity: "O(1)"),
    spec!("slowlog|reset", 2, ADMIN | LOADING | STALE, "server", "2.2.12", diag::slowlog_reset,
        tips: "request_policy:all_nodes response_policy:all_succeeded",
        summary: "Empties the slow log.",
        complexity: "O(N), N being the number of entries in the slow log"),
    spec!("slowlog|help", 2, LOADING | STALE, "server", "6.2.0", diag::slowlog_help,
        summary: "Lists the SLOWLOG subcommands.",
        complexity: "O(1)"),
];

const LATENCY_TIPS: &str =
    "nondeterministic_output request_policy:all_nodes response_policy:special";

static LATENCY_SUBS: &[CommandSpec] = &[
    spec!("latency|latest", 2, ADMIN | NOSCRIPT | LOADING | STALE, "server", "2.8.13", diag::latency_latest,
        tips: LATENCY_TIPS,
        summary: "Replies with the latest sample of every latency event.",
        complexity: "O(1)"),
    spec!("latency|history", 3, ADMIN | NOSCRIPT | LOADING | STALE, "server", "2.8.13", diag::latency_history,
        tips: LATENCY_TIPS,
        args: "event:string",
        summary: "Replies with the samples of one latency event (one per second, up to 160).",
        complexity: "O(1)"),
    spec!("latency|reset", -2, ADMIN | NOSCRIPT | LOADING | STALE, "server", "2.8.13", diag::latency_reset,
        tips: "request_policy:all_nodes response_policy:all_succeeded",
        args: "?event:string*",
        summary: "Forgets the samples of the named latency events, or of all.",
        complexity: "O(1)"),
    spec!("latency|doctor", 2, ADMIN | NOSCRIPT | LOADING | STALE, "server", "2.8.13", diag::latency_doctor,
        tips: LATENCY_TIPS,
        summary: "Describes the latency events seen, in words.",
        complexity: "O(1)"),
    spec!("latency|graph", 3, ADMIN | NOSCRIPT | LOADING | STALE, "server", "2.8.13", diag::latency_graph,
        tips: LATENCY_TIPS,
        args: "event:string",
        summary: "Draws the samples of one latency event as ASCII art.",
        complexity: "O(1)"),
    spec!("latency|histogram", -2, ADMIN | NOSCRIPT | LOADING | STALE, "server", "7.0.0", diag::latency_histogram,
        tips: LATENCY_TIPS,
        args: "?command:string*",
        summary: "Replies with the cumulative distribution of the named commands' latencies, or of all.",
        complexity: "O(N), N being the number of commands with latency information"),
    spec!("latency|help", 2, LOADING | STALE, "server", "2.8.13", diag::latency_help,
        summary: "Lists the LATENCY subcommands.",
        complexity: "O(1)"),
];

static MEMORY_SUBS: &[CommandSpec] = &[
    spec!("memory|usage", -3, READONLY, "server", "4.0.0", diag::memory_usage,
        keys: OBJECT_KEY,
        args: "key ?SAMPLES=count:integer",
        summary: "Estimates the memory a key and its value use.",
        complexity: "O(1) for strings"),
    spec!("memory|stats", 2, 0, "server", "4.0.0", diag::memory_stats,
        tips: "nondeterministic_output request_policy:all_shards response_policy:special",
        summary: "Reports how the server's memory is used.",
        complexity: "O(1)"),
    spec!("memory|doctor", 2, 0, "server", "4.0.0", diag::memory_doctor,
        tips: "nondeterministic_output request_policy:all_shards response_policy:special",
        summary: "Describes memory problems, in words.",
        complexity: "O(1)"),
    spec!("memory|malloc-stats", 2, 0, "server", "4.0.0", diag::memory_malloc_stats,
        tips: "nondeterministic_output request_policy:all_shards response_policy:special",
        summary: "Replies with the memory allocator's own statistics.",
        complexity: "Depends on the allocator"),
    spec!("memory|purge", 2, 0, "server", "4.0.0", diag::memory_purge,
        tips: "request_policy:all_shards response_policy:all_succeeded",
        summary: "Gives free heap memory back to the operating system.",
        complexity: "Depends on the allocator"),
    spec!("memory|help", 2, LOADING | STALE, "server", "4.0.0", diag::memory_help,
        summary: "Lists the MEMORY subcommands.",
        complexity: "O(1)"),
];

/// Every top-level command.
pub static COMMANDS: &[CommandSpec] = &[
    // connection
    spec!("ping", -1, FAST, "connection", "1.0.0", conn::ping,
        acl: "connection",
        tips: "request_policy:all_shards response_policy:all_succeeded",
        args: "?message:string",
        summary: "Checks that the server answers: PONG, or the message given.",
        complexity: "O(1)"),
    spec!("echo", 2, LOADING | STALE | FAST, "connection", "1.0.0", conn::echo,
        acl: "connection",
        args: "message:string",
        summary: "Replies with the message it is sent.",
        complexity: "O(1)"),
    spec!("quit", -1, ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH, "connection", "1.0.0", conn::quit,
        acl: "connection",
        summary: "Asks the server to close this connection.",
        complexity: "O(1)"),
    spec!("select", 2, LOADING | STALE | FAST, "connection", "1.0.0", conn::select,
        acl: "connection",
        args: "index:integer",
        summary: "Switches this connection to another numbered database.",
        complexity: "O(1)"),
    spec!("swapdb", 3, WRITE | FAST, "server", "4.0.0", conn::swapdb,
        acl: "keyspace dangerous",
        args: "index1:integer index2:integer",
        summary: "Exchanges the contents of two databases.",
        complexity: "O(N), N being the number of clients watching or blocked on keys of either database"),
    spec!("hello", -1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, "connection", "6.0.0", conn::hello,
        acl: "connection",
        args: "?arguments:{protover:integer ?AUTH=username_password:{username:string password:string} ?SETNAME=clientname:string}",
        summary: "Picks the protocol version, optionally logging in and naming the connection, and describes the server.",
        complexity: "O(1)"),
    spec!("auth", -2, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, "connection", "1.0.0", conn::auth,
        acl: "connection",
        args: "?username:string@6.0.0 password:string",
        summary: "Logs this connection in with a password (and a user name).",
        complexity: "O(N), N being the number of passwords the user has"),
    spec!("reset", 1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, "connection", "6.2.0", conn::reset,
        acl: "connection",
        summary: "Puts this connection back in the state of a new one.",
        complexity: "O(1)"),
    spec!("client", -2, 0, "connection", "2.4.0", sys::container,
        subcommands: CLIENT_SUBS,
        summary: "Holds the commands that inspect and manage client connections.",
        complexity: "Depends on the subcommand"),
    // pubsub
    spec!("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, "pubsub", "2.0.0", ps::subscribe,
        acl: "pubsub",
        args: "channel:string*",
        summary: "Subscribes this connection to channels: it then receives what is published to them.",
        complexity: "O(N), N being the number of channels"),
    spec!("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, "pubsub", "2.0.0", ps::unsubscribe,
        acl: "pubsub",
        args: "?channel:string*",
        summary: "Unsubscribes this connection from the channels given, or from every channel.",
        complexity: "O(N), N being the number of channels"),
    spec!("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, "pubsub", "2.0.0", ps::psubscribe,
        acl: "pubsub",
        args: "pattern:{pattern:pattern}*",
        summary: "Subscribes this connection to glob-style patterns of channel names.",
        complexity: "O(N), N being the number of patterns"),
    spec!("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, "pubsub", "2.0.0", ps::punsubscribe,
        acl: "pubsub",
        args: "?pattern:pattern*",
        summary: "Unsubscribes this connection from the patterns given, or from every pattern.",
        complexity: "O(N+M), N being the patterns given and M the patterns subscribed to"),
    spec!("publish", 3, PUBSUB | LOADING | STALE | FAST, "pubsub", "2.0.0", ps::publish,
        acl: "pubsub",
        args: "channel:string message:string",
        summary: "Posts a message to a channel; replies with the number of clients that received it.",
        complexity: "O(N+M), N being the channel's subscribers and M the patterns subscribed to"),
    spec!("pubsub", -2, 0, "pubsub", "2.8.0", sys::container,
        subcommands: PUBSUB_SUBS,
        summary: "Holds the commands that inspect Pub/Sub channels and patterns.",
        complexity: "Depends on the subcommand"),
    spec!("ssubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, "pubsub", "7.0.0", ps::ssubscribe,
        acl: "pubsub",
        keys: SHARD_CHANNELS,
        args: "shardchannel:string*",
        summary: "Subscribes this connection to shard channels.",
        complexity: "O(N), N being the number of shard channels"),
    spec!("sunsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, "pubsub", "7.0.0", ps::sunsubscribe,
        acl: "pubsub",
        keys: SHARD_CHANNELS,
        args: "?shardchannel:string*",
        summary: "Unsubscribes this connection from the shard channels given, or from all of them.",
        complexity: "O(N), N being the number of shard channels"),
    spec!("spublish", 3, PUBSUB | LOADING | STALE | FAST, "pubsub", "7.0.0", ps::spublish,
        acl: "pubsub",
        keys: &[key_range("not_key", 1, 0, 1)],
        args: "shardchannel:string message:string",
        summary: "Posts a message to a shard channel; replies with the number of clients that received it.",
        complexity: "O(N), N being the shard channel's subscribers"),
    // strings
    spec!("get", 2, READONLY | FAST, "string", "1.0.0", string::get,
        acl: "string",
        keys: RO_ACCESS,
        args: "key",
        summary: "Reads the string stored at a key.",
        complexity: "O(1)"),
    spec!("set", -3, WRITE | DENYOOM, "string", "1.0.0", string::set,
        acl: "string",
        keys: &[key("RW access update variable_flags", 1)
            .notes("RW and access because GET replies with the value it replaces")],
        args: "key value:string ?condition:(NX|XX)@2.6.12 ?GET@6.2.0 ?expiration:(\
               EX=seconds:integer@2.6.12|\
               PX=milliseconds:integer@2.6.12|\
               EXAT=unix-time-seconds:unix-time@6.2.0|\
               PXAT=unix-time-milliseconds:unix-time@6.2.0|\
               KEEPTTL@6.0.0)",
        summary: "Stores a string at a key, whatever the key held, with optional conditions and expiry.",
        complexity: "O(1)"),
    spec!("setnx", 3, WRITE | DENYOOM | FAST, "string", "1.0.0", string::setnx,
        acl: "string",
        keys: &[key("OW insert", 1)],
        args: "key value:string",
        summary: "Stores a string at a key unless the key exists.",
        complexity: "O(1)"),
    spec!("setex", 4, WRITE | DENYOOM, "string", "2.0.0", string::setex,
        acl: "string",
        keys: OW_UPDATE,
        args: "key seconds:integer value:string",
        summary: "Stores a string at a key with a time to live in seconds.",
        complexity: "O(1)"),
    spec!("psetex", 4, WRITE | DENYOOM, "string", "2.6.0", string::psetex,
        acl: "string",
        keys: OW_UPDATE,
        args: "key milliseconds:integer value:string",
        summary: "Stores a string at a key with a time to live in milliseconds.",
        complexity: "O(1)"),
    spec!("getset", 3, WRITE | DENYOOM | FAST, "string", "1.0.0", string::getset,
        acl: "string",
        keys: RW_ACCESS_UPDATE,
        args: "key value:string",
        deprecated_since: "6.2.0",
        replaced_by: "`SET` with its `GET` option",
        summary: "Stores a string at a key and replies with the string it replaced.",
        complexity: "O(1)"),
    spec!("getdel", 2, WRITE | FAST, "string", "6.2.0", string::getdel,
        acl: "string",
        keys: &[key("RW access delete", 1)],
        args: "key",
        summary: "Reads the string at a key and deletes the key.",
        complexity: "O(1)"),
    spec!("getex", -2, WRITE | FAST, "string", "6.2.0", string::getex,
        acl: "string",
        keys: &[key("RW access update", 1).notes("RW and update because the expiry may change")],
        args: "key ?expiration:(\
               EX=seconds:integer|\
               PX=milliseconds:integer|\
               EXAT=unix-time-seconds:unix-time|\
               PXAT=unix-time-milliseconds:unix-time|\
               PERSIST)",
        summary: "Reads the string at a key and optionally changes or removes its expiry.",
        complexity: "O(1)"),
    spec!("mget", -2, READONLY | FAST, "string", "1.0.0", string::mget,
        acl: "string",
        tips: "request_policy:multi_shard",
        keys: &[key_range("RO access", 1, -1, 1)],
        args: "key*",
        summary: "Reads the strings stored at several keys.",
        complexity: "O(N), N being the number of keys read"),
    spec!("mset", -3, WRITE | DENYOOM, "string", "1.0.1", string::mset,
        acl: "string",
        tips: "request_policy:multi_shard response_policy:all_succeeded",
        keys: &[key_range("OW update", 1, -1, 2)],
        args: "key_value:{key value:string}*",
        summary: "Stores strings at several keys at once.",
        complexity: "O(N), N being the number of keys written"),
    spec!("msetnx", -3, WRITE | DENYOOM, "string", "1.0.1", string::msetnx,
        acl: "string",
        tips: "request_policy:multi_shard response_policy:agg_min",
        keys: &[key_range("OW insert", 1, -1, 2)],
        args: "key_value:{key value:string}*",
        summary: "Stores strings at several keys at once, only if none of them exists.",
        complexity: "O(N), N being the number of keys written"),
    spec!("append", 3, WRITE | DENYOOM | FAST, "string", "2.0.0", string::append,
        acl: "string",
        keys: &[key("RW insert", 1)],
        args: "key value:string",
        summary: "Adds bytes at the end of the string at a key, creating the key if needed.",
        complexity: "O(1) amortized: the string's buffer grows geometrically"),
    spec!("strlen", 2, READONLY | FAST, "string", "2.2.0", string::strlen,
        acl: "string",
        keys: RO,
        args: "key",
        summary: "Replies with the length of the string at a key.",
        complexity: "O(1)"),
    spec!("getrange", 4, READONLY, "string", "2.4.0", string::getrange,
        acl: "string",
        keys: RO_ACCESS,
        args: "key start:integer end:integer",
        summary: "Reads the part of the string at a key between two offsets.",
        complexity: "O(N), N being the length of the part returned"),
    spec!("setrange", 4, WRITE | DENYOOM, "string", "2.2.0", string::setrange,
        acl: "string",
        keys: RW_UPDATE,
        args: "key offset:integer value:string",
        summary: "Writes bytes into the string at a key from an offset on, padding with zero bytes.",
        complexity: "O(M), M being the length of the bytes written (plus growing the string)"),
    spec!("incr", 2, WRITE | DENYOOM | FAST, "string", "1.0.0", string::incr,
        acl: "string",
        keys: RW_ACCESS_UPDATE,
        args: "key",
        summary: "Adds 1 to the integer at a key (a missing key counts as 0).",
        complexity: "O(1)"),
    spec!("decr", 2, WRITE | DENYOOM | FAST, "string", "1.0.0", string::decr,
        acl: "string",
        keys: RW_ACCESS_UPDATE,
        args: "key",
        summary: "Subtracts 1 from the integer at a key (a missing key counts as 0).",
        complexity: "O(1)"),
    spec!("incrby", 3, WRITE | DENYOOM | FAST, "string", "1.0.0", string::incrby,
        acl: "string",
        keys: RW_ACCESS_UPDATE,
        args: "key increment:integer",
        summary: "Adds an integer to the integer at a key (a missing key counts as 0).",
        complexity: "O(1)"),
    spec!("decrby", 3, WRITE | DENYOOM | FAST, "string", "1.0.0", string::decrby,
        acl: "string",
        keys: RW_ACCESS_UPDATE,
        args: "key decrement:integer",
        summary: "Subtracts an integer from the integer at a key (a missing key counts as 0).",
        complexity: "O(1)"),
    spec!("incrbyfloat", 3, WRITE | DENYOOM | FAST, "string", "2.6.0", string::incrbyfloat,
        acl: "string",
        keys: RW_ACCESS_UPDATE,
        args: "key increment:double",
        summary: "Adds a decimal number to the number at a key (a missing key counts as 0).",
        complexity: "O(1)"),
    // keyspace
    spec!("del", -2, WRITE, "generic", "1.0.0", keys::del,
        acl: "keyspace",
        tips: "request_policy:multi_shard response_policy:agg_sum",
        keys: &[key_range("RM delete", 1, -1, 1)],
        args: "key*",
        summary: "Removes keys and counts those that existed.",
        complexity: "O(N), N being the number of keys given"),
    spec!("unlink", -2, WRITE | FAST, "generic", "4.0.0", keys::del,
        acl: "keyspace",
        tips: "request_policy:multi_shard response_policy:agg_sum",
        keys: &[key_range("RM delete", 1, -1, 1)],
        args: "key*",
        summary: "Removes keys and counts those that existed (the same as DEL in forkdb).",
        complexity: "O(1) per key"),
    spec!("exists", -2, READONLY | FAST, "generic", "1.0.0", keys::exists,
        acl: "keyspace",
        tips: "request_policy:multi_shard response_policy:agg_sum",
        keys: &[key_range("RO", 1, -1, 1)],
        args: "key*",
        summary: "Counts how many of the keys given exist (a key given twice counts twice).",
        complexity: "O(N), N being the number of keys given"),
    spec!("type", 2, READONLY | FAST, "generic", "1.0.0", keys::type_cmd,
        acl: "keyspace",
        keys: RO,
        args: "key",
        summary: "Names the type of the value at a key.",
        complexity: "O(1)"),
    spec!("keys", 2, READONLY, "generic", "1.0.0", keys::keys,
        acl: "keyspace dangerous",
        tips: "request_policy:all_shards nondeterministic_output_order",
        args: "pattern:pattern",
        summary: "Lists the key names that match a glob-style pattern.",
        complexity: "O(N), N being the number of keys in the database"),
    spec!("scan", -2, READONLY, "generic", "2.8.0", keys::scan,
        acl: "keyspace",
        tips: "nondeterministic_output request_policy:special",
        args: "cursor:integer ?MATCH=pattern:pattern ?COUNT=count:integer ?TYPE=type:string@6.0.0",
        summary: "Walks through the key names a batch at a time, following a cursor.",
        complexity: "O(1) per call, O(N) for a whole walk"),
    spec!("randomkey", 1, READONLY, "generic", "1.0.0", keys::randomkey,
        acl: "keyspace",
        tips: "request_policy:all_shards nondeterministic_output",
        summary: "Replies with a key name picked at random.",
        complexity: "O(1)"),
    spec!("sort", -2, WRITE | DENYOOM, "generic", "1.0.0", sort::sort,
        acl: "set sortedset list dangerous",
        keys: SORT_KEYS,
        args: "key ?BY=pattern:pattern#1 ?LIMIT=offset_count:{offset:integer count:integer} ?GET=pattern:pattern#1** ?order:(ASC|DESC) ?ALPHA=sorting:pure-token ?STORE=destination:key#2",
        summary: "Sorts the elements of a list, set or sorted set, possibly by external keys, and replies with them or stores them as a list.",
        complexity: "O(N+M*log(M)), N elements to sort and M replied"),
    spec!("sort_ro", -2, READONLY, "generic", "7.0.0", sort::sort_ro,
        acl: "set sortedset list dangerous",
        keys: SORT_RO_KEYS,
        args: "key ?BY=pattern:pattern#1 ?LIMIT=offset_count:{offset:integer count:integer} ?GET=pattern:pattern#1** ?order:(ASC|DESC) ?ALPHA=sorting:pure-token",
        summary: "Sorts the elements of a list, set or sorted set (SORT without STORE).",
        complexity: "O(N+M*log(M)), N elements to sort and M replied"),
    spec!("rename", 3, WRITE, "generic", "1.0.0", keys::rename,
        acl: "keyspace",
        keys: &[key("RW access delete", 1), key("OW update", 2)],
        args: "key newkey:key",
        summary: "Moves a key to a new name, replacing any key of that name.",
        complexity: "O(1)"),
    spec!("renamenx", 3, WRITE | FAST, "generic", "1.0.0", keys::renamenx,
        acl: "keyspace",
        keys: &[key("RW access delete", 1), key("OW insert", 2)],
        args: "key newkey:key",
        summary: "Moves a key to a new name unless that name is taken.",
        complexity: "O(1)"),
    spec!("copy", -3, WRITE | DENYOOM, "generic", "6.2.0", keys::copy,
        acl: "keyspace",
        keys: &[key("RO access", 1), key("OW update", 2)],
        args: "source:key destination:key ?DB=destination-db:integer ?REPLACE",
        summary: "Duplicates the value of a key under another name, possibly in another database.",
        complexity: "O(N) for a collection of N elements, O(1) for a string"),
    spec!("dump", 2, READONLY, "generic", "2.6.0", dump::dump,
        acl: "keyspace",
        tips: "nondeterministic_output",
        keys: RO_ACCESS,
        args: "key",
        summary: "Serializes the value of a key as RESTORE reads it (RDB value, version, CRC).",
        complexity: "O(1) to access the key and O(N*M) to serialize it"),
    spec!("restore", -4, WRITE | DENYOOM, "generic", "2.6.0", dump::restore,
        acl: "keyspace dangerous",
        keys: OW_UPDATE,
        args: "key ttl:integer serialized-value:string ?REPLACE@3.0.0 ?ABSTTL@5.0.0 \
               ?IDLETIME=seconds:integer@5.0.0 ?FREQ=frequency:integer@5.0.0",
        summary: "Creates a key from a DUMP payload.",
        complexity: "O(1) to create the key and O(N*M) to read the payload"),
    spec!("move", 3, WRITE | FAST, "generic", "1.0.0", keys::move_cmd,
        acl: "keyspace",
        keys: RW_ACCESS_UPDATE,
        args: "key db:integer",
        summary: "Transfers a key to another database.",
        complexity: "O(1)"),
    spec!("touch", -2, READONLY | FAST, "generic", "3.2.1", keys::touch,
        acl: "keyspace",
        tips: "request_policy:multi_shard response_policy:agg_sum",
        keys: &[key_range("RO", 1, -1, 1)],
        args: "key*",
        summary: "Marks keys as just accessed and counts those that exist.",
        complexity: "O(N), N being the number of keys given"),
    spec!("dbsize", 1, READONLY | FAST, "server", "1.0.0", keys::dbsize,
        acl: "keyspace",
        tips: "request_policy:all_shards response_policy:agg_sum",
        summary: "Counts the keys of the selected database.",
        complexity: "O(1)"),
    spec!("flushdb", -1, WRITE, "server", "1.0.0", keys::flushdb,
        acl: "keyspace dangerous",
        tips: "request_policy:all_shards response_policy:all_succeeded",
        args: "?async:(ASYNC@4.0.0|SYNC@6.2.0)",
        summary: "Deletes every key of the selected database.",
        complexity: "O(N), N being the number of keys in the database"),
    spec!("flushall", -1, WRITE, "server", "1.0.0", keys::flushall,
        acl: "keyspace dangerous",
        tips: "request_policy:all_shards response_policy:all_succeeded",
        args: "?async:(ASYNC@4.0.0|SYNC@6.2.0)",
        summary: "Deletes every key of every database.",
        complexity: "O(N), N being the number of keys in all databases"),
    spec!("object", -2, 0, "generic", "2.2.3", sys::container,
        subcommands: OBJECT_SUBS,
        summary: "Holds the commands that look at how values are stored.",
        complexity: "Depends on the subcommand"),
    // expiry
    spec!("expire", -3, WRITE | FAST, "generic", "1.0.0", expire::expire,
        acl: "keyspace",
        keys: RW_UPDATE,
        args: "key seconds:integer ?condition:(NX|XX|GT|LT)@7.0.0",
        summary: "Gives a key a time to live in seconds.",
        complexity: "O(1)"),
    spec!("pexpire", -3, WRITE | FAST, "generic", "2.6.0", expire::pexpire,
        acl: "keyspace",
        keys: RW_UPDATE,
        args: "key milliseconds:integer ?condition:(NX|XX|GT|LT)@7.0.0",
        summary: "Gives a key a time to live in milliseconds.",
        complexity: "O(1)"),
    spec!("expireat", -3, WRITE | FAST, "generic", "1.2.0", expire::expireat,
        acl: "keyspace",
        keys: RW_UPDATE,
        args: "key unix-time-seconds:unix-time ?condition:(NX|XX|GT|LT)@7.0.0",
        summary: "Makes a key expire at a Unix time in seconds.",
        complexity: "O(1)"),
    spec!("pexpireat", -3, WRITE | FAST, "generic", "2.6.0", expire::pexpireat,
        acl: "keyspace",
        keys: RW_UPDATE,
        args: "key unix-time-milliseconds:unix-time ?condition:(NX|XX|GT|LT)@7.0.0",
        summary: "Makes a key expire at a Unix time in milliseconds.",
        complexity: "O(1)"),
    spec!("ttl", 2, READONLY | FAST, "generic", "1.0.0", expire::ttl,
        acl: "keyspace",
        tips: "nondeterministic_output",
        keys: RO_ACCESS,
        args: "key",
        summary: "Replies with the seconds a key has left to live.",
        complexity: "O(1)"),
    spec!("pttl", 2, READONLY | FAST, "generic", "2.6.0", expire::pttl,
        acl: "keyspace",
        tips: "nondeterministic_output",
        keys: RO_ACCESS,
        args: "key",
        summary: "Replies with the milliseconds a key has left to live.",
        complexity: "O(1)"),
    spec!("persist", 2, WRITE | FAST, "generic", "2.2.0", expire::persist,
        acl: "keyspace",
        keys: RW_UPDATE,
        args: "key",
        summary: "Removes the expiry of a key, which then lives until deleted.",
        complexity: "O(1)"),
    spec!("expiretime", 2, READONLY | FAST, "generic", "7.0.0", expire::expiretime,
        acl: "keyspace",
        keys: RO_ACCESS,
        args: "key",
        summary: "Replies with the Unix time in seconds at which a key expires.",
        complexity: "O(1)"),
    spec!("pexpiretime", 2, READONLY | FAST, "generic", "7.0.0", expire::pexpiretime,
        acl: "keyspace",
        keys: RO_ACCESS,
        args: "key",
        summary: "Replies with the Unix time in milliseconds at which a key expires.",
        complexity: "O(1)"),
    // transactions
    spec!("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, "transactions", "1.2.0", multi::multi,
        acl: "transaction",
        summary: "Starts queuing commands for a transaction.",
        complexity: "O(1)"),
    spec!("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, "transactions", "1.2.0", multi::exec,
        acl: "transaction",
        summary: "Runs the queued commands of the transaction as one atomic step.",
        complexity: "The sum of the costs of the queued commands"),
    spec!("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, "transactions", "2.0.0", multi::discard,
        acl: "transaction",
        summary: "Drops the queued commands and ends the transaction.",
        complexity: "O(N), N being the number of queued commands"),
    spec!("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, "transactions", "2.2.0", multi::watch,
        acl: "transaction",
        keys: &[key_range("RO", 1, -1, 1)],
        args: "key*",
        summary: "Makes the next EXEC fail if any of these keys changes before it.",
        complexity: "O(1) per key"),
    spec!("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, "transactions", "2.2.0", multi::unwatch,
        acl: "transaction",
        summary: "Stops watching every key this connection watches.",
        complexity: "O(1)"),
    // server
    spec!("info", -1, LOADING | STALE, "server", "1.0.0", sys::info,
        acl: "dangerous",
        tips: "nondeterministic_output request_policy:all_shards response_policy:special",
        args: "?section:string*",
        summary: "Reports the state and statistics of the server, section by section.",
        complexity: "O(1)"),
    spec!("config", -2, 0, "server", "2.0.0", sys::container,
        subcommands: CONFIG_SUBS,
        summary: "Holds the commands that read and change the configuration.",
        complexity: "Depends on the subcommand"),
    spec!("command", -1, LOADING | STALE, "server", "2.8.13", command::command,
        acl: "connection",
        tips: "nondeterministic_output_order",
        subcommands: COMMAND_SUBS,
        summary: "Describes every command of this server.",
        complexity: "O(N), N being the number of commands this server has"),
    spec!("time", 1, LOADING | STALE | FAST, "server", "2.6.0", sys::time,
        tips: "nondeterministic_output",
        summary: "Replies with the server's clock: seconds and microseconds since the Unix epoch.",
        complexity: "O(1)"),
    spec!("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY, "server", "1.0.0", sys::shutdown,
        args: "?nosave_save:(NOSAVE|SAVE) ?NOW@7.0.0 ?FORCE@7.0.0 ?ABORT@7.0.0",
        summary: "Stops the server, first saving a snapshot when save points are configured.",
        complexity: "O(N) when it saves, N being the number of keys in all databases; O(1) otherwise"),
    spec!("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE, "server", "1.0.0", sys::debug,
        syscmd: true,
        summary: "Holds commands for debugging and testing the server.",
        complexity: "Depends on the subcommand"),
    spec!("save", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI, "server", "1.0.0", save::save,
        summary: "Writes a snapshot of the data to disk, blocking until it is done.",
        complexity: "O(N), N being the number of keys in all databases"),
    // forkdb also has BGSAVE CANCEL (from Valkey 8.1) and the method FORK|FORKLESS (Valkey
    // 9.2), where Redis 7.0 documents SCHEDULE alone.
    spec!("bgsave", -1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, "server", "1.0.0", save::bgsave,
        args: "?operation:(SCHEDULE@3.2.2|CANCEL) ?method:(FORK|FORKLESS)",
        summary: "Writes a snapshot of the data to disk from a forked child or a writer thread, or cancels one.",
        complexity: "O(1)"),
    spec!("snapshot", -2, 0, "server", "0.1.0", sys::container,
        subcommands: SNAPSHOT_SUBS,
        summary: "Holds the commands that show what each background save cost (forkdb's own).",
        complexity: "Depends on the subcommand"),
    spec!("lastsave", 1, LOADING | STALE | FAST, "server", "1.0.0", sys::lastsave,
        acl: "admin dangerous",
        tips: "nondeterministic_output",
        summary: "Replies with the Unix time of the last successful save to disk.",
        complexity: "O(1)"),
    spec!("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, "server", "1.0.0", diag::monitor,
        summary: "Streams every command the server runs, as it runs it."),
    // replication (see `repl`)
    spec!("sync", 1, NO_ASYNC_LOADING | ADMIN | NO_MULTI | NOSCRIPT, "server", "1.0.0", repl::sync,
        summary: "Makes this connection a replica: a snapshot of the data, then every write (used by replicas and redis-cli)."),
    spec!("psync", -3, NO_ASYNC_LOADING | ADMIN | NO_MULTI | NOSCRIPT, "server", "2.8.0", repl::sync,
        args: "replicationid:string offset:integer",
        summary: "Makes this connection a replica, resuming from the backlog when it holds the offset (used by replicas)."),
    spec!("replconf", -1, ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, "server", "3.0.0", repl::replconf,
        syscmd: true,
        summary: "Tells the master about a replica before and during replication (used by replicas).",
        complexity: "O(1)"),
    spec!("replicaof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, "server", "5.0.0", repl::replica::replicaof,
        args: "args:(host-port:{host:string port:integer}|no-one:{NO ONE})",
        summary: "Makes this server a replica of another, or (NO ONE) a master again.",
        complexity: "O(1)"),
    spec!("slaveof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, "server", "1.0.0", repl::replica::replicaof,
        args: "args:(host-port:{host:string port:integer}|no-one:{NO ONE})",
        deprecated_since: "5.0.0", replaced_by: "`REPLICAOF`",
        summary: "Makes this server a replica of another, or (NO ONE) a master again.",
        complexity: "O(1)"),
    spec!("role", 1, NOSCRIPT | LOADING | STALE | FAST, "server", "2.8.12", repl::role,
        acl: "admin dangerous",
        summary: "Replies with this server's replication role, offset and replicas.",
        complexity: "O(1)"),
    spec!("wait", 3, NOSCRIPT, "generic", "3.0.0", repl::wait,
        acl: "connection",
        tips: "request_policy:all_shards response_policy:agg_min",
        args: "numreplicas:integer timeout:integer",
        summary: "Blocks until the given number of replicas acknowledged every write made so far, or the timeout (ms) passes.",
        complexity: "O(1)"),
    spec!("slowlog", -2, 0, "server", "2.2.12", sys::container,
        subcommands: SLOWLOG_SUBS,
        summary: "Holds the commands of the slow log.",
        complexity: "Depends on the subcommand"),
    spec!("latency", -2, 0, "server", "2.8.13", sys::container,
        subcommands: LATENCY_SUBS,
        summary: "Holds the commands of the latency monitor.",
        complexity: "Depends on the subcommand"),
    spec!("memory", -2, 0, "server", "4.0.0", sys::container,
        subcommands: MEMORY_SUBS,
        summary: "Holds the commands that report memory use.",
        complexity: "Depends on the subcommand"),
    // lists (cmd/list.rs): new rows go between this line and the next marker.
    spec!("lpush", -3, WRITE | DENYOOM | FAST, "list", "1.0.0", list::lpush,
        acl: "list",
        keys: &[key("RW insert", 1)],
        args: "key element:string*",
        summary: "Adds elements at the head of a list, creating it if needed.",
        complexity: "O(1) per element"),
    spec!("rpush", -3, WRITE | DENYOOM | FAST, "list", "1.0.0", list::rpush,
        acl: "list",
        keys: &[key("RW insert", 1)],
        args: "key element:string*",
        summary: "Adds elements at the tail of a list, creating it if needed.",
        complexity: "O(1) per element"),
    spec!("lpushx", -3, WRITE | DENYOOM | FAST, "list", "2.2.0", list::lpushx,
        acl: "list",
        keys: &[key("RW insert", 1)],
        args: "key element:string*",
        summary: "Adds elements at the head of a list only if the list exists.",
        complexity: "O(1) per element"),
    spec!("rpushx", -3, WRITE | DENYOOM | FAST, "list", "2.2.0", list::rpushx,
        acl: "list",
        keys: &[key("RW insert", 1)],
        args: "key element:string*",
        summary: "Adds elements at the tail of a list only if the list exists.",
        complexity: "O(1) per element"),
    spec!("lpop", -2, WRITE | FAST, "list", "1.0.0", list::lpop,
        acl: "list",
        keys: &[key("RW access delete", 1)],
        args: "key ?count:integer@6.2.0",
        summary: "Removes and replies with elements from the head of a list.",
        complexity: "O(N), N being the number of elements popped"),
    spec!("rpop", -2, WRITE | FAST, "list", "1.0.0", list::rpop,
        acl: "list",
        keys: &[key("RW access delete", 1)],
        args: "key ?count:integer@6.2.0",
        summary: "Removes and replies with elements from the tail of a list.",
        complexity: "O(N), N being the number of elements popped"),
    spec!("llen", 2, READONLY | FAST, "list", "1.0.0", list::llen,
        acl: "list",
        keys: RO,
        args: "key",
        summary: "Replies with the length of a list.",
        complexity: "O(1)"),
    spec!("lindex", 3, READONLY, "list", "1.0.0", list::lindex,
        acl: "list",
        keys: &[key("RO access", 1)],
        args: "key index:integer",
        summary: "Replies with the element at an index of a list.",
        complexity: "O(N) in the nodes walked to the index"),
    spec!("lrange", 4, READONLY, "list", "1.0.0", list::lrange,
        acl: "list",
        keys: &[key("RO access", 1)],
        args: "key start:integer stop:integer",
        summary: "Replies with a range of the elements of a list.",
        complexity: "O(S+N), S the offset of start, N the elements replied"),
    spec!("lset", 4, WRITE | DENYOOM, "list", "1.0.0", list::lset,
        acl: "list",
        keys: RW_UPDATE,
        args: "key index:integer element:string",
        summary: "Replaces the element at an index of a list.",
        complexity: "O(N) in the nodes walked to the index"),
    spec!("linsert", 5, WRITE | DENYOOM, "list", "2.2.0", list::linsert,
        acl: "list",
        keys: &[key("RW insert", 1)],
        args: "key where:(BEFORE|AFTER) pivot:string element:string",
        summary: "Inserts an element before or after the first occurrence of another.",
        complexity: "O(N) in the elements walked to the pivot"),
    spec!("lrem", 4, WRITE, "list", "1.0.0", list::lrem,
        acl: "list",
        keys: &[key("RW delete", 1)],
        args: "key count:integer element:string",
        summary: "Removes occurrences of an element from a list.",
        complexity: "O(N+M), N the length of the list, M the elements removed"),
    spec!("ltrim", 4, WRITE, "list", "1.0.0", list::ltrim,
        acl: "list",
        keys: &[key("RW delete", 1)],
        args: "key start:integer stop:integer",
        summary: "Keeps only a range of the elements of a list.",
        complexity: "O(N), N the elements removed"),
    spec!("lpos", -3, READONLY, "list", "6.0.6", list::lpos,
        acl: "list",
        keys: &[key("RO access", 1)],
        args: "key element:string ?RANK=rank:integer ?COUNT=num-matches:integer ?MAXLEN=len:integer",
        summary: "Replies with the indices of the elements equal to a given one.",
        complexity: "O(N), N the elements scanned"),
    spec!("lmove", 5, WRITE | DENYOOM, "list", "6.2.0", list::lmove,
        acl: "list",
        keys: &[key("RW access delete", 1), key("RW insert", 2)],
        args: "source:key destination:key wherefrom:(LEFT|RIGHT) whereto:(LEFT|RIGHT)",
        summary: "Pops an element from one list and pushes it to another, replying with it.",
        complexity: "O(1)"),
    spec!("rpoplpush", 3, WRITE | DENYOOM, "list", "1.2.0", list::rpoplpush,
        acl: "list",
        keys: &[key("RW access delete", 1), key("RW insert", 2)],
        args: "source:key destination:key",
        deprecated_since: "6.2.0",
        replaced_by: "`LMOVE` with the `RIGHT` and `LEFT` arguments",
        summary: "Pops the tail of one list, pushes it at the head of another, replying with it.",
        complexity: "O(1)"),
    spec!("lmpop", -4, WRITE, "list", "7.0.0", list::lmpop,
        acl: "list",
        keys: &[key_keynum("RW access delete", 1, 0, 1, 1)],
        args: "numkeys:integer key* where:(LEFT|RIGHT) ?COUNT=count:integer",
        summary: "Pops elements from the first non-empty list of several.",
        complexity: "O(N+M), N the keys given, M the elements popped"),
    spec!("blpop", -3, WRITE | NOSCRIPT | BLOCKING, "list", "2.0.0", list::blpop,
        acl: "list",
        keys: &[key_range("RW access delete", 1, -2, 1)],
        args: "key* timeout:double",
        summary: "Pops the head of the first non-empty list, or blocks until one has an element.",
        complexity: "O(N), N the keys given"),
    spec!("brpop", -3, WRITE | NOSCRIPT | BLOCKING, "list", "2.0.0", list::brpop,
        acl: "list",
        keys: &[key_range("RW access delete", 1, -2, 1)],
        args: "key* timeout:double",
        summary: "Pops the tail of the first non-empty list, or blocks until one has an element.",
        complexity: "O(N), N the keys given"),
    spec!("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, "list", "6.2.0", list::blmove,
        acl: "list",
        keys: &[key("RW access delete", 1), key("RW insert", 2)],
        args: "source:key destination:key wherefrom:(LEFT|RIGHT) whereto:(LEFT|RIGHT) timeout:double",
        summary: "LMOVE, or blocks until the source list has an element.",
        complexity: "O(1)"),
    spec!("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, "list", "2.2.0", list::brpoplpush,
        acl: "list",
        keys: &[key("RW access delete", 1), key("RW insert", 2)],
        args: "source:key destination:key timeout:double",
        deprecated_since: "6.2.0",
        replaced_by: "`BLMOVE` with the `RIGHT` and `LEFT` arguments",
        summary: "RPOPLPUSH, or blocks until the source list has an element.",
        complexity: "O(1)"),
    spec!("blmpop", -5, WRITE | BLOCKING, "list", "7.0.0", list::blmpop,
        acl: "list",
        keys: &[key_keynum("RW access delete", 2, 0, 1, 1)],
        args: "timeout:double numkeys:integer key* where:(LEFT|RIGHT) ?COUNT=count:integer",
        summary: "LMPOP, or blocks until one of the lists has an element.",
        complexity: "O(N+M), N the keys given, M the elements popped"),
    // end of lists

    // hashes (cmd/hash.rs): new rows go between this line and the next marker.
    spec!("hset", -4, WRITE | DENYOOM | FAST, "hash", "2.0.0", hash::hset,
        acl: "hash",
        keys: &[key("RW update", 1)],
        args: "key field_value:{field:string value:string}*",
        summary: "Sets fields of the hash at a key, creating the key if needed; counts the new fields.",
        complexity: "O(1) per field"),
    spec!("hsetnx", 4, WRITE | DENYOOM | FAST, "hash", "2.0.0", hash::hsetnx,
        acl: "hash",
        keys: &[key("RW insert", 1)],
        args: "key field:string value:string",
        summary: "Sets a field of the hash at a key only if the field does not exist.",
        complexity: "O(1)"),
    spec!("hget", 3, READONLY | FAST, "hash", "2.0.0", hash::hget,
        acl: "hash",
        keys: RO_ACCESS,
        args: "key field:string",
        summary: "Reads the value of a field of the hash at a key.",
        complexity: "O(1)"),
    spec!("hmget", -3, READONLY | FAST, "hash", "2.0.0", hash::hmget,
        acl: "hash",
        keys: RO_ACCESS,
        args: "key field:string*",
        summary: "Reads the values of several fields of the hash at a key.",
        complexity: "O(N), N being the number of fields asked for"),
    spec!("hmset", -4, WRITE | DENYOOM | FAST, "hash", "2.0.0", hash::hmset,
        acl: "hash",
        keys: &[key("RW update", 1)],
        args: "key field_value:{field:string value:string}*",
        deprecated_since: "4.0.0",
        replaced_by: "`HSET` with several field-value pairs",
        summary: "Sets fields of the hash at a key, creating the key if needed.",
        complexity: "O(N), N being the number of fields set"),
    spec!("hgetall", 2, READONLY, "hash", "2.0.0", hash::hgetall,
        acl: "hash",
        tips: "nondeterministic_output_order",
        keys: RO_ACCESS,
        args: "key",
        summary: "Reads every field and value of the hash at a key.",
        complexity: "O(N), N being the size of the hash"),
    spec!("hkeys", 2, READONLY, "hash", "2.0.0", hash::hkeys,
        acl: "hash",
        tips: "nondeterministic_output_order",
        keys: RO_ACCESS,
        args: "key",
        summary: "Reads every field name of the hash at a key.",
        complexity: "O(N), N being the size of the hash"),
    spec!("hvals", 2, READONLY, "hash", "2.0.0", hash::hvals,
        acl: "hash",
        tips: "nondeterministic_output_order",
        keys: RO_ACCESS,
        args: "key",
        summary: "Reads every value of the hash at a key.",
        complexity: "O(N), N being the size of the hash"),
    spec!("hlen", 2, READONLY | FAST, "hash", "2.0.0", hash::hlen,
        acl: "hash",
        keys: RO,
        args: "key",
        summary: "Counts the fields of the hash at a key.",
        complexity: "O(1)"),
    spec!("hexists", 3, READONLY | FAST, "hash", "2.0.0", hash::hexists,
        acl: "hash",
        keys: RO,
        args: "key field:string",
        summary: "Tells whether a field exists in the hash at a key.",
        complexity: "O(1)"),
    spec!("hdel", -3, WRITE | FAST, "hash", "2.0.0", hash::hdel,
        acl: "hash",
        keys: &[key("RW delete", 1)],
        args: "key field:string*",
        summary: "Removes fields from the hash at a key (the key goes with its last field); counts those removed.",
        complexity: "O(N), N being the number of fields given"),
    spec!("hincrby", 4, WRITE | DENYOOM | FAST, "hash", "2.0.0", hash::hincrby,
        acl: "hash",
        keys: RW_ACCESS_UPDATE,
        args: "key field:string increment:integer",
        summary: "Adds an integer to the integer in a field of the hash at a key (a missing one counts as 0).",
        complexity: "O(1)"),
    spec!("hincrbyfloat", 4, WRITE | DENYOOM | FAST, "hash", "2.6.0", hash::hincrbyfloat,
        acl: "hash",
        keys: RW_ACCESS_UPDATE,
        args: "key field:string increment:double",
        summary: "Adds a decimal number to the number in a field of the hash at a key (a missing one counts as 0).",
        complexity: "O(1)"),
    spec!("hstrlen", 3, READONLY | FAST, "hash", "3.2.0", hash::hstrlen,
        acl: "hash",
        keys: RO,
        args: "key field:string",
        summary: "Replies with the length of the value of a field of the hash at a key.",
        complexity: "O(1)"),
    spec!("hrandfield", -2, READONLY, "hash", "6.2.0", hash::hrandfield,
        acl: "hash",
        tips: "nondeterministic_output",
        keys: RO_ACCESS,
        args: "key ?options:{count:integer ?WITHVALUES}",
        summary: "Picks fields of the hash at a key at random, distinct for a positive count, repeating for a negative one.",
        complexity: "O(N), N being the number of fields returned"),
    spec!("hscan", -3, READONLY, "hash", "2.8.0", hash::hscan,
        acl: "hash",
        tips: "nondeterministic_output",
        keys: RO_ACCESS,
        args: "key cursor:integer ?MATCH=pattern:pattern ?COUNT=count:integer",
        summary: "Walks through the fields and values of the hash at a key a batch at a time, following a cursor.",
        complexity: "O(1) per call, O(N) for a whole walk"),
    // end of hashes

    // sets (cmd/set.rs): new rows go between this line and the next marker.
    spec!("sadd", -3, WRITE | DENYOOM | FAST, "set", "1.0.0", set::sadd,
        acl: "set",
        keys: &[key("RW insert", 1)],
        args: "key member:string*",
        summary: "Adds members to the set at a key, creating it if needed, and counts those that were new.",
        complexity: "O(1) per member (O(N) per member while the set is an intset of N integers)"),
    spec!("srem", -3, WRITE | FAST, "set", "1.0.0", set::srem,
        acl: "set",
        keys: &[key("RW delete", 1)],
        args: "key member:string*",
        summary: "Removes members from the set at a key and counts those that were there.",
        complexity: "O(N), N being the number of members given"),
    spec!("smembers", 2, READONLY, "set", "1.0.0", set::smembers,
        acl: "set",
        tips: "nondeterministic_output_order",
        keys: RO_ACCESS,
        args: "key",
        summary: "Replies with every member of the set at a key.",
        complexity: "O(N), N being the size of the set"),
    spec!("sismember", 3, READONLY | FAST, "set", "1.0.0", set::sismember,
        acl: "set",
        keys: RO,
        args: "key member:string",
        summary: "Tells whether a string is a member of the set at a key.",
        complexity: "O(1)"),
    spec!("smismember", -3, READONLY | FAST, "set", "6.2.0", set::smismember,
        acl: "set",
        keys: RO_ACCESS,
        args: "key member:string*",
        summary: "Tells, for each string given, whether it is a member of the set at a key.",
        complexity: "O(N), N being the number of members given"),
    spec!("scard", 2, READONLY | FAST, "set", "1.0.0", set::scard,
        acl: "set",
        keys: RO,
        args: "key",
        summary: "Replies with the number of members of the set at a key.",
        complexity: "O(1)"),
    spec!("spop", -2, WRITE | FAST, "set", "1.0.0", set::spop,
        acl: "set",
        tips: "nondeterministic_output",
        keys: &[key("RW access delete", 1)],
        args: "key ?count:integer@3.2.0",
        summary: "Removes random members from the set at a key and replies with them.",
        complexity: "O(1) without a count, O(N) with a count N"),
    spec!("srandmember", -2, READONLY, "set", "1.0.0", set::srandmember,
        acl: "set",
        tips: "nondeterministic_output",
        keys: RO_ACCESS,
        args: "key ?count:integer@2.6.0",
        summary: "Replies with random members of the set at a key (distinct for a positive count, repeats allowed for a negative one).",
        complexity: "O(1) without a count, O(N) with a count whose absolute value is N"),
    spec!("smove", 4, WRITE | FAST, "set", "1.0.0", set::smove,
        acl: "set",
        keys: &[key("RW access delete", 1), key("RW insert", 2)],
        args: "source:key destination:key member:string",
        summary: "Moves a member from one set to another.",
        complexity: "O(1)"),
    spec!("sinter", -2, READONLY, "set", "1.0.0", set::sinter,
        acl: "set",
        tips: "nondeterministic_output_order",
        keys: &[key_range("RO access", 1, -1, 1)],
        args: "key*",
        summary: "Replies with the members every one of the sets at the keys holds.",
        complexity: "O(N*M), N being the size of the smallest set and M the number of sets"),
    spec!("sintercard", -3, READONLY, "set", "7.0.0", set::sintercard,
        acl: "set",
        keys: &[key_keynum("RO access", 1, 0, 1, 1)],
        args: "numkeys:integer key* ?LIMIT=limit:integer",
        summary: "Counts the members every one of the sets at the keys holds, stopping at a limit if given.",
        complexity: "O(N*M), N being the size of the smallest set and M the number of sets"),
    spec!("sinterstore", -3, WRITE | DENYOOM, "set", "1.0.0", set::sinterstore,
        acl: "set",
        keys: &[key("RW update", 1), key_range("RO access", 2, -1, 1)],
        args: "destination:key key*",
        summary: "Stores at a key the members every one of the sets at the other keys holds.",
        complexity: "O(N*M), N being the size of the smallest set and M the number of sets"),
    spec!("sunion", -2, READONLY, "set", "1.0.0", set::sunion,
        acl: "set",
        tips: "nondeterministic_output_order",
        keys: &[key_range("RO access", 1, -1, 1)],
        args: "key*",
        summary: "Replies with the members any of the sets at the keys holds.",
        complexity: "O(N), N being the total size of the sets"),
    spec!("sunionstore", -3, WRITE | DENYOOM, "set", "1.0.0", set::sunionstore,
        acl: "set",
        keys: &[key("OW update", 1), key_range("RO access", 2, -1, 1)],
        args: "destination:key key*",
        summary: "Stores at a key the members any of the sets at the other keys holds.",
        complexity: "O(N), N being the total size of the sets"),
    spec!("sdiff", -2, READONLY, "set", "1.0.0", set::sdiff,
        acl: "set",
        tips: "nondeterministic_output_order",
        keys: &[key_range("RO access", 1, -1, 1)],
        args: "key*",
        summary: "Replies with the members of the first set that none of the other sets holds.",
        complexity: "O(N), N being the total size of the sets"),
    spec!("sdiffstore", -3, WRITE | DENYOOM, "set", "1.0.0", set::sdiffstore,
        acl: "set",
        keys: &[key("OW update", 1), key_range("RO access", 2, -1, 1)],
        args: "destination:key key*",
        summary: "Stores at a key the members of the first set that none of the other sets holds.",
        complexity: "O(N), N being the total size of the sets"),
    spec!("sscan", -3, READONLY, "set", "2.8.0", set::sscan,
        acl: "set",
        tips: "nondeterministic_output",
        keys: RO_ACCESS,
        args: "key cursor:integer ?MATCH=pattern:pattern ?COUNT=count:integer",
        summary: "Walks the members of the set at a key a few at a time, with a cursor.",
        complexity: "O(1) per call, O(N) for a whole walk over a set of N members"),
    // end of sets

    // sorted sets (cmd/zset.rs): new rows go between this line and the next marker.
    spec!("zadd", -4, WRITE | DENYOOM | FAST, "sorted-set", "1.2.0", zset::zadd,
        acl: "sortedset",
        args: "key ?condition:(NX|XX)@3.0.2 ?comparison:(GT|LT)@6.2.0 ?CH=change:pure-token@3.0.2 ?INCR=increment:pure-token@3.0.2 score_member:{score:double member:string}*",
        keys: RW_UPDATE,
        summary: "Adds members to a sorted set or updates their scores, creating the key if needed.",
        complexity: "O(log(N)) for each member added"),
    spec!("zincrby", 4, WRITE | DENYOOM | FAST, "sorted-set", "1.2.0", zset::zincrby,
        acl: "sortedset",
        args: "key increment:integer member:string",
        keys: RW_ACCESS_UPDATE,
        summary: "Adds to the score of a member of a sorted set, creating it if needed.",
        complexity: "O(log(N))"),
    spec!("zrem", -3, WRITE | FAST, "sorted-set", "1.2.0", zset::zrem,
        acl: "sortedset",
        args: "key member:string*",
        keys: &[key("RW delete", 1)],
        summary: "Removes members from a sorted set, deleting the key when it empties.",
        complexity: "O(M*log(N))"),
    spec!("zcard", 2, READONLY | FAST, "sorted-set", "1.2.0", zset::zcard,
        acl: "sortedset",
        args: "key",
        keys: RO,
        summary: "Counts the members of a sorted set.",
        complexity: "O(1)"),
    spec!("zscore", 3, READONLY | FAST, "sorted-set", "1.2.0", zset::zscore,
        acl: "sortedset",
        args: "key member:string",
        keys: RO_ACCESS,
        summary: "Reads the score of a member of a sorted set.",
        complexity: "O(1)"),
    spec!("zmscore", -3, READONLY | FAST, "sorted-set", "6.2.0", zset::zmscore,
        acl: "sortedset",
        args: "key member:string*",
        keys: RO_ACCESS,
        summary: "Reads the scores of several members of a sorted set.",
        complexity: "O(N)"),
    spec!("zrank", 3, READONLY | FAST, "sorted-set", "2.0.0", zset::zrank,
        acl: "sortedset",
        args: "key member:string",
        keys: RO_ACCESS,
        summary: "Gives the rank of a member in a sorted set, from the lowest score.",
        complexity: "O(log(N))"),
    spec!("zrevrank", 3, READONLY | FAST, "sorted-set", "2.0.0", zset::zrevrank,
        acl: "sortedset",
        args: "key member:string",
        keys: RO_ACCESS,
        summary: "Gives the rank of a member in a sorted set, from the highest score.",
        complexity: "O(log(N))"),
    spec!("zcount", 4, READONLY | FAST, "sorted-set", "2.0.0", zset::zcount,
        acl: "sortedset",
        args: "key min:double max:double",
        keys: RO_ACCESS,
        summary: "Counts the members of a sorted set within a score range.",
        complexity: "O(log(N))"),
    spec!("zlexcount", 4, READONLY | FAST, "sorted-set", "2.8.9", zset::zlexcount,
        acl: "sortedset",
        args: "key min:string max:string",
        keys: RO_ACCESS,
        summary: "Counts the members of a sorted set within a lexicographical range.",
        complexity: "O(log(N))"),
    spec!("zrange", -4, READONLY, "sorted-set", "1.2.0", zset::zrange,
        acl: "sortedset",
        args: "key start:string stop:string ?sortby:(BYSCORE|BYLEX)@6.2.0 ?REV@6.2.0 ?LIMIT=offset_count:{offset:integer count:integer}@6.2.0 ?WITHSCORES",
        keys: RO_ACCESS,
        summary: "Reads the members of a sorted set within a range of ranks, scores or members.",
        complexity: "O(log(N)+M)"),
    spec!("zrangestore", -5, WRITE | DENYOOM, "sorted-set", "6.2.0", zset::zrangestore,
        acl: "sortedset",
        args: "dst:key src:key min:string max:string ?sortby:(BYSCORE|BYLEX) ?REV ?LIMIT=offset_count:{offset:integer count:integer}",
        keys: &[key("OW update", 1), key("RO access", 2)],
        summary: "Stores a range of a sorted set at another key.",
        complexity: "O(log(N)+M)"),
    spec!("zrevrange", -4, READONLY, "sorted-set", "1.2.0", zset::zrevrange,
        acl: "sortedset",
        args: "key start:integer stop:integer ?WITHSCORES",
        keys: RO_ACCESS,
        deprecated_since: "6.2.0", replaced_by: "`ZRANGE` with the `REV` argument",
        summary: "Reads the members of a sorted set within a range of ranks, from the highest score.",
        complexity: "O(log(N)+M)"),
    spec!("zrangebyscore", -4, READONLY, "sorted-set", "1.0.5", zset::zrangebyscore,
        acl: "sortedset",
        args: "key min:double max:double ?WITHSCORES@2.0.0 ?LIMIT=offset_count:{offset:integer count:integer}",
        keys: RO_ACCESS,
        deprecated_since: "6.2.0", replaced_by: "`ZRANGE` with the `BYSCORE` argument",
        summary: "Reads the members of a sorted set within a score range.",
        complexity: "O(log(N)+M)"),
    spec!("zrevrangebyscore", -4, READONLY, "sorted-set", "2.2.0", zset::zrevrangebyscore,
        acl: "sortedset",
        args: "key max:double min:double ?WITHSCORES ?LIMIT=offset_count:{offset:integer count:integer}",
        keys: RO_ACCESS,
        deprecated_since: "6.2.0", replaced_by: "`ZRANGE` with the `REV` and `BYSCORE` arguments",
        summary: "Reads the members of a sorted set within a score range, from the highest score.",
        complexity: "O(log(N)+M)"),
    spec!("zrangebylex", -4, READONLY, "sorted-set", "2.8.9", zset::zrangebylex,
        acl: "sortedset",
        args: "key min:string max:string ?LIMIT=offset_count:{offset:integer count:integer}",
        keys: RO_ACCESS,
        deprecated_since: "6.2.0", replaced_by: "`ZRANGE` with the `BYLEX` argument",
        summary: "Reads the members of a sorted set within a lexicographical range.",
        complexity: "O(log(N)+M)"),
    spec!("zrevrangebylex", -4, READONLY, "sorted-set", "2.8.9", zset::zrevrangebylex,
        acl: "sortedset",
        args: "key max:string min:string ?LIMIT=offset_count:{offset:integer count:integer}",
        keys: RO_ACCESS,
        deprecated_since: "6.2.0", replaced_by: "`ZRANGE` with the `REV` and `BYLEX` arguments",
        summary: "Reads the members of a sorted set within a lexicographical range, in reverse order.",
        complexity: "O(log(N)+M)"),
    spec!("zremrangebyrank", 4, WRITE, "sorted-set", "2.0.0", zset::zremrangebyrank,
        acl: "sortedset",
        args: "key start:integer stop:integer",
        keys: &[key("RW delete", 1)],
        summary: "Removes the members of a sorted set within a range of ranks.",
        complexity: "O(log(N)+M)"),
    spec!("zremrangebyscore", 4, WRITE, "sorted-set", "1.2.0", zset::zremrangebyscore,
        acl: "sortedset",
        args: "key min:double max:double",
        keys: &[key("RW delete", 1)],
        summary: "Removes the members of a sorted set within a score range.",
        complexity: "O(log(N)+M)"),
    spec!("zremrangebylex", 4, WRITE, "sorted-set", "2.8.9", zset::zremrangebylex,
        acl: "sortedset",
        args: "key min:string max:string",
        keys: &[key("RW delete", 1)],
        summary: "Removes the members of a sorted set within a lexicographical range.",
        complexity: "O(log(N)+M)"),
    spec!("zpopmin", -2, WRITE | FAST, "sorted-set", "5.0.0", zset::zpopmin,
        acl: "sortedset",
        args: "key ?count:integer",
        keys: &[key("RW access delete", 1)],
        summary: "Removes and returns the members with the lowest scores.",
        complexity: "O(log(N)*M)"),
    spec!("zpopmax", -2, WRITE | FAST, "sorted-set", "5.0.0", zset::zpopmax,
        acl: "sortedset",
        args: "key ?count:integer",
        keys: &[key("RW access delete", 1)],
        summary: "Removes and returns the members with the highest scores.",
        complexity: "O(log(N)*M)"),
    spec!("zmpop", -4, WRITE, "sorted-set", "7.0.0", zset::zmpop,
        acl: "sortedset",
        args: "numkeys:integer key* where:(MIN|MAX) ?COUNT=count:integer",
        keys: &[key_keynum("RW access delete", 1, 0, 1, 1)],
        summary: "Removes and returns members with the lowest or highest scores from the first non-empty of several sorted sets.",
        complexity: "O(K) + O(M*log(N))"),
    spec!("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST, "sorted-set", "5.0.0", zset::bzpopmin,
        acl: "sortedset",
        args: "key* timeout:double",
        keys: &[key_range("RW access delete", 1, -2, 1)],
        summary: "ZPOPMIN of the first non-empty sorted set, or blocks until one has a member.",
        complexity: "O(log(N))"),
    spec!("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST, "sorted-set", "5.0.0", zset::bzpopmax,
        acl: "sortedset",
        args: "key* timeout:double",
        keys: &[key_range("RW access delete", 1, -2, 1)],
        summary: "ZPOPMAX of the first non-empty sorted set, or blocks until one has a member.",
        complexity: "O(log(N))"),
    spec!("bzmpop", -5, WRITE | BLOCKING, "sorted-set", "7.0.0", zset::bzmpop,
        acl: "sortedset",
        args: "timeout:double numkeys:integer key* where:(MIN|MAX) ?COUNT=count:integer",
        keys: &[key_keynum("RW access delete", 2, 0, 1, 1)],
        summary: "ZMPOP, or blocks until one of the sorted sets has a member.",
        complexity: "O(K) + O(M*log(N))"),
    spec!("zrandmember", -2, READONLY, "sorted-set", "6.2.0", zset::zrandmember,
        acl: "sortedset",
        args: "key ?options:{count:integer ?WITHSCORES}",
        tips: "nondeterministic_output",
        keys: RO_ACCESS,
        summary: "Returns random members of a sorted set.",
        complexity: "O(N) where N is the number of members returned"),
    spec!("zunion", -3, READONLY, "sorted-set", "6.2.0", zset::zunion,
        acl: "sortedset",
        args: "numkeys:integer key* ?WEIGHTS=weight:integer* ?AGGREGATE=aggregate:(SUM|MIN|MAX) ?WITHSCORES",
        keys: &[key_keynum("RO access", 1, 0, 1, 1)],
        summary: "Returns the union of sorted sets.",
        complexity: "O(N)+O(M*log(M))"),
    spec!("zinter", -3, READONLY, "sorted-set", "6.2.0", zset::zinter,
        acl: "sortedset",
        args: "numkeys:integer key* ?WEIGHTS=weight:integer* ?AGGREGATE=aggregate:(SUM|MIN|MAX) ?WITHSCORES",
        keys: &[key_keynum("RO access", 1, 0, 1, 1)],
        summary: "Returns the intersection of sorted sets.",
        complexity: "O(N*K)+O(M*log(M))"),
    spec!("zdiff", -3, READONLY, "sorted-set", "6.2.0", zset::zdiff,
        acl: "sortedset",
        args: "numkeys:integer key* ?WITHSCORES",
        keys: &[key_keynum("RO access", 1, 0, 1, 1)],
        summary: "Returns the difference of sorted sets.",
        complexity: "O(L + (N-K)log(N))"),
    spec!("zunionstore", -4, WRITE | DENYOOM, "sorted-set", "2.0.0", zset::zunionstore,
        acl: "sortedset",
        args: "destination:key numkeys:integer key* ?WEIGHTS=weight:integer* ?AGGREGATE=aggregate:(SUM|MIN|MAX)",
        keys: &[key("OW update", 1), key_keynum("RO access", 2, 0, 1, 1)],
        summary: "Stores the union of sorted sets at a key.",
        complexity: "O(N)+O(M*log(M))"),
    spec!("zinterstore", -4, WRITE | DENYOOM, "sorted-set", "2.0.0", zset::zinterstore,
        acl: "sortedset",
        args: "destination:key numkeys:integer key* ?WEIGHTS=weight:integer* ?AGGREGATE=aggregate:(SUM|MIN|MAX)",
        keys: &[key("OW update", 1), key_keynum("RO access", 2, 0, 1, 1)],
        summary: "Stores the intersection of sorted sets at a key.",
        complexity: "O(N*K)+O(M*log(M))"),
    spec!("zdiffstore", -4, WRITE | DENYOOM, "sorted-set", "6.2.0", zset::zdiffstore,
        acl: "sortedset",
        args: "destination:key numkeys:integer key*",
        keys: &[key("OW update", 1), key_keynum("RO access", 2, 0, 1, 1)],
        summary: "Stores the difference of sorted sets at a key.",
        complexity: "O(L + (N-K)log(N))"),
    spec!("zintercard", -3, READONLY, "sorted-set", "7.0.0", zset::zintercard,
        acl: "sortedset",
        args: "numkeys:integer key* ?LIMIT=limit:integer",
        keys: &[key_keynum("RO access", 1, 0, 1, 1)],
        summary: "Counts the members of the intersection of sorted sets.",
        complexity: "O(N*K)"),
    spec!("zscan", -3, READONLY, "sorted-set", "2.8.0", zset::zscan,
        acl: "sortedset",
        args: "key cursor:integer ?MATCH=pattern:pattern ?COUNT=count:integer",
        tips: "nondeterministic_output",
        keys: RO_ACCESS,
        summary: "Iterates over the members and scores of a sorted set.",
        complexity: "O(1) for every call"),
    // end of sorted sets

    // bitmaps and string bit operations (cmd/bitmap.rs): new rows go between this line and the next marker.
    spec!("setbit", 4, WRITE | DENYOOM, "bitmap", "2.2.0", bitmap::setbit,
        acl: "bitmap",
        keys: RW_ACCESS_UPDATE,
        args: "key offset:integer value:integer",
        summary: "Sets or clears one bit of the string at a key, padding it with zero bytes as needed.",
        complexity: "O(1)"),
    spec!("getbit", 3, READONLY | FAST, "bitmap", "2.2.0", bitmap::getbit,
        acl: "bitmap",
        keys: RO_ACCESS,
        args: "key offset:integer",
        summary: "Reads one bit of the string at a key (0 past its end).",
        complexity: "O(1)"),
    spec!("bitcount", -2, READONLY, "bitmap", "2.6.0", bitmap::bitcount,
        acl: "bitmap",
        keys: RO_ACCESS,
        args: "key ?index:{start:integer end:integer ?index_unit:(BYTE|BIT)@7.0.0}",
        summary: "Counts the set bits of the string at a key, in a range of bytes or bits.",
        complexity: "O(N), N being the length of the range"),
    spec!("bitpos", -3, READONLY, "bitmap", "2.8.7", bitmap::bitpos,
        acl: "bitmap",
        keys: RO_ACCESS,
        args: "key bit:integer ?index:{start:integer ?end_index:{end:integer ?index_unit:(BYTE|BIT)@7.0.0}}",
        summary: "Finds the first bit set to 1 or 0 in the string at a key, in a range of bytes or bits.",
        complexity: "O(N), N being the length of the range"),
    spec!("bitop", -4, WRITE | DENYOOM, "bitmap", "2.6.0", bitmap::bitop,
        acl: "bitmap",
        keys: &[key("OW update", 2), key_range("RO access", 3, -1, 1)],
        args: "operation:string destkey:key key:key*",
        summary: "Stores the bitwise AND, OR, XOR or NOT of strings at a key.",
        complexity: "O(N), N being the length of the longest string"),
    spec!("bitfield", -2, WRITE | DENYOOM, "bitmap", "3.2.0", bitmap::bitfield,
        acl: "bitmap",
        keys: &[key("RW access update variable_flags", 1)
            .notes("RW: the command may read fields and write others")],
        args: "key ?operation:(GET=encoding_offset:{encoding:string offset:integer}|\
               write:{?OVERFLOW=wrap_sat_fail:(WRAP|SAT|FAIL) \
               write_operation:(SET=encoding_offset_value:{encoding:string offset:integer value:integer}|\
               INCRBY=encoding_offset_increment:{encoding:string offset:integer increment:integer})})*",
        summary: "Reads and writes integers of any width up to 64 bits at any bit offset of a string.",
        complexity: "O(1) per field"),
    spec!("bitfield_ro", -2, READONLY | FAST, "bitmap", "6.0.0", bitmap::bitfield_ro,
        acl: "bitmap",
        keys: RO_ACCESS,
        args: "key ?GET=encoding_offset:{encoding:string offset:integer}**",
        summary: "Reads integers of any width up to 64 bits at any bit offset of a string.",
        complexity: "O(1) per field"),
    spec!("lcs", -3, READONLY, "string", "7.0.0", bitmap::lcs,
        acl: "string",
        keys: &[key_range("RO access", 1, 1, 1)],
        args: "key1:key key2:key#0 ?LEN ?IDX ?MINMATCHLEN=len:integer ?WITHMATCHLEN",
        summary: "Finds the longest common subsequence of two strings, its length or the ranges that match.",
        complexity: "O(N*M), N and M being the two strings' lengths"),
    spec!("substr", 4, READONLY, "string", "1.0.0", string::getrange,
        acl: "string",
        keys: RO_ACCESS,
        args: "key start:integer end:integer",
        deprecated_since: "2.0.0",
        replaced_by: "`GETRANGE`",
        summary: "Reads the part of the string at a key between two offsets (the old name of GETRANGE).",
        complexity: "O(N), N being the length of the part returned"),
    // end of bitmaps and string bit operations
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

/// Every command and subcommand.
pub fn all_specs() -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows use only names COMMAND knows, in the order it reports them, so that what a row says
    /// is what COMMAND shows.
    #[test]
    fn rows_use_known_names_in_order() {
        for c in all_specs() {
            for cat in c.acl.split_whitespace() {
                assert!(
                    ACL_CATEGORIES.contains(&cat),
                    "{}: ACL category {cat}",
                    c.name
                );
            }
            for k in c.keys {
                let pos: Vec<Option<usize>> = k
                    .flags
                    .split(' ')
                    .map(|f| KEY_SPEC_FLAGS.iter().position(|n| *n == f))
                    .collect();
                assert!(
                    pos.iter().all(Option::is_some),
                    "{}: key spec flags {:?}",
                    c.name,
                    k.flags
                );
                assert!(
                    pos.windows(2).all(|w| w[0] < w[1]),
                    "{}: key spec flags order {:?}",
                    c.name,
                    k.flags
                );
                assert!(
                    k.unknown || (k.index > 0 && k.keystep > 0),
                    "{}: key spec",
                    c.name
                );
            }
            assert!(
                c.tips.split(' ').all(|t| !t.is_empty()) || c.tips.is_empty(),
                "{}: tips",
                c.name
            );
            assert_eq!(
                c.flags & MOVABLE_KEYS,
                0,
                "{}: movablekeys is derived",
                c.name
            );
            // Redis documents MONITOR, SYNC and PSYNC without a complexity, and COMMAND DOCS
            // then omits it.
            assert!(
                !c.summary.is_empty()
                    && (!c.complexity.is_empty() || matches!(c.name, "monitor" | "sync" | "psync")),
                "{}: docs",
                c.name
            );
            assert_eq!(
                c.replaced_by.is_empty(),
                c.deprecated_since.is_empty(),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn legacy_key_positions_follow_redis() {
        let find = |name: &str| all_specs().find(|c| c.name == name).unwrap();
        assert_eq!(find("get").legacy_keys(), (1, 1, 1, false));
        assert_eq!(find("mset").legacy_keys(), (1, -1, 2, false));
        assert_eq!(find("del").legacy_keys(), (1, -1, 1, false));
        assert_eq!(find("copy").legacy_keys(), (1, 2, 1, false));
        assert_eq!(find("object|freq").legacy_keys(), (2, 2, 1, false));
        assert_eq!(find("ping").legacy_keys(), (0, 0, 0, false));
        let cats = |name: &str| -> Vec<&str> {
            find(name)
                .acl_categories()
                .into_iter()
                .map(|i| ACL_CATEGORIES[i])
                .collect()
        };
        assert_eq!(cats("copy"), ["keyspace", "write", "slow"]);
        assert_eq!(
            cats("client|kill"),
            ["admin", "slow", "dangerous", "connection"]
        );
        assert_eq!(cats("lastsave"), ["admin", "fast", "dangerous"]);
    }
}
