//! Per-save copy-on-write timelines: what the SNAPSHOT command and INFO's `snapshot` section show.
//!
//! While a snapshot child lives, the parent samples, every `snapshot-sample-interval`
//! milliseconds (100 by default), how far the save is and what it costs:
//!
//! ```text
//! ms since fork | child COW (its Private_Dirty) | parent and child RSS, PSS, anonymous PSS
//!   | total (parent + child on the total basis) | keys processed
//!   | parent minor faults since the fork | write commands since the fork | at child exit?
//! ```
//!
//! The same figures, read the same way (`forkdb_snapshot::procfs`), as `forkdb-cow` reads from
//! outside, so the two can be compared sample for sample (`cow/tests/agree.rs` does):
//!
//! - **child COW** is the child's `Private_Dirty`, Redis's `current_cow_size`: the pages
//!   copied since the fork by either side's writes, plus the pages the child wrote itself (its
//!   stack, its write buffer). On a tiny data set the latter dominate, so a percentage of the
//!   data set can exceed 100: it is reported as a percentage *of `used_memory` at the fork*,
//!   next to that base.
//! - **total** is parent + child on the best basis the kernel offers (anonymous PSS, else PSS,
//!   else RSS: `procfs::Basis`), each shared page counted once.
//! - **parent minor faults** since just before the fork: each copy-on-write of a page by the
//!   parent is one, and so is each first touch of fresh memory. Not "pages copied": the name
//!   says what is counted.
//! - **writes**: commands with the `write` flag executed since the fork.
//!
//! The last sample is taken when the child exits: the sampler waits on the child's report pipe,
//! which reaches end of file as the child's descriptors close, so the end is seen at once rather
//! than at the cron's next reap. A child that has exited has no memory left to read, so that
//! sample's child figures are the child's own last report (sent right before `_exit`); the
//! parent's figures, faults and writes are read then. `writes` of a save is therefore exactly
//! the write commands executed between the fork and the moment the server saw the child's exit.
//!
//! Reading a process's `smaps_rollup` walks its page tables: about 10 ms of CPU for a 512 MiB
//! server, and as much again for its child (measured, release build), a time that grows with
//! the data set. Done on the server's thread, each sample stopped every client for that long:
//! at 20 000 writes/s during a save of 512 MiB of 4 KiB values, those stops were what set the
//! write p99 (see docs/cow.md, "Write latency during a save"). So the readings are taken by a
//! **sampler thread** that lives only while the child does: started right after the fork (never
//! before it: the fork needs the process to have one thread) and joined when the save ends,
//! before the server can fork again. It only reads `/proc` and hands each reading over a
//! channel; the server's thread adds the keys and write count of that moment when it takes the
//! reading in (woken through [`Timelines::ready`]). If the thread cannot be started, the server's
//! thread samples itself, as before.
//!
//! Sampling is duty-cycled: the next reading waits at least the interval, and at least
//! [`DUTY_FACTOR`] times the thread CPU time the last one took (5%): off the server's thread it
//! still takes a core's time away from the server and its child. CPU time, not wall time: on a
//! busy machine the thread is preempted in the middle of a read, and a 1 ms read that took 16 ms
//! of wall time used to push the next sample 1.6 s away. Timing figures (`ms_to_half_peak`) are
//! interpolated between samples, and `max_sample_gap_ms` says how far apart the samples were:
//! the resolution of those figures.
//!
//! The last [`KEEP`] saves are kept.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use forkdb_snapshot::fork::{thread_cpu_time, Report};
use forkdb_snapshot::procfs::{self, Basis, Rollup};

/// Saves kept in the history.
pub const KEEP: usize = 16;

/// The next sample waits at least this many times the CPU time the last one took.
pub const DUTY_FACTOR: u32 = 20;

/// One sample of a running save.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Microseconds since the fork.
    pub us: u64,
    /// The child's `Private_Dirty`.
    pub cow_bytes: u64,
    pub parent_rss: u64,
    pub child_rss: u64,
    pub parent_pss: u64,
    pub child_pss: u64,
    pub parent_pss_anon: u64,
    pub child_pss_anon: u64,
    /// Parent + child on the record's [`SaveRecord::basis`].
    pub total_bytes: u64,
    pub keys: u64,
    /// Parent minor faults since just before the fork.
    pub minor_faults: u64,
    /// Write commands executed since the fork.
    pub writes: u64,
    /// The last sample, taken when the child exited (its figures from its last report).
    pub at_child_exit: bool,
    /// Forkless saves: bytes of entries queued for the writer thread.
    pub queue_bytes: u64,
    /// Forkless saves: entries the write path sent before changing them, so far.
    pub early_keys: u64,
    /// Forkless saves: microseconds writes spent waiting for the writer thread, so far.
    pub stall_us: u64,
}

