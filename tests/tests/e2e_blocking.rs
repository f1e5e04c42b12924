//! Blocking list commands with real clients: each scenario runs against forkdb and against
//! redis-server 7.0, and the replies each client gets must be the same bytes.
//!
//! A blocked client is detected by polling `INFO clients` (`blocked_clients`) with a deadline,
//! never by sleeping.

use std::time::{Duration, Instant};

use forkdb_tests::conn::Conn;
use forkdb_tests::{poll_until, Server};

const WAIT: Duration = Duration::from_secs(10);

fn blocked_clients(c: &mut Conn) -> usize {
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "clients"])).into_owned();
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until `n` clients are blocked.
fn until_blocked(c: &mut Conn, n: usize) {
    poll_until(WAIT, "clients blocked", || {
        (blocked_clients(c) == n).then_some(())
    });
}

fn conn(port: u16) -> Conn {
    let c = Conn::connect(port).expect("connect");
    c.set_read_timeout(WAIT);
    c
}

fn client_id(c: &mut Conn) -> String {
    let r = c.cmd(&["CLIENT", "ID"]);
    String::from_utf8_lossy(&r[1..r.len() - 2]).into_owned()
}

/// Runs `scenario` against both servers and compares the transcripts it returns.
fn both(scenario: fn(u16) -> Vec<Vec<u8>>) {
    let redis = Server::redis(&[]);
    let forkdb = Server::forkdb(&[]);
    let want = scenario(redis.port);
    let got = scenario(forkdb.port);
    let show = |v: &[Vec<u8>]| -> Vec<String> {
        v.iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    };
    assert_eq!(
        show(&got),
        show(&want),
        "forkdb (left) vs redis-server (right)"
    );
}

#[test]
fn woken_by_another_client_first_blocked_first_served() {
    both(|port| {
        let mut ctl = conn(port);
        let mut a = conn(port);
        let mut b = conn(port);
        a.send_cmd(&["BLPOP", "q", "0"]).unwrap();
        until_blocked(&mut ctl, 1);
        b.send_cmd(&["BRPOP", "q", "0"]).unwrap();
        until_blocked(&mut ctl, 2);
        let mut out = vec![ctl
            .cmd(&["CLIENT", "LIST"])
            .split(|&c| c == b' ')
            .filter(|f| f.starts_with(b"flags=b"))
            .count()
            .to_string()
            .into_bytes()];
        // One push of three elements: the first blocked gets the head, the second the tail of
        // what is left; then the pusher's own LPOP in the same pipeline finds what remains.
        ctl.send(b"*5\r\n$5\r\nRPUSH\r\n$1\r\nq\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n*2\r\n$4\r\nLPOP\r\n$1\r\nq\r\n")
            .unwrap();
        out.push(ctl.read_reply().unwrap());
        out.push(ctl.read_reply().unwrap());
        out.push(a.read_reply().unwrap());
        out.push(b.read_reply().unwrap());
        out.push(ctl.cmd(&["EXISTS", "q"]));
        out.push(blocked_clients(&mut ctl).to_string().into_bytes());
        out
    });
}

#[test]
fn timeouts_and_errors() {
    both(|port| {
        let mut c = conn(port);
        let mut out = Vec::new();
        let start = Instant::now();
        out.push(c.cmd(&["BLPOP", "none", "0.2"]));
        out.push(c.cmd(&["BLMOVE", "none", "d", "LEFT", "RIGHT", "0.1"]));
        out.push(c.cmd(&["BLMPOP", "0.1", "2", "n1", "n2", "LEFT", "COUNT", "2"]));
        out.push(c.cmd(&["BRPOPLPUSH", "none", "d", "0.1"]));
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(450),
            "timeouts ended early: {took:?}"
        );
        out.push(c.cmd(&["BLPOP", "none", "-1"]));
        out.push(c.cmd(&["BLPOP", "none", "abc"]));
        out.push(c.cmd(&["HELLO", "3"]).is_empty().to_string().into_bytes());
        out.push(c.cmd(&["BRPOP", "none", "0.05"]));
        out
    });
}

