//! What each key of the data set holds (`--type`) and the commands that fill, write and read it.
//!
//! # Shapes
//!
//! | type | one key | a write during the save | a read (`--pattern reads`) |
//! | --- | --- | --- | --- |
//! | `string` | a value of `value_size` bytes | `SET` | `GET` |
//! | `hash` | `members` fields `f0`, `f1`... of `value_size`-byte values | `HSET` of one existing field | `HGET` |
//! | `list` | `members` elements of `value_size` bytes | `LPUSH` then `LPOP` (length kept) | `LINDEX` |
//! | `set` | `members` integers: slot `j` holds `2j` or `2j+1` | `SREM` one of the slot's two, `SADD` the other | `SISMEMBER` |
//! | `zset` | `members` members `m000…j` of `value_size` bytes, integer scores | `ZADD INCR` of 1 to 1000 to an existing member's score | `ZSCORE` |
//!
//! The defaults (10 hash fields, 100 list elements, 50 set integers, 100 zset members, 16-byte
//! values) keep every container in Redis 7.0's compact encoding (listpack, intset; a list is a
//! quicklist of one listpack node), so a write changes one allocation. A set's slot `j` always
//! holds exactly one of `2j` and `2j + 1`: the writer removes one and adds the other, so the
//! set's size never changes, its members do, and no per-key state is needed. Members stay below
//! `2 × members`, so a small set stays a 16-bit intset. A zset write adds to a score
//! (`ZADD key INCR n member`, `n` ≥ 1) rather than setting one, so it always changes the score
//! and moves the member: a `ZADD` of a score the member already has changes nothing.
//!
//! A container of more than [`FILL_CHUNK`] members is filled by several commands of at most
//! that many members each.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::resp::{push_command, write_key};
use crate::workload::{Rng, ValuePool};

/// Members per fill command (`HSET k f v ...`, `RPUSH`, `SADD`, `ZADD`).
pub const FILL_CHUNK: u64 = 1000;

/// The type of every key in the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    String,
    Hash,
    List,
    Set,
    Zset,
}

impl DataType {
    /// What `TYPE` answers for a key of this type.
    pub fn name(self) -> &'static str {
        match self {
            DataType::String => "string",
            DataType::Hash => "hash",
            DataType::List => "list",
            DataType::Set => "set",
            DataType::Zset => "zset",
        }
    }

    /// Members per key when `--members` is not given (1 for a string).
    pub fn default_members(self) -> u64 {
        match self {
            DataType::String => 1,
            DataType::Hash => 10,
            DataType::List => 100,
            DataType::Set => 50,
            DataType::Zset => 100,
        }
    }

    /// `--value-size` when not given: 4096 for a string (as before types existed), 16 bytes for
    /// a container's values, short enough for the compact encodings (64 bytes at most).
    pub fn default_value_size(self) -> usize {
        match self {
            DataType::String => 4096,
            _ => 16,
        }
    }

    /// The write commands a unit of writing sends (for titles and tables).
    pub fn write_commands(self) -> &'static str {
        match self {
            DataType::String => "SET",
            DataType::Hash => "HSET",
            DataType::List => "LPUSH+LPOP",
            DataType::Set => "SREM+SADD",
            DataType::Zset => "ZADD INCR",
        }
    }

    /// The command that counts a key's members.
    fn card_command(self) -> Option<&'static [u8]> {
        match self {
            DataType::String => None,
            DataType::Hash => Some(b"HLEN"),
            DataType::List => Some(b"LLEN"),
            DataType::Set => Some(b"SCARD"),
            DataType::Zset => Some(b"ZCARD"),
        }
    }

    /// What one member is called in a description (`fields`, `elements`...).
    fn member_word(self) -> &'static str {
        match self {
            DataType::String => "values",
            DataType::Hash => "fields",
            DataType::List => "elements",
            DataType::Set => "integers",
            DataType::Zset => "members",
        }
    }
}

