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
//! What it costs, and the bounds: the poll is a busy loop of `poll(0)` on the runtime's own
//! epoll file, which is readable while events wait in it. Its window adapts as haltpoll's does:
//! it doubles (from 2 µs up to [`POLL_MAX_US`]) when the loop was woken within the longest
//! window after going to sleep (polling longer would have caught the input), and halves, down
//! to no poll at all, when a sleep lasted longer; so an idle or lightly loaded server polls
//! nothing. The loop polls at most [`BUDGET_PER_SEC`] of every second (10 % of a core),
//! whatever the load, and yields the CPU between two checks, so a client on the same core is
//! not held up. Measured with one client sending PINGs (3 s each, poll off / on): at 1000 and
//! at 10 000 a second the server's CPU was the same (2.3 / 2.3 %, 22.3 / 22.7 %, client on the
//! other core); back to back, the client on the other core got 23 320 requests a second
//! instead of 19 092 for 52 % of a core instead of 43 %, and on the same core 68 111 instead of
//! 68 043 (50 % / 52 %).
//!
//! Why the runtime's epoll file and not a set of its own: a second epoll set holding the
//! client sockets put a second entry on each socket's wait queue, which the kernel walks in the
//! `sendto` of every client packet, on the client's CPU (redis-benchmark's, the bottleneck at
//! `-P 1`). A `poll` with a zero timeout registers nothing, and reading whether an epoll file is
//! ready takes none of its events. (Figures above: the first version; the PING figures of
//! this one are in docs/performance.md.)
//!
//! What it owns: nothing but its window and budget. It reads the runtime's epoll file, found
//! at start-up as the one epoll file building the runtime made ([`install_for_runtime`]); it
//! never waits on it nor takes its events, which the runtime's `epoll_wait` then returns at
//! once. A socket whose input the server leaves unread (a paused or blocked client) is not
//! reported again by an edge-triggered set, so it does not end polls.

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
    /// The epoll file whose readiness ends a poll (the runtime's).
    epfd: RawFd,
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

/// The process's open epoll files (taken before the runtime is built, for
/// [`install_for_runtime`]).
pub fn eventpoll_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let fd: RawFd = e.file_name().to_str()?.parse().ok()?;
        let target = std::fs::read_link(e.path()).ok()?;
        (target.as_os_str() == "anon_inode:[eventpoll]").then_some(fd)
    })
    .collect()
}

/// Sets the poll up on the calling thread (the event loop's), watching the epoll file the
/// runtime made: the one open now and not in `before` ([`eventpoll_fds`] before the runtime
/// was built). The runtime does not say which file it polls, hence the comparison; it opens
/// the file twice (its registry is a `dup`), which [`same_file`] sees. If that does not
/// leave exactly one, nothing polls (the loop sleeps as it would without this).
pub fn install_for_runtime(before: &[RawFd]) {
    let made = eventpoll_fds()
        .into_iter()
        .filter(|fd| !before.contains(fd));
    match one_file(made) {
        Some(fd) => install(fd),
        None => tracing::debug!("idle poll off: not one epoll file was made with the runtime"),
    }
}

/// The file `fds` all open, if they open exactly one.
fn one_file(fds: impl Iterator<Item = RawFd>) -> Option<RawFd> {
    let mut distinct: Vec<RawFd> = Vec::new();
    for fd in fds {
        if !distinct.iter().any(|&d| same_file(d, fd)) {
            distinct.push(fd);
        }
    }
    match distinct[..] {
        [fd] => Some(fd),
        _ => None,
    }
}

/// Whether the calling thread polls (for a test of [`install_for_runtime`]).
pub fn is_installed() -> bool {
    POLL.with(|p| p.borrow().is_some())
}

/// Whether two epoll fds of this process are one epoll set: an eventfd added to the first
/// cannot be added to the second (`EEXIST`) when they are. Both leave as they were. (Not
/// `kcmp(KCMP_FILE)`, which Docker's default seccomp profile refuses.) False if it cannot say.
fn same_file(a: RawFd, b: RawFd) -> bool {
    // SAFETY: a plain syscall; the result is checked before it is owned.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` was just made and nothing else owns it.
    let probe = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 0,
    };
    // SAFETY (the four epoll_ctl calls): open fds and a local event. The probe is never
    // written, so no set reports it while it is there.
    if unsafe { libc::epoll_ctl(a, libc::EPOLL_CTL_ADD, probe.as_raw_fd(), &mut ev) } != 0 {
        return false;
    }
    let added = unsafe { libc::epoll_ctl(b, libc::EPOLL_CTL_ADD, probe.as_raw_fd(), &mut ev) };
    let same = added != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST);
    if added == 0 {
        unsafe { libc::epoll_ctl(b, libc::EPOLL_CTL_DEL, probe.as_raw_fd(), &mut ev) };
    }
    unsafe { libc::epoll_ctl(a, libc::EPOLL_CTL_DEL, probe.as_raw_fd(), &mut ev) };
    same
}

/// Sets the poll up on the calling thread, watching `epfd` (which must stay open as long as
/// the thread runs the loop).
fn install(epfd: RawFd) {
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

/// Called when the loop has nothing left to run and is about to sleep: polls the runtime's
/// epoll file for the current window. Returns as soon as an event waits there (the runtime's
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
        let mut pfd = libc::pollfd {
            fd: p.epfd,
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: a non-blocking poll of one fd in a local struct. With a zero timeout the
            // kernel registers no wait on the file.
            let n = unsafe { libc::poll(&mut pfd, 1, 0) };
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

    fn new_epoll() -> OwnedFd {
        // SAFETY: a plain syscall; the result is checked before it is owned.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: `fd` was just made and nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    /// A `dup` of an epoll file is the same file; two epoll files are not.
    #[test]
    fn one_file_sees_through_dups() {
        let (e, other) = (new_epoll(), new_epoll());
        let dup = e.try_clone().unwrap();
        let (e, other, dup) = (e.as_raw_fd(), other.as_raw_fd(), dup.as_raw_fd());
        assert_eq!(one_file([e, dup].into_iter()), Some(e));
        assert_eq!(one_file([e].into_iter()), Some(e));
        assert_eq!(one_file([e, dup, other].into_iter()), None);
        assert_eq!(one_file([].into_iter()), None);
        // The probes are gone: no set holds an entry (fdinfo lists one `tfd:` line each).
        for fd in [e, other] {
            let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
            assert!(!info.contains("tfd:"), "{info}");
        }
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
        // An edge-triggered set, as the runtime's, holding one end of a socket pair.
        let ep = new_epoll();
        let epfd = ep.as_raw_fd();
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: 0,
        };
        // SAFETY: both fds are open; `ev` is a local.
        let r = unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, b.as_raw_fd(), &mut ev) };
        assert_eq!(r, 0);
        install(ep.as_raw_fd());
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
