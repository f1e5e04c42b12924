//! Starting and stopping server processes: forkdb-server or a real redis-server, each on a free
//! loopback port with its own temporary directory, killed by pid when dropped.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::conn::Conn;

/// How long a server gets to answer its first PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server gets to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts when another process grabs the port between our probe and the server's bind.
const BIND_ATTEMPTS: usize = 5;

/// Which program a [`Server`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Forkdb,
    Redis,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Forkdb => "forkdb",
            Kind::Redis => "redis",
        }
    }

    pub fn binary(self) -> PathBuf {
        match self {
            Kind::Forkdb => forkdb_bin(),
            Kind::Redis => redis_server_bin(),
        }
    }
}

/// What `Server::forkdb` really starts: redis-server when `FORKDB_E2E_TARGET=redis`, so the whole
/// suite can be checked against real Redis.
pub fn forkdb_target() -> Kind {
    match std::env::var("FORKDB_E2E_TARGET").as_deref() {
        Ok("redis") => Kind::Redis,
        Ok("forkdb") | Ok("") | Err(_) => Kind::Forkdb,
        Ok(other) => panic!("FORKDB_E2E_TARGET must be `redis` or `forkdb`, not {other:?}"),
    }
}

/// The forkdb-server binary: `FORKDB_SERVER_BIN`, else `forkdb-server` in the target directory
/// this test executable was built into (`target/<profile>/deps/<test>` → `target/<profile>/`).
pub fn forkdb_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("FORKDB_SERVER_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "FORKDB_SERVER_BIN={} does not exist",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe
        .parent()
        .expect("test exe has a directory")
        .to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let path = dir.join("forkdb-server");
    assert!(
        path.is_file(),
        "{} not found: build it first: cargo build -p forkdb-server (or set FORKDB_SERVER_BIN, \
         or FORKDB_E2E_TARGET=redis to run the suite against redis-server)",
        path.display()
    );
    path
}

/// Finds a program from an environment variable or on `PATH`; panics with an install hint.
fn find_program(env: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path_var) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{name} not found on PATH (or in ${env}): these tests need a real Redis 7.0; \
         install it with `apt-get install redis-server redis-tools`"
    );
}

pub fn redis_server_bin() -> PathBuf {
    find_program("REDIS_SERVER_BIN", "redis-server")
}

pub fn redis_cli_bin() -> PathBuf {
    find_program("REDIS_CLI_BIN", "redis-cli")
}

pub fn redis_benchmark_bin() -> PathBuf {
    find_program("REDIS_BENCHMARK_BIN", "redis-benchmark")
}

pub fn redis_check_rdb_bin() -> PathBuf {
    find_program("REDIS_CHECK_RDB_BIN", "redis-check-rdb")
}

/// A port that was free a moment ago (the OS picks it; we release it for the server).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// A directory removed when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "forkdb-e2e-{label}-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A running server process. Dropping it stops the process (SIGTERM, then SIGKILL) and removes
/// its directory.
pub struct Server {
    pub port: u16,
    pub pid: u32,
    /// The server's working directory (`--dir`); its stdout/stderr go to `server.log` here.
    pub dir: PathBuf,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub kind: Kind,
    child: Child,
    exited: Option<ExitStatus>,
    _tmp: TempDir,
}

impl Server {
    /// Starts forkdb-server (or redis-server when `FORKDB_E2E_TARGET=redis`).
    pub fn forkdb(args: &[&str]) -> Server {
        Server::start(forkdb_target(), args)
    }

    /// Starts a real redis-server.
    pub fn redis(args: &[&str]) -> Server {
        Server::start(Kind::Redis, args)
    }

    /// Starts `kind` with `--port`, `--bind 127.0.0.1`, `--dir` and (unless `args` has its own)
    /// `--save ""`, then `args`. An `args[0]` not starting with `--` is a config file and goes
    /// first, as redis-server requires. Waits until the server answers PING with anything but
    /// `-LOADING` (with requirepass, NOAUTH counts), i.e. until its data set is loaded.
    pub fn start(kind: Kind, args: &[&str]) -> Server {
        Server::start_with(kind, args, false)
    }

