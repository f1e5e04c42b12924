//! Replication, replica side: REPLICAOF / SLAVEOF, and the link task that follows a master
//! (Redis 7.0's `connectWithMaster`, `syncWithMaster`, `readSyncBulkPayload`).
//!
//! ```text
//! REPLICAOF host port ─► Repl.master = Link, a link task spawned (a generation number: a
//!                        newer REPLICAOF or NO ONE makes an older task stop)
//! link task: connect ─► PING, AUTH (masterauth), REPLCONF listening-port, capa eof capa psync2
//!            ─► PSYNC <cached replid> <offset+1> | PSYNC ? -1
//!   +FULLRESYNC replid off ─► `$len` and the file (or `$EOF:<mark>`, the stream, the mark)
//!                             into temp-<time>.<pid>.rdb in `dir`, renamed to `dbfilename`,
//!                             the data set flushed and the file loaded
//!   +CONTINUE [replid]     ─► nothing to load: the stream resumes
//!            ─► the stream: each command run as the master client (its replies dropped), the
//!               offset advanced by its bytes; REPLCONF GETACK and every second: REPLCONF ACK
//!   link lost ─► reconnect after a second, with PSYNC from the cached replid/offset
//! ```
//!
//! Like Redis 7.0's replica it announces `capa eof`, so a diskless master streams the snapshot
//! (`$EOF:<40 bytes>`, the RDB, the same 40 bytes) instead of writing a file for it; either
//! transfer goes to a temp file first (`repl-diskless-load disabled`). The file is loaded in one
//! go on the server's thread (Redis's disk load blocks the same way).

use std::io::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use forkdb_protocol::RequestParser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::client::{Client, ClientMeta};
use crate::net::Shared;
use crate::server::{Ctx, Server};

/// Where the link to the master is (ROLE's `connect` / `connecting` / `sync` / `connected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Connect,
    Connecting,
    Sync,
    Connected,
}

/// This server follows a master.
pub struct Link {
    pub host: String,
    pub port: u16,
    pub state: LinkState,
    generation: u64,
    stop: Rc<Notify>,
    /// When the link went down (`master_link_down_since_seconds`).
    pub down_since: Instant,
    pub last_io: Instant,
    /// The snapshot transfer: its size and the bytes read so far.
    pub transfer_size: i64,
    pub transfer_read: u64,
    pub sync_started: Option<Instant>,
}

/// REPLICAOF host port | NO ONE (and SLAVEOF).
pub fn replicaof(cx: &mut Ctx, args: &[Bytes]) {
    if crate::cmd::is(&args[1], "no") && crate::cmd::is(&args[2], "one") {
        // CONFIG GET replicaof (and REWRITE) show the master now followed, as in Redis.
        cx.srv.config.replicaof = None;
        if let Some(link) = cx.srv.repl.master.take() {
            link.stop.notify_one();
            info!(
                "MASTER MODE enabled (user request from '{}')",
                cx.client.meta.addr
            );
            // A new history begins here; the data and the offset stay.
            cx.srv.repl.replid = super::new_replid();
        }
        return cx.ok();
    }
    let port = match crate::util::parse_i64(&args[2]).and_then(|p| u16::try_from(p).ok()) {
        Some(p) => p,
        None => return cx.err("ERR Invalid master port"),
    };
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    if let Some(link) = &cx.srv.repl.master {
        if link.host.eq_ignore_ascii_case(&host) && link.port == port {
            info!("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
            return cx.simple("OK Already connected to specified master");
        }
    }
    cx.srv.config.replicaof = Some((host.clone(), port));
    start(cx.srv, host.clone(), port);
    info!(
        "REPLICAOF {host}:{port} enabled (user request from '{}')",
        cx.client.meta.addr
    );
    cx.ok();
}

/// Points this server at `host:port`: the old link (if any) stops, our replicas are dropped
/// (they must resync with the new history, as Redis disconnects them), a link task starts.
pub fn start(srv: &mut Server, host: String, port: u16) {
    let generation = srv.repl.master.as_ref().map_or(0, |l| l.generation) + 1;
    if let Some(old) = srv.repl.master.take() {
        old.stop.notify_one();
    }
    let ids: Vec<u64> = srv.repl.replicas.keys().copied().collect();
    for id in ids {
        srv.repl.drop_replica(id);
    }
    // The master's stream is not ours to feed: our offset is the master's from now.
    srv.repl.backlog = None;
    super::sync_delete_queue(srv);
    let stop = Rc::new(Notify::new());
    srv.repl.master = Some(Link {
        host,
        port,
        state: LinkState::Connect,
        generation,
        stop: stop.clone(),
        down_since: Instant::now(),
        last_io: Instant::now(),
        transfer_size: -1,
        transfer_read: 0,
        sync_started: None,
    });
    let Some(shared) = super::shared() else {
        return;
    };
    tokio::task::spawn_local(link_task(shared, generation, stop));
}

/// The refusal of a client's write on a read-only replica.
pub fn deny_write(srv: &Server, client: &Client) -> Option<&'static str> {
    (srv.repl.master.is_some() && srv.config.replica_read_only && !client.repl.is_master)
        .then_some("READONLY You can't write against a read only replica.")
}

