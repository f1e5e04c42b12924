//! The idle poll finds the epoll file of a runtime built as `main` builds it. Alone in its own
//! test binary: the search compares the process's epoll files before and after the build, which
//! another test building a runtime at the same time would disturb.

#[test]
fn the_poll_watches_the_runtime_it_was_built_with() {
    let before = forkdb_server::idlepoll::eventpoll_fds();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(!forkdb_server::idlepoll::is_installed());
    forkdb_server::idlepoll::install_for_runtime(&before);
    assert!(forkdb_server::idlepoll::is_installed());
    drop(rt);
}
