//! Runs a tiny scenario (20 subscribers, 2 s, all four transports) against a gateway child
//! started by the bench itself, and checks that every transport delivered and nothing was lost,
//! repeated or reordered. The run is bounded to 30 s.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

const RUN_LIMIT: Duration = Duration::from_secs(30);

/// The gateway binary of the same build profile as the bench, built first if missing (a
/// no-op when it is fresh), so the bench finds it next to itself.
fn gateway_next_to(bench: &Path) -> anyhow::Result<PathBuf> {
    let dir = bench.parent().context("the bench binary has no directory")?;
    let release = dir.ends_with("release");
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--quiet", "-p", "pushgate", "--bin", "pushgate"]);
    if release {
        build.arg("--release");
    }
    anyhow::ensure!(build.status()?.success(), "building the gateway failed");
    let gateway = dir.join("pushgate");
    anyhow::ensure!(gateway.is_file(), "no gateway at {}", gateway.display());
    Ok(gateway)
}

#[test]
fn a_tiny_scenario_delivers_everything_on_every_transport() {
    let bench = Path::new(env!("CARGO_BIN_EXE_pushgate-bench"));
    let gateway = gateway_next_to(bench).expect("the gateway binary");
    let json = std::env::temp_dir().join(format!("pushgate-bench-test-{}.json", std::process::id()));
    let mut child = Command::new(bench)
        .args(["--subscribers", "20", "--topics", "2", "--rate", "50", "--duration", "2s"])
        .args(["--poll-interval", "200ms", "--idle", "300ms", "--drain", "2s"])
        .arg("--server-bin")
        .arg(&gateway)
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bench starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting on the bench") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            child.kill().ok();
            panic!("the tiny scenario took more than {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().expect("the bench's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "the bench failed:\n{stdout}\n{stderr}");
    let text = std::fs::read_to_string(&json).expect("the JSON results");
    std::fs::remove_file(&json).ok();
    let reports: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let reports = reports.as_array().expect("an array of transports");
    let names: Vec<&str> = reports.iter().filter_map(|r| r["transport"].as_str()).collect();
    assert_eq!(names, ["poll", "longpoll", "sse", "ws"]);
    for report in reports {
        let field = |name: &str| report[name].as_u64().unwrap_or_else(|| panic!("{name} in {report}"));
        let transport = &report["transport"];
        assert!(field("delivered") > 0, "{transport}: nothing delivered\n{stdout}");
        assert_eq!(field("lost"), 0, "{transport}: lost messages\n{stdout}");
        assert_eq!(field("duplicated"), 0, "{transport}\n{stdout}");
        assert_eq!(field("out_of_order"), 0, "{transport}\n{stdout}");
        assert_eq!(field("delivered"), field("expected"), "{transport}\n{stdout}");
        assert!(report["server_cpu_seconds"].is_number(), "{transport}: the child's CPU is measured");
        assert!(report["latency_us"]["p99"].as_u64().is_some_and(|p99| p99 > 0));
    }
    assert!(stdout.contains("transport"), "the table is printed:\n{stdout}");
}
