//! A minimal blocking RESP client: requests are encoded by hand (multibulk), replies are read
//! with [`forkdb_protocol::FrameDecoder`] over a plain [`TcpStream`].
//!
//! Pipelining is explicit: callers append any number of requests to a byte buffer
//! ([`push_command`], [`push_set`]), send it with [`Conn::send`] and read as many replies as they
//! sent with [`Conn::read_replies`]. Nothing here is async; the tool uses one thread per
//! connection.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use forkdb_protocol::{Frame, FrameDecoder};

/// How long a connection waits for any reply bytes before it gives up.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// One connection to a RESP server.
pub struct Conn {
    stream: TcpStream,
    decoder: FrameDecoder,
    buf: BytesMut,
    addr: String,
}

impl Conn {
    /// Connects (TCP_NODELAY on) to `addr` (`HOST:PORT`).
    pub fn connect(addr: &str) -> Result<Conn> {
        let sock = addr
            .to_socket_addrs()
            .with_context(|| format!("resolving {addr}"))?
            .next()
            .ok_or_else(|| anyhow!("{addr} resolves to no address"))?;
        let stream = TcpStream::connect_timeout(&sock, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        Ok(Conn {
            stream,
            decoder: FrameDecoder::new(),
            buf: BytesMut::with_capacity(64 * 1024),
            addr: addr.to_owned(),
        })
    }

    /// Sends raw, already encoded requests.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .with_context(|| format!("writing to {}", self.addr))
    }

