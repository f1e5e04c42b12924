//! The life of a snapshot file, independent of what is written into it.
//!
//! [`save_atomically`] does what Redis's `rdbSave` does around the encoding:
//!
//! ```text
//! open  dir/temp-<pid>.rdb (create, truncate)       step "open"
//! write (the caller's closure, through a BufWriter)  step "write", then "flush"
//! fsync, close -- data is on disk before the name   steps "fsync", "close"
//! may I rename? (the caller's check)               "rename-refused" if not
//! rename temp -> dir/dump.rdb  -- atomic: readers see old or new, never half
//!                                                    step "rename"
//! fsync dir    -- the rename itself survives a crash step "dir-fsync"
//! on failure before the rename: unlink the temp file, return the error and
//!                               its step; the old dump.rdb is untouched
//! ```
//!
//! [`save_atomically_checked`] is the same with the "may I rename?" hook and an error that
//! names the [`Step`] that failed: a forked child asks there whether its parent is still alive,
//! so that an orphan never puts an old snapshot over a newer one (see `fork`).
//!
//! All paths go through one directory descriptor (`openat`, `renameat`,
//! `unlinkat`), so the directory synced is the one renamed in, and no path is
//! joined. It is written for a forked child: plain `std`/`libc` calls, no
//! locks, no logging, no panics, and no allocation but the `BufWriter`'s
//! buffer (names are converted to C strings on the stack, [`TempName`] formats
//! `temp-<pid>.rdb` on the stack; errors are `io::Error`s made from errno,
//! which do not allocate).

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Size of the write buffer: large enough that a big dataset is written in
/// few system calls, small enough to be irrelevant next to it.
const WRITE_BUFFER: usize = 64 * 1024;

/// The temp file name Redis uses for a save by process `pid`: `temp-<pid>.rdb`.
/// For the parent (SAVE, cleaning up after a killed child); a forked child uses [`TempName`].
pub fn temp_file_name(pid: u32) -> String {
    TempName::for_pid(pid).as_str().to_owned()
}

/// `temp-<pid>.rdb` formatted on the stack, without allocating.
///
/// Redis's child names its file after its own pid (`rdbSave`: `temp-%d.rdb` of `getpid()`),
/// and the parent removes `temp-<child pid>.rdb` after a killed child. The child's pid is not
/// known before `fork()`, so the child formats it itself, here, into a fixed buffer: the
/// same name as Redis's, with nothing left to allocate.
#[derive(Clone, Copy)]
pub struct TempName {
    buf: [u8; 32],
    len: usize,
}

impl TempName {
    pub fn for_pid(pid: u32) -> TempName {
        const PREFIX: &[u8] = b"temp-";
        const SUFFIX: &[u8] = b".rdb";
        let mut digits = [0u8; 10];
        let mut n = pid;
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut name = TempName {
            buf: [0; 32],
            len: 0,
        };
        // 5 + at most 10 digits + 4 bytes: always fits in 32.
        for part in [PREFIX, &digits[start..], SUFFIX] {
            name.buf[name.len..name.len + part.len()].copy_from_slice(part);
            name.len += part.len();
        }
        name
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII was written; the fallback cannot happen.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("temp.rdb")
    }

    pub fn as_os_str(&self) -> &OsStr {
        OsStr::from_bytes(&self.buf[..self.len])
    }
}

/// The step of a save that failed: what Redis's `rdbSave` names in its log line
/// (`err_op`), and what the child reports to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Opening the directory or creating the temp file.
    Open,
    /// Writing the content (the caller's closure).
    Write,
    /// Writing out what was left in the write buffer.
    Flush,
    /// `fsync` of the temp file.
    Fsync,
    /// `close` of the temp file (NFS reports some write errors only there).
    Close,
    /// Renaming the temp file over the destination.
    Rename,
    /// `fsync` of the directory after the rename.
    DirFsync,
    /// The caller's "may I rename?" check said no: the temp file was removed and nothing
    /// renamed (an orphaned snapshot child).
    RenameRefused,
}

