//! SORT and SORT_RO (Redis 7.0's `sort.c`).
//!
//! ```text
//! SORT key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]]
//!          [ASC|DESC] [ALPHA] [STORE destination]
//! SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
//! ```
//!
//! Owns nothing but the command: it reads the sorted key and the keys its patterns name through
//! the keyspace's reads, and writes only the STORE destination through the write path (a list,
//! or a delete when the result is empty; `count_changes` adds the stored length to the dirty
//! counter as Redis's `server.dirty += outputlen`). The order of checks, the LIMIT arithmetic,
//! the `nosort` special cases for lists and sorted sets and the comparison (numeric with ties
//! broken by the element's bytes; ALPHA by bytes, which is `strcoll` in the C locale Redis runs
//! in here) follow `sortCommandGeneric`. Cluster mode and ACL key restrictions do not apply.

use std::cmp::Ordering;

use bytes::Bytes;
use forkdb_snapshot::blob::Elem;

use super::is;
use crate::server::Ctx;
use crate::store::{Keyspace, Value};
use crate::types::list::{End, List};
use crate::util::parse_i64;

pub fn sort(cx: &mut Ctx, args: &[Bytes]) {
    sort_generic(cx, args, false);
}

pub fn sort_ro(cx: &mut Ctx, args: &[Bytes]) {
    sort_generic(cx, args, true);
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    List,
    Set,
    ZSet,
}

struct Item {
    elem: Vec<u8>,
    score: f64,
    /// The BY value for ALPHA with a BY pattern (None: the key or field is missing).
    cmp: Option<Vec<u8>>,
}

