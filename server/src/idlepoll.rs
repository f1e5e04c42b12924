//! Polling for client input for a few microseconds before the event loop sleeps, while sleeps
//! are short: what the guest kernel's `haltpoll` does for a virtual CPU, done for the loop.
//!
//! Why: a client that sends a request to a server asleep in `epoll_wait` pays for waking it
//! (`sendto` → `sock_def_readable` → an inter-processor wake-up, expensive in a virtual
//! machine). forkdb spends less CPU per request than redis-server, so at `-P 1` it runs out of
//! work and sleeps more often (17k sleeps per 200k ZADDs against redis-server's 1-10k), and a
//! client bound by its own CPU (redis-benchmark, one thread) loses the difference: ZADD and
//! LRANGE_100 at 0.95-0.97 of redis-server's rate while the server had idle time (`net.rs`,
//! `before_sleep_point`). A request that arrives while the loop polls costs no wake-up.
//!
//! What it costs, and the bounds: the poll is a busy loop of `epoll_wait(0)` on a set of the
//! clients' sockets. Its window adapts as haltpoll's does: it doubles (from 2 µs up to
//! [`POLL_MAX_US`]) when the loop was woken within the longest window after going to sleep
//! (polling longer would have caught the input), and halves, down to no poll at all, when a
//! sleep lasted longer; so an idle or lightly loaded server polls nothing. The loop polls at
//! most [`BUDGET_PER_SEC`] of every second (10 % of a core), whatever the load, and yields the
//! CPU between two checks, so a client on the same core is not held up. Measured with one
//! client sending PINGs (3 s each, poll off / on): at 1000 and at 10 000 a second the server's
//! CPU was the same (2.3 / 2.3 %, 22.3 / 22.7 %, client on the other core); back to back, the
//! client on the other core got 23 320 requests a second instead of 19 092 for 52 % of a core
//! instead of 43 %, and on the same core 68 111 instead of 68 043 (50 % / 52 %).
//!
//! What it owns: an epoll set (level-triggered, `EPOLLIN`) of the client sockets, on the event
//! loop's thread, apart from the runtime's own (edge-triggered) set, which it never reads: a
//! socket is added when accepted and leaves the set when it is closed (epoll drops a closed
//! file's entry). It touches nothing else: input it sees is left for the runtime, whose
//! `epoll_wait` then returns at once. A socket that has input the server leaves unread (a
//! paused or blocked client) keeps the set ready; the poll then ends at once and the loop
//! sleeps as before.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The longest poll, µs (`idle-poll-max-us`; 0: never poll): a copy of the option, which the
/// runtime's hooks cannot reach, set at start-up and by the cron ([`set_max_us`]).
static POLL_MAX_US: AtomicU32 = AtomicU32::new(30);

/// Takes `idle-poll-max-us` (at start-up, then every cron tick: a CONFIG SET applies at the
/// next one).
pub fn set_max_us(us: u64) {
    POLL_MAX_US.store(u32::try_from(us).unwrap_or(u32::MAX), Ordering::Relaxed);
}

/// The first window after sleeps were short, µs.
const POLL_MIN_US: u32 = 2;

/// Polling time allowed in each second.
const BUDGET_PER_SEC: Duration = Duration::from_millis(100);

struct Poll {
    epfd: OwnedFd,
    /// The current window, µs (0: sleep at once).
    window_us: u32,
    /// When the loop went to sleep after a poll that found nothing (or no poll): judged when
    /// it wakes.
    slept: Option<Instant>,
    /// Polling time spent in the second that began at `second`.
    spent: Duration,
    second: Instant,
}

thread_local! {
    /// The event loop thread's poll, once [`install`] has run there.
    static POLL: RefCell<Option<Poll>> = const { RefCell::new(None) };
    /// The next sleep waits for another thread (see [`next_wake_from_thread`]): no poll.
    static THREAD_WAKES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A task of the loop is about to wait for another thread of this process (the forkless save's
/// writer taking a chunk, the loader's next batch): the wake-up will not come from a client's
/// socket, so the poll could not see it and would only hold the loop up to its window after
/// it came, and take CPU the other thread may need; the next sleep is not polled.
pub fn next_wake_from_thread() {
    THREAD_WAKES.with(|t| t.set(true));
}

/// Sets the poll up on the calling thread (the event loop's). Without it (or if the epoll set
/// cannot be made) nothing polls.
pub fn install() {
    // SAFETY: a plain syscall; the result is checked before the fd is owned.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return;
    }
    // SAFETY: `fd` was just returned by epoll_create1 and nothing else owns it.
    let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
    POLL.with(|p| {
        *p.borrow_mut() = Some(Poll {
            epfd,
            window_us: 0,
            slept: None,
            spent: Duration::ZERO,
            second: Instant::now(),
        })
    });
}

/// Adds an accepted client's socket to the set. A failure only means no poll sees it.
pub fn register(fd: RawFd) {
    POLL.with(|p| {
        if let Some(p) = p.borrow().as_ref() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: fd as u64,
            };
            // SAFETY: both fds are open (the socket is the caller's, just accepted).
            unsafe {
                libc::epoll_ctl(p.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev);
            }
        }
    });
}

