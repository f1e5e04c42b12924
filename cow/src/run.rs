//! One measured save (`forkdb-cow run`): fill, baseline, fork, writes, samples, outputs.
//!
//! # Figures
//!
//! - **baseline**: the server's PSS (and RSS) from `smaps_rollup` just before the save command.
//! - **child COW**: the child's `Private_Dirty`, the pages copied since the fork (by either
//!   side), plus the pages the child wrote itself.
//! - **total**: parent + child anonymous PSS (`Pss_Anon`), the physical memory of the two heaps
//!   without counting shared pages twice. `peak_total_bytes` is its maximum over the samples
//!   taken while the child lived.
//! - **extra_bytes** = peak total − baseline: what the save needed on top of the data set.
//! - **peak_ratio** = peak total ÷ baseline, where the baseline is the server's anonymous PSS
//!   just before the save: "no writes" is 1.0 and "every page copied" is 2.0. File pages (the
//!   binary, libc) are left out on both sides: they are never copied, and their PSS moves when
//!   any other process maps the same files, which made runs next to another server of the same
//!   binary disagree by megabytes. Older kernels fall back to all of PSS, and without PSS to
//!   RSS: total = parent RSS + the child's private pages (`ratio_basis` says which).
//! - **minor_faults**: the server's minor page faults (`/proc/<pid>/stat` field 10) from just
//!   before the save command to the last sample (after the child's exit and the writers'
//!   stop); each copy-on-write of a page in the parent is one, and so is each first touch of
//!   fresh memory.
//! - **writes**: see [`Summary::writes`]; with `--write-ms` ending inside the save it equals
//!   the server's own count (SNAPSHOT LATEST `writes`), which `tests/agree.rs` checks.
//!
//! # A forkless save
//!
//! A save command with the word `FORKLESS` (`BGSAVE FORKLESS`) makes no child: a thread of the
//! server writes the file while the server goes on changing its heap. There is no child to
//! find and no copy-on-write; the save's cost is the server's own anonymous memory growth
//! (`Pss_Anon` of the server pid, the same `/proc` reader as for a fork) over its value just
//! before the save command, so `total` is the server alone and `extra_bytes` compares with a
//! fork save's directly. The save ends when `INFO persistence` says
//! `rdb_bgsave_in_progress:0` (polled every 5 ms). `peak_cow_bytes` and `fork_usec` are 0 and
//! null. A server that refuses the command (`ERR`) fails the run with a message that says it has
//! no forkless save.
//!
//! The server's SNAPSHOT timelines read the same figures with the same code
//! (`forkdb_snapshot::procfs`).
//!
//! Samples are taken every `--sample-ms` (the child's liveness is polled every 5 ms in between,
//! so `save_ms` — from the save command's reply to the child's exit — is accurate to ~5 ms). The
//! peak between two samples can be missed; COW only grows while the child lives, so the last
//! sample before the child exits is at most one period of writes short of the true peak.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use forkdb_protocol::Frame;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::fill::{self, FillPlan};
use crate::procfs::{self, Basis, Rollup};
use crate::resp::{key_name, push_command, Conn};
use crate::types::{DataType, Shape};
use crate::workload::{self, Pattern, Rate, ValuePool, WriterConfig};
use crate::{chart, interrupted, MIB};

/// Everything that defines one measurement apart from the server.
#[derive(Debug, Clone)]
pub struct Workload {
    pub dataset_mib: u64,
    pub value_size: usize,
    /// What each key holds (`--type`); `string` is the tool's original data set.
    pub data_type: DataType,
    /// Members per container (1 for a string).
    pub members: u64,
    /// `--keys`: the key count, instead of the one `dataset_mib` gives.
    pub keys: Option<u64>,
    pub pattern: Pattern,
    pub rate: Rate,
    pub save_delay_us: Option<i64>,
    /// The snapshot command, split into words (default `BGSAVE`).
    pub save_cmd: Vec<String>,
    pub sample_ms: u64,
    /// Stop the writers this many ms after the save command's reply, rather than at the
    /// child's exit: writes that all end while the child lives are exactly the writes the
    /// server executed during the save (see [`Summary::writes_within_save`]).
    pub write_ms: Option<u64>,
    pub conns: usize,
    pub pipeline: usize,
    pub refill: bool,
    pub fill_conns: usize,
    pub fill_batch: usize,
    /// Longest a save may last before the run fails.
    pub timeout: Duration,
    pub seed: u64,
    /// Measure the data the server holds, under the writes it gets from elsewhere: no fill, no
    /// writes of the tool's own (`--keep-data`; always on a replica, which refuses them). The
    /// writes during the save are then the server's count (SNAPSHOT LATEST `writes`).
    pub keep_data: bool,
}

