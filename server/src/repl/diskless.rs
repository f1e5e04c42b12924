//! Diskless full sync (`repl-diskless-sync yes`, Redis 7.0's default): the snapshot goes to
//! the replicas' sockets, not a file; from a fork child through a pipe (Redis's
//! `rdbSaveToSlavesSockets` and `rdbPipeReadHandler`):
//!
//! ```text
//!  fork child                                         event loop (this module)
//!  ┌──────────────────────────────────┐  pipe   ┌──────────────────────────────────────────┐
//!  │ the same RDB stream as the file's│ ──────► │ relay: read 64 KiB, queue it to every     │
//!  │ (persist's write_rdb)            │         │ replica of the sync (Replica::stream);    │
//!  └──────────────────────────────────┘         │ no more reading while one has 1 MiB queued│
//!                                               └──────────────────────────────────────────┘
//!  each replica's task (conn.rs) writes: +FULLRESYNC, $EOF:<mark>\r\n, the queued stream,
//!  then <mark> once the pipe is at end of file AND the save ended well (bgsave_done);
//!  the command stream after the replica's first ACK.
//! ```
//!
//! With the forkless method there is no pipe and no relay: the writer thread writes the
//! stream to the replicas' sockets itself ([`save_to_sockets`]), because a writer whose pipe
//! only the event loop reads could never be waited for, and the forkless save's queue stays
//! bounded only if writes can wait for the writer (`persist/forkless.rs`, `wait_for_room`):
//!
//! ```text
//!  replica's task: +FULLRESYNC, $EOF:<mark>\r\n ─► hands a dup of its socket over (Target)
//!  writer thread: the RDB stream ─► every replica's socket (poll, non-blocking send; a
//!                 replica that fails or takes nothing for repl-timeout is given up)
//!  event loop (watch task): drops the replicas given up, cancels the save when none is left
//!  the save ends well (thread joined) ─► the task writes <mark>, then the command stream
//! ```
//!
//! A socket has one writer at a time: the task until it hands it over, the writer thread until
//! it is joined. Until every replica's socket is in its hands the writer still depends on the
//! event loop, so writes do not wait for it yet (`Queue::allow_stalls`). A replica that stops
//! reading makes writes wait for `repl-timeout` at most, as a stuck disk would a save to disk.
//!
//! What it owns: [`Sync`] (the running diskless sync), the relay task, and the forkless
//! method's [`Target`]/[`Fanout`] and watch task. It touches the
//! replicas of its sync (`Replica::diskless` names it) and, when the last of them is gone,
//! stops the save (`Server::kill_child`, `Server::forkless_cancel`), as Redis 7.0 kills the
//! child when no replica is left. The fork child never sees a socket; a
//! replica that is slow only slows the reading of the pipe (and so the child), never grows
//! the server's memory past [`RELAY_MAX_QUEUED`] per replica.

use std::io::{self, BufWriter, Read as _, Write as _};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use forkdb_snapshot::{SaveError, Step};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::{info, warn};

use super::{replica_name, setup_full_resync, State, StrBuf};
use crate::config::SaveMethod;
use crate::net::Shared;
use crate::persist::ForklessQueue as Queue;
use crate::server::Server;

/// Bytes read from the pipe at a time.
const RELAY_CHUNK: usize = 64 * 1024;

/// The relay reads no more from the pipe while a replica of the sync has this much of the
/// snapshot queued and not yet written to its socket.
pub const RELAY_MAX_QUEUED: usize = 1024 * 1024;

/// The running diskless sync.
pub struct Sync {
    id: u64,
    /// The 40 random characters that open (`$EOF:<mark>`) and close the transfer.
    mark: String,
    /// The relay read the pipe to its end.
    eof: bool,
    /// How the save ended, once it has (`bgsave_done`).
    ok: Option<bool>,
    /// The forkless writer writes to the replicas' sockets itself: no pipe, no relay.
    direct: bool,
}

