//! The file lifecycle on its own (no RDB encoding needed): the new file
//! replaces the old one only when complete; on failure the temp file is
//! removed and the old file kept. And it works in a forked child.

mod common;

use std::io::{self, Write};

use common::TempDir;
use forkdb_snapshot::{save_atomically, save_atomically_checked, temp_file_name, SaveError, Step};

fn save(
    dir: &TempDir,
    write: impl FnOnce(&mut io::BufWriter<std::fs::File>) -> io::Result<()>,
) -> io::Result<()> {
    save_atomically(
        dir.path(),
        "dump.rdb".as_ref(),
        "temp-1234.rdb".as_ref(),
        write,
    )
}

fn contents(dir: &TempDir) -> Vec<u8> {
    std::fs::read(dir.path().join("dump.rdb")).unwrap()
}

#[test]
fn replaces_the_old_file_and_leaves_no_temp() {
    let dir = TempDir::new("life-ok");
    std::fs::write(dir.path().join("dump.rdb"), b"old").unwrap();
    save(&dir, |out| out.write_all(b"new contents")).unwrap();
    assert_eq!(contents(&dir), b"new contents");
    assert_eq!(dir.entries(), ["dump.rdb"]);
}

#[test]
fn creates_the_file_when_there_was_none() {
    let dir = TempDir::new("life-new");
    save(&dir, |out| out.write_all(&[7u8; 200_000])).unwrap();
    assert_eq!(contents(&dir), vec![7u8; 200_000]);
    assert_eq!(dir.entries(), ["dump.rdb"]);
}

#[test]
fn write_error_removes_temp_and_keeps_old_file() {
    let dir = TempDir::new("life-err");
    std::fs::write(dir.path().join("dump.rdb"), b"old").unwrap();
    let err = save(&dir, |out| {
        // More than the write buffer, so part of it reached the temp file.
        out.write_all(&vec![1u8; 1 << 20])?;
        assert!(dir.entries().contains(&"temp-1234.rdb".to_string()));
        Err(io::Error::new(
            io::ErrorKind::StorageFull,
            "simulated: disk full",
        ))
    })
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert_eq!(err.to_string(), "simulated: disk full");
    assert_eq!(contents(&dir), b"old");
    assert_eq!(dir.entries(), ["dump.rdb"]);
}

#[test]
fn write_error_without_old_file_leaves_nothing() {
    let dir = TempDir::new("life-err-new");
    let err = save(&dir, |_| Err(io::Error::other("nope"))).unwrap_err();
    assert_eq!(err.to_string(), "nope");
    assert!(dir.entries().is_empty());
}

#[test]
fn rename_failure_removes_temp_and_keeps_target() {
    let dir = TempDir::new("life-rename");
    // A non-empty directory where the file should go: rename(2) refuses.
    std::fs::create_dir(dir.path().join("dump.rdb")).unwrap();
    std::fs::write(dir.path().join("dump.rdb/keep"), b"x").unwrap();
    let err = save(&dir, |out| out.write_all(b"data")).unwrap_err();
    assert!(err.raw_os_error().is_some(), "{err:?}");
    assert_eq!(dir.entries(), ["dump.rdb"]);
    assert!(dir.path().join("dump.rdb/keep").exists());
}

#[test]
fn missing_dir_and_bad_names_are_errors() {
    let dir = TempDir::new("life-names");
    let missing = dir.path().join("no-such-dir");
    let err =
        save_atomically(&missing, "dump.rdb".as_ref(), "t.rdb".as_ref(), |_| Ok(())).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    let err = save_atomically(
        dir.path(),
        "dump.rdb".as_ref(),
        "no-dir/t.rdb".as_ref(),
        |_| panic!("not called when the temp file cannot be created"),
    )
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    let err = save_atomically(dir.path(), "dump\0.rdb".as_ref(), "t.rdb".as_ref(), |_| {
        Ok(())
    })
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(dir.entries().is_empty());
}

/// What the fork policy layer will do: prepare everything, fork, save in the
/// child, `_exit` with the result; the parent waits for that pid.
#[test]
fn works_in_a_forked_child() {
    use forkdb_snapshot::{AuxFields, RdbWriter, SaveOptions, Value};

    let dir = TempDir::new("life-fork");
    std::fs::write(dir.path().join("dump.rdb"), b"old").unwrap();
    // Prepared before fork: names, values, options.
    let tmp = temp_file_name(std::process::id());
    let value = Value::from("written by the child, long enough to be compressed by LZF LZF LZF");
    let aux = AuxFields::new("7.0.15");

    // SAFETY: the child only runs the save (no locks held by other threads are
    // needed: it allocates through glibc malloc, which is fork-safe) and ends
    // with _exit, so it never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            save_atomically(dir.path(), "dump.rdb".as_ref(), tmp.as_ref(), |out| {
                let mut w = RdbWriter::new(out, SaveOptions::default(), &aux)?;
                w.select_db(0, 1, 0)?;
                w.record(b"key", &value, None)?;
                w.finish()?;
                Ok(())
            })
        }));
        let code = match result {
            Ok(Ok(())) => 0,
            Ok(Err(_)) => 1,
            Err(_) => 2,
        };
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child by pid.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status}"
    );

    let summary = forkdb_snapshot::verify_file(dir.path().join("dump.rdb")).unwrap();
    assert_eq!(summary.records, 1);
    assert_eq!(dir.entries(), ["dump.rdb"]);
}

