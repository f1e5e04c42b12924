//! Configuration files and the CONFIG commands that need more than one connection or a file:
//! loading a config file, CONFIG REWRITE and a restart from the rewritten file, CONFIG RESETSTAT.

use forkdb_tests::server::TempDir;
use forkdb_tests::{Conn, Server};

fn info_field(conn: &mut Conn, section: &str, field: &str) -> String {
    let text = conn
        .frame(&["INFO", section])
        .as_text()
        .expect("INFO is a bulk string");
    text.split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{text}"))
}

#[test]
fn config_file_is_loaded() {
    let tmp = TempDir::new("conf");
    let path = tmp.path().join("forkdb.conf");
    std::fs::write(
        &path,
        "# a comment\n\n   # an indented comment\nTimeout 30\nhz 15\nmaxclients \"200\"\ndbfilename 'other.rdb'\n",
    )
    .unwrap();
    let server = Server::forkdb(&[path.to_str().unwrap()]);
    let mut conn = server.conn();
    conn.assert_cmd(
        &["CONFIG", "GET", "timeout"],
        b"*2\r\n$7\r\ntimeout\r\n$2\r\n30\r\n",
    );
    conn.assert_cmd(&["CONFIG", "GET", "hz"], b"*2\r\n$2\r\nhz\r\n$2\r\n15\r\n");
    conn.assert_cmd(
        &["CONFIG", "GET", "maxclients"],
        b"*2\r\n$10\r\nmaxclients\r\n$3\r\n200\r\n",
    );
    conn.assert_cmd(
        &["CONFIG", "GET", "dbfilename"],
        b"*2\r\n$10\r\ndbfilename\r\n$9\r\nother.rdb\r\n",
    );
    // Command-line options come after the file and win.
    let server = Server::forkdb(&[path.to_str().unwrap(), "--hz", "25"]);
    server
        .conn()
        .assert_cmd(&["CONFIG", "GET", "hz"], b"*2\r\n$2\r\nhz\r\n$2\r\n25\r\n");
}

#[test]
fn config_rewrite_then_restart() {
    let tmp = TempDir::new("rewrite");
    let path = tmp.path().join("forkdb.conf");
    std::fs::write(&path, "# keep me\nhz 15\ntimeout 30\n").unwrap();
    let path_str = path.to_str().unwrap();
    // The first server stays up: the rewritten file names its directory, which goes when it stops.
    let first = Server::forkdb(&[path_str]);
    let mut conn = first.conn();
    conn.assert_cmd(&["CONFIG", "SET", "hz", "20"], b"+OK\r\n");
    conn.assert_cmd(&["CONFIG", "SET", "maxclients", "300"], b"+OK\r\n");
    conn.assert_cmd(&["CONFIG", "REWRITE"], b"+OK\r\n");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("# keep me"),
        "comments are kept:\n{text}"
    );
    assert!(
        lines.contains(&"hz 20"),
        "no `hz 20` in the rewritten file:\n{text}"
    );
    assert!(
        !lines.contains(&"hz 15"),
        "the old hz line is still there:\n{text}"
    );
    assert!(
        lines.contains(&"maxclients 300"),
        "no `maxclients 300` in the rewritten file:\n{text}"
    );
    assert!(
        lines.contains(&"timeout 30"),
        "unchanged options are kept:\n{text}"
    );

    let second = Server::forkdb(&[path_str]);
    let mut conn = second.conn();
    conn.assert_cmd(&["CONFIG", "GET", "hz"], b"*2\r\n$2\r\nhz\r\n$2\r\n20\r\n");
    conn.assert_cmd(
        &["CONFIG", "GET", "maxclients"],
        b"*2\r\n$10\r\nmaxclients\r\n$3\r\n300\r\n",
    );
    conn.assert_cmd(
        &["CONFIG", "GET", "timeout"],
        b"*2\r\n$7\r\ntimeout\r\n$2\r\n30\r\n",
    );
}

#[test]
fn config_resetstat_zeroes_the_counters() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    for _ in 0..5 {
        conn.assert_cmd(&["PING"], b"+PONG\r\n");
    }
    let before: u64 = info_field(&mut conn, "stats", "total_commands_processed")
        .parse()
        .unwrap();
    assert!(
        before >= 5,
        "total_commands_processed={before} after 5 PINGs"
    );
    conn.assert_cmd(&["CONFIG", "RESETSTAT"], b"+OK\r\n");
    // RESETSTAT itself is counted after the reset, as in Redis.
    assert_eq!(
        info_field(&mut conn, "stats", "total_commands_processed"),
        "1"
    );
    assert_eq!(
        info_field(&mut conn, "stats", "total_connections_received"),
        "0"
    );
}

/// forkdb's own `idle-poll-max-us`: set at start-up and by CONFIG SET, bounded, and the server
/// serves with the poll off and on.
#[test]
fn idle_poll_max_us_is_a_config() {
    let server = Server::forkdb(&["--idle-poll-max-us", "0"]);
    let mut conn = server.conn();
    conn.assert_cmd(
        &["CONFIG", "GET", "idle-poll-max-us"],
        b"*2\r\n$16\r\nidle-poll-max-us\r\n$1\r\n0\r\n",
    );
    let err = conn.cmd(&["CONFIG", "SET", "idle-poll-max-us", "1001"]);
    assert!(
        err.starts_with(b"-ERR"),
        "{}",
        String::from_utf8_lossy(&err)
    );
    for value in ["0", "1", "50"] {
        conn.assert_cmd(&["CONFIG", "SET", "idle-poll-max-us", value], b"+OK\r\n");
        for i in 0..200 {
            let n = i.to_string();
            conn.assert_cmd(&["SET", "k", &n], b"+OK\r\n");
            conn.assert_cmd(&["GET", "k"], format!("${}\r\n{n}\r\n", n.len()).as_bytes());
        }
    }
}
