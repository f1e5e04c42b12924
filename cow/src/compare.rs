//! `forkdb-cow compare`: the same workload on forkdb-server and on redis-server, one after the
//! other (only one data set in memory at a time), then one chart and one table side by side.
//!
//! `--methods` picks the saves: `fork` (forkdb's `BGSAVE`), `forkless` (forkdb's `BGSAVE
//! FORKLESS`, a thread snapshot) and `redis` (redis-server's `BGSAVE`). Each method gets a
//! fresh server of its own (same binary, same options, same data set), so that every save
//! starts from the same state: a fresh heap, no earlier save's writes. With `--forkdb-addr`
//! both forkdb methods run on that server, one after the other.
//! The forkless save runs first, so that a forkdb without it fails the run before the long
//! parts. Each method has its colour in every chart ([`chart::server_color`]) and its output
//! directory: `forkdb/`, `forkdb-forkless/`, `redis/`.

use std::fmt;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{bail, Context, Result};

use crate::chart;
use crate::run::{self, RunOutput, Summary, Workload};
use crate::servers::{self, Flavor, ManagedServer};
use crate::types::{DataType, Shape};
use crate::MIB;

/// One kind of save to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// forkdb, `BGSAVE` (or `--save-cmd`): a fork.
    Fork,
    /// forkdb, `BGSAVE FORKLESS`: a thread, no child.
    Forkless,
    /// redis-server, `BGSAVE`.
    Redis,
}

impl Method {
    /// The run's label and output directory.
    pub fn dir(self) -> &'static str {
        match self {
            Method::Fork => "forkdb",
            Method::Forkless => "forkdb-forkless",
            Method::Redis => "redis",
        }
    }

    /// The workload of this method: `w` with its save command.
    fn workload(self, w: &Workload) -> Workload {
        let mut w = w.clone();
        let bgsave = || vec!["BGSAVE".to_owned()];
        match self {
            Method::Fork => {}
            Method::Forkless => w.save_cmd = vec!["BGSAVE".to_owned(), "FORKLESS".to_owned()],
            // redis-server 7.0 has no forkless save.
            Method::Redis if w.forkless() => w.save_cmd = bgsave(),
            Method::Redis => {}
        }
        w
    }
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fork" => Ok(Method::Fork),
            "forkless" => Ok(Method::Forkless),
            "redis" => Ok(Method::Redis),
            _ => Err(format!("{s:?}: expected fork, forkless or redis")),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Fork => "fork",
            Method::Forkless => "forkless",
            Method::Redis => "redis",
        })
    }
}

/// What `compare` was asked to do.
pub struct CompareOptions {
    pub forkdb_bin: Option<PathBuf>,
    pub redis_bin: Option<PathBuf>,
    pub forkdb_addr: Option<String>,
    pub redis_addr: Option<String>,
    /// `name=value` options for forkdb-server.
    pub forkdb_config: Vec<String>,
    /// Which saves, in any order (duplicates ignored).
    pub methods: Vec<Method>,
    pub workload: Workload,
    pub out: PathBuf,
}

/// Runs every method and writes `compare.svg` and `compare.md` (plus one directory per method).
/// Returns the runs in the order of the table: fork, forkless, redis.
pub fn compare(o: &CompareOptions) -> Result<Vec<RunOutput>> {
    let has = |m| o.methods.contains(&m);
    if o.methods.is_empty() {
        bail!("--methods needs at least one of fork, forkless, redis");
    }
    fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let mut forkdb_runs: Vec<(Method, RunOutput)> = Vec::new();
    if has(Method::Fork) || has(Method::Forkless) {
        // The forkless save first: a forkdb without one fails before the fork run.
        let order: Vec<Method> = [Method::Forkless, Method::Fork]
            .into_iter()
            .filter(|m| has(*m))
            .collect();
        let bin = o
            .forkdb_bin
            .clone()
            .unwrap_or_else(servers::default_forkdb_bin);
        let extra = servers::config_args(&o.forkdb_config)?;
        // A given server runs both; otherwise each method gets a fresh one.
        let groups: Vec<Vec<Method>> = if o.forkdb_addr.is_some() {
            vec![order]
        } else {
            order.into_iter().map(|m| vec![m]).collect()
        };
        for group in groups {
            forkdb_runs.extend(one_server(
                "forkdb",
                o.forkdb_addr.as_deref(),
                bin.clone(),
                Flavor::Forkdb,
                &extra,
                &group,
                o,
            )?);
        }
        forkdb_runs.reverse();
    }
    let mut runs: Vec<RunOutput> = forkdb_runs.into_iter().map(|r| r.1).collect();
    if has(Method::Redis) {
        runs.extend(
            one_server(
                "redis",
                o.redis_addr.as_deref(),
                o.redis_bin
                    .clone()
                    .unwrap_or_else(servers::default_redis_bin),
                Flavor::Redis,
                &[],
                &[Method::Redis],
                o,
            )?
            .into_iter()
            .map(|r| r.1),
        );
    }

    let summaries: Vec<&Summary> = runs.iter().map(|r| &r.summary).collect();
    let title = title(&o.workload, &summaries);
    let sides: Vec<chart::Side> = runs
        .iter()
        .map(|r| chart::Side::of(&r.summary, &r.samples))
        .collect();
    chart::compare_chart(&o.out.join("compare.svg"), &title, &sides)?;
    fs::write(
        o.out.join("compare.md"),
        markdown(&title, &summaries, &o.forkdb_config),
    )?;
    Ok(runs)
}

