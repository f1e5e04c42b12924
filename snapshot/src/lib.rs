//! forkdb's snapshots: the RDB file format (version 10, as redis-server 7.0
//! writes it), its checksum, and the file lifecycle around a save.
//!
//! # Layout
//!
//! The crate follows the layers of Redis's `rdb.c`/`rio.h`, each testable
//! without the ones above it:
//!
//! - [`format`](mod@format): the format itself, as an ASCII table and a named constant for
//!   every opcode, value type and encoding. No code.
//! - [`crc`]: CRC-64/REDIS ([`crc64`]) and [`CrcWriter`], which checksums
//!   every byte written through it, as Redis's `rio` does.
//! - [`encode`]: pure `encode_*` functions over any `Write` (length, string
//!   with its integer and LZF encodings, AUX, SELECTDB, RESIZEDB, a key/value
//!   record, EOF, checksum, and the container bodies: quicklist nodes, set,
//!   hash, zset), tested byte for byte against files written by redis-server;
//!   and [`RdbWriter`], which writes a whole file in Redis's order, taking
//!   container values by reference (`record_hash_listpack(key, &[u8])`,
//!   `record_set(key, iterator of &[u8])`, ...).
//! - [`lzf`]: the LZF compressor Redis uses (decompression comes from the
//!   `lzf` crate).
//! - [`decode`]: [`RdbReader`] (pull one record at a time), [`load`] (with a
//!   callback) and [`verify_file`]; reads RDB 1 to 12, skips what it does not
//!   load, reads every list/set/hash/zset encoding from Redis 1.x to 7.4 with
//!   Redis's deep integrity checks, names the value types it cannot load
//!   (streams, modules), and cannot be made to panic.
//! - [`file`](mod@file): [`save_atomically`]: temp file, fsync, rename, fsync of the
//!   directory, cleanup on failure; [`save_atomically_checked`] adds a "may I rename?" hook
//!   and names the [`Step`] that failed. Knows nothing of the format, and is safe
//!   to call in a forked child.
//! - [`fork`]: the fork, the child's progress reports on a pipe (keys, COW bytes from
//!   `/proc/self/smaps_rollup`, duty-cycled; the failed step and errno), the child's
//!   isolation from its parent (inherited descriptors closed, death with the parent, a panic
//!   hook that `_exit`s), and the parent reaping its own child by pid.
//! - [`procfs`]: what `/proc` says about a process (memory, `stat`, children), read without
//!   allocating: used by the child, the server's timelines, `forkdb-cow` and the tests.
//! - [`value`]: [`Value`], what a record holds: a string, or a list, set,
//!   hash or sorted set, each either as the compact blob forkdb keeps in
//!   memory (listpack, intset) or expanded into owned strings.
//! - [`blob`]: Redis's compact container blobs as pure byte-format modules:
//!   [`blob::Listpack`] and [`blob::Intset`] (owned, validated, mutated in
//!   Redis's exact bytes, written to a file as they are), [`blob::Ziplist`]
//!   and [`blob::Zipmap`] (read only, for older files). Never panic on
//!   foreign bytes.
//!
//! Errors: writing fails only with `io::Error`; reading fails with
//! [`RdbError`], whose message always carries the byte offset and the detail.
//!
//! A save, end to end:
//!
//! ```no_run
//! use forkdb_snapshot::{save_atomically, temp_file_name, AuxFields, RdbWriter, SaveOptions, Value};
//! use std::path::Path;
//! let tmp = temp_file_name(std::process::id());
//! save_atomically(Path::new("/var/lib/forkdb"), "dump.rdb".as_ref(), tmp.as_ref(), |out| {
//!     let mut w = RdbWriter::new(out, SaveOptions::default(), &AuxFields::new("7.0.15"))?;
//!     w.select_db(0, 1, 0)?;
//!     w.record(b"key", &Value::from("value"), None)?;
//!     w.finish()?;
//!     Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod blob;
pub mod crc;
pub mod decode;
pub mod dump;
pub mod encode;
pub mod error;
pub mod file;
pub mod fork;
pub mod format;
pub mod lzf;
pub mod procfs;
pub mod value;

pub use crc::{crc64, CrcWriter};
pub use decode::{
    load, load_file, verify_file, AuxField, Checksum, FunctionLib, LoadSummary, LoadedRecord,
    RdbReader, ResizeHint, Skipped, MAX_STRING_LEN,
};
pub use dump::{decode_payload, DumpError, DumpPayload};
pub use encode::{
    encode_aux, encode_checksum, encode_eof, encode_function, encode_hash, encode_header,
    encode_len, encode_quicklist2, encode_record, encode_record_head, encode_resize_db,
    encode_select_db, encode_set, encode_string, encode_string_record, encode_zset2, AuxFields,
    QuicklistNode, RdbWriter, SaveOptions,
};
pub use error::RdbError;
pub use file::{
    save_atomically, save_atomically_checked, save_to_pipe, temp_file_name, SaveError, Step,
    TempName,
};
pub use lzf::LzfCompressor;
pub use value::{Hash, List, ListNode, Set, Value, ZSet};
