//! What `/proc` says about a process: its memory (`smaps_rollup`, or `smaps` summed), its
//! `stat` line (state, parent, page faults, threads), its children. The one reader of these
//! files for the whole workspace: the snapshot child (its progress reports), the server (the
//! thread check before `fork()`, the save timelines), `forkdb-cow` and the tests.
//!
//! # Allocation-free
//!
//! Paths are formatted on the stack and files are read through a stack buffer, line by line,
//! and parsed in place: nothing here allocates, except [`children`] (a directory walk, for the
//! tool and the tests only). The forked child must not allocate; the server must not either
//! while a child lives: every chunk malloc hands out then may sit on a page the child still
//! shares, and touching it copies the page, which is the very cost being measured (see
//! `docs/cow.md`, "(f)").
//!
//! # Which figures, and why
//!
//! - **Rss** counts every resident page a process maps, so right after `fork()` the parent and
//!   the child each show (nearly) the whole data set: adding their RSS double-counts shared
//!   pages.
//! - **Pss** divides each page by the number of processes mapping it, so `parent PSS + child
//!   PSS` is the physical memory the two really use together, each page once.
//! - **Pss_Anon** is PSS over anonymous pages only: the heap, where the data set and its copies
//!   live. File pages (the binary, libc) are never copied on write, and their PSS moves
//!   whenever another process maps the same file (a second server started from the same binary
//!   halves it), so totals leave them out where the kernel reports Pss_Anon (Linux 5.10+):
//!   see [`Basis`].
//! - The child's **Private_Dirty** is its copy-on-write cost, the figure Redis reports as
//!   `current_cow_size`: pages that stopped being shared because one side wrote to them (after
//!   a parent write the parent gets a fresh copy and the child's original becomes private to
//!   the child), plus the pages the child wrote itself (its stack, its buffers).
//! - A copy-on-write fault is a **minor fault** (`minflt` of `stat`). The parent's minor faults
//!   after the fork count its copies, but also its first touch of fresh memory.
//!
//! `smaps_rollup` (Linux 4.14+) sums `smaps` in the kernel; without it [`rollup`] sums `smaps`
//! itself (streamed through the same buffer). Without PSS at all, [`Basis::Rss`].

use std::ffi::CStr;

/// Memory figures of one process, in bytes: the fields of `smaps_rollup` anyone here uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollup {
    pub rss: u64,
    /// `None` when the kernel does not report PSS.
    pub pss: Option<u64>,
    /// `None` when the kernel does not report Pss_Anon (before 5.10, and in plain `smaps`).
    pub pss_anon: Option<u64>,
    /// `None` when the kernel does not report Pss_File.
    pub pss_file: Option<u64>,
    pub shared_clean: u64,
    pub shared_dirty: u64,
    pub private_clean: u64,
    pub private_dirty: u64,
    /// Anonymous resident memory (`Anonymous`).
    pub anonymous: u64,
    pub swap: u64,
}

impl Rollup {
    /// Adds one `Name:   N kB` line. `smaps` has one block of these per mapping, so every
    /// field is a sum (a rollup has each once).
    fn add_line(&mut self, line: &[u8]) {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return;
        };
        let (name, rest) = line.split_at(colon);
        let Some(bytes) = kb_field(&rest[1..]) else {
            return;
        };
        let add = |f: &mut u64| *f = f.saturating_add(bytes);
        let add_opt = |f: &mut Option<u64>| *f = Some(f.unwrap_or(0).saturating_add(bytes));
        match name {
            b"Rss" => add(&mut self.rss),
            b"Pss" => add_opt(&mut self.pss),
            b"Pss_Anon" => add_opt(&mut self.pss_anon),
            b"Pss_File" => add_opt(&mut self.pss_file),
            b"Shared_Clean" => add(&mut self.shared_clean),
            b"Shared_Dirty" => add(&mut self.shared_dirty),
            b"Private_Clean" => add(&mut self.private_clean),
            b"Private_Dirty" => add(&mut self.private_dirty),
            b"Anonymous" => add(&mut self.anonymous),
            b"Swap" => add(&mut self.swap),
            _ => {}
        }
    }
}

/// Parses `smaps_rollup` or `smaps` text held in memory (every field summed over the mappings).
pub fn parse_rollup(text: &[u8]) -> Rollup {
    let mut r = Rollup::default();
    for line in text.split(|&c| c == b'\n') {
        r.add_line(line);
    }
    r
}

/// This process's memory, from `/proc/self/smaps_rollup` (or `smaps`). Allocation-free.
pub fn self_rollup() -> Option<Rollup> {
    read_rollup(
        ProcPath::of_self("smaps_rollup")?,
        ProcPath::of_self("smaps")?,
    )
}

