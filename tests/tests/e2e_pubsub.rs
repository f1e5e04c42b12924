//! Pub/Sub against real Redis peers: the replies and messages of SUBSCRIBE / PSUBSCRIBE /
//! SSUBSCRIBE / PUBLISH byte for byte beside a redis-server 7.0 (RESP2 and RESP3 pushes, the
//! subscribed-mode error, PUBSUB NUMSUB/NUMPAT/CHANNELS), CLIENT LIST and INFO, PUBLISH
//! propagated between forkdb and a redis-server replica both ways, the `pubsub` output buffer
//! limit, and Redis Sentinel watching a forkdb master and failing it over.

use std::time::Duration;

use forkdb_tests::forkdb_target;
use forkdb_tests::server::{Kind, TempDir};
use forkdb_tests::{poll_until, resp, Conn, Frame, Server};

const WAIT: Duration = Duration::from_secs(30);

/// Runs `script` against `port` and returns every byte each connection received, in order:
/// each step is (connection index, command, replies to read on that connection).
fn transcript(port: u16, script: &[(usize, &[&str], usize)]) -> Vec<String> {
    let mut conns: Vec<Conn> = (0..3)
        .map(|_| Conn::connect(port).expect("connect"))
        .collect();
    for c in &conns {
        c.set_read_timeout(Duration::from_secs(10));
    }
    let mut out = Vec::new();
    for (i, args, replies) in script {
        let conn = &mut conns[*i];
        conn.send_cmd(args).expect("send");
        if args[0] == "HELLO" {
            // Its reply has the connection's id, which differs.
            conn.read_reply().expect("reply");
            continue;
        }
        let mut got = Vec::new();
        for _ in 0..*replies {
            got.extend(conn.read_reply().expect("reply"));
        }
        out.push(format!("[{i}] {} -> {}", args.join(" "), resp::show(&got)));
    }
    out
}

fn assert_same_transcript(script: &[(usize, &[&str], usize)]) {
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let want = transcript(redis.port, script);
    let got = transcript(forkdb.port, script);
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(g, w, "forkdb (left) and redis-server (right) differ");
    }
}

/// Replies, messages (channel subscribers first, then patterns), the subscribed-mode error and
/// PING's reply in it, UNSUBSCRIBE of everything, PUBSUB's counts, RESET.
#[test]
fn subscribe_publish_unsubscribe_match_redis() {
    assert_same_transcript(&[
        (0, &["UNSUBSCRIBE"], 1),
        (0, &["PUNSUBSCRIBE"], 1),
        (0, &["SUBSCRIBE", "news", "news"], 2),
        (0, &["PSUBSCRIBE", "n*"], 1),
        (0, &["SSUBSCRIBE", "shard"], 1),
        (0, &["GET", "k"], 1),
        (0, &["CLIENT", "INFO"], 1),
        (0, &["PING"], 1),
        (0, &["PING", "hi"], 1),
        (1, &["PSUBSCRIBE", "*ws", "x*"], 2),
        (2, &["PUBSUB", "NUMSUB", "news", "none"], 1),
        (2, &["PUBSUB", "NUMPAT"], 1),
        (2, &["PUBSUB", "CHANNELS", "n*"], 1),
        (2, &["PUBSUB", "SHARDCHANNELS"], 1),
        (2, &["PUBSUB", "SHARDNUMSUB", "shard"], 1),
        (2, &["PUBLISH", "news", "hello"], 1),
        // Connection 0: the channel's message, then the pattern's.
        (0, &["PING"], 3),
        (1, &["PING"], 2),
        (2, &["SPUBLISH", "shard", "sharded"], 1),
        (2, &["PUBLISH", "nothing-here", "x"], 1),
        (0, &["PING"], 2),
        (0, &["SUNSUBSCRIBE"], 1),
        (0, &["UNSUBSCRIBE", "news"], 1),
        (0, &["PUNSUBSCRIBE"], 1),
        (0, &["GET", "k"], 1),
        (1, &["RESET"], 1),
        (2, &["PUBSUB", "NUMPAT"], 1),
        (2, &["PUBLISH", "news", "gone"], 1),
    ]);
}

