//! The write load driven while a snapshot child runs: which keys ([`Pattern`]), how fast
//! ([`Rate`]), the values written ([`ValuePool`]) and the latencies seen ([`Latencies`]).
//!
//! # Writers
//!
//! [`start_writers`] runs one thread per connection. Each sends batches of up to `pipeline`
//! commands (`SET`, or the data type's write: see [`crate::types`]) and waits for all replies
//! before the next batch. A unit of writing is one command, or two where the type needs a pair
//! to keep a key's size (a list's LPUSH+LPOP, a set's SREM+SADD); rates and counts are in
//! commands, and a batch may exceed `pipeline` by the second command of its last pair. The latency recorded for
//! every command of a batch is the batch's round trip (write of the first byte to the last
//! reply), i.e. what a client pipelining that deep sees; with a paced rate batches are mostly of
//! one command, so it is then the plain per-command latency.
//!
//! With `--rate OPS` each connection gets `OPS / conns` and follows a schedule (command `n` is due
//! at `n / rate` seconds after the start): a connection that fell behind sends what is due, up to
//! `pipeline` at once, so the average rate is kept when the server can keep up, and the
//! achieved rate is reported when it cannot. With `--rate max` every connection sends full batches
//! back to back.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::{Serialize, Serializer};

use crate::resp::Conn;
use crate::types::Shape;

/// Which keys the writers touch during the save.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pattern {
    /// No writes: the save's own cost.
    None,
    /// Overwrite uniformly random existing keys.
    Uniform,
    /// Overwrite keys only within the first PCT % of the keyspace (uniformly there).
    Hot(f64),
    /// Insert new keys beyond the filled range.
    New,
    /// GET uniformly random existing keys: no data changes, so whatever the save then copies
    /// is what reads write besides the data (per-key access time, counters). Its commands are
    /// counted as `writes` like the others'.
    Reads,
}

impl Pattern {
    /// A name usable as a directory name (`hot:10` → `hot10`).
    pub fn slug(&self) -> String {
        self.to_string().replace(':', "")
    }
}

impl FromStr for Pattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Pattern::None),
            "uniform" => Ok(Pattern::Uniform),
            "new" => Ok(Pattern::New),
            "reads" => Ok(Pattern::Reads),
            _ => {
                let pct = s.strip_prefix("hot:").ok_or_else(|| {
                    format!("{s:?}: expected none, uniform, hot:PCT, new or reads")
                })?;
                let pct: f64 = pct
                    .parse()
                    .map_err(|_| format!("hot:{pct}: PCT must be a number"))?;
                if !(pct > 0.0 && pct <= 100.0) {
                    return Err(format!("hot:{pct}: PCT must be in (0, 100]"));
                }
                Ok(Pattern::Hot(pct))
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::None => f.write_str("none"),
            Pattern::Uniform => f.write_str("uniform"),
            Pattern::Hot(p) => write!(f, "hot:{p}"),
            Pattern::New => f.write_str("new"),
            Pattern::Reads => f.write_str("reads"),
        }
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Total write rate over all connections. `PerSec(0.0)` (`--rate 0`) sends nothing, whatever
/// the pattern: the run then measures the save alone, as pattern `none` does, which makes a
/// rate-0 column of a sweep its control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    Max,
    PerSec(f64),
}

impl Rate {
    /// `--rate 0`: no commands at all.
    pub fn is_zero(self) -> bool {
        self == Rate::PerSec(0.0)
    }
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "max" {
            return Ok(Rate::Max);
        }
        match s.parse::<f64>() {
            // `+ 0.0` turns `-0` into 0.
            Ok(r) if r >= 0.0 && r.is_finite() => Ok(Rate::PerSec(r + 0.0)),
            _ => Err(format!(
                "{s:?}: expected `max` or operations per second (0 or more; 0 = no commands)"
            )),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Max => f.write_str("max"),
            Rate::PerSec(r) => write!(f, "{r}"),
        }
    }
}

/// `"max"` or the number.
impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Rate::Max => s.serialize_str("max"),
            Rate::PerSec(r) if r.fract() == 0.0 => s.serialize_u64(*r as u64),
            Rate::PerSec(r) => s.serialize_f64(*r),
        }
    }
}

/// SplitMix64: tiny, fast, good enough to pick keys and make incompressible bytes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// Random bytes that values are sliced from: `value_size` bytes at an offset into a few MiB of
/// random data, so values are incompressible and cost no generation time per write.
pub struct ValuePool {
    bytes: Vec<u8>,
    value_size: usize,
}

