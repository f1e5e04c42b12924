//! The differential corpus: command files run against forkdb and redis-server side by side.
//!
//! Format (files under `tests/corpus/`):
//!
//! ```text
//! # a comment
//! === section name          <- each section starts on fresh connections after FLUSHALL
//! SET k "a b"               <- one command, quoted like redis-cli (sdssplitargs)
//! @sorted KEYS *            <- compare with aggregate elements sorted (KEYS, SCAN, ...)
//! @type TTL k               <- compare only the RESP shape (type, element counts)
//! @conn 2                   <- following commands go to connection 2 of this section
//! ```
//!
//! A file starts a new section too. After QUIT the runner records whether the server closed the
//! connection; any closed connection is reopened for the next command that uses it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::conn::Conn;
use crate::resp::{self, Frame};

/// How a reply is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Byte for byte.
    Exact,
    /// Byte for byte after sorting every aggregate's elements.
    Sorted,
    /// Same RESP shape only (type and element counts, recursively).
    Type,
}

#[derive(Debug, Clone)]
pub struct Command {
    pub file: String,
    pub line: usize,
    pub text: String,
    pub args: Vec<Vec<u8>>,
    pub compare: Compare,
    /// Index of the section's connection to use.
    pub conn: usize,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub file: String,
    pub name: String,
    pub commands: Vec<Command>,
}

/// Splits a line the way redis-cli does (`sdssplitargs`): blanks separate arguments; `"..."`
/// understands `\n \r \t \b \a \\ \"` and `\xHH`; `'...'` understands only `\'`.
pub fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = line.as_bytes();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            return Ok(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                match bytes.get(i) {
                    None => return Err("unbalanced double quotes".into()),
                    Some(b'\\') if i + 3 < bytes.len() && bytes[i + 1] == b'x' => {
                        let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap_or("");
                        match u8::from_str_radix(hex, 16) {
                            Ok(b) => {
                                cur.push(b);
                                i += 3;
                            }
                            Err(_) => {
                                cur.push(b'\\');
                            }
                        }
                    }
                    Some(b'\\') if i + 1 < bytes.len() => {
                        i += 1;
                        cur.push(match bytes[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if bytes.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                            return Err("closing quote must be followed by a space".into());
                        }
                        i += 1;
                        break;
                    }
                    Some(&b) => cur.push(b),
                }
            } else if in_sq {
                match bytes.get(i) {
                    None => return Err("unbalanced single quotes".into()),
                    Some(b'\\') if bytes.get(i + 1) == Some(&b'\'') => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if bytes.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                            return Err("closing quote must be followed by a space".into());
                        }
                        i += 1;
                        break;
                    }
                    Some(&b) => cur.push(b),
                }
            } else {
                match bytes.get(i) {
                    None => break,
                    Some(b) if b.is_ascii_whitespace() => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(&b) => cur.push(b),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

/// Parses one corpus file into sections.
pub fn parse_corpus(file: &str, text: &str) -> Result<Vec<Section>, String> {
    let mut sections = vec![Section {
        file: file.into(),
        name: "(start)".into(),
        commands: Vec::new(),
    }];
    let mut conn = 0;
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("===") {
            sections.push(Section {
                file: file.into(),
                name: name.trim().into(),
                commands: Vec::new(),
            });
            conn = 0;
            continue;
        }
        let mut rest = line;
        let mut compare = Compare::Exact;
        if let Some(r) = rest.strip_prefix("@conn") {
            conn = r
                .trim()
                .parse()
                .map_err(|_| format!("{file}:{line_no}: bad @conn"))?;
            continue;
        }
        if let Some(r) = rest.strip_prefix("@sorted ") {
            compare = Compare::Sorted;
            rest = r;
        } else if let Some(r) = rest.strip_prefix("@type ") {
            compare = Compare::Type;
            rest = r;
        } else if rest.starts_with('@') {
            return Err(format!("{file}:{line_no}: unknown marker in {line:?}"));
        }
        let args = split_args(rest).map_err(|e| format!("{file}:{line_no}: {e}"))?;
        let section = sections.last_mut().expect("at least one section");
        section.commands.push(Command {
            file: file.into(),
            line: line_no,
            text: rest.into(),
            args,
            compare,
            conn,
        });
    }
    sections.retain(|s| !s.commands.is_empty());
    Ok(sections)
}

/// Reads every `*.txt` file of a corpus directory, in name order.
pub fn load_dir(dir: &std::path::Path) -> Vec<Section> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut sections = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let name = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        sections.extend(parse_corpus(&name, &text).unwrap_or_else(|e| panic!("corpus error: {e}")));
    }
    sections
}

/// What a server answered to one command: the raw reply, then `<closed>` or `<timeout>` markers.
pub type Outcome = Vec<u8>;

const CLOSED: &[u8] = b"<closed>";
const TIMEOUT: &[u8] = b"<timeout>";

fn open(conns: &mut HashMap<usize, Conn>, n: usize, port: u16) -> &mut Conn {
    conns.entry(n).or_insert_with(|| {
        let c = Conn::connect(port).unwrap_or_else(|e| panic!("connect to {port}: {e}"));
        c.set_read_timeout(Duration::from_secs(5));
        c
    })
}