/// `-MASTERDOWN` for a command without the `stale` flag while the link is down and
/// `replica-serve-stale-data` is no.
pub fn deny_stale(srv: &Server, stale_ok: bool) -> Option<&'static str> {
    let down = srv
        .repl
        .master
        .as_ref()
        .is_some_and(|l| l.state != LinkState::Connected);
    (down && !srv.config.replica_serve_stale_data && !stale_ok).then_some(
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    )
}

fn current(srv: &Shared, generation: u64) -> bool {
    srv.borrow()
        .repl
        .master
        .as_ref()
        .is_some_and(|l| l.generation == generation)
}

fn set_state(srv: &Shared, generation: u64, state: LinkState) {
    let mut s = srv.borrow_mut();
    if let Some(l) = s
        .repl
        .master
        .as_mut()
        .filter(|l| l.generation == generation)
    {
        if state != LinkState::Connected && l.state == LinkState::Connected {
            l.down_since = Instant::now();
        }
        l.state = state;
        l.last_io = Instant::now();
    }
}

/// How a link attempt ended.
enum End {
    /// REPLICAOF changed or NO ONE: this task is done.
    Stopped,
    /// The link failed: try again in a second.
    Retry(String),
}

async fn link_task(srv: Shared, generation: u64, stop: Rc<Notify>) {
    loop {
        if !current(&srv, generation) {
            return;
        }
        let end = tokio::select! {
            end = attempt(&srv, generation) => end,
            _ = stop.notified() => End::Stopped,
        };
        match end {
            End::Stopped => return,
            End::Retry(why) => {
                warn!("MASTER <-> REPLICA link: {why}");
                set_state(&srv, generation, LinkState::Connect);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.notified() => return,
                }
            }
        }
    }
}

/// Reads one `\r\n`-terminated line (without it), skipping the empty keepalive lines a master
/// sends while it prepares the snapshot.
async fn read_line(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<String, String> {
    loop {
        if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line = buf.split_to(pos + 1);
            let line = String::from_utf8_lossy(&line[..pos])
                .trim_end_matches('\r')
                .to_string();
            if line.is_empty() {
                continue;
            }
            return Ok(line);
        }
        if buf.len() > 64 * 1024 {
            return Err("the master sent a line too long".into());
        }
        let n = stream
            .read_buf(buf)
            .await
            .map_err(|e| format!("reading from the master: {e}"))?;
        if n == 0 {
            return Err("the master closed the connection".into());
        }
    }
}

