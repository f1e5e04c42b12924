//! The forkless (thread) background save: `BGSAVE FORKLESS`, or any background save with
//! `bgsave-default-method forkless`. No `fork()`: the data is written from this process, so
//! nothing is copied by the kernel, and the file is the same as a fork save's.
//!
//! ```text
//!  event-loop thread (owns the keyspace)                   writer thread (one save's life)
//!  ┌─────────────────────────────────────────┐  chunks of   ┌────────────────────────────────┐
//!  │ walk (store/snapshot.rs): slices of at  │  owned       │ RdbWriter: LZF, CRC64, write,  │
//!  │ most bgsave-forkless-slice-us per turn  │─ entries ──► │ fsync, rename: the fork child's│
//!  │ write path: an unwritten entry's old    │  (bounded)   │ temp-file lifecycle            │
//!  │ state, before a change reaches it       │              └────────────────────────────────┘
//!  └─────────────────────────────────────────┘
//! ```
//!
//! What this module owns: the queue between the threads ([`Producer`], the keyspace's
//! [`SnapSink`]), the writer thread, the running save's state (`ForklessRun`), and the task that
//! drives the walk from the event loop ([`driver`]). It touches the keyspace only through
//! `Keyspace::forkless_*`; which entries are written, and that each is written once as it was at
//! the start, is the keyspace's business (`store/snapshot.rs`).
//!
//! Memory: the queue is bounded in bytes (`bgsave-forkless-queue-bytes`). When the writer falls
//! behind, the walk waits; the write path may queue up to twice the bound (it cannot leave a key
//! unwritten before changing it), and past that the write waits for the writer: a *stall*,
//! counted and timed in the save's timeline. A large value is copied whole into the queue by
//! whoever reaches it first (the walk, or the write about to change it), so the bound is twice
//! the queue plus the largest value, and that write's latency grows with the value's size: a
//! copy of a 100 MiB string, a deep copy of a hash of a million fields (measured in docs/cow.md,
//! "Process or thread"). The same holds for a diskless sync's save, whose writer writes to the
//! replicas' sockets (`repl/diskless.rs`), once it has them all.
//!
//! Keeping the writes from waiting: a writer that falls behind the writes (the queue past half-way
//! from the bound to twice it) stores values raw, without LZF, its slowest step, until it has
//! caught up; and the writer thread runs at a lower CPU priority
//! (`bgsave-forkless-writer-nice`), so that where the two threads share a core the event loop
//! does not wait for the writer's time slice (docs/cow.md, "Fork against thread at full speed").
//!
//! Threads and fork: the writer thread exists only while a forkless save runs (it is joined, and
//! the save ends once the kernel no longer counts it: `Server::forkless_settled`), and a fork
//! save is refused while a save of either kind runs; `bgsave_start` checks the thread count
//! before every `fork()`.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use forkdb_snapshot::{self as snap, fork, AuxFields, RdbWriter, SaveError, SaveOptions};
use tracing::{info, warn};

use crate::config::SaveMethod;
use crate::net::Shared;
use crate::server::Server;
use crate::store::{SnapSink, WalkStep};
use crate::util::now_ms;

/// Items are handed to the writer in chunks of about this many bytes: one channel message and
/// one wake-up per chunk, not per key.
const CHUNK_BYTES: usize = 64 * 1024;

/// The smallest queue bound: a few chunks.
const MIN_QUEUE_BYTES: usize = 4 * CHUNK_BYTES;

/// Emptied chunks kept for reuse at most: enough for the walk's steady state, few enough that
/// a queue that drained does not leave its peak's buffers allocated.
const POOL_MAX: usize = 8;

/// The longest a write waits for the writer thread. A writer that takes nothing for this long
/// is stuck (a replica that reads nothing, a disk that hangs), not slow: the write goes on and
/// the queue may grow until the writer has drained it back under its cap, as a fork save's
/// copies grow when its child is stuck. Without it, a replica that stops reading would hold
/// every write of the master until `repl-timeout` drops it (60 s by default).
const STALL_MAX: Duration = Duration::from_millis(100);

