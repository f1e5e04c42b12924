//! Redis's own diagnostics, the recorders: the MONITOR feed, the slow log, the latency monitor
//! and the per-command latency histograms (INFO `latencystats`, LATENCY HISTOGRAM).
//!
//! This module owns [`Diag`] (a field of the server) and is fed from one place, [`after_call`],
//! which command dispatch calls once each command ran, and from the fork (`record_event("fork",
//! ..)` in persist). The commands that read it are in `cmd/diag.rs`. Each recorder is off
//! cheaply: no monitor, no slow log entry under the threshold, no latency event with the monitor
//! off costs one comparison per command.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;

use crate::client::{Client, ClientMeta};
use crate::server::Server;
use crate::table::{self, CommandSpec};

/// Samples kept per latency event (Redis's `LATENCY_TS_LEN`).
pub const LATENCY_TS_LEN: usize = 160;
/// Arguments kept in a slow log entry (`SLOWLOG_ENTRY_MAX_ARGC`) and bytes per argument
/// (`SLOWLOG_ENTRY_MAX_STRING`).
const SLOWLOG_MAX_ARGC: usize = 32;
const SLOWLOG_MAX_STRING: usize = 128;

/// The histograms' range, Redis's `LATENCY_HISTOGRAM_{MIN,MAX}_VALUE` (in ns) with 2 significant
/// digits (`LATENCY_HISTOGRAM_PRECISION`).
const HIST_MIN_NS: u64 = 1_000;
const HIST_MAX_NS: u64 = 1_000_000_000;
const HIST_PRECISION: u8 = 2;

/// One slow log entry.
pub struct SlowEntry {
    pub id: u64,
    pub time: i64,
    pub usec: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: Bytes,
}

/// One latency sample: unix seconds and milliseconds.
#[derive(Clone, Copy, Default)]
pub struct Sample {
    pub time: i64,
    pub ms: u64,
}

/// A latency event's ring of samples (Redis's `latencyTimeSeries`).
pub struct Series {
    pub idx: usize,
    pub max: u64,
    pub samples: [Sample; LATENCY_TS_LEN],
}

impl Series {
    /// The samples in time order, oldest first (empty slots left out).
    pub fn ordered(&self) -> impl Iterator<Item = Sample> + '_ {
        (0..LATENCY_TS_LEN)
            .map(move |j| self.samples[(self.idx + j) % LATENCY_TS_LEN])
            .filter(|s| s.time != 0)
    }

    pub fn latest(&self) -> Sample {
        self.samples[(self.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN]
    }
}

#[derive(Default)]
pub struct Diag {
    /// Clients in MONITOR mode. A connection that ended is dropped at the next feed (the
    /// registry held the other reference).
    pub monitors: Vec<Rc<ClientMeta>>,
    /// Newest first, as Redis keeps it.
    pub slowlog: VecDeque<SlowEntry>,
    pub slowlog_next_id: u64,
    pub latency: BTreeMap<String, Box<Series>>,
    /// Per command (full name), latencies in ns.
    pub histograms: HashMap<&'static str, Histogram<u64>>,
}