async fn command(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    args: &[&[u8]],
) -> Result<String, String> {
    let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
    let mut out = BytesMut::new();
    super::encode_command(&argv, &mut out);
    stream
        .write_all(&out)
        .await
        .map_err(|e| format!("writing to the master: {e}"))?;
    read_line(stream, buf).await
}

/// One connection to the master, from connect to the link's loss.
async fn attempt(srv: &Shared, generation: u64) -> End {
    let (host, port, timeout, auth, user, my_port, cached) = {
        let s = srv.borrow();
        let Some(l) = s.repl.master.as_ref() else {
            return End::Stopped;
        };
        (
            l.host.clone(),
            l.port,
            Duration::from_secs(s.config.repl_timeout.max(1)),
            s.config.masterauth.clone(),
            s.config.masteruser.clone(),
            s.config.port,
            s.repl.cached_master.clone(),
        )
    };
    set_state(srv, generation, LinkState::Connecting);
    info!("Connecting to MASTER {host}:{port}");
    let mut stream =
        match tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port))).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return End::Retry(format!("Error condition on socket for SYNC: {e}")),
            Err(_) => return End::Retry("Timeout connecting to the MASTER...".into()),
        };
    let _ = stream.set_nodelay(true);
    info!("MASTER <-> REPLICA sync started");
    let mut buf = BytesMut::new();
    let handshake = async {
        let pong = command(&mut stream, &mut buf, &[b"PING"]).await?;
        // A master with a password answers PING with -NOAUTH before AUTH: that is fine.
        if pong.starts_with('-')
            && !pong.starts_with("-NOAUTH")
            && !pong.starts_with("-NOPERM")
            && !pong.starts_with("-ERR operation not permitted")
        {
            return Err(format!("Error reply to PING from master: '{pong}'"));
        }
        if !auth.is_empty() {
            let reply = if user.is_empty() {
                command(&mut stream, &mut buf, &[b"AUTH", auth.as_bytes()]).await?
            } else {
                command(
                    &mut stream,
                    &mut buf,
                    &[b"AUTH", user.as_bytes(), auth.as_bytes()],
                )
                .await?
            };
            if reply.starts_with('-') {
                return Err(format!("Unable to AUTH to MASTER: {reply}"));
            }
        }
        let p = my_port.to_string();
        let reply = command(
            &mut stream,
            &mut buf,
            &[b"REPLCONF", b"listening-port", p.as_bytes()],
        )
        .await?;
        if reply.starts_with('-') {
            info!("(Non critical) Master does not understand REPLCONF listening-port: {reply}");
        }
        // As Redis 7.0's replica: it reads a diskless (`$EOF:`) transfer too.
        let reply = command(
            &mut stream,
            &mut buf,
            &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"],
        )
        .await?;
        if reply.starts_with('-') {
            info!("(Non critical) Master does not understand REPLCONF capa: {reply}");
        }
        let (id, off) = match &cached {
            Some((id, off)) => {
                info!(
                    "Trying a partial resynchronization (request {id}:{}).",
                    off + 1
                );
                (id.clone(), (off + 1).to_string())
            }
            None => {
                info!("Partial resynchronization not possible (no cached master)");
                ("?".to_string(), "-1".to_string())
            }
        };
        command(
            &mut stream,
            &mut buf,
            &[b"PSYNC", id.as_bytes(), off.as_bytes()],
        )
        .await
    };
    let reply = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return End::Retry(e),
        Err(_) => return End::Retry("Timeout during the handshake with the master".into()),
    };
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC ") {
        let mut parts = rest.split(' ');
        let (Some(id), Some(off)) = (
            parts.next(),
            parts.next().and_then(|o| o.parse::<i64>().ok()),
        ) else {
            return End::Retry(format!("Unexpected reply to PSYNC from master: {reply}"));
        };
        info!("Full resync from master: {id}:{off}");
        if let Err(e) = full_sync(srv, generation, &mut stream, &mut buf, id, off).await {
            return End::Retry(e);
        }
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let mut s = srv.borrow_mut();
        let new_id = rest.trim();
        if !new_id.is_empty() {
            s.repl.replid = new_id.to_string();
        }
        info!("Successful partial resynchronization with master.");
        info!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
    } else {
        return End::Retry(format!("Unexpected reply to PSYNC from master: {reply}"));
    }
    set_state(srv, generation, LinkState::Connected);
    stream_commands(srv, generation, stream, buf).await
}

