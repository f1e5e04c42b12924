//! Server commands.
//!
//! ```text
//! INFO [section ...]        TIME        LASTSAVE
//! CONFIG GET pattern [pattern ...] | SET name value [name value ...] | RESETSTAT | REWRITE | HELP
//! COMMAND [COUNT | INFO [name ...] | DOCS [name ...] | LIST | HELP]
//! SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]
//! DEBUG SLEEP seconds | SET-ACTIVE-EXPIRE 0|1 | OBJECT key | QUICKLIST-PACKED-THRESHOLD size
//!       | DIGEST | DIGEST-VALUE key [key ...] | PROTOCOL type | SET-SKIP-CHECKSUM-VALIDATION 0|1
//!       | HELP
//! ```

use bytes::Bytes;
use forkdb_protocol::Frame;

use super::is;
use crate::config::{self, ProtectedMode, OPTIONS};
use crate::glob;
use crate::server::{Ctx, ShutdownMode};

/// A container command called without a subcommand it knows (arity normally catches this).
pub fn container(cx: &mut Ctx, args: &[Bytes]) {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    cx.err(&format!(
        "ERR unknown subcommand or wrong number of arguments. Try {name} HELP."
    ));
}

pub fn info(cx: &mut Ctx, args: &[Bytes]) {
    let sections: Vec<String> = args[1..].iter().map(|a| crate::util::lower(a)).collect();
    let text = crate::info::render(cx.srv, &sections);
    super::conn::verbatim(cx, text);
}

pub fn time(cx: &mut Ctx, _args: &[Bytes]) {
    let us = crate::util::now_us();
    cx.array(2);
    cx.bulk((us / 1_000_000).to_string().as_bytes());
    cx.bulk((us % 1_000_000).to_string().as_bytes());
}

pub fn lastsave(cx: &mut Ctx, _args: &[Bytes]) {
    cx.int(cx.srv.last_save_unix);
}

pub fn config_get(cx: &mut Ctx, args: &[Bytes]) {
    let mut pairs: Vec<(Frame, Frame)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for pat in &args[2..] {
        let has_glob = pat.iter().any(|c| matches!(c, b'*' | b'?' | b'['));
        for opt in OPTIONS {
            if seen.contains(&opt.name) {
                continue;
            }
            let hit = if has_glob {
                glob::matches(pat, opt.name.as_bytes(), true)
            } else {
                pat.eq_ignore_ascii_case(opt.name.as_bytes())
                    || opt
                        .alias
                        .is_some_and(|a| pat.eq_ignore_ascii_case(a.as_bytes()))
            };
            if hit {
                seen.push(opt.name);
                // An exact name is echoed as the client wrote it, as Redis 7.0 does.
                let name = if has_glob {
                    Frame::bulk(opt.name)
                } else {
                    Frame::Bulk(pat.clone())
                };
                pairs.push((name, Frame::bulk((opt.get)(&cx.srv.config))));
            }
        }
    }
    cx.frame(&Frame::Map(pairs));
}

pub fn config_set(cx: &mut Ctx, args: &[Bytes]) {
    if !args.len().is_multiple_of(2) {
        return cx.syntax_err();
    }
    let mut changes: Vec<(&'static config::OptSpec, String)> = Vec::new();
    for pair in args[2..].chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).into_owned();
        let Some(opt) = config::find_option(&name) else {
            return cx.err_quoting(
                "ERR Unknown option or number of arguments for CONFIG SET - '",
                &pair[0],
                "'",
            );
        };
        let fail = |why: &str| {
            format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
        };
        if changes.iter().any(|(o, _)| o.name == opt.name) {
            return cx.err(&fail("duplicate parameter"));
        }
        if opt.flags & config::IMMUTABLE != 0 {
            return cx.err(&fail("can't set immutable config"));
        }
        if opt.flags & config::PROTECTED != 0 {
            let allowed = match cx.srv.config.enable_protected_configs {
                ProtectedMode::Yes => true,
                ProtectedMode::Local => cx.client.meta.from_loopback,
                ProtectedMode::No => false,
            };
            if !allowed {
                return cx.err(&fail("can't set protected config"));
            }
        }
        changes.push((opt, String::from_utf8_lossy(&pair[1]).into_owned()));
    }
    // All or nothing: apply to a copy, keep it only if every value was accepted.
    let mut next = cx.srv.config.clone();
    for (opt, value) in &changes {
        if let Err(why) = (opt.set)(&mut next, value) {
            if next.dir != cx.srv.config.dir {
                let _ = std::env::set_current_dir(&cx.srv.config.dir);
            }
            return cx.err(&format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - {why}",
                opt.name
            ));
        }
    }
    cx.srv.config = next;
    cx.srv.ks.lfu = cx.srv.config.lfu_params();
    cx.ok();
}

