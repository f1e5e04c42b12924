//! Helpers shared by the integration tests: fixtures, temp dirs, and a real
//! redis-server on a free port.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A committed fixture from `tests/data`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "forkdb-snapshot-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Names of the entries in the directory, sorted.
    pub fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fails the test, with the way to fix it, when a Redis tool is missing: these
/// tests compare with real Redis and must not pass by skipping.
pub fn require_tool(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{tool}` not found: install Redis's tools (Debian: `apt-get install redis-server redis-tools`; \
         scripts/test does it) to run the interoperability tests"
    );
}

/// Runs `redis-check-rdb` on a file.
pub fn redis_check_rdb(path: &Path) -> Output {
    require_tool("redis-check-rdb");
    Command::new("redis-check-rdb").arg(path).output().unwrap()
}

/// A redis-server started for one test, killed (by its pid) when dropped.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl RedisServer {
    /// Starts redis-server with `--dir dir --dbfilename dbfilename` (loading
    /// that file if it exists) and no automatic saves; it logs to
    /// `dir/redis.log`.
    pub fn start(dir: &Path, dbfilename: &str) -> Self {
        Self::start_with(dir, dbfilename, &[])
    }

    /// [`RedisServer::start`] with more command-line options (e.g.
    /// `["--enable-debug-command", "yes"]`).
    pub fn start_with(dir: &Path, dbfilename: &str, extra: &[&str]) -> Self {
        require_tool("redis-server");
        require_tool("redis-cli");
        // Ask the kernel for a free port, then hand it to Redis.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("redis.log");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .args([
                "--dbfilename",
                dbfilename,
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(extra)
            .args(["--daemonize", "no", "--logfile"])
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning redis-server");
        let mut server = RedisServer { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "redis-server exited with {status} while starting:\n{}",
                    server.log()
                );
            }
            let ping = server.cli_raw(0, &["PING"]);
            if ping.status.success() && ping.stdout.starts_with(b"PONG") {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs redis-cli in `--raw` mode against db `db`.
    pub fn cli_raw(&self, db: u32, args: &[&str]) -> Output {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "-n", &db.to_string(), "--raw"])
            .args(args)
            .output()
            .unwrap()
    }

    /// The reply to a command as bytes, without redis-cli's final newline.
    pub fn cli(&self, db: u32, args: &[&str]) -> Vec<u8> {
        let out = self.cli_raw(db, args);
        assert!(out.status.success(), "redis-cli {args:?} failed: {out:?}");
        let mut reply = out.stdout;
        assert_eq!(reply.pop(), Some(b'\n'), "redis-cli output for {args:?}");
        reply
    }

    /// A command whose reply is an integer.
    pub fn cli_int(&self, db: u32, args: &[&str]) -> i64 {
        let reply = self.cli(db, args);
        String::from_utf8(reply.clone())
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{args:?}: not an integer: {reply:?}"))
    }

    /// Sends one command over RESP (binary-safe, unlike redis-cli's argv)
    /// and returns the raw reply line(s) read until the first CRLF.
    pub fn command(&self, args: &[&[u8]]) -> Vec<u8> {
        use std::io::{BufRead, BufReader};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        stream.write_all(&req).unwrap();
        let mut line = Vec::new();
        BufReader::new(stream).read_until(b'\n', &mut line).unwrap();
        line
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes bytes to a file in `dir`, returning its path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(bytes).unwrap();
    path
}