impl FromStr for DataType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "string" => Ok(DataType::String),
            "hash" => Ok(DataType::Hash),
            "list" => Ok(DataType::List),
            "set" => Ok(DataType::Set),
            "zset" => Ok(DataType::Zset),
            _ => Err(format!("{s:?}: expected string, hash, list, set or zset")),
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for DataType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The shape of every key: its type, how many members, how long each value is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub ty: DataType,
    /// Members per key (1 for a string).
    pub members: u64,
    /// Bytes per string value, hash value, list element or zset member (unused by sets).
    pub value_size: usize,
}

impl Shape {
    /// The shape with the type's defaults for what is not given.
    pub fn new(ty: DataType, members: Option<u64>, value_size: Option<usize>) -> Shape {
        Shape {
            ty,
            members: if ty == DataType::String {
                1
            } else {
                members.unwrap_or(ty.default_members()).max(1)
            },
            value_size: value_size.unwrap_or(ty.default_value_size()).max(1),
        }
    }

    /// A string of `value_size` bytes, as the tool measured before it knew other types.
    pub fn string(value_size: usize) -> Shape {
        Shape::new(DataType::String, None, Some(value_size))
    }

    /// Data bytes one member stands for, to size the data set: the value (a zset member also
    /// has an 8-byte score; a set's integer counts as 8 bytes).
    pub fn member_bytes(&self) -> u64 {
        match self.ty {
            DataType::Set => 8,
            DataType::Zset => self.value_size as u64 + 8,
            _ => self.value_size as u64,
        }
    }

    /// Data bytes per key.
    pub fn key_bytes(&self) -> u64 {
        self.members * self.member_bytes()
    }

    /// Fill commands per key.
    pub fn chunks_per_key(&self) -> u64 {
        self.members.div_ceil(FILL_CHUNK).max(1)
    }

    /// Bytes of one fill command (an estimate, for sizing batches).
    pub fn chunk_request_bytes(&self) -> usize {
        let per_member = self.value_size + 40;
        (self.members.min(FILL_CHUNK) as usize) * per_member + 64
    }

    /// `6553 hashes of 10 fields of 16 B` / `8192 keys of 4096 B`.
    pub fn describe(&self, keys: u64) -> String {
        match self.ty {
            DataType::String => format!("{keys} keys of {} B", self.value_size),
            DataType::Set => format!("{keys} sets of {} integers", self.members),
            t => format!(
                "{keys} {} of {} {} of {} B",
                match t {
                    DataType::Hash => "hashes",
                    DataType::List => "lists",
                    _ => "zsets",
                },
                self.members,
                t.member_word(),
                self.value_size
            ),
        }
    }

    /// Appends the fill command `chunk` (0-based, of [`chunks_per_key`](Self::chunks_per_key))
    /// of key `i`.
    pub fn push_fill(&self, out: &mut Vec<u8>, i: u64, chunk: u64, pool: &ValuePool) {
        let mut key = [0u8; 24];
        let klen = write_key(&mut key, i);
        let key = &key[..klen];
        let from = chunk * FILL_CHUNK;
        let to = (from + FILL_CHUNK).min(self.members);
        // Values of key i differ per member and per key.
        let value = |j: u64| pool.value(i.wrapping_mul(1_000_003).wrapping_add(j));
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut args: Vec<&[u8]> = Vec::with_capacity(2 + 2 * (to - from) as usize);
        match self.ty {
            DataType::String => {
                crate::resp::push_set(out, i, pool.value(i));
                return;
            }
            DataType::Hash => {
                for j in from..to {
                    names.push(field(j));
                }
                args.extend([b"HSET".as_slice(), key]);
                for (n, j) in names.iter().zip(from..to) {
                    args.push(n);
                    args.push(value(j));
                }
            }
            DataType::List => {
                args.extend([b"RPUSH".as_slice(), key]);
                args.extend((from..to).map(value));
            }
            DataType::Set => {
                for j in from..to {
                    names.push(set_member(j, 0));
                }
                args.extend([b"SADD".as_slice(), key]);
                args.extend(names.iter().map(Vec::as_slice));
            }
            DataType::Zset => {
                for j in from..to {
                    names.push(score(i.wrapping_mul(31).wrapping_add(j)));
                    names.push(self.zset_member(j));
                }
                args.extend([b"ZADD".as_slice(), key]);
                args.extend(names.iter().map(Vec::as_slice));
            }
        }
        push_command(out, &args);
    }

