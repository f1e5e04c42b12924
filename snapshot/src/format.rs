//! The RDB file format: layout, opcodes, value types and string encodings.
//!
//! This module holds only facts about the format (named constants and the
//! names Redis gives its type codes); [`crate::encode`] writes it and
//! [`crate::decode`] reads it. The facts come from Redis's `src/rdb.h` and
//! `src/rdb.c`; the version written is [`RDB_VERSION`] (10), the one
//! redis-server 7.0 writes, and the reader accepts `1..=`[`MAX_READ_VERSION`].
//!
//! # File layout
//!
//! ```text
//! +-------------------------------------------+------------------------------------------+
//! | bytes                                     | meaning                                  |
//! +-------------------------------------------+------------------------------------------+
//! | "REDIS" "0010"                            | magic + 4 ASCII version digits           |
//! | FA <str name> <str value>                 | AUX field (any number, usually first):   |
//! |                                           |   redis-ver, redis-bits, ctime,          |
//! |                                           |   used-mem, aof-base                     |
//! | F7 <len id> <len 2> <len when> <mod>... 00| MODULE_AUX: module data (skipped)        |
//! | F5 <str code>                             | FUNCTION2: a function library (kept)     |
//! | F6 <str> <str> <len d> [<str>] <str>      | FUNCTION (7.0 rc1/rc2 format, read as    |
//! |                                           |   FUNCTION2; never written)              |
//! | FE <len db>                               | SELECTDB: following keys go to db        |
//! | FB <len keys> <len expires>               | RESIZEDB: size hint for that db          |
//! | F4 <len slot> <len size> <len expires>    | SLOT_INFO (7.4 cluster mode, skipped)    |
//! | FC <i64 little-endian, unix ms>           | EXPIRETIME_MS for the next key           |
//! | FD <i32 little-endian, unix s>            | EXPIRETIME (RDB < 3) for the next key    |
//! | F8 <len seconds>                          | IDLE: LRU idle time of the next key      |
//! | F9 <u8>                                   | FREQ: LFU counter of the next key        |
//! | <type> <str key> <value>                  | a key; type 00 = string, value = <str>;  |
//! |                                           |   containers: see the table below        |
//! | FF                                        | EOF                                      |
//! | <u64 little-endian>                       | CRC-64/REDIS of every byte before it,    |
//! |                                           | 0 = not computed (only RDB >= 5)         |
//! +-------------------------------------------+------------------------------------------+
//! ```
//!
//! Everything between the header and EOF is a sequence of items, each starting
//! with one byte: an opcode (`0xF4..=0xFF`) or a value type (`0..=25`). The
//! expire/IDLE/FREQ opcodes apply to the key record that follows them.
//!
//! # Length encoding (`<len>`)
//!
//! ```text
//! +------------+-----------------------------+---------------------------------+
//! | first byte | followed by                 | meaning                         |
//! +------------+-----------------------------+---------------------------------+
//! | 00xxxxxx   | -                           | length 0..=63                   |
//! | 01xxxxxx   | 1 byte                      | 14-bit length, big-endian       |
//! | 10000000   | 4 bytes big-endian          | 32-bit length                   |
//! | 10000001   | 8 bytes big-endian          | 64-bit length                   |
//! | 11xxxxxx   | see below                   | a specially encoded string      |
//! +------------+-----------------------------+---------------------------------+
//! ```
//!
//! Writers use the shortest form; readers accept any form.
//!
//! # String encoding (`<str>`)
//!
//! ```text
//! +------------+------------------------------------+-------------------------------+
//! | first byte | followed by                        | meaning                       |
//! +------------+------------------------------------+-------------------------------+
//! | <len n>    | n bytes                            | raw bytes                     |
//! | C0         | 1 byte                             | INT8: decimal text of an i8   |
//! | C1         | 2 bytes little-endian              | INT16                         |
//! | C2         | 4 bytes little-endian              | INT32                         |
//! | C3         | <len clen> <len n> <clen bytes>    | LZF-compressed, n bytes once  |
//! |            |                                    | decompressed                  |
//! +------------+------------------------------------+-------------------------------+
//! ```
//!
//! Redis (`rdbSaveRawString`) writes a string of at most 11 bytes that is a
//! canonical decimal integer (`string2ll`: no sign but `-`, no leading zero)
//! fitting in 32 bits as INT8/16/32; otherwise, when compression is on and the
//! string is longer than 20 bytes, LZF if the output fits in `len - 4` bytes
//! (`rdbSaveLzfStringObject`); otherwise raw. AUX names and values and keys are
//! strings too, so `redis-bits` = `64` is stored as `C0 40`.

