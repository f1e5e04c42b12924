//! The values this crate can write and read.

use bytes::Bytes;

use crate::format;

/// A value as stored in an RDB record.
///
/// Only strings for now. Lists, hashes, sets and sorted sets become new
/// variants; each needs an arm in [`Value::type_code`], in
/// `encode::encode_value` and in the reader's type dispatch, and the compiler
/// points at all three.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// A string (binary-safe). Integers are strings too: `"123"` is stored
    /// as INT8/16/32 and read back as `"123"`.
    String(Bytes),
}

impl Value {
    /// The RDB type byte written before the key (`format::TYPE_*`).
    pub fn type_code(&self) -> u8 {
        match self {
            Value::String(_) => format::TYPE_STRING,
        }
    }
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
