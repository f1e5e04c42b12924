//! DUMP/RESTORE payloads (`createDumpPayload` / `verifyDumpPayload` in Redis 7.0's
//! `cluster.c`): one value as the RDB file writes it (type byte, then the body, no key),
//! then the RDB version as 2 bytes little-endian, then the CRC-64/REDIS of everything
//! before it, 8 bytes little-endian.
//!
//! Owns only the framing: the bodies come from [`crate::encode`] (by reference, as
//! [`crate::RdbWriter`]'s `record_*` methods take them) and are read back by
//! [`crate::decode`] with the same validation as a load.

use std::io;

use crate::crc::crc64;
use crate::encode::QuicklistNode;
use crate::encode::{encode_hash, encode_quicklist2, encode_set, encode_string, encode_zset2};
use crate::error::RdbError;
use crate::format::{
    RDB_VERSION, TYPE_HASH, TYPE_HASH_LISTPACK, TYPE_LIST_QUICKLIST_2, TYPE_SET, TYPE_SET_INTSET,
    TYPE_STRING, TYPE_ZSET_2, TYPE_ZSET_LISTPACK,
};
use crate::lzf::LzfCompressor;
use crate::value::Value;

/// Builds one DUMP payload. `compression` is the server's `rdbcompression` (Redis's DUMP
/// compresses strings longer than 20 bytes with LZF when it is on, as the file does).
pub struct DumpPayload {
    buf: Vec<u8>,
    lzf: Option<LzfCompressor>,
}

impl DumpPayload {
    pub fn new(compression: bool) -> Self {
        DumpPayload {
            buf: Vec::new(),
            lzf: compression.then(LzfCompressor::new),
        }
    }

    /// A string value (`RDB_TYPE_STRING`).
    pub fn string(self, value: &[u8]) -> io::Result<Vec<u8>> {
        self.blob(TYPE_STRING, value)
    }

    /// A hash held as a listpack (`HASH_LISTPACK`).
    pub fn hash_listpack(self, listpack: &[u8]) -> io::Result<Vec<u8>> {
        self.blob(TYPE_HASH_LISTPACK, listpack)
    }

    /// A sorted set held as a listpack (`ZSET_LISTPACK`).
    pub fn zset_listpack(self, listpack: &[u8]) -> io::Result<Vec<u8>> {
        self.blob(TYPE_ZSET_LISTPACK, listpack)
    }

    /// A set held as an intset (`SET_INTSET`).
    pub fn set_intset(self, intset: &[u8]) -> io::Result<Vec<u8>> {
        self.blob(TYPE_SET_INTSET, intset)
    }

