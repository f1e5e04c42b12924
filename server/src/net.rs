//! Networking: listeners, one task per connection, the cron, and shutdown.
//!
//! Everything here runs on the server's one thread (see the crate docs). A connection task reads
//! whatever the socket has, runs every complete command in the buffer while holding the server
//! borrow, appends each reply to one output buffer, and writes that buffer once: a pipeline of any
//! depth costs one `read` and one `write`, as in Redis's event loop.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::BytesMut;
use forkdb_protocol::RequestParser;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tracing::{info, warn};

use crate::client::{self, Client, ClientMeta};
use crate::cmd;
use crate::config::ClientClass;
use crate::server::{Server, ShutdownMode};

pub type Shared = Rc<RefCell<Server>>;

/// The listen backlog (Redis's `tcp-backlog` default).
const TCP_BACKLOG: u32 = 511;

/// The address a `bind` entry names, as Redis 7.0 reads it: `*` is every IPv4 address, `::*`
/// every IPv6 one, anything else an IP literal.
fn bind_ip(host: &str) -> Option<IpAddr> {
    match host {
        "*" => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        "::*" => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        _ => host.parse().ok(),
    }
}

/// A listening socket on `addr`. An IPv6 socket is IPv6 only (`IPV6_V6ONLY`), as Redis's
/// `anetV6Only`: `bind ::` must not also take IPv4 connections, which would then arrive as
/// mapped addresses that protected mode does not count as loopback.
fn listen_on(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => {
            let sock = TcpSocket::new_v6()?;
            nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::Ipv6V6Only, &true)?;
            sock
        }
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(TCP_BACKLOG)
}

/// Binds every `bind` address. A leading `-` marks an address that may be unavailable on this
/// host, as in Redis's default `bind 127.0.0.1 -::1`: it is skipped if the system has no such
/// address or no such protocol, but a port in use is an error for it too (Redis's
/// `listenToPort`).
fn bind_all(addrs: &[String], port: u16) -> anyhow::Result<Vec<TcpListener>> {
    use std::io::ErrorKind;
    let mut listeners = Vec::new();
    for a in addrs {
        let (optional, host) = match a.strip_prefix('-') {
            Some(h) => (true, h),
            None => (false, a.as_str()),
        };
        let Some(ip) = bind_ip(host) else {
            bail!("Invalid bind address '{host}'");
        };
        let sock = SocketAddr::new(ip, port);
        match listen_on(sock) {
            Ok(l) => listeners.push(l),
            Err(e)
                if optional
                    && (e.kind() == ErrorKind::AddrNotAvailable
                        || matches!(
                            e.raw_os_error(),
                            Some(
                                libc::EAFNOSUPPORT
                                    | libc::EPROTONOSUPPORT
                                    | libc::ESOCKTNOSUPPORT
                                    | libc::EPFNOSUPPORT
                                    | libc::ENOPROTOOPT
                            )
                        )) =>
            {
                info!(addr = %sock, cause = %e, "optional bind address skipped");
            }
            Err(e) => {
                bail!("Could not create server TCP listening socket {host}:{port}: {e}");
            }
        }
    }
    if listeners.is_empty() {
        bail!("Failed listening on port {port} (TCP), aborting.");
    }
    Ok(listeners)
}

/// Runs the server until SHUTDOWN or a signal. Returns when the process should exit.
///
/// The order is Redis's: bind first (a port in use fails start-up at once, before any load),
/// then load the RDB file while serving clients (`-LOADING`), then "Ready to accept connections".
/// A load error ends the process with the error naming the file.
pub async fn run(srv: Shared) -> anyhow::Result<()> {
    let (bind, port) = {
        let s = srv.borrow();
        crate::idlepoll::set_max_us(s.config.idle_poll_max_us);
        (s.config.bind.clone(), s.config.port)
    };
    let listeners = bind_all(&bind, port)?;
    crate::repl::set_shared(&srv);
    for l in listeners {
        info!(addr = %l.local_addr().context("local_addr")?, "Listening");
        tokio::task::spawn_local(accept_loop(srv.clone(), l));
    }
    tokio::task::spawn_local(cron(srv.clone()));
    tokio::task::spawn_local(timeline_sampler(srv.clone()));
    tokio::task::spawn_local(crate::persist::forkless_driver(srv.clone()));

    let notify = srv.borrow().shutdown_notify.clone();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let load = crate::load::load_at_startup(srv.clone());
    tokio::pin!(load);
    let mut loaded = false;
    loop {
        tokio::select! {
            result = &mut load, if !loaded => {
                loaded = true;
                if let Err(e) = result {
                    bail!("{e}");
                }
                info!("Ready to accept connections tcp");
                // replication: `replicaof` in the configuration: follow that master now.
                let mut s = srv.borrow_mut();
                if let Some((host, port)) = s.config.replicaof.clone() {
                    crate::repl::replica::start(&mut s, host, port);
                }
            }
            _ = notify.notified() => {
                if srv.borrow().shutdown.is_some() {
                    break;
                }
            }
            _ = sigterm.recv() => {
                if signal_shutdown(&srv, "SIGTERM") { break; }
            }
            _ = sigint.recv() => {
                if signal_shutdown(&srv, "SIGINT") { break; }
            }
        }
    }
    info!("Redis is now ready to exit, bye bye...");
    Ok(())
}