impl Sample {
    pub fn ms(&self) -> u64 {
        self.us / 1000
    }
}

/// One save, running or finished.
#[derive(Debug, Clone)]
pub struct SaveRecord {
    pub id: u64,
    /// "fork" or "forkless". For a forkless save there is no child: `cow_bytes` is the
    /// process's growth over its own memory at the start on the record's basis (the extra
    /// memory the save costs), and the child figures are 0.
    pub method: &'static str,
    pub started_unix_ms: i64,
    pub fork_usec: u64,
    pub keys_total: u64,
    /// `used_memory` at the fork: the base of [`SaveRecord::peak_cow_perc_of_used_memory`].
    pub used_memory_at_fork: u64,
    pub child_pid: i32,
    pub status: &'static str,
    /// For a failed save: the step of the file lifecycle that failed ("open", "write",
    /// "fsync", "rename", "dir-fsync", ...) and its errno, from the child's report.
    pub failed_step: Option<&'static str>,
    pub errno: i32,
    pub duration_ms: u64,
    /// What `total_bytes` is made of: the best figure the kernel gave for the first sample.
    pub basis: Basis,
    pub samples: Vec<Sample>,
    started: Instant,
    minflt_before_fork: u64,
    writes_at_fork: u64,
    /// Forkless saves: the process's memory on `basis` at the start.
    base_bytes: u64,
}

impl SaveRecord {
    /// Peak of the child's `Private_Dirty` (Redis's COW figure).
    pub fn peak_cow(&self) -> u64 {
        self.samples.iter().map(|s| s.cow_bytes).max().unwrap_or(0)
    }

    /// [`SaveRecord::peak_cow`] in pages: consistent with it by construction.
    pub fn peak_cow_pages(&self) -> u64 {
        self.peak_cow() / procfs::page_size()
    }

    /// Peak COW as a percentage of `used_memory` at the fork. Above 100 on a data set smaller
    /// than the child's own working memory (its buffers and stack count as its COW).
    pub fn peak_cow_perc_of_used_memory(&self) -> f64 {
        self.peak_cow() as f64 * 100.0 / self.used_memory_at_fork.max(1) as f64
    }

    /// Peak of parent + child on [`SaveRecord::basis`]: the memory the pair held, shared pages
    /// counted once.
    pub fn peak_total(&self) -> u64 {
        self.samples
            .iter()
            .map(|s| s.total_bytes)
            .max()
            .unwrap_or(0)
    }

    /// Milliseconds from the fork until COW first reached `frac` of its peak, interpolated
    /// linearly between the sample below the target and the first one at or above it (COW
    /// grows between samples, not in a step at the later one). Its resolution is the gap
    /// between those two samples, at most [`SaveRecord::max_sample_gap_ms`].
    pub fn time_to_fraction(&self, frac: f64) -> Option<u64> {
        let peak = self.peak_cow();
        if peak == 0 {
            return None;
        }
        let target = peak as f64 * frac;
        let i = self
            .samples
            .iter()
            .position(|s| s.cow_bytes as f64 >= target)?;
        let hit = &self.samples[i];
        let Some(before) = i.checked_sub(1).map(|j| &self.samples[j]) else {
            return Some(hit.ms());
        };
        let (c0, c1) = (before.cow_bytes as f64, hit.cow_bytes as f64);
        let (t0, t1) = (before.us as f64, hit.us as f64);
        let t = if c1 > c0 {
            t0 + (target - c0) / (c1 - c0) * (t1 - t0)
        } else {
            t1
        };
        Some((t / 1000.0).round() as u64)
    }

    /// The largest gap between two consecutive samples, in ms: the resolution of the timing
    /// figures, and how much of the curve the peak figures may have missed.
    pub fn max_sample_gap_ms(&self) -> u64 {
        self.samples
            .windows(2)
            .map(|w| w[1].us.saturating_sub(w[0].us))
            .max()
            .unwrap_or(0)
            / 1000
    }