/// RESP3: pushes (`>`), no restriction on commands, a subscriber's own message before
/// PUBLISH's reply, and PUBSUB NUMSUB as a map.
#[test]
fn resp3_pushes_match_redis() {
    assert_same_transcript(&[
        (0, &["HELLO", "3"], 1),
        (0, &["SUBSCRIBE", "c1"], 1),
        (0, &["GET", "k"], 1),
        (0, &["PING"], 1),
        (0, &["PUBLISH", "c1", "self"], 2),
        (1, &["PUBLISH", "c1", "other"], 1),
        (0, &["PING"], 2),
        (0, &["PSUBSCRIBE", "c*"], 1),
        (0, &["PUBSUB", "NUMSUB", "c1"], 1),
        (0, &["UNSUBSCRIBE"], 1),
        (0, &["PUNSUBSCRIBE"], 1),
        (0, &["SUNSUBSCRIBE"], 1),
    ]);
}

fn info_field(conn: &mut Conn, section: &str, field: &str) -> Option<String> {
    let Frame::Bulk(info) = conn.frame(&["INFO", section]) else {
        return None;
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_string())
}

/// CLIENT LIST's `sub=` / `psub=` / `ssub=` and flag `P`, CLIENT LIST/KILL TYPE pubsub, and
/// INFO's `pubsub_channels` / `pubsub_patterns` / `pubsubshard_channels`, as redis-server.
#[test]
fn client_list_and_info_show_subscriptions() {
    for server in [Server::redis(&[]), Server::forkdb(&[])] {
        let tag = server.kind.name();
        let mut sub = server.conn();
        let mut admin = server.conn();
        sub.cmd(&["CLIENT", "SETNAME", "sub"]);
        sub.send_cmd(&["SUBSCRIBE", "a", "b"]).unwrap();
        sub.read_reply().unwrap();
        sub.read_reply().unwrap();
        sub.cmd(&["PSUBSCRIBE", "p*"]);
        sub.cmd(&["SSUBSCRIBE", "s"]);
        let Frame::Bulk(list) = admin.frame(&["CLIENT", "LIST", "TYPE", "pubsub"]) else {
            panic!("{tag}: CLIENT LIST is a bulk string");
        };
        let list = String::from_utf8_lossy(&list).into_owned();
        assert_eq!(list.lines().count(), 1, "{tag}: {list}");
        for field in ["name=sub ", " flags=P ", " sub=2 psub=1 ssub=1 "] {
            assert!(list.contains(field), "{tag}: {field:?} in {list}");
        }
        let Frame::Bulk(normal) = admin.frame(&["CLIENT", "LIST", "TYPE", "normal"]) else {
            panic!("{tag}: CLIENT LIST is a bulk string");
        };
        assert!(
            !String::from_utf8_lossy(&normal).contains("name=sub "),
            "{tag}"
        );
        for (field, want) in [
            ("pubsub_channels", "2"),
            ("pubsub_patterns", "1"),
            ("pubsubshard_channels", "1"),
        ] {
            assert_eq!(
                info_field(&mut admin, "stats", field).as_deref(),
                Some(want),
                "{tag}: {field}"
            );
        }
        assert_eq!(
            admin.frame(&["CLIENT", "KILL", "TYPE", "pubsub"]),
            Frame::Integer(1),
            "{tag}"
        );
        assert!(sub.wait_closed(WAIT).is_some(), "{tag}: subscriber closed");
        poll_until(WAIT, "the subscriptions of a killed client to go", || {
            (info_field(&mut admin, "stats", "pubsub_channels").as_deref() == Some("0"))
                .then_some(())
        });
        assert_eq!(
            admin.frame(&["PUBSUB", "NUMPAT"]),
            Frame::Integer(0),
            "{tag}"
        );
    }
}

/// Reads frames on a subscriber until one is the message `payload` on `channel`.
fn wait_message(conn: &mut Conn, channel: &str, payload: &str) {
    let want = Frame::Array(vec![
        Frame::Bulk(b"message".to_vec()),
        Frame::Bulk(channel.as_bytes().to_vec()),
        Frame::Bulk(payload.as_bytes().to_vec()),
    ]);
    conn.set_read_timeout(WAIT);
    loop {
        let f = conn.read_frame().expect("a message before the timeout");
        if f == want {
            return;
        }
    }
}

fn wait_link_up(replica: &mut Conn) {
    poll_until(WAIT, "master_link_status:up", || {
        (info_field(replica, "replication", "master_link_status").as_deref() == Some("up"))
            .then_some(())
    });
}

