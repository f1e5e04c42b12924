//! `forkdb-cow run` against forkdb-server: uniform overwrites at full speed copy (nearly) every
//! page, no writes copy (nearly) none, a 1 % hot set lies between.
//!
//! The bounds are those of the mechanism itself, so forkdb runs here with its copy-on-write
//! reductions off (`snapshot-child-release no`, `inline-values no`): with them on, forkdb copies
//! less than every page even under uniform writes, which is their point (docs/cow.md measures
//! it), and `forkdb_reductions_copy_less` checks that they do.

mod common;

use common::{
    check_container_runs, ratio, run_cli, run_tool, start_forkdb, start_forkdb_with, TempDir,
};

/// forkdb's copy-on-write reductions, off: the plain fork mechanism.
const REDUCTIONS_OFF: [&str; 4] = ["--snapshot-child-release", "no", "--inline-values", "no"];

/// 32 MiB of 4 KiB values (8192 keys); 150 µs per key makes the save last ~2-3 s.
const DATA: [&str; 6] = [
    "--dataset-mib",
    "32",
    "--value-size",
    "4096",
    "--save-delay-us",
    "150",
];

#[test]
fn forkdb_cow_by_pattern() {
    let server = start_forkdb_with(&REDUCTIONS_OFF);
    let tmp = TempDir::new("forkdb");
    let run = |pattern: &str| {
        let mut args = DATA.to_vec();
        args.extend(["--pattern", pattern, "--rate", "max"]);
        let s = run_tool(&server.addr, &args, &tmp.0.join(pattern.replace(':', "")));
        eprintln!(
            "forkdb {pattern}: peak_ratio {} (peak COW {} B, save {} ms, {} writes)",
            ratio(&s),
            s["peak_cow_bytes"],
            s["save_ms"],
            s["writes"]
        );
        assert!(s["server"].as_str().unwrap().starts_with("forkdb"));
        s
    };
    // The first run fills; the others reuse the data set (DBSIZE matches).
    let none = run("none");
    let hot = run("hot:1");
    let uniform = run("uniform");
    assert_eq!(none["filled"], true);
    assert_eq!(uniform["filled"], false);
    assert_eq!(none["keys"], 8192);
    assert_eq!(none["writes"], 0);
    assert!(uniform["writes"].as_u64().unwrap() > 8192);
    assert!(
        uniform["save_ms"].as_u64().unwrap() >= 1000,
        "the save delay did not slow the save: {}",
        uniform["save_ms"]
    );

    assert!(ratio(&uniform) >= 1.8, "uniform: {}", ratio(&uniform));
    assert!(ratio(&none) <= 1.1, "none: {}", ratio(&none));
    // The bounds, on peak_ratio, and the same order on the pages copied.
    assert!(
        ratio(&none) < ratio(&hot) && ratio(&hot) < ratio(&uniform) && ratio(&hot) < 1.5,
        "hot:1 ({}) is not between none ({}) and uniform ({})",
        ratio(&hot),
        ratio(&none),
        ratio(&uniform)
    );
    let cow = |s: &serde_json::Value| s["peak_cow_bytes"].as_u64().unwrap();
    assert!(
        cow(&none) < cow(&hot) && cow(&hot) * 4 < cow(&uniform),
        "peak COW not ordered none < hot:1 << uniform: {} / {} / {} B",
        cow(&none),
        cow(&hot),
        cow(&uniform)
    );
    // The server's own COW figure agrees with ours within a sample period's worth of writes.
    let ours = uniform["peak_cow_bytes"].as_f64().unwrap();
    let theirs = uniform["server_reported_cow_bytes"].as_f64().unwrap();
    assert!(
        (ours - theirs).abs() <= 0.1 * ours,
        "peak COW {ours} vs server's {theirs}"
    );
    drop(server);
}

/// The same uniform workload at a rate that rewrites about the data set once during the save:
/// with the reductions on (forkdb's defaults) the save needs clearly less extra memory than
/// with them off.
#[test]
fn forkdb_reductions_copy_less() {
    let extra = |opts: &[&str], label: &str| {
        let server = start_forkdb_with(opts);
        let tmp = TempDir::new(label);
        let mut args = DATA.to_vec();
        args.extend(["--pattern", "uniform", "--rate", "4000"]);
        let s = run_tool(&server.addr, &args, &tmp.0.join("run"));
        let extra = s["extra_bytes"].as_f64().unwrap();
        eprintln!("forkdb {label}: extra {extra} B, peak_ratio {}", ratio(&s));
        extra
    };
    let on = extra(&[], "reductions-on");
    let off = extra(&REDUCTIONS_OFF, "reductions-off");
    assert!(on < 0.75 * off, "reductions on: {on} B extra, off: {off} B");
}

