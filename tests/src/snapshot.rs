//! Helpers for the tests of snapshot files: INFO fields, waiting for a save or a load, checking a
//! file with redis-check-rdb, and a dump of every key of every type to compare data sets (what
//! a server holds after loading a file, against what it should hold).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::resp::{encode_command, show};
use crate::server::{redis_check_rdb_bin, run_with_deadline};
use crate::{poll_until, Conn, Frame};

/// How long a save, a load or a check may take before a test gives up.
pub const WAIT: Duration = Duration::from_secs(30);

/// An INFO section as name → value.
pub type Info = BTreeMap<String, String>;

pub fn info(conn: &mut Conn, section: &str) -> Info {
    let text = conn
        .frame(&["INFO", section])
        .as_text()
        .unwrap_or_else(|| panic!("INFO {section} is not a bulk string"));
    text.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[track_caller]
pub fn field<'a>(info: &'a Info, name: &str) -> &'a str {
    info.get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no {name} in INFO: {info:?}"))
}

#[track_caller]
pub fn num(info: &Info, name: &str) -> u64 {
    let v = field(info, name);
    v.parse()
        .unwrap_or_else(|_| panic!("{name}:{v} is not a non-negative integer"))
}

/// Bulk strings of an array reply.
#[track_caller]
pub fn bulks(f: Frame) -> Vec<Vec<u8>> {
    match f {
        Frame::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Frame::Bulk(b) => b,
                other => panic!("not a bulk string: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// A simple or bulk string reply (or an integer) as text.
#[track_caller]
pub fn text(f: Frame) -> String {
    match f {
        Frame::Simple(s) => s,
        Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        Frame::Integer(n) => n.to_string(),
        other => panic!("not text: {other:?}"),
    }
}

/// The `temp-*.rdb` files in `dir`, sorted.
pub fn temp_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("temp-") && n.ends_with(".rdb"))
        .collect();
    names.sort();
    names
}

/// Polls INFO persistence until no save runs, and returns the section as it was then.
pub fn wait_save_done(conn: &mut Conn) -> Info {
    poll_until(WAIT, "rdb_bgsave_in_progress:0", || {
        let p = info(conn, "persistence");
        (field(&p, "rdb_bgsave_in_progress") == "0").then_some(p)
    })
}

/// Polls INFO persistence until the server has loaded its file.
pub fn wait_loaded(conn: &mut Conn) {
    poll_until(WAIT, "the load to finish", || {
        (field(&info(conn, "persistence"), "loading") == "0").then_some(())
    });
}

/// `redis-check-rdb FILE` must accept the file.
#[track_caller]
pub fn check_rdb(path: &Path) {
    let mut cmd = Command::new(redis_check_rdb_bin());
    cmd.arg(path);
    let out = run_with_deadline(cmd, None, WAIT);
    assert!(
        out.status.success(),
        "redis-check-rdb {} failed ({}):\n{}{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (db, key) → (type, encoding, content as lines, PEXPIRETIME).
pub type Dump = BTreeMap<(u32, Vec<u8>), (String, String, Vec<Vec<u8>>, i64)>;

/// Every key of the databases `dbs`, of any type: its type, encoding, content (sorted for a
/// hash or a set, whose order is not part of the value) and PEXPIRETIME.
pub fn dump(conn: &mut Conn, dbs: impl IntoIterator<Item = u32>) -> Dump {
    let mut out = Dump::new();
    for db in dbs {
        assert_eq!(text(conn.frame(&["SELECT", &db.to_string()])), "OK");
        for key in bulks(conn.frame(&["KEYS", "*"])) {
            let k = key.as_slice();
            let kind = text(conn.frame(&[b"TYPE".as_slice(), k]));
            let enc = text(conn.frame(&[b"OBJECT".as_slice(), b"ENCODING", k]));
            let mut content = match kind.as_str() {
                "string" => bulks(Frame::Array(vec![conn.frame(&[b"GET".as_slice(), k])])),
                "hash" => bulks(conn.frame(&[b"HGETALL".as_slice(), k]))
                    .chunks(2)
                    .map(|p| [p[0].as_slice(), b"=", p[1].as_slice()].concat())
                    .collect(),
                "set" => bulks(conn.frame(&[b"SMEMBERS".as_slice(), k])),
                "zset" => bulks(conn.frame(&[b"ZRANGE".as_slice(), k, b"0", b"-1", b"WITHSCORES"])),
                "list" => bulks(conn.frame(&[b"LRANGE".as_slice(), k, b"0", b"-1"])),
                other => panic!("unexpected type {other}"),
            };
            if kind == "hash" || kind == "set" {
                content.sort();
            }
            let at = match conn.frame(&[b"PEXPIRETIME".as_slice(), k]) {
                Frame::Integer(n) => n,
                other => panic!("PEXPIRETIME gave {other:?}"),
            };
            out.insert((db, key.clone()), (kind, enc, content, at));
        }
    }
    assert_eq!(text(conn.frame(&["SELECT", "0"])), "OK");
    out
}

/// The two dumps hold the same keys with the same type, encoding, content and TTL.
#[track_caller]
pub fn assert_same(what: &str, got: &Dump, want: &Dump) {
    let mut diffs = Vec::new();
    for (key, w) in want {
        match got.get(key) {
            None => diffs.push(format!("{key:?}: missing")),
            Some(g) if g != w => diffs.push(format!(
                "db{} {}: got {} {} ({} items, PEXPIRETIME {}), want {} {} ({} items, PEXPIRETIME {})",
                key.0,
                String::from_utf8_lossy(&key.1),
                g.0,
                g.1,
                g.2.len(),
                g.3,
                w.0,
                w.1,
                w.2.len(),
                w.3
            )),
            Some(_) => {}
        }
    }
    for key in got.keys().filter(|k| !want.contains_key(*k)) {
        diffs.push(format!("{key:?}: not expected"));
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// Writers that keep changing the data while saves run, each on its own connection until
/// [`PairWriters::stop`] (or a minute, so that a failed test does not leave them running).
/// Writer `t`'s step `n` sends, in one batch, `MSET w{t}:a n w{t}:b n` (a pair a snapshot must
/// hold whole or not at all: [`check_pairs`]), a `SET` of one of `keys` keys `k:{i}`, and, if
/// `delete` is set, a `DEL` of another of them; the replies are `+OK`, `+OK` and `:0` or `:1`.
pub struct PairWriters {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ops: std::sync::Arc<std::sync::atomic::AtomicU64>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

impl PairWriters {
    pub fn start(port: u16, writers: usize, keys: usize, delete: bool) -> PairWriters {
        use std::sync::atomic::Ordering::Relaxed;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ops = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads = (0..writers)
            .map(|t| {
                let (stop, ops) = (stop.clone(), ops.clone());
                std::thread::spawn(move || {
                    let mut c = Conn::connect(port).expect("writer connects");
                    let deadline = std::time::Instant::now() + Duration::from_secs(60);
                    let (a, b) = (format!("w{t}:a"), format!("w{t}:b"));
                    let mut n: u64 = 0;
                    while !stop.load(Relaxed) && std::time::Instant::now() < deadline {
                        n += 1;
                        let ns = n.to_string();
                        let mut batch = encode_command(&["MSET", &a, &ns, &b, &ns]);
                        let k = format!("k:{}", (n as usize * 7 + t * 331) % keys);
                        batch.extend(encode_command(&["SET", &k, &format!("w{t}-{n}")]));
                        if delete {
                            let gone = format!("k:{}", (n as usize * 13 + t * 97) % keys);
                            batch.extend(encode_command(&["DEL", &gone]));
                        }
                        c.send(&batch).expect("writer sends");
                        for _ in 0..2 {
                            let r = c.read_reply().expect("writer reads");
                            assert_eq!(r, b"+OK\r\n", "writer {t}: {}", show(&r));
                        }
                        if delete {
                            let r = c.read_reply().expect("writer reads");
                            assert!(r == b":0\r\n" || r == b":1\r\n", "writer {t}: {}", show(&r));
                        }
                        ops.fetch_add(1, Relaxed);
                    }
                    n
                })
            })
            .collect();
        let w = PairWriters { stop, ops, threads };
        poll_until(WAIT, "the writers to get going", || {
            (w.ops() >= 100).then_some(())
        });
        w
    }

    /// Steps done so far, all writers together.
    pub fn ops(&self) -> u64 {
        self.ops.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the writers and returns each one's count of steps.
    pub fn stop(self) -> Vec<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|w| w.join().expect("writer thread"))
            .collect()
    }
}

/// In save number `save`'s data (`get` reads a key's string value), each writer's MSET pair is
/// whole, and its count is no lower than in the save before (`last`, updated). Returns the sum
/// of the counts.
#[track_caller]
pub fn check_pairs(
    save: usize,
    last: &mut [u64],
    mut get: impl FnMut(&str) -> Option<Vec<u8>>,
) -> u64 {
    let mut sum = 0;
    for (t, last) in last.iter_mut().enumerate() {
        let a = get(&format!("w{t}:a"));
        let b = get(&format!("w{t}:b"));
        assert_eq!(
            a, b,
            "save {save}: only half of writer {t}'s MSET is in the file"
        );
        let n: u64 = a.map_or(0, |v| {
            String::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .expect("a writer's count")
        });
        assert!(
            n >= *last,
            "save {save}: writer {t} is at {n}, an earlier save had {last}"
        );
        *last = n;
        sum += n;
    }
    sum
}
