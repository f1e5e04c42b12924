//! Reading RDB: [`RdbReader`] pulls records one at a time; [`load`] drives it
//! with a callback; [`verify_file`] reads a whole file and keeps only the
//! summary.
//!
//! The reader accepts RDB versions 1 to 12 (Redis 1.x to 7.4) for the parts of
//! the format it knows: strings, lists, sets, hashes and sorted sets in every
//! encoding (see [`crate::value`] for the forms they are returned in, and
//! `read_container` for the checks, those of Redis 7.0's `rdbLoadObject` with
//! deep sanitization, in Redis's words), expires (seconds and milliseconds), SELECTDB,
//! RESIZEDB (a hint, exposed but not needed), AUX (collected, so a caller can
//! log `redis-ver` and `ctime`), function libraries (FUNCTION2, and the 7.0-rc
//! FUNCTION translated to FUNCTION2's payload as Redis does, collected in
//! [`LoadSummary::functions`] so a server can keep them and write them back),
//! and it skips what does not affect the keyspace it loads: MODULE_AUX, IDLE,
//! FREQ and SLOT_INFO, parsing each far enough to skip it exactly. A value type
//! it cannot load (a stream, a module value) stops it with
//! [`RdbError::UnsupportedType`], naming the type, key and offset; a malformed
//! container with [`RdbError::CorruptValue`]; a container that is empty is
//! skipped and counted in [`Skipped::empty_keys`], as Redis 7.0 does.
//!
//! It never trusts a length: a container's element count only bounds a loop
//! (vectors grow as elements arrive, from at most 1024 reserved); strings are capped at [`MAX_STRING_LEN`] and read
//! in chunks as the bytes actually arrive, so a lying header costs no more
//! memory than the input that backs it; an LZF header may not claim more than
//! the format's maximum expansion of the compressed bytes. Every arithmetic on
//! file values is checked. No input makes it panic.
//!
//! Keys are returned as found, including ones whose expire time has passed
//! (Redis drops those when loading as a master): the caller decides.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use bytes::Bytes;

use std::collections::HashSet;

use crate::blob::{Elem, Intset, Listpack, Ziplist, Zipmap};
use crate::crc::Crc64;
use crate::error::{escape_bytes, RdbError};
use crate::format::*;
use crate::lzf;
use crate::value::{pairs, Hash, List, ListNode, Set, Value, ZSet};

/// Largest string the reader accepts by default: Redis's default
/// `proto-max-bulk-len`, which also bounds what a client can store.
pub const MAX_STRING_LEN: u64 = 512 * 1024 * 1024;

/// Strings are read in pieces of at most this size, growing the buffer only
/// as data arrives.
const READ_CHUNK: usize = 1 << 20;

/// One key read from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRecord {
    /// The db selected by the last SELECTDB (0 before any).
    pub db: u32,
    /// The key.
    pub key: Bytes,
    /// The value.
    pub value: Value,
    /// Absolute expire time, unix milliseconds (may be in the past).
    pub expire_ms: Option<i64>,
    /// Offset of the record's first byte (its expire opcode, if any).
    pub offset: u64,
}

/// An AUX field as found (names and values are binary-safe strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuxField {
    /// The field name, e.g. `redis-ver`.
    pub name: Bytes,
    /// The value; integer-encoded values are given as decimal text.
    pub value: Bytes,
}

/// What became of the trailing checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// The reader has not reached the end of the file yet.
    NotReached,
    /// RDB version < 5 files have none.
    Absent,
    /// The file says 0: it was saved with `rdbchecksum no`.
    Disabled,
    /// The file's checksum matched the content.
    Verified(u64),
}

/// The RESIZEDB hint for one db.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResizeHint {
    /// The db it was given for.
    pub db: u32,
    /// Number of keys in that db, as claimed by the file: cap it before
    /// reserving memory for it.
    pub keys: u64,
    /// Number of keys with an expire, as claimed.
    pub expires: u64,
}

/// Counts of items the reader saw but does not return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// MODULE_AUX records.
    pub module_aux: u64,
    /// IDLE (LRU) annotations.
    pub idle: u64,
    /// FREQ (LFU) annotations.
    pub freq: u64,
    /// SLOT_INFO records.
    pub slot_info: u64,
    /// Keys whose container was empty (Redis 7.0 skips them too and logs
    /// "empty keys skipped: N"), or a 7.4 hash whose every field had expired.
    pub empty_keys: u64,
}

/// A function library found in the file (Redis 7 `FUNCTION LOAD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionLib {
    /// The library's code as FUNCTION2 stores it: a first line
    /// `#!<engine> name=<name>`, then the source. A 7.0-rc FUNCTION record is
    /// given in this form too (Redis's `rdbFunctionLoad` builds the same text).
    pub code: Bytes,
    /// Offset of its opcode in the file.
    pub offset: u64,
}

impl FunctionLib {
    /// The engine and library name from the code's first line, or Redis's
    /// error text for a library without them (`functionExtractLibMetaData`).
    pub fn metadata(&self) -> Result<(&[u8], &[u8]), &'static str> {
        let first = self.code.split(|&b| b == b'\n').next().unwrap_or_default();
        let Some(shebang) = first.strip_prefix(b"#!") else {
            return Err("Missing library metadata");
        };
        let mut parts = shebang.split(|&b| b == b' ').filter(|p| !p.is_empty());
        let engine = parts.next().ok_or("Missing library metadata")?;
        let mut name = None;
        for p in parts {
            match p.strip_prefix(b"name=") {
                Some(_) if name.is_some() => {
                    return Err("Invalid metadata value, name argument was given multiple times")
                }
                Some(n) => name = Some(n),
                None => return Err("Invalid metadata value given"),
            }
        }
        Ok((engine, name.ok_or("Library name was not given")?))
    }
}