/// `--type hash|list|set|zset` against forkdb-server: the fill, the encodings, and writes
/// during the save (see `common::check_container_runs`).
#[test]
fn forkdb_container_types() {
    let server = start_forkdb();
    let tmp = TempDir::new("forkdb-types");
    check_container_runs(&server.addr, &tmp.0);
    drop(server);
}

/// `forkdb-cow compare --methods` on a small hash data set: one table with a column per method
/// and the ratios, one chart, one directory per run.
#[test]
fn compare_methods_table() {
    let tmp = TempDir::new("compare-methods");
    let bin = forkdb_tests::server::forkdb_bin();
    let out = tmp.0.join("cmp");
    let (status, stdout, stderr) = run_cli(
        &[
            "compare",
            "--forkdb-bin",
            bin.to_str().unwrap(),
            "--methods",
            "redis,fork,forkless",
            "--type",
            "hash",
            "--keys",
            "3000",
            "--save-delay-us",
            "300",
            "--rate",
            "2000",
        ],
        &out,
    );
    assert!(status.success(), "compare failed:\n{stdout}\n{stderr}");
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(
        md.contains(
            "| | forkdb 0.1.0 fork | forkdb 0.1.0 forkless | redis 7.0.15 | fork/redis | \
             forkless/redis | forkless/fork |"
        ),
        "{md}"
    );
    assert!(md.contains("3000 hashes of 10 fields of 16 B"), "{md}");
    assert!(md.contains("| extra bytes |"), "{md}");
    // A forkless save has no fork time: shown as `-`, and so are its ratios.
    assert!(!md.contains("NaN"), "{md}");
    let svg = std::fs::read_to_string(out.join("compare.svg")).unwrap();
    for legend in [
        "forkdb 0.1.0: BGSAVE (fork)",
        "forkdb 0.1.0: BGSAVE FORKLESS",
        "redis 7.0.15: BGSAVE (fork)",
    ] {
        assert!(svg.contains(legend), "no {legend:?} in compare.svg");
    }
    for (dir, method) in [
        ("forkdb", "fork"),
        ("forkdb-forkless", "forkless"),
        ("redis", "fork"),
    ] {
        let s = common::check_outputs(&out.join(dir));
        assert_eq!(s["data_type"], "hash");
        assert_eq!(s["method"], method, "{dir}");
        assert_eq!(s["save_status"], "ok", "{dir}");
    }
}

/// `--save-cmd "BGSAVE FORKLESS"` against forkdb: no child, so no copy-on-write and no fork
/// time; the save's samples are the server alone, taken while INFO said the save ran; the
/// writes all landed during the save; the server says the save was forkless.
#[test]
fn forkdb_forkless_save() {
    use forkdb_cow::resp::Conn;
    let server = start_forkdb();
    let tmp = TempDir::new("forkless");
    let s = run_tool(
        &server.addr,
        &[
            "--type",
            "zset",
            "--keys",
            "3000",
            "--save-delay-us",
            "500",
            "--save-cmd",
            "BGSAVE FORKLESS",
            "--rate",
            "2000",
            "--write-ms",
            "500",
        ],
        &tmp.0.join("run"),
    );
    eprintln!(
        "forkless: extra {} B, save {} ms, {} writes",
        s["extra_bytes"], s["save_ms"], s["writes"]
    );
    assert_eq!(s["method"], "forkless");
    assert_eq!(s["save_status"], "ok");
    assert_eq!(s["peak_cow_bytes"], 0);
    assert!(s["fork_usec"].is_null());
    assert_eq!(s["writes_within_save"], true);
    assert_eq!(s["write_errors"], 0);
    assert!(s["writes"].as_u64().unwrap() >= 200);
    // The rate is over the 500 ms the writers ran (about 2000/s), not the 1.5 s save (≤ 700).
    let rate = s["write_rate_achieved"].as_f64().unwrap();
    assert!(rate >= 1000.0, "write rate {rate}/s");
    // The save lasts at least its keys × delay (1.5 s); it ended when INFO said so.
    assert!(s["save_ms"].as_u64().unwrap() >= 1400, "{}", s["save_ms"]);
    let mut csv = csv::Reader::from_path(tmp.0.join("run/samples.csv")).unwrap();
    let h = csv.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|x| x == n).unwrap();
    let (saving, alive, child_pss) = (col("saving"), col("child_alive"), col("child_pss_bytes"));
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    assert!(
        rows.iter().filter(|r| &r[saving] == "true").count() >= 10,
        "too few samples during the save"
    );
    assert!(rows
        .iter()
        .all(|r| &r[alive] == "false" && &r[child_pss] == "0"));
    let mut c = Conn::connect(&server.addr).unwrap();
    assert_eq!(
        c.info("persistence").unwrap()["rdb_last_bgsave_method"],
        "forkless"
    );
    drop(server);
}