fn save_checked(
    dir: &TempDir,
    may_rename: impl FnOnce() -> bool,
    write: impl FnOnce(&mut io::BufWriter<std::fs::File>) -> io::Result<()>,
) -> Result<(), SaveError> {
    save_atomically_checked(
        dir.path(),
        "dump.rdb".as_ref(),
        "temp-1234.rdb".as_ref(),
        may_rename,
        write,
    )
}

/// The "may I rename?" hook runs once the temp file is complete and on disk, right before the
/// rename; a "no" removes the temp file and keeps the old file (an orphaned child's save).
#[test]
fn refused_rename_keeps_the_old_file_and_removes_the_temp() {
    let dir = TempDir::new("life-refused");
    std::fs::write(dir.path().join("dump.rdb"), b"newer").unwrap();
    let mut seen = None;
    let err = save_checked(
        &dir,
        || {
            // What the hook sees: the whole new content in the temp file, the old file in place.
            seen = Some((
                std::fs::read(dir.path().join("temp-1234.rdb")).unwrap(),
                contents(&dir),
            ));
            false
        },
        |out| out.write_all(b"older snapshot"),
    )
    .unwrap_err();
    assert_eq!(err.step, Step::RenameRefused);
    assert_eq!(err.errno(), libc::ECANCELED);
    assert_eq!(
        seen,
        Some((b"older snapshot".to_vec(), b"newer".to_vec())),
        "the hook ran before the data was complete, or not at all"
    );
    assert_eq!(contents(&dir), b"newer");
    assert_eq!(dir.entries(), ["dump.rdb"]);

    // A "yes" renames as save_atomically does.
    let mut calls = 0;
    save_checked(
        &dir,
        || {
            calls += 1;
            true
        },
        |out| out.write_all(b"newest"),
    )
    .unwrap();
    assert_eq!(calls, 1);
    assert_eq!(contents(&dir), b"newest");
    assert_eq!(dir.entries(), ["dump.rdb"]);
}

/// The hook is not asked when the data could not be written: the write error is what counts.
#[test]
fn failed_write_does_not_ask_the_hook() {
    let dir = TempDir::new("life-hook-err");
    let err = save_checked(
        &dir,
        || panic!("asked after a failed write"),
        |_| Err(io::Error::from_raw_os_error(libc::ENOSPC)),
    )
    .unwrap_err();
    assert_eq!(err.step, Step::Write);
    assert_eq!(err.errno(), libc::ENOSPC);
    assert!(dir.entries().is_empty());
}

/// Each failure names its step, with the errno the parent will log.
#[test]
fn failures_name_their_step_and_errno() {
    let dir = TempDir::new("life-steps");
    // open: the temp file cannot be created (its directory does not exist).
    let err = save_atomically_checked(
        dir.path(),
        "dump.rdb".as_ref(),
        "no-dir/t.rdb".as_ref(),
        || true,
        |_| Ok(()),
    )
    .unwrap_err();
    assert_eq!((err.step, err.errno()), (Step::Open, libc::ENOENT));
    // open: the directory itself is missing.
    let err = save_atomically_checked(
        &dir.path().join("missing"),
        "dump.rdb".as_ref(),
        "t.rdb".as_ref(),
        || true,
        |_| Ok(()),
    )
    .unwrap_err();
    assert_eq!((err.step, err.errno()), (Step::Open, libc::ENOENT));
    // write: an error without an errno is reported as EIO, never as 0.
    let err = save_checked(&dir, || true, |_| Err(io::Error::other("made up"))).unwrap_err();
    assert_eq!((err.step, err.errno()), (Step::Write, libc::EIO));
    // rename: the destination is a non-empty directory.
    std::fs::create_dir(dir.path().join("dump.rdb")).unwrap();
    std::fs::write(dir.path().join("dump.rdb/keep"), b"x").unwrap();
    let err = save_checked(&dir, || true, |out| out.write_all(b"data")).unwrap_err();
    assert_eq!(err.step, Step::Rename);
    assert!(
        [libc::EISDIR, libc::ENOTEMPTY, libc::EEXIST].contains(&err.errno()),
        "{err}"
    );
    assert_eq!(dir.entries(), ["dump.rdb"]);
    assert_eq!(err.to_string().split(':').next(), Some("rename"));
}
