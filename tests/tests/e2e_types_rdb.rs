//! Containers in the RDB file, both ways, against a real redis-server 7.0: forkdb's BGSAVE and
//! SAVE files pass redis-check-rdb and load in redis-server with the same content, encodings and
//! TTLs; redis-server's files load in forkdb the same way; DEBUG RELOAD keeps everything.
//!
//! The data set has each container type (lists, hashes, sets, sorted sets) small (the compact encoding, written by reference as a
//! blob) and large (the table or skiplist form, written element by element), with TTLs and in
//! two databases.

use std::fs;
use std::path::Path;

use forkdb_tests::server::TempDir;
use forkdb_tests::snapshot::{assert_same, check_rdb, text, wait_loaded, Dump, WAIT};
use forkdb_tests::{poll_until, Conn, Frame, Server};

/// The data set's keys: databases 0 and 3.
fn dump(conn: &mut Conn) -> Dump {
    forkdb_tests::snapshot::dump(conn, [0, 3])
}

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