/// PUBLISH on a forkdb master reaches the subscribers of its redis-server replica, and PUBLISH
/// on a redis-server master reaches the subscribers of a forkdb replica (Redis propagates
/// PUBLISH to replicas).
#[test]
fn publish_is_propagated_to_replicas() {
    for (master_kind, replica_kind) in [
        (forkdb_target(), Kind::Redis),
        (Kind::Redis, forkdb_target()),
    ] {
        let master = Server::start(master_kind, &[]);
        let port = master.port.to_string();
        let replica = Server::start(replica_kind, &["--replicaof", "127.0.0.1", &port]);
        let mut r = replica.conn();
        wait_link_up(&mut r);
        let mut sub = replica.conn();
        sub.cmd(&["SUBSCRIBE", "events"]);
        let mut m = master.conn();
        m.cmd(&["SELECT", "2"]);
        assert_eq!(m.frame(&["PUBLISH", "events", "e1"]), Frame::Integer(0));
        wait_message(&mut sub, "events", "e1");
    }
}

/// A subscriber that reads nothing is closed at the `pubsub` class's hard limit, as in Redis,
/// while the publisher goes on. Bounded: at most 32 MiB published.
#[test]
fn a_subscriber_that_does_not_read_is_closed_at_its_output_buffer_limit() {
    for server in [Server::redis(&[]), Server::forkdb(&[])] {
        let tag = server.kind.name();
        let mut admin = server.conn();
        admin.assert_cmd(
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 1mb 0 0",
            ],
            b"+OK\r\n",
        );
        let mut sub = server.conn();
        sub.cmd(&["SUBSCRIBE", "flood"]);
        let payload = "x".repeat(64 * 1024);
        let mut published = 0usize;
        loop {
            let n = admin.frame(&["PUBLISH", "flood", &payload]);
            if n == Frame::Integer(0) {
                break;
            }
            published += payload.len();
            assert!(
                published < 32 << 20,
                "{tag}: still subscribed after 32 MiB unread"
            );
        }
        assert!(
            published > 1 << 20,
            "{tag}: closed after only {published} bytes"
        );
        assert!(
            sub.wait_closed(WAIT).is_some(),
            "{tag}: the subscriber's connection"
        );
        assert_eq!(admin.frame(&["PUBSUB", "NUMSUB", "flood"]).encode(), {
            let f = Frame::Array(vec![Frame::Bulk(b"flood".to_vec()), Frame::Integer(0)]);
            f.encode()
        });
    }
}

/// A field of a SENTINEL MASTER / REPLICAS entry (a flat array of names and values).
fn field(entry: &Frame, name: &str) -> Option<String> {
    let Frame::Array(items) = entry else {
        return None;
    };
    items.chunks(2).find_map(|kv| match kv {
        [Frame::Bulk(k), Frame::Bulk(v)] if k == name.as_bytes() => {
            Some(String::from_utf8_lossy(v).into_owned())
        }
        _ => None,
    })
}

/// A field of INFO replication on a new connection, or None if Sentinel's CLIENT KILL TYPE
/// normal closed it meanwhile.
fn replication_field(server: &Server, field: &str) -> Option<String> {
    let mut conn = Conn::connect(server.port).ok()?;
    conn.send_cmd(&["INFO", "replication"]).ok()?;
    let raw = conn.read_reply().ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_string())
}

/// Starts a Sentinel (`redis-server <conf> --sentinel`) watching `master_port`; its conf file
/// is in `dir` (Sentinel rewrites it).
fn sentinel(dir: &TempDir, n: usize, master_port: u16) -> Server {
    let conf = dir.path().join(format!("sentinel{n}.conf"));
    std::fs::write(
        &conf,
        format!(
            "sentinel monitor m 127.0.0.1 {master_port} 1\n\
             sentinel down-after-milliseconds m 2000\n\
             sentinel failover-timeout m 10000\n"
        ),
    )
    .expect("write sentinel conf");
    let conf = conf.to_string_lossy().into_owned();
    Server::start(Kind::Redis, &[&conf, "--sentinel"])
}

