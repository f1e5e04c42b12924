//! The fork and the child: how a snapshot process is made, what it reports, and how its
//! parent learns how it ended.
//!
//! ```text
//!   parent (the thread that owns the keyspace)          child (a copy of that thread only)
//!   -------------------------------------------         ----------------------------------
//!   (the caller refuses to fork with > 1 thread,
//!    see thread_count)
//!   pipe2(O_CLOEXEC)             report pipe
//!   getpid(): the parent pid the child checks
//!   fork() ------------------------------------------>  IN_SNAPSHOT_CHILD = true (panic hook)
//!   close(write end)                                    close_range: every inherited fd but
//!                                                       0, 1, 2 and the pipe's write end
//!                                                       (listeners, clients, epoll, log file)
//!                                                       PR_SET_PDEATHSIG(SIGKILL), then
//!                                                       getppid() == parent pid, else _exit(3)
//!                                                       oom_score_adj, SIGXFSZ ignored
//!   serve clients; every page it writes                 walk the keyspace it inherited,
//!   is copied by the kernel (copy-on-write)             as it was at the instant of fork()
//!                                    <-- Report ------  keys done, Private_Dirty (COW bytes)
//!   drain the pipe (non-blocking)                       ... (duty-cycled, ~1% of the save)
//!                                                       parent still there? else remove the
//!                                                       temp file, _exit(3)
//!                                    <-- Report(Done)-  rename temp file, fsync
//!                                    <-- Report(Failed: step, errno) on an I/O error
//!   waitpid(pid, WNOHANG): Ok / Failed / Signaled       _exit(code)
//! ```
//!
//! Rules for the child (see `shared/STYLE.md`, "fork() in a Rust server"): it only calls
//! `write(2)`, `open(2)`/`read(2)` on /proc, and the serializer; it never logs, never takes a lock
//! another thread could hold (the server refuses to fork unless it has one thread, so none can be
//! held), never returns into the caller, and ends with `_exit`. A panic ends it with exit code 2:
//! through [`install_panic_hook`]'s hook when the program installed it (one fixed line written
//! with `write(2)`, then `_exit`, without the default hook, which allocates and locks stderr),
//! else through `catch_unwind`.
//!
//! Why the child closes what it inherited and dies with its parent: a child that outlives a
//! `kill -9` of the server still holds the listening socket (the restarted server cannot bind
//! the port) and every client socket (a client's QUIT gets no EOF), and when it finishes it
//! would rename its snapshot, older than anything the restarted server saved, over `dump.rdb`.
//! `PR_SET_PDEATHSIG` kills it when the thread that forked it ends; the `getppid()` checks cover
//! a parent that died before the `prctl` and the time a signal takes to arrive.
//!
//! What the child allocates: nothing between `fork()` and the serializer (names are formatted
//! on the stack: `file::TempName`, the C strings of `save_atomically`). The serializer does: the
//! 64 KiB write buffer of `save_atomically`, the LZF compressor's table and output buffer. That
//! relies on glibc's malloc (the server's `CountingAlloc` wraps the system allocator), whose
//! `fork()` handlers leave the allocator's locks usable in the child of a process whose other
//! threads might have held them; in forkdb no other thread exists at fork time anyway (the
//! server checks).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::file::{SaveError, Step};
use crate::procfs;

/// Set in the child right after `fork()`: the process-wide panic hook ([`install_panic_hook`])
/// looks at it to know that it runs in a snapshot child.
pub static IN_SNAPSHOT_CHILD: AtomicBool = AtomicBool::new(false);

/// Exit code of a child whose save failed (its last report says at which step, with errno).
pub const EXIT_FAILED: i32 = 1;
/// Exit code of a child that panicked.
pub const EXIT_PANIC: i32 = 2;
/// Exit code of a child that found its parent gone, and so did not rename anything.
pub const EXIT_PARENT_GONE: i32 = 3;

/// The line a panicking child writes to stderr. Fixed: formatting the panic message would
/// allocate, and the child must not.
pub const CHILD_PANIC_LINE: &[u8] =
    b"forkdb snapshot child: panic; the save is abandoned (exit status 2)\n";

/// Installs a process panic hook that, in a snapshot child, writes [`CHILD_PANIC_LINE`] to
/// stderr with `write(2)` and `_exit(2)`s, and elsewhere calls the hook that was there before.
///
/// Call it once at start-up, before any fork. Without it a panicking child still ends with
/// exit code 2 (`spawn` catches the unwind), but only after the default hook has run, which
/// formats the message into a heap buffer and locks stderr: neither is safe in a forked child.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if IN_SNAPSHOT_CHILD.load(Ordering::Relaxed) {
            // SAFETY: write(2) of a static buffer to fd 2, then _exit: nothing else runs.
            unsafe {
                libc::write(
                    libc::STDERR_FILENO,
                    CHILD_PANIC_LINE.as_ptr().cast(),
                    CHILD_PANIC_LINE.len(),
                );
                libc::_exit(EXIT_PANIC);
            }
        }
        previous(info);
    }));
}

