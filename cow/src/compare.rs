//! `forkdb-cow compare`: the same workload on forkdb-server and on redis-server, one after the
//! other (only one data set in memory at a time), then one chart and one table side by side.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::chart;
use crate::run::{self, RunOutput, Summary, Workload};
use crate::servers::{self, Flavor, ManagedServer};
use crate::MIB;

/// What `compare` was asked to do.
pub struct CompareOptions {
    pub forkdb_bin: Option<PathBuf>,
    pub redis_bin: Option<PathBuf>,
    pub forkdb_addr: Option<String>,
    pub redis_addr: Option<String>,
    /// `name=value` options for forkdb-server.
    pub forkdb_config: Vec<String>,
    pub workload: Workload,
    pub out: PathBuf,
}

/// Runs both sides and writes `compare.svg` and `compare.md` (plus `forkdb/` and `redis/`).
pub fn compare(o: &CompareOptions) -> Result<(RunOutput, RunOutput)> {
    fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let forkdb = one_side(
        "forkdb",
        o.forkdb_addr.as_deref(),
        o.forkdb_bin
            .clone()
            .unwrap_or_else(servers::default_forkdb_bin),
        Flavor::Forkdb,
        &servers::config_args(&o.forkdb_config)?,
        o,
    )?;
    let redis = one_side(
        "redis",
        o.redis_addr.as_deref(),
        o.redis_bin
            .clone()
            .unwrap_or_else(servers::default_redis_bin),
        Flavor::Redis,
        &[],
        o,
    )?;

    let (f, r) = (&forkdb.summary, &redis.summary);
    let title = format!(
        "forkdb vs redis: {}",
        o.workload.describe(&format!("{} / {}", f.server, r.server))
    );
    chart::compare_chart(
        &o.out.join("compare.svg"),
        &title,
        &[
            chart::Side::of(f, &forkdb.samples),
            chart::Side::of(r, &redis.samples),
        ],
    )?;
    fs::write(
        o.out.join("compare.md"),
        markdown(&title, f, r, &o.forkdb_config),
    )?;
    Ok((forkdb, redis))
}

fn one_side(
    name: &str,
    addr: Option<&str>,
    bin: PathBuf,
    flavor: Flavor,
    extra: &[String],
    o: &CompareOptions,
) -> Result<RunOutput> {
    let mut server = None;
    let addr = match addr {
        Some(a) => a.to_owned(),
        None => {
            let s = ManagedServer::start(&bin, flavor, extra)
                .with_context(|| format!("starting {name}"))?;
            eprintln!(
                "{name}: started {} on {} (pid {})",
                bin.display(),
                s.addr,
                s.pid
            );
            let a = s.addr.clone();
            server = Some(s);
            a
        }
    };
    let out = run::run(&addr, &o.workload, &o.out.join(name), Some(name))
        .with_context(|| format!("running the workload on {name} ({addr})"))?;
    println!("{}", run::summary_table(&out.summary));
    // Stop it now, before the other server fills its data set.
    drop(server);
    Ok(out)
}

fn baseline(s: &Summary) -> u64 {
    s.baseline_bytes
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        "-".to_owned()
    } else {
        format!("{:.2}", a / b)
    }
}

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / MIB as f64)
}

/// The side-by-side table.
pub fn markdown(title: &str, f: &Summary, r: &Summary, forkdb_config: &[String]) -> String {
    let mut md = format!("# {title}\n\n");
    let _ = writeln!(
        md,
        "Data set: {} keys of {} B ({:.1} MiB of values); pattern `{}`, rate `{}`, {} \
         connections × pipeline {}; save command `{}`{}.\n",
        f.keys,
        f.value_size,
        f.dataset_bytes as f64 / MIB as f64,
        f.pattern,
        f.rate,
        f.conns,
        f.pipeline,
        f.save_cmd,
        f.save_delay_us
            .map(|d| format!(", rdb-key-save-delay {d} µs"))
            .unwrap_or_default()
    );
    if !forkdb_config.is_empty() {
        let _ = writeln!(md, "forkdb options: `{}`.\n", forkdb_config.join(" "));
    }
    let _ = writeln!(md, "| | {} | {} | forkdb/redis |", f.server, r.server);
    md.push_str("| --- | ---: | ---: | ---: |\n");
    let mut row = |name: &str, a: f64, b: f64, fmt: &dyn Fn(f64) -> String| {
        let _ = writeln!(md, "| {name} | {} | {} | {} |", fmt(a), fmt(b), ratio(a, b));
    };
    let int = |x: f64| format!("{x:.0}");
    let opt = |v: Option<u64>| v.map_or(f64::NAN, |v| v as f64);
    let us = |x: f64| {
        if x.is_nan() {
            "-".to_owned()
        } else {
            format!("{x:.0} µs")
        }
    };
    row("baseline", baseline(f) as f64, baseline(r) as f64, &mib);
    row(
        "peak child COW",
        f.peak_cow_bytes as f64,
        r.peak_cow_bytes as f64,
        &mib,
    );
    row(
        "peak total",
        f.peak_total_bytes as f64,
        r.peak_total_bytes as f64,
        &mib,
    );
    row(
        "extra bytes",
        f.extra_bytes as f64,
        r.extra_bytes as f64,
        &mib,
    );
    row("peak ratio", f.peak_ratio, r.peak_ratio, &|x| {
        format!("{x:.3}")
    });
    row("fork time", opt(f.fork_usec), opt(r.fork_usec), &us);
    row("save time", f.save_ms as f64, r.save_ms as f64, &|x| {
        format!("{x:.0} ms")
    });
    row("writes", f.writes as f64, r.writes as f64, &int);
    row(
        "write rate",
        f.write_rate_achieved,
        r.write_rate_achieved,
        &|x| format!("{x:.0}/s"),
    );
    row("write p50", opt(f.write_p50_us), opt(r.write_p50_us), &us);
    row("write p99", opt(f.write_p99_us), opt(r.write_p99_us), &us);
    row(
        "minor faults",
        f.minor_faults as f64,
        r.minor_faults as f64,
        &int,
    );
    let _ = writeln!(
        md,
        "\npeak total = max(parent + child {b}) while the child lived; extra = peak total − \
         baseline {b}; peak ratio = peak total ÷ baseline {b}. Write latency: {}. Per-run \
         outputs: `forkdb/` and `redis/` (samples.csv, summary.json, chart.svg).",
        f.latency_note,
        b = f.ratio_basis.label()
    );
    md
}