impl Diag {
    /// Redis's `latencyAddSample`: one sample per second per event, the highest of that second.
    pub fn add_latency_sample(&mut self, event: &str, ms: u64, now: i64) {
        let ts = match self.latency.get_mut(event) {
            Some(ts) => ts,
            None => self.latency.entry(event.to_string()).or_insert_with(|| {
                Box::new(Series {
                    idx: 0,
                    max: 0,
                    samples: [Sample::default(); LATENCY_TS_LEN],
                })
            }),
        };
        ts.max = ts.max.max(ms);
        let prev = (ts.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN;
        if ts.samples[prev].time == now {
            ts.samples[prev].ms = ts.samples[prev].ms.max(ms);
            return;
        }
        ts.samples[ts.idx] = Sample { time: now, ms };
        ts.idx = (ts.idx + 1) % LATENCY_TS_LEN;
    }
}

fn unix_secs() -> i64 {
    crate::util::now_ms() / 1000
}

/// Redis's `latencyAddSampleIfNeeded`: recorded when the monitor is on and `ms` reaches its
/// threshold. Used for `fork` (persist) and the cron's events.
pub fn record_event(srv: &mut Server, event: &str, ms: u64) {
    let threshold = srv.config.latency_monitor_threshold;
    if threshold > 0 && ms >= threshold {
        srv.diag.add_latency_sample(event, ms, unix_secs());
    }
}

/// What a command's arguments look like in MONITOR and SLOWLOG: AUTH's and HELLO's secrets are
/// replaced by "(redacted)", as Redis 7.0's `redactClientCommandArgument`.
fn redacted(spec: &CommandSpec, args: &[Bytes]) -> Option<Vec<Bytes>> {
    const R: Bytes = Bytes::from_static(b"(redacted)");
    match spec.name {
        "auth" => {
            let mut v = args.to_vec();
            for a in v.iter_mut().skip(1) {
                *a = R;
            }
            Some(v)
        }
        "hello" => {
            let mut v = args.to_vec();
            let mut j = 2;
            while j < v.len() {
                if v[j].eq_ignore_ascii_case(b"auth") && j + 2 < v.len() {
                    v[j + 1] = R;
                    v[j + 2] = R;
                    j += 3;
                } else {
                    j += 1;
                }
            }
            Some(v)
        }
        _ => None,
    }
}

/// Redis's `sdscatrepr`: a quoted string with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b` escaped
/// and other unprintable bytes as `\xHH`.
pub fn cat_repr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' | b'"' => {
                out.push(b'\\');
                out.push(b);
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// Called once a command ran (Redis's `call`, after the command): feeds the monitors, the slow
/// log, the latency monitor and the command's histogram. `db` is the client's database after
/// the command (SELECT shows the new one, as in Redis).
pub fn after_call(
    srv: &mut Server,
    client: &Client,
    spec: &'static CommandSpec,
    args: &[Bytes],
    usec: u64,
    out: &mut BytesMut,
) {
    if !srv.diag.monitors.is_empty() && spec.flags & (table::SKIP_MONITOR | table::ADMIN) == 0 {
        feed_monitors(srv, client, spec, args, out);
    }
    let slower = srv.config.slowlog_log_slower_than;
    if slower >= 0 && usec >= slower as u64 && !spec.has(table::SKIP_SLOWLOG) {
        push_slowlog(srv, client, spec, args, usec);
    }
    let threshold = srv.config.latency_monitor_threshold;
    if threshold > 0 && usec / 1000 >= threshold {
        let event = if spec.has(table::FAST) {
            "fast-command"
        } else {
            "command"
        };
        srv.diag.add_latency_sample(event, usec / 1000, unix_secs());
    }
    if srv.config.latency_tracking {
        let h = srv.diag.histograms.entry(spec.name).or_insert_with(|| {
            Histogram::new_with_bounds(HIST_MIN_NS, HIST_MAX_NS, HIST_PRECISION)
                .expect("constant histogram bounds are valid")
        });
        h.saturating_record((usec * 1000).clamp(HIST_MIN_NS, HIST_MAX_NS));
    }
}

/// A monitor's own commands' lines go into its reply (`out`), after the reply, as in Redis
/// where both land in the same output buffer.
fn feed_monitors(
    srv: &mut Server,
    client: &Client,
    spec: &CommandSpec,
    args: &[Bytes],
    out: &mut BytesMut,
) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut line = format!(
        "+{}.{:06} [{} {}] ",
        now.as_secs(),
        now.subsec_micros(),
        client.db,
        client.meta.addr
    )
    .into_bytes();
    let shown = redacted(spec, args);
    let args = shown.as_deref().unwrap_or(args);
    for (j, a) in args.iter().enumerate() {
        if j > 0 {
            line.push(b' ');
        }
        cat_repr(&mut line, a);
    }
    line.extend_from_slice(b"\r\n");
    // The registry holds the other reference of a live connection.
    srv.diag
        .monitors
        .retain(|m| m.monitor.get() && Rc::strong_count(m) > 1);
    for m in &srv.diag.monitors {
        if m.id == client.meta.id {
            out.extend_from_slice(&line);
            continue;
        }
        let mut feed = m.feed.borrow_mut();
        feed.extend_from_slice(&line);
        m.obuf_pending.set(m.obuf_pending.get().max(feed.len()));
        m.feed_ready.notify_one();
    }
}

