//! Shared by the end-to-end tests: finding the servers, starting them (through the crate's own
//! [`ManagedServer`], stopped by pid when dropped), running the `forkdb-cow` binary with a
//! deadline and reading its outputs.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use forkdb_cow::servers::{default_redis_bin, Flavor, ManagedServer};
use forkdb_tests::server::forkdb_bin;
use serde_json::Value;

pub fn start_forkdb() -> ManagedServer {
    start_forkdb_with(&[])
}

/// forkdb-server with extra `--name value` options.
pub fn start_forkdb_with(extra: &[&str]) -> ManagedServer {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    ManagedServer::start(&forkdb_bin(), Flavor::Forkdb, &extra).expect("starting forkdb-server")
}

pub fn start_redis() -> ManagedServer {
    let bin = default_redis_bin();
    assert!(
        bin.is_file(),
        "redis-server not found on PATH (apt-get install redis-server)"
    );
    ManagedServer::start(&bin, Flavor::Redis, &[]).expect("starting redis-server")
}

/// A directory removed when dropped (kept, and named, if the test is failing).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "forkdb-cow-test-{label}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("outputs kept in {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// How long one `forkdb-cow run` may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `forkdb-cow run --addr ADDR ARGS... --out OUT` to completion (killed by pid if it
/// overruns) and returns its summary.json.
pub fn run_tool(addr: &str, args: &[&str], out: &Path) -> Value {
    let mut full = vec!["run", "--addr", addr];
    full.extend_from_slice(args);
    let (status, stdout, stderr) = run_cli(&full, out);
    assert!(
        status.success(),
        "forkdb-cow {args:?} failed ({status}):\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("peak ratio"),
        "no summary table on stdout:\n{stdout}"
    );
    check_outputs(out)
}

