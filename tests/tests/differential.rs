//! Runs the command corpus (`tests/corpus/*.txt`) against forkdb and a real redis-server side by
//! side and compares the replies byte for byte (or loosely where a line says `@sorted` / `@type`).
//! Every disagreement is reported in one failure.
//!
//! `FORKDB_CORPUS_DUMP=/path` also writes every redis reply next to its command, for reviewing
//! the corpus.

use std::fmt::Write as _;
use std::path::Path;

use std::collections::{HashMap, HashSet};

use forkdb_tests::corpus::{self, Section};
use forkdb_tests::{resp, Frame, Server, SUPPORTED_COMMANDS, SUPPORTED_SUBCOMMANDS};

fn corpus_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

#[test]
fn corpus_matches_redis() {
    let sections = corpus::load_dir(&corpus_dir());
    let total: usize = sections.iter().map(|s| s.commands.len()).sum();
    assert!(total > 300, "corpus too small: {total} commands");

    if let Some(path) = std::env::var_os("FORKDB_CORPUS_DUMP") {
        // A server of its own, so that the dump does not change what the comparison sees.
        dump(&sections, Server::redis(&[]).port, Path::new(&path));
    }
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let (compared, mismatches) =
        corpus::diff(&sections, redis.port, forkdb.port, forkdb.kind.name());
    assert_eq!(compared, total);
    assert!(
        mismatches.is_empty(),
        "{} of {compared} corpus commands differ from redis-server:\n\n{}",
        mismatches.len(),
        mismatches.join("\n\n")
    );
}

fn dump(sections: &[Section], port: u16, path: &Path) {
    let mut out = String::new();
    for section in sections {
        let _ = writeln!(out, "=== {} ({})", section.name, section.file);
        for (cmd, reply) in section
            .commands
            .iter()
            .zip(corpus::run_section(port, section))
        {
            let _ = writeln!(
                out,
                "{:>4} {}\n     -> {}",
                cmd.line,
                cmd.text,
                resp::show(&reply)
            );
        }
    }
    std::fs::write(path, out).expect("write corpus dump");
}

/// Every command forkdb promises to support appears in the corpus (as a command name, and the
/// subcommands as `NAME SUBCOMMAND`).
#[test]
fn corpus_covers_every_supported_command() {
    let sections = corpus::load_dir(&corpus_dir());
    let mut seen = HashSet::new();
    for cmd in sections.iter().flat_map(|s| &s.commands) {
        let name = |i: usize| {
            cmd.args
                .get(i)
                .map(|a| String::from_utf8_lossy(a).to_lowercase())
        };
        if let Some(n) = name(0) {
            if let Some(sub) = name(1) {
                seen.insert(format!("{n}|{sub}"));
            }
            seen.insert(n);
        }
    }
    let missing: Vec<&str> = SUPPORTED_COMMANDS
        .iter()
        .chain(SUPPORTED_SUBCOMMANDS)
        .chain(&["debug|sleep"])
        .copied()
        .filter(|c| !seen.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "commands missing from the corpus: {missing:?}"
    );
}

/// The fields of a COMMAND entry, in order (Redis 7.0).
const COMMAND_FIELDS: [&str; 10] = [
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

/// Reports each field of a COMMAND entry that differs from Redis's (subcommands are compared
/// one by one by the caller).
fn compare_entry(name: &str, got: &[Frame], want: &[Frame], problems: &mut Vec<String>) {
    if got.len() != want.len() {
        problems.push(format!(
            "{name}: {} fields, redis has {}",
            got.len(),
            want.len()
        ));
    }
    for (i, field) in COMMAND_FIELDS.iter().enumerate().take(9) {
        let (g, w) = (got.get(i), want.get(i));
        if g != w {
            let show = |f: Option<&Frame>| {
                f.map_or("(missing)".to_string(), |f| {
                    resp::show_short(&f.encode(), 400)
                })
            };
            problems.push(format!(
                "{name} {field}: forkdb {}\n      redis  {}",
                show(g),
                show(w)
            ));
        }
    }
}

/// `COMMAND` lists each command once, `COMMAND COUNT` agrees with it, every supported command is
/// listed, and each entry forkdb lists is exactly Redis's entry for that command (for container
/// commands: the same top-level fields and, for each listed subcommand, Redis's subcommand entry).
#[test]
fn command_table_matches_redis() {
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let table = |server: &Server| -> Vec<Frame> {
        match server.conn().frame(&["COMMAND"]) {
            Frame::Array(items) => items,
            other => panic!("COMMAND on {} gave {other:?}", server.kind.name()),
        }
    };
    let by_name = |items: Vec<Frame>| -> HashMap<String, Vec<Frame>> {
        let mut map = HashMap::new();
        for item in items {
            let Frame::Array(fields) = item else {
                panic!("COMMAND entry is not an array: {item:?}")
            };
            let name = fields
                .first()
                .and_then(Frame::as_text)
                .expect("COMMAND entry name");
            assert!(
                map.insert(name.clone(), fields).is_none(),
                "{name} listed twice"
            );
        }
        map
    };
    let want = by_name(table(&redis));
    let got_items = table(&forkdb);
    let count = forkdb.conn().frame(&["COMMAND", "COUNT"]);
    assert_eq!(
        count,
        Frame::Integer(got_items.len() as i64),
        "COMMAND COUNT vs entries in COMMAND"
    );
    let got = by_name(got_items);

    let mut problems = Vec::new();
    for name in SUPPORTED_COMMANDS {
        if !got.contains_key(*name) {
            problems.push(format!("{name}: missing from COMMAND"));
        }
    }
    for (name, fields) in &got {
        let Some(expected) = want.get(name) else {
            problems.push(format!("{name}: listed by forkdb, unknown to redis"));
            continue;
        };
        compare_entry(name, fields, expected, &mut problems);
        // Field 10 (index 9) holds the subcommands of container commands: compare those forkdb lists.
        let subs_of = |f: &[Frame]| -> Vec<Frame> {
            match f.get(9) {
                Some(Frame::Array(items)) => items.clone(),
                _ => Vec::new(),
            }
        };
        let want_subs = by_name(subs_of(expected));
        for (sub, sub_fields) in by_name(subs_of(fields)) {
            match want_subs.get(&sub) {
                Some(w) => compare_entry(&sub, &sub_fields, w, &mut problems),
                None => problems.push(format!("{sub}: listed by forkdb, unknown to redis")),
            }
        }
    }
    for sub in SUPPORTED_SUBCOMMANDS {
        let (container, _) = sub.split_once('|').expect("container|sub");
        let listed = got.get(container).is_some_and(|fields| {
            matches!(fields.get(9), Some(Frame::Array(items)) if items.iter().any(|i| {
                matches!(i, Frame::Array(f) if f.first().and_then(Frame::as_text).as_deref() == Some(*sub))
            }))
        });
        if !listed {
            problems.push(format!("{sub}: missing from COMMAND"));
        }
    }
    problems.sort();
    assert!(
        problems.is_empty(),
        "{} COMMAND table problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