/// The bytes of a `/proc` field's value written as `<number> kB` (after the name's colon).
fn kb_field(value: &[u8]) -> Option<u64> {
    let mut words = value
        .split(|&c| c == b' ' || c == b'\t')
        .filter(|w| !w.is_empty());
    let (Some(num), Some(b"kB")) = (words.next(), words.next()) else {
        return None;
    };
    parse_u64(num).map(|kb| kb.saturating_mul(1024))
}

/// This process's memory from `/proc/self/status`: `VmRSS` as `rss`, `RssAnon` as `pss_anon`
/// (the same figure while no other process shares the anonymous pages: no fork child lives).
/// The kernel fills it from counters, where `smaps_rollup` walks every page table entry (10 ms
/// of CPU for a 512 MiB process): for sampling a forkless save on the server's own thread.
/// Allocation-free.
pub fn self_status_memory() -> Option<Rollup> {
    let mut r = Rollup::default();
    let path = ProcPath::of_self("status")?;
    let ok = for_each_line(path.as_cstr(), |line| {
        let (name, field) = if let Some(rest) = line.strip_prefix(b"VmRSS:") {
            (0, rest)
        } else if let Some(rest) = line.strip_prefix(b"RssAnon:") {
            (1, rest)
        } else {
            return;
        };
        if let Some(bytes) = kb_field(field) {
            match name {
                0 => r.rss = bytes,
                _ => r.pss_anon = Some(bytes),
            }
        }
    });
    ok.then_some(r)
}

/// Another local process's memory (the parent reading its child, the tool reading a server).
/// `None` if the process is gone. A zombie's rollup is empty: all zeros. Allocation-free.
pub fn rollup(pid: u32) -> Option<Rollup> {
    read_rollup(
        ProcPath::of(pid, "smaps_rollup")?,
        ProcPath::of(pid, "smaps")?,
    )
}

fn read_rollup(rollup_path: ProcPath, smaps_path: ProcPath) -> Option<Rollup> {
    let mut r = Rollup::default();
    if for_each_line(rollup_path.as_cstr(), |l| r.add_line(l)) {
        return Some(r);
    }
    // No rollup (before 4.14): sum smaps, if the process is there at all.
    let mut r = Rollup::default();
    for_each_line(smaps_path.as_cstr(), |l| r.add_line(l)).then_some(r)
}

/// The parts of `/proc/<pid>/stat` anyone here uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Field 3: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    /// Field 4.
    pub ppid: u32,
    /// Field 10: minor page faults of the whole process (all its threads). A copy-on-write
    /// fault is a minor fault.
    pub minflt: u64,
    /// Field 12: major page faults (a page read from disk).
    pub majflt: u64,
    /// Field 20.
    pub num_threads: u64,
    /// Field 22: start time in clock ticks after boot. With the pid it names one process, even
    /// if the pid is reused later.
    pub start_time: u64,
}

impl Stat {
    /// Exited (zombie or dead): its memory is gone even if the parent has not reaped it.
    pub fn exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses `pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt ...`.
/// `comm` may hold spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(text: &[u8]) -> Option<Stat> {
    let close = text.iter().rposition(|&c| c == b')')?;
    let mut fields = text[close + 1..]
        .split(|&c| c == b' ' || c == b'\n')
        .filter(|f| !f.is_empty());
    // Field N is the (N - 3)th after the ')'.
    let mut state = None;
    let mut nums = [0u64; 6];
    let wanted = [4usize, 10, 12, 20, 22];
    for n in 3..=22usize {
        let f = fields.next()?;
        if n == 3 {
            state = f.first().map(|&c| char::from(c));
        } else if let Some(i) = wanted.iter().position(|&w| w == n) {
            nums[i] = parse_u64(f)?;
        }
    }
    Some(Stat {
        state: state?,
        ppid: u32::try_from(nums[0]).ok()?,
        minflt: nums[1],
        majflt: nums[2],
        num_threads: nums[3],
        start_time: nums[4],
    })
}

/// `/proc/<pid>/stat`; `None` when there is no such process. Allocation-free.
pub fn stat(pid: u32) -> Option<Stat> {
    read_stat(ProcPath::of(pid, "stat")?)
}

/// `/proc/self/stat`. Allocation-free.
pub fn self_stat() -> Option<Stat> {
    read_stat(ProcPath::of_self("stat")?)
}

