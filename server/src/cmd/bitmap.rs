//! Bitmaps and the string commands that work bit by bit or on two strings, on the string type.
//!
//! ```text
//! SETBIT key offset 0|1                 GETBIT key offset
//! BITCOUNT key [start end [BYTE|BIT]]   BITPOS key 0|1 [start [end [BYTE|BIT]]]
//! BITOP AND|OR|XOR|NOT destkey key [key ...]
//! BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
//!              [OVERFLOW WRAP|SAT|FAIL] ...
//! BITFIELD_RO key [GET type offset ...]
//! LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
//! SUBSTR key start end                  (GETRANGE's handler, in cmd/string.rs)
//! ```
//!
//! Bit `n` of a string is bit `7 - n % 8` of byte `n / 8` (the most significant bit first), as
//! in Redis's `bitops.c`, whose arithmetic this file follows step by step (including its
//! wrapping two's-complement overflow checks) so that every reply is Redis 7.0's.
//!
//! Writes go through the one write path ([`crate::store::Slot`]): SETBIT and BITFIELD change
//! the bytes they touch in place with `Slot::str_bytes_mut` rather than copying the value, so a
//! write to a large bitmap during a snapshot dirties one page, not the whole value. They decide
//! first, from a read, whether anything changes at all, and open the value for writing only
//! then: a SETBIT that sets a bit already set changes nothing, counts nothing in `dirty` and
//! invalidates no WATCH, as in Redis.

use std::collections::BTreeMap;

use bytes::Bytes;
use forkdb_protocol::Frame;

use super::is;
use crate::server::Ctx;
use crate::store::WrongType;
use crate::util::parse_i64;

const BIT_OFFSET_ERR: &str = "ERR bit offset is not an integer or out of range";
const BIT_VALUE_ERR: &str = "ERR bit is not an integer or out of range";
const BITFIELD_TYPE_ERR: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// Redis's `getBitOffsetFromArgument`: a bit offset, or with `hash_bits` (BITFIELD) also
/// `#n`, meaning `n * bits`. Offsets whose byte is not below proto-max-bulk-len are refused.
fn bit_offset(arg: &[u8], hash_bits: Option<u32>, max_bulk: u64) -> Option<u64> {
    let (digits, mult) = match (arg.first(), hash_bits) {
        (Some(b'#'), Some(bits)) if bits > 0 => (&arg[1..], i64::from(bits)),
        _ => (arg, 1),
    };
    // C's `loffset *= bits` wraps; a wrapped (negative) offset is then refused like any other.
    let n = parse_i64(digits)?.wrapping_mul(mult);
    (n >= 0 && ((n >> 3) as u64) < max_bulk).then_some(n as u64)
}

/// Redis's `getBitfieldTypeFromArgument`: `i1`..`i64` or `u1`..`u63`, as (signed, bits).
fn bitfield_type(arg: &[u8]) -> Option<(bool, u32)> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return None,
    };
    // Redis reads the width with strlen: it stops at a NUL byte.
    let rest = &arg[1..];
    let rest = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
    let bits = parse_i64(rest)?;
    let max = if signed { 64 } else { 63 };
    (1..=max).contains(&bits).then_some((signed, bits as u32))
}

/// The byte and mask of bit `offset`.
fn bit_pos(offset: u64) -> (usize, u8) {
    ((offset >> 3) as usize, 1u8 << (7 - (offset & 7)))
}

pub fn setbit(cx: &mut Ctx, args: &[Bytes]) {
    let max = cx.srv.config.proto_max_bulk_len;
    let Some(offset) = bit_offset(&args[2], None, max) else {
        return cx.err(BIT_OFFSET_ERR);
    };
    let on = match parse_i64(&args[3]) {
        Some(0) => false,
        Some(1) => true,
        _ => return cx.err(BIT_VALUE_ERR),
    };
    let (byte, mask) = bit_pos(offset);
    let db = cx.db();
    let mut w = cx.srv.ks.write(db, &args[1]);
    // Redis writes (and counts a change) when it creates or grows the string, or flips the bit.
    let (was, write) = match w.get_str() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(None) => (false, true),
        Ok(Some(s)) => match s.get(byte) {
            Some(b) => (b & mask != 0, (b & mask != 0) != on),
            None => (false, true),
        },
    };
    if write {
        match w.str_bytes_mut(byte + 1) {
            Ok(bytes) => {
                if let Some(b) = bytes.get_mut(byte) {
                    if on {
                        *b |= mask;
                    } else {
                        *b &= !mask;
                    }
                }
            }
            Err(WrongType) => {
                drop(w);
                return cx.wrongtype();
            }
        }
    } else {
        w.str_mark_raw();
    }
    drop(w);
    cx.int(i64::from(was));
}