    /// Reads one reply.
    pub fn read_reply(&mut self) -> Result<Frame> {
        loop {
            if let Some(frame) = self
                .decoder
                .decode(&mut self.buf)
                .with_context(|| format!("bad reply from {}", self.addr))?
            {
                return Ok(frame);
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self
                .stream
                .read(&mut chunk)
                .with_context(|| format!("reading from {}", self.addr))?;
            if n == 0 {
                bail!("{} closed the connection", self.addr);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads `n` replies and returns how many were errors, with the first error's text.
    pub fn read_replies(&mut self, n: usize) -> Result<(u64, Option<String>)> {
        let mut errors = 0;
        let mut first = None;
        for _ in 0..n {
            if let Frame::Error(e) = self.read_reply()? {
                errors += 1;
                first.get_or_insert(e);
            }
        }
        Ok((errors, first))
    }

    /// Sends one command and returns its reply (an error reply is returned, not raised).
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Frame> {
        let mut req = Vec::new();
        push_command(&mut req, args);
        self.send(&req)?;
        self.read_reply()
    }

    /// Like [`call`](Self::call) but an error reply becomes an `Err`.
    pub fn call_ok(&mut self, args: &[&[u8]]) -> Result<Frame> {
        match self.call(args)? {
            Frame::Error(e) => bail!("{}: {e}", describe(args)),
            frame => Ok(frame),
        }
    }

    /// `INFO section` parsed into `field -> value`.
    pub fn info(&mut self, section: &str) -> Result<HashMap<String, String>> {
        let text = match self.call_ok(&[b"INFO", section.as_bytes()])? {
            Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            Frame::Verbatim(_, b) => String::from_utf8_lossy(&b).into_owned(),
            other => bail!("INFO {section}: unexpected reply {other:?}"),
        };
        Ok(parse_info(&text))
    }

    /// An integer reply (`DBSIZE`, `STRLEN`...).
    pub fn call_int(&mut self, args: &[&[u8]]) -> Result<i64> {
        match self.call_ok(args)? {
            Frame::Integer(n) => Ok(n),
            other => bail!("{}: expected an integer, got {other:?}", describe(args)),
        }
    }
}

/// How often [`wait_for_server`] tries again.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// Waits until the server at `addr` answers `PING`, for at most `wait`.
///
/// A server given by address may still be starting: in `docker/compose-oom.yaml` forkdb-cow's
/// container starts next to the server's, and `depends_on` waits for the container, not for the
/// port. So a refused connection, a name that does not resolve yet (the service's DNS entry) and
/// `-LOADING` (the server is reading its RDB file) are retried every 250 ms, said once on
/// stderr. Any other reply, errors like `-NOAUTH` included, means the server is up: the run then
/// fails on that reply with its own message.
pub fn wait_for_server(addr: &str, wait: Duration) -> Result<()> {
    let deadline = Instant::now() + wait;
    let mut said = false;
    loop {
        let why = match Conn::connect(addr).and_then(|mut c| c.call(&[b"PING"])) {
            Ok(Frame::Error(e)) if e.starts_with("LOADING") => format!("it replied -{e}"),
            Ok(_) => return Ok(()),
            Err(e) => format!("{e:#}"),
        };
        if crate::interrupted() {
            bail!("interrupted while waiting for {addr}");
        }
        if Instant::now() + RETRY_EVERY > deadline {
            bail!(
                "{addr} did not answer PING within {} s ({why}); is the server running? \
                 (--connect-wait-s sets how long to wait)",
                wait.as_secs_f64()
            );
        }
        if !said {
            eprintln!(
                "forkdb-cow: {addr} is not ready ({why}); retrying for up to {} s",
                wait.as_secs_f64()
            );
            said = true;
        }
        std::thread::sleep(RETRY_EVERY);
    }
}

/// `INFO` text → `field -> value` (section headers and blank lines skipped).
pub fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The command's words, for error messages (long arguments shortened).
fn describe(args: &[&[u8]]) -> String {
    args.iter()
        .map(|a| {
            let s = String::from_utf8_lossy(&a[..a.len().min(32)]).into_owned();
            if a.len() > 32 {
                format!("{s}...")
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Appends one multibulk request to `out`.
pub fn push_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        push_bulk(out, arg);
    }
}

fn push_bulk(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(arg.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// The name of key number `i`: `key:<12-digit zero-padded i>`.
pub fn key_name(i: u64) -> String {
    format!("key:{i:012}")
}

/// Appends `SET key:<i> value` to `out`, without allocating for the key.
pub fn push_set(out: &mut Vec<u8>, i: u64, value: &[u8]) {
    let mut key = [0u8; 24];
    let len = write_key(&mut key, i);
    out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
    push_bulk(out, &key[..len]);
    push_bulk(out, value);
}

/// `GET key:<i>`.
pub fn push_get(out: &mut Vec<u8>, i: u64) {
    let mut key = [0u8; 24];
    let len = write_key(&mut key, i);
    out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
    push_bulk(out, &key[..len]);
}

/// Writes `key:<i, 12 digits at least>` into `buf`, returning its length.
pub fn write_key(buf: &mut [u8; 24], i: u64) -> usize {
    buf[..4].copy_from_slice(b"key:");
    let mut digits = [0u8; 20];
    let mut n = i;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    let width = len.max(12);
    let mut pos = 4;
    for _ in len..width {
        buf[pos] = b'0';
        pos += 1;
    }
    for d in digits[..len].iter().rev() {
        buf[pos] = *d;
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        let mut buf = [0u8; 24];
        for i in [0u64, 7, 123_456_789_012, 9_999_999_999_999, u64::MAX] {
            let n = write_key(&mut buf, i);
            assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), key_name(i));
        }
        assert_eq!(key_name(42), "key:000000000042");
    }

    #[test]
    fn set_encoding() {
        let mut out = Vec::new();
        push_set(&mut out, 5, b"abc");
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000005\r\n$3\r\nabc\r\n".to_vec()
        );
    }

    /// A port nothing listens on: bound, then released.
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn waiting_for_no_server_gives_up_after_the_wait() {
        let addr = format!("127.0.0.1:{}", free_port());
        let t = Instant::now();
        let err = wait_for_server(&addr, Duration::from_millis(600)).unwrap_err();
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(350), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&addr) && msg.contains("did not answer PING"),
            "{msg}"
        );
    }

    /// A server that comes up late, and answers `-LOADING` first, is waited for; every
    /// connection the waiter made is accounted for.
    #[test]
    fn waiting_for_a_late_server_that_loads_first() {
        use std::io::BufRead;
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let server = std::thread::spawn(move || {
            // Not listening yet: the waiter's first attempts are refused.
            std::thread::sleep(Duration::from_millis(500));
            let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
            l.set_nonblocking(true).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            let accept = || loop {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        return s;
                    }
                    // Fails (not hangs) if the waiter stopped at -LOADING.
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => panic!("no second connection: {e}"),
                }
            };
            for reply in [
                "-LOADING Redis is loading the dataset in memory\r\n",
                "+PONG\r\n",
            ] {
                let s = accept();
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                // *1, $4, PING
                for _ in 0..3 {
                    line.clear();
                    r.read_line(&mut line).unwrap();
                }
                assert_eq!(line, "PING\r\n");
                (&s).write_all(reply.as_bytes()).unwrap();
            }
        });
        wait_for_server(&addr, Duration::from_secs(20)).unwrap();
        server.join().unwrap();
    }

    #[test]
    fn info_parsing() {
        let m = parse_info("# Server\r\nredis_version:7.0.15\r\nprocess_id:12\r\n\r\n");
        assert_eq!(m["redis_version"], "7.0.15");
        assert_eq!(m["process_id"], "12");
    }
}
