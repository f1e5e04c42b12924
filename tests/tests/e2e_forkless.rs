//! `BGSAVE FORKLESS` end to end: the thread snapshot beside the fork.
//!
//! - Point in time under concurrent writers, many saves in a row: each file passes
//!   redis-check-rdb, loads in redis-server, holds the marker written before its start and not the
//!   one written after, and no half of an MSET.
//! - Every mutation path during the walk (overwrite, DEL, lazy and active expiry, eviction, RENAME,
//!   MOVE, COPY, SWAPDB, FLUSHDB, container writes, new keys, table growth): the file holds exactly
//!   the data of the start.
//! - The forkless file holds what the fork file holds for the same data (all types, TTLs, dbs).
//! - BGSAVE CANCEL, FLUSHALL and SHUTDOWN SAVE during a forkless save; a full disk during one (old
//!   file kept, status err, MISCONF); a fork refused while the writer thread lives and taken at
//!   once after it ended; `bgsave-default-method`; INFO and SNAPSHOT say which method ran.
//!
//! The walk is slowed with `rdb-key-save-delay` (one key per delay, without blocking the event
//! loop), so that the changes reach keys the walk has not written yet. Every wait polls with a
//! deadline; every server is stopped by its pid.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use forkdb_tests::resp::{encode_command, show};
use forkdb_tests::server::TempDir;
use forkdb_tests::snapshot::{
    assert_same, check_pairs, check_rdb, dump, field, info, num, temp_files, text, wait_loaded,
    wait_save_done, Dump, PairWriters, WAIT,
};
use forkdb_tests::{poll_until, Conn, Frame, Server};

const DBFILE: &str = "dump.rdb";
const ALL_DBS: std::ops::Range<u32> = 0..16;
const MISCONF: &[u8] = b"-MISCONF Redis is configured to save RDB snapshots, but it's currently \
unable to persist to disk. Commands that may modify the data set are disabled, because this \
instance is configured to report errors during writes if RDB snapshotting fails \
(stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB \
error.\r\n";

#[track_caller]
fn ok(conn: &mut Conn, args: &[&str]) {
    conn.assert_cmd(args, b"+OK\r\n");
}

#[track_caller]
fn bgsave_forkless(conn: &mut Conn) {
    conn.assert_cmd(&["BGSAVE", "FORKLESS"], b"+Background saving started\r\n");
}

/// Runs `cmd` and fails on an error reply.
#[track_caller]
fn run(conn: &mut Conn, cmd: &[&str]) -> Frame {
    match conn.frame(cmd) {
        Frame::Error(e) => panic!("{cmd:?}: {e}"),
        f => f,
    }
}

/// A server of either kind that loads a copy of `file`, and its data set.
fn load_copy(start: fn(&[&str]) -> Server, file: &Path) -> Dump {
    let dir = TempDir::new("forkless-load");
    fs::copy(file, dir.path().join(DBFILE)).expect("copying the file aside");
    let server = start(&["--dir", dir.path().to_str().expect("utf-8")]);
    let mut conn = server.conn();
    wait_loaded(&mut conn);
    dump(&mut conn, ALL_DBS)
}

/// Pipelines `cmds` and fails on any error reply.
fn pipeline(conn: &mut Conn, cmds: &[Vec<String>]) {
    for batch in cmds.chunks(200) {
        let mut out = Vec::new();
        for c in batch {
            out.extend(encode_command(c));
        }
        conn.send(&out).expect("sending a batch");
        for c in batch {
            let r = conn.read_reply().expect("a reply");
            assert!(!r.starts_with(b"-"), "{c:?}: {}", show(&r));
        }
    }
}