/// The length of the mark around a diskless transfer (Redis's `CONFIG_RUN_ID_SIZE`).
const EOF_MARK_LEN: usize = 40;

/// `$len` and the snapshot, or `$EOF:<mark>`, the snapshot and the mark: into a temp file,
/// renamed over `dbfilename`, then loaded (Redis's `readSyncBulkPayload`).
async fn full_sync(
    srv: &Shared,
    generation: u64,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    replid: &str,
    offset: i64,
) -> Result<(), String> {
    set_state(srv, generation, LinkState::Sync);
    let header = read_line(stream, buf).await?;
    let Some(len) = header.strip_prefix('$') else {
        return Err(format!("Bad protocol from MASTER, the first byte is not '$' (we received '{header}'), are you sure the host and port are right?"));
    };
    // A diskless transfer has no length: it ends with the mark its header gives.
    let mark: Option<Vec<u8>> = match len.strip_prefix("EOF:") {
        Some(m) if m.len() >= EOF_MARK_LEN => Some(m.as_bytes()[..EOF_MARK_LEN].to_vec()),
        Some(_) => {
            return Err(format!(
                "Bad EOF mark in the transfer header from MASTER: {header}"
            ))
        }
        None => None,
    };
    let len: u64 = match mark {
        Some(_) => {
            info!("MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk");
            0
        }
        None => {
            let len = len
                .parse()
                .map_err(|_| format!("Bad transfer length from MASTER: {header}"))?;
            info!("MASTER <-> REPLICA sync: receiving {len} bytes from master to disk");
            len
        }
    };
    let (dir, path) = {
        let mut s = srv.borrow_mut();
        if let Some(l) = s.repl.master.as_mut() {
            // A streamed transfer's size is unknown: 0, as Redis's INFO shows it.
            l.transfer_size = if mark.is_some() { 0 } else { len as i64 };
            l.transfer_read = 0;
            l.sync_started = Some(Instant::now());
        }
        (s.config.dir.clone(), s.config.rdb_path())
    };
    let tmp = dir.join(format!(
        "temp-{}.{}.rdb",
        crate::util::now_ms() / 1000,
        std::process::id()
    ));
    // Removes the temp file however the transfer ends: an error, or the task dropped mid-way
    // (REPLICAOF NO ONE or another master while the file comes in).
    struct RemoveOnDrop<'a>(&'a std::path::Path);
    impl Drop for RemoveOnDrop<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    let _cleanup = RemoveOnDrop(&tmp);
    let result = async {
        let mut file = std::fs::File::create(&tmp)
            .map_err(|e| format!("Opening the temp file needed for MASTER <-> REPLICA synchronization: {e}"))?;
        if let Some(mark) = &mark {
            receive_until_mark(srv, stream, buf, &mut file, mark).await?;
        }
        let mut left = if mark.is_some() { 0 } else { len };
        while left > 0 {
            if buf.is_empty() {
                read_transfer(stream, buf).await?;
            }
            let take = (buf.len() as u64).min(left) as usize;
            let chunk = buf.split_to(take);
            // A plain write to a local file, as Redis's readSyncBulkPayload does from its loop.
            file.write_all(&chunk)
                .map_err(|e| format!("Write error writing to the DB to disk: {e}"))?;
            left -= take as u64;
            let mut s = srv.borrow_mut();
            if let Some(l) = s.repl.master.as_mut() {
                l.transfer_read += take as u64;
                l.last_io = Instant::now();
            }
        }
        file.sync_all()
            .map_err(|e| format!("Failed trying to sync the temp DB to disk in MASTER <-> REPLICA synchronization: {e}"))?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            format!("Failed trying to rename the temp DB into {} in MASTER <-> REPLICA synchronization: {e}", path.display())
        })?;
        Ok::<(), String>(())
    }
    .await;
    result?;
    let mut s = srv.borrow_mut();
    if s.repl
        .master
        .as_ref()
        .is_none_or(|l| l.generation != generation)
    {
        return Err("REPLICAOF changed during the transfer".into());
    }
    info!("MASTER <-> REPLICA sync: Flushing old data");
    for db in 0..s.ks.db_count() {
        s.ks.flush_db(db);
    }
    info!("MASTER <-> REPLICA sync: Loading DB in memory");
    s.load_rdb().map_err(|e| {
        format!("Failed trying to load the MASTER synchronization DB from disk: {e}")
    })?;
    s.repl.replid = replid.to_string();
    s.repl.offset = offset;
    s.repl.cached_master = None;
    if let Some(l) = s.repl.master.as_mut() {
        l.transfer_size = -1;
        l.sync_started = None;
    }
    info!("MASTER <-> REPLICA sync: Finished with success");
    Ok(())
}