/// Starts the save into a pipe for every replica waiting for a snapshot, and the relay.
pub(super) fn start(srv: &mut Server) {
    info!("Starting BGSAVE for SYNC with target: replicas sockets");
    let Some(shared) = super::shared() else {
        warn!("BGSAVE for replication failed: the server is not running");
        return super::fail_waiting(srv);
    };
    // The save starts inside bgsave_start_to_pipe, with no command in between: the snapshot
    // is the data as of `offset`.
    let offset = srv.repl.offset;
    if srv.config.bgsave_default_method == SaveMethod::Forkless {
        return start_to_sockets(srv, shared, offset);
    }
    let pipe = match srv.bgsave_start_to_pipe() {
        Ok(pipe) => pipe,
        Err(e) => {
            warn!("BGSAVE for replication failed: {e}");
            return super::fail_waiting(srv);
        }
    };
    let id = begin(srv, offset, false);
    tokio::task::spawn_local(relay(shared, pipe, id));
}

/// The save has started: the replicas waiting for it are now in sync `id` (returned), with
/// `+FULLRESYNC` and `$EOF:<mark>` to write.
fn begin(srv: &mut Server, offset: i64, direct: bool) -> u64 {
    srv.repl.rdb_child = true;
    srv.repl.seldb = None;
    srv.repl.diskless_next_id += 1;
    let id = srv.repl.diskless_next_id;
    let mark = super::new_replid();
    let replid = srv.repl.replid.clone();
    for r in srv.repl.replicas.values_mut() {
        if r.state == State::WaitBgsaveStart {
            r.state = State::WaitBgsaveEnd;
            r.diskless = Some(id);
            r.stream_progress = Instant::now();
            r.buf.clear();
            setup_full_resync(r, &replid, offset);
            let _ = std::fmt::Write::write_fmt(
                &mut StrBuf(&mut r.head),
                format_args!("$EOF:{mark}\r\n"),
            );
        }
    }
    srv.repl.diskless = Some(Sync {
        id,
        mark,
        eof: false,
        ok: None,
        direct,
    });
    id
}

/// The ids of the replicas of sync `id`.
fn sync_replicas(srv: &Server, id: u64) -> Vec<u64> {
    srv.repl
        .replicas
        .iter()
        .filter(|(_, r)| r.diskless == Some(id))
        .map(|(rid, _)| *rid)
        .collect()
}

/// The replicas of sync `id`, and whether one of them has its queue full.
fn targets(srv: &Server, id: u64) -> (usize, bool) {
    let mut n = 0;
    let mut full = false;
    for r in srv.repl.replicas.values() {
        if r.diskless == Some(id) && r.state == State::WaitBgsaveEnd {
            n += 1;
            full |= r.stream_len >= RELAY_MAX_QUEUED;
        }
    }
    (n, full)
}

fn is_current(srv: &Server, id: u64) -> bool {
    srv.repl.diskless.as_ref().is_some_and(|d| d.id == id)
}