/// What a read of an RDB file found, besides the records themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSummary {
    /// The RDB version in the header.
    pub version: u32,
    /// AUX fields, in file order.
    pub aux: Vec<AuxField>,
    /// Records returned.
    pub records: u64,
    /// Records that had an expire time.
    pub records_with_expire: u64,
    /// SELECTDB opcodes seen.
    pub select_dbs: u64,
    /// RESIZEDB opcodes seen.
    pub resize_dbs: u64,
    /// Function libraries, in file order.
    pub functions: Vec<FunctionLib>,
    /// Items skipped.
    pub skipped: Skipped,
    /// The trailing checksum.
    pub checksum: Checksum,
    /// Bytes read: the whole file once the reader is done (Redis ignores
    /// anything after the checksum, such as the AOF tail of a preamble file,
    /// and so does this reader).
    pub bytes_read: u64,
}

impl LoadSummary {
    /// The value of the last AUX field called `name`, if any.
    pub fn aux_value(&self, name: &str) -> Option<&Bytes> {
        self.aux
            .iter()
            .rev()
            .find(|f| f.name == name.as_bytes())
            .map(|f| &f.value)
    }
}

/// The input with its position and running checksum.
struct Input<R> {
    inner: R,
    offset: u64,
    crc: Crc64,
}

impl<R: Read> Input<R> {
    /// Reads exactly `buf.len()` bytes, checksumming them.
    fn read_exact(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), RdbError> {
        let mut filled = 0;
        while filled < buf.len() {
            let Some(rest) = buf.get_mut(filled..) else {
                break;
            };
            match self.inner.read(rest) {
                Ok(0) => {
                    self.consume(&buf[..filled]);
                    return Err(RdbError::UnexpectedEof {
                        offset: self.offset,
                        what,
                    });
                }
                // A reader claiming more than it was given is broken; treat
                // the claim as the whole rest rather than index past it.
                Ok(n) => filled = filled.saturating_add(n).min(buf.len()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    self.consume(&buf[..filled]);
                    return Err(RdbError::Read {
                        offset: self.offset,
                        what,
                        source,
                    });
                }
            }
        }
        self.consume(buf);
        Ok(())
    }

    fn consume(&mut self, bytes: &[u8]) {
        self.crc.update(bytes);
        self.offset = self.offset.saturating_add(bytes.len() as u64);
    }

    fn read_u8(&mut self, what: &'static str) -> Result<u8, RdbError> {
        let mut b = [0u8; 1];
        self.read_exact(&mut b, what)?;
        Ok(b[0])
    }

    fn read_array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RdbError> {
        let mut b = [0u8; N];
        self.read_exact(&mut b, what)?;
        Ok(b)
    }

    /// Reads `len` bytes into a buffer that grows only as they arrive.
    fn read_vec(&mut self, len: usize, what: &'static str) -> Result<Vec<u8>, RdbError> {
        let mut v = Vec::with_capacity(len.min(READ_CHUNK));
        while v.len() < len {
            let start = v.len();
            let end = start + (len - start).min(READ_CHUNK);
            v.resize(end, 0);
            self.read_exact(&mut v[start..end], what)?;
        }
        Ok(v)
    }
}

/// A length, or the special string encoding found in its place.
enum Len {
    Plain(u64),
    Encoded(u8),
}

/// Reads records from an RDB stream, one at a time.
///
/// ```
/// # use forkdb_snapshot::{AuxFields, RdbReader, RdbWriter, SaveOptions, Value};
/// # let mut w = RdbWriter::new(Vec::new(), SaveOptions::default(), &AuxFields::new("7.0.15"))?;
/// # w.select_db(0, 1, 0)?;
/// # w.record(b"k", &Value::from("v"), None)?;
/// # let file = w.finish()?;
/// let mut reader = RdbReader::new(&file[..])?;
/// while let Some(record) = reader.next_record()? {
///     println!("db {} key {:?}", record.db, record.key);
/// }
/// assert_eq!(reader.summary().records, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RdbReader<R> {
    input: Input<R>,
    db: u32,
    resize_hint: Option<ResizeHint>,
    summary: LoadSummary,
    done: bool,
    max_string_len: u64,
    now_ms: i64,
}

impl<R: Read> RdbReader<R> {
    /// Reads and checks the 9-byte header.
    pub fn new(inner: R) -> Result<Self, RdbError> {
        let mut input = Input {
            inner,
            offset: 0,
            crc: Crc64::new(),
        };
        let header: [u8; HEADER_LEN] = input.read_array("the header")?;
        if &header[..MAGIC.len()] != MAGIC {
            return Err(RdbError::BadMagic {
                found: escape_bytes(&header, HEADER_LEN),
            });
        }
        let digits = &header[MAGIC.len()..];
        // Redis parses with atoi; insisting on 4 digits is stricter, and every
        // Redis writes "%04d".
        let version = digits
            .iter()
            .try_fold(0u32, |acc, &d| {
                d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
            })
            .filter(|v| (1..=MAX_READ_VERSION).contains(v))
            .ok_or_else(|| RdbError::UnsupportedVersion {
                version: escape_bytes(digits, 4),
                max: MAX_READ_VERSION,
            })?;
        Ok(RdbReader {
            input,
            db: 0,
            resize_hint: None,
            summary: LoadSummary {
                version,
                aux: Vec::new(),
                records: 0,
                records_with_expire: 0,
                select_dbs: 0,
                resize_dbs: 0,
                functions: Vec::new(),
                skipped: Skipped::default(),
                checksum: Checksum::NotReached,
                bytes_read: HEADER_LEN as u64,
            },
            done: false,
            max_string_len: MAX_STRING_LEN,
            now_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        })
    }

    /// Changes the largest string accepted (default [`MAX_STRING_LEN`]).
    pub fn set_max_string_len(&mut self, max: u64) {
        self.max_string_len = max;
    }

    /// Sets the time (unix ms) against which 7.4 hash field TTLs are judged
    /// expired (default: the time the reader was made).
    pub fn set_now_ms(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
    }

    /// The RDB version of the file.
    pub fn version(&self) -> u32 {
        self.summary.version
    }

    /// The db the next record goes to.
    pub fn current_db(&self) -> u32 {
        self.db
    }

