//! INFO: Redis's sections and field names, so that tools that parse INFO (redis-cli, exporters,
//! client libraries) read forkdb the same way.

use std::fmt::Write as _;

use crate::alloc;
use crate::server::Server;
use crate::util::bytes_human;

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
    "snapshot",
];

/// Renders the requested sections (none: the default set; `all`/`everything`: with commandstats).
pub fn render(srv: &Server, requested: &[String]) -> String {
    let mut wanted: Vec<&str> = Vec::new();
    if requested.is_empty() || requested.iter().any(|s| s == "default") {
        wanted.extend(DEFAULT_SECTIONS);
    }
    if requested.iter().any(|s| s == "all" || s == "everything") {
        wanted.extend(DEFAULT_SECTIONS);
        wanted.push("commandstats");
        wanted.push("latencystats");
    }
    for s in requested {
        if !matches!(s.as_str(), "default" | "all" | "everything") {
            wanted.push(s.as_str());
        }
    }
    // One buffer sized for the whole reply (the default sections come to ~4 KiB), written in
    // place: growing it step by step would make malloc hand out a new chunk at each step, and
    // during a save every chunk it picks from the free memory a bulk load left scattered over
    // shared pages is a page copied. Polling INFO every 50 ms copied ~1.5 MiB that way over
    // the first save after a load.
    let mut out = String::with_capacity(8192);
    let mut done: Vec<&str> = Vec::new();
    for name in wanted {
        if done.contains(&name) {
            continue;
        }
        done.push(name);
        let mark = out.len();
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        if !section(srv, name, &mut out) {
            out.truncate(mark);
        }
    }
    out
}