pub fn getbit(cx: &mut Ctx, args: &[Bytes]) {
    let max = cx.srv.config.proto_max_bulk_len;
    let Some(offset) = bit_offset(&args[2], None, max) else {
        return cx.err(BIT_OFFSET_ERR);
    };
    let (byte, mask) = bit_pos(offset);
    let db = cx.db();
    match cx.srv.ks.get_str(db, &args[1]) {
        Ok(s) => {
            let set = s.and_then(|s| s.get(byte)).is_some_and(|b| b & mask != 0);
            cx.int(i64::from(set));
        }
        Err(WrongType) => cx.wrongtype(),
    }
}

/// Redis's range arithmetic for BITCOUNT and BITPOS: negative indexes count from the end
/// (`totlen` units long), then the range is clamped to the string. May return start > end.
fn clamp_range(mut start: i64, mut end: i64, totlen: i64) -> (i64, i64) {
    if start < 0 {
        start += totlen;
    }
    if end < 0 {
        end += totlen;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= totlen {
        end = totlen - 1;
    }
    (start, end)
}

/// The number of set bits among bits `first..=last` of `p` (`last` inside `p`).
pub fn count_bits(p: &[u8], first: u64, last: u64) -> u64 {
    if first > last {
        return 0;
    }
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let Some(span) = p.get(fb..=lb) else {
        return 0;
    };
    // Whole words at a time: BITCOUNT of a large bitmap is the common case.
    let (words, tail) = span.split_at(span.len() / 8 * 8);
    let mut n: u64 = words
        .chunks_exact(8)
        .map(|w| u64::from(u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])).count_ones()))
        .sum();
    n += tail.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
    // Take off the bits of the edge bytes outside the range.
    let before = span[0] & !(0xffu8 >> (first & 7));
    let after = span[span.len() - 1] & (0xffu16 >> ((last & 7) + 1)) as u8;
    n - u64::from(before.count_ones()) - u64::from(after.count_ones())
}

/// The first bit equal to `bit` among bits `first..=last` of `p` (`last` inside `p`).
pub fn find_bit(p: &[u8], first: u64, last: u64, bit: bool) -> Option<u64> {
    if first > last {
        return None;
    }
    let skip = if bit { 0x00 } else { 0xff };
    let mut pos = first;
    while pos <= last {
        let byte = p.get((pos >> 3) as usize).copied()?;
        if pos & 7 == 0 && pos + 7 <= last && byte == skip {
            pos += 8;
            continue;
        }
        if (byte & (0x80 >> (pos & 7)) != 0) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// The string at `key`, which the command has just looked up (with the statistics and lazy
/// expiry of a read) and found to be a string: a second look, without side effects, lends the
/// bytes while the range arguments are replied to, so that a large bitmap is never copied.
fn string_at<'c>(cx: &'c Ctx, key: &[u8]) -> &'c [u8] {
    match cx.srv.ks.peek(cx.db(), key).map(|e| e.value.as_str()) {
        Some(Ok(s)) => s,
        _ => &[],
    }
}

/// Parses BITCOUNT's and BITPOS's BYTE|BIT unit.
fn unit_is_bit(arg: &[u8]) -> Option<bool> {
    if is(arg, "bit") {
        Some(true)
    } else if is(arg, "byte") {
        Some(false)
    } else {
        None
    }
}