fn read_stat(path: ProcPath) -> Option<Stat> {
    // One line; `comm` is at most 64 bytes, the 52 numbers at most 20 digits each.
    let mut buf = [0u8; 2048];
    parse_stat(read_small_file(path.as_cstr(), &mut buf)?)
}

/// Is `pid` a process that has not exited?
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| !s.exited())
}

/// The live children of `pid`, sorted: from `/proc/<pid>/task/*/children` (every thread's
/// children), or, on kernels without that file, by scanning `/proc/*/stat` for the parent pid.
/// Allocates (a directory walk and the list): for the tool and the tests, not the server.
pub fn children(pid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    let mut have_children_files = false;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<u32>().ok())
            else {
                continue;
            };
            let Some(path) = ProcPath::format(format_args!("/proc/{pid}/task/{tid}/children"))
            else {
                continue;
            };
            let found = for_each_line(path.as_cstr(), |line| {
                pids.extend(
                    line.split(|&c| c == b' ')
                        .filter_map(parse_u64)
                        .filter_map(|p| u32::try_from(p).ok()),
                );
            });
            have_children_files |= found;
        }
    }
    if !have_children_files {
        if let Ok(entries) = std::fs::read_dir("/proc") {
            pids.extend(
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                    .filter(|&p| stat(p).is_some_and(|s| s.ppid == pid)),
            );
        }
    }
    pids.retain(|&p| alive(p));
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The size of a page (what one copy-on-write fault copies), from `sysconf`.
pub fn page_size() -> u64 {
    // SAFETY: sysconf with a valid name has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Which figure memory totals are made of: the best the kernel reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Anonymous PSS: parent + child counts each heap page once, file pages not at all.
    PssAnon,
    /// All of PSS: also the shares of file pages, which other processes can move.
    Pss,
    /// No PSS: parent RSS + the child's private pages.
    Rss,
}

impl Basis {
    /// The best basis `m` offers.
    pub fn of(m: &Rollup) -> Basis {
        if m.pss_anon.is_some() {
            Basis::PssAnon
        } else if m.pss.is_some() {
            Basis::Pss
        } else {
            Basis::Rss
        }
    }

    /// One process's memory on this basis (RSS where the figure is missing).
    pub fn single(self, m: &Rollup) -> u64 {
        match self {
            Basis::PssAnon => m.pss_anon,
            Basis::Pss => m.pss,
            Basis::Rss => None,
        }
        .unwrap_or(m.rss)
    }

    /// Parent and (if it lives) child together, shared pages counted once. Where the child
    /// lacks the figure (it exited between two reads), parent RSS + the child's private pages.
    pub fn pair(self, parent: &Rollup, child: Option<&Rollup>) -> u64 {
        let Some(c) = child else {
            return self.single(parent);
        };
        let proportional = match self {
            Basis::PssAnon => parent.pss_anon.zip(c.pss_anon),
            Basis::Pss => parent.pss.zip(c.pss),
            Basis::Rss => None,
        };
        match proportional {
            Some((p, c)) => p.saturating_add(c),
            None => parent
                .rss
                .saturating_add(c.private_dirty)
                .saturating_add(c.private_clean),
        }
    }

    /// The name in machine-readable outputs (`ratio_basis`, `total_basis`).
    pub fn name(self) -> &'static str {
        match self {
            Basis::PssAnon => "pss_anon",
            Basis::Pss => "pss",
            Basis::Rss => "rss",
        }
    }

    /// For tables and charts.
    pub fn label(self) -> &'static str {
        match self {
            Basis::PssAnon => "anon PSS",
            Basis::Pss => "PSS",
            Basis::Rss => "RSS",
        }
    }

    /// How a sample's total is made, for a chart's legend.
    pub fn total_label(self) -> &'static str {
        match self {
            Basis::PssAnon => "total (parent + child anon PSS)",
            Basis::Pss => "total (parent PSS + child PSS)",
            Basis::Rss => "total (parent RSS + child private)",
        }
    }
}

/// Reads a small file (a `/proc` one) into `buf` without allocating, and returns what was read
/// (cut at `buf`'s length). `std::fs::read_to_string` would do, but it grows a heap buffer: in
/// the parent during a save every chunk malloc then picks is a page the child may still share,
/// and in the child allocating is off limits.
pub fn read_small_file<'a>(path: &CStr, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let fd = Fd::open(path)?;
    let mut len = 0usize;
    while len < buf.len() {
        match fd.read(&mut buf[len..]) {
            Some(0) | None => break,
            Some(n) => len += n,
        }
    }
    Some(&buf[..len])
}

