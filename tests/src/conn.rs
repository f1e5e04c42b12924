//! A raw RESP connection: send exact bytes, read exactly one reply, notice when the server closes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::resp::{self, Frame};

/// How long a read waits for a reply unless the test says otherwise.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A blocking TCP connection speaking raw RESP.
pub struct Conn {
    stream: TcpStream,
    /// Bytes received but not yet handed out as a reply.
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to 127.0.0.1:`port` with `TCP_NODELAY` and the default read timeout.
    pub fn connect(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(DEFAULT_READ_TIMEOUT))?;
        stream.set_write_timeout(Some(DEFAULT_READ_TIMEOUT))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// The underlying socket (e.g. to clone it for a writer thread).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("set_read_timeout");
    }

    /// Writes all of `bytes` (one `write` burst; with `TCP_NODELAY` it leaves at once).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Sends one command as a RESP array of bulk strings.
    pub fn send_cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        self.send(&resp::encode_command(args))
    }

    /// Reads the raw bytes of exactly one reply. A closed connection is `UnexpectedEof`
    /// (or `ConnectionReset`), a silent server is `TimedOut`.
    pub fn read_reply(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match resp::parse(&self.buf) {
                Ok(Some((_, used))) => return Ok(self.buf.drain(..used).collect()),
                Ok(None) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{e} in {}", resp::show(&self.buf)),
                    ))
                }
            }
            self.fill()?;
        }
    }

    /// Reads one reply and parses it.
    pub fn read_frame(&mut self) -> io::Result<Frame> {
        let raw = self.read_reply()?;
        Ok(resp::parse(&raw)
            .expect("complete reply")
            .expect("complete reply")
            .0)
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "server closed the connection (unparsed: {})",
                    resp::show(&self.buf)
                ),
            )),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "timed out waiting for a reply",
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// Sends a command and returns its raw reply; panics (naming the command) on I/O failure.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        let name = args
            .iter()
            .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        self.send_cmd(args)
            .unwrap_or_else(|e| panic!("sending `{name}`: {e}"));
        self.read_reply()
            .unwrap_or_else(|e| panic!("reading the reply to `{name}`: {e}"))
    }

    /// Sends a command and returns its parsed reply.
    pub fn frame<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Frame {
        let raw = self.cmd(args);
        resp::parse(&raw)
            .expect("complete reply")
            .expect("complete reply")
            .0
    }

    /// Sends a command and asserts that its raw reply is exactly `expected`.
    #[track_caller]
    pub fn assert_cmd<A: AsRef<[u8]>>(&mut self, args: &[A], expected: &[u8]) {
        let got = self.cmd(args);
        let name = args
            .iter()
            .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(resp::show(&got), resp::show(expected), "reply to `{name}`");
    }

    /// Waits up to `timeout` for the server to close the connection. Returns the bytes that
    /// arrived before the close, or `None` if the connection is still open at the deadline.
    pub fn wait_closed(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream
                .set_read_timeout(Some(left.min(Duration::from_millis(200))))
                .ok()?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Some(std::mem::take(&mut self.buf)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset is a close too (the server closed with unread input pending).
                Err(_) => return Some(std::mem::take(&mut self.buf)),
            }
        }
    }

    /// Bytes received but not consumed yet.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Closes our writing half (the server sees EOF on its read side).
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}
