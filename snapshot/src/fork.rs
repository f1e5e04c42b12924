//! The fork and the child: how a snapshot process is made, what it reports, and how its
//! parent learns how it ended.
//!
//! ```text
//!   parent (the thread that owns the keyspace)          child (a copy of that thread only)
//!   -------------------------------------------         ----------------------------------
//!   pipe2(O_CLOEXEC)             report pipe
//!   fork() ------------------------------------------>  close(read end)
//!   close(write end)                                    oom_score_adj, SIGXFSZ ignored
//!   serve clients; every page it writes                 walk the keyspace it inherited,
//!   is copied by the kernel (copy-on-write)             as it was at the instant of fork()
//!                                    <-- Report ------  keys done, Private_Dirty (COW bytes)
//!   drain the pipe (non-blocking)                       ... (duty-cycled, ~1% of the save)
//!                                    <-- Report(Done)-  rename temp file, fsync
//!   waitpid(pid, WNOHANG): Ok / Failed / Signaled       _exit(code)
//! ```
//!
//! Rules for the child (see `shared/STYLE.md`, "fork() in a Rust server"): it only calls
//! `write(2)`, `open(2)`/`read(2)` on /proc, and the serializer; it never logs, never takes a lock
//! another thread could hold (the server is single-threaded, so none can be held), never returns
//! into the caller, and ends with `_exit`. A panic is caught and turned into exit code 2.
//!
//! The child does allocate (the writer's buffer, LZF state). That relies on glibc's malloc, whose
//! `fork()` handlers leave the allocator's locks usable in the child of a process whose other
//! threads might have held them; in forkdb no other thread touches the heap at fork time anyway.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// What a report says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// A progress sample during the save.
    Progress,
    /// The save is written and renamed into place.
    Done,
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
    /// Microseconds since the child started.
    pub elapsed_us: u64,
}

const REPORT_MAGIC: u32 = 0x666b_6462; // "fkdb"
/// Bytes of one report on the pipe: below PIPE_BUF, so each write is atomic.
pub const REPORT_SIZE: usize = 48;

impl Report {
    fn encode(&self) -> [u8; REPORT_SIZE] {
        let mut b = [0u8; REPORT_SIZE];
        b[0..4].copy_from_slice(&REPORT_MAGIC.to_le_bytes());
        let kind: u32 = match self.kind {
            ReportKind::Progress => 1,
            ReportKind::Done => 2,
        };
        b[4..8].copy_from_slice(&kind.to_le_bytes());
        b[8..16].copy_from_slice(&self.keys.to_le_bytes());
        b[16..24].copy_from_slice(&self.cow_bytes.to_le_bytes());
        b[24..32].copy_from_slice(&self.rss_bytes.to_le_bytes());
        b[32..40].copy_from_slice(&self.elapsed_us.to_le_bytes());
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
            _ => return None,
        };
        Some(Report {
            kind,
            keys: u64_at(8)?,
            cow_bytes: u64_at(16)?,
            rss_bytes: u64_at(24)?,
            elapsed_us: u64_at(32)?,
        })
    }
}

/// Memory figures of a process from `/proc/<pid>/smaps_rollup`, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemRollup {
    pub rss: u64,
    pub pss: u64,
    pub private_dirty: u64,
    pub shared_dirty: u64,
}

/// Reads `/proc/self/smaps_rollup` without allocating (usable in the child).
pub fn self_rollup() -> Option<MemRollup> {
    read_rollup(c"/proc/self/smaps_rollup")
}

/// Reads `/proc/<pid>/smaps_rollup` of another local process (the parent reading its child, or a
/// measuring tool reading a server).
pub fn pid_rollup(pid: i32) -> Option<MemRollup> {
    let mut path = [0u8; 64];
    let mut w = StackWriter {
        buf: &mut path,
        len: 0,
    };
    use std::fmt::Write as _;
    write!(w, "/proc/{pid}/smaps_rollup\0").ok()?;
    let cstr = std::ffi::CStr::from_bytes_until_nul(&path).ok()?;
    read_rollup(cstr)
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

fn read_rollup(path: &std::ffi::CStr) -> Option<MemRollup> {
    let mut buf = [0u8; 4096];
    read_small_file(path, &mut buf).map(parse_rollup)
}

/// Reads a small file (a `/proc` one) into `buf` without allocating, and returns what was read
/// (cut at `buf`'s length). `std::fs::read_to_string` would do, but it grows a heap buffer, and
/// in the parent during a save every chunk malloc then picks is a page the child may still
/// share: periodic reads of this kind were part of the copies seen on a save with no writes at
/// all. In the child, allocating is off limits anyway.
pub fn read_small_file<'a>(path: &std::ffi::CStr, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    // SAFETY: a valid NUL-terminated path; the fd is closed below on every path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut len = 0usize;
    loop {
        let room = buf.len() - len;
        if room == 0 {
            break;
        }
        // SAFETY: writes at most `room` bytes into the unused tail of `buf`.
        let n = unsafe { libc::read(fd, buf[len..].as_mut_ptr().cast(), room) };
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
    Some(&buf[..len])
}

/// Parses the `Name:   123 kB` lines of smaps_rollup.
pub fn parse_rollup(text: &[u8]) -> MemRollup {
    let mut r = MemRollup::default();
    for line in text.split(|&c| c == b'\n') {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let (name, rest) = line.split_at(colon);
        let mut kb: u64 = 0;
        for &c in rest.iter().skip(1) {
            if c.is_ascii_digit() {
                kb = kb.saturating_mul(10).saturating_add(u64::from(c - b'0'));
            } else if c != b' ' && c != b'\t' {
                break;
            }
        }
        let bytes = kb.saturating_mul(1024);
        match name {
            b"Rss" => r.rss = bytes,
            b"Pss" => r.pss = bytes,
            b"Private_Dirty" => r.private_dirty = bytes,
            b"Shared_Dirty" => r.shared_dirty = bytes,
            _ => {}
        }
    }
    r
}

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
}

