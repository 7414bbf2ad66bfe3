//! Runs tiny scenarios (a few subscribers, 2 s) against a gateway child started by the bench
//! itself: the four transports one after another, and several at once (`--concurrent`), and
//! checks that every transport delivered and nothing was lost, repeated or reordered. Each run
//! is bounded to 30 s.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

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

/// Runs the bench with `args` (plus the tiny scenario's timing) against a gateway child and
/// returns its JSON reports and its terminal output.
fn run_bench(args: &[&str]) -> (Vec<serde_json::Value>, String) {
    let bench = Path::new(env!("CARGO_BIN_EXE_pushgate-bench"));
    let gateway = gateway_next_to(bench).expect("the gateway binary");
    let json = std::env::temp_dir().join(format!(
        "pushgate-bench-test-{}-{}.json",
        std::process::id(),
        args.join("_").replace(',', "-")
    ));
    let mut child = Command::new(bench)
        .args(args)
        .args(["--rate", "50", "--duration", "2s"])
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
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "the bench failed:\n{stdout}\n{stderr}");
    let text = std::fs::read_to_string(&json).expect("the JSON results");
    std::fs::remove_file(&json).ok();
    let reports: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let reports = reports.as_array().expect("an array of transports").clone();
    assert!(stdout.contains("transport"), "the table is printed:\n{stdout}");
    (reports, stdout)
}

fn names(reports: &[serde_json::Value]) -> Vec<&str> {
    reports.iter().filter_map(|r| r["transport"].as_str()).collect()
}

fn field(report: &serde_json::Value, name: &str) -> u64 {
    report[name].as_u64().unwrap_or_else(|| panic!("{name} in {report}"))
}

/// Every delivery owed to the report's subscribers arrived once, in order.
fn assert_all_accounted(report: &serde_json::Value, stdout: &str) {
    let transport = &report["transport"];
    assert!(field(report, "delivered") > 0, "{transport}: nothing delivered\n{stdout}");
    assert_eq!(field(report, "lost"), 0, "{transport}: lost messages\n{stdout}");
    assert_eq!(field(report, "duplicated"), 0, "{transport}\n{stdout}");
    assert_eq!(field(report, "out_of_order"), 0, "{transport}\n{stdout}");
    assert_eq!(field(report, "delivered"), field(report, "expected"), "{transport}\n{stdout}");
    assert!(report["server_cpu_seconds"].is_number(), "{transport}: the child's CPU is measured");
    assert!(report["latency_us"]["p99"].as_u64().is_some_and(|p99| p99 > 0));
}

#[test]
fn a_tiny_scenario_delivers_everything_on_every_transport() {
    let (reports, stdout) = run_bench(&["--subscribers", "20", "--topics", "2"]);
    assert_eq!(names(&reports), ["poll", "longpoll", "sse", "ws"]);
    for report in &reports {
        assert_all_accounted(report, &stdout);
        assert_eq!(report["concurrent"], false);
    }
    // One after another: a fresh gateway child per transport.
    let mut pids: Vec<u64> = reports.iter().map(|r| field(r, "server_pid")).collect();
    pids.dedup();
    assert_eq!(pids.len(), 4, "one child per transport: {pids:?}");
}

/// The reports of one `--concurrent` run: one per transport, all accounted for, and all of one
/// run (one gateway child, one publisher, one window).
fn check_concurrent(transports: &str, expected_names: &[&str]) {
    let (reports, stdout) =
        run_bench(&["--concurrent", "--transports", transports, "--subscribers", "8", "--topics", "2"]);
    assert_eq!(names(&reports), expected_names);
    for report in &reports {
        assert_all_accounted(report, &stdout);
        assert_eq!(report["concurrent"], true, "{stdout}");
        assert_eq!(report["group_of"], serde_json::json!(expected_names));
        assert_eq!(field(report, "subscribers"), 8);
        assert_eq!(field(report, "connected"), 8, "{stdout}");
        // 50 publishes/s for 2 s over 2 topics, 4 subscribers each: the same for every group.
        assert_eq!(field(report, "expected"), field(report, "published") * 4, "{stdout}");
    }
    let first = &reports[0];
    for other in &reports[1..] {
        for shared in ["server_pid", "published", "expected"] {
            assert_eq!(first[shared], other[shared], "{shared} differs: not one run\n{stdout}");
        }
        assert_eq!(first["window_s"], other["window_s"], "one measured window\n{stdout}");
        assert_eq!(first["server_cpu_seconds"], other["server_cpu_seconds"]);
    }
    // CPU per delivery divides the run's CPU by the deliveries of all groups.
    let all: u64 = reports.iter().map(|r| field(r, "delivered")).sum();
    let cpu = first["server_cpu_seconds"].as_f64().expect("server CPU");
    let per = first["server_cpu_us_per_delivery"].as_f64().expect("CPU per delivery");
    assert!((per - cpu * 1e6 / all as f64).abs() <= 1e-6 * per.max(1.0), "{per} vs {cpu} s / {all}");
    assert!(stdout.contains(&format!("{}*", expected_names[0])), "rows are marked:\n{stdout}");
    assert!(stdout.contains(&format!("pushgate {}: one run", expected_names.join("+"))), "{stdout}");
}

#[test]
fn concurrent_sse_and_ws_share_one_run_and_account_every_delivery() {
    check_concurrent("sse,ws", &["sse", "ws"]);
}

#[test]
fn concurrent_polling_and_ws_share_one_run_and_account_every_delivery() {
    check_concurrent("longpoll,poll,ws", &["longpoll", "poll", "ws"]);
}