pub fn bitcount(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    // Redis looks the key up (0 when missing, WRONGTYPE) before it reads the range.
    let len = match cx.srv.ks.get_str(db, &args[1]) {
        Ok(Some(s)) => s.len() as i64,
        Ok(None) => return cx.int(0),
        Err(WrongType) => return cx.wrongtype(),
    };
    let (first, last) = match args.len() {
        2 => (0, len * 8 - 1),
        4 | 5 => {
            let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
                return cx.not_int();
            };
            if start < 0 && end < 0 && start > end {
                return cx.int(0);
            }
            let isbit = match args.get(4) {
                None => false,
                Some(u) => match unit_is_bit(u) {
                    Some(b) => b,
                    None => return cx.syntax_err(),
                },
            };
            let (start, end) = clamp_range(start, end, if isbit { len * 8 } else { len });
            if start > end {
                return cx.int(0);
            }
            if isbit {
                (start, end)
            } else {
                (start * 8, end * 8 + 7)
            }
        }
        _ => return cx.syntax_err(),
    };
    if first > last {
        return cx.int(0);
    }
    let n = count_bits(string_at(cx, &args[1]), first as u64, last as u64);
    cx.int(n as i64);
}

pub fn bitpos(cx: &mut Ctx, args: &[Bytes]) {
    let bit = match parse_i64(&args[2]) {
        None => return cx.not_int(),
        Some(0) => false,
        Some(1) => true,
        Some(_) => return cx.err("ERR The bit argument must be 1 or 0."),
    };
    let db = cx.db();
    // A missing key is an endless run of zero bits.
    let len = match cx.srv.ks.get_str(db, &args[1]) {
        Ok(Some(s)) => s.len() as i64,
        Ok(None) => return cx.int(if bit { -1 } else { 0 }),
        Err(WrongType) => return cx.wrongtype(),
    };
    let mut end_given = false;
    let (first, last) = match args.len() {
        3 => (0, len * 8 - 1),
        4..=6 => {
            let Some(start) = parse_i64(&args[3]) else {
                return cx.not_int();
            };
            let isbit = match args.get(5) {
                None => false,
                Some(u) => match unit_is_bit(u) {
                    Some(b) => b,
                    None => return cx.syntax_err(),
                },
            };
            let end = match args.get(4) {
                Some(e) => {
                    end_given = true;
                    match parse_i64(e) {
                        Some(e) => e,
                        None => return cx.not_int(),
                    }
                }
                None => len - 1,
            };
            let (start, end) = clamp_range(start, end, if isbit { len * 8 } else { len });
            if start > end {
                return cx.int(-1);
            }
            if isbit {
                (start, end)
            } else {
                (start * 8, end * 8 + 7)
            }
        }
        _ => return cx.syntax_err(),
    };
    if first > last {
        return cx.int(-1);
    }
    let pos = match find_bit(string_at(cx, &args[1]), first as u64, last as u64, bit) {
        Some(p) => p as i64,
        // Looking for a 0 with no end given: the string continues with zero bits after it.
        None if !bit && !end_given => last + 1,
        None => -1,
    };
    cx.int(pos);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

pub fn bitop(cx: &mut Ctx, args: &[Bytes]) {
    let op = if is(&args[1], "and") {
        BitOp::And
    } else if is(&args[1], "or") {
        BitOp::Or
    } else if is(&args[1], "xor") {
        BitOp::Xor
    } else if is(&args[1], "not") {
        BitOp::Not
    } else {
        return cx.syntax_err();
    };
    if op == BitOp::Not && args.len() != 4 {
        return cx.err("ERR BITOP NOT must be called with a single source key.");
    }
    let db = cx.db();
    // Folded one source at a time: every source counts as zero-padded to the longest, so a
    // longer source pads the result with zeros first, and only the result is held.
    let mut res: Vec<u8> = Vec::new();
    for (i, key) in args[3..].iter().enumerate() {
        let src: &[u8] = match cx.srv.ks.get_str(db, key) {
            Ok(Some(s)) => s,
            Ok(None) => &[],
            Err(WrongType) => return cx.wrongtype(),
        };
        if i == 0 {
            res.extend_from_slice(src);
            if op == BitOp::Not {
                res.iter_mut().for_each(|b| *b = !*b);
            }
            continue;
        }
        if src.len() > res.len() {
            res.resize(src.len(), 0);
        }
        let pad = res.len() - src.len();
        let pairs = res
            .iter_mut()
            .zip(src.iter().chain(std::iter::repeat_n(&0, pad)));
        match op {
            BitOp::And => pairs.for_each(|(r, s)| *r &= s),
            BitOp::Or => pairs.for_each(|(r, s)| *r |= s),
            BitOp::Xor => pairs.for_each(|(r, s)| *r ^= s),
            BitOp::Not => {}
        }
    }
    let len = res.len();
    let mut w = cx.srv.ks.write(db, &args[2]);
    if res.is_empty() {
        w.delete();
    } else {
        // Redis stores the result as a new raw string and clears any TTL (`setKey`).
        w.put(crate::store::Value::raw(res), Some(-1));
    }
    drop(w);
    cx.int(len as i64);
}

/// BITFIELD's OVERFLOW behaviours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// Redis's `checkUnsignedBitfieldOverflow`: does `value + incr` fit in `bits` (< 64) unsigned
/// bits? Returns 0, or 1 / -1 for an overflow upwards / downwards with the value to store
/// instead (None with [`Overflow::Fail`]).
pub fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (i32, Option<u64>) {
    let max: u64 = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || {
        let mask = if bits >= 64 { 0 } else { u64::MAX << bits };
        value.wrapping_add(incr as u64) & !mask
    };
    if value > max || (incr > 0 && incr > maxincr) {
        let limit = match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        };
        (1, limit)
    } else if incr < 0 && incr < minincr {
        let limit = match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(0),
            Overflow::Fail => None,
        };
        (-1, limit)
    } else {
        (0, None)
    }
}

