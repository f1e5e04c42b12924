//! A replica's connection, once SYNC/PSYNC made it one: net.rs hands the socket over here.
//!
//! The task writes, in order: what [`Replica::head`](super::Replica) holds (`+FULLRESYNC`,
//! `+CONTINUE`), a newline each second while the snapshot is prepared (Redis's keepalive), the
//! snapshot file as `$<len>\r\n` and its bytes (or, diskless, the pieces of the snapshot the
//! relay queued in `Replica::stream`, with no newline among them), then the stream buffered
//! for the replica and what is fed after. It reads the replica's `REPLCONF ACK <offset>`. It touches the server
//! only through `Server.repl` (and the byte counters), borrowing it between awaits.
//!
//! The file is read with plain blocking reads on the server's thread, 64 KiB at a time between
//! socket writes, as Redis's `sendBulkToSlave` does from its event loop: a local file read of
//! that size does not stall the loop longer than a command would.

use std::io::Read as _;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use forkdb_protocol::RequestParser;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::futures::Notified;
use tracing::{info, warn};

use super::State;
use crate::net::Shared;

/// Bytes of the snapshot file read per socket write.
const FILE_CHUNK: usize = 64 * 1024;

enum Next {
    Write(BytesMut),
    /// A piece of a diskless transfer (see `diskless`).
    Stream(Bytes),
    File(std::fs::File, u64),
    /// Diskless, forkless method: the head is written, the socket goes to the writer thread.
    Attach(std::sync::Arc<super::diskless::Target>),
    Wait {
        keepalive: bool,
    },
    Close,
}

/// Serves the replica `id` on `stream` until it disconnects, is dropped (output buffer limit,
/// timeout, CLIENT KILL) or, for `rdb-only`, has its snapshot. `killed` is the connection's
/// kill signal.
pub async fn serve_replica(
    srv: &Shared,
    stream: &mut TcpStream,
    id: u64,
    mut killed: Pin<&mut Notified<'_>>,
) {
    let (notify, limits) = {
        let s = srv.borrow();
        let Some(r) = s.repl.replicas.get(&id) else {
            return;
        };
        (r.notify.clone(), s.protocol_limits())
    };
    let mut parser = RequestParser::new(limits);
    let mut input = BytesMut::new();
    loop {
        let next = {
            let mut s = srv.borrow_mut();
            match s.repl.replicas.get_mut(&id) {
                None => Next::Close,
                Some(r) if r.meta.killed.get() => Next::Close,
                Some(r) if !r.head.is_empty() => Next::Write(std::mem::take(&mut r.head)),
                Some(r) if r.direct.as_ref().is_some_and(|t| !t.attached()) => {
                    match r.direct.clone() {
                        Some(t) => Next::Attach(t),
                        None => Next::Close,
                    }
                }
                Some(r) if !r.stream.is_empty() => match r.stream.pop_front() {
                    Some(b) => {
                        r.stream_len -= b.len();
                        Next::Stream(b)
                    }
                    None => Next::Close,
                },
                Some(r) if r.rdb.is_some() => match r.rdb.take() {
                    Some((f, len)) => Next::File(f, len),
                    None => Next::Close,
                },
                Some(r) if r.state == State::Online && r.hs.rdb_only => Next::Close,
                Some(r) if r.state == State::Online && !r.buf.is_empty() && !r.wait_ack => {
                    let b = std::mem::take(&mut r.buf);
                    r.meta.obuf_pending.set(b.len());
                    Next::Write(b)
                }
                // No newline inside a diskless transfer: it would be part of the snapshot.
                Some(r) => Next::Wait {
                    keepalive: r.state == State::WaitBgsaveStart
                        || (r.state == State::WaitBgsaveEnd && r.diskless.is_none()),
                },
            }
        };
        match next {
            Next::Close => break,
            Next::Write(b) => {
                if !write_all(srv, stream, &b, killed.as_mut()).await {
                    break;
                }
                if let Some(r) = srv.borrow().repl.replicas.get(&id) {
                    r.meta.obuf_pending.set(r.buf.len());
                }
            }
            Next::Stream(b) => {
                // The relay waits for room in the replicas' queues.
                srv.borrow().repl.relay_wake.notify_one();
                if !write_all(srv, stream, &b, killed.as_mut()).await {
                    warn!("Diskless rdb transfer: connection to the replica lost");
                    break;
                }
                if let Some(r) = srv.borrow_mut().repl.replicas.get_mut(&id) {
                    r.stream_progress = std::time::Instant::now();
                }
            }
            Next::Attach(t) => {
                // From here until the save ends this task writes nothing: the writer thread
                // does (see `diskless::Target`).
                t.attach(&*stream);
                srv.borrow().repl.relay_wake.notify_one();
            }
            Next::File(f, len) => {
                if !send_file(srv, stream, f, len, killed.as_mut()).await {
                    warn!("Error sending the snapshot to the replica: connection lost");
                    break;
                }
                let mut s = srv.borrow_mut();
                if let Some(r) = s.repl.replicas.get_mut(&id) {
                    r.state = State::Online;
                    r.ack_time = std::time::Instant::now();
                    let name = super::replica_name(&r.meta, &r.hs);
                    if r.hs.rdb_only {
                        info!(
                            "Close the connection with replica {name} as RDB transfer is complete"
                        );
                    } else {
                        info!("Synchronization with replica {name} succeeded");
                    }
                }
            }
            Next::Wait { keepalive } => {
                tokio::select! {
                    _ = notify.notified() => {
                        // The cron wakes a replica that waits for its snapshot once a second:
                        // a newline keeps the link alive (replicas skip it).
                        if keepalive && !write_all(srv, stream, b"\n", killed.as_mut()).await {
                            break;
                        }
                    }
                    _ = &mut killed => break,
                    r = stream.readable() => {
                        if r.is_err() || !read_acks(srv, stream, id, &mut parser, &mut input) {
                            break;
                        }
                    }
                }
            }
        }
    }
    srv.borrow_mut().repl.drop_replica(id);
}

