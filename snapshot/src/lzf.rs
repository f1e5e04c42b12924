//! LZF compression as Redis does it (liblzf 3.6 with Redis's `lzfP.h`).
//!
//! Decompression uses the `lzf` crate. Compression does not, for reasons
//! found while testing it: `lzf::compress` 1.0.0 panics (index out of bounds)
//! on some inputs, where liblzf relies on the caller's buffer having one spare
//! byte (Redis allocates `outlen + 1`), and a panic is not acceptable in the
//! forked child that writes snapshots; and it follows an older liblzf, whose
//! output differs from Redis's: it refuses matches within 4 bytes of the end
//! and leaves out the unrolled match loop, which can extend a match by two
//! bytes (21 x `a` is one such input).
//! So the compressor is a port of liblzf 3.6's `lzf_compress`, as bundled by
//! Redis, with Redis's settings (`HLOG` 16, `VERY_FAST`, `STRICT_ALIGN` off)
//! and output limit. It produces the bytes redis-server writes (the tests
//! compare whole files with ones Redis saved, random strings included), so the
//! "compressed or raw" decisions are Redis's too.
//!
//! One difference by design: liblzf leaves its hash table uninitialised
//! (`INIT_HTAB 0`), so stale entries may occasionally find other (valid)
//! matches in Redis; this port behaves as if the table were zeroed for every
//! string, which makes the output deterministic, without clearing 512 KiB per
//! string: entries carry a generation number instead.
//!
//! Stream format (decoder's view):
//!
//! ```text
//! 000LLLLL <L+1 literal bytes>         literal run of 1..=32 bytes
//! LLLooooo oooooooo                    back reference: copy L+2 bytes (L 1..=6)
//! 111ooooo LLLLLLLL oooooooo           back reference: copy L+9 bytes
//!                                      from (output end - offset - 1)
//! ```

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// Largest output one input byte of a valid stream can produce: a 3-byte back
/// reference copies at most `MAX_REF` bytes. Used to reject lengths a
/// compressed blob cannot honestly have before allocating for them.
pub(crate) const MAX_EXPANSION: u64 = (MAX_REF as u64).div_ceil(3);

/// Reusable LZF compressor state: the hash table and the output buffer, so
/// that compressing many strings allocates only when a string is larger than
/// any before it.
pub struct LzfCompressor {
    /// `generation << 32 | position`; an entry from another generation is
    /// treated as empty (liblzf's "ref == start of input", never a match).
    table: Vec<u64>,
    generation: u32,
    out: Vec<u8>,
}

impl Default for LzfCompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LzfCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LzfCompressor").finish_non_exhaustive()
    }
}

impl LzfCompressor {
    /// Allocates the 512 KiB hash table up front: nothing is allocated later
    /// except growth of the output buffer.
    pub fn new() -> Self {
        LzfCompressor {
            table: vec![0; HSIZE],
            generation: 0,
            out: Vec::new(),
        }
    }

    /// Compresses `input` into at most `max_out` bytes, like liblzf's
    /// `lzf_compress(input, len, out, max_out)`, and returns the compressed
    /// bytes, or `None` where liblzf returns 0 (the output would not fit, by
    /// liblzf's own conservative checks, or the input is shorter than 3 bytes).
    pub fn compress(&mut self, input: &[u8], max_out: usize) -> Option<&[u8]> {
        let n = self.compress_inner(input, max_out)?;
        self.out.get(..n)
    }

