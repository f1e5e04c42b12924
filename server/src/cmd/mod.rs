//! Command dispatch and the command families.
//!
//! [`execute`] applies Redis's `processCommand` checks in Redis's order (existence, arity,
//! authentication, MULTI queueing, refusal of writes after a failed save), then calls the handler
//! from the command table. Each family module documents its commands' syntax.

pub mod bitmap;
pub mod command;
pub mod conn;
pub mod diag;
pub mod dump;
pub mod expire;
pub mod hash;
pub mod keys;
pub mod list;
pub mod multi;
pub mod pubsub;
pub mod save;
pub mod set;
pub mod sort;
pub mod string;
pub mod sys;
pub mod zset;

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::client::Client;
use crate::config::ProtectedMode;
use crate::server::{count_error, Ctx, Server};
use crate::table::{self, CommandSpec};

/// C's `%.Ns` of an argument: up to the first NUL byte, at most `max` bytes. Redis formats these
/// errors with printf, so that is exactly what it quotes; the bytes are not re-encoded.
fn c_str(arg: &[u8], max: usize) -> &[u8] {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    &arg[..end.min(max)]
}

/// Redis's unknown-command error: the name and the first arguments, quoted, at most about 128
/// bytes of them, raw (`commandCheckExistence`).
fn unknown_command_error(args: &[Bytes]) -> Vec<u8> {
    let mut quoted = Vec::new();
    for a in &args[1..] {
        if quoted.len() >= 128 {
            break;
        }
        let room = 128 - quoted.len();
        quoted.push(b'\'');
        quoted.extend_from_slice(c_str(a, room));
        quoted.extend_from_slice(b"' ");
    }
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(c_str(&args[0], 128));
    msg.extend_from_slice(b"', with args beginning with: ");
    msg.extend_from_slice(&quoted);
    msg
}

/// Finds the command (or subcommand) `args` names, or the error to reply with (raw bytes: it
/// quotes the client's).
pub fn resolve(args: &[Bytes]) -> Result<&'static CommandSpec, Vec<u8>> {
    let Some(spec) = table::lookup(&args[0]) else {
        return Err(unknown_command_error(args));
    };
    if spec.subcommands.is_empty() || args.len() < 2 {
        return Ok(spec);
    }
    match table::lookup_sub(spec, &args[1]) {
        Some(sub) => Ok(sub),
        None => {
            let mut msg = b"ERR unknown subcommand '".to_vec();
            msg.extend_from_slice(c_str(&args[1], 128));
            msg.extend_from_slice(b"'. Try ");
            msg.extend(
                c_str(&args[0], usize::MAX)
                    .iter()
                    .map(u8::to_ascii_uppercase),
            );
            msg.extend_from_slice(b" HELP.");
            Err(msg)
        }
    }
}

/// Rejects a command before it runs: counted as an error and, inside MULTI, it makes EXEC abort.
/// A rejected EXEC itself ends the transaction with EXECABORT naming the reason (Redis's
/// `execCommandAbort`).
fn reject(
    srv: &mut Server,
    client: &mut Client,
    out: &mut BytesMut,
    msg: impl AsRef<[u8]>,
    is_exec: bool,
) {
    let msg = msg.as_ref();
    if client.multi.is_some() {
        client.multi_error = true;
    }
    let mut cx = Ctx {
        srv,
        client,
        out,
        failed: false,
    };
    if is_exec {
        multi::discard_state(&mut cx);
        multi::unwatch_all(&mut cx);
        let reason = msg.strip_prefix(b"ERR ").unwrap_or(msg);
        let mut text = b"EXECABORT Transaction discarded because of: ".to_vec();
        text.extend_from_slice(reason);
        cx.err_bytes(&text);
    } else {
        cx.err_bytes(msg);
    }
}

