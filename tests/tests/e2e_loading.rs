//! Loading the RDB file, and the small differences from Redis found around it, each checked
//! against a real redis-server 7.0 doing the same thing:
//!
//! - A function library in the file (Redis 7 `FUNCTION LOAD`) is kept: forkdb logs it, SAVE and
//!   BGSAVE write it back, and redis-server loading forkdb's file lists and runs it.
//! - A file with a key twice is refused at start-up, as Redis refuses it; the file is untouched.
//! - The server binds before it loads: a port in use fails start-up at once; while a slowed load
//!   (`key-load-delay`) runs, commands without the `loading` flag get `-LOADING` and INFO says
//!   `loading:1` with the `loading_*` fields; then everything is served.
//! - `bind` takes `*`, `* -::*` and `::` (IPv6 only) as Redis does.
//! - A failed SAVE answers `-ERR` and leaves `rdb_last_bgsave_status:ok` (no MISCONF after it).
//! - Error replies quote the client's bytes raw (CR/LF as spaces, C-string cuts), as Redis's do.
//!
//! Every process is stopped by its pid; every wait polls with a deadline.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use forkdb_snapshot::{AuxFields, RdbWriter, SaveOptions, Value};
use forkdb_tests::resp::{encode_command, show};
use forkdb_tests::server::{redis_check_rdb_bin, run_with_deadline, TempDir};
use forkdb_tests::{forkdb_target, poll_until, Conn, Kind, Server};

const WAIT: Duration = Duration::from_secs(20);
const DBFILE: &str = "dump.rdb";
const LOADING: &[u8] = b"-LOADING Redis is loading the dataset in memory\r\n";
const LIBRARY: &str =
    "#!lua name=mylib\nredis.register_function('f', function(keys, args) return 1 end)";

fn is_forkdb() -> bool {
    forkdb_target() == Kind::Forkdb
}