/// SIGTERM/SIGINT: shut down as SHUTDOWN would; if the final save fails, keep serving (Redis 7).
fn signal_shutdown(srv: &Shared, name: &str) -> bool {
    info!(signal = name, "Received signal, scheduling shutdown...");
    let mut s = srv.borrow_mut();
    match s.prepare_shutdown(ShutdownMode::Default, false) {
        Ok(()) => true,
        Err(_) => {
            warn!("Errors trying to shut down the server. Check the logs for more information.");
            false
        }
    }
}

async fn accept_loop(srv: Shared, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(cause = %e, "Accepting client connection");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let mut s = srv.borrow_mut();
        if s.clients.len() as u64 >= s.config.maxclients {
            s.stats.rejected_connections += 1;
            drop(s);
            // Best effort, as Redis: the reply fits in the socket buffer of a fresh connection.
            let _ = stream.try_write(b"-ERR max number of clients reached\r\n");
            continue;
        }
        let loopback = peer.ip().is_loopback();
        if s.config.protected_mode && s.config.requirepass.is_empty() && !loopback {
            s.stats.rejected_connections += 1;
            drop(s);
            let _ = stream.try_write(PROTECTED_MODE_ERROR.as_bytes());
            continue;
        }
        s.stats.total_connections_received += 1;
        let id = s.next_client_id;
        s.next_client_id += 1;
        let laddr = stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let fd = {
            use std::os::fd::AsRawFd;
            stream.as_raw_fd()
        };
        let meta = Rc::new(ClientMeta::new(id, peer.to_string(), laddr, fd, loopback));
        s.clients.insert(id, meta.clone());
        drop(s);
        tokio::task::spawn_local(connection(srv.clone(), stream, meta));
    }
}

const PROTECTED_MODE_ERROR: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Reads ask for at least this much room (Redis's `PROTO_IOBUF_LEN`).
const READ_CHUNK: usize = 16 * 1024;
/// A query buffer that grew past this (a big argument, a command cut across many reads) is not
/// kept once its commands ran: what is left of it moves to a buffer that fits. Redis checks the
/// same in `clientsCronResizeQueryBuffer` (`PROTO_RESIZE_THRESHOLD`, 32 KiB); the connection task
/// owns its buffer, so it checks at the end of each batch instead of waiting for the cron.
const QBUF_KEEP: usize = 2 * READ_CHUNK;
/// Reply buffers up to this size go back to the pool after their write; larger ones are freed.
const REPLY_KEEP: usize = 64 * 1024;
/// Reply buffers kept in the pool at most (about the connections with a write in flight).
const REPLY_POOL_MAX: usize = 64;
/// Redis's idle rule: a query buffer wasting more than this ...
const QBUF_IDLE_WASTE: usize = 4 * 1024;
/// ... on a client idle for longer than this is shrunk to fit.
const QBUF_IDLE_AFTER: Duration = Duration::from_secs(2);

thread_local! {
    /// The read buffer lent to whichever connection has input and no partial command of its
    /// own. The server is one thread and a read and the commands it brings run without an
    /// `.await` between them, so one buffer serves every connection: an idle connection holds
    /// no query buffer at all (Redis 7.0 holds 16 KiB until its cron shrinks it after 2 s idle;
    /// Valkey 8 shares its query buffer the same way). A connection keeps a buffer of its own
    /// only while a command is incomplete.
    static READ_BUF: Cell<Option<BytesMut>> = const { Cell::new(None) };
    /// Reply buffers, taken for a batch and given back once its write is done, so that a
    /// connection holds one only while a reply is in flight.
    static REPLY_POOL: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

fn lend_read_buf() -> BytesMut {
    READ_BUF
        .with(Cell::take)
        .unwrap_or_else(|| BytesMut::with_capacity(READ_CHUNK))
}

fn return_read_buf(mut buf: BytesMut) {
    buf.clear();
    READ_BUF.with(|b| b.set(Some(buf)));
}

fn take_reply_buf() -> BytesMut {
    REPLY_POOL
        .with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| BytesMut::with_capacity(READ_CHUNK))
}

fn return_reply_buf(mut buf: BytesMut) {
    if buf.capacity() > REPLY_KEEP {
        return;
    }
    buf.clear();
    REPLY_POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < REPLY_POOL_MAX {
            p.push(buf);
        }
    });
}