/// Calls `f` with each line of the file at `path` (without its `\n`), reading through a stack
/// buffer, so a file of any length (`smaps` of a large process) is read without allocating.
/// A line longer than the buffer is skipped. Returns false if the file cannot be opened.
pub fn for_each_line(path: &CStr, mut f: impl FnMut(&[u8])) -> bool {
    let Some(fd) = Fd::open(path) else {
        return false;
    };
    let mut buf = [0u8; 8192];
    // Bytes [0, have) hold the start of a line not yet complete.
    let mut have = 0usize;
    // Set while skipping the rest of a line that did not fit.
    let mut skipping = false;
    loop {
        let n = match fd.read(&mut buf[have..]) {
            Some(0) | None => break,
            Some(n) => n,
        };
        let end = have + n;
        let mut start = 0;
        while let Some(nl) = buf[start..end].iter().position(|&c| c == b'\n') {
            if !skipping {
                f(&buf[start..start + nl]);
            }
            skipping = false;
            start += nl + 1;
        }
        if start == 0 && end == buf.len() {
            // A line longer than the buffer: drop what we have of it and skip to its end.
            skipping = true;
            have = 0;
        } else {
            buf.copy_within(start..end, 0);
            have = end - start;
        }
    }
    if have > 0 && !skipping {
        f(&buf[..have]);
    }
    true
}

/// An open read-only descriptor, closed when dropped.
struct Fd(libc::c_int);

impl Fd {
    fn open(path: &CStr) -> Option<Fd> {
        // SAFETY: a valid NUL-terminated path; the descriptor is owned by the returned value.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        (fd >= 0).then_some(Fd(fd))
    }

    /// One `read(2)`, retried on EINTR; `None` on an error.
    fn read(&self, buf: &mut [u8]) -> Option<usize> {
        loop {
            // SAFETY: writes at most `buf.len()` bytes into `buf`.
            let n = unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Some(n as usize);
            }
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return None;
            }
        }
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor this value owns, once.
        unsafe { libc::close(self.0) };
    }
}

/// A `/proc` path formatted on the stack, NUL-terminated.
struct ProcPath {
    buf: [u8; 64],
    len: usize,
}

impl ProcPath {
    fn of(pid: u32, file: &str) -> Option<ProcPath> {
        Self::format(format_args!("/proc/{pid}/{file}"))
    }

    fn of_self(file: &str) -> Option<ProcPath> {
        Self::format(format_args!("/proc/self/{file}"))
    }

    fn format(args: std::fmt::Arguments<'_>) -> Option<ProcPath> {
        let mut p = ProcPath {
            buf: [0; 64],
            len: 0,
        };
        std::fmt::Write::write_fmt(&mut p, args).ok()?;
        // Room for the NUL, which the zeroed buffer already holds.
        (p.len < p.buf.len()).then_some(p)
    }

    fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf[..=self.len]).unwrap_or(c"")
    }
}