/// Appends section `name` to `s`; false (and maybe a partial write, which the caller drops) when
/// there is no such section.
fn section(srv: &Server, name: &str, s: &mut String) -> bool {
    macro_rules! f {
        ($k:expr, $v:expr) => {
            let _ = write!(s, "{}:{}\r\n", $k, $v);
        };
    }
    match name {
        "server" => {
            s.push_str("# Server\r\n");
            let uptime = srv.started.elapsed().as_secs();
            f!("redis_version", crate::REDIS_VERSION);
            f!("forkdb_version", crate::FORKDB_VERSION);
            f!("redis_git_sha1", "00000000");
            f!("redis_git_dirty", 0);
            f!("redis_build_id", "0");
            f!("redis_mode", "standalone");
            f!("os", os_name());
            f!("arch_bits", usize::BITS);
            f!("monotonic_clock", "POSIX clock_gettime");
            f!("multiplexing_api", "epoll");
            f!("atomicvar_api", "c11-builtin");
            f!("gcc_version", "0.0.0");
            f!("process_id", std::process::id());
            f!("process_supervised", "no");
            f!("run_id", srv.run_id);
            f!("tcp_port", srv.config.port);
            f!("server_time_usec", crate::util::now_us());
            f!("uptime_in_seconds", uptime);
            f!("uptime_in_days", uptime / 86400);
            f!("hz", srv.config.hz);
            f!("configured_hz", srv.config.hz);
            f!("lru_clock", srv.ks.lru_clock);
            f!("executable", srv.executable);
            f!(
                "config_file",
                srv.config
                    .config_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
            f!("io_threads_active", 0);
        }
        "clients" => {
            s.push_str("# Clients\r\n");
            f!("connected_clients", srv.clients.len());
            f!("cluster_connections", 0);
            f!("maxclients", srv.config.maxclients);
            let (max_in, max_out) = crate::client::recent_max_buffers();
            f!("client_recent_max_input_buffer", max_in);
            f!("client_recent_max_output_buffer", max_out);
            f!("blocked_clients", srv.blocked.count());
            f!("tracking_clients", 0);
            f!("clients_in_timeout_table", 0);
        }
        "memory" => {
            s.push_str("# Memory\r\n");
            let used = alloc::used_memory() as u64;
            let rss = alloc::rss_bytes() as u64;
            let peak = srv.peak_memory.get().max(used);
            srv.peak_memory.set(peak);
            let total = alloc::total_system_memory();
            f!("used_memory", used);
            f!("used_memory_human", bytes_human(used));
            f!("used_memory_rss", rss);
            f!("used_memory_rss_human", bytes_human(rss));
            f!("used_memory_peak", peak);
            f!("used_memory_peak_human", bytes_human(peak));
            f!(
                "used_memory_peak_perc",
                format!("{:.2}%", used as f64 * 100.0 / peak.max(1) as f64)
            );
            f!("used_memory_startup", srv.startup_memory);
            f!(
                "used_memory_dataset",
                used.saturating_sub(srv.startup_memory)
            );
            f!("total_system_memory", total);
            f!("total_system_memory_human", bytes_human(total));
            f!("maxmemory", srv.config.maxmemory);
            f!("maxmemory_human", bytes_human(srv.config.maxmemory));
            f!("maxmemory_policy", srv.config.maxmemory_policy);
            f!(
                "mem_fragmentation_ratio",
                format!("{:.2}", rss as f64 / used.max(1) as f64)
            );
            // Redis subtracts replica output buffers and the AOF buffer
            // (`freeMemoryGetNotCountedMemory`). forkdb has no AOF buffer and counts replica
            // output buffers; it leaves out the entries a forkless save has queued for its
            // writer (see `Server::evict_to_fit`).
            let queued = srv
                .persist
                .forkless
                .as_ref()
                .map_or(0, |r| r.queue.figures().0);
            f!("mem_not_counted_for_evict", queued);
            f!("mem_clients_slaves", crate::repl::replica_buffers(srv));
            // Summed here rather than kept up to date by the cron as Redis does: a few loads
            // per client, no allocation.
            let clients: usize = srv.clients.values().map(|m| m.total_memory()).sum();
            f!("mem_clients_normal", clients);
            f!("mem_allocator", alloc::ALLOCATOR_NAME);
        }
        "persistence" => {
            s.push_str("# Persistence\r\n");
            crate::persist::info_fields(srv, s);
        }
        "stats" => {
            s.push_str("# Stats\r\n");
            let st = &srv.stats;
            f!("total_connections_received", st.total_connections_received);
            f!("total_commands_processed", st.total_commands_processed);
            f!("instantaneous_ops_per_sec", st.ops_per_sec);
            f!("total_net_input_bytes", st.total_net_input_bytes);
            f!("total_net_output_bytes", st.total_net_output_bytes);
            f!("rejected_connections", st.rejected_connections);
            crate::repl::stats_fields(srv, s);
            f!("expired_keys", srv.ks.expired_keys);
            f!("evicted_keys", srv.ks.evicted_keys);
            f!("keyspace_hits", srv.ks.keyspace_hits);
            f!("keyspace_misses", srv.ks.keyspace_misses);
            f!("pubsub_channels", srv.pubsub.channels.len());
            f!("pubsub_patterns", srv.pubsub.patterns.len());
            f!("pubsubshard_channels", srv.pubsub.shard.len());
            crate::persist::stats_fields(srv, s);
            // forkdb has no MIGRATE, so never a cached socket (the suite reads the field).
            f!("migrate_cached_sockets", 0);
            f!("total_error_replies", st.total_error_replies);
        }
        "replication" => {
            s.push_str("# Replication\r\n");
            crate::repl::info_fields(srv, s);
        }
        "cpu" => {
            s.push_str("# CPU\r\n");
            let (sys, user) = rusage(libc::RUSAGE_SELF);
            let (csys, cuser) = rusage(libc::RUSAGE_CHILDREN);
            f!("used_cpu_sys", format!("{sys:.6}"));
            f!("used_cpu_user", format!("{user:.6}"));
            f!("used_cpu_sys_children", format!("{csys:.6}"));
            f!("used_cpu_user_children", format!("{cuser:.6}"));
        }
        "modules" => {
            s.push_str("# Modules\r\n");
        }
        "errorstats" => {
            s.push_str("# Errorstats\r\n");
            for (code, n) in &srv.stats.errors {
                let _ = write!(s, "errorstat_{code}:count={n}\r\n");
            }
        }
        "latencystats" => {
            s.push_str("# Latencystats\r\n");
            crate::diag::render_latencystats(srv, s);
        }
        "commandstats" => {
            s.push_str("# Commandstats\r\n");
            let mut names: Vec<_> = srv.stats.commands.iter().collect();
            names.sort_by_key(|(n, _)| **n);
            for (name, st) in names {
                let per = if st.calls > 0 {
                    st.usec as f64 / st.calls as f64
                } else {
                    0.0
                };
                let _ = write!(
                    s,
                    "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}\r\n",
                    name, st.calls, st.usec, per, st.rejected, st.failed
                );
            }
        }
        "cluster" => {
            s.push_str("# Cluster\r\n");
            f!("cluster_enabled", 0);
        }
        "snapshot" => {
            s.push_str("# Snapshot\r\n");
            let t = &srv.timelines;
            f!("snapshot_saves_recorded", t.history.len());
            f!(
                "snapshot_sample_interval_ms",
                srv.config.snapshot_sample_interval
            );
            if let Some(r) = t.latest() {
                let opt = |v: Option<u64>| v.map_or(-1, |v| v as i64);
                f!("snapshot_last_id", r.id);
                f!("snapshot_last_status", r.status);
                f!("snapshot_last_duration_ms", r.duration_ms);
                f!("snapshot_last_fork_usec", r.fork_usec);
                f!("snapshot_last_used_memory_at_fork", r.used_memory_at_fork);
                f!("snapshot_last_peak_cow_bytes", r.peak_cow());
                f!("snapshot_last_peak_cow_pages", r.peak_cow_pages());
                f!(
                    "snapshot_last_peak_cow_perc_of_used_memory",
                    format!("{:.2}", r.peak_cow_perc_of_used_memory())
                );
                f!("snapshot_last_peak_total_bytes", r.peak_total());
                f!("snapshot_last_total_basis", r.basis.name());
                f!(
                    "snapshot_last_ms_to_half_peak",
                    opt(r.time_to_fraction(0.5))
                );
                f!(
                    "snapshot_last_ms_to_90pct_peak",
                    opt(r.time_to_fraction(0.9))
                );
                f!("snapshot_last_max_sample_gap_ms", r.max_sample_gap_ms());
                f!("snapshot_last_samples", r.samples.len());
                f!("snapshot_last_parent_minor_faults", r.parent_minor_faults());
                f!("snapshot_last_writes", r.writes());
            }
        }
        "keyspace" => {
            s.push_str("# Keyspace\r\n");
            for (i, db) in srv.ks.databases() {
                if !db.is_empty() {
                    let _ = write!(
                        s,
                        "db{}:keys={},expires={},avg_ttl={}\r\n",
                        i,
                        db.len(),
                        db.expires_len(),
                        db.avg_ttl()
                    );
                }
            }
        }
        _ => return false,
    }
    true
}

fn os_name() -> String {
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct we own; its fields are NUL-terminated C strings.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "Linux".into();
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!(
        "{} {} {}",
        field(&u.sysname),
        field(&u.release),
        field(&u.machine)
    )
}

fn rusage(who: libc::c_int) -> (f64, f64) {
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    if unsafe { libc::getrusage(who, &mut r) } != 0 {
        return (0.0, 0.0);
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(r.ru_stime), t(r.ru_utime))
}