fn cmd(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// A data set of every type in several databases, some keys with a TTL: strings `s:i`, hashes
/// `h:i`, lists `l:i`, sets `S:i`, sorted sets `z:i`, one big hash, list, set and zset (table
/// forms), and `per` keys in dbs 1, 2, 3.
fn populate(conn: &mut Conn, per: usize) {
    let mut cmds = Vec::new();
    for i in 0..per {
        let v = format!("value-{i}-{}", "x".repeat(i % 50));
        cmds.push(cmd(&["SET", &format!("s:{i}"), &v]));
        cmds.push(cmd(&[
            "HSET",
            &format!("h:{i}"),
            "a",
            &i.to_string(),
            "b",
            "bee",
        ]));
        cmds.push(cmd(&[
            "RPUSH",
            &format!("l:{i}"),
            "one",
            "two",
            &i.to_string(),
        ]));
        cmds.push(cmd(&["SADD", &format!("S:{i}"), "1", "2", &i.to_string()]));
        cmds.push(cmd(&[
            "ZADD",
            &format!("z:{i}"),
            "1",
            "m1",
            &i.to_string(),
            "mi",
        ]));
        cmds.push(cmd(&["SET", &format!("n:{i}"), &i.to_string()]));
        if i % 5 == 0 {
            cmds.push(cmd(&["PEXPIRE", &format!("s:{i}"), "3600000"]));
            cmds.push(cmd(&["PEXPIRE", &format!("h:{i}"), "7200000"]));
        }
    }
    for j in 0..300 {
        let j = j.to_string();
        cmds.push(cmd(&["HSET", "bighash", &format!("f{j}"), &j]));
        cmds.push(cmd(&["RPUSH", "biglist", &j]));
        cmds.push(cmd(&["SADD", "bigset", &format!("m{j}")]));
        cmds.push(cmd(&["ZADD", "bigzset", &j, &format!("m{j}")]));
    }
    pipeline(conn, &cmds);
    for db in 1..=3 {
        ok(conn, &["SELECT", &db.to_string()]);
        let cmds: Vec<_> = (0..per)
            .map(|i| cmd(&["SET", &format!("d{db}:{i}"), &format!("in db {db}")]))
            .collect();
        pipeline(conn, &cmds);
    }
    ok(conn, &["SELECT", "0"]);
}

// ---------------------------------------------------------------------------------------------

#[test]
fn forkless_is_a_point_in_time_snapshot_under_concurrent_writes() {
    const KEYS: usize = 500;
    const SAVES: usize = 8;
    const WRITERS: usize = 3;
    // 400 µs per key: each walk lasts a fifth of a second or more while the writers go on.
    let server = Server::forkdb(&["--rdb-key-save-delay", "400"]);
    let mut conn = server.conn();
    let cmds: Vec<_> = (0..KEYS)
        .map(|i| cmd(&["SET", &format!("k:{i}"), &format!("{i:0100}")]))
        .collect();
    pipeline(&mut conn, &cmds);

    let writers = PairWriters::start(server.port, WRITERS, KEYS, true);

    let copies = TempDir::new("forkless-pit");
    let mut during = Vec::new();
    for i in 0..SAVES {
        ok(&mut conn, &["SET", "marker", &i.to_string()]);
        bgsave_forkless(&mut conn);
        let ops_at_start = writers.ops();
        ok(&mut conn, &["SET", "marker", &(i + 1000).to_string()]);
        ok(&mut conn, &["SET", "after", &i.to_string()]);
        let p = wait_save_done(&mut conn);
        during.push(writers.ops() - ops_at_start);
        assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok", "save {i}");
        assert_eq!(field(&p, "rdb_last_bgsave_method"), "forkless");
        fs::copy(
            server.dir.join(DBFILE),
            copies.path().join(format!("save-{i}.rdb")),
        )
        .expect("copying dump.rdb aside");
    }
    writers.stop();
    eprintln!("writes while each save ran: {during:?}");
    assert!(
        during.iter().all(|&d| d > 0),
        "some save ran with no concurrent write: {during:?}"
    );
    let mut last_seen = [0u64; WRITERS];
    for i in 0..SAVES {
        let copy = copies.path().join(format!("save-{i}.rdb"));
        check_rdb(&copy);
        let data = load_copy(Server::redis, &copy);
        let get = |k: &str| {
            data.get(&(0, k.as_bytes().to_vec()))
                .map(|v| v.2[0].clone())
        };
        assert_eq!(
            get("marker"),
            Some(i.to_string().into_bytes()),
            "save {i}: marker"
        );
        let after = (i > 0).then(|| (i - 1).to_string().into_bytes());
        assert_eq!(
            get("after"),
            after,
            "save {i}: the key written after its start"
        );
        check_pairs(i, &mut last_seen, get);
    }
}

#[test]
fn every_mutation_path_leaves_the_file_as_of_the_start() {
    // 2 ms per key: the walk of ~2900 keys lasts seconds; the changes below take milliseconds.
    let server = Server::forkdb(&["--rdb-key-save-delay", "2000", "--hz", "100"]);
    let mut conn = server.conn();
    populate(&mut conn, 400);
    // Values big enough that evicting a few gets under a limit (most values here live inside
    // their entry, and evicting those frees nothing), with the nearest TTLs: volatile-ttl takes
    // them first.
    for i in 0..20 {
        let k = format!("big:{i}");
        ok(
            &mut conn,
            &["SET", &k, &format!("{i}{}", "b".repeat(100_000))],
        );
        run(&mut conn, &["PEXPIRE", &k, "1800000"]);
    }
    let want = dump(&mut conn, ALL_DBS);
    bgsave_forkless(&mut conn);
    let p = info(&mut conn, "persistence");
    assert_eq!(field(&p, "rdb_bgsave_in_progress"), "1");
    assert_eq!(field(&p, "rdb_current_bgsave_method"), "forkless");

    // The walk goes from the last key inserted down: the first keys are reached last.
    for i in 0..20 {
        let i = i.to_string();
        ok(&mut conn, &["SET", &format!("s:{i}"), "overwritten"]);
        run(&mut conn, &["DEL", &format!("h:{i}")]);
        run(&mut conn, &["LPUSH", &format!("l:{i}"), "pushed"]);
        run(&mut conn, &["SADD", &format!("S:{i}"), "added"]);
        run(&mut conn, &["ZADD", &format!("z:{i}"), "99", "m1"]);
        run(&mut conn, &["INCR", &format!("n:{i}")]);
    }
    for i in 20..30 {
        let i = i.to_string();
        run(&mut conn, &["APPEND", &format!("s:{i}"), "-appended"]);
        run(&mut conn, &["SETBIT", &format!("s:{}", i), "7", "1"]);
        run(&mut conn, &["HINCRBY", &format!("h:{i}"), "a", "5"]);
        run(&mut conn, &["LPOP", &format!("l:{i}")]);
        run(&mut conn, &["SPOP", &format!("S:{i}")]);
        run(&mut conn, &["ZPOPMIN", &format!("z:{i}")]);
        run(&mut conn, &["PERSIST", &format!("s:{i}")]);
        run(&mut conn, &["EXPIRE", &format!("n:{i}"), "1000"]);
    }
    // RENAME to a new key and onto an existing one; MOVE; COPY.
    ok(&mut conn, &["RENAME", "s:30", "renamed:30"]);
    ok(&mut conn, &["RENAME", "s:31", "s:32"]);
    run(&mut conn, &["MOVE", "s:33", "5"]);
    run(&mut conn, &["COPY", "s:34", "copied:34"]);
    // Big containers: one write each.
    run(&mut conn, &["HSET", "bighash", "f1", "changed"]);
    run(&mut conn, &["LSET", "biglist", "0", "changed"]);
    run(&mut conn, &["SREM", "bigset", "m1"]);
    run(&mut conn, &["ZINCRBY", "bigzset", "1000", "m1"]);
    // Lazy expiry (read after a 1 ms TTL) and active expiry (the cron, hz 100).
    for i in 40..50 {
        run(&mut conn, &["PEXPIRE", &format!("s:{i}"), "1"]);
        run(&mut conn, &["PEXPIRE", &format!("n:{i}"), "1"]);
    }
    std::thread::sleep(Duration::from_millis(5));
    for i in 40..50 {
        conn.assert_cmd(&["GET", &format!("s:{i}")], b"$-1\r\n");
    }
    poll_until(WAIT, "active expiry of n:40..n:49", || {
        let gone = (40..50).all(|i| conn.cmd(&["EXISTS", &format!("n:{i}")]) == b":0\r\n");
        gone.then_some(())
    });
    // SWAPDB and FLUSHDB: the file keeps each database's content under its number at the start.
    ok(&mut conn, &["SWAPDB", "1", "2"]);
    ok(&mut conn, &["SELECT", "3"]);
    ok(&mut conn, &["FLUSHDB"]);
    ok(&mut conn, &["SET", "d3:new", "after the flush"]);
    ok(&mut conn, &["SELECT", "0"]);
    // New keys, enough to grow the table during the walk.
    let cmds: Vec<_> = (0..5000)
        .map(|i| cmd(&["SET", &format!("new:{i}"), "made after the start"]))
        .collect();
    pipeline(&mut conn, &cmds);
    // Eviction: a limit just under what is used now, then one write.
    let used = num(&info(&mut conn, "memory"), "used_memory");
    ok(
        &mut conn,
        &["CONFIG", "SET", "maxmemory-policy", "volatile-ttl"],
    );
    ok(
        &mut conn,
        &["CONFIG", "SET", "maxmemory", &(used - 250_000).to_string()],
    );
    ok(&mut conn, &["SET", "evictor", "x"]);
    let evicted = num(&info(&mut conn, "stats"), "evicted_keys");
    ok(&mut conn, &["CONFIG", "SET", "maxmemory", "0"]);
    assert!(evicted > 0, "nothing was evicted");

    let p = info(&mut conn, "persistence");
    assert_eq!(
        field(&p, "rdb_bgsave_in_progress"),
        "1",
        "the walk ended before the changes were all made: slow it down"
    );
    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok", "{p:?}");
    let file = server.dir.join(DBFILE);
    check_rdb(&file);
    assert_same(
        "redis-server loading the forkless file",
        &load_copy(Server::redis, &file),
        &want,
    );
    assert_same(
        "forkdb loading the forkless file",
        &load_copy(Server::forkdb, &file),
        &want,
    );
    // The write path wrote keys early: the SNAPSHOT record says how many.
    let latest = conn.frame(&["SNAPSHOT", "LATEST"]);
    let Frame::Array(items) = latest else {
        panic!("SNAPSHOT LATEST: {latest:?}");
    };
    let map: BTreeMap<String, Frame> = items
        .chunks(2)
        .map(|p| (p[0].as_text().unwrap_or_default(), p[1].clone()))
        .collect();
    assert_eq!(map["method"], Frame::Bulk(b"forkless".to_vec()));
    match &map["early_keys"] {
        Frame::Integer(n) => assert!(*n >= 100, "early_keys {n}"),
        other => panic!("early_keys {other:?}"),
    }
}

#[test]
fn forkless_file_holds_what_the_fork_file_holds() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    populate(&mut conn, 300);
    let want = dump(&mut conn, ALL_DBS);
    let copies = TempDir::new("fork-vs-forkless");
    for method in ["FORK", "FORKLESS"] {
        conn.assert_cmd(&["BGSAVE", method], b"+Background saving started\r\n");
        let p = wait_save_done(&mut conn);
        assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok");
        assert_eq!(field(&p, "rdb_last_bgsave_method"), method.to_lowercase());
        let to = copies.path().join(format!("{method}.rdb"));
        fs::copy(server.dir.join(DBFILE), &to).expect("copy");
        check_rdb(&to);
    }
    let fork = load_copy(Server::forkdb, &copies.path().join("FORK.rdb"));
    let forkless = load_copy(Server::forkdb, &copies.path().join("FORKLESS.rdb"));
    assert_same("the fork file", &fork, &want);
    assert_same("the forkless file against the fork file", &forkless, &fork);
    assert_same(
        "redis-server loading the forkless file",
        &load_copy(Server::redis, &copies.path().join("FORKLESS.rdb")),
        &want,
    );
}