/// The number of threads of this process (`num_threads` of `/proc/self/stat`), read without
/// allocating; `None` if /proc cannot be read.
///
/// `fork()` copies only the calling thread: a lock another thread holds at that instant stays
/// locked in the child forever. The server is single-threaded by design and refuses to fork
/// when this says otherwise (a thread started by mistake, a library's helper thread).
pub fn thread_count() -> Option<u64> {
    procfs::self_stat().map(|s| s.num_threads)
}

/// Joins a helper thread (a save's writer or sampler) and waits, up to 100 ms, until the kernel
/// no longer counts it: `pthread_join` returns once the thread has released its memory map, a
/// moment before its exit is complete, and a `fork()` in that moment would see two threads and
/// be refused. Returns the thread's result.
pub fn join_settled<T>(handle: std::thread::JoinHandle<T>) -> std::thread::Result<T> {
    let before = thread_count();
    let result = handle.join();
    if let Some(before) = before {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
        while !thread_settled(before) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
    }
    result
}

/// Whether a thread joined when the process counted `before` threads has left the kernel's
/// count (or the count cannot be read). `n <= 1`: a thread that had already left it before
/// `before` was read leaves nothing to wait for (waiting for fewer than one thread spun a
/// whole 100 ms).
pub fn thread_settled(before: u64) -> bool {
    thread_count().is_none_or(|n| n < before || n <= 1)
}

/// The CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`; zero if unavailable).
/// What a periodic /proc read costs the process, unlike wall time, which also counts the time
/// the thread was preempted: the duty cycles of the child's reports and of the server's
/// timeline samples are measured with it.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: fills a valid timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0).min(999_999_999),
    )
}

/// Is `parent` still this process's parent? An orphan is re-parented (to init or a
/// subreaper), so its `getppid()` changes.
pub fn parent_is(parent: libc::pid_t) -> bool {
    // SAFETY: getppid cannot fail.
    unsafe { libc::getppid() == parent }
}

/// What a report says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// A progress sample during the save.
    Progress,
    /// The save is written and renamed into place.
    Done,
    /// The save failed: `step` and `errno` say where and why.
    Failed,
}

/// One fixed-size message from the child to the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub kind: ReportKind,
    /// Keys serialized so far.
    pub keys: u64,
    /// The child's `Private_Dirty` bytes: the pages copied since fork (COW), plus any the child
    /// allocated. 0 if /proc could not be read.
    pub cow_bytes: u64,
    /// The child's resident set (`Rss` of smaps_rollup).
    pub rss_bytes: u64,
    /// The child's PSS (0 if the kernel does not report it).
    pub pss_bytes: u64,
    /// The child's anonymous PSS (0 if the kernel does not report it).
    pub pss_anon_bytes: u64,
    /// Microseconds since the child started.
    pub elapsed_us: u64,
    /// For [`ReportKind::Failed`]: the step of the file lifecycle that failed.
    pub step: Option<Step>,
    /// For [`ReportKind::Failed`]: the errno of the failure.
    pub errno: i32,
}

const REPORT_MAGIC: u32 = 0x666b_6462; // "fkdb"
/// Bytes of one report on the pipe: below PIPE_BUF, so each write is atomic.
pub const REPORT_SIZE: usize = 64;

