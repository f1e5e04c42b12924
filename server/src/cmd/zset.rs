//! Sorted set commands (Redis 7.0's `t_zset.c`), replies and errors as redis-server 7.0.
//!
//! ```text
//! ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
//! ZINCRBY key increment member            ZREM key member [member ...]
//! ZCARD key   ZSCORE key member   ZMSCORE key member [member ...]
//! ZRANK key member   ZREVRANK key member
//! ZCOUNT key min max   ZLEXCOUNT key min max
//! ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
//! ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
//! ZREVRANGE key start stop [WITHSCORES]
//! ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]   (and ZREVRANGEBYSCORE max min)
//! ZRANGEBYLEX key min max [LIMIT offset count]                  (and ZREVRANGEBYLEX max min)
//! ZREMRANGEBYRANK key start stop   ZREMRANGEBYSCORE key min max   ZREMRANGEBYLEX key min max
//! ZPOPMIN key [count]   ZPOPMAX key [count]   ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
//! BZPOPMIN|BZPOPMAX key [key ...] timeout   BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
//!     (blocking through `crate::blocking`; each gives it a `serve_*` function)
//! ZRANDMEMBER key [count [WITHSCORES]]
//! ZUNION|ZINTER numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
//! ZUNIONSTORE|ZINTERSTORE dst numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]
//! ZDIFF numkeys key [key ...] [WITHSCORES]   ZDIFFSTORE dst numkeys key [key ...]
//! ZINTERCARD numkeys key [key ...] [LIMIT limit]
//! ZSCAN key cursor [MATCH pattern] [COUNT count]
//! ```
//!
//! Score ranges: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`; lex ranges: `[a`, `(a`, `-`, `+`.
//! The dirty counter follows Redis: ZADD counts added + updated members, ZREM and ZREMRANGE*
//! the members removed, ZPOP* the members popped, the store commands one.

use bytes::{Bytes, BytesMut};
use forkdb_protocol::{self as proto, Frame};
use rand::seq::index::sample;

use super::is;
use crate::blocking;
use crate::glob;
use crate::server::Ctx;
use crate::store::{Value, WrongType};
use crate::types::zset::{member_bytes, AddFlags, AddOutcome, Limits, Member};
use crate::types::ZSet;
use crate::util::parse_i64;

const NOT_FLOAT: &str = "ERR value is not a valid float";
const RANGE_NOT_FLOAT: &str = "ERR min or max is not a float";
const LEX_INVALID: &str = "ERR min or max not valid string range item";

fn limits(cx: &Ctx) -> Limits {
    Limits {
        entries: usize::try_from(cx.srv.config.zset_max_listpack_entries).unwrap_or(usize::MAX),
        value: usize::try_from(cx.srv.config.zset_max_listpack_value).unwrap_or(usize::MAX),
    }
}

/// A score argument as `getDoubleFromObject` reads it: the whole string, no leading space,
/// no NaN, and no overflow or underflow (`strtod`'s ERANGE), which Rust's parser would accept.
fn parse_score(s: &[u8]) -> Option<f64> {
    // Rust's parser takes what `strtod` takes here (decimal, exponent, `inf`, `infinity`, signs)
    // and refuses spaces; this path allocates nothing, as ZADD parses a score per member.
    let v: f64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    if v.is_nan() {
        return None;
    }
    let has = |pred: &dyn Fn(u8) -> bool, stop: u8| {
        s.iter()
            .take_while(|&&b| b.to_ascii_lowercase() != stop)
            .any(|&b| pred(b))
    };
    if v.is_infinite() && !has(&|b| b.eq_ignore_ascii_case(&b'i'), 0) {
        return None;
    }
    if v == 0.0 && has(&|b| (b'1'..=b'9').contains(&b), b'e') {
        return None;
    }
    Some(v)
}

/// `strtod` with Redis's range check (`zslParseRange`): whole string read, not NaN. An empty
/// string converts nothing and reads as 0, as `strtod` leaves `eptr` at the terminator.
fn parse_range_float(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    let t = std::str::from_utf8(s).ok()?;
    let t = t.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let v: f64 = t.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    max: f64,
    minex: bool,
    maxex: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Option<Self> {
        let one = |a: &[u8]| match a.split_first() {
            Some((b'(', rest)) => parse_range_float(rest).map(|v| (v, true)),
            _ => parse_range_float(a).map(|v| (v, false)),
        };
        let (min, minex) = one(min)?;
        let (max, maxex) = one(max)?;
        Some(ScoreRange {
            min,
            max,
            minex,
            maxex,
        })
    }
    fn gte_min(&self, s: f64) -> bool {
        if self.minex {
            s > self.min
        } else {
            s >= self.min
        }
    }
    fn lte_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }
}

