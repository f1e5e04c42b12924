//! `forkdb-cow`: how much memory a fork-based snapshot costs, measured from outside.
//!
//! A server that snapshots with `fork()` (forkdb's and Redis's `BGSAVE`) shares all its pages
//! with the child at first; every page the parent writes while the child is still saving gets
//! copied (copy-on-write). In the worst case the pair needs twice the data set's memory. This
//! crate fills any local RESP server with a data set, starts a save, drives writes with a chosen
//! key pattern and rate while the child runs, and samples `/proc` for the parent's and the
//! child's memory, so the peak can be compared with the baseline.
//!
//! # Layout
//!
//! - [`resp`]: a blocking RESP client (hand-encoded requests, [`forkdb_protocol::FrameDecoder`]
//!   for replies).
//! - [`procfs`]: `smaps_rollup`, `stat` and children of a process, and which figure means what
//!   (the snapshot crate's reader, shared with the server, which samples the same figures).
//! - [`workload`]: key patterns, rates, values, writer threads and their latencies.
//! - [`types`]: what each key holds (`--type string|hash|list|set|zset`) and the commands
//!   that fill, write and read it.
//! - [`fill`]: loading (or reusing) the data set.
//! - [`run`]: one measured save and its outputs (`samples.csv`, `summary.json`, `chart.svg`).
//! - [`chart`]: SVG charts (plotters).
//! - [`servers`]: servers the tool starts itself, stopped by pid.
//! - [`compare`]: forkdb (fork and forkless saves) vs redis on the same workload.
//! - [`sweep`]: a rate × pattern matrix on one data set.
//!
//! The tool must run on the server's host: it finds the server by `INFO server`'s `process_id`
//! and the snapshot child as that process's new child.

pub mod chart;
pub mod compare;
pub mod fill;
pub use forkdb_snapshot::procfs;
pub mod resp;
pub mod run;
pub mod servers;
pub mod sweep;
pub mod types;
pub mod workload;

use std::sync::atomic::{AtomicBool, Ordering};

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether SIGINT or SIGTERM arrived (after [`install_signal_handlers`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

extern "C" fn on_signal(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Makes the first SIGINT / SIGTERM only set a flag that the long loops check, so the tool stops
/// its writers and the servers it started (by pid) before exiting. A second signal has the
/// default effect (`SA_RESETHAND`).
pub fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; the
        // sigaction struct is fully initialised (zeroed, then the fields we use).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}