/// Redis's `checkSignedBitfieldOverflow`, with its wrapping arithmetic (which decides some
/// edge cases, such as setting `i8` to `i64::MIN` under SAT: Redis stores the maximum).
pub fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (i32, Option<i64>) {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let msb = 1u64 << (bits - 1);
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        let limit = match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        };
        (1, limit)
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        let limit = match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(min),
            Overflow::Fail => None,
        };
        (-1, limit)
    } else {
        (0, None)
    }
}

/// A string's bytes with BITFIELD's writes laid over them: reads see the writes, bytes past the
/// end read as zero (the string as Redis would have grown it), and the writes are applied to the
/// real value only once the whole command is known to change something.
pub struct Overlay<'a> {
    base: &'a [u8],
    patch: BTreeMap<u64, u8>,
}

impl<'a> Overlay<'a> {
    pub fn new(base: &'a [u8]) -> Self {
        Overlay {
            base,
            patch: BTreeMap::new(),
        }
    }

    fn byte(&self, i: u64) -> u8 {
        match self.patch.get(&i) {
            Some(b) => *b,
            None => usize::try_from(i)
                .ok()
                .and_then(|i| self.base.get(i))
                .copied()
                .unwrap_or(0),
        }
    }

    /// Redis's `getUnsignedBitfield`: `bits` (<= 64) bits from bit `offset`, most significant first.
    pub fn get_unsigned(&self, mut offset: u64, bits: u32) -> u64 {
        let mut value = 0u64;
        for _ in 0..bits {
            let bit = (self.byte(offset >> 3) >> (7 - (offset & 7))) & 1;
            value = (value << 1) | u64::from(bit);
            offset += 1;
        }
        value
    }

    /// Redis's `getSignedBitfield`: the same bits as two's complement.
    pub fn get_signed(&self, offset: u64, bits: u32) -> i64 {
        let mut v = self.get_unsigned(offset, bits) as i64;
        if bits < 64 && v & (1i64 << (bits - 1)) != 0 {
            v |= -1i64 << bits;
        }
        v
    }

