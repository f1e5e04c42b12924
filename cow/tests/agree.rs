//! The server's own account of a save (SNAPSHOT LATEST / SAMPLES) against forkdb-cow's outside
//! measurement of the same save, under a full-speed write load: they must agree.
//!
//! The writers run at full speed for the first 800 ms of a save that lasts at least 1.2 s
//! (8192 keys at 150 µs each), then stop (`--write-ms`), so every write is answered while the
//! child lives and both sides count the same set of writes: exactly. forkdb's copy-on-write
//! reductions are off (as in `forkdb.rs`), so the child gives nothing back and its COW stays at
//! its peak from the writers' stop to its exit: both sides' samples see that plateau.

mod common;

use std::collections::BTreeMap;

use common::{run_tool, start_forkdb_with, TempDir};
use forkdb_cow::resp::Conn;
use forkdb_protocol::Frame;

/// The server's sampling interval in this test (ms).
const INTERVAL_MS: i64 = 50;

/// A RESP2 flat array of name/value pairs (or a RESP3 map) as names → frames.
fn as_map(frame: Frame) -> BTreeMap<String, Frame> {
    let pairs: Vec<(Frame, Frame)> = match frame {
        Frame::Map(pairs) => pairs,
        Frame::Array(items) => {
            let mut it = items.into_iter();
            std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
        }
        other => panic!("expected a map, got {other:?}"),
    };
    pairs
        .into_iter()
        .map(|(k, v)| match k {
            Frame::Bulk(b) => (String::from_utf8_lossy(&b).into_owned(), v),
            other => panic!("field name {other:?}"),
        })
        .collect()
}

#[track_caller]
fn int(map: &BTreeMap<String, Frame>, name: &str) -> i64 {
    match map.get(name) {
        Some(Frame::Integer(n)) => *n,
        other => panic!("{name}: expected an integer, got {other:?} in {map:?}"),
    }
}