/// [`reject`] of a command that exists: counted in its `rejected_calls` (Redis's
/// `rejectCommand`).
fn reject_cmd(
    srv: &mut Server,
    client: &mut Client,
    out: &mut BytesMut,
    spec: &'static CommandSpec,
    msg: impl AsRef<[u8]>,
    is_exec: bool,
) {
    srv.stats.commands.entry(spec.name).or_default().rejected += 1;
    reject(srv, client, out, msg, is_exec);
}

const DEBUG_REFUSED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

/// Runs one command from a client and appends its reply to `out`.
pub fn execute(srv: &mut Server, client: &mut Client, args: Vec<Bytes>, out: &mut BytesMut) {
    let spec = match resolve(&args) {
        Ok(s) => s,
        Err(msg) => {
            client.meta.last_cmd.set("NULL");
            return reject(srv, client, out, msg, false);
        }
    };
    // CLIENT LIST's `cmd=`: the command being run, also when it is then rejected (Redis sets
    // `lastcmd` at lookup). The commands EXEC runs leave it at `exec`.
    client.meta.last_cmd.set(spec.name);
    let is_exec = spec.name == "exec";
    if !table::arity_ok(spec.arity, args.len()) {
        let msg = format!("ERR wrong number of arguments for '{}' command", spec.name);
        return reject_cmd(srv, client, out, spec, &msg, is_exec);
    }
    if spec.name == "debug" {
        let allowed = match srv.config.enable_debug_command {
            ProtectedMode::Yes => true,
            ProtectedMode::Local => client.meta.from_loopback,
            ProtectedMode::No => false,
        };
        if !allowed {
            return reject_cmd(srv, client, out, spec, DEBUG_REFUSED, false);
        }
    }
    if !client.authenticated && !spec.has(table::NO_AUTH) {
        if !srv.config.requirepass.is_empty() {
            return reject_cmd(
                srv,
                client,
                out,
                spec,
                "NOAUTH Authentication required.",
                is_exec,
            );
        }
        // The password was removed at run time: everyone is authenticated now.
        client.authenticated = true;
    }
    let queueing = client.multi.is_some()
        && !matches!(
            spec.name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        );
    if queueing && spec.has(table::NO_MULTI) {
        let msg = "ERR Command not allowed inside a transaction";
        return reject_cmd(srv, client, out, spec, msg, false);
    }
    // EXEC answers for the commands it runs: it is a write, or may use memory, if any of them is.
    let flags = if is_exec {
        spec.flags | client.multi_flags
    } else {
        spec.flags
    };
    // No eviction during a load (Redis's `isSafeToPerformEvictions`): the data set is not whole.
    if srv.config.maxmemory > 0 && !srv.persist.loading && !srv.evict_to_fit() {
        // Over the limit: refuse what may use memory, and anything queued in MULTI (the queue
        // itself grows), but never EXEC of reads, DISCARD, QUIT or RESET (Redis's rule).
        // replication: the master's stream is never refused (Redis exempts CLIENT_MASTER).
        if (flags & table::DENYOOM != 0 || queueing) && !client.repl.is_master {
            let msg = "OOM command not allowed when used memory > 'maxmemory'.";
            return reject_cmd(srv, client, out, spec, msg, is_exec);
        }
    }
    // Redis refuses PING too while writes are refused, so that health checks notice.
    if (flags & table::WRITE != 0 || spec.name == "ping") && !client.repl.is_master {
        if let Some(msg) = srv.deny_write_reason() {
            return reject_cmd(srv, client, out, spec, &msg, is_exec);
        }
    }
    // replication: `min-replicas-to-write` (Redis checks it for writes only), and a read-only
    // replica's `-READONLY` for every client but its master.
    if flags & table::WRITE != 0 && !client.repl.is_master {
        if let Some(msg) = crate::repl::deny_write_reason(srv) {
            return reject_cmd(srv, client, out, spec, msg, is_exec);
        }
        if let Some(msg) = crate::repl::replica::deny_write(srv, client) {
            return reject_cmd(srv, client, out, spec, msg, is_exec);
        }
    }
    // A RESP2 connection with subscriptions reads messages: only these commands may be mixed
    // in (Redis 7.0's `processCommand`, checked here, after READONLY and before stale).
    if client.subs.active()
        && !client.resp3
        && !matches!(
            spec.name,
            "ping"
                | "subscribe"
                | "ssubscribe"
                | "unsubscribe"
                | "sunsubscribe"
                | "psubscribe"
                | "punsubscribe"
                | "quit"
                | "reset"
        )
    {
        let msg = format!("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", spec.name);
        return reject_cmd(srv, client, out, spec, &msg, is_exec);
    }
    // A stale replica refuses what lacks the `stale` flag; EXEC, what it would run.
    let stale_ok =
        spec.has(table::STALE) && !(is_exec && client.multi_inv_flags & table::STALE != 0);
    if let Some(msg) = crate::repl::replica::deny_stale(srv, stale_ok) {
        return reject_cmd(srv, client, out, spec, msg, is_exec);
    }
    // While the data set loads, only commands with Redis's `loading` flag run.
    if srv.persist.loading && !spec.has(table::LOADING) {
        let msg = "LOADING Redis is loading the dataset in memory";
        return reject_cmd(srv, client, out, spec, msg, is_exec);
    }
    // A monitor is a replica to Redis, and replicas may not touch the keyspace.
    if client.meta.monitor.get() && flags & (table::READONLY | table::WRITE) != 0 {
        let msg = "ERR Replica can't interact with the keyspace";
        return reject_cmd(srv, client, out, spec, msg, is_exec);
    }
    if queueing {
        if let Some(queue) = client.multi.as_mut() {
            // Redis's `mstate.argv_len_sums`: the arguments and a pointer for each.
            let mem = if queue.is_empty() {
                0
            } else {
                client.meta.multi_mem.get()
            };
            let argv: usize = args.iter().map(|a| a.len() + 8).sum();
            client.meta.multi_mem.set(mem + argv);
            // Copies: the arguments are slices of the read buffer, which a queued command
            // would otherwise keep alive until EXEC.
            queue.push(args.iter().map(|a| Bytes::copy_from_slice(a)).collect());
            client.multi_flags |= spec.flags;
            client.multi_inv_flags |= !spec.flags;
            client.meta.multi.set(queue.len() as i64);
        }
        out.extend_from_slice(b"+QUEUED\r\n");
        return;
    }
    call(srv, client, spec, &args, out);
    // replication: the command's ops (EXEC's, wrapped in MULTI/EXEC) go into the stream; WAIT
    // waits for the offset after this client's last write.
    let offset_before = srv.repl.offset;
    crate::repl::flush(srv, flags & table::WRITE != 0);
    if srv.repl.offset != offset_before {
        client.repl.woff = srv.repl.offset;
    }
    // Keys the command (or EXEC's queue) made ready serve their blocked clients now, before
    // this client's next command (Redis's `handleClientsBlockedOnKeys` after `call()`).
    if srv.ks.blocking.has_ready() {
        crate::blocking::serve_ready(srv);
        crate::repl::flush(srv, false);
    }
}

