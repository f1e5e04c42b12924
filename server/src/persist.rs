//! Persistence: loading the RDB file at start-up and writing it (SAVE, SHUTDOWN, FLUSHALL).
//!
//! The format and the file lifecycle live in the `forkdb-snapshot` crate; this module walks the
//! keyspace into it and keeps the state INFO's persistence section reports.

use std::fmt::Write as _;
use std::io;
use std::time::Instant;

use forkdb_snapshot::{self as snap, AuxFields, RdbWriter, SaveOptions};

use crate::server::Server;
use crate::store::{Keyspace, Value};
use crate::util::now_ms;

/// What INFO persistence reports about saves.
pub struct SaveState {
    pub last_save_ok: bool,
    pub rdb_saves: u64,
    pub last_bgsave_time_sec: i64,
    pub loading: bool,
    pub last_load_keys_loaded: u64,
    pub last_load_keys_expired: u64,
}

impl Default for SaveState {
    fn default() -> Self {
        SaveState {
            last_save_ok: true,
            rdb_saves: 0,
            last_bgsave_time_sec: -1,
            loading: false,
            last_load_keys_loaded: 0,
            last_load_keys_expired: 0,
        }
    }
}

/// Writes every database of `ks` as an RDB stream into `out`.
pub fn write_rdb<W: io::Write>(ks: &Keyspace, options: SaveOptions, used_mem: u64, out: W) -> io::Result<W> {
    let mut aux = AuxFields::new(crate::REDIS_VERSION);
    aux.used_mem = used_mem;
    let mut w = RdbWriter::new(out, options, &aux)?;
    for (i, db) in ks.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        w.select_db(i as u32, db.len() as u64, db.expires.len() as u64)?;
        for (key, entry) in &db.dict {
            let value = match &entry.value {
                Value::Str { data, .. } => snap::Value::String(data.clone()),
            };
            let expire = (entry.expire >= 0).then_some(entry.expire);
            w.record(key, &value, expire)?;
        }
    }
    w.finish()
}

impl Server {
    fn save_options(&self) -> SaveOptions {
        SaveOptions {
            compression: self.config.rdbcompression,
            checksum: self.config.rdbchecksum,
        }
    }

    /// SAVE: writes the RDB file in the foreground, blocking the server as Redis's SAVE does.
    pub fn save_sync(&mut self) -> io::Result<()> {
        let started = Instant::now();
        let tmp = snap::temp_file_name(std::process::id());
        let options = self.save_options();
        let used = crate::alloc::used_memory() as u64;
        let ks = &self.ks;
        let result = snap::save_atomically(&self.config.dir, self.config.dbfilename.as_ref(), tmp.as_ref(), |out| {
            write_rdb(ks, options, used, out).map(|_| ())
        });
        match &result {
            Ok(()) => {
                self.ks.dirty = 0;
                self.last_save_unix = now_ms() / 1000;
                self.persist.last_save_ok = true;
                self.persist.rdb_saves += 1;
                tracing::info!(ms = started.elapsed().as_millis() as u64, "DB saved on disk");
            }
            Err(e) => {
                self.persist.last_save_ok = false;
                tracing::warn!(cause = %e, "Failed saving the DB");
            }
        }
        result
    }

    /// Loads `dir/dbfilename` if it exists. Errors name the file, the byte offset and the problem.
    pub fn load_rdb(&mut self) -> Result<(), String> {
        let path = self.config.rdb_path();
        if !path.exists() {
            return Ok(());
        }
        let started = Instant::now();
        self.persist.loading = true;
        let now = now_ms();
        let databases = self.ks.dbs.len() as u32;
        let mut loaded = 0u64;
        let mut expired = 0u64;
        let ks = &mut self.ks;
        let result = snap::load_file(&path, |rec| {
            if rec.db >= databases {
                return Err(format!(
                    "FATAL: Data file was created with a Redis server configured to handle more than {databases} databases. Exiting"
                ));
            }
            if rec.expire_ms.is_some_and(|e| e <= now) {
                expired += 1;
                return Ok(());
            }
            let snap::Value::String(data) = rec.value;
            ks.set(rec.db as usize, &rec.key, Value::string(&data), rec.expire_ms.unwrap_or(-1));
            loaded += 1;
            Ok(())
        });
        self.persist.loading = false;
        let summary = result.map_err(|e| format!("Bad file format reading the RDB file {}: {e}", path.display()))?;
        self.ks.dirty = 0;
        self.persist.last_load_keys_loaded = loaded;
        self.persist.last_load_keys_expired = expired;
        tracing::info!(
            keys = loaded,
            expired,
            seconds = format!("{:.3}", started.elapsed().as_secs_f64()),
            rdb_version = summary.version,
            "DB loaded from disk"
        );
        Ok(())
    }

