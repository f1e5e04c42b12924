//! Containers in the RDB file, both ways, against a real redis-server 7.0: forkdb's BGSAVE and
//! SAVE files pass redis-check-rdb and load in redis-server with the same content, encodings and
//! TTLs; redis-server's files load in forkdb the same way; DEBUG RELOAD keeps everything.
//!
//! The data set has each container type (lists, hashes, sets, sorted sets) small (the compact encoding, written by reference as a
//! blob) and large (the table or skiplist form, written element by element), with TTLs and in
//! two databases.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use forkdb_tests::server::{redis_check_rdb_bin, run_with_deadline, TempDir};
use forkdb_tests::{poll_until, Conn, Frame, Server};

const WAIT: Duration = Duration::from_secs(30);

/// The commands that build the data set (db 0 unless a SELECT says otherwise).
fn dataset_commands() -> Vec<Vec<String>> {
    let mut cmds: Vec<Vec<String>> = Vec::new();
    let c = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Hashes: listpack, table by entry count, table by value length.
    cmds.push(c(&["HSET", "h:small", "a", "1", "b", "two", "c", "-3"]));
    let mut big = c(&["HSET", "h:big"]);
    for i in 0..700 {
        big.push(format!("field:{i}"));
        big.push(format!("value:{i}"));
    }
    cmds.push(big);
    cmds.push(vec![
        "HSET".into(),
        "h:long".into(),
        "f".into(),
        "x".repeat(100),
    ]);
    // Sets: intset, integers past the intset limit, strings.
    cmds.push(c(&["SADD", "s:ints", "1", "-5", "70000", "5000000000"]));
    let mut many = c(&["SADD", "s:manyints"]);
    many.extend((0..600).map(|i| (i * 7).to_string()));
    cmds.push(many);
    cmds.push(c(&["SADD", "s:strs", "apple", "pear", "12", "fig"]));
    // Sorted sets: listpack (integral, fractional, infinite scores), skiplist by count and by
    // member length.
    cmds.push(c(&[
        "ZADD", "z:small", "1", "one", "2.5", "two.5", "-inf", "low", "inf", "high", "3", "7",
    ]));
    let mut bigz = c(&["ZADD", "z:big"]);
    for i in 0..300 {
        bigz.push(format!("{}.25", i % 50));
        bigz.push(format!("member:{i}"));
    }
    cmds.push(bigz);
    cmds.push(vec![
        "ZADD".into(),
        "z:long".into(),
        "1".into(),
        "m".repeat(80),
    ]);
    // Lists: one node, several nodes (10k items of ~12 bytes pass the 8 KiB node size), and
    // integers of several widths.
    cmds.push(c(&[
        "RPUSH",
        "l:small",
        "a",
        "b",
        "-1",
        "300",
        "70000",
        "5000000000",
    ]));
    let mut bigl = c(&["RPUSH", "l:big"]);
    bigl.extend((0..10_000).map(|i| format!("item:{i:07}")));
    cmds.push(bigl);
    cmds.push(c(&["LPUSH", "l:big", "head"]));
    cmds.push(c(&["LINSERT", "l:big", "BEFORE", "item:0005000", "middle"]));
    // TTLs and a second database.
    cmds.push(c(&["PEXPIREAT", "h:small", "4102444800000"]));
    cmds.push(c(&["PEXPIREAT", "z:big", "4102444800123"]));
    cmds.push(c(&["SELECT", "3"]));
    cmds.push(c(&["HSET", "h:db3", "k", "v"]));
    cmds.push(c(&["SADD", "s:db3", "9"]));
    cmds.push(c(&["ZADD", "z:db3", "0", "zero"]));
    cmds.push(c(&["SET", "str:db3", "plain"]));
    cmds.push(c(&["RPUSH", "l:db3", "x"]));
    cmds.push(c(&["PEXPIREAT", "l:db3", "4102444800999"]));
    cmds.push(c(&["SELECT", "0"]));
    cmds
}

fn populate(conn: &mut Conn) {
    for cmd in dataset_commands() {
        if let Frame::Error(e) = conn.frame(&cmd) {
            panic!("{cmd:?}: {e}");
        }
    }
}

/// (db, key) → (type, encoding, content as sorted lines, PEXPIRETIME).
type Dump = BTreeMap<(u32, Vec<u8>), (String, String, Vec<Vec<u8>>, i64)>;

