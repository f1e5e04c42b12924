//! Integer text conversions shared by the parsers and the encoder.

use bytes::{BufMut, BytesMut};

/// Redis's `string2ll` (`util.c`): the strict form every RESP length is read with.
///
/// Accepts only canonical decimal: `0`, or an optional `-` followed by a non-zero digit and
/// more digits, at most 20 bytes. So `+1`, `01`, `-0`, ` 1`, `` (empty) and anything that
/// overflows `i64` are rejected, which is what makes `*01\r\n` an "invalid multibulk length"
/// in Redis.
pub fn string2ll(s: &[u8]) -> Option<i64> {
    // LONG_STR_SIZE is 21: longer input cannot be an i64 and is rejected before any work.
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if negative {
        // -(i64::MIN) is one more than i64::MAX, so go through i128 rather than negate.
        i64::try_from(-i128::from(v)).ok()
    } else {
        i64::try_from(v).ok()
    }
}

/// Decimal digits of `n` into a stack buffer; returns the used tail. Replies are dominated by
/// small integers and lengths, so this avoids `core::fmt` on the hot path.
pub(crate) fn put_i64(out: &mut BytesMut, n: i64) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        pos -= 1;
        // `pos` stays in range: a u64 has at most 20 digits and the sign is written apart.
        if let Some(slot) = buf.get_mut(pos) {
            *slot = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || pos == 0 {
            break;
        }
    }
    if n < 0 {
        out.put_u8(b'-');
    }
    out.put_slice(buf.get(pos..).unwrap_or(&[]));
}

pub(crate) fn put_usize(out: &mut BytesMut, n: usize) {
    // usize fits u64 on every supported target; a (theoretical) larger value saturates
    // rather than wraps.
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    put_i64(out, n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ll_matches_redis() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"12"), Some(12));
        assert_eq!(string2ll(b"-1"), Some(-1));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999",
            b"000000000000000000001",
        ] {
            assert_eq!(string2ll(bad), None, "{:?}", bad.escape_ascii().to_string());
        }
    }

    #[test]
    fn put_i64_edges() {
        for n in [0, 1, -1, 9, 10, -10, i64::MAX, i64::MIN] {
            let mut out = BytesMut::new();
            put_i64(&mut out, n);
            assert_eq!(&out[..], n.to_string().as_bytes());
        }
    }
}