/// Writes `b` whole; false if the connection failed or was killed meanwhile.
async fn write_all(
    srv: &Shared,
    stream: &mut TcpStream,
    b: &[u8],
    mut killed: Pin<&mut Notified<'_>>,
) -> bool {
    let ok = tokio::select! {
        r = stream.write_all(b) => r.is_ok(),
        _ = &mut killed => false,
    };
    if ok {
        srv.borrow_mut().stats.total_net_output_bytes += b.len() as u64;
    }
    ok
}

/// `$<len>\r\n` and the file's bytes (Redis's disk-based transfer).
async fn send_file(
    srv: &Shared,
    stream: &mut TcpStream,
    mut f: std::fs::File,
    len: u64,
    mut killed: Pin<&mut Notified<'_>>,
) -> bool {
    let header = format!("${len}\r\n");
    if !write_all(srv, stream, header.as_bytes(), killed.as_mut()).await {
        return false;
    }
    let mut left = len;
    let mut chunk = vec![0u8; FILE_CHUNK];
    while left > 0 {
        let want = (left as usize).min(FILE_CHUNK);
        let n = match f.read(&mut chunk[..want]) {
            Ok(0) | Err(_) => {
                warn!("Read error sending DB to replica");
                return false;
            }
            Ok(n) => n,
        };
        if !write_all(srv, stream, &chunk[..n], killed.as_mut()).await {
            return false;
        }
        left -= n as u64;
    }
    true
}

/// Reads what the replica sent and takes in its ACKs. False at end of file or on an error.
fn read_acks(
    srv: &Shared,
    stream: &mut TcpStream,
    id: u64,
    parser: &mut RequestParser,
    input: &mut BytesMut,
) -> bool {
    input.reserve(1024);
    match stream.try_read_buf(input) {
        Ok(0) => return false,
        Ok(n) => srv.borrow_mut().stats.total_net_input_bytes += n as u64,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
        Err(_) => return false,
    }
    loop {
        match parser.parse(input) {
            Ok(Some(args)) => handle(srv, id, &args),
            Ok(None) => return input.len() < 64 * 1024,
            Err(_) => return false,
        }
    }
}

/// A command from a replica: REPLCONF ACK counts; anything else is ignored (a replica sends
/// nothing else on this link, and its replies would corrupt nothing but are not expected).
fn handle(srv: &Shared, id: u64, args: &[Bytes]) {
    let mut s = srv.borrow_mut();
    if let Some(r) = s.repl.replicas.get(&id) {
        r.meta.last_interaction.set(std::time::Instant::now());
    }
    if args.len() >= 3 && crate::cmd::is(&args[0], "replconf") && crate::cmd::is(&args[1], "ack") {
        if let Some(off) = crate::util::parse_i64(&args[2]) {
            super::ack(&mut s, id, off);
        }
    }
}