//!
//! # Container values (`<value>` after `<type> <str key>`)
//!
//! ```text
//! +----------------------------+-----------------------------------------------------+
//! | type                       | value                                               |
//! +----------------------------+-----------------------------------------------------+
//! | 01 LIST                    | <len n> <str>*n                          (old)      |
//! | 02 SET                     | <len n> <str member>*n                   (7.0 w)    |
//! | 03 ZSET                    | <len n> (<str member> <dbl>)*n: <dbl> = <u8 l>      |
//! |                            |   then l ASCII bytes; l 253 NaN, 254 +inf, 255 -inf |
//! | 04 HASH                    | <len n> (<str field> <str value>)*n      (7.0 w)    |
//! | 05 ZSET_2                  | <len n> (<str member> <f64 LE>)*n, 7.0 writes the   |
//! |                            |   skiplist tail (highest) to head        (7.0 w)    |
//! | 09 HASH_ZIPMAP             | <str zipmap>                             (<= 2.4)   |
//! | 0A LIST_ZIPLIST            | <str ziplist>                            (< 3.2)    |
//! | 0B SET_INTSET              | <str intset>                             (7.0 w)    |
//! | 0C ZSET_ZIPLIST            | <str ziplist: member, score, ...>        (< 7.0)    |
//! | 0D HASH_ZIPLIST            | <str ziplist: field, value, ...>         (< 7.0)    |
//! | 0E LIST_QUICKLIST          | <len nodes> <str ziplist>*nodes          (< 7.0)    |
//! | 10 HASH_LISTPACK           | <str listpack: field, value, ...>        (7.0 w)    |
//! | 11 ZSET_LISTPACK           | <str listpack: member, score, ...>       (7.0 w)    |
//! | 12 LIST_QUICKLIST_2        | <len nodes> (<len container> <str>)*nodes:          |
//! |                            |   container 1 PLAIN (one element), 2 PACKED         |
//! |                            |   (a listpack)                           (7.0 w)    |
//! | 14 SET_LISTPACK            | <str listpack: member, ...>              (7.2)      |
//! | 16 HASH_METADATA_PRE_GA    | <len n> (<len ttl> <str f> <str v>)*n, absolute ttl |
//! | 17 HASH_LISTPACK_EX_PRE_GA | <str listpack: field, value, ttl, ...>             |
//! | 18 HASH_METADATA           | <u64 LE min expire> <len n> (<len ttl> <str f>      |
//! |                            |   <str v>)*n; ttl 0 none, else min + ttl - 1 (7.4)  |
//! | 19 HASH_LISTPACK_EX        | <u64 LE min expire> <str listpack: field, value,    |
//! |                            |   ttl (0 = none), ...>                   (7.4)      |
//! +----------------------------+-----------------------------------------------------+
//! ```
//!
//! (7.0 w) = what redis-server 7.0 writes, and so does forkdb. A blob (`<str>`
//! holding a ziplist, listpack, intset or zipmap) is an ordinary string: it
//! gets LZF like any other when compression is on and it is over 20 bytes.
//! The blob formats themselves are in [`crate::blob`].

/// The magic at the start of every RDB file, before the 4 version digits.
pub const MAGIC: &[u8; 5] = b"REDIS";
/// Length of the header: magic + 4 ASCII digits.
pub const HEADER_LEN: usize = 9;
/// The RDB version this crate writes (redis-server 7.0).
pub const RDB_VERSION: u32 = 10;
/// The highest RDB version the reader accepts (redis-server 7.4 writes 12).
pub const MAX_READ_VERSION: u32 = 12;
/// First RDB version with a trailing checksum.
pub const MIN_CHECKSUM_VERSION: u32 = 5;
/// First RDB version whose EXPIRETIME_MS is always little-endian (before 9,
/// Redis wrote the host's byte order; this reader assumes little-endian).
pub const MIN_PORTABLE_EXPIRE_VERSION: u32 = 9;

// Opcodes (rdb.h `RDB_OPCODE_*`).

