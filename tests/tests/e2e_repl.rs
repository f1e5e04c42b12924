//! Replication with real Redis peers, forkdb as the master: `redis-cli --rdb` and
//! `redis-cli --replica` against forkdb, a real redis-server 7.0 replica (`--replicaof`) that
//! syncs, follows writes made during and after the sync, resyncs partially from the backlog
//! after its link is killed, and is counted by WAIT; and the faults: a replica that goes during
//! the transfer, a replica too slow for its output buffer limit.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

use forkdb_tests::server::{
    proc_alive, redis_check_rdb_bin, redis_cli_bin, run_with_deadline, TempDir,
};
use forkdb_tests::snapshot::{assert_same, bulks, text, Dump};
use forkdb_tests::{poll_until, Conn, Frame, Server};

const WAIT: Duration = Duration::from_secs(30);

/// Runs each command, asserting none fails.
fn run(conn: &mut Conn, cmds: &[Vec<String>]) {
    for c in cmds {
        let reply = conn.frame(c);
        assert!(!matches!(reply, Frame::Error(_)), "{c:?} failed: {reply:?}");
    }
}

fn c(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Every type, small and large encodings, TTLs, in databases 0 and 3; `tag` names the keys.
fn dataset(tag: &str) -> Vec<Vec<String>> {
    let k = |name: &str| format!("{tag}:{name}");
    let mut cmds = vec![
        c(&["SELECT", "0"]),
        c(&["SET", &k("str"), "hello"]),
        c(&["SET", &k("int"), "12345"]),
        c(&["SET", &k("ttl"), "v", "EX", "5000"]),
        c(&["HSET", &k("hash"), "a", "1", "b", "two"]),
        c(&["SADD", &k("intset"), "1", "2", "3"]),
        c(&["SADD", &k("set"), "x", "y", "z"]),
        c(&["ZADD", &k("zset"), "1", "a", "2.5", "b"]),
        c(&["RPUSH", &k("list"), "a", "b", "c"]),
        c(&["PEXPIRE", &k("list"), "9000000"]),
    ];
    let mut big_hash = c(&["HSET", &k("bighash")]);
    let mut big_set = c(&["SADD", &k("bigset")]);
    let mut big_zset = c(&["ZADD", &k("bigzset")]);
    let mut big_list = c(&["RPUSH", &k("biglist")]);
    for i in 0..300 {
        big_hash.extend([format!("f{i}"), format!("v{i}")]);
        big_set.push(format!("m{i}"));
        big_zset.extend([i.to_string(), format!("m{i}")]);
        big_list.push(format!("e{i}"));
    }
    cmds.extend([big_hash, big_set, big_zset, big_list]);
    cmds.extend([
        c(&["SELECT", "3"]),
        c(&["SET", &k("db3"), "three", "PX", "7000000"]),
        c(&["HSET", &k("db3hash"), "f", "v"]),
        c(&["SELECT", "0"]),
    ]);
    cmds
}

/// Writes whose replay on a replica gives the same data only as Redis rewrites them: relative
/// TTLs, random pops, float sums, MULTI, blocking pops served at once.
fn tricky_writes(tag: &str) -> Vec<Vec<String>> {
    let k = |name: &str| format!("{tag}:{name}");
    vec![
        c(&["SELECT", "0"]),
        c(&["SET", &k("ex"), "1", "EX", "1000"]),
        c(&["SETEX", &k("setex"), "1000", "v"]),
        c(&["SET", &k("exp"), "v"]),
        c(&["EXPIRE", &k("exp"), "2000"]),
        c(&["INCRBYFLOAT", &k("float"), "1.1"]),
        c(&["INCRBYFLOAT", &k("float"), "2.2"]),
        c(&["HINCRBYFLOAT", &k("hf"), "f", "0.5"]),
        c(&["SADD", &k("pop"), "a", "b", "c", "d", "e", "f"]),
        c(&["SPOP", &k("pop")]),
        c(&["SPOP", &k("pop"), "2"]),
        c(&["RPUSH", &k("bl"), "1", "2", "3"]),
        c(&["BLPOP", &k("bl"), "0"]),
        c(&["ZADD", &k("bz"), "1", "a", "2", "b"]),
        c(&["BZPOPMAX", &k("bz"), "0"]),
        c(&["LMPOP", "1", &k("bl"), "RIGHT", "COUNT", "1"]),
        c(&["MULTI"]),
        c(&["INCR", &k("m1")]),
        c(&["SELECT", "3"]),
        c(&["LPUSH", &k("m2"), "x"]),
        c(&["EXEC"]),
        c(&["SELECT", "0"]),
        c(&["GETEX", &k("str"), "PX", "300000"]),
        c(&["DEL", &k("int")]),
    ]
}

/// Every key of databases 0 and 3 (where the data sets write): type, encoding, content, TTL.
fn dump(conn: &mut Conn) -> Dump {
    forkdb_tests::snapshot::dump(conn, [0, 3])
}

/// The value of `field` in INFO `section`.
fn info_field(conn: &mut Conn, section: &str, field: &str) -> Option<String> {
    let info = text(conn.frame(&["INFO", section]));
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::to_string)
}

fn wait_link_up(replica: &mut Conn) {
    poll_until(WAIT, "master_link_status:up", || {
        (info_field(replica, "replication", "master_link_status").as_deref() == Some("up"))
            .then_some(())
    });
}

/// Waits until the replica has processed everything the master has fed so far.
fn wait_caught_up(master: &mut Conn, replica: &mut Conn) {
    poll_until(WAIT, "the replica to reach the master's offset", || {
        let m = info_field(master, "replication", "master_repl_offset")?;
        let r = info_field(replica, "replication", "slave_repl_offset")?;
        (m == r).then_some(())
    });
}

/// Polls `f` every 10 ms until it is true or `timeout` passes; returns the last answer (the
/// caller asserts, after cleaning up what it started).
fn poll_until_or_deadline(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The master's settings for a disk-based full sync, and for a diskless one (no delay, so a
/// test does not wait Redis's default 5 s for more replicas).
const DISK: &[&str] = &["--repl-diskless-sync", "no"];
const DISKLESS: &[&str] = &[
    "--repl-diskless-sync",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
];

/// What a redis-server 7.0 replica logs for the transfer it received: an `$EOF:` stream
/// (diskless master) or `$<len>` (disk).
const EOF_TRANSFER_LINE: &str =
    "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk";

#[track_caller]
fn assert_transfer_kind(replica: &Server, diskless: bool) {
    let log = replica.log();
    if diskless {
        assert!(log.contains(EOF_TRANSFER_LINE), "{log}");
    } else {
        assert!(
            !log.contains(EOF_TRANSFER_LINE) && log.contains("bytes from master to disk"),
            "{log}"
        );
    }
}

/// `args` and `more`, for `Server::forkdb`.
fn with<'a>(args: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    args.iter().chain(more).copied().collect()
}