    /// Is a write refused now? (After a failed save with stop-writes-on-bgsave-error, as Redis.)
    pub fn deny_write_reason(&self) -> Option<String> {
        if self.config.stop_writes_on_bgsave_error && !self.persist.last_save_ok && !self.config.save.is_empty() {
            return Some("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.".into());
        }
        None
    }

    /// FLUSHALL saves an empty data set when save points are configured, as Redis does.
    pub fn after_flushall(&mut self) {
        if !self.config.save.is_empty() {
            let _ = self.save_sync();
        }
    }

    /// Decides whether SHUTDOWN may go ahead, saving first when asked or when save points exist.
    pub fn prepare_shutdown(&mut self, mode: crate::server::ShutdownMode, force: bool) -> Result<(), String> {
        use crate::server::ShutdownMode::*;
        let save = match mode {
            Save => true,
            NoSave => false,
            Default => !self.config.save.is_empty(),
        };
        if save {
            tracing::info!("Saving the final RDB snapshot before exiting.");
            if let Err(e) = self.save_sync() {
                if !force {
                    tracing::warn!(cause = %e, "Error trying to save the DB, can't exit.");
                    return Err(e.to_string());
                }
            }
        }
        Ok(())
    }

    /// DEBUG RELOAD: save, empty the keyspace, load the file back.
    pub fn debug_reload(&mut self) -> Result<(), String> {
        self.save_sync().map_err(|e| e.to_string())?;
        for db in 0..self.ks.dbs.len() {
            self.ks.flush_db(db);
        }
        self.load_rdb()
    }
}

/// The persistence fields of INFO.
pub fn info_fields(srv: &Server, s: &mut String) {
    let p = &srv.persist;
    let mut f = |k: &str, v: &dyn std::fmt::Display| {
        let _ = write!(s, "{k}:{v}\r\n");
    };
    f("loading", &u8::from(p.loading));
    f("async_loading", &0);
    f("current_cow_peak", &0);
    f("current_cow_size", &0);
    f("current_cow_size_age", &0);
    f("current_fork_perc", &"0.00");
    f("current_save_keys_processed", &0);
    f("current_save_keys_total", &0);
    f("rdb_changes_since_last_save", &srv.ks.dirty);
    f("rdb_bgsave_in_progress", &0);
    f("rdb_last_save_time", &srv.last_save_unix);
    f("rdb_last_bgsave_status", &if p.last_save_ok { "ok" } else { "err" });
    f("rdb_last_bgsave_time_sec", &p.last_bgsave_time_sec);
    f("rdb_current_bgsave_time_sec", &-1);
    f("rdb_saves", &p.rdb_saves);
    f("rdb_last_cow_size", &0);
    f("rdb_last_load_keys_expired", &p.last_load_keys_expired);
    f("rdb_last_load_keys_loaded", &p.last_load_keys_loaded);
    f("aof_enabled", &0);
    f("aof_rewrite_in_progress", &0);
    f("aof_rewrite_scheduled", &0);
    f("aof_last_rewrite_time_sec", &-1);
    f("aof_current_rewrite_time_sec", &-1);
    f("aof_last_bgrewrite_status", &"ok");
    f("aof_rewrites", &0);
    f("aof_last_write_status", &"ok");
    f("aof_last_cow_size", &0);
    f("module_fork_in_progress", &0);
    f("module_fork_last_cow_size", &0);
}

/// The fork-related fields of INFO stats.
pub fn stats_fields(_srv: &Server, s: &mut String) {
    let _ = write!(s, "latest_fork_usec:0\r\ntotal_forks:0\r\n");
}

impl Server {
    /// The persistence part of the cron: save points.
    pub fn cron_persistence(&mut self) {}
}

/// Start-up warnings Redis gives about the kernel settings a fork-based save depends on.
pub fn startup_checks(_cfg: &crate::config::Config) {}
