//! The error of this crate's reading side.
//!
//! Writing only fails with `io::Error` (the encoders cannot produce an invalid
//! file from a valid [`crate::Value`]), so encoders return `io::Result`.

use std::error::Error as StdError;
use std::io;

/// Why an RDB file could not be read. Every variant that concerns the file's
/// content carries the byte offset it is about, and says it in `Display`.
#[derive(Debug, thiserror::Error)]
pub enum RdbError {
    /// Opening or reading failed before any offset applies (e.g. opening the file).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),

    /// Reading the underlying stream failed (not an end of file).
    #[error("I/O error at offset {offset} (reading {what}): {source}")]
    Read {
        /// Where the failed read started.
        offset: u64,
        /// What was being read.
        what: &'static str,
        /// The error of the underlying reader.
        #[source]
        source: io::Error,
    },

    /// The file does not start with `REDIS`.
    #[error("bad magic: file starts with {found:?}, expected \"REDIS\" at offset 0")]
    BadMagic {
        /// The first bytes, escaped for display.
        found: String,
    },

    /// The 4 version digits are not a version this reader handles.
    #[error("unsupported RDB version {version} at offset 5 (this reader handles 1 to {max})")]
    UnsupportedVersion {
        /// The 4 version bytes as found, escaped for display.
        version: String,
        /// The highest version accepted.
        max: u32,
    },

    /// The input ended in the middle of an item.
    #[error("unexpected end of file at offset {offset} (reading {what})")]
    UnexpectedEof {
        /// Where the input ended.
        offset: u64,
        /// What was being read.
        what: &'static str,
    },

    /// A byte where an opcode or value type must be is neither.
    #[error("unknown opcode 0x{opcode:02x} at offset {offset}")]
    UnknownOpcode {
        /// Offset of the byte.
        offset: u64,
        /// The byte.
        opcode: u8,
    },

    /// A value type Redis knows but this reader does not load (yet).
    #[error(
        "unsupported value type {type_code} ({kind} as {encoding}) at offset {offset}{}",
        key.as_ref().map(|k| format!(", key \"{k}\"")).unwrap_or_default()
    )]
    UnsupportedType {
        /// Offset of the type byte.
        offset: u64,
        /// The type byte (`format::TYPE_*`).
        type_code: u8,
        /// Redis's kind for it: list, set, zset, hash, stream, module.
        kind: &'static str,
        /// Redis's encoding for it: ziplist, quicklist, listpack, ...
        encoding: &'static str,
        /// The key of the record, escaped and shortened, when it could be read.
        key: Option<String>,
    },

    /// A list, set, hash or sorted set is malformed: a corrupt blob, a
    /// duplicate member, an odd number of elements in a pair listpack, a NaN
    /// score, ... The detail starts with Redis's own text for the problem
    /// (`rdbLoadObject`), e.g. "Duplicate set members detected".
    #[error("corrupt {kind} value (type {type_code}, {encoding}) of key \"{key}\" at offset {offset}: {detail}")]
    CorruptValue {
        /// Offset of the part of the value that is malformed (the blob, the
        /// element, the score).
        offset: u64,
        /// The type byte (`format::TYPE_*`).
        type_code: u8,
        /// Redis's kind for it: list, set, zset, hash.
        kind: &'static str,
        /// Redis's encoding for it.
        encoding: &'static str,
        /// The key, escaped and shortened.
        key: String,
        /// What is wrong.
        detail: String,
    },

    /// A well-formed value that forkdb cannot hold, such as a hash field
    /// with a TTL of its own (Redis 7.4's `HEXPIRE`) that has not passed.
    #[error("cannot load {kind} value (type {type_code}, {encoding}) of key \"{key}\" at offset {offset}: {detail}")]
    UnrepresentableValue {
        /// Offset of the record's type byte.
        offset: u64,
        /// The type byte (`format::TYPE_*`).
        type_code: u8,
        /// Redis's kind for it.
        kind: &'static str,
        /// Redis's encoding for it.
        encoding: &'static str,
        /// The key, escaped and shortened.
        key: String,
        /// What forkdb cannot represent.
        detail: String,
    },

    /// The trailing checksum does not match the content.
    #[error(
        "checksum mismatch at offset {offset} (file says {stored:#018x}, computed {computed:#018x} over bytes 0..{offset})"
    )]
    ChecksumMismatch {
        /// Offset of the 8 checksum bytes (= length of the checksummed data).
        offset: u64,
        /// The checksum stored in the file.
        stored: u64,
        /// The checksum of the bytes read.
        computed: u64,
    },

    /// The content is malformed in another way (bad length or string
    /// encoding, bad LZF data, a length over the limit, ...).
    #[error("corrupt RDB at offset {offset}: {detail}")]
    Corrupt {
        /// Offset of the item that is malformed.
        offset: u64,
        /// What is wrong, with the values found.
        detail: String,
    },

    /// The caller's record callback refused a record (see [`crate::load`]).
    #[error("record at offset {offset} rejected: {source}")]
    Rejected {
        /// Offset of the record.
        offset: u64,
        /// The callback's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl RdbError {
    /// The byte offset in the file the error is about, when there is one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            RdbError::Io(_) => None,
            RdbError::BadMagic { .. } => Some(0),
            RdbError::UnsupportedVersion { .. } => Some(5),
            RdbError::Read { offset, .. }
            | RdbError::UnexpectedEof { offset, .. }
            | RdbError::UnknownOpcode { offset, .. }
            | RdbError::UnsupportedType { offset, .. }
            | RdbError::ChecksumMismatch { offset, .. }
            | RdbError::CorruptValue { offset, .. }
            | RdbError::UnrepresentableValue { offset, .. }
            | RdbError::Corrupt { offset, .. }
            | RdbError::Rejected { offset, .. } => Some(*offset),
        }
    }
}

/// Bytes from a file, made printable for an error message: ASCII as is,
/// the rest as `\xNN`, cut after `max` input bytes.
pub(crate) fn escape_bytes(bytes: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(max) {
        s.extend(std::ascii::escape_default(b).map(char::from));
    }
    if bytes.len() > max {
        s.push_str("...");
    }
    s
}
