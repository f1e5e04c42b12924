//! Filling the server with the data set: keys `key:<12-digit i>` for `i` in `0..keys`, each
//! with `value_size` incompressible bytes, pipelined over a few connections.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::resp::{key_name, push_set, Conn};
use crate::workload::ValuePool;

/// How the data set is written.
pub struct FillPlan {
    pub keys: u64,
    pub value_size: usize,
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
/// the first key has the right length (unless `refill`); otherwise `FLUSHALL` and fill.
pub fn ensure(addr: &str, plan: &FillPlan, pool: &Arc<ValuePool>) -> Result<FillOutcome> {
    let mut conn = Conn::connect(addr)?;
    let dbsize = conn.call_int(&[b"DBSIZE"])?;
    if !plan.refill && dbsize as u64 == plan.keys {
        let len = if plan.keys == 0 {
            0
        } else {
            conn.call_int(&[b"STRLEN", key_name(0).as_bytes()])?
        };
        if plan.keys == 0 || len as usize == plan.value_size {
            return Ok(FillOutcome {
                filled: false,
                fill_ms: 0,
            });
        }
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

fn fill(addr: &str, plan: &FillPlan, pool: &Arc<ValuePool>) -> Result<()> {
    let batch = plan.batch.min((8 << 20) / (plan.value_size + 64)).max(1) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let bar = ProgressBar::new(plan.keys).with_style(
        ProgressStyle::with_template(
            "filling {bar:40} {pos}/{len} keys  {binary_bytes_per_sec} eta {eta}",
        )
        .expect("valid template"),
    );
    let threads: Vec<_> = (0..plan.conns.max(1))
        .map(|_| {
            let mut conn = Conn::connect(addr)?;
            let next = next.clone();
            let pool = pool.clone();
            let bar = bar.clone();
            let keys = plan.keys;
            Ok(std::thread::spawn(move || -> Result<()> {
                let mut buf = Vec::new();
                loop {
                    if crate::interrupted() {
                        bail!("interrupted");
                    }
                    let from = next.fetch_add(batch, Ordering::Relaxed);
                    if from >= keys {
                        return Ok(());
                    }
                    let to = (from + batch).min(keys);
                    buf.clear();
                    for i in from..to {
                        push_set(&mut buf, i, pool.value(i));
                    }
                    conn.send(&buf)?;
                    let (errors, first) = conn.read_replies((to - from) as usize)?;
                    if errors > 0 {
                        bail!(
                            "{errors} SETs failed while filling: {}",
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
