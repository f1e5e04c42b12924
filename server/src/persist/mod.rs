//! Persistence: loading the RDB file at start-up and writing it (SAVE, SHUTDOWN, FLUSHALL).
//!
//! The format and the file lifecycle live in the `forkdb-snapshot` crate; this module walks the
//! keyspace into it and keeps the state INFO's persistence section reports. A background save
//! takes one of two methods (`bgsave-default-method`, `BGSAVE FORK|FORKLESS`): a forked child
//! (here) or a writer thread fed by the keyspace's own walk (`forkless.rs`).

mod forkless;

pub use forkless::{driver as forkless_driver, ForklessRun, Queue as ForklessQueue};

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use forkdb_snapshot::fork::{self, ChildExit, ReportKind, SpawnOptions};
use forkdb_snapshot::{self as snap, AuxFields, RdbWriter, SaveError, SaveOptions, Step};
use tracing::{info, warn};

use crate::config::SaveMethod;
use crate::server::Server;
use crate::store::{Keyspace, Value};
use crate::util::now_ms;

/// Redis waits this long after a failed background save before a save point may try again.
const BGSAVE_RETRY_DELAY: Duration = Duration::from_secs(5);

/// How long SHUTDOWN polls for a killed child to be reaped before it removes the child's temp
/// file and exits anyway (a SIGKILLed child is normally gone within a millisecond).
const EXIT_REAP_WAIT: Duration = Duration::from_millis(200);

/// The running background save, as the parent sees it.
pub struct Running {
    pub child: fork::Child,
    pub keys_total: u64,
    pub keys_processed: u64,
    pub cow_size: u64,
    pub cow_peak: u64,
    pub cow_updated: Instant,
    cow_sum: u64,
    cow_samples: u64,
    /// `dirty` at the fork: what the save covers.
    dirty_before: u64,
    /// The server killed it on purpose (BGSAVE CANCEL, FLUSHALL, SHUTDOWN): not a failure. It
    /// stays here, and a save stays "in progress", until the cron reaps it, as in Redis 7.
    killed_by_us: bool,
    /// The step and errno of the child's failure report, if it sent one.
    failure: Option<(Step, i32)>,
    /// A diskless sync's child: it writes into a pipe the replication relays, not a file.
    to_socket: bool,
    /// The child's latest report: its memory as it exits, for the timeline's last sample.
    last_report: Option<fork::Report>,
}

impl Running {
    /// Takes in every report waiting on the child's pipe.
    fn absorb_reports(&mut self) {
        for r in self.child.drain() {
            if r.kind == ReportKind::Failed {
                self.failure = r.step.map(|step| (step, r.errno));
            }
            self.keys_processed = r.keys;
            self.cow_size = r.cow_bytes;
            self.cow_peak = self.cow_peak.max(r.cow_bytes);
            self.cow_updated = Instant::now();
            self.cow_sum += r.cow_bytes;
            self.cow_samples += 1;
            self.last_report = Some(r);
        }
    }
}

/// What INFO persistence reports about saves.
pub struct SaveState {
    /// `rdb_last_bgsave_status`: the last save (foreground or background) succeeded.
    pub last_save_ok: bool,
    pub rdb_saves: u64,
    pub last_bgsave_time_sec: i64,
    /// A load is under way: commands without the `loading` flag get `-LOADING` (see `load`).
    pub loading: bool,
    /// INFO's `loading_*` fields, meaningful while `loading`.
    pub load_progress: crate::load::LoadProgress,
    /// The function libraries of the loaded file, as their FUNCTION2 payloads: every save writes
    /// them back (see `load::Server::finish_loading` for why they are kept). A fork child only
    /// reads these bytes, which the parent already has.
    pub functions: Vec<bytes::Bytes>,
    pub last_load_keys_loaded: u64,
    pub last_load_keys_expired: u64,
    pub running: Option<Running>,
    pub bgsave_scheduled: bool,
    /// The method a scheduled save was asked for (None: `bgsave-default-method`).
    pub scheduled_method: Option<SaveMethod>,
    pub last_bgsave_try: Option<Instant>,
    /// Peak COW of the last background save (`rdb_last_cow_size`).
    pub last_cow_size: u64,
    pub latest_fork_usec: u64,
    pub total_forks: u64,
    /// DEBUG SET-FORK-ERROR: make the next fork fail with this errno (tests of the failure path).
    pub inject_fork_errno: Option<i32>,
    /// The running forkless save.
    pub forkless: Option<ForklessRun>,
    /// Wakes the forkless save's driver task when a save starts.
    pub forkless_notify: std::rc::Rc<tokio::sync::Notify>,
    /// The method of the last background save that ended.
    pub last_method: Option<SaveMethod>,
}

impl Default for SaveState {
    fn default() -> Self {
        SaveState {
            last_save_ok: true,
            rdb_saves: 0,
            last_bgsave_time_sec: -1,
            loading: false,
            load_progress: crate::load::LoadProgress::default(),
            functions: Vec::new(),
            last_load_keys_loaded: 0,
            last_load_keys_expired: 0,
            running: None,
            bgsave_scheduled: false,
            scheduled_method: None,
            last_bgsave_try: None,
            last_cow_size: 0,
            latest_fork_usec: 0,
            total_forks: 0,
            inject_fork_errno: None,
            forkless: None,
            forkless_notify: Default::default(),
            last_method: None,
        }
    }
}

