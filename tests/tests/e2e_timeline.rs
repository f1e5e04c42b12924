//! SNAPSHOT (forkdb's own command) and INFO's `snapshot` section: the per-save copy-on-write
//! timelines. Redis has no equivalent, so these run against forkdb only.

use std::collections::BTreeMap;
use std::time::Duration;

use forkdb_tests::{poll_until, Conn, Frame, Server};

const SAVE_TIMEOUT: Duration = Duration::from_secs(30);

/// A RESP2 flat array of name/value pairs (or a RESP3 map) as a map of names to frames.
fn as_map(frame: Frame) -> BTreeMap<String, Frame> {
    let pairs: Vec<(Frame, Frame)> = match frame {
        Frame::Map(pairs) => pairs,
        Frame::Array(items) => {
            assert!(items.len() % 2 == 0, "odd flat map: {items:?}");
            let mut it = items.into_iter();
            std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
        }
        other => panic!("expected a map, got {other:?}"),
    };
    pairs
        .into_iter()
        .map(|(k, v)| (k.as_text().expect("field name"), v))
        .collect()
}

#[track_caller]
fn int_field(map: &BTreeMap<String, Frame>, name: &str) -> i64 {
    match map.get(name) {
        Some(Frame::Integer(n)) => *n,
        other => panic!("{name}: expected an integer, got {other:?} in {map:?}"),
    }
}