pub fn config_resetstat(cx: &mut Ctx, _args: &[Bytes]) {
    cx.srv.reset_stats();
    cx.ok();
}

pub fn config_rewrite(cx: &mut Ctx, _args: &[Bytes]) {
    match cx.srv.config.rewrite() {
        Ok(()) => cx.ok(),
        Err(e) => cx.err(&format!("ERR {e}")),
    }
}

pub fn config_help(cx: &mut Ctx, _args: &[Bytes]) {
    super::conn::help_reply(
        cx,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
}

// ---- SHUTDOWN / DEBUG ----

pub fn shutdown(cx: &mut Ctx, args: &[Bytes]) {
    let (mut nosave, mut save, mut now, mut force, mut abort) = (false, false, false, false, false);
    for a in &args[1..] {
        if is(a, "nosave") {
            nosave = true;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "now") {
            now = true;
        } else if is(a, "force") {
            force = true;
        } else if is(a, "abort") {
            abort = true;
        } else {
            return cx.syntax_err();
        }
    }
    if (abort && (nosave || save || now || force)) || (nosave && save) {
        return cx.syntax_err();
    }
    if abort {
        return cx.err("ERR No shutdown in progress.");
    }
    let mode = if save {
        ShutdownMode::Save
    } else if nosave {
        ShutdownMode::NoSave
    } else {
        ShutdownMode::Default
    };
    match cx.srv.prepare_shutdown(mode, force) {
        Ok(()) => {
            // Redis closes the connection without a reply once the shutdown goes ahead.
            cx.client.close_after_reply = true;
            cx.srv.request_shutdown(mode);
        }
        Err(_) => cx.err("ERR Errors trying to SHUTDOWN. Check logs."),
    }
}

pub fn debug(cx: &mut Ctx, args: &[Bytes]) {
    let sub = crate::util::lower(&args[1]);
    match (sub.as_str(), args.len()) {
        ("sleep", 3) => {
            let secs = crate::util::parse_f64(&args[2]).unwrap_or(0.0).max(0.0);
            // DEBUG SLEEP blocks the server, exactly as it does in Redis: that is its purpose.
            std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(3600.0)));
            cx.ok();
        }
        ("populate", 3..=5) => {
            // DEBUG POPULATE count [prefix] [size], as Redis: keys prefix:N holding "value:N"
            // (padded with zero bytes, or cut, to `size` when given); existing keys are kept.
            let Some(count) = crate::util::parse_i64(&args[2]).filter(|n| *n >= 0) else {
                return cx.err("ERR value is out of range, must be positive");
            };
            let prefix = args
                .get(3)
                .map(|p| p.to_vec())
                .unwrap_or_else(|| b"key".to_vec());
            let size = match args.get(4).map(|s| crate::util::parse_i64(s)) {
                None => None,
                Some(Some(n)) if n >= 0 => Some(n as usize),
                Some(_) => return cx.err("ERR value is out of range, must be positive"),
            };
            let db = cx.db();
            for i in 0..count {
                let mut key = prefix.clone();
                key.push(b':');
                key.extend_from_slice(i.to_string().as_bytes());
                if cx.srv.ks.exists(db, &key) {
                    continue;
                }
                let mut val = format!("value:{i}").into_bytes();
                if let Some(n) = size {
                    val.resize(n, 0);
                }
                cx.srv
                    .ks
                    .restore(db, &key, crate::store::Value::string(&val), -1);
            }
            cx.ok();
        }
        ("set-fork-error", 3) => {
            // forkdb's own: the next BGSAVE's fork() fails with this errno (0 clears), so the
            // failure path can be tested without exhausting the machine's memory.
            let errno = crate::util::parse_i64(&args[2]).unwrap_or(0) as i32;
            cx.srv.persist.inject_fork_errno = (errno != 0).then_some(errno);
            cx.ok();
        }
        ("spawn-thread", 3) => {
            // forkdb's own: starts a thread that sleeps <ms> milliseconds and ends, so that the
            // refusal to fork while the process has more than one thread can be tested.
            let Some(ms) = crate::util::parse_i64(&args[2]).filter(|n| (0..=60_000).contains(n))
            else {
                return cx.err("ERR milliseconds should be between 0 and 60000");
            };
            let spawned = std::thread::Builder::new()
                .name("debug-spawn-thread".into())
                .spawn(move || std::thread::sleep(std::time::Duration::from_millis(ms as u64)));
            match spawned {
                Ok(_) => cx.ok(),
                Err(e) => cx.err(&format!("ERR can't start a thread: {e}")),
            }
        }
        ("quicklist-packed-threshold", 3) => {
            let sz = std::str::from_utf8(&args[2])
                .ok()
                .and_then(crate::util::parse_memory);
            match sz {
                Some(sz) if crate::types::list::set_packed_threshold(sz) => cx.ok(),
                _ => cx.err("ERR argument must be a memory value bigger than 1 and smaller than 4gb"),
            }
        }
        ("protocol", 3) => debug_protocol(cx, &args[2]),
        ("digest", 2) => {
            let mut fin = [0u8; 20];
            for (db, d) in cx.srv.ks.databases() {
                if d.is_empty() {
                    continue;
                }
                // The db id goes in, so the same data in another db digests differently.
                mix_digest(&mut fin, &(db as u32).to_be_bytes());
                for (key, value, expire) in d.iter() {
                    let mut dg = [0u8; 20];
                    mix_digest(&mut dg, key);
                    object_digest(&mut dg, value, expire.is_some());
                    xor_digest(&mut fin, &dg);
                }
            }
            cx.simple(&hex20(&fin));
        }
        ("digest-value", _) => {
            let db = cx.db();
            let out: Vec<String> = args[2..]
                .iter()
                .map(|k| {
                    let mut dg = [0u8; 20];
                    // `peek`, as Redis's dictFind: a logically expired key still digests.
                    if let Some(e) = cx.srv.ks.peek(db, k) {
                        object_digest(&mut dg, e.value, e.expire >= 0);
                    }
                    hex20(&dg)
                })
                .collect();
            cx.array(out.len());
            for d in &out {
                cx.simple(d);
            }
        }
        ("set-skip-checksum-validation", 3) => {
            // Redis reads the flag with atoi. Only RESTORE honours it here: forkdb's RDB loader
            // always checks the file's checksum.
            let on = super::command::atoi(&args[2]) != 0;
            super::dump::set_skip_checksum_validation(on);
            cx.ok();
        }
        ("set-active-expire", 3) => {
            cx.srv.active_expire_enabled = args[2].as_ref() != b"0";
            cx.ok();
        }
        ("object", 3) => {
            let db = cx.db();
            let clock = cx.srv.ks.lru_clock;
            let Some(text) = cx.srv.ks.peek(db, &args[2]).map(|e| {
                format!(
                    "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
                    e.value.encoding_name(),
                    e.value.heap_size(),
                    e.lru,
                    crate::store::idle_secs(clock, e.lru)
                )
            }) else {
                return cx.err("ERR no such key");
            };
            cx.simple(&text);
        }
        ("reload", _) => match cx.srv.debug_reload() {
            Ok(()) => cx.ok(),
            Err(e) => cx.err(&format!("ERR Error trying to load the RDB dump: {e}")),
        },
        ("help", _) => super::conn::help_reply(
            cx,
            "DEBUG",
            &[
                "POPULATE <count> [<prefix>] [<size>]",
                "    Create <count> string keys named key:<num>. If <prefix> is specified then",
                "    it is used instead of the 'key' prefix. These are not propagated to",
                "    replicas. Cluster slots are not respected so keys not belonging to the",
                "    current node can be created in cluster mode.",
                "DIGEST",
                "    Output a hex signature representing the current DB content.",
                "DIGEST-VALUE <key> [<key> ...]",
                "    Output a hex signature of the values of all the specified keys.",
                "PROTOCOL <type>",
                "    Reply with a test value of the specified type. <type> can be: string,",
                "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
                "    true, false.",
                "OBJECT <key>",
                "    Show low level info about `key` and associated value.",
                "QUICKLIST-PACKED-THRESHOLD <size>",
                "    Sets the threshold for elements to be inserted as plain vs packed nodes",
                "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
                "RELOAD",
                "    Save the RDB on disk and reload it back to memory.",
                "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
                "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not",
                "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
                "    default.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
                "SET-FORK-ERROR <errno>",
                "    (forkdb) Make the next BGSAVE's fork() fail with <errno>; 0 clears it.",
                "SPAWN-THREAD <milliseconds>",
                "    (forkdb) Start a thread that lives <milliseconds> (at most 60000); BGSAVE",
                "    refuses to fork while it lives.",
            ],
        ),
        _ => cx.err_quoting("ERR unknown subcommand '", &args[1], "'. Try DEBUG HELP."),
    }
}

