//! Comparing forkdb's COMMAND replies with redis-server's, field by field (used by
//! `tests/differential.rs`).
//!
//! Replies are compared as parsed frames, so RESP3 sets, maps and nulls must match too. Only the
//! prose is left out: key spec `notes`, and the `summary`, `complexity`, `replaced_by` and
//! `history` of COMMAND DOCS are Redis's documentation text, while forkdb writes its own.

use std::collections::BTreeSet;

use crate::{resp, Conn, Frame};

/// The fields of a COMMAND entry, in order (Redis 7.0).
pub const COMMAND_FIELDS: [&str; 10] = [
    "name",
    "arity",
    "flags",
    "first key",
    "last key",
    "step",
    "ACL categories",
    "tips",
    "key specs",
    "subcommands",
];

/// Argument types redis-cli knows; with any other it prints "Unknown type ..." when it builds
/// its hints from COMMAND DOCS.
pub const ARG_TYPES: &[&str] = &[
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

/// Stands for a text left out of the comparison.
const PROSE: &str = "(prose)";

/// Switches `conn` to RESP `proto` (2 or 3).
pub fn use_protocol(conn: &mut Conn, proto: u8) {
    let reply = conn.frame(&["HELLO", &proto.to_string()]);
    assert!(
        !matches!(reply, Frame::Error(_)),
        "HELLO {proto}: {reply:?}"
    );
}

/// The key/value pairs of a map reply: a RESP3 map, or the flat array RESP2 makes of it.
pub fn pairs(f: &Frame) -> Option<Vec<(Frame, Frame)>> {
    match f {
        Frame::Map(items) => Some(items.clone()),
        Frame::Array(items) if items.len() % 2 == 0 => Some(
            items
                .chunks(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect(),
        ),
        _ => None,
    }
}

/// Rebuilds a map reply in the shape it came in, `edit` giving each key's new value (or `None`
/// to leave the pair out).
fn edit_map(f: &Frame, edit: impl Fn(&str, &Frame) -> Option<Frame>) -> Frame {
    let Some(items) = pairs(f) else {
        return f.clone();
    };
    let kept: Vec<(Frame, Frame)> = items
        .into_iter()
        .filter_map(|(k, v)| {
            let key = k.as_text().unwrap_or_default();
            edit(&key, &v).map(|v| (k, v))
        })
        .collect();
    match f {
        Frame::Map(_) => Frame::Map(kept),
        _ => Frame::Array(kept.into_iter().flat_map(|(k, v)| [k, v]).collect()),
    }
}

/// A key spec with its `notes` text (prose) replaced by a placeholder.
fn mask_notes(spec: &Frame) -> Frame {
    edit_map(spec, |key, v| {
        Some(if key == "notes" {
            Frame::Bulk(PROSE.into())
        } else {
            v.clone()
        })
    })
}

/// The elements of an array or set.
fn items(f: &Frame) -> Option<&[Frame]> {
    match f {
        Frame::Array(v) | Frame::Set(v) => Some(v),
        _ => None,
    }
}

/// The key specs field with every spec's notes masked (same aggregate type kept).
fn mask_key_specs(f: &Frame) -> Frame {
    match f {
        Frame::Array(v) => Frame::Array(v.iter().map(mask_notes).collect()),
        Frame::Set(v) => Frame::Set(v.iter().map(mask_notes).collect()),
        other => other.clone(),
    }
}

fn show(f: Option<&Frame>) -> String {
    f.map_or("(missing)".to_string(), |f| {
        resp::show_short(&f.encode(), 400)
    })
}

/// The name of a COMMAND entry.
pub fn entry_name(entry: &[Frame]) -> String {
    entry
        .first()
        .and_then(Frame::as_text)
        .expect("COMMAND entry name")
}

/// The entries of a COMMAND-style reply (COMMAND, or a container's subcommands), by name, in
/// the reply's order; nulls (unknown names in COMMAND INFO) are skipped.
pub fn entries(reply: &Frame) -> Vec<(String, Vec<Frame>)> {
    let Some(list) = items(reply) else {
        panic!("not a list of COMMAND entries: {reply:?}")
    };
    list.iter()
        .filter_map(|e| match e {
            Frame::Array(fields) => Some((entry_name(fields), fields.clone())),
            Frame::Null | Frame::NullBulk | Frame::NullArray => None,
            other => panic!("COMMAND entry is not an array: {other:?}"),
        })
        .collect()
}

/// Reports each field of a COMMAND entry that differs from Redis's, and for container
/// commands each subcommand forkdb lists (Redis lists subcommands forkdb may not have).
pub fn compare_entry(
    tag: &str,
    name: &str,
    got: &[Frame],
    want: &[Frame],
    problems: &mut Vec<String>,
) {
    if got.len() != want.len() {
        problems.push(format!(
            "{tag} {name}: {} fields, redis has {}",
            got.len(),
            want.len()
        ));
    }
    for (i, field) in COMMAND_FIELDS.iter().enumerate() {
        let (mut g, mut w) = (got.get(i).cloned(), want.get(i).cloned());
        if i == 8 {
            g = g.as_ref().map(mask_key_specs);
            w = w.as_ref().map(mask_key_specs);
        }
        let container = matches!(&w, Some(Frame::Array(subs)) if !subs.is_empty());
        if i == 9 && container {
            compare_subcommands(tag, g.as_ref(), w.as_ref(), problems);
            continue;
        }
        if g != w {
            problems.push(format!(
                "{tag} {name} {field}: forkdb {}\n      redis  {}",
                show(g.as_ref()),
                show(w.as_ref())
            ));
        }
    }
}

fn compare_subcommands(
    tag: &str,
    got: Option<&Frame>,
    want: Option<&Frame>,
    problems: &mut Vec<String>,
) {
    let (Some(got @ Frame::Array(_)), Some(want)) = (got, want) else {
        problems.push(format!(
            "{tag} subcommands: forkdb {}, redis an array",
            show(got)
        ));
        return;
    };
    let want = entries(want);
    for (sub, fields) in entries(got) {
        match want.iter().find(|(n, _)| *n == sub) {
            Some((_, w)) => compare_entry(tag, &sub, &fields, w, problems),
            None => problems.push(format!("{tag} {sub}: listed by forkdb, unknown to redis")),
        }
    }
}

/// COMMAND LIST with `extra` arguments: the names, or the error reply.
pub fn list(conn: &mut Conn, extra: &[&str]) -> Result<BTreeSet<String>, Frame> {
    let mut args = vec!["COMMAND", "LIST"];
    args.extend_from_slice(extra);
    match conn.frame(&args) {
        Frame::Array(names) => Ok(names
            .iter()
            .map(|n| n.as_text().expect("command name"))
            .collect()),
        other => Err(other),
    }
}

/// A COMMAND DOCS entry made comparable: the prose masked, `history` left out, the
/// subcommands cut to `subs` (the ones forkdb has) and sorted by name, and, with
/// `skip_arguments`, the arguments left out.
pub fn comparable_doc(doc: &Frame, subs: &BTreeSet<String>, skip_arguments: bool) -> Frame {
    edit_map(doc, |key, v| match key {
        "summary" | "complexity" | "replaced_by" => Some(Frame::Bulk(PROSE.into())),
        "history" => None,
        "arguments" if skip_arguments => None,
        "subcommands" => {
            let mut kept: Vec<(Frame, Frame)> = pairs(v)
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| k.as_text().is_some_and(|n| subs.contains(&n)))
                .map(|(k, d)| (k, comparable_doc(&d, subs, false)))
                .collect();
            kept.sort_by_key(|(k, _)| k.as_text());
            Some(Frame::Map(kept))
        }
        _ => Some(v.clone()),
    })
}

/// The subcommand names of a COMMAND DOCS entry (RESP3).
pub fn doc_subcommands(doc: &Frame) -> BTreeSet<String> {
    pairs(doc)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _)| k.as_text().as_deref() == Some("subcommands"))
        .and_then(|(_, v)| pairs(&v))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, _)| k.as_text())
        .collect()
}