/// The server under test, then the reference.
fn both() -> [Kind; 2] {
    [forkdb_target(), Kind::Redis]
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn info_field(conn: &mut Conn, section: &str, name: &str) -> Option<String> {
    let text = conn.frame(&["INFO", section]).as_text()?;
    text.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn field(conn: &mut Conn, section: &str, name: &str) -> String {
    info_field(conn, section, name).unwrap_or_else(|| panic!("INFO {section} has no {name}"))
}

fn bulk(v: &str) -> Vec<u8> {
    format!("${}\r\n{v}\r\n", v.len()).into_bytes()
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An RDB file written with the snapshot crate's encoder: `keys` string keys `key:i` = `value:i`
/// in db 0, plus `extra` records appended as given (to make duplicates).
fn craft_rdb(path: &Path, keys: usize, extra: &[(&str, &str)], used_mem: u64) {
    let mut aux = AuxFields::new("7.0.15");
    aux.used_mem = used_mem;
    let mut w = RdbWriter::new(Vec::new(), SaveOptions::default(), &aux).unwrap();
    w.select_db(0, (keys + extra.len()) as u64, 0).unwrap();
    for i in 0..keys {
        w.record(
            format!("key:{i}").as_bytes(),
            &Value::from(format!("value:{i}").into_bytes()),
            None,
        )
        .unwrap();
    }
    for (k, v) in extra {
        w.record(k.as_bytes(), &Value::from(v.as_bytes().to_vec()), None)
            .unwrap();
    }
    fs::write(path, w.finish().unwrap()).unwrap();
}

fn wait_loaded(conn: &mut Conn) {
    poll_until(WAIT, "the load to end", || {
        (info_field(conn, "persistence", "loading").as_deref() == Some("0")).then_some(())
    });
}

fn wait_bgsave(conn: &mut Conn) {
    poll_until(WAIT, "the background save to end", || {
        (field(conn, "persistence", "rdb_bgsave_in_progress") == "0").then_some(())
    });
    assert_eq!(field(conn, "persistence", "rdb_last_bgsave_status"), "ok");
}

fn check_rdb(path: &Path) {
    let mut cmd = Command::new(redis_check_rdb_bin());
    cmd.arg(path);
    let out = run_with_deadline(cmd, None, WAIT);
    assert!(
        out.status.success(),
        "redis-check-rdb {}:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A server process started by hand (for binds the harness cannot wait on); killed by pid.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        // `Child::kill` never signals a pid that was already reaped.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(kind: Kind, dir: &Path, args: &[&str]) -> Spawned {
    let log = fs::File::create(dir.join("server.log")).unwrap();
    let child = Command::new(kind.binary())
        .args(["--dir", path_str(dir), "--save", ""])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Spawned(child)
}

fn can_connect(addr: &str) -> bool {
    TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok()
}

/// IPv6 loopback works on this host.
fn have_ipv6() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn function_library_is_kept_and_written_back() {
    // A file with a library, from a real redis-server.
    let src = Server::redis(&[]);
    let mut rc = src.conn();
    rc.assert_cmd(&["FUNCTION", "LOAD", LIBRARY], &bulk("mylib"));
    rc.assert_cmd(&["SET", "a", "1"], b"+OK\r\n");
    rc.assert_cmd(&["SAVE"], b"+OK\r\n");
    let dir = TempDir::new("function");
    fs::copy(src.dir.join(DBFILE), dir.path().join(DBFILE)).unwrap();
    drop(src);

    let server = Server::forkdb(&[
        "--dir",
        path_str(dir.path()),
        "--enable-debug-command",
        "yes",
    ]);
    let mut conn = server.conn();
    conn.assert_cmd(&["GET", "a"], &bulk("1"));
    assert_eq!(
        field(&mut conn, "persistence", "rdb_last_load_keys_loaded"),
        "1"
    );
    // DEBUG RELOAD (save, empty, load in one go) keeps the library and the keys.
    conn.assert_cmd(&["SET", "c", "3"], b"+OK\r\n");
    conn.assert_cmd(&["DEBUG", "RELOAD"], b"+OK\r\n");
    conn.assert_cmd(&["DBSIZE"], b":2\r\n");
    assert_eq!(
        field(&mut conn, "persistence", "rdb_last_load_keys_loaded"),
        "2"
    );
    if is_forkdb() {
        let log = server.log();
        assert!(
            log.contains("Function library 'mylib'"),
            "the library is not logged:\n{log}"
        );
    }
    for how in ["SAVE", "BGSAVE"] {
        conn.assert_cmd(&["SET", "b", how], b"+OK\r\n");
        if how == "SAVE" {
            conn.assert_cmd(&["SAVE"], b"+OK\r\n");
        } else {
            conn.assert_cmd(&["BGSAVE"], b"+Background saving started\r\n");
            wait_bgsave(&mut conn);
        }
        let copy = TempDir::new("function-back");
        fs::copy(dir.path().join(DBFILE), copy.path().join(DBFILE)).unwrap();
        check_rdb(&copy.path().join(DBFILE));
        let redis = Server::redis(&["--dir", path_str(copy.path())]);
        let mut rc = redis.conn();
        let list = rc.cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "mylib"]);
        assert!(
            list.windows(5).any(|w| w == b"mylib"),
            "redis-server lost the library of forkdb's {how} file: {}",
            show(&list)
        );
        rc.assert_cmd(&["FCALL", "f", "0"], b":1\r\n");
        rc.assert_cmd(&["GET", "a"], &bulk("1"));
        rc.assert_cmd(&["GET", "b"], &bulk(how));
        rc.assert_cmd(&["GET", "c"], &bulk("3"));
    }
}

#[test]
fn duplicated_key_is_refused_like_redis() {
    for kind in both() {
        let dir = TempDir::new("duplicate");
        let path = dir.path().join(DBFILE);
        craft_rdb(&path, 8, &[("key:3", "again")], 0);
        let before = fs::read(&path).unwrap();
        let mut cmd = Command::new(kind.binary());
        let port = forkdb_tests::server::free_port().to_string();
        cmd.args(["--port", &port, "--save", "", "--dir", path_str(dir.path())])
            .current_dir(dir.path());
        let out = run_with_deadline(cmd, None, WAIT);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{kind:?} loaded it:\n{text}");
        assert!(
            text.contains("RDB has duplicated key 'key:3' in DB 0"),
            "{kind:?}:\n{text}"
        );
        assert!(
            text.contains("Duplicated key found in RDB file"),
            "{kind:?}:\n{text}"
        );
        if kind == Kind::Forkdb {
            assert!(text.contains(path_str(&path)), "no file name:\n{text}");
            assert!(text.contains("offset"), "no offset:\n{text}");
        }
        assert!(
            fs::read(&path).unwrap() == before,
            "{kind:?} changed the file"
        );
    }
}

#[test]
fn load_counts_and_log_line_are_exact() {
    for kind in both() {
        let dir = TempDir::new("counts");
        craft_rdb(&dir.path().join(DBFILE), 8, &[], 0);
        let server = Server::start(kind, &["--dir", path_str(dir.path())]);
        let mut conn = server.conn();
        conn.assert_cmd(&["DBSIZE"], b":8\r\n");
        assert_eq!(
            field(&mut conn, "persistence", "rdb_last_load_keys_loaded"),
            "8"
        );
        assert_eq!(
            field(&mut conn, "persistence", "rdb_last_load_keys_expired"),
            "0"
        );
        let log = server.log();
        let line = "Done loading RDB, keys loaded: 8, keys expired: 0.";
        assert!(log.contains(line), "{kind:?} log:\n{log}");
    }
}

/// The pipeline sent while the server loads: commands with and without Redis's `loading` flag.
const DURING_LOAD: &[&[&str]] = &[
    &["GET", "key:1"],
    &["SET", "k", "v"],
    &["PING"],
    &["DBSIZE"],
    &["BGSAVE"],
    &["SAVE"],
    &["FLUSHALL"],
    &["ECHO", "hi"],
    &["SELECT", "0"],
    &["MULTI"],
    &["GET", "key:1"],
    &["ECHO", "queued"],
    &["EXEC"],
    &["CONFIG", "GET", "key-load-delay"],
    &["NOSUCH"],
];

#[test]
fn loading_answers_loading_then_serves() {
    const KEYS: usize = 300;
    let mut replies = Vec::new();
    for kind in both() {
        let dir = TempDir::new("loading");
        let path = dir.path().join(DBFILE);
        craft_rdb(&path, KEYS, &[], 4_321_000);
        let size = fs::metadata(&path).unwrap().len();
        let before = fs::read(&path).unwrap();
        // 10 ms a key: three seconds of loading. Redis serves clients during a load only every
        // `loading-process-events-interval-bytes` (2 MiB by default, 1 KiB at least).
        let mut args = vec![
            "--dir",
            path_str(dir.path()),
            "--key-load-delay",
            "10000",
            "--save",
            "1 1",
        ];
        if kind == Kind::Redis {
            args.extend(["--loading-process-events-interval-bytes", "1024"]);
        }
        let started = now_s();
        let server = Server::start_loading(kind, &args);
        let mut conn = server.conn();
        // One pipeline: Redis reads clients only between chunks of the file while it loads.
        let mut pipeline: Vec<u8> = DURING_LOAD.iter().flat_map(|c| encode_command(c)).collect();
        pipeline.extend(encode_command(&["INFO", "persistence"]));
        conn.send(&pipeline).unwrap();
        let got: Vec<Vec<u8>> = DURING_LOAD
            .iter()
            .map(|_| conn.read_reply().unwrap())
            .collect();
        let info = conn.read_frame().unwrap().as_text().unwrap();
        let get = |name: &str| -> String {
            info.split("\r\n")
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_owned())
                .unwrap_or_else(|| panic!("{kind:?}: INFO has no {name} during the load:\n{info}"))
        };
        assert_eq!(get("loading"), "1", "{kind:?}");
        assert_eq!(get("loading_total_bytes"), size.to_string(), "{kind:?}");
        let start: i64 = get("loading_start_time").parse().unwrap();
        assert!((started - 1..=now_s()).contains(&start), "{kind:?} {start}");
        let loaded: u64 = get("loading_loaded_bytes").parse().unwrap();
        assert!(loaded <= size, "{kind:?} loaded {loaded} of {size}");
        let perc: f64 = get("loading_loaded_perc").parse().unwrap();
        assert!((0.0..=100.0).contains(&perc), "{kind:?} {perc}");
        let _eta: i64 = get("loading_eta_seconds").parse().unwrap();
        assert_eq!(get("rdb_changes_since_last_save"), "0", "{kind:?}");
        // The `used-mem` AUX field shows once the loader has read the file's start.
        poll_until(WAIT, "loading_loaded_bytes to move", || {
            (field(&mut conn, "persistence", "loading_loaded_bytes") != "0").then_some(())
        });
        assert_eq!(
            field(&mut conn, "persistence", "loading",),
            "1",
            "{kind:?}: too late"
        );
        assert_eq!(
            field(&mut conn, "persistence", "loading_rdb_used_mem"),
            "4321000",
            "{kind:?}"
        );
        assert_eq!(
            field(&mut conn, "persistence", "rdb_changes_since_last_save"),
            "0",
            "{kind:?}: loaded keys counted as changes"
        );
        replies.push(got);

        wait_loaded(&mut conn);
        assert_eq!(
            info_field(&mut conn, "persistence", "loading_total_bytes"),
            None,
            "{kind:?}: loading_* fields after the load"
        );
        conn.assert_cmd(&["DBSIZE"], format!(":{KEYS}\r\n").as_bytes());
        conn.assert_cmd(&["GET", "key:7"], &bulk("value:7"));
        assert_eq!(
            field(&mut conn, "persistence", "rdb_last_load_keys_loaded"),
            KEYS.to_string()
        );
        // Nothing was saved during the load (save points wait for it).
        assert!(
            fs::read(&path).unwrap() == before,
            "{kind:?} wrote the file"
        );
    }
    let (ours, redis) = (&replies[0], &replies[1]);
    for (i, cmd) in DURING_LOAD.iter().enumerate() {
        assert_eq!(
            show(&ours[i]),
            show(&redis[i]),
            "{cmd:?} during a load differs from redis-server"
        );
    }
    assert_eq!(ours[0], LOADING);
}

#[test]
fn port_in_use_fails_at_once_before_loading() {
    for kind in both() {
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = holder.local_addr().unwrap().port().to_string();
        let dir = TempDir::new("port-taken");
        // A load of this file would take 100 s.
        craft_rdb(&dir.path().join(DBFILE), 100, &[], 0);
        let mut cmd = Command::new(kind.binary());
        cmd.args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--dir", path_str(dir.path()), "--key-load-delay", "1000000"])
            .current_dir(dir.path());
        let started = Instant::now();
        let out = run_with_deadline(cmd, None, Duration::from_secs(60));
        let took = started.elapsed();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{kind:?} started:\n{text}");
        assert!(text.contains("Address already in use"), "{kind:?}:\n{text}");
        assert!(
            took < Duration::from_secs(10),
            "{kind:?} took {took:?} to fail: it loaded before binding"
        );
        drop(holder);
    }
}

#[test]
fn bind_star_forms_like_redis() {
    let v6 = have_ipv6();
    for kind in both() {
        let server = Server::start(kind, &["--bind", "*"]);
        let mut conn = server.conn();
        conn.assert_cmd(&["PING"], b"+PONG\r\n");
        if v6 {
            assert!(
                !can_connect(&format!("[::1]:{}", server.port)),
                "{kind:?}: `bind *` is IPv4 only"
            );
        }
        let server = Server::start(kind, &["--bind", "* -::*"]);
        server.conn().assert_cmd(&["PING"], b"+PONG\r\n");
        if v6 {
            assert!(can_connect(&format!("[::1]:{}", server.port)), "{kind:?}");
        }
    }
}

#[test]
fn bind_ipv6_any_is_ipv6_only() {
    if !have_ipv6() {
        eprintln!("skipped: no IPv6 loopback on this host");
        return;
    }
    for kind in both() {
        let dir = TempDir::new("bind-v6");
        let port = forkdb_tests::server::free_port().to_string();
        let _server = spawn(kind, dir.path(), &["--port", &port, "--bind", "::"]);
        let v6 = format!("[::1]:{port}");
        poll_until(WAIT, "the server to listen on [::1]", || {
            can_connect(&v6).then_some(())
        });
        let mut s = TcpStream::connect(&v6).unwrap();
        use std::io::{Read, Write};
        s.write_all(b"PING\r\n").unwrap();
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"+PONG\r\n", "{kind:?}");
        assert!(
            !can_connect(&format!("127.0.0.1:{port}")),
            "{kind:?}: `bind ::` took an IPv4 connection"
        );
    }
}