/// Cluster-mode slot information (RDB 12): three lengths.
pub const OPCODE_SLOT_INFO: u8 = 0xF4;
/// A function library: one string, its code (Redis 7.0 GA and later).
pub const OPCODE_FUNCTION2: u8 = 0xF5;
/// A function library in the Redis 7.0 rc1/rc2 format (`RDB_OPCODE_FUNCTION_PRE_GA`).
pub const OPCODE_FUNCTION_PRE_GA: u8 = 0xF6;
/// Module auxiliary data, not tied to a key.
pub const OPCODE_MODULE_AUX: u8 = 0xF7;
/// LRU idle time of the next key, in seconds, as a length.
pub const OPCODE_IDLE: u8 = 0xF8;
/// LFU frequency counter of the next key, one byte.
pub const OPCODE_FREQ: u8 = 0xF9;
/// An auxiliary field: two strings, name and value.
pub const OPCODE_AUX: u8 = 0xFA;
/// Hash table size hint for the current db: two lengths (keys, keys with expire).
pub const OPCODE_RESIZEDB: u8 = 0xFB;
/// Absolute expire time of the next key: 8-byte little-endian unix milliseconds.
pub const OPCODE_EXPIRETIME_MS: u8 = 0xFC;
/// Absolute expire time of the next key: 4-byte little-endian unix seconds (old files).
pub const OPCODE_EXPIRETIME: u8 = 0xFD;
/// Select the db of the following keys: one length.
pub const OPCODE_SELECTDB: u8 = 0xFE;
/// End of the data; the checksum follows (RDB >= 5).
pub const OPCODE_EOF: u8 = 0xFF;

// Value types (rdb.h `RDB_TYPE_*`). Streams and modules are not loaded;
// they are named so the reader can say what it met.

/// A string value: one `<str>`.
pub const TYPE_STRING: u8 = 0;
/// A list as a sequence of strings (RDB < 7 era).
pub const TYPE_LIST: u8 = 1;
/// A set as a sequence of strings.
pub const TYPE_SET: u8 = 2;
/// A sorted set with scores as ASCII doubles.
pub const TYPE_ZSET: u8 = 3;
/// A hash as a sequence of field/value strings.
pub const TYPE_HASH: u8 = 4;
/// A sorted set with binary double scores.
pub const TYPE_ZSET_2: u8 = 5;
/// A module value from 4.0 release candidates.
pub const TYPE_MODULE_PRE_GA: u8 = 6;
/// A module value with opcode annotations.
pub const TYPE_MODULE_2: u8 = 7;
/// A small hash as a zipmap (RDB < 4 era).
pub const TYPE_HASH_ZIPMAP: u8 = 9;
/// A small list as a ziplist.
pub const TYPE_LIST_ZIPLIST: u8 = 10;
/// A small set of integers as an intset.
pub const TYPE_SET_INTSET: u8 = 11;
/// A small sorted set as a ziplist.
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
/// A small hash as a ziplist.
pub const TYPE_HASH_ZIPLIST: u8 = 13;
/// A list as a quicklist of ziplists.
pub const TYPE_LIST_QUICKLIST: u8 = 14;
/// A stream (Redis 5).
pub const TYPE_STREAM_LISTPACKS: u8 = 15;
/// A small hash as a listpack (Redis 7).
pub const TYPE_HASH_LISTPACK: u8 = 16;
/// A small sorted set as a listpack (Redis 7).
pub const TYPE_ZSET_LISTPACK: u8 = 17;
/// A list as a quicklist of listpacks (Redis 7).
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
/// A stream with consumer group metadata v2 (Redis 7).
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
/// A small set as a listpack (Redis 7.2).
pub const TYPE_SET_LISTPACK: u8 = 20;
/// A stream v3 (Redis 7.2).
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;
/// A hash with field expiry, 7.4 release candidates.
pub const TYPE_HASH_METADATA_PRE_GA: u8 = 22;
/// A listpack hash with field expiry, 7.4 release candidates.
pub const TYPE_HASH_LISTPACK_EX_PRE_GA: u8 = 23;
/// A hash with field expiry (Redis 7.4).
pub const TYPE_HASH_METADATA: u8 = 24;
/// A listpack hash with field expiry (Redis 7.4).
pub const TYPE_HASH_LISTPACK_EX: u8 = 25;

// Quicklist node containers (quicklist.h), written before each node of
// `TYPE_LIST_QUICKLIST_2`.

/// A node holding one large element as is.
pub const QUICKLIST_NODE_PLAIN: u64 = 1;
/// A node holding a listpack of elements.
pub const QUICKLIST_NODE_PACKED: u64 = 2;

/// The length byte of an ASCII double (`TYPE_ZSET`) meaning NaN.
pub const DOUBLE_NAN: u8 = 253;
/// The length byte of an ASCII double meaning +inf.
pub const DOUBLE_POS_INF: u8 = 254;
/// The length byte of an ASCII double meaning -inf.
pub const DOUBLE_NEG_INF: u8 = 255;

/// The largest field expire time of 7.4's hashes (`EB_EXPIRE_TIME_MAX`,
/// 2^48 - 1 ms); the TTL element 0 means "no TTL" (`HASH_LP_NO_TTL`).
pub const HASH_FIELD_EXPIRE_MAX: u64 = (1 << 48) - 1;

