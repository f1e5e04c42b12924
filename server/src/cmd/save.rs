//! Snapshot commands.
//!
//! ```text
//! SAVE                 write the RDB file now, in the foreground
//! BGSAVE [SCHEDULE]    fork a child that writes the RDB file
//! BGSAVE CANCEL        kill the running child, or drop a scheduled save (as Valkey 8.1)
//! ```

use bytes::Bytes;

use super::is;
use crate::server::Ctx;

pub fn save(cx: &mut Ctx, _args: &[Bytes]) {
    if cx.srv.child_active() {
        return cx.err("ERR Background save already in progress");
    }
    match cx.srv.save_sync() {
        Ok(()) => cx.ok(),
        Err(_) => cx.err("ERR"),
    }
}

pub fn bgsave(cx: &mut Ctx, args: &[Bytes]) {
    // SCHEDULE only matters while another kind of child runs (an AOF rewrite in Redis);
    // forkdb has one kind, so it is accepted and otherwise changes nothing.
    let cancel = match args.len() {
        1 => false,
        2 if is(&args[1], "schedule") => false,
        2 if is(&args[1], "cancel") => true,
        _ => return cx.syntax_err(),
    };
    if cancel {
        return match cx.srv.bgsave_cancel() {
            Some(msg) => cx.simple(msg),
            None => cx.err("ERR Background saving is currently not in progress or scheduled"),
        };
    }
    if cx.srv.child_active() {
        return cx.err("ERR Background save already in progress");
    }
    if cx.srv.in_exec {
        // Redis does not fork from inside EXEC: the save starts from the cron right after.
        cx.srv.persist.bgsave_scheduled = true;
        return cx.simple("Background saving scheduled");
    }
    match cx.srv.bgsave_start() {
        Ok(()) => cx.simple("Background saving started"),
        Err(e) => cx.err(&format!("ERR {e}")),
    }
}