/// Runs a section on fresh connections to `port` (FLUSHALL first) and returns one outcome per command.
pub fn run_section(port: u16, section: &Section) -> Vec<Outcome> {
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let first = open(&mut conns, 0, port);
    let flushed = first.cmd(&["FLUSHALL"]);
    assert_eq!(
        flushed, b"+OK\r\n",
        "FLUSHALL before section {:?} on port {port}",
        section.name
    );
    let mut outcomes = Vec::with_capacity(section.commands.len());
    for cmd in &section.commands {
        let conn = open(&mut conns, cmd.conn, port);
        let mut outcome = Vec::new();
        let mut drop_conn = false;
        let result = conn.send_cmd(&cmd.args).and_then(|()| conn.read_reply());
        match result {
            Ok(reply) => {
                outcome.extend_from_slice(&reply);
                let is_quit = cmd
                    .args
                    .first()
                    .is_some_and(|a| a.eq_ignore_ascii_case(b"quit"));
                if is_quit {
                    match conn.wait_closed(Duration::from_secs(2)) {
                        Some(extra) => {
                            outcome.extend_from_slice(&extra);
                            outcome.extend_from_slice(CLOSED);
                        }
                        None => outcome.extend_from_slice(b"<still open>"),
                    }
                    drop_conn = true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                outcome.extend_from_slice(TIMEOUT);
                drop_conn = true;
            }
            Err(_) => {
                outcome.extend_from_slice(CLOSED);
                drop_conn = true;
            }
        }
        if drop_conn {
            conns.remove(&cmd.conn);
        }
        outcomes.push(outcome);
    }
    outcomes
}

/// Whether two outcomes agree under `mode`.
pub fn agree(expected: &[u8], got: &[u8], mode: Compare) -> bool {
    if mode == Compare::Exact || expected == got {
        return expected == got;
    }
    let (Some(e), Some(g)) = (whole_frame(expected), whole_frame(got)) else {
        return false;
    };
    match mode {
        Compare::Exact => unreachable!(),
        Compare::Sorted => e.sorted() == g.sorted(),
        Compare::Type => e.shape() == g.shape(),
    }
}

/// The outcome as one frame, if it is exactly one reply (no close/timeout markers).
fn whole_frame(bytes: &[u8]) -> Option<Frame> {
    match resp::parse(bytes) {
        Ok(Some((frame, used))) if used == bytes.len() => Some(frame),
        _ => None,
    }
}

/// Runs every section against both servers and describes each disagreement.
pub fn diff(
    sections: &[Section],
    expected_port: u16,
    got_port: u16,
    got_name: &str,
) -> (usize, Vec<String>) {
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for section in sections {
        let want = run_section(expected_port, section);
        let got = run_section(got_port, section);
        for ((cmd, w), g) in section.commands.iter().zip(&want).zip(&got) {
            compared += 1;
            if !agree(w, g, cmd.compare) {
                let mut m = String::new();
                let _ = write!(
                    m,
                    "corpus/{}:{} [{}] ({:?}) conn {}: {}\n    redis:  {}\n    {got_name}: {}",
                    cmd.file,
                    cmd.line,
                    section.name,
                    cmd.compare,
                    cmd.conn,
                    cmd.text,
                    resp::show_short(w, 300),
                    resp::show_short(g, 300)
                );
                // For long aggregate replies, point at the first element that differs.
                if let (Some(wf), Some(gf)) = (whole_frame(w), whole_frame(g)) {
                    if let Some((path, a, b)) = resp::first_difference(&wf, &gf) {
                        if !path.is_empty() {
                            let _ = write!(
                                m,
                                "\n    first difference at {path}: redis {} vs {got_name} {}",
                                resp::show_short(&a.encode(), 300),
                                resp::show_short(&b.encode(), 300)
                            );
                        }
                    }
                }
                mismatches.push(m);
            }
        }
    }
    (compared, mismatches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn splits_like_redis_cli() {
        assert_eq!(
            split_args(r#"SET k "a b""#).unwrap(),
            s(&["SET", "k", "a b"])
        );
        assert_eq!(
            split_args(r#"SET k "\x41\n""#).unwrap(),
            s(&["SET", "k", "A\n"])
        );
        assert_eq!(
            split_args(r"SET 'it\'s' ''").unwrap(),
            s(&["SET", "it's", ""])
        );
        assert_eq!(split_args(r#"ECHO """#).unwrap(), s(&["ECHO", ""]));
        assert!(split_args(r#"SET "a"b"#).is_err());
        assert!(split_args(r#"SET "a"#).is_err());
    }

    #[test]
    fn parses_sections_and_markers() {
        let text = "# c\nPING\n=== two\n@sorted KEYS *\n@conn 1\n@type TTL k\n";
        let sections = parse_corpus("f.txt", text).unwrap();
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[1].name, "two");
        assert_eq!(sections[1].commands[0].compare, Compare::Sorted);
        assert_eq!(sections[1].commands[1].compare, Compare::Type);
        assert_eq!(sections[1].commands[1].conn, 1);
        assert_eq!(sections[1].commands[1].line, 6);
        assert!(parse_corpus("f.txt", "@bogus PING").is_err());
    }

    #[test]
    fn loose_comparisons() {
        assert!(agree(
            b"*2\r\n$1\r\na\r\n$1\r\nb\r\n",
            b"*2\r\n$1\r\nb\r\n$1\r\na\r\n",
            Compare::Sorted
        ));
        assert!(!agree(
            b"*2\r\n$1\r\na\r\n$1\r\nb\r\n",
            b"*2\r\n$1\r\nb\r\n$1\r\na\r\n",
            Compare::Exact
        ));
        assert!(agree(b":5\r\n", b":7\r\n", Compare::Type));
        assert!(!agree(b":5\r\n", b"$1\r\n5\r\n", Compare::Type));
        assert!(!agree(b"+OK\r\n<closed>", b"+OK\r\n", Compare::Type));
    }
}