/// How many distinct starting offsets values have.
const POOL_SPREAD: usize = 4 << 20;

impl ValuePool {
    pub fn new(value_size: usize, seed: u64) -> ValuePool {
        let mut rng = Rng::new(seed ^ 0x05EE_D0FC_0FFE);
        let len = (value_size + POOL_SPREAD).next_multiple_of(8);
        let mut bytes = Vec::with_capacity(len);
        while bytes.len() < len {
            bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        ValuePool { bytes, value_size }
    }

    /// The value for `n` (any number: a key index, a random draw).
    pub fn value(&self, n: u64) -> &[u8] {
        let off = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize % POOL_SPREAD;
        &self.bytes[off..off + self.value_size]
    }
}

/// Latencies as (microseconds, commands) per batch; percentiles are weighted by commands.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    batches: Vec<(u32, u32)>,
}

impl Latencies {
    pub fn record(&mut self, d: Duration, commands: usize) {
        let us = d.as_micros().min(u32::MAX as u128) as u32;
        self.batches.push((us, commands as u32));
    }

    pub fn merge(&mut self, other: Latencies) {
        self.batches.extend(other.batches);
    }

    /// The latency (µs) that `q` (0..=1) of the commands did not exceed; `None` without data.
    pub fn quantile(&mut self, q: f64) -> Option<u64> {
        self.batches.sort_unstable();
        let total: u64 = self.batches.iter().map(|b| u64::from(b.1)).sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for &(us, n) in &self.batches {
            seen += u64::from(n);
            if seen >= rank {
                return Some(u64::from(us));
            }
        }
        self.batches.last().map(|b| u64::from(b.0))
    }
}

/// What the writers share with the run.
#[derive(Debug, Default)]
pub struct WriteCounters {
    /// Commands answered so far.
    pub writes: AtomicU64,
    /// Of those, error replies.
    pub errors: AtomicU64,
    /// Next key index for `new` (starts at the key count).
    pub next_new: AtomicU64,
}

/// Settings of one writer fleet.
pub struct WriterConfig {
    pub pattern: Pattern,
    /// What each key holds, and so which commands write and read it.
    pub shape: Shape,
    pub rate: Rate,
    pub keys: u64,
    pub conns: usize,
    pub pipeline: usize,
    pub seed: u64,
}

/// Running writer threads.
/// What one writer thread returns: its latencies and its first error reply.
type WriterOutcome = Result<(Latencies, Option<String>)>;

pub struct Writers {
    threads: Vec<JoinHandle<WriterOutcome>>,
    start: Arc<Barrier>,
    /// Whether [`Writers::go`] has passed the barrier (a second wait would block for ever).
    released: AtomicBool,
    stop: Arc<AtomicBool>,
    pub counters: Arc<WriteCounters>,
}

/// What the writers did.
pub struct WriteResult {
    pub latencies: Latencies,
    pub writes: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Keys `keys..new_end` were inserted (pattern `new`).
    pub new_end: u64,
}

/// Connects the writers and parks them until [`Writers::go`]. With pattern `none` or rate 0, no
/// thread is started.
pub fn start_writers(addr: &str, cfg: &WriterConfig, pool: Arc<ValuePool>) -> Result<Writers> {
    let n = if cfg.pattern == Pattern::None || cfg.rate.is_zero() {
        0
    } else {
        cfg.conns.max(1)
    };
    let start = Arc::new(Barrier::new(n + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(WriteCounters {
        next_new: AtomicU64::new(cfg.keys),
        ..Default::default()
    });
    let mut conns = Vec::new();
    for _ in 0..n {
        conns.push(Conn::connect(addr)?);
    }
    let per_conn_rate = match cfg.rate {
        Rate::Max => None,
        Rate::PerSec(r) => Some(r / n.max(1) as f64),
    };
    let threads = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let job = WriterJob {
                conn,
                pattern: cfg.pattern,
                shape: cfg.shape,
                keys: cfg.keys,
                rate: per_conn_rate,
                pipeline: cfg.pipeline.max(1),
                rng: Rng::new(cfg.seed.wrapping_mul(1000).wrapping_add(i as u64 + 1)),
                pool: pool.clone(),
                start: start.clone(),
                stop: stop.clone(),
                counters: counters.clone(),
            };
            std::thread::Builder::new()
                .name(format!("writer-{i}"))
                .spawn(move || job.run())
                .expect("spawning a writer thread")
        })
        .collect();
    Ok(Writers {
        threads,
        start,
        released: AtomicBool::new(false),
        stop,
        counters,
    })
}