enum LexItem {
    /// `-`
    Min,
    /// `+`
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

struct LexRange {
    min: LexItem,
    max: LexItem,
}

impl LexItem {
    fn parse(a: &[u8]) -> Option<Self> {
        match a.split_first()? {
            (b'+', []) => Some(LexItem::Max),
            (b'-', []) => Some(LexItem::Min),
            (b'(', rest) => Some(LexItem::Excl(rest.to_vec())),
            (b'[', rest) => Some(LexItem::Incl(rest.to_vec())),
            _ => None,
        }
    }
}

impl LexRange {
    fn parse(min: &[u8], max: &[u8]) -> Option<Self> {
        Some(LexRange {
            min: LexItem::parse(min)?,
            max: LexItem::parse(max)?,
        })
    }
    fn gte_min(&self, v: &[u8]) -> bool {
        match &self.min {
            LexItem::Min => true,
            LexItem::Max => false,
            LexItem::Incl(s) => v >= s.as_slice(),
            LexItem::Excl(s) => v > s.as_slice(),
        }
    }
    fn lte_max(&self, v: &[u8]) -> bool {
        match &self.max {
            LexItem::Max => true,
            LexItem::Min => false,
            LexItem::Incl(s) => v <= s.as_slice(),
            LexItem::Excl(s) => v < s.as_slice(),
        }
    }
}

/// Ranks `start..end` of the elements within a score range.
fn score_span(z: &ZSet, r: &ScoreRange) -> (usize, usize) {
    let start = z.count_while(0, |_, s| !r.gte_min(s));
    let n = z.count_while(start, |_, s| r.lte_max(s));
    (start, start + n)
}

/// Ranks `start..end` of the elements within a lex range (meaningful when all scores are
/// equal, as Redis documents).
fn lex_span(z: &ZSet, r: &LexRange) -> (usize, usize) {
    let start = z.count_while(0, |m, _| !r.gte_min(m));
    let n = z.count_while(start, |m, _| r.lte_max(m));
    (start, start + n)
}

fn bulk_member(m: &Member<'_>, out: &mut BytesMut) {
    let mut buf = itoa::Buffer::new();
    proto::encode_bulk(member_bytes(m, &mut buf), out);
}

fn double(d: f64, resp3: bool, out: &mut BytesMut) {
    proto::encode(&Frame::Double(d), resp3, out);
}

/// Emits (member, score) pairs as ZRANGE does: a flat array in RESP2, pairs in RESP3.
fn emit_pairs<'a>(
    items: impl Iterator<Item = (Member<'a>, f64)>,
    n: usize,
    withscores: bool,
    resp3: bool,
    out: &mut BytesMut,
) {
    proto::encode_array_header(if withscores && !resp3 { n * 2 } else { n }, out);
    for (m, s) in items.take(n) {
        if withscores && resp3 {
            proto::encode_array_header(2, out);
        }
        bulk_member(&m, out);
        if withscores {
            double(s, resp3, out);
        }
    }
}

/// A sorted set for a read command: None when missing (the caller replies), or the command
/// already replied WRONGTYPE.
macro_rules! read_zset {
    ($cx:expr, $key:expr, $missing:expr) => {{
        let db = $cx.db();
        match $cx.srv.ks.get_zset(db, $key) {
            Ok(Some(z)) => z,
            Ok(None) => {
                #[allow(clippy::redundant_closure_call)]
                ($missing)($cx);
                return;
            }
            Err(WrongType) => return $cx.wrongtype(),
        }
    }};
}

pub fn zadd(cx: &mut Ctx, args: &[Bytes]) {
    zadd_generic(cx, args, AddFlags::default(), false);
}

pub fn zincrby(cx: &mut Ctx, args: &[Bytes]) {
    let f = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    zadd_generic(cx, args, f, true);
}

fn zadd_generic(cx: &mut Ctx, args: &[Bytes], mut f: AddFlags, zincrby: bool) {
    let mut ch = false;
    let mut idx = 2;
    if !zincrby {
        while idx < args.len() {
            let a = &args[idx];
            if is(a, "nx") {
                f.nx = true;
            } else if is(a, "xx") {
                f.xx = true;
            } else if is(a, "ch") {
                ch = true;
            } else if is(a, "incr") {
                f.incr = true;
            } else if is(a, "gt") {
                f.gt = true;
            } else if is(a, "lt") {
                f.lt = true;
            } else {
                break;
            }
            idx += 1;
        }
    }
    let elements = args.len() - idx;
    if !elements.is_multiple_of(2) || elements == 0 {
        return cx.syntax_err();
    }
    let elements = elements / 2;
    if f.nx && f.xx {
        return cx.err("ERR XX and NX options at the same time are not compatible");
    }
    if ((f.gt || f.lt) && f.nx) || (f.gt && f.lt) {
        return cx.err("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && elements > 1 {
        return cx.err("ERR INCR option supports a single increment-element pair");
    }
    let mut scores = Vec::with_capacity(elements);
    for j in 0..elements {
        match parse_score(&args[idx + j * 2]) {
            Some(s) => scores.push(s),
            None => return cx.err(NOT_FLOAT),
        }
    }
    let lim = limits(cx);
    let db = cx.db();
    let resp3 = cx.resp3();
    let mut w = cx.srv.ks.write(db, &args[1]);
    let mut created = false;
    match w.get_zset() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(None) => {
            if f.xx {
                drop(w);
                if f.incr {
                    return cx.null();
                }
                return cx.int(0);
            }
            let first = args[idx + 1].len();
            w.put(Value::ZSet(ZSet::new_for(first, lim)), None);
            created = true;
        }
        Ok(Some(_)) => {}
    }
    let (mut added, mut updated, mut processed) = (0u64, 0u64, 0u64);
    let mut last = 0.0;
    let mut nan = false;
    if let Ok(Some(z)) = w.zset_mut() {
        if created {
            // A new key's listpack takes its final size at once (see `ZSet::reserve_pairs`).
            let members = (0..elements).map(|j| args[idx + 1 + j * 2].as_ref());
            z.reserve_pairs(members.zip(scores.iter().copied()), lim);
        }
        for (j, &score) in scores.iter().enumerate() {
            match z.add(score, &args[idx + 1 + j * 2], f, lim) {
                AddOutcome::Nan => {
                    nan = true;
                    break;
                }
                AddOutcome::Nop => {}
                AddOutcome::Added(s) => {
                    added += 1;
                    processed += 1;
                    last = s;
                }
                AddOutcome::Updated(s) => {
                    updated += 1;
                    processed += 1;
                    last = s;
                }
                AddOutcome::Same(s) => {
                    processed += 1;
                    last = s;
                }
            }
        }
    }
    w.count_changes(added + updated);
    drop(w);
    if nan {
        return cx.err("ERR resulting score is not a number (NaN)");
    }
    if f.incr {
        if processed > 0 {
            double(last, resp3, cx.out);
        } else {
            cx.null();
        }
    } else {
        cx.int((if ch { added + updated } else { added }) as i64);
    }
}

pub fn zrem(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    match w.get_zset() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(None) => {
            drop(w);
            return cx.int(0);
        }
        Ok(Some(z)) => {
            if !args[2..].iter().any(|m| z.score(m).is_some()) {
                drop(w);
                return cx.int(0);
            }
        }
    }
    let mut deleted = 0u64;
    let mut empty = false;
    if let Ok(Some(z)) = w.zset_mut() {
        for m in &args[2..] {
            if z.remove(m) {
                deleted += 1;
            }
            if z.is_empty() {
                empty = true;
                break;
            }
        }
    }
    if empty {
        w.delete();
    }
    w.count_changes(deleted);
    drop(w);
    cx.int(deleted as i64);
}