    /// [`start`](Self::start), but returns as soon as the server answers at all: `-LOADING`
    /// while it still loads its RDB file counts.
    pub fn start_loading(kind: Kind, args: &[&str]) -> Server {
        Server::start_with(kind, args, true)
    }

    fn start_with(kind: Kind, args: &[&str], loading_is_ready: bool) -> Server {
        let mut last_log = String::new();
        for _ in 0..BIND_ATTEMPTS {
            let mut server = Server::spawn(kind, free_port(), args);
            match server.wait_ready(loading_is_ready) {
                Ok(()) => return server,
                Err(log) => {
                    last_log = log;
                    let lower = last_log.to_lowercase();
                    let bind_race =
                        lower.contains("address already in use") || lower.contains("addrinuse");
                    if !bind_race {
                        break;
                    }
                }
            }
        }
        panic!(
            "{} ({}) did not start; its output:\n{last_log}",
            kind.name(),
            kind.binary().display()
        );
    }

    /// Starts `kind` on the given `port` rather than a free one (a restart on the port a killed
    /// server held). One attempt: `Err` carries the server's output when it did not come up
    /// (e.g. `Address already in use`).
    pub fn start_on_port(kind: Kind, port: u16, args: &[&str]) -> Result<Server, String> {
        let mut server = Server::spawn(kind, port, args);
        // On an error the server is dropped, which stops it by pid.
        server.wait_ready(false).map(|()| server)
    }

    /// Spawns `kind` on `port` in a directory of its own (its `server.log` there): the config
    /// file if `args` starts with one, then `--port`, `--bind 127.0.0.1`, `--dir`, `--save ""`
    /// unless `args` has one, then `args`. Does not wait for it.
    fn spawn(kind: Kind, port: u16, args: &[&str]) -> Server {
        let bin = kind.binary();
        let tmp = TempDir::new(kind.name());
        let dir = tmp.path().to_path_buf();
        let log = fs::File::create(dir.join("server.log")).expect("create server.log");
        let mut cmd = Command::new(&bin);
        let (config, rest) = match args.first() {
            Some(first) if !first.starts_with("--") => (Some(*first), &args[1..]),
            _ => (None, args),
        };
        if let Some(config) = config {
            cmd.arg(config);
        }
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(&dir);
        if !rest.contains(&"--save") {
            cmd.args(["--save", ""]);
        }
        cmd.args(rest)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        Server {
            port,
            pid: child.id(),
            dir,
            addr: format!("127.0.0.1:{port}"),
            kind,
            child,
            exited: None,
            _tmp: tmp,
        }
    }