impl Workload {
    /// `--keys`, else `dataset_mib × 1 MiB ÷` the bytes of one key (its value size for a
    /// string; see [`Shape::key_bytes`] for a container).
    pub fn keys(&self) -> u64 {
        self.keys
            .unwrap_or_else(|| self.dataset_mib * MIB / self.shape().key_bytes().max(1))
    }

    /// Data bytes in the data set (keys × value size for strings).
    pub fn dataset_bytes(&self) -> u64 {
        self.keys() * self.shape().key_bytes()
    }

    /// The shape of each key.
    pub fn shape(&self) -> Shape {
        Shape {
            ty: self.data_type,
            members: if self.data_type == DataType::String {
                1
            } else {
                self.members.max(1)
            },
            value_size: self.value_size,
        }
    }

    /// Whether the save command asks for a forkless save (`BGSAVE FORKLESS`).
    pub fn forkless(&self) -> bool {
        is_forkless(&self.save_cmd.join(" "))
    }

    /// `forkdb 0.1.0: 32 MiB of 4096 B values (8192 keys), uniform writes at max ops/s`
    pub fn describe(&self, server: &str) -> String {
        let rate = match self.rate {
            Rate::Max => "max".to_owned(),
            Rate::PerSec(r) => format!("{r}"),
        };
        if self.keep_data {
            return format!(
                "{server}: the {} keys it holds, under its own writes (a replica's: its master's)",
                self.keys()
            );
        }
        let writes = match self.pattern {
            _ if self.rate.is_zero() => "no writes (rate 0)".to_owned(),
            Pattern::None => "no writes".to_owned(),
            Pattern::Reads if self.data_type == DataType::String => {
                format!("uniform reads (GET) at {rate} ops/s")
            }
            Pattern::Reads => format!("uniform reads at {rate} ops/s"),
            p if self.data_type == DataType::String => format!("{p} writes at {rate} ops/s"),
            p => format!(
                "{p} writes ({}) at {rate} ops/s",
                self.data_type.write_commands()
            ),
        };
        if self.data_type == DataType::String && self.keys.is_none() {
            return format!(
                "{server}: {} MiB of {} B values ({} keys), {writes}",
                self.dataset_mib,
                self.value_size,
                self.keys()
            );
        }
        format!(
            "{server}: {} ({:.1} MiB of data), {writes}",
            self.shape().describe(self.keys()),
            self.dataset_bytes() as f64 / MIB as f64
        )
    }
}

