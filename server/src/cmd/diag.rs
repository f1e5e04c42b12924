//! Redis's diagnostic commands: MONITOR, SLOWLOG, LATENCY and MEMORY. They map the recorders of
//! `crate::diag` (and the allocator's figures) to replies; nothing here records.
//!
//! ```text
//! MONITOR
//! SLOWLOG GET [count] | LEN | RESET | HELP
//! LATENCY LATEST | HISTORY event | RESET [event ...] | DOCTOR | GRAPH event
//!         | HISTOGRAM [command ...] | HELP
//! MEMORY USAGE key [SAMPLES count] | STATS | DOCTOR | MALLOC-STATS | PURGE | HELP
//! ```
//!
//! MEMORY USAGE cannot give Redis's figure: Redis adds jemalloc's size classes of its robj,
//! sds and dictEntry allocations. forkdb reports what it holds for the key: its table entry and
//! index slot ([`ENTRY_OVERHEAD`]), the key's own allocation if it is too long to be stored in
//! the entry ([`key_heap_bytes`]), and the value's heap bytes (`Value::heap_size`).

use bytes::Bytes;
use forkdb_protocol::Frame;

use super::conn::{help_reply, verbatim};
use super::{int_arg, is};
use crate::server::Ctx;
use crate::util::parse_i64;

/// A key's fixed cost: its place in the table's dense vector (key and entry) and its share of
/// the hash index (a 5-byte slot at the index's load of up to 7/8, rounded up to 8).
pub const ENTRY_OVERHEAD: usize =
    std::mem::size_of::<(crate::store::Key, crate::store::Entry)>() + 8;

/// The key's own heap allocation: none for a key stored in its entry (up to
/// [`crate::store::KEY_INLINE`] bytes), else its bytes and malloc's 16-byte chunk header.
pub fn key_heap_bytes(len: usize) -> usize {
    if len <= crate::store::KEY_INLINE {
        0
    } else {
        len + 16
    }
}

// ---- MONITOR ----

pub fn monitor(cx: &mut Ctx, _args: &[Bytes]) {
    // Redis: a client that is already a monitor (or a replica) is left as it is, no reply.
    if cx.client.meta.monitor.get() {
        return;
    }
    if cx.srv.in_exec {
        return cx.err("ERR MONITOR isn't allowed for DENY BLOCKING client");
    }
    cx.client.meta.monitor.set(true);
    cx.srv.diag.monitors.push(cx.client.meta.clone());
    cx.ok();
}

// ---- SLOWLOG ----

pub fn slowlog_get(cx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 3 {
        return cx.err(
            "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.",
        );
    }
    let mut count: usize = 10;
    if args.len() == 3 {
        // Redis's getRangeLongFromObjectOrReply with its own message for both failures.
        match parse_i64(&args[2]) {
            Some(-1) => count = usize::MAX,
            Some(n) if n >= 0 => count = n as usize,
            _ => return cx.err("ERR count should be greater than or equal to -1"),
        }
    }
    let entries: Vec<Frame> = cx
        .srv
        .diag
        .slowlog
        .iter()
        .take(count)
        .map(|e| {
            Frame::Array(vec![
                Frame::Integer(e.id as i64),
                Frame::Integer(e.time),
                Frame::Integer(e.usec as i64),
                Frame::Array(e.args.iter().cloned().map(Frame::Bulk).collect()),
                Frame::Bulk(Bytes::from(e.addr.clone())),
                Frame::Bulk(e.name.clone()),
            ])
        })
        .collect();
    cx.frame(&Frame::Array(entries));
}

pub fn slowlog_len(cx: &mut Ctx, _args: &[Bytes]) {
    cx.int(cx.srv.diag.slowlog.len() as i64);
}

pub fn slowlog_reset(cx: &mut Ctx, _args: &[Bytes]) {
    cx.srv.diag.slowlog.clear();
    cx.ok();
}