/// Redis's `xorDigest` (debug.c): XORs the SHA-1 of `data` into `digest`, so that unordered
/// elements (set members, hash fields) digest the same in any order.
fn xor_digest(digest: &mut [u8; 20], data: &[u8]) {
    let hash = sha1_smol::Sha1::from(data).digest().bytes();
    for (d, h) in digest.iter_mut().zip(hash) {
        *d ^= h;
    }
}

/// Redis's `mixDigest`: `xorDigest`, then the digest becomes the SHA-1 of itself, so that
/// order matters (list elements, a member before its score).
fn mix_digest(digest: &mut [u8; 20], data: &[u8]) {
    xor_digest(digest, data);
    *digest = sha1_smol::Sha1::from(&digest[..]).digest().bytes();
}

fn mix_elem(digest: &mut [u8; 20], e: &forkdb_snapshot::blob::Elem<'_>) {
    match e {
        forkdb_snapshot::blob::Elem::Str(s) => mix_digest(digest, s),
        forkdb_snapshot::blob::Elem::Int(n) => {
            mix_digest(digest, itoa::Buffer::new().format(*n).as_bytes())
        }
    }
}

/// Redis 7.0's `xorObjectDigest`: the type, the value element by element (the way each type
/// mixes is Redis's, so DEBUG DIGEST-VALUE answers the same hex as redis-server for the same
/// value), and a mark when the key has a TTL.
fn object_digest(digest: &mut [u8; 20], value: &crate::store::Value, has_expire: bool) {
    use crate::store::Value;
    // Redis's OBJ_STRING .. OBJ_HASH type codes, in network order.
    let type_code: u32 = match value {
        Value::Str { .. } => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
    };
    mix_digest(digest, &type_code.to_be_bytes());
    match value {
        Value::Str { data, .. } => mix_digest(digest, data),
        Value::List(l) => l.iter().for_each(|e| mix_elem(digest, &e)),
        Value::Set(s) => s.iter().for_each(|e| match e {
            forkdb_snapshot::blob::Elem::Str(m) => xor_digest(digest, m),
            forkdb_snapshot::blob::Elem::Int(n) => {
                xor_digest(digest, itoa::Buffer::new().format(n).as_bytes())
            }
        }),
        Value::ZSet(z) => {
            for (m, score) in z.iter() {
                let mut ele = [0u8; 20];
                mix_elem(&mut ele, &m);
                // 7.0 spells the score with `%.17g`.
                mix_digest(&mut ele, forkdb_protocol::format_double(score).as_bytes());
                xor_digest(digest, &ele);
            }
        }
        Value::Hash(h) => {
            for (f, v) in h.pairs() {
                let mut ele = [0u8; 20];
                mix_elem(&mut ele, &f);
                mix_elem(&mut ele, &v);
                xor_digest(digest, &ele);
            }
        }
    }
    if has_expire {
        xor_digest(digest, b"!!expire!!");
    }
}