/// Reads the pipe and queues what it reads to the sync's replicas, until end of file, an
/// error, or no replica is left.
async fn relay(srv: Shared, pipe: OwnedFd, id: u64) {
    let wake = srv.borrow().repl.relay_wake.clone();
    // SAFETY: the File owns the descriptor, so it stays valid and the same while the AsyncFd
    // owns the File, and is closed only when the AsyncFd is dropped.
    let registered =
        unsafe { AsyncFd::register_with_interest(std::fs::File::from(pipe), Interest::READABLE) };
    let pipe = match registered {
        Ok(p) => p,
        Err(e) => {
            warn!(cause = %e, "Diskless rdb transfer: can't watch the pipe");
            return abort(&mut srv.borrow_mut(), id);
        }
    };
    let mut buf = vec![0u8; RELAY_CHUNK];
    loop {
        let full = {
            let mut s = srv.borrow_mut();
            if !is_current(&s, id) {
                // The save ended badly and its replicas were dropped (`save_done`).
                return;
            }
            let (n, full) = targets(&s, id);
            if n == 0 {
                if s.child_active() {
                    warn!("Diskless rdb transfer, last replica dropped, killing fork child.");
                } else {
                    warn!("Diskless rdb transfer, last replica dropped, cancelling the forkless save.");
                }
                return abort(&mut s, id);
            }
            full
        };
        if full {
            // Woken when a replica writes some of its queue or leaves; the timeout only
            // bounds the wait should a wake-up be lost.
            let _ = tokio::time::timeout(Duration::from_millis(100), wake.notified()).await;
            continue;
        }
        let mut guard = tokio::select! {
            ready = pipe.readable() => match ready {
                Ok(g) => g,
                Err(e) => {
                    warn!(cause = %e, "Diskless rdb transfer: error polling the pipe");
                    return abort(&mut srv.borrow_mut(), id);
                }
            },
            _ = wake.notified() => continue,
        };
        let read = guard.try_io(|f| f.get_ref().read(&mut buf));
        let n = match read {
            Err(_would_block) => continue,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                warn!(cause = %e, "Diskless rdb transfer, error reading from the pipe");
                return abort(&mut srv.borrow_mut(), id);
            }
        };
        let mut s = srv.borrow_mut();
        if n == 0 {
            if let Some(d) = s.repl.diskless.as_mut().filter(|d| d.id == id) {
                d.eof = true;
            }
            return finish_if_done(&mut s);
        }
        let chunk = Bytes::copy_from_slice(&buf[..n]);
        for r in s.repl.replicas.values_mut() {
            if r.diskless == Some(id) && r.state == State::WaitBgsaveEnd {
                if r.stream.is_empty() {
                    // Its timeout counts from when it has something to take.
                    r.stream_progress = Instant::now();
                }
                r.stream_len += chunk.len();
                r.stream.push_back(chunk.clone());
                r.notify.notify_one();
            }
        }
    }
}

/// Stops the sync: the save is killed (its end, `save_done(false)`, drops what replicas are
/// left).
fn abort(srv: &mut Server, id: u64) {
    match srv.repl.diskless.as_ref() {
        Some(d) if d.id == id && d.ok.is_some() => {
            // The save has ended already, the stream is lost all the same: nothing will call
            // `save_done` again, so the sync ends here.
            srv.repl.diskless = None;
            for rid in sync_replicas(srv, id) {
                srv.repl.drop_replica(rid);
            }
        }
        Some(d) if d.id == id => {
            srv.kill_child();
            srv.forkless_cancel();
        }
        _ => {}
    }
}

/// The save ended (persist's `bgsave_done`, through `repl::bgsave_done`).
pub(super) fn save_done(srv: &mut Server, ok: bool) {
    let Some(d) = srv.repl.diskless.as_mut() else {
        return;
    };
    d.ok = Some(ok);
    if ok {
        // Written to the sockets by the writer, which has ended: the stream is whole.
        d.eof |= d.direct;
        return finish_if_done(srv);
    }
    let id = d.id;
    srv.repl.diskless = None;
    for rid in sync_replicas(srv, id) {
        warn!("Diskless SYNC failed: the background save ended with an error");
        count_written(srv, rid);
        srv.repl.drop_replica(rid);
    }
    srv.repl.relay_wake.notify_one();
}

