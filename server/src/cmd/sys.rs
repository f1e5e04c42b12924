//! Server commands.
//!
//! ```text
//! INFO [section ...]        TIME        LASTSAVE
//! CONFIG GET pattern [pattern ...] | SET name value [name value ...] | RESETSTAT | REWRITE | HELP
//! COMMAND [COUNT | INFO [name ...] | DOCS [name ...] | LIST | HELP]
//! SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]
//! DEBUG SLEEP seconds | SET-ACTIVE-EXPIRE 0|1 | OBJECT key | HELP
//! ```

use bytes::Bytes;
use forkdb_protocol::Frame;

use super::is;
use crate::config::{self, ProtectedMode, OPTIONS};
use crate::glob;
use crate::server::{Ctx, ShutdownMode};
use crate::table::{self, CommandSpec, COMMANDS, FLAG_NAMES};

/// A container command called without a subcommand it knows (arity normally catches this).
pub fn container(cx: &mut Ctx, args: &[Bytes]) {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    cx.err(&format!("ERR unknown subcommand or wrong number of arguments. Try {name} HELP."));
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
                    || opt.alias.is_some_and(|a| pat.eq_ignore_ascii_case(a.as_bytes()))
            };
            if hit {
                seen.push(opt.name);
                pairs.push((Frame::bulk(opt.name), Frame::bulk((opt.get)(&cx.srv.config))));
            }
        }
    }
    cx.frame(&Frame::Map(pairs));
}

pub fn config_set(cx: &mut Ctx, args: &[Bytes]) {
    if args.len() % 2 != 0 {
        return cx.err("ERR wrong number of arguments for 'config|set' command");
    }
    let mut changes: Vec<(&'static config::OptSpec, String)> = Vec::new();
    for pair in args[2..].chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).into_owned();
        let Some(opt) = config::find_option(&name) else {
            return cx.err(&format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'"));
        };
        let fail = |why: &str| format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}");
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

// ---- COMMAND ----

fn flag_set(spec: &CommandSpec) -> Frame {
    Frame::Set(
        FLAG_NAMES
            .iter()
            .filter(|(bit, _)| spec.has(*bit))
            .map(|(_, n)| Frame::Simple(n.to_string()))
            .collect(),
    )
}

/// ACL categories, derived from the flags and the group as Redis's `setImplicitACLCategories`.
fn categories(spec: &CommandSpec) -> Frame {
    let mut cats: Vec<&str> = Vec::new();
    if spec.has(table::WRITE) {
        cats.push("@write");
    }
    if spec.has(table::READONLY) {
        cats.push("@read");
    }
    match spec.group {
        "string" => cats.push("@string"),
        "generic" => cats.push("@keyspace"),
        "connection" => cats.push("@connection"),
        "transactions" => cats.push("@transaction"),
        _ => {}
    }
    if spec.has(table::ADMIN) {
        cats.push("@admin");
        cats.push("@dangerous");
    }
    cats.push(if spec.has(table::FAST) { "@fast" } else { "@slow" });
    Frame::Set(cats.into_iter().map(|c| Frame::Simple(c.into())).collect())
}

fn key_specs(spec: &CommandSpec) -> Frame {
    if spec.first_key == 0 {
        return Frame::Array(vec![]);
    }
    let access = if spec.has(table::WRITE) { "RW" } else { "RO" };
    let lastkey = if spec.last_key < 0 { spec.last_key } else { spec.last_key - spec.first_key };
    Frame::Array(vec![Frame::Map(vec![
        (Frame::bulk("flags"), Frame::Set(vec![Frame::Simple(access.into())])),
        (
            Frame::bulk("begin_search"),
            Frame::Map(vec![
                (Frame::bulk("type"), Frame::bulk("index")),
                (
                    Frame::bulk("spec"),
                    Frame::Map(vec![(Frame::bulk("index"), Frame::Integer(spec.first_key as i64))]),
                ),
            ]),
        ),
        (
            Frame::bulk("find_keys"),
            Frame::Map(vec![
                (Frame::bulk("type"), Frame::bulk("range")),
                (
                    Frame::bulk("spec"),
                    Frame::Map(vec![
                        (Frame::bulk("lastkey"), Frame::Integer(lastkey as i64)),
                        (Frame::bulk("keystep"), Frame::Integer(spec.step as i64)),
                        (Frame::bulk("limit"), Frame::Integer(0)),
                    ]),
                ),
            ]),
        ),
    ])])
}

fn command_info_frame(spec: &CommandSpec) -> Frame {
    Frame::Array(vec![
        Frame::bulk(spec.name),
        Frame::Integer(spec.arity as i64),
        flag_set(spec),
        Frame::Integer(spec.first_key as i64),
        Frame::Integer(spec.last_key as i64),
        Frame::Integer(spec.step as i64),
        categories(spec),
        Frame::Set(vec![]),
        key_specs(spec),
        Frame::Array(spec.subcommands.iter().map(command_info_frame).collect()),
    ])
}

pub fn command(cx: &mut Ctx, _args: &[Bytes]) {
    let all = Frame::Array(COMMANDS.iter().map(command_info_frame).collect());
    cx.frame(&all);
}

pub fn command_count(cx: &mut Ctx, _args: &[Bytes]) {
    cx.int(COMMANDS.len() as i64);
}

/// Finds a command or `container|sub` by its full name.
fn find_full(name: &[u8]) -> Option<&'static CommandSpec> {
    let lower = crate::util::lower(name);
    match lower.split_once('|') {
        Some((parent, sub)) => table::lookup(parent.as_bytes()).and_then(|p| table::lookup_sub(p, sub.as_bytes())),
        None => table::lookup(lower.as_bytes()),
    }
}