impl std::fmt::Write for ProcPath {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(std::fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Decimal digits only, without overflow.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &c| {
        c.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(c - b'0')))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/self/status` agrees with `smaps_rollup` for this process: RSS, and RssAnon with
    /// Pss_Anon (nothing shares this test process's anonymous pages), within what the two reads
    /// a moment apart may differ by.
    #[test]
    fn status_memory_agrees_with_the_rollup() {
        let status = self_status_memory().expect("/proc/self/status");
        let rollup = self_rollup().expect("/proc/self/smaps_rollup");
        assert!(
            status.rss > 0 && status.pss_anon.is_some_and(|a| a > 0),
            "{status:?}"
        );
        let near = |a: u64, b: u64| a.abs_diff(b) <= (b / 10).max(4 << 20);
        assert!(near(status.rss, rollup.rss), "{status:?} {rollup:?}");
        if let (Some(a), Some(b)) = (status.pss_anon, rollup.pss_anon) {
            assert!(near(a, b), "{status:?} {rollup:?}");
        }
    }

    #[test]
    fn rollup_fields() {
        let text = b"55d0-7ffd ---p 00000000 00:00 0 [rollup]\n\
                    Rss:               10240 kB\n\
                    Pss:                5120 kB\n\
                    Pss_Anon:           4096 kB\n\
                    Pss_File:           1024 kB\n\
                    Shared_Clean:        100 kB\n\
                    Shared_Dirty:       8000 kB\n\
                    Private_Clean:        40 kB\n\
                    Private_Dirty:      2100 kB\n\
                    Anonymous:          9000 kB\n\
                    Swap:                  0 kB\n\
                    THPeligible:    0\n";
        let m = parse_rollup(text);
        assert_eq!(m.rss, 10240 * 1024);
        assert_eq!(m.pss, Some(5120 * 1024));
        assert_eq!(m.pss_anon, Some(4096 * 1024));
        assert_eq!(m.pss_file, Some(1024 * 1024));
        assert_eq!(m.shared_clean, 100 * 1024);
        assert_eq!(m.shared_dirty, 8000 * 1024);
        assert_eq!(m.private_clean, 40 * 1024);
        assert_eq!(m.private_dirty, 2100 * 1024);
        assert_eq!(m.anonymous, 9000 * 1024);
        assert_eq!(parse_rollup(b"Rss: 4 kB\n").pss, None);
        // smaps: one block per mapping, summed.
        let smaps = b"Rss: 4 kB\nPss: 2 kB\nfoo bar\nRss: 8 kB\nPss: 8 kB\nRss: x kB\nRss: 9\n";
        let m = parse_rollup(smaps);
        assert_eq!((m.rss, m.pss), (12 * 1024, Some(10 * 1024)));
    }

    #[test]
    fn own_rollup_and_a_missing_process() {
        let me = self_rollup().unwrap();
        assert!(me.rss > 0 && me.private_dirty > 0, "{me:?}");
        assert!(rollup(std::process::id()).is_some_and(|r| r.rss > 0));
        // Pid 0 is never a process in /proc.
        assert_eq!(rollup(0), None);
        assert_eq!(stat(0), None);
    }

    #[test]
    fn stat_line() {
        let line =
            b"42 (a b) c)) S 7 42 42 0 -1 4194560 1234 0 56 0 1 2 0 0 20 0 3 0 99 1000 200\n";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 7);
        assert_eq!(s.minflt, 1234);
        assert_eq!(s.majflt, 56);
        assert_eq!(s.num_threads, 3);
        assert_eq!(s.start_time, 99);
        assert!(!s.exited());
        assert_eq!(parse_stat(b"4242 (x) S 1 2"), None);
        assert_eq!(parse_stat(b"no paren at all"), None);
        assert_eq!(
            parse_stat(b"1 (x) S 1 2 3 4 5 6 x 0 0 0 0 0 0 0 0 0 1 0 9"),
            None
        );
    }

    #[test]
    fn own_process_and_children() {
        let me = std::process::id();
        let s = self_stat().unwrap();
        assert!(s.minflt > 0 && s.num_threads >= 1);
        assert_eq!(stat(me).map(|s| s.start_time), Some(s.start_time));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(children(me).contains(&child.id()));
        assert!(alive(child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!children(me).contains(&child.id()));
    }

    #[test]
    fn long_lines_and_files_are_streamed() {
        let dir = std::env::temp_dir().join(format!("forkdb-procfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lines");
        let long = "x".repeat(20_000);
        let mut text = String::new();
        for i in 0..5000 {
            text.push_str(&format!("Rss: {i} kB\n"));
        }
        text.push_str(&long);
        text.push_str("\nPss: 7 kB");
        std::fs::write(&path, &text).unwrap();
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        let mut r = Rollup::default();
        let mut lines = 0;
        let opened = for_each_line(&c, |l| {
            lines += 1;
            r.add_line(l);
        });
        assert!(opened);
        assert_eq!(
            lines, 5001,
            "the long line is skipped, the last one without \\n kept"
        );
        assert_eq!(r.rss, (0..5000u64).sum::<u64>() * 1024);
        assert_eq!(r.pss, Some(7 * 1024));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn basis_pairs() {
        let mem = |rss, pss, anon, private_dirty| Rollup {
            rss,
            pss,
            pss_anon: anon,
            private_dirty,
            ..Rollup::default()
        };
        let parent = mem(100, Some(60), Some(50), 10);
        let child = mem(90, Some(40), Some(35), 20);
        assert_eq!(Basis::of(&parent), Basis::PssAnon);
        assert_eq!(Basis::PssAnon.pair(&parent, Some(&child)), 85);
        assert_eq!(Basis::PssAnon.pair(&parent, None), 50);
        assert_eq!(Basis::Pss.pair(&parent, Some(&child)), 100);
        assert_eq!(Basis::Rss.pair(&parent, Some(&child)), 120);
        // A child without the figure (it exited between reads): RSS basis for that sample.
        let bare = mem(90, None, None, 20);
        assert_eq!(Basis::PssAnon.pair(&parent, Some(&bare)), 120);
        assert_eq!(Basis::of(&mem(1, Some(1), None, 0)), Basis::Pss);
        assert_eq!(Basis::of(&bare), Basis::Rss);
        assert_eq!(Basis::PssAnon.name(), "pss_anon");
    }
}