/// Writes the function libraries, then every database of `ks`, as an RDB stream into `out`,
/// calling `after_key` with each value once it is written (the child reports progress and gives
/// pages back there; both saves sleep `rdb-key-save-delay` there).
pub fn write_rdb<W: io::Write>(
    ks: &Keyspace,
    functions: &[bytes::Bytes],
    options: SaveOptions,
    used_mem: u64,
    out: W,
    mut after_key: impl FnMut(&Value),
) -> io::Result<W> {
    let mut aux = AuxFields::new(crate::REDIS_VERSION);
    aux.used_mem = used_mem;
    let mut w = RdbWriter::new(out, options, &aux)?;
    for code in functions {
        w.function(code)?;
    }
    for (i, db) in ks.databases() {
        if db.is_empty() {
            continue;
        }
        w.select_db(i as u32, db.len() as u64, db.expires_len() as u64)?;
        for (key, value, expire) in db.iter() {
            write_value(&mut w, key, value, expire)?;
            after_key(value);
        }
    }
    w.finish()
}

/// Writes one key's record. Every value by reference: in the fork child a copy would dirty
/// pages it shares with the parent. The forkless writer thread writes its owned copies through
/// this same function, so both methods make the same records.
pub fn write_value<W: io::Write>(
    w: &mut RdbWriter<W>,
    key: &[u8],
    value: &Value,
    expire: Option<i64>,
) -> io::Result<()> {
    match value {
        Value::Str { data, .. } => w.record_string(key, data, expire),
        Value::Hash(h) => match (h.as_listpack(), h.table_pairs()) {
            (Some(lp), _) => w.record_hash_listpack(key, lp, expire),
            (None, Some(pairs)) => w.record_hash(key, pairs, expire),
            (None, None) => unreachable_form(value),
        },
        Value::Set(s) => match (s.as_intset(), s.table_members()) {
            (Some(is), _) => w.record_set_intset(key, is, expire),
            (None, Some(members)) => w.record_set(key, members, expire),
            (None, None) => unreachable_form(value),
        },
        Value::ZSet(z) => match (z.as_listpack(), z.big_rdb()) {
            (Some(lp), _) => w.record_zset_listpack(key, lp, expire),
            (None, Some(members)) => w.record_zset2(key, members, expire),
            (None, None) => unreachable_form(value),
        },
        Value::List(l) => {
            use crate::types::list::NodeRef;
            let nodes = l.nodes().map(|n| match n {
                NodeRef::Packed(lp) => snap::QuicklistNode::Packed(lp),
                NodeRef::Plain(e) => snap::QuicklistNode::Plain(e),
            });
            w.record_list_quicklist2(key, nodes, expire)
        }
    }
}

/// A value the RDB writer has no record form for: an error that fails the save, never a key
/// silently left out of the file.
fn unreachable_form(value: &Value) -> io::Result<()> {
    Err(io::Error::other(format!(
        "a {} value ({}) cannot be written to an RDB file yet",
        value.type_name(),
        value.encoding_name()
    )))
}

/// `rdb-key-save-delay` as a sleep after each key, when positive.
fn key_delay(us: i64) -> Option<Duration> {
    (us > 0).then(|| Duration::from_micros(us as u64))
}

/// What the child needs, prepared in the parent before `fork()`.
struct ChildJob {
    dir: PathBuf,
    dbfilename: String,
    options: SaveOptions,
    used_mem: u64,
    /// The function libraries to write back (handles to the parent's bytes, taken before fork).
    functions: Vec<bytes::Bytes>,
    /// Microseconds to sleep after each key (`rdb-key-save-delay`, a testing knob as in Redis).
    key_delay_us: i64,
    /// `snapshot-child-release`: give back the pages of values already written.
    release: bool,
    /// A diskless sync: the write end of the pipe to write into instead of the file (kept open
    /// in the child by `fork::spawn_keeping`).
    pipe: Option<std::os::fd::RawFd>,
}

