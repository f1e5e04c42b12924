//! Bitmap and in-place string writes during a snapshot: SETBIT, SETRANGE and APPEND change the
//! bytes of a large value where they are, so while a fork child lives each write copies the one
//! page it touches, not the whole value (replies are checked against redis-server in the
//! differential corpus, `tests/corpus/14_bitmaps.txt`; this is forkdb's memory behaviour).
//!
//! The measure is the parent's minor page faults during the save (`SNAPSHOT LATEST`
//! `parent_minor_faults`): every page the parent copies on write is one fault. The same test
//! replaces each value whole during a second save, to show that the measure sees copies.

use std::collections::BTreeMap;
use std::time::Duration;

use forkdb_tests::{poll_until, Conn, Frame, Server};

const SAVE_TIMEOUT: Duration = Duration::from_secs(60);
const KEYS: usize = 8;
/// Just under 1 MiB: a value of whole pages (256) with room to APPEND in place.
const SIZE: usize = (1 << 20) - 100;

fn info_field(conn: &mut Conn, section: &str, name: &str) -> Option<String> {
    let text = conn.frame(&["INFO", section]).as_text()?;
    text.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn saving(conn: &mut Conn) -> bool {
    info_field(conn, "persistence", "rdb_bgsave_in_progress").as_deref() == Some("1")
}

fn wait_save(conn: &mut Conn) {
    poll_until(SAVE_TIMEOUT, "the save to end", || {
        (!saving(conn)).then_some(())
    });
}

fn parent_faults_of_last_save(conn: &mut Conn) -> i64 {
    let items = match conn.frame(&["SNAPSHOT", "LATEST"]) {
        Frame::Array(items) => items,
        other => panic!("SNAPSHOT LATEST: {other:?}"),
    };
    let mut it = items.into_iter();
    let map: BTreeMap<String, Frame> =
        std::iter::from_fn(|| Some((it.next()?.as_text()?, it.next()?))).collect();
    match map.get("parent_minor_faults") {
        Some(Frame::Integer(n)) => *n,
        other => panic!("parent_minor_faults: {other:?} in {map:?}"),
    }
}

/// Runs `writes` while a save of KEYS values of SIZE bytes is under way (each key takes the
/// child 150 ms) and returns the parent's page faults during that save.
fn faults_during_save(conn: &mut Conn, writes: impl Fn(&mut Conn, &str)) -> i64 {
    conn.assert_cmd(&["BGSAVE"], b"+Background saving started\r\n");
    for i in 0..KEYS {
        writes(conn, &format!("bm:{i}"));
    }
    assert!(
        saving(conn),
        "the writes must land while the child lives (rdb-key-save-delay too short?)"
    );
    wait_save(conn);
    parent_faults_of_last_save(conn)
}

#[test]
fn bit_and_range_writes_during_a_save_copy_a_page_not_the_value() {
    let server = Server::forkdb(&["--rdb-key-save-delay", "150000"]);
    let mut conn = server.conn();
    let value = vec![0x42u8; SIZE];
    for i in 0..KEYS {
        conn.assert_cmd(
            &[b"SET".as_slice(), format!("bm:{i}").as_bytes(), &value],
            b"+OK\r\n",
        );
    }
    let in_place = faults_during_save(&mut conn, |c, key| {
        // Bits in the middle and at the end, a range, and a few bytes appended.
        c.assert_cmd(&["SETBIT", key, "4194300", "1"], b":0\r\n");
        c.assert_cmd(&["SETRANGE", key, "700000", "abcd"], b":1048476\r\n");
        c.assert_cmd(&["APPEND", key, "xyz"], b":1048479\r\n");
    });
    // Whole copies, for comparison: the same number of commands, each writing a new value.
    let copies = faults_during_save(&mut conn, |c, key| {
        c.assert_cmd(&[b"SET".as_slice(), key.as_bytes(), &value], b"+OK\r\n");
    });
    let pages_per_value = (SIZE / 4096) as i64;
    eprintln!("parent page faults during a save: in place {in_place}, whole copies {copies}");
    // In place: a few pages per key plus the server's own working pages (about 60 here), far
    // below one value's pages per key; copies fault in every page of every new value.
    assert!(
        copies >= KEYS as i64 * pages_per_value / 2,
        "the measure must see whole-value copies: {copies} faults"
    );
    assert!(
        in_place < KEYS as i64 * pages_per_value / 4,
        "in-place writes faulted {in_place} pages (whole copies: {copies})"
    );

    // And the writes are all there.
    let key = "bm:3";
    conn.assert_cmd(&["SET", key, "x"], b"+OK\r\n");
    conn.assert_cmd(&["SETBIT", key, "4194300", "1"], b":0\r\n");
    conn.assert_cmd(&["GETBIT", key, "4194300"], b":1\r\n");
    conn.assert_cmd(&["STRLEN", key], b":524288\r\n");
    conn.assert_cmd(&["OBJECT", "ENCODING", key], b"$3\r\nraw\r\n");
}