/// The pipe is at its end and the save ended well: the stream was whole. Each replica gets the
/// closing mark, and the command stream once it acknowledges (it has loaded the snapshot).
fn finish_if_done(srv: &mut Server) {
    let done = srv
        .repl
        .diskless
        .as_ref()
        .is_some_and(|d| d.eof && d.ok == Some(true));
    if !done {
        return;
    }
    let Some(d) = srv.repl.diskless.as_ref() else {
        return;
    };
    let id = d.id;
    // The writer may have given up on some replicas at the end: they do not get the mark.
    drop_given_up(srv, id);
    for rid in sync_replicas(srv, id) {
        count_written(srv, rid);
    }
    let Some(d) = srv.repl.diskless.take() else {
        return;
    };
    let now = Instant::now();
    for r in srv.repl.replicas.values_mut() {
        if r.diskless != Some(d.id) || r.state != State::WaitBgsaveEnd {
            continue;
        }
        // The writer has ended: the socket is the task's again.
        r.direct = None;
        let mark = Bytes::from(d.mark.clone().into_bytes());
        r.stream_len += mark.len();
        r.stream.push_back(mark);
        r.diskless = None;
        r.state = State::Online;
        r.ack_time = now;
        r.wait_ack = !r.hs.rdb_only;
        let name = replica_name(&r.meta, &r.hs);
        if r.hs.rdb_only {
            info!("Close the connection with replica {name} as RDB transfer is complete");
        } else {
            info!(
                "Streamed RDB transfer with replica {name} succeeded (socket). Waiting for REPLCONF ACK from replica to enable streaming"
            );
        }
        r.notify.notify_one();
    }
}

// ---------------------------------------------------------------------------------------------
// The forkless method: the writer thread writes to the replicas' sockets itself.
// ---------------------------------------------------------------------------------------------

/// The writer gave up on this replica: a write failed (it disconnected).
const FAILED_IO: u8 = 1;
/// The writer gave up on this replica: it took nothing for `repl-timeout`.
const FAILED_TIMEOUT: u8 = 2;

/// Bytes the writer thread hands to the sockets at a time (its write buffer).
const SOCKET_BUFFER: usize = 64 * 1024;

/// One replica of a forkless diskless sync, as its connection task, the event loop and the
/// writer thread share it. The socket goes one way only: the task writes `+FULLRESYNC` and
/// `$EOF:<mark>`, then puts a duplicate of the socket here and writes nothing more; the writer
/// takes it and writes the snapshot; once the save has ended (the thread is joined) the task
/// writes the closing mark and the stream. So the socket never has two writers at once.
#[derive(Default)]
pub struct Target {
    /// The replica's socket (a duplicate), from its task to the writer.
    fd: Mutex<Option<OwnedFd>>,
    /// The task has handed the socket over (or could not: then `failed` says so).
    attached: AtomicBool,
    /// The replica was dropped (the event loop's side): the writer writes no more to it.
    gone: AtomicBool,
    /// The writer's side: why it gave up on the replica (0: it did not).
    failed: AtomicU8,
    /// Snapshot bytes the writer wrote to the socket.
    written: AtomicU64,
}

impl Target {
    /// The connection task's side: hands a duplicate of `socket` to the writer.
    pub fn attach(&self, socket: &impl AsFd) {
        match socket.as_fd().try_clone_to_owned() {
            Ok(fd) => *self.fd.lock().unwrap_or_else(|e| e.into_inner()) = Some(fd),
            Err(e) => {
                warn!(cause = %e, "Diskless rdb transfer: can't duplicate the replica's socket");
                self.failed.store(FAILED_IO, Ordering::Release);
            }
        }
        self.attached.store(true, Ordering::Release);
    }

    pub fn attached(&self) -> bool {
        self.attached.load(Ordering::Acquire)
    }

    /// The replica was dropped: the writer closes its copy of the socket.
    pub fn leave(&self) {
        self.gone.store(true, Ordering::Release);
    }

    fn failed(&self) -> u8 {
        self.failed.load(Ordering::Acquire)
    }
}

/// The replicas' sockets, as the writer thread sees them.
pub struct Fanout {
    targets: Vec<Arc<Target>>,
    /// `repl-timeout`: a replica that takes nothing for this long is given up.
    timeout: Duration,
}