fn bulks(f: Frame) -> Vec<Vec<u8>> {
    match f {
        Frame::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Frame::Bulk(b) => b,
                other => panic!("not a bulk string: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

fn text(f: Frame) -> String {
    match f {
        Frame::Simple(s) => s,
        Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("not text: {other:?}"),
    }
}

fn dump(conn: &mut Conn) -> Dump {
    let mut out = Dump::new();
    for db in [0u32, 3] {
        assert_eq!(text(conn.frame(&["SELECT", &db.to_string()])), "OK");
        for key in bulks(conn.frame(&["KEYS", "*"])) {
            let k = key.as_slice();
            let kind = text(conn.frame(&[b"TYPE".as_slice(), k]));
            let enc = text(conn.frame(&[b"OBJECT".as_slice(), b"ENCODING", k]));
            let mut content = match kind.as_str() {
                "string" => bulks(Frame::Array(vec![conn.frame(&[b"GET".as_slice(), k])])),
                "hash" => bulks(conn.frame(&[b"HGETALL".as_slice(), k]))
                    .chunks(2)
                    .map(|p| [p[0].as_slice(), b"=", p[1].as_slice()].concat())
                    .collect(),
                "set" => bulks(conn.frame(&[b"SMEMBERS".as_slice(), k])),
                "zset" => bulks(conn.frame(&[b"ZRANGE".as_slice(), k, b"0", b"-1", b"WITHSCORES"])),
                "list" => bulks(conn.frame(&[b"LRANGE".as_slice(), k, b"0", b"-1"])),
                other => panic!("unexpected type {other}"),
            };
            // Order inside a zset or list is part of the value; a hash's or set's is not.
            if kind == "hash" || kind == "set" {
                content.sort();
            }
            let at = match conn.frame(&[b"PEXPIRETIME".as_slice(), k]) {
                Frame::Integer(n) => n,
                other => panic!("PEXPIRETIME gave {other:?}"),
            };
            out.insert((db, key.clone()), (kind, enc, content, at));
        }
    }
    assert_eq!(text(conn.frame(&["SELECT", "0"])), "OK");
    out
}

#[track_caller]
fn assert_same(what: &str, got: &Dump, want: &Dump) {
    let mut diffs = Vec::new();
    for (key, w) in want {
        match got.get(key) {
            None => diffs.push(format!("{key:?}: missing")),
            Some(g) if g != w => diffs.push(format!(
                "db{} {}: got {} {} ({} items, PEXPIRETIME {}), want {} {} ({} items, PEXPIRETIME {})",
                key.0,
                String::from_utf8_lossy(&key.1),
                g.0,
                g.1,
                g.2.len(),
                g.3,
                w.0,
                w.1,
                w.2.len(),
                w.3
            )),
            Some(_) => {}
        }
    }
    for key in got.keys().filter(|k| !want.contains_key(*k)) {
        diffs.push(format!("{key:?}: not expected"));
    }
    assert!(diffs.is_empty(), "{what}:\n{}", diffs.join("\n"));
}

fn check_rdb(path: &Path) {
    let mut cmd = Command::new(redis_check_rdb_bin());
    cmd.arg(path);
    let out = run_with_deadline(cmd, None, WAIT);
    assert!(
        out.status.success(),
        "redis-check-rdb {}: {}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_loaded(conn: &mut Conn) {
    poll_until(WAIT, "the load to finish", || {
        let info = text(conn.frame(&["INFO", "persistence"]));
        info.contains("loading:0").then_some(())
    });
}

fn wait_bgsave(conn: &mut Conn) {
    assert_eq!(text(conn.frame(&["BGSAVE"])), "Background saving started");
    poll_until(WAIT, "the BGSAVE to end", || {
        let info = text(conn.frame(&["INFO", "persistence"]));
        info.contains("rdb_bgsave_in_progress:0").then_some(())
    });
    let info = text(conn.frame(&["INFO", "persistence"]));
    assert!(info.contains("rdb_last_bgsave_status:ok"), "{info}");
}

/// A server of `kind` that loads a copy of `file` (copied, so nothing writes over the original).
fn load_copy(start: impl Fn(&[&str]) -> Server, file: &Path) -> (TempDir, Server, Conn) {
    let dir = TempDir::new("types-rdb");
    fs::copy(file, dir.path().join("dump.rdb")).expect("copy the file");
    let server = start(&["--dir", dir.path().to_str().expect("utf-8")]);
    let mut conn = server.conn();
    wait_loaded(&mut conn);
    (dir, server, conn)
}

#[test]
fn forkdb_container_files_load_in_redis_with_the_same_content() {
    let redis = Server::redis(&[]);
    let mut rc = redis.conn();
    populate(&mut rc);
    let want = dump(&mut rc);
    assert_eq!(want.len(), 16, "keys in the data set");

    for opts in [&[][..], &["--rdbcompression", "no"][..]] {
        let forkdb = Server::forkdb(&[opts, &["--enable-debug-command", "yes"]].concat());
        let mut conn = forkdb.conn();
        populate(&mut conn);
        assert_same("forkdb itself", &dump(&mut conn), &want);
        for how in ["BGSAVE", "SAVE"] {
            if how == "SAVE" {
                assert_eq!(text(conn.frame(&["SAVE"])), "OK");
            } else {
                wait_bgsave(&mut conn);
            }
            let file = forkdb.dir.join("dump.rdb");
            check_rdb(&file);
            let (_dir, _redis, mut loaded) = load_copy(Server::redis, &file);
            assert_same(
                &format!("redis-server loading forkdb's {how} file {opts:?}"),
                &dump(&mut loaded),
                &want,
            );
        }
        assert_eq!(text(conn.frame(&["DEBUG", "RELOAD"])), "OK");
        assert_same("forkdb after DEBUG RELOAD", &dump(&mut conn), &want);
    }
}

#[test]
fn redis_container_files_load_in_forkdb_with_the_same_content() {
    for opts in [&[][..], &["--rdbcompression", "no"][..]] {
        let redis = Server::redis(opts);
        let mut rc = redis.conn();
        populate(&mut rc);
        let want = dump(&mut rc);
        assert_eq!(text(rc.frame(&["SAVE"])), "OK");
        let file = redis.dir.join("dump.rdb");
        let before = fs::read(&file).expect("read redis's file");
        let (dir, _forkdb, mut conn) = load_copy(Server::forkdb, &file);
        assert_same(
            &format!("forkdb loading redis-server's file {opts:?}"),
            &dump(&mut conn),
            &want,
        );
        let info = text(conn.frame(&["INFO", "persistence"]));
        assert!(
            info.contains(&format!("rdb_last_load_keys_loaded:{}", want.len())),
            "{info}"
        );
        assert_eq!(
            fs::read(dir.path().join("dump.rdb")).expect("read the copy"),
            before,
            "loading changed the file"
        );
    }
}