#[test]
fn cancel_flushall_and_shutdown_during_a_forkless_save() {
    let mut server = Server::forkdb(&["--rdb-key-save-delay", "5000"]);
    let mut conn = server.conn();
    populate(&mut conn, 100);
    ok(&mut conn, &["SAVE"]);
    let file = server.dir.join(DBFILE);
    let old = fs::read(&file).unwrap();

    // CANCEL: the save ends without a file, and it is not a failure.
    bgsave_forkless(&mut conn);
    conn.assert_cmd(&["BGSAVE"], b"-ERR Background save already in progress\r\n");
    conn.assert_cmd(&["SAVE"], b"-ERR Background save already in progress\r\n");
    conn.assert_cmd(&["BGSAVE", "CANCEL"], b"+Background saving cancelled\r\n");
    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok");
    assert!(fs::read(&file).unwrap() == old, "dump.rdb changed");
    assert_eq!(temp_files(&server.dir), Vec::<String>::new());
    let latest = conn.cmd(&["SNAPSHOT", "LATEST"]);
    let needle = b"$6\r\nstatus\r\n$9\r\ncancelled\r\n$6\r\nmethod\r\n$8\r\nforkless\r\n";
    assert!(
        latest.windows(needle.len()).any(|w| w == needle),
        "SNAPSHOT LATEST after a cancel: {}",
        show(&latest)
    );

    // FLUSHALL: the save ends, as a fork child is killed.
    bgsave_forkless(&mut conn);
    ok(&mut conn, &["FLUSHALL"]);
    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok");
    assert_eq!(temp_files(&server.dir), Vec::<String>::new());

    // SHUTDOWN SAVE: the forkless save is cancelled, the final save holds the data now.
    populate(&mut conn, 50);
    ok(&mut conn, &["SET", "last", "words"]);
    let want = dump(&mut conn, ALL_DBS);
    bgsave_forkless(&mut conn);
    conn.send_cmd(&["SHUTDOWN", "SAVE"]).expect("SHUTDOWN");
    conn.wait_closed(WAIT).expect("the connection to close");
    let status = server.wait_exit(WAIT).expect("the server to exit");
    assert!(status.success(), "exit status {status}");
    assert_eq!(temp_files(&server.dir), Vec::<String>::new());
    check_rdb(&file);
    assert_same(
        "the file SHUTDOWN SAVE wrote",
        &load_copy(Server::forkdb, &file),
        &want,
    );
}

