//! `forkdb-cow sweep`: a rate × pattern matrix on one data set (filled once), summarised as the
//! peak ratio of every cell and the headroom a user must leave: peak total ÷ data set bytes.
//!
//! Pattern `none` does not depend on the rate, so it is run once and shown in every rate column.
//! `--refill` applies to the first cell only; the others reuse the data set (pattern `new`
//! deletes the keys it inserted after each run, see [`crate::run`]; its cells run last, since
//! the memory it grew is not all given back).

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::run::{self, Summary, Workload};
use crate::servers::{self, Flavor, ManagedServer};
use crate::types::Shape;
use crate::workload::{Pattern, Rate};
use crate::MIB;

/// What `sweep` was asked to do.
pub struct SweepOptions {
    pub rates: Vec<Rate>,
    pub patterns: Vec<Pattern>,
    /// Pattern and rate of this one are replaced per cell.
    pub workload: Workload,
    pub addr: Option<String>,
    pub server_bin: Option<PathBuf>,
    pub server_config: Vec<String>,
    pub out: PathBuf,
}

/// One cell's result.
pub struct Cell {
    pub pattern: Pattern,
    pub rate: Rate,
    pub summary: Summary,
}

/// Runs the matrix and writes `sweep.md` and `sweep.csv` (plus one directory per cell).
pub fn sweep(o: &SweepOptions) -> Result<Vec<Cell>> {
    if o.rates.is_empty() || o.patterns.is_empty() {
        bail!("--rates and --patterns need at least one value each");
    }
    fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let mut server = None;
    let addr = match &o.addr {
        Some(a) => a.clone(),
        None => {
            let bin = o
                .server_bin
                .clone()
                .unwrap_or_else(servers::default_forkdb_bin);
            let s = ManagedServer::start(
                &bin,
                Flavor::of(&bin),
                &servers::config_args(&o.server_config)?,
            )?;
            eprintln!("started {} on {} (pid {})", bin.display(), s.addr, s.pid);
            let a = s.addr.clone();
            server = Some(s);
            a
        }
    };
    let mut cells = Vec::new();
    let mut first = true;
    // `new` leaves the server's memory grown (and fragmented once its keys are deleted), so its
    // cells run last whatever the order asked for; the tables keep the order asked for.
    let order = o
        .patterns
        .iter()
        .filter(|p| **p != Pattern::New)
        .chain(o.patterns.iter().filter(|p| **p == Pattern::New));
    for &pattern in order {
        for &rate in &o.rates {
            if pattern == Pattern::None && cells.iter().any(|c: &Cell| c.pattern == pattern) {
                continue;
            }
            let mut w = o.workload.clone();
            w.pattern = pattern;
            w.rate = rate;
            w.refill = o.workload.refill && first;
            first = false;
            let dir = o.out.join(format!("{}-{rate}", pattern.slug()));
            let label = format!("{pattern} @ {rate}");
            eprintln!("== {label}");
            let out =
                run::run(&addr, &w, &dir, Some(&label)).with_context(|| format!("cell {label}"))?;
            println!("{}", run::summary_table(&out.summary));
            cells.push(Cell {
                pattern,
                rate,
                summary: out.summary,
            });
        }
    }
    drop(server);
    fs::write(o.out.join("sweep.md"), markdown(o, &cells))?;
    write_csv(o, &cells)?;
    Ok(cells)
}

fn find(cells: &[Cell], pattern: Pattern, rate: Rate) -> Option<&Summary> {
    cells
        .iter()
        .find(|c| c.pattern == pattern && (c.rate == rate || pattern == Pattern::None))
        .map(|c| &c.summary)
}