    /// Appends one unit of writing to key `i` and returns how many commands it is (2 for a
    /// list's LPUSH+LPOP and a set's SREM+SADD, else 1).
    pub fn push_write(&self, out: &mut Vec<u8>, i: u64, rng: &mut Rng, pool: &ValuePool) -> usize {
        let mut key = [0u8; 24];
        let klen = write_key(&mut key, i);
        let key = &key[..klen];
        match self.ty {
            DataType::String => {
                crate::resp::push_set(out, i, pool.value(rng.next_u64()));
                1
            }
            DataType::Hash => {
                let f = field(rng.below(self.members));
                push_command(out, &[b"HSET", key, &f, pool.value(rng.next_u64())]);
                1
            }
            DataType::List => {
                push_command(out, &[b"LPUSH", key, pool.value(rng.next_u64())]);
                push_command(out, &[b"LPOP", key]);
                2
            }
            DataType::Set => {
                let j = rng.below(self.members);
                let b = rng.next_u64() & 1;
                push_command(out, &[b"SREM", key, &set_member(j, 1 - b)]);
                push_command(out, &[b"SADD", key, &set_member(j, b)]);
                2
            }
            DataType::Zset => {
                let m = self.zset_member(rng.below(self.members));
                let by = (1 + rng.below(1000)).to_string();
                push_command(out, &[b"ZADD", key, b"INCR", by.as_bytes(), &m]);
                1
            }
        }
    }

    /// Appends one read of key `i` (`--pattern reads`).
    pub fn push_read(&self, out: &mut Vec<u8>, i: u64, rng: &mut Rng) {
        let mut key = [0u8; 24];
        let klen = write_key(&mut key, i);
        let key = &key[..klen];
        let j = rng.below(self.members);
        match self.ty {
            DataType::String => crate::resp::push_get(out, i),
            DataType::Hash => push_command(out, &[b"HGET", key, &field(j)]),
            DataType::List => push_command(out, &[b"LINDEX", key, j.to_string().as_bytes()]),
            DataType::Set => push_command(out, &[b"SISMEMBER", key, &set_member(j, 0)]),
            DataType::Zset => push_command(out, &[b"ZSCORE", key, &self.zset_member(j)]),
        }
    }

    /// Zset member `j`: `m` and `j` zero-padded to `value_size` bytes (never read as a number).
    pub fn zset_member(&self, j: u64) -> Vec<u8> {
        format!("m{j:0>w$}", w = self.value_size.saturating_sub(1)).into_bytes()
    }

    /// The command that counts key `name`'s members, if the type has members.
    pub fn card_command(&self) -> Option<&'static [u8]> {
        self.ty.card_command()
    }
}

/// Hash field `j`.
pub fn field(j: u64) -> Vec<u8> {
    format!("f{j}").into_bytes()
}

/// Set slot `j`'s member `2j + b`.
pub fn set_member(j: u64, b: u64) -> Vec<u8> {
    (2 * j + b).to_string().into_bytes()
}