/// Every argument type in a COMMAND DOCS entry (arguments nested at any depth, and those of
/// its subcommands), as `(command, argument name, type)`.
pub fn doc_arg_types(name: &str, doc: &Frame, out: &mut Vec<(String, String, String)>) {
    fn walk(cmd: &str, args: &Frame, out: &mut Vec<(String, String, String)>) {
        for arg in items(args).unwrap_or_default() {
            let fields = pairs(arg).unwrap_or_default();
            let get = |key: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k.as_text().as_deref() == Some(key))
                    .map(|(_, v)| v.clone())
            };
            let text = |key: &str| get(key).and_then(|v| v.as_text()).unwrap_or_default();
            out.push((cmd.to_string(), text("name"), text("type")));
            if let Some(nested) = get("arguments") {
                walk(cmd, &nested, out);
            }
        }
    }
    for (k, v) in pairs(doc).unwrap_or_default() {
        match k.as_text().as_deref() {
            Some("arguments") => walk(name, &v, out),
            Some("subcommands") => {
                for (sub, d) in pairs(&v).unwrap_or_default() {
                    doc_arg_types(&sub.as_text().unwrap_or_default(), &d, out);
                }
            }
            _ => {}
        }
    }
}

/// What a RESP3 reply looks like to a RESP2 client (maps flattened, sets as arrays, null as a
/// null bulk), as Redis sends it.
pub fn as_resp2(f: &Frame) -> Frame {
    match f {
        Frame::Map(items) => Frame::Array(
            items
                .iter()
                .flat_map(|(k, v)| [as_resp2(k), as_resp2(v)])
                .collect(),
        ),
        Frame::Array(items) | Frame::Set(items) => {
            Frame::Array(items.iter().map(as_resp2).collect())
        }
        Frame::Null => Frame::NullBulk,
        other => other.clone(),
    }
}
