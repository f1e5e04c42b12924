//! Fork-based snapshots end to end.
//!
//! - BGSAVE is a point-in-time copy: saved many times in a row under concurrent writers, each file
//!   holds the marker written just before its BGSAVE and not the one written just after, and no
//!   half of an MSET.
//! - Files go both ways between forkdb and a real redis-server 7.0 (values, integers, LZF, binary,
//!   TTLs, several dbs), with and without compression and checksum.
//! - Faults: a killed child, a killed server, corrupt / truncated / bad-magic files at start-up, a
//!   full disk (RLIMIT_FSIZE), a failed fork, and MISCONF (PING included) after a failed save.
//! - INFO's copy-on-write and fork figures during and after a slowed save under writes;
//!   `rdb_changes_since_last_save` across a save; `rdb_saves` counted as Redis counts it.
//! - Reads during a save leave per-key access data (OBJECT FREQ) alone, as Redis's do.
//! - BGSAVE while one runs, BGSAVE CANCEL, SHUTDOWN and FLUSHALL during a save.
//! - SIGTERM / SIGINT / SHUTDOWN save when save points exist; SHUTDOWN NOSAVE does not.
//!
//! Every wait polls a condition with a deadline, every process is signalled by its pid (after
//! checking it is still the same process), and every load is bounded in count and time.
//! With `FORKDB_E2E_TARGET=redis` the tests run against redis-server, except the parts that are
//! forkdb's own (DEBUG SET-FORK-ERROR, BGSAVE CANCEL, the wording of load errors), which are
//! skipped there.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use forkdb_tests::resp::{encode_command, show, show_short};
use forkdb_tests::server::{proc_alive, proc_stat, start_expecting_failure, ProcStat, TempDir};
use forkdb_tests::snapshot::{
    check_pairs, check_rdb, field, info, num, temp_files, wait_save_done, Info, PairWriters,
};
use forkdb_tests::{forkdb_target, poll_until, Conn, Frame, Kind, Server};

/// How long a save may take before a test gives up on it.
const SAVE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long anything else may take (a process to exit, a child to appear).
const WAIT: Duration = Duration::from_secs(10);
/// Writer threads stop by themselves after this long even if the test never stops them. The
/// tests stop them as soon as their saves are done (after 2-3 s on an idle machine); the cap is
/// generous so that on a busy machine the writers still outlive the saves they must overlap.
const WRITER_LIMIT: Duration = Duration::from_secs(60);
const DBFILE: &str = "dump.rdb";
const MISCONF: &[u8] = b"-MISCONF Redis is configured to save RDB snapshots, but it's currently \
unable to persist to disk. Commands that may modify the data set are disabled, because this \
instance is configured to report errors during writes if RDB snapshotting fails \
(stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB \
error.\r\n";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Held by the tests whose slowed saves must not share the two cores with each other: a child
/// that sleeps between keys waits for a CPU after every sleep, so two of them plus their writers
/// would stretch each other's saves many times over.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_forkdb() -> bool {
    forkdb_target() == Kind::Forkdb
}

fn int(frame: Frame) -> i64 {
    match frame {
        Frame::Integer(i) => i,
        other => panic!("expected an integer reply, got {other:?}"),
    }
}