/// One report on the pipe, little-endian:
///
/// ```text
/// offset  size  field
///      0     4  magic "fkdb" (0x666b6462)
///      4     4  kind: 1 progress, 2 done, 3 failed
///      8     8  keys
///     16     8  cow_bytes
///     24     8  rss_bytes
///     32     8  elapsed_us
///     40     4  step (file::Step::code; 0: none)
///     44     4  errno (0: none)
///     48     8  pss_bytes
///     56     8  pss_anon_bytes
/// ```
///
/// The last report before the child exits (done or failed) carries its memory as it ends: the
/// parent's timeline takes its final sample of the child from it, since a child that has exited
/// has no memory left to read.
impl Report {
    fn encode(&self) -> [u8; REPORT_SIZE] {
        let mut b = [0u8; REPORT_SIZE];
        b[0..4].copy_from_slice(&REPORT_MAGIC.to_le_bytes());
        let kind: u32 = match self.kind {
            ReportKind::Progress => 1,
            ReportKind::Done => 2,
            ReportKind::Failed => 3,
        };
        b[4..8].copy_from_slice(&kind.to_le_bytes());
        b[8..16].copy_from_slice(&self.keys.to_le_bytes());
        b[16..24].copy_from_slice(&self.cow_bytes.to_le_bytes());
        b[24..32].copy_from_slice(&self.rss_bytes.to_le_bytes());
        b[32..40].copy_from_slice(&self.elapsed_us.to_le_bytes());
        let step = self.step.map_or(0, Step::code);
        b[40..44].copy_from_slice(&step.to_le_bytes());
        b[44..48].copy_from_slice(&self.errno.to_le_bytes());
        b[48..56].copy_from_slice(&self.pss_bytes.to_le_bytes());
        b[56..64].copy_from_slice(&self.pss_anon_bytes.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Report> {
        let u32_at = |i: usize| {
            b.get(i..i + 4)
                .and_then(|s| s.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let u64_at = |i: usize| {
            b.get(i..i + 8)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_le_bytes)
        };
        if u32_at(0)? != REPORT_MAGIC {
            return None;
        }
        let kind = match u32_at(4)? {
            1 => ReportKind::Progress,
            2 => ReportKind::Done,
            3 => ReportKind::Failed,
            _ => return None,
        };
        let step = match u32_at(40)? {
            0 => None,
            code => Some(Step::from_code(code)?),
        };
        Some(Report {
            kind,
            keys: u64_at(8)?,
            cow_bytes: u64_at(16)?,
            rss_bytes: u64_at(24)?,
            elapsed_us: u64_at(32)?,
            step,
            errno: u32_at(44)? as i32,
            pss_bytes: u64_at(48)?,
            pss_anon_bytes: u64_at(56)?,
        })
    }
}

struct StackWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl std::fmt::Write for StackWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(std::fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Kept here for the callers that read small `/proc` files through `fork` (see [`procfs`]).
pub use crate::procfs::read_small_file;

/// The child's side: sends progress on the pipe, sampling /proc no more than a duty cycle allows.
pub struct Reporter {
    fd: RawFd,
    started: Instant,
    /// Minimum time between two samples.
    interval: Duration,
    /// Sampling may take at most 1/duty_cycle of the save's time (Redis: 100, i.e. 1%).
    duty_cycle: u32,
    next_sample: Instant,
    keys: u64,
    /// The pid of the process that forked this child, as it was before `fork()`.
    parent: libc::pid_t,
}

impl Reporter {
    fn new(fd: RawFd, interval: Duration, parent: libc::pid_t) -> Self {
        let now = Instant::now();
        Reporter {
            fd,
            started: now,
            interval,
            duty_cycle: 100,
            next_sample: now,
            keys: 0,
            parent,
        }
    }

    /// Is the process that forked this child still its parent? The "may I rename?" check of
    /// the save: an orphan must not rename its snapshot over a newer one.
    pub fn parent_alive(&self) -> bool {
        parent_is(self.parent)
    }

    /// A check with the same answer as [`Reporter::parent_alive`] that does not borrow the
    /// reporter (the save's rename hook and its per-key callback both need one).
    pub fn parent_check(&self) -> impl Fn() -> bool {
        let parent = self.parent;
        move || parent_is(parent)
    }

    /// Call once per key written. Cheap: looks at the clock every 64 keys.
    #[inline]
    pub fn key_done(&mut self) {
        self.keys += 1;
        if self.keys.is_multiple_of(64) {
            self.maybe_sample();
        }
    }

    /// Samples now if the interval and the duty cycle allow it.
    pub fn maybe_sample(&mut self) {
        let now = Instant::now();
        if now < self.next_sample {
            return;
        }
        let cpu = thread_cpu_time();
        self.send(ReportKind::Progress);
        // CPU time, not wall time: a child preempted in the middle of its /proc read (a busy
        // machine) would otherwise wait a hundred times that preemption for its next report.
        let cost = thread_cpu_time().saturating_sub(cpu);
        // Wait at least `interval`, and long enough that sampling stays under 1/duty_cycle.
        let wait = self.interval.max(cost.saturating_mul(self.duty_cycle));
        self.next_sample = Instant::now() + wait;
    }

    fn send(&self, kind: ReportKind) {
        self.send_report(kind, None, 0);
    }

    /// Tells the parent at which step the save failed, and the errno.
    fn send_failure(&self, err: &SaveError) {
        self.send_report(ReportKind::Failed, Some(err.step), err.errno());
    }

    fn send_report(&self, kind: ReportKind, step: Option<Step>, errno: i32) {
        let mem = procfs::self_rollup().unwrap_or_default();
        let report = Report {
            kind,
            keys: self.keys,
            cow_bytes: mem.private_dirty,
            rss_bytes: mem.rss,
            pss_bytes: mem.pss.unwrap_or(0),
            pss_anon_bytes: mem.pss_anon.unwrap_or(0),
            elapsed_us: self.started.elapsed().as_micros() as u64,
            step,
            errno,
        };
        let bytes = report.encode();
        // A report that can't be written (parent gone, pipe full) is dropped: the save matters
        // more than its telemetry. EINTR is retried.
        loop {
            // SAFETY: writes REPORT_SIZE bytes from a live stack buffer to our pipe fd.
            let n = unsafe { libc::write(self.fd, bytes.as_ptr().cast(), bytes.len()) };
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
    }

    /// Keys reported so far.
    pub fn keys(&self) -> u64 {
        self.keys
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// Exit code 0: the snapshot is in place.
    Ok,
    /// A non-zero exit code: the save failed ([`EXIT_FAILED`]: I/O error, [`EXIT_PANIC`]: panic,
    /// [`EXIT_PARENT_GONE`]: orphaned, nothing renamed).
    Failed(i32),
    /// Killed by this signal (SIGKILL from the OOM killer or BGSAVE CANCEL, SIGXFSZ, ...).
    Signaled(i32),
}

/// The parent's handle on a running child.
#[derive(Debug)]
pub struct Child {
    pub pid: i32,
    pub started: Instant,
    /// How long `fork()` itself took (INFO's `latest_fork_usec`).
    pub fork_usec: u64,
    pipe: OwnedFd,
    partial: Vec<u8>,
    /// The pipe reached end of file: the child's write end is closed, which happens as the
    /// child exits (it is the only process holding it).
    pipe_closed: bool,
}

/// Options for [`spawn`].
#[derive(Debug, Clone, Copy)]
pub struct SpawnOptions {
    /// Written to the child's /proc/self/oom_score_adj, so the OOM killer picks the child, not
    /// the server, when a save does not fit (Redis's oom-score-adj-values, third value).
    pub oom_score_adj: Option<i32>,
    /// Minimum time between progress samples.
    pub sample_interval: Duration,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        SpawnOptions {
            oom_score_adj: Some(800),
            sample_interval: Duration::from_millis(100),
        }
    }
}

/// Forks. In the child, first closes every inherited descriptor but 0, 1, 2 and its end of the
/// report pipe, arranges to die with its parent, then runs `body` (which returns how the save
/// ended) and `_exit`s; it never returns there. In the parent, returns the handle.
///
/// `body` gets the [`Reporter`]; a failed save's step and errno go to the parent in a
/// [`ReportKind::Failed`] report, and the child exits with [`EXIT_FAILED`] (or
/// [`EXIT_PARENT_GONE`] when the rename was refused because the parent is gone).
///
/// # Safety
/// The caller must be the only thread that can touch anything `body` uses, and must call this
/// at a point where no lock is held and no data structure is half-updated: the child gets a
/// copy of memory at this instant and only this thread. `body` must not use a descriptor the
/// caller opened before the fork (it is closed in the child), and must not drop anything that
/// owns one.
pub unsafe fn spawn(
    options: SpawnOptions,
    body: impl FnOnce(&mut Reporter) -> Result<(), SaveError>,
) -> io::Result<Child> {
    spawn_keeping(options, None, body)
}

/// [`spawn`], with one more inherited descriptor left open in the child: `keep`, the write end
/// of the pipe a diskless sync's snapshot goes into (the parent relays it to the replicas; the
/// child never sees a client socket). The caller closes its own copy after the fork, so that
/// the reader sees end of file when the child is done or gone.
///
/// # Safety
/// As [`spawn`]; `body` may use `keep` (and only it, of what the caller opened).
pub unsafe fn spawn_keeping(
    options: SpawnOptions,
    keep: Option<RawFd>,
    body: impl FnOnce(&mut Reporter) -> Result<(), SaveError>,
) -> io::Result<Child> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the array; CLOEXEC so a later exec of anything does not inherit it.
    if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
        return Err(io::Error::last_os_error());
    }
    let (rd, wr) = (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]));
    // Recorded before fork: the child compares its getppid() with it.
    let parent = libc::getpid();
    let start = Instant::now();
    let pid = libc::fork();
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // Child. Nothing here may return to the caller.
        IN_SNAPSHOT_CHILD.store(true, Ordering::Relaxed);
        let wr_fd = wr.as_raw_fd();
        close_inherited_fds([wr_fd, keep.unwrap_or(wr_fd)]);
        // The read end is closed already (by number): its OwnedFd must not close it again.
        std::mem::forget(rd);
        if !die_with_parent(parent) {
            libc::_exit(EXIT_PARENT_GONE);
        }
        child_setup(options);
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut reporter = Reporter::new(wr_fd, options.sample_interval, parent);
            match body(&mut reporter) {
                Ok(()) => {
                    reporter.send(ReportKind::Done);
                    0
                }
                Err(e) if e.step == Step::RenameRefused => EXIT_PARENT_GONE,
                Err(e) => {
                    reporter.send_failure(&e);
                    EXIT_FAILED
                }
            }
        }))
        .unwrap_or(EXIT_PANIC);
        libc::_exit(code);
    }
    let fork_usec = start.elapsed().as_micros() as u64;
    drop(wr);
    // Non-blocking, so draining never stalls the server.
    let flags = libc::fcntl(rd.as_raw_fd(), libc::F_GETFL);
    libc::fcntl(rd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    Ok(Child {
        pid,
        started: start,
        fork_usec,
        pipe: rd,
        partial: Vec::with_capacity(REPORT_SIZE * 4),
        pipe_closed: false,
    })
}