pub fn command_info(cx: &mut Ctx, args: &[Bytes]) {
    if args.len() == 2 {
        return command(cx, args);
    }
    let items = args[2..]
        .iter()
        .map(|n| find_full(n).map(command_info_frame).unwrap_or(Frame::NullArray))
        .collect();
    cx.frame(&Frame::Array(items));
}

/// Splits at top-level separators, ignoring those inside () or {}.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' => depth -= 1,
            c if c == sep && depth == 0 => {
                if i > start {
                    out.push(&s[start..i]);
                }
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Expands one argument of the table's compact syntax into a COMMAND DOCS argument map:
/// `key`, `name:type`, `TOKEN`, `TOKEN=name:type`, `name:(a|b)` (oneof), `{a b}` (block),
/// with a leading `?` for optional and a trailing `*` for multiple.
fn doc_arg(item: &str, key_index: &mut i64) -> Frame {
    let mut s = item;
    let optional = s.starts_with('?');
    if optional {
        s = &s[1..];
    }
    let multiple = s.ends_with('*');
    if multiple {
        s = &s[..s.len() - 1];
    }
    let (token, rest) = match s.split_once('=') {
        Some((t, r)) if !t.contains(['(', '{', ':']) => (Some(t), r),
        _ => (None, s),
    };
    let mut fields: Vec<(Frame, Frame)> = Vec::new();
    let (name, ty, children): (String, &str, Option<Vec<Frame>>) = if let Some(inner) = rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        let kids: Vec<Frame> = split_top(inner, ' ').into_iter().map(|a| doc_arg(a, key_index)).collect();
        let name = token.map(|t| t.to_ascii_lowercase()).unwrap_or_else(|| "data".into());
        (name, "block", Some(kids))
    } else if let Some((name, alts)) = rest.split_once(":(") {
        let inner = alts.strip_suffix(')').unwrap_or(alts);
        let kids: Vec<Frame> = split_top(inner, '|').into_iter().map(|a| doc_arg(a, key_index)).collect();
        (name.to_string(), "oneof", Some(kids))
    } else if let Some((name, ty)) = rest.split_once(':') {
        (name.to_string(), ty, None)
    } else if rest == "key" {
        ("key".to_string(), "key", None)
    } else if rest.chars().all(|c| c.is_ascii_uppercase() || c == '-' || c == '_') {
        (rest.to_ascii_lowercase(), "pure-token", None)
    } else {
        (rest.to_string(), "string", None)
    };
    let token = match (ty, token) {
        ("pure-token", None) => Some(rest),
        (_, t) => t,
    };
    fields.push((Frame::bulk("name"), Frame::bulk(name)));
    fields.push((Frame::bulk("type"), Frame::bulk(ty.to_string())));
    if ty == "key" {
        fields.push((Frame::bulk("key_spec_index"), Frame::Integer(*key_index)));
        *key_index += 1;
    }
    if let Some(t) = token {
        fields.push((Frame::bulk("token"), Frame::bulk(t.to_string())));
    }
    let mut flags = Vec::new();
    if optional {
        flags.push(Frame::Simple("optional".into()));
    }
    if multiple {
        flags.push(Frame::Simple("multiple".into()));
    }
    if !flags.is_empty() {
        fields.push((Frame::bulk("flags"), Frame::Set(flags)));
    }
    if let Some(kids) = children {
        fields.push((Frame::bulk("arguments"), Frame::Array(kids)));
    }
    Frame::Map(fields)
}