    /// The RESIZEDB hint for the current db, if the file gave one after the
    /// last SELECTDB. Useful to pre-size a table before the db's records.
    pub fn resize_hint(&self) -> Option<ResizeHint> {
        self.resize_hint
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.input.offset
    }

    /// What has been read so far; complete once [`next_record`](Self::next_record)
    /// has returned `Ok(None)`.
    pub fn summary(&self) -> &LoadSummary {
        &self.summary
    }

    /// Consumes the reader, returning its summary.
    pub fn into_summary(self) -> LoadSummary {
        self.summary
    }

    /// The next key, or `None` after EOF and a good checksum. After an error
    /// the stream is in an unknown place: do not call again.
    pub fn next_record(&mut self) -> Result<Option<LoadedRecord>, RdbError> {
        let result = self.next_record_inner();
        self.summary.bytes_read = self.input.offset;
        result
    }

    fn next_record_inner(&mut self) -> Result<Option<LoadedRecord>, RdbError> {
        if self.done {
            return Ok(None);
        }
        // Expire, IDLE and FREQ annotate the key that follows them.
        let mut expire_ms = None;
        let mut record_start = None;
        loop {
            let item_start = self.input.offset;
            let code = self.input.read_u8("an opcode or value type")?;
            match code {
                OPCODE_EOF => {
                    self.read_checksum()?;
                    self.done = true;
                    return Ok(None);
                }
                OPCODE_SELECTDB => {
                    let db = self.read_plain_len("the db number of SELECTDB")?;
                    self.db = u32::try_from(db).map_err(|_| RdbError::Corrupt {
                        offset: item_start,
                        detail: format!("SELECTDB to db {db}, out of range"),
                    })?;
                    self.resize_hint = None;
                    self.summary.select_dbs += 1;
                }
                OPCODE_RESIZEDB => {
                    let keys = self.read_plain_len("the key count of RESIZEDB")?;
                    let expires = self.read_plain_len("the expire count of RESIZEDB")?;
                    self.resize_hint = Some(ResizeHint {
                        db: self.db,
                        keys,
                        expires,
                    });
                    self.summary.resize_dbs += 1;
                }
                OPCODE_EXPIRETIME_MS => {
                    record_start.get_or_insert(item_start);
                    let ms = self.input.read_array::<8>("an EXPIRETIME_MS time")?;
                    expire_ms = Some(i64::from_le_bytes(ms));
                }
                OPCODE_EXPIRETIME => {
                    record_start.get_or_insert(item_start);
                    let s = self.input.read_array::<4>("an EXPIRETIME time")?;
                    expire_ms = Some(i64::from(i32::from_le_bytes(s)) * 1000);
                }
                OPCODE_IDLE => {
                    record_start.get_or_insert(item_start);
                    self.read_plain_len("an IDLE time")?;
                    self.summary.skipped.idle += 1;
                }
                OPCODE_FREQ => {
                    record_start.get_or_insert(item_start);
                    self.input.read_u8("a FREQ counter")?;
                    self.summary.skipped.freq += 1;
                }
                OPCODE_AUX => {
                    let name = self.read_string("an AUX field name")?;
                    let value = self.read_string("an AUX field value")?;
                    self.summary.aux.push(AuxField { name, value });
                }
                OPCODE_MODULE_AUX => {
                    self.skip_module_aux(item_start)?;
                    self.summary.skipped.module_aux += 1;
                }
                OPCODE_FUNCTION2 => {
                    let code = self.read_string("a FUNCTION2 library")?;
                    self.summary.functions.push(FunctionLib {
                        code,
                        offset: item_start,
                    });
                }
                OPCODE_FUNCTION_PRE_GA => {
                    // 7.0 rc1/rc2: name, engine, has-description flag,
                    // [description], code; Redis 7.0 turns them into the
                    // FUNCTION2 payload "#!<engine> name=<name>\n<code>" and
                    // drops the description (`rdbFunctionLoad`).
                    let name = self.read_string("a FUNCTION library name")?;
                    let engine = self.read_string("a FUNCTION engine name")?;
                    if self.read_plain_len("a FUNCTION description flag")? != 0 {
                        self.read_string("a FUNCTION description")?;
                    }
                    let blob = self.read_string("a FUNCTION library code")?;
                    let mut code = Vec::with_capacity(blob.len() + name.len() + engine.len() + 9);
                    code.extend_from_slice(b"#!");
                    code.extend_from_slice(&engine);
                    code.extend_from_slice(b" name=");
                    code.extend_from_slice(&name);
                    code.push(b'\n');
                    code.extend_from_slice(&blob);
                    self.summary.functions.push(FunctionLib {
                        code: Bytes::from(code),
                        offset: item_start,
                    });
                }
                OPCODE_SLOT_INFO => {
                    self.read_plain_len("the slot of SLOT_INFO")?;
                    self.read_plain_len("the slot size of SLOT_INFO")?;
                    self.read_plain_len("the expires size of SLOT_INFO")?;
                    self.summary.skipped.slot_info += 1;
                }
                TYPE_STRING => {
                    let key = self.read_string("a key")?;
                    let value = Value::String(self.read_string("a string value")?);
                    self.summary.records += 1;
                    if expire_ms.is_some() {
                        self.summary.records_with_expire += 1;
                    }
                    return Ok(Some(LoadedRecord {
                        db: self.db,
                        key,
                        value,
                        expire_ms,
                        offset: record_start.unwrap_or(item_start),
                    }));
                }
                TYPE_LIST
                | TYPE_SET
                | TYPE_ZSET
                | TYPE_HASH
                | TYPE_ZSET_2
                | TYPE_HASH_ZIPMAP
                | TYPE_LIST_ZIPLIST
                | TYPE_SET_INTSET
                | TYPE_ZSET_ZIPLIST
                | TYPE_HASH_ZIPLIST
                | TYPE_LIST_QUICKLIST
                | TYPE_HASH_LISTPACK
                | TYPE_ZSET_LISTPACK
                | TYPE_LIST_QUICKLIST_2
                | TYPE_SET_LISTPACK
                | TYPE_HASH_METADATA_PRE_GA
                | TYPE_HASH_LISTPACK_EX_PRE_GA
                | TYPE_HASH_METADATA
                | TYPE_HASH_LISTPACK_EX => {
                    let key = self.read_string("a key")?;
                    let ctx = ValueCtx {
                        code,
                        start: item_start,
                        key: &key,
                    };
                    let value = self.read_container(&ctx).map_err(|e| ctx.wrap(e))?;
                    let Some(value) = value else {
                        // Redis 7.0 skips an empty key and its annotations
                        // (`RDB_LOAD_ERR_EMPTY_KEY`).
                        self.summary.skipped.empty_keys += 1;
                        expire_ms = None;
                        record_start = None;
                        continue;
                    };
                    self.summary.records += 1;
                    if expire_ms.is_some() {
                        self.summary.records_with_expire += 1;
                    }
                    return Ok(Some(LoadedRecord {
                        db: self.db,
                        key,
                        value,
                        expire_ms,
                        offset: record_start.unwrap_or(item_start),
                    }));
                }
                _ => {
                    return Err(match type_name(code) {
                        Some((kind, encoding)) => {
                            // The key is readable whatever the type: name it.
                            let key = self.read_string("a key").ok().map(|k| escape_bytes(&k, 64));
                            RdbError::UnsupportedType {
                                offset: item_start,
                                type_code: code,
                                kind,
                                encoding,
                                key,
                            }
                        }
                        None => RdbError::UnknownOpcode {
                            offset: item_start,
                            opcode: code,
                        },
                    });
                }
            }
        }
    }

