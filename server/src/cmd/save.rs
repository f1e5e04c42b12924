//! Snapshot commands.
//!
//! ```text
//! SAVE                 write the RDB file now, in the foreground
//! BGSAVE [SCHEDULE] [FORK|FORKLESS]
//!                      a background save: a forked child writes the RDB file, or (FORKLESS,
//!                      as Valkey 9.2) a writer thread fed by the keyspace's walk
//! BGSAVE CANCEL        end the running save, or drop a scheduled save (as Valkey 8.1)
//! SNAPSHOT LATEST | HISTORY [count] | SAMPLES <id> | RESET | HELP
//!                      the copy-on-write timelines of the last saves (forkdb's own)
//! ```

use bytes::Bytes;

use forkdb_protocol::Frame;

use super::is;
use crate::config::SaveMethod;
use crate::server::Ctx;
use crate::timeline::{Sample, SaveRecord};

pub fn save(cx: &mut Ctx, _args: &[Bytes]) {
    if cx.srv.save_in_progress() {
        return cx.err("ERR Background save already in progress");
    }
    match cx.srv.save_sync() {
        Ok(()) => cx.ok(),
        Err(_) => cx.err("ERR"),
    }
}

pub fn bgsave(cx: &mut Ctx, args: &[Bytes]) {
    // SCHEDULE only matters while another kind of child runs (an AOF rewrite in Redis);
    // forkdb has one kind, so it is accepted and otherwise changes nothing. FORK and FORKLESS
    // (Valkey 9.2's words) choose the method; without one, `bgsave-default-method` does.
    let mut cancel = false;
    let mut method = None;
    for a in &args[1..] {
        if is(a, "schedule") {
        } else if is(a, "cancel") && args.len() == 2 {
            cancel = true;
        } else if is(a, "fork") && method.is_none() {
            method = Some(SaveMethod::Fork);
        } else if is(a, "forkless") && method.is_none() {
            method = Some(SaveMethod::Forkless);
        } else {
            return cx.syntax_err();
        }
    }
    let method = method.unwrap_or(cx.srv.config.bgsave_default_method);
    if cancel {
        return match cx.srv.bgsave_cancel() {
            Some(msg) => cx.simple(msg),
            None => cx.err("ERR Background saving is currently not in progress or scheduled"),
        };
    }
    if cx.srv.save_in_progress() {
        return cx.err("ERR Background save already in progress");
    }
    if cx.srv.in_exec {
        // Redis does not fork from inside EXEC: the save starts from the cron right after. A
        // forkless save waits too: started mid-transaction, its file would hold half of it.
        cx.srv.persist.bgsave_scheduled = true;
        cx.srv.persist.scheduled_method = Some(method);
        return cx.simple("Background saving scheduled");
    }
    match cx.srv.bgsave_start_with(method) {
        Ok(()) => cx.simple("Background saving started"),
        Err(e) => cx.err(&format!("ERR {e}")),
    }
}

fn field(name: &str, value: Frame) -> (Frame, Frame) {
    (Frame::bulk(name.to_string()), value)
}

