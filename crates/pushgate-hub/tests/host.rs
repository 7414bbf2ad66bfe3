//! Depending on pushgate-hub does not change how the host program parses JSON: the fixture
//! `tests/fixtures/host/main.rs` is built as a workspace of its own (within this workspace,
//! features of all members unify and would hide what the hub alone turns on) and run.
//!
//! A test binary of its own, not a module of `tests/it`: the cargo build it runs takes both
//! cores for a while, and `cargo test` runs one binary's tests in parallel threads, so beside the
//! hub's tests it would starve their real-time bounds (`it/auto_batch.rs`). It links nothing but
//! the standard library, so being separate costs little.

use std::path::Path;
use std::process::Command;

#[test]
fn a_host_with_a_flattened_f64_builds_and_parses_with_the_hub_as_a_dependency() {
    let hub = Path::new(env!("CARGO_MANIFEST_DIR"));
    let host = Path::new(env!("CARGO_TARGET_TMPDIR")).join("host");
    std::fs::create_dir_all(host.join("src")).expect("fixture folder");
    std::fs::copy(hub.join("tests/fixtures/host/main.rs"), host.join("src/main.rs")).expect("fixture main");
    // The workspace's lock file, so the build uses the versions already downloaded (offline).
    std::fs::copy(hub.join("../../Cargo.lock"), host.join("Cargo.lock")).expect("lock file");
    let manifest = format!(
        r#"[package]
name = "host"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
pushgate-hub = {{ path = {hub:?} }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

[workspace]
"#,
        hub = hub.display().to_string()
    );
    std::fs::write(host.join("Cargo.toml"), manifest).expect("fixture manifest");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["run", "--quiet", "--offline", "--manifest-path"])
        .arg(host.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(host.join("target"))
        // The outer build's settings are not the fixture's.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the host failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), r#"s1 21.5 {"total":12345678901234567890.12}"#);
}