/// Closes every descriptor from 3 up except the two in `keep` (the report pipe, and the
/// snapshot pipe of a diskless sync, or the report pipe twice), as Redis's
/// `closeChildUnusedResourceAfterFork` closes the listeners: the listening sockets, the
/// clients' sockets, tokio's epoll and eventfd, the log file. Without allocating.
fn close_inherited_fds(keep: [RawFd; 2]) {
    let (a, b) = (keep[0].min(keep[1]), keep[0].max(keep[1]));
    // The gaps around the kept descriptors, from 3 up: [3, a-1], [a+1, b-1], [b+1, max].
    let mut ranges = [(0i64, -1i64); 3];
    let mut next = 3i64;
    for (slot, k) in [i64::from(a), i64::from(b)].into_iter().enumerate() {
        if k >= next {
            ranges[slot] = (next, k - 1);
            next = k + 1;
        }
    }
    ranges[2] = (next, i64::from(libc::c_uint::MAX));
    for (first, last) in ranges {
        if first > last {
            continue;
        }
        let (first, last) = (first as libc::c_uint, last as libc::c_uint);
        // SAFETY: close_range closes descriptors this process owns; nothing in the child uses
        // them afterwards. The raw syscall works with any libc (glibc's wrapper needs 2.34).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                libc::c_long::from(first),
                libc::c_long::from(last),
                0 as libc::c_long,
            )
        };
        if rc != 0 {
            // Kernels before 5.9: close them one by one, up to the descriptor limit.
            close_one_by_one(first, last);
        }
    }
}

