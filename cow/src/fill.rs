//! Filling the server with the data set: keys `key:<12-digit i>` for `i` in `0..keys`, each
//! a string of `value_size` incompressible bytes or a container of the data set's [`Shape`],
//! pipelined over a few connections.
//!
//! The work is cut into fill commands (one per string, one per [`crate::types::FILL_CHUNK`]
//! members of a container), handed out to the connections in batches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use forkdb_protocol::Frame;
use indicatif::{ProgressBar, ProgressStyle};

use crate::resp::{key_name, Conn};
use crate::types::{DataType, Shape};
use crate::workload::ValuePool;

/// How the data set is written.
pub struct FillPlan {
    pub keys: u64,
    /// What each key holds.
    pub shape: Shape,
    pub conns: usize,
    /// Commands per pipelined batch (capped so a batch stays under ~8 MiB).
    pub batch: usize,
    /// Refill even if the server already holds a data set of the right shape.
    pub refill: bool,
}

/// What [`ensure`] did.
pub struct FillOutcome {
    pub filled: bool,
    pub fill_ms: u64,
}

/// Makes the server hold exactly the data set: reuses it when `DBSIZE` equals the key count and
/// the first key has the right type and size (unless `refill`); otherwise `FLUSHALL` and fill.
pub fn ensure(addr: &str, plan: &FillPlan, pool: &Arc<ValuePool>) -> Result<FillOutcome> {
    let mut conn = Conn::connect(addr)?;
    let dbsize = conn.call_int(&[b"DBSIZE"])?;
    if !plan.refill
        && dbsize as u64 == plan.keys
        && (plan.keys == 0 || first_key_fits(&mut conn, &plan.shape)?)
    {
        return Ok(FillOutcome {
            filled: false,
            fill_ms: 0,
        });
    }
    let t = Instant::now();
    if dbsize > 0 {
        conn.call_ok(&[b"FLUSHALL"])?;
    }
    fill(addr, plan, pool)?;
    let now = conn.call_int(&[b"DBSIZE"])?;
    if now as u64 != plan.keys {
        bail!(
            "after filling {} keys the server reports DBSIZE {now}",
            plan.keys
        );
    }
    Ok(FillOutcome {
        filled: true,
        fill_ms: t.elapsed().as_millis() as u64,
    })
}

/// Whether key 0 has the shape's type and size: a string its length; a container its member
/// count, and a hash its first field's length too. (A set's members and a zset's scores change
/// under the writes, so only the count is checked.)
fn first_key_fits(conn: &mut Conn, shape: &Shape) -> Result<bool> {
    let key = key_name(0);
    let key = key.as_bytes();
    let ty = match conn.call_ok(&[b"TYPE", key])? {
        Frame::Simple(t) => t,
        other => bail!("TYPE: unexpected reply {other:?}"),
    };
    if ty != shape.ty.name() {
        return Ok(false);
    }
    let Some(card) = shape.card_command() else {
        return Ok(conn.call_int(&[b"STRLEN", key])? as usize == shape.value_size);
    };
    if conn.call_int(&[card, key])? as u64 != shape.members {
        return Ok(false);
    }
    if shape.ty == DataType::Hash {
        return Ok(conn.call_int(&[b"HSTRLEN", key, b"f0"])? as usize == shape.value_size);
    }
    Ok(true)
}

fn fill(addr: &str, plan: &FillPlan, pool: &Arc<ValuePool>) -> Result<()> {
    let shape = plan.shape;
    let chunks = shape.chunks_per_key();
    // Fill commands, each (key, chunk); a batch stays under ~8 MiB.
    let units = plan.keys * chunks;
    let batch = plan
        .batch
        .min((8 << 20) / shape.chunk_request_bytes())
        .max(1) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let bar = ProgressBar::new(units).with_style(
        ProgressStyle::with_template(if chunks == 1 {
            "filling {bar:40} {pos}/{len} keys  eta {eta}"
        } else {
            "filling {bar:40} {pos}/{len} commands  eta {eta}"
        })
        .expect("valid template"),
    );
    let threads: Vec<_> = (0..plan.conns.max(1))
        .map(|_| {
            let mut conn = Conn::connect(addr)?;
            let next = next.clone();
            let pool = pool.clone();
            let bar = bar.clone();
            Ok(std::thread::spawn(move || -> Result<()> {
                let mut buf = Vec::new();
                loop {
                    if crate::interrupted() {
                        bail!("interrupted");
                    }
                    let from = next.fetch_add(batch, Ordering::Relaxed);
                    if from >= units {
                        return Ok(());
                    }
                    let to = (from + batch).min(units);
                    buf.clear();
                    for u in from..to {
                        shape.push_fill(&mut buf, u / chunks, u % chunks, &pool);
                    }
                    conn.send(&buf)?;
                    let (errors, first) = conn.read_replies((to - from) as usize)?;
                    if errors > 0 {
                        bail!(
                            "{errors} fill commands failed: {}",
                            first.unwrap_or_default()
                        );
                    }
                    bar.inc(to - from);
                }
            }))
        })
        .collect::<Result<_>>()?;
    let mut result = Ok(());
    for t in threads {
        let r = t
            .join()
            .map_err(|_| anyhow::anyhow!("a fill thread panicked"))?;
        if result.is_ok() {
            result = r;
        }
    }
    bar.finish_and_clear();
    result.context("filling the data set")
}

/// Fills `addr` with the data set of `w` (see [`ensure`]): what `forkdb-cow fill` does.
pub fn fill_workload(addr: &str, w: &crate::run::Workload) -> Result<FillOutcome> {
    let pool = Arc::new(ValuePool::new(w.value_size, w.seed));
    ensure(
        addr,
        &FillPlan {
            keys: w.keys(),
            shape: w.shape(),
            conns: w.fill_conns,
            batch: w.fill_batch,
            refill: w.refill,
        },
        &pool,
    )
}