/// What happens to the buffer a batch read into, once its complete commands ran: `None` when it
/// holds nothing the connection needs (it goes back to be lent, or is freed if it grew), else the
/// buffer to keep for the incomplete command.
fn keep_after_batch(buf: BytesMut, alloc: usize, pending_bulk: Option<usize>) -> Option<BytesMut> {
    // A big bulk announced and not all here: its room was reserved at its `$` line; keep it,
    // as Redis keeps `bulklen` bytes.
    if pending_bulk.is_some_and(|len| len >= forkdb_protocol::request::BIG_ARG) {
        return Some(buf);
    }
    if buf.is_empty() && pending_bulk.is_none() {
        if alloc <= QBUF_KEEP {
            return_read_buf(buf);
        }
        // Else dropped: the allocation goes once the last argument sliced from it is gone
        // (right away, unless a MULTI queue holds one).
        return None;
    }
    if alloc > QBUF_KEEP {
        let mut fresh = BytesMut::with_capacity(buf.len().max(READ_CHUNK));
        fresh.extend_from_slice(&buf);
        return Some(fresh);
    }
    Some(buf)
}

/// Replies wait here until the event loop has nothing left to run, then go out together, as
/// Redis writes its clients' replies in `beforeSleep`, right before `epoll_wait`: the clients
/// get one turn's replies in a burst and send their next requests in a burst, which the next
/// turn reads together. Written as each request was served, replies trickle out, requests
/// trickle back, and the server sleeps and is woken (by an IPI the client pays) about once
/// per request. The runtime's `on_thread_park` hook ([`before_sleep`]) releases the waiting
/// tasks; without it installed (a runtime built elsewhere) nothing waits.
///
/// What is left of that cost at `-P 1` is the client's: forkdb spends less CPU per request
/// than redis-server, so it runs out of work and sleeps more often, and each sleep costs the
/// client a wake-up; `idlepoll` polls for input a few microseconds before sleeping while sleeps
/// are short (its module doc has the figures and the bounds).
async fn before_sleep_point() {
    if !FLUSH_HOOK.with(Cell::get) {
        return;
    }
    let waiting = FLUSH_WAITING.with(|w| {
        let n = w.get() + 1;
        w.set(n);
        n
    });
    if waiting > FLUSH_BATCH_MAX {
        // The loop always had something to run: release this batch now.
        before_sleep();
        return;
    }
    let notified = FLUSH.with(|f| f.clone());
    notified.notified().await;
}

/// Replies held at once at most (see [`before_sleep_point`]).
const FLUSH_BATCH_MAX: usize = 256;