    /// After EOF: the 8-byte checksum of every byte before it (RDB >= 5).
    fn read_checksum(&mut self) -> Result<(), RdbError> {
        if self.summary.version < MIN_CHECKSUM_VERSION {
            self.summary.checksum = Checksum::Absent;
            return Ok(());
        }
        let computed = self.input.crc.value();
        let offset = self.input.offset;
        let stored = u64::from_le_bytes(self.input.read_array::<8>("the checksum")?);
        self.summary.checksum = if stored == 0 {
            Checksum::Disabled
        } else if stored == computed {
            Checksum::Verified(stored)
        } else {
            return Err(RdbError::ChecksumMismatch {
                offset,
                stored,
                computed,
            });
        };
        Ok(())
    }

    fn read_len(&mut self, what: &'static str) -> Result<Len, RdbError> {
        let first = self.input.read_u8(what)?;
        Ok(match first >> 6 {
            LEN_6BIT => Len::Plain(u64::from(first & 0x3f)),
            LEN_14BIT => {
                let second = self.input.read_u8(what)?;
                Len::Plain((u64::from(first & 0x3f) << 8) | u64::from(second))
            }
            LEN_ENCVAL => Len::Encoded(first & 0x3f),
            _ => match first {
                LEN_32BIT => Len::Plain(u32::from_be_bytes(self.input.read_array(what)?).into()),
                LEN_64BIT => Len::Plain(u64::from_be_bytes(self.input.read_array(what)?)),
                _ => {
                    return Err(RdbError::Corrupt {
                        offset: self.input.offset.saturating_sub(1),
                        detail: format!("unknown length encoding 0x{first:02x} in {what}"),
                    })
                }
            },
        })
    }

    fn read_plain_len(&mut self, what: &'static str) -> Result<u64, RdbError> {
        let start = self.input.offset;
        match self.read_len(what)? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(enc) => Err(RdbError::Corrupt {
                offset: start,
                detail: format!("expected a length for {what}, found string encoding {enc}"),
            }),
        }
    }

    /// Checks a string length from the file against the limit, for allocation.
    fn checked_len(&self, len: u64, start: u64, what: &'static str) -> Result<usize, RdbError> {
        usize::try_from(len)
            .ok()
            .filter(|_| len <= self.max_string_len)
            .ok_or_else(|| RdbError::Corrupt {
                offset: start,
                detail: format!(
                    "{what} has length {len}, over the limit of {} bytes",
                    self.max_string_len
                ),
            })
    }

    fn read_string(&mut self, what: &'static str) -> Result<Bytes, RdbError> {
        let start = self.input.offset;
        match self.read_len(what)? {
            Len::Plain(len) => {
                let len = self.checked_len(len, start, what)?;
                Ok(Bytes::from(self.input.read_vec(len, what)?))
            }
            Len::Encoded(ENC_INT8) => {
                let v = i8::from_le_bytes(self.input.read_array(what)?);
                Ok(Bytes::from(v.to_string()))
            }
            Len::Encoded(ENC_INT16) => {
                let v = i16::from_le_bytes(self.input.read_array(what)?);
                Ok(Bytes::from(v.to_string()))
            }
            Len::Encoded(ENC_INT32) => {
                let v = i32::from_le_bytes(self.input.read_array(what)?);
                Ok(Bytes::from(v.to_string()))
            }
            Len::Encoded(ENC_LZF) => {
                let clen = self.read_plain_len(what)?;
                let len = self.read_plain_len(what)?;
                let clen_usize = self.checked_len(clen, start, what)?;
                let len_usize = self.checked_len(len, start, what)?;
                // The output is allocated whole, so it must be backed by input
                // that can honestly produce it.
                if len > clen.saturating_mul(lzf::MAX_EXPANSION) {
                    return Err(RdbError::Corrupt {
                        offset: start,
                        detail: format!(
                            "{what}: LZF header claims {len} bytes from {clen} compressed bytes"
                        ),
                    });
                }
                let compressed = self.input.read_vec(clen_usize, what)?;
                let plain =
                    lzf::decompress(&compressed, len_usize).map_err(|e| RdbError::Corrupt {
                        offset: start,
                        detail: format!("{what}: {e}"),
                    })?;
                Ok(Bytes::from(plain))
            }
            Len::Encoded(enc) => Err(RdbError::Corrupt {
                offset: start,
                detail: format!("unknown string encoding {enc} in {what}"),
            }),
        }
    }

    /// MODULE_AUX: module id, `when` opcode (must be UINT), `when`, then the
    /// module's annotated values up to the EOF annotation
    /// (`rdbLoadCheckModuleValue`).
    fn skip_module_aux(&mut self, item_start: u64) -> Result<(), RdbError> {
        self.read_plain_len("a MODULE_AUX module id")?;
        let when_opcode = self.read_plain_len("a MODULE_AUX when opcode")?;
        if when_opcode != MODULE_OPCODE_UINT {
            return Err(RdbError::Corrupt {
                offset: item_start,
                detail: format!(
                    "MODULE_AUX with when opcode {when_opcode}, expected {MODULE_OPCODE_UINT}"
                ),
            });
        }
        self.read_plain_len("a MODULE_AUX when")?;
        loop {
            let at = self.input.offset;
            match self.read_plain_len("a module value opcode")? {
                MODULE_OPCODE_EOF => return Ok(()),
                MODULE_OPCODE_SINT | MODULE_OPCODE_UINT => {
                    self.read_plain_len("a module integer")?;
                }
                MODULE_OPCODE_FLOAT => {
                    self.input.read_array::<4>("a module float")?;
                }
                MODULE_OPCODE_DOUBLE => {
                    self.input.read_array::<8>("a module double")?;
                }
                MODULE_OPCODE_STRING => {
                    self.read_string("a module string")?;
                }
                other => {
                    return Err(RdbError::Corrupt {
                        offset: at,
                        detail: format!("unknown module value opcode {other}"),
                    })
                }
            }
        }
    }
}

