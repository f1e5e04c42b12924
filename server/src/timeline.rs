//! Per-save copy-on-write timelines: what the SNAPSHOT command and INFO's `snapshot` section show.
//!
//! While a snapshot child lives, the parent samples, at `snapshot-sample-interval` milliseconds
//! (100 by default), how far the save is and what it costs:
//!
//! ```text
//! ms since fork | child COW (its Private_Dirty) | parent RSS | child RSS | parent PSS | child PSS
//!               | keys processed | parent minor faults since fork | write commands since fork
//! ```
//!
//! Each minor fault of the parent after the fork is one page the kernel had to provide: a shared
//! page copied on the parent's first write to it, or a fresh page. Reading another process's
//! `smaps_rollup` walks its page tables, so sampling is duty-cycled as the child's own reports
//! are: the next sample waits at least a hundred times as long as the last one took (1%).
//! The last [`KEEP`] saves are kept.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use forkdb_snapshot::fork::{self, MemRollup};

/// Saves kept in the history.
pub const KEEP: usize = 16;

/// One sample of a running save.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub ms: u64,
    pub cow_bytes: u64,
    pub parent_rss: u64,
    pub child_rss: u64,
    pub parent_pss: u64,
    pub child_pss: u64,
    pub keys: u64,
    pub minor_faults: u64,
    pub writes: u64,
}

/// One save, running or finished.
#[derive(Debug, Clone)]
pub struct SaveRecord {
    pub id: u64,
    pub started_unix_ms: i64,
    pub fork_usec: u64,
    pub keys_total: u64,
    /// `used_memory` at the fork, for "peak COW ÷ used memory".
    pub used_memory: u64,
    pub child_pid: i32,
    pub status: &'static str,
    /// For a failed save: the step of the file lifecycle that failed ("open", "write",
    /// "fsync", "rename", "dir-fsync", ...) and its errno, from the child's report.
    pub failed_step: Option<&'static str>,
    pub errno: i32,
    pub duration_ms: u64,
    pub samples: Vec<Sample>,
    started: Instant,
    minflt_at_fork: u64,
    writes_at_fork: u64,
}

impl SaveRecord {
    pub fn peak_cow(&self) -> u64 {
        self.samples.iter().map(|s| s.cow_bytes).max().unwrap_or(0)
    }

    /// Peak of parent PSS + child PSS: the memory the pair held, shared pages counted once.
    pub fn peak_total(&self) -> u64 {
        self.samples
            .iter()
            .map(|s| s.parent_pss + s.child_pss)
            .max()
            .unwrap_or(0)
    }

    /// Milliseconds from the fork until COW first reached `frac` of its peak.
    pub fn time_to_fraction(&self, frac: f64) -> Option<u64> {
        let peak = self.peak_cow();
        if peak == 0 {
            return None;
        }
        let target = (peak as f64 * frac) as u64;
        self.samples
            .iter()
            .find(|s| s.cow_bytes >= target)
            .map(|s| s.ms)
    }

    pub fn pages_copied(&self) -> u64 {
        self.samples.last().map_or(0, |s| s.minor_faults)
    }

    pub fn writes(&self) -> u64 {
        self.samples.last().map_or(0, |s| s.writes)
    }
}

/// The history and the sampling clock.
#[derive(Default)]
pub struct Timelines {
    pub history: VecDeque<SaveRecord>,
    next_id: u64,
    last_cost: Duration,
}

/// Minor faults of this process so far (field 10 of /proc/self/stat).
pub fn own_minor_faults() -> u64 {
    let mut buf = [0u8; 1024];
    let Some(stat) = forkdb_snapshot::fork::read_small_file(c"/proc/self/stat", &mut buf) else {
        return 0;
    };
    let stat = String::from_utf8_lossy(stat);
    // The command name (field 2) may hold spaces; fields after it follow the closing paren.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after
        .split_whitespace()
        .nth(7)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Timelines {
    /// Opens the record of a save that just forked.
    pub fn begin(
        &mut self,
        child_pid: i32,
        fork_usec: u64,
        keys_total: u64,
        used_memory: u64,
        writes: u64,
    ) {
        self.next_id += 1;
        if self.history.len() == KEEP {
            self.history.pop_front();
        }
        self.history.push_back(SaveRecord {
            id: self.next_id,
            started_unix_ms: crate::util::now_ms(),
            fork_usec,
            keys_total,
            used_memory,
            child_pid,
            status: "running",
            failed_step: None,
            errno: 0,
            duration_ms: 0,
            samples: Vec::new(),
            started: Instant::now(),
            minflt_at_fork: own_minor_faults(),
            writes_at_fork: writes,
        });
    }

    /// Takes one sample of the running save. `keys` is what the child last reported.
    pub fn sample(&mut self, keys: u64, writes: u64) {
        let started = Instant::now();
        let Some(rec) = self.history.back_mut() else {
            return;
        };
        if rec.status != "running" {
            return;
        }
        // A child that has exited but is not reaped yet has no memory left to read: no sample.
        let child: MemRollup = match fork::pid_rollup(rec.child_pid) {
            Some(c) if c.rss > 0 => c,
            _ => return,
        };
        let parent: MemRollup = fork::self_rollup().unwrap_or_default();
        rec.samples.push(Sample {
            ms: rec.started.elapsed().as_millis() as u64,
            cow_bytes: child.private_dirty,
            parent_rss: parent.rss,
            child_rss: child.rss,
            parent_pss: parent.pss,
            child_pss: child.pss,
            keys,
            minor_faults: own_minor_faults().saturating_sub(rec.minflt_at_fork),
            writes: writes.saturating_sub(rec.writes_at_fork),
        });
        self.last_cost = started.elapsed();
    }

    /// How long to wait before the next sample: the interval, or longer if sampling is costly.
    pub fn next_wait(&self, interval: Duration) -> Duration {
        interval.max(self.last_cost * 100)
    }

    /// Closes the running record with the save's outcome.
    pub fn end(&mut self, status: &'static str, final_cow: u64, keys: u64) {
        if let Some(rec) = self.history.back_mut() {
            if rec.status == "running" {
                rec.status = status;
                rec.duration_ms = rec.started.elapsed().as_millis() as u64;
                // The child's last report is the most complete COW figure: keep it as a sample
                // so the curve ends where the save did.
                let mut last = rec.samples.last().copied().unwrap_or_default();
                last.ms = rec.duration_ms;
                if final_cow > 0 {
                    last.cow_bytes = final_cow;
                }
                last.keys = keys;
                rec.samples.push(last);
            }
        }
    }

    /// Records why the last save failed (called after [`Timelines::end`]).
    pub fn set_failure(&mut self, step: &'static str, errno: i32) {
        if let Some(rec) = self.history.back_mut() {
            rec.failed_step = Some(step);
            rec.errno = errno;
        }
    }

    pub fn latest(&self) -> Option<&SaveRecord> {
        self.history.back()
    }

    pub fn find(&self, id: u64) -> Option<&SaveRecord> {
        self.history.iter().find(|r| r.id == id)
    }

    pub fn reset(&mut self) {
        self.history.clear();
    }
}