thread_local! {
    static FLUSH: Rc<tokio::sync::Notify> = Rc::new(tokio::sync::Notify::new());
    static FLUSH_WAITING: Cell<usize> = const { Cell::new(0) };
    static FLUSH_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// The runtime's `on_thread_park` hook: lets the replies held by [`before_sleep_point`] go.
/// Waking them makes the loop run them instead of parking; it parks once they are written.
/// With none held, the loop is about to sleep: it may poll for input first (`idlepoll`).
pub fn before_sleep() {
    if FLUSH_WAITING.with(|w| w.replace(0)) > 0 {
        FLUSH.with(|f| f.notify_waiters());
    } else {
        crate::idlepoll::before_park();
    }
}

/// For a task that gives the loop a turn and is at once runnable again (the forkless save's
/// walk, the load): the loop then polls its driver without parking, so the hook would not run
/// and the held replies would wait; they go first.
pub async fn yield_to_loop() {
    before_sleep();
    tokio::task::yield_now().await;
}

/// Called on the runtime's thread once the hook is installed on its builder.
pub fn before_sleep_installed() {
    FLUSH_HOOK.with(|h| h.set(true));
}

/// Marks the socket not readable after a read that returned less than it asked for: the
/// kernel's receive queue is empty, so the next `readable()` waits for epoll instead of
/// returning at once and costing a `read` that fails with EAGAIN (one such read per request at
/// `-P 1`, where Redis does one read per readable event). tokio's own `AsyncRead` for sockets
/// does the same after a short read (`PollEvented::poll_read`); `try_read_buf` does not. Safe
/// with epoll's edge-triggered mode (mio's): data arriving after the read raises a new event.
/// The closure makes no syscall; returning `WouldBlock` from it is what clears the readiness.
fn drained(stream: &TcpStream) {
    let _ = stream.try_io(tokio::io::Interest::READABLE, || {
        Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
    });
}

/// The reply of a blocked client once it is served, timed out or unblocked, in a reply buffer
/// from the pool (empty if the wake-up found nothing for it: it stays blocked).
async fn blocked_reply(srv: &Shared, client: &mut Client) -> BytesMut {
    let mut out = take_reply_buf();
    crate::blocking::wait(srv, client, &mut out).await;
    out
}

async fn connection(srv: Shared, mut stream: TcpStream, meta: Rc<ClientMeta>) {
    let (authenticated, limits) = {
        let s = srv.borrow();
        (s.config.requirepass.is_empty(), s.protocol_limits())
    };
    let mut client = Client::new(meta.clone(), authenticated);
    let mut parser = RequestParser::new(limits);
    // Every key and value the server keeps is copied into its own allocation (store, WATCH),
    // so arguments may be slices of the read buffer: no allocation per argument.
    parser.set_zero_copy(true);
    // The connection's own query buffer: only while a command is incomplete (see READ_BUF).
    let mut own: Option<BytesMut> = None;
    // One registration with the kill signal for the connection's whole life, rather than one
    // per read: it is polled alongside every read and write.
    let killed = meta.kill.notified();
    tokio::pin!(killed);
    let resize = meta.resize.notified();
    tokio::pin!(resize);
    'conn: loop {
        let mut served: Option<BytesMut> = None;
        tokio::select! {
            r = stream.readable() => if r.is_err() { break },
            _ = &mut killed => break,
            _ = meta.feed_ready.notified(), if meta.monitor.get() || client.subs.active() => {
                // MONITOR lines and Pub/Sub messages from other clients' commands (see `diag`,
                // `pubsub`). The kill signal is watched during the write: a subscriber that
                // reads nothing is closed by its output buffer limit.
                let feed = crate::diag::take_feed(&meta);
                let r = tokio::select! {
                    r = stream.write_all(&feed) => r,
                    _ = &mut killed => break 'conn,
                };
                if r.is_err() {
                    break;
                }
                meta.obuf_pending.set(meta.feed.borrow().len());
                srv.borrow_mut().stats.total_net_output_bytes += feed.len() as u64;
                continue;
            }
            _ = &mut resize => {
                resize.set(meta.resize.notified());
                // Idle with an incomplete command: drop the free space (Redis's
                // `sdsRemoveFreeSpace` on a client idle for more than 2 s).
                if let Some(buf) = own.take() {
                    let mut fit = BytesMut::with_capacity(buf.len());
                    fit.extend_from_slice(&buf);
                    meta.qbuf_alloc.set(fit.capacity());
                    own = Some(fit);
                }
                continue;
            }
            // blocking: served, timed out or CLIENT UNBLOCK; the reply (if any) goes out below,
            // then input that arrived meanwhile is parsed.
            reply = blocked_reply(&srv, &mut client), if client.blocked.is_some() => {
                served = Some(reply);
            }
        }
        let mut buf = own.take().unwrap_or_else(lend_read_buf);
        // Short of room: the part of a command left at the end of the last read moves to the
        // front of the same buffer when nothing else points into it (the parser copied its
        // arguments out, see `detach_partial`) and it is short; else a bigger buffer. Always
        // the same allocation under a pipelined load, rather than a new one per read of a size
        // glibc cannot give back to the next read (see `RequestParser::detach_partial`).
        if buf.capacity() - buf.len() < READ_CHUNK / 4 && !buf.try_reclaim(READ_CHUNK / 2) {
            buf.reserve(READ_CHUNK);
        }
        // What the buffer holds allocated from its start: after a big argument was sliced off
        // its front, `capacity()` only shows what is left, so this is taken before parsing.
        let alloc = buf.capacity();
        // After a blocked client was served, nothing is read: what it sent meanwhile is already
        // in `buf` and is parsed now.
        let n = if served.is_some() {
            0
        } else {
            let room = buf.capacity() - buf.len();
            match stream.try_read_buf(&mut buf) {
                Ok(n) if n > 0 => {
                    if n < room {
                        drained(&stream);
                    }
                    n
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    own = keep_after_batch(buf, alloc, parser.pending_bulk_len());
                    continue;
                }
                // EOF or error: the lent buffer goes back for the next connection.
                _ => {
                    if buf.is_empty() && alloc <= QBUF_KEEP {
                        return_read_buf(buf);
                    }
                    break;
                }
            }
        };
        // Redis's `qbuf` while the batch runs: all it read, the commands being run included.
        meta.qbuf.set(buf.len());
        meta.qbuf_alloc.set(alloc);
        let mut wbuf = served.take().unwrap_or_else(take_reply_buf);
        // Messages (or MONITOR lines) not yet written go before this batch's replies: Redis
        // queues both in one output buffer, in the order they were made.
        if !meta.feed.borrow().is_empty() {
            wbuf.extend_from_slice(&crate::diag::take_feed(&meta));
        }
        meta.obuf_alloc.set(wbuf.capacity());
        let mut close = false;
        {
            let mut s = srv.borrow_mut();
            let s = &mut *s;
            s.stats.total_net_input_bytes += n as u64;
            // The cron's clock (refreshed at `hz`) is precise enough for idle times in seconds.
            meta.last_interaction.set(s.clock);
            parser.set_limits(s.protocol_limits());
            let obuf_limit = s.config.client_obuf_limits[ClientClass::Normal as usize];
            let obuf_limited = obuf_limit.hard > 0 || obuf_limit.soft > 0;
            client.batch_clock = Some(Instant::now());
            loop {
                // blocking: a blocked client's further input waits until it is unblocked.
                if client.blocked.is_some() {
                    break;
                }
                parser
                    .set_unauthenticated(!client.authenticated && !s.config.requirepass.is_empty());
                match parser.parse(&mut buf) {
                    Ok(Some(args)) => {
                        if args.is_empty() {
                            continue;
                        }
                        cmd::execute(s, &mut client, args, &mut wbuf);
                        if obuf_limited {
                            // Redis checks each reply it queues (`_addReplyProtoToList`) and
                            // frees the client before anything more is written to it.
                            meta.obuf_pending.set(wbuf.len());
                            if meta.obuf_limit_reached(&obuf_limit, s.clock) {
                                warn!(
                                    "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
                                    meta.info_line()
                                );
                                wbuf.clear();
                                close = true;
                                break;
                            }
                        }
                        if client.close_after_reply {
                            close = true;
                            break;
                        }
                        // replication: SYNC/PSYNC made this a replica; see below.
                        if client.repl.became_replica {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        cmd::error_reply(s, &e.to_string(), &mut wbuf);
                        close = true;
                        break;
                    }
                }
            }
            client.batch_clock = None;
            if buf.len() as u64 > s.config.client_query_buffer_limit {
                warn!(client = %meta.addr, qbuf = buf.len(), "Closing client that reached max query buffer length");
                close = true;
            }
            meta.qbuf.set(buf.len());
            meta.obuf_pending.set(wbuf.len());
            meta.obuf_alloc.set(wbuf.capacity());
        }
        parser.detach_partial();
        own = keep_after_batch(buf, alloc, parser.pending_bulk_len());
        meta.qbuf_alloc
            .set(own.as_ref().map_or(0, BytesMut::capacity));
        if !wbuf.is_empty() {
            tokio::select! {
                _ = before_sleep_point() => {}
                _ = &mut killed => break 'conn,
            }
            // Then written at once. (A `yield_now` here instead cost a second `epoll_wait` per
            // turn: tokio polls the driver before it resumes a task that yielded.)
            let mut written = 0;
            while written < wbuf.len() {
                let r = tokio::select! {
                    r = stream.write(&wbuf[written..]) => r,
                    // CLIENT KILL, or the cron's output buffer soft limit.
                    _ = &mut killed => break 'conn,
                };
                match r {
                    Ok(0) | Err(_) => break 'conn,
                    Ok(n) => written += n,
                }
                meta.obuf_pending.set(wbuf.len() - written);
            }
            srv.borrow_mut().stats.total_net_output_bytes += written as u64;
        }
        meta.obuf_pending.set(0);
        meta.obuf_alloc.set(0);
        // All written: the soft limit's clock starts again from zero (Redis resets it on the
        // next reply under the limit).
        meta.obuf_soft_since.set(None);
        return_reply_buf(wbuf);
        if close || meta.killed.get() {
            break;
        }
        // replication: once the reply to SYNC/PSYNC is out, the socket carries the snapshot
        // and the command stream (see `repl::conn`) until the replica goes.
        if client.repl.became_replica {
            crate::repl::conn::serve_replica(&srv, &mut stream, client.id(), killed.as_mut()).await;
            break;
        }
    }
    let mut s = srv.borrow_mut();
    let id = client.id();
    crate::blocking::forget(&mut s, id); // blocking: a closed client waits no more
    crate::pubsub::forget(&mut s, &mut client);
    for (db, key) in std::mem::take(&mut client.watched) {
        s.ks.unwatch(db, &key, id);
    }
    s.ks.dirty_cas.remove(&id);
    s.clients.remove(&id);
}

/// Samples the running save's timeline every `snapshot-sample-interval` ms (see `timeline`),
/// and takes its last sample as the child exits.
///
/// Between samples it also waits on a second handle on the child's report pipe: that becomes
/// readable at each report and at end of file, which comes as the child exits. Left to the
/// cron, the end would be seen up to 1/hz later (100 ms), with the writes of that time counted
/// as the save's. The sample clock is a deadline, so the child's reports do not push it back.
/// Measured under a max-rate write flood, this task's sleeps end on time (within 1 ms): what
/// spaced samples out was the duty cycle's cost figure (see `timeline`), not starvation.
async fn timeline_sampler(srv: Shared) {
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;
    let (notify, readings) = {
        let s = srv.borrow();
        s.timelines
            .set_interval(Duration::from_millis(s.config.snapshot_sample_interval));
        (s.timeline_notify.clone(), s.timelines.ready.clone())
    };
    loop {
        notify.notified().await;
        let (report, threaded) = {
            let s = srv.borrow();
            s.timelines
                .set_interval(Duration::from_millis(s.config.snapshot_sample_interval));
            (s.snapshot_report_fd(), s.timelines.threaded())
        };
        let Some((pid, fd)) = report else {
            continue;
        };
        // SAFETY: `fd` is an OwnedFd, so its descriptor stays valid and the same while the
        // AsyncFd owns it, and is closed only when the AsyncFd is dropped.
        let mut pipe = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok();
        let interval = || {
            let s = srv.borrow();
            s.timelines
                .next_wait(Duration::from_millis(s.config.snapshot_sample_interval))
        };
        // Without a sampler thread, the save's first sample was taken at the fork, and this
        // task paces the next ones; with one, it takes in each reading the thread announces.
        let mut next = tokio::time::Instant::now() + interval();
        loop {
            let pipe_event = match &pipe {
                Some(p) => tokio::select! {
                    _ = readings.notified(), if threaded => false,
                    _ = tokio::time::sleep_until(next), if !threaded => false,
                    ready = p.readable() => match ready {
                        // Cleared before the reports are read, so one arriving after that read
                        // wakes us again.
                        Ok(mut guard) => { guard.clear_ready(); true }
                        Err(_) => { pipe = None; continue; }
                    },
                },
                None => {
                    if threaded {
                        readings.notified().await;
                    } else {
                        tokio::time::sleep_until(next).await;
                    }
                    false
                }
            };
            let mut s = srv.borrow_mut();
            // Ended and reaped already, or another save started since: that one has its own turn.
            if s.snapshot_child_pid() != Some(pid) {
                break;
            }
            if pipe_event {
                if s.snapshot_pipe_event() {
                    break;
                }
                continue;
            }
            s.sample_timeline();
            drop(s);
            next = tokio::time::Instant::now() + interval();
        }
    }
}

/// The periodic tasks Redis's `serverCron` runs at `hz`.
async fn cron(srv: Shared) {
    let mut tick: u64 = 0;
    loop {
        tick += 1;
        let hz = srv.borrow().config.hz.max(1);
        let period = Duration::from_millis(1000 / u64::from(hz));
        tokio::time::sleep(period).await;
        let mut s = srv.borrow_mut();
        let s = &mut *s;
        s.clock = Instant::now();
        s.ks.refresh_clock();
        // Expiring keys of a half-loaded data set would skew the load's counts (Redis runs no cron while
        // it loads).
        // A replica leaves expiry to its master's DELs (Redis runs no active expiry there).
        if s.active_expire_enabled && !s.persist.loading && s.repl.master.is_none() {
            // A quarter of each period at most, as Redis's slow expire cycle.
            let start = Instant::now();
            let deadline = start + period / 4;
            for db in 0..s.ks.db_count() {
                s.ks.active_expire(db, deadline);
            }
            crate::diag::record_event(s, "expire-cycle", start.elapsed().as_millis() as u64);
        }
        clients_cron(s);
        crate::idlepoll::set_max_us(s.config.idle_poll_max_us);
        s.timelines.reap_sampler(false);
        crate::repl::cron(s);
        sample_ops(s);
        let used = crate::alloc::used_memory() as u64;
        if used > s.peak_memory.get() {
            s.peak_memory.set(used);
        }
        if tick.is_multiple_of(u64::from(hz)) {
            crate::alloc::trim_after_free(s.child_active());
        }
        s.cron_persistence();
    }
}

/// Redis's `clientsCron`, for every client at each tick (a few loads per client): the idle
/// timeout, the idle query buffer resize, the recent buffer peaks of INFO, and the output buffer
/// limits of a client whose replies wait on a socket it does not read.
fn clients_cron(s: &mut Server) {
    let now = Instant::now();
    let unix = (crate::util::now_ms() / 1000) as u64;
    client::peaks_new_tick(unix);
    let timeout = (s.config.timeout > 0).then(|| Duration::from_secs(s.config.timeout));
    let obuf_limits = s.config.client_obuf_limits;
    for meta in s.clients.values() {
        // A subscriber answers to the `pubsub` class (Redis's `getClientType`).
        let class = if meta.is_pubsub() {
            ClientClass::Pubsub
        } else {
            ClientClass::Normal
        };
        let obuf_limit = obuf_limits[class as usize];
        let idle = now.duration_since(meta.last_interaction.get());
        // A blocked client waits on its own timeout, not the idle one (Redis's
        // `clientsCronHandleTimeout` skips CLIENT_BLOCKED).
        // Nor are replicas timed out (`CLIENT_SLAVE`): replication has its own timeout.
        if timeout.is_some_and(|t| idle > t)
            && !meta.blocked.get()
            && !meta.replica.get()
            && !meta.master_link.get()
        {
            meta.request_kill();
        }
        if idle > QBUF_IDLE_AFTER
            && meta.qbuf_alloc.get().saturating_sub(meta.qbuf.get()) > QBUF_IDLE_WASTE
        {
            meta.resize.notify_one();
        }
        client::peaks_track(unix, meta);
        // Replicas answer to the replica class's limit, checked as their stream grows (`repl`).
        if meta.omem() > 0
            && !meta.killed.get()
            && !meta.replica.get()
            && meta.obuf_limit_reached(&obuf_limit, now)
        {
            warn!(
                "Client {} closed for overcoming of output buffer limits.",
                meta.info_line()
            );
            meta.request_kill();
        }
    }
}

/// instantaneous_ops_per_sec over the last ~1.6 s of samples, as Redis's 16-sample window.
fn sample_ops(s: &mut Server) {
    let now = Instant::now();
    let total = s.stats.total_commands_processed;
    let samples = &mut s.stats.ops_samples;
    samples.push((now, total));
    if samples.len() > 16 {
        samples.remove(0);
    }
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let dt = last.0.duration_since(first.0).as_secs_f64();
        s.stats.ops_per_sec = if dt > 0.0 {
            ((last.1 - first.1) as f64 / dt) as u64
        } else {
            0
        };
    }
}