/// The key and type of the container being read, for its errors.
struct ValueCtx<'k> {
    code: u8,
    /// Offset of the record's type byte.
    start: u64,
    key: &'k [u8],
}

impl ValueCtx<'_> {
    fn names(&self) -> (&'static str, &'static str) {
        type_name(self.code).unwrap_or(("unknown", "unknown"))
    }

    /// Gives a format error met inside the value its key and type.
    fn wrap(&self, e: RdbError) -> RdbError {
        let (kind, encoding) = self.names();
        let key = escape_bytes(self.key, 64);
        let (offset, detail) = match e {
            RdbError::Corrupt { offset, detail } => (offset, detail),
            RdbError::UnexpectedEof { offset, what } => {
                (offset, format!("unexpected end of file reading {what}"))
            }
            other => return other,
        };
        RdbError::CorruptValue {
            offset,
            type_code: self.code,
            kind,
            encoding,
            key,
            detail,
        }
    }

    fn unrepresentable(&self, detail: String) -> RdbError {
        let (kind, encoding) = self.names();
        RdbError::UnrepresentableValue {
            offset: self.start,
            type_code: self.code,
            kind,
            encoding,
            key: escape_bytes(self.key, 64),
            detail,
        }
    }
}

fn corrupt(offset: u64, detail: impl Into<String>) -> RdbError {
    RdbError::Corrupt {
        offset,
        detail: detail.into(),
    }
}

/// Initial capacity for `n` elements announced by the file: elements are
/// pushed as they are read, so a lying count costs no more memory than the
/// input that backs it.
fn cap(n: u64) -> usize {
    n.min(1024) as usize
}

/// Redis's `hash-max-listpack-entries` default: up to this many fields,
/// Redis 7.0 loads a `TYPE_HASH` into a listpack and names a duplicate
/// "Hash with dup elements"; above, into a hash table, "Duplicate hash fields
/// detected".
const HASH_MAX_LISTPACK_ENTRIES: u64 = 512;

/// An element as bytes for duplicate detection: Redis compares the string
/// form (`lpGetValue`), so the integer 12 and the string "12" are the same.
fn elem_key(e: Elem<'_>) -> Vec<u8> {
    e.to_vec()
}

/// Checks a listpack holding tuples of `tuple` elements (hash: 2 = field,
/// value; zset: 2 = member, score; set: 1; 7.4 hash with TTLs: 3) as
/// `lpValidateIntegrityAndDups` does: a whole number of tuples, and no
/// tuple's first element twice. `what` is Redis's message.
fn check_tuples(lp: &Listpack, tuple: usize, at: u64, what: &str) -> Result<(), RdbError> {
    let count = lp.len();
    if count.checked_rem(tuple) != Some(0) {
        return Err(corrupt(
            at,
            format!("{what} ({count} elements, not a multiple of {tuple})"),
        ));
    }
    let mut seen = HashSet::with_capacity(count / tuple);
    for (i, e) in lp.iter().enumerate().step_by(tuple) {
        if !seen.insert(elem_key(e)) {
            return Err(corrupt(
                at,
                format!(
                    "{what} (duplicate \"{}\" at element {i})",
                    escape_bytes(&e.to_vec(), 64)
                ),
            ));
        }
    }
    Ok(())
}

/// A ziplist's elements in a new listpack, as Redis 7.0's loader converts
/// them (`lpAppend`/`lpAppendInteger` per entry). Large listpacks grow by
/// `realloc`, which glibc does by remapping pages past its mmap threshold,
/// so the conversion stays linear in practice.
fn ziplist_to_listpack(zl: &Ziplist<'_>) -> Result<Listpack, crate::blob::BlobError> {
    let mut lp = Listpack::new();
    for e in zl.iter() {
        lp.append(e)?;
    }
    Ok(lp)
}