/// One replica in the writer's hands.
struct Slot {
    target: Arc<Target>,
    fd: Option<OwnedFd>,
    dead: bool,
    /// How much of the buffer being written this replica has taken.
    off: usize,
    /// Its last progress, or when it was last given something to take.
    progress: Instant,
}

impl Slot {
    fn give_up(&mut self, why: u8) {
        if why != 0 {
            self.target.failed.store(why, Ordering::Release);
        }
        // Closing our copy: once the event loop drops its own, the replica sees the end.
        self.fd = None;
        self.dead = true;
    }

    /// Writes what it can of `buf[off..]` without blocking; false on an error.
    fn send(&mut self, buf: &[u8]) -> bool {
        let Some(fd) = self.fd.as_ref() else {
            return true;
        };
        while self.off < buf.len() {
            let rest = &buf[self.off..];
            // SAFETY: a valid descriptor we own and a valid buffer of `rest.len()` bytes.
            // MSG_NOSIGNAL: a replica that left gives EPIPE, not a SIGPIPE to the process.
            let n = unsafe {
                libc::send(
                    fd.as_raw_fd(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => true,
                    io::ErrorKind::Interrupted => continue,
                    _ => false,
                };
            }
            self.off += n as usize;
            self.progress = Instant::now();
            self.target.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        true
    }
}

/// `io::Write` into every replica's socket: each write returns once every replica still in the
/// sync has taken all of it (a replica that fails or takes nothing for `repl-timeout` is given
/// up; with none left, what is written goes nowhere until the event loop cancels the save).
pub struct FanoutWriter<'a> {
    slots: Vec<Slot>,
    timeout: Duration,
    queue: &'a Queue,
    /// Every replica's socket is in our hands (or given up): writes may wait for us.
    stalls_allowed: bool,
}

impl FanoutWriter<'_> {
    fn send_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let start = Instant::now();
        for s in &mut self.slots {
            s.off = 0;
            s.progress = start;
        }
        let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(self.slots.len());
        let mut which: Vec<usize> = Vec::with_capacity(self.slots.len());
        loop {
            if self.queue.cancelled() {
                return Err(io::Error::other("the forkless save was cancelled"));
            }
            let now = Instant::now();
            pfds.clear();
            which.clear();
            let mut unattached = false;
            for (i, s) in self.slots.iter_mut().enumerate() {
                if s.dead {
                    continue;
                }
                if s.target.gone.load(Ordering::Acquire) {
                    s.give_up(0);
                    continue;
                }
                if s.fd.is_none() {
                    if s.target.failed() != 0 {
                        s.give_up(0);
                        continue;
                    }
                    s.fd = s.target.fd.lock().unwrap_or_else(|e| e.into_inner()).take();
                }
                if s.off >= buf.len() {
                    continue;
                }
                if now.duration_since(s.progress) > self.timeout {
                    s.give_up(FAILED_TIMEOUT);
                    continue;
                }
                match &s.fd {
                    Some(fd) => {
                        pfds.push(libc::pollfd {
                            fd: fd.as_raw_fd(),
                            events: libc::POLLOUT,
                            revents: 0,
                        });
                        which.push(i);
                    }
                    None => unattached = true,
                }
            }
            if !self.stalls_allowed && self.slots.iter().all(|s| s.dead || s.fd.is_some()) {
                self.stalls_allowed = true;
                self.queue.allow_stalls();
            }
            if pfds.is_empty() && !unattached {
                return Ok(());
            }
            // Short while a replica's task has yet to hand its socket over; otherwise bounded
            // so that the cancel flag and the timeouts are seen in time.
            let wait_ms = if unattached { 1 } else { 100 };
            // SAFETY: `pfds` is a valid array of `pfds.len()` pollfd structures.
            let ready =
                unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, wait_ms) };
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for (p, &i) in pfds.iter().zip(&which) {
                if p.revents != 0 && !self.slots[i].send(buf) {
                    self.slots[i].give_up(FAILED_IO);
                }
            }
        }
    }
}

