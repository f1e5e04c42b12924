//! Sorted sets against a real redis-server, where the differential corpus is not enough: long
//! seeded workloads on the large encoding (thousands of members, so forkdb's chunked index
//! splits, merges and walks across chunks, and Redis's skiplist is the reference), and the
//! dirty counter (`rdb_changes_since_last_save`) that save points read.

use forkdb_tests::{Conn, Server};

/// A small deterministic generator (xorshift64*): the workload must be the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn rdb_changes(conn: &mut Conn) -> i64 {
    let text = conn
        .frame(&["INFO", "persistence"])
        .as_text()
        .expect("INFO is a bulk string");
    text.split("\r\n")
        .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
        .and_then(|v| v.parse().ok())
        .expect("rdb_changes_since_last_save in INFO")
}

/// One command of the workload, drawn from `rng`.
fn command(rng: &mut Rng, members: u64) -> Vec<String> {
    let m = |rng: &mut Rng| format!("m{}", rng.below(members));
    let score = |rng: &mut Rng| match rng.below(4) {
        0 => format!("{}", rng.below(50)),
        1 => format!("{}.{}", rng.below(50), rng.below(100)),
        2 => format!("-{}", rng.below(1000)),
        _ => format!("{}e{}", rng.below(9) + 1, rng.below(5)),
    };
    let idx = |rng: &mut Rng| format!("{}", rng.below(2 * members) as i64 - members as i64);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.below(16) {
        0..=4 => {
            let mut c = s(&["ZADD", "z"]);
            for _ in 0..=rng.below(20) {
                c.push(score(rng));
                c.push(m(rng));
            }
            c
        }
        5 => s(&["ZINCRBY", "z", &score(rng), &m(rng)]),
        6 => s(&["ZREM", "z", &m(rng), &m(rng), &m(rng)]),
        7 => s(&["ZRANK", "z", &m(rng)]),
        8 => s(&["ZREVRANK", "z", &m(rng)]),
        9 => s(&["ZRANGE", "z", &idx(rng), &idx(rng), "WITHSCORES"]),
        10 => s(&["ZREVRANGE", "z", &idx(rng), &idx(rng)]),
        11 => {
            let (a, b) = (rng.below(60), rng.below(60));
            let lo = format!("({}", a.min(b));
            let hi = format!("{}", a.max(b));
            s(&[
                "ZRANGEBYSCORE",
                "z",
                &lo,
                &hi,
                "WITHSCORES",
                "LIMIT",
                "2",
                "30",
            ])
        }
        12 => s(&["ZCOUNT", "z", &format!("{}", rng.below(60)), "+inf"]),
        13 => {
            let a = rng.below(members);
            s(&[
                "ZREMRANGEBYRANK",
                "z",
                &a.to_string(),
                &(a + rng.below(5)).to_string(),
            ])
        }
        14 => s(&["ZSCORE", "z", &m(rng)]),
        _ => s(&["ZPOPMAX", "z", &rng.below(3).to_string()]),
    }
}

/// A seeded mix of writes and reads on one large sorted set: every reply must be the bytes
/// redis-server gives, and the content must match at the end.
#[test]
fn large_encoding_workload_matches_redis() {
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let (mut r, mut f) = (redis.conn(), forkdb.conn());
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let members = 3000;
    for i in 0..6000 {
        let cmd = command(&mut rng, members);
        let (want, got) = (r.cmd(&cmd), f.cmd(&cmd));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "command {i}: {cmd:?}"
        );
    }
    assert_eq!(
        f.cmd(&["OBJECT", "ENCODING", "z"]),
        b"$8\r\nskiplist\r\n",
        "the workload must reach the large encoding"
    );
    let all = ["ZRANGE", "z", "0", "-1", "WITHSCORES"];
    assert_eq!(f.cmd(&all), r.cmd(&all));
}

/// Redis counts ZADD as the members added or updated, ZREM / ZREMRANGE* / ZPOP* as the members
/// removed, the store commands as one change (or one deletion, or nothing).
#[test]
fn dirty_counter_matches_redis() {
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let (mut r, mut f) = (redis.conn(), forkdb.conn());
    let cmds: &[&[&str]] = &[
        &["ZADD", "d", "1", "a", "2", "b", "3", "c"],
        &["ZADD", "d", "1", "a"],
        &["ZADD", "d", "CH", "5", "a", "6", "x"],
        &["ZADD", "d", "XX", "1", "nosuch"],
        &["ZINCRBY", "d", "0", "a"],
        &["ZINCRBY", "d", "1", "a"],
        &["ZREM", "d", "a", "b", "nosuch"],
        &["ZREM", "d", "nosuch"],
        &["ZADD", "d", "1", "a", "2", "b", "3", "y"],
        &["ZPOPMIN", "d", "2"],
        &["ZPOPMAX", "nosuch"],
        &["ZREMRANGEBYRANK", "d", "0", "0"],
        &["ZREMRANGEBYSCORE", "d", "100", "200"],
        &["ZADD", "d", "1", "a", "2", "b"],
        &["ZUNIONSTORE", "e", "1", "d"],
        &["ZRANGESTORE", "e", "d", "0", "-1"],
        &["ZRANGESTORE", "e", "d", "10", "20"],
        &["ZRANGESTORE", "e", "d", "10", "20"],
        &["ZINTERSTORE", "e", "2", "d", "nosuch"],
        &["ZMPOP", "1", "d", "MIN", "COUNT", "10"],
        &["ZADD", "d", "GT", "1", "a"],
        &["ZADD", "d", "3", "a"],
        &["ZADD", "d", "GT", "2", "a"],
    ];
    for cmd in cmds {
        let (r0, f0) = (rdb_changes(&mut r), rdb_changes(&mut f));
        assert_eq!(f.cmd(cmd), r.cmd(cmd), "{cmd:?}");
        let (rd, fd) = (rdb_changes(&mut r) - r0, rdb_changes(&mut f) - f0);
        assert_eq!(fd, rd, "changes counted for {cmd:?}");
    }
}