/// Gives back to the kernel the whole pages inside a value, in the child, once written (Redis 7
/// does this with `dismissObject`). Those pages stop being shared with the parent, so the
/// parent's next write to them is a plain write, not a copy. Only whole pages strictly inside
/// the value are released (values of a page or more are page-aligned, see `strbuf`): the
/// allocator's headers around it are never touched, and the child never reads the value again.
fn release_pages(data: &crate::store::Str) {
    if let Some((start, len)) = data.releasable_pages() {
        // SAFETY: [start, start+len) lies inside the value's buffer, which this process (the
        // child) owns and never reads again; MADV_DONTNEED on private anonymous memory only
        // drops our copy of it.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    }
}

/// The child's whole life: write the keyspace it inherited to `temp-<pid>.rdb`, rename it into
/// place if its parent is still there. Runs only in the forked child; see
/// `forkdb_snapshot::fork` for the rules it obeys. Nothing here allocates before the
/// serializer: the name is formatted on the stack (Redis's `temp-<child pid>.rdb`, which the
/// parent removes after a killed child), the rest was prepared in the parent (`ChildJob`).
fn child_save(
    ks: &Keyspace,
    job: &ChildJob,
    reporter: &mut fork::Reporter,
) -> Result<(), SaveError> {
    if let Some(fd) = job.pipe {
        // SAFETY: the pipe's write end, left open in this child for it alone
        // (`spawn_keeping`); closed once, by `save_to_pipe`.
        let out = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        return snap::save_to_pipe(out, |out| child_write(ks, job, reporter, out));
    }
    let tmp = snap::TempName::for_pid(std::process::id());
    // An orphan (the server was killed and maybe restarted) must not put this older snapshot
    // over a file saved since: asked right before the rename.
    let parent_alive = reporter.parent_check();
    let dbfilename: &std::ffi::OsStr = job.dbfilename.as_ref();
    snap::save_atomically_checked(&job.dir, dbfilename, tmp.as_os_str(), parent_alive, |out| {
        child_write(ks, job, reporter, out)
    })
}

/// The child's serializer, into the temp file or a diskless sync's pipe: after each key it
/// reports progress, gives back the pages of a string it has written, and sleeps
/// `rdb-key-save-delay`.
fn child_write<W: io::Write>(
    ks: &Keyspace,
    job: &ChildJob,
    reporter: &mut fork::Reporter,
    out: W,
) -> io::Result<()> {
    let delay = key_delay(job.key_delay_us);
    let after_key = |value: &Value| {
        // Only a string's own buffer is released: a container's pages hold allocator
        // metadata of other allocations too (see `release_pages`).
        if let (true, Value::Str { data, .. }) = (job.release, value) {
            release_pages(data);
        }
        reporter.key_done();
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
    };
    write_rdb(
        ks,
        &job.functions,
        job.options,
        job.used_mem,
        out,
        after_key,
    )
    .map(|_| ())
}

/// `strerror(errno)`: the text Redis puts in its log lines (io::Error's Display adds
/// " (os error N)").
pub fn strerror(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The line Redis 7.0's `rdbSave` logs for a save that failed at `step` (in the child, in
/// Redis; forkdb's child does not log, so the parent writes it from the child's report).
pub fn save_error_line(
    step: Step,
    errno: i32,
    dir: &std::path::Path,
    tmp: &str,
    dbfile: &str,
) -> String {
    let err = strerror(errno);
    let dir = dir.display();
    match step {
        Step::Open => format!(
            "Failed opening the temp RDB file {tmp} (in server root dir {dir}) for saving: {err}"
        ),
        Step::Rename => format!(
            "Error moving temp DB file {tmp} on the final destination {dbfile} (in server root dir {dir}): {err}"
        ),
        Step::RenameRefused => format!(
            "Not moving temp DB file {tmp} on the final destination {dbfile}: the server that started the save is gone"
        ),
        // Redis's `err_op` names for the other steps.
        Step::Write => format!("Write error saving DB on disk(rdbSaveRio): {err}"),
        Step::Flush => format!("Write error saving DB on disk(fflush): {err}"),
        Step::Fsync => format!("Write error saving DB on disk(fsync): {err}"),
        Step::Close => format!("Write error saving DB on disk(fclose): {err}"),
        Step::DirFsync => format!("Write error saving DB on disk(fsyncFileDir): {err}"),
    }
}

impl Server {
    pub fn child_active(&self) -> bool {
        self.persist.running.is_some()
    }

    /// A background save with `bgsave-default-method` (save points, BGSAVE SCHEDULE, plain
    /// BGSAVE).
    pub fn bgsave_start(&mut self) -> Result<(), String> {
        self.bgsave_start_with(self.config.bgsave_default_method)
    }

    /// A background save with the given method.
    pub fn bgsave_start_with(&mut self, method: SaveMethod) -> Result<(), String> {
        match method {
            SaveMethod::Fork => self.bgsave_fork_start(None),
            SaveMethod::Forkless => self.bgsave_forkless_start(),
        }
    }

    /// A background save with `bgsave-default-method` into a pipe instead of the file, for a
    /// diskless sync (Redis's `rdbSaveToSlavesSockets`): returns the pipe's read end,
    /// non-blocking, which gives the RDB stream and then end of file. How the save ended
    /// (whether the stream is whole) comes as for any save, through `repl::bgsave_done`.
    pub fn bgsave_start_to_pipe(&mut self) -> Result<std::os::fd::OwnedFd, String> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills the array; the result is checked. CLOEXEC: an exec'd program
        // must not hold the write end (the reader would never see end of file).
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            let e = io::Error::last_os_error();
            return Err(format!("Can't save in background: pipe: {e}"));
        }
        // SAFETY: both descriptors were just created and nothing else owns them.
        let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on our own descriptor. The event loop reads it without blocking.
        unsafe {
            let flags = libc::fcntl(rd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(rd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        // Only a fork child writes into a pipe: a forkless save of a diskless sync writes to
        // the replicas' sockets itself (`repl::diskless`).
        self.bgsave_fork_start(Some(wr))?;
        Ok(rd)
    }

    /// BGSAVE FORK: forks a child that writes the keyspace as it is at this instant.
    ///
    /// Called from a command handler, i.e. on the thread that owns the keyspace, between two
    /// commands: no mutation is half done and no lock is held, which is what makes the fork safe.
    fn bgsave_fork_start(&mut self, pipe: Option<std::os::fd::OwnedFd>) -> Result<(), String> {
        use std::os::fd::AsRawFd;
        if self.save_in_progress() {
            return Err("Background save already in progress".into());
        }
        // fork() copies only this thread: a lock another thread holds (malloc's, stdout's, a
        // Mutex) would stay locked forever in the child. Checked before every fork.
        // The last save's sampler thread, stopped but perhaps not gone yet.
        self.timelines.reap_sampler(true);
        match fork::thread_count() {
            Some(1) => {}
            Some(n) => {
                self.persist.last_save_ok = false;
                self.persist.last_bgsave_try = Some(Instant::now());
                let msg = format!(
                    "Can't save in background: refusing to fork: the process has {n} threads (fork needs exactly 1)"
                );
                warn!("{msg}");
                return Err(msg);
            }
            // No /proc: nothing to check against; the server starts no threads of its own.
            None => {}
        }
        let job = ChildJob {
            dir: self.config.dir.clone(),
            dbfilename: self.config.dbfilename.clone(),
            options: self.save_options(),
            used_mem: crate::alloc::used_memory() as u64,
            functions: self.persist.functions.clone(),
            key_delay_us: self.config.rdb_key_save_delay,
            release: self.config.snapshot_child_release,
            pipe: pipe.as_ref().map(|p| p.as_raw_fd()),
        };
        let options = SpawnOptions {
            oom_score_adj: Some(self.config.oom_score_adj_values[2]),
            sample_interval: Duration::from_millis(100),
        };
        self.persist.last_bgsave_try = Some(Instant::now());
        if self.config.snapshot_headroom {
            self.ks.reserve_headroom();
        }
        // Before the fork: the fork's own copies (the parent's first writes after it) count.
        let minflt_before_fork = crate::timeline::own_minor_faults();
        let ks = &self.ks;
        let result = match self.persist.inject_fork_errno.take() {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            // SAFETY: this is the only thread (see the crate docs), and we are between commands.
            None => unsafe {
                fork::spawn_keeping(options, job.pipe, |reporter| child_save(ks, &job, reporter))
            },
        };
        // The parent's copy of the write end: closed, so that the child's end (or its exit)
        // is what ends the stream.
        drop(pipe);
        match result {
            Ok(child) => {
                // Redis counts a save when it starts (`rdb_saves`), whether or not it succeeds.
                self.persist.rdb_saves += 1;
                self.persist.latest_fork_usec = child.fork_usec;
                crate::diag::record_event(self, "fork", child.fork_usec / 1000);
                self.persist.total_forks += 1;
                info!(
                    fork_usec = child.fork_usec,
                    "Background saving started by pid {}", child.pid
                );
                self.persist.running = Some(Running {
                    child,
                    keys_total: self.ks.total_keys() as u64,
                    keys_processed: 0,
                    cow_size: 0,
                    cow_peak: 0,
                    cow_updated: Instant::now(),
                    cow_sum: 0,
                    cow_samples: 0,
                    dirty_before: self.ks.dirty,
                    killed_by_us: false,
                    failure: None,
                    last_report: None,
                    to_socket: job.pipe.is_some(),
                });
                self.persist.bgsave_scheduled = false;
                self.ks.access_frozen = self.config.snapshot_freeze_access;
                // Small lists and sorted sets move on their first write instead of dirtying
                // shared pages, small hashes and intsets are forwarded to a copy.
                crate::types::fork_save_started(self.ks.total_keys());
                let run = self
                    .persist
                    .running
                    .as_ref()
                    .map(|r| (r.child.pid, r.keys_total));
                if let Some((pid, keys_total)) = run {
                    self.timelines.begin(
                        pid,
                        self.persist.latest_fork_usec,
                        keys_total,
                        job.used_mem,
                        self.stats.write_commands,
                        minflt_before_fork,
                    );
                    self.timelines.sample(0, self.stats.write_commands);
                    self.timeline_notify.notify_one();
                }
                Ok(())
            }
            Err(e) => {
                self.persist.last_save_ok = false;
                warn!(cause = %e, "Can't save in background: fork");
                Err(format!("Can't save in background: fork: {e}"))
            }
        }
    }

    /// BGSAVE CANCEL. Returns the status reply, or None if there was nothing to cancel.
    pub fn bgsave_cancel(&mut self) -> Option<&'static str> {
        if self.save_in_progress() {
            self.kill_child();
            self.forkless_cancel();
            Some("Background saving cancelled")
        } else if self.persist.bgsave_scheduled {
            self.persist.bgsave_scheduled = false;
            Some("Scheduled background saving cancelled")
        } else {
            None
        }
    }

    /// Kills the running child (Redis's `killRDBChild`). Never waits for it: a child in
    /// uninterruptible sleep (an fsync on a slow disk) would stall the server. The cron's
    /// `WNOHANG` poll reaps it and removes its temp file ([`Server::bgsave_done`]); until then
    /// the save is still in progress (INFO `rdb_bgsave_in_progress:1`, BGSAVE and SAVE answer
    /// "Background save already in progress"), as in Redis 7.0.
    pub fn kill_child(&mut self) {
        let Some(run) = self.persist.running.as_mut() else {
            return;
        };
        if !run.killed_by_us {
            run.killed_by_us = true;
            run.child.kill();
        }
    }

    /// SHUTDOWN's end of a running save (Redis's `prepareForShutdown`): kill the child and
    /// remove its temp file now, since the process exits before the cron could reap it.
    ///
    /// The child is given up to [`EXIT_REAP_WAIT`] to be reaped (non-blocking polls): one
    /// killed while creating its temp file could otherwise create it after the removal. A
    /// child that is not gone by then (stuck in an fsync) has its file removed anyway, and
    /// dies with the server (`PR_SET_PDEATHSIG`).
    fn kill_child_at_exit(&mut self) {
        self.kill_child();
        let deadline = Instant::now() + EXIT_REAP_WAIT;
        while let Some(run) = self.persist.running.as_ref() {
            match run.child.try_wait() {
                Ok(Some(exit)) => self.bgsave_done(exit),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(None) | Err(_) => {
                    let pid = run.child.pid;
                    self.remove_temp_file_of(pid);
                    break;
                }
            }
        }
    }

    /// Removes `temp-<pid>.rdb` of a child that did not finish (Redis's `rdbRemoveTempFile`).
    fn remove_temp_file_of(&self, pid: i32) {
        self.remove_temp_file(&snap::temp_file_name(pid as u32));
    }

    /// Removes the temp file `name` of a save that did not finish, if it is there.
    fn remove_temp_file(&self, name: &str) {
        let tmp = self.config.dir.join(name);
        match std::fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => warn!(cause = %e, file = %tmp.display(), "Can't remove the temp RDB file"),
        }
    }

    /// A timeline sample of the running save (called by the sampler task).
    pub fn sample_timeline(&mut self) {
        // Fresh child reports first, so the sample's key count is current.
        self.drain_child_reports();
        let keys = self
            .persist
            .running
            .as_ref()
            .map_or(0, |r| r.keys_processed);
        self.timelines.sample(keys, self.stats.write_commands);
    }

    fn drain_child_reports(&mut self) {
        if let Some(run) = self.persist.running.as_mut() {
            run.absorb_reports();
        }
    }

    /// The running child's pid and a second handle on its report pipe, which becomes readable
    /// at each report and at end of file, when the child exits (the timeline sampler waits on
    /// it, to take the last sample as the child ends).
    pub fn snapshot_report_fd(&self) -> Option<(i32, std::os::fd::OwnedFd)> {
        let run = self.persist.running.as_ref()?;
        let fd = run.child.report_fd().try_clone_to_owned().ok()?;
        Some((run.child.pid, fd))
    }

    /// The pid of the running snapshot child.
    pub fn snapshot_child_pid(&self) -> Option<i32> {
        self.persist.running.as_ref().map(|r| r.child.pid)
    }

    /// The child's report pipe is readable: takes in its reports, and if the pipe is at end of
    /// file (the child has exited), takes the timeline's last sample and reaps the child if
    /// `waitpid` already reports it (else the cron does). Returns whether the child has ended.
    pub fn snapshot_pipe_event(&mut self) -> bool {
        self.poll_child();
        self.persist
            .running
            .as_ref()
            .is_none_or(|r| r.child.reports_closed())
    }

    /// The timeline's last sample, once the child has exited: the parent's figures, faults and
    /// write count now, the child's from its last report. Taken once, before the reap clears
    /// the running save's state.
    fn sample_timeline_at_exit(&mut self) {
        let Some(run) = self.persist.running.as_ref() else {
            return;
        };
        self.timelines.sample_at_exit(
            run.keys_processed,
            self.stats.write_commands,
            run.last_report.as_ref(),
        );
    }

    /// Takes in the child's reports and reaps it if it has ended.
    fn poll_child(&mut self) {
        self.drain_child_reports();
        if self
            .persist
            .running
            .as_ref()
            .is_some_and(|r| r.child.reports_closed())
        {
            self.sample_timeline_at_exit();
        }
        let Some(run) = self.persist.running.as_mut() else {
            return;
        };
        match run.child.try_wait() {
            Ok(Some(exit)) => self.bgsave_done(exit),
            Ok(None) => {}
            Err(e) => warn!(cause = %e, "waitpid on the snapshot child"),
        }
    }

    /// Redis's `backgroundSaveDoneHandler`: records how the child ended.
    fn bgsave_done(&mut self, exit: ChildExit) {
        // The last reports (the Done one carries the final COW figure), and the timeline's
        // last sample if the pipe's end of file has not already brought it.
        self.drain_child_reports();
        self.sample_timeline_at_exit();
        let Some(run) = self.persist.running.take() else {
            return;
        };
        self.persist.last_method = Some(SaveMethod::Fork);
        self.ks.access_frozen = false;
        crate::types::fork_save_ended();
        self.ks.heal_forwarded();
        let elapsed = run.child.started.elapsed();
        self.persist.last_bgsave_time_sec = elapsed.as_secs() as i64;
        self.persist.last_cow_size = run.cow_peak;
        match exit {
            // A diskless sync's stream saved nothing on disk (Redis's
            // `backgroundSaveDoneHandlerSocket`): `dirty` and LASTSAVE stay.
            // Nor does its failure make writes fail with MISCONF: no file was at stake (Redis
            // leaves `lastbgsave_status` alone there too); the replicas retry.
            ChildExit::Ok if run.to_socket => {
                info!("Background RDB transfer terminated with success");
            }
            ChildExit::Failed(code) if run.to_socket => {
                if let Some((step, errno)) = run.failure {
                    let err = strerror(errno);
                    warn!(
                        step = step.name(),
                        errno, "Diskless transfer: writing the RDB into the pipe failed: {err}"
                    );
                }
                warn!(code, "Background transfer error");
            }
            ChildExit::Signaled(sig) if run.to_socket => {
                warn!("Background transfer terminated by signal {sig}");
            }
            ChildExit::Ok => {
                info!("Background saving terminated with success");
                self.ks.dirty = self.ks.dirty.saturating_sub(run.dirty_before);
                self.last_save_unix = now_ms() / 1000;
                self.persist.last_save_ok = true;
            }
            ChildExit::Failed(code) => {
                // Redis's child logs the failed step itself; forkdb's child does not log, so the
                // line is written here from its report, before Redis's parent line.
                match run.failure {
                    Some((step, errno)) => {
                        let tmp = snap::temp_file_name(run.child.pid as u32);
                        let line = save_error_line(
                            step,
                            errno,
                            &self.config.dir,
                            &tmp,
                            &self.config.dbfilename,
                        );
                        warn!(step = step.name(), errno, "{line}");
                    }
                    None if code == fork::EXIT_PANIC => {
                        warn!(code, "The snapshot child panicked");
                    }
                    None => {}
                }
                warn!(code, "Background saving error");
                self.persist.last_save_ok = false;
            }
            ChildExit::Signaled(sig) => {
                warn!("Background saving terminated by signal {sig}");
                if !run.killed_by_us {
                    self.persist.last_save_ok = false;
                }
            }
        }
        if exit != ChildExit::Ok {
            // The child removes its temp file on an I/O error, but not when it was killed.
            self.remove_temp_file_of(run.child.pid);
        }
        let status = match exit {
            ChildExit::Ok => "ok",
            _ if run.killed_by_us => "cancelled",
            _ => "err",
        };
        self.timelines.end(status);
        crate::repl::bgsave_done(self, exit == ChildExit::Ok);
        if let (false, Some((step, errno))) = (run.killed_by_us, run.failure) {
            self.timelines.set_failure(step.name(), errno);
        }
        let mb = |b: u64| b / (1024 * 1024);
        let avg = run.cow_sum.checked_div(run.cow_samples).unwrap_or(0);
        info!(
            "Fork CoW for RDB: current {} MB, peak {} MB, average {} MB",
            mb(run.cow_size),
            mb(run.cow_peak),
            mb(avg)
        );
    }

    fn save_options(&self) -> SaveOptions {
        SaveOptions {
            compression: self.config.rdbcompression,
            checksum: self.config.rdbchecksum,
        }
    }

    /// SAVE: writes the RDB file in the foreground, blocking the server as Redis's SAVE does.
    pub fn save_sync(&mut self) -> io::Result<()> {
        if self.persist.loading {
            // Only a part of the file is in memory: writing it would replace a good file.
            return Err(io::Error::other("Redis is loading the dataset in memory"));
        }
        // A child the server killed (FLUSHALL, SHUTDOWN) is not reaped yet but can write
        // nothing more: the foreground save goes ahead, as Redis's `rdbSave` does after
        // `killRDBChild`. (The SAVE command refuses while any child is there, as Redis's.)
        let live_child = self
            .persist
            .running
            .as_ref()
            .is_some_and(|r| !r.killed_by_us);
        if live_child || self.persist.forkless.is_some() {
            // A cancelled forkless save's writer renames nothing and uses its own temp file,
            // but the walk of a live one would be lost: refused either way until it has ended.
            return Err(io::Error::other("Background save already in progress"));
        }
        let started = Instant::now();
        self.persist.rdb_saves += 1;
        let tmp = snap::temp_file_name(std::process::id());
        let options = self.save_options();
        let used = crate::alloc::used_memory() as u64;
        let ks = &self.ks;
        let functions = &self.persist.functions;
        // SAVE sleeps `rdb-key-save-delay` per key too, as Redis's does.
        let delay = key_delay(self.config.rdb_key_save_delay);
        let after_key = |_: &Value| {
            if let Some(d) = delay {
                std::thread::sleep(d);
            }
        };
        let result = snap::save_atomically_checked(
            &self.config.dir,
            self.config.dbfilename.as_ref(),
            tmp.as_ref(),
            || true,
            |out| write_rdb(ks, functions, options, used, out, after_key).map(|_| ()),
        );
        match &result {
            Ok(()) => {
                self.ks.dirty = 0;
                self.last_save_unix = now_ms() / 1000;
                self.persist.last_save_ok = true;
                tracing::info!(
                    ms = started.elapsed().as_millis() as u64,
                    "DB saved on disk"
                );
            }
            Err(e) => {
                // Redis's `rdbSave` sets `lastbgsave_status` only on success: a failed foreground
                // save is the caller's error reply, and does not make writes fail with MISCONF.
                let line = save_error_line(
                    e.step,
                    e.errno(),
                    &self.config.dir,
                    &tmp,
                    &self.config.dbfilename,
                );
                tracing::warn!(step = e.step.name(), errno = e.errno(), "{line}");
            }
        }
        result.map_err(io::Error::from)
    }

    /// Is a write refused now? (After a failed save with stop-writes-on-bgsave-error, as Redis.)
    pub fn deny_write_reason(&self) -> Option<String> {
        if self.config.stop_writes_on_bgsave_error
            && !self.persist.last_save_ok
            && !self.config.save.is_empty()
        {
            return Some("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.".into());
        }
        None
    }

    /// FLUSHALL kills a running save (its data is gone) and saves the empty data set when save
    /// points are configured, as Redis does.
    pub fn after_flushall(&mut self) {
        self.kill_child();
        self.forkless_cancel();
        if !self.config.save.is_empty() {
            let _ = self.save_sync();
        }
    }

    /// Decides whether SHUTDOWN may go ahead, saving first when asked or when save points exist.
    pub fn prepare_shutdown(
        &mut self,
        mode: crate::server::ShutdownMode,
        force: bool,
    ) -> Result<(), String> {
        use crate::server::ShutdownMode::*;
        let save = match mode {
            Save => true,
            NoSave => false,
            Default => !self.config.save.is_empty(),
        };
        // Redis never saves a half-loaded data set on the way out (`prepareForShutdown`).
        let save = save && !self.persist.loading;
        if self.child_active() {
            warn!("There is a child saving an .rdb. Killing it!");
            self.kill_child_at_exit();
        }
        if self.persist.forkless.is_some() {
            warn!("There is a forkless save running. Cancelling it!");
            self.forkless_cancel_at_exit(EXIT_REAP_WAIT);
        }
        if save {
            tracing::info!("Saving the final RDB snapshot before exiting.");
            if let Err(e) = self.save_sync() {
                if !force {
                    tracing::warn!(cause = %e, "Error trying to save the DB, can't exit.");
                    return Err(e.to_string());
                }
            }
        }
        Ok(())
    }

    /// DEBUG RELOAD: save, empty the keyspace, load the file back.
    pub fn debug_reload(&mut self) -> Result<(), String> {
        self.save_sync().map_err(|e| e.to_string())?;
        for db in 0..self.ks.db_count() {
            self.ks.flush_db(db);
        }
        self.load_rdb()
    }
}

/// The persistence fields of INFO.
pub fn info_fields(srv: &Server, s: &mut String) {
    let p = &srv.persist;
    let mut f = |k: &str, v: &dyn std::fmt::Display| {
        let _ = write!(s, "{k}:{v}\r\n");
    };
    f("loading", &u8::from(p.loading));
    f("async_loading", &0);
    let run = p.running.as_ref();
    f("current_cow_peak", &run.map_or(0, |r| r.cow_peak));
    f("current_cow_size", &run.map_or(0, |r| r.cow_size));
    f(
        "current_cow_size_age",
        &run.map_or(0, |r| r.cow_updated.elapsed().as_secs()),
    );
    // Progress of the running save, whichever its method: (keys written, keys total, start).
    let progress = match (run, p.forkless.as_ref()) {
        (Some(r), _) => Some((r.keys_processed, r.keys_total, r.child.started)),
        (None, Some(f)) => Some((f.keys_processed(), f.keys_total, f.started)),
        (None, None) => None,
    };
    let perc = progress.map_or(0.0, |(done, total, _)| {
        if total > 0 {
            done as f64 * 100.0 / total as f64
        } else {
            0.0
        }
    });
    f("current_fork_perc", &format!("{perc:.2}"));
    f(
        "current_save_keys_processed",
        &progress.map_or(0, |(done, _, _)| done),
    );
    f(
        "current_save_keys_total",
        &progress.map_or(0, |(_, total, _)| total),
    );
    f("rdb_changes_since_last_save", &srv.ks.dirty);
    f("rdb_bgsave_in_progress", &u8::from(progress.is_some()));
    f("rdb_last_save_time", &srv.last_save_unix);
    f(
        "rdb_last_bgsave_status",
        &if p.last_save_ok { "ok" } else { "err" },
    );
    f("rdb_last_bgsave_time_sec", &p.last_bgsave_time_sec);
    f(
        "rdb_current_bgsave_time_sec",
        &progress.map_or(-1, |(_, _, t)| t.elapsed().as_secs() as i64),
    );
    // forkdb's own: which method the running save and the last ended one used.
    let running_method = match (run, p.forkless.as_ref()) {
        (Some(_), _) => "fork",
        (None, Some(_)) => "forkless",
        (None, None) => "none",
    };
    f("rdb_current_bgsave_method", &running_method);
    f(
        "rdb_last_bgsave_method",
        &p.last_method.map_or("none", SaveMethod::name),
    );
    f("rdb_saves", &p.rdb_saves);
    f("rdb_last_cow_size", &p.last_cow_size);
    f("rdb_last_load_keys_expired", &p.last_load_keys_expired);
    f("rdb_last_load_keys_loaded", &p.last_load_keys_loaded);
    f("aof_enabled", &0);
    f("aof_rewrite_in_progress", &0);
    f("aof_rewrite_scheduled", &0);
    f("aof_last_rewrite_time_sec", &-1);
    f("aof_current_rewrite_time_sec", &-1);
    f("aof_last_bgrewrite_status", &"ok");
    f("aof_rewrites", &0);
    f("aof_last_write_status", &"ok");
    f("aof_last_cow_size", &0);
    f("module_fork_in_progress", &0);
    f("module_fork_last_cow_size", &0);
    if p.loading {
        // As Redis's INFO: progress against the file size (or, without one, the `used-mem` the
        // file claims, capped below 100%), ETA from the rate so far.
        let l = &p.load_progress;
        let (perc, remaining) = if l.total_bytes > 0 {
            (
                l.loaded_bytes as f64 * 100.0 / l.total_bytes as f64,
                l.total_bytes.saturating_sub(l.loaded_bytes),
            )
        } else if l.rdb_used_mem > 0 {
            (
                (l.loaded_bytes as f64 * 100.0 / l.rdb_used_mem as f64).min(99.99),
                l.rdb_used_mem.saturating_sub(l.loaded_bytes).max(1),
            )
        } else {
            (0.0, 1)
        };
        let elapsed = (now_ms() / 1000 - l.start_time).max(0) as u64;
        let eta = if elapsed == 0 {
            1
        } else {
            elapsed.saturating_mul(remaining) / (l.loaded_bytes + 1)
        };
        f("loading_start_time", &l.start_time);
        f("loading_total_bytes", &l.total_bytes);
        f("loading_rdb_used_mem", &l.rdb_used_mem);
        f("loading_loaded_bytes", &l.loaded_bytes);
        f("loading_loaded_perc", &format!("{perc:.2}"));
        f("loading_eta_seconds", &eta);
    }
}

/// The fork-related fields of INFO stats.
pub fn stats_fields(srv: &Server, s: &mut String) {
    let _ = write!(
        s,
        "latest_fork_usec:{}\r\ntotal_forks:{}\r\n",
        srv.persist.latest_fork_usec, srv.persist.total_forks
    );
}

impl Server {
    /// The persistence part of the cron: reap the child, then save points and scheduled saves.
    pub fn cron_persistence(&mut self) {
        if self.persist.loading {
            // No save point may write a half-loaded data set, nor fork while the loader lives.
            return;
        }
        if self.child_active() {
            self.poll_child();
            return;
        }
        if self.persist.forkless.is_some() {
            // Its driver task walks, samples and ends it.
            return;
        }
        if self.persist.bgsave_scheduled {
            let method = self
                .persist
                .scheduled_method
                .take()
                .unwrap_or(self.config.bgsave_default_method);
            if let Err(e) = self.bgsave_start_with(method) {
                warn!("scheduled BGSAVE failed: {e}");
            }
            return;
        }
        let now_s = now_ms() / 1000;
        let since_save = now_s - self.last_save_unix;
        let may_retry = self.persist.last_save_ok
            || self
                .persist
                .last_bgsave_try
                .is_none_or(|t| t.elapsed() >= BGSAVE_RETRY_DELAY);
        let due = self
            .config
            .save
            .iter()
            .find(|(secs, changes)| self.ks.dirty >= *changes && since_save >= *secs as i64)
            .copied();
        if let Some((secs, changes)) = due {
            if may_retry {
                info!("{changes} changes in {secs} seconds. Saving...");
                if let Err(e) = self.bgsave_start() {
                    warn!("{e}");
                }
            }
        }
    }
}

/// Start-up warnings Redis gives about the kernel settings a fork-based save depends on, and
/// `disable-thp`: with 2 MiB transparent huge pages, the first write to a shared page after fork
/// copies 2 MiB instead of 4 KiB.
pub fn startup_checks(cfg: &crate::config::Config) {
    let overcommit = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
    if overcommit.trim() != "1" && !overcommit.is_empty() {
        warn!("WARNING Memory overcommit must be enabled! Without it, a background save may fail under low memory condition. To fix this issue add 'vm.overcommit_memory = 1' to /etc/sysctl.conf and then reboot or run the command 'sysctl vm.overcommit_memory=1' for this to take effect.");
    }
    let thp_always = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|s| s.contains("[always]"));
    if cfg.disable_thp {
        // SAFETY: prctl with integer arguments; the flag is inherited by the snapshot child.
        let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if rc != 0 && thp_always {
            warn!("WARNING: could not disable THP for this process; fork snapshots will copy 2 MiB pages.");
        }
    } else if thp_always {
        warn!("WARNING you have Transparent Huge Pages (THP) support enabled in your kernel. This will create latency and memory usage issues with Redis. To fix this issue run the command 'echo madvise > /sys/kernel/mm/transparent_hugepage/enabled' as root, and add it to your /etc/rc.local in order to retain the setting after a reboot. Redis must be restarted after THP is disabled (set to 'madvise' or 'never').");
    }
}
