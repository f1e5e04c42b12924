//! The values this crate can write and read: strings, and the four
//! containers (lists, sets, hashes, sorted sets).
//!
//! A container comes in one of two forms, so the server can adopt what the
//! file holds without re-encoding it:
//!
//! - **compact**: the blob exactly as forkdb keeps it in memory and writes
//!   it (a validated [`Listpack`] or [`Intset`]): what Redis 7.0 writes as
//!   `HASH_LISTPACK`, `ZSET_LISTPACK`, `SET_INTSET`, a `QUICKLIST_2` node, and
//!   7.2's `SET_LISTPACK`; the older ziplist and zipmap encodings are converted
//!   to listpacks on load, as Redis 7.0 does.
//! - **expanded**: the logical content as owned strings (`TYPE_LIST`,
//!   `TYPE_SET`, `TYPE_HASH`, `TYPE_ZSET`/`ZSET_2`, a ziplist list), in file
//!   order; the server builds its own structure from it.
//!
//! Either form gives the logical content through the `*_vec` methods (tests
//! and conversions), and the reader guarantees what Redis's loader does:
//! no container is empty, no set member, hash field or sorted-set member
//! appears twice, no score is NaN.
//!
//! Writing a [`Value`] ([`crate::RdbWriter::record`]) is for tests and tools:
//! the server's forked child writes its own structures by reference through
//! the `RdbWriter::record_*` methods instead, copying nothing.

use bytes::Bytes;

use crate::blob::{Elem, Intset, Listpack};
use crate::format;

/// A value as stored in an RDB record.
///
/// Each variant needs an arm in [`Value::type_code`], in
/// `encode::encode_value` and in the reader's type dispatch; the compiler
/// points at all three.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (binary-safe). Integers are strings too: `"123"` is stored
    /// as INT8/16/32 and read back as `"123"`.
    String(Bytes),
    /// A list.
    List(List),
    /// A set.
    Set(Set),
    /// A hash.
    Hash(Hash),
    /// A sorted set.
    ZSet(ZSet),
}

/// One node of a quicklist as Redis 7.0 keeps it (`quicklistNode`) and
/// writes it (`RDB_TYPE_LIST_QUICKLIST_2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListNode {
    /// `PACKED` (container 2): a listpack of one or more elements.
    Packed(Listpack),
    /// `PLAIN` (container 1): one large element, stored as is.
    Plain(Bytes),
}

/// A list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum List {
    /// Compact: quicklist nodes (`QUICKLIST_2` as is; a `QUICKLIST` v1 file's
    /// ziplist nodes converted one for one, as Redis 7.0 does). Never empty,
    /// no node empty.
    Quicklist(Vec<ListNode>),
    /// Expanded: the elements, head to tail (`TYPE_LIST`, `LIST_ZIPLIST`).
    Elements(Vec<Bytes>),
}

/// A set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Set {
    /// Compact: an intset (`SET_INTSET`).
    Intset(Intset),
    /// Compact: a listpack of members (`SET_LISTPACK`, Redis 7.2+).
    Listpack(Listpack),
    /// Expanded: the members in file order (`TYPE_SET`).
    Members(Vec<Bytes>),
}

/// A hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hash {
    /// Compact: a listpack of field, value, field, value, ...
    /// (`HASH_LISTPACK`; zipmap and ziplist files converted).
    Listpack(Listpack),
    /// Expanded: (field, value) pairs in file order (`TYPE_HASH`, and 7.4's
    /// hashes with field TTLs once the expired fields are dropped).
    Pairs(Vec<(Bytes, Bytes)>),
}

/// A sorted set.
#[derive(Debug, Clone, PartialEq)]
pub enum ZSet {
    /// Compact: a listpack of member, score, member, score, ... in score
    /// order (`ZSET_LISTPACK`; a ziplist file converted).
    Listpack(Listpack),
    /// Expanded: (member, score) in file order (`ZSET_2`, `ZSET`). Redis
    /// writes them from the highest score to the lowest.
    Members(Vec<(Bytes, f64)>),
}

impl Value {
    /// The RDB type byte written before the key (`format::TYPE_*`): what
    /// redis-server 7.0 would write for this form.
    pub fn type_code(&self) -> u8 {
        match self {
            Value::String(_) => format::TYPE_STRING,
            Value::List(_) => format::TYPE_LIST_QUICKLIST_2,
            Value::Set(Set::Intset(_)) => format::TYPE_SET_INTSET,
            // Redis 7.0 has no SET_LISTPACK: such a set is written as a plain set.
            Value::Set(Set::Listpack(_) | Set::Members(_)) => format::TYPE_SET,
            Value::Hash(Hash::Listpack(_)) => format::TYPE_HASH_LISTPACK,
            Value::Hash(Hash::Pairs(_)) => format::TYPE_HASH,
            Value::ZSet(ZSet::Listpack(_)) => format::TYPE_ZSET_LISTPACK,
            Value::ZSet(ZSet::Members(_)) => format::TYPE_ZSET_2,
        }
    }
}