fn int(n: u64) -> Frame {
    Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// One save as a map (a flat array in RESP2). What each figure is: see `timeline`'s docs.
fn summary(rec: &SaveRecord) -> Frame {
    let opt = |v: Option<u64>| v.map_or(Frame::Integer(-1), int);
    Frame::Map(vec![
        field("id", int(rec.id)),
        field("status", Frame::bulk(rec.status)),
        field("method", Frame::bulk(rec.method)),
        field("started_unix_ms", Frame::Integer(rec.started_unix_ms)),
        field("duration_ms", int(rec.duration_ms)),
        field("fork_usec", int(rec.fork_usec)),
        field("keys_total", int(rec.keys_total)),
        field("used_memory_at_fork", int(rec.used_memory_at_fork)),
        // The child's Private_Dirty: pages copied by either side, plus the child's own.
        field("peak_cow_bytes", int(rec.peak_cow())),
        field("peak_cow_pages", int(rec.peak_cow_pages())),
        field("page_size", int(forkdb_snapshot::procfs::page_size())),
        field(
            "peak_cow_perc_of_used_memory",
            Frame::bulk(format!("{:.2}", rec.peak_cow_perc_of_used_memory())),
        ),
        field("peak_total_bytes", int(rec.peak_total())),
        field("total_basis", Frame::bulk(rec.basis.name())),
        // Interpolated between samples; max_sample_gap_ms is their resolution.
        field("ms_to_half_peak", opt(rec.time_to_fraction(0.5))),
        field("ms_to_90pct_peak", opt(rec.time_to_fraction(0.9))),
        field("max_sample_gap_ms", int(rec.max_sample_gap_ms())),
        field("parent_minor_faults", int(rec.parent_minor_faults())),
        field("writes", int(rec.writes())),
        // Forkless saves: the queue's peak, keys the write path wrote early, time writes waited.
        field(
            "peak_queue_bytes",
            int(rec.samples.iter().map(|s| s.queue_bytes).max().unwrap_or(0)),
        ),
        field(
            "early_keys",
            int(rec.samples.last().map_or(0, |s| s.early_keys)),
        ),
        field(
            "stall_us",
            int(rec.samples.last().map_or(0, |s| s.stall_us)),
        ),
        field("samples", int(rec.samples.len() as u64)),
        // Why a failed save failed: the step, its errno and strerror text ("" and 0 otherwise).
        field("failed_step", Frame::bulk(rec.failed_step.unwrap_or(""))),
        field("errno", Frame::Integer(i64::from(rec.errno))),
        field("error", Frame::bulk(error_text(rec.errno))),
    ])
}

/// `strerror(errno)`, or "" for 0.
fn error_text(errno: i32) -> String {
    if errno == 0 {
        return String::new();
    }
    crate::persist::strerror(errno)
}

fn sample_frame(s: &Sample) -> Frame {
    Frame::Map(vec![
        field("ms", int(s.ms())),
        field("cow_bytes", int(s.cow_bytes)),
        field("parent_rss", int(s.parent_rss)),
        field("child_rss", int(s.child_rss)),
        field("parent_pss", int(s.parent_pss)),
        field("child_pss", int(s.child_pss)),
        field("parent_pss_anon", int(s.parent_pss_anon)),
        field("child_pss_anon", int(s.child_pss_anon)),
        field("total_bytes", int(s.total_bytes)),
        field("keys", int(s.keys)),
        field("minor_faults", int(s.minor_faults)),
        field("writes", int(s.writes)),
        field("at_child_exit", int(u64::from(s.at_child_exit))),
        field("queue_bytes", int(s.queue_bytes)),
        field("early_keys", int(s.early_keys)),
        field("stall_us", int(s.stall_us)),
    ])
}

pub fn snapshot_latest(cx: &mut Ctx, _args: &[Bytes]) {
    match cx.srv.timelines.latest().map(summary) {
        Some(f) => cx.frame(&f),
        None => cx.null(),
    }
}

pub fn snapshot_history(cx: &mut Ctx, args: &[Bytes]) {
    let count = match args.get(2) {
        None => crate::timeline::KEEP,
        Some(a) => match crate::util::parse_i64(a) {
            Some(n) if n >= 0 => n as usize,
            _ => return cx.err("ERR count should be a non-negative integer"),
        },
    };
    let items = cx
        .srv
        .timelines
        .history
        .iter()
        .rev()
        .take(count)
        .map(summary)
        .collect();
    cx.frame(&Frame::Array(items));
}

pub fn snapshot_samples(cx: &mut Ctx, args: &[Bytes]) {
    let Some(id) = crate::util::parse_i64(&args[2]).filter(|n| *n > 0) else {
        return cx.err("ERR save id should be a positive integer");
    };
    match cx.srv.timelines.find(id as u64) {
        Some(rec) => {
            let items = rec.samples.iter().map(sample_frame).collect();
            cx.frame(&Frame::Array(items));
        }
        None => cx.err(&format!(
            "ERR no save with id {id} in the history (SNAPSHOT HISTORY lists them)"
        )),
    }
}

pub fn snapshot_reset(cx: &mut Ctx, _args: &[Bytes]) {
    if cx.srv.save_in_progress() {
        return cx.err("ERR a save is running; reset its history after it ends");
    }
    cx.srv.timelines.reset();
    cx.ok();
}

pub fn snapshot_help(cx: &mut Ctx, _args: &[Bytes]) {
    super::conn::help_reply(
        cx,
        "SNAPSHOT",
        &[
            "LATEST",
            "    Summary of the running or last background save: duration, fork time, peak",
            "    copy-on-write (the child's Private_Dirty, in bytes, pages and percent of",
            "    used_memory at the fork), peak parent + child memory, time to half and to 90%",
            "    of the peak (interpolated; max_sample_gap_ms is their resolution), parent",
            "    minor faults and write commands from the fork to the child's exit; for a",
            "    failed save, the step that failed, its errno and error text.",
            "HISTORY [<count>]",
            "    Summaries of the last <count> saves (at most 16), newest first.",
            "SAMPLES <id>",
            "    The timeline of save <id>: ms since fork, child COW, parent and child RSS, PSS",
            "    and anonymous PSS, their total, keys processed, parent minor faults and writes",
            "    since the fork; the last sample is taken at the child's exit.",
            "RESET",
            "    Forget the recorded saves.",
        ],
    );
}
