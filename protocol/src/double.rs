//! Doubles spelled exactly as Redis 7.0 replies with them.
//!
//! Redis 7.0's `addReplyDouble` writes `%.17g` (Redis 7.2 moved to shortest round-trip, 7.0 did
//! not), so `ZSCORE` of `1.1` is `1.1000000000000001`, and special-cases the infinities as `inf`
//! / `-inf`. We need the same bytes without calling libc's `snprintf`, so this module rebuilds
//! `%.17g` from Rust's exact `{:.16e}` formatting: that gives the same 17 correctly rounded
//! significant digits as C's `%e` (both round the exact binary value, ties to even), and `%g`
//! is only a choice between fixed and exponent notation on top of those digits, followed by
//! trimming trailing zeros.

use std::fmt::Write as _;

/// Significant digits of `%.17g`: enough for every finite `f64` to round-trip.
const PRECISION: i32 = 17;

/// Format `d` as Redis 7.0 does in replies: `%.17g` with `inf`, `-inf` and `nan` spelled out.
///
/// ```
/// use forkdb_protocol::format_double;
/// assert_eq!(format_double(1.5), "1.5");
/// assert_eq!(format_double(3.0), "3");
/// assert_eq!(format_double(1.1), "1.1000000000000001");
/// assert_eq!(format_double(1e20), "1e+20");
/// assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
/// ```
pub fn format_double(d: f64) -> String {
    let mut out = String::with_capacity(24);
    write_double(d, &mut out);
    out
}

/// Append the `%.17g` spelling of `d` to `out` (see [`format_double`]).
pub(crate) fn write_double(d: f64, out: &mut String) {
    if d.is_nan() {
        // glibc would print "-nan" for a negative NaN; Redis never stores NaN and the RESP3
        // spec has only `nan`, so the sign is dropped.
        out.push_str("nan");
        return;
    }
    if d.is_infinite() {
        out.push_str(if d > 0.0 { "inf" } else { "-inf" });
        return;
    }
    if d == 0.0 {
        // Both zeros: `%.17g` keeps the sign of -0.0.
        out.push_str(if d.is_sign_negative() { "-0" } else { "0" });
        return;
    }

    // Integral scores (the common case: ZADD/ZINCRBY with integers) below 10^17 have at most
    // 17 significant digits, so %.17g prints them exactly, as integers: no exponent formatting
    // and no allocations. (Every f64 of that size converts to i64 exactly.)
    if d.trunc() == d && d.abs() < 1e17 {
        let _ = write!(out, "{}", d as i64);
        return;
    }
    write_double_general(d, out);
}

/// The general case of [`write_double`]: from the correctly rounded 17-digit exponent form.
fn write_double_general(d: f64, out: &mut String) {
    // "d.dddddddddddddddde<exp>", 17 significant digits, correctly rounded.
    let mut sci = String::with_capacity(32);
    // Writing to a String cannot fail.
    let _ = write!(sci, "{:.16e}", d.abs());
    let (mantissa, exp) = match sci.split_once('e') {
        Some(parts) => parts,
        None => (sci.as_str(), "0"),
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();

    if d.is_sign_negative() {
        out.push('-');
    }
    // C's rule for %g: exponent notation when X < -4 or X >= P.
    if !(-4..PRECISION).contains(&exp) {
        let (first, rest) = digits.split_first().unwrap_or((&b'0', &[]));
        out.push(char::from(*first));
        let rest = trim_zeros(rest);
        if !rest.is_empty() {
            out.push('.');
            push_ascii(out, rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        // %e prints at least two exponent digits.
        let _ = write!(out, "{:02}", exp.unsigned_abs());
    } else if exp >= 0 {
        // 0 <= exp < 17, so the split point is inside the 17 digits.
        let split = usize::try_from(exp).unwrap_or(0).saturating_add(1);
        let (int_part, frac) = digits.split_at(split.min(digits.len()));
        push_ascii(out, int_part);
        let frac = trim_zeros(frac);
        if !frac.is_empty() {
            out.push('.');
            push_ascii(out, frac);
        }
    } else {
        // -4 <= exp < 0: "0.000ddd".
        out.push_str("0.");
        for _ in 0..(exp.unsigned_abs() - 1) {
            out.push('0');
        }
        push_ascii(out, trim_zeros(&digits));
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let end = digits.iter().rposition(|&b| b != b'0').map_or(0, |i| i + 1);
    digits.get(..end).unwrap_or(&[])
}

fn push_ascii(out: &mut String, digits: &[u8]) {
    out.extend(digits.iter().map(|&b| char::from(b)));
}

#[cfg(test)]
mod tests {
    use super::format_double;

    /// The integer fast path spells every integral value as the general %.17g path does,
    /// near the 10^17 boundary, around 2^53 and across magnitudes.
    #[test]
    fn integer_fast_path_matches_general_form() {
        let mut cases: Vec<f64> = vec![1.0, -1.0, 9.0, 10.0, 12345.0, -987654321.0];
        for e in 0..17 {
            let p = 10f64.powi(e);
            cases.extend([p, p - 1.0, p + 1.0, -p, 3.0 * p]);
        }
        let two53 = 2f64.powi(53);
        cases.extend([
            two53,
            two53 - 1.0,
            two53 + 2.0,
            -two53,
            99_999_999_999_999_984.0,
        ]);
        for d in cases {
            if d.abs() >= 1e17 {
                continue;
            }
            let mut general = String::new();
            super::write_double_general(d, &mut general);
            assert_eq!(format_double(d), general, "for {d:?}");
        }
        // At 10^17 and above the exponent form applies.
        assert_eq!(format_double(1e17), "1e+17");
    }

    /// Expected texts are what redis-server 7.0.15 replied to `ZSCORE` (RESP2 bulk and RESP3
    /// double alike) after `ZADD z <input> m`.
    #[test]
    fn matches_redis_7_0_zscore() {
        let cases: &[(f64, &str)] = &[
            (1.1, "1.1000000000000001"),
            (1.5, "1.5"),
            (3.0, "3"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (1e20, "1e+20"),
            (1e17, "1e+17"),
            (1e16, "10000000000000000"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (0.0, "0"),
            (0.1, "0.10000000000000001"),
            (1e-300, "1e-300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "4.9406564584124654e-324"),
            // An exact tie at the 18th digit: rounds to even, as glibc does.
            (4_000_000_000_000_001.0 / 4.0, "1000000000000000.2"),
            (1e23, "9.9999999999999992e+22"),
        ];
        for &(d, want) in cases {
            assert_eq!(format_double(d), want, "formatting {d:?}");
        }
    }

    #[test]
    fn signs_and_nan() {
        assert_eq!(format_double(-0.0), "-0");
        assert_eq!(format_double(-1.5), "-1.5");
        assert_eq!(format_double(-2.5e-7), "-2.4999999999999999e-07");
        assert_eq!(format_double(f64::NAN), "nan");
        assert_eq!(format_double(-f64::NAN), "nan");
        assert_eq!(format_double(123.0), "123");
        assert_eq!(format_double(0.5), "0.5");
    }
}
