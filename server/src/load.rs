//! Loading the RDB file: at start-up while serving clients, and synchronously for DEBUG RELOAD.
//!
//! # Start-up load (Redis binds first, then loads, answering `-LOADING` meanwhile)
//!
//! ```text
//!  loader thread (short-lived)                 the server's thread (owns the keyspace)
//!  ---------------------------                 ---------------------------------------
//!  RdbReader::next_record ... ──batch──▶ bounded channel ──▶ apply each record, count,
//!  (pure data: the snapshot crate's                          update INFO's loading_* fields,
//!   decoder; key-load-delay sleeps here)                     yield to the event loop
//!  Done(summary | error) ──────────────▶                     join the thread, then loading:0
//! ```
//!
//! The loader thread only parses bytes into owned records; it never sees the keyspace, so the
//! one-thread-owns-the-keyspace rule (see the crate docs) holds. While it lives the server does
//! not fork: every command that could (BGSAVE, SAVE, FLUSHALL, ...) lacks Redis's `loading` flag
//! and gets `-LOADING`, save points and active expiry wait for the load, and SHUTDOWN does not
//! save. The thread is joined before `loading` goes back to 0, so whenever the server may fork
//! again it has exactly one thread. The channel is bounded, so a slow main thread makes the
//! reader wait instead of queueing the file in memory.
//!
//! A load error (corrupt file, a key found twice, a db out of range) ends start-up with a
//! message naming the file, the byte offset and the problem; the file is never written.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::{Duration, Instant};

use forkdb_snapshot::{self as snap, AuxField, LoadSummary, LoadedRecord, RdbError, RdbReader};
use tracing::{info, warn};

use crate::net::Shared;
use crate::server::Server;
use crate::store::{Keyspace, Value};
use crate::util::now_ms;

/// Records handed from the loader thread to the server's thread at most at a time: inserting
/// them keeps the event loop away for well under a millisecond.
const BATCH_RECORDS: usize = 1024;
/// A batch is handed over at least this often, so progress (and a slowed test load) shows.
const BATCH_MAX_AGE: Duration = Duration::from_millis(10);
/// Batches in flight between the threads.
const QUEUE_BATCHES: usize = 4;

/// INFO's `loading_*` fields (Redis's `startLoading` / `loadingAbsProgress`).
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadProgress {
    /// `loading_start_time`, unix seconds.
    pub start_time: i64,
    /// `loading_total_bytes`: the file's size.
    pub total_bytes: u64,
    /// `loading_rdb_used_mem`: the `used-mem` AUX field of the file, once read.
    pub rdb_used_mem: u64,
    /// `loading_loaded_bytes`: bytes of the file parsed and applied.
    pub loaded_bytes: u64,
}

/// Redis's `debugDelay`, used for `key-load-delay`: sleep `us` microseconds; a negative value
/// sleeps 1 µs once every `-us` calls on average (short sleeps cost a syscall each).
fn debug_delay(us: i64) {
    let us = if us < 0 {
        use rand::Rng;
        u64::from(rand::thread_rng().gen_range(0..us.unsigned_abs()) == 0)
    } else {
        us as u64
    };
    if us > 0 {
        std::thread::sleep(Duration::from_micros(us));
    }
}

/// Printable bytes for a log line (Redis prints keys with `%s`; a key may hold anything).
fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// The keyspace side of a load: checks and inserts each record and keeps the exact counts.
struct Applier {
    /// Keys whose expire time is before this are dropped, as Redis does when loading as a master.
    now_ms: i64,
    databases: u32,
    loaded: u64,
    expired: u64,
    /// The encoding thresholds a loaded container is converted by (the config's).
    thresholds: Thresholds,
}

impl Applier {
    fn new(databases: usize) -> Applier {
        Applier {
            now_ms: now_ms(),
            databases: databases as u32,
            loaded: 0,
            expired: 0,
            thresholds: Thresholds::default(),
        }
    }

