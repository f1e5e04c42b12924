//! Connection commands.
//!
//! ```text
//! PING [message]            ECHO message            QUIT
//! SELECT index              SWAPDB index1 index2    RESET
//! AUTH [username] password
//! HELLO [protover [AUTH username password] [SETNAME clientname]]
//! CLIENT ID | SETNAME name | GETNAME | LIST [TYPE t] [ID id ...] | INFO | KILL ... | HELP
//! ```

use bytes::Bytes;
use forkdb_protocol::Frame;

use super::is;
use crate::server::Ctx;
use crate::util::parse_i64;

pub fn ping(cx: &mut Ctx, args: &[Bytes]) {
    // In RESP2 subscribed mode the reply is shaped like a message (Redis's `pingCommand`).
    if cx.client.subs.active() && !cx.client.resp3 && args.len() <= 2 {
        cx.array(2);
        cx.bulk(b"pong");
        return cx.bulk(args.get(1).map_or(&b""[..], |a| &a[..]));
    }
    match args.len() {
        1 => cx.simple("PONG"),
        2 => cx.bulk(&args[1]),
        _ => cx.err("ERR wrong number of arguments for 'ping' command"),
    }
}

pub fn echo(cx: &mut Ctx, args: &[Bytes]) {
    cx.bulk(&args[1]);
}

pub fn quit(cx: &mut Ctx, _args: &[Bytes]) {
    cx.ok();
    cx.client.close_after_reply = true;
}

fn db_index(cx: &mut Ctx, arg: &[u8], not_int: &str) -> Option<usize> {
    let Some(n) = parse_i64(arg) else {
        cx.err(not_int);
        return None;
    };
    if n < 0 || n >= cx.srv.config.databases as i64 {
        cx.err("ERR DB index is out of range");
        return None;
    }
    Some(n as usize)
}

pub fn select(cx: &mut Ctx, args: &[Bytes]) {
    if let Some(db) = db_index(cx, &args[1], "ERR value is not an integer or out of range") {
        cx.client.select(db);
        cx.ok();
    }
}

pub fn swapdb(cx: &mut Ctx, args: &[Bytes]) {
    let Some(a) = parse_i64(&args[1]) else {
        return cx.err("ERR invalid first DB index");
    };
    let Some(b) = parse_i64(&args[2]) else {
        return cx.err("ERR invalid second DB index");
    };
    let n = cx.srv.config.databases as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return cx.err("ERR DB index is out of range");
    }
    cx.srv.ks.swap_db(a as usize, b as usize);
    cx.ok();
}

/// Checks a username/password pair against the only user forkdb has, `default`.
fn check_password(cx: &mut Ctx, user: &[u8], pass: &[u8]) -> bool {
    let required = cx.srv.config.requirepass.as_bytes();
    let ok = user == b"default" && (required.is_empty() || pass == required);
    if ok {
        cx.client.authenticated = true;
    } else {
        cx.err("WRONGPASS invalid username-password pair or user is disabled.");
    }
    ok
}

pub fn auth(cx: &mut Ctx, args: &[Bytes]) {
    match args.len() {
        2 => {
            if cx.srv.config.requirepass.is_empty() {
                return cx.err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
            }
            if check_password(cx, b"default", &args[1]) {
                cx.ok();
            }
        }
        3 => {
            if check_password(cx, &args[1], &args[2]) {
                cx.ok();
            }
        }
        _ => cx.syntax_err(),
    }
}

/// Redis allows client names of printable ASCII without spaces.
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

fn set_name(cx: &mut Ctx, name: &Bytes) {
    // A copy: the argument is a slice of the read buffer, which it would keep alive.
    *cx.client.meta.name.borrow_mut() = if name.is_empty() {
        None
    } else {
        Some(Bytes::copy_from_slice(name))
    };
}