fn check_rdb(path: &Path) -> String {
    let mut cmd = Command::new(redis_check_rdb_bin());
    cmd.arg(path);
    let out = run_with_deadline(cmd, None, WAIT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "redis-check-rdb {}: {stdout}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// redis-cli --rdb announces `capa eof`: a diskless master streams it the snapshot.
#[test]
fn redis_cli_rdb_gets_a_snapshot_redis_loads() {
    cli_rdb(DISK);
    cli_rdb(DISKLESS);
}

fn cli_rdb(mode: &[&str]) {
    let master = Server::forkdb(mode);
    let mut conn = master.conn();
    run(&mut conn, &dataset("d"));
    let want = dump(&mut conn);

    let dir = TempDir::new("repl-cli-rdb");
    let file = dir.path().join("dump.rdb");
    let mut cmd = Command::new(redis_cli_bin());
    cmd.args(["-h", "127.0.0.1", "-p", &master.port.to_string(), "--rdb"])
        .arg(&file);
    let out = run_with_deadline(cmd, None, WAIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "redis-cli --rdb: {stderr}");
    assert!(
        stderr.contains("Transfer finished with success"),
        "{stderr}"
    );
    let report = check_rdb(&file);
    assert!(
        report.contains(&format!("{} keys read", want.len())),
        "{report}"
    );

    // The file holds the data: redis-server loads it with the same content and TTLs.
    let redis = Server::redis(&["--dir", dir.path().to_str().expect("utf-8")]);
    let mut rc = redis.conn();
    poll_until(WAIT, "the load", || {
        (info_field(&mut rc, "persistence", "loading").as_deref() == Some("0")).then_some(())
    });
    assert_same(
        "redis-server loading redis-cli --rdb's file",
        &dump(&mut rc),
        &want,
    );
    // rdb-only: the connection was not kept as a replica.
    assert_eq!(
        info_field(&mut conn, "replication", "connected_slaves").as_deref(),
        Some("0")
    );
    let target = if mode == DISKLESS {
        "replicas sockets"
    } else {
        "disk"
    };
    let log = master.log();
    assert!(
        log.contains(&format!("Starting BGSAVE for SYNC with target: {target}")),
        "{log}"
    );
}

#[test]
fn redis_replica_syncs_follows_and_resyncs_partially() {
    syncs_follows_and_resyncs_partially(DISK);
}

/// The same with a diskless master: the fork child writes into a pipe the master relays.
#[test]
fn redis_replica_syncs_diskless_follows_and_resyncs_partially() {
    syncs_follows_and_resyncs_partially(DISKLESS);
}

fn syncs_follows_and_resyncs_partially(mode: &[&str]) {
    let master = Server::forkdb(mode);
    let mut mc = master.conn();
    run(&mut mc, &dataset("before"));
    // A slow child (100 ms per key, 1.4 s in all): the writes below land while it writes.
    run(
        &mut mc,
        &[c(&["CONFIG", "SET", "rdb-key-save-delay", "100000"])],
    );

    let replica = Server::redis(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut rc = replica.conn();
    poll_until(WAIT, "the sync's snapshot to start", || {
        (info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref() == Some("1"))
            .then_some(())
    });
    run(&mut mc, &dataset("during"));
    run(&mut mc, &tricky_writes("during"));
    assert_eq!(
        info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref(),
        Some("1"),
        "the writes were meant to land during the snapshot"
    );
    let slave0 = info_field(&mut mc, "replication", "slave0").unwrap_or_default();
    assert!(slave0.contains("state=wait_bgsave"), "{slave0}");
    run(&mut mc, &[c(&["CONFIG", "SET", "rdb-key-save-delay", "0"])]);

    wait_link_up(&mut rc);
    run(&mut mc, &dataset("after"));
    run(&mut mc, &tricky_writes("after"));
    run(
        &mut mc,
        &[c(&["FLUSHDB"]), c(&["SELECT", "3"]), c(&["SET", "x", "y"])],
    );
    run(&mut mc, &dataset("after-flush"));

    // An expiry on the master reaches the replica as a DEL: its DBSIZE (which counts keys
    // that are logically expired but not deleted) drops.
    run(&mut mc, &[c(&["SET", "short", "v", "PX", "300"])]);
    wait_caught_up(&mut mc, &mut rc);
    let size_with = text(rc.frame(&["DBSIZE"]));
    // Not synchronisation: the key's time must pass on the master's clock.
    std::thread::sleep(Duration::from_millis(350));
    let gone = mc.frame(&["GET", "short"]);
    assert!(matches!(gone, Frame::NullBulk | Frame::Null), "{gone:?}");
    wait_caught_up(&mut mc, &mut rc);
    let size_without = text(rc.frame(&["DBSIZE"]));
    assert_eq!(
        size_without.parse::<i64>().unwrap() + 1,
        size_with.parse::<i64>().unwrap(),
        "the expired key's DEL"
    );

    assert_same("the replica after the sync", &dump(&mut rc), &dump(&mut mc));
    let slave0 = info_field(&mut mc, "replication", "slave0").unwrap_or_default();
    assert!(slave0.contains("state=online"), "{slave0}");
    assert!(
        slave0.contains(&format!("port={}", replica.port)),
        "{slave0}"
    );
    // WAIT counts it.
    run(&mut mc, &[c(&["SET", "w", "1"])]);
    assert_eq!(mc.frame(&["WAIT", "1", "5000"]), Frame::Integer(1));
    assert_eq!(mc.frame(&["WAIT", "2", "100"]), Frame::Integer(1));
    // min-replicas-to-write: one good replica is enough for 1, not for 2.
    run(
        &mut mc,
        &[c(&["CONFIG", "SET", "min-replicas-to-write", "2"])],
    );
    assert_eq!(
        mc.frame(&["SET", "w", "2"]),
        Frame::Error("NOREPLICAS Not enough good replicas to write.".into())
    );
    run(
        &mut mc,
        &[c(&["CONFIG", "SET", "min-replicas-to-write", "1"])],
    );
    assert_eq!(mc.frame(&["SET", "w", "3"]), Frame::Simple("OK".into()));
    run(
        &mut mc,
        &[c(&["CONFIG", "SET", "min-replicas-to-write", "0"])],
    );
    match mc.frame(&["ROLE"]) {
        Frame::Array(v) => {
            assert_eq!(v[0], Frame::Bulk(b"master".to_vec()));
            assert!(matches!(&v[2], Frame::Array(r) if r.len() == 1), "{v:?}");
        }
        other => panic!("ROLE: {other:?}"),
    }

    // The link dies; the replica comes back with PSYNC and gets the backlog.
    assert_eq!(
        info_field(&mut mc, "stats", "sync_full").as_deref(),
        Some("1")
    );
    assert_eq!(
        rc.frame(&["CLIENT", "KILL", "TYPE", "master"]),
        Frame::Integer(1)
    );
    run(&mut mc, &dataset("while-away"));
    run(&mut mc, &tricky_writes("while-away"));
    wait_link_up(&mut rc);
    wait_caught_up(&mut mc, &mut rc);
    assert_same(
        "the replica after the partial resync",
        &dump(&mut rc),
        &dump(&mut mc),
    );
    assert_eq!(
        info_field(&mut mc, "stats", "sync_partial_ok").as_deref(),
        Some("1")
    );
    assert_eq!(
        info_field(&mut mc, "stats", "sync_full").as_deref(),
        Some("1"),
        "no second full sync"
    );
    assert!(replica
        .log()
        .contains("Successful partial resynchronization with master"));
    assert_transfer_kind(&replica, mode == DISKLESS);
}

/// A full sync from a forkless snapshot (`bgsave-default-method forkless`): the writer thread's
/// file is what the replica loads, and the writes made while the walk went on reach it through
/// the stream, not twice and not missing.
#[test]
fn redis_replica_syncs_from_a_forkless_snapshot() {
    forkless_sync(DISK);
}

/// Diskless with the forkless method: the writer thread feeds the pipe the master relays.
#[test]
fn redis_replica_syncs_diskless_from_a_forkless_snapshot() {
    forkless_sync(DISKLESS);
}

fn forkless_sync(mode: &[&str]) {
    let master = Server::forkdb(&with(mode, &["--bgsave-default-method", "forkless"]));
    let mut mc = master.conn();
    run(&mut mc, &dataset("before"));
    // A slow walk (50 ms per key): the writes below land while it goes on.
    run(
        &mut mc,
        &[c(&["CONFIG", "SET", "rdb-key-save-delay", "50000"])],
    );
    let replica = Server::redis(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut rc = replica.conn();
    poll_until(WAIT, "the sync's snapshot to start", || {
        (info_field(&mut mc, "persistence", "rdb_current_bgsave_method").as_deref()
            == Some("forkless"))
        .then_some(())
    });
    run(&mut mc, &dataset("before"));
    run(&mut mc, &tricky_writes("before"));
    run(&mut mc, &dataset("during"));
    assert_eq!(
        info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref(),
        Some("1"),
        "the writes were meant to land during the snapshot"
    );
    run(&mut mc, &[c(&["CONFIG", "SET", "rdb-key-save-delay", "0"])]);
    wait_link_up(&mut rc);
    run(&mut mc, &dataset("after"));
    wait_caught_up(&mut mc, &mut rc);
    assert_same(
        "the replica after a forkless sync",
        &dump(&mut rc),
        &dump(&mut mc),
    );
    assert_eq!(
        info_field(&mut mc, "persistence", "rdb_last_bgsave_method").as_deref(),
        Some("forkless")
    );
    assert_transfer_kind(&replica, mode == DISKLESS);
}

/// The stream as redis-cli --replica prints it: SET EX rewritten to SET PXAT, SPOP to SREM,
/// MULTI/EXEC around a transaction, SELECT when the database changes. (The master's PINGs
/// may follow.)
#[test]
fn redis_cli_replica_prints_the_rewritten_stream() {
    let master = Server::forkdb(&[]);
    let mut mc = master.conn();
    // redis-cli --replica runs until killed: its output goes to a file, read as it grows, and
    // the process is killed (by its pid) at the end.
    let dir = TempDir::new("repl-cli-replica");
    let out_path = dir.path().join("stream.txt");
    let out_file = fs::File::create(&out_path).expect("create the output file");
    let mut cli = Command::new(redis_cli_bin())
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &master.port.to_string(),
            "--replica",
        ])
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-cli --replica");
    poll_until(WAIT, "redis-cli to attach", || {
        (info_field(&mut mc, "replication", "connected_slaves").as_deref() == Some("1"))
            .then_some(())
    });
    run(
        &mut mc,
        &[
            c(&["SET", "k", "v", "EX", "100"]),
            // A PXAT given in lower case reaches the stream as `PXAT`, as 7.0.15's.
            c(&["SET", "k2", "v", "pxat", "4102444800000"]),
            c(&["SADD", "s", "only"]),
            c(&["SPOP", "s"]),
            c(&["MULTI"]),
            c(&["SET", "a", "1"]),
            c(&["SELECT", "2"]),
            c(&["SET", "b", "2"]),
            c(&["EXEC"]),
        ],
    );
    run(&mut mc, &[c(&["SELECT", "0"])]);
    let expire = match mc.frame(&["PEXPIRETIME", "k"]) {
        Frame::Integer(n) => n,
        other => panic!("{other:?}"),
    };
    let want = format!(
        "\"SELECT\",\"0\"\n\"SET\",\"k\",\"v\",\"PXAT\",\"{expire}\"\n\"SET\",\"k2\",\"v\",\"PXAT\",\"4102444800000\"\n\"SADD\",\"s\",\"only\"\n\"SREM\",\"s\",\"only\"\n\"MULTI\"\n\"SET\",\"a\",\"1\"\n\"SELECT\",\"2\"\n\"SET\",\"b\",\"2\"\n\"EXEC\"\n"
    );
    let mut got = String::new();
    let seen = poll_until_or_deadline(WAIT, || {
        got = fs::read_to_string(&out_path).unwrap_or_default();
        got.contains(&want)
    });
    let _ = cli.kill();
    let _ = cli.wait();
    assert!(seen, "got:\n{got}\nwant the end:\n{want}");
}

/// A replica that reads nothing: its pending stream passes the replica output buffer limit
/// and the master drops it rather than grow.
#[test]
fn a_slow_replica_is_dropped_at_its_output_buffer_limit() {
    let master = Server::forkdb(&["--client-output-buffer-limit", "replica 1mb 0 0"]);
    let mut mc = master.conn();
    let mut fake = master.conn();
    fake.send_cmd(&["PSYNC", "?", "-1"]).expect("PSYNC");
    poll_until(WAIT, "the replica to be online", || {
        let s = info_field(&mut mc, "replication", "slave0")?;
        s.contains("state=online").then_some(())
    });
    // 32 MiB through the stream; the socket buffers take a few, the rest waits in the replica's
    // output buffer until it passes 1 MiB.
    let value = "x".repeat(64 * 1024);
    for i in 0..512 {
        let reply = mc.frame(&["SET", &format!("k{}", i % 8), &value]);
        assert_eq!(reply, Frame::Simple("OK".into()));
        if info_field(&mut mc, "replication", "connected_slaves").as_deref() == Some("0") {
            break;
        }
    }
    poll_until(WAIT, "the slow replica to be dropped", || {
        (info_field(&mut mc, "replication", "connected_slaves").as_deref() == Some("0"))
            .then_some(())
    });
    assert!(
        master.log().contains("overcoming of output buffer limits"),
        "{}",
        master.log()
    );
    assert!(
        fake.wait_closed(WAIT).is_some(),
        "the replica's connection is closed"
    );
    assert_eq!(mc.frame(&["PING"]), Frame::Simple("PONG".into()));
}

/// A replica that goes while its snapshot is written is forgotten; the save still ends well
/// and the master serves on.
#[test]
fn a_replica_that_disconnects_during_the_transfer_is_forgotten() {
    let master = Server::forkdb(&[]);
    let mut mc = master.conn();
    run(&mut mc, &dataset("d"));
    run(
        &mut mc,
        &[c(&["CONFIG", "SET", "rdb-key-save-delay", "20000"])],
    );
    let mut fake = master.conn();
    fake.send_cmd(&["PSYNC", "?", "-1"]).expect("PSYNC");
    let line = fake.read_reply().expect("+FULLRESYNC");
    assert!(line.starts_with(b"+FULLRESYNC "), "{line:?}");
    assert_eq!(
        info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref(),
        Some("1")
    );
    drop(fake);
    poll_until(WAIT, "the replica to be forgotten", || {
        (info_field(&mut mc, "replication", "connected_slaves").as_deref() == Some("0"))
            .then_some(())
    });
    run(&mut mc, &[c(&["CONFIG", "SET", "rdb-key-save-delay", "0"])]);
    poll_until(WAIT, "the save to end", || {
        (info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref() == Some("0"))
            .then_some(())
    });
    assert_eq!(
        info_field(&mut mc, "persistence", "rdb_last_bgsave_status").as_deref(),
        Some("ok")
    );
    assert_eq!(mc.frame(&["PING"]), Frame::Simple("PONG".into()));
    check_rdb(&master.dir.join("dump.rdb"));
}

/// A diskless replica killed while the snapshot streams to it: it was the sync's last replica,
/// so the save is stopped (the fork child killed and reaped, the forkless writer thread
/// ended), INFO shows no save running and no failed one, and the master serves on, and syncs
/// the next replica.
#[test]
fn a_diskless_replica_killed_mid_transfer_stops_the_fork_child() {
    diskless_replica_killed_mid_transfer("fork");
}

#[test]
fn a_diskless_replica_killed_mid_transfer_ends_the_forkless_writer() {
    diskless_replica_killed_mid_transfer("forkless");
}

/// The threads of process `pid`, from /proc.
fn thread_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

fn diskless_replica_killed_mid_transfer(method: &str) {
    let master = Server::forkdb(&with(DISKLESS, &["--bgsave-default-method", method]));
    let mut mc = master.conn();
    run(&mut mc, &dataset("d"));
    let threads_before = thread_count(master.pid);
    // 3 s per key, 14 keys: the save would run longer than WAIT, so only its being stopped
    // ends it in time; the replica is killed in its first seconds.
    run(
        &mut mc,
        &[c(&["CONFIG", "SET", "rdb-key-save-delay", "3000000"])],
    );
    let mut replica = Server::redis(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    poll_until(WAIT, "the replica to receive the stream", || {
        replica.log().contains(EOF_TRANSFER_LINE).then_some(())
    });
    assert_eq!(
        info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref(),
        Some("1")
    );
    let children = master.child_pids();
    if method == "fork" {
        assert_eq!(children.len(), 1, "the snapshot child: {children:?}");
    } else {
        assert!(children.is_empty(), "{children:?}");
        assert!(
            thread_count(master.pid) > threads_before,
            "the writer thread runs"
        );
    }
    replica.signal(libc::SIGKILL);
    assert!(replica.wait_exit(WAIT).is_some(), "the replica exits");

    poll_until(WAIT, "the save to stop", || {
        (info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref() == Some("0"))
            .then_some(())
    });
    poll_until(WAIT, "the child to be gone", || {
        children.iter().all(|&p| !proc_alive(p)).then_some(())
    });
    poll_until(WAIT, "the writer thread to end", || {
        (thread_count(master.pid) == threads_before).then_some(())
    });
    let log = master.log();
    assert!(
        log.contains("Diskless rdb transfer, last replica dropped"),
        "{log}"
    );
    // Stopped on purpose: not a failed save (which would refuse writes with MISCONF).
    assert_eq!(
        info_field(&mut mc, "persistence", "rdb_last_bgsave_status").as_deref(),
        Some("ok")
    );
    assert_eq!(
        info_field(&mut mc, "replication", "connected_slaves").as_deref(),
        Some("0")
    );
    assert_eq!(mc.frame(&["SET", "after", "1"]), Frame::Simple("OK".into()));
    assert_eq!(mc.frame(&["PING"]), Frame::Simple("PONG".into()));

    // The next replica gets a whole sync.
    run(&mut mc, &[c(&["CONFIG", "SET", "rdb-key-save-delay", "0"])]);
    let next = Server::redis(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut nc = next.conn();
    wait_link_up(&mut nc);
    wait_caught_up(&mut mc, &mut nc);
    assert_same("the next replica", &dump(&mut nc), &dump(&mut mc));
    assert_transfer_kind(&next, true);
}

/// The `bgsave-forkless-queue-bytes` of the forkless diskless tests below.
const QUEUE_BYTES: u64 = 256 * 1024;

/// A master for the forkless diskless tests: a small queue, no compression (the values are
/// repetitive: compressed, the snapshot would be too small to fill any buffer), `extra` last.
fn forkless_diskless_master(extra: &[&str]) -> Server {
    let queue = QUEUE_BYTES.to_string();
    let mut args = with(
        DISKLESS,
        &[
            "--bgsave-default-method",
            "forkless",
            "--bgsave-forkless-queue-bytes",
            &queue,
            "--rdbcompression",
            "no",
        ],
    );
    args.extend_from_slice(extra);
    Server::forkdb(&args)
}

/// `n` keys `k<i>` holding `value`, in one pipeline.
fn fill_keys(conn: &mut Conn, n: usize, value: &str) {
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend(forkdb_tests::resp::encode_command(&[
            "SET",
            &format!("k{i}"),
            value,
        ]));
    }
    conn.send(&batch).expect("send the SETs");
    for _ in 0..n {
        assert_eq!(
            conn.read_frame().expect("SET reply"),
            Frame::Simple("OK".into())
        );
    }
}

/// `SNAPSHOT LATEST`'s integer field `name`.
fn latest_field(conn: &mut Conn, name: &str) -> i64 {
    let f = conn.frame(&["SNAPSHOT", "LATEST"]);
    let items = match f {
        Frame::Map(pairs) => pairs,
        Frame::Array(items) => items
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
        other => panic!("SNAPSHOT LATEST: {other:?}"),
    };
    for (k, v) in items {
        if text(k) == name {
            if let Frame::Integer(n) = v {
                return n;
            }
        }
    }
    panic!("SNAPSHOT LATEST has no integer {name}")
}

/// A forkless diskless save whose replica reads nothing: the writer thread writes to the
/// replica's socket itself, so once the socket's buffers are full the writes that must queue a
/// key first wait for it, but a writer that takes nothing for 100 ms is stuck, not slow: the
/// writes stop waiting (the queue grows instead, as a fork's copies would) and none is held
/// until `repl-timeout` (60 s here, default) drops the replica. Before, every write that had to
/// queue a key waited for the timeout.
#[test]
fn a_stuck_replica_does_not_hold_writes_during_a_forkless_diskless_save() {
    let master = forkless_diskless_master(&["--repl-timeout", "60"]);
    let mut mc = master.conn();
    // 32 MiB: more than the sockets' buffers hold.
    fill_keys(&mut mc, 512, &"v".repeat(64 * 1024));
    let mut fake = master.conn();
    assert_eq!(
        fake.frame(&["REPLCONF", "capa", "eof"]),
        Frame::Simple("OK".into())
    );
    fake.send_cmd(&["PSYNC", "?", "-1"]).expect("PSYNC");
    poll_until(WAIT, "the save to start", || {
        (info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref() == Some("1"))
            .then_some(())
    });
    // Every key is overwritten; those the walk has not written yet go to the queue first.
    // Each reply comes within the connection's read timeout (10 s), or the test fails.
    let other = "w".repeat(64 * 1024);
    for i in (0..512).rev() {
        assert_eq!(
            mc.frame(&["SET", &format!("k{i}"), &other]),
            Frame::Simple("OK".into())
        );
    }
    assert_eq!(
        info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref(),
        Some("1"),
        "the replica is still attached, its save still running"
    );
    let log = master.log();
    assert!(log.contains("writes stop waiting for it"), "{log}");
    // The replica goes: the writer's next send fails, the save stops.
    drop(fake);
    poll_until(WAIT, "the save to stop", || {
        (info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref() == Some("0"))
            .then_some(())
    });
    let stalled = latest_field(&mut mc, "stall_us");
    // About 100 ms per time the writer was found stuck; the old behaviour was the whole
    // repl-timeout (60 s) and failed above.
    assert!(stalled > 0, "the writes waited at first");
    assert!(stalled < 5_000_000, "the writes waited {stalled} µs in all");
    assert_eq!(
        info_field(&mut mc, "replication", "connected_slaves").as_deref(),
        Some("0")
    );
}

/// A diskless forkless sync to a slow replica under a write flood: the writer thread writes the
/// snapshot to the replica's socket at the replica's pace, and the writes that must queue a key
/// the walk has not written wait for it: the queue stays within twice
/// `bgsave-forkless-queue-bytes` plus a value and a chunk (asserted: 4×), where without the
/// wait it held every overwritten value (16 MiB). The replica gets a whole snapshot
/// (redis-check-rdb reads it).
#[test]
fn a_slow_replica_keeps_the_forkless_queue_bounded_during_a_diskless_sync() {
    let master = forkless_diskless_master(&[]);
    let mut mc = master.conn();
    // 16 MiB in 1024 values.
    fill_keys(&mut mc, 1024, &"v".repeat(16 * 1024));
    let mut fake = master.conn();
    assert_eq!(
        fake.frame(&["REPLCONF", "capa", "eof"]),
        Frame::Simple("OK".into())
    );
    fake.send_cmd(&["PSYNC", "?", "-1"]).expect("PSYNC");
    let mut sock = fake.stream().try_clone().expect("clone the socket");
    // The replica takes 64 KiB every 10 ms (~6 MB/s) until the transfer's closing mark.
    let reader = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        use std::io::Read as _;
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut mark: Option<(Vec<u8>, usize)> = None;
        while Instant::now() < deadline {
            let n = sock.read(&mut buf).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the master closed the link".into());
            }
            got.extend_from_slice(&buf[..n]);
            if mark.is_none() {
                let text = String::from_utf8_lossy(&got).into_owned();
                if let Some(at) = text.find("$EOF:") {
                    if got.len() >= at + 5 + 40 + 2 {
                        let m = got[at + 5..at + 45].to_vec();
                        mark = Some((m, at + 47));
                    }
                }
            }
            if let Some((m, start)) = &mark {
                if got.len() >= start + m.len() && got.ends_with(m) {
                    return Ok(got[*start..got.len() - m.len()].to_vec());
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!("no closing mark after {} bytes", got.len()))
    });
    poll_until(WAIT, "the save to start", || {
        (info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref() == Some("1"))
            .then_some(())
    });
    // The flood: every key overwritten, the last first (the walk has not reached them).
    let other = "w".repeat(16 * 1024);
    let mut batch = Vec::new();
    for i in (0..1024).rev() {
        batch.extend(forkdb_tests::resp::encode_command(&[
            "SET",
            &format!("k{i}"),
            other.as_str(),
        ]));
    }
    for part in batch.chunks(1024 * 1024) {
        mc.send(part).expect("send the flood");
    }
    for _ in 0..1024 {
        assert_eq!(
            mc.read_frame().expect("SET reply"),
            Frame::Simple("OK".into())
        );
    }
    let rdb = reader.join().expect("the reader thread");
    let rdb = rdb.unwrap_or_else(|e| panic!("{e}\n{}", master.log()));
    poll_until(WAIT, "the save to end", || {
        (info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref() == Some("0"))
            .then_some(())
    });
    let peak = latest_field(&mut mc, "peak_queue_bytes");
    let stall_us = latest_field(&mut mc, "stall_us");
    assert!(
        peak as u64 <= 4 * QUEUE_BYTES,
        "queue peak {peak} B, more than 4 x {QUEUE_BYTES}\n{}",
        master.log()
    );
    assert!(stall_us > 0, "no write waited for the writer");
    let dir = TempDir::new("slow-replica");
    let path = dir.path().join("got.rdb");
    fs::write(&path, &rdb).expect("write the received snapshot");
    let report = check_rdb(&path);
    assert!(report.contains("1024 keys read"), "{report}");
    drop(fake);
}

/// `repl-diskless-sync-delay` holds the fork so that replicas arriving meanwhile share one
/// transfer; `repl-diskless-sync-max-replicas` forks as soon as that many wait.
#[test]
fn diskless_replicas_share_one_transfer_after_the_delay() {
    let master = Server::forkdb(&[
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "3600",
        "--repl-diskless-sync-max-replicas",
        "2",
    ]);
    let mut mc = master.conn();
    run(&mut mc, &dataset("d"));
    let forks = |mc: &mut Conn| info_field(mc, "stats", "total_forks").unwrap_or_default();
    let port = master.port.to_string();
    let a = Server::redis(&["--replicaof", "127.0.0.1", &port]);
    poll_until(WAIT, "replica A to wait for a snapshot", || {
        let s = info_field(&mut mc, "replication", "slave0")?;
        s.contains("state=wait_bgsave").then_some(())
    });
    assert!(master.log().contains("Delay next BGSAVE for diskless SYNC"));
    // A waits (the delay is an hour): a second of the cron's checks forks nothing.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(forks(&mut mc), "0", "no fork before the second replica");
    let b = Server::redis(&["--replicaof", "127.0.0.1", &port]);
    let mut ac = a.conn();
    let mut bc = b.conn();
    wait_link_up(&mut ac);
    wait_link_up(&mut bc);
    run(&mut mc, &tricky_writes("after"));
    wait_caught_up(&mut mc, &mut ac);
    wait_caught_up(&mut mc, &mut bc);
    let want = dump(&mut mc);
    assert_same("replica A", &dump(&mut ac), &want);
    assert_same("replica B", &dump(&mut bc), &want);
    assert_eq!(forks(&mut mc), "1", "one transfer for both");
    assert_transfer_kind(&a, true);
    assert_transfer_kind(&b, true);
}

/// A plain BGSAVE running when a replica asks is not its snapshot (Redis's rule: it may not
/// hold what the replica's offset says); a snapshot forked for one replica is shared with a
/// second that asks while it is written.
#[test]
fn replicas_share_a_replication_snapshot_but_not_a_plain_bgsave() {
    // On disk: a diskless transfer cannot be joined once it has started (see
    // `diskless_replicas_share_one_transfer_after_the_delay`).
    let master = Server::forkdb(DISK);
    let mut mc = master.conn();
    run(&mut mc, &dataset("d"));
    // 200 ms per key, ~3 s a save: time for a second replica to attach to the first's.
    run(
        &mut mc,
        &[c(&["CONFIG", "SET", "rdb-key-save-delay", "200000"])],
    );
    assert_eq!(text(mc.frame(&["BGSAVE"])), "Background saving started");
    let forks = |mc: &mut Conn| info_field(mc, "stats", "total_forks").unwrap_or_default();
    assert_eq!(forks(&mut mc), "1");

    let port = master.port.to_string();
    let a = Server::redis(&["--replicaof", "127.0.0.1", &port]);
    poll_until(WAIT, "replica A to wait for a snapshot", || {
        let s = info_field(&mut mc, "replication", "slave0")?;
        s.contains("state=wait_bgsave").then_some(())
    });
    assert_eq!(forks(&mut mc), "1", "the plain BGSAVE is not reused");
    poll_until(WAIT, "a snapshot forked for replica A", || {
        (forks(&mut mc) == "2").then_some(())
    });
    let b = Server::redis(&["--replicaof", "127.0.0.1", &port]);
    poll_until(WAIT, "replica B to attach", || {
        let s = info_field(&mut mc, "replication", "slave1")?;
        s.contains("state=").then_some(())
    });
    assert_eq!(
        info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref(),
        Some("1"),
        "B asked while A's snapshot was written"
    );
    run(&mut mc, &[c(&["CONFIG", "SET", "rdb-key-save-delay", "0"])]);
    run(&mut mc, &tricky_writes("during"));
    let mut ac = a.conn();
    let mut bc = b.conn();
    wait_link_up(&mut ac);
    wait_link_up(&mut bc);
    wait_caught_up(&mut mc, &mut ac);
    wait_caught_up(&mut mc, &mut bc);
    let want = dump(&mut mc);
    assert_same("replica A", &dump(&mut ac), &want);
    assert_same("replica B", &dump(&mut bc), &want);
    assert_eq!(forks(&mut mc), "2", "B used A's snapshot");
    assert_eq!(
        info_field(&mut mc, "stats", "sync_full").as_deref(),
        Some("2")
    );
    // CLIENT LIST and CLIENT KILL know the replicas.
    let list = text(mc.frame(&["CLIENT", "LIST", "TYPE", "replica"]));
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.lines().all(|l| l.contains(" flags=S ")), "{list}");
    assert_eq!(
        mc.frame(&["CLIENT", "KILL", "TYPE", "replica"]),
        Frame::Integer(2)
    );
    assert_eq!(mc.frame(&["PING"]), Frame::Simple("PONG".into()));
}

/// forkdb as a replica of a real redis-server 7.0: full sync, the stream (all types, expiry,
/// MULTI, SELECT), -READONLY, WAIT on the master counts it, a partial resync after the master
/// kills the link, and promotion with REPLICAOF NO ONE.
#[test]
fn forkdb_follows_a_redis_master() {
    follows_a_redis_master(DISK, false);
}

/// The same with a diskless master: forkdb announces `capa eof` as Redis's replica does, so
/// Redis streams it the snapshot (`$EOF:<mark>`) rather than writing a file for it.
#[test]
fn forkdb_follows_a_diskless_redis_master() {
    follows_a_redis_master(DISKLESS, true);
}

fn follows_a_redis_master(mode: &[&str], diskless: bool) {
    let master = Server::redis(mode);
    let mut mc = master.conn();
    run(&mut mc, &dataset("before"));
    run(&mut mc, &tricky_writes("before"));

    let replica = Server::forkdb(&[]);
    let mut rc = replica.conn();
    assert_eq!(
        rc.frame(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]),
        Frame::Simple("OK".into())
    );
    wait_link_up(&mut rc);
    let (log, mlog) = (replica.log(), master.log());
    if diskless {
        assert!(log.contains(EOF_TRANSFER_LINE), "{log}");
        assert!(
            mlog.contains("Starting BGSAVE for SYNC with target: replicas sockets"),
            "{mlog}"
        );
    } else {
        assert!(
            !log.contains(EOF_TRANSFER_LINE) && log.contains("bytes from master to disk"),
            "{log}"
        );
    }
    run(&mut mc, &dataset("after"));
    run(&mut mc, &tricky_writes("after"));
    run(
        &mut mc,
        &[c(&["SELECT", "3"]), c(&["FLUSHDB"]), c(&["SET", "x", "y"])],
    );
    run(&mut mc, &dataset("after-flush"));
    run(&mut mc, &[c(&["SET", "short", "v", "PX", "300"])]);
    wait_caught_up(&mut mc, &mut rc);
    assert_same("forkdb after the sync", &dump(&mut rc), &dump(&mut mc));

    // The master's expiry arrives as a DEL.
    let size_with = text(rc.frame(&["DBSIZE"]));
    // Not synchronisation: the key's time must pass on the master's clock.
    std::thread::sleep(Duration::from_millis(350));
    let gone = mc.frame(&["GET", "short"]);
    assert!(matches!(gone, Frame::NullBulk | Frame::Null), "{gone:?}");
    wait_caught_up(&mut mc, &mut rc);
    let size_without = text(rc.frame(&["DBSIZE"]));
    assert_eq!(
        size_without.parse::<i64>().unwrap() + 1,
        size_with.parse::<i64>().unwrap(),
        "the expired key's DEL"
    );

    assert_eq!(
        rc.frame(&["SET", "mine", "1"]),
        Frame::Error("READONLY You can't write against a read only replica.".into())
    );
    assert_eq!(mc.frame(&["WAIT", "1", "5000"]), Frame::Integer(1));
    match rc.frame(&["ROLE"]) {
        Frame::Array(v) => {
            assert_eq!(v[0], Frame::Bulk(b"slave".to_vec()));
            assert_eq!(v[3], Frame::Bulk(b"connected".to_vec()));
        }
        other => panic!("ROLE: {other:?}"),
    }

    // The master drops the link; forkdb comes back with PSYNC and continues.
    assert_eq!(
        mc.frame(&["CLIENT", "KILL", "TYPE", "replica"]),
        Frame::Integer(1)
    );
    run(&mut mc, &dataset("while-away"));
    run(&mut mc, &tricky_writes("while-away"));
    poll_until(WAIT, "the master to take the replica back", || {
        (info_field(&mut mc, "stats", "sync_partial_ok").as_deref() == Some("1")).then_some(())
    });
    wait_link_up(&mut rc);
    wait_caught_up(&mut mc, &mut rc);
    assert_same(
        "forkdb after the partial resync",
        &dump(&mut rc),
        &dump(&mut mc),
    );
    assert_eq!(
        info_field(&mut mc, "stats", "sync_full").as_deref(),
        Some("1"),
        "no second full sync"
    );
    // The same from forkdb's side: CLIENT KILL TYPE master.
    let list = text(rc.frame(&["CLIENT", "LIST", "TYPE", "master"]));
    assert!(
        list.lines().count() == 1 && list.contains(" flags=M "),
        "{list}"
    );
    assert_eq!(
        rc.frame(&["CLIENT", "KILL", "TYPE", "master"]),
        Frame::Integer(1)
    );
    run(&mut mc, &tricky_writes("killed-here"));
    poll_until(WAIT, "the second partial resync", || {
        (info_field(&mut mc, "stats", "sync_partial_ok").as_deref() == Some("2")).then_some(())
    });
    wait_link_up(&mut rc);
    wait_caught_up(&mut mc, &mut rc);
    assert_same(
        "forkdb after CLIENT KILL TYPE master",
        &dump(&mut rc),
        &dump(&mut mc),
    );

    // Promotion: a master again, with the data, taking writes.
    assert_eq!(
        rc.frame(&["REPLICAOF", "NO", "ONE"]),
        Frame::Simple("OK".into())
    );
    assert_eq!(
        info_field(&mut rc, "replication", "role").as_deref(),
        Some("master")
    );
    assert_eq!(rc.frame(&["SET", "mine", "1"]), Frame::Simple("OK".into()));
    let mut want = dump(&mut mc);
    want.insert(
        (0, b"mine".to_vec()),
        ("string".into(), "int".into(), vec![b"1".to_vec()], -1),
    );
    assert_same("forkdb promoted", &dump(&mut rc), &want);
}

