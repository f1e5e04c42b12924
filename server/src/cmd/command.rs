//! COMMAND: what the command table says about each command, in Redis 7.0's reply shapes.
//!
//! ```text
//! COMMAND | COMMAND COUNT | COMMAND INFO [name ...] | COMMAND DOCS [name ...]
//! COMMAND LIST [FILTERBY MODULE m|ACLCAT c|PATTERN p] | COMMAND HELP
//! COMMAND GETKEYS command [arg ...] | COMMAND GETKEYSANDFLAGS command [arg ...]
//! ```

use bytes::Bytes;
use forkdb_protocol::Frame;

use super::is;
use crate::glob;
use crate::server::Ctx;
use crate::table::{self, CommandSpec, KeySpec, ACL_CATEGORIES, COMMANDS, FLAG_NAMES};

fn status_set<'a>(items: impl Iterator<Item = &'a str>) -> Frame {
    Frame::Set(items.map(|s| Frame::Simple(s.to_string())).collect())
}

fn flag_set(spec: &CommandSpec) -> Frame {
    let flags = spec.reported_flags();
    status_set(
        FLAG_NAMES
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, n)| *n),
    )
}

fn categories(spec: &CommandSpec) -> Frame {
    Frame::Set(
        spec.acl_categories()
            .into_iter()
            .map(|i| Frame::Simple(format!("@{}", ACL_CATEGORIES[i])))
            .collect(),
    )
}

fn map(fields: Vec<(&str, Frame)>) -> Frame {
    Frame::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Frame::bulk(k.to_string()), v))
            .collect(),
    )
}

fn key_spec(k: &KeySpec) -> Frame {
    let mut fields = Vec::new();
    if !k.notes.is_empty() {
        fields.push(("notes", Frame::bulk(k.notes)));
    }
    fields.push(("flags", status_set(k.flags.split(' '))));
    if k.unknown {
        let unknown = || {
            map(vec![
                ("type", Frame::bulk("unknown")),
                ("spec", map(vec![])),
            ])
        };
        fields.push(("begin_search", unknown()));
        fields.push(("find_keys", unknown()));
        return map(fields);
    }
    fields.push((
        "begin_search",
        map(vec![
            ("type", Frame::bulk("index")),
            ("spec", map(vec![("index", Frame::Integer(k.index.into()))])),
        ]),
    ));
    if let Some(n) = k.keynum {
        fields.push((
            "find_keys",
            map(vec![
                ("type", Frame::bulk("keynum")),
                (
                    "spec",
                    map(vec![
                        ("keynumidx", Frame::Integer(n.keynumidx.into())),
                        ("firstkey", Frame::Integer(n.firstkey.into())),
                        ("keystep", Frame::Integer(k.keystep.into())),
                    ]),
                ),
            ]),
        ));
        return map(fields);
    }
    fields.push((
        "find_keys",
        map(vec![
            ("type", Frame::bulk("range")),
            (
                "spec",
                map(vec![
                    ("lastkey", Frame::Integer(k.lastkey.into())),
                    ("keystep", Frame::Integer(k.keystep.into())),
                    ("limit", Frame::Integer(0)),
                ]),
            ),
        ]),
    ));
    map(fields)
}