impl Step {
    /// The step's name, as SNAPSHOT shows it.
    pub fn name(self) -> &'static str {
        match self {
            Step::Open => "open",
            Step::Write => "write",
            Step::Flush => "flush",
            Step::Fsync => "fsync",
            Step::Close => "close",
            Step::Rename => "rename",
            Step::DirFsync => "dir-fsync",
            Step::RenameRefused => "rename-refused",
        }
    }

    /// A stable number for the step, for fixed-size messages (0 is "no step").
    pub fn code(self) -> u32 {
        match self {
            Step::Open => 1,
            Step::Write => 2,
            Step::Flush => 3,
            Step::Fsync => 4,
            Step::Close => 5,
            Step::Rename => 6,
            Step::DirFsync => 7,
            Step::RenameRefused => 8,
        }
    }

    pub fn from_code(code: u32) -> Option<Step> {
        Some(match code {
            1 => Step::Open,
            2 => Step::Write,
            3 => Step::Flush,
            4 => Step::Fsync,
            5 => Step::Close,
            6 => Step::Rename,
            7 => Step::DirFsync,
            8 => Step::RenameRefused,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed save: the step that failed and why.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct SaveError {
    pub step: Step,
    #[source]
    pub source: io::Error,
}

impl SaveError {
    fn at(step: Step) -> impl FnOnce(io::Error) -> SaveError {
        move |source| SaveError { step, source }
    }

    fn last_os_error(step: Step) -> SaveError {
        SaveError {
            step,
            source: io::Error::last_os_error(),
        }
    }

    /// The errno to report: the OS error, or `EIO` for an error that carries none (one the
    /// writing closure made up), so that a failure never reads as "success" (errno 0).
    pub fn errno(&self) -> i32 {
        match self.step {
            Step::RenameRefused => libc::ECANCELED,
            _ => self.source.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

impl From<SaveError> for io::Error {
    fn from(e: SaveError) -> io::Error {
        e.source
    }
}

/// Creates `dir/tmp_name`, lets `write` fill it, makes it durable and renames
/// it over `dir/dbfilename`, then syncs `dir`.
///
/// On any failure up to and including the rename, the temp file is removed
/// and `dir/dbfilename` is left as it was; the first error is returned. If
/// only the final directory sync fails, the new file is in place but its name
/// may not survive a crash: that error is returned too.
///
/// `tmp_name` and `dbfilename` are names relative to `dir`.
///
/// If `write` panics, the panic goes through and the temp file stays: a forked
/// child should not unwind anyway (catch it and `_exit`), and the parent then
/// removes `temp-<child pid>.rdb`, as Redis's `rdbRemoveTempFile` does.
pub fn save_atomically(
    dir: &Path,
    dbfilename: &OsStr,
    tmp_name: &OsStr,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    save_atomically_checked(dir, dbfilename, tmp_name, || true, write).map_err(io::Error::from)
}

/// [`save_atomically`] with a hook and the failed step.
///
/// `may_rename` is called once the temp file is complete and durable, right
/// before the rename: if it returns false, the temp file is removed, nothing is
/// renamed, and the error's step is [`Step::RenameRefused`]. A forked child
/// checks there that its parent is still the process that forked it: an orphan
/// must not put its (older) snapshot over a file a restarted server saved since.
pub fn save_atomically_checked(
    dir: &Path,
    dbfilename: &OsStr,
    tmp_name: &OsStr,
    may_rename: impl FnOnce() -> bool,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), SaveError> {
    let dir_c = StackCStr::new(dir.as_os_str().as_bytes()).map_err(SaveError::at(Step::Open))?;
    let tmp_c = StackCStr::new(tmp_name.as_bytes()).map_err(SaveError::at(Step::Open))?;
    let final_c = StackCStr::new(dbfilename.as_bytes()).map_err(SaveError::at(Step::Rename))?;

    // SAFETY: a valid NUL-terminated path; the result is checked.
    let dir_fd = unsafe {
        libc::open(
            dir_c.as_cstr().as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir_fd < 0 {
        return Err(SaveError::last_os_error(Step::Open));
    }
    // SAFETY: `dir_fd` was just opened and nothing else owns it.
    let dir_fd = unsafe { OwnedFd::from_raw_fd(dir_fd) };

    let done = write_and_rename(
        &dir_fd,
        tmp_c.as_cstr(),
        final_c.as_cstr(),
        may_rename,
        write,
    );
    if let Err(e) = done {
        // SAFETY: valid directory fd and name. The temp file may not exist
        // (open failed), so the result is irrelevant.
        unsafe { libc::unlinkat(dir_fd.as_raw_fd(), tmp_c.as_cstr().as_ptr(), 0) };
        return Err(e);
    }

    // SAFETY: valid fd.
    if unsafe { libc::fsync(dir_fd.as_raw_fd()) } != 0 {
        return Err(SaveError::last_os_error(Step::DirFsync));
    }
    Ok(())
}

/// The diskless variant of [`save_atomically`]: `write` fills the pipe `out` (its write end)
/// through the same kind of `BufWriter`, and the pipe is closed at the end (the reader sees end
/// of file). No file, no fsync, no rename: the reader (the server's event loop, which relays the
/// bytes to replicas, Redis's `rdbSaveToSlavesSockets`) decides what a complete stream is, from
/// how the writer ended. A reader that went away makes the writes fail with `EPIPE` (the child
/// ignores SIGPIPE, Rust programs too), step "write". For a forked child as the rest of this
/// module: no allocation but the buffer.
pub fn save_to_pipe(
    out: OwnedFd,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), SaveError> {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, File::from(out));
    let written = write(&mut out).map_err(SaveError::at(Step::Write));
    let written = written.and_then(|()| out.flush().map_err(SaveError::at(Step::Flush)));
    // Not flushed again on drop after a failure (see `write_and_rename`).
    let (file, _) = out.into_parts();
    written?;
    let fd = file.into_raw_fd();
    // SAFETY: we own `fd` and close it once.
    if unsafe { libc::close(fd) } != 0 {
        return Err(SaveError::last_os_error(Step::Close));
    }
    Ok(())
}

fn write_and_rename(
    dir_fd: &OwnedFd,
    tmp: &CStr,
    final_name: &CStr,
    may_rename: impl FnOnce() -> bool,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), SaveError> {
    // 0o666 filtered by the umask, like Redis's fopen(..., "w").
    // SAFETY: valid directory fd and NUL-terminated name; result checked.
    let fd = unsafe {
        libc::openat(
            dir_fd.as_raw_fd(),
            tmp.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o666 as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(SaveError::last_os_error(Step::Open));
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    let file = unsafe { File::from_raw_fd(fd) };
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);

    let written = write(&mut out).map_err(SaveError::at(Step::Write));
    let written = written.and_then(|()| out.flush().map_err(SaveError::at(Step::Flush)));
    // `into_parts` does not flush: after a failure the buffered rest is
    // dropped instead of being written into a file about to be removed.
    let (file, _) = out.into_parts();
    written?;
    file.sync_all().map_err(SaveError::at(Step::Fsync))?;
    // Close explicitly: on some file systems (NFS) a write error surfaces only
    // at close, and `File`'s drop would ignore it.
    let fd = file.into_raw_fd();
    // SAFETY: we own `fd` and close it once.
    if unsafe { libc::close(fd) } != 0 {
        return Err(SaveError::last_os_error(Step::Close));
    }

    if !may_rename() {
        return Err(SaveError {
            step: Step::RenameRefused,
            source: io::Error::from_raw_os_error(libc::ECANCELED),
        });
    }
    // SAFETY: valid directory fd and names.
    let renamed = unsafe {
        libc::renameat(
            dir_fd.as_raw_fd(),
            tmp.as_ptr(),
            dir_fd.as_raw_fd(),
            final_name.as_ptr(),
        )
    };
    if renamed != 0 {
        return Err(SaveError::last_os_error(Step::Rename));
    }
    Ok(())
}

/// A NUL-terminated copy of a path on the stack, so that calling `open` does
/// not allocate.
struct StackCStr {
    buf: [u8; libc::PATH_MAX as usize],
    len: usize,
}

impl StackCStr {
    fn new(bytes: &[u8]) -> io::Result<Self> {
        let mut s = StackCStr {
            buf: [0; libc::PATH_MAX as usize],
            len: bytes.len(),
        };
        // Room for the NUL; an interior NUL would cut the name short.
        if bytes.len() >= s.buf.len() {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        if bytes.is_empty() || bytes.contains(&0) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        s.buf[..bytes.len()].copy_from_slice(bytes);
        Ok(s)
    }

    fn as_cstr(&self) -> &CStr {
        // The buffer holds `len` non-NUL bytes then at least one NUL, so this
        // finds exactly our string; the fallback cannot happen.
        CStr::from_bytes_until_nul(&self.buf[..=self.len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_cstr_rejects_nul_empty_and_too_long() {
        assert!(StackCStr::new(b"a\0b").is_err());
        assert!(StackCStr::new(b"").is_err());
        assert!(StackCStr::new(&[b'a'; 5000]).is_err());
        assert_eq!(StackCStr::new(b"dump.rdb").unwrap().as_cstr(), c"dump.rdb");
    }

    #[test]
    fn temp_name_is_redis_style() {
        assert_eq!(temp_file_name(42), "temp-42.rdb");
        assert_eq!(TempName::for_pid(0).as_str(), "temp-0.rdb");
        assert_eq!(TempName::for_pid(u32::MAX).as_str(), "temp-4294967295.rdb");
        assert_eq!(
            TempName::for_pid(1234567).as_os_str(),
            OsStr::new("temp-1234567.rdb")
        );
    }

    #[test]
    fn step_codes_round_trip() {
        for step in [
            Step::Open,
            Step::Write,
            Step::Flush,
            Step::Fsync,
            Step::Close,
            Step::Rename,
            Step::DirFsync,
            Step::RenameRefused,
        ] {
            assert_eq!(Step::from_code(step.code()), Some(step));
        }
        assert_eq!(Step::from_code(0), None);
        assert_eq!(Step::from_code(99), None);
    }
}
