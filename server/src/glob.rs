//! Redis's glob dialect (`stringmatchlen` in util.c) for KEYS, SCAN MATCH and CONFIG GET.
//!
//! Written here rather than taken from a crate: the `glob`/`globset` crates match file paths
//! (`/` is special, `**`, no byte strings) while Redis patterns match arbitrary bytes with `*`, `?`,
//! `[a-z]`, `[^x]` and `\` escapes, and a pattern from a client must not be able to make a match
//! take exponential time. This matcher backtracks only to the most recent `*`, which is linear in
//! the pattern times the string.

/// Does `string` match `pattern`? `nocase` folds ASCII case (CONFIG GET does).
pub fn matches(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut p = 0usize;
    let mut s = 0usize;
    // Where to resume after the last `*`: (pattern index after the star, string index it covers up to).
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                while p < pattern.len() && pattern[p] == b'*' {
                    p += 1;
                }
                if p == pattern.len() {
                    return true;
                }
                star = Some((p, s));
                continue;
            }
            if s < string.len() {
                if let Some(next) = match_one(pattern, p, string[s], nocase) {
                    p = next;
                    s += 1;
                    continue;
                }
            }
        } else if s == string.len() {
            return true;
        }
        // Mismatch: let the last star swallow one more byte, or fail.
        match star {
            Some((sp, ss)) if ss < string.len() => {
                star = Some((sp, ss + 1));
                p = sp;
                s = ss + 1;
            }
            _ => return false,
        }
    }
}

/// Matches one pattern element at `p` (not `*`) against byte `c`. Returns the index after the
/// element on a match.
fn match_one(pattern: &[u8], mut p: usize, c: u8, nocase: bool) -> Option<usize> {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    match pattern[p] {
        b'?' => Some(p + 1),
        b'[' => {
            p += 1;
            let not = pattern.get(p) == Some(&b'^');
            if not {
                p += 1;
            }
            let mut matched = false;
            loop {
                match pattern.get(p) {
                    // An unterminated class ends at the end of the pattern, as in Redis.
                    None => {
                        p = pattern.len();
                        break;
                    }
                    Some(b'\\') if p + 1 < pattern.len() => {
                        p += 1;
                        if eq(pattern[p], c) {
                            matched = true;
                        }
                    }
                    Some(b']') => {
                        p += 1;
                        break;
                    }
                    Some(&lo) if pattern.get(p + 1) == Some(&b'-') && p + 2 < pattern.len() => {
                        let hi = pattern[p + 2];
                        let (mut a, mut b) = (lo, hi);
                        if a > b {
                            std::mem::swap(&mut a, &mut b);
                        }
                        let (cc, a2, b2) = if nocase {
                            (
                                c.to_ascii_lowercase(),
                                a.to_ascii_lowercase(),
                                b.to_ascii_lowercase(),
                            )
                        } else {
                            (c, a, b)
                        };
                        if cc >= a2 && cc <= b2 {
                            matched = true;
                        }
                        p += 2;
                    }
                    Some(&x) => {
                        if eq(x, c) {
                            matched = true;
                        }
                    }
                }
                p += 1;
            }
            let next = p.min(pattern.len());
            if matched != not {
                Some(next)
            } else {
                None
            }
        }
        b'\\' if p + 1 < pattern.len() => {
            if eq(pattern[p + 1], c) {
                Some(p + 2)
            } else {
                None
            }
        }
        x => {
            if eq(x, c) {
                Some(p + 1)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn redis_patterns() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("*", "", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("*o*", "foo", true),
            ("user:*", "user:1", true),
            ("user:*", "use", false),
            ("[abc", "a", true),
        ];
        for &(p, s, want) in cases {
            assert_eq!(
                matches(p.as_bytes(), s.as_bytes(), false),
                want,
                "{p} vs {s}"
            );
        }
        assert!(matches(b"MAX*", b"maxclients", true));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let pattern = "a*".repeat(50) + "b";
        let s = "a".repeat(5000);
        assert!(!matches(pattern.as_bytes(), s.as_bytes(), false));
    }
}
