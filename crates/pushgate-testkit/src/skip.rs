//! What a test does when the database server it needs cannot be reached: it fails, naming the
//! server and how to skip, unless `PUSHGATE_SKIP_DB=1` asks for the skip. A skipped test prints
//! `SKIPPED <test>: <reason>` to stderr and appends the same line to `skipped-tests.log` in the
//! profile's directory under the target directory (`target/debug/skipped-tests.log`), because a
//! skipped test passes and test runners show no output of passing tests: the log is what counts
//! them (`grep -c SKIPPED target/debug/skipped-tests.log`).
//!
//! The file has no dependencies and names nothing of the crate around it: pushgate-sources'
//! tests cannot depend on this crate (it depends on the gateway, which depends on them), so they
//! include the file by its path.

use std::io::Write as _;
use std::path::PathBuf;

/// The environment variable that turns an unreachable database server into a skip (value `1`).
pub const SKIP_DB: &str = "PUSHGATE_SKIP_DB";

/// Reports that `server` (what the test connects to, such as `postgres at
/// postgres://root@127.0.0.1:5432/test`) cannot be reached, for `why`. Without
/// `PUSHGATE_SKIP_DB=1` it panics: the test fails with one line saying so. With it, the skip is
/// printed and logged (see the module documentation) and the caller returns early.
///
/// # Panics
/// Unless `PUSHGATE_SKIP_DB=1`: a missing server is a failure by default.
pub fn database_unreachable(server: &str, why: &str) {
    let why = why.replace(['\r', '\n'], " ");
    if std::env::var(SKIP_DB).as_deref() != Ok("1") {
        panic!("{server} is not reachable ({why}): start it, or set {SKIP_DB}=1 to skip the database tests");
    }
    // libtest and nextest name each test's thread after the test.
    let test = std::thread::current().name().unwrap_or("a database test").to_owned();
    let line = format!("SKIPPED {test}: {server} is not reachable ({why})");
    eprintln!("{line}");
    // One write of the whole line: tests skip in parallel threads, and `writeln!` may write the
    // text and its newline apart, joining two skips on one line of the log.
    let logged = skip_log().and_then(|path| {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).ok()?;
        file.write_all(format!("{line}\n").as_bytes()).ok()
    });
    if logged.is_none() {
        eprintln!("(the skip could not be written to the skip log)");
    }
}

/// `<target>/<profile>/skipped-tests.log`: test binaries run from `<target>/<profile>/deps/`.
pub fn skip_log() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("skipped-tests.log"))
}