/// The raw RESP bulk string for `v`.
fn bulk(v: impl AsRef<[u8]>) -> Vec<u8> {
    let v = v.as_ref();
    let mut out = format!("${}\r\n", v.len()).into_bytes();
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
    out
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Deterministic incompressible bytes (xorshift64).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// SETs `n` keys, pipelined in batches.
fn fill(
    conn: &mut Conn,
    n: usize,
    key: impl Fn(usize) -> Vec<u8>,
    value: impl Fn(usize) -> Vec<u8>,
) {
    const BATCH: usize = 200;
    let mut i = 0;
    while i < n {
        let end = (i + BATCH).min(n);
        let mut out = Vec::new();
        for j in i..end {
            out.extend(encode_command(&[b"SET".as_slice(), &key(j), &value(j)]));
        }
        conn.send(&out).expect("sending a batch of SETs");
        for j in i..end {
            let reply = conn.read_reply().expect("reply to SET");
            assert_eq!(reply, b"+OK\r\n", "SET of key #{j}: {}", show(&reply));
        }
        i = end;
    }
}

fn key_n(i: usize) -> Vec<u8> {
    format!("k:{i}").into_bytes()
}

#[track_caller]
fn bgsave(conn: &mut Conn) {
    conn.assert_cmd(&["BGSAVE"], b"+Background saving started\r\n");
}

/// BGSAVE, wait for it, and check that it succeeded and counted.
#[track_caller]
fn bgsave_ok(conn: &mut Conn) -> Info {
    let before = num(&info(conn, "persistence"), "rdb_saves");
    bgsave(conn);
    let p = wait_save_done(conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok", "{p:?}");
    assert_eq!(num(&p, "rdb_saves"), before + 1, "rdb_saves after a BGSAVE");
    p
}

/// Waits until the server has exactly one child and it is writing `dir/temp-<its pid>.rdb`.
fn wait_snapshot_child(server: &Server, dir: &Path) -> (u32, ProcStat) {
    let (pid, stat) = poll_until(WAIT, "the snapshot child and its temp file", || {
        let kids = server.child_pids();
        if kids.len() != 1 || temp_files(dir).is_empty() {
            return None;
        }
        Some((kids[0], proc_stat(kids[0])?))
    });
    assert_eq!(
        temp_files(dir),
        vec![format!("temp-{pid}.rdb")],
        "the child writes temp-<its pid>.rdb"
    );
    (pid, stat)
}

/// Signals `pid` if it is still the process `stat` describes (same start time).
fn signal_pid(pid: u32, stat: ProcStat, sig: libc::c_int) {
    let now = proc_stat(pid).unwrap_or_else(|| panic!("process {pid} is gone"));
    assert_eq!(
        now.start_time, stat.start_time,
        "pid {pid} is another process now"
    );
    // SAFETY: a plain kill(2) of a process we checked is the one we mean.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// Polls until the process `stat` describes has ended (gone, a zombie, or its pid reused).
fn wait_gone(pid: u32, stat: ProcStat, what: &str) {
    poll_until(WAIT, what, || {
        let gone = match proc_stat(pid) {
            None => true,
            Some(s) => s.start_time != stat.start_time || !proc_alive(pid),
        };
        gone.then_some(())
    });
}

/// Starts a redis-server that loads `file` and waits until it has.
fn redis_with_file(file: &Path) -> (Server, Conn) {
    let dir = file.parent().expect("file has a directory");
    let name = file
        .file_name()
        .expect("file name")
        .to_str()
        .expect("utf-8");
    let server = Server::redis(&["--dir", dir.to_str().expect("utf-8"), "--dbfilename", name]);
    let mut conn = server.conn();
    // PING answers -LOADING while the file loads; INFO always answers.
    poll_until(WAIT, "redis-server to finish loading", || {
        (field(&info(&mut conn, "persistence"), "loading") == "0").then_some(())
    });
    (server, conn)
}

/// Everything in every db: (db, key) → (value, PEXPIRETIME).
type Dataset = BTreeMap<(u32, Vec<u8>), (Vec<u8>, i64)>;

fn dump_all(conn: &mut Conn) -> Dataset {
    let mut out = Dataset::new();
    for db in 0..16u32 {
        conn.assert_cmd(&["SELECT", &db.to_string()], b"+OK\r\n");
        let Frame::Array(keys) = conn.frame(&["KEYS", "*"]) else {
            panic!("KEYS * is not an array");
        };
        for k in keys {
            let Frame::Bulk(key) = k else {
                panic!("KEYS gave {k:?}");
            };
            let value = match conn.frame(&[b"GET".as_slice(), &key]) {
                Frame::Bulk(v) => v,
                other => panic!("GET {} gave {other:?}", show(&key)),
            };
            let at = int(conn.frame(&[b"PEXPIRETIME".as_slice(), &key]));
            out.insert((db, key), (value, at));
        }
    }
    conn.assert_cmd(&["SELECT", "0"], b"+OK\r\n");
    out
}

#[track_caller]
fn assert_same_data(what: &str, got: &Dataset, want: &Dataset) {
    let mut diffs = Vec::new();
    for ((db, key), (value, at)) in want {
        match got.get(&(*db, key.clone())) {
            None => diffs.push(format!("db{db} {}: missing", show_short(key, 60))),
            Some((v, a)) if v != value || a != at => diffs.push(format!(
                "db{db} {}: got {} ({} bytes) PEXPIRETIME {a}, want {} ({} bytes) PEXPIRETIME {at}",
                show_short(key, 60),
                show_short(v, 40),
                v.len(),
                show_short(value, 40),
                value.len()
            )),
            Some(_) => {}
        }
    }
    for (db, key) in got.keys() {
        if !want.contains_key(&(*db, key.clone())) {
            diffs.push(format!("db{db} {}: not expected", show_short(key, 60)));
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// Copies `from` into a new directory (so that no server writes over it) and returns both.
fn copy_aside(from: &Path, label: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(label);
    let to = dir.path().join(DBFILE);
    fs::copy(from, &to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
    (dir, to)
}

/// The server's saved file, copied aside, passes redis-check-rdb, and redis-server loaded with it
/// answers `read` as the server did at the fork (`at_fork`); `what` names the data checked.
#[track_caller]
fn assert_file_holds(
    server: &Server,
    label: &str,
    read: impl Fn(&mut Conn) -> Vec<Frame>,
    at_fork: &[Frame],
    what: &str,
) {
    let (_copy, file) = copy_aside(&server.dir.join(DBFILE), label);
    check_rdb(&file);
    let (_redis, mut rc) = redis_with_file(&file);
    assert!(
        read(&mut rc) == at_fork,
        "the file does not hold {what} as they were at the fork"
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// SHUTDOWN NOSAVE: no reply, the connection closes and the process exits with status 0.
fn shutdown_nosave(server: &mut Server, conn: &mut Conn) {
    conn.send_cmd(&["SHUTDOWN", "NOSAVE"])
        .expect("sending SHUTDOWN NOSAVE");
    let got = conn.wait_closed(WAIT).expect("the connection to close");
    assert_eq!(show(&got), show(b""), "SHUTDOWN NOSAVE replied");
    let status = server.wait_exit(WAIT).expect("the server to exit");
    assert!(status.success(), "exit status {status}");
}

// ---------------------------------------------------------------------------------------------
// 1. Point in time
// ---------------------------------------------------------------------------------------------

#[test]
fn bgsave_is_a_point_in_time_snapshot_under_concurrent_writes() {
    const KEYS: usize = 500;
    const SAVES: usize = 10;
    const WRITERS: usize = 4;
    let _heavy = heavy();
    // 400 µs per key: each save lasts a quarter of a second or more while the writers go on.
    let server = Server::forkdb(&["--rdb-key-save-delay", "400"]);
    let mut conn = server.conn();
    fill(&mut conn, KEYS, key_n, |i| format!("{i:0100}").into_bytes());

    let writers = PairWriters::start(server.port, WRITERS, KEYS, false);

    let copies = TempDir::new("pit-copies");
    let saves = num(&info(&mut conn, "persistence"), "rdb_saves");
    let mut during = Vec::new();
    for i in 0..SAVES {
        conn.assert_cmd(&["SET", "marker", &i.to_string()], b"+OK\r\n");
        bgsave(&mut conn);
        let ops_at_fork = writers.ops();
        conn.assert_cmd(&["SET", "marker", &(i + 1000).to_string()], b"+OK\r\n");
        conn.assert_cmd(&["SET", "after", &i.to_string()], b"+OK\r\n");
        let p = wait_save_done(&mut conn);
        during.push(writers.ops() - ops_at_fork);
        assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok", "save {i}");
        assert_eq!(
            num(&p, "rdb_saves"),
            saves + i as u64 + 1,
            "save {i}: rdb_saves"
        );
        fs::copy(
            server.dir.join(DBFILE),
            copies.path().join(format!("save-{i}.rdb")),
        )
        .expect("copying dump.rdb aside");
    }
    let counts = writers.stop();
    eprintln!("writer ops: {counts:?}; writes while each save ran: {during:?}");
    assert!(
        during.iter().all(|&d| d > 0),
        "some save ran with no concurrent write: {during:?}"
    );

    let mut last_seen = [0u64; WRITERS];
    let mut last_sum = None;
    for i in 0..SAVES {
        let copy = copies.path().join(format!("save-{i}.rdb"));
        check_rdb(&copy);
        let (_redis, mut rc) = redis_with_file(&copy);
        rc.assert_cmd(&["GET", "marker"], &bulk(i.to_string()));
        let after = if i == 0 {
            b"$-1\r\n".to_vec()
        } else {
            bulk((i - 1).to_string())
        };
        rc.assert_cmd(&["GET", "after"], &after);
        let dbsize = int(rc.frame(&["DBSIZE"])) as usize;
        assert!(
            (KEYS + 1..=KEYS + 2 + 2 * WRITERS).contains(&dbsize),
            "save {i}: DBSIZE {dbsize}"
        );
        let sum = check_pairs(i, &mut last_seen, |k| match rc.frame(&["GET", k]) {
            Frame::Bulk(v) => Some(v),
            Frame::NullBulk => None,
            other => panic!("GET {k} gave {other:?}"),
        });
        if let Some(prev) = last_sum {
            assert!(
                sum > prev,
                "save {i} holds no write made after save {}",
                i - 1
            );
        }
        last_sum = Some(sum);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Interoperability with redis-server 7.0
// ---------------------------------------------------------------------------------------------

struct Item {
    db: u32,
    key: Vec<u8>,
    value: Vec<u8>,
    /// PEXPIREAT, or -1.
    at: i64,
}

fn interop_items() -> Vec<Item> {
    let soon = now_ms() + 3_600_000;
    let y2100 = 4_102_444_800_000;
    let mut items = Vec::new();
    let mut add = |db: u32, key: &[u8], value: &[u8], at: i64| {
        items.push(Item {
            db,
            key: key.to_vec(),
            value: value.to_vec(),
            at,
        })
    };
    // Integers around each integer encoding's limits, and strings that only look like integers.
    for v in [
        "0",
        "12",
        "-123",
        "127",
        "-128",
        "128",
        "32767",
        "-32768",
        "32768",
        "2147483647",
        "-2147483648",
        "2147483648",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "007",
        "+1",
        " 1",
        "1 ",
        "-0",
        "1.5",
        "0x10",
    ] {
        add(0, format!("int:{v}").as_bytes(), v.as_bytes(), -1);
    }
    add(0, b"empty", b"", -1);
    add(0, b"bin", b"a\0b\r\nc\r\n\xff\xfe\0", -1);
    add(0, b"bin\0key\r\n\xff", b"\r\n", -1);
    add(0, b"short:20", &[b'a'; 20], -1);
    add(0, b"lzf:21", &[b'a'; 21], -1);
    add(
        0,
        b"lzf:text",
        "the quick brown fox ".repeat(100).as_bytes(),
        -1,
    );
    add(
        0,
        format!("lzf:key:{}", "abc".repeat(200)).as_bytes(),
        b"long key",
        -1,
    );
    add(0, b"big:noise", &noise(1, 1 << 20), -1);
    add(
        0,
        b"big:lzf",
        "0123456789abcdef".repeat(65536).as_bytes(),
        -1,
    );
    add(0, b"ttl:str", b"hello", soon + 1);
    add(0, b"ttl:int", b"42", soon + 2);
    add(0, b"ttl:lzf", "xyz".repeat(1000).as_bytes(), soon + 3);
    add(0, b"ttl:empty", b"", soon + 4);
    add(0, b"ttl:2100", b"far", y2100);
    add(1, b"a", b"1", -1);
    add(1, b"ttl", b"in db 1", soon + 10);
    add(5, b"12345", b"integer key", -1);
    add(5, b"-1", b"negative integer key", soon + 20);
    add(5, b"x", &noise(2, 5000), -1);
    add(15, b"last", b"db", -1);
    add(15, b"ttl", &[0u8; 100], y2100 + 1);
    items
}

fn populate(conn: &mut Conn, items: &[Item]) {
    for it in items {
        conn.assert_cmd(&["SELECT", &it.db.to_string()], b"+OK\r\n");
        conn.assert_cmd(&[b"SET".as_slice(), &it.key, &it.value], b"+OK\r\n");
        if it.at >= 0 {
            conn.assert_cmd(
                &[
                    b"PEXPIREAT".as_slice(),
                    &it.key,
                    it.at.to_string().as_bytes(),
                ],
                b":1\r\n",
            );
        }
    }
    conn.assert_cmd(&["SELECT", "0"], b"+OK\r\n");
}

fn expected(items: &[Item]) -> Dataset {
    items
        .iter()
        .map(|it| ((it.db, it.key.clone()), (it.value.clone(), it.at)))
        .collect()
}

#[test]
fn forkdb_files_load_in_redis() {
    let items = interop_items();
    let want = expected(&items);
    let mut sizes = BTreeMap::new();
    let variants: [(&str, &[&str]); 3] = [
        ("default", &[]),
        ("rdbcompression no", &["--rdbcompression", "no"]),
        ("rdbchecksum no", &["--rdbchecksum", "no"]),
    ];
    for (label, opts) in variants {
        let server = Server::forkdb(opts);
        let mut conn = server.conn();
        populate(&mut conn, &items);
        assert_same_data(
            &format!("forkdb ({label}) itself"),
            &dump_all(&mut conn),
            &want,
        );
        // BGSAVE (the forked child writes) always; SAVE (the server itself) once.
        let hows: &[&str] = if label == "default" {
            &["BGSAVE", "SAVE"]
        } else {
            &["BGSAVE"]
        };
        for &how in hows {
            if how == "SAVE" {
                conn.assert_cmd(&["SAVE"], b"+OK\r\n");
            } else {
                bgsave_ok(&mut conn);
            }
            let (_dir, copy) = copy_aside(&server.dir.join(DBFILE), "interop");
            check_rdb(&copy);
            let bytes = fs::read(&copy).unwrap();
            let trailer = &bytes[bytes.len() - 8..];
            if label == "rdbchecksum no" {
                assert_eq!(trailer, [0u8; 8], "rdbchecksum no writes a zero checksum");
            } else {
                assert_ne!(trailer, [0u8; 8], "the file has no checksum");
            }
            let (_redis, mut rc) = redis_with_file(&copy);
            assert_same_data(
                &format!("redis-server loading forkdb's {how} file ({label})"),
                &dump_all(&mut rc),
                &want,
            );
            sizes.insert((label, how), bytes.len());
        }
    }
    let packed = sizes[&("default", "BGSAVE")];
    let unpacked = sizes[&("rdbcompression no", "BGSAVE")];
    assert!(
        unpacked > packed + (512 << 10),
        "rdbcompression no ({unpacked} bytes) is not much bigger than with LZF ({packed} bytes)"
    );
}

#[test]
fn redis_files_load_in_forkdb() {
    let items = interop_items();
    let want = expected(&items);
    let variants: [(&str, &[&str]); 3] = [
        ("default", &[]),
        ("rdbcompression no", &["--rdbcompression", "no"]),
        ("rdbchecksum no", &["--rdbchecksum", "no"]),
    ];
    for (label, opts) in variants {
        let redis = Server::redis(opts);
        let mut rc = redis.conn();
        populate(&mut rc, &items);
        rc.assert_cmd(&["SAVE"], b"+OK\r\n");
        let (dir, copy) = copy_aside(&redis.dir.join(DBFILE), "from-redis");
        let before = fs::read(&copy).unwrap();
        let server = Server::forkdb(&["--dir", path_str(dir.path())]);
        let mut conn = server.conn();
        assert_same_data(
            &format!("forkdb loading redis-server's file ({label})"),
            &dump_all(&mut conn),
            &want,
        );
        let p = info(&mut conn, "persistence");
        assert_eq!(
            num(&p, "rdb_last_load_keys_loaded"),
            items.len() as u64,
            "{label}"
        );
        assert_eq!(num(&p, "rdb_last_load_keys_expired"), 0, "{label}");
        assert_eq!(fs::read(&copy).unwrap(), before, "loading changed the file");
    }
}

#[test]
fn keys_already_expired_are_dropped_at_load() {
    let dir = TempDir::new("expired");
    let at = {
        let first = Server::forkdb(&["--dir", path_str(dir.path())]);
        let mut conn = first.conn();
        conn.assert_cmd(&["SET", "gone", "1", "PX", "1000"], b"+OK\r\n");
        conn.assert_cmd(&["SET", "stays", "2", "PX", "3600000"], b"+OK\r\n");
        conn.assert_cmd(&["SET", "plain", "3"], b"+OK\r\n");
        let at = int(conn.frame(&["PEXPIRETIME", "gone"]));
        conn.assert_cmd(&["SAVE"], b"+OK\r\n");
        // Still there after the save, so it was live when saved.
        conn.assert_cmd(&["GET", "gone"], &bulk("1"));
        at
    }; // stopped (no save points: nothing saved at exit)
    poll_until(WAIT, "the wall clock to pass the key's expiry", || {
        (now_ms() > at + 20).then_some(())
    });
    let second = Server::forkdb(&["--dir", path_str(dir.path())]);
    let mut conn = second.conn();
    conn.assert_cmd(&["DBSIZE"], b":2\r\n");
    conn.assert_cmd(&["GET", "gone"], b"$-1\r\n");
    conn.assert_cmd(&["GET", "stays"], &bulk("2"));
    conn.assert_cmd(&["GET", "plain"], &bulk("3"));
    let p = info(&mut conn, "persistence");
    assert_eq!(num(&p, "rdb_last_load_keys_expired"), 1);
    assert_eq!(num(&p, "rdb_last_load_keys_loaded"), 2);
}

// ---------------------------------------------------------------------------------------------
// 3. Faults
// ---------------------------------------------------------------------------------------------

#[test]
fn killed_child_leaves_the_old_file_and_fails_the_save() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    fill(&mut conn, 2000, key_n, |i| format!("old-{i}").into_bytes());
    conn.assert_cmd(&["SAVE"], b"+OK\r\n");
    let file = server.dir.join(DBFILE);
    let old = fs::read(&file).unwrap();
    let lastsave = int(conn.frame(&["LASTSAVE"]));
    fill(&mut conn, 2000, key_n, |i| format!("new-{i}").into_bytes());

    // 1 ms per key: the child would need 2 s; it is killed as soon as it writes.
    conn.assert_cmd(&["CONFIG", "SET", "rdb-key-save-delay", "1000"], b"+OK\r\n");
    bgsave(&mut conn);
    let (child, stat) = wait_snapshot_child(&server, &server.dir);
    signal_pid(child, stat, libc::SIGKILL);
    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "err", "{p:?}");
    assert_eq!(num(&p, "rdb_last_save_time"), lastsave as u64);
    wait_gone(child, stat, "the killed child to be reaped");
    assert_eq!(
        temp_files(&server.dir),
        Vec::<String>::new(),
        "temp file left"
    );
    assert!(fs::read(&file).unwrap() == old, "dump.rdb changed");
    assert_eq!(int(conn.frame(&["LASTSAVE"])), lastsave);
    // The server goes on serving, writes included (no save points, so no MISCONF).
    conn.assert_cmd(&["PING"], b"+PONG\r\n");
    conn.assert_cmd(&["GET", "k:7"], &bulk("new-7"));
    conn.assert_cmd(&["SET", "k:7", "newer"], b"+OK\r\n");

    conn.assert_cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"], b"+OK\r\n");
    bgsave_ok(&mut conn);
    assert!(
        fs::read(&file).unwrap() != old,
        "the next save wrote nothing"
    );
    check_rdb(&file);
    assert_eq!(temp_files(&server.dir), Vec::<String>::new());
}

#[test]
fn server_killed_mid_save_restarts_from_the_previous_file() {
    let dir = TempDir::new("crash");
    let file = dir.path().join(DBFILE);
    let old = {
        let mut server = Server::forkdb(&["--dir", path_str(dir.path())]);
        let mut conn = server.conn();
        fill(&mut conn, 2000, key_n, |i| format!("v1-{i}").into_bytes());
        conn.assert_cmd(&["SAVE"], b"+OK\r\n");
        let old = fs::read(&file).unwrap();
        fill(&mut conn, 2500, key_n, |i| format!("v2-{i}").into_bytes());
        conn.assert_cmd(&["CONFIG", "SET", "rdb-key-save-delay", "1000"], b"+OK\r\n");
        bgsave(&mut conn);
        let (child, stat) = wait_snapshot_child(&server, dir.path());
        // A crash: the server dies without a word, then its orphaned child (as when the whole
        // machine goes down; left alone, the child would finish and rename its file in place).
        server.signal(libc::SIGKILL);
        server
            .wait_exit(WAIT)
            .expect("the server to die of SIGKILL");
        // (A server may also make its child die with it: then there is nothing left to kill.)
        if proc_stat(child).is_some_and(|s| s.start_time == stat.start_time) {
            signal_pid(child, stat, libc::SIGKILL);
        }
        wait_gone(child, stat, "the orphaned child to die");
        old
    };
    assert!(fs::read(&file).unwrap() == old, "dump.rdb changed");
    let server = Server::forkdb(&["--dir", path_str(dir.path())]);
    let mut conn = server.conn();
    conn.assert_cmd(&["DBSIZE"], b":2000\r\n");
    conn.assert_cmd(&["GET", "k:1234"], &bulk("v1-1234"));
    conn.assert_cmd(&["GET", "k:2100"], b"$-1\r\n");
}

#[test]
fn corrupt_files_stop_the_start_and_are_left_untouched() {
    let good = {
        let server = Server::forkdb(&[]);
        let mut conn = server.conn();
        fill(&mut conn, 300, key_n, |i| {
            if i % 2 == 0 {
                format!("{i}:{}", "compressible ".repeat(10)).into_bytes()
            } else {
                noise(i as u64, 64)
            }
        });
        conn.assert_cmd(&["SAVE"], b"+OK\r\n");
        fs::read(server.dir.join(DBFILE)).unwrap()
    };
    let len = good.len();
    let mut flipped = good.clone();
    flipped[len / 2] ^= 0x5a;
    let mut bad_sum = good.clone();
    bad_sum[len - 1] ^= 0xff;
    let mut bad_magic = good.clone();
    bad_magic[..5].copy_from_slice(b"RADIS");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a byte flipped in the middle", flipped, ""),
        ("a bad checksum", bad_sum, "checksum"),
        ("cut in half", good[..len / 2].to_vec(), "end of file"),
        ("cut before EOF", good[..len - 9].to_vec(), "end of file"),
        ("bad magic", bad_magic, "magic"),
        ("empty", Vec::new(), "end of file"),
    ];
    let old_time = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for (what, bytes, problem) in cases {
        let dir = TempDir::new("corrupt");
        let path = dir.path().join(DBFILE);
        fs::write(&path, &bytes).unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(old_time))
            .unwrap();
        let text = start_expecting_failure(None, dir.path(), &[]);
        if is_forkdb() {
            let canonical = fs::canonicalize(&path).unwrap();
            assert!(
                text.contains(path_str(&path)) || text.contains(path_str(&canonical)),
                "{what}: the error does not name {}:\n{text}",
                path.display()
            );
            assert!(
                text.contains("offset"),
                "{what}: the error names no offset:\n{text}"
            );
            assert!(
                text.contains(problem),
                "{what}: the error does not say {problem:?}:\n{text}"
            );
        }
        assert!(
            fs::read(&path).unwrap() == bytes,
            "{what}: the file changed"
        );
        assert_eq!(
            fs::metadata(&path).unwrap().modified().unwrap(),
            old_time,
            "{what}: the file was rewritten"
        );
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(names, vec![DBFILE.to_string()], "{what}: files left behind");
    }
}

/// A snapshot that cannot fit under the file-size limit set on the server (the disk is "full").
/// Returns the server's connection with `rdb_last_bgsave_status:err` and the old file in place.
fn fail_a_save_on_a_full_disk(server: &Server, conn: &mut Conn) -> Vec<u8> {
    let file = server.dir.join(DBFILE);
    conn.assert_cmd(&["SET", "small", "before the disk filled up"], b"+OK\r\n");
    conn.assert_cmd(&["SAVE"], b"+OK\r\n");
    let old = fs::read(&file).unwrap();
    let lastsave = num(&info(conn, "persistence"), "rdb_last_save_time");
    // 256 KiB for files the server or its child write; the data set is about 1.2 MiB.
    server.set_file_size_limit(Some(256 << 10));
    fill(conn, 300, key_n, |i| noise(i as u64, 4096));
    bgsave(conn);
    let p = wait_save_done(conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "err", "{p:?}");
    assert_eq!(num(&p, "rdb_last_save_time"), lastsave);
    assert!(fs::read(&file).unwrap() == old, "dump.rdb changed");
    assert_eq!(
        temp_files(&server.dir),
        Vec::<String>::new(),
        "temp file left"
    );
    old
}

#[test]
fn full_disk_fails_the_save_and_keeps_the_old_file() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    let old = fail_a_save_on_a_full_disk(&server, &mut conn);
    conn.assert_cmd(&["PING"], b"+PONG\r\n");
    conn.assert_cmd(&["GET", "small"], &bulk("before the disk filled up"));
    conn.assert_cmd(&["SET", "more", "1"], b"+OK\r\n");
    // Room again: the next save succeeds.
    server.set_file_size_limit(None);
    bgsave_ok(&mut conn);
    let file = server.dir.join(DBFILE);
    let new = fs::read(&file).unwrap();
    assert!(
        new.len() > 1 << 20,
        "dump.rdb is {} bytes after the save (was {})",
        new.len(),
        old.len()
    );
    check_rdb(&file);
}

#[test]
fn fork_failure_is_an_error_and_the_server_keeps_serving() {
    if !is_forkdb() {
        eprintln!("skipped: DEBUG SET-FORK-ERROR is forkdb's own");
        return;
    }
    let server = Server::forkdb(&["--enable-debug-command", "yes"]);
    let mut conn = server.conn();
    conn.assert_cmd(&["SET", "k", "v"], b"+OK\r\n");
    let forks = num(&info(&mut conn, "stats"), "total_forks");
    conn.assert_cmd(&["DEBUG", "SET-FORK-ERROR", "12"], b"+OK\r\n");
    conn.assert_cmd(
        &["BGSAVE"],
        b"-ERR Can't save in background: fork: Cannot allocate memory (os error 12)\r\n",
    );
    let p = info(&mut conn, "persistence");
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "err", "{p:?}");
    assert_eq!(field(&p, "rdb_bgsave_in_progress"), "0");
    assert_eq!(num(&info(&mut conn, "stats"), "total_forks"), forks);
    conn.assert_cmd(&["PING"], b"+PONG\r\n");
    conn.assert_cmd(&["GET", "k"], &bulk("v"));
    conn.assert_cmd(&["SET", "k2", "v2"], b"+OK\r\n");
    assert!(!server.dir.join(DBFILE).exists());
    // The injected error was for one fork only.
    bgsave_ok(&mut conn);
    assert_eq!(num(&info(&mut conn, "stats"), "total_forks"), forks + 1);
    // DEBUG SET-FORK-ERROR 0 clears a pending one.
    conn.assert_cmd(&["DEBUG", "SET-FORK-ERROR", "12"], b"+OK\r\n");
    conn.assert_cmd(&["DEBUG", "SET-FORK-ERROR", "0"], b"+OK\r\n");
    bgsave_ok(&mut conn);
    assert_eq!(num(&info(&mut conn, "stats"), "total_forks"), forks + 2);
    check_rdb(&server.dir.join(DBFILE));
}

#[test]
fn misconf_after_a_failed_fork() {
    if !is_forkdb() {
        eprintln!("skipped: DEBUG SET-FORK-ERROR is forkdb's own");
        return;
    }
    let mut server = Server::forkdb(&["--save", "3600 1", "--enable-debug-command", "yes"]);
    let mut conn = server.conn();
    conn.assert_cmd(&["SET", "k", "v"], b"+OK\r\n");
    conn.assert_cmd(&["DEBUG", "SET-FORK-ERROR", "12"], b"+OK\r\n");
    let reply = conn.cmd(&["BGSAVE"]);
    assert!(reply.starts_with(b"-ERR "), "BGSAVE: {}", show(&reply));
    conn.assert_cmd(&["SET", "k", "w"], MISCONF);
    conn.assert_cmd(&["INCR", "n"], MISCONF);
    conn.assert_cmd(&["GET", "k"], &bulk("v"));
    conn.assert_cmd(&["DBSIZE"], b":1\r\n");
    bgsave_ok(&mut conn);
    conn.assert_cmd(&["SET", "k", "w"], b"+OK\r\n");
    shutdown_nosave(&mut server, &mut conn);
}

#[test]
fn misconf_after_a_save_fails_on_a_full_disk() {
    let mut server = Server::forkdb(&["--save", "3600 1"]);
    let mut conn = server.conn();
    fail_a_save_on_a_full_disk(&server, &mut conn);
    conn.assert_cmd(&["SET", "small", "x"], MISCONF);
    conn.assert_cmd(&["DEL", "small"], MISCONF);
    conn.assert_cmd(&["GET", "small"], &bulk("before the disk filled up"));
    conn.assert_cmd(&["EXISTS", "k:1"], b":1\r\n");
    // Without stop-writes-on-bgsave-error the failure does not stop writes.
    conn.assert_cmd(
        &["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"],
        b"+OK\r\n",
    );
    conn.assert_cmd(&["SET", "small", "x"], b"+OK\r\n");
    conn.assert_cmd(
        &["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"],
        b"+OK\r\n",
    );
    conn.assert_cmd(&["SET", "small", "y"], MISCONF);
    server.set_file_size_limit(None);
    bgsave_ok(&mut conn);
    conn.assert_cmd(&["SET", "small", "y"], b"+OK\r\n");
    shutdown_nosave(&mut server, &mut conn);
}

/// Redis 7.0 refuses PING too while writes are refused for a failed save (processCommand lets
/// the MISCONF check apply to write commands and to PING).
#[test]
fn ping_gets_misconf_like_redis_after_a_failed_save() {
    let mut server = Server::forkdb(&["--save", "3600 1"]);
    let mut conn = server.conn();
    fail_a_save_on_a_full_disk(&server, &mut conn);
    let ping = conn.cmd(&["PING"]);
    conn.assert_cmd(&["ECHO", "hi"], &bulk("hi"));
    // Recover before asserting, so that a failure does not leave a server that cannot save at
    // exit (it has a save point) under the file-size limit.
    server.set_file_size_limit(None);
    bgsave_ok(&mut conn);
    conn.assert_cmd(&["PING"], b"+PONG\r\n");
    shutdown_nosave(&mut server, &mut conn);
    assert_eq!(show(&ping), show(MISCONF), "PING after a failed save");
}

// ---------------------------------------------------------------------------------------------
// 4. INFO: copy-on-write and fork figures
// ---------------------------------------------------------------------------------------------

#[test]
fn info_reports_copy_on_write_during_a_save() {
    const KEYS: usize = 3000;
    const VALUE: usize = 4096;
    const WRITERS: usize = 2;
    let _heavy = heavy();
    // 3000 keys of 4 KiB (12 MiB) at 750 µs a key: the save lasts 2-3 s.
    let server = Server::forkdb(&["--rdb-key-save-delay", "750"]);
    let mut conn = server.conn();
    fill(&mut conn, KEYS, key_n, |i| noise(i as u64, VALUE));
    let forks = num(&info(&mut conn, "stats"), "total_forks");

    bgsave(&mut conn);
    let stats = info(&mut conn, "stats");
    assert!(num(&stats, "latest_fork_usec") > 0, "{stats:?}");
    assert_eq!(num(&stats, "total_forks"), forks + 1);

    // Writers overwrite the saved keys while the child writes them out.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (stop, port) = (stop.clone(), server.port);
            std::thread::spawn(move || {
                let values: Vec<Vec<u8>> = (0..8).map(|s| noise(1000 + s, VALUE)).collect();
                let mut c = Conn::connect(port).expect("writer connects");
                let deadline = Instant::now() + WRITER_LIMIT;
                let mut n = 0usize;
                while !stop.load(Relaxed) && Instant::now() < deadline {
                    let key = key_n((t + n * WRITERS) % KEYS);
                    let reply = c.cmd(&[b"SET".as_slice(), &key, &values[n % values.len()]]);
                    assert_eq!(reply, b"+OK\r\n", "{}", show(&reply));
                    n += 1;
                }
                n
            })
        })
        .collect();

    let mut samples = 0;
    let mut max_cow = 0u64;
    let mut max_peak = 0u64;
    let mut mid_progress = false;
    let started = Instant::now();
    let done = poll_until(SAVE_TIMEOUT, "the slowed save to end", || {
        let p = info(&mut conn, "persistence");
        if field(&p, "rdb_bgsave_in_progress") == "0" {
            return Some(p);
        }
        samples += 1;
        max_cow = max_cow.max(num(&p, "current_cow_size"));
        max_peak = max_peak.max(num(&p, "current_cow_peak"));
        assert!(
            num(&p, "current_cow_peak") >= num(&p, "current_cow_size"),
            "{p:?}"
        );
        let total = num(&p, "current_save_keys_total");
        let processed = num(&p, "current_save_keys_processed");
        assert_eq!(
            total, KEYS as u64,
            "current_save_keys_total during the save"
        );
        assert!(processed <= total, "{p:?}");
        let perc: f64 = field(&p, "current_fork_perc").parse().expect("a number");
        assert!((0.0..=100.0).contains(&perc), "{p:?}");
        if processed > 0 && processed < total {
            mid_progress = true;
        }
        None
    });
    let save_time = started.elapsed();
    stop.store(true, Relaxed);
    let counts: Vec<usize> = writers
        .into_iter()
        .map(|w| w.join().expect("writer thread"))
        .collect();
    let last_cow = num(&done, "rdb_last_cow_size");
    eprintln!(
        "save took {save_time:?}; {samples} samples; max current_cow_size {max_cow}, \
         max current_cow_peak {max_peak}, rdb_last_cow_size {last_cow}; writer SETs {counts:?}"
    );
    assert_eq!(field(&done, "rdb_last_bgsave_status"), "ok");
    assert!(samples >= 5, "only {samples} INFO samples during the save");
    assert!(mid_progress, "no sample showed the save part-way through");
    assert!(max_cow > 0, "current_cow_size stayed 0 during the save");
    assert!(
        last_cow >= max_cow,
        "rdb_last_cow_size {last_cow} < the largest current_cow_size seen {max_cow}"
    );
    // Each overwrite frees a 4 KiB value the child still reads, so the pages get copied.
    assert!(
        counts.iter().sum::<usize>() < 256 || last_cow >= 1 << 20,
        "rdb_last_cow_size {last_cow} after {counts:?} overwrites of 4 KiB values"
    );
    assert_eq!(num(&done, "current_cow_size"), 0, "after the save");
    assert_eq!(num(&done, "current_save_keys_total"), 0, "after the save");

    conn.assert_cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"], b"+OK\r\n");
    bgsave_ok(&mut conn);
    assert_eq!(num(&info(&mut conn, "stats"), "total_forks"), forks + 2);
}

/// A successful BGSAVE clears only the changes it saved: those made while it ran stay counted in
/// `rdb_changes_since_last_save`; a failed one clears nothing.
#[test]
fn changes_made_during_a_save_stay_counted() {
    let (server, mut conn) = slow_saver(&[]);
    assert_eq!(
        num(
            &info(&mut conn, "persistence"),
            "rdb_changes_since_last_save"
        ),
        500
    );
    bgsave(&mut conn);
    wait_snapshot_child(&server, &server.dir);
    for i in 0..7 {
        conn.assert_cmd(&["SET", &format!("during:{i}"), "x"], b"+OK\r\n");
    }
    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok");
    assert_eq!(num(&p, "rdb_changes_since_last_save"), 7, "{p:?}");
    assert_eq!(
        int(conn.frame(&["LASTSAVE"])) as u64,
        num(&p, "rdb_last_save_time")
    );
    // A killed save leaves the count alone.
    bgsave(&mut conn);
    let (child, stat) = wait_snapshot_child(&server, &server.dir);
    conn.assert_cmd(&["SET", "during:kill", "x"], b"+OK\r\n");
    signal_pid(child, stat, libc::SIGKILL);
    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "err");
    assert_eq!(num(&p, "rdb_changes_since_last_save"), 8, "{p:?}");
}

/// Redis 7.0 counts `rdb_saves` when a save starts (BGSAVE counts it before forking, SAVE before
/// writing), so a background save that is killed or fails later still counts.
#[test]
fn rdb_saves_counts_a_save_when_it_starts_like_redis() {
    let (server, mut conn) = slow_saver(&[]);
    let before = num(&info(&mut conn, "persistence"), "rdb_saves");
    bgsave(&mut conn);
    wait_snapshot_child(&server, &server.dir);
    let p = info(&mut conn, "persistence");
    assert_eq!(field(&p, "rdb_bgsave_in_progress"), "1");
    let during = num(&p, "rdb_saves");
    // FLUSHALL kills the child.
    conn.assert_cmd(&["FLUSHALL"], b"+OK\r\n");
    let after_kill = num(&wait_save_done(&mut conn), "rdb_saves");
    conn.assert_cmd(&["SAVE"], b"+OK\r\n");
    let after_save = num(&info(&mut conn, "persistence"), "rdb_saves");
    assert_eq!(
        (during, after_kill, after_save),
        (before + 1, before + 1, before + 2),
        "rdb_saves while a BGSAVE runs, after it was killed, after a SAVE (it was {before})"
    );
}

/// While a child lives, reads leave per-key access data alone (Redis's `lookupKey` rule), so a
/// read dirties no page the child shares: OBJECT FREQ (an LFU policy with `lfu-log-factor 0`,
/// where every access counts) stands still during the save and moves again after it. forkdb's
/// `snapshot-freeze-access no` turns the rule off, for measuring what it saves.
#[test]
fn reads_during_a_save_leave_access_data_alone() {
    let (server, mut conn) =
        slow_saver(&["--maxmemory-policy", "allkeys-lfu", "--lfu-log-factor", "0"]);
    let freq = |conn: &mut Conn| int(conn.frame(&["OBJECT", "FREQ", "k:1"]));
    let reads_during_a_save = |conn: &mut Conn| {
        bgsave(conn);
        wait_snapshot_child(&server, &server.dir);
        let before = freq(conn);
        for _ in 0..5 {
            assert_eq!(conn.frame(&["GET", "k:1"]), Frame::Bulk(b"v1".to_vec()));
        }
        let after = freq(conn);
        let p = info(conn, "persistence");
        assert_eq!(
            field(&p, "rdb_bgsave_in_progress"),
            "1",
            "the save ended before the reads did: the check proves nothing"
        );
        wait_save_done(conn);
        (before, after)
    };
    let (before, after) = reads_during_a_save(&mut conn);
    assert_eq!(after, before, "5 GETs during a save moved OBJECT FREQ");
    conn.frame(&["GET", "k:1"]);
    assert_eq!(freq(&mut conn), after + 1, "a GET after the save");

    if is_forkdb() {
        conn.assert_cmd(
            &["CONFIG", "SET", "snapshot-freeze-access", "no"],
            b"+OK\r\n",
        );
        let (before, after) = reads_during_a_save(&mut conn);
        assert_eq!(
            after,
            before + 5,
            "snapshot-freeze-access no: every GET counts"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. BGSAVE while one runs, BGSAVE CANCEL, SHUTDOWN and FLUSHALL during a save
// ---------------------------------------------------------------------------------------------

/// A server with 500 keys whose BGSAVE takes about a second (2 ms a key).
fn slow_saver(extra: &[&str]) -> (Server, Conn) {
    let mut args = vec!["--rdb-key-save-delay", "2000"];
    args.extend_from_slice(extra);
    let server = Server::forkdb(&args);
    let mut conn = server.conn();
    fill(&mut conn, 500, key_n, |i| format!("v{i}").into_bytes());
    (server, conn)
}

#[test]
fn bgsave_while_one_runs_is_refused() {
    let (server, mut conn) = slow_saver(&[]);
    bgsave(&mut conn);
    let (child, stat) = wait_snapshot_child(&server, &server.dir);
    let busy = b"-ERR Background save already in progress\r\n";
    conn.assert_cmd(&["BGSAVE"], busy);
    conn.assert_cmd(&["BGSAVE", "SCHEDULE"], busy);
    conn.assert_cmd(&["SAVE"], busy);
    assert_eq!(
        server.child_pids(),
        vec![child],
        "a second child was started"
    );
    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok");
    assert_eq!(num(&p, "rdb_saves"), 1);
    wait_gone(child, stat, "the child to be reaped");
    // With nothing running, SCHEDULE starts a save at once.
    conn.assert_cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"], b"+OK\r\n");
    conn.assert_cmd(&["BGSAVE", "SCHEDULE"], b"+Background saving started\r\n");
    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok");
    assert_eq!(num(&p, "rdb_saves"), 2);
    check_rdb(&server.dir.join(DBFILE));
}

#[test]
fn bgsave_cancel_kills_the_child() {
    if !is_forkdb() {
        eprintln!("skipped: BGSAVE CANCEL is not in redis-server 7.0");
        return;
    }
    let (server, mut conn) = slow_saver(&[]);
    conn.assert_cmd(
        &["BGSAVE", "CANCEL"],
        b"-ERR Background saving is currently not in progress or scheduled\r\n",
    );
    bgsave(&mut conn);
    let (child, stat) = wait_snapshot_child(&server, &server.dir);
    conn.assert_cmd(&["BGSAVE", "CANCEL"], b"+Background saving cancelled\r\n");
    let p = wait_save_done(&mut conn);
    assert_eq!(
        field(&p, "rdb_last_bgsave_status"),
        "ok",
        "a cancel is no failure"
    );
    wait_gone(child, stat, "the cancelled child to be gone");
    assert_eq!(
        temp_files(&server.dir),
        Vec::<String>::new(),
        "temp file left"
    );
    assert!(
        !server.dir.join(DBFILE).exists(),
        "a cancelled save wrote dump.rdb"
    );
    conn.assert_cmd(
        &["BGSAVE", "CANCEL"],
        b"-ERR Background saving is currently not in progress or scheduled\r\n",
    );
    conn.assert_cmd(&["SET", "after", "cancel"], b"+OK\r\n");
    conn.assert_cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"], b"+OK\r\n");
    bgsave_ok(&mut conn);
    check_rdb(&server.dir.join(DBFILE));
}

#[test]
fn shutdown_during_a_save_kills_the_child_and_exits() {
    let (mut server, mut conn) = slow_saver(&[]);
    bgsave(&mut conn);
    let (child, stat) = wait_snapshot_child(&server, &server.dir);
    conn.send_cmd(&["SHUTDOWN"]).expect("sending SHUTDOWN");
    let got = conn
        .wait_closed(WAIT)
        .expect("the server to close the connection");
    assert_eq!(show(&got), show(b""), "SHUTDOWN replied");
    let status = server.wait_exit(WAIT).expect("the server to exit");
    assert!(status.success(), "exit status {status}");
    wait_gone(child, stat, "the snapshot child to be killed");
    assert_eq!(
        temp_files(&server.dir),
        Vec::<String>::new(),
        "temp file left"
    );
    assert!(
        !server.dir.join(DBFILE).exists(),
        "no save point, yet a file"
    );
}

#[test]
fn flushall_during_a_save_kills_the_child() {
    let (server, mut conn) = slow_saver(&[]);
    bgsave(&mut conn);
    let (child, stat) = wait_snapshot_child(&server, &server.dir);
    conn.assert_cmd(&["FLUSHALL"], b"+OK\r\n");
    let p = wait_save_done(&mut conn);
    assert_eq!(
        field(&p, "rdb_last_bgsave_status"),
        "ok",
        "a kill by FLUSHALL is no failure"
    );
    wait_gone(child, stat, "the snapshot child to be killed");
    assert_eq!(
        temp_files(&server.dir),
        Vec::<String>::new(),
        "temp file left"
    );
    assert!(
        !server.dir.join(DBFILE).exists(),
        "no save point, yet a file"
    );
    conn.assert_cmd(&["DBSIZE"], b":0\r\n");
    conn.assert_cmd(&["SET", "k", "v"], b"+OK\r\n");
}

// ---------------------------------------------------------------------------------------------
// 6. Saving at exit
// ---------------------------------------------------------------------------------------------

#[test]
fn signals_and_shutdown_save_when_save_points_exist() {
    for how in ["SIGTERM", "SIGINT", "SHUTDOWN"] {
        let dir = TempDir::new("exit-save");
        let file = dir.path().join(DBFILE);
        {
            let mut server = Server::forkdb(&["--dir", path_str(dir.path()), "--save", "3600 1"]);
            let mut conn = server.conn();
            fill(&mut conn, 100, key_n, |i| format!("{how}-{i}").into_bytes());
            assert!(!file.exists(), "{how}: saved before exit");
            match how {
                "SIGTERM" => server.signal(libc::SIGTERM),
                "SIGINT" => server.signal(libc::SIGINT),
                _ => {
                    conn.send_cmd(&["SHUTDOWN"]).expect("sending SHUTDOWN");
                    conn.wait_closed(WAIT).expect("the connection to close");
                }
            }
            let status = server.wait_exit(WAIT).expect("the server to exit");
            assert!(status.success(), "{how}: exit status {status}");
        }
        assert!(file.exists(), "{how}: no dump.rdb at exit");
        check_rdb(&file);
        let server = Server::forkdb(&["--dir", path_str(dir.path())]);
        let mut conn = server.conn();
        conn.assert_cmd(&["DBSIZE"], b":100\r\n");
        conn.assert_cmd(&["GET", "k:42"], &bulk(format!("{how}-42")));
    }
}

#[test]
fn shutdown_nosave_writes_nothing() {
    let dir = TempDir::new("nosave");
    let mut server = Server::forkdb(&["--dir", path_str(dir.path()), "--save", "3600 1"]);
    let mut conn = server.conn();
    fill(&mut conn, 100, key_n, |i| format!("v{i}").into_bytes());
    shutdown_nosave(&mut server, &mut conn);
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(names, Vec::<String>::new(), "SHUTDOWN NOSAVE left files");
}

/// FLUSHALL adds the keys it dropped to `rdb_changes_since_last_save`, and nothing more, as
/// redis-server 7.0 does (an empty server stays at 0; save points reset the count by saving).
#[test]
fn flushall_counts_the_keys_it_dropped_like_redis() {
    for kind in [Kind::Redis, Kind::Forkdb] {
        for (save, want) in [("", [3, 6, 6]), ("3600 1", [3, 0, 0])] {
            let server = Server::start(kind, &["--save", save]);
            let mut conn = server.conn();
            conn.assert_cmd(&["MSET", "a", "1", "b", "2", "c", "3"], b"+OK\r\n");
            let mut got = [0; 3];
            got[0] = num(
                &info(&mut conn, "persistence"),
                "rdb_changes_since_last_save",
            );
            conn.assert_cmd(&["FLUSHALL"], b"+OK\r\n");
            got[1] = num(
                &info(&mut conn, "persistence"),
                "rdb_changes_since_last_save",
            );
            conn.assert_cmd(&["FLUSHALL"], b"+OK\r\n");
            got[2] = num(
                &info(&mut conn, "persistence"),
                "rdb_changes_since_last_save",
            );
            assert_eq!(got, want, "{} with save {save:?}", kind.name());
        }
    }
}

/// Small lists and sorted sets move to new memory on their first write during a fork save
/// (so that the write copies no page the child shares), and a big list is changed in place:
/// either way the file holds every container as it was at the fork (checked by redis-server
/// 7.0 loading it), and the server holds every write, including the second write to a moved
/// container.
#[test]
fn containers_written_during_a_save_are_in_the_file_as_at_the_fork() {
    const N: usize = 20;
    // 20 ms a key: the save of 2N + 1 keys takes about 0.8 s, the writes a few ms.
    let server = Server::forkdb(&["--rdb-key-save-delay", "20000"]);
    let mut conn = server.conn();
    let items: Vec<String> = (0..100).map(|j| format!("item-{j:03}-0123456")).collect();
    for i in 0..N {
        let l = format!("l:{i}");
        let mut rpush = vec!["RPUSH", l.as_str()];
        rpush.extend(items.iter().map(String::as_str));
        assert_eq!(int(conn.frame(&rpush)), 100);
        let z = format!("z:{i}");
        let scores: Vec<String> = (0..100).map(|j| (j * 10).to_string()).collect();
        let mut zadd = vec!["ZADD", z.as_str()];
        for (s, m) in scores.iter().zip(&items) {
            zadd.extend([s.as_str(), m.as_str()]);
        }
        assert_eq!(int(conn.frame(&zadd)), 100);
    }
    // 20 000 bytes of elements: over the 8 KiB under which a list moves.
    let mut rpush = vec!["RPUSH", "big"];
    let many: Vec<String> = (0..1000).map(|j| format!("big-{j:04}-0123456")).collect();
    rpush.extend(many.iter().map(String::as_str));
    assert_eq!(int(conn.frame(&rpush)), 1000);
    let snapshot = |conn: &mut Conn| -> Vec<Frame> {
        let mut out = vec![conn.frame(&["LRANGE", "big", "0", "-1"])];
        for i in 0..N {
            out.push(conn.frame(&["LRANGE", &format!("l:{i}"), "0", "-1"]));
            out.push(conn.frame(&["ZRANGE", &format!("z:{i}"), "0", "-1", "WITHSCORES"]));
        }
        out
    };
    let at_fork = snapshot(&mut conn);

    bgsave(&mut conn);
    wait_snapshot_child(&server, &server.dir);
    for i in 0..N {
        let (l, z) = (format!("l:{i}"), format!("z:{i}"));
        assert_eq!(int(conn.frame(&["LPUSH", &l, "new-1"])), 101);
        assert_eq!(int(conn.frame(&["LPUSH", &l, "new-2"])), 102);
        conn.assert_cmd(&["RPOP", &l], &bulk(&items[99]));
        conn.assert_cmd(&["ZADD", &z, "INCR", "5", &items[0]], &bulk("5"));
        assert_eq!(int(conn.frame(&["ZREM", &z, &items[1]])), 1);
        assert_eq!(int(conn.frame(&["ZADD", &z, "7", "new-member"])), 1);
    }
    assert_eq!(int(conn.frame(&["LPUSH", "big", "new"])), 1001);
    let p = info(&mut conn, "persistence");
    assert_eq!(
        field(&p, "rdb_bgsave_in_progress"),
        "1",
        "the writes were made during the save"
    );
    // The server holds every write.
    for i in 0..N {
        let (l, z) = (format!("l:{i}"), format!("z:{i}"));
        let mut want = vec![bulk("new-2"), bulk("new-1")];
        want.extend(items[..99].iter().map(bulk));
        let Frame::Array(got) = conn.frame(&["LRANGE", &l, "0", "-1"]) else {
            panic!("LRANGE {l} is not an array");
        };
        let got: Vec<Vec<u8>> = got.iter().map(Frame::encode).collect();
        assert_eq!(got, want, "{l} after the writes");
        conn.assert_cmd(&["ZSCORE", &z, &items[0]], &bulk("5"));
        conn.assert_cmd(&["ZSCORE", &z, &items[1]], b"$-1\r\n");
        conn.assert_cmd(&["ZSCORE", &z, "new-member"], &bulk("7"));
        assert_eq!(int(conn.frame(&["ZCARD", &z])), 100);
    }
    conn.assert_cmd(&["LINDEX", "big", "0"], &bulk("new"));

    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok", "{p:?}");
    assert_file_holds(
        &server,
        "moved-containers",
        snapshot,
        &at_fork,
        "the containers",
    );
}

/// Small hashes and intsets written during a save are forwarded to copies (`types::forward`):
/// the file holds them as at the fork, the server every write, before and after the save ends
/// (when each handle takes its copy back). The first 255 writes of a save go in place while the
/// server measures their rate (`types::FORWARD_RATE_WINDOW`), so there are 500, paced well under
/// the 10 000 a second that stop forwarding.
#[test]
fn hashes_and_intsets_written_during_a_save_are_in_the_file_as_at_the_fork() {
    const N: usize = 100;
    // 10 ms a key: the save of 2N keys takes about 2 s, the writes well under 1 s.
    let server = Server::forkdb(&["--rdb-key-save-delay", "10000"]);
    let mut conn = server.conn();
    for i in 0..N {
        let h = format!("h:{i}");
        let mut hset = vec!["HSET".to_owned(), h];
        for j in 0..10 {
            hset.extend([format!("f{j}"), format!("value-{i:03}-{j:05}")]);
        }
        let hset: Vec<&str> = hset.iter().map(String::as_str).collect();
        assert_eq!(int(conn.frame(&hset)), 10);
        let s = format!("s:{i}");
        let members: Vec<String> = (0..50).map(|j| (2 * j).to_string()).collect();
        let mut sadd = vec!["SADD", s.as_str()];
        sadd.extend(members.iter().map(String::as_str));
        assert_eq!(int(conn.frame(&sadd)), 50);
    }
    let snapshot = |conn: &mut Conn| -> Vec<Frame> {
        let mut out = Vec::new();
        for i in 0..N {
            out.push(conn.frame(&["HGETALL", &format!("h:{i}")]));
            out.push(conn.frame(&["SMEMBERS", &format!("s:{i}")]));
            out.push(conn.frame(&["OBJECT", "ENCODING", &format!("h:{i}")]));
            out.push(conn.frame(&["OBJECT", "ENCODING", &format!("s:{i}")]));
        }
        out
    };
    let at_fork = snapshot(&mut conn);
    assert_eq!(at_fork[2], Frame::Bulk(b"listpack".to_vec()));
    assert_eq!(at_fork[3], Frame::Bulk(b"intset".to_vec()));

    bgsave(&mut conn);
    wait_snapshot_child(&server, &server.dir);
    for i in 0..N {
        let (h, s) = (format!("h:{i}"), format!("s:{i}"));
        assert_eq!(
            int(conn.frame(&["HSET", &h, "f1", "changed", "new", "x"])),
            1
        );
        assert_eq!(int(conn.frame(&["HDEL", &h, "f2"])), 1);
        assert_eq!(int(conn.frame(&["HINCRBY", &h, "n", "5"])), 5);
        assert_eq!(int(conn.frame(&["SREM", &s, "4", "5"])), 1);
        assert_eq!(int(conn.frame(&["SADD", &s, "7", "8"])), 1);
        // Five writes a millisecond at most (a pace, not a wait for anything).
        std::thread::sleep(Duration::from_millis(1));
    }
    let p = info(&mut conn, "persistence");
    assert_eq!(
        field(&p, "rdb_bgsave_in_progress"),
        "1",
        "the writes were made during the save"
    );
    let check_written = |conn: &mut Conn, when: &str| {
        for i in 0..N {
            let (h, s) = (format!("h:{i}"), format!("s:{i}"));
            conn.assert_cmd(&["HGET", &h, "f1"], &bulk("changed"));
            conn.assert_cmd(&["HGET", &h, "f2"], b"$-1\r\n");
            conn.assert_cmd(&["HGET", &h, "f3"], &bulk(format!("value-{i:03}-00003")));
            conn.assert_cmd(&["HGET", &h, "n"], &bulk("5"));
            assert_eq!(int(conn.frame(&["HLEN", &h])), 11, "{h} {when}");
            assert_eq!(int(conn.frame(&["SISMEMBER", &s, "4"])), 0, "{s} {when}");
            assert_eq!(int(conn.frame(&["SISMEMBER", &s, "7"])), 1, "{s} {when}");
            assert_eq!(int(conn.frame(&["SISMEMBER", &s, "6"])), 1, "{s} {when}");
            assert_eq!(int(conn.frame(&["SCARD", &s])), 50, "{s} {when}");
        }
    };
    check_written(&mut conn, "during the save");

    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok", "{p:?}");
    check_written(&mut conn, "after the save");
    // And they still take writes.
    assert_eq!(int(conn.frame(&["HSET", "h:0", "after", "1"])), 1);
    assert_eq!(int(conn.frame(&["SADD", "s:0", "1001"])), 1);
    assert_eq!(int(conn.frame(&["HLEN", "h:0"])), 12);
    assert_eq!(int(conn.frame(&["SCARD", "s:0"])), 51);

    assert_file_holds(
        &server,
        "forwarded-containers",
        snapshot,
        &at_fork,
        "the hashes and sets",
    );
}