/// An element as Redis replies with it.
pub(crate) fn elem_bytes(e: Elem<'_>) -> Bytes {
    match e {
        Elem::Int(v) => Bytes::from(v.to_string()),
        Elem::Str(s) => Bytes::copy_from_slice(s),
    }
}

/// A score stored in a listpack, as Redis's `zzlGetScore` reads it: an
/// integer entry as is, a string entry through `strtod`.
pub fn listpack_score(e: Elem<'_>) -> f64 {
    match e {
        Elem::Int(v) => v as f64,
        Elem::Str(s) => parse_c_double(s).unwrap_or(0.0),
    }
}

/// The double at the start of `s` the way C's `strtod`/`sscanf("%lg")` read
/// it: leading white space skipped, the longest prefix that is a number
/// taken (`inf`, `infinity`, `nan` in any case included), the rest ignored.
/// `None` when no prefix is a number. Rust's `f64::from_str` reads the same
/// decimal syntax but insists on the whole input, so this finds the prefix.
pub fn parse_c_double(s: &[u8]) -> Option<f64> {
    let start = s
        .iter()
        .position(|b| !b" \t\n\x0b\x0c\r".contains(b))
        .unwrap_or(s.len());
    let s = &s[start..];
    // Longest prefix first; numbers are short (Redis writes at most 17
    // significant digits), so this stays cheap on foreign input too.
    let max = s.len().min(128);
    (1..=max).rev().find_map(|n| {
        let t = std::str::from_utf8(&s[..n]).ok()?;
        // Rust accepts "infinity"/"inf"/"nan" with a sign, like strtod; it
        // also accepts a trailing "e" nowhere, and no hex floats (which no
        // Redis ever writes).
        t.parse::<f64>().ok()
    })
}

impl List {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            List::Quicklist(nodes) => nodes
                .iter()
                .map(|n| match n {
                    ListNode::Packed(lp) => lp.len(),
                    ListNode::Plain(_) => 1,
                })
                .sum(),
            List::Elements(v) => v.len(),
        }
    }

    /// Whether there is no element (never true of a list the reader returns).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements, head to tail.
    pub fn to_vec(&self) -> Vec<Bytes> {
        match self {
            List::Quicklist(nodes) => {
                let mut out = Vec::new();
                for n in nodes {
                    match n {
                        ListNode::Packed(lp) => out.extend(lp.iter().map(elem_bytes)),
                        ListNode::Plain(b) => out.push(b.clone()),
                    }
                }
                out
            }
            List::Elements(v) => v.clone(),
        }
    }
}

impl Set {
    /// Number of members.
    pub fn len(&self) -> usize {
        match self {
            Set::Intset(is) => is.len(),
            Set::Listpack(lp) => lp.len(),
            Set::Members(v) => v.len(),
        }
    }

    /// Whether there is no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The members (intset: ascending; otherwise in stored order).
    pub fn to_vec(&self) -> Vec<Bytes> {
        match self {
            Set::Intset(is) => is.iter().map(|v| Bytes::from(v.to_string())).collect(),
            Set::Listpack(lp) => lp.iter().map(elem_bytes).collect(),
            Set::Members(v) => v.clone(),
        }
    }
}

impl Hash {
    /// Number of fields.
    pub fn len(&self) -> usize {
        match self {
            Hash::Listpack(lp) => lp.len() / 2,
            Hash::Pairs(v) => v.len(),
        }
    }

    /// Whether there is no field.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The (field, value) pairs in stored order.
    pub fn to_vec(&self) -> Vec<(Bytes, Bytes)> {
        match self {
            Hash::Listpack(lp) => pairs(lp)
                .map(|(f, v)| (elem_bytes(f), elem_bytes(v)))
                .collect(),
            Hash::Pairs(v) => v.clone(),
        }
    }
}

impl ZSet {
    /// Number of members.
    pub fn len(&self) -> usize {
        match self {
            ZSet::Listpack(lp) => lp.len() / 2,
            ZSet::Members(v) => v.len(),
        }
    }

    /// Whether there is no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The (member, score) pairs in stored order.
    pub fn to_vec(&self) -> Vec<(Bytes, f64)> {
        match self {
            ZSet::Listpack(lp) => pairs(lp)
                .map(|(m, s)| (elem_bytes(m), listpack_score(s)))
                .collect(),
            ZSet::Members(v) => v.clone(),
        }
    }
}

/// A listpack's elements two by two (a trailing odd element is ignored; the
/// reader never returns such a listpack).
pub fn pairs(lp: &Listpack) -> impl Iterator<Item = (Elem<'_>, Elem<'_>)> {
    let mut it = lp.iter();
    std::iter::from_fn(move || Some((it.next()?, it.next()?)))
}

impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Value::String(b)
    }
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Self {
        Value::String(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::String(Bytes::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_doubles() {
        assert_eq!(parse_c_double(b"1.5"), Some(1.5));
        assert_eq!(parse_c_double(b"  -2e3xyz"), Some(-2000.0));
        assert_eq!(parse_c_double(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_c_double(b"-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_c_double(b"nan").unwrap().is_nan());
        assert_eq!(parse_c_double(b"x1"), None);
        assert_eq!(parse_c_double(b""), None);
    }
}