fn hex20(d: &[u8; 20]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// DEBUG PROTOCOL <type>: Redis 7.0's fixed test value of each reply type, for clients (and the
/// suite) to check how they parse RESP3 and its RESP2 downgrades.
fn debug_protocol(cx: &mut Ctx, name: &[u8]) {
    let name = crate::util::lower(name);
    let bulk = |s: &str| Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    let ints = || (0..3).map(Frame::Integer).collect::<Vec<_>>();
    let f = match name.as_str() {
        "string" => bulk("Hello World"),
        "integer" => Frame::Integer(12345),
        // Redis's literal 3.141, not an approximation of pi.
        #[allow(clippy::approx_constant)]
        "double" => Frame::Double(3.141),
        "bignum" => Frame::BigNumber("1234567999999999999999999999999999999".into()),
        "null" => Frame::Null,
        "array" => Frame::Array(ints()),
        "set" => Frame::Set(ints()),
        "map" => Frame::Map(
            (0..3)
                .map(|j| (Frame::Integer(j), Frame::Boolean(j == 1)))
                .collect(),
        ),
        "attrib" => {
            if cx.resp3() {
                // An attribute (`|`) is no reply of its own, so `Frame` has no variant for it:
                // it is written as is, and the real reply follows.
                cx.out.extend_from_slice(
                    b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n",
                );
            }
            bulk("Some real reply following the attribute")
        }
        "push" => {
            if !cx.resp3() {
                return cx.err("ERR RESP2 is not supported by this command");
            }
            cx.frame(&Frame::Push(vec![
                bulk("server-cpu-usage"),
                Frame::Integer(42),
            ]));
            bulk("Some real reply following the push reply")
        }
        "true" => Frame::Boolean(true),
        "false" => Frame::Boolean(false),
        "verbatim" => Frame::Verbatim(
            "txt".into(),
            Bytes::from_static(b"This is a verbatim\nstring"),
        ),
        _ => {
            return cx.err(
                "ERR Wrong protocol type name. Please use one of the following: \
                 string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
            )
        }
    };
    cx.frame(&f);
}