#[test]
fn failed_save_keeps_bgsave_status_ok() {
    for kind in both() {
        let server = Server::start(
            kind,
            &["--save", "3600 1", "--enable-protected-configs", "yes"],
        );
        let mut conn = server.conn();
        let gone = server.dir.join("gone");
        fs::create_dir(&gone).unwrap();
        conn.assert_cmd(&["CONFIG", "SET", "dir", path_str(&gone)], b"+OK\r\n");
        fs::remove_dir(&gone).unwrap();
        conn.assert_cmd(&["SET", "k", "v"], b"+OK\r\n");
        conn.assert_cmd(&["SAVE"], b"-ERR\r\n");
        assert_eq!(
            field(&mut conn, "persistence", "rdb_last_bgsave_status"),
            "ok",
            "{kind:?}"
        );
        conn.assert_cmd(&["SET", "k", "w"], b"+OK\r\n");
        conn.assert_cmd(&["PING"], b"+PONG\r\n");
    }
}

#[test]
fn error_replies_carry_the_raw_bytes() {
    let long = vec![0xffu8; 200];
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![b"FOO\xff", b"a\xfeb", b"c\r\nd"],
        vec![b"FOO", b"a\x00b", &long],
        vec![b"\xc3\x28bad", &long, b"x"],
        vec![b"CONFIG", b"x\xff\r\ny"],
        vec![b"client", b"\xe9t\xe9"],
    ];
    let mut replies = Vec::new();
    let mut framing = Vec::new();
    for kind in both() {
        let server = Server::start(kind, &[]);
        let mut conn = server.conn();
        replies.push(cases.iter().map(|c| conn.cmd(c)).collect::<Vec<_>>());
        conn.assert_cmd(&["PING"], b"+PONG\r\n");
        // A framing error quotes the byte found where `$` should be.
        let mut conn = server.conn();
        conn.send(b"*1\r\n\xff3\r\nabc\r\n").unwrap();
        framing.push(conn.read_reply().unwrap());
    }
    assert_eq!(show(&framing[0]), show(&framing[1]), "protocol error");
    assert_eq!(
        framing[0],
        b"-ERR Protocol error: expected '$', got '\xff'\r\n"
    );
    for (i, case) in cases.iter().enumerate() {
        assert_eq!(
            show(&replies[0][i]),
            show(&replies[1][i]),
            "error reply to {case:?}"
        );
    }
    assert!(replies[0][0].contains(&0xff), "{}", show(&replies[0][0]));
}

