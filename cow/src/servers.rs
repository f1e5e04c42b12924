//! Servers the tool starts itself (`compare`, `sweep --server-bin`): on a free 127.0.0.1 port,
//! in a temporary `--dir`, with `--save ""`; stopped by pid (SIGTERM, then SIGKILL) when
//! dropped, which happens on success, on error and after Ctrl-C alike.
//!
//! A started server gets its own process group, so a Ctrl-C at the terminal reaches only the
//! tool, which then stops it in order; and `PR_SET_PDEATHSIG` (SIGKILL), so it does not outlive
//! the tool even if the tool itself is killed.

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::resp::Conn;

const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const BIND_ATTEMPTS: usize = 5;

/// Which kind of server a binary is: redis-server gets `--appendonly no` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Forkdb,
    Redis,
}

impl Flavor {
    /// Guessed from the file name (`redis-server`, `redis-stack-server`... → Redis).
    pub fn of(bin: &Path) -> Flavor {
        let name = bin
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if name.contains("redis") {
            Flavor::Redis
        } else {
            Flavor::Forkdb
        }
    }
}

/// A server process this tool started.
pub struct ManagedServer {
    pub addr: String,
    pub pid: u32,
    pub dir: PathBuf,
    child: Child,
    reaped: bool,
}

/// A port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// `name=value` options → `--name value` arguments.
pub fn config_args(options: &[String]) -> Result<Vec<String>> {
    let mut args = Vec::new();
    for o in options {
        let (name, value) = o
            .split_once('=')
            .ok_or_else(|| anyhow!("{o:?}: expected name=value"))?;
        args.push(format!("--{}", name.trim_start_matches("--")));
        args.push(value.to_owned());
    }
    Ok(args)
}

impl ManagedServer {
    /// Starts `bin --port P --bind 127.0.0.1 --dir D --save "" [--appendonly no] extra...` and
    /// waits for it to answer PING.
    pub fn start(bin: &Path, flavor: Flavor, extra: &[String]) -> Result<ManagedServer> {
        if !bin.is_file() {
            bail!("{} does not exist", bin.display());
        }
        let mut last = String::new();
        for _ in 0..BIND_ATTEMPTS {
            let port = free_port()?;
            let dir = temp_dir(&format!("{flavor:?}-{port}").to_lowercase())?;
            let log = fs::File::create(dir.join("server.log"))?;
            let mut cmd = Command::new(bin);
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
                .arg(&dir)
                .args(["--save", ""]);
            if flavor == Flavor::Redis {
                cmd.args(["--appendonly", "no"]);
            }
            cmd.args(extra)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .process_group(0);
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            let mut server = ManagedServer {
                addr: format!("127.0.0.1:{port}"),
                pid: child.id(),
                dir,
                child,
                reaped: false,
            };
            match server.wait_ready() {
                Ok(()) => return Ok(server),
                Err(e) => {
                    last = format!("{e:#}\n{}", server.log());
                    let lower = last.to_lowercase();
                    if !(lower.contains("address already in use") || lower.contains("addrinuse")) {
                        break;
                    }
                }
            }
        }
        bail!("{} did not start:\n{last}", bin.display())
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.reaped = true;
                bail!("exited with {status}");
            }
            if let Ok(mut c) = Conn::connect(&self.addr) {
                if c.call(&[b"PING"]).is_ok() {
                    return Ok(());
                }
            }
            if crate::interrupted() {
                bail!("interrupted");
            }
            if Instant::now() > deadline {
                bail!("no reply to PING within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the server printed.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Stops the server: SIGTERM, then SIGKILL if it has not exited within the timeout.
    pub fn stop(&mut self) {
        if self.reaped {
            return;
        }
        if let Ok(Some(_)) = self.child.try_wait() {
            self.reaped = true;
            return;
        }
        // SAFETY: plain kill(2) of our own child, which has not been reaped (try_wait said it is
        // still there), so its pid cannot have been reused.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                self.reaped = true;
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // `Child::kill` sends SIGKILL to this pid only.
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }
}

impl Drop for ManagedServer {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(label: &str) -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir =
        std::env::temp_dir().join(format!("forkdb-cow-{label}-{}-{nanos}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The default forkdb-server: `$FORKDB_SERVER_BIN`, else `target/release/forkdb-server` of the
/// workspace (`$CARGO_TARGET_DIR/release` first when that is set), else `forkdb-server` next to
/// this executable.
pub fn default_forkdb_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FORKDB_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let mut candidates = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(t).join("release/forkdb-server"));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    candidates.push(workspace.join("target/release/forkdb-server"));
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("forkdb-server"));
        }
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| workspace.join("target/release/forkdb-server"))
}

/// `redis-server` on `PATH` (or `$REDIS_SERVER_BIN`).
pub fn default_redis_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("REDIS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        assert_eq!(
            config_args(&["snapshot-headroom=no".into(), "--hz=100".into()]).unwrap(),
            vec!["--snapshot-headroom", "no", "--hz", "100"]
        );
        assert!(config_args(&["x".into()]).is_err());
        assert_eq!(
            Flavor::of(Path::new("/usr/bin/redis-server")),
            Flavor::Redis
        );
        assert_eq!(
            Flavor::of(Path::new("target/release/forkdb-server")),
            Flavor::Forkdb
        );
    }
}
