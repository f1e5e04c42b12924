//! The `redis` crate (redis-rs) against the server: sync and async (tokio), RESP2 and RESP3,
//! pipelines, MULTI/EXEC pipelines, expiry, the db number and password in the URL.

use std::time::Duration;

use forkdb_tests::{poll_until, Server};
use redis::{AsyncCommands, Commands, Value};

fn sync_con(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .unwrap_or_else(|e| panic!("client for {url}: {e}"))
        .get_connection_with_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

async fn async_con(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap_or_else(|e| panic!("client for {url}: {e}"))
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

/// Checks which protocol the connection speaks: CONFIG GET is a map in RESP3, a flat array in RESP2.
fn assert_protocol(con: &mut redis::Connection, resp3: bool) {
    let reply: Value = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxclients")
        .query(con)
        .unwrap();
    match (&reply, resp3) {
        (Value::Map(_), true) | (Value::Array(_), false) => {}
        _ => panic!(
            "CONFIG GET under {} gave {reply:?}",
            if resp3 { "RESP3" } else { "RESP2" }
        ),
    }
}

fn basic_commands(con: &mut redis::Connection) {
    let _: () = con.set("k", "v").unwrap();
    assert_eq!(con.get::<_, String>("k").unwrap(), "v");
    assert_eq!(con.get::<_, Option<String>>("missing").unwrap(), None);
    assert_eq!(con.incr::<_, _, i64>("n", 1).unwrap(), 1);
    assert_eq!(con.incr::<_, _, i64>("n", 41).unwrap(), 42);
    assert_eq!(con.decr::<_, _, i64>("n", 2).unwrap(), 40);
    let _: () = con.mset(&[("a", "1"), ("b", "2")]).unwrap();
    let got: Vec<Option<String>> = con.mget(&["a", "missing", "b"]).unwrap();
    assert_eq!(got, vec![Some("1".into()), None, Some("2".into())]);
    assert_eq!(con.append::<_, _, i64>("k", "xyz").unwrap(), 4);
    assert_eq!(con.strlen::<_, i64>("k").unwrap(), 4);
    assert_eq!(con.exists::<_, i64>(&["a", "b", "zz"]).unwrap(), 2);
    assert_eq!(con.del::<_, i64>(&["a", "b", "zz"]).unwrap(), 2);
    let f: f64 = con.incr("f", 2.5).unwrap();
    assert_eq!(f, 2.5);
    let err = con.incr::<_, _, i64>("k", 1).unwrap_err();
    assert_eq!(err.code(), Some("ERR"), "{err}");
    assert!(
        err.to_string()
            .contains("value is not an integer or out of range"),
        "{err}"
    );
}

fn pipelines(con: &mut redis::Connection) {
    let (a, n, missing): (String, i64, Option<String>) = redis::pipe()
        .set("p", "1")
        .ignore()
        .get("p")
        .incr("pn", 5)
        .get("nothing-here")
        .query(con)
        .unwrap();
    assert_eq!((a.as_str(), n, missing), ("1", 5, None));

    // MULTI ... EXEC
    let (x, y): (i64, i64) = redis::pipe()
        .atomic()
        .incr("t", 1)
        .incr("t", 10)
        .query(con)
        .unwrap();
    assert_eq!((x, y), (1, 11));
    let (set, got): (String, String) = redis::pipe()
        .atomic()
        .set("tk", "tv")
        .get("tk")
        .query(con)
        .unwrap();
    assert_eq!((set.as_str(), got.as_str()), ("OK", "tv"));

    // A command that fails inside EXEC fails the pipeline with the server's error.
    let _: () = con.set("text", "abc").unwrap();
    let err = redis::pipe()
        .atomic()
        .incr("text", 1)
        .query::<(i64,)>(con)
        .unwrap_err();
    assert!(err.to_string().contains("not an integer"), "{err}");
}

fn expiry(con: &mut redis::Connection) {
    let _: () = con.set_ex("e", "v", 100).unwrap();
    let ttl: i64 = con.ttl("e").unwrap();
    assert!((99..=100).contains(&ttl), "TTL after SETEX 100: {ttl}");
    let pttl: i64 = con.pttl("e").unwrap();
    assert!((1..=100_000).contains(&pttl), "PTTL: {pttl}");
    assert!(con.persist::<_, bool>("e").unwrap());
    assert_eq!(con.ttl::<_, i64>("e").unwrap(), -1);
    assert_eq!(con.ttl::<_, i64>("missing").unwrap(), -2);
    let _: () = redis::cmd("SET")
        .arg("short")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(con)
        .unwrap();
    poll_until(Duration::from_secs(5), "a PX 50 key to expire", || {
        con.get::<_, Option<String>>("short")
            .unwrap()
            .is_none()
            .then_some(())
    });
    assert_eq!(con.exists::<_, i64>("short").unwrap(), 0);
}

#[test]
fn sync_resp2() {
    let server = Server::forkdb(&[]);
    let mut con = sync_con(&server.url());
    assert_protocol(&mut con, false);
    basic_commands(&mut con);
    pipelines(&mut con);
    expiry(&mut con);
}

#[test]
fn sync_resp3() {
    let server = Server::forkdb(&[]);
    let mut con = sync_con(&format!("{}/?protocol=resp3", server.url()));
    assert_protocol(&mut con, true);
    basic_commands(&mut con);
    pipelines(&mut con);
    expiry(&mut con);
}

async fn async_workload(url: &str) {
    let mut con = async_con(url).await;
    let _: () = con.set("k", "v").await.unwrap();
    assert_eq!(con.get::<_, String>("k").await.unwrap(), "v");
    assert_eq!(con.get::<_, Option<String>>("missing").await.unwrap(), None);
    let got: Vec<Option<String>> = con.mget(&["k", "missing"]).await.unwrap();
    assert_eq!(got, vec![Some("v".into()), None]);

    // Many tasks share the multiplexed connection.
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let mut con = con.clone();
            tokio::spawn(async move { con.incr::<_, _, i64>("counter", 1).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(con.get::<_, i64>("counter").await.unwrap(), 50);

    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .incr("x", 2)
        .incr("x", 3)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((a, b), (2, 5));
    let (v, n): (String, i64) = redis::pipe()
        .get("k")
        .strlen("k")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((v.as_str(), n), ("v", 1));

    let _: () = con.set_ex("e", "v", 100).await.unwrap();
    let ttl: i64 = con.ttl("e").await.unwrap();
    assert!((99..=100).contains(&ttl), "TTL after SETEX 100: {ttl}");
    let _: () = redis::cmd("SET")
        .arg("short")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query_async(&mut con)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while con
        .get::<_, Option<String>>("short")
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "PX 50 key still there after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn async_resp2() {
    let server = Server::forkdb(&[]);
    async_workload(&server.url()).await;
}

#[tokio::test]
async fn async_resp3() {
    let server = Server::forkdb(&[]);
    async_workload(&format!("{}/?protocol=resp3", server.url())).await;
    let mut con = async_con(&format!("{}/?protocol=resp3", server.url())).await;
    let reply: Value = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxclients")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        matches!(reply, Value::Map(_)),
        "CONFIG GET under RESP3: {reply:?}"
    );
}

#[test]
fn db_number_in_url_selects_the_database() {
    let server = Server::forkdb(&[]);
    for url in [
        format!("{}/3", server.url()),
        format!("{}/3?protocol=resp3", server.url()),
    ] {
        let mut con = sync_con(&url);
        let _: () = con.set("where", "db3").unwrap();
    }
    let mut raw = server.conn();
    raw.assert_cmd(&["GET", "where"], b"$-1\r\n");
    raw.assert_cmd(&["SELECT", "3"], b"+OK\r\n");
    raw.assert_cmd(&["GET", "where"], b"$3\r\ndb3\r\n");
    raw.assert_cmd(&["DBSIZE"], b":1\r\n");
}

#[test]
fn password_in_url_authenticates() {
    let server = Server::forkdb(&["--requirepass", "s3cret"]);
    let addr = &server.addr;

    // RESP2 sends AUTH, RESP3 sends HELLO 3 AUTH default ...
    for url in [
        format!("redis://:s3cret@{addr}/"),
        format!("redis://default:s3cret@{addr}/"),
        format!("redis://:s3cret@{addr}/?protocol=resp3"),
        format!("redis://:s3cret@{addr}/2?protocol=resp3"),
    ] {
        let mut con = sync_con(&url);
        let _: () = con
            .set("k", "v")
            .unwrap_or_else(|e| panic!("SET via {url}: {e}"));
        assert_eq!(con.get::<_, String>("k").unwrap(), "v");
    }

    for url in [
        format!("redis://:wrong@{addr}/"),
        format!("redis://:wrong@{addr}/?protocol=resp3"),
    ] {
        let result = redis::Client::open(url.as_str())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(10));
        let err = result
            .err()
            .unwrap_or_else(|| panic!("{url} should be refused"));
        assert!(
            err.kind() == redis::ErrorKind::AuthenticationFailed
                || err.to_string().contains("WRONGPASS"),
            "{url}: {err:?}"
        );
    }

    let mut anonymous = sync_con(&server.url());
    let err = anonymous.get::<_, Option<String>>("k").unwrap_err();
    assert_eq!(err.code(), Some("NOAUTH"), "{err}");
}