pub fn zcard(cx: &mut Ctx, args: &[Bytes]) {
    let z = read_zset!(cx, &args[1], |cx: &mut Ctx| cx.int(0));
    let n = z.len();
    cx.int(n as i64);
}

pub fn zscore(cx: &mut Ctx, args: &[Bytes]) {
    let resp3 = cx.resp3();
    let z = read_zset!(cx, &args[1], |cx: &mut Ctx| cx.null());
    match z.score(&args[2]) {
        Some(s) => double(s, resp3, cx.out),
        None => proto::encode_null(resp3, cx.out),
    }
}

pub fn zmscore(cx: &mut Ctx, args: &[Bytes]) {
    let resp3 = cx.resp3();
    let db = cx.db();
    let z = match cx.srv.ks.get_zset(db, &args[1]) {
        Ok(z) => z,
        Err(WrongType) => return cx.wrongtype(),
    };
    proto::encode_array_header(args.len() - 2, cx.out);
    for m in &args[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => double(s, resp3, cx.out),
            None => proto::encode_null(resp3, cx.out),
        }
    }
}

fn zrank_generic(cx: &mut Ctx, args: &[Bytes], rev: bool) {
    let resp3 = cx.resp3();
    let z = read_zset!(cx, &args[1], |cx: &mut Ctx| cx.null());
    match z.rank(&args[2], rev) {
        Some(r) => proto::encode_integer(r as i64, cx.out),
        None => proto::encode_null(resp3, cx.out),
    }
}

pub fn zrank(cx: &mut Ctx, args: &[Bytes]) {
    zrank_generic(cx, args, false);
}

pub fn zrevrank(cx: &mut Ctx, args: &[Bytes]) {
    zrank_generic(cx, args, true);
}

pub fn zcount(cx: &mut Ctx, args: &[Bytes]) {
    let Some(r) = ScoreRange::parse(&args[2], &args[3]) else {
        return cx.err(RANGE_NOT_FLOAT);
    };
    let z = read_zset!(cx, &args[1], |cx: &mut Ctx| cx.int(0));
    let (a, b) = score_span(z, &r);
    cx.int((b - a) as i64);
}