fn command_doc_frame(spec: &CommandSpec) -> Frame {
    let mut fields = vec![
        (Frame::bulk("summary"), Frame::bulk(spec.summary)),
        (Frame::bulk("since"), Frame::bulk(spec.since)),
        (Frame::bulk("group"), Frame::bulk(spec.group)),
        (Frame::bulk("complexity"), Frame::bulk(spec.complexity)),
    ];
    if !spec.args.is_empty() {
        let mut key_index = 0;
        // Keys are numbered across the whole command, in order.
        let args = split_top(spec.args, ' ').into_iter().map(|a| doc_arg(a, &mut key_index)).collect();
        fields.push((Frame::bulk("arguments"), Frame::Array(args)));
    }
    if !spec.subcommands.is_empty() {
        let subs = spec
            .subcommands
            .iter()
            .map(|s| (Frame::bulk(s.name), command_doc_frame(s)))
            .collect();
        fields.push((Frame::bulk("subcommands"), Frame::Map(subs)));
    }
    Frame::Map(fields)
}

pub fn command_docs(cx: &mut Ctx, args: &[Bytes]) {
    let specs: Vec<&'static CommandSpec> = if args.len() == 2 {
        COMMANDS.iter().collect()
    } else {
        args[2..].iter().filter_map(|n| find_full(n)).collect()
    };
    let docs = specs
        .into_iter()
        .map(|s| (Frame::bulk(s.name), command_doc_frame(s)))
        .collect();
    cx.frame(&Frame::Map(docs));
}

pub fn command_list(cx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 2 {
        // FILTERBY MODULE|ACLCAT|PATTERN
        if args.len() != 5 || !is(&args[2], "filterby") {
            return cx.syntax_err();
        }
    }
    let mut names = Vec::new();
    for c in COMMANDS {
        names.push(c.name);
        names.extend(c.subcommands.iter().map(|s| s.name));
    }
    if args.len() == 5 {
        let val = &args[4];
        if is(&args[3], "pattern") {
            names.retain(|n| glob::matches(val, n.as_bytes(), true));
        } else if is(&args[3], "aclcat") {
            let cat = format!("@{}", crate::util::lower(val));
            names.retain(|n| {
                find_full(n.as_bytes()).is_some_and(|s| match categories(s) {
                    Frame::Set(items) => items.contains(&Frame::Simple(cat.clone())),
                    _ => false,
                })
            });
        } else if is(&args[3], "module") {
            names.clear();
        } else {
            return cx.syntax_err();
        }
    }
    cx.frame(&Frame::Array(names.into_iter().map(Frame::bulk).collect()));
}

pub fn command_help(cx: &mut Ctx, _args: &[Bytes]) {
    super::conn::help_reply(
        cx,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
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
        return cx.err("ERR Illegal combination of arguments.");
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
        ("set-active-expire", 3) => {
            cx.srv.active_expire_enabled = args[2].as_ref() != b"0";
            cx.ok();
        }
        ("object", 3) => {
            let db = cx.db();
            let Some(e) = cx.srv.ks.peek(db, &args[2]).cloned() else {
                return cx.err("ERR no such key");
            };
            let idle = cx.srv.ks.lru_clock.saturating_sub(e.lru);
            let text = format!(
                "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
                e.value.encoding_name(),
                e.value.heap_size(),
                e.lru,
                idle
            );
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
                "OBJECT <key>",
                "    Show low level info about `key` and associated value.",
                "RELOAD",
                "    Save the RDB on disk and reload it back to memory.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not",
                "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
                "    default.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
            ],
        ),
        _ => {
            let name = String::from_utf8_lossy(&args[1]).into_owned();
            cx.err(&format!("ERR unknown subcommand '{name}'. Try DEBUG HELP."))
        }
    }
}