pub fn slowlog_help(cx: &mut Ctx, _args: &[Bytes]) {
    help_reply(
        cx,
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
}

// ---- LATENCY ----

pub fn latency_latest(cx: &mut Ctx, _args: &[Bytes]) {
    let rows: Vec<Frame> = cx
        .srv
        .diag
        .latency
        .iter()
        .map(|(name, ts)| {
            let last = ts.latest();
            Frame::Array(vec![
                Frame::Bulk(Bytes::from(name.clone())),
                Frame::Integer(last.time),
                Frame::Integer(last.ms as i64),
                Frame::Integer(ts.max as i64),
            ])
        })
        .collect();
    cx.frame(&Frame::Array(rows));
}

pub fn latency_history(cx: &mut Ctx, args: &[Bytes]) {
    let event = String::from_utf8_lossy(&args[2]);
    let rows: Vec<Frame> = match cx.srv.diag.latency.get(event.as_ref()) {
        Some(ts) => ts
            .ordered()
            .map(|s| Frame::Array(vec![Frame::Integer(s.time), Frame::Integer(s.ms as i64)]))
            .collect(),
        None => Vec::new(),
    };
    cx.frame(&Frame::Array(rows));
}

pub fn latency_reset(cx: &mut Ctx, args: &[Bytes]) {
    let latency = &mut cx.srv.diag.latency;
    let n = if args.len() == 2 {
        let n = latency.len();
        latency.clear();
        n
    } else {
        args[2..]
            .iter()
            .filter(|a| {
                latency
                    .remove(String::from_utf8_lossy(a).as_ref())
                    .is_some()
            })
            .count()
    };
    cx.int(n as i64);
}

/// Redis's `createLatencyReport`, its first part (the per-event figures); the advice is the
/// part of it that applies to forkdb.
pub fn latency_doctor(cx: &mut Ctx, _args: &[Bytes]) {
    let d = &cx.srv.diag;
    let cfg = &cx.srv.config;
    let mut r = String::new();
    if d.latency.is_empty() && cfg.latency_monitor_threshold == 0 {
        r.push_str("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n");
        return verbatim(cx, r);
    }
    if d.latency.is_empty() {
        r.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep tonight.\n");
        return verbatim(cx, r);
    }
    r.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
    let mut advise_fork = false;
    for (j, (name, ts)) in d.latency.iter().enumerate() {
        let samples: Vec<_> = ts.ordered().collect();
        let n = samples.len().max(1) as f64;
        let avg = samples.iter().map(|s| s.ms as f64).sum::<f64>() / n;
        let mad = samples
            .iter()
            .map(|s| (s.ms as f64 - avg).abs())
            .sum::<f64>()
            / n;
        let period = match (samples.first(), samples.last()) {
            (Some(a), Some(b)) if samples.len() > 1 => {
                (b.time - a.time) as f64 / (samples.len() - 1) as f64
            }
            _ => 1.0,
        };
        r.push_str(&format!(
            "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {}ms.\n",
            j + 1,
            name,
            samples.len(),
            avg as u64,
            mad as u64,
            period,
            ts.max
        ));
        advise_fork |= name == "fork";
    }
    r.push_str("\nI have a few advices for you:\n\n");
    if cfg.slowlog_log_slower_than < 0 {
        r.push_str("- The system slow log is disabled, and this is not a good idea. Please use 'CONFIG SET slowlog-log-slower-than 1000'.\n");
    } else if cfg.slowlog_log_slower_than as u64 / 1000 > cfg.latency_monitor_threshold {
        r.push_str("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than 1000'.\n");
    }
    r.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
    if advise_fork {
        r.push_str("- Fork latency grows with the data set size: the kernel copies the page tables of the process at fork time. Make sure transparent huge pages are disabled ('echo never > /sys/kernel/mm/transparent_hugepage/enabled'), and consider SNAPSHOT LATEST for what each save cost.\n");
    }
    verbatim(cx, r);
}

/// Redis's `latencyCommandGenSparkeline`: a header, a ruler and one column per sample (the
/// heights are scaled between the lowest and the highest sample, as Redis's sparkline does,
/// but drawn with `#` columns, 4 rows high).
pub fn latency_graph(cx: &mut Ctx, args: &[Bytes]) {
    let event = String::from_utf8_lossy(&args[2]).into_owned();
    let Some(ts) = cx.srv.diag.latency.get(&event) else {
        return cx.err(&format!("ERR No samples available for event '{event}'"));
    };
    let samples: Vec<_> = ts.ordered().collect();
    let high = samples.iter().map(|s| s.ms).max().unwrap_or(0);
    let low = samples.iter().map(|s| s.ms).min().unwrap_or(0);
    let mut g = format!(
        "{event} - high {high} ms, low {low} ms (all time high {} ms)\n",
        ts.max
    );
    g.push_str(&"-".repeat(80));
    g.push('\n');
    const ROWS: u64 = 4;
    let now = crate::util::now_ms() / 1000;
    let level = |ms: u64| {
        if high == low {
            1
        } else {
            1 + (ms - low) * (ROWS - 1) / (high - low)
        }
    };
    for row in (1..=ROWS).rev() {
        let line: String = samples
            .iter()
            .map(|s| {
                let l = level(s.ms);
                if l > row {
                    '|'
                } else if l == row {
                    if row == 1 {
                        '_'
                    } else {
                        '#'
                    }
                } else {
                    ' '
                }
            })
            .collect();
        g.push_str(&line);
        g.push('\n');
    }
    // Redis's labels under each column: how long ago, in s/m/h/d, written vertically.
    let labels: Vec<String> = samples
        .iter()
        .map(|s| {
            let ago = (now - s.time).max(0);
            if ago < 60 {
                format!("{ago}s")
            } else if ago < 3600 {
                format!("{}m", ago / 60)
            } else if ago < 86400 {
                format!("{}h", ago / 3600)
            } else {
                format!("{}d", ago / 86400)
            }
        })
        .collect();
    let height = labels.iter().map(String::len).max().unwrap_or(0);
    for row in 0..height {
        let line: String = labels
            .iter()
            .map(|l| l.as_bytes().get(row).map_or(' ', |&b| b as char))
            .collect();
        g.push_str(&line);
        g.push('\n');
    }
    verbatim(cx, g);
}

/// The cumulative distribution of one command's latencies (Redis's `fillCommandCDF`): buckets
/// by powers of 2 from 1024 ns, each the highest value in it in µs and the count up to it.
fn command_cdf(h: &hdrhistogram::Histogram<u64>) -> Frame {
    let mut buckets = Vec::new();
    let mut cumulative = 0u64;
    for v in h.iter_log(1024, 2.0) {
        let before = cumulative;
        cumulative += v.count_since_last_iteration();
        if cumulative > before {
            buckets.push((
                Frame::Integer((v.value_iterated_to() / 1000) as i64),
                Frame::Integer(cumulative as i64),
            ));
        }
    }
    Frame::Map(vec![
        (
            Frame::Bulk(Bytes::from_static(b"calls")),
            Frame::Integer(h.len() as i64),
        ),
        (
            Frame::Bulk(Bytes::from_static(b"histogram_usec")),
            Frame::Map(buckets),
        ),
    ])
}

pub fn latency_histogram(cx: &mut Ctx, args: &[Bytes]) {
    let hist = &cx.srv.diag.histograms;
    let mut names: Vec<&'static str> = if args.len() == 2 {
        hist.keys().copied().collect()
    } else {
        // Named commands that exist and have samples; a container names all its subcommands.
        let mut v = Vec::new();
        for a in &args[2..] {
            let lower = String::from_utf8_lossy(a).to_ascii_lowercase();
            v.extend(hist.keys().copied().filter(|n| {
                *n == lower || n.strip_prefix(&lower).is_some_and(|r| r.starts_with('|'))
            }));
        }
        v
    };
    names.sort_unstable();
    names.dedup();
    let rows: Vec<(Frame, Frame)> = names
        .into_iter()
        .filter_map(|n| {
            let h = hist.get(n)?;
            (!h.is_empty()).then(|| {
                (
                    Frame::Bulk(Bytes::from_static(n.as_bytes())),
                    command_cdf(h),
                )
            })
        })
        .collect();
    cx.frame(&Frame::Map(rows));
}