    /// Parent minor faults from just before the fork to the last sample (the child's exit,
    /// once the save is over).
    pub fn parent_minor_faults(&self) -> u64 {
        self.samples.last().map_or(0, |s| s.minor_faults)
    }

    /// Write commands executed from the fork to the last sample (the child's exit, once the
    /// save is over).
    pub fn writes(&self) -> u64 {
        self.samples.last().map_or(0, |s| s.writes)
    }

    fn exit_sampled(&self) -> bool {
        self.samples.last().is_some_and(|s| s.at_child_exit)
    }
}

/// The history and the sampling clock.
pub struct Timelines {
    pub history: VecDeque<SaveRecord>,
    next_id: u64,
    /// Thread CPU time the last sample taken on the server's thread took.
    last_cost: Duration,
    /// `snapshot-sample-interval` in ms, as the sampler thread reads it before each wait.
    interval_ms: Arc<AtomicU64>,
    /// Notified by the sampler thread after each reading it sends.
    pub ready: Arc<tokio::sync::Notify>,
    sampler: Option<SamplerThread>,
    /// A stopped sampler thread not joined yet (see [`Timelines::reap_sampler`]).
    exiting: Option<std::thread::JoinHandle<()>>,
}

impl Default for Timelines {
    fn default() -> Self {
        Timelines {
            history: VecDeque::new(),
            next_id: 0,
            last_cost: Duration::ZERO,
            interval_ms: Arc::new(AtomicU64::new(100)),
            ready: Arc::new(tokio::sync::Notify::new()),
            sampler: None,
            exiting: None,
        }
    }
}

/// What the sampler thread read for one sample: the memory figures and the fault count, with
/// the instant they were read.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    parent: Rollup,
    child: Rollup,
    minflt: u64,
}

/// The sampler thread's niceness (the server's is 0): at +10 it gets about a tenth of a core
/// it shares with the server, twice what its 5% duty cycle needs.
const SAMPLER_NICE: libc::c_int = 10;

/// The running save's sampler thread.
struct SamplerThread {
    /// Set (and the condvar notified) to end the thread.
    stop: Arc<(Mutex<bool>, Condvar)>,
    readings: mpsc::Receiver<Reading>,
    handle: Option<JoinHandle<()>>,
}

impl SamplerThread {
    fn request_stop(&self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cv.notify_all();
    }
}

/// The sampler thread's loop: reads the child's and this process's memory until stopped.
///
/// Runs beside the server's thread, so it uses no server state, only `/proc` (allocation-free
/// reads) and the channel.
fn run_sampler(
    child_pid: u32,
    interval_ms: Arc<AtomicU64>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    tx: mpsc::Sender<Reading>,
    ready: Arc<tokio::sync::Notify>,
) {
    let stopped = || *stop.0.lock().unwrap_or_else(PoisonError::into_inner);
    // Below the server's thread and the child when they share a core: a reading can wait a
    // little, a client should not. Niceness is per thread on Linux; raising it needs no
    // privilege, and a failure only leaves the thread at the server's priority.
    // SAFETY: plain syscalls on this thread's own id.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, SAMPLER_NICE);
    }
    loop {
        let cpu = thread_cpu_time();
        // A child that has exited but is not reaped yet has no memory left to read (its rollup
        // is empty); the save's last sample then comes from its last report.
        if let Some(child) = procfs::rollup(child_pid).filter(|c| c.rss > 0) {
            let at = Instant::now();
            if stopped() {
                return;
            }
            let parent = procfs::self_rollup().unwrap_or_default();
            let minflt = own_minor_faults();
            if tx
                .send(Reading {
                    at,
                    parent,
                    child,
                    minflt,
                })
                .is_err()
            {
                return;
            }
            ready.notify_one();
        }
        let cost = thread_cpu_time().saturating_sub(cpu);
        let wait =
            Duration::from_millis(interval_ms.load(Ordering::Relaxed)).max(cost * DUTY_FACTOR);
        let (lock, cv) = &*stop;
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = cv
            .wait_timeout_while(guard, wait, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        if *guard {
            return;
        }
    }
}