fn info_field(conn: &mut Conn, section: &str, name: &str) -> Option<String> {
    let text = conn.frame(&["INFO", section]).as_text()?;
    text.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn bgsave_and_wait(conn: &mut Conn) {
    conn.assert_cmd(&["BGSAVE"], b"+Background saving started\r\n");
    poll_until(SAVE_TIMEOUT, "the save to end", || {
        (info_field(conn, "persistence", "rdb_bgsave_in_progress").as_deref() == Some("0"))
            .then_some(())
    });
}

fn fill(conn: &mut Conn, n: usize, size: usize) {
    let value = vec![b'v'; size];
    for i in 0..n {
        let key = format!("k:{i}");
        assert_eq!(
            conn.cmd(&[b"SET".as_slice(), key.as_bytes(), &value]),
            b"+OK\r\n"
        );
    }
}

#[test]
fn snapshot_latest_and_samples_describe_the_last_save() {
    // 400 keys at 2 ms each: a save of about 0.8 s, sampled every 50 ms.
    let server = Server::forkdb(&[
        "--rdb-key-save-delay",
        "2000",
        "--snapshot-sample-interval",
        "50",
    ]);
    let mut conn = server.conn();
    assert_eq!(
        conn.frame(&["SNAPSHOT", "LATEST"]),
        Frame::NullBulk,
        "no save yet"
    );
    fill(&mut conn, 400, 5000);
    bgsave_and_wait(&mut conn);

    let latest = as_map(conn.frame(&["SNAPSHOT", "LATEST"]));
    assert_eq!(
        latest.get("status"),
        Some(&Frame::Bulk(b"ok".to_vec())),
        "{latest:?}"
    );
    assert_eq!(int_field(&latest, "keys_total"), 400);
    assert!(int_field(&latest, "duration_ms") >= 700, "{latest:?}");
    assert!(int_field(&latest, "fork_usec") > 0, "{latest:?}");
    let n_samples = int_field(&latest, "samples");
    assert!(
        n_samples >= 5,
        "a 0.8 s save sampled every 50 ms: {latest:?}"
    );
    let id = int_field(&latest, "id");

    let samples = match conn.frame(&["SNAPSHOT", "SAMPLES", &id.to_string()]) {
        Frame::Array(items) => items.into_iter().map(as_map).collect::<Vec<_>>(),
        other => panic!("SNAPSHOT SAMPLES: {other:?}"),
    };
    assert_eq!(samples.len() as i64, n_samples);
    let ms: Vec<i64> = samples.iter().map(|s| int_field(s, "ms")).collect();
    assert!(
        ms.windows(2).all(|w| w[0] <= w[1]),
        "sample times go forward: {ms:?}"
    );
    let keys: Vec<i64> = samples.iter().map(|s| int_field(s, "keys")).collect();
    assert!(
        keys.windows(2).all(|w| w[0] <= w[1]),
        "keys processed go forward: {keys:?}"
    );
    assert_eq!(
        keys.last(),
        Some(&400),
        "the last sample has every key: {keys:?}"
    );
    for s in &samples {
        assert!(
            int_field(s, "parent_rss") > 0 && int_field(s, "child_rss") > 0,
            "{s:?}"
        );
    }
    // The last sample is the child's exit, the others are periodic; no writes ran.
    let exits: Vec<i64> = samples
        .iter()
        .map(|s| int_field(s, "at_child_exit"))
        .collect();
    assert_eq!(exits.last(), Some(&1), "{exits:?}");
    assert_eq!(exits.iter().sum::<i64>(), 1, "{exits:?}");
    assert_eq!(int_field(&latest, "writes"), 0);
    // Sampled at the interval (the median gap; one preemption of a busy machine is no bug).
    let mut gaps: Vec<i64> = ms.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    assert!(gaps[gaps.len() / 2] <= 100, "sample times {ms:?}");

    // INFO snapshot summarises the same save.
    assert_eq!(
        info_field(&mut conn, "snapshot", "snapshot_last_id"),
        Some(id.to_string())
    );
    assert_eq!(
        info_field(&mut conn, "snapshot", "snapshot_last_status").as_deref(),
        Some("ok")
    );
    assert_eq!(
        info_field(&mut conn, "snapshot", "snapshot_sample_interval_ms").as_deref(),
        Some("50")
    );

    // RESP3: maps.
    conn.frame(&["HELLO", "3"]);
    assert!(matches!(conn.frame(&["SNAPSHOT", "LATEST"]), Frame::Map(_)));

    // Errors.
    assert!(matches!(
        conn.frame(&["SNAPSHOT", "SAMPLES", "999"]),
        Frame::Error(_)
    ));
    assert!(matches!(
        conn.frame(&["SNAPSHOT", "SAMPLES", "x"]),
        Frame::Error(_)
    ));
    assert!(
        matches!(conn.frame(&["SNAPSHOT", "NOSUCH"]), Frame::Error(e) if e.contains("unknown subcommand"))
    );
}

#[test]
fn snapshot_history_keeps_sixteen_saves_and_drops_the_oldest() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    fill(&mut conn, 10, 10);
    for _ in 0..17 {
        bgsave_and_wait(&mut conn);
    }
    let history = match conn.frame(&["SNAPSHOT", "HISTORY"]) {
        Frame::Array(items) => items.into_iter().map(as_map).collect::<Vec<_>>(),
        other => panic!("SNAPSHOT HISTORY: {other:?}"),
    };
    let ids: Vec<i64> = history.iter().map(|h| int_field(h, "id")).collect();
    assert_eq!(
        ids,
        (2..=17).rev().collect::<Vec<i64>>(),
        "newest first, the first save dropped"
    );
    match conn.frame(&["SNAPSHOT", "HISTORY", "3"]) {
        Frame::Array(items) => assert_eq!(items.len(), 3),
        other => panic!("SNAPSHOT HISTORY 3: {other:?}"),
    }
    assert!(
        matches!(conn.frame(&["SNAPSHOT", "SAMPLES", "1"]), Frame::Error(_)),
        "id 1 was dropped"
    );
    assert!(matches!(conn.frame(&["SNAPSHOT", "SAMPLES", "17"]), Frame::Array(s) if !s.is_empty()));

    conn.assert_cmd(&["SNAPSHOT", "RESET"], b"+OK\r\n");
    assert_eq!(conn.frame(&["SNAPSHOT", "HISTORY"]), Frame::Array(vec![]));
    assert_eq!(conn.frame(&["SNAPSHOT", "LATEST"]), Frame::NullBulk);
}