/// Called when the loop has nothing left to run and is about to sleep: polls the clients'
/// sockets for the current window. Returns as soon as one is readable (the runtime's
/// `epoll_wait` then returns at once), or when the window has passed.
pub fn before_park() {
    POLL.with(|p| {
        let mut p = p.borrow_mut();
        let Some(p) = p.as_mut() else { return };
        if THREAD_WAKES.with(|t| t.replace(false)) {
            p.slept = None;
            return;
        }
        let now = Instant::now();
        if now.duration_since(p.second) >= Duration::from_secs(1) {
            p.second = now;
            p.spent = Duration::ZERO;
        }
        let window = Duration::from_micros(u64::from(
            p.window_us.min(POLL_MAX_US.load(Ordering::Relaxed)),
        ));
        if window.is_zero() || p.spent >= BUDGET_PER_SEC {
            p.slept = Some(now);
            return;
        }
        let mut ev = [libc::epoll_event { events: 0, u64: 0 }];
        loop {
            // SAFETY: a non-blocking wait on our own epoll set into a local array of one.
            let n = unsafe { libc::epoll_wait(p.epfd.as_raw_fd(), ev.as_mut_ptr(), 1, 0) };
            let spent = now.elapsed();
            if n > 0 {
                p.spent += spent;
                p.slept = None;
                return;
            }
            if spent >= window {
                p.spent += spent;
                p.slept = Some(Instant::now());
                return;
            }
            // Not a bare spin: where the client shares this core, the poll must leave it the
            // CPU to send what the poll waits for (a spinning loop on a shared core cut one
            // client's requests by 9 %). With the core to itself, sched_yield returns at once.
            // SAFETY: a plain syscall.
            unsafe {
                libc::sched_yield();
            }
        }
    });
}

/// Called when the loop wakes: adapts the window to how long it slept.
pub fn after_park() {
    POLL.with(|p| {
        let mut p = p.borrow_mut();
        let Some(p) = p.as_mut() else { return };
        let Some(at) = p.slept.take() else { return };
        let max = POLL_MAX_US.load(Ordering::Relaxed);
        if max == 0 {
            p.window_us = 0;
            return;
        }
        if at.elapsed() <= Duration::from_micros(u64::from(max)) {
            // Polling a little longer would have caught what woke it.
            p.window_us = grown(p.window_us, max);
        } else {
            p.window_us /= 2;
            if p.window_us < POLL_MIN_US {
                p.window_us = 0;
            }
        }
    });
}

/// The window after a sleep that polling a little longer would have caught: doubled, at least
/// [`POLL_MIN_US`], at most `max`. Not `clamp`, which panics where `max` is under the minimum
/// (`CONFIG SET idle-poll-max-us 1`).
fn grown(window_us: u32, max: u32) -> u32 {
    (window_us * 2).max(POLL_MIN_US).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    fn window() -> u32 {
        POLL.with(|p| p.borrow().as_ref().map_or(u32::MAX, |p| p.window_us))
    }

    #[test]
    fn the_window_grows_within_any_maximum() {
        assert_eq!(grown(0, 30), POLL_MIN_US);
        assert_eq!(grown(16, 30), 30);
        assert_eq!(grown(0, 1), 1);
        assert_eq!(grown(1, 1), 1);
    }

    /// Short sleeps open the window, long ones close it; a readable socket ends a poll at once.
    #[test]
    fn the_window_follows_the_sleeps_and_input_ends_a_poll() {
        install();
        let (mut a, b) = UnixStream::pair().unwrap();
        register(b.as_raw_fd());
        assert_eq!(window(), 0);
        for _ in 0..8 {
            before_park();
            after_park(); // woken at once: a short sleep
        }
        assert_eq!(window(), POLL_MAX_US.load(Ordering::Relaxed));

        // A sleep that waits for another thread is not polled, nor judged.
        next_wake_from_thread();
        before_park();
        assert!(POLL.with(|p| p.borrow().as_ref().unwrap().slept.is_none()));
        after_park();
        assert_eq!(window(), POLL_MAX_US.load(Ordering::Relaxed));

        // Input waiting: the poll returns without using its window, and nothing is judged.
        a.write_all(b"x").unwrap();
        let t = Instant::now();
        before_park();
        assert!(t.elapsed() < Duration::from_millis(20));
        assert!(POLL.with(|p| p.borrow().as_ref().unwrap().slept.is_none()));
        drop(b);
        drop(a);

        // Long sleeps close it.
        for _ in 0..8 {
            before_park();
            std::thread::sleep(Duration::from_millis(1));
            after_park();
        }
        assert_eq!(window(), 0);
    }
}