    /// Inserts one record; an `Err` stops the load (`RdbError::Rejected` at the record's offset).
    fn apply(&mut self, ks: &mut Keyspace, rec: LoadedRecord) -> Result<(), RdbError> {
        let reject = |msg: String| RdbError::Rejected {
            offset: rec.offset,
            source: msg.into(),
        };
        if rec.db >= self.databases {
            return Err(reject(format!(
                "FATAL: Data file was created with a Redis server configured to handle more than {} databases. Exiting",
                self.databases
            )));
        }
        if rec.expire_ms.is_some_and(|e| e < self.now_ms) {
            self.expired += 1;
            return Ok(());
        }
        let db = rec.db as usize;
        if ks.holds(db, &rec.key) {
            // Redis logs this, then panics: a file with a key twice is not a file it wrote, and
            // which copy is right cannot be known.
            let key = printable(&rec.key);
            warn!("RDB has duplicated key '{key}' in DB {db}");
            return Err(reject(format!(
                "Duplicated key found in RDB file (key '{key}' in DB {db})"
            )));
        }
        let value = match container_value(rec.value, &self.thresholds) {
            Ok(v) => v,
            Err(why) => {
                return Err(reject(format!(
                    "{why} (key '{}' in DB {db})",
                    printable(&rec.key)
                )))
            }
        };
        ks.restore(db, &rec.key, value, rec.expire_ms.unwrap_or(-1));
        self.loaded += 1;
        Ok(())
    }
}

/// The encoding thresholds of the container types, from the config (Redis's loader converts a
/// value by the thresholds in force, not by the encoding the file had).
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub hash: crate::types::hash::Limits,
    pub set_max_intset: usize,
    pub zset: crate::types::zset::Limits,
    /// `list-max-listpack-size`: how full a list node gets when a list is built element by
    /// element (an old file's linked list or ziplist).
    pub list_fill: i64,
}

impl Thresholds {
    pub fn from_config(c: &crate::config::Config) -> Thresholds {
        Thresholds {
            hash: crate::types::hash::Limits::new(
                c.hash_max_listpack_entries,
                c.hash_max_listpack_value,
            ),
            set_max_intset: usize::try_from(c.set_max_intset_entries).unwrap_or(usize::MAX),
            zset: crate::types::zset::Limits {
                entries: usize::try_from(c.zset_max_listpack_entries).unwrap_or(usize::MAX),
                value: usize::try_from(c.zset_max_listpack_value).unwrap_or(usize::MAX),
            },
            list_fill: c.list_max_listpack_size,
        }
    }
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds::from_config(&crate::config::Config::default())
    }
}

/// A value read from an RDB file as the keyspace keeps it: compact blobs adopted as they are
/// (no re-encoding), expanded content built into the type, both converted by `t`. An `Err`
/// says why the value cannot be held (the reader has already refused what Redis refuses; this
/// catches what the server's types check on top).
pub(crate) fn container_value(v: snap::Value, t: &Thresholds) -> Result<Value, String> {
    use crate::types::list::LoadedNode;
    use crate::types::{Hash, List, Set, ZSet};
    use forkdb_snapshot::blob::Elem;
    use snap::value as sv;
    Ok(match v {
        snap::Value::String(data) => Value::string(&data),
        snap::Value::Hash(sv::Hash::Listpack(lp)) => {
            Value::Hash(Hash::from_listpack(lp, t.hash).map_err(|e| e.to_string())?)
        }
        snap::Value::Hash(sv::Hash::Pairs(pairs)) => Value::Hash(
            Hash::from_pairs(pairs.iter().map(|(f, v)| (&f[..], &v[..])), t.hash)
                .map_err(|e| e.to_string())?,
        ),
        snap::Value::Set(sv::Set::Intset(is)) => Value::Set(Set::from_intset(is, t.set_max_intset)),
        snap::Value::Set(sv::Set::Listpack(lp)) => {
            let members: Vec<Elem<'_>> = lp.iter().collect();
            Value::Set(
                Set::from_members(members.into_iter(), t.set_max_intset)
                    .map_err(|_| "duplicate set member".to_string())?,
            )
        }
        snap::Value::Set(sv::Set::Members(members)) => Value::Set(
            Set::from_members(members.iter().map(|m| Elem::Str(m)), t.set_max_intset)
                .map_err(|_| "duplicate set member".to_string())?,
        ),
        snap::Value::ZSet(sv::ZSet::Listpack(lp)) => {
            Value::ZSet(ZSet::from_listpack(lp, t.zset).map_err(str::to_string)?)
        }
        snap::Value::ZSet(sv::ZSet::Members(members)) => Value::ZSet(ZSet::from_pairs(
            members.into_iter().map(|(m, s)| (m.to_vec(), s)).collect(),
            t.zset,
        )),
        snap::Value::List(sv::List::Quicklist(nodes)) => {
            Value::List(List::from_nodes(nodes.into_iter().map(|n| match n {
                sv::ListNode::Packed(lp) => LoadedNode::Packed(lp),
                sv::ListNode::Plain(e) => LoadedNode::Plain(Box::from(&e[..])),
            })))
        }
        snap::Value::List(sv::List::Elements(elems)) => {
            Value::List(List::from_elems(elems.iter().map(|e| &e[..]), t.list_fill))
        }
    })
}