/// One sample (one row of `samples.csv`).
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Milliseconds since the save command's reply.
    pub ms: f64,
    /// Whether the save was running: the child alive (fork), or `rdb_bgsave_in_progress`
    /// (forkless).
    pub saving: bool,
    /// Whether the snapshot child was alive (its figures are 0 when not).
    pub child_alive: bool,
    pub child_pid: Option<u32>,
    /// Child `Private_Dirty`.
    pub cow_bytes: u64,
    pub parent_rss_bytes: u64,
    pub child_rss_bytes: u64,
    pub parent_pss_bytes: u64,
    pub child_pss_bytes: u64,
    /// Parent + child on the summary's `ratio_basis` (see [`procfs::Basis::pair`]).
    pub total_bytes: u64,
    /// `current_save_keys_processed`, when the server reports it.
    pub keys_processed: Option<u64>,
    /// Write commands answered since the fork.
    pub writes: u64,
    /// Server minor page faults since the fork.
    pub minor_faults: u64,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub label: String,
    /// `forkdb 0.1.0` / `redis 7.0.15`.
    pub server: String,
    pub addr: String,
    pub server_pid: u32,
    pub dataset_bytes: u64,
    pub dataset_mib: u64,
    pub keys: u64,
    pub value_size: usize,
    /// `string`, `hash`, `list`, `set` or `zset`.
    pub data_type: DataType,
    /// Members per key (1 for a string).
    pub members: u64,
    pub pattern: Pattern,
    pub rate: Rate,
    pub conns: usize,
    pub pipeline: usize,
    pub save_cmd: String,
    /// `fork` or `forkless` (from the save command).
    pub method: &'static str,
    pub save_delay_us: Option<i64>,
    pub sample_ms: u64,
    pub filled: bool,
    pub fill_ms: u64,
    /// The data the server held was measured as it was (`--keep-data`, or a replica):
    /// `dataset_bytes` is its `used_memory_dataset`, and `writes` the server's count.
    pub keep_data: bool,
    /// `pss_anon`; `pss` or `rss` where the kernel does not report it.
    #[serde(serialize_with = "serialize_basis")]
    pub ratio_basis: Basis,
    /// The server's memory just before the save on `ratio_basis`: what ratios divide by.
    pub baseline_bytes: u64,
    pub baseline_rss_bytes: u64,
    pub baseline_pss_bytes: Option<u64>,
    pub peak_cow_bytes: u64,
    pub peak_total_bytes: u64,
    /// peak_total − baseline: the extra memory the save needed.
    pub extra_bytes: i64,
    /// peak_total ÷ baseline.
    pub peak_ratio: f64,
    pub peak_parent_rss_bytes: u64,
    pub peak_child_rss_bytes: u64,
    /// What the server itself reported after the save (`rdb_last_cow_size`), if anything.
    pub server_reported_cow_bytes: Option<u64>,
    pub fork_usec: Option<u64>,
    /// From the save command's reply to the child's exit.
    pub save_ms: u64,
    pub save_status: Option<String>,
    /// `write_ms` of the workload: when the writers stopped (`None`: at the child's exit).
    pub write_ms: Option<u64>,
    /// Write commands answered between the save command's reply (the fork is before it) and
    /// the writers' stop. The writers stop when the child is seen to have exited (polled every
    /// 5 ms), or after `write_ms`. In the first case the commands in flight then, and those
    /// sent in the ≤ 5 ms it takes to see the exit, are counted too: up to that many more than
    /// the server's count of writes during the save (SNAPSHOT LATEST `writes`).
    pub writes: u64,
    /// The writers stopped, every reply in, while the child still lived: `writes` is then
    /// exactly the number of write commands the server executed between the fork and the
    /// child's exit.
    pub writes_within_save: bool,
    pub write_errors: u64,
    pub first_write_error: Option<String>,
    /// writes ÷ the time they ran (the save's, or `write_ms` if shorter).
    pub write_rate_achieved: f64,
    pub write_p50_us: Option<u64>,
    pub write_p99_us: Option<u64>,
    pub write_max_us: Option<u64>,
    pub latency_note: &'static str,
    pub minor_faults: u64,
    pub samples: usize,
    pub title: String,
}

fn serialize_basis<S: serde::Serializer>(b: &Basis, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(b.name())
}

const LATENCY_NOTE: &str = "per command = round trip of its pipelined batch (up to `pipeline` \
                            commands on one connection)";

/// The server's name and version from `INFO server`.
pub fn server_name(info: &HashMap<String, String>) -> String {
    if let Some(v) = info.get("forkdb_version") {
        format!("forkdb {v}")
    } else if let Some(v) = info.get("redis_version") {
        format!("redis {v}")
    } else {
        "unknown server".to_owned()
    }
}

/// What [`run`] returns: the summary and the samples behind it.
pub struct RunOutput {
    pub summary: Summary,
    pub samples: Vec<Sample>,
}