fn sort_generic(cx: &mut Ctx, args: &[Bytes], readonly: bool) {
    let (mut desc, mut alpha, mut dontsort) = (false, false, false);
    let (mut limit_start, mut limit_count) = (0i64, -1i64);
    let mut sortby: Option<&[u8]> = None;
    let mut store: Option<&[u8]> = None;
    let mut gets: Vec<&[u8]> = Vec::new();
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j][..];
        if is(a, "asc") {
            desc = false;
        } else if is(a, "desc") {
            desc = true;
        } else if is(a, "alpha") {
            alpha = true;
        } else if is(a, "limit") && left >= 2 {
            let (Some(s), Some(c)) = (parse_i64(&args[j + 1]), parse_i64(&args[j + 2])) else {
                return cx.not_int();
            };
            limit_start = s;
            limit_count = c;
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            store = Some(&args[j + 1]);
            j += 1;
        } else if is(a, "by") && left >= 1 {
            sortby = Some(&args[j + 1]);
            // A pattern without `*` names no key: "don't sort" (`BY nosort`).
            dontsort = !args[j + 1].contains(&b'*');
            j += 1;
        } else if is(a, "get") && left >= 1 {
            gets.push(&args[j + 1]);
            j += 1;
        } else {
            return cx.syntax_err();
        }
        j += 1;
    }

    let db = cx.db();
    let ks = &mut cx.srv.ks;
    // The elements, in the order the "don't sort" cases need (a sorted set by rank).
    let (kind, mut elems): (Kind, Vec<Vec<u8>>) = match ks.get(db, &args[1]).map(|e| e.value) {
        None => (Kind::List, Vec::new()),
        Some(Value::List(l)) => (Kind::List, l.iter().map(|e| e.to_vec()).collect()),
        Some(Value::Set(s)) => (Kind::Set, s.iter().map(|e| e.to_vec()).collect()),
        Some(Value::ZSet(z)) => (Kind::ZSet, z.iter().map(|(m, _)| m.to_vec()).collect()),
        Some(_) => return cx.wrongtype(),
    };

    // Redis 7.0's SORT converts a listpack sorted set to its large encoding for good
    // (`zsetConvert(sortval, OBJ_ENCODING_SKIPLIST)` in `sortCommandGeneric`): OBJECT ENCODING
    // says so afterwards. The data is the same, so it counts as no change (no dirty, no WATCH).
    if kind == Kind::ZSet {
        let mut w = ks.write(db, &args[1]);
        if let Ok(Some(z)) = w.zset_mut() {
            if z.as_listpack().is_some() {
                z.convert_to_big();
            }
        }
        w.count_changes(0);
    }

    // A set has no order of its own: when storing, Redis sorts it (ALPHA) so that the stored
    // list does not depend on the hash table's order.
    if dontsort && kind == Kind::Set && store.is_some() {
        dontsort = false;
        alpha = true;
        sortby = None;
    }

    let mut vectorlen = elems.len() as i64;
    let mut start = limit_start.max(0);
    let mut end = if limit_count < 0 {
        vectorlen - 1
    } else {
        start.wrapping_add(limit_count).wrapping_sub(1)
    };
    if start >= vectorlen {
        start = vectorlen - 1;
        end = vectorlen - 2;
    }
    if end >= vectorlen {
        end = vectorlen - 1;
    }

    let mut items: Vec<Item> = if dontsort && kind != Kind::Set {
        // Lists and sorted sets keep their own order (reversed by DESC) and take the LIMIT
        // range directly.
        if start != 0 || end != vectorlen - 1 {
            vectorlen = end - start + 1;
        }
        let mut v = Vec::new();
        if kind == Kind::ZSet || end >= start {
            if desc {
                elems.reverse();
            }
            let n = vectorlen.max(0) as usize;
            let from = start.max(0) as usize;
            v = elems
                .into_iter()
                .skip(from)
                .take(n)
                .map(|elem| Item {
                    elem,
                    score: 0.0,
                    cmp: None,
                })
                .collect();
            end -= start;
            start = 0;
        }
        v
    } else {
        elems
            .into_iter()
            .map(|elem| Item {
                elem,
                score: 0.0,
                cmp: None,
            })
            .collect()
    };

    let mut conversion_error = false;
    if !dontsort {
        for it in items.iter_mut() {
            let byval = match sortby {
                Some(p) => match lookup(ks, db, p, &it.elem) {
                    Some(v) => v,
                    None => continue,
                },
                None => {
                    if !alpha {
                        match strtod(&it.elem) {
                            Some(s) => it.score = s,
                            None => conversion_error = true,
                        }
                    }
                    continue;
                }
            };
            if alpha {
                it.cmp = Some(byval);
            } else {
                match strtod(&byval) {
                    Some(s) => it.score = s,
                    None => conversion_error = true,
                }
            }
        }
        let by = sortby.is_some();
        items.sort_by(|a, b| {
            let c = compare(a, b, alpha, by);
            if desc {
                c.reverse()
            } else {
                c
            }
        });
    }

    let count = (end - start + 1).max(0) as usize;
    let outputlen = if gets.is_empty() {
        count
    } else {
        gets.len() * count
    };
    if conversion_error {
        return cx.err("ERR One or more scores can't be converted into double");
    }
    let from = start.max(0) as usize;
    let chosen = items.iter().skip(from).take(count);
    match store {
        None => {
            let mut out: Vec<Option<Vec<u8>>> = Vec::with_capacity(outputlen);
            for it in chosen {
                if gets.is_empty() {
                    out.push(Some(it.elem.clone()));
                }
                for g in &gets {
                    out.push(lookup(ks, db, g, &it.elem));
                }
            }
            cx.array(out.len());
            for v in out {
                match v {
                    Some(b) => cx.bulk(&b),
                    None => cx.null(),
                }
            }
        }
        Some(dst) => {
            let mut vals: Vec<Vec<u8>> = Vec::with_capacity(outputlen);
            for it in chosen {
                if gets.is_empty() {
                    vals.push(it.elem.clone());
                }
                for g in &gets {
                    vals.push(lookup(ks, db, g, &it.elem).unwrap_or_default());
                }
            }
            let fill = cx.srv.config.list_max_listpack_size;
            let mut w = cx.srv.ks.write(db, dst);
            if !vals.is_empty() {
                let mut l = List::new();
                for v in &vals {
                    l.push(End::Tail, v, fill);
                }
                // `setKey`: the TTL of a replaced key goes; Redis counts the stored length.
                w.put(Value::List(l), Some(-1));
                w.count_changes(vals.len() as u64);
            } else if w.exists() {
                w.delete();
            }
            drop(w);
            cx.int(outputlen as i64);
        }
    }
}

