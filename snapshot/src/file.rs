//! The life of a snapshot file, independent of what is written into it.
//!
//! [`save_atomically`] does what Redis's `rdbSave` does around the encoding:
//!
//! ```text
//! open  dir/temp-<pid>.rdb (create, truncate)
//! write (the caller's closure, through a BufWriter)
//! flush, fsync, close          -- data is on disk before it gets the name
//! rename temp -> dir/dump.rdb  -- atomic: readers see old or new, never half
//! fsync dir                    -- the rename itself survives a crash
//! on failure before the rename: unlink the temp file, return the error;
//!                               the old dump.rdb is untouched
//! ```
//!
//! All paths go through one directory descriptor (`openat`, `renameat`,
//! `unlinkat`), so the directory synced is the one renamed in, and no path is
//! joined. It is written for a forked child: plain `std`/`libc` calls, no
//! locks, no logging, no panics, and no allocation but the `BufWriter`'s
//! buffer (names are converted to C strings on the stack; errors are
//! `io::Error`s made from errno, which do not allocate).

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
/// Make it in the parent, before forking.
pub fn temp_file_name(pid: u32) -> String {
    format!("temp-{pid}.rdb")
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
    let dir_c = StackCStr::new(dir.as_os_str().as_bytes())?;
    let tmp_c = StackCStr::new(tmp_name.as_bytes())?;
    let final_c = StackCStr::new(dbfilename.as_bytes())?;

    // SAFETY: a valid NUL-terminated path; the result is checked.
    let dir_fd = unsafe {
        libc::open(
            dir_c.as_cstr().as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir_fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dir_fd` was just opened and nothing else owns it.
    let dir_fd = unsafe { OwnedFd::from_raw_fd(dir_fd) };

    if let Err(e) = write_and_rename(&dir_fd, tmp_c.as_cstr(), final_c.as_cstr(), write) {
        // SAFETY: valid directory fd and name. The temp file may not exist
        // (open failed), so the result is irrelevant.
        unsafe { libc::unlinkat(dir_fd.as_raw_fd(), tmp_c.as_cstr().as_ptr(), 0) };
        return Err(e);
    }

    // SAFETY: valid fd.
    if unsafe { libc::fsync(dir_fd.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn write_and_rename(
    dir_fd: &OwnedFd,
    tmp: &CStr,
    final_name: &CStr,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
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
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    let file = unsafe { File::from_raw_fd(fd) };
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);

    let written = write(&mut out).and_then(|()| out.flush());
    // `into_parts` does not flush: after a failure the buffered rest is
    // dropped instead of being written into a file about to be removed.
    let (file, _) = out.into_parts();
    written?;
    file.sync_all()?;
    // Close explicitly: on some file systems (NFS) a write error surfaces only
    // at close, and `File`'s drop would ignore it.
    let fd = file.into_raw_fd();
    // SAFETY: we own `fd` and close it once.
    if unsafe { libc::close(fd) } != 0 {
        return Err(io::Error::last_os_error());
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
        return Err(io::Error::last_os_error());
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
    }
}