#[test]
fn several_keys_served_from_the_key_that_became_ready() {
    both(|port| {
        let mut ctl = conn(port);
        let mut a = conn(port);
        a.send_cmd(&["BLMPOP", "0", "3", "k1", "k2", "k3", "RIGHT", "COUNT", "5"])
            .unwrap();
        until_blocked(&mut ctl, 1);
        let mut out = vec![ctl.cmd(&["RPUSH", "k2", "a", "b", "c"])];
        out.push(a.read_reply().unwrap());
        a.send_cmd(&["BRPOPLPUSH", "src", "dst", "0"]).unwrap();
        until_blocked(&mut ctl, 1);
        // A MULTI that fills two keys: served after EXEC, from the key the client waits on.
        out.push(ctl.cmd(&["MULTI"]));
        out.push(ctl.cmd(&["RPUSH", "src", "1", "2"]));
        out.push(ctl.cmd(&["LPOP", "src"]));
        out.push(ctl.cmd(&["EXEC"]));
        out.push(a.read_reply().unwrap());
        out.push(ctl.cmd(&["LRANGE", "dst", "0", "-1"]));
        out.push(ctl.cmd(&["EXISTS", "src"]));
        out
    });
}

#[test]
fn inside_multi_blocking_commands_answer_at_once() {
    both(|port| {
        let mut c = conn(port);
        let mut out = vec![c.cmd(&["MULTI"])];
        for cmd in [
            &["BLPOP", "none", "0"][..],
            &["BLMOVE", "none", "d", "LEFT", "LEFT", "0"],
            &["BRPOPLPUSH", "none", "d", "0"],
            &["BLMPOP", "0", "1", "none", "LEFT"],
        ] {
            out.push(c.cmd(cmd));
        }
        out.push(c.cmd(&["EXEC"]));
        out
    });
}

#[test]
fn client_unblock_timeout_and_error() {
    both(|port| {
        let mut ctl = conn(port);
        let mut a = conn(port);
        let id = client_id(&mut a);
        a.send_cmd(&["BLPOP", "q", "0"]).unwrap();
        until_blocked(&mut ctl, 1);
        let mut out = vec![ctl.cmd(&["CLIENT", "UNBLOCK", &id, "TIMEOUT"])];
        out.push(a.read_reply().unwrap());
        a.send_cmd(&["BLMOVE", "q", "d", "LEFT", "LEFT", "0"])
            .unwrap();
        until_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]));
        out.push(a.read_reply().unwrap());
        out.push(ctl.cmd(&["CLIENT", "UNBLOCK", &id]));
        // The unblocked client works on as usual.
        out.push(a.cmd(&["PING"]));
        out
    });
}

#[test]
fn key_deleted_or_type_changed_keeps_the_client_blocked() {
    both(|port| {
        let mut ctl = conn(port);
        let mut a = conn(port);
        a.send_cmd(&["BLPOP", "q", "0"]).unwrap();
        until_blocked(&mut ctl, 1);
        let mut out = vec![ctl.cmd(&["MULTI"])];
        out.push(ctl.cmd(&["RPUSH", "q", "x"]));
        out.push(ctl.cmd(&["DEL", "q"]));
        out.push(ctl.cmd(&["EXEC"]));
        out.push(ctl.cmd(&["SET", "q", "string"]));
        out.push(blocked_clients(&mut ctl).to_string().into_bytes());
        out.push(ctl.cmd(&["DEL", "q"]));
        out.push(ctl.cmd(&["RPUSH", "other", "v"]));
        out.push(ctl.cmd(&["RENAME", "other", "q"]));
        out.push(a.read_reply().unwrap());
        // BLMOVE whose destination is a string when the source fills: WRONGTYPE, unblocked.
        a.send_cmd(&["BLMOVE", "s", "str", "LEFT", "LEFT", "0"])
            .unwrap();
        until_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["SET", "str", "v"]));
        out.push(ctl.cmd(&["RPUSH", "s", "e"]));
        out.push(a.read_reply().unwrap());
        out.push(ctl.cmd(&["LLEN", "s"]));
        out
    });
}