/// `forkdb vs redis: forkdb 0.1.0 / redis 7.0.15: 256 MiB of ...`; with a forkless save,
/// `forkdb fork vs forkless vs redis: ...`.
fn title(w: &Workload, s: &[&Summary]) -> String {
    let mut servers: Vec<&str> = s.iter().map(|s| s.server.as_str()).collect();
    servers.dedup();
    let forkless = s.iter().any(|s| s.method == "forkless");
    let head = if forkless {
        s.iter()
            .map(|s| {
                if s.server.starts_with("forkdb") {
                    format!("forkdb {}", s.method)
                } else {
                    s.server.split_whitespace().next().unwrap_or("").to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" vs ")
    } else {
        s.iter()
            .map(|s| s.server.split_whitespace().next().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
            .join(" vs ")
    };
    format!("{head}: {}", w.describe(&servers.join(" / ")))
}

/// Starts (or uses) one server and runs `methods` on it one after the other.
fn one_server(
    name: &str,
    addr: Option<&str>,
    bin: PathBuf,
    flavor: Flavor,
    extra: &[String],
    methods: &[Method],
    o: &CompareOptions,
) -> Result<Vec<(Method, RunOutput)>> {
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
    let mut outs = Vec::new();
    for (i, &m) in methods.iter().enumerate() {
        let mut w = m.workload(&o.workload);
        // Later methods on the same server reuse its data set.
        if i > 0 {
            w.refill = false;
        }
        let label = match m {
            Method::Forkless => "forkdb forkless",
            _ => name,
        };
        let out = run::run(&addr, &w, &o.out.join(m.dir()), Some(label)).with_context(|| {
            format!(
                "running the workload on {name} ({addr}) with `{}`",
                w.save_cmd.join(" ")
            )
        })?;
        println!("{}", run::summary_table(&out.summary));
        outs.push((m, out));
    }
    // Stop it now, before the other server fills its data set.
    drop(server);
    Ok(outs)
}

fn baseline(s: &Summary) -> u64 {
    s.baseline_bytes
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 || a.is_nan() || b.is_nan() {
        "-".to_owned()
    } else {
        format!("{:.2}", a / b)
    }
}

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / MIB as f64)
}

/// A column's name: the server, and the method when forkdb has two.
fn column(s: &Summary, all: &[&Summary]) -> String {
    let forkdbs = all
        .iter()
        .filter(|x| x.server.starts_with("forkdb"))
        .count();
    if s.server.starts_with("forkdb") && (forkdbs > 1 || s.method == "forkless") {
        format!("{} {}", s.server, s.method)
    } else {
        s.server.clone()
    }
}

/// A ratio column's short name (`forkdb`, `fork`, `forkless`, `redis`).
fn short(s: &Summary, all: &[&Summary]) -> String {
    let forkdbs = all
        .iter()
        .filter(|x| x.server.starts_with("forkdb"))
        .count();
    if s.server.starts_with("forkdb") && (forkdbs > 1 || s.method == "forkless") {
        s.method.to_owned()
    } else {
        s.server
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

/// The side-by-side table: one column per run, then each forkdb run ÷ redis-server's (and
/// forkless ÷ fork when both ran).
pub fn markdown(title: &str, sides: &[&Summary], forkdb_config: &[String]) -> String {
    let mut md = format!("# {title}\n\n");
    let Some(f) = sides.first() else {
        return md;
    };
    let shape = Shape {
        ty: f.data_type,
        members: f.members,
        value_size: f.value_size,
    };
    let data = if f.data_type == DataType::String {
        format!("{} keys of {} B", f.keys, f.value_size)
    } else {
        shape.describe(f.keys)
    };
    let saves: Vec<String> = sides
        .iter()
        .map(|s| format!("`{}`", s.save_cmd))
        .collect::<Vec<_>>();
    let mut saves_uniq = saves.clone();
    saves_uniq.dedup();
    let _ = writeln!(
        md,
        "Data set: {data} ({:.1} MiB of values); pattern `{}`, rate `{}`, {} \
         connections × pipeline {}; save command {}{}.\n",
        f.dataset_bytes as f64 / MIB as f64,
        f.pattern,
        f.rate,
        f.conns,
        f.pipeline,
        saves_uniq.join(" / "),
        f.save_delay_us
            .map(|d| format!(", rdb-key-save-delay {d} µs"))
            .unwrap_or_default()
    );
    if !forkdb_config.is_empty() {
        let _ = writeln!(md, "forkdb options: `{}`.\n", forkdb_config.join(" "));
    }
    // (numerator, denominator) pairs of the ratio columns.
    let redis = sides.iter().position(|s| s.server.starts_with("redis"));
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    if let Some(r) = redis {
        pairs.extend((0..sides.len()).filter(|&i| i != r).map(|i| (i, r)));
    }
    let fork = sides
        .iter()
        .position(|s| s.server.starts_with("forkdb") && s.method == "fork");
    let forkless = sides.iter().position(|s| s.method == "forkless");
    if let (Some(a), Some(b)) = (forkless, fork) {
        pairs.push((a, b));
    }
    md.push('|');
    for s in sides {
        let _ = write!(md, " | {}", column(s, sides));
    }
    for (a, b) in &pairs {
        let _ = write!(
            md,
            " | {}/{}",
            short(sides[*a], sides),
            short(sides[*b], sides)
        );
    }
    md.push_str(" |\n| ---");
    md.push_str(&" | ---:".repeat(sides.len() + pairs.len()));
    md.push_str(" |\n");
    let mut row = |name: &str, get: &dyn Fn(&Summary) -> f64, fmt: &dyn Fn(f64) -> String| {
        let v: Vec<f64> = sides.iter().map(|s| get(s)).collect();
        let _ = write!(md, "| {name}");
        for x in &v {
            let _ = write!(md, " | {}", fmt(*x));
        }
        for (a, b) in &pairs {
            let _ = write!(md, " | {}", ratio(v[*a], v[*b]));
        }
        md.push_str(" |\n");
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
    row("baseline", &|s| baseline(s) as f64, &mib);
    row("peak child COW", &|s| s.peak_cow_bytes as f64, &mib);
    row("peak total", &|s| s.peak_total_bytes as f64, &mib);
    row("extra bytes", &|s| s.extra_bytes as f64, &mib);
    row("peak ratio", &|s| s.peak_ratio, &|x| format!("{x:.3}"));
    row("fork time", &|s| opt(s.fork_usec), &us);
    row("save time", &|s| s.save_ms as f64, &|x| {
        format!("{x:.0} ms")
    });
    row("writes", &|s| s.writes as f64, &int);
    row("write rate", &|s| s.write_rate_achieved, &|x| {
        format!("{x:.0}/s")
    });
    row("write p50", &|s| opt(s.write_p50_us), &us);
    row("write p99", &|s| opt(s.write_p99_us), &us);
    row("minor faults", &|s| s.minor_faults as f64, &int);
    let _ = writeln!(
        md,
        "\npeak total = max(parent + child {b}) while the child lived; extra = peak total − \
         baseline {b}; peak ratio = peak total ÷ baseline {b}.{} Write latency: {}. Per-run \
         outputs: {} (samples.csv, summary.json, chart.svg).",
        if forkless.is_some() {
            " A forkless save has no child: its total is the server's own, while the save ran."
        } else {
            ""
        },
        f.latency_note,
        sides
            .iter()
            .map(|s| format!("`{}/`", dir_of(s)))
            .collect::<Vec<_>>()
            .join(", "),
        b = f.ratio_basis.label()
    );
    md
}

/// The output directory of a run (see [`Method::dir`]).
fn dir_of(s: &Summary) -> &'static str {
    if s.server.starts_with("redis") {
        Method::Redis.dir()
    } else if s.method == "forkless" {
        Method::Forkless.dir()
    } else {
        Method::Fork.dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::is_forkless;

    #[test]
    fn methods_parse() {
        assert_eq!("fork".parse::<Method>().unwrap(), Method::Fork);
        assert_eq!(" Forkless".parse::<Method>().unwrap(), Method::Forkless);
        assert_eq!("redis".parse::<Method>().unwrap(), Method::Redis);
        assert!("thread".parse::<Method>().is_err());
        assert!(is_forkless("bgsave forkless"));
        assert!(!is_forkless("BGSAVE"));
    }
}