    /// Polls until the server answers a PING (any reply counts: with requirepass it is NOAUTH;
    /// `-LOADING` only if `loading_is_ready`).
    fn wait_ready(&mut self, loading_is_ready: bool) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return Err(format!("exited with {status}:\n{}", self.log()));
            }
            if let Ok(mut conn) = Conn::connect(self.port) {
                conn.set_read_timeout(Duration::from_secs(1));
                if conn.send(b"*1\r\n$4\r\nPING\r\n").is_ok() {
                    match conn.read_reply() {
                        Ok(r) if loading_is_ready || !r.starts_with(b"-LOADING") => return Ok(()),
                        _ => {}
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!(
            "no reply to PING within {START_TIMEOUT:?}:\n{}",
            self.log()
        ))
    }

    /// A new raw connection.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
            .unwrap_or_else(|e| panic!("connecting to {} ({}): {e}", self.addr, self.kind.name()))
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `sig` to the server process. Does nothing once the process has been reaped (its pid
    /// may then belong to another process).
    pub fn signal(&mut self, sig: libc::c_int) {
        if self.exited.is_some() {
            return;
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            self.exited = Some(status);
            return;
        }
        // The pid is our own child and has not been reaped (try_wait said it is still running,
        // or a zombie we have not waited for), so it cannot have been reused by another process.
        unsafe {
            libc::kill(self.pid as libc::pid_t, sig);
        }
    }

    /// The pids of the server's child processes (e.g. a snapshot child), from `/proc`.
    pub fn child_pids(&self) -> Vec<u32> {
        child_pids(self.pid)
    }

    /// Sets the server's soft `RLIMIT_FSIZE` (the hard limit is kept, so it can be raised again):
    /// `Some(bytes)` makes writes past `bytes` fail with EFBIG (and raise SIGXFSZ), `None` lifts
    /// it. A forked child inherits the limit in force at the fork.
    ///
    /// Keep the limit well above what the server logs: its log is a file too.
    pub fn set_file_size_limit(&self, bytes: Option<u64>) {
        assert!(self.exited.is_none(), "the server has exited");
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: reads the limits of our own (unreaped) child into a valid struct.
        let rc = unsafe {
            libc::prlimit(
                self.pid as libc::pid_t,
                libc::RLIMIT_FSIZE,
                std::ptr::null(),
                &mut old,
            )
        };
        assert_eq!(
            rc,
            0,
            "prlimit(RLIMIT_FSIZE) read: {}",
            std::io::Error::last_os_error()
        );
        let new = libc::rlimit {
            rlim_cur: bytes.map_or(libc::RLIM_INFINITY, |b| b as libc::rlim_t),
            rlim_max: old.rlim_max,
        };
        // SAFETY: as above, with a valid new limit.
        let rc = unsafe {
            libc::prlimit(
                self.pid as libc::pid_t,
                libc::RLIMIT_FSIZE,
                &new,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(
            rc,
            0,
            "prlimit(RLIMIT_FSIZE) set: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// What `/proc/<pid>/stat` says about a process (its parent, state letter, start time: with
/// the pid, the start time names one process even if the pid is reused), from the one `/proc`
/// reader of the workspace.
pub use forkdb_snapshot::procfs::Stat as ProcStat;

/// Reads `/proc/<pid>/stat`; `None` if there is no such process.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    forkdb_snapshot::procfs::stat(pid)
}

/// Is `pid` a live process (not gone, not a zombie)?
pub fn proc_alive(pid: u32) -> bool {
    forkdb_snapshot::procfs::alive(pid)
}

/// The pids of the live processes whose parent is `pid`.
pub fn child_pids(pid: u32) -> Vec<u32> {
    forkdb_snapshot::procfs::children(pid)
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() {
            self.signal(libc::SIGTERM);
            if self.wait_exit(STOP_TIMEOUT).is_none() {
                self.signal(libc::SIGKILL);
                let _ = self.child.wait();
            }
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!(
                "--- last lines of {} on port {} ---\n{}",
                self.kind.name(),
                self.port,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

/// Runs a command to completion with a deadline (killing it if it overruns), feeding it `input`
/// on stdin (or an empty stdin).
pub fn run_with_deadline(mut cmd: Command, input: Option<&[u8]>, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let stdin = child.stdin.take().expect("piped stdin");
    let input = input.unwrap_or_default().to_vec();
    let feeder = std::thread::spawn(move || {
        let mut stdin = stdin;
        // The program may exit without reading everything; that is its business.
        let _ = stdin.write_all(&input);
    });
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            // `Child::kill` never signals a pid that was already reaped.
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = feeder.join();
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Runs the server under test (its binary directly) on `dir`, with a config file first if given,
/// then a free port, `--save ""`, `--dir dir` and `args`, and expects it to refuse to start.
/// Returns what it printed (stdout, then stderr).
pub fn start_expecting_failure(config: Option<&Path>, dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(forkdb_target().binary());
    if let Some(config) = config {
        cmd.arg(config);
    }
    cmd.args([
        "--port",
        &free_port().to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
    ])
    .arg(dir)
    .args(args)
    .current_dir(dir);
    let out = run_with_deadline(cmd, None, Duration::from_secs(20));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "the server started on {} with {args:?} (exit {}):\n{text}",
        dir.display(),
        out.status
    );
    text
}