/// The master dies while forkdb waits for its snapshot: forkdb keeps the data it had (nothing
/// is flushed before the whole file is in), leaves no temp file, reports the link down and
/// keeps serving. Then a master that refuses SYNC on a replica: forkdb does not chain.
#[test]
fn forkdb_replica_keeps_its_data_when_the_master_dies_during_the_sync() {
    let replica = Server::forkdb(&[]);
    let mut rc = replica.conn();
    run(&mut rc, &dataset("mine"));
    let want = dump(&mut rc);

    let mut master = Server::redis(&["--rdb-key-save-delay", "200000"]);
    let mut mc = master.conn();
    run(&mut mc, &dataset("theirs"));
    assert_eq!(
        rc.frame(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]),
        Frame::Simple("OK".into())
    );
    poll_until(WAIT, "forkdb to wait for the master's snapshot", || {
        (info_field(&mut rc, "replication", "master_sync_in_progress").as_deref() == Some("1"))
            .then_some(())
    });
    master.signal(libc::SIGKILL);
    poll_until(WAIT, "forkdb to see the link lost", || {
        (info_field(&mut rc, "replication", "master_sync_in_progress").as_deref() == Some("0"))
            .then_some(())
    });
    assert_eq!(
        info_field(&mut rc, "replication", "master_link_status").as_deref(),
        Some("down")
    );
    // replica-serve-stale-data no: data commands wait for the link.
    run(
        &mut rc,
        &[c(&["CONFIG", "SET", "replica-serve-stale-data", "no"])],
    );
    assert_eq!(
        rc.frame(&["GET", "mine:str"]),
        Frame::Error(
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
                .into()
        )
    );
    run(
        &mut rc,
        &[c(&["CONFIG", "SET", "replica-serve-stale-data", "yes"])],
    );
    assert_same("forkdb after its master died", &dump(&mut rc), &want);
    let temps: Vec<_> = std::fs::read_dir(&replica.dir)
        .expect("read the replica's dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("temp-"))
        .collect();
    assert!(temps.is_empty(), "temp files left: {temps:?}");
    // A replica does not serve replicas of its own (no chained replication yet).
    let refused = rc.frame(&["PSYNC", "?", "-1"]);
    assert!(
        matches!(&refused, Frame::Error(e) if e.contains("chained")),
        "{refused:?}"
    );
    assert_eq!(
        rc.frame(&["REPLICAOF", "NO", "ONE"]),
        Frame::Simple("OK".into())
    );
    assert_eq!(rc.frame(&["PING"]), Frame::Simple("PONG".into()));
}