/// Runs `forkdb-cow ARGS... --out OUT` to completion (killed by pid if it overruns); returns
/// its exit status, stdout and stderr (also kept in OUT/stdout.txt and stderr.txt).
pub fn run_cli(args: &[&str], out: &Path) -> (std::process::ExitStatus, String, String) {
    fs::create_dir_all(out).unwrap();
    let stdout = fs::File::create(out.join("stdout.txt")).unwrap();
    let stderr = fs::File::create(out.join("stderr.txt")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_forkdb-cow"))
        .args(args)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("spawning forkdb-cow");
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            // `Child::kill` signals this (unreaped) pid only.
            let _ = child.kill();
            let _ = child.wait();
            panic!("forkdb-cow {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = |name: &str| fs::read_to_string(out.join(name)).unwrap_or_default();
    (status, log("stdout.txt"), log("stderr.txt"))
}

/// The container types, each with the members per key the test uses and the encoding both
/// servers report for it (Redis 7.0's compact encodings).
pub const CONTAINERS: [(&str, u64, &str); 4] = [
    ("hash", 10, "listpack"),
    ("list", 100, "quicklist"),
    ("set", 50, "intset"),
    ("zset", 100, "listpack"),
];

/// Keys per container run: a few thousand.
pub const CONTAINER_KEYS: u64 = 3000;

/// `forkdb-cow run --type T` for each container type on `addr`: 3000 keys, a save slowed to
/// ~1.5 s, writes at 2000/s stopped after 500 ms (inside the save). Checks the fill (TYPE,
/// encoding and member count of a few keys, after the writes too: they keep each key's size)
/// and that the writes ran during the save and changed data (`rdb_changes_since_last_save`
/// after the save counts the changes made during it).
pub fn check_container_runs(addr: &str, tmp: &Path) {
    use forkdb_cow::resp::{key_name, Conn};
    use forkdb_protocol::Frame;
    let mut c = Conn::connect(addr).unwrap();
    let keys = CONTAINER_KEYS.to_string();
    // zset twice: the second run on the same data set must change as much as the first (its
    // writes are not the first run's again, and a ZADD INCR always changes a score).
    let runs = CONTAINERS.iter().chain(CONTAINERS.last());
    for (run, &(ty, members, encoding)) in runs.enumerate() {
        let members_s = members.to_string();
        let s = run_tool(
            addr,
            &[
                "--type",
                ty,
                "--keys",
                &keys,
                "--members",
                &members_s,
                "--save-delay-us",
                "500",
                "--pattern",
                "uniform",
                "--rate",
                "2000",
                "--write-ms",
                "500",
            ],
            &tmp.join(format!("{run}-{ty}")),
        );
        eprintln!(
            "{} {ty}: {} writes, extra {} B, save {} ms",
            s["server"], s["writes"], s["extra_bytes"], s["save_ms"]
        );
        assert_eq!(s["data_type"], ty);
        assert_eq!(s["keys"], CONTAINER_KEYS);
        assert_eq!(s["members"], members);
        assert_eq!(
            s["filled"],
            run < CONTAINERS.len(),
            "{ty}: filled, or reused the data set of another type"
        );
        assert_eq!(s["save_status"], "ok");
        assert_eq!(s["write_errors"], 0, "{}", s["first_write_error"]);
        let writes = s["writes"].as_u64().unwrap();
        assert!(writes >= 200, "{ty}: only {writes} writes");
        assert_eq!(
            s["writes_within_save"], true,
            "{ty}: the writes did not all land during the save ({} ms)",
            s["save_ms"]
        );
        assert_eq!(c.call_int(&[b"DBSIZE"]).unwrap() as u64, CONTAINER_KEYS);
        let card: &[u8] = match ty {
            "hash" => b"HLEN",
            "list" => b"LLEN",
            "set" => b"SCARD",
            _ => b"ZCARD",
        };
        for i in [0, CONTAINER_KEYS / 2, CONTAINER_KEYS - 1] {
            let k = key_name(i);
            let k = k.as_bytes();
            assert_eq!(
                c.call_ok(&[b"TYPE", k]).unwrap(),
                Frame::Simple(ty.to_owned())
            );
            assert_eq!(c.call_int(&[card, k]).unwrap() as u64, members, "{ty} {i}");
            assert_eq!(
                c.call_ok(&[b"OBJECT", b"ENCODING", k]).unwrap(),
                Frame::Bulk(encoding.as_bytes().to_vec().into()),
                "{ty} {i}"
            );
        }
        let changes: u64 = c.info("persistence").unwrap()["rdb_changes_since_last_save"]
            .parse()
            .unwrap();
        assert!(
            changes > 0 && changes <= writes,
            "{ty}: {changes} changes since the save's start for {writes} writes"
        );
        if ty == "zset" {
            assert_eq!(changes, writes, "run {run}: every ZADD INCR is a change");
        }
    }
}

/// Checks that summary.json, samples.csv and chart.svg exist and parse; returns the summary.
pub fn check_outputs(out: &Path) -> Value {
    let summary: Value =
        serde_json::from_str(&fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for field in [
        "label",
        "server",
        "dataset_bytes",
        "keys",
        "value_size",
        "pattern",
        "rate",
        "baseline_rss_bytes",
        "baseline_pss_bytes",
        "baseline_bytes",
        "ratio_basis",
        "peak_cow_bytes",
        "peak_total_bytes",
        "extra_bytes",
        "peak_ratio",
        "fork_usec",
        "save_ms",
        "writes",
        "write_p50_us",
        "write_p99_us",
        "minor_faults",
    ] {
        assert!(summary.get(field).is_some(), "summary.json lacks {field}");
    }

    let mut csv = csv::Reader::from_path(out.join("samples.csv")).unwrap();
    let headers = csv.headers().unwrap().clone();
    for col in [
        "ms",
        "cow_bytes",
        "parent_rss_bytes",
        "child_rss_bytes",
        "parent_pss_bytes",
        "child_pss_bytes",
        "total_bytes",
        "keys_processed",
        "writes",
        "minor_faults",
    ] {
        assert!(headers.iter().any(|h| h == col), "samples.csv lacks {col}");
    }
    let ms_col = headers.iter().position(|h| h == "ms").unwrap();
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    assert!(rows.len() >= 5, "only {} samples", rows.len());
    let ms: Vec<f64> = rows.iter().map(|r| r[ms_col].parse().unwrap()).collect();
    assert!(ms.windows(2).all(|w| w[0] <= w[1]), "ms not increasing");

    let svg = fs::read_to_string(out.join("chart.svg")).unwrap();
    assert!(svg.trim_start().starts_with("<svg"), "chart.svg is not SVG");
    // The two panels (the pair's memory with its baseline and 2× line; the child's copies),
    // the labels of the grey lines, and axes with units (details: the chart module's tests).
    let fork_chart = [
        "Memory of the server + its snapshot child",
        "\nbaseline: ",
        "= every page copied",
        "\n2× baseline: ",
        "Copy-on-write: pages copied since the fork",
        "child Private_Dirty (MiB)",
        "time since the fork (s)",
        ": BGSAVE (fork)",
    ];
    // A forkless save has no child: its lower panel is the server's growth.
    let forkless_chart = [
        "Memory of the server + its snapshot child",
        "\nbaseline: ",
        "forkless = the server",
        "COW / growth (MiB)",
        "time since the save started (s)",
        ": BGSAVE FORKLESS",
    ];
    let names: &[&str] = if summary["method"] == "forkless" {
        &forkless_chart
    } else {
        &fork_chart
    };
    for &name in names {
        assert!(svg.contains(name), "chart.svg lacks {name:?}");
    }
    assert!(!svg.contains("parent RSS"), "chart.svg mixes in parent RSS");
    summary
}

pub fn ratio(s: &Value) -> f64 {
    s["peak_ratio"].as_f64().expect("peak_ratio is a number")
}