impl<R: Read> RdbReader<R> {
    /// Reads a list, set, hash or sorted set value in any encoding, checked
    /// as Redis 7.0's `rdbLoadObject` checks it with deep sanitization.
    /// `None`: the container is empty, and Redis skips such a key.
    fn read_container(&mut self, ctx: &ValueCtx<'_>) -> Result<Option<Value>, RdbError> {
        let code = ctx.code;
        Ok(Some(match code {
            TYPE_LIST => {
                let n = self.read_plain_len("the length of a list")?;
                if n == 0 {
                    return Ok(None);
                }
                let mut v = Vec::with_capacity(cap(n));
                for _ in 0..n {
                    v.push(self.read_string("a list element")?);
                }
                Value::List(List::Elements(v))
            }
            TYPE_SET => {
                let n = self.read_plain_len("the size of a set")?;
                if n == 0 {
                    return Ok(None);
                }
                let mut v = Vec::with_capacity(cap(n));
                let mut seen = HashSet::with_capacity(cap(n));
                for _ in 0..n {
                    let at = self.input.offset;
                    let m = self.read_string("a set member")?;
                    if !seen.insert(m.clone()) {
                        return Err(corrupt(
                            at,
                            format!(
                                "Duplicate set members detected (member \"{}\")",
                                escape_bytes(&m, 64)
                            ),
                        ));
                    }
                    v.push(m);
                }
                Value::Set(Set::Members(v))
            }
            TYPE_ZSET | TYPE_ZSET_2 => {
                let n = self.read_plain_len("the size of a sorted set")?;
                if n == 0 {
                    return Ok(None);
                }
                let mut v = Vec::with_capacity(cap(n));
                let mut seen = HashSet::with_capacity(cap(n));
                for _ in 0..n {
                    let at = self.input.offset;
                    let m = self.read_string("a sorted set member")?;
                    let score_at = self.input.offset;
                    let score = if code == TYPE_ZSET_2 {
                        f64::from_le_bytes(self.input.read_array("a binary double score")?)
                    } else {
                        self.read_ascii_double()?
                    };
                    if score.is_nan() {
                        return Err(corrupt(score_at, "Zset with NAN score detected"));
                    }
                    if !seen.insert(m.clone()) {
                        return Err(corrupt(
                            at,
                            format!(
                                "Duplicate zset fields detected (member \"{}\")",
                                escape_bytes(&m, 64)
                            ),
                        ));
                    }
                    v.push((m, score));
                }
                Value::ZSet(ZSet::Members(v))
            }
            TYPE_HASH => {
                let n = self.read_plain_len("the size of a hash")?;
                if n == 0 {
                    return Ok(None);
                }
                let dup = if n <= HASH_MAX_LISTPACK_ENTRIES {
                    "Hash with dup elements"
                } else {
                    "Duplicate hash fields detected"
                };
                let mut v = Vec::with_capacity(cap(n));
                let mut seen = HashSet::with_capacity(cap(n));
                for _ in 0..n {
                    let at = self.input.offset;
                    let f = self.read_string("a hash field")?;
                    let val = self.read_string("a hash value")?;
                    if !seen.insert(f.clone()) {
                        return Err(corrupt(
                            at,
                            format!("{dup} (field \"{}\")", escape_bytes(&f, 64)),
                        ));
                    }
                    v.push((f, val));
                }
                Value::Hash(Hash::Pairs(v))
            }
            TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
                let n = self.read_plain_len("the node count of a quicklist")?;
                if n == 0 {
                    return Ok(None);
                }
                let mut nodes = Vec::with_capacity(cap(n));
                for _ in 0..n {
                    let mut container = QUICKLIST_NODE_PACKED;
                    if code == TYPE_LIST_QUICKLIST_2 {
                        let at = self.input.offset;
                        container = self.read_plain_len("a quicklist node container")?;
                        if container != QUICKLIST_NODE_PACKED && container != QUICKLIST_NODE_PLAIN {
                            return Err(corrupt(
                                at,
                                format!(
                                    "Quicklist integrity check failed. (node container {container}, expected 1 or 2)"
                                ),
                            ));
                        }
                    }
                    let at = self.input.offset;
                    let data = self.read_string("a quicklist node")?;
                    if data.is_empty() {
                        return Err(corrupt(at, "empty quicklist node"));
                    }
                    if container == QUICKLIST_NODE_PLAIN {
                        nodes.push(ListNode::Plain(data));
                        continue;
                    }
                    let lp = if code == TYPE_LIST_QUICKLIST_2 {
                        Listpack::from_bytes(Vec::from(data)).map_err(|e| {
                            corrupt(at, format!("Listpack integrity check failed. ({e})"))
                        })?
                    } else {
                        let zl = Ziplist::new(&data).map_err(|e| {
                            corrupt(at, format!("Ziplist integrity check failed. ({e})"))
                        })?;
                        ziplist_to_listpack(&zl)
                            .map_err(|e| corrupt(at, format!("Ziplist conversion failed ({e})")))?
                    };
                    // Redis skips empty nodes silently, and the key if all are.
                    if !lp.is_empty() {
                        nodes.push(ListNode::Packed(lp));
                    }
                }
                if nodes.is_empty() {
                    return Ok(None);
                }
                Value::List(List::Quicklist(nodes))
            }
            TYPE_HASH_METADATA | TYPE_HASH_METADATA_PRE_GA => {
                return self.read_hash_metadata(ctx);
            }
            _ => return self.read_blob_value(ctx),
        }))
    }

    /// `rdbLoadDoubleValue`: a length byte (253 NaN, 254 +inf, 255 -inf),
    /// else that many ASCII bytes read with `sscanf("%lg")`.
    fn read_ascii_double(&mut self) -> Result<f64, RdbError> {
        let at = self.input.offset;
        Ok(match self.input.read_u8("a double score length")? {
            DOUBLE_NEG_INF => f64::NEG_INFINITY,
            DOUBLE_POS_INF => f64::INFINITY,
            DOUBLE_NAN => f64::NAN,
            n => {
                let buf = self.input.read_vec(usize::from(n), "a double score")?;
                crate::value::parse_c_double(&buf).ok_or_else(|| {
                    corrupt(
                        at,
                        format!("unreadable double score \"{}\"", escape_bytes(&buf, 64)),
                    )
                })?
            }
        })
    }

    /// The encodings stored as one blob string: zipmap, ziplists, intset,
    /// listpacks, 7.4's listpack with TTLs.
    fn read_blob_value(&mut self, ctx: &ValueCtx<'_>) -> Result<Option<Value>, RdbError> {
        let code = ctx.code;
        if code == TYPE_HASH_LISTPACK_EX {
            // The smallest field TTL, kept by Redis for later use; the
            // listpack has every TTL.
            self.input
                .read_array::<8>("the minimum field expire time")?;
        }
        let at = self.input.offset;
        let blob = self.read_string("an encoded value")?;
        let lp_check = |what: &str| {
            let what = what.to_string();
            move |e: crate::blob::BlobError| corrupt(at, format!("{what} ({e})"))
        };
        Ok(Some(match code {
            TYPE_HASH_ZIPMAP => {
                let zm = Zipmap::new(&blob).map_err(lp_check("Zipmap integrity check failed."))?;
                let mut lp = Listpack::new();
                let mut seen = HashSet::new();
                for (f, v) in zm.iter() {
                    if !seen.insert(f) {
                        return Err(corrupt(
                            at,
                            format!(
                                "Hash zipmap with dup elements, or big length ({}) (field \"{}\")",
                                f.len(),
                                escape_bytes(f, 64)
                            ),
                        ));
                    }
                    lp.append(f)
                        .and_then(|_| lp.append(v))
                        .map_err(lp_check("Hash zipmap conversion failed"))?;
                }
                if lp.is_empty() {
                    return Ok(None);
                }
                Value::Hash(Hash::Listpack(lp))
            }
            TYPE_LIST_ZIPLIST => {
                let zl = Ziplist::new(&blob)
                    .map_err(lp_check("List ziplist integrity check failed."))?;
                if zl.is_empty() {
                    return Ok(None);
                }
                Value::List(List::Elements(
                    zl.iter().map(crate::value::elem_bytes).collect(),
                ))
            }
            TYPE_SET_INTSET => {
                let is = Intset::from_bytes(Vec::from(blob))
                    .map_err(lp_check("Intset integrity check failed."))?;
                Value::Set(Set::Intset(is))
            }
            TYPE_ZSET_ZIPLIST | TYPE_HASH_ZIPLIST => {
                let what = if code == TYPE_ZSET_ZIPLIST {
                    "Zset ziplist integrity check failed."
                } else {
                    "Hash ziplist integrity check failed."
                };
                let zl = Ziplist::new(&blob).map_err(lp_check(what))?;
                let lp = ziplist_to_listpack(&zl).map_err(lp_check(what))?;
                check_tuples(&lp, 2, at, what)?;
                if lp.is_empty() {
                    return Ok(None);
                }
                self.pair_value(code, lp, at)?
            }
            TYPE_ZSET_LISTPACK | TYPE_HASH_LISTPACK | TYPE_SET_LISTPACK => {
                let (what, tuple) = match code {
                    TYPE_ZSET_LISTPACK => ("Zset listpack integrity check failed.", 2),
                    TYPE_HASH_LISTPACK => ("Hash listpack integrity check failed.", 2),
                    _ => ("Set listpack integrity check failed.", 1),
                };
                let lp = Listpack::from_bytes(Vec::from(blob)).map_err(lp_check(what))?;
                check_tuples(&lp, tuple, at, what)?;
                if lp.is_empty() {
                    return Ok(None);
                }
                if code == TYPE_SET_LISTPACK {
                    Value::Set(Set::Listpack(lp))
                } else {
                    self.pair_value(code, lp, at)?
                }
            }
            TYPE_HASH_LISTPACK_EX | TYPE_HASH_LISTPACK_EX_PRE_GA => {
                let what = "Hash listpack integrity check failed.";
                let lp = Listpack::from_bytes(Vec::from(blob)).map_err(lp_check(what))?;
                check_tuples(&lp, 3, at, what)?;
                let mut out = Listpack::new();
                let mut it = lp.iter();
                while let (Some(f), Some(v), Some(ttl)) = (it.next(), it.next(), it.next()) {
                    let ttl = ttl.as_i64().ok_or_else(|| {
                        corrupt(at, format!("{what} (field TTL is not an integer)"))
                    })?;
                    if !self.field_ttl_passed(ctx, &f.to_vec(), ttl)? {
                        out.append(f)
                            .and_then(|_| out.append(v))
                            .map_err(lp_check(what))?;
                    }
                }
                if out.is_empty() {
                    return Ok(None);
                }
                Value::Hash(Hash::Listpack(out))
            }
            _ => {
                return Err(corrupt(
                    ctx.start,
                    format!("Unknown RDB encoding type {code}"),
                ))
            }
        }))
    }

    /// A listpack of pairs as the value of its type. A zset listpack's
    /// scores must read as numbers that are not NaN (Redis does not check
    /// this on load, but `zzlGetScore` would then misbehave; forkdb refuses).
    fn pair_value(&self, code: u8, lp: Listpack, at: u64) -> Result<Value, RdbError> {
        if code == TYPE_HASH_LISTPACK || code == TYPE_HASH_ZIPLIST {
            return Ok(Value::Hash(Hash::Listpack(lp)));
        }
        for (_, score) in pairs(&lp) {
            let ok = match score {
                Elem::Int(_) => true,
                Elem::Str(s) => crate::value::parse_c_double(s).is_some_and(|d| !d.is_nan()),
            };
            if !ok {
                return Err(corrupt(
                    at,
                    format!(
                        "Zset listpack with a score that is not a number (\"{}\")",
                        escape_bytes(&score.to_vec(), 64)
                    ),
                ));
            }
        }
        Ok(Value::ZSet(ZSet::Listpack(lp)))
    }

    /// Whether a 7.4 hash field whose absolute expire time is `expire_at`
    /// (0: none) is gone. A field that expires later cannot be represented:
    /// forkdb has no per-field TTL, and loading the field without it would
    /// keep it forever, loading the hash without the field would lose it
    /// early; either changes the data, so the load is refused.
    fn field_ttl_passed(
        &self,
        ctx: &ValueCtx<'_>,
        field: &[u8],
        expire_at: i64,
    ) -> Result<bool, RdbError> {
        if expire_at == 0 {
            return Ok(false);
        }
        if expire_at < 0 || expire_at as u64 > HASH_FIELD_EXPIRE_MAX {
            return Err(corrupt(
                ctx.start,
                format!("invalid expireAt time: {expire_at}"),
            ));
        }
        if expire_at < self.now_ms {
            return Ok(true);
        }
        Err(ctx.unrepresentable(format!(
            "field \"{}\" has its own TTL (expires at {expire_at} ms), which forkdb cannot hold",
            escape_bytes(field, 64)
        )))
    }

    /// 7.4's hash with field TTLs as a table (`HASH_METADATA`: a minimum
    /// expire time, then TTL-field-value triples, TTLs relative to it;
    /// `_PRE_GA`: no minimum, absolute TTLs).
    fn read_hash_metadata(&mut self, ctx: &ValueCtx<'_>) -> Result<Option<Value>, RdbError> {
        let mut min_expire = 0u64;
        if ctx.code == TYPE_HASH_METADATA {
            let at = self.input.offset;
            min_expire =
                u64::from_le_bytes(self.input.read_array("the minimum field expire time")?);
            // EB_EXPIRE_TIME_INVALID (2^48) is what Redis writes for "none".
            if min_expire > HASH_FIELD_EXPIRE_MAX + 1 {
                return Err(corrupt(at, "Hash read invalid minExpire value"));
            }
        }
        let n = self.read_plain_len("the size of a hash")?;
        if n == 0 {
            return Ok(None);
        }
        let dup = if n <= HASH_MAX_LISTPACK_ENTRIES {
            "Hash with dup elements"
        } else {
            "Duplicate hash fields detected"
        };
        let mut v = Vec::with_capacity(cap(n));
        let mut seen = HashSet::with_capacity(cap(n));
        for _ in 0..n {
            let at = self.input.offset;
            let ttl = self.read_plain_len("a hash field TTL")?;
            let expire_at = if ctx.code == TYPE_HASH_METADATA && ttl != 0 {
                ttl.checked_add(min_expire)
                    .and_then(|t| t.checked_sub(1))
                    .unwrap_or(u64::MAX)
            } else {
                ttl
            };
            if expire_at > HASH_FIELD_EXPIRE_MAX {
                return Err(corrupt(at, format!("invalid expireAt time: {expire_at}")));
            }
            let f = self.read_string("a hash field")?;
            let val = self.read_string("a hash value")?;
            if !seen.insert(f.clone()) {
                return Err(corrupt(
                    at,
                    format!("{dup} (field \"{}\")", escape_bytes(&f, 64)),
                ));
            }
            if !self.field_ttl_passed(ctx, &f, expire_at as i64)? {
                v.push((f, val));
            }
        }
        if v.is_empty() {
            return Ok(None);
        }
        Ok(Some(Value::Hash(Hash::Pairs(v))))
    }
}

