//! DUMP and RESTORE (Redis 7.0's `dumpCommand`/`restoreCommand` in `cluster.c`).
//!
//! Owns only the commands: the payload format (RDB value + version + CRC) is the snapshot
//! crate's ([`forkdb_snapshot::DumpPayload`], [`forkdb_snapshot::decode_payload`]), the
//! conversion of a read value into the keyspace's types is the loader's
//! ([`crate::load::container_value`]), and RESTORE writes through the keyspace's write path.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use forkdb_snapshot::{decode_payload, DumpPayload, QuicklistNode};

use super::{int_arg, is};
use crate::load::{container_value, Thresholds};
use crate::server::Ctx;
use crate::store::Value;

/// The payload of one value, by reference as the RDB writer takes it.
fn payload(value: &Value, compression: bool) -> std::io::Result<Vec<u8>> {
    let p = DumpPayload::new(compression);
    let unreachable = || {
        std::io::Error::other(format!(
            "a {} value ({}) has no DUMP form",
            value.type_name(),
            value.encoding_name()
        ))
    };
    match value {
        Value::Str { data, .. } => p.string(data),
        Value::Hash(h) => match (h.as_listpack(), h.table_pairs()) {
            (Some(lp), _) => p.hash_listpack(lp),
            (None, Some(pairs)) => p.hash(pairs),
            (None, None) => Err(unreachable()),
        },
        Value::Set(s) => match (s.as_intset(), s.table_members()) {
            (Some(is), _) => p.set_intset(is),
            (None, Some(members)) => p.set(members),
            (None, None) => Err(unreachable()),
        },
        Value::ZSet(z) => match (z.as_listpack(), z.big_rdb()) {
            (Some(lp), _) => p.zset_listpack(lp),
            (None, Some(members)) => p.zset2(members),
            (None, None) => Err(unreachable()),
        },
        Value::List(l) => {
            use crate::types::list::NodeRef;
            p.list_quicklist2(l.nodes().map(|n| match n {
                NodeRef::Packed(lp) => QuicklistNode::Packed(lp),
                NodeRef::Plain(e) => QuicklistNode::Plain(e),
            }))
        }
    }
}

/// DUMP key: the serialized value, or a null reply for a missing key.
pub fn dump(cx: &mut Ctx, args: &[Bytes]) {
    let db = cx.db();
    let compression = cx.srv.config.rdbcompression;
    let out = match cx.srv.ks.get(db, &args[1]) {
        None => return cx.null(),
        Some(e) => payload(e.value, compression),
    };
    match out {
        Ok(bytes) => cx.bulk(&bytes),
        Err(e) => cx.err(&format!("ERR {e}")),
    }
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency],
/// with Redis's checks in Redis's order.
pub fn restore(cx: &mut Ctx, args: &[Bytes]) {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < args.len() {
        let more = j + 1 < args.len();
        if is(&args[j], "replace") {
            replace = true;
        } else if is(&args[j], "absttl") {
            absttl = true;
        } else if is(&args[j], "idletime") && more && freq.is_none() {
            let Some(n) = int_arg(cx, &args[j + 1]) else {
                return;
            };
            if n < 0 {
                return cx.err("ERR Invalid IDLETIME value, must be >= 0");
            }
            idle = Some(n);
            j += 1;
        } else if is(&args[j], "freq") && more && idle.is_none() {
            let Some(n) = int_arg(cx, &args[j + 1]) else {
                return;
            };
            if !(0..=255).contains(&n) {
                return cx.err("ERR Invalid FREQ value, must be >= 0 and <= 255");
            }
            freq = Some(n);
            j += 1;
        } else {
            return cx.syntax_err();
        }
        j += 1;
    }
    let db = cx.db();
    let key = &args[1];
    if !replace && cx.srv.ks.lookup_write(db, key).is_some() {
        return cx.err("BUSYKEY Target key name already exists.");
    }
    let Some(mut ttl) = int_arg(cx, &args[2]) else {
        return;
    };
    if ttl < 0 {
        return cx.err("ERR Invalid TTL value, must be >= 0");
    }
    let value = match decode_checked(&args[3]) {
        Ok(v) => v,
        Err(forkdb_snapshot::DumpError::Footer) => {
            return cx.err("ERR DUMP payload version or checksum are wrong")
        }
        Err(forkdb_snapshot::DumpError::Body(_)) => return cx.err("ERR Bad data format"),
    };
    let Ok(value) = container_value(value, &Thresholds::from_config(&cx.srv.config)) else {
        return cx.err("ERR Bad data format");
    };
    let now = crate::util::now_ms();
    if ttl != 0 && !absttl {
        ttl = ttl.saturating_add(now);
    }
    let mut w = cx.srv.ks.write(db, key);
    if replace {
        w.delete();
    }
    // Redis's checkAlreadyExpired: an expire time already past creates nothing (the key
    // REPLACE deleted stays deleted).
    if ttl == 0 || ttl > now {
        w.put(value, Some(if ttl == 0 { -1 } else { ttl }));
        w.set_access(
            idle.and_then(|n| u64::try_from(n).ok()),
            freq.and_then(|n| u8::try_from(n).ok()),
        );
    }
    drop(w);
    cx.ok();
}

/// DEBUG SET-SKIP-CHECKSUM-VALIDATION: Redis's `server.skip_checksum_validation`, a process
/// global that only that test knob sets (the suite restores payloads with a damaged CRC to
/// reach the value checks); the server has one thread, so `Relaxed`.
static SKIP_CHECKSUM: AtomicBool = AtomicBool::new(false);

pub fn set_skip_checksum_validation(on: bool) {
    SKIP_CHECKSUM.store(on, Ordering::Relaxed);
}

/// `decode_payload`, or with the checksum validation skipped (Redis's `verifyDumpPayload` then
/// checks the version only): the payload is copied with its CRC recomputed, so the value is
/// read and validated exactly as always. The copy is made only while the knob is on.
fn decode_checked(payload: &[u8]) -> Result<forkdb_snapshot::Value, forkdb_snapshot::DumpError> {
    if !SKIP_CHECKSUM.load(Ordering::Relaxed) || payload.len() < 10 {
        return decode_payload(payload);
    }
    let mut fixed = payload.to_vec();
    let body = fixed.len() - 8;
    let crc = forkdb_snapshot::crc64(&fixed[..body]);
    fixed[body..].copy_from_slice(&crc.to_le_bytes());
    decode_payload(&fixed)
}
