//! What `/proc` says about the server and its snapshot child: memory (`smaps_rollup`), state and
//! page faults (`stat`), and children.
//!
//! # Which figures, and why
//!
//! - **RSS** counts every resident page a process maps, so right after `fork()` the parent and the
//!   child each show (nearly) the whole data set: adding their RSS double-counts shared pages.
//! - **PSS** divides each page by the number of processes mapping it, so `parent PSS + child PSS`
//!   is the physical memory the two really use together, each page once.
//! - **Pss_Anon** is PSS over anonymous pages only: the heap, where the data set and its copies
//!   live. File pages (the binary, libc) are never copied on write, and their PSS moves whenever
//!   another process maps the same file (a second server started from the same binary halves
//!   it), so the totals leave them out where the kernel reports Pss_Anon (Linux 5.10+).
//! - The child's **Private_Dirty** is its copy-on-write cost: pages that stopped being shared
//!   because one side wrote to them (after a parent write, the parent gets a fresh copy and the
//!   child's original becomes private to the child). Redis measures COW the same way.
//!
//! `smaps_rollup` (Linux 4.14+) sums `smaps` in the kernel; without it the tool sums `smaps`
//! itself. Without PSS at all the caller falls back to RSS-based figures.

use std::fs;
use std::io;

/// Memory figures of one process, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mem {
    pub rss: u64,
    /// `None` when the kernel does not report PSS.
    pub pss: Option<u64>,
    /// `None` when the kernel does not report Pss_Anon (before 5.10; `smaps` without the rollup).
    pub pss_anon: Option<u64>,
    pub private_dirty: u64,
    pub private_clean: u64,
    pub shared_dirty: u64,
    pub shared_clean: u64,
}

/// Reads `/proc/<pid>/smaps_rollup`, or sums `/proc/<pid>/smaps` where there is no rollup.
/// A zombie or vanished process gives an error (or all zeros, for a zombie's empty rollup).
pub fn mem(pid: u32) -> io::Result<Mem> {
    match fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
        Ok(text) => Ok(parse_smaps(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound && proc_exists(pid) => {
            fs::read_to_string(format!("/proc/{pid}/smaps")).map(|t| parse_smaps(&t))
        }
        Err(e) => Err(e),
    }
}

fn proc_exists(pid: u32) -> bool {
    fs::metadata(format!("/proc/{pid}")).is_ok()
}

/// Sums the `Field:   N kB` lines of `smaps` / `smaps_rollup` text.
pub fn parse_smaps(text: &str) -> Mem {
    let mut m = Mem::default();
    let mut pss = None::<u64>;
    let mut pss_anon = None::<u64>;
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(num), Some("kB")) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(kb) = num.parse::<u64>() else {
            continue;
        };
        let bytes = kb * 1024;
        match name {
            "Rss" => m.rss += bytes,
            "Pss" => *pss.get_or_insert(0) += bytes,
            "Pss_Anon" => *pss_anon.get_or_insert(0) += bytes,
            "Private_Dirty" => m.private_dirty += bytes,
            "Private_Clean" => m.private_clean += bytes,
            "Shared_Dirty" => m.shared_dirty += bytes,
            "Shared_Clean" => m.shared_clean += bytes,
            _ => {}
        }
    }
    m.pss = pss;
    m.pss_anon = pss_anon;
    m
}

/// Which figure memory totals are made of: the best the kernel reports for the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
    pub fn of(m: &Mem) -> Basis {
        if m.pss_anon.is_some() {
            Basis::PssAnon
        } else if m.pss.is_some() {
            Basis::Pss
        } else {
            Basis::Rss
        }
    }

    /// One process's memory on this basis (RSS where the figure is missing).
    pub fn single(self, m: &Mem) -> u64 {
        match self {
            Basis::PssAnon => m.pss_anon,
            Basis::Pss => m.pss,
            Basis::Rss => None,
        }
        .unwrap_or(m.rss)
    }

    /// Parent and (if it lives) child together, shared pages counted once.
    pub fn pair(self, parent: &Mem, child: Option<&Mem>) -> u64 {
        let Some(c) = child else {
            return self.single(parent);
        };
        let proportional = match self {
            Basis::PssAnon => parent.pss_anon.zip(c.pss_anon),
            Basis::Pss => parent.pss.zip(c.pss),
            Basis::Rss => None,
        };
        match proportional {
            Some((p, c)) => p + c,
            None => parent.rss + c.private_dirty + c.private_clean,
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

/// The parts of `/proc/<pid>/stat` the tool uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub ppid: u32,
    /// Field 10: minor page faults of the whole process (all its threads). A copy-on-write
    /// fault is a minor fault.
    pub minflt: u64,
}

impl Stat {
    /// Exited (zombie or dead): its memory is gone even if the parent has not reaped it.
    pub fn exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/<pid>/stat`; `None` when there is no such process.
pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses `pid (comm) state ppid pgrp session tty tpgid flags minflt ...`. `comm` may hold
/// spaces and parentheses, so the fields are counted after the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state), so field N is f[N - 3].
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        minflt: f.get(7)?.parse().ok()?,
    })
}

/// Is `pid` a process that has not exited?
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| !s.exited())
}

/// The live children of `pid`: from `/proc/<pid>/task/*/children` (every thread's children), or,
/// on kernels without that file, by scanning `/proc/*/stat` for the parent pid.
pub fn children(pid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    let mut have_children_files = false;
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = fs::read_to_string(task.path().join("children")) {
                have_children_files = true;
                pids.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
    }
    if !have_children_files {
        if let Ok(entries) = fs::read_dir("/proc") {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaps_rollup() {
        let text = "55d0-7ffd ---p 00000000 00:00 0 [rollup]\n\
                    Rss:               10240 kB\n\
                    Pss:                5120 kB\n\
                    Pss_Anon:           4096 kB\n\
                    Shared_Clean:        100 kB\n\
                    Shared_Dirty:       8000 kB\n\
                    Private_Clean:        40 kB\n\
                    Private_Dirty:      2100 kB\n\
                    THPeligible:    0\n";
        let m = parse_smaps(text);
        assert_eq!(m.rss, 10240 * 1024);
        assert_eq!(m.pss, Some(5120 * 1024));
        assert_eq!(m.private_dirty, 2100 * 1024);
        assert_eq!(m.shared_dirty, 8000 * 1024);
        assert_eq!(m.pss_anon, Some(4096 * 1024));
        assert_eq!(parse_smaps("Rss: 4 kB\n").pss, None);
    }

    #[test]
    fn basis_pairs() {
        let mem = |rss, pss, anon, private_dirty| Mem {
            rss,
            pss,
            pss_anon: anon,
            private_dirty,
            ..Mem::default()
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
    }

    #[test]
    fn stat_line() {
        let s = parse_stat("42 (a b) c)) S 7 42 42 0 -1 4194560 1234 0 0 0 1 2 0 0 20 0 1 0 99")
            .unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 7);
        assert_eq!(s.minflt, 1234);
    }

    #[test]
    fn own_process() {
        let me = std::process::id();
        let m = mem(me).unwrap();
        assert!(m.rss > 0);
        let s = stat(me).unwrap();
        assert!(s.minflt > 0);
        assert!(!s.exited());
        let child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(children(me).contains(&child.id()));
        let mut child = child;
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