pub fn zlexcount(cx: &mut Ctx, args: &[Bytes]) {
    let Some(r) = LexRange::parse(&args[2], &args[3]) else {
        return cx.err(LEX_INVALID);
    };
    let z = read_zset!(cx, &args[1], |cx: &mut Ctx| cx.int(0));
    let (a, b) = lex_span(z, &r);
    cx.int((b - a) as i64);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

/// Which elements a range selects: ranks `lo..hi` in forward order, walked from `hi - 1` down
/// when `rev`, after skipping `offset` and taking at most `limit` (negative: all).
struct Selection {
    lo: usize,
    hi: usize,
    rev: bool,
    offset: i64,
    limit: i64,
}

impl Selection {
    fn len(&self) -> usize {
        if self.offset < 0 {
            return 0;
        }
        let avail =
            (self.hi - self.lo).saturating_sub(usize::try_from(self.offset).unwrap_or(usize::MAX));
        if self.limit < 0 {
            avail
        } else {
            avail.min(usize::try_from(self.limit).unwrap_or(usize::MAX))
        }
    }

    fn iter<'z>(&self, z: &'z ZSet) -> Box<dyn Iterator<Item = (Member<'z>, f64)> + 'z> {
        let n = self.len();
        if n == 0 {
            return Box::new(std::iter::empty());
        }
        let off = usize::try_from(self.offset).unwrap_or(0);
        let it = if self.rev {
            z.range(self.lo, self.hi - off, true)
        } else {
            z.range(self.lo + off, self.hi, false)
        };
        Box::new(it.take(n))
    }
}

/// ZRANGE and its relatives (Redis's `zrangeGenericCommand`): `argc_start` is the index of the
/// source key; `store` the destination key of ZRANGESTORE.
fn zrange_generic(
    cx: &mut Ctx,
    args: &[Bytes],
    argc_start: usize,
    store: Option<&[u8]>,
    mut rangetype: RangeType,
    mut direction: Direction,
) {
    let key = &args[argc_start];
    let mut minidx = argc_start + 1;
    let mut maxidx = argc_start + 2;
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = argc_start + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if store.is_none() && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            let (Some(o), Some(l)) = (parse_i64(&args[j + 1]), parse_i64(&args[j + 2])) else {
                return cx.not_int();
            };
            offset = o;
            limit = l;
            j += 2;
        } else if direction == Direction::Auto && is(a, "rev") {
            direction = Direction::Reverse;
        } else if rangetype == RangeType::Auto && is(a, "bylex") {
            rangetype = RangeType::Lex;
        } else if rangetype == RangeType::Auto && is(a, "byscore") {
            rangetype = RangeType::Score;
        } else {
            return cx.syntax_err();
        }
        j += 1;
    }
    if direction == Direction::Auto {
        direction = Direction::Forward;
    }
    if rangetype == RangeType::Auto {
        rangetype = RangeType::Rank;
    }
    if limit != -1 && rangetype == RangeType::Rank {
        return cx.err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if withscores && rangetype == RangeType::Lex {
        return cx.err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    let rev = direction == Direction::Reverse;
    if rev && rangetype != RangeType::Rank {
        std::mem::swap(&mut minidx, &mut maxidx);
    }
    enum Parsed {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange),
    }
    let parsed = match rangetype {
        RangeType::Score => match ScoreRange::parse(&args[minidx], &args[maxidx]) {
            Some(r) => Parsed::Score(r),
            None => return cx.err(RANGE_NOT_FLOAT),
        },
        RangeType::Lex => match LexRange::parse(&args[minidx], &args[maxidx]) {
            Some(r) => Parsed::Lex(r),
            None => return cx.err(LEX_INVALID),
        },
        RangeType::Rank | RangeType::Auto => {
            match (parse_i64(&args[minidx]), parse_i64(&args[maxidx])) {
                (Some(a), Some(b)) => Parsed::Rank(a, b),
                _ => return cx.not_int(),
            }
        }
    };
    let withscores = withscores || store.is_some();
    let resp3 = cx.resp3();
    let db = cx.db();
    let z = match cx.srv.ks.get_zset(db, key) {
        Ok(z) => z,
        Err(WrongType) => return cx.wrongtype(),
    };
    let sel = z.map(|z| {
        let llen = z.len() as i64;
        match &parsed {
            Parsed::Rank(start, end) => {
                let (mut start, mut end) = (*start, *end);
                if start < 0 {
                    start += llen;
                }
                if end < 0 {
                    end += llen;
                }
                if start < 0 {
                    start = 0;
                }
                let (lo, hi) = if start > end || start >= llen {
                    (0, 0)
                } else {
                    let end = end.min(llen - 1);
                    if rev {
                        ((llen - 1 - end) as usize, (llen - start) as usize)
                    } else {
                        (start as usize, (end + 1) as usize)
                    }
                };
                Selection {
                    lo,
                    hi,
                    rev,
                    offset: 0,
                    limit: -1,
                }
            }
            Parsed::Score(r) => {
                let (lo, hi) = score_span(z, r);
                let off_past = offset > 0 && offset >= llen;
                Selection {
                    lo,
                    hi: if off_past { lo } else { hi },
                    rev,
                    offset,
                    limit,
                }
            }
            Parsed::Lex(r) => {
                let (lo, hi) = lex_span(z, r);
                let off_past = offset > 0 && offset >= llen;
                Selection {
                    lo,
                    hi: if off_past { lo } else { hi },
                    rev,
                    offset,
                    limit,
                }
            }
        }
    });
    let Some(dst) = store else {
        match (z, sel) {
            (Some(z), Some(sel)) => {
                let n = sel.len();
                emit_pairs(sel.iter(z), n, withscores, resp3, cx.out);
            }
            _ => proto::encode_array_header(0, cx.out),
        }
        return;
    };
    let pairs: Vec<(Vec<u8>, f64)> = match (z, sel) {
        (Some(z), Some(sel)) => sel.iter(z).map(|(m, s)| (m.to_vec(), s)).collect(),
        _ => Vec::new(),
    };
    store_result(cx, dst, pairs);
}

/// Stores a command's result at `dst` (replacing any value, dropping its TTL) and replies with
/// its size; an empty result deletes `dst` (`setKey`/`dbDelete`, one change either way).
fn store_result(cx: &mut Ctx, dst: &[u8], pairs: Vec<(Vec<u8>, f64)>) {
    let lim = limits(cx);
    let db = cx.db();
    let n = pairs.len();
    let mut w = cx.srv.ks.write(db, dst);
    if n > 0 {
        w.put(Value::ZSet(ZSet::from_pairs(pairs, lim)), Some(-1));
    } else {
        w.delete();
    }
    drop(w);
    cx.int(n as i64);
}

pub fn zrange(cx: &mut Ctx, args: &[Bytes]) {
    zrange_generic(cx, args, 1, None, RangeType::Auto, Direction::Auto);
}

pub fn zrangestore(cx: &mut Ctx, args: &[Bytes]) {
    let dst = args[1].clone();
    zrange_generic(cx, args, 2, Some(&dst), RangeType::Auto, Direction::Auto);
}

pub fn zrevrange(cx: &mut Ctx, args: &[Bytes]) {
    zrange_generic(cx, args, 1, None, RangeType::Rank, Direction::Reverse);
}

pub fn zrangebyscore(cx: &mut Ctx, args: &[Bytes]) {
    zrange_generic(cx, args, 1, None, RangeType::Score, Direction::Forward);
}

pub fn zrevrangebyscore(cx: &mut Ctx, args: &[Bytes]) {
    zrange_generic(cx, args, 1, None, RangeType::Score, Direction::Reverse);
}

pub fn zrangebylex(cx: &mut Ctx, args: &[Bytes]) {
    zrange_generic(cx, args, 1, None, RangeType::Lex, Direction::Forward);
}

pub fn zrevrangebylex(cx: &mut Ctx, args: &[Bytes]) {
    zrange_generic(cx, args, 1, None, RangeType::Lex, Direction::Reverse);
}