impl Writers {
    /// Releases the writers.
    pub fn go(&self) {
        if !self.released.swap(true, Ordering::SeqCst) {
            self.start.wait();
        }
    }

    /// Stops the writers and collects their results.
    pub fn finish(self) -> Result<WriteResult> {
        self.stop.store(true, Ordering::SeqCst);
        self.go();
        let mut latencies = Latencies::default();
        let mut first_error = None;
        let mut failure = None;
        for t in self.threads {
            match t.join() {
                Ok(Ok((lat, err))) => {
                    latencies.merge(lat);
                    if first_error.is_none() {
                        first_error = err;
                    }
                }
                Ok(Err(e)) => failure = Some(e),
                Err(_) => failure = Some(anyhow::anyhow!("a writer thread panicked")),
            }
        }
        if let Some(e) = failure {
            return Err(e.context("writer failed"));
        }
        Ok(WriteResult {
            latencies,
            writes: self.counters.writes.load(Ordering::SeqCst),
            errors: self.counters.errors.load(Ordering::SeqCst),
            first_error,
            new_end: self.counters.next_new.load(Ordering::SeqCst),
        })
    }

    /// Stops the writers without waiting for the results (error paths). Writers still parked
    /// at the start (the save command failed) are released first, and see `stop` at once.
    pub fn abort(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.go();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

struct WriterJob {
    conn: Conn,
    pattern: Pattern,
    shape: Shape,
    keys: u64,
    /// Commands per second for this connection; `None` = as fast as possible.
    rate: Option<f64>,
    pipeline: usize,
    rng: Rng,
    pool: Arc<ValuePool>,
    start: Arc<Barrier>,
    stop: Arc<AtomicBool>,
    counters: Arc<WriteCounters>,
}

impl WriterJob {
    fn run(mut self) -> WriterOutcome {
        let mut lat = Latencies::default();
        let mut first_error = None;
        let mut buf = Vec::with_capacity(self.pipeline * (self.pool.value(0).len() + 64));
        let chunks = self.shape.chunks_per_key();
        let hot_keys = match self.pattern {
            Pattern::Hot(pct) => ((self.keys as f64 * pct / 100.0).ceil() as u64).max(1),
            _ => self.keys,
        };
        self.start.wait();
        let began = Instant::now();
        let mut sent = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let n = match self.rate {
                None => self.pipeline,
                Some(rate) => {
                    let due = (began.elapsed().as_secs_f64() * rate) as u64 + 1;
                    if due <= sent {
                        // Next command due at sent / rate; wake at least every 5 ms to see `stop`.
                        let at = Duration::from_secs_f64(sent as f64 / rate);
                        let wait = at.saturating_sub(began.elapsed());
                        std::thread::sleep(wait.min(Duration::from_millis(5)));
                        continue;
                    }
                    ((due - sent) as usize).min(self.pipeline)
                }
            };
            buf.clear();
            // Commands in this batch: `n`, or one more when the last unit is a pair; a new
            // container is all its fill commands.
            let mut cmds = 0;
            while cmds < n {
                let key = match self.pattern {
                    Pattern::None => unreachable!("no writer runs for pattern none"),
                    Pattern::Uniform | Pattern::Hot(_) | Pattern::Reads => self.rng.below(hot_keys),
                    Pattern::New => self.counters.next_new.fetch_add(1, Ordering::Relaxed),
                };
                cmds += match self.pattern {
                    Pattern::Reads => {
                        self.shape.push_read(&mut buf, key, &mut self.rng);
                        1
                    }
                    Pattern::New => {
                        for chunk in 0..chunks {
                            self.shape.push_fill(&mut buf, key, chunk, &self.pool);
                        }
                        chunks as usize
                    }
                    _ => self
                        .shape
                        .push_write(&mut buf, key, &mut self.rng, &self.pool),
                };
            }
            let n = cmds;
            let t = Instant::now();
            self.conn.send(&buf)?;
            let (errors, err) = self.conn.read_replies(n)?;
            lat.record(t.elapsed(), n);
            sent += n as u64;
            self.counters.writes.fetch_add(n as u64, Ordering::Relaxed);
            if errors > 0 {
                self.counters.errors.fetch_add(errors, Ordering::Relaxed);
                if first_error.is_none() {
                    first_error = err;
                }
            }
        }
        Ok((lat, first_error))
    }
}

/// Checks the `hot:PCT` share leaves at least one key, etc.
pub fn validate(pattern: Pattern, keys: u64) -> Result<()> {
    if keys == 0 && matches!(pattern, Pattern::Uniform | Pattern::Hot(_) | Pattern::Reads) {
        bail!("pattern {pattern} needs a non-empty data set");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_and_print() {
        for s in ["none", "uniform", "new", "reads", "hot:1", "hot:12.5"] {
            assert_eq!(s.parse::<Pattern>().unwrap().to_string(), s);
        }
        assert!("hot:0".parse::<Pattern>().is_err());
        assert!("hot:101".parse::<Pattern>().is_err());
        assert!("cold".parse::<Pattern>().is_err());
        assert_eq!(Pattern::Hot(10.0).slug(), "hot10");
    }

    #[test]
    fn rates() {
        assert_eq!("max".parse::<Rate>().unwrap(), Rate::Max);
        assert_eq!("5000".parse::<Rate>().unwrap(), Rate::PerSec(5000.0));
        assert_eq!("0".parse::<Rate>().unwrap(), Rate::PerSec(0.0));
        assert_eq!("-0".parse::<Rate>().unwrap().to_string(), "0");
        assert!("0".parse::<Rate>().unwrap().is_zero());
        assert!(!"max".parse::<Rate>().unwrap().is_zero());
        for bad in ["-1", "nan", "inf", "", "fast"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?}");
        }
        assert_eq!(
            serde_json::to_string(&Rate::PerSec(5000.0)).unwrap(),
            "5000"
        );
        assert_eq!(serde_json::to_string(&Rate::Max).unwrap(), "\"max\"");
    }

    /// Rate 0 starts no writer, so it never even connects (port 1 has no server) and its
    /// result is zero writes, for every pattern.
    #[test]
    fn rate_zero_sends_nothing() {
        for pattern in ["none", "uniform", "hot:1", "new", "reads"] {
            let cfg = WriterConfig {
                pattern: pattern.parse().unwrap(),
                shape: Shape::string(16),
                rate: Rate::PerSec(0.0),
                keys: 100,
                conns: 4,
                pipeline: 16,
                seed: 1,
            };
            let w = start_writers("127.0.0.1:1", &cfg, Arc::new(ValuePool::new(16, 1))).unwrap();
            w.go();
            let r = w.finish().unwrap();
            assert_eq!((r.writes, r.errors, r.new_end), (0, 0, 100), "{pattern}");
        }
        // A positive rate does connect: the same call fails.
        let cfg = WriterConfig {
            pattern: Pattern::Uniform,
            shape: Shape::string(16),
            rate: Rate::PerSec(1.0),
            keys: 100,
            conns: 1,
            pipeline: 1,
            seed: 1,
        };
        assert!(start_writers("127.0.0.1:1", &cfg, Arc::new(ValuePool::new(16, 1))).is_err());
    }

    /// A failed save command aborts writers that were never released: they must not stay
    /// parked at the start for ever (the run hung on `BGSAVE FORKLESS` -> `ERR` before).
    #[test]
    fn aborting_unreleased_writers_returns() {
        // Connections succeed on the listen backlog; nothing is ever sent.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let cfg = WriterConfig {
            pattern: Pattern::Uniform,
            shape: Shape::string(16),
            rate: Rate::Max,
            keys: 100,
            conns: 3,
            pipeline: 1,
            seed: 1,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let w = start_writers(&addr, &cfg, Arc::new(ValuePool::new(16, 1))).unwrap();
        std::thread::spawn(move || {
            w.abort();
            tx.send(()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("abort() did not return");
    }

    #[test]
    fn quantiles_weighted_by_commands() {
        let mut l = Latencies::default();
        assert_eq!(l.quantile(0.5), None);
        l.record(Duration::from_micros(10), 98);
        l.record(Duration::from_micros(1000), 2);
        assert_eq!(l.quantile(0.5), Some(10));
        assert_eq!(l.quantile(0.98), Some(10));
        assert_eq!(l.quantile(0.99), Some(1000));
    }

    #[test]
    fn rng_range_and_pool() {
        let mut r = Rng::new(1);
        assert!((0..10_000).all(|_| r.below(7) < 7));
        let pool = ValuePool::new(4096, 1);
        assert_eq!(pool.value(3).len(), 4096);
        assert_ne!(pool.value(1), pool.value(2));
    }
}