pub fn hello(cx: &mut Ctx, args: &[Bytes]) {
    let mut ver = None;
    let mut next = 1;
    if args.len() >= 2 {
        let Some(v) = parse_i64(&args[1]) else {
            return cx.err("ERR Protocol version is not an integer or out of range");
        };
        if !(2..=3).contains(&v) {
            return cx.err("NOPROTO unsupported protocol version");
        }
        ver = Some(v);
        next = 2;
    }
    let mut creds = None;
    let mut name = None;
    let mut j = next;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is(&args[j], "auth") && more >= 2 {
            creds = Some((args[j + 1].clone(), args[j + 2].clone()));
            j += 3;
        } else if is(&args[j], "setname") && more >= 1 {
            if !valid_name(&args[j + 1]) {
                return cx.err(BAD_NAME);
            }
            name = Some(args[j + 1].clone());
            j += 2;
        } else {
            return cx.err_quoting("ERR Syntax error in HELLO option '", &args[j], "'");
        }
    }
    if let Some((user, pass)) = creds {
        if !check_password(cx, &user, &pass) {
            return;
        }
    }
    if !cx.client.authenticated && !cx.srv.config.requirepass.is_empty() {
        return cx.err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(n) = name {
        set_name(cx, &n);
    }
    if let Some(v) = ver {
        cx.client.resp3 = v == 3;
        cx.client.meta.resp.set(v as u8);
    }
    let proto = if cx.client.resp3 { 3 } else { 2 };
    let reply = Frame::Map(vec![
        (Frame::bulk("server"), Frame::bulk("redis")),
        (Frame::bulk("version"), Frame::bulk(crate::REDIS_VERSION)),
        (Frame::bulk("proto"), Frame::Integer(proto)),
        (Frame::bulk("id"), Frame::Integer(cx.client.id() as i64)),
        (Frame::bulk("mode"), Frame::bulk("standalone")),
        (Frame::bulk("role"), Frame::bulk("master")),
        (Frame::bulk("modules"), Frame::Array(vec![])),
    ]);
    cx.frame(&reply);
}

pub fn reset(cx: &mut Ctx, _args: &[Bytes]) {
    super::multi::discard_state(cx);
    super::multi::unwatch_all(cx);
    cx.client.select(0);
    cx.client.resp3 = false;
    cx.client.meta.resp.set(2);
    *cx.client.meta.name.borrow_mut() = None;
    cx.client.authenticated = cx.srv.config.requirepass.is_empty();
    cx.client.meta.monitor.set(false);
    crate::pubsub::forget(cx.srv, cx.client);
    cx.simple("RESET");
}

pub fn client_id(cx: &mut Ctx, _args: &[Bytes]) {
    cx.int(cx.client.id() as i64);
}

pub fn client_setname(cx: &mut Ctx, args: &[Bytes]) {
    if !valid_name(&args[2]) {
        return cx.err(BAD_NAME);
    }
    set_name(cx, &args[2]);
    cx.ok();
}

pub fn client_getname(cx: &mut Ctx, _args: &[Bytes]) {
    let name = cx.client.meta.name.borrow().clone();
    match name {
        Some(n) => cx.bulk(&n),
        None => cx.null(),
    }
}

/// Text replies that Redis sends as verbatim strings in RESP3 and bulk strings in RESP2.
pub fn verbatim(cx: &mut Ctx, text: String) {
    cx.frame(&Frame::Verbatim("txt".into(), Bytes::from(text)));
}

pub fn client_list(cx: &mut Ctx, args: &[Bytes]) {
    let mut ids: Option<Vec<u64>> = None;
    let mut j = 2;
    while j < args.len() {
        if is(&args[j], "type") && j + 1 < args.len() {
            let t = String::from_utf8_lossy(&args[j + 1]).to_ascii_lowercase();
            match t.as_str() {
                "normal" | "replica" | "slave" | "master" | "pubsub" => {
                    // replication: a replica (SYNC/PSYNC), our master's link, or neither.
                    let of: Vec<u64> = cx
                        .srv
                        .clients
                        .values()
                        .filter(|m| match t.as_str() {
                            "normal" => !m.replica.get() && !m.master_link.get() && !m.is_pubsub(),
                            "master" => m.master_link.get(),
                            "pubsub" => m.is_pubsub(),
                            _ => m.replica.get(),
                        })
                        .map(|m| m.id)
                        .collect();
                    ids = Some(of);
                }
                _ => return cx.err_quoting("ERR Unknown client type '", &args[j + 1], "'"),
            }
            j += 2;
        } else if is(&args[j], "id") && j + 1 < args.len() {
            let mut list = Vec::new();
            for a in &args[j + 1..] {
                match parse_i64(a) {
                    Some(n) if n > 0 => list.push(n as u64),
                    _ => return cx.err("ERR Invalid client ID"),
                }
            }
            ids = Some(list);
            j = args.len();
        } else {
            return cx.syntax_err();
        }
    }
    let mut text = String::new();
    for (id, meta) in &cx.srv.clients {
        if ids.as_ref().is_some_and(|l| !l.contains(id)) {
            continue;
        }
        text.push_str(&meta.info_line());
        text.push('\n');
    }
    verbatim(cx, text);
}