/// `--replicaof host port` at start-up: forkdb follows the master once started, and CONFIG GET
/// replicaof shows it (then nothing after REPLICAOF NO ONE).
#[test]
fn forkdb_started_with_replicaof_follows_the_master() {
    let master = Server::redis(&[]);
    let mut mc = master.conn();
    run(&mut mc, &dataset("d"));
    let port = master.port.to_string();
    let replica = Server::forkdb(&["--replicaof", "127.0.0.1", &port]);
    let mut rc = replica.conn();
    wait_link_up(&mut rc);
    wait_caught_up(&mut mc, &mut rc);
    assert_same("forkdb --replicaof", &dump(&mut rc), &dump(&mut mc));
    assert_eq!(
        bulks(rc.frame(&["CONFIG", "GET", "replicaof"])),
        vec![
            b"replicaof".to_vec(),
            format!("127.0.0.1 {port}").into_bytes()
        ]
    );
    assert_eq!(
        rc.frame(&["REPLICAOF", "NO", "ONE"]),
        Frame::Simple("OK".into())
    );
    assert_eq!(
        bulks(rc.frame(&["CONFIG", "GET", "replicaof"])),
        vec![b"replicaof".to_vec(), b"".to_vec()]
    );
}

/// The replies of the replication commands to bad or simple input are redis-server's, byte for
/// byte.
#[test]
fn replication_command_replies_match_redis() {
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let cases: &[&[&str]] = &[
        &["REPLCONF", "listening-port", "x"],
        &["REPLCONF", "foo", "bar"],
        &["REPLCONF", "a"],
        &["REPLCONF", "rdb-only", "2"],
        &[
            "REPLCONF",
            "ip-address",
            "1.2.3.4",
            "capa",
            "eof",
            "capa",
            "psync2",
        ],
        &["WAIT", "-1", "-1"],
        &["WAIT", "1", "abc"],
        &["WAIT", "abc", "1"],
        &["WAIT", "0", "0"],
        &["REPLICAOF", "localhost", "notaport"],
        &["PSYNC", "abc", "x"],
        &["ROLE"],
    ];
    for case in cases {
        let want = redis.conn().cmd(case);
        let got = forkdb.conn().cmd(case);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{case:?}"
        );
    }
}