#[test]
fn a_full_disk_fails_the_forkless_save_and_keeps_the_old_file() {
    let mut server = Server::forkdb(&["--save", "3600 1"]);
    let mut conn = server.conn();
    ok(&mut conn, &["SET", "small", "before the disk filled up"]);
    ok(&mut conn, &["SAVE"]);
    let file = server.dir.join(DBFILE);
    let old = fs::read(&file).unwrap();
    server.set_file_size_limit(Some(256 << 10));
    // Incompressible values (xorshift bytes as hex): about 2.4 MiB, whatever LZF does.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let cmds: Vec<_> = (0..300)
        .map(|i| {
            let v: String = (0..256)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    format!("{:016x}", x)
                })
                .collect();
            cmd(&["SET", &format!("k:{i}"), &v])
        })
        .collect();
    pipeline(&mut conn, &cmds);
    bgsave_forkless(&mut conn);
    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "err", "{p:?}");
    assert!(fs::read(&file).unwrap() == old, "dump.rdb changed");
    assert_eq!(temp_files(&server.dir), Vec::<String>::new());
    conn.assert_cmd(&["SET", "small", "x"], MISCONF);
    conn.assert_cmd(&["GET", "small"], b"$25\r\nbefore the disk filled up\r\n");
    assert!(
        server.log().contains("Write error saving DB on disk"),
        "no write error in the log:\n{}",
        server.log()
    );
    server.set_file_size_limit(None);
    bgsave_forkless(&mut conn);
    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok");
    ok(&mut conn, &["SET", "small", "y"]);
    check_rdb(&file);
    conn.send_cmd(&["SHUTDOWN", "NOSAVE"]).expect("SHUTDOWN");
    conn.wait_closed(WAIT).expect("the connection to close");
    server.wait_exit(WAIT).expect("the server to exit");
}