/// The command stream: run each command as the master client, advance the offset, answer
/// GETACK and send an ACK every second. Returns when the link is lost.
async fn stream_commands(
    srv: &Shared,
    generation: u64,
    mut stream: TcpStream,
    mut buf: BytesMut,
) -> End {
    let (limits, meta) = {
        let mut s = srv.borrow_mut();
        let id = s.next_client_id;
        s.next_client_id += 1;
        let addr = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let laddr = stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let fd = {
            use std::os::fd::AsRawFd;
            stream.as_raw_fd()
        };
        let meta = Rc::new(ClientMeta::new(id, addr, laddr, fd, false));
        meta.master_link.set(true);
        s.clients.insert(id, meta.clone());
        (s.protocol_limits(), meta)
    };
    let mut client = Client::new(meta.clone(), true);
    client.repl.is_master = true;
    let mut parser = RequestParser::new(limits);
    let mut ack = tokio::time::interval(Duration::from_secs(1));
    // Bytes of the command being parsed, not yet counted in the offset.
    let mut consumed: i64 = 0;
    // Bytes of a transaction from MULTI on, counted in the offset at its EXEC.
    let mut in_multi: i64 = 0;
    let killed = meta.kill.notified();
    tokio::pin!(killed);
    let end = loop {
        // Commands already read.
        let mut acks = Vec::new();
        {
            let mut s = srv.borrow_mut();
            let s = &mut *s;
            if s.repl
                .master
                .as_ref()
                .is_none_or(|l| l.generation != generation)
            {
                break End::Stopped;
            }
            let mut sink = BytesMut::new();
            loop {
                let before = buf.len();
                let parsed = parser.parse(&mut buf);
                // The parser consumes the complete arguments of a command cut across reads:
                // those bytes count when the command is complete.
                consumed += (before - buf.len()) as i64;
                match parsed {
                    Ok(Some(args)) => {
                        let used = std::mem::take(&mut consumed) + std::mem::take(&mut in_multi);
                        if args.len() >= 2
                            && crate::cmd::is(&args[0], "replconf")
                            && crate::cmd::is(&args[1], "getack")
                        {
                            acks.push(s.repl.offset);
                        } else if !args.is_empty() {
                            crate::cmd::execute(s, &mut client, args, &mut sink);
                            sink.clear();
                        }
                        // Inside MULTI the offset waits for EXEC (Redis's `commandProcessed`
                        // skips CLIENT_MULTI): a link lost mid-transaction resends it whole.
                        if client.multi.is_some() {
                            in_multi = used;
                        } else {
                            s.repl.offset += used;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return_client(s, &meta);
                        return End::Retry(format!("Protocol error from the master: {e}"));
                    }
                }
            }
        }
        for off in acks {
            if send_ack(&mut stream, off).await.is_err() {
                break;
            }
        }
        tokio::select! {
            r = stream.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => break End::Retry("Connection with master lost.".into()),
                Ok(n) => {
                    meta.last_interaction.set(Instant::now());
                    let mut s = srv.borrow_mut();
                    s.stats.total_net_input_bytes += n as u64;
                    if let Some(l) = s.repl.master.as_mut() {
                        l.last_io = Instant::now();
                    }
                }
            },
            _ = ack.tick() => {
                let off = srv.borrow().repl.offset;
                if send_ack(&mut stream, off).await.is_err() {
                    break End::Retry("Connection with master lost.".into());
                }
            }
            _ = &mut killed => break End::Retry("Connection with master lost (killed).".into()),
        }
    };
    let mut s = srv.borrow_mut();
    return_client(&mut s, &meta);
    // What we have: the next PSYNC asks to continue from here.
    let id = s.repl.replid.clone();
    let off = s.repl.offset;
    s.repl.cached_master = Some((id, off));
    if let End::Retry(_) = &end {
        info!("Caching the disconnected master state.");
    }
    end
}