fn zremrange_generic(cx: &mut Ctx, args: &[Bytes], kind: RangeType) {
    enum Parsed {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange),
    }
    let parsed = match kind {
        RangeType::Score => match ScoreRange::parse(&args[2], &args[3]) {
            Some(r) => Parsed::Score(r),
            None => return cx.err(RANGE_NOT_FLOAT),
        },
        RangeType::Lex => match LexRange::parse(&args[2], &args[3]) {
            Some(r) => Parsed::Lex(r),
            None => return cx.err(LEX_INVALID),
        },
        RangeType::Rank | RangeType::Auto => match (parse_i64(&args[2]), parse_i64(&args[3])) {
            (Some(a), Some(b)) => Parsed::Rank(a, b),
            _ => return cx.not_int(),
        },
    };
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    let (lo, hi) = match w.get_zset() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(None) => {
            drop(w);
            return cx.int(0);
        }
        Ok(Some(z)) => match &parsed {
            Parsed::Rank(start, end) => {
                let llen = z.len() as i64;
                let (mut start, mut end) = (*start, *end);
                if start < 0 {
                    start += llen;
                }
                if end < 0 {
                    end += llen;
                }
                if start < 0 {
                    start = 0;
                }
                if start > end || start >= llen {
                    (0, 0)
                } else {
                    (start as usize, (end.min(llen - 1) + 1) as usize)
                }
            }
            Parsed::Score(r) => score_span(z, r),
            Parsed::Lex(r) => lex_span(z, r),
        },
    };
    let mut deleted = 0;
    if hi > lo {
        let mut empty = false;
        if let Ok(Some(z)) = w.zset_mut() {
            deleted = z.remove_range(lo, hi);
            empty = z.is_empty();
        }
        if empty {
            w.delete();
        }
        w.count_changes(deleted as u64);
    }
    drop(w);
    cx.int(deleted as i64);
}

pub fn zremrangebyrank(cx: &mut Ctx, args: &[Bytes]) {
    zremrange_generic(cx, args, RangeType::Rank);
}

pub fn zremrangebyscore(cx: &mut Ctx, args: &[Bytes]) {
    zremrange_generic(cx, args, RangeType::Score);
}

pub fn zremrangebylex(cx: &mut Ctx, args: &[Bytes]) {
    zremrange_generic(cx, args, RangeType::Lex);
}

/// Redis's `genericZpopCommand`: pops up to `count` (-1: one, flat reply) from the first
/// existing key of `keys`. `emitkey` is ZMPOP's nested reply with the key name.
fn zpop_generic(cx: &mut Ctx, keys: &[Bytes], max: bool, count: i64, nested: bool, emitkey: bool) {
    let db = cx.db();
    let resp3 = cx.resp3();
    let mut found = None;
    for k in keys {
        let state = cx.srv.ks.write(db, k).get_zset().map(|z| z.is_some());
        match state {
            Err(WrongType) => return cx.wrongtype(),
            Ok(false) => continue,
            Ok(true) => {
                found = Some(k.clone());
                break;
            }
        }
    }
    let Some(key) = found else {
        if emitkey {
            return cx.null_array();
        }
        return proto::encode_array_header(0, cx.out);
    };
    if count == 0 {
        return proto::encode_array_header(0, cx.out);
    }
    let count = if count == -1 { 1 } else { count };
    let mut w = cx.srv.ks.write(db, &key);
    let mut popped: Vec<(Vec<u8>, f64)> = Vec::new();
    let mut empty = false;
    if let Ok(Some(z)) = w.zset_mut() {
        let n = usize::try_from(count).unwrap_or(usize::MAX).min(z.len());
        let (lo, hi) = if max { (z.len() - n, z.len()) } else { (0, n) };
        popped = z.range(lo, hi, max).map(|(m, s)| (m.to_vec(), s)).collect();
        z.remove_range(lo, hi);
        empty = z.is_empty();
    }
    if empty {
        w.delete();
    }
    w.count_changes(popped.len() as u64);
    drop(w);
    let out = &mut *cx.out;
    let n = popped.len();
    match (nested, emitkey) {
        (false, false) => proto::encode_array_header(n * 2, out),
        (true, false) => proto::encode_array_header(n, out),
        (false, true) => {
            proto::encode_array_header(n * 2 + 1, out);
            proto::encode_bulk(&key, out);
        }
        (true, true) => {
            proto::encode_array_header(2, out);
            proto::encode_bulk(&key, out);
            proto::encode_array_header(n, out);
        }
    }
    for (m, s) in popped {
        if nested {
            proto::encode_array_header(2, out);
        }
        proto::encode_bulk(&m, out);
        double(s, resp3, out);
    }
}

fn zpop_min_max(cx: &mut Ctx, args: &[Bytes], max: bool) {
    if args.len() > 3 {
        return cx.syntax_err();
    }
    let mut count = -1;
    if args.len() == 3 {
        match parse_i64(&args[2]) {
            Some(n) if n >= 0 => count = n,
            _ => return cx.err("ERR value is out of range, must be positive"),
        }
    }
    let nested = cx.resp3() && count != -1;
    zpop_generic(cx, &args[1..2], max, count, nested, false);
}

pub fn zpopmin(cx: &mut Ctx, args: &[Bytes]) {
    zpop_min_max(cx, args, false);
}

pub fn zpopmax(cx: &mut Ctx, args: &[Bytes]) {
    zpop_min_max(cx, args, true);
}

/// The parsed options of ZMPOP/BZMPOP.
struct Mpop {
    keys: std::ops::Range<usize>,
    max: bool,
    count: i64,
}

/// Parses `numkeys key... MIN|MAX [COUNT n]` from `numkeys_idx` (Redis's
/// `zmpopGenericCommand`, whose errors come before BZMPOP's timeout is parsed).
fn parse_mpop(cx: &mut Ctx, args: &[Bytes], numkeys_idx: usize) -> Option<Mpop> {
    let side = |a: &[u8]| {
        if is(a, "min") {
            Some(false)
        } else if is(a, "max") {
            Some(true)
        } else {
            None
        }
    };
    let (keys, max, count) = super::parse_mpop(cx, args, numkeys_idx, side)?;
    Some(Mpop {
        keys,
        max,
        count: i64::try_from(count).unwrap_or(i64::MAX),
    })
}