#[test]
fn a_fork_waits_for_the_writer_thread_and_the_default_method_is_a_config() {
    let server = Server::forkdb(&["--rdb-key-save-delay", "1000"]);
    let mut conn = server.conn();
    populate(&mut conn, 100);
    let threads = || {
        let status = fs::read_to_string(format!("/proc/{}/status", server.pid)).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("Threads:"))
            .expect("Threads: line")
            .to_string();
        line["Threads:".len()..].trim().parse::<u32>().unwrap()
    };
    assert_eq!(threads(), 1, "the server's threads before any save");
    bgsave_forkless(&mut conn);
    assert_eq!(threads(), 2, "the writer thread while the save runs");
    conn.assert_cmd(
        &["BGSAVE", "FORK"],
        b"-ERR Background save already in progress\r\n",
    );
    wait_save_done(&mut conn);
    // Right after the end: the writer thread is gone and a fork is taken at once.
    ok(&mut conn, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    conn.assert_cmd(&["BGSAVE", "FORK"], b"+Background saving started\r\n");
    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok");
    assert_eq!(field(&p, "rdb_last_bgsave_method"), "fork");
    // The fork save's sampler thread is stopped at the end and joined once it has ended
    // (by the cron, or before the next fork), not waited for on the event loop.
    poll_until(
        Duration::from_secs(10),
        "the sampler thread to be joined",
        || (threads() == 1).then_some(()),
    );

    conn.assert_cmd(
        &["CONFIG", "GET", "bgsave-default-method"],
        b"*2\r\n$21\r\nbgsave-default-method\r\n$4\r\nfork\r\n",
    );
    ok(
        &mut conn,
        &["CONFIG", "SET", "bgsave-default-method", "forkless"],
    );
    let err = conn.cmd(&["CONFIG", "SET", "bgsave-default-method", "thread"]);
    assert!(err.starts_with(b"-ERR"), "{}", show(&err));
    conn.assert_cmd(&["BGSAVE"], b"+Background saving started\r\n");
    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_method"), "forkless");
    // Inside MULTI the save is scheduled, and runs with the method asked for.
    ok(&mut conn, &["MULTI"]);
    conn.assert_cmd(&["BGSAVE", "FORK"], b"+QUEUED\r\n");
    conn.assert_cmd(&["EXEC"], b"*1\r\n+Background saving scheduled\r\n");
    poll_until(WAIT, "the scheduled fork save to run and end", || {
        let p = info(&mut conn, "persistence");
        (field(&p, "rdb_last_bgsave_method") == "fork"
            && field(&p, "rdb_bgsave_in_progress") == "0")
            .then_some(())
    });
    for bad in [&["BGSAVE", "FORK", "FORKLESS"][..], &["BGSAVE", "NOW"][..]] {
        let r = conn.cmd(bad);
        assert_eq!(show(&r), show(b"-ERR syntax error\r\n"), "{bad:?}");
    }
    assert_eq!(text(conn.frame(&["PING"])), "PONG");
}