impl io::Write for FanoutWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writer thread's output for a diskless sync with the forkless method: `write` fills it,
/// and it goes to every replica's socket (see [`Fanout`]).
pub fn save_to_sockets(
    fanout: Fanout,
    queue: &Queue,
    write: impl FnOnce(&mut BufWriter<FanoutWriter<'_>>) -> io::Result<()>,
) -> Result<(), SaveError> {
    let now = Instant::now();
    let slots = fanout
        .targets
        .into_iter()
        .map(|target| Slot {
            target,
            fd: None,
            dead: false,
            off: 0,
            progress: now,
        })
        .collect();
    let out = FanoutWriter {
        slots,
        timeout: fanout.timeout,
        queue,
        stalls_allowed: false,
    };
    let mut out = BufWriter::with_capacity(SOCKET_BUFFER, out);
    write(&mut out).map_err(|source| SaveError {
        step: Step::Write,
        source,
    })?;
    out.flush().map_err(|source| SaveError {
        step: Step::Flush,
        source,
    })?;
    // Nothing is left in the buffer: dropping it closes our copies of the sockets.
    drop(out.into_parts());
    Ok(())
}

/// The forkless method's diskless sync starts: the replicas waiting for a snapshot each get a
/// [`Target`], and the writer thread writes to them; [`watch`] replaces the relay.
fn start_to_sockets(srv: &mut Server, shared: Shared, offset: i64) {
    let mut targets = Vec::new();
    for r in srv.repl.replicas.values_mut() {
        if r.state == State::WaitBgsaveStart {
            let t = Arc::new(Target::default());
            r.direct = Some(t.clone());
            targets.push(t);
        }
    }
    let fanout = Fanout {
        targets,
        timeout: Duration::from_secs(srv.config.repl_timeout.max(1)),
    };
    if let Err(e) = srv.bgsave_forkless_start_to_sockets(fanout) {
        warn!("BGSAVE for replication failed: {e}");
        for r in srv.repl.replicas.values_mut() {
            r.direct = None;
        }
        return super::fail_waiting(srv);
    }
    let id = begin(srv, offset, true);
    tokio::task::spawn_local(watch(shared, id));
}

/// While the writer writes to the sockets: drops the replicas it gave up on, and stops the
/// save when none is left (the relay's other duties, for a sync without a pipe).
async fn watch(srv: Shared, id: u64) {
    let wake = srv.borrow().repl.relay_wake.clone();
    loop {
        {
            let mut s = srv.borrow_mut();
            if !is_current(&s, id) {
                return;
            }
            drop_given_up(&mut s, id);
            if targets(&s, id).0 == 0 {
                warn!("Diskless rdb transfer, last replica dropped, cancelling the forkless save.");
                return abort(&mut s, id);
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), wake.notified()).await;
    }
}

/// Drops the replicas of sync `id` the writer gave up on.
fn drop_given_up(srv: &mut Server, id: u64) {
    let failed: Vec<(u64, u8)> = srv
        .repl
        .replicas
        .iter()
        .filter(|(_, r)| r.diskless == Some(id))
        .filter_map(|(rid, r)| Some((*rid, r.direct.as_ref()?.failed())))
        .filter(|(_, why)| *why != 0)
        .collect();
    for (rid, why) in failed {
        if why == FAILED_TIMEOUT {
            warn!("Disconnecting timedout replica (full sync)");
        } else {
            warn!("Diskless rdb transfer: connection to the replica lost");
        }
        count_written(srv, rid);
        srv.repl.drop_replica(rid);
    }
}

/// Adds what the writer wrote to replica `rid`'s socket to the server's output bytes.
fn count_written(srv: &mut Server, rid: u64) {
    if let Some(t) = srv.repl.replicas.get(&rid).and_then(|r| r.direct.as_ref()) {
        let n = t.written.swap(0, Ordering::Relaxed);
        srv.stats.total_net_output_bytes += n;
    }
}
