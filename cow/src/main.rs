//! `forkdb-cow`: the command line. See the library docs ([`forkdb_cow`]) and `docs/cow.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use forkdb_cow::compare::{self, CompareOptions, Method};
use forkdb_cow::fill;
use forkdb_cow::resp;
use forkdb_cow::run::{self, Workload};
use forkdb_cow::sweep::{self, SweepOptions};
use forkdb_cow::types::{DataType, Shape};
use forkdb_cow::workload::{Pattern, Rate};

/// Measure the copy-on-write memory cost of a fork-based snapshot (BGSAVE) under writes.
#[derive(Parser)]
#[command(name = "forkdb-cow", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// How long to wait for a server given by address (--addr, --forkdb-addr, --redis-addr) to
    /// answer PING: it may still be starting or loading (e.g. a container started alongside).
    #[arg(long, global = true, default_value_t = 30)]
    connect_wait_s: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// One measured save against a running server on this host.
    Run(RunArgs),
    /// The same workload on forkdb-server and redis-server, side by side.
    Compare(CompareArgs),
    /// A rate × pattern matrix on one data set.
    Sweep(SweepArgs),
    /// Only fill a running server with the data set (no save), e.g. to measure memory per key.
    Fill(FillArgs),
}

/// The data set.
#[derive(Args, Clone)]
struct DatasetArgs {
    /// Data set size: MiB of values (keys = MiB × 1 MiB ÷ value size; for a container type,
    /// ÷ members × value size, a set's integer counting 8 bytes and a zset's score 8 more).
    #[arg(long, default_value_t = 256)]
    dataset_mib: u64,
    /// Number of keys, instead of the one --dataset-mib gives.
    #[arg(long)]
    keys: Option<u64>,
    /// Bytes per value: a string's value, a hash field's value, a list element, a zset member
    /// (default 4096 for string, 16 for the containers; unused by set).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=512 * 1024 * 1024))]
    value_size: Option<u64>,
    /// What each key holds: string | hash | list | set | zset.
    #[arg(long = "type", default_value = "string")]
    data_type: DataType,
    /// Members per container (default: hash 10 fields, list 100 elements, set 50 integers,
    /// zset 100 members, all in Redis 7.0's compact encodings).
    #[arg(long)]
    members: Option<u64>,
    /// Refill even if DBSIZE already matches (FLUSHALL first).
    #[arg(long)]
    refill: bool,
    /// Connections used to fill.
    #[arg(long, default_value_t = 4)]
    fill_conns: usize,
    /// Commands per pipelined fill batch.
    #[arg(long, default_value_t = 1000)]
    fill_batch: usize,
}

/// How the save is run and measured.
#[derive(Args, Clone)]
struct SaveArgs {
    /// `CONFIG SET rdb-key-save-delay U` (µs per key) for the run, restored afterwards.
    #[arg(long)]
    save_delay_us: Option<i64>,
    /// The snapshot command (words split on whitespace).
    #[arg(long, default_value = "BGSAVE")]
    save_cmd: String,
    /// Sampling period in ms.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(50..=100))]
    sample_ms: u64,
    /// Stop the writers this many ms after the save starts (default: when the child exits).
    /// Writes that end before the child does are exactly the server's writes during the save.
    #[arg(long)]
    write_ms: Option<u64>,
    /// Writer connections.
    #[arg(long, default_value_t = 4)]
    conns: usize,
    /// Commands per pipelined writer batch (the burst size when paced).
    #[arg(long, default_value_t = 16)]
    pipeline: usize,
    /// Fail if the save lasts longer than this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout_s: u64,
    /// Seed for values and key choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args, Clone)]
struct WorkloadArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Writes during the save: none | uniform | hot:PCT | new | reads (GETs of random keys).
    #[arg(long, default_value = "uniform")]
    pattern: Pattern,
    /// Total commands per second over all connections, or `max`. `0` sends no commands at all,
    /// whatever the pattern: the run then measures the save alone, as `--pattern none` does.
    #[arg(long, default_value = "max")]
    rate: Rate,
    #[command(flatten)]
    save: SaveArgs,
}

#[derive(Args)]
struct RunArgs {
    /// The server, HOST:PORT (it must run on this host).
    #[arg(long)]
    addr: String,
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Output directory (samples.csv, summary.json, chart.svg).
    #[arg(long)]
    out: PathBuf,
    /// Name of the run (default: server, pattern and rate).
    #[arg(long)]
    label: Option<String>,
    /// Measure the data the server already holds, under writes from elsewhere (a replica's
    /// master, your application): no fill and no writes of forkdb-cow's own (needs `--pattern
    /// none`); `writes` is then the server's count during the save. Automatic when the server
    /// is a replica (INFO replication role:slave).
    #[arg(long)]
    keep_data: bool,
}