/// Calls a resolved command's handler and records its statistics (also used by EXEC).
pub fn call(
    srv: &mut Server,
    client: &mut Client,
    spec: &'static CommandSpec,
    args: &[Bytes],
    out: &mut BytesMut,
) {
    let argv_mem: usize = args.iter().map(|a| a.len()).sum();
    client.meta.argv_mem.set(argv_mem);
    // Within a batch of pipelined commands the previous command's end is this one's start
    // (its time then includes its parsing, well under a microsecond); a call nested in EXEC,
    // or outside a batch, reads the clock itself.
    let chained = client.batch_clock.take();
    let start = chained.unwrap_or_else(Instant::now);
    // replication: what the command changed is propagated (see `repl::after_call`).
    let (db_before, dirty_before, reply_start) = (client.db, srv.ks.dirty, out.len());
    let mut cx = Ctx {
        srv,
        client,
        out,
        failed: false,
    };
    (spec.handler)(&mut cx, args);
    let failed = cx.failed;
    if srv.repl.active() {
        let changed = crate::repl::changed(spec, dirty_before, srv.ks.dirty, failed);
        let reply = out.get(reply_start..).unwrap_or(&[]);
        crate::repl::after_call(srv, db_before, spec, args, reply, changed);
    }
    let end = Instant::now();
    if chained.is_some() {
        client.batch_clock = Some(end);
    }
    let usec = end.duration_since(start).as_micros() as u64;
    let stat = srv.stats.commands.entry(spec.name).or_default();
    stat.calls += 1;
    stat.usec += usec;
    if failed {
        stat.failed += 1;
    }
    srv.stats.total_commands_processed += 1;
    if spec.has(table::WRITE) {
        srv.stats.write_commands += 1;
    }
    client.meta.argv_mem.set(0);
    crate::diag::after_call(srv, client, spec, args, usec, out);
}