    /// Redis's `setUnsignedBitfield` (and `setSignedBitfield`, the same bits): the low `bits`
    /// bits of `value` from bit `offset` on.
    pub fn set(&mut self, mut offset: u64, bits: u32, value: u64) {
        for j in 0..bits {
            let on = value & (1u64 << (bits - 1 - j)) != 0;
            let i = offset >> 3;
            let mask = 1u8 << (7 - (offset & 7));
            let old = self.byte(i);
            let new = if on { old | mask } else { old & !mask };
            if new != old || self.patch.contains_key(&i) {
                self.patch.insert(i, new);
            }
            offset += 1;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set,
    Incrby,
}

struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    ow: Overflow,
}

/// Runs BITFIELD's operations in order over `ov`. Returns the replies (None: a FAIL overflow)
/// and how many writes Redis counts as changes (`grown`: the string was created or grown).
fn run_fields(ov: &mut Overlay, fields: &[Field], grown: bool) -> (Vec<Option<i64>>, u64) {
    let mut replies = Vec::with_capacity(fields.len());
    let mut changes = 0u64;
    for f in fields {
        if f.op == FieldOp::Get {
            replies.push(Some(if f.signed {
                ov.get_signed(f.offset, f.bits)
            } else {
                ov.get_unsigned(f.offset, f.bits) as i64
            }));
            continue;
        }
        let (overflow, reply, old, new) = if f.signed {
            let old = ov.get_signed(f.offset, f.bits);
            let (incr, base) = if f.op == FieldOp::Incrby {
                (f.value, old)
            } else {
                (0, f.value)
            };
            let (o, limit) = signed_overflow(base, incr, f.bits, f.ow);
            let new = if o != 0 {
                limit
            } else {
                Some(base.wrapping_add(incr))
            };
            let reply = if f.op == FieldOp::Incrby {
                new
            } else {
                Some(old)
            };
            (o, reply, old as u64, new.map(|n| n as u64))
        } else {
            let old = ov.get_unsigned(f.offset, f.bits);
            let (incr, base) = if f.op == FieldOp::Incrby {
                (f.value, old)
            } else {
                (0, f.value as u64)
            };
            let (o, limit) = unsigned_overflow(base, incr, f.bits, f.ow);
            let new = if o != 0 {
                limit
            } else {
                Some(base.wrapping_add(incr as u64))
            };
            let reply = if f.op == FieldOp::Incrby {
                new
            } else {
                Some(old)
            };
            (o, reply.map(|r| r as i64), old, new)
        };
        match new {
            Some(new) if !(overflow != 0 && f.ow == Overflow::Fail) => {
                replies.push(reply);
                ov.set(f.offset, f.bits, new);
                // Compared as Redis does: the full 64-bit values, before masking to `bits`.
                if grown || old != new {
                    changes += 1;
                }
            }
            _ => replies.push(None),
        }
    }
    (replies, changes)
}

pub fn bitfield(cx: &mut Ctx, args: &[Bytes]) {
    bitfield_generic(cx, args, false);
}

pub fn bitfield_ro(cx: &mut Ctx, args: &[Bytes]) {
    bitfield_generic(cx, args, true);
}

fn bitfield_generic(cx: &mut Ctx, args: &[Bytes], ro: bool) {
    let max_bulk = cx.srv.config.proto_max_bulk_len;
    let mut fields = Vec::new();
    let mut ow = Overflow::Wrap;
    let mut highest: Option<u64> = None;
    let mut j = 2;
    while j < args.len() {
        let rem = args.len() - j - 1;
        let sub = &args[j];
        let op = if is(sub, "get") && rem >= 2 {
            FieldOp::Get
        } else if is(sub, "set") && rem >= 3 {
            FieldOp::Set
        } else if is(sub, "incrby") && rem >= 3 {
            FieldOp::Incrby
        } else if is(sub, "overflow") && rem >= 1 {
            let t = &args[j + 1];
            ow = if is(t, "wrap") {
                Overflow::Wrap
            } else if is(t, "sat") {
                Overflow::Sat
            } else if is(t, "fail") {
                Overflow::Fail
            } else {
                return cx.err("ERR Invalid OVERFLOW type specified");
            };
            j += 2;
            continue;
        } else {
            return cx.syntax_err();
        };
        let Some((signed, bits)) = bitfield_type(&args[j + 1]) else {
            return cx.err(BITFIELD_TYPE_ERR);
        };
        let Some(offset) = bit_offset(&args[j + 2], Some(bits), max_bulk) else {
            return cx.err(BIT_OFFSET_ERR);
        };
        let mut value = 0;
        if op != FieldOp::Get {
            let last = offset + u64::from(bits) - 1;
            highest = Some(highest.map_or(last, |h| h.max(last)));
            match parse_i64(&args[j + 3]) {
                Some(v) => value = v,
                None => return cx.not_int(),
            }
        }
        fields.push(Field {
            op,
            signed,
            bits,
            offset,
            value,
            ow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    let db = cx.db();
    let Some(highest) = highest else {
        // Only GETs: a read.
        let replies = match cx.srv.ks.get_str(db, &args[1]) {
            Ok(s) => run_fields(&mut Overlay::new(s.map_or(&[][..], |s| s)), &fields, false).0,
            Err(WrongType) => return cx.wrongtype(),
        };
        return reply_fields(cx, &replies);
    };
    if ro {
        return cx.err("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let need = (highest >> 3) as usize + 1;
    let mut w = cx.srv.ks.write(db, &args[1]);
    let (replies, changes, grown, patch) = match w.get_str() {
        Err(WrongType) => {
            drop(w);
            return cx.wrongtype();
        }
        Ok(s) => {
            let base = s.map_or(&[][..], |s| s);
            let grown = s.is_none_or(|s| s.len() < need);
            let mut ov = Overlay::new(base);
            let (replies, changes) = run_fields(&mut ov, &fields, grown);
            (replies, changes, grown, ov.patch)
        }
    };
    if grown || changes > 0 {
        match w.str_bytes_mut(need) {
            Ok(bytes) => {
                for (i, b) in patch {
                    if let Some(slot) = usize::try_from(i).ok().and_then(|i| bytes.get_mut(i)) {
                        *slot = b;
                    }
                }
                // Redis adds one change per field written (none if every write failed).
                w.count_changes(changes);
            }
            Err(WrongType) => {
                drop(w);
                return cx.wrongtype();
            }
        }
    } else {
        w.str_mark_raw();
    }
    drop(w);
    reply_fields(cx, &replies);
}

fn reply_fields(cx: &mut Ctx, replies: &[Option<i64>]) {
    cx.array(replies.len());
    for r in replies {
        match r {
            Some(n) => cx.int(*n),
            None => cx.null(),
        }
    }
}

/// The LCS table of `a` and `b`: `dp[i * (b.len() + 1) + j]` is the length of the longest
/// common subsequence of `a[..i]` and `b[..j]` (Redis's vanilla dynamic programming).
fn lcs_table(a: &[u8], b: &[u8], dp: &mut [u32]) {
    let w = b.len() + 1;
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
}

pub fn lcs(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    // Both keys are looked up before either type is checked, as Redis does.
    let a = cx
        .srv
        .ks
        .get_str(db, &args[1])
        .map(|s| s.map(|s| Bytes::copy_from_slice(s)));
    let b = cx
        .srv
        .ks
        .get_str(db, &args[2])
        .map(|s| s.map(|s| Bytes::copy_from_slice(s)));
    let (Ok(a), Ok(b)) = (a, b) else {
        return cx.err("ERR The specified keys must contain string values");
    };
    let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
    let (mut getlen, mut getidx, mut withmatchlen, mut minmatchlen) = (false, false, false, 0i64);
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        let more = args.len() - 1 - j;
        if is(opt, "idx") {
            getidx = true;
        } else if is(opt, "len") {
            getlen = true;
        } else if is(opt, "withmatchlen") {
            withmatchlen = true;
        } else if is(opt, "minmatchlen") && more > 0 {
            match parse_i64(&args[j + 1]) {
                Some(n) => minmatchlen = n.max(0),
                None => return cx.not_int(),
            }
            j += 1;
        } else {
            return cx.syntax_err();
        }
        j += 1;
    }
    if getidx && getlen {
        return cx.err("ERR If you want both the length and indexes, please just use IDX.");
    }
    if a.len() as u64 >= u64::from(u32::MAX - 1) || b.len() as u64 >= u64::from(u32::MAX - 1) {
        return cx.err("ERR String too long for LCS");
    }
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    if cells.saturating_mul(4) > cx.srv.config.proto_max_bulk_len {
        return cx
            .err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    let mut dp: Vec<u32> = Vec::new();
    if dp.try_reserve_exact(cells as usize).is_err() {
        return cx.err("ERR Insufficient memory, failed allocating transient memory for LCS");
    }
    dp.resize(cells as usize, 0);
    lcs_table(&a, &b, &mut dp);
    let w = b.len() + 1;
    let at = |i: usize, j: usize| dp[i * w + j];
    let total = at(a.len(), b.len());
    if getlen {
        return cx.int(i64::from(total));
    }
    // Walk back from the end, building the LCS string backwards and, for IDX, the ranges of
    // contiguous matches (last first), exactly as Redis emits them.
    let mut result = vec![0u8; total as usize];
    let mut idx = total as usize;
    let mut matches = Vec::new();
    let alen = a.len();
    let (mut astart, mut aend, mut bstart, mut bend) = (alen, 0usize, 0usize, 0usize);
    let (mut i, mut jj) = (a.len(), b.len());
    while i > 0 && jj > 0 {
        let mut emit = false;
        if a[i - 1] == b[jj - 1] {
            result[idx - 1] = a[i - 1];
            if astart == alen {
                (astart, aend, bstart, bend) = (i - 1, i - 1, jj - 1, jj - 1);
            } else if astart == i && bstart == jj {
                astart -= 1;
                bstart -= 1;
            } else {
                emit = true;
            }
            if astart == 0 || bstart == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            jj -= 1;
        } else {
            if at(i - 1, jj) > at(i, jj - 1) {
                i -= 1;
            } else {
                jj -= 1;
            }
            if astart != alen {
                emit = true;
            }
        }
        if emit {
            let match_len = (aend as i64) - (astart as i64) + 1;
            if getidx && (minmatchlen == 0 || match_len >= minmatchlen) {
                let mut m = vec![
                    Frame::Array(vec![
                        Frame::Integer(astart as i64),
                        Frame::Integer(aend as i64),
                    ]),
                    Frame::Array(vec![
                        Frame::Integer(bstart as i64),
                        Frame::Integer(bend as i64),
                    ]),
                ];
                if withmatchlen {
                    m.push(Frame::Integer(match_len));
                }
                matches.push(Frame::Array(m));
            }
            astart = alen;
        }
    }
    if getidx {
        cx.frame(&Frame::Map(vec![
            (Frame::bulk("matches"), Frame::Array(matches)),
            (Frame::bulk("len"), Frame::Integer(i64::from(total))),
        ]));
    } else {
        cx.bulk(&result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_types() {
        let max = 512 << 20;
        assert_eq!(bit_offset(b"0", None, max), Some(0));
        assert_eq!(bit_offset(b"4294967295", None, max), Some(4294967295));
        assert_eq!(bit_offset(b"4294967296", None, max), None, "byte 512 MiB");
        assert_eq!(bit_offset(b"-1", None, max), None);
        assert_eq!(bit_offset(b"#3", None, max), None, "# only for BITFIELD");
        assert_eq!(bit_offset(b"#3", Some(8), max), Some(24));
        assert_eq!(bit_offset(b"#-1", Some(8), max), None);
        // 2^61 * 8 wraps to 0 in C's `loffset *= bits`, and 0 is a valid offset.
        assert_eq!(bit_offset(b"#2305843009213693952", Some(8), max), Some(0));
        assert_eq!(bitfield_type(b"i64"), Some((true, 64)));
        assert_eq!(bitfield_type(b"u63"), Some((false, 63)));
        assert_eq!(bitfield_type(b"u64"), None);
        assert_eq!(bitfield_type(b"i0"), None);
        assert_eq!(bitfield_type(b"I8"), None, "lower case only, as Redis");
        assert_eq!(
            bitfield_type(b"u8\0junk"),
            Some((false, 8)),
            "strlen stops at NUL"
        );
    }

    #[test]
    fn counting_and_finding_bits() {
        let p = [0b1010_0000u8, 0xff, 0x00, 0x01];
        assert_eq!(count_bits(&p, 0, 31), 11);
        assert_eq!(count_bits(&p, 1, 7), 1);
        assert_eq!(count_bits(&p, 2, 2), 1);
        assert_eq!(count_bits(&p, 8, 15), 8);
        assert_eq!(count_bits(&p, 9, 30), 7);
        assert_eq!(count_bits(&p, 31, 31), 1);
        let long: Vec<u8> = (0..100u8).collect();
        let want: u64 = long.iter().map(|b| u64::from(b.count_ones())).sum();
        assert_eq!(count_bits(&long, 0, 799), want);
        assert_eq!(find_bit(&p, 0, 31, true), Some(0));
        assert_eq!(find_bit(&p, 1, 31, true), Some(2));
        assert_eq!(find_bit(&p, 3, 31, true), Some(8));
        assert_eq!(find_bit(&p, 8, 31, false), Some(16));
        assert_eq!(find_bit(&p, 16, 30, true), None);
        assert_eq!(find_bit(&p, 16, 31, true), Some(31));
        assert_eq!(find_bit(&[0xff, 0xff], 0, 15, false), None);
    }

    #[test]
    fn unsigned_overflow_cases() {
        use Overflow::*;
        // u8: 250 + 10 overflows upwards.
        assert_eq!(unsigned_overflow(250, 10, 8, Wrap), (1, Some(4)));
        assert_eq!(unsigned_overflow(250, 10, 8, Sat), (1, Some(255)));
        assert_eq!(unsigned_overflow(250, 10, 8, Fail), (1, None));
        assert_eq!(unsigned_overflow(250, 5, 8, Wrap), (0, None));
        // Downwards.
        assert_eq!(unsigned_overflow(5, -10, 8, Wrap), (-1, Some(251)));
        assert_eq!(unsigned_overflow(5, -10, 8, Sat), (-1, Some(0)));
        assert_eq!(unsigned_overflow(5, -5, 8, Sat), (0, None));
        // SET of a value that does not fit (checked as value + 0): -1 is 2^64-1.
        assert_eq!(unsigned_overflow(u64::MAX, 0, 8, Wrap), (1, Some(255)));
        assert_eq!(unsigned_overflow(256, 0, 8, Sat), (1, Some(255)));
        // u63 at its limits.
        let max63 = (1u64 << 63) - 1;
        assert_eq!(unsigned_overflow(max63, 1, 63, Wrap), (1, Some(0)));
        assert_eq!(unsigned_overflow(max63, 0, 63, Sat), (0, None));
        assert_eq!(unsigned_overflow(0, i64::MIN, 63, Sat), (-1, Some(0)));
        // u1
        assert_eq!(unsigned_overflow(1, 1, 1, Wrap), (1, Some(0)));
    }

    #[test]
    fn signed_overflow_cases() {
        use Overflow::*;
        assert_eq!(signed_overflow(120, 10, 8, Wrap), (1, Some(-126)));
        assert_eq!(signed_overflow(120, 10, 8, Sat), (1, Some(127)));
        assert_eq!(signed_overflow(120, 10, 8, Fail), (1, None));
        assert_eq!(signed_overflow(-120, -10, 8, Wrap), (-1, Some(126)));
        assert_eq!(signed_overflow(-120, -10, 8, Sat), (-1, Some(-128)));
        assert_eq!(signed_overflow(-120, -8, 8, Sat), (0, None));
        assert_eq!(signed_overflow(200, 0, 8, Wrap), (1, Some(-56)));
        // i64 at its limits: no room to wrap into wider bits.
        assert_eq!(signed_overflow(i64::MAX, 1, 64, Wrap), (1, Some(i64::MIN)));
        assert_eq!(signed_overflow(i64::MAX, 1, 64, Sat), (1, Some(i64::MAX)));
        assert_eq!(signed_overflow(i64::MIN, -1, 64, Sat), (-1, Some(i64::MIN)));
        assert_eq!(
            signed_overflow(i64::MIN, -1, 64, Wrap),
            (-1, Some(i64::MAX))
        );
        assert_eq!(signed_overflow(-1, i64::MIN, 64, Sat), (-1, Some(i64::MIN)));
        assert_eq!(signed_overflow(-5, 10, 64, Sat), (0, None));
        // Redis's wrapping arithmetic: i64::MIN into i8 counts as an overflow *upwards*.
        assert_eq!(signed_overflow(i64::MIN, 0, 8, Sat), (1, Some(127)));
        // i1 holds -1 and 0.
        assert_eq!(signed_overflow(0, 1, 1, Wrap), (1, Some(-1)));
        assert_eq!(signed_overflow(-1, 1, 1, Wrap), (0, None));
    }

    #[test]
    fn overlay_reads_and_writes_fields() {
        let base = [0x12u8, 0x34];
        let mut ov = Overlay::new(&base);
        assert_eq!(ov.get_unsigned(0, 16), 0x1234);
        assert_eq!(ov.get_unsigned(4, 8), 0x23);
        assert_eq!(ov.get_unsigned(12, 8), 0x40, "past the end reads zeros");
        ov.set(4, 8, 0xff);
        assert_eq!(ov.get_unsigned(0, 16), 0x1ff4);
        assert_eq!(ov.get_signed(4, 8), -1);
        ov.set(60, 4, 0b1010);
        assert_eq!(ov.get_unsigned(56, 8), 0b0000_1010);
        assert_eq!(ov.patch.len(), 3, "only the bytes that changed");
        ov.set(0, 64, u64::MAX);
        assert_eq!(ov.get_signed(0, 64), -1);
    }
}
