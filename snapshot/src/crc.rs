//! CRC-64/REDIS, the checksum at the end of an RDB file.
//!
//! Redis uses the Jones polynomial (`0xad93d23594c935a9`), reflected, with
//! zero init and xorout: `crc::CRC_64_REDIS`. [`CrcWriter`] updates it on every
//! write, like Redis's `rio` layer does (`rioGenericUpdateChecksum`), so the
//! encoders above it never think about the checksum.

use std::io::{self, Write};

use crc::{Crc, Digest, Table};

/// The 16-lane table makes the checksum cost about a tenth of the 1-lane
/// default; a save or load checksums every byte of the dataset.
type Impl = Table<16>;

static CRC64: Crc<u64, Impl> = Crc::<u64, Impl>::new(&crc::CRC_64_REDIS);

/// CRC-64/REDIS of `bytes` (`crc64(0, bytes, len)` in Redis).
pub fn crc64(bytes: &[u8]) -> u64 {
    CRC64.checksum(bytes)
}

/// A running CRC-64/REDIS; cheap to copy out at any point.
#[derive(Clone)]
pub(crate) struct Crc64 {
    digest: Digest<'static, u64, Impl>,
}

impl Crc64 {
    pub(crate) fn new() -> Self {
        Crc64 {
            digest: CRC64.digest(),
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// The checksum of everything so far; the digest keeps running.
    pub(crate) fn value(&self) -> u64 {
        self.digest.clone().finalize()
    }
}

/// A writer that checksums everything written through it.
///
/// Only bytes the inner writer accepted are counted, so a short write does not
/// put the checksum out of step with the file.
pub struct CrcWriter<W: Write> {
    inner: W,
    crc: Crc64,
    written: u64,
}

impl<W: Write> CrcWriter<W> {
    /// Wraps `inner`, with the checksum of zero bytes.
    pub fn new(inner: W) -> Self {
        CrcWriter {
            inner,
            crc: Crc64::new(),
            written: 0,
        }
    }

    /// CRC-64/REDIS of every byte written so far.
    pub fn crc(&self) -> u64 {
        self.crc.value()
    }

    /// Number of bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer. Bytes written directly to it are not checksummed.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Unwraps the inner writer (unflushed data stays in it).
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write + std::fmt::Debug> std::fmt::Debug for CrcWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrcWriter")
            .field("inner", &self.inner)
            .field("crc", &self.crc())
            .field("written", &self.written)
            .finish()
    }
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // `n <= buf.len()` by the Write contract; `get` keeps a misbehaving
        // inner writer from making us panic.
        if let Some(done) = buf.get(..n) {
            self.crc.update(done);
        }
        self.written = self.written.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_of_the_catalog() {
        // The catalog's check value, and the one in Redis's crc64.c test.
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn writer_matches_one_shot_across_split_writes() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut w = CrcWriter::new(Vec::new());
        for chunk in data.chunks(37) {
            w.write_all(chunk).unwrap();
        }
        assert_eq!(w.crc(), crc64(&data));
        assert_eq!(w.bytes_written(), 1000);
        assert_eq!(w.into_inner(), data);
    }
}