impl Reporter {
    fn new(fd: RawFd, interval: Duration) -> Self {
        let now = Instant::now();
        Reporter {
            fd,
            started: now,
            interval,
            duty_cycle: 100,
            next_sample: now,
            keys: 0,
        }
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
        self.send(ReportKind::Progress);
        let cost = now.elapsed();
        // Wait at least `interval`, and long enough that sampling stays under 1/duty_cycle.
        let wait = self.interval.max(cost.saturating_mul(self.duty_cycle));
        self.next_sample = Instant::now() + wait;
    }

    fn send(&self, kind: ReportKind) {
        let mem = self_rollup().unwrap_or_default();
        let report = Report {
            kind,
            keys: self.keys,
            cow_bytes: mem.private_dirty,
            rss_bytes: mem.rss,
            elapsed_us: self.started.elapsed().as_micros() as u64,
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
    /// A non-zero exit code: the save failed (1: I/O error, 2: panic).
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

/// Forks. In the child, runs `body` (which returns whether it succeeded) and `_exit`s; it never
/// returns there. In the parent, returns the handle.
///
/// # Safety
/// The caller must be the only thread that can touch anything `body` uses, and must call this
/// at a point where no lock is held and no data structure is half-updated: the child gets a
/// copy of memory at this instant and only this thread.
pub unsafe fn spawn(
    options: SpawnOptions,
    body: impl FnOnce(&mut Reporter) -> bool,
) -> io::Result<Child> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the array; CLOEXEC so a later exec of anything does not inherit it.
    if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
        return Err(io::Error::last_os_error());
    }
    let (rd, wr) = (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]));
    let start = Instant::now();
    let pid = libc::fork();
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // Child. Nothing here may return to the caller.
        drop(rd);
        child_setup(options);
        let wr_fd = wr.as_raw_fd();
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut reporter = Reporter::new(wr_fd, options.sample_interval);
            let ok = body(&mut reporter);
            if ok {
                reporter.send(ReportKind::Done);
            }
            ok
        }));
        let code = match ok {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(_) => 2,
        };
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
    })
}

/// Child-side settings that must not fail the save.
fn child_setup(options: SpawnOptions) {
    // SAFETY: plain syscalls with valid arguments; failures are ignored on purpose.
    unsafe {
        // A full disk or RLIMIT_FSIZE must fail the write with EFBIG, not kill the child
        // before it can remove its temp file.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
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

    /// Blocks until the child ends (used at shutdown after killing it).
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

    #[test]
    fn report_round_trip() {
        let r = Report {
            kind: ReportKind::Done,
            keys: 7,
            cow_bytes: 4096,
            rss_bytes: 1 << 20,
            elapsed_us: 99,
        };
        assert_eq!(Report::decode(&r.encode()), Some(r));
        assert_eq!(Report::decode(&[0u8; REPORT_SIZE]), None);
    }

    #[test]
    fn rollup_parse() {
        let text = b"55d0-7ff [rollup]\nRss:    2048 kB\nPss:   1024 kB\nShared_Dirty:  4 kB\nPrivate_Dirty:   12 kB\n";
        let r = parse_rollup(text);
        assert_eq!(r.rss, 2048 * 1024);
        assert_eq!(r.pss, 1024 * 1024);
        assert_eq!(r.private_dirty, 12 * 1024);
        assert_eq!(r.shared_dirty, 4 * 1024);
        assert!(self_rollup().is_some_and(|r| r.rss > 0));
    }

    #[test]
    fn child_reports_and_exit_codes() {
        // SAFETY: the test thread forks; the child only writes to the pipe and exits.
        let mut child = unsafe {
            spawn(
                SpawnOptions {
                    oom_score_adj: None,
                    sample_interval: Duration::ZERO,
                },
                |r| {
                    for _ in 0..128 {
                        r.key_done();
                    }
                    true
                },
            )
        }
        .unwrap();
        let exit = child.wait().unwrap();
        assert_eq!(exit, ChildExit::Ok);
        let reports = child.drain();
        let last = reports.last().copied().unwrap();
        assert_eq!(last.kind, ReportKind::Done);
        assert_eq!(last.keys, 128);

        // SAFETY: as above.
        let failing = unsafe { spawn(SpawnOptions::default(), |_| false) }.unwrap();
        assert_eq!(failing.wait().unwrap(), ChildExit::Failed(1));

        // SAFETY: as above; the child sleeps until killed.
        let sleeping = unsafe {
            spawn(SpawnOptions::default(), |_| {
                libc::sleep(30);
                true
            })
        }
        .unwrap();
        sleeping.kill();
        assert_eq!(sleeping.wait().unwrap(), ChildExit::Signaled(libc::SIGKILL));
    }
}