/// Replies with an error from outside a handler: the network layer's protocol errors.
///
/// A `ProtocolError`'s text shows a client byte above 0x7f (`expected '$', got '%c'`) as the
/// Latin-1 character of the same value, since it must be UTF-8; every other character of those
/// texts is ASCII. Redis echoes the raw byte, so each character up to U+00FF goes out as that
/// one byte.
pub fn error_reply(srv: &mut Server, msg: &str, out: &mut BytesMut) {
    let raw: Vec<u8> = if msg.is_ascii() {
        msg.as_bytes().to_vec()
    } else {
        let mut raw = Vec::with_capacity(msg.len());
        for c in msg.chars() {
            match u8::try_from(u32::from(c)) {
                Ok(b) => raw.push(b),
                Err(_) => raw.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        raw
    };
    count_error(&mut srv.stats, &raw);
    crate::server::encode_error_bytes(&raw, out);
}

/// Parses an integer argument or replies with Redis's error. Used by every family.
pub fn int_arg(cx: &mut Ctx, arg: &[u8]) -> Option<i64> {
    match crate::util::parse_i64(arg) {
        Some(n) => Some(n),
        None => {
            cx.not_int();
            None
        }
    }
}

/// The `numkeys key... <where> [COUNT n]` tail of LMPOP/BLMPOP and ZMPOP/BZMPOP, from
/// `numkeys_idx`: (the keys' argument range, the side `side` reads from the `<where>` token, the
/// count, 1 when absent). Errors in Redis's order (`lmpopGenericCommand`, `zmpopGenericCommand`)
/// are replied through `cx`, and then it returns None.
pub fn parse_mpop<T>(
    cx: &mut Ctx,
    args: &[Bytes],
    numkeys_idx: usize,
    side: impl Fn(&[u8]) -> Option<T>,
) -> Option<(std::ops::Range<usize>, T, u64)> {
    let numkeys = match crate::util::parse_i64(&args[numkeys_idx]) {
        Some(n) if n >= 1 => n as usize,
        _ => {
            cx.err("ERR numkeys should be greater than 0");
            return None;
        }
    };
    let where_idx = numkeys_idx.saturating_add(numkeys).saturating_add(1);
    let Some(which) = args.get(where_idx).and_then(|a| side(a)) else {
        cx.syntax_err();
        return None;
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && is(&args[j], "count") && j + 1 < args.len() {
            j += 1;
            match crate::util::parse_i64(&args[j]) {
                Some(n) if n >= 1 => count = Some(n as u64),
                _ => {
                    cx.err("ERR count should be greater than 0");
                    return None;
                }
            }
        } else {
            cx.syntax_err();
            return None;
        }
        j += 1;
    }
    Some((numkeys_idx + 1..where_idx, which, count.unwrap_or(1)))
}

/// Case-insensitive comparison of an argument with an option keyword.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}