/// On a data set smaller than the child's own working memory, peak COW is larger than the
/// data set: the figures must say what they are relative to, and agree with each other.
#[test]
fn tiny_save_reports_consistent_figures() {
    let server = Server::forkdb(&[]);
    let mut conn = server.conn();
    fill(&mut conn, 3, 10);
    bgsave_and_wait(&mut conn);
    let latest = as_map(conn.frame(&["SNAPSHOT", "LATEST"]));
    let peak = int_field(&latest, "peak_cow_bytes");
    let page = int_field(&latest, "page_size");
    assert!(peak > 0, "{latest:?}");
    assert_eq!(int_field(&latest, "peak_cow_pages"), peak / page);
    let used = int_field(&latest, "used_memory_at_fork");
    let perc: f64 = match latest.get("peak_cow_perc_of_used_memory") {
        Some(Frame::Bulk(b)) => String::from_utf8_lossy(b).parse().unwrap(),
        other => panic!("peak_cow_perc_of_used_memory: {other:?}"),
    };
    assert!(
        (perc - peak as f64 * 100.0 / used as f64).abs() < 0.01,
        "{perc} vs {peak} / {used}"
    );
    // INFO says the same, with its base.
    let mut info = |name: &str| info_field(&mut conn, "snapshot", name).unwrap_or_default();
    assert_eq!(info("snapshot_last_peak_cow_bytes"), peak.to_string());
    assert_eq!(info("snapshot_last_used_memory_at_fork"), used.to_string());
    assert_eq!(
        info("snapshot_last_peak_cow_perc_of_used_memory"),
        format!("{perc:.2}")
    );
    assert_eq!(
        info("snapshot_last_parent_minor_faults"),
        int_field(&latest, "parent_minor_faults").to_string()
    );
    assert_eq!(info("snapshot_last_pages_copied"), "", "renamed");
}

/// The names of the server's threads (`/proc/<pid>/task/*/comm`).
fn thread_names(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_owned())
        .collect()
}

#[test]
fn the_sampler_thread_lives_only_while_the_child_does() {
    // The save's /proc readings are taken by a thread of their own, so that they do not stop
    // the clients (docs/cow.md). The server forks only when it has one thread. At the save's
    // end the sampler is told to stop and not waited for (it may be in the middle of a
    // reading); the cron joins it once it has ended, and a BGSAVE before that joins it first.
    let server = Server::forkdb(&[
        "--rdb-key-save-delay",
        "2000",
        "--snapshot-sample-interval",
        "20",
    ]);
    let mut conn = server.conn();
    fill(&mut conn, 200, 5000);
    conn.assert_cmd(&["BGSAVE"], b"+Background saving started\r\n");
    poll_until(SAVE_TIMEOUT, "the sampler thread to start", || {
        thread_names(server.pid)
            .iter()
            .any(|n| n.starts_with("snapshot-sampl"))
            .then_some(())
    });
    poll_until(SAVE_TIMEOUT, "the save to end", || {
        (info_field(&mut conn, "persistence", "rdb_bgsave_in_progress").as_deref() == Some("0"))
            .then_some(())
    });
    // Gone within a few cron ticks (10 a second) of the save's end.
    poll_until(
        Duration::from_secs(5),
        "the sampler thread to be joined",
        || (thread_names(server.pid).len() == 1).then_some(()),
    );
    let latest = as_map(conn.frame(&["SNAPSHOT", "LATEST"]));
    assert!(
        int_field(&latest, "samples") >= 3,
        "the thread's readings became samples: {latest:?}"
    );

    // Back to back, with no pause between the end of one save and the next BGSAVE: none is
    // refused for a thread still counted.
    conn.assert_cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"], b"+OK\r\n");
    for _ in 0..20 {
        bgsave_and_wait(&mut conn);
    }
    assert_eq!(
        info_field(&mut conn, "persistence", "rdb_last_bgsave_status").as_deref(),
        Some("ok")
    );
}