fn table(o: &SweepOptions, cells: &[Cell], md: &mut String, f: &dyn Fn(&Summary) -> String) {
    md.push_str("| pattern \\ rate |");
    for r in &o.rates {
        let _ = write!(md, " {r} |");
    }
    md.push_str("\n| --- |");
    md.push_str(&" ---: |".repeat(o.rates.len()));
    md.push('\n');
    for &p in &o.patterns {
        let _ = write!(md, "| `{p}` |");
        for &r in &o.rates {
            let v = find(cells, p, r).map_or("-".to_owned(), f);
            let _ = write!(md, " {v} |");
        }
        md.push('\n');
    }
    md.push('\n');
}

/// `sweep.md`.
pub fn markdown(o: &SweepOptions, cells: &[Cell]) -> String {
    let Some(any) = cells.first().map(|c| &c.summary) else {
        return "# sweep\n\nNo cells.\n".to_owned();
    };
    let mut md = format!(
        "# COW sweep: {}\n\n{} ({:.1} MiB of values), {} connections × pipeline {}, \
         save command `{}`{}.\n\n",
        any.server,
        Shape {
            ty: any.data_type,
            members: any.members,
            value_size: any.value_size,
        }
        .describe(any.keys),
        any.dataset_bytes as f64 / MIB as f64,
        any.conns,
        any.pipeline,
        any.save_cmd,
        any.save_delay_us
            .map(|d| format!(", rdb-key-save-delay {d} µs"))
            .unwrap_or_default()
    );
    let _ = write!(
        md,
        "## Peak ratio\n\nPeak total (parent + child {b} while the child lived) ÷ the server's \
         {b} just before the save.\n\n",
        b = any.ratio_basis.label()
    );
    table(o, cells, &mut md, &|s| format!("{:.3}", s.peak_ratio));
    md.push_str(
        "## Headroom\n\nPeak total ÷ data set bytes (keys × value size): the memory to provision \
         per byte of data for this write load during a save.\n\n",
    );
    table(o, cells, &mut md, &|s| {
        format!(
            "{:.2}",
            s.peak_total_bytes as f64 / s.dataset_bytes.max(1) as f64
        )
    });
    md.push_str("## Extra memory (peak total − baseline)\n\n");
    table(o, cells, &mut md, &|s| {
        format!("{:.1} MiB", s.extra_bytes as f64 / MIB as f64)
    });
    md.push_str("## Save time, writes, write p99\n\n");
    table(o, cells, &mut md, &|s| {
        format!(
            "{} ms, {} writes, p99 {}",
            s.save_ms,
            s.writes,
            s.write_p99_us.map_or("-".to_owned(), |u| format!("{u} µs"))
        )
    });
    md.push_str(
        "Per-cell outputs (samples.csv, summary.json, chart.svg) are in `<pattern>-<rate>/`.\n",
    );
    md
}

fn write_csv(o: &SweepOptions, cells: &[Cell]) -> Result<()> {
    let mut w = csv::Writer::from_path(o.out.join("sweep.csv"))?;
    w.write_record([
        "pattern",
        "rate",
        "peak_ratio",
        "headroom",
        "peak_total_bytes",
        "peak_cow_bytes",
        "extra_bytes",
        "baseline_bytes",
        "ratio_basis",
        "dataset_bytes",
        "save_ms",
        "writes",
        "write_p50_us",
        "write_p99_us",
    ])?;
    let opt = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
    for c in cells {
        let s = &c.summary;
        w.write_record([
            c.pattern.to_string(),
            c.rate.to_string(),
            s.peak_ratio.to_string(),
            format!(
                "{:.3}",
                s.peak_total_bytes as f64 / s.dataset_bytes.max(1) as f64
            ),
            s.peak_total_bytes.to_string(),
            s.peak_cow_bytes.to_string(),
            s.extra_bytes.to_string(),
            s.baseline_bytes.to_string(),
            s.ratio_basis.label().to_owned(),
            s.dataset_bytes.to_string(),
            s.save_ms.to_string(),
            s.writes.to_string(),
            opt(s.write_p50_us),
            opt(s.write_p99_us),
        ])?;
    }
    w.flush()?;
    Ok(())
}