/// What the event-loop thread and the writer thread share.
pub struct Queue {
    /// Bytes of entries sent to the writer and not yet written.
    queued: AtomicUsize,
    /// The walk waits above this; the write path above twice this.
    cap: usize,
    /// The write path may not wait for the writer (see [`Producer::wait_for_room`]): a
    /// diskless sync's save, until every replica's socket is in the writer's hands.
    no_stall: AtomicBool,
    /// The save was cancelled: the writer stops and renames nothing.
    cancel: AtomicBool,
    /// The writer has ended (done, failed or cancelled): nobody waits for it any more.
    writer_done: AtomicBool,
    /// The writer took a chunk, or ended: wakes the walk's task.
    space: tokio::sync::Notify,
    /// The same, for a write that waits on the event-loop thread (see [`Producer::wait_for_room`]).
    lock: Mutex<()>,
    cv: Condvar,
    /// Records in the file so far.
    written: AtomicU64,
    /// Of those, records written with LZF paused because the writer was behind (see
    /// `write_records`).
    raw: AtomicU64,
    /// Emptied chunks on their way back to the producer.
    pooled: AtomicUsize,
    peak_queued: AtomicUsize,
    /// Writes that had to wait for the writer, and how long they waited in all (µs).
    stalls: AtomicU64,
    stall_us: AtomicU64,
}

impl Queue {
    fn new(cap: usize, no_stall: bool) -> Queue {
        Queue {
            queued: AtomicUsize::new(0),
            cap,
            no_stall: AtomicBool::new(no_stall),
            cancel: AtomicBool::new(false),
            writer_done: AtomicBool::new(false),
            space: tokio::sync::Notify::new(),
            lock: Mutex::new(()),
            cv: Condvar::new(),
            written: AtomicU64::new(0),
            raw: AtomicU64::new(0),
            pooled: AtomicUsize::new(0),
            peak_queued: AtomicUsize::new(0),
            stalls: AtomicU64::new(0),
            stall_us: AtomicU64::new(0),
        }
    }

    fn wake(&self) {
        self.space.notify_one();
        // Taken so a waiter between its check and its wait cannot miss the notification.
        drop(self.lock.lock());
        self.cv.notify_all();
    }

    /// The save was cancelled (the writer's socket output checks it while it waits).
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }

    /// From now on a write may wait for the writer: it no longer depends on the event loop to
    /// make progress (`repl::diskless`'s socket output, once every replica's socket is its own).
    pub fn allow_stalls(&self) {
        self.no_stall.store(false, Ordering::Release);
    }

    /// The queue's figures now: (bytes queued, peak bytes queued, stalls, µs stalled).
    pub fn figures(&self) -> (u64, u64, u64, u64) {
        (
            self.queued.load(Ordering::Relaxed) as u64,
            self.peak_queued.load(Ordering::Relaxed) as u64,
            self.stalls.load(Ordering::Relaxed),
            self.stall_us.load(Ordering::Relaxed),
        )
    }
}

/// A batch of entries for the writer. Keys and string values are copied into one buffer, so an
/// entry costs no allocation of its own, and the writer hands emptied chunks back to be filled
/// again: in steady state a save allocates nothing per key, and touches no fresh page. (Copied
/// one by one, a 4 KiB value took a fresh page-aligned allocation each, freed by the writer and
/// given back to the kernel: one page fault per value, measured.) Containers are copied whole.
struct Chunk {
    bytes: Vec<u8>,
    items: Vec<Item>,
    /// Heap bytes of the containers' copies.
    containers: usize,
}

struct Item {
    db: u32,
    expire: i64,
    key: std::ops::Range<usize>,
    value: ItemValue,
}

enum ItemValue {
    /// A string's bytes, in `Chunk::bytes`.
    Str(std::ops::Range<usize>),
    Other(crate::store::Value),
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            bytes: Vec::with_capacity(CHUNK_BYTES),
            items: Vec::new(),
            containers: 0,
        }
    }

    /// What the chunk counts for in the queue's bound: the memory it holds (its buffers'
    /// capacity, not the part filled), so that the bound is on the save's memory.
    fn size(&self) -> usize {
        self.bytes.capacity()
            + self.items.capacity() * std::mem::size_of::<Item>()
            + self.containers
    }

    /// The bytes of entries in it: it is sent once these reach [`CHUNK_BYTES`].
    fn filled(&self) -> usize {
        self.bytes.len() + self.items.len() * std::mem::size_of::<Item>() + self.containers
    }

    fn push_bytes(&mut self, b: &[u8]) -> std::ops::Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        start..self.bytes.len()
    }

    /// Emptied for another use, if its buffer is of the ordinary size (one that grew for a big
    /// value is dropped rather than kept for the rest of the save).
    fn recycle(mut self) -> Option<Chunk> {
        if self.bytes.capacity() > 4 * CHUNK_BYTES {
            return None;
        }
        self.bytes.clear();
        self.items.clear();
        self.containers = 0;
        Some(self)
    }
}