/// Minor faults of this process so far.
pub fn own_minor_faults() -> u64 {
    procfs::self_stat().map_or(0, |s| s.minflt)
}

/// The child's memory as its report gives it.
fn child_from_report(r: &Report) -> Rollup {
    Rollup {
        rss: r.rss_bytes,
        pss: (r.pss_bytes > 0).then_some(r.pss_bytes),
        pss_anon: (r.pss_anon_bytes > 0).then_some(r.pss_anon_bytes),
        private_dirty: r.cow_bytes,
        ..Rollup::default()
    }
}

impl Timelines {
    /// Opens the record of a save that just forked. `minflt_before_fork` is this process's
    /// minor fault count read right before `fork()`: the fork's own copies count too.
    pub fn begin(
        &mut self,
        child_pid: i32,
        fork_usec: u64,
        keys_total: u64,
        used_memory_at_fork: u64,
        writes: u64,
        minflt_before_fork: u64,
    ) {
        self.next_id += 1;
        if self.history.len() == KEEP {
            self.history.pop_front();
        }
        self.history.push_back(SaveRecord {
            id: self.next_id,
            method: "fork",
            started_unix_ms: crate::util::now_ms(),
            fork_usec,
            keys_total,
            used_memory_at_fork,
            child_pid,
            status: "running",
            failed_step: None,
            errno: 0,
            duration_ms: 0,
            basis: Basis::PssAnon,
            samples: Vec::with_capacity(64),
            started: Instant::now(),
            minflt_before_fork,
            writes_at_fork: writes,
            base_bytes: 0,
        });
        self.start_sampler(child_pid);
    }

    /// Opens the record of a forkless save that just started (no fork: `fork_usec` 0, no
    /// child pid); its base is the process's memory now.
    pub fn begin_forkless(&mut self, keys_total: u64, used_memory_at_start: u64, writes: u64) {
        self.begin(
            0,
            0,
            keys_total,
            used_memory_at_start,
            writes,
            own_minor_faults(),
        );
        if let Some(rec) = self.history.back_mut() {
            rec.method = "forkless";
            let own = procfs::self_status_memory().unwrap_or_default();
            rec.basis = Basis::of(&own);
            rec.base_bytes = rec.basis.single(&own);
        }
    }

    /// Takes one sample of the running forkless save: the process's figures, its growth over
    /// the start as `cow_bytes`, and the queue's.
    pub fn sample_forkless(
        &mut self,
        keys: u64,
        writes: u64,
        queue_bytes: u64,
        early_keys: u64,
        stall_us: u64,
    ) {
        let cpu = thread_cpu_time();
        let Some(rec) = self.history.back_mut() else {
            return;
        };
        if rec.status != "running" {
            return;
        }
        // From /proc/self/status, not smaps_rollup: read on the server's thread, it must be
        // cheap (see `procfs::self_status_memory`); with no child, RssAnon is the anonymous PSS.
        let own = procfs::self_status_memory().unwrap_or_default();
        let now = rec.basis.single(&own);
        rec.samples.push(Sample {
            us: rec.started.elapsed().as_micros() as u64,
            cow_bytes: now.saturating_sub(rec.base_bytes),
            parent_rss: own.rss,
            parent_pss_anon: own.pss_anon.unwrap_or(0),
            total_bytes: now,
            keys,
            minor_faults: own_minor_faults().saturating_sub(rec.minflt_before_fork),
            writes: writes.saturating_sub(rec.writes_at_fork),
            queue_bytes,
            early_keys,
            stall_us,
            ..Sample::default()
        });
        self.last_cost = thread_cpu_time().saturating_sub(cpu);
    }

    /// Sets `snapshot-sample-interval`; the running sampler thread uses it from its next wait.
    pub fn set_interval(&self, interval: Duration) {
        self.interval_ms
            .store(interval.as_millis() as u64, Ordering::Relaxed);
    }

    /// Whether a sampler thread takes the running save's readings (else the server's thread
    /// samples, paced by [`Timelines::next_wait`]).
    pub fn threaded(&self) -> bool {
        self.sampler.is_some()
    }