/// `sortCompare`.
fn compare(a: &Item, b: &Item, alpha: bool, by: bool) -> Ordering {
    if !alpha {
        match a.score.partial_cmp(&b.score) {
            Some(Ordering::Equal) | None => a.elem.cmp(&b.elem),
            Some(o) => o,
        }
    } else if by {
        match (&a.cmp, &b.cmp) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(y),
        }
    } else {
        a.elem.cmp(&b.elem)
    }
}

/// `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` is replaced by the
/// element and the key read as a string, or with `->field` after the `*` as a hash field. A
/// pattern without `*`, a missing key or one of another type give None.
fn lookup(ks: &mut Keyspace, db: usize, pat: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    if pat == b"#" {
        return Some(elem.to_vec());
    }
    let star = pat.iter().position(|&c| c == b'*')?;
    let after = &pat[star + 1..];
    let (post, field) = match after.windows(2).position(|w| w == b"->") {
        Some(i) if i + 2 < after.len() => (&after[..i], Some(&after[i + 2..])),
        _ => (after, None),
    };
    let mut key = Vec::with_capacity(pat.len() + elem.len());
    key.extend_from_slice(&pat[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(post);
    match (&ks.get(db, &key)?.value, field) {
        (Value::Str { data, .. }, None) => Some(data[..].to_vec()),
        (Value::Hash(h), Some(f)) => h.get(f).map(|e: Elem<'_>| e.to_vec()),
        _ => None,
    }
}

/// The value C's `strtod` gives for the whole string (up to a NUL, where C strings end), or
/// None where Redis reports a conversion error (text left over, out of range, NaN). Written
/// here because Rust's float parser refuses what `strtod` accepts: leading white space, an
/// empty string (0), hexadecimal.
fn strtod(s: &[u8]) -> Option<f64> {
    let s = match s.iter().position(|&c| c == 0) {
        Some(i) => &s[..i],
        None => s,
    };
    let s = match s
        .iter()
        .position(|&c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
    {
        Some(i) => &s[i..],
        // Nothing to convert: strtod returns 0 and the end pointer is at the (empty) end.
        None => return Some(0.0),
    };
    let text = std::str::from_utf8(s).ok()?;
    let (neg, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let v = if lower == "inf" || lower == "infinity" {
        f64::INFINITY
    } else if let Some(hex) = lower.strip_prefix("0x") {
        // Integer hexadecimal only (hex fractions and `p` exponents are left out).
        if hex.is_empty() || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        hex.bytes().fold(0f64, |acc, c| {
            acc * 16.0 + (c as char).to_digit(16).unwrap_or(0) as f64
        })
    } else {
        if !body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        {
            return None;
        }
        let v: f64 = body.parse().ok()?;
        // ERANGE: overflow, or a non-zero number that underflows to zero.
        if v.is_infinite() {
            return None;
        }
        let mantissa = body.split(['e', 'E']).next().unwrap_or("");
        if v == 0.0 && mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c)) {
            return None;
        }
        v
    };
    if v.is_nan() {
        return None;
    }
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::strtod;

    #[test]
    fn strtod_as_c() {
        assert_eq!(strtod(b""), Some(0.0));
        assert_eq!(strtod(b"  1.5"), Some(1.5));
        assert_eq!(strtod(b"-2e3"), Some(-2000.0));
        assert_eq!(strtod(b"0x10"), Some(16.0));
        assert_eq!(strtod(b"inf"), Some(f64::INFINITY));
        assert_eq!(strtod(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(strtod(b"1e400"), None);
        assert_eq!(strtod(b"1e-400"), None);
        assert_eq!(strtod(b"nan"), None);
        assert_eq!(strtod(b"abc"), None);
        assert_eq!(strtod(b"1 "), None);
        assert_eq!(strtod(b"7\0x"), Some(7.0));
    }
}
