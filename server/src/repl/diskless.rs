//! Diskless full sync (`repl-diskless-sync yes`, Redis 7.0's default): the snapshot goes to
//! the replicas through a pipe, not a file (Redis's `rdbSaveToSlavesSockets` and
//! `rdbPipeReadHandler`).
//!
//! ```text
//!  fork child, or the forkless writer thread          event loop (this module)
//!  ┌──────────────────────────────────┐  pipe   ┌──────────────────────────────────────────┐
//!  │ the same RDB stream as the file's│ ──────► │ relay: read 64 KiB, queue it to every     │
//!  │ (persist's write_rdb / writer)   │         │ replica of the sync (Replica::stream);    │
//!  └──────────────────────────────────┘         │ no more reading while one has 1 MiB queued│
//!                                               └──────────────────────────────────────────┘
//!  each replica's task (conn.rs) writes: +FULLRESYNC, $EOF:<mark>\r\n, the queued stream,
//!  then <mark> once the pipe is at end of file AND the save ended well (bgsave_done);
//!  the command stream after the replica's first ACK.
//! ```
//!
//! What it owns: [`Sync`] (the running diskless sync) and the relay task. It touches the
//! replicas of its sync (`Replica::diskless` names it) and, when the last of them is gone,
//! stops the save (`Server::kill_child`, `Server::forkless_cancel`), as Redis 7.0 kills the
//! child when no replica is left. The child and the writer thread never see a socket; a
//! replica that is slow only slows the reading of the pipe (and so the writer), never grows
//! the server's memory past [`RELAY_MAX_QUEUED`] per replica.

use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::{info, warn};

use super::{replica_name, setup_full_resync, State, StrBuf};
use crate::net::Shared;
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
}

/// Starts the save into a pipe for every replica waiting for a snapshot, and the relay.
pub(super) fn start(srv: &mut Server) {
    info!("Starting BGSAVE for SYNC with target: replicas sockets");
    let Some(shared) = super::shared() else {
        warn!("BGSAVE for replication failed: the server is not running");
        return fail_waiting(srv);
    };
    // The save starts inside bgsave_start_to_pipe, with no command in between: the snapshot
    // is the data as of `offset`.
    let offset = srv.repl.offset;
    let pipe = match srv.bgsave_start_to_pipe() {
        Ok(pipe) => pipe,
        Err(e) => {
            warn!("BGSAVE for replication failed: {e}");
            return fail_waiting(srv);
        }
    };
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
    });
    tokio::task::spawn_local(relay(shared, pipe, id));
}

/// The save could not start: the replicas waiting for it get Redis's error and are closed.
fn fail_waiting(srv: &mut Server) {
    let ids: Vec<u64> = srv
        .repl
        .replicas
        .iter()
        .filter(|(_, r)| r.state == State::WaitBgsaveStart)
        .map(|(id, _)| *id)
        .collect();
    for id in ids {
        if let Some(r) = srv.repl.replicas.get_mut(&id) {
            r.head
                .extend_from_slice(b"-ERR BGSAVE failed, replication can't continue\r\n");
        }
        super::close_after_head(srv, id);
    }
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
            let ids: Vec<u64> = srv
                .repl
                .replicas
                .iter()
                .filter(|(_, r)| r.diskless == Some(id))
                .map(|(id, _)| *id)
                .collect();
            for rid in ids {
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
        return finish_if_done(srv);
    }
    let id = d.id;
    srv.repl.diskless = None;
    let ids: Vec<u64> = srv
        .repl
        .replicas
        .iter()
        .filter(|(_, r)| r.diskless == Some(id))
        .map(|(id, _)| *id)
        .collect();
    for rid in ids {
        warn!("Diskless SYNC failed: the background save ended with an error");
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
    let Some(d) = srv.repl.diskless.take() else {
        return;
    };
    let now = Instant::now();
    for r in srv.repl.replicas.values_mut() {
        if r.diskless != Some(d.id) || r.state != State::WaitBgsaveEnd {
            continue;
        }
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