#[test]
fn snapshot_and_forkdb_cow_agree_under_full_write_load() {
    let server = start_forkdb_with(&[
        "--snapshot-child-release",
        "no",
        "--inline-values",
        "no",
        "--snapshot-sample-interval",
        &INTERVAL_MS.to_string(),
    ]);
    let tmp = TempDir::new("agree");
    let tool = run_tool(
        &server.addr,
        &[
            "--dataset-mib",
            "32",
            "--value-size",
            "4096",
            "--save-delay-us",
            "150",
            "--pattern",
            "uniform",
            "--rate",
            "max",
            "--write-ms",
            "800",
            "--sample-ms",
            "50",
        ],
        &tmp.0.join("run"),
    );
    assert_eq!(tool["save_status"], "ok", "{tool}");
    assert_eq!(
        tool["writes_within_save"], true,
        "the writers did not stop before the child exited: the save (≥ 1.2 s) was expected to \
         outlast the 800 ms of writes; {tool}"
    );

    let mut conn = Conn::connect(&server.addr).unwrap();
    let latest = as_map(conn.call(&[b"SNAPSHOT", b"LATEST"]).unwrap());
    let id = int(&latest, "id").to_string();
    let samples: Vec<BTreeMap<String, Frame>> = match conn
        .call(&[b"SNAPSHOT", b"SAMPLES", id.as_bytes()])
        .unwrap()
    {
        Frame::Array(items) => items.into_iter().map(as_map).collect(),
        other => panic!("SNAPSHOT SAMPLES: {other:?}"),
    };
    assert!(samples.len() >= 2, "{samples:?}");
    let last = samples.last().unwrap();

    // The figures both sides have, from the samples (the summary's fields are checked after).
    let server_writes = int(last, "writes");
    let tool_writes = tool["writes"].as_i64().unwrap();
    let server_faults = int(last, "minor_faults");
    let tool_faults = tool["minor_faults"].as_i64().unwrap();
    let server_cow = samples.iter().map(|s| int(s, "cow_bytes")).max().unwrap();
    let tool_cow = tool["peak_cow_bytes"].as_i64().unwrap();
    let ms: Vec<i64> = samples.iter().map(|s| int(s, "ms")).collect();
    let mut gaps: Vec<i64> = ms.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    let median_gap = gaps[gaps.len() / 2];
    eprintln!(
        "writes: server {server_writes}, forkdb-cow {tool_writes}\n\
         parent minor faults: server {server_faults}, forkdb-cow {tool_faults}\n\
         peak COW: server {server_cow} B, forkdb-cow {tool_cow} B\n\
         server samples: {} over {} ms, gaps median {median_gap} ms, max {} ms",
        samples.len(),
        int(&latest, "duration_ms"),
        gaps.last().unwrap()
    );

    // Writes: both count the same commands (every one answered while the child lived), so
    // exactly. The server's count used to stop at its last periodic sample.
    assert_eq!(server_writes, tool_writes, "writes during the save");

    // Faults: the server counts from right before its fork to the child's exit; forkdb-cow
    // from before it sends BGSAVE to after it saw the exit and its writers stopped. The edges
    // add only the parent's first touches of pages there (parsing BGSAVE, the reap, a log
    // line, INFO replies): tens of faults, measured. 3% + 256 leaves room for a busy machine;
    // a count that misses the end of the save (the old last sample, taken up to a second
    // early) or starts late misses hundreds to thousands.
    let tolerance = tool_faults * 3 / 100 + 256;
    assert!(
        (server_faults - tool_faults).abs() <= tolerance,
        "parent minor faults: server {server_faults}, forkdb-cow {tool_faults} (± {tolerance})"
    );

    // Peak COW: the same kernel figure (the child's Private_Dirty), at a plateau from the
    // writers' stop to the child's exit, which both sides sample. What may differ is what the
    // child itself dirties between the two reads (its stack, its buffers): within 2%.
    assert!(
        (server_cow - tool_cow).abs() * 50 <= tool_cow,
        "peak COW: server {server_cow} B, forkdb-cow {tool_cow} B (± 2%)"
    );

    // The server samples at its interval under the load. The median, not the maximum: one
    // long preemption of the server's thread on a busy machine is no bug; sampling at a
    // fraction of the asked rate (the old duty cycle's cost figure: 180-600 ms apart) is.
    assert!(
        median_gap <= 2 * INTERVAL_MS,
        "samples every {median_gap} ms (median) for an interval of {INTERVAL_MS} ms: {ms:?}"
    );

    // The last sample is the child's exit, with every key written.
    assert_eq!(int(last, "at_child_exit"), 1, "{last:?}");
    assert_eq!(int(last, "keys"), 8192, "{last:?}");
    assert!(
        samples[..samples.len() - 1]
            .iter()
            .all(|s| int(s, "at_child_exit") == 0),
        "one exit sample"
    );

    // The summary is the samples' (and consistent with itself).
    assert_eq!(int(&latest, "writes"), server_writes);
    assert_eq!(int(&latest, "parent_minor_faults"), server_faults);
    assert_eq!(int(&latest, "peak_cow_bytes"), server_cow);
    assert_eq!(
        int(&latest, "peak_cow_pages"),
        server_cow / int(&latest, "page_size")
    );
    assert_eq!(int(&latest, "samples") as usize, samples.len());
    // (From µs on the server, from whole ms here.)
    assert!((int(&latest, "max_sample_gap_ms") - gaps.last().unwrap()).abs() <= 1);
    let half = int(&latest, "ms_to_half_peak");
    let ninety = int(&latest, "ms_to_90pct_peak");
    assert!(
        0 <= half && half <= ninety && ninety <= int(&latest, "duration_ms"),
        "{latest:?}"
    );
    let total = samples.iter().map(|s| int(s, "total_bytes")).max().unwrap();
    assert_eq!(int(&latest, "peak_total_bytes"), total);
    assert_eq!(
        latest.get("total_basis").cloned(),
        Some(Frame::Bulk(
            tool["ratio_basis"].as_str().unwrap().to_owned().into()
        ))
    );

    // Writers until the child exits (forkdb-cow's default): the tool also counts what was in
    // flight when it saw the exit and what it sent in the ≤ 5 ms that took, so the server's
    // count is at most the tool's and short of it by that only (measured: under 0.1%). A
    // server count that ends at a periodic sample before the exit misses the writes of up to
    // a whole gap between samples (the old code: ~15% of them).
    let tool = run_tool(
        &server.addr,
        &[
            "--dataset-mib",
            "32",
            "--value-size",
            "4096",
            "--save-delay-us",
            "150",
            "--pattern",
            "uniform",
            "--rate",
            "max",
            "--sample-ms",
            "50",
        ],
        &tmp.0.join("run-to-exit"),
    );
    assert_eq!(tool["filled"], false, "the data set is reused");
    let latest = as_map(conn.call(&[b"SNAPSHOT", b"LATEST"]).unwrap());
    let (server_writes, tool_writes) = (int(&latest, "writes"), tool["writes"].as_i64().unwrap());
    eprintln!("writes until the exit: server {server_writes}, forkdb-cow {tool_writes}");
    let slack = tool_writes * 2 / 100 + 256;
    assert!(
        server_writes <= tool_writes && tool_writes - server_writes <= slack,
        "writes until the child's exit: server {server_writes}, forkdb-cow {tool_writes} \
         (the server's may be short by at most {slack})"
    );
    drop(server);
}