fn close_one_by_one(first: libc::c_uint, last: libc::c_uint) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: fills a valid struct.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur.min(1 << 20) as libc::c_uint
    } else {
        1024
    };
    let last = last.min(max);
    let mut fd = first;
    while fd <= last {
        // SAFETY: as above; EBADF for numbers not open is expected.
        unsafe { libc::close(fd as libc::c_int) };
        fd += 1;
    }
}

/// Asks for SIGKILL when the parent dies, then checks that the parent did not die before that
/// (a SIGKILL of the server between `fork()` and here would never reach us).
fn die_with_parent(parent: libc::pid_t) -> bool {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    parent_is(parent)
}

/// Child-side settings that must not fail the save.
fn child_setup(options: SpawnOptions) {
    // SAFETY: plain syscalls with valid arguments; failures are ignored on purpose.
    unsafe {
        // A full disk or RLIMIT_FSIZE must fail the write with EFBIG, not kill the child
        // before it can remove its temp file.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        // A report written after the parent died fails with EPIPE instead of killing the
        // child before it removes its temp file.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // The parent's SIGINT/SIGTERM handling is not ours: a Ctrl-C in the terminal reaches the
        // whole process group, and the parent decides what happens to the save.
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }
    if let Some(adj) = options.oom_score_adj {
        let _ = set_oom_score_adj(adj);
    }
}