    fn next_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // After 2^32 strings, old entries could look current again.
            self.table.fill(0);
            self.generation = 1;
        }
    }

    fn compress_inner(&mut self, input: &[u8], out_len: usize) -> Option<usize> {
        let in_len = input.len();
        // Positions are stored in 32 bits; Redis strings are far smaller
        // (proto-max-bulk-len), and a huge one is simply stored raw.
        if in_len < 3 || out_len == 0 || in_len > u32::MAX as usize {
            return None;
        }
        self.next_generation();
        let gen = u64::from(self.generation) << 32;
        let table = &mut self.table;
        let out = &mut self.out;
        out.clear();
        // One spare byte, as Redis allocates: liblzf may write the header of
        // a run it then drops at `out[out_len]` before noticing it is full.
        out.resize(out_len.checked_add(1)?, 0);

        let hash = |h: u32| -> usize {
            (((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5))) as usize) & (HSIZE - 1)
        };
        let first = |p: usize| -> u32 { (u32::from(input[p]) << 8) | u32::from(input[p + 1]) };
        let next = |v: u32, p: usize| -> u32 { (v << 8) | u32::from(input[p + 2]) };

        let mut ip = 0usize; // next input byte
        let mut op = 1usize; // next output byte; out[0] is the first run header
        let mut lit = 0usize; // length of the current literal run
        let mut hval = first(ip);

        while ip < in_len - 2 {
            hval = next(hval, ip);
            let slot = hash(hval);
            let entry = table[slot];
            table[slot] = gen | ip as u64;
            // An empty slot reads as position 0, which `r > 0` rejects, as
            // liblzf rejects `ref == in_data`.
            let r = if entry & !0xFFFF_FFFF == gen {
                (entry & 0xFFFF_FFFF) as usize
            } else {
                0
            };
            // Wrapping: a reference at or after `ip` gives a huge offset.
            let off = ip.wrapping_sub(r).wrapping_sub(1);

            // liblzf 3.6 (Redis's) has no `ip + 4 < in_end` test here, unlike
            // older versions and the `lzf` crate: matches may reach the end.
            if off < MAX_OFF
                && r > 0
                && input[r] == input[ip]
                && input[r + 1] == input[ip + 1]
                && input[r + 2] == input[ip + 2]
            {
                let mut len = 2;
                let maxlen = (in_len - ip - len).min(MAX_REF);

                // Close the literal run (or drop its unused header).
                out[op - lit - 1] = (lit as u8).wrapping_sub(1);
                op -= usize::from(lit == 0);

                if op + 3 + 1 >= out_len {
                    return None;
                }

                // liblzf compares 16 bytes unrolled before checking `maxlen`
                // (safe: maxlen > 16 means at least 19 bytes remain); that can
                // make a match up to 2 bytes longer than `maxlen`, so do the
                // same to produce the same bytes.
                let mut matched_all_16 = true;
                if maxlen > 16 {
                    for _ in 0..16 {
                        len += 1;
                        if input[r + len] != input[ip + len] {
                            matched_all_16 = false;
                            break;
                        }
                    }
                }
                if matched_all_16 {
                    loop {
                        len += 1;
                        if !(len < maxlen && input[r + len] == input[ip + len]) {
                            break;
                        }
                    }
                }

                len -= 2; // now "number of bytes - 1", as the format stores it
                ip += 1;

                // off < 8192 so off >> 8 fits in 5 bits.
                if len < 7 {
                    out[op] = (off >> 8) as u8 + ((len as u8) << 5);
                    op += 1;
                } else {
                    out[op] = (off >> 8) as u8 + (7 << 5);
                    out[op + 1] = (len - 7) as u8;
                    op += 2;
                }
                out[op] = off as u8;
                op += 1;

                lit = 0;
                op += 1; // start a new run

                ip += len + 1;
                if ip >= in_len - 2 {
                    break;
                }

                // VERY_FAST: hash the last two positions of the match.
                ip -= 2;
                hval = first(ip);
                hval = next(hval, ip);
                table[hash(hval)] = gen | ip as u64;
                ip += 1;
                hval = next(hval, ip);
                table[hash(hval)] = gen | ip as u64;
                ip += 1;
            } else {
                if op >= out_len {
                    return None;
                }
                lit += 1;
                out[op] = input[ip];
                op += 1;
                ip += 1;
                if lit == MAX_LIT {
                    out[op - lit - 1] = (lit - 1) as u8;
                    lit = 0;
                    op += 1;
                }
            }
        }

        // At most 3 literal bytes are left.
        if op + 3 > out_len {
            return None;
        }
        while ip < in_len {
            lit += 1;
            out[op] = input[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit - 1) as u8;
                lit = 0;
                op += 1;
            }
        }
        out[op - lit - 1] = (lit as u8).wrapping_sub(1);
        op -= usize::from(lit == 0);
        Some(op)
    }
}