/// Runs one measurement against `addr` and writes `samples.csv`, `summary.json` and `chart.svg`
/// into `out`.
pub fn run(addr: &str, w: &Workload, out: &Path, label: Option<&str>) -> Result<RunOutput> {
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut ctl = Conn::connect(addr)?;
    let kept;
    let w = match kept_data(&mut ctl, w)? {
        Some(k) => {
            kept = k;
            &kept
        }
        None => w,
    };
    let keys = w.keys();
    workload::validate(w.pattern, keys)?;
    let info = ctl.info("server")?;
    let pid: u32 = info
        .get("process_id")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow!("INFO server has no process_id"))?;
    if procfs::stat(pid).is_none() {
        bail!(
            "the server's pid {pid} (INFO process_id) is not in /proc: forkdb-cow reads the \
             server's memory from /proc and must run on the same host (and pid namespace)"
        );
    }
    let server = server_name(&info);
    let label = label
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{} {} {}", server, w.pattern, w.rate));

    let pool = Arc::new(ValuePool::new(w.value_size, w.seed));
    let fill = if w.keep_data {
        fill::FillOutcome {
            filled: false,
            fill_ms: 0,
        }
    } else {
        fill::ensure(
            addr,
            &FillPlan {
                keys,
                shape: w.shape(),
                conns: w.fill_conns,
                batch: w.fill_batch,
                refill: w.refill,
            },
            &pool,
        )?
    };
    wait_no_save(&mut ctl, Duration::from_secs(120))?;

    let old_delay = match w.save_delay_us {
        Some(us) => {
            let old = config_get(&mut ctl, "rdb-key-save-delay")?;
            ctl.call_ok(&[
                b"CONFIG",
                b"SET",
                b"rdb-key-save-delay",
                us.to_string().as_bytes(),
            ])?;
            Some(old)
        }
        None => None,
    };
    let measured = measure(addr, &mut ctl, pid, w, &pool);
    // Put things back on a fresh connection: `ctl` may be broken if the measurement failed.
    let cleanup = (|| -> Result<()> {
        let mut c = Conn::connect(addr)?;
        if let Some(old) = &old_delay {
            c.call_ok(&[b"CONFIG", b"SET", b"rdb-key-save-delay", old.as_bytes()])?;
        }
        if let Ok(m) = &measured {
            if w.pattern == Pattern::New && m.new_end > keys {
                delete_range(&mut c, keys, m.new_end)?;
            }
        }
        Ok(())
    })();
    let mut m = measured?;
    cleanup.context("restoring the server after the run")?;
    let mut dataset_bytes = None;
    if w.keep_data {
        // Not the tool's writes (it made none): the server's, during the save.
        let mut c = Conn::connect(addr)?;
        if let Some(n) = server_save_writes(&mut c)? {
            m.writes.writes = n;
            m.writes_within_save = true;
        }
        dataset_bytes = c
            .info("memory")?
            .get("used_memory_dataset")
            .and_then(|v| v.parse().ok());
    }

    let mut summary = summarize(&m, w, &label, &server, addr, pid, fill);
    if let Some(b) = dataset_bytes {
        summary.dataset_bytes = b;
        summary.dataset_mib = b / MIB;
    }
    write_outputs(out, &summary, &m.samples)?;
    Ok(RunOutput {
        summary,
        samples: m.samples,
    })
}

/// With `--keep-data`, or on a replica (INFO replication `role:slave`): the workload for the
/// data the server holds (its DBSIZE keys, nothing filled, no writes of the tool's own). None:
/// the tool's own data set and writes.
fn kept_data(ctl: &mut Conn, w: &Workload) -> Result<Option<Workload>> {
    let replica = ctl
        .info("replication")?
        .get("role")
        .is_some_and(|r| r == "slave");
    if !w.keep_data && !replica {
        return Ok(None);
    }
    if w.pattern != Pattern::None && !w.rate.is_zero() {
        if replica {
            bail!(
                "the server is a replica (INFO replication role:slave): it refuses forkdb-cow's \
                 own writes (READONLY) and its data is its master's. Run with `--pattern none`: \
                 the save is then measured under the writes the master sends it"
            );
        }
        bail!("--keep-data measures the server under writes from elsewhere: it needs `--pattern none`");
    }
    let keys = ctl.call_int(&[b"DBSIZE"])?;
    Ok(Some(Workload {
        keys: Some(keys.max(0) as u64),
        keep_data: true,
        ..w.clone()
    }))
}

/// The server's count of write commands during its last save (SNAPSHOT LATEST `writes`), if it
/// keeps one (forkdb does; redis-server has no SNAPSHOT).
fn server_save_writes(c: &mut Conn) -> Result<Option<u64>> {
    let pairs: Vec<(Frame, Frame)> = match c.call(&[b"SNAPSHOT", b"LATEST"])? {
        Frame::Map(pairs) => pairs,
        Frame::Array(items) => {
            let mut it = items.into_iter();
            let mut pairs = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            pairs
        }
        _ => return Ok(None),
    };
    Ok(pairs.into_iter().find_map(|(k, v)| match (k, v) {
        (Frame::Bulk(k), Frame::Integer(n)) if &k[..] == b"writes" => Some(n.max(0) as u64),
        (Frame::Simple(k), Frame::Integer(n)) if k == "writes" => Some(n.max(0) as u64),
        _ => None,
    }))
}

/// Raw results of [`measure`].
struct Measured {
    samples: Vec<Sample>,
    base: Rollup,
    basis: Basis,
    save_ms: u64,
    writes: workload::WriteResult,
    fork_usec: Option<u64>,
    server_cow: Option<u64>,
    save_status: Option<String>,
    new_end: u64,
    writes_within_save: bool,
    /// The save was forkless (asked for, or the server's default method).
    forkless: bool,
}