fn return_client(s: &mut Server, meta: &ClientMeta) {
    s.clients.remove(&meta.id);
}

async fn send_ack(stream: &mut TcpStream, offset: i64) -> std::io::Result<()> {
    let off = offset.to_string();
    let mut out = BytesMut::new();
    super::encode_command(
        &[
            Bytes::from_static(b"REPLCONF"),
            Bytes::from_static(b"ACK"),
            Bytes::from(off),
        ],
        &mut out,
    );
    stream.write_all(&out).await
}

/// ROLE, for a replica: `slave`, the master's host and port, the link state, the offset.
pub fn role(cx: &mut Ctx, link: (&str, u16, LinkState)) {
    let (host, port, state) = link;
    cx.array(5);
    cx.bulk(b"slave");
    cx.bulk(host.as_bytes());
    cx.int(i64::from(port));
    cx.bulk(match state {
        LinkState::Connect => b"connect".as_slice(),
        LinkState::Connecting => b"connecting",
        LinkState::Sync => b"sync",
        LinkState::Connected => b"connected",
    });
    // The offset of the master's link, -1 before there is one (Redis's `server.master`).
    let offset = if state == LinkState::Connected {
        cx.srv.repl.offset
    } else {
        -1
    };
    cx.int(offset);
}

/// INFO replication, replica side (before the fields a master also has).
pub fn info_fields(srv: &Server, link: &Link, s: &mut String) {
    use std::fmt::Write as _;
    let up = link.state == LinkState::Connected;
    let _ = write!(
        s,
        "role:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
        link.host,
        link.port,
        if up { "up" } else { "down" },
        if up { link.last_io.elapsed().as_secs() as i64 } else { -1 },
        u8::from(link.state == LinkState::Sync),
        srv.repl.offset,
        srv.repl.offset,
    );
    if link.state == LinkState::Sync && link.transfer_size >= 0 {
        let total = link.transfer_size;
        let read = link.transfer_read as i64;
        let perc = if total > 0 {
            read as f64 * 100.0 / total as f64
        } else {
            0.0
        };
        let _ = write!(
            s,
            "master_sync_total_bytes:{total}\r\nmaster_sync_read_bytes:{read}\r\nmaster_sync_left_bytes:{}\r\nmaster_sync_perc:{perc:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
            total - read,
            link.last_io.elapsed().as_secs()
        );
    }
    if !up {
        let _ = write!(
            s,
            "master_link_down_since_seconds:{}\r\n",
            link.down_since.elapsed().as_secs()
        );
    }
    let _ = write!(
        s,
        "slave_priority:100\r\nslave_read_only:{}\r\nreplica_announced:1\r\n",
        u8::from(srv.config.replica_read_only)
    );
}