pub fn latency_help(cx: &mut Ctx, _args: &[Bytes]) {
    help_reply(
        cx,
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
}

// ---- MEMORY ----

pub fn memory_usage(cx: &mut Ctx, args: &[Bytes]) {
    let mut j = 3;
    while j < args.len() {
        if is(&args[j], "samples") && j + 1 < args.len() {
            let Some(n) = int_arg(cx, &args[j + 1]) else {
                return;
            };
            if n < 0 {
                return cx.syntax_err();
            }
            j += 2;
        } else {
            return cx.syntax_err();
        }
    }
    let db = cx.db();
    // A peek: MEMORY USAGE does not count as an access (Redis's LOOKUP_NOTOUCH).
    match cx.srv.ks.peek(db, &args[2]) {
        Some(e) => {
            let n = ENTRY_OVERHEAD + key_heap_bytes(args[2].len()) + e.value.heap_size();
            cx.int(n as i64);
        }
        None => cx.null(),
    }
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn int(n: u64) -> Frame {
    Frame::Integer(n as i64)
}

/// Redis's `getMemoryOverheadData` figures, from what forkdb knows.
struct Overhead {
    used: u64,
    peak: u64,
    startup: u64,
    clients: u64,
    /// Per non-empty db: (index, main table, expires table).
    dbs: Vec<(usize, u64, u64)>,
    total: u64,
    keys: u64,
    rss: u64,
}

fn overhead(cx: &Ctx) -> Overhead {
    use crate::alloc;
    let srv = &cx.srv;
    let used = alloc::used_memory() as u64;
    let peak = srv.peak_memory.get().max(used);
    let clients: u64 = srv.clients.values().map(|m| m.total_memory() as u64).sum();
    let slot = (std::mem::size_of::<crate::store::Entry>() + std::mem::size_of::<Bytes>()) as u64;
    let mut dbs = Vec::new();
    let mut keys = 0;
    for (i, db) in srv.ks.databases() {
        if !db.is_empty() {
            keys += db.len() as u64;
            dbs.push((i, db.len() as u64 * slot, db.expires_len() as u64 * 16));
        }
    }
    let total = srv.startup_memory + clients + dbs.iter().map(|(_, a, b)| a + b).sum::<u64>();
    Overhead {
        used,
        peak,
        startup: srv.startup_memory,
        clients,
        dbs,
        total,
        keys,
        rss: alloc::rss_bytes() as u64,
    }
}

/// MEMORY STATS: Redis 7.0's fields in its order. There is no jemalloc: the `allocator.*`
/// figures are the heap in use (allocated = active) and the process's resident size.
pub fn memory_stats(cx: &mut Ctx, _args: &[Bytes]) {
    let o = overhead(cx);
    let dataset = o.used.saturating_sub(o.total);
    let net = o.used.saturating_sub(o.startup);
    let mut m = vec![
        (bulk("peak.allocated"), int(o.peak)),
        (bulk("total.allocated"), int(o.used)),
        (bulk("startup.allocated"), int(o.startup)),
        (bulk("replication.backlog"), int(0)),
        (bulk("clients.slaves"), int(0)),
        (bulk("clients.normal"), int(o.clients)),
        (bulk("cluster.links"), int(0)),
        (bulk("aof.buffer"), int(0)),
        (bulk("lua.caches"), int(0)),
        (bulk("functions.caches"), int(0)),
    ];
    for (i, main, expires) in &o.dbs {
        m.push((
            bulk(&format!("db.{i}")),
            Frame::Map(vec![
                (bulk("overhead.hashtable.main"), int(*main)),
                (bulk("overhead.hashtable.expires"), int(*expires)),
            ]),
        ));
    }
    let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
    m.extend([
        (bulk("overhead.hashtable.slot-to-keys"), int(0)),
        (bulk("overhead.total"), int(o.total)),
        (bulk("keys.count"), int(o.keys)),
        (
            bulk("keys.bytes-per-key"),
            int(net.checked_div(o.keys).unwrap_or(0)),
        ),
        (bulk("dataset.bytes"), int(dataset)),
        (
            bulk("dataset.percentage"),
            Frame::Double(dataset as f64 * 100.0 / net.max(1) as f64),
        ),
        (
            bulk("peak.percentage"),
            Frame::Double(o.used as f64 * 100.0 / o.peak.max(1) as f64),
        ),
        (bulk("allocator.allocated"), int(o.used)),
        (bulk("allocator.active"), int(o.used)),
        (bulk("allocator.resident"), int(o.rss)),
        (bulk("allocator-fragmentation.ratio"), Frame::Double(1.0)),
        (bulk("allocator-fragmentation.bytes"), int(0)),
        (
            bulk("allocator-rss.ratio"),
            Frame::Double(ratio(o.rss, o.used)),
        ),
        (
            bulk("allocator-rss.bytes"),
            Frame::Integer(o.rss as i64 - o.used as i64),
        ),
        (bulk("rss-overhead.ratio"), Frame::Double(1.0)),
        (bulk("rss-overhead.bytes"), int(0)),
        (bulk("fragmentation"), Frame::Double(ratio(o.rss, o.used))),
        (
            bulk("fragmentation.bytes"),
            Frame::Integer(o.rss as i64 - o.used as i64),
        ),
    ]);
    cx.frame(&Frame::Map(m));
}

/// Redis's `getMemoryDoctorReport`, the conditions forkdb can see.
pub fn memory_doctor(cx: &mut Ctx, _args: &[Bytes]) {
    let o = overhead(cx);
    let mut r = String::new();
    if o.used < 5 << 20 {
        r.push_str("Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.");
        return verbatim(cx, r);
    }
    let peak = o.peak as f64 / o.used.max(1) as f64 > 1.5;
    let frag = o.rss as f64 / o.used.max(1) as f64 > 1.4 && o.rss - o.used > 10 << 20;
    let clients = !cx.srv.clients.is_empty() && o.clients / cx.srv.clients.len() as u64 > 200 << 10;
    if !(peak || frag || clients) {
        r.push_str("Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.");
        return verbatim(cx, r);
    }
    r.push_str("Sam, I detected a few issues in this Redis instance memory implants:\n\n");
    if peak {
        r.push_str(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
    }
    if frag {
        r.push_str(&format!(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"{}\".\n\n", crate::alloc::ALLOCATOR_NAME));
    }
    if clients {
        r.push_str(" * Big client buffers: The clients output buffers are in general very big, this may happen when some client issues commands that produce a lot of output, like KEYS * or LRANGE.\n\n");
    }
    r.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
    verbatim(cx, r);
}

/// glibc's `malloc_info` XML, which is what the allocator reports about itself.
pub fn memory_malloc_stats(cx: &mut Ctx, _args: &[Bytes]) {
    let text =
        malloc_info().unwrap_or_else(|| "Stats not supported for the current allocator".into());
    verbatim(cx, text);
}

fn malloc_info() -> Option<String> {
    // A memory stream: malloc_info writes XML to a FILE*.
    let mut buf: *mut libc::c_char = std::ptr::null_mut();
    let mut len: libc::size_t = 0;
    // SAFETY: open_memstream gives a FILE* that writes to a buffer it allocates; fclose
    // finalizes `buf`/`len`, which we copy out and then free as its documentation says.
    unsafe {
        let f = libc::open_memstream(&mut buf, &mut len);
        if f.is_null() {
            return None;
        }
        let rc = malloc_info_c(0, f);
        libc::fclose(f);
        if buf.is_null() {
            return None;
        }
        let text = std::slice::from_raw_parts(buf as *const u8, len).to_vec();
        libc::free(buf.cast());
        (rc == 0).then(|| String::from_utf8_lossy(&text).into_owned())
    }
}

extern "C" {
    #[link_name = "malloc_info"]
    fn malloc_info_c(options: libc::c_int, stream: *mut libc::FILE) -> libc::c_int;
}

pub fn memory_purge(cx: &mut Ctx, _args: &[Bytes]) {
    // Not while a snapshot child lives: trimming writes free chunks' headers, pages the
    // child's copy-on-write would then copy (see `alloc::trim_after_free`).
    #[cfg(target_env = "gnu")]
    if !cx.srv.child_active() {
        // SAFETY: malloc_trim only releases the allocator's own free memory; the server is
        // single-threaded, so no allocation runs concurrently.
        unsafe {
            libc::malloc_trim(0);
        }
    }
    cx.ok();
}

pub fn memory_help(cx: &mut Ctx, _args: &[Bytes]) {
    help_reply(
        cx,
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
}