/// A write to a key whose time has passed (no active expiry on the master) deletes it first,
/// and the replica gets that DEL before the write, as Redis's `expireIfNeeded` propagates it:
/// without it the replica would append to the old list, which it keeps with its old TTL.
#[test]
fn a_write_to_an_expired_key_reaches_the_replica_after_its_del() {
    let master = Server::forkdb(&["--enable-debug-command", "yes"]);
    let mut mc = master.conn();
    run(&mut mc, &[c(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"])]);
    let replica = Server::redis(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut rc = replica.conn();
    wait_link_up(&mut rc);
    run(
        &mut mc,
        &[c(&["RPUSH", "l", "old"]), c(&["PEXPIRE", "l", "50"])],
    );
    // Not synchronisation: the key's time must pass on the master's clock.
    std::thread::sleep(Duration::from_millis(80));
    run(&mut mc, &[c(&["RPUSH", "l", "new"])]);
    wait_caught_up(&mut mc, &mut rc);
    assert_eq!(
        bulks(rc.frame(&["LRANGE", "l", "0", "-1"])),
        vec![b"new".to_vec()]
    );
    assert_eq!(rc.frame(&["PTTL", "l"]), Frame::Integer(-1));
}

/// EXEC on a replica whose link went down after the commands were queued: refused with
/// EXECABORT naming MASTERDOWN when a queued command may not run on stale data (GET, PING),
/// run when they all may (Redis's `cmd_inv_flags` check), on both servers alike.
#[test]
fn exec_is_refused_when_the_replica_goes_stale_after_queueing() {
    let nowhere = forkdb_tests::server::free_port().to_string();
    for server in [Server::redis(&[]), Server::forkdb(&[])] {
        let mut c1 = server.conn();
        let mut c2 = server.conn();
        run(
            &mut c1,
            &[c(&["CONFIG", "SET", "replica-serve-stale-data", "no"])],
        );
        run(&mut c1, &[c(&["SET", "xx", "1"])]);
        for queued in [&["GET", "xx"][..], &["PING"][..]] {
            run(&mut c1, &[c(&["MULTI"])]);
            assert_eq!(c1.frame(queued), Frame::Simple("QUEUED".into()));
            run(&mut c2, &[c(&["REPLICAOF", "127.0.0.1", &nowhere])]);
            match c1.frame(&["EXEC"]) {
                Frame::Error(e) => assert!(
                    e.starts_with("EXECABORT") && e.contains("MASTERDOWN"),
                    "{}: {e}",
                    server.kind.name()
                ),
                other => panic!("{}: EXEC gave {other:?}", server.kind.name()),
            }
            run(&mut c2, &[c(&["REPLICAOF", "NO", "ONE"])]);
        }
        run(&mut c1, &[c(&["MULTI"])]);
        c1.frame(&["INFO", "server"]);
        run(&mut c2, &[c(&["REPLICAOF", "127.0.0.1", &nowhere])]);
        assert!(
            matches!(c1.frame(&["EXEC"]), Frame::Array(_)),
            "{}: INFO is allowed on stale data",
            server.kind.name()
        );
        run(&mut c2, &[c(&["REPLICAOF", "NO", "ONE"])]);
    }
}

/// The forkdb-cow binary: `FORKDB_COW_BIN`, else `forkdb-cow` next to the forkdb-server the
/// tests run (`cargo build -p forkdb-cow`).
fn forkdb_cow_bin() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("FORKDB_COW_BIN") {
        return p.into();
    }
    let server = forkdb_tests::server::forkdb_bin();
    let path = server.with_file_name("forkdb-cow");
    assert!(
        path.is_file(),
        "{} not found: build it first: cargo build -p forkdb-cow (or set FORKDB_COW_BIN)",
        path.display()
    );
    path
}

/// The integer field `name` of summary.json (a flat JSON object, one field a line).
fn json_int(json: &str, name: &str) -> Option<i64> {
    let prefix = format!("\"{name}\": ");
    json.lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .and_then(|v| v.trim_end_matches(',').parse().ok())
}

/// What an operator does to measure a snapshot under their real write stream: forkdb replicates
/// a real redis-server, a writer writes to the master, and `forkdb-cow run --pattern none` on
/// the replica measures a save there: it fills nothing and writes nothing (the replica would
/// refuse it), and its report's writes are the replicated ones, the server's count.
#[test]
fn forkdb_cow_measures_a_save_on_a_replica_under_the_masters_writes() {
    let master = Server::redis(&[]);
    let mut mc = master.conn();
    fill_keys(&mut mc, 2000, &"v".repeat(1000));
    let replica = Server::forkdb(&[]);
    let mut rc = replica.conn();
    assert_eq!(
        rc.frame(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]),
        Frame::Simple("OK".into())
    );
    wait_link_up(&mut rc);
    wait_caught_up(&mut mc, &mut rc);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let port = master.port;
        std::thread::spawn(move || {
            let mut c = Conn::connect(port).expect("connect to the master");
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = format!("k{}", n % 2000);
                assert_eq!(c.frame(&["SET", &key, "w"]), Frame::Simple("OK".into()));
                n += 1;
            }
            n
        })
    };
    let out = TempDir::new("cow-on-replica");
    let mut cmd = Command::new(forkdb_cow_bin());
    // 500 µs per key: a save of about a second, under the master's writes.
    cmd.args(["run", "--addr", &format!("127.0.0.1:{}", replica.port)])
        .args(["--pattern", "none", "--save-delay-us", "500"])
        .arg("--out")
        .arg(out.path());
    let res = run_with_deadline(cmd, None, WAIT * 2);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = writer.join().expect("the writer");
    let stdout = String::from_utf8_lossy(&res.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert!(
        res.status.success(),
        "forkdb-cow failed: {stdout}\n{stderr}\n{}",
        replica.log()
    );
    let json = fs::read_to_string(out.path().join("summary.json")).expect("summary.json");
    assert!(json.contains("\"keep_data\": true"), "{json}");
    assert!(json.contains("\"filled\": false"), "{json}");
    assert_eq!(json_int(&json, "keys"), Some(2000), "{json}");
    let writes = json_int(&json, "writes").expect("writes");
    assert!(
        writes > 0 && writes as u64 <= sent,
        "writes during the save {writes}, the writer sent {sent}: {json}"
    );
    assert_eq!(json_int(&json, "write_errors"), Some(0), "{json}");
    assert!(stdout.contains("the server's, during the save"), "{stdout}");
    // The replica kept its master's data and its link.
    assert_eq!(rc.frame(&["DBSIZE"]), Frame::Integer(2000));
    assert_eq!(
        info_field(&mut rc, "replication", "master_link_status").as_deref(),
        Some("up")
    );
}

/// Two replicas share one forkless diskless transfer, which the writer thread writes to both
/// sockets itself; one is killed half way: it is dropped and the other goes on, gets the whole
/// snapshot and follows the writes made meanwhile.
#[test]
fn a_forkless_transfer_to_two_replicas_goes_on_when_one_is_killed() {
    let master = Server::forkdb(&[
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "3600",
        "--repl-diskless-sync-max-replicas",
        "2",
        "--bgsave-default-method",
        "forkless",
        "--rdbcompression",
        "no",
    ]);
    let mut mc = master.conn();
    run(&mut mc, &dataset("d"));
    // 2 MiB more, and 10 ms per key: a transfer of about 2 s.
    fill_keys(&mut mc, 200, &"v".repeat(10 * 1024));
    run(
        &mut mc,
        &[c(&["CONFIG", "SET", "rdb-key-save-delay", "10000"])],
    );
    let port = master.port.to_string();
    let mut a = Server::redis(&["--replicaof", "127.0.0.1", &port]);
    let b = Server::redis(&["--replicaof", "127.0.0.1", &port]);
    poll_until(WAIT, "both replicas to receive the stream", || {
        (a.log().contains(EOF_TRANSFER_LINE) && b.log().contains(EOF_TRANSFER_LINE)).then_some(())
    });
    assert_eq!(
        info_field(&mut mc, "persistence", "rdb_bgsave_in_progress").as_deref(),
        Some("1")
    );
    a.signal(libc::SIGKILL);
    assert!(a.wait_exit(WAIT).is_some(), "replica A exits");
    run(&mut mc, &tricky_writes("during"));
    run(&mut mc, &[c(&["CONFIG", "SET", "rdb-key-save-delay", "0"])]);
    let mut bc = b.conn();
    wait_link_up(&mut bc);
    wait_caught_up(&mut mc, &mut bc);
    assert_same("replica B", &dump(&mut bc), &dump(&mut mc));
    assert_eq!(bc.frame(&["DBSIZE"]), mc.frame(&["DBSIZE"]));
    assert_eq!(
        info_field(&mut mc, "replication", "connected_slaves").as_deref(),
        Some("1")
    );
    assert_eq!(
        info_field(&mut mc, "stats", "total_forks").as_deref(),
        Some("0")
    );
    assert_eq!(
        info_field(&mut mc, "persistence", "rdb_last_bgsave_status").as_deref(),
        Some("ok")
    );
}