/// Reads more of the snapshot's transfer into `buf` (Redis's errors when it cannot).
async fn read_transfer(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<(), String> {
    buf.reserve(64 * 1024);
    let n = stream
        .read_buf(buf)
        .await
        .map_err(|e| format!("I/O error trying to sync with MASTER: {e}"))?;
    if n == 0 {
        return Err("I/O error trying to sync with MASTER: connection lost".to_string());
    }
    Ok(())
}

/// The body of a diskless transfer into `file`: everything up to the closing `mark`. The
/// master sends nothing after the mark before our first ACK (Redis 7.0's
/// `repl_start_cmd_stream_on_ack`, forkdb's too), so the transfer has ended when what was read
/// ends with it (Redis's replica makes the same check on its last bytes).
async fn receive_until_mark(
    srv: &Shared,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    file: &mut std::fs::File,
    mark: &[u8],
) -> Result<(), String> {
    let mut body = MarkedBody::new(mark);
    loop {
        if buf.is_empty() {
            read_transfer(stream, buf).await?;
        }
        let chunk = buf.split();
        let done = body
            .feed(&chunk, file)
            .map_err(|e| format!("Write error writing to the DB to disk: {e}"))?;
        {
            let mut s = srv.borrow_mut();
            if let Some(l) = s.repl.master.as_mut() {
                l.transfer_read += chunk.len() as u64;
                l.last_io = Instant::now();
            }
        }
        if done {
            return Ok(());
        }
    }
}

/// A streamed transfer's bytes as they are read: all but the last `mark.len()` go out at once;
/// those are held back, as they may be the closing mark.
struct MarkedBody<'a> {
    mark: &'a [u8],
    held: Vec<u8>,
}

impl<'a> MarkedBody<'a> {
    fn new(mark: &'a [u8]) -> Self {
        MarkedBody {
            mark,
            held: Vec::with_capacity(mark.len()),
        }
    }

    /// Takes the next bytes read; writes what is surely the body to `out`. True when what was
    /// read so far ends with the mark: the body is whole (the mark is not written).
    fn feed(&mut self, chunk: &[u8], out: &mut impl std::io::Write) -> std::io::Result<bool> {
        let total = self.held.len() + chunk.len();
        let write = total - total.min(self.mark.len());
        let from_held = write.min(self.held.len());
        let from_chunk = write - from_held;
        out.write_all(&self.held[..from_held])?;
        out.write_all(&chunk[..from_chunk])?;
        self.held.drain(..from_held);
        self.held.extend_from_slice(&chunk[from_chunk..]);
        Ok(self.held == self.mark)
    }
}

#[cfg(test)]
mod tests {
    use super::MarkedBody;

    /// Whatever the reads' sizes, the body comes out whole and the mark is found at its end.
    #[test]
    fn a_streamed_body_is_cut_at_its_mark_however_it_is_read() {
        let mark = b"0123456789abcdef0123456789abcdef01234567";
        let body: Vec<u8> = (0..200u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut stream = body.clone();
        stream.extend_from_slice(mark);
        for size in 1..=stream.len() {
            let mut m = MarkedBody::new(mark);
            let mut out = Vec::new();
            let mut ends = Vec::new();
            for chunk in stream.chunks(size) {
                ends.push(m.feed(chunk, &mut out).unwrap());
            }
            assert_eq!(out, body, "reads of {size}");
            assert_eq!(ends.iter().filter(|&&e| e).count(), 1, "reads of {size}");
            assert_eq!(ends.last(), Some(&true), "reads of {size}");
        }
        // A body shorter than the mark, and an empty one.
        for body in [&b"short"[..], &b""[..]] {
            let mut m = MarkedBody::new(mark);
            let mut out = Vec::new();
            let mut stream = body.to_vec();
            stream.extend_from_slice(mark);
            assert!(m.feed(&stream, &mut out).unwrap());
            assert_eq!(out, body);
        }
    }
}