    /// A set from its members (`SET`).
    pub fn set<'a>(
        mut self,
        members: impl ExactSizeIterator<Item = &'a [u8]>,
    ) -> io::Result<Vec<u8>> {
        self.buf.push(TYPE_SET);
        encode_set(&mut self.buf, members, self.lzf.as_mut())?;
        Ok(self.finish())
    }

    /// A hash from its (field, value) pairs (`HASH`).
    pub fn hash<'a>(
        mut self,
        pairs: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> io::Result<Vec<u8>> {
        self.buf.push(TYPE_HASH);
        encode_hash(&mut self.buf, pairs, self.lzf.as_mut())?;
        Ok(self.finish())
    }

    /// A sorted set from its (member, score) pairs in `rdbSaveObject`'s order (`ZSET_2`).
    pub fn zset2<'a>(
        mut self,
        members: impl ExactSizeIterator<Item = (&'a [u8], f64)>,
    ) -> io::Result<Vec<u8>> {
        self.buf.push(TYPE_ZSET_2);
        encode_zset2(&mut self.buf, members, self.lzf.as_mut())?;
        Ok(self.finish())
    }

    /// A list from its quicklist nodes (`LIST_QUICKLIST_2`).
    pub fn list_quicklist2<'a>(
        mut self,
        nodes: impl ExactSizeIterator<Item = QuicklistNode<'a>>,
    ) -> io::Result<Vec<u8>> {
        self.buf.push(TYPE_LIST_QUICKLIST_2);
        encode_quicklist2(&mut self.buf, nodes, self.lzf.as_mut())?;
        Ok(self.finish())
    }

    fn blob(mut self, type_code: u8, blob: &[u8]) -> io::Result<Vec<u8>> {
        self.buf.push(type_code);
        encode_string(&mut self.buf, blob, self.lzf.as_mut())?;
        Ok(self.finish())
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf
            .extend_from_slice(&(RDB_VERSION as u16).to_le_bytes());
        let crc = crc64(&self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

/// Why a payload is refused, split as RESTORE's two errors.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// Shorter than the footer, a version above [`RDB_VERSION`], or a wrong CRC
    /// (`ERR DUMP payload version or checksum are wrong`).
    #[error("DUMP payload version or checksum are wrong")]
    Footer,
    /// The value itself does not read (`ERR Bad data format`).
    #[error("Bad data format: {0}")]
    Body(RdbError),
}

/// Checks the footer as `verifyDumpPayload` does (length ≥ 10, version ≤ 10, CRC of all
/// but the last 8 bytes), then reads the one value, validated as at load. Like Redis's
/// RESTORE (`rioInitWithBuffer` over the whole argument), the value is read from the whole
/// payload, footer included: a value cut short may read into the footer, and bytes left over
/// after the value are not an error.
pub fn decode_payload(payload: &[u8]) -> Result<Value, DumpError> {
    let Some(body_len) = payload.len().checked_sub(10) else {
        return Err(DumpError::Footer);
    };
    let footer = &payload[body_len..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if u32::from(version) > RDB_VERSION {
        return Err(DumpError::Footer);
    }
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if crc64(&payload[..payload.len() - 8]) != u64::from_le_bytes(crc) {
        return Err(DumpError::Footer);
    }
    match crate::decode::read_value(payload) {
        Ok(Some(v)) => Ok(v),
        // An empty container is what Redis's loader refuses as an empty key.
        Ok(None) => Err(DumpError::Body(RdbError::Corrupt {
            offset: 0,
            detail: "empty value".into(),
        })),
        Err(e) => Err(DumpError::Body(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_payload_is_redis_bytes() {
        // redis-cli SET k hello; DUMP k on redis-server 7.0.15.
        let p = DumpPayload::new(true).string(b"hello").unwrap();
        assert_eq!(p, b"\x00\x05hello\x0a\x00cr\xdfve4 \x0a".to_vec());
        assert!(matches!(decode_payload(&p).unwrap(), Value::String(s) if &s[..] == b"hello"));
    }

    #[test]
    fn corrupt_payloads_are_refused_never_panic() {
        let p = DumpPayload::new(true).string(b"hello").unwrap();
        for n in 0..p.len() {
            assert!(decode_payload(&p[..n]).is_err());
        }
        let mut bad_crc = p.clone();
        *bad_crc.last_mut().unwrap() ^= 1;
        assert!(matches!(decode_payload(&bad_crc), Err(DumpError::Footer)));
        let mut newer = p.clone();
        newer[p.len() - 10] = 11;
        assert!(matches!(decode_payload(&newer), Err(DumpError::Footer)));
        // A wrong type byte with a right CRC: a bad body.
        let mut body = p[..p.len() - 10].to_vec();
        body[0] = 200;
        body.extend_from_slice(&10u16.to_le_bytes());
        let crc = crc64(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(decode_payload(&body), Err(DumpError::Body(_))));
        // Every single-byte change of the body with the CRC fixed up: refused or read, never a panic.
        let body_len = p.len() - 10;
        for i in 0..body_len {
            for b in [0u8, 1, 0x7f, 0xc0, 0xff] {
                let mut q = p[..body_len].to_vec();
                q[i] = b;
                q.extend_from_slice(&10u16.to_le_bytes());
                let crc = crc64(&q);
                q.extend_from_slice(&crc.to_le_bytes());
                let _ = decode_payload(&q);
            }
        }
    }
}