pub fn zmpop(cx: &mut Ctx, args: &[Bytes]) {
    let Some(m) = parse_mpop(cx, args, 1) else {
        return;
    };
    zpop_generic(cx, &args[m.keys], m.max, m.count, true, true);
}

fn zset_ready(cx: &mut Ctx, db: usize, key: &[u8]) -> Result<bool, WrongType> {
    let w = cx.srv.ks.write(db, key);
    Ok(w.get_zset()?.is_some_and(|z| !z.is_empty()))
}

/// BZPOPMIN/BZPOPMAX key [key ...] timeout: `[key, member, score]`, or blocks.
fn bzpop_min_max(cx: &mut Ctx, args: &[Bytes]) {
    let Some(deadline) = blocking::parse_timeout(cx, &args[args.len() - 1]) else {
        return;
    };
    let keys = &args[1..args.len() - 1];
    let serve_now = |cx: &mut Ctx, i: usize| {
        serve_bzpop(cx, args, &keys[i]);
    };
    // Inside MULTI (Redis's CLIENT_DENY_BLOCKING) the answer is a timeout's.
    blocking::serve_or_block(
        cx,
        keys,
        deadline,
        args,
        zset_ready,
        serve_now,
        |cx: &mut Ctx| cx.null_array(),
        serve_bzpop,
    );
}

/// Serves BZPOPMIN/BZPOPMAX from `key` (Redis's `serveClientBlockedOnSortedSet`).
fn serve_bzpop(cx: &mut Ctx, args: &[Bytes], key: &[u8]) -> bool {
    let db = cx.db();
    if !matches!(zset_ready(cx, db, key), Ok(true)) {
        return false;
    }
    let max = is(&args[0], "bzpopmax");
    zpop_generic(cx, &[Bytes::copy_from_slice(key)], max, -1, false, true);
    true
}

pub fn bzpopmin(cx: &mut Ctx, args: &[Bytes]) {
    bzpop_min_max(cx, args);
}