fn measure(
    addr: &str,
    ctl: &mut Conn,
    pid: u32,
    w: &Workload,
    pool: &Arc<ValuePool>,
) -> Result<Measured> {
    let keys = w.keys();
    // The writers' seed moves with the server's count of saves (INFO `rdb_saves`, 0 on a fresh
    // server, so a first run is what `--seed` alone gives): a second run on the same server
    // must not repeat the first one's writes, which would set scores and members that are
    // already there and change nothing.
    let saves: u64 = ctl
        .info("persistence")?
        .get("rdb_saves")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let writers = workload::start_writers(
        addr,
        &WriterConfig {
            pattern: w.pattern,
            shape: w.shape(),
            rate: w.rate,
            keys,
            conns: w.conns,
            pipeline: w.pipeline,
            seed: w
                .seed
                .wrapping_add(saves.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        },
        pool.clone(),
    )?;
    let before: HashSet<u32> = procfs::children(pid).into_iter().collect();
    let base = procfs::rollup(pid).context("reading the server's smaps_rollup")?;
    let basis = Basis::of(&base);
    let base_flt = procfs::stat(pid).map_or(0, |s| s.minflt);

    let words: Vec<&[u8]> = w.save_cmd.iter().map(|s| s.as_bytes()).collect();
    let reply = match ctl.call(&words) {
        Ok(r) => r,
        Err(e) => {
            writers.abort();
            return Err(e);
        }
    };
    let t0 = Instant::now();
    let mut forkless = w.forkless();
    if let Frame::Error(e) = reply {
        writers.abort();
        if forkless {
            bail!(
                "the server refused `{}` ({e}): it has no forkless save. BGSAVE FORKLESS needs a \
                 forkdb-server with the thread snapshot (redis-server 7.0 has none); use \
                 `--methods fork,redis` or `--save-cmd BGSAVE` to measure a fork save",
                w.save_cmd.join(" ")
            );
        }
        bail!("{}: {e}", w.save_cmd.join(" "));
    }
    // A plain BGSAVE is forkless too where forkdb's `bgsave-default-method` says so: its INFO
    // names the running save's method (redis-server has no such field).
    if !forkless {
        match ctl.info("persistence") {
            Ok(p) => {
                forkless =
                    p.get("rdb_current_bgsave_method").map(String::as_str) == Some("forkless")
            }
            Err(e) => {
                writers.abort();
                return Err(e.context("INFO persistence after the save command"));
            }
        }
    }
    writers.go();

    let bar = save_bar(keys);
    let period = Duration::from_millis(w.sample_ms);
    let deadline = t0 + w.timeout;
    let write_deadline = w.write_ms.map(|ms| t0 + Duration::from_millis(ms));
    let counters = writers.counters.clone();
    let mut writers = Some(writers);
    // What the writers did, once stopped; and whether the child still lived then.
    let mut stopped: Option<(workload::WriteResult, bool)> = None;
    let mut samples = Vec::new();
    let mut child: Option<u32> = None;
    let mut next_sample = t0;
    let abort = |writers: Option<workload::Writers>| {
        if let Some(w) = writers {
            w.abort();
        }
    };
    let ended_at = loop {
        let now = Instant::now();
        if interrupted() || now > deadline {
            bar.finish_and_clear();
            abort(writers);
            if interrupted() {
                bail!("interrupted");
            }
            bail!("the save did not end within {:?}", w.timeout);
        }
        // A forkless save: its end is the server's word; polled here, every 5 ms.
        let mut forkless_info = None;
        if forkless {
            match ctl.info("persistence") {
                Ok(p) => {
                    if !in_progress(&p) {
                        break t0.elapsed();
                    }
                    forkless_info = Some(p);
                }
                Err(e) => {
                    bar.finish_and_clear();
                    abort(writers);
                    return Err(e.context("INFO persistence during the save"));
                }
            }
        }
        if child.is_none() && !forkless {
            child = procfs::children(pid)
                .into_iter()
                .find(|p| !before.contains(p));
        }
        if let Some(c) = child {
            if !procfs::alive(c) {
                break t0.elapsed();
            }
        }
        if write_deadline.is_some_and(|d| now >= d) {
            if let Some(wr) = writers.take() {
                let result = wr.finish()?;
                // Every reply is in: were they all executed before the save's end?
                let within = if forkless {
                    ctl.info("persistence").is_ok_and(|p| in_progress(&p))
                } else {
                    child.is_some_and(procfs::alive)
                };
                stopped = Some((result, within));
            }
        }
        if now >= next_sample {
            let mut s = read_sample(basis, pid, child, base_flt, t0, &counters);
            let info = match forkless_info {
                Some(p) => Ok(p),
                None => ctl.info("persistence"),
            };
            let in_progress = match info {
                Ok(p) => {
                    s.keys_processed = p
                        .get("current_save_keys_processed")
                        .and_then(|v| v.parse().ok());
                    p.get("rdb_bgsave_in_progress").map(|v| v != "0")
                }
                Err(e) => {
                    bar.finish_and_clear();
                    abort(writers);
                    return Err(e.context("INFO persistence during the save"));
                }
            };
            if forkless {
                s.saving = in_progress == Some(true);
            }
            if child.is_some() && !s.child_alive {
                break t0.elapsed();
            }
            // A save whose child we never saw (over before the first look) ends when the server
            // says so.
            if child.is_none() && in_progress == Some(false) {
                samples.push(s);
                break t0.elapsed();
            }
            update_bar(&bar, &s);
            samples.push(s);
            while next_sample <= Instant::now() {
                next_sample += period;
            }
        }
        let wait = next_sample.saturating_duration_since(Instant::now());
        std::thread::sleep(wait.min(Duration::from_millis(5)));
    };
    let (writes, writes_within_save) = match (writers, stopped) {
        (Some(wr), _) => (wr.finish()?, false),
        (None, Some(done)) => done,
        (None, None) => unreachable!("the writers are either running or stopped"),
    };
    bar.finish_and_clear();
    // One last sample: the parent alone after the child's exit.
    samples.push(Sample {
        writes: writes.writes,
        ..read_sample(basis, pid, None, base_flt, t0, &Default::default())
    });
    let persistence = wait_no_save(ctl, Duration::from_secs(30))?;
    let stats = ctl.info("stats")?;
    let fork_usec = if forkless {
        None
    } else {
        stats.get("latest_fork_usec").and_then(|v| v.parse().ok())
    };
    Ok(Measured {
        samples,
        base,
        basis,
        save_ms: ended_at.as_millis() as u64,
        new_end: writes.new_end,
        writes,
        fork_usec,
        server_cow: persistence
            .get("rdb_last_cow_size")
            .and_then(|v| v.parse().ok()),
        save_status: persistence.get("rdb_last_bgsave_status").cloned(),
        writes_within_save,
        forkless,
    })
}

/// Reads the parent's and (if alive) the child's memory now.
fn read_sample(
    basis: Basis,
    pid: u32,
    child: Option<u32>,
    base_flt: u64,
    t0: Instant,
    counters: &workload::WriteCounters,
) -> Sample {
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    let parent = procfs::rollup(pid).unwrap_or_default();
    let minflt = procfs::stat(pid).map_or(base_flt, |s| s.minflt);
    let child_mem = child
        .filter(|&c| procfs::alive(c))
        .and_then(procfs::rollup)
        .filter(|m| m.rss > 0);
    let total = basis.pair(&parent, child_mem.as_ref());
    let c = child_mem.unwrap_or_default();
    Sample {
        ms: (ms * 10.0).round() / 10.0,
        saving: child_mem.is_some(),
        child_alive: child_mem.is_some(),
        child_pid: child,
        cow_bytes: c.private_dirty,
        parent_rss_bytes: parent.rss,
        child_rss_bytes: c.rss,
        parent_pss_bytes: parent.pss.unwrap_or(0),
        child_pss_bytes: c.pss.unwrap_or(0),
        total_bytes: total,
        keys_processed: None,
        writes: counters.writes.load(Ordering::Relaxed),
        minor_faults: minflt.saturating_sub(base_flt),
    }
}

fn save_bar(keys: u64) -> ProgressBar {
    let bar = ProgressBar::new(keys).with_style(
        ProgressStyle::with_template("saving  {bar:40} {pos}/{len} keys  {elapsed}  {msg}")
            .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn update_bar(bar: &ProgressBar, s: &Sample) {
    if let Some(k) = s.keys_processed {
        bar.set_position(k);
    }
    bar.set_message(format!(
        "COW {:.1} MiB  total {:.1} MiB  writes {}",
        s.cow_bytes as f64 / MIB as f64,
        s.total_bytes as f64 / MIB as f64,
        s.writes
    ));
}

/// Whether `INFO persistence` says a save is running.
fn in_progress(p: &HashMap<String, String>) -> bool {
    matches!(p.get("rdb_bgsave_in_progress"), Some(v) if v != "0")
}

/// Whether a save command asks for a forkless save (its word `FORKLESS`).
pub fn is_forkless(save_cmd: &str) -> bool {
    save_cmd
        .split_whitespace()
        .any(|w| w.eq_ignore_ascii_case("forkless"))
}

/// Polls `INFO persistence` until no save is in progress; returns the last reply.
fn wait_no_save(ctl: &mut Conn, timeout: Duration) -> Result<HashMap<String, String>> {
    let deadline = Instant::now() + timeout;
    loop {
        let p = ctl.info("persistence")?;
        if !matches!(p.get("rdb_bgsave_in_progress"), Some(v) if v != "0") {
            return Ok(p);
        }
        if interrupted() {
            bail!("interrupted");
        }
        if Instant::now() > deadline {
            bail!("a save is still in progress after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `CONFIG GET name` → its value.
fn config_get(ctl: &mut Conn, name: &str) -> Result<String> {
    let reply = ctl.call_ok(&[b"CONFIG", b"GET", name.as_bytes()])?;
    let value = match reply {
        Frame::Array(items) => items.into_iter().nth(1),
        Frame::Map(pairs) => pairs.into_iter().next().map(|p| p.1),
        _ => None,
    };
    match value {
        Some(Frame::Bulk(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
        _ => bail!("CONFIG GET {name}: the server does not have this option"),
    }
}

/// Deletes `key:<from>` .. `key:<to - 1>` (what pattern `new` inserted), so the next run finds
/// the data set as it was.
fn delete_range(c: &mut Conn, from: u64, to: u64) -> Result<()> {
    let mut i = from;
    while i < to {
        let end = (i + 1000).min(to);
        let names: Vec<String> = (i..end).map(key_name).collect();
        let mut args: Vec<&[u8]> = vec![b"DEL"];
        args.extend(names.iter().map(|n| n.as_bytes()));
        let mut req = Vec::new();
        push_command(&mut req, &args);
        c.send(&req)?;
        c.read_reply()?;
        i = end;
    }
    Ok(())
}

fn summarize(
    m: &Measured,
    w: &Workload,
    label: &str,
    server: &str,
    addr: &str,
    pid: u32,
    fill: fill::FillOutcome,
) -> Summary {
    let baseline = m.basis.single(&m.base);
    let alive: Vec<&Sample> = m.samples.iter().filter(|s| s.saving).collect();
    let during: Vec<&Sample> = if alive.is_empty() {
        m.samples.iter().collect()
    } else {
        alive
    };
    let max = |f: fn(&Sample) -> u64| during.iter().map(|s| f(s)).max().unwrap_or(0);
    let peak_total = max(|s| s.total_bytes).max(if during.is_empty() { baseline } else { 0 });
    let mut lat = m.writes.latencies.clone();
    // The writers' time: the save's, or `write_ms` when they stopped before its end.
    let write_ms = w.write_ms.map_or(m.save_ms, |ms| ms.min(m.save_ms));
    let secs = (write_ms as f64 / 1000.0).max(1e-3);
    Summary {
        label: label.to_owned(),
        server: server.to_owned(),
        addr: addr.to_owned(),
        server_pid: pid,
        dataset_bytes: w.dataset_bytes(),
        dataset_mib: w.dataset_mib,
        keys: w.keys(),
        value_size: w.value_size,
        data_type: w.data_type,
        members: w.shape().members,
        pattern: w.pattern,
        rate: w.rate,
        conns: w.conns,
        pipeline: w.pipeline,
        save_cmd: w.save_cmd.join(" "),
        method: if m.forkless { "forkless" } else { "fork" },
        save_delay_us: w.save_delay_us,
        sample_ms: w.sample_ms,
        filled: fill.filled,
        fill_ms: fill.fill_ms,
        keep_data: w.keep_data,
        ratio_basis: m.basis,
        baseline_bytes: baseline,
        baseline_rss_bytes: m.base.rss,
        baseline_pss_bytes: m.base.pss,
        peak_cow_bytes: max(|s| s.cow_bytes),
        peak_total_bytes: peak_total,
        extra_bytes: peak_total as i64 - baseline as i64,
        peak_ratio: round3(peak_total as f64 / baseline.max(1) as f64),
        peak_parent_rss_bytes: max(|s| s.parent_rss_bytes),
        peak_child_rss_bytes: max(|s| s.child_rss_bytes),
        server_reported_cow_bytes: m.server_cow,
        fork_usec: m.fork_usec,
        save_ms: m.save_ms,
        save_status: m.save_status.clone(),
        write_ms: w.write_ms,
        writes: m.writes.writes,
        writes_within_save: m.writes_within_save,
        write_errors: m.writes.errors,
        first_write_error: m.writes.first_error.clone(),
        write_rate_achieved: (m.writes.writes as f64 / secs).round(),
        write_p50_us: lat.quantile(0.50),
        write_p99_us: lat.quantile(0.99),
        write_max_us: lat.quantile(1.0),
        latency_note: LATENCY_NOTE,
        minor_faults: m.samples.last().map_or(0, |s| s.minor_faults),
        samples: m.samples.len(),
        title: w.describe(server),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn write_outputs(out: &Path, summary: &Summary, samples: &[Sample]) -> Result<()> {
    let mut csv = csv::Writer::from_path(out.join("samples.csv"))?;
    for s in samples {
        csv.serialize(s)?;
    }
    csv.flush()?;
    fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(summary)? + "\n",
    )?;
    chart::run_chart(&out.join("chart.svg"), summary, samples)
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / MIB as f64)
}

fn opt_us(v: Option<u64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v} µs"))
}

/// The summary as `name  value` lines for stdout.
pub fn summary_table(s: &Summary) -> String {
    let baseline = s.baseline_bytes;
    let rows: Vec<(&str, String)> = vec![
        ("label", s.label.clone()),
        (
            "server",
            format!("{} (pid {}, {})", s.server, s.server_pid, s.addr),
        ),
        (
            "data set",
            if s.keep_data {
                format!(
                    "the server's own: {} keys, {} (used_memory_dataset)",
                    s.keys,
                    mib(s.dataset_bytes)
                )
            } else {
                format!(
                    "{} in {}{}",
                    mib(s.dataset_bytes),
                    Shape {
                        ty: s.data_type,
                        members: s.members,
                        value_size: s.value_size,
                    }
                    .describe(s.keys),
                    if s.filled {
                        format!(" (filled in {} ms)", s.fill_ms)
                    } else {
                        " (reused)".to_owned()
                    }
                )
            },
        ),
        (
            "workload",
            if s.keep_data {
                "none of forkdb-cow's own: the server's writes (a replica's: its master's)"
                    .to_owned()
            } else {
                format!(
                    "{} at {} ops/s ({} conns × pipeline {})",
                    s.pattern, s.rate, s.conns, s.pipeline
                )
            },
        ),
        (
            "baseline",
            format!(
                "{} {} (RSS {})",
                mib(baseline),
                s.ratio_basis.label(),
                mib(s.baseline_rss_bytes)
            ),
        ),
        ("peak child COW", mib(s.peak_cow_bytes)),
        ("peak total", mib(s.peak_total_bytes)),
        (
            "extra",
            format!("{:.1} MiB", s.extra_bytes as f64 / MIB as f64),
        ),
        ("peak ratio", format!("{:.3}", s.peak_ratio)),
        (
            "fork",
            s.fork_usec.map_or("-".to_owned(), |u| format!("{u} µs")),
        ),
        ("save", format!("{} ms", s.save_ms)),
        (
            "writes",
            format!(
                "{}{} ({} ops/s, {} errors){}",
                if s.keep_data {
                    "the server's, during the save: "
                } else {
                    ""
                },
                s.writes,
                s.write_rate_achieved,
                s.write_errors,
                match s.write_ms {
                    Some(ms) if s.writes_within_save => {
                        format!(", stopped after {ms} ms, all within the save")
                    }
                    Some(ms) => format!(", stopped after {ms} ms, after the save ended"),
                    None => String::new(),
                }
            ),
        ),
        (
            "write latency",
            format!(
                "p50 {}  p99 {}  max {}",
                opt_us(s.write_p50_us),
                opt_us(s.write_p99_us),
                opt_us(s.write_max_us)
            ),
        ),
        ("minor faults", s.minor_faults.to_string()),
        (
            "server COW",
            s.server_reported_cow_bytes.map_or("-".to_owned(), mib),
        ),
    ];
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}