    /// Starts the sampler thread of a save whose child was just forked. Its first reading is
    /// the save's first sample.
    fn start_sampler(&mut self, child_pid: i32) {
        self.stop_sampler();
        // A forkless save has no child (pid 0): the server samples itself (`sample_forkless`).
        let Some(pid) = u32::try_from(child_pid).ok().filter(|&p| p > 0) else {
            return;
        };
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (tx, rx) = mpsc::channel();
        let (interval, stop2, ready) = (self.interval_ms.clone(), stop.clone(), self.ready.clone());
        let spawned = std::thread::Builder::new()
            .name("snapshot-sampler".into())
            // Its stack holds the /proc read buffers; the default 2 MiB is far more than needed.
            .stack_size(256 * 1024)
            .spawn(move || run_sampler(pid, interval, stop2, tx, ready));
        match spawned {
            Ok(handle) => {
                self.sampler = Some(SamplerThread {
                    stop,
                    readings: rx,
                    handle: Some(handle),
                });
            }
            Err(e) => {
                tracing::warn!(cause = %e, "can't start the snapshot sampler thread; sampling on the main thread");
            }
        }
    }

    /// Stops the sampler thread, without waiting for it: it may be in the middle of a reading
    /// (a `smaps_rollup` of a large process is milliseconds of kernel time, and the thread runs
    /// at nice +10), and joining it here held every command at the end of a fork save for up to
    /// the whole reading: 105 to 116 ms, the largest write latency of every fork save measured
    /// on the 2-core development machine. It is joined once it has ended
    /// ([`Timelines::reap_sampler`]).
    fn stop_sampler(&mut self) {
        let Some(mut t) = self.sampler.take() else {
            return;
        };
        t.request_stop();
        if let Some(handle) = t.handle.take() {
            // A previous one still exiting is waited for now (rare: two saves in a row).
            self.reap_sampler(true);
            self.exiting = Some(handle);
        }
    }

    /// Joins a stopped sampler thread: if it has ended (the cron asks), or in any case when
    /// `wait` (before a fork, which must see one thread: `fork::join_settled`).
    pub fn reap_sampler(&mut self, wait: bool) {
        let Some(handle) = self.exiting.take() else {
            return;
        };
        if wait || handle.is_finished() {
            let _ = forkdb_snapshot::fork::join_settled(handle);
        } else {
            self.exiting = Some(handle);
        }
    }

    /// Takes in the readings the sampler thread sent, as samples with `keys` and `writes`.
    fn take_readings(&mut self, keys: u64, writes: u64) {
        let Some(t) = &self.sampler else {
            return;
        };
        let Some(rec) = self.history.back_mut() else {
            return;
        };
        while let Ok(r) = t.readings.try_recv() {
            if rec.status != "running" || rec.exit_sampled() {
                continue;
            }
            let us = r.at.saturating_duration_since(rec.started).as_micros() as u64;
            push_reading(rec, keys, writes, us, &r.parent, &r.child, r.minflt, false);
        }
    }

    /// Takes one sample of the running save. `keys` is what the child last reported. With a
    /// sampler thread, takes in the readings it sent since the last call (none right after the
    /// fork: the thread's first reading is the save's first sample).
    pub fn sample(&mut self, keys: u64, writes: u64) {
        if self.threaded() {
            self.take_readings(keys, writes);
            return;
        }
        let cpu = thread_cpu_time();
        let Some(rec) = self.history.back_mut() else {
            return;
        };
        if rec.status != "running" || rec.exit_sampled() {
            return;
        }
        // A child that has exited but is not reaped yet has no memory left to read: no sample
        // (the exit sample comes from its last report).
        let child = match procfs::rollup(rec.child_pid as u32) {
            Some(c) if c.rss > 0 => c,
            _ => return,
        };
        push(rec, keys, writes, &child, false);
        self.last_cost = thread_cpu_time().saturating_sub(cpu);
    }

    /// The last sample of the running save, when its child has exited: the parent's figures
    /// now, the child's from `last_report` (its last words, sent right before it exited; the
    /// previous sample's where there is none). Taken once.
    pub fn sample_at_exit(&mut self, keys: u64, writes: u64, last_report: Option<&Report>) {
        // Readings taken while the child lived come first; the thread has nothing more to read.
        self.take_readings(keys, writes);
        if let Some(t) = &self.sampler {
            t.request_stop();
        }
        let Some(rec) = self.history.back_mut() else {
            return;
        };
        if rec.status != "running" || rec.exit_sampled() {
            return;
        }
        let child = match (last_report, rec.samples.last()) {
            (Some(r), _) => child_from_report(r),
            (None, Some(s)) => Rollup {
                rss: s.child_rss,
                pss: Some(s.child_pss),
                pss_anon: Some(s.child_pss_anon),
                private_dirty: s.cow_bytes,
                ..Rollup::default()
            },
            (None, None) => Rollup::default(),
        };
        push(rec, keys, writes, &child, true);
    }