/// Reads a whole RDB stream, handing each record to `on_record`.
///
/// An error from `on_record` stops the load with [`RdbError::Rejected`] (use
/// it, for instance, for a db index beyond the configured `databases`).
pub fn load<R, E>(
    r: R,
    mut on_record: impl FnMut(LoadedRecord) -> Result<(), E>,
) -> Result<LoadSummary, RdbError>
where
    R: Read,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut reader = RdbReader::new(r)?;
    while let Some(record) = reader.next_record()? {
        let offset = record.offset;
        on_record(record).map_err(|e| RdbError::Rejected {
            offset,
            source: e.into(),
        })?;
    }
    Ok(reader.into_summary())
}

/// [`load`] from a file.
pub fn load_file<E>(
    path: impl AsRef<Path>,
    on_record: impl FnMut(LoadedRecord) -> Result<(), E>,
) -> Result<LoadSummary, RdbError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let file = File::open(path)?;
    load(BufReader::with_capacity(1 << 16, file), on_record)
}

/// Reads a whole file, checking its structure and checksum, and returns the
/// summary (what `redis-check-rdb` does for the types this crate knows).
pub fn verify_file(path: impl AsRef<Path>) -> Result<LoadSummary, RdbError> {
    load_file(path, |_| Ok::<(), std::convert::Infallible>(()))
}

