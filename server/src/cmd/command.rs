//! COMMAND: what the command table says about each command, in Redis's reply shapes.
//!
//! ```text
//! COMMAND | COMMAND COUNT | COMMAND INFO [name ...] | COMMAND DOCS [name ...]
//! COMMAND LIST [FILTERBY MODULE m|ACLCAT c|PATTERN p] | COMMAND HELP
//! ```

use bytes::Bytes;
use forkdb_protocol::Frame;

use super::is;
use crate::glob;
use crate::server::Ctx;
use crate::table::{self, CommandSpec, COMMANDS, FLAG_NAMES};

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
    cats.push(if spec.has(table::FAST) {
        "@fast"
    } else {
        "@slow"
    });
    Frame::Set(cats.into_iter().map(|c| Frame::Simple(c.into())).collect())
}

fn key_specs(spec: &CommandSpec) -> Frame {
    if spec.first_key == 0 {
        return Frame::Array(vec![]);
    }
    let access = if spec.has(table::WRITE) { "RW" } else { "RO" };
    let lastkey = if spec.last_key < 0 {
        spec.last_key
    } else {
        spec.last_key - spec.first_key
    };
    Frame::Array(vec![Frame::Map(vec![
        (
            Frame::bulk("flags"),
            Frame::Set(vec![Frame::Simple(access.into())]),
        ),
        (
            Frame::bulk("begin_search"),
            Frame::Map(vec![
                (Frame::bulk("type"), Frame::bulk("index")),
                (
                    Frame::bulk("spec"),
                    Frame::Map(vec![(
                        Frame::bulk("index"),
                        Frame::Integer(spec.first_key as i64),
                    )]),
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
        Some((parent, sub)) => {
            table::lookup(parent.as_bytes()).and_then(|p| table::lookup_sub(p, sub.as_bytes()))
        }
        None => table::lookup(lower.as_bytes()),
    }
}

pub fn command_info(cx: &mut Ctx, args: &[Bytes]) {
    if args.len() == 2 {
        return command(cx, args);
    }
    let items = args[2..]
        .iter()
        .map(|n| {
            find_full(n)
                .map(command_info_frame)
                .unwrap_or(Frame::NullArray)
        })
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
    let (name, ty, children): (String, &str, Option<Vec<Frame>>) =
        if let Some(inner) = rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            let kids: Vec<Frame> = split_top(inner, ' ')
                .into_iter()
                .map(|a| doc_arg(a, key_index))
                .collect();
            let name = token
                .map(|t| t.to_ascii_lowercase())
                .unwrap_or_else(|| "data".into());
            (name, "block", Some(kids))
        } else if let Some((name, alts)) = rest.split_once(":(") {
            let inner = alts.strip_suffix(')').unwrap_or(alts);
            let kids: Vec<Frame> = split_top(inner, '|')
                .into_iter()
                .map(|a| doc_arg(a, key_index))
                .collect();
            (name.to_string(), "oneof", Some(kids))
        } else if let Some((name, ty)) = rest.split_once(':') {
            (name.to_string(), ty, None)
        } else if rest == "key" {
            ("key".to_string(), "key", None)
        } else if rest
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '-' || c == '_')
        {
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
        let args = split_top(spec.args, ' ')
            .into_iter()
            .map(|a| doc_arg(a, &mut key_index))
            .collect();
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