/// Redis Sentinel watches a forkdb master with a redis-server replica: both sentinels report
/// the master and its replica, find each other through the hello channel on forkdb (each one's
/// hello reaches a client subscribed on forkdb), and SENTINEL FAILOVER promotes the redis
/// replica and turns forkdb into its replica (MULTI / REPLICAOF / CONFIG REWRITE / CLIENT KILL
/// / EXEC, the CONFIG REWRITE failing without a config file as on redis-server).
#[test]
fn sentinel_watches_and_fails_over_a_forkdb_master() {
    let master = Server::forkdb(&[]);
    let mport = master.port.to_string();
    let replica = Server::redis(&["--replicaof", "127.0.0.1", &mport]);
    wait_link_up(&mut replica.conn());
    let dir = TempDir::new("sentinels");
    let s1 = sentinel(&dir, 1, master.port);
    let s2 = sentinel(&dir, 2, master.port);

    // Each sentinel's hello, published on forkdb, reaches a subscriber there.
    let mut hello = master.conn();
    hello.cmd(&["SUBSCRIBE", "__sentinel__:hello"]);
    hello.set_read_timeout(WAIT);
    let mut heard = [false, false];
    while heard != [true, true] {
        let Frame::Array(msg) = hello.read_frame().expect("a hello before the timeout") else {
            continue;
        };
        if let Some(Frame::Bulk(text)) = msg.get(2) {
            // "ip,port,runid,epoch,master name,master ip,master port,master epoch"
            let text = String::from_utf8_lossy(text).into_owned();
            for (i, s) in [&s1, &s2].iter().enumerate() {
                if text.starts_with(&format!("127.0.0.1,{},", s.port)) {
                    heard[i] = true;
                }
            }
        }
    }
    drop(hello);
    let mut m = master.conn();
    assert_eq!(
        m.frame(&["PUBSUB", "NUMSUB", "__sentinel__:hello"]),
        Frame::Array(vec![
            Frame::Bulk(b"__sentinel__:hello".to_vec()),
            Frame::Integer(2)
        ])
    );

    for s in [&s1, &s2] {
        let mut c = s.conn();
        poll_until(
            WAIT,
            "SENTINEL MASTER m: master, 1 replica, 1 other sentinel",
            || {
                let e = c.frame(&["SENTINEL", "MASTER", "m"]);
                (field(&e, "flags").as_deref() == Some("master")
                    && field(&e, "port") == Some(mport.clone())
                    && field(&e, "num-slaves").as_deref() == Some("1")
                    && field(&e, "num-other-sentinels").as_deref() == Some("1"))
                .then_some(())
            },
        );
    }

    let mut c1 = s1.conn();
    c1.assert_cmd(&["SENTINEL", "FAILOVER", "m"], b"+OK\r\n");
    let rport = replica.port.to_string();
    poll_until(WAIT, "the sentinels to switch to the redis replica", || {
        [&s1, &s2]
            .iter()
            .all(|s| {
                let a = s
                    .conn()
                    .frame(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "m"]);
                a == Frame::Array(vec![
                    Frame::Bulk(b"127.0.0.1".to_vec()),
                    Frame::Bulk(rport.clone().into_bytes()),
                ])
            })
            .then_some(())
    });
    // Sentinel's CLIENT KILL TYPE normal closes every plain connection, ours too: each poll
    // uses a new one.
    poll_until(WAIT, "redis-server promoted", || {
        let role = replication_field(&replica, "role");
        (role.as_deref() == Some("master")).then_some(())
    });
    // Sentinel reconfigures the old master once it has seen it report `role:master` for a
    // while (about 10 s after the failover), then forkdb syncs from the new master.
    poll_until(
        Duration::from_secs(60),
        "forkdb replicating the new master",
        || {
            (replication_field(&master, "master_port") == Some(rport.clone())
                && replication_field(&master, "master_link_status").as_deref() == Some("up"))
            .then_some(())
        },
    );
    poll_until(
        WAIT,
        "the sentinel to see forkdb as a connected replica",
        || {
            let reps = s1.conn().frame(&["SENTINEL", "REPLICAS", "m"]);
            let Frame::Array(reps) = reps else {
                return None;
            };
            reps.iter()
                .any(|e| {
                    field(e, "port") == Some(mport.clone())
                        && field(e, "flags").as_deref() == Some("slave")
                        && field(e, "master-link-status").as_deref() == Some("ok")
                })
                .then_some(())
        },
    );
    // A write on the new master reaches forkdb.
    replica
        .conn()
        .assert_cmd(&["SET", "after-failover", "1"], b"+OK\r\n");
    poll_until(WAIT, "the write to reach forkdb", || {
        let got = master.conn().frame(&["GET", "after-failover"]);
        (got == Frame::Bulk(b"1".to_vec())).then_some(())
    });
}