fn command_info_frame(spec: &CommandSpec) -> Frame {
    let (first, last, step, _) = spec.legacy_keys();
    // Redis sends an empty set where there are no subcommands, an array where there are.
    let subcommands = if spec.subcommands.is_empty() {
        Frame::Set(vec![])
    } else {
        Frame::Array(spec.subcommands.iter().map(command_info_frame).collect())
    };
    Frame::Array(vec![
        Frame::bulk(spec.name),
        Frame::Integer(spec.arity.into()),
        flag_set(spec),
        Frame::Integer(first.into()),
        Frame::Integer(last.into()),
        Frame::Integer(step.into()),
        categories(spec),
        Frame::Set(
            spec.tips
                .split_whitespace()
                .map(|t| Frame::bulk(t.to_string()))
                .collect(),
        ),
        Frame::Set(spec.keys.iter().map(key_spec).collect()),
        subcommands,
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
    // An unknown name gets a null in its slot (`$-1` in RESP2), as in Redis.
    let items = args[2..]
        .iter()
        .map(|n| find_full(n).map_or(Frame::Null, command_info_frame))
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

/// One argument of `COMMAND DOCS`, read from the table's compact form (see `table`).
#[derive(Debug)]
struct DocArg<'a> {
    name: String,
    ty: &'a str,
    key_spec_index: Option<i64>,
    token: Option<&'a str>,
    since: Option<&'a str>,
    deprecated_since: Option<&'a str>,
    optional: bool,
    multiple: bool,
    multiple_token: bool,
    args: Vec<DocArg<'a>>,
}

/// A token as the compact form writes it: `EX`, `KEEPTTL`, `FILTERBY`.
fn is_token(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Takes a trailing `<mark><version>` (`@6.2.0`, `!2.8.12`) off `s`.
fn take_version<'a>(s: &mut &'a str, mark: char) -> Option<&'a str> {
    let (head, version) = s.rsplit_once(mark)?;
    let is_version = !version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !is_version {
        return None;
    }
    *s = head;
    Some(version)
}

/// Reads one argument; `key_index` numbers the key arguments in order across the command.
fn parse_arg<'a>(item: &'a str, key_index: &mut i64) -> DocArg<'a> {
    let mut s = item;
    let optional = match s.strip_prefix('?') {
        Some(rest) => {
            s = rest;
            true
        }
        None => false,
    };
    let deprecated_since = take_version(&mut s, '!');
    let since = take_version(&mut s, '@');
    let multiple = match s.strip_suffix('*') {
        Some(rest) => {
            s = rest;
            true
        }
        None => false,
    };
    // `**`: the token is repeated with each occurrence (Redis's `multiple_token`).
    let multiple_token = match s.strip_suffix('*') {
        Some(rest) if multiple => {
            s = rest;
            true
        }
        _ => false,
    };
    let (mut token, body) = match s.split_once('=') {
        Some((t, rest)) if is_token(t) => (Some(t), rest),
        _ => (None, s),
    };
    let nested = |open: char, sep: char, key_index: &mut i64| -> (String, Vec<DocArg<'a>>) {
        let at = body.find(open).unwrap_or(0);
        let name = body[..at].strip_suffix(':').unwrap_or(&body[..at]);
        let inner = &body[at + 1..body.len() - 1];
        let args = split_top(inner, sep)
            .into_iter()
            .map(|a| parse_arg(a, key_index))
            .collect();
        (name.to_string(), args)
    };
    let (name, ty, args) = if body.ends_with(')') {
        let (name, args) = nested('(', '|', key_index);
        (name, "oneof", args)
    } else if body.ends_with('}') {
        let (name, args) = nested('{', ' ', key_index);
        (name, "block", args)
    } else if body == "key" {
        ("key".to_string(), "key", Vec::new())
    } else if token.is_none() && is_token(body) {
        token = Some(body);
        (body.to_ascii_lowercase(), "pure-token", Vec::new())
    } else if let Some((name, ty)) = body.rsplit_once(':') {
        (name.to_string(), ty, Vec::new())
    } else {
        // Not valid in the compact form; the table's tests catch it.
        (body.to_string(), "", Vec::new())
    };
    // `name:key#N`: a key argument of key spec N out of turn (LCS's two keys share spec 0).
    let (ty, fixed_index) = match ty.split_once('#') {
        Some(("key", n)) => ("key", n.parse::<i64>().ok()),
        // `pattern:pattern#1`: SORT's BY/GET patterns name keys of key spec 1.
        Some(("pattern", n)) => ("pattern", n.parse::<i64>().ok()),
        _ => (ty, None),
    };
    let key_spec_index = if ty == "key" {
        Some(fixed_index.unwrap_or_else(|| {
            *key_index += 1;
            *key_index - 1
        }))
    } else {
        fixed_index
    };
    DocArg {
        name,
        ty,
        key_spec_index,
        token,
        since,
        deprecated_since,
        optional,
        multiple,
        multiple_token,
        args,
    }
}

/// The arguments of a row.
fn parse_args(args: &str) -> Vec<DocArg<'_>> {
    let mut key_index = 0;
    split_top(args, ' ')
        .into_iter()
        .map(|a| parse_arg(a, &mut key_index))
        .collect()
}