enum Msg {
    /// Entries, and the bytes they count for in `Queue::queued`.
    Chunk(Chunk, usize),
    /// Every entry has been sent.
    End,
}

/// The keyspace's sink: copies entries into chunks and sends them to the writer thread.
struct Producer {
    tx: mpsc::Sender<Msg>,
    /// Chunks the writer has emptied, to fill again.
    back: mpsc::Receiver<Chunk>,
    chunk: Chunk,
    queue: Arc<Queue>,
    /// A write waited [`STALL_MAX`] in vain: writes do not wait again until the queue is back
    /// under its cap.
    overflow: bool,
}

impl Producer {
    fn send_chunk(&mut self) {
        if self.chunk.items.is_empty() {
            return;
        }
        let next = match self.back.try_recv() {
            Ok(c) => {
                self.queue.pooled.fetch_sub(1, Ordering::Relaxed);
                c
            }
            Err(_) => Chunk::new(),
        };
        let chunk = std::mem::replace(&mut self.chunk, next);
        let bytes = chunk.size();
        let now = self.queue.queued.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.queue.peak_queued.fetch_max(now, Ordering::Relaxed);
        if self.tx.send(Msg::Chunk(chunk, bytes)).is_err() {
            // The writer has ended (an I/O error): the entries are dropped with the message.
            self.queue.queued.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// A write may not leave its key unwritten, but it may not grow the queue without end
    /// either: past `2 × cap` (plus the entry it just sent, so that one large value is not
    /// waited for whole) it waits here until the writer has taken enough. The only place a
    /// command waits on the writer thread; each wait is counted.
    ///
    /// Not while the writer depends on this thread: a diskless sync's writer still waiting
    /// for a replica's connection task to hand it its socket would make a write waiting here
    /// wait for ever; until it has them all the write path queues what it must without
    /// waiting (see `repl::diskless`). No write waits longer than [`STALL_MAX`]: see there.
    fn wait_for_room(&mut self, item_bytes: usize) {
        let queue = self.queue.clone();
        let q = &*queue;
        if q.no_stall.load(Ordering::Acquire) {
            return;
        }
        if self.overflow {
            if q.queued.load(Ordering::Relaxed) > q.cap {
                return;
            }
            self.overflow = false;
        }
        let limit = 2 * q.cap + item_bytes;
        if q.queued.load(Ordering::Relaxed) + self.chunk.size() <= limit {
            return;
        }
        self.send_chunk();
        let start = Instant::now();
        let mut guard = q.lock.lock().unwrap_or_else(|e| e.into_inner());
        while q.queued.load(Ordering::Relaxed) > limit && !q.writer_done.load(Ordering::Acquire) {
            let waited = start.elapsed();
            if waited >= STALL_MAX {
                self.overflow = true;
                warn!(
                    queued = q.queued.load(Ordering::Relaxed),
                    "Forkless save: the writer took nothing for {} ms; writes stop waiting for it until its queue is back under {} bytes",
                    STALL_MAX.as_millis(),
                    q.cap
                );
                break;
            }
            guard = match q
                .cv
                .wait_timeout(guard, (STALL_MAX - waited).min(Duration::from_millis(10)))
            {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        drop(guard);
        q.stalls.fetch_add(1, Ordering::Relaxed);
        q.stall_us
            .fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

impl SnapSink for Producer {
    fn emit(&mut self, db: u32, key: &[u8], value: &crate::store::Value, expire: i64, early: bool) {
        if self.queue.writer_done.load(Ordering::Acquire) {
            // Failed or cancelled: nothing will be written any more.
            return;
        }
        let value_bytes = match value {
            crate::store::Value::Str { data, .. } => data.len(),
            other => other.heap_size(),
        };
        let item_bytes = key.len() + value_bytes + std::mem::size_of::<Item>();
        // An entry that would take the buffer past its capacity goes in the next chunk: the
        // buffer grows only for an entry larger than a chunk.
        if !self.chunk.items.is_empty() && self.chunk.filled() + item_bytes > CHUNK_BYTES {
            self.send_chunk();
        }
        let c = &mut self.chunk;
        let key = c.push_bytes(key);
        let value = match value {
            crate::store::Value::Str { data, .. } => ItemValue::Str(c.push_bytes(data)),
            other => {
                // `value_bytes` is its heap size (computed once: it walks a large container).
                c.containers += value_bytes;
                ItemValue::Other(other.clone())
            }
        };
        c.items.push(Item {
            db,
            expire,
            key,
            value,
        });
        if self.chunk.filled() >= CHUNK_BYTES {
            self.send_chunk();
        }
        if early {
            self.wait_for_room(item_bytes);
        }
    }

    fn has_room(&self) -> bool {
        let q = &*self.queue;
        q.writer_done.load(Ordering::Acquire)
            || q.queued.load(Ordering::Relaxed) + self.chunk.size() < q.cap
    }

    fn flush(&mut self) {
        self.send_chunk();
    }

    fn finish(mut self: Box<Self>) {
        self.send_chunk();
        let _ = self.tx.send(Msg::End);
    }
}

/// What the writer thread needs, prepared before it starts.
struct WriterJob {
    dir: PathBuf,
    dbfilename: String,
    tmp: String,
    options: SaveOptions,
    used_mem: u64,
    functions: Vec<bytes::Bytes>,
    /// Per database at the start: (keys, keys with an expire), the RESIZEDB hint.
    sizes: Vec<(u64, u64)>,
    /// A diskless sync whose replicas' sockets the writer writes to itself (no relay).
    sockets: Option<crate::repl::diskless::Fanout>,
    /// `bgsave-forkless-writer-nice`: see [`lower_priority`].
    nice: u64,
}

/// The writer thread's whole life: the same temp-file lifecycle as the fork child's, fed from
/// the queue. Records come in no fixed database order (the write path sends a key of any
/// database), so the writer selects a database whenever the next record's differs.
fn writer_main(
    mut job: WriterJob,
    rx: mpsc::Receiver<Msg>,
    back: mpsc::Sender<Chunk>,
    q: Arc<Queue>,
) -> Result<(), SaveError> {
    block_sigxfsz();
    lower_priority(job.nice);
    let sockets = job.sockets.take();
    let result = match sockets {
        // The same records straight to the replicas: the diskless sync's stream.
        Some(fanout) => crate::repl::diskless::save_to_sockets(fanout, &q, |out| {
            write_records(&job, &rx, &back, &q, out)
        }),
        None => {
            let dbfilename: &std::ffi::OsStr = job.dbfilename.as_ref();
            let tmp: &std::ffi::OsStr = job.tmp.as_ref();
            snap::save_atomically_checked(
                &job.dir,
                dbfilename,
                tmp,
                || !q.cancel.load(Ordering::Acquire),
                |out| write_records(&job, &rx, &back, &q, out),
            )
        }
    };
    q.writer_done.store(true, Ordering::Release);
    q.wake();
    result
}

/// The RDB stream from the queue's entries into `out` (the temp file, or a diskless sync's
/// replicas' sockets).
fn write_records<W: io::Write>(
    job: &WriterJob,
    rx: &mpsc::Receiver<Msg>,
    back: &mpsc::Sender<Chunk>,
    q: &Queue,
    out: W,
) -> io::Result<()> {
    let cancelled = || io::Error::other("the forkless save was cancelled");
    let mut aux = AuxFields::new(crate::REDIS_VERSION);
    aux.used_mem = job.used_mem;
    let mut w = RdbWriter::new(out, job.options, &aux)?;
    for code in &job.functions {
        w.function(code)?;
    }
    // The walk keeps the queue at or just under `cap` whenever the writer is slower than it (it
    // nearly always is: the walk only copies), so being at `cap` says nothing; above half-way
    // to the writes' own limit (2 × cap) the writes are outrunning the writer.
    let raw_above = q.cap + q.cap / 2;
    let mut current: Option<u32> = None;
    let mut announced = vec![false; job.sizes.len()];
    loop {
        if q.cancel.load(Ordering::Acquire) {
            return Err(cancelled());
        }
        let (chunk, bytes) = match rx.recv() {
            Ok(Msg::Chunk(chunk, bytes)) => (chunk, bytes),
            Ok(Msg::End) => break,
            Err(_) => return Err(cancelled()),
        };
        for it in &chunk.items {
            if current != Some(it.db) {
                let db = it.db as usize;
                match announced.get_mut(db) {
                    Some(seen @ false) => {
                        *seen = true;
                        let (keys, expires) = job.sizes[db];
                        w.select_db(it.db, keys, expires)?;
                    }
                    _ => w.switch_db(it.db)?,
                }
                current = Some(it.db);
            }
            // Behind: past the walk's bound only writes fill the queue, and at twice the bound
            // they wait for this thread. LZF is its slowest step (about 260 MB/s here, a
            // quarter of CRC64's speed, and the write is a copy into the page cache), so it
            // stores values raw until the queue is back under `raw_above`: the file holds the
            // same data, larger only where values would have compressed, and the writes do not
            // wait (docs/cow.md, "Fork against thread at full speed").
            let behind = job.options.compression && q.queued.load(Ordering::Relaxed) > raw_above;
            w.pause_compression(behind);
            if behind {
                q.raw.fetch_add(1, Ordering::Relaxed);
            }
            let expire = (it.expire >= 0).then_some(it.expire);
            let key = &chunk.bytes[it.key.clone()];
            match &it.value {
                ItemValue::Str(r) => w.record_string(key, &chunk.bytes[r.clone()], expire)?,
                ItemValue::Other(v) => super::write_value(&mut w, key, v, expire)?,
            }
            q.written.fetch_add(1, Ordering::Relaxed);
        }
        // Containers' copies are freed here, on the writer's time, not the event
        // loop's; the buffer goes back to be filled again.
        if q.pooled.load(Ordering::Relaxed) < POOL_MAX {
            if let Some(chunk) = chunk.recycle() {
                q.pooled.fetch_add(1, Ordering::Relaxed);
                let _ = back.send(chunk);
            }
        }
        q.queued.fetch_sub(bytes, Ordering::Relaxed);
        q.wake();
    }
    w.finish().map(|_| ())
}

/// Lowers the calling thread's CPU priority by `by` nice steps (at most to 19). On Linux the
/// nice value belongs to the thread, not the process (setpriority(2), "BUGS"), so only the
/// writer thread is affected. Why: on a machine with no idle core the scheduler shares a core
/// between the event-loop thread and this one, and at equal priority a command that arrives
/// while the writer runs waits for the writer's time slice to end (milliseconds: the write
/// p99 of a save, measured in docs/cow.md). A lower priority lets the event loop's thread take
/// the core as soon as it has work; the writer then runs in the time the event loop leaves,
/// and when the writes need it (they wait for it at twice the queue's bound) the event loop
/// sleeps and leaves it the core. A failure (a seccomp filter, say) leaves the priority as it
/// was, which is only slower, so it is not reported.
fn lower_priority(by: u64) {
    if by == 0 {
        return;
    }
    // SAFETY: plain syscalls on this thread's own id; errno is cleared first because -1 is a
    // valid priority.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        if now == -1 && *libc::__errno_location() != 0 {
            return;
        }
        let to = (i64::from(now) + by as i64).min(19) as libc::c_int;
        libc::setpriority(libc::PRIO_PROCESS, tid, to);
    }
}

/// A write past the file-size limit (RLIMIT_FSIZE) raises SIGXFSZ in the writing thread, and
/// its default action ends the whole process. The fork child ignores it; the writer thread,
/// which shares the server's signal dispositions, blocks it for itself alone, so the write fails
/// with EFBIG and the save fails like any other write error. (A blocked thread-directed signal
/// stays pending on this thread and goes with it.)
fn block_sigxfsz() {
    // SAFETY: plain libc calls on a local, initialised signal set; they affect this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGXFSZ);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// A running forkless save, as the event-loop thread sees it.
pub struct ForklessRun {
    pub started: Instant,
    pub keys_total: u64,
    pub queue: Arc<Queue>,
    /// `dirty` at the start: what the save covers.
    dirty_before: u64,
    thread: Option<JoinHandle<Result<(), SaveError>>>,
    /// The writer thread, joined: its result, and the thread count before and the time of the
    /// join (see [`Server::forkless_settled`]).
    joined: Option<std::thread::Result<Result<(), SaveError>>>,
    settle: Option<(u64, Instant)>,
    /// The walk has sent every entry (and the writer was told).
    walk_done: bool,
    /// BGSAVE CANCEL, FLUSHALL or SHUTDOWN ended it: not a failure. The save stays in
    /// progress until the writer thread has ended, as a killed fork child until it is reaped.
    cancelled: bool,
    tmp: String,
    next_sample: Instant,
    /// Entries the write path sent early, as counted when the walk ended.
    early_at_walk_end: u64,
    /// A diskless sync's save: the stream went to the replicas, nothing was saved on disk.
    to_socket: bool,
}

impl ForklessRun {
    /// Records written to the file so far.
    pub fn keys_processed(&self) -> u64 {
        self.queue.written.load(Ordering::Relaxed)
    }
}

/// The name of a forkless save's temp file: distinct from the fork child's `temp-<pid>.rdb`
/// and from SAVE's, so a SAVE after a cancelled forkless save never shares a file with a
/// writer thread that has not ended yet.
fn temp_name() -> String {
    format!("temp-forkless-{}.rdb", std::process::id())
}

/// What the driver does next.
pub enum Tick {
    /// More to walk now (after letting the event loop run).
    Again,
    /// Wait for the writer to take a chunk or end (or for this long at most).
    Wait(Arc<Queue>),
    /// Sleep (rdb-key-save-delay spaces the walk).
    Sleep(Duration),
    /// No forkless save runs any more.
    Ended,
}

impl Server {
    /// Is a background save of either method running (a fork child not reaped yet, or a
    /// forkless save whose writer thread has not ended)?
    pub fn save_in_progress(&self) -> bool {
        self.persist.running.is_some() || self.persist.forkless.is_some()
    }

    /// BGSAVE FORKLESS: starts the walk and the writer thread. The file will hold the data as
    /// it is at this instant.
    pub fn bgsave_forkless_start(&mut self) -> Result<(), String> {
        self.forkless_start_with(None)
    }

    /// A diskless sync's forkless save that writes the stream to the replicas' sockets.
    pub fn bgsave_forkless_start_to_sockets(
        &mut self,
        fanout: crate::repl::diskless::Fanout,
    ) -> Result<(), String> {
        self.forkless_start_with(Some(fanout))
    }

    fn forkless_start_with(
        &mut self,
        sockets: Option<crate::repl::diskless::Fanout>,
    ) -> Result<(), String> {
        if self.save_in_progress() {
            return Err("Background save already in progress".into());
        }
        self.persist.last_bgsave_try = Some(Instant::now());
        let cap = (self.config.bgsave_forkless_queue_bytes as usize).max(MIN_QUEUE_BYTES);
        let queue = Arc::new(Queue::new(cap, sockets.is_some()));
        let (tx, rx) = mpsc::channel();
        let (back_tx, back_rx) = mpsc::channel();
        let sizes = self
            .ks
            .databases()
            .map(|(_, db)| (db.len() as u64, db.expires_len() as u64))
            .collect();
        let used_mem = crate::alloc::used_memory() as u64;
        let tmp = temp_name();
        let job = WriterJob {
            dir: self.config.dir.clone(),
            dbfilename: self.config.dbfilename.clone(),
            tmp: tmp.clone(),
            options: self.save_options(),
            used_mem,
            functions: self.persist.functions.clone(),
            sizes,
            sockets,
            nice: self.config.bgsave_forkless_writer_nice,
        };
        let to_socket = job.sockets.is_some();
        let q = queue.clone();
        let thread = std::thread::Builder::new()
            .name("forkdb-save".into())
            .spawn(move || writer_main(job, rx, back_tx, q));
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                self.persist.last_save_ok = false;
                warn!(cause = %e, "Can't save in background: the writer thread");
                return Err(format!("Can't save in background: writer thread: {e}"));
            }
        };
        let producer = Producer {
            tx,
            back: back_rx,
            chunk: Chunk::new(),
            queue: queue.clone(),
            overflow: false,
        };
        let keys_total = self.ks.forkless_begin(Box::new(producer));
        self.persist.rdb_saves += 1;
        self.persist.bgsave_scheduled = false;
        info!("Background saving started (forkless)");
        self.timelines
            .begin_forkless(keys_total, used_mem, self.stats.write_commands);
        self.timelines
            .sample_forkless(0, self.stats.write_commands, 0, 0, 0);
        self.persist.forkless = Some(ForklessRun {
            started: Instant::now(),
            keys_total,
            queue,
            dirty_before: self.ks.dirty,
            thread: Some(thread),
            walk_done: false,
            cancelled: false,
            tmp,
            next_sample: Instant::now(),
            early_at_walk_end: 0,
            to_socket,
            joined: None,
            settle: None,
        });
        self.persist.forkless_notify.notify_one();
        Ok(())
    }

    /// Ends the running forkless save without a file (BGSAVE CANCEL, FLUSHALL, SHUTDOWN):
    /// the walk stops and the writer is told; the save stays in progress until the writer
    /// thread has ended (the driver sees to it), never waiting for it here.
    pub fn forkless_cancel(&mut self) {
        let Some(run) = self.persist.forkless.as_mut() else {
            return;
        };
        if run.cancelled {
            return;
        }
        run.cancelled = true;
        run.early_at_walk_end = self.ks.forkless_progress().map_or(0, |(_, e)| e);
        run.queue.cancel.store(true, Ordering::Release);
        // Dropping the sink drops the channel's sender: a writer waiting for entries wakes.
        drop(self.ks.forkless_end());
        run.queue.wake();
    }

    /// SHUTDOWN's end of a running forkless save: cancel it, give the writer thread a moment
    /// to end, and remove its temp file either way (the process exits next).
    pub(super) fn forkless_cancel_at_exit(&mut self, wait: Duration) {
        self.forkless_cancel();
        let deadline = Instant::now() + wait;
        while let Some(run) = self.persist.forkless.as_ref() {
            if run.thread.as_ref().is_none_or(|t| t.is_finished()) {
                self.forkless_finish();
                break;
            }
            if Instant::now() >= deadline {
                let tmp = run.tmp.clone();
                self.remove_temp_file(&tmp);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// One turn of the driver: a slice of the walk, a timeline sample when one is due, and
    /// the save's end once the writer thread has ended.
    pub fn forkless_tick(&mut self) -> Tick {
        let Some(run) = self.persist.forkless.as_mut() else {
            return Tick::Ended;
        };
        let now = Instant::now();
        let sample_due = now >= run.next_sample;
        if run.thread.as_ref().is_none_or(|t| t.is_finished()) {
            if !self.forkless_settled() {
                return Tick::Sleep(Duration::from_millis(1));
            }
            self.forkless_finish();
            return Tick::Ended;
        }
        if sample_due {
            self.sample_forkless_timeline();
        }
        let Some(run) = self.persist.forkless.as_mut() else {
            return Tick::Ended;
        };
        if run.walk_done || run.cancelled {
            return Tick::Wait(run.queue.clone());
        }
        let delay_us = self.config.rdb_key_save_delay;
        let max_keys = if delay_us > 0 {
            // `rdb-key-save-delay` spaces the walk (for tests and demos) without blocking the
            // event loop: the walk may have sent one entry per delay since the start.
            let allowed = run.started.elapsed().as_micros() as u64 / delay_us as u64;
            let sent = self.ks.forkless_progress().map_or(0, |(s, _)| s);
            let budget = allowed.saturating_sub(sent) as usize;
            if budget == 0 {
                return Tick::Sleep(Duration::from_millis(1));
            }
            budget
        } else {
            usize::MAX
        };
        let slice = Duration::from_micros(self.config.bgsave_forkless_slice_us);
        match self.ks.forkless_step(max_keys, now + slice) {
            WalkStep::More if delay_us > 0 => Tick::Sleep(Duration::from_millis(1)),
            WalkStep::More => Tick::Again,
            WalkStep::Full => Tick::Wait(run.queue.clone()),
            WalkStep::Done => {
                run.early_at_walk_end = self.ks.forkless_progress().map_or(0, |(_, e)| e);
                if let Some(sink) = self.ks.forkless_end() {
                    sink.finish();
                }
                run.walk_done = true;
                Tick::Wait(run.queue.clone())
            }
        }
    }

    /// The writer thread has ended: joins it (at once: it has returned), then says whether the
    /// kernel has stopped counting it, or 100 ms have passed. `pthread_join` returns a moment
    /// before the thread's exit is complete, and a fork in that moment would see two threads
    /// and be refused, so the save ends only then. The wait is the driver's (it polls every
    /// millisecond, the event loop serving commands meanwhile), not a spin on the event loop's
    /// thread as `fork::join_settled` does: that spin could hold every command for its whole
    /// 100 ms (in three saves out of four with the writer at nice +8 on the 2-core development
    /// machine: the spinning thread kept the exiting one from finishing); polled, the wait is
    /// about 40 µs. The end of the save logs it as `settle_us`.
    fn forkless_settled(&mut self) -> bool {
        let Some(run) = self.persist.forkless.as_mut() else {
            return true;
        };
        if let Some(thread) = run.thread.take() {
            let before = fork::thread_count();
            run.joined = Some(thread.join());
            run.settle = before.map(|n| (n, Instant::now()));
        }
        match run.settle {
            None => true,
            Some((before, joined_at)) => {
                joined_at.elapsed() >= Duration::from_millis(100) || fork::thread_settled(before)
            }
        }
    }

    /// Entries the write path has sent early so far in the running save.
    fn forkless_early(&self) -> u64 {
        match (self.ks.forkless_progress(), self.persist.forkless.as_ref()) {
            (Some((_, early)), _) => early,
            (None, Some(run)) => run.early_at_walk_end,
            (None, None) => 0,
        }
    }

    /// A sample of the running forkless save's timeline (SNAPSHOT SAMPLES), and the time of the
    /// next one.
    fn sample_forkless_timeline(&mut self) {
        let Some(run) = self.persist.forkless.as_ref() else {
            return;
        };
        let (queued, _, _, stall_us) = run.queue.figures();
        let keys = run.keys_processed();
        let early = self.forkless_early();
        self.timelines
            .sample_forkless(keys, self.stats.write_commands, queued, early, stall_us);
        let interval = Duration::from_millis(self.config.snapshot_sample_interval);
        let next = Instant::now() + self.timelines.next_wait(interval);
        if let Some(run) = self.persist.forkless.as_mut() {
            run.next_sample = next;
        }
    }

    /// The writer thread has ended: join it and record how the save ended (Redis's
    /// `backgroundSaveDoneHandler`, for a thread).
    fn forkless_finish(&mut self) {
        // The final sample, before the walk's state is dropped.
        self.sample_forkless_timeline();
        let early = self.forkless_early();
        let Some(mut run) = self.persist.forkless.take() else {
            return;
        };
        // The writer may have ended first (an I/O error): the walk ends with it.
        drop(self.ks.forkless_end());
        // Joined, and settled (a fork may follow at once), by `forkless_settled`; at SHUTDOWN
        // (`forkless_cancel_at_exit`) here.
        let joined = match run.joined.take() {
            Some(joined) => Some(joined),
            None => run.thread.take().map(fork::join_settled),
        };
        let settle_us = run
            .settle
            .map_or(0, |(_, at)| at.elapsed().as_micros() as u64);
        self.persist.last_bgsave_time_sec = run.started.elapsed().as_secs() as i64;
        self.persist.last_method = Some(SaveMethod::Forkless);
        let (_, peak_queued, stalls, stall_us) = run.queue.figures();
        let status = match joined {
            _ if run.cancelled => {
                warn!("Background saving terminated (forkless save cancelled)");
                self.remove_temp_file(&run.tmp);
                "cancelled"
            }
            Some(Ok(Ok(()))) if run.to_socket => {
                info!(
                    keys = run.keys_processed(),
                    "Background RDB transfer terminated with success"
                );
                "ok"
            }
            Some(Ok(Ok(()))) => {
                info!(
                    keys = run.keys_processed(),
                    uncompressed = run.queue.raw.load(Ordering::Relaxed),
                    settle_us,
                    early,
                    peak_queued,
                    stalls,
                    stall_us,
                    "Background saving terminated with success"
                );
                self.ks.dirty = self.ks.dirty.saturating_sub(run.dirty_before);
                self.last_save_unix = now_ms() / 1000;
                self.persist.last_save_ok = true;
                "ok"
            }
            Some(Ok(Err(e))) if run.to_socket => {
                let err = super::strerror(e.errno());
                warn!(
                    step = e.step.name(),
                    errno = e.errno(),
                    "Diskless transfer: writing the RDB to the replicas failed: {err}"
                );
                warn!("Background transfer error");
                self.timelines.end("err");
                crate::repl::bgsave_done(self, false);
                return;
            }
            Some(Ok(Err(e))) => {
                let line = super::save_error_line(
                    e.step,
                    e.errno(),
                    &self.config.dir,
                    &run.tmp,
                    &self.config.dbfilename,
                );
                warn!(step = e.step.name(), errno = e.errno(), "{line}");
                warn!("Background saving error");
                self.persist.last_save_ok = false;
                self.remove_temp_file(&run.tmp);
                self.timelines.end("err");
                self.timelines.set_failure(e.step.name(), e.errno());
                crate::repl::bgsave_done(self, false);
                return;
            }
            Some(Err(_)) | None => {
                warn!("The forkless save's writer thread panicked");
                warn!("Background saving error");
                self.persist.last_save_ok = false;
                self.remove_temp_file(&run.tmp);
                "err"
            }
        };
        self.timelines.end(status);
        // Replicas waiting for this snapshot get its file (or the failure), as after a fork.
        crate::repl::bgsave_done(self, status == "ok");
    }
}

/// Drives the running forkless save from the event loop: one slice of the walk per turn
/// (`yield_now` lets every ready connection run between two slices), waiting on the writer
/// when the queue is full, until the save has ended. Started once at start-up; woken by
/// `bgsave_forkless_start`.
pub async fn driver(srv: Shared) {
    let notify = srv.borrow().persist.forkless_notify.clone();
    loop {
        notify.notified().await;
        loop {
            let tick = srv.borrow_mut().forkless_tick();
            match tick {
                Tick::Ended => break,
                Tick::Again => crate::net::yield_to_loop().await,
                Tick::Sleep(d) => tokio::time::sleep(d).await,
                Tick::Wait(q) => {
                    crate::idlepoll::next_wake_from_thread();
                    // Bounded: the timeline's samples and the writer's end are seen in time
                    // even if a notification were missed.
                    let _ =
                        tokio::time::timeout(Duration::from_millis(20), q.space.notified()).await;
                }
            }
        }
    }
}
