//! Small helpers shared by the command families: Redis's strict number parsing, clocks, and the
//! INCRBYFLOAT arithmetic.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Parses a signed 64-bit integer the way Redis's `string2ll` does: optional `-`, no `+`, no
/// leading zeros, no spaces, nothing after the digits, and no overflow (`str::parse` accepts
/// `+1` and `007`, which Redis refuses). The protocol crate reads RESP lengths with it already.
pub use forkdb_protocol::string2ll as parse_i64;

/// Parses a float as Redis's `string2d`/`strtod` wrapper: whole buffer, no leading space, no NaN.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let v: f64 = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => text.parse().ok()?,
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// Parses a memory size as redis.conf does: `1gb`, `512mb`, `100k`, plain bytes.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let units: [(&str, u64); 8] = [
        ("gb", 1 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
        ("", 1),
    ];
    for (suffix, mul) in units {
        if let Some(num) = lower.strip_suffix(suffix) {
            if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit()) {
                if suffix.is_empty() {
                    return None;
                }
                continue;
            }
            return num.parse::<u64>().ok()?.checked_mul(mul);
        }
    }
    None
}

/// Formats a number of bytes the way INFO's `*_human` fields do (`1.50M`).
pub fn bytes_human(n: u64) -> String {
    let n = n as f64;
    let units = [
        (1024f64.powi(5), "P"),
        (1024f64.powi(4), "T"),
        (1024f64.powi(3), "G"),
        (1024f64.powi(2), "M"),
        (1024.0, "K"),
    ];
    for (size, unit) in units {
        if n >= size {
            return format!("{:.2}{}", n / size, unit);
        }
    }
    format!("{}B", n as u64)
}

/// Why INCRBYFLOAT failed.
#[derive(Debug, PartialEq, Eq)]
pub enum IncrFloatError {
    NotFloat,
    NanOrInfinity,
}

extern "C" {
    fn forkdb_incrbyfloat(
        cur: *const u8,
        curlen: usize,
        has_cur: i32,
        incr: *const u8,
        incrlen: usize,
        out: *mut u8,
        outlen: usize,
        written: *mut usize,
    ) -> i32;
}

/// `current + incr` in C `long double`, printed as Redis prints it (see `csrc/longdouble.c`).
pub fn incr_by_float(current: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, IncrFloatError> {
    let mut out = vec![0u8; 5200];
    let mut written = 0usize;
    let cur = current.unwrap_or(b"");
    // SAFETY: every pointer/length pair describes a live buffer of that length; the C side
    // writes at most `out.len()` bytes including its NUL and reports the length it wrote.
    let rc = unsafe {
        forkdb_incrbyfloat(
            cur.as_ptr(),
            cur.len(),
            i32::from(current.is_some()),
            incr.as_ptr(),
            incr.len(),
            out.as_mut_ptr(),
            out.len(),
            &mut written,
        )
    };
    match rc {
        0 => {
            out.truncate(written);
            Ok(out)
        }
        3 => Err(IncrFloatError::NanOrInfinity),
        _ => Err(IncrFloatError::NotFloat),
    }
}

/// ASCII-lowercases a command or option name.
pub fn lower(s: &[u8]) -> String {
    String::from_utf8_lossy(s).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b"9223372036854775808"[..],
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"",
            b"-",
            b"1a",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn long_double_like_redis() {
        assert_eq!(incr_by_float(Some(b"0.1"), b"0.2").unwrap(), b"0.3");
        assert_eq!(incr_by_float(Some(b"10.5"), b"0.1").unwrap(), b"10.6");
        assert_eq!(incr_by_float(None, b"5.0e3").unwrap(), b"5000");
        assert_eq!(incr_by_float(Some(b"1"), b"-1").unwrap(), b"0");
        assert_eq!(
            incr_by_float(Some(b"abc"), b"1"),
            Err(IncrFloatError::NotFloat)
        );
        assert_eq!(
            incr_by_float(Some(b"1"), b" 1"),
            Err(IncrFloatError::NotFloat)
        );
        assert_eq!(
            incr_by_float(Some(b"1"), b"inf"),
            Err(IncrFloatError::NanOrInfinity)
        );
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("512mb"), Some(512 << 20));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("x"), None);
        assert_eq!(parse_memory("1xb"), None);
    }
}