/// Reads one value, `<type byte><body>`, from a DUMP payload's body (the footer already
/// checked by [`crate::dump::decode_payload`]), with a load's validation. `Ok(None)` is an
/// empty container, which Redis's loader refuses.
pub(crate) fn read_value(body: &[u8]) -> Result<Option<Value>, RdbError> {
    let mut r = RdbReader {
        input: Input {
            inner: body,
            offset: 0,
            crc: Crc64::new(),
        },
        db: 0,
        resize_hint: None,
        summary: LoadSummary {
            version: RDB_VERSION,
            aux: Vec::new(),
            records: 0,
            records_with_expire: 0,
            select_dbs: 0,
            resize_dbs: 0,
            functions: Vec::new(),
            skipped: Skipped::default(),
            checksum: Checksum::NotReached,
            bytes_read: 0,
        },
        done: false,
        max_string_len: MAX_STRING_LEN,
        now_ms: 0,
    };
    let code = r.input.read_u8("the type byte")?;
    match code {
        TYPE_STRING => Ok(Some(Value::String(r.read_string("a string value")?))),
        TYPE_LIST
        | TYPE_SET
        | TYPE_ZSET
        | TYPE_HASH
        | TYPE_ZSET_2
        | TYPE_HASH_ZIPMAP
        | TYPE_LIST_ZIPLIST
        | TYPE_SET_INTSET
        | TYPE_ZSET_ZIPLIST
        | TYPE_HASH_ZIPLIST
        | TYPE_LIST_QUICKLIST
        | TYPE_HASH_LISTPACK
        | TYPE_ZSET_LISTPACK
        | TYPE_LIST_QUICKLIST_2 => {
            let ctx = ValueCtx {
                code,
                start: 0,
                key: b"",
            };
            r.read_container(&ctx).map_err(|e| ctx.wrap(e))
        }
        // Types Redis 7.0 does not know (7.2's SET_LISTPACK, 7.4's hash field expiry) are
        // refused by its RESTORE as they are here.
        _ => Err(corrupt(
            0,
            format!("value type {code} is not one a DUMP payload holds"),
        )),
    }
}