#[test]
fn blocked_client_that_disconnects_is_forgotten() {
    both(|port| {
        let mut ctl = conn(port);
        let mut a = conn(port);
        a.send_cmd(&["BLPOP", "q", "0"]).unwrap();
        until_blocked(&mut ctl, 1);
        drop(a);
        until_blocked(&mut ctl, 0);
        // The element stays: nobody took it for the closed client.
        vec![
            ctl.cmd(&["RPUSH", "q", "x"]),
            ctl.cmd(&["LRANGE", "q", "0", "-1"]),
        ]
    });
}

/// The idle `timeout` does not close a blocked client (Redis's `clientsCronHandleTimeout`
/// skips blocked clients): after twice the timeout it is still there, and a push serves it.
/// An idle client that is not blocked is closed meanwhile, so the timeout did run.
#[test]
fn idle_timeout_spares_blocked_clients() {
    for server in [
        Server::redis(&["--timeout", "1"]),
        Server::forkdb(&["--timeout", "1"]),
    ] {
        let name = server.kind.name();
        let mut idle = conn(server.port);
        idle.assert_cmd(&["PING"], b"+PONG\r\n");
        let mut waiter = conn(server.port);
        waiter.send_cmd(&["BLPOP", "q", "0"]).expect("send BLPOP");
        let mut other = conn(server.port);
        until_blocked(&mut other, 1);
        // The idle client goes after its timeout (the cron checks about once a second).
        let closed = idle.wait_closed(Duration::from_secs(5));
        assert_eq!(
            closed.as_deref(),
            Some(&b""[..]),
            "{name}: idle client not closed"
        );
        let started = Instant::now();
        poll_until(WAIT, "two timeouts to pass", || {
            (started.elapsed() > Duration::from_millis(2200)).then_some(())
        });
        // A fresh connection: `other` has been idle as long and is gone too.
        let mut pusher = conn(server.port);
        assert_eq!(
            blocked_clients(&mut pusher),
            1,
            "{name}: blocked client closed"
        );
        pusher.assert_cmd(&["RPUSH", "q", "x"], b":1\r\n");
        assert_eq!(
            waiter.read_reply().expect("BLPOP reply"),
            b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n",
            "{name}"
        );
    }
}

/// Sorted sets: BZPOPMIN/BZPOPMAX woken by a ZADD from another client, first blocked first
/// served, in RESP2 and RESP3 (the score a double); BZMPOP with COUNT on several keys.
#[test]
fn sorted_sets_woken_by_zadd_first_blocked_first_served() {
    both(|port| {
        let mut ctl = conn(port);
        let mut a = conn(port);
        let mut b = conn(port);
        b.cmd(&["HELLO", "3"]);
        a.send_cmd(&["BZPOPMIN", "z", "0"]).unwrap();
        until_blocked(&mut ctl, 1);
        b.send_cmd(&["BZPOPMAX", "other", "z", "0"]).unwrap();
        until_blocked(&mut ctl, 2);
        let mut out = vec![ctl.cmd(&["ZADD", "z", "1", "a", "2.5", "b", "3", "c"])];
        out.push(a.read_reply().unwrap());
        out.push(b.read_reply().unwrap());
        out.push(ctl.cmd(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]));
        // BZMPOP waits on three keys; the one filled serves it, up to COUNT members.
        a.send_cmd(&["BZMPOP", "0", "3", "k1", "k2", "k3", "MAX", "COUNT", "2"])
            .unwrap();
        b.send_cmd(&["BZMPOP", "0", "1", "k2", "MIN", "COUNT", "10"])
            .unwrap();
        until_blocked(&mut ctl, 2);
        out.push(ctl.cmd(&["ZADD", "k2", "1", "x", "2", "y", "3", "w"]));
        out.push(a.read_reply().unwrap());
        out.push(b.read_reply().unwrap());
        out.push(ctl.cmd(&["EXISTS", "k2"]));
        out.push(blocked_clients(&mut ctl).to_string().into_bytes());
        out
    });
}