pub fn bzpopmax(cx: &mut Ctx, args: &[Bytes]) {
    bzpop_min_max(cx, args);
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
pub fn bzmpop(cx: &mut Ctx, args: &[Bytes]) {
    let Some(m) = parse_mpop(cx, args, 2) else {
        return;
    };
    let Some(deadline) = blocking::parse_timeout(cx, &args[1]) else {
        return;
    };
    let keys = &args[m.keys];
    let serve_now = |cx: &mut Ctx, i: usize| {
        zpop_generic(cx, &keys[i..=i], m.max, m.count, true, true);
    };
    blocking::serve_or_block(
        cx,
        keys,
        deadline,
        args,
        zset_ready,
        serve_now,
        |cx: &mut Ctx| cx.null_array(),
        serve_bzmpop,
    );
}

/// Serves BZMPOP from `key`; its arguments were validated when the client blocked.
fn serve_bzmpop(cx: &mut Ctx, args: &[Bytes], key: &[u8]) -> bool {
    let db = cx.db();
    if !matches!(zset_ready(cx, db, key), Ok(true)) {
        return false;
    }
    let mut scratch = BytesMut::new();
    let parsed = {
        let mut pcx = Ctx {
            srv: &mut *cx.srv,
            client: &mut *cx.client,
            out: &mut scratch,
            failed: false,
        };
        parse_mpop(&mut pcx, args, 2)
    };
    let (max, count) = parsed.map_or((false, 1), |m| (m.max, m.count));
    zpop_generic(cx, &[Bytes::copy_from_slice(key)], max, count, true, true);
    true
}

pub fn zrandmember(cx: &mut Ctx, args: &[Bytes]) {
    let resp3 = cx.resp3();
    if args.len() >= 3 {
        let l = match parse_i64(&args[2]) {
            Some(l) if l != i64::MIN => l,
            Some(_) => {
                return cx.err(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                )
            }
            None => return cx.not_int(),
        };
        let withscores = if args.len() > 4 || (args.len() == 4 && !is(&args[3], "withscores")) {
            return cx.syntax_err();
        } else {
            args.len() == 4
        };
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
            return cx.err("ERR value is out of range");
        }
        let z = read_zset!(cx, &args[1], |cx: &mut Ctx| proto::encode_array_header(
            0, cx.out
        ));
        let out = &mut *cx.out;
        let size = z.len();
        let mut rng = rand::thread_rng();
        let count = l.unsigned_abs();
        if count == 0 {
            return proto::encode_array_header(0, out);
        }
        let header = |n: usize, out: &mut BytesMut| {
            proto::encode_array_header(if withscores && !resp3 { n * 2 } else { n }, out)
        };
        let one = |m: &Member<'_>, s: f64, out: &mut BytesMut| {
            if withscores && resp3 {
                proto::encode_array_header(2, out);
            }
            bulk_member(m, out);
            if withscores {
                double(s, resp3, out);
            }
        };
        if l < 0 || count == 1 {
            let n = usize::try_from(count).unwrap_or(usize::MAX);
            header(n, out);
            for _ in 0..n {
                if let Some((m, s)) = z.random(&mut rng) {
                    one(&m, s, out);
                }
            }
            return;
        }
        let n = usize::try_from(count).unwrap_or(usize::MAX);
        if n >= size {
            header(size, out);
            for (m, s) in z.iter() {
                one(&m, s, out);
            }
            return;
        }
        header(n, out);
        for r in sample(&mut rng, size, n) {
            if let Some((m, s)) = z.at(r) {
                one(&m, s, out);
            }
        }
        return;
    }
    let z = read_zset!(cx, &args[1], |cx: &mut Ctx| cx.null());
    let mut rng = rand::thread_rng();
    if let Some((m, _)) = z.random(&mut rng) {
        bulk_member(&m, cx.out);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(target: &mut f64, val: f64, a: Aggregate) {
    match a {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// Redis's `zunionInterDiffGenericCommand`. `dst` for the STORE forms; `card_only` for
/// ZINTERCARD.
fn zsetop(
    cx: &mut Ctx,
    args: &[Bytes],
    dst: Option<&[u8]>,
    numkeys_idx: usize,
    op: SetOp,
    card_only: bool,
) {
    let Some(setnum) = parse_i64(&args[numkeys_idx]) else {
        return cx.not_int();
    };
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    if setnum < 1 {
        return cx.err(&format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
    }
    if setnum > (args.len() - (numkeys_idx + 1)) as i64 {
        return cx.syntax_err();
    }
    let setnum = setnum as usize;
    let db = cx.db();
    let keys = &args[numkeys_idx + 1..numkeys_idx + 1 + setnum];
    // Counted lookups (lazy expiry, statistics) and the type check, in Redis's order; the
    // values are then read through `peek`, which can lend several at once.
    for k in keys {
        if let Some(e) = cx.srv.ks.get(db, k) {
            match &e.value {
                Value::ZSet(_) | Value::Set(_) => {}
                _ => return cx.wrongtype(),
            }
        }
    }
    let mut weights = vec![1.0f64; setnum];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0i64;
    let mut j = numkeys_idx + 1 + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if op != SetOp::Diff && !card_only && remaining > setnum && is(a, "weights") {
            j += 1;
            for w in weights.iter_mut() {
                match parse_score(&args[j]) {
                    Some(v) => *w = v,
                    None => return cx.err("ERR weight value is not a float"),
                }
                j += 1;
            }
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && is(a, "aggregate") {
            let v = &args[j + 1];
            agg = if is(v, "sum") {
                Aggregate::Sum
            } else if is(v, "min") {
                Aggregate::Min
            } else if is(v, "max") {
                Aggregate::Max
            } else {
                return cx.syntax_err();
            };
            j += 2;
        } else if dst.is_none() && !card_only && is(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && is(a, "limit") {
            match parse_i64(&args[j + 1]) {
                Some(n) if n >= 0 => limit = n,
                _ => return cx.err("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return cx.syntax_err();
        }
    }
    let ks = &cx.srv.ks;
    // A plain set counts as a sorted set whose members all score 1, as Redis's `zuiInitIterator`.
    let srcs: Vec<(Src<'_>, f64)> = keys
        .iter()
        .zip(&weights)
        .map(|(k, &w)| {
            let src = match ks.peek(db, k).map(|e| e.value) {
                Some(Value::ZSet(z)) => Src::Z(z),
                Some(Value::Set(s)) => Src::S(s),
                _ => Src::Missing,
            };
            (src, w)
        })
        .collect();
    let len_of = |s: &(Src<'_>, f64)| s.0.len();
    let mut result: Vec<(Vec<u8>, f64)> = Vec::new();
    let mut card = 0u64;
    match op {
        SetOp::Inter => {
            let mut order: Vec<usize> = (0..setnum).collect();
            order.sort_by_key(|&i| len_of(&srcs[i]));
            let first = srcs[order[0]];
            if !first.0.is_missing() {
                let mut buf = itoa::Buffer::new();
                'outer: for (m, s) in first.0.iter() {
                    let mb = member_bytes(&m, &mut buf).to_vec();
                    let mut score = first.1 * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    for &i in &order[1..] {
                        let (z, w) = srcs[i];
                        let v = match z.score(&mb) {
                            Some(v) => v,
                            None => continue 'outer,
                        };
                        aggregate(&mut score, v * w, agg);
                    }
                    if card_only {
                        card += 1;
                        if limit > 0 && card >= limit as u64 {
                            break;
                        }
                    } else {
                        result.push((mb, score));
                    }
                }
            }
        }
        SetOp::Union => {
            let mut acc: std::collections::HashMap<Vec<u8>, f64> = Default::default();
            let mut order: Vec<usize> = (0..setnum).collect();
            order.sort_by_key(|&i| len_of(&srcs[i]));
            let mut buf = itoa::Buffer::new();
            for &i in &order {
                let (z, w) = srcs[i];
                for (m, s) in z.iter() {
                    let mut score = w * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    let mb = member_bytes(&m, &mut buf);
                    match acc.get_mut(mb) {
                        Some(t) => aggregate(t, score, agg),
                        None => {
                            acc.insert(mb.to_vec(), score);
                        }
                    }
                }
            }
            result = acc.into_iter().collect();
        }
        SetOp::Diff => {
            if !srcs[0].0.is_missing() {
                let mut buf = itoa::Buffer::new();
                for (m, s) in srcs[0].0.iter() {
                    let mb = member_bytes(&m, &mut buf);
                    if srcs[1..].iter().any(|(z, _)| z.score(mb).is_some()) {
                        continue;
                    }
                    result.push((mb.to_vec(), s));
                }
            }
        }
    }
    if card_only {
        return cx.int(card as i64);
    }
    if let Some(dst) = dst {
        let dst = dst.to_vec();
        return store_result(cx, &dst, result);
    }
    result.sort_by(|a, b| match a.1.partial_cmp(&b.1) {
        Some(std::cmp::Ordering::Equal) | None => a.0.cmp(&b.0),
        Some(o) => o,
    });
    let resp3 = cx.resp3();
    let n = result.len();
    emit_pairs(
        result.iter().map(|(m, s)| (Member::Str(m), *s)),
        n,
        withscores,
        resp3,
        cx.out,
    );
}

/// One input of ZUNION/ZINTER/ZDIFF: a sorted set, a plain set (every member scores 1), or a
/// missing key (empty).
#[derive(Clone, Copy)]
enum Src<'a> {
    Z(&'a ZSet),
    S(&'a crate::types::Set),
    Missing,
}

impl<'a> Src<'a> {
    fn is_missing(&self) -> bool {
        matches!(self, Src::Missing)
    }

    fn len(&self) -> usize {
        match self {
            Src::Z(z) => z.len(),
            Src::S(s) => s.len(),
            Src::Missing => 0,
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Src::Z(z) => z.score(member),
            Src::S(s) => s.contains(member).then_some(1.0),
            Src::Missing => None,
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (Member<'a>, f64)> + 'a> {
        match *self {
            Src::Z(z) => z.iter(),
            Src::S(s) => Box::new(s.iter().map(|m| (m, 1.0))),
            Src::Missing => Box::new(std::iter::empty()),
        }
    }
}

pub fn zunionstore(cx: &mut Ctx, args: &[Bytes]) {
    let dst = args[1].clone();
    zsetop(cx, args, Some(&dst), 2, SetOp::Union, false);
}

pub fn zinterstore(cx: &mut Ctx, args: &[Bytes]) {
    let dst = args[1].clone();
    zsetop(cx, args, Some(&dst), 2, SetOp::Inter, false);
}

pub fn zdiffstore(cx: &mut Ctx, args: &[Bytes]) {
    let dst = args[1].clone();
    zsetop(cx, args, Some(&dst), 2, SetOp::Diff, false);
}

pub fn zunion(cx: &mut Ctx, args: &[Bytes]) {
    zsetop(cx, args, None, 1, SetOp::Union, false);
}

pub fn zinter(cx: &mut Ctx, args: &[Bytes]) {
    zsetop(cx, args, None, 1, SetOp::Inter, false);
}

pub fn zdiff(cx: &mut Ctx, args: &[Bytes]) {
    zsetop(cx, args, None, 1, SetOp::Diff, false);
}

pub fn zintercard(cx: &mut Ctx, args: &[Bytes]) {
    zsetop(cx, args, None, 1, SetOp::Inter, true);
}

/// ZSCAN: a listpack is returned whole with cursor 0 (as Redis does for compact encodings);
/// the large encoding is walked by rank, the cursor being the next rank to visit.
pub fn zscan(cx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return cx.err("ERR invalid cursor");
    };
    let mut count = 10usize;
    let mut pattern: Option<Bytes> = None;
    let mut j = 3;
    while j < args.len() {
        let Some(val) = args.get(j + 1) else {
            return cx.syntax_err();
        };
        if is(&args[j], "count") {
            let Some(n) = super::int_arg(cx, val) else {
                return;
            };
            if n < 1 {
                return cx.syntax_err();
            }
            count = n as usize;
        } else if is(&args[j], "match") {
            pattern = Some(val.clone());
        } else {
            return cx.syntax_err();
        }
        j += 2;
    }
    let z = read_zset!(cx, &args[1], |cx: &mut Ctx| {
        proto::encode_array_header(2, cx.out);
        proto::encode_bulk(b"0", cx.out);
        proto::encode_array_header(0, cx.out);
    });
    let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut next = 0u64;
    let mut buf = itoa::Buffer::new();
    let keep = |m: &[u8]| pattern.as_ref().is_none_or(|p| glob::matches(p, m, false));
    if let Some(lp) = z.as_listpack() {
        // Scores as the listpack holds them (Redis replies with the stored entry).
        let lp = forkdb_snapshot::blob::Listpack::from_bytes(lp.to_vec()).unwrap_or_default();
        let mut it = lp.iter();
        while let (Some(m), Some(s)) = (it.next(), it.next()) {
            let mb = member_bytes(&m, &mut buf).to_vec();
            if keep(&mb) {
                found.push((mb, s.to_vec()));
            }
        }
    } else {
        let start = usize::try_from(cursor).unwrap_or(usize::MAX);
        let end = start.saturating_add(count).min(z.len());
        for (m, s) in z.range(start, end, false) {
            let mb = member_bytes(&m, &mut buf).to_vec();
            if keep(&mb) {
                found.push((mb, proto::format_double(s).into_bytes()));
            }
        }
        if end < z.len() {
            next = end as u64;
        }
    }
    let out = &mut *cx.out;
    proto::encode_array_header(2, out);
    proto::encode_bulk(next.to_string().as_bytes(), out);
    proto::encode_array_header(found.len() * 2, out);
    for (m, s) in found {
        proto::encode_bulk(&m, out);
        proto::encode_bulk(&s, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_parsing_follows_get_double_from_object() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"nan"), None);
        assert_eq!(parse_score(b"1e400"), None);
        assert_eq!(parse_score(b"1e-400"), None);
        assert_eq!(parse_score(b"0e5"), Some(0.0));
        assert_eq!(parse_score(b" 1"), None);
        assert_eq!(parse_score(b""), None);
    }

    #[test]
    fn ranges_parse_as_redis() {
        let r = ScoreRange::parse(b"(1", b"+inf").unwrap();
        assert!(r.minex && !r.gte_min(1.0) && r.gte_min(1.5) && r.lte_max(f64::INFINITY));
        assert!(ScoreRange::parse(b"a", b"1").is_none());
        assert!(ScoreRange::parse(b"(", b"1").is_some());
        assert!(LexRange::parse(b"a", b"+").is_none());
        assert!(LexRange::parse(b"-x", b"+").is_none());
        let l = LexRange::parse(b"[b", b"(d").unwrap();
        assert!(l.gte_min(b"b") && l.lte_max(b"c") && !l.lte_max(b"d"));
    }
}
