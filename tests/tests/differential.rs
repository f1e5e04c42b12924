//! Runs the command corpus (`tests/corpus/*.txt`) against forkdb and a real redis-server side by
//! side and compares the replies byte for byte (or loosely where a line says `@sorted` / `@type`).
//! Every disagreement is reported in one failure.
//!
//! `FORKDB_CORPUS_DUMP=/path` also writes every redis reply next to its command, for reviewing
//! the corpus.

use std::fmt::Write as _;
use std::path::Path;

use std::collections::{BTreeSet, HashSet};

use forkdb_tests::corpus::{self, Section};
use forkdb_tests::{
    command_table, is_forkdb_only, resp, Frame, Server, SUPPORTED_COMMANDS, SUPPORTED_SUBCOMMANDS,
};

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

/// Every name forkdb's COMMAND lists: commands, then `container|sub` names.
fn all_names(entries: &[(String, Vec<Frame>)]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (name, fields) in entries {
        names.insert(name.clone());
        if let Some(subs @ Frame::Array(_)) = fields.get(9) {
            names.extend(command_table::entries(subs).into_iter().map(|(n, _)| n));
        }
    }
    names
}

/// COMMAND, COMMAND INFO, COMMAND COUNT and COMMAND LIST against Redis's, in RESP2 and RESP3:
/// `COMMAND` lists each command once, `COMMAND COUNT` agrees with it, every supported command is
/// listed, each entry forkdb lists is exactly Redis's entry for that command (for container
/// commands: the same top-level fields and, for each listed subcommand, Redis's subcommand
/// entry), named lookups (subcommands and unknown names too) answer as Redis's do, and COMMAND
/// LIST with each filter gives Redis's names, cut to the commands forkdb has. Only key spec
/// `notes` are not compared: that is prose, and forkdb writes its own.
#[test]
fn command_table_matches_redis() {
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for proto in [2u8, 3] {
        let tag = format!("RESP{proto}");
        let (mut r, mut f) = (redis.conn(), forkdb.conn());
        command_table::use_protocol(&mut r, proto);
        command_table::use_protocol(&mut f, proto);

        let want = command_table::entries(&r.frame(&["COMMAND"]));
        let got = command_table::entries(&f.frame(&["COMMAND"]));
        let count = f.frame(&["COMMAND", "COUNT"]);
        assert_eq!(
            count,
            Frame::Integer(got.len() as i64),
            "{tag}: COMMAND COUNT vs entries in COMMAND"
        );
        let mut seen = HashSet::new();
        for (name, fields) in &got {
            assert!(seen.insert(name.clone()), "{tag}: {name} listed twice");
            if is_forkdb_only(name) {
                continue;
            }
            match want.iter().find(|(n, _)| n == name) {
                Some((_, w)) => command_table::compare_entry(&tag, name, fields, w, &mut problems),
                None => problems.push(format!("{tag} {name}: listed by forkdb, unknown to redis")),
            }
        }
        names = all_names(&got);
        names.retain(|n| !is_forkdb_only(n));
        for name in SUPPORTED_COMMANDS.iter().chain(SUPPORTED_SUBCOMMANDS) {
            if !names.contains(*name) {
                problems.push(format!("{tag} {name}: missing from COMMAND"));
            }
        }

        // Named lookups: every name, in upper case, plus names Redis answers with a null.
        let mut lookup: Vec<String> = names.iter().map(|n| n.to_uppercase()).collect();
        lookup.extend(
            [
                "no-such-command",
                "get|sub",
                "client|no-such",
                "client|kill|x",
            ]
            .map(String::from),
        );
        let args: Vec<&str> = ["COMMAND", "INFO"]
            .into_iter()
            .chain(lookup.iter().map(String::as_str))
            .collect();
        let (got_info, want_info) = (f.frame(&args), r.frame(&args));
        match (got_info, want_info) {
            (Frame::Array(g), Frame::Array(w)) if g.len() == w.len() => {
                for ((asked, g), w) in lookup.iter().zip(&g).zip(&w) {
                    match (g, w) {
                        (Frame::Array(gf), Frame::Array(wf)) => {
                            let name = format!("COMMAND INFO {asked}:");
                            command_table::compare_entry(&tag, &name, gf, wf, &mut problems);
                        }
                        _ if g == w => {}
                        _ => problems.push(format!(
                            "{tag} COMMAND INFO {asked}: forkdb {}, redis {}",
                            resp::show(&g.encode()),
                            resp::show(&w.encode())
                        )),
                    }
                }
            }
            (g, w) => problems.push(format!(
                "{tag} COMMAND INFO {}: forkdb {}, redis {}",
                lookup.join(" "),
                resp::show_short(&g.encode(), 200),
                resp::show_short(&w.encode(), 200)
            )),
        }
    }

    // COMMAND LIST: the names in COMMAND, and under each filter Redis's answer cut to those.
    let (mut r, mut f) = (redis.conn(), forkdb.conn());
    let forkdb_list = |f: &mut _, filter: &[&str]| {
        command_table::list(f, filter)
            .map(|l| l.into_iter().filter(|n| !is_forkdb_only(n)).collect())
    };
    match forkdb_list(&mut f, &[]) {
        Ok(listed) if listed == names => {}
        other => problems.push(format!("COMMAND LIST: {other:?}, COMMAND has {names:?}")),
    }
    let categories: Vec<String> = match r.frame(&["ACL", "CAT"]) {
        Frame::Array(cats) => cats.iter().filter_map(Frame::as_text).collect(),
        other => panic!("ACL CAT on redis: {other:?}"),
    };
    let mut filters: Vec<Vec<String>> = categories
        .iter()
        .chain(&["KEYSPACE".to_string(), "no-such-category".to_string()])
        .map(|c| vec!["FILTERBY".into(), "ACLCAT".into(), c.clone()])
        .collect();
    for pattern in [
        "*", "get*", "*|*", "CLIENT|*", "c?nfig*", "[a-c]*", "nothing",
    ] {
        filters.push(vec!["FILTERBY".into(), "PATTERN".into(), pattern.into()]);
    }
    filters.push(vec![
        "filterby".into(),
        "module".into(),
        "nosuchmodule".into(),
    ]);
    for bad in [
        &["FILTERBY"][..],
        &["FILTERBY", "PATTERN"],
        &["FILTERBY", "nosuch", "x"],
        &["FILTERBY", "PATTERN", "*", "x"],
        &["PATTERN", "*"],
    ] {
        filters.push(bad.iter().map(|s| s.to_string()).collect());
    }
    for filter in &filters {
        let filter: Vec<&str> = filter.iter().map(String::as_str).collect();
        let want = command_table::list(&mut r, &filter).map(|w| &w & &names);
        let got = forkdb_list(&mut f, &filter);
        if got != want {
            problems.push(format!(
                "COMMAND LIST {}: forkdb {got:?}\n      redis  {want:?}",
                filter.join(" ")
            ));
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

/// Commands whose arguments forkdb documents differently from Redis 7.0 on purpose, and why.
const DOCUMENTED_EXTENSIONS: &[(&str, &str)] = &[(
    "bgsave",
    "forkdb also has BGSAVE CANCEL (from Valkey), so it documents a choice of SCHEDULE or CANCEL",
)];

/// COMMAND DOCS against Redis's, in RESP3 (where maps are maps): for every command and
/// subcommand forkdb has, the same fields in the same order, the same `since`, doc flags and
/// deprecation, and the same arguments: names, types, tokens, flags, `since`, key_spec_index and
/// nested arguments, which is what clients and redis-cli's hints read. The prose (`summary`,
/// `complexity`, `replaced_by`, `history`) is not compared: forkdb writes its own documentation,
/// and structure is what clients use. Also: unknown names are left out as in Redis, the RESP2
/// reply is the RESP3 one flattened, and every argument type is one redis-cli knows.
#[test]
fn command_docs_match_redis() {
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let (mut r, mut f) = (redis.conn(), forkdb.conn());
    command_table::use_protocol(&mut r, 3);
    command_table::use_protocol(&mut f, 3);
    let mut problems = Vec::new();

    let all = f.frame(&["COMMAND", "DOCS"]);
    let docs = command_table::pairs(&all).expect("COMMAND DOCS map");
    for (name, doc) in &docs {
        let name = name.as_text().expect("command name");
        if is_forkdb_only(&name) {
            continue;
        }
        let want = r.frame(&["COMMAND", "DOCS", &name]);
        let Some((_, want)) = command_table::pairs(&want).and_then(|p| p.into_iter().next()) else {
            problems.push(format!("{name}: documented by forkdb, unknown to redis"));
            continue;
        };
        let subs = command_table::doc_subcommands(doc);
        let redis_subs = command_table::doc_subcommands(&want);
        for sub in subs.difference(&redis_subs) {
            problems.push(format!("{sub}: documented by forkdb, unknown to redis"));
        }
        let skip_args = DOCUMENTED_EXTENSIONS.iter().any(|(n, _)| *n == name);
        let got = command_table::comparable_doc(doc, &subs, skip_args);
        let want = command_table::comparable_doc(&want, &subs, skip_args);
        if let Some((path, g, w)) = resp::first_difference(&got, &want) {
            problems.push(format!(
                "COMMAND DOCS {name} at {path}: forkdb {}\n      redis  {}",
                resp::show_short(&g.encode(), 300),
                resp::show_short(&w.encode(), 300)
            ));
        }
    }

    // Named lookups: a subcommand by its full name, unknown names left out.
    let names = |reply: &Frame| -> Vec<String> {
        command_table::pairs(reply)
            .unwrap_or_default()
            .iter()
            .filter_map(|(k, _)| k.as_text())
            .collect()
    };
    let args = [
        "COMMAND",
        "DOCS",
        "GET",
        "no-such-command",
        "client|KILL",
        "get|sub",
    ];
    let (got, want) = (names(&f.frame(&args)), names(&r.frame(&args)));
    if got != want {
        problems.push(format!(
            "{}: forkdb {got:?}, redis {want:?}",
            args.join(" ")
        ));
    }

    let mut types = Vec::new();
    for (name, doc) in &docs {
        command_table::doc_arg_types(&name.as_text().unwrap_or_default(), doc, &mut types);
    }
    for (cmd, arg, ty) in types {
        if !command_table::ARG_TYPES.contains(&ty.as_str()) {
            problems.push(format!(
                "{cmd}: argument {arg:?} has type {ty:?}, unknown to redis-cli"
            ));
        }
    }

    let mut f2 = forkdb.conn();
    if f2.frame(&["COMMAND", "DOCS"]) != command_table::as_resp2(&all) {
        problems.push("COMMAND DOCS in RESP2 is not the RESP3 reply flattened".into());
    }

    problems.sort();
    assert!(
        problems.is_empty(),
        "{} COMMAND DOCS problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