/// What the loader thread sends.
enum Msg {
    Batch {
        records: Vec<LoadedRecord>,
        /// Bytes of the file parsed once these records are in.
        offset: u64,
        /// AUX fields read since the previous batch (they come first in a file).
        aux: Vec<AuxField>,
    },
    Done(Result<LoadSummary, RdbError>),
}

/// An integer AUX value (Redis writes them as decimal text or integer-encoded strings).
fn aux_int(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Logs the AUX fields Redis logs when it meets them (`rdbLoadRioWithLoadingCtx`), and takes
/// `used-mem` for INFO's `loading_rdb_used_mem`.
fn note_aux(aux: &[AuxField], progress: &mut LoadProgress) {
    for f in aux {
        match &f.name[..] {
            b"redis-ver" => info!("Loading RDB produced by version {}", printable(&f.value)),
            b"ctime" => {
                if let Some(ctime) = aux_int(&f.value) {
                    let age = (now_ms() / 1000 - ctime).max(0);
                    info!("RDB age {age} seconds");
                }
            }
            b"used-mem" => {
                if let Some(used) = aux_int(&f.value) {
                    progress.rdb_used_mem = used.max(0) as u64;
                    info!(
                        "RDB memory usage when created {:.2} Mb",
                        used as f64 / (1024.0 * 1024.0)
                    );
                }
            }
            _ => {}
        }
    }
}

/// The loader thread: parse the file, hand over batches, then the summary or the error. Stops
/// early when the server's side hangs up (it refused a record).
fn loader_thread(file: File, key_load_delay: i64, tx: tokio::sync::mpsc::Sender<Msg>) {
    let result = (|| {
        let mut reader = RdbReader::new(BufReader::with_capacity(1 << 16, file))?;
        let mut batch = Vec::with_capacity(BATCH_RECORDS);
        let mut last_send = Instant::now();
        let mut sent_any = false;
        let mut aux_sent = 0;
        loop {
            let rec = reader.next_record()?;
            let end = rec.is_none();
            if let Some(rec) = rec {
                batch.push(rec);
            }
            // The first batch goes at once: it carries the AUX fields INFO shows.
            let first = !sent_any;
            if !batch.is_empty()
                && (end
                    || first
                    || batch.len() >= BATCH_RECORDS
                    || last_send.elapsed() >= BATCH_MAX_AGE)
            {
                let aux = reader.summary().aux.get(aux_sent..).unwrap_or_default();
                let msg = Msg::Batch {
                    records: std::mem::replace(&mut batch, Vec::with_capacity(BATCH_RECORDS)),
                    offset: reader.offset(),
                    aux: aux.to_vec(),
                };
                aux_sent += aux.len();
                if tx.blocking_send(msg).is_err() {
                    return Ok(None);
                }
                sent_any = true;
                last_send = Instant::now();
            }
            // Redis sleeps after each key it loads, expired or not.
            if !end && key_load_delay != 0 {
                debug_delay(key_load_delay);
            }
            if end {
                return Ok(Some(reader.into_summary()));
            }
        }
    })();
    let msg = match result {
        Ok(None) => return,
        Ok(Some(summary)) => Ok(summary),
        Err(e) => Err(e),
    };
    let _ = tx.blocking_send(Msg::Done(msg));
}

impl Server {
    /// Marks the start of a load (Redis's `startLoading`).
    fn start_loading(&mut self, total_bytes: u64) {
        self.persist.loading = true;
        self.persist.load_progress = LoadProgress {
            start_time: now_ms() / 1000,
            total_bytes,
            rdb_used_mem: 0,
            loaded_bytes: 0,
        };
        self.persist.last_load_keys_loaded = 0;
        self.persist.last_load_keys_expired = 0;
    }

    /// Ends a load: counts, function libraries and the log lines, or the error naming the file.
    fn finish_loading(
        &mut self,
        path: &Path,
        started: Instant,
        applier: &Applier,
        result: Result<LoadSummary, RdbError>,
    ) -> Result<(), String> {
        self.persist.loading = false;
        self.persist.last_load_keys_loaded = applier.loaded;
        self.persist.last_load_keys_expired = applier.expired;
        let summary = result
            .and_then(|summary| {
                check_functions(&summary)?;
                Ok(summary)
            })
            .map_err(|e| {
                format!(
                    "Bad file format reading the RDB file {}: {e}",
                    path.display()
                )
            })?;
        // Redis 7 keeps function libraries in the RDB file. forkdb cannot run them (no FUNCTION
        // or FCALL), but dropping them would lose data the user saved, silently, at the next
        // save; refusing the file would make a dump with a library useless. So they are kept as
        // the file has them and written back by every save, and each one is logged.
        self.persist.functions = summary.functions.iter().map(|f| f.code.clone()).collect();
        for lib in &summary.functions {
            if let Ok((engine, name)) = lib.metadata() {
                warn!(
                    "Function library '{}' (engine {}) found in the RDB file: forkdb keeps it and writes it back in every save, but cannot run it (no FUNCTION or FCALL)",
                    printable(name),
                    printable(engine)
                );
            }
        }
        self.ks.dirty = 0;
        info!(
            "Done loading RDB, keys loaded: {}, keys expired: {}.",
            applier.loaded, applier.expired
        );
        info!(
            keys = applier.loaded,
            expired = applier.expired,
            functions = summary.functions.len(),
            rdb_version = summary.version,
            "DB loaded from disk: {:.3} seconds",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Loads `dir/dbfilename` if it exists, in one go (DEBUG RELOAD). Errors name the file, the
    /// byte offset and the problem.
    pub fn load_rdb(&mut self) -> Result<(), String> {
        if self.persist.loading {
            return Err("LOADING Redis is loading the dataset in memory".into());
        }
        let path = self.config.rdb_path();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("Can't open the RDB file {}: {e}", path.display())),
        };
        let started = Instant::now();
        self.start_loading(file.metadata().map(|m| m.len()).unwrap_or(0));
        let mut applier = Applier::new(self.ks.db_count());
        applier.thresholds = Thresholds::from_config(&self.config);
        let delay = self.config.key_load_delay;
        let ks = &mut self.ks;
        let progress = &mut self.persist.load_progress;
        let result = (|| {
            let mut reader = RdbReader::new(BufReader::with_capacity(1 << 16, file))?;
            let mut aux_seen = 0;
            loop {
                let rec = reader.next_record()?;
                let aux = reader.summary().aux.get(aux_seen..).unwrap_or_default();
                note_aux(aux, progress);
                aux_seen += aux.len();
                let Some(rec) = rec else { break };
                applier.apply(ks, rec)?;
                if delay != 0 {
                    debug_delay(delay);
                }
            }
            Ok(reader.into_summary())
        })();
        self.finish_loading(&path, started, &applier, result)
    }
}

/// Redis refuses a file with a library it cannot parse or with one library twice
/// (`functionsCreateWithLibraryCtx`); so does forkdb, which would otherwise write it back.
fn check_functions(summary: &LoadSummary) -> Result<(), RdbError> {
    let mut names: Vec<&[u8]> = Vec::new();
    for lib in &summary.functions {
        let fail = |detail: String| RdbError::Corrupt {
            offset: lib.offset,
            detail: format!("Failed loading library, {detail}"),
        };
        let (_, name) = lib.metadata().map_err(|e| fail(e.to_string()))?;
        if names.contains(&name) {
            return Err(fail(format!(
                "Library '{}' already exists",
                printable(name)
            )));
        }
        names.push(name);
    }
    Ok(())
}

/// The start-up load: the file is parsed on a loader thread while this task, on the server's
/// thread, inserts its records batch by batch and lets connections be served in between (they
/// get `-LOADING`). Returns once the loader thread has been joined.
pub async fn load_at_startup(srv: Shared) -> Result<(), String> {
    let (path, delay, databases, thresholds) = {
        let s = srv.borrow();
        (
            s.config.rdb_path(),
            s.config.key_load_delay,
            s.ks.db_count(),
            Thresholds::from_config(&s.config),
        )
    };
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("Can't open the RDB file {}: {e}", path.display())),
    };
    let started = Instant::now();
    srv.borrow_mut()
        .start_loading(file.metadata().map(|m| m.len()).unwrap_or(0));
    let (tx, mut rx) = tokio::sync::mpsc::channel(QUEUE_BATCHES);
    let thread = std::thread::Builder::new()
        .name("rdb-loader".into())
        .spawn(move || loader_thread(file, delay, tx))
        .map_err(|e| format!("Can't start the RDB loader thread: {e}"))?;
    let mut applier = Applier::new(databases);
    applier.thresholds = thresholds;
    let mut aux_seen = 0;
    let result = loop {
        crate::idlepoll::next_wake_from_thread();
        match rx.recv().await {
            Some(Msg::Batch {
                records,
                offset,
                aux,
            }) => {
                let applied = {
                    let mut guard = srv.borrow_mut();
                    let s = &mut *guard;
                    // Loaded keys are not changes since the last save (INFO reads it meanwhile).
                    let dirty = s.ks.dirty;
                    let applied = records
                        .into_iter()
                        .try_for_each(|rec| applier.apply(&mut s.ks, rec));
                    s.ks.dirty = dirty;
                    s.persist.load_progress.loaded_bytes = offset;
                    s.persist.last_load_keys_loaded = applier.loaded;
                    s.persist.last_load_keys_expired = applier.expired;
                    note_aux(&aux, &mut s.persist.load_progress);
                    aux_seen += aux.len();
                    applied
                };
                if let Err(e) = applied {
                    break Err(e);
                }
                // The next batch may already be waiting: let the connections have a turn.
                crate::net::yield_to_loop().await;
            }
            Some(Msg::Done(result)) => break result,
            None => {
                break Err(RdbError::Io(std::io::Error::other(
                    "the RDB loader thread ended without a result",
                )))
            }
        }
    };
    // Hanging up stops a loader that is still reading (after a refused record); then it ends.
    drop(rx);
    if thread.join().is_err() {
        return Err(format!(
            "The RDB loader thread panicked reading {}",
            path.display()
        ));
    }
    if let Ok(summary) = &result {
        let mut s = srv.borrow_mut();
        // A file without keys sends no batch: its AUX fields are only in the summary.
        let rest = summary.aux.get(aux_seen..).unwrap_or_default();
        note_aux(rest, &mut s.persist.load_progress);
        s.persist.load_progress.loaded_bytes = summary.bytes_read;
    }
    srv.borrow_mut()
        .finish_loading(&path, started, &applier, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rec(db: u32, key: &str, expire_ms: Option<i64>, offset: u64) -> LoadedRecord {
        LoadedRecord {
            db,
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: snap::Value::from("v"),
            expire_ms,
            offset,
        }
    }

    #[test]
    fn counts_are_exact_and_a_duplicate_stops_the_load() {
        let mut ks = Keyspace::new(2);
        let mut a = Applier::new(2);
        a.apply(&mut ks, rec(0, "a", None, 10)).unwrap();
        a.apply(&mut ks, rec(1, "a", None, 20)).unwrap();
        a.apply(&mut ks, rec(0, "old", Some(1), 30)).unwrap();
        // An expired copy of a loaded key is dropped before the duplicate check, as in Redis.
        a.apply(&mut ks, rec(0, "a", Some(1), 40)).unwrap();
        assert_eq!((a.loaded, a.expired), (2, 2));
        let err = a.apply(&mut ks, rec(0, "a", None, 50)).unwrap_err();
        assert_eq!(err.offset(), Some(50));
        let text = err.to_string();
        assert!(
            text.contains("Duplicated key found in RDB file") && text.contains("'a' in DB 0"),
            "{text}"
        );
        assert_eq!((a.loaded, a.expired), (2, 2));
        assert_eq!(ks.total_keys(), 2);
    }

    #[test]
    fn containers_load_as_their_type() {
        let mut ks = Keyspace::new(1);
        let mut a = Applier::new(1);
        let mut r = rec(0, "mylist", None, 85);
        r.value = snap::Value::List(snap::List::Elements(vec![
            Bytes::from_static(b"x"),
            Bytes::from_static(b"y"),
        ]));
        a.apply(&mut ks, r).unwrap();
        let l = ks.get_list(0, b"mylist").unwrap().expect("the list");
        assert_eq!(l.len(), 2);
        assert_eq!(a.loaded, 1);
    }

    /// What the reader lets through but the type cannot hold stops the load, naming the key,
    /// the database and the record's offset.
    #[test]
    fn an_invalid_container_stops_the_load_naming_key_and_offset() {
        let mut ks = Keyspace::new(1);
        let mut a = Applier::new(1);
        let mut lp = forkdb_snapshot::blob::Listpack::new();
        for e in ["f", "v", "odd"] {
            lp.append(e.as_bytes()).unwrap();
        }
        let mut r = rec(0, "h", None, 85);
        r.value = snap::Value::Hash(snap::Hash::Listpack(lp));
        let err = a.apply(&mut ks, r).unwrap_err();
        assert_eq!(
            err.to_string(),
            "record at offset 85 rejected: hash listpack has an odd number of entries (3) (key 'h' in DB 0)"
        );
        assert!(!ks.holds(0, b"h"));
    }

    #[test]
    fn a_db_beyond_databases_stops_the_load() {
        let mut ks = Keyspace::new(2);
        let mut a = Applier::new(2);
        let err = a.apply(&mut ks, rec(2, "k", None, 7)).unwrap_err();
        assert_eq!(err.offset(), Some(7));
        assert!(err.to_string().contains("more than 2 databases"), "{err}");
    }

    #[test]
    fn libraries_need_a_name_and_may_not_repeat() {
        let lib = |code: &'static str, offset| snap::FunctionLib {
            code: Bytes::from_static(code.as_bytes()),
            offset,
        };
        let mut w = snap::RdbWriter::new(
            Vec::new(),
            snap::SaveOptions::default(),
            &snap::AuxFields::new("7.0.15"),
        )
        .unwrap();
        w.function(b"#!lua name=x\n").unwrap();
        let file = w.finish().unwrap();
        let mut summary =
            snap::load(&file[..], |_| Ok::<(), std::convert::Infallible>(())).unwrap();
        assert!(check_functions(&summary).is_ok());
        summary.functions.push(lib("#!lua name=x\nother", 99));
        let err = check_functions(&summary).unwrap_err();
        assert_eq!(err.offset(), Some(99));
        assert!(
            err.to_string().contains("Library 'x' already exists"),
            "{err}"
        );
        summary.functions = vec![lib("no shebang", 5)];
        assert!(check_functions(&summary)
            .unwrap_err()
            .to_string()
            .contains("Missing library metadata"));
    }
}