/// An argument's map, with its fields in Redis's order.
fn doc_arg_frame(arg: &DocArg) -> Frame {
    let mut fields = vec![
        ("name", Frame::bulk(arg.name.clone())),
        ("type", Frame::bulk(arg.ty.to_string())),
    ];
    if let Some(i) = arg.key_spec_index {
        fields.push(("key_spec_index", Frame::Integer(i)));
    }
    if let Some(t) = arg.token {
        fields.push(("token", Frame::bulk(t.to_string())));
    }
    if let Some(v) = arg.since {
        fields.push(("since", Frame::bulk(v.to_string())));
    }
    if let Some(v) = arg.deprecated_since {
        fields.push(("deprecated_since", Frame::bulk(v.to_string())));
    }
    let flags: Vec<&str> = [
        (arg.optional, "optional"),
        (arg.multiple, "multiple"),
        (arg.multiple_token, "multiple_token"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if !flags.is_empty() {
        fields.push(("flags", status_set(flags.into_iter())));
    }
    if matches!(arg.ty, "oneof" | "block") {
        fields.push((
            "arguments",
            Frame::Array(arg.args.iter().map(doc_arg_frame).collect()),
        ));
    }
    map(fields)
}

fn command_doc_frame(spec: &CommandSpec) -> Frame {
    let mut fields = vec![
        ("summary", Frame::bulk(spec.summary)),
        ("since", Frame::bulk(spec.since)),
        ("group", Frame::bulk(spec.group)),
    ];
    // Redis leaves the field out of commands documented without one (MONITOR).
    if !spec.complexity.is_empty() {
        fields.push(("complexity", Frame::bulk(spec.complexity)));
    }
    let doc_flags: Vec<&str> = [
        (!spec.deprecated_since.is_empty(), "deprecated"),
        (spec.syscmd, "syscmd"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if !doc_flags.is_empty() {
        fields.push(("doc_flags", status_set(doc_flags.into_iter())));
    }
    if !spec.deprecated_since.is_empty() {
        fields.push(("deprecated_since", Frame::bulk(spec.deprecated_since)));
        fields.push(("replaced_by", Frame::bulk(spec.replaced_by)));
    }
    if !spec.args.is_empty() {
        let args = parse_args(spec.args).iter().map(doc_arg_frame).collect();
        fields.push(("arguments", Frame::Array(args)));
    }
    if !spec.subcommands.is_empty() {
        let subs = spec
            .subcommands
            .iter()
            .map(|s| (Frame::bulk(s.name), command_doc_frame(s)))
            .collect();
        fields.push(("subcommands", Frame::Map(subs)));
    }
    map(fields)
}

pub fn command_docs(cx: &mut Ctx, args: &[Bytes]) {
    // Unknown names are left out, as in Redis.
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
    // Exactly `FILTERBY <type> <value>` or nothing, as Redis parses it.
    if args.len() > 2 && (args.len() != 5 || !is(&args[2], "filterby")) {
        return cx.syntax_err();
    }
    let mut names: Vec<&'static CommandSpec> = table::all_specs().collect();
    if args.len() == 5 {
        let val = &args[4];
        if is(&args[3], "pattern") {
            names.retain(|s| glob::matches(val, s.name.as_bytes(), true));
        } else if is(&args[3], "aclcat") {
            let wanted = crate::util::lower(val);
            match ACL_CATEGORIES.iter().position(|c| *c == wanted) {
                Some(cat) => names.retain(|s| s.acl_categories().contains(&cat)),
                None => names.clear(),
            }
        } else if is(&args[3], "module") {
            names.clear();
        } else {
            return cx.syntax_err();
        }
    }
    cx.frame(&Frame::Array(
        names.into_iter().map(|s| Frame::bulk(s.name)).collect(),
    ));
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
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    );
}

/// COMMAND GETKEYS command [arg ...]
pub fn command_getkeys(cx: &mut Ctx, args: &[Bytes]) {
    getkeys(cx, args, false);
}

/// COMMAND GETKEYSANDFLAGS command [arg ...]
pub fn command_getkeysandflags(cx: &mut Ctx, args: &[Bytes]) {
    getkeys(cx, args, true);
}

/// Redis 7.0's `getKeysSubcommandImpl`: find the command (or `container sub`), check it has
/// keys and its arity, then locate the keys from its key specs, falling back to the command's
/// own rules (Redis's `getkeys_proc`) where the specs cannot say.
fn getkeys(cx: &mut Ctx, args: &[Bytes], with_flags: bool) {
    let argv = &args[2..];
    let found =
        table::lookup(&argv[0]).and_then(|c| match (c.subcommands.is_empty(), argv.get(1)) {
            (false, Some(sub)) => table::lookup_sub(c, sub),
            _ => Some(c),
        });
    let Some(spec) = found else {
        return cx.err("ERR Invalid command specified");
    };
    if spec.keys.is_empty() {
        return cx.err("ERR The command has no key arguments");
    }
    if !table::arity_ok(spec.arity, argv.len()) {
        return cx.err("ERR Invalid number of arguments specified for command");
    }
    let keys = match keys_from_specs(spec, argv) {
        Some(keys) => keys,
        None => keys_by_rule(spec, argv),
    };
    if keys.is_empty() && spec.flags & table::NO_MANDATORY_KEYS == 0 {
        return cx.err("ERR Invalid arguments specified for command");
    }
    let items = keys
        .into_iter()
        .map(|(pos, flags)| {
            let key = Frame::Bulk(argv[pos].clone());
            if with_flags {
                Frame::Array(vec![
                    key,
                    status_set(flags.split(' ').filter(|f| !f.is_empty())),
                ])
            } else {
                key
            }
        })
        .collect();
    cx.frame(&Frame::Array(items));
}

/// Redis 7.0's `getKeysUsingKeySpecs`: (argument index, flags) of each key, None when a spec
/// cannot locate its keys (an `unknown` spec, a bad key count, keys past the arguments).
fn keys_from_specs(spec: &CommandSpec, argv: &[Bytes]) -> Option<Vec<(usize, &'static str)>> {
    if spec
        .keys
        .iter()
        .any(|k| k.flags.split(' ').any(|f| f == "variable_flags"))
    {
        // Redis prefers the command's own rule when the flags depend on the arguments.
        return None;
    }
    let argc = argv.len() as i64;
    let mut out = Vec::new();
    for k in spec.keys {
        if k.unknown {
            return None;
        }
        let mut first = i64::from(k.index);
        let (last, step) = match k.keynum {
            Some(kn) => {
                if i64::from(kn.keynumidx) >= argc - first {
                    return None;
                }
                let n = argv[(first + i64::from(kn.keynumidx)) as usize].as_ref();
                let n = std::str::from_utf8(n)
                    .ok()
                    .and_then(|s| crate::util::parse_i64(s.as_bytes()))
                    .filter(|n| *n >= 0)?;
                first += i64::from(kn.firstkey);
                (first + n - 1, i64::from(k.keystep))
            }
            None if k.lastkey >= 0 => (first + i64::from(k.lastkey), i64::from(k.keystep)),
            None => (argc + i64::from(k.lastkey), i64::from(k.keystep)),
        };
        if last >= argc || last < first || first >= argc || step < 1 {
            return None;
        }
        let mut i = first;
        while i <= last {
            out.push((i as usize, k.flags));
            i += step;
        }
    }
    Some(out)
}

/// The command's own key rules, Redis 7.0's `getkeys_proc`s, for what the key specs leave open:
/// SORT's STORE, SET's and BITFIELD's flags, and a key count the specs reject.
fn keys_by_rule(spec: &CommandSpec, argv: &[Bytes]) -> Vec<(usize, &'static str)> {
    let argc = argv.len();
    match spec.name {
        // sortROGetKeys
        "sort_ro" => vec![(1, "RO access")],
        // sortGetKeys: the sorted key, and the last STORE's destination (LIMIT, GET and BY
        // arguments skipped, so a key named "store" after GET is not taken for the option).
        "sort" => {
            let mut store = None;
            let mut i = 2;
            while i < argc {
                if is(&argv[i], "limit") {
                    i += 2;
                } else if is(&argv[i], "get") || is(&argv[i], "by") {
                    i += 1;
                } else if is(&argv[i], "store") && i + 1 < argc {
                    store = Some(i + 1);
                }
                i += 1;
            }
            let mut keys = vec![(1, "RO access")];
            keys.extend(store.map(|p| (p, "OW update")));
            keys
        }
        // setGetKeys: GET makes SET read the old value.
        "set" => {
            let get = argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
            vec![(1, if get { "RW access update" } else { "OW update" })]
        }
        // bitfieldGetKeys: read-only while every operation is a complete GET or OVERFLOW.
        "bitfield" => {
            let mut readonly = true;
            let mut i = 2;
            while i < argc {
                let rem = argc - i - 1;
                if is(&argv[i], "get") && rem >= 2 {
                    i += 2;
                } else if is(&argv[i], "overflow") && rem >= 1 {
                    i += 1;
                } else {
                    readonly = false;
                    break;
                }
                i += 1;
            }
            vec![(
                1,
                if readonly {
                    "RO access"
                } else {
                    "RW access update"
                },
            )]
        }
        _ => keynum_rule(spec, argv),
    }
}

/// Redis's `genericGetKeys` for the commands with a key count (ZUNIONSTORE, SINTERCARD, LMPOP,
/// BLMPOP, ...): the count read as `atoi` reads it, the keys with no flags, then the
/// destination; nothing when the count is out of range.
fn keynum_rule(spec: &CommandSpec, argv: &[Bytes]) -> Vec<(usize, &'static str)> {
    let Some(k) = spec.keys.iter().find(|k| k.keynum.is_some()) else {
        return Vec::new();
    };
    let Some(kn) = k.keynum else {
        return Vec::new();
    };
    let count_at = (k.index + kn.keynumidx) as usize;
    let first = (k.index + kn.firstkey) as usize;
    let step = k.keystep.max(1) as usize;
    let Some(count) = argv.get(count_at) else {
        return Vec::new();
    };
    let num = atoi(count);
    if num < 1 || num as usize > argv.len().saturating_sub(first) / step {
        return Vec::new();
    }
    let mut keys: Vec<(usize, &'static str)> =
        (0..num as usize).map(|i| (first + i * step, "")).collect();
    if let Some(dest) = spec.keys.iter().find(|d| d.keynum.is_none() && !d.unknown) {
        keys.push((dest.index as usize, ""));
    }
    keys
}

/// C's `atoi`: optional blanks and sign, then leading digits; 0 when there are none.
pub(super) fn atoi(s: &[u8]) -> i64 {
    let s = s.trim_ascii_start();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for &d in digits.iter().take_while(|d| d.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(i64::from(d - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPES: &[&str] = &[
        "string",
        "integer",
        "double",
        "key",
        "pattern",
        "unix-time",
        "pure-token",
        "oneof",
        "block",
    ];

    fn check(cmd: &str, arg: &DocArg, keys: usize) {
        assert!(TYPES.contains(&arg.ty), "{cmd}: {arg:?}");
        assert!(!arg.name.is_empty(), "{cmd}: {arg:?}");
        if let Some(i) = arg.key_spec_index {
            assert!(
                (i as usize) < keys,
                "{cmd}: key argument without a key spec"
            );
        }
        assert_eq!(
            matches!(arg.ty, "oneof" | "block"),
            !arg.args.is_empty(),
            "{cmd}: {arg:?}"
        );
        for a in &arg.args {
            check(cmd, a, keys);
        }
    }

    /// Every row's arguments are valid in the compact form and name only types redis-cli knows.
    #[test]
    fn every_row_documents_valid_arguments() {
        for spec in table::all_specs() {
            for arg in parse_args(spec.args) {
                check(spec.name, &arg, spec.keys.len());
            }
        }
    }

    #[test]
    fn compact_form() {
        let args = parse_args(
            "key ?TYPE=t:(A|B@3.2.0)@5.0.0 ip:port:string!2.8.12 ?ID=id:{client-id:integer*} x:key",
        );
        assert_eq!(args.len(), 5);
        assert_eq!((args[0].name.as_str(), args[0].ty), ("key", "key"));
        assert_eq!(args[0].key_spec_index, Some(0));
        let t = &args[1];
        assert_eq!(
            (t.name.as_str(), t.ty, t.token),
            ("t", "oneof", Some("TYPE"))
        );
        assert_eq!((t.since, t.optional), (Some("5.0.0"), true));
        assert_eq!(t.args[1].token, Some("B"));
        assert_eq!(t.args[1].since, Some("3.2.0"));
        assert_eq!((args[2].name.as_str(), args[2].ty), ("ip:port", "string"));
        assert_eq!(args[2].deprecated_since, Some("2.8.12"));
        let id = &args[3];
        assert_eq!(
            (id.name.as_str(), id.ty, id.token),
            ("id", "block", Some("ID"))
        );
        assert!(id.args[0].multiple && !id.multiple);
        assert_eq!(args[4].key_spec_index, Some(1));
    }
}