/// The nice value of the server's forkless writer thread (`forkdb-save`), if it lives.
fn writer_nice(pid: u32) -> Option<i64> {
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let comm = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != "forkdb-save" {
            continue;
        }
        let stat = fs::read_to_string(task.path().join("stat")).ok()?;
        // After "(comm) ", field 3 (state) comes first; the nice value is field 19.
        let rest = &stat[stat.rfind(')')? + 2..];
        return rest.split_whitespace().nth(16)?.parse().ok();
    }
    None
}

/// A writer thread that falls behind the writes stores values raw (LZF paused) until it has
/// caught up: the file still passes redis-check-rdb and loads, in forkdb and in redis-server,
/// as the data of the start, and it is larger than the fork's file of the same compressible
/// data by about the values it stored raw. The writer thread runs at the lower priority
/// `bgsave-forkless-writer-nice` asks for.
#[test]
fn a_writer_behind_the_writes_stores_values_raw_and_the_file_is_the_same() {
    const KEYS: usize = 4096;
    let server = Server::forkdb(&[
        "--bgsave-forkless-queue-bytes",
        "262144",
        "--bgsave-forkless-writer-nice",
        "19",
    ]);
    let mut conn = server.conn();
    // About 4 KiB each, and LZF makes each a few hundred bytes.
    let value = |tag: &str, i: usize| format!("{tag}-{i:06}-").repeat(4096 / 11);
    let sets = |tag: &str| -> Vec<Vec<String>> {
        (0..KEYS)
            .map(|i| cmd(&["SET", &format!("k:{i}"), &value(tag, i)]))
            .collect()
    };
    pipeline(&mut conn, &sets("old"));
    let want = dump(&mut conn, [0]);
    let copies = TempDir::new("forkless-raw");
    let keep = |name: &str| {
        let to = copies.path().join(name);
        fs::copy(server.dir.join(DBFILE), &to).expect("copy");
        check_rdb(&to);
        to
    };
    conn.assert_cmd(&["BGSAVE", "FORK"], b"+Background saving started\r\n");
    assert_eq!(
        field(&wait_save_done(&mut conn), "rdb_last_bgsave_status"),
        "ok"
    );
    let fork = keep("FORK.rdb");

    // The walk slowed to a key per 200 µs: the overwrites below reach nearly every key before
    // it does, and the write path sends their old values, 16 MiB, through a 256 KiB queue.
    ok(&mut conn, &["CONFIG", "SET", "rdb-key-save-delay", "200"]);
    bgsave_forkless(&mut conn);
    let nice = poll_until(WAIT, "the writer thread", || writer_nice(server.pid));
    assert_eq!(nice, 19, "the writer thread's nice value");
    pipeline(&mut conn, &sets("new"));
    let p = wait_save_done(&mut conn);
    assert_eq!(field(&p, "rdb_last_bgsave_status"), "ok");
    let forkless = keep("FORKLESS.rdb");

    let log = server.log();
    let raw: u64 = log
        .lines()
        .filter(|l| l.contains("Background saving terminated with success"))
        .find_map(|l| l.split("uncompressed=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no uncompressed= in the log:\n{log}"));
    assert!(raw > 0, "the writer never fell behind: {log}");
    let (fork_len, forkless_len) = (
        fs::metadata(&fork).unwrap().len(),
        fs::metadata(&forkless).unwrap().len(),
    );
    assert!(
        forkless_len >= fork_len + raw * 3000,
        "{raw} values stored raw, yet the forkless file has {forkless_len} bytes, the fork's {fork_len}"
    );
    assert_same(
        "the forkless file, loaded by forkdb",
        &load_copy(Server::forkdb, &forkless),
        &want,
    );
    assert_same(
        "the forkless file, loaded by redis-server",
        &load_copy(Server::redis, &forkless),
        &want,
    );
}
