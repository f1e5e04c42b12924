//! `forkdb-server [config-file] [--name value ...]`: options as redis-server takes them.

use std::cell::RefCell;
use std::rc::Rc;

use forkdb_server::alloc::CountingAlloc;
use forkdb_server::config;
use forkdb_server::server::Server;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn main() {
    // First: a panic in a snapshot child must `_exit` without the default hook (see
    // `forkdb_snapshot::fork::install_panic_hook`); elsewhere panics report as before.
    forkdb_snapshot::fork::install_panic_hook();
    forkdb_server::alloc::configure();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-v" || a == "--version") {
        println!(
            "forkdb-server v={} (Redis-compatible {}) bits={}",
            forkdb_server::FORKDB_VERSION,
            forkdb_server::REDIS_VERSION,
            usize::BITS
        );
        return;
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("Usage: forkdb-server [/path/to/redis.conf] [options]");
        println!("Examples:");
        println!("       forkdb-server (run the server with default config)");
        println!("       forkdb-server /etc/redis/6379.conf");
        println!("       forkdb-server --port 7777");
        println!("       forkdb-server /etc/myredis.conf --loglevel verbose");
        return;
    }
    let cfg = match config::load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = init_logging(&cfg) {
        eprintln!("Can't open the log file: {e}");
        std::process::exit(1);
    }
    forkdb_server::persist::startup_checks(&cfg);
    forkdb_server::store::INLINE_VALUES
        .store(cfg.inline_values, std::sync::atomic::Ordering::Relaxed);
    // The idle poll watches the runtime's epoll file: the one that building it opens.
    let epoll_before = forkdb_server::idlepoll::eventpoll_fds();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(forkdb_server::net::before_sleep)
        .on_thread_unpark(forkdb_server::idlepoll::after_park)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("can't start the runtime: {e}");
            std::process::exit(1);
        }
    };
    // `net::run` binds, then loads the RDB file while answering -LOADING, as Redis does: a
    // port in use is found before the load, not after it.
    // The runtime runs on this thread (current_thread), so the park hook does too.
    forkdb_server::net::before_sleep_installed();
    forkdb_server::idlepoll::install_for_runtime(&epoll_before);
    let srv = Rc::new(RefCell::new(Server::new(cfg)));
    let local = tokio::task::LocalSet::new();
    if let Err(e) = local.block_on(&rt, forkdb_server::net::run(srv)) {
        tracing::error!("{e:#}");
        eprintln!("{e:#}");
        std::process::exit(1);
    }
}

fn init_logging(cfg: &config::Config) -> std::io::Result<()> {
    let level = match cfg.loglevel.as_str() {
        "debug" => tracing::Level::DEBUG,
        "verbose" => tracing::Level::DEBUG,
        "warning" => tracing::Level::WARN,
        _ => tracing::Level::INFO,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false);
    if cfg.logfile.is_empty() {
        use std::io::IsTerminal;
        builder
            .with_ansi(std::io::stdout().is_terminal())
            .with_writer(std::io::stdout)
            .init();
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cfg.logfile)?;
        builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init();
    }
    Ok(())
}