/// Decompresses an LZF blob that must expand to exactly `len` bytes.
///
/// The caller bounds `len` (it is allocated up front); the `lzf` crate checks
/// every reference against the input and output bounds.
pub(crate) fn decompress(compressed: &[u8], len: usize) -> Result<Vec<u8>, String> {
    if len == 0 {
        // liblzf reports 0 bytes for a zero-sized output, which Redis takes as
        // success; the crate calls it "buffer too small". Follow Redis.
        return Ok(Vec::new());
    }
    match lzf::decompress(compressed, len) {
        Ok(out) if out.len() == len => Ok(out),
        Ok(out) => Err(format!(
            "LZF data expands to {} bytes, the header says {len}",
            out.len()
        )),
        Err(e) => Err(format!("invalid LZF data: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(seed: &mut u64) -> u64 {
        // xorshift64: deterministic inputs without a dependency.
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn same_bytes_as_redis() {
        // From dump.rdb files written by redis-server 7.0.15 for runs of 'a'.
        // 21 and 22 bytes hit liblzf's unrolled match loop, which matches 19
        // bytes where the `lzf` crate's compressor stops at 17.
        let cases: [(usize, &[u8]); 3] = [
            (21, &[0x01, 0x61, 0x61, 0xe0, 0x0a, 0x00]),
            (22, &[0x01, 0x61, 0x61, 0xe0, 0x0a, 0x00, 0x00, 0x61]),
            (53, &[0x01, 0x61, 0x61, 0xe0, 0x28, 0x00, 0x01, 0x61, 0x61]),
        ];
        let mut c = LzfCompressor::new();
        for (len, expected) in cases {
            let input = vec![b'a'; len];
            let out = c.compress(&input, len - 4).unwrap();
            assert_eq!(out, expected, "{len} x 'a'");
            assert_eq!(decompress(out, len).unwrap(), input);
        }
    }

    #[test]
    fn incompressible_input_is_refused() {
        let input: Vec<u8> = (0..=255u8).collect();
        assert!(LzfCompressor::new().compress(&input, 252).is_none());
    }

    #[test]
    fn round_trips_within_the_limit() {
        let mut seed = 0x1234_5678_9abc_def0;
        let mut c = LzfCompressor::new();
        let mut compressed = 0;
        for _ in 0..3000 {
            let len = 3 + (pseudo_random(&mut seed) % 600) as usize;
            let alphabet = 1 + pseudo_random(&mut seed) % 256;
            let literal_prefix = (pseudo_random(&mut seed) % len as u64) as usize;
            let mut input: Vec<u8> = (0..len)
                .map(|_| (pseudo_random(&mut seed) % alphabet) as u8)
                .collect();
            // A repetitive tail after a random head exercises long matches
            // and the limit checks at every distance from the end.
            let period = 1 + (pseudo_random(&mut seed) % 5) as usize;
            for i in literal_prefix..len {
                input[i] = input[literal_prefix.saturating_sub(period) + i % period];
            }
            for limit in [1, len / 2, len.saturating_sub(4), len, len + 40] {
                if let Some(out) = c.compress(&input, limit) {
                    assert!(out.len() <= limit);
                    assert_eq!(decompress(out, len).unwrap(), input);
                    compressed += 1;
                }
            }
        }
        assert!(compressed > 3000, "only {compressed} compressed");
    }

    #[test]
    fn decompress_rejects_wrong_length_and_garbage() {
        let mut c = LzfCompressor::new();
        let input = [b'x'; 100];
        let out = c.compress(&input, 96).unwrap().to_vec();
        assert!(decompress(&out, 99).is_err());
        assert!(decompress(&out, 101).is_err());
        assert!(decompress(&[0xe0, 0xff, 0xff], 10).is_err());
        assert_eq!(decompress(&out, 0).unwrap(), Vec::<u8>::new());
    }
}