/// An integer score from a random draw (integers keep the listpack entry short).
fn score(r: u64) -> Vec<u8> {
    (r % 1_000_000).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use forkdb_protocol::{Frame, FrameDecoder};

    /// The commands in `buf` as lists of words.
    fn commands(buf: &[u8]) -> Vec<Vec<String>> {
        let mut b = BytesMut::from(buf);
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        while let Some(f) = d.decode(&mut b).unwrap() {
            let Frame::Array(items) = f else {
                panic!("{f:?}")
            };
            out.push(
                items
                    .into_iter()
                    .map(|i| match i {
                        // Latin-1, so that one byte is one char (values are random bytes).
                        Frame::Bulk(b) => b.iter().map(|&c| c as char).collect(),
                        other => panic!("{other:?}"),
                    })
                    .collect(),
            );
        }
        assert!(b.is_empty());
        out
    }

    #[test]
    fn types_parse_and_default() {
        for s in ["string", "hash", "list", "set", "zset"] {
            assert_eq!(s.parse::<DataType>().unwrap().to_string(), s);
        }
        assert!("stream".parse::<DataType>().is_err());
        let s = Shape::new(DataType::String, Some(50), None);
        assert_eq!((s.members, s.value_size), (1, 4096));
        let h = Shape::new(DataType::Hash, None, None);
        assert_eq!((h.members, h.value_size, h.key_bytes()), (10, 16, 160));
        assert_eq!(Shape::new(DataType::Set, Some(50), None).key_bytes(), 400);
        assert_eq!(
            Shape::new(DataType::Zset, Some(2500), None).chunks_per_key(),
            3
        );
    }

    #[test]
    fn fill_commands() {
        let pool = ValuePool::new(16, 1);
        let h = Shape::new(DataType::Hash, Some(3), None);
        let mut buf = Vec::new();
        h.push_fill(&mut buf, 7, 0, &pool);
        let c = commands(&buf);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0][..3], ["HSET", "key:000000000007", "f0"]);
        assert_eq!(c[0].len(), 8);
        assert_eq!(c[0][3].chars().count(), 16);

        let z = Shape::new(DataType::Zset, Some(2500), Some(8));
        buf.clear();
        for chunk in 0..z.chunks_per_key() {
            z.push_fill(&mut buf, 1, chunk, &pool);
        }
        let c = commands(&buf);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].len(), 2 + 2 * 1000);
        assert_eq!(c[2].len(), 2 + 2 * 500);
        assert_eq!(c[0][3], "m0000000");
        assert_eq!(c[2][2 * 500 + 1], "m0002499");

        let s = Shape::new(DataType::Set, Some(4), None);
        buf.clear();
        s.push_fill(&mut buf, 0, 0, &pool);
        assert_eq!(commands(&buf)[0][2..], ["0", "2", "4", "6"]);

        let l = Shape::new(DataType::List, Some(5), Some(4));
        buf.clear();
        l.push_fill(&mut buf, 0, 0, &ValuePool::new(4, 1));
        assert_eq!(commands(&buf)[0].len(), 7);
    }

    #[test]
    fn writes_keep_the_size() {
        let pool = ValuePool::new(16, 1);
        let mut rng = Rng::new(3);
        let mut buf = Vec::new();
        let l = Shape::new(DataType::List, None, None);
        assert_eq!(l.push_write(&mut buf, 5, &mut rng, &pool), 2);
        let c = commands(&buf);
        assert_eq!((c[0][0].as_str(), c[1][0].as_str()), ("LPUSH", "LPOP"));
        assert_eq!(c[0][1], c[1][1]);

        let s = Shape::new(DataType::Set, Some(50), None);
        for _ in 0..100 {
            buf.clear();
            assert_eq!(s.push_write(&mut buf, 5, &mut rng, &pool), 2);
            let c = commands(&buf);
            let (rem, add): (u64, u64) = (c[0][2].parse().unwrap(), c[1][2].parse().unwrap());
            assert_eq!((c[0][0].as_str(), c[1][0].as_str()), ("SREM", "SADD"));
            // The two candidates of one slot.
            assert_eq!(rem / 2, add / 2);
            assert_ne!(rem, add);
            assert!(add < 100);
        }
        let z = Shape::new(DataType::Zset, Some(100), Some(16));
        buf.clear();
        assert_eq!(z.push_write(&mut buf, 1, &mut rng, &pool), 1);
        let c = commands(&buf);
        assert_eq!(c[0][..3], ["ZADD", "key:000000000001", "INCR"]);
        assert!((1..=1000).contains(&c[0][3].parse::<u32>().unwrap()));
        assert_eq!(c[0][4].chars().count(), 16);
        assert!(c[0][4].starts_with('m'));
    }
}