    /// How long to wait before the next sample: the interval, or longer if sampling is costly.
    pub fn next_wait(&self, interval: Duration) -> Duration {
        interval.max(self.last_cost * DUTY_FACTOR)
    }

    /// Closes the running record with the save's outcome (after [`Timelines::sample_at_exit`]).
    /// The sampler thread is joined here: the save is over, and the server may fork again.
    pub fn end(&mut self, status: &'static str) {
        self.stop_sampler();
        if let Some(rec) = self.history.back_mut() {
            if rec.status == "running" {
                rec.status = status;
                rec.duration_ms = rec.started.elapsed().as_millis() as u64;
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

/// Appends a sample with the parent's figures read now and the child's given.
fn push(rec: &mut SaveRecord, keys: u64, writes: u64, child: &Rollup, at_child_exit: bool) {
    let us = rec.started.elapsed().as_micros() as u64;
    let parent = procfs::self_rollup().unwrap_or_default();
    let minflt = own_minor_faults();
    push_reading(rec, keys, writes, us, &parent, child, minflt, at_child_exit);
}

/// Appends a sample of figures already read (`us` after the fork).
#[allow(clippy::too_many_arguments)]
fn push_reading(
    rec: &mut SaveRecord,
    keys: u64,
    writes: u64,
    us: u64,
    parent: &Rollup,
    child: &Rollup,
    minflt: u64,
    at_child_exit: bool,
) {
    if rec.samples.is_empty() {
        rec.basis = Basis::of(parent);
    }
    rec.samples.push(Sample {
        us,
        cow_bytes: child.private_dirty,
        parent_rss: parent.rss,
        child_rss: child.rss,
        parent_pss: parent.pss.unwrap_or(0),
        child_pss: child.pss.unwrap_or(0),
        parent_pss_anon: parent.pss_anon.unwrap_or(0),
        child_pss_anon: child.pss_anon.unwrap_or(0),
        total_bytes: rec.basis.pair(parent, Some(child)),
        keys,
        minor_faults: minflt.saturating_sub(rec.minflt_before_fork),
        writes: writes.saturating_sub(rec.writes_at_fork),
        at_child_exit,
        ..Sample::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(points: &[(u64, u64)]) -> SaveRecord {
        let mut t = Timelines::default();
        t.begin(0, 0, 0, 1000, 0, 0);
        let mut rec = t.history.pop_back().unwrap();
        rec.samples = points
            .iter()
            .map(|&(ms, cow)| Sample {
                us: ms * 1000,
                cow_bytes: cow,
                ..Sample::default()
            })
            .collect();
        rec
    }

    #[test]
    fn times_to_peak_are_interpolated() {
        // 0 at 0 ms, 100 at 100 ms, 200 at 400 ms: half the peak (100) is reached at 100 ms,
        // 90% (180) at 100 + 80/100 × 300 = 340 ms.
        let rec = record(&[(0, 0), (100, 100), (400, 200)]);
        assert_eq!(rec.time_to_fraction(0.5), Some(100));
        assert_eq!(rec.time_to_fraction(0.9), Some(340));
        assert_eq!(rec.max_sample_gap_ms(), 300);
        assert_eq!(record(&[(5, 0)]).time_to_fraction(0.5), None);
        assert_eq!(record(&[(5, 10)]).time_to_fraction(0.5), Some(5));
    }

    #[test]
    fn derived_figures_agree() {
        let page = procfs::page_size();
        let rec = record(&[(0, page), (10, 3 * page + 1)]);
        assert_eq!(rec.peak_cow(), 3 * page + 1);
        assert_eq!(rec.peak_cow_pages(), 3);
        let perc = rec.peak_cow_perc_of_used_memory();
        assert!((perc - (3 * page + 1) as f64 / 10.0).abs() < 1e-9, "{perc}");
    }
}