#[derive(Args)]
struct CompareArgs {
    /// forkdb-server binary to start (default: target/release/forkdb-server of the workspace).
    #[arg(long, conflicts_with = "forkdb_addr")]
    forkdb_bin: Option<PathBuf>,
    /// redis-server binary to start (default: redis-server on PATH).
    #[arg(long, conflicts_with = "redis_addr")]
    redis_bin: Option<PathBuf>,
    /// Use this running forkdb instead of starting one.
    #[arg(long)]
    forkdb_addr: Option<String>,
    /// Use this running redis instead of starting one.
    #[arg(long)]
    redis_addr: Option<String>,
    /// `name=value`, passed to the forkdb-server it starts as `--name value` (repeatable).
    #[arg(long = "forkdb-config", value_name = "NAME=VALUE")]
    forkdb_config: Vec<String>,
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Which saves to run, comma-separated: fork (forkdb, `--save-cmd`, default BGSAVE),
    /// forkless (forkdb, BGSAVE FORKLESS, on the same forkdb), redis (redis-server, BGSAVE).
    #[arg(long, value_delimiter = ',', default_value = "fork,redis")]
    methods: Vec<Method>,
    /// Output directory (compare.md, compare.svg, forkdb/, forkdb-forkless/, redis/).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct FillArgs {
    /// The server, HOST:PORT.
    #[arg(long)]
    addr: String,
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Seed for values.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args)]
struct SweepArgs {
    /// Rates, comma-separated (commands per second or `max`; `0` = no commands, a control
    /// column: the save alone).
    #[arg(long, value_delimiter = ',', required = true)]
    rates: Vec<Rate>,
    /// Patterns, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    patterns: Vec<Pattern>,
    #[command(flatten)]
    dataset: DatasetArgs,
    #[command(flatten)]
    save: SaveArgs,
    /// A running server to use.
    #[arg(long, conflicts_with = "server_bin")]
    addr: Option<String>,
    /// A server binary to start (forkdb-server or redis-server; default: forkdb-server).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// `name=value` options for the server it starts (repeatable).
    #[arg(long = "server-config", value_name = "NAME=VALUE")]
    server_config: Vec<String>,
    /// Output directory (sweep.md, sweep.csv, one directory per cell).
    #[arg(long)]
    out: PathBuf,
}

fn workload(d: &DatasetArgs, pattern: Pattern, rate: Rate, s: &SaveArgs) -> Workload {
    let shape = d.shape();
    Workload {
        dataset_mib: d.dataset_mib,
        value_size: shape.value_size,
        data_type: shape.ty,
        members: shape.members,
        keys: d.keys,
        pattern,
        rate,
        save_delay_us: s.save_delay_us,
        save_cmd: s.save_cmd.split_whitespace().map(str::to_owned).collect(),
        sample_ms: s.sample_ms,
        write_ms: s.write_ms,
        conns: s.conns.max(1),
        pipeline: s.pipeline.max(1),
        refill: d.refill,
        fill_conns: d.fill_conns.max(1),
        fill_batch: d.fill_batch.max(1),
        timeout: Duration::from_secs(s.timeout_s),
        seed: s.seed,
        keep_data: false,
    }
}

impl DatasetArgs {
    fn shape(&self) -> Shape {
        Shape::new(
            self.data_type,
            self.members,
            self.value_size.map(|v| v as usize),
        )
    }
}

impl WorkloadArgs {
    fn build(&self) -> Workload {
        workload(&self.dataset, self.pattern, self.rate, &self.save)
    }
}

/// Save settings for commands that do not save (`fill`).
fn default_save() -> SaveArgs {
    SaveArgs {
        save_delay_us: None,
        save_cmd: "BGSAVE".to_owned(),
        sample_ms: 50,
        write_ms: None,
        conns: 4,
        pipeline: 16,
        timeout_s: 3600,
        seed: 1,
    }
}

fn main() -> ExitCode {
    forkdb_cow::install_signal_handlers();
    let cli = Cli::parse();
    let wait = Duration::from_secs(cli.connect_wait_s);
    let given: Vec<&str> = match &cli.cmd {
        Cmd::Run(a) => vec![a.addr.as_str()],
        Cmd::Compare(a) => [&a.forkdb_addr, &a.redis_addr]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect(),
        Cmd::Sweep(a) => a.addr.iter().map(String::as_str).collect(),
        Cmd::Fill(a) => vec![a.addr.as_str()],
    };
    if let Err(e) = given
        .into_iter()
        .try_for_each(|addr| resp::wait_for_server(addr, wait))
    {
        eprintln!("forkdb-cow: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.cmd {
        Cmd::Run(a) => {
            let w = Workload {
                keep_data: a.keep_data,
                ..a.workload.build()
            };
            run::run(&a.addr, &w, &a.out, a.label.as_deref()).map(|out| {
                print!("{}", run::summary_table(&out.summary));
                println!("outputs in {}", a.out.display());
            })
        }
        Cmd::Compare(a) => compare::compare(&CompareOptions {
            forkdb_bin: a.forkdb_bin,
            redis_bin: a.redis_bin,
            forkdb_addr: a.forkdb_addr,
            redis_addr: a.redis_addr,
            forkdb_config: a.forkdb_config,
            methods: a.methods,
            workload: a.workload.build(),
            out: a.out.clone(),
        })
        .map(|_| {
            if let Ok(md) = std::fs::read_to_string(a.out.join("compare.md")) {
                print!("{md}");
            }
        }),
        Cmd::Sweep(a) => sweep::sweep(&SweepOptions {
            rates: a.rates,
            patterns: a.patterns,
            workload: workload(&a.dataset, Pattern::None, Rate::Max, &a.save),
            addr: a.addr,
            server_bin: a.server_bin,
            server_config: a.server_config,
            out: a.out.clone(),
        })
        .map(|_| {
            if let Ok(md) = std::fs::read_to_string(a.out.join("sweep.md")) {
                print!("{md}");
            }
        }),
        Cmd::Fill(a) => {
            let w = Workload {
                seed: a.seed,
                ..workload(&a.dataset, Pattern::None, Rate::Max, &default_save())
            };
            fill::fill_workload(&a.addr, &w).map(|o| {
                println!(
                    "{}: {}, {} in {} ms",
                    a.addr,
                    w.shape().describe(w.keys()),
                    if o.filled { "filled" } else { "already there" },
                    o.fill_ms
                );
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("forkdb-cow: {e:#}");
            ExitCode::FAILURE
        }
    }
}