/// Sorted sets: timeouts (float seconds) in RESP2 and RESP3, MULTI answering at once, CLIENT
/// UNBLOCK, and a key of another type.
#[test]
fn sorted_sets_timeouts_multi_unblock_and_wrongtype() {
    both(|port| {
        let mut ctl = conn(port);
        let mut c = conn(port);
        let mut out = Vec::new();
        let start = Instant::now();
        out.push(c.cmd(&["BZPOPMIN", "none", "0.2"]));
        out.push(c.cmd(&["BZMPOP", "0.1", "2", "n1", "n2", "MIN", "COUNT", "2"]));
        out.push(c.cmd(&["HELLO", "3"]).is_empty().to_string().into_bytes());
        out.push(c.cmd(&["BZPOPMAX", "none", "0.1"]));
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(380),
            "timeouts ended early: {took:?}"
        );
        out.push(c.cmd(&["BZPOPMIN", "none", "-1"]));
        out.push(c.cmd(&["BZMPOP", "abc", "1", "none", "MIN"]));
        // Inside MULTI: null at once, a ready key served.
        out.push(ctl.cmd(&["ZADD", "m", "1", "a"]));
        out.push(c.cmd(&["MULTI"]));
        out.push(c.cmd(&["BZPOPMIN", "none", "0"]));
        out.push(c.cmd(&["BZMPOP", "0", "1", "none", "MAX"]));
        out.push(c.cmd(&["BZPOPMAX", "m", "0"]));
        out.push(c.cmd(&["EXEC"]));
        // CLIENT UNBLOCK, both reasons.
        let id = client_id(&mut c);
        c.send_cmd(&["BZPOPMIN", "q", "0"]).unwrap();
        until_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["CLIENT", "UNBLOCK", &id, "TIMEOUT"]));
        out.push(c.read_reply().unwrap());
        c.send_cmd(&["BZMPOP", "0", "1", "q", "MIN"]).unwrap();
        until_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]));
        out.push(c.read_reply().unwrap());
        // A key of another type: WRONGTYPE at once; one that becomes a list or a string
        // while a client waits leaves it blocked until a sorted set appears.
        out.push(ctl.cmd(&["SET", "s", "v"]));
        out.push(c.cmd(&["BZPOPMIN", "none", "s", "0"]));
        c.send_cmd(&["BZPOPMIN", "q", "0"]).unwrap();
        until_blocked(&mut ctl, 1);
        out.push(ctl.cmd(&["RPUSH", "q", "x"]));
        out.push(blocked_clients(&mut ctl).to_string().into_bytes());
        out.push(ctl.cmd(&["DEL", "q"]));
        out.push(ctl.cmd(&["ZADD", "q", "7", "m"]));
        out.push(c.read_reply().unwrap());
        out
    });
}

/// A list client and a sorted-set client blocked on one key: the key's type decides which
/// is served, whichever blocked first.
#[test]
fn list_and_sorted_set_clients_on_one_key() {
    both(|port| {
        let mut ctl = conn(port);
        let mut l = conn(port);
        let mut z = conn(port);
        l.send_cmd(&["BLPOP", "k", "0"]).unwrap();
        until_blocked(&mut ctl, 1);
        z.send_cmd(&["BZPOPMIN", "k", "0"]).unwrap();
        until_blocked(&mut ctl, 2);
        let mut out = vec![ctl.cmd(&["ZADD", "k", "1", "a"])];
        out.push(z.read_reply().unwrap());
        out.push(blocked_clients(&mut ctl).to_string().into_bytes());
        out.push(ctl.cmd(&["RPUSH", "k", "e"]));
        out.push(l.read_reply().unwrap());
        out
    });
}