/// Redis's `slowlogCreateEntry`: at most 32 arguments (the last saying how many more there
/// were), each at most 128 bytes (saying how many more bytes there were).
fn push_slowlog(srv: &mut Server, client: &Client, spec: &CommandSpec, args: &[Bytes], usec: u64) {
    let shown = redacted(spec, args);
    let args = shown.as_deref().unwrap_or(args);
    let keep = args.len().min(SLOWLOG_MAX_ARGC);
    let mut kept = Vec::with_capacity(keep);
    for (j, a) in args.iter().take(keep).enumerate() {
        if keep != args.len() && j == keep - 1 {
            let more = args.len() - keep + 1;
            kept.push(Bytes::from(format!("... ({more} more arguments)")));
        } else if a.len() > SLOWLOG_MAX_STRING {
            let mut s = a[..SLOWLOG_MAX_STRING].to_vec();
            s.extend_from_slice(
                format!("... ({} more bytes)", a.len() - SLOWLOG_MAX_STRING).as_bytes(),
            );
            kept.push(Bytes::from(s));
        } else {
            // Copied: the argument may be a slice of the shared read buffer.
            kept.push(Bytes::copy_from_slice(a));
        }
    }
    let d = &mut srv.diag;
    let id = d.slowlog_next_id;
    d.slowlog_next_id += 1;
    d.slowlog.push_front(SlowEntry {
        id,
        time: unix_secs(),
        usec,
        args: kept,
        addr: client.meta.addr.clone(),
        name: client.meta.name.borrow().clone().unwrap_or_default(),
    });
    let max = srv.config.slowlog_max_len as usize;
    while d.slowlog.len() > max {
        d.slowlog.pop_back();
    }
}

/// C's `%g` for the percentiles Redis prints (`50`, `99.9`, `99.99`).
pub fn fmt_g(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// INFO `latencystats`: `latency_percentiles_usec_<cmd>:p50=...,p99=...` for each command with
/// samples, values in µs with 3 decimals as Redis prints them.
pub fn render_latencystats(srv: &Server, s: &mut String) {
    use std::fmt::Write as _;
    let mut names: Vec<&&str> = srv.diag.histograms.keys().collect();
    names.sort();
    for name in names {
        let h = &srv.diag.histograms[*name];
        if h.is_empty() {
            continue;
        }
        let _ = write!(s, "latency_percentiles_usec_{name}:");
        for (j, p) in srv
            .config
            .latency_tracking_info_percentiles
            .iter()
            .enumerate()
        {
            if j > 0 {
                s.push(',');
            }
            let v = h.value_at_percentile(*p) as f64 / 1000.0;
            let _ = write!(s, "p{}={v:.3}", fmt_g(*p));
        }
        s.push_str("\r\n");
    }
}

/// Empties the MONITOR feed of a monitor client into `out` (the connection task writes it).
pub fn take_feed(meta: &ClientMeta) -> BytesMut {
    std::mem::take(&mut *meta.feed.borrow_mut())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_escapes_as_sdscatrepr() {
        let mut out = Vec::new();
        cat_repr(&mut out, b"a b\"c\n\x01\xc3\xa9\\");
        assert_eq!(out, b"\"a b\\\"c\\n\\x01\\xc3\\xa9\\\\\"");
    }

    #[test]
    fn one_latency_sample_per_second_the_highest() {
        let mut d = Diag::default();
        d.add_latency_sample("fork", 5, 100);
        d.add_latency_sample("fork", 9, 100);
        d.add_latency_sample("fork", 3, 100);
        d.add_latency_sample("fork", 2, 101);
        let ts = &d.latency["fork"];
        let got: Vec<(i64, u64)> = ts.ordered().map(|s| (s.time, s.ms)).collect();
        assert_eq!(got, vec![(100, 9), (101, 2)]);
        assert_eq!(ts.max, 9);
        for t in 0..200 {
            d.add_latency_sample("fork", 1, 1000 + t);
        }
        assert_eq!(d.latency["fork"].ordered().count(), LATENCY_TS_LEN);
        assert_eq!(d.latency["fork"].latest().time, 1199);
    }

    #[test]
    fn percentiles_print_as_c_g() {
        assert_eq!(fmt_g(50.0), "50");
        assert_eq!(fmt_g(99.9), "99.9");
    }
}