/// Writes /proc/self/oom_score_adj without allocating.
pub fn set_oom_score_adj(value: i32) -> io::Result<()> {
    let mut text = [0u8; 16];
    let mut w = StackWriter {
        buf: &mut text,
        len: 0,
    };
    use std::fmt::Write as _;
    write!(w, "{value}").map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let len = w.len;
    // SAFETY: valid path; fd closed below.
    let fd = unsafe {
        libc::open(
            c"/proc/self/oom_score_adj".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: writes `len` bytes of a live stack buffer.
    let n = unsafe { libc::write(fd, text.as_ptr().cast(), len) };
    // SAFETY: closes the fd opened above.
    unsafe { libc::close(fd) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Child {
    /// Reads every complete report waiting on the pipe.
    pub fn drain(&mut self) -> Vec<Report> {
        let mut buf = [0u8; REPORT_SIZE * 64];
        loop {
            // SAFETY: reads into a live stack buffer from our own non-blocking pipe.
            let n =
                unsafe { libc::read(self.pipe.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n == 0 {
                self.pipe_closed = true;
            }
            if n <= 0 {
                break;
            }
            self.partial.extend_from_slice(&buf[..n as usize]);
        }
        let whole = self.partial.len() / REPORT_SIZE * REPORT_SIZE;
        let reports = self.partial[..whole]
            .chunks_exact(REPORT_SIZE)
            .filter_map(Report::decode)
            .collect();
        self.partial.drain(..whole);
        reports
    }

    /// Whether [`Child::drain`] found the report pipe at end of file: the child has exited (or
    /// is exiting: its descriptors are closed, its memory is gone), though `waitpid` may not
    /// report it for a moment yet.
    pub fn reports_closed(&self) -> bool {
        self.pipe_closed
    }

    /// The read end of the report pipe (non-blocking), for an event loop to wait on: it becomes
    /// readable at each report and at end of file, when the child exits.
    pub fn report_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.pipe.as_fd()
    }

    /// Reaps this child if it has ended (never `waitpid(-1)`: only our own pid).
    pub fn try_wait(&self) -> io::Result<Option<ChildExit>> {
        let mut status = 0;
        // SAFETY: waits for our own child only, without blocking.
        let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        if r == 0 {
            return Ok(None);
        }
        Ok(Some(classify(status)))
    }

    /// Blocks until the child ends. For tests and tools only: the server never blocks on
    /// `waitpid` (a child stuck in an fsync would stall it); it kills and lets its cron reap.
    pub fn wait(&self) -> io::Result<ChildExit> {
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child only.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r >= 0 {
                return Ok(classify(status));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Sends SIGKILL (BGSAVE CANCEL, FLUSHALL, SHUTDOWN), as Redis's `killRDBChild`.
    pub fn kill(&self) {
        // SAFETY: signals our own child's pid, which is not reaped yet so cannot be reused.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }
}

fn classify(status: i32) -> ChildExit {
    if libc::WIFSIGNALED(status) {
        ChildExit::Signaled(libc::WTERMSIG(status))
    } else {
        match libc::WEXITSTATUS(status) {
            0 => ChildExit::Ok,
            c => ChildExit::Failed(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn no_oom_adj() -> SpawnOptions {
        SpawnOptions {
            oom_score_adj: None,
            sample_interval: Duration::ZERO,
        }
    }

    /// A fresh empty directory under the system temp dir, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Scratch {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("forkdb-fork-{label}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }

        fn entries(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Polls `f` every 10 ms until it gives a value or `secs` pass.
    fn poll<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs the calling test again in a process of its own and returns false; in that process,
    /// returns true and the test does its work there.
    ///
    /// The tests that fork must not fork from the test harness's process: its other threads run
    /// other tests, and a lock one of them holds at the instant of `fork()` (the panic hook's
    /// while a test panics, stderr's while it prints) stays locked in the child for ever. That
    /// is the very hazard the server avoids by refusing to fork with more than one thread, and it
    /// hung this crate's tests once. The re-run uses `--test-threads=1`, so the only other thread
    /// is the harness's main thread, waiting for this test's result and holding nothing.
    fn in_own_process(test: &str) -> bool {
        const VAR: &str = "FORKDB_FORK_TEST";
        if std::env::var(VAR).as_deref() == Ok(test) {
            return true;
        }
        let exe = std::env::current_exe().unwrap();
        let mut child = std::process::Command::new(exe)
            .args(["--exact", test, "--test-threads=1", "--nocapture"])
            .env(VAR, test)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{test} in its own process did not end within 120 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        let mut err = String::new();
        use std::io::Read as _;
        let _ = child.stdout.take().unwrap().read_to_string(&mut out);
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        assert!(
            status.success() && out.contains("1 passed"),
            "{test} in its own process: {status}\n{out}\n{err}"
        );
        false
    }

    /// Forks a "server" process that runs `middle` and `_exit`s with what it returns; waits
    /// for it by pid and returns its exit status. The test thread forks (as the existing
    /// lifecycle test does); the middle process only forks again and writes files.
    fn run_middle(middle: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the middle process runs `middle` then `_exit`s; it never returns into the
        // test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(middle)).unwrap_or(99);
            // SAFETY: ends the middle process without running the harness's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child by pid.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid);
        assert!(libc::WIFEXITED(status), "middle process status {status}");
        libc::WEXITSTATUS(status)
    }

    fn proc_gone_or_zombie(pid: i32) -> bool {
        !procfs::alive(pid as u32)
    }

    #[test]
    fn report_round_trip() {
        let r = Report {
            kind: ReportKind::Done,
            keys: 7,
            cow_bytes: 4096,
            rss_bytes: 1 << 20,
            pss_bytes: 3 << 19,
            pss_anon_bytes: 1 << 19,
            elapsed_us: 99,
            step: None,
            errno: 0,
        };
        assert_eq!(Report::decode(&r.encode()), Some(r));
        assert_eq!(Report::decode(&[0u8; REPORT_SIZE]), None);
    }

    #[test]
    fn failure_report_encoding() {
        let r = Report {
            kind: ReportKind::Failed,
            keys: 12,
            cow_bytes: 0,
            rss_bytes: 0,
            pss_bytes: 0,
            pss_anon_bytes: 0,
            elapsed_us: 5,
            step: Some(Step::Write),
            errno: libc::ENOSPC,
        };
        let bytes = r.encode();
        assert_eq!(bytes.len(), REPORT_SIZE);
        assert_eq!(&bytes[4..8], &3u32.to_le_bytes(), "kind 3: failed");
        assert_eq!(&bytes[40..44], &Step::Write.code().to_le_bytes());
        assert_eq!(&bytes[44..48], &28i32.to_le_bytes(), "ENOSPC");
        assert_eq!(Report::decode(&bytes), Some(r));
        for step in [Step::Open, Step::Fsync, Step::Rename, Step::DirFsync] {
            let r = Report {
                step: Some(step),
                errno: libc::EIO,
                ..r
            };
            assert_eq!(Report::decode(&r.encode()), Some(r));
        }
        // An unknown step code or kind is not a report.
        let mut bad = bytes;
        bad[40..44].copy_from_slice(&99u32.to_le_bytes());
        assert_eq!(Report::decode(&bad), None);
        let mut bad = bytes;
        bad[4..8].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(Report::decode(&bad), None);
        // Short input is not a report either.
        assert_eq!(Report::decode(&bytes[..56]), None);
    }

    #[test]
    fn thread_count_sees_threads() {
        // This test process: the harness runs tests on threads of their own.
        assert!(thread_count().is_some_and(|n| n >= 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let before = thread_count().unwrap();
        let t = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        // Other tests start and end threads meanwhile: only "more than one" is certain.
        assert!(thread_count().unwrap() >= 2, "before: {before}");
        drop(tx);
        t.join().unwrap();
    }

    #[test]
    fn child_reports_and_exit_codes() {
        if !in_own_process("fork::tests::child_reports_and_exit_codes") {
            return;
        }
        // SAFETY: the test thread forks; the child only writes to the pipe and exits.
        let mut child = unsafe {
            spawn(no_oom_adj(), |r| {
                for _ in 0..128 {
                    r.key_done();
                }
                Ok(())
            })
        }
        .unwrap();
        let exit = child.wait().unwrap();
        assert_eq!(exit, ChildExit::Ok);
        let reports = child.drain();
        assert!(
            child.reports_closed(),
            "the pipe is at EOF once the child exited"
        );
        let last = reports.last().copied().unwrap();
        assert_eq!(last.kind, ReportKind::Done);
        assert_eq!(last.keys, 128);

        // SAFETY: as above.
        let mut failing = unsafe {
            spawn(SpawnOptions::default(), |r| {
                r.key_done();
                Err(SaveError {
                    step: Step::Fsync,
                    source: io::Error::from_raw_os_error(libc::EIO),
                })
            })
        }
        .unwrap();
        assert_eq!(failing.wait().unwrap(), ChildExit::Failed(EXIT_FAILED));
        let last = failing.drain().last().copied().unwrap();
        assert_eq!(last.kind, ReportKind::Failed);
        assert_eq!((last.step, last.errno), (Some(Step::Fsync), libc::EIO));
        assert_eq!(last.keys, 1);

        // SAFETY: as above; the child sleeps until killed.
        let sleeping = unsafe {
            spawn(SpawnOptions::default(), |_| {
                libc::sleep(30);
                Ok(())
            })
        }
        .unwrap();
        sleeping.kill();
        assert_eq!(sleeping.wait().unwrap(), ChildExit::Signaled(libc::SIGKILL));
    }

    #[test]
    fn child_closes_inherited_descriptors() {
        if !in_own_process("fork::tests::child_closes_inherited_descriptors") {
            return;
        }
        // Stand-ins for the server's listener and a client's socket.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let fds = [listener.as_raw_fd(), client.as_raw_fd()];
        // SAFETY: the child only calls fcntl and exits.
        let mut child = unsafe {
            spawn(no_oom_adj(), move |_| {
                for fd in fds {
                    if libc::fcntl(fd, libc::F_GETFD) != -1 {
                        return Err(SaveError {
                            step: Step::Open,
                            source: io::Error::from_raw_os_error(libc::EEXIST),
                        });
                    }
                }
                // stdin/out/err are kept.
                for fd in 0..3 {
                    if libc::fcntl(fd, libc::F_GETFD) == -1 {
                        return Err(SaveError {
                            step: Step::Open,
                            source: io::Error::from_raw_os_error(libc::EBADF),
                        });
                    }
                }
                Ok(())
            })
        }
        .unwrap();
        assert_eq!(child.wait().unwrap(), ChildExit::Ok, "{:?}", child.drain());
        // The report pipe was kept: the Done report arrived.
        assert_eq!(child.drain().last().map(|r| r.kind), Some(ReportKind::Done));
        // The parent's descriptors are untouched.
        assert!(listener.local_addr().is_ok());
        assert!(client.peer_addr().is_ok());
    }

    /// A diskless sync's child keeps the snapshot pipe's write end (and only it, of what the
    /// parent opened), writes the stream into it with `save_to_pipe`, and its end of file
    /// reaches the parent.
    #[test]
    fn child_keeps_the_snapshot_pipe() {
        if !in_own_process("fork::tests::child_keeps_the_snapshot_pipe") {
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let lfd = listener.as_raw_fd();
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills the array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both were just created; nothing else owns them.
        let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let (rd_fd, wr_fd) = (rd.as_raw_fd(), wr.as_raw_fd());
        // SAFETY: the child only calls fcntl and writes to the kept pipe.
        let mut child = unsafe {
            spawn_keeping(no_oom_adj(), Some(wr_fd), move |_| {
                if libc::fcntl(lfd, libc::F_GETFD) != -1 || libc::fcntl(rd_fd, libc::F_GETFD) != -1
                {
                    return Err(SaveError {
                        step: Step::Open,
                        source: io::Error::from_raw_os_error(libc::EEXIST),
                    });
                }
                let out = OwnedFd::from_raw_fd(wr_fd);
                crate::file::save_to_pipe(out, |w| io::Write::write_all(w, b"the stream"))
            })
        }
        .unwrap();
        drop(wr);
        let mut got = Vec::new();
        io::Read::read_to_end(&mut std::fs::File::from(rd), &mut got).unwrap();
        assert_eq!(child.wait().unwrap(), ChildExit::Ok, "{:?}", child.drain());
        assert_eq!(got, b"the stream");
        assert!(listener.local_addr().is_ok());
    }

    /// A child whose parent is killed dies with it (PR_SET_PDEATHSIG), instead of running on
    /// as an orphan.
    #[test]
    fn child_dies_with_its_parent() {
        if !in_own_process("fork::tests::child_dies_with_its_parent") {
            return;
        }
        let scratch = Scratch::new("pdeath");
        let pid_file = scratch.path().join("child.pid");
        let pid_file2 = pid_file.clone();
        let code = run_middle(move || {
            // SAFETY: the grandchild only sleeps (it is killed long before it wakes up).
            let child = unsafe {
                spawn(no_oom_adj(), |_| {
                    libc::sleep(30);
                    Ok(())
                })
            };
            let Ok(child) = child else { return 1 };
            if std::fs::write(&pid_file2, child.pid.to_string()).is_err() {
                return 2;
            }
            // The "server" dies without a word: no kill of its child, no wait.
            0
        });
        assert_eq!(code, 0);
        let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
        // The grandchild would sleep 30 s if it outlived its parent.
        poll(10, "the orphaned child to die", || {
            proc_gone_or_zombie(pid).then_some(())
        });
    }

    /// The check before the rename: a child whose parent died (here with PR_SET_PDEATHSIG
    /// cleared, as if the parent had died before the child could ask for it) removes its temp
    /// file and leaves the destination alone.
    #[test]
    fn orphan_never_renames() {
        if !in_own_process("fork::tests::orphan_never_renames") {
            return;
        }
        let scratch = Scratch::new("orphan");
        std::fs::write(
            scratch.path().join("dump.rdb"),
            b"newer, from a restarted server",
        )
        .unwrap();
        let dir = scratch.path().to_path_buf();
        let result_file = scratch.path().join("result");
        let result_file2 = result_file.clone();
        let code = run_middle(move || {
            // SAFETY: the grandchild waits for its parent to go, then runs the lifecycle and
            // writes one small file; it ends with _exit.
            let child = unsafe {
                spawn(no_oom_adj(), move |r| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, 0 as libc::c_ulong, 0, 0, 0);
                    // Tells the middle process it may die now.
                    r.maybe_sample();
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while r.parent_alive() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    let tmp = crate::file::TempName::for_pid(std::process::id());
                    let alive = r.parent_check();
                    let res = crate::file::save_atomically_checked(
                        &dir,
                        "dump.rdb".as_ref(),
                        tmp.as_os_str(),
                        alive,
                        |out| io::Write::write_all(out, b"older, from the orphan"),
                    );
                    let text = match &res {
                        Ok(()) => "renamed",
                        Err(e) => e.step.name(),
                    };
                    let _ = std::fs::write(&result_file2, text);
                    res
                })
            };
            let Ok(mut child) = child else { return 1 };
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.drain().is_empty() {
                if Instant::now() > deadline {
                    return 2;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            0
        });
        assert_eq!(code, 0);
        let result = poll(15, "the orphan's result", || {
            std::fs::read_to_string(&result_file)
                .ok()
                .filter(|s| !s.is_empty())
        });
        assert_eq!(result, "rename-refused");
        assert_eq!(
            std::fs::read(scratch.path().join("dump.rdb")).unwrap(),
            b"newer, from a restarted server"
        );
        assert_eq!(scratch.entries(), ["dump.rdb", "result"], "temp file left");
    }

    /// With the process hook installed, a panicking child writes one fixed line to stderr and
    /// exits with status 2.
    #[test]
    fn panicking_child_writes_one_line_and_exits_2() {
        if !in_own_process("fork::tests::panicking_child_writes_one_line_and_exits_2") {
            return;
        }
        let scratch = Scratch::new("panic");
        let err_file = scratch.path().join("stderr");
        let err_file2 = err_file.clone();
        let code = run_middle(move || {
            install_panic_hook();
            let Ok(f) = std::fs::File::create(&err_file2) else {
                return 100;
            };
            // SAFETY: points this (middle) process's stderr at the file; the child inherits it.
            unsafe { libc::dup2(f.as_raw_fd(), libc::STDERR_FILENO) };
            // SAFETY: the child panics at once; the hook _exits.
            let child = unsafe {
                spawn(no_oom_adj(), |r| {
                    if r.keys() == 0 {
                        panic!("a bug in the serializer");
                    }
                    Ok(())
                })
            };
            match child.map(|c| c.wait()) {
                Ok(Ok(ChildExit::Failed(code))) => code,
                _ => 101,
            }
        });
        assert_eq!(code, EXIT_PANIC);
        assert_eq!(std::fs::read(&err_file).unwrap(), CHILD_PANIC_LINE);
    }
}