/// SIGTERM and SHUTDOWN during a load end the process without saving, even with save points:
/// a half-loaded data set must never replace the file it comes from.
#[test]
fn shutdown_during_a_load_does_not_save() {
    for (kind, how) in [
        (forkdb_target(), "SIGTERM"),
        (forkdb_target(), "SHUTDOWN"),
        (Kind::Redis, "SIGTERM"),
        (Kind::Redis, "SHUTDOWN"),
    ] {
        let dir = TempDir::new("load-shutdown");
        let path = dir.path().join(DBFILE);
        craft_rdb(&path, 300, &[], 0);
        let before = fs::read(&path).unwrap();
        let mut args = vec![
            "--dir",
            path_str(dir.path()),
            "--key-load-delay",
            "10000",
            "--save",
            "1 1",
        ];
        if kind == Kind::Redis {
            args.extend(["--loading-process-events-interval-bytes", "1024"]);
        }
        let mut server = Server::start_loading(kind, &args);
        let mut conn = server.conn();
        assert_eq!(field(&mut conn, "persistence", "loading"), "1", "{kind:?}");
        if how == "SIGTERM" {
            server.signal(libc::SIGTERM);
        } else {
            let _ = conn.send_cmd(&["SHUTDOWN"]);
        }
        assert!(
            server.wait_exit(WAIT).is_some(),
            "{kind:?} did not exit on {how} during a load"
        );
        assert!(
            fs::read(&path).unwrap() == before,
            "{kind:?} wrote the file on {how} during a load"
        );
    }
}