// Length encoding (rdb.h `RDB_6BITLEN` ... `RDB_ENC_*`).

/// Top two bits `00`: the length is the low 6 bits.
pub const LEN_6BIT: u8 = 0;
/// Top two bits `01`: 14-bit length, low 6 bits then one more byte.
pub const LEN_14BIT: u8 = 1;
/// Whole first byte: a 32-bit big-endian length follows.
pub const LEN_32BIT: u8 = 0x80;
/// Whole first byte: a 64-bit big-endian length follows.
pub const LEN_64BIT: u8 = 0x81;
/// Top two bits `11`: a special string encoding, named by the low 6 bits.
pub const LEN_ENCVAL: u8 = 3;
/// Special string encoding: 8-bit signed integer.
pub const ENC_INT8: u8 = 0;
/// Special string encoding: 16-bit little-endian signed integer.
pub const ENC_INT16: u8 = 1;
/// Special string encoding: 32-bit little-endian signed integer.
pub const ENC_INT32: u8 = 2;
/// Special string encoding: LZF-compressed string.
pub const ENC_LZF: u8 = 3;

// Module value annotations (rdb.h `RDB_MODULE_OPCODE_*`), read only to skip
// MODULE_AUX records.

/// End of a module value.
pub const MODULE_OPCODE_EOF: u64 = 0;
/// A signed integer, stored as a length.
pub const MODULE_OPCODE_SINT: u64 = 1;
/// An unsigned integer, stored as a length.
pub const MODULE_OPCODE_UINT: u64 = 2;
/// A 4-byte binary float.
pub const MODULE_OPCODE_FLOAT: u64 = 3;
/// An 8-byte binary double.
pub const MODULE_OPCODE_DOUBLE: u64 = 4;
/// A string.
pub const MODULE_OPCODE_STRING: u64 = 5;

/// Redis only tries the integer encodings on strings this short:
/// `"-2147483648"` is the longest INT32.
pub const INT_ENCODING_MAX_LEN: usize = 11;
/// Redis only tries LZF on strings longer than this (`rdbSaveRawString`).
pub const LZF_MIN_LEN: usize = 20;
/// LZF output must save at least this many bytes (`rdbSaveLzfStringObject`).
pub const LZF_MIN_SAVING: usize = 4;

/// What Redis calls a value type code: `(kind, encoding)`, e.g. `("list",
/// "quicklist")`. `None` for a byte that is neither a type nor an opcode.
pub fn type_name(code: u8) -> Option<(&'static str, &'static str)> {
    Some(match code {
        TYPE_STRING => ("string", "raw"),
        TYPE_LIST => ("list", "linked list"),
        TYPE_SET => ("set", "hashtable"),
        TYPE_ZSET => ("zset", "skiplist v1"),
        TYPE_HASH => ("hash", "hashtable"),
        TYPE_ZSET_2 => ("zset", "skiplist v2"),
        TYPE_MODULE_PRE_GA => ("module", "pre-release"),
        TYPE_MODULE_2 => ("module", "value"),
        TYPE_HASH_ZIPMAP => ("hash", "zipmap"),
        TYPE_LIST_ZIPLIST => ("list", "ziplist"),
        TYPE_SET_INTSET => ("set", "intset"),
        TYPE_ZSET_ZIPLIST => ("zset", "ziplist"),
        TYPE_HASH_ZIPLIST => ("hash", "ziplist"),
        TYPE_LIST_QUICKLIST => ("list", "quicklist"),
        TYPE_STREAM_LISTPACKS => ("stream", "listpacks"),
        TYPE_HASH_LISTPACK => ("hash", "listpack"),
        TYPE_ZSET_LISTPACK => ("zset", "listpack"),
        TYPE_LIST_QUICKLIST_2 => ("list", "quicklist v2"),
        TYPE_STREAM_LISTPACKS_2 => ("stream", "listpacks v2"),
        TYPE_SET_LISTPACK => ("set", "listpack"),
        TYPE_STREAM_LISTPACKS_3 => ("stream", "listpacks v3"),
        TYPE_HASH_METADATA_PRE_GA => ("hash", "hashtable with field TTLs, pre-release"),
        TYPE_HASH_LISTPACK_EX_PRE_GA => ("hash", "listpack with field TTLs, pre-release"),
        TYPE_HASH_METADATA => ("hash", "hashtable with field TTLs"),
        TYPE_HASH_LISTPACK_EX => ("hash", "listpack with field TTLs"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_up_to_25_but_8_has_a_name() {
        for code in 0..=30u8 {
            let named = type_name(code).is_some();
            assert_eq!(named, code <= 25 && code != 8, "type {code}");
        }
    }
}