pub fn client_info(cx: &mut Ctx, _args: &[Bytes]) {
    let line = cx.client.meta.info_line() + "\n";
    verbatim(cx, line);
}

pub fn client_kill(cx: &mut Ctx, args: &[Bytes]) {
    if args.len() == 3 {
        // Old form: CLIENT KILL ip:port.
        let addr = String::from_utf8_lossy(&args[2]).into_owned();
        let target = cx.srv.clients.values().find(|m| m.addr == addr).cloned();
        return match target {
            Some(m) => {
                if m.id == cx.client.id() {
                    cx.client.close_after_reply = true;
                } else {
                    m.request_kill();
                }
                cx.ok();
            }
            None => cx.err("ERR No such client"),
        };
    }
    let mut id = None;
    let mut addr = None;
    let mut laddr = None;
    let mut skipme = true;
    let mut kill_type: Option<String> = None;
    let mut j = 2;
    while j + 1 < args.len() {
        let val = &args[j + 1];
        if is(&args[j], "id") {
            match parse_i64(val) {
                Some(n) if n > 0 => id = Some(n as u64),
                _ => return cx.err("ERR client-id should be greater than 0"),
            }
        } else if is(&args[j], "addr") {
            addr = Some(String::from_utf8_lossy(val).into_owned());
        } else if is(&args[j], "laddr") {
            laddr = Some(String::from_utf8_lossy(val).into_owned());
        } else if is(&args[j], "skipme") {
            if is(val, "yes") {
                skipme = true;
            } else if is(val, "no") {
                skipme = false;
            } else {
                return cx.syntax_err();
            }
        } else if is(&args[j], "type") {
            let t = String::from_utf8_lossy(val).to_ascii_lowercase();
            if !matches!(
                t.as_str(),
                "normal" | "master" | "replica" | "slave" | "pubsub"
            ) {
                return cx.err_quoting("ERR Unknown client type '", val, "'");
            }
            kill_type = Some(t);
        } else if is(&args[j], "user") {
            if val.as_ref() != b"default" {
                return cx.err_quoting("ERR No such user '", val, "'");
            }
        } else {
            return cx.syntax_err();
        }
        j += 2;
    }
    if j != args.len() {
        return cx.syntax_err();
    }
    let me = cx.client.id();
    let mut killed = 0;
    let targets: Vec<_> = cx.srv.clients.values().cloned().collect();
    for m in targets {
        if id.is_some_and(|i| i != m.id)
            || addr.as_ref().is_some_and(|a| *a != m.addr)
            || laddr.as_ref().is_some_and(|a| *a != m.laddr)
            || (skipme && m.id == me)
            || kill_type.as_deref().is_some_and(|t| match t {
                "normal" => m.replica.get() || m.master_link.get() || m.is_pubsub(),
                "replica" | "slave" => !m.replica.get(),
                "master" => !m.master_link.get(),
                "pubsub" => !m.is_pubsub(),
                _ => true,
            })
        {
            continue;
        }
        if m.id == me {
            cx.client.close_after_reply = true;
        } else {
            m.request_kill();
        }
        killed += 1;
    }
    cx.int(killed);
}

/// Replies with a HELP listing: the usage line then each text line, as Redis's `addReplyHelp`.
pub fn help_reply(cx: &mut Ctx, command: &str, lines: &[&str]) {
    let mut items = vec![Frame::Simple(format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    items.extend(lines.iter().map(|l| Frame::Simple(l.to_string())));
    items.push(Frame::Simple("HELP".into()));
    // Redis 7.0.15's addReplyHelp says "Prints" (so do all its HELP replies).
    items.push(Frame::Simple("    Prints this help.".into()));
    cx.frame(&Frame::Array(items));
}

pub fn client_help(cx: &mut Ctx, _args: &[Bytes]) {
    help_reply(
        cx,
        "CLIENT",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "    * ID <client-id>",
            "      Kill connections by client id.",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
        ],
    );
}
