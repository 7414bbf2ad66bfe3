//! The crate's futures can run on a multi-threaded runtime: spawned, not only blocked on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use pushgate_sources::{SourceNames, TableSpec, install, uninstall};

fn assert_send<T: Send>(_: &T) {}

#[test]
fn install_and_uninstall_futures_are_send() {
    let names = SourceNames::default();
    let tables: [TableSpec; 0] = [];
    let install = install("sqlite::memory:", &names, &tables, true);
    assert_send(&install);
    let uninstall = uninstall("sqlite::memory:", &names, None, true);
    assert_send(&uninstall);
}

#[cfg(all(feature = "postgres", feature = "mysql"))]
#[tokio::test]
async fn a_refused_connection_says_so_at_once() {
    // Nothing listens on port 1: the error must name the refusal, not a pool timeout, and come
    // well before the pool's 10 s acquire timeout.
    for url in ["postgres://root@127.0.0.1:1/test", "mysql://root@127.0.0.1:1/test"] {
        let started = std::time::Instant::now();
        let err = install(url, &SourceNames::default(), &[], true).await.unwrap_err();
        let text = err.to_string().to_lowercase();
        assert!(text.contains("refused"), "{url}: {err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "{url}: took {:?}", started.elapsed());
    }
}
