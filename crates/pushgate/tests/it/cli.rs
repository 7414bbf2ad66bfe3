//! The `pushgate` command line: the help texts name every option, its
//! environment variable and its default.

use std::process::Command;

use anyhow::{Context as _, ensure};

/// Runs the built binary with `args` and returns its stdout; it must exit 0.
fn run(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .args(args)
        .output()
        .context("running the pushgate binary")?;
    ensure!(output.status.success(), "pushgate {args:?} exited with {}", output.status);
    Ok(String::from_utf8(output.stdout)?)
}

#[test]
fn top_level_help_names_the_subcommand_and_logging() -> anyhow::Result<()> {
    let help = run(&["--help"])?;
    for needle in ["serve", "db", "RUST_LOG", "--version", "pushgate-demo.db"] {
        ensure!(help.contains(needle), "`pushgate --help` lacks {needle:?}:\n{help}");
    }
    Ok(())
}

#[test]
fn serve_help_names_listen_with_its_env_and_default() -> anyhow::Result<()> {
    let help = run(&["serve", "--help"])?;
    for needle in ["--listen <ADDR>", "PUSHGATE_LISTEN", "127.0.0.1:8080"] {
        ensure!(help.contains(needle), "`pushgate serve --help` lacks {needle:?}:\n{help}");
    }
    Ok(())
}

#[test]
fn both_help_texts_document_every_option_with_its_env_and_default() -> anyhow::Result<()> {
    for args in [&["--help"][..], &["serve", "--help"][..]] {
        every_option_documented(&run(args)?)?;
    }
    Ok(())
}

fn every_option_documented(help: &str) -> anyhow::Result<()> {
    let options = [
        ("--max-body-bytes <BYTES>", "PUSHGATE_MAX_BODY_BYTES", "1MiB"),
        ("--body-read-timeout <DURATION>", "PUSHGATE_BODY_READ_TIMEOUT", "10s"),
        ("--max-answer-bytes <BYTES>", "PUSHGATE_MAX_ANSWER_BYTES", "4MiB"),
        ("--longpoll-timeout <DURATION>", "PUSHGATE_LONGPOLL_TIMEOUT", "25s"),
        ("--longpoll-max-timeout <DURATION>", "PUSHGATE_LONGPOLL_MAX_TIMEOUT", "2m"),
        ("--sse-heartbeat <DURATION>", "PUSHGATE_SSE_HEARTBEAT", "15s"),
        ("--ws-max-message-bytes <BYTES>", "PUSHGATE_WS_MAX_MESSAGE_BYTES", "64KiB"),
        ("--max-connections <N>", "PUSHGATE_MAX_CONNECTIONS", "10000"),
        ("--header-read-timeout <DURATION>", "PUSHGATE_HEADER_READ_TIMEOUT", "10s"),
        ("--idle-timeout <DURATION>", "PUSHGATE_IDLE_TIMEOUT", "5m"),
        ("--drain-timeout <DURATION>", "PUSHGATE_DRAIN_TIMEOUT", "10s"),
        ("--max-topics-per-subscription <N>", "PUSHGATE_MAX_TOPICS_PER_SUBSCRIPTION", "100"),
        ("--history-events <N>", "PUSHGATE_HISTORY_EVENTS", "1000"),
        ("--history-age <DURATION>", "PUSHGATE_HISTORY_AGE", "10m"),
        ("--history-max-bytes <BYTES>", "PUSHGATE_HISTORY_MAX_BYTES", "128MiB"),
        ("--demo-db <PATH>", "PUSHGATE_DEMO_DB", "./pushgate-demo.db"),
        ("--tcp-keepalive-idle <DURATION>", "PUSHGATE_TCP_KEEPALIVE_IDLE", "30s"),
        ("--tcp-keepalive-interval <DURATION>", "PUSHGATE_TCP_KEEPALIVE_INTERVAL", "10s"),
        ("--tcp-keepalive-retries <N>", "PUSHGATE_TCP_KEEPALIVE_RETRIES", "3"),
        ("--tcp-user-timeout <DURATION>", "PUSHGATE_TCP_USER_TIMEOUT", "30s"),
    ];
    for (flag, env, default) in options {
        let entry = help_entry(help, flag)?;
        for needle in [env, &format!("[default: {default}]")] {
            ensure!(entry.contains(needle), "{flag}'s help lacks {needle:?}:\n{entry}");
        }
    }
    // Without a default; the sources' variable may hold passwords, so its value is never shown.
    for (flag, needles) in [
        ("--source <URL>", &["[env: PUSHGATE_SOURCES]", "Repeat", "--no-demo", "pushgate db install"][..]),
        ("--no-demo", &["PUSHGATE_NO_DEMO", "/demo"]),
        (
            "--ws-max-write-buffer-bytes <BYTES>",
            &["PUSHGATE_WS_MAX_WRITE_BUFFER_BYTES", "2 × --max-body-bytes"],
        ),
    ] {
        let entry = help_entry(help, flag)?;
        for needle in needles {
            ensure!(entry.contains(needle), "{flag}'s help lacks {needle:?}:\n{entry}");
        }
    }
    Ok(())
}

/// The help of one option: clap prints its help, env and default together, up to the next
/// option.
fn help_entry<'a>(help: &'a str, flag: &str) -> anyhow::Result<&'a str> {
    let start = help.find(flag).with_context(|| format!("the help lacks {flag}:\n{help}"))?;
    let entry = &help[start..];
    Ok(&entry[..entry[flag.len()..].find("\n  -").map_or(entry.len(), |end| end + flag.len())])
}

#[test]
fn db_help_names_its_subcommands_and_options() -> anyhow::Result<()> {
    let help = run(&["db", "--help"])?;
    for needle in ["install", "uninstall"] {
        ensure!(help.contains(needle), "`pushgate db --help` lacks {needle:?}:\n{help}");
    }
    let help = run(&["db", "install", "--help"])?;
    for needle in ["--url <URL>", "--table <TABLE>", "--topic <TABLE=TOPIC>", "--dry-run", "ALTER TABLE"] {
        ensure!(help.contains(needle), "`pushgate db install --help` lacks {needle:?}:\n{help}");
    }
    let help = run(&["db", "uninstall", "--help"])?;
    for needle in ["--url <URL>", "--table <TABLE>", "--dry-run"] {
        ensure!(help.contains(needle), "`pushgate db uninstall --help` lacks {needle:?}:\n{help}");
    }
    Ok(())
}

#[test]
fn serve_refuses_an_invalid_value_before_starting() -> anyhow::Result<()> {
    let output = Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--header-read-timeout", "soon"])
        .output()
        .context("running the pushgate binary")?;
    ensure!(!output.status.success(), "an invalid duration was accepted");
    let stderr = String::from_utf8(output.stderr)?;
    ensure!(stderr.contains("--header-read-timeout"), "stderr names the option:\n{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--idle-timeout", "30s"])
        .env_remove("RUST_LOG")
        .output()
        .context("running the pushgate binary")?;
    ensure!(!output.status.success(), "an idle timeout shorter than the long-poll maximum was accepted");
    let stderr = String::from_utf8(output.stderr)?;
    ensure!(stderr.contains("idle timeout"), "stderr says why:\n{stderr}");
    Ok(())
}

/// Runs the binary with `RUST_BACKTRACE=1` and no logs; it must fail with exit code `code` and
/// say only `error: …` on one line, naming `needle`, with no backtrace.
fn fails_in_one_line(args: &[&str], code: i32, needle: &str) -> anyhow::Result<()> {
    let output = Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LOG", "off")
        .env_remove("PUSHGATE_CONFIG")
        .output()
        .context("running the pushgate binary")?;
    let stderr = String::from_utf8(output.stderr)?;
    ensure!(output.status.code() == Some(code), "pushgate {args:?} exited with {}:\n{stderr}", output.status);
    ensure!(!stderr.to_lowercase().contains("backtrace"), "pushgate {args:?} printed a backtrace:\n{stderr}");
    ensure!(stderr.contains(needle), "pushgate {args:?} does not say {needle:?}:\n{stderr}");
    if code == 1 {
        ensure!(
            stderr.starts_with("error: ") && stderr.trim_end().lines().count() == 1,
            "pushgate {args:?} did not print one line:\n{stderr}"
        );
    }
    Ok(())
}

#[test]
fn user_errors_are_one_line_without_a_backtrace_even_with_rust_backtrace_set() -> anyhow::Result<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let taken = taken.local_addr()?.to_string();
    fails_in_one_line(&["serve", "--no-demo", "--listen", &taken], 1, &format!("cannot listen on {taken}"))?;
    // A port nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let redis = format!("redis://:hunter2@127.0.0.1:{closed}");
    fails_in_one_line(
        &["serve", "--no-demo", "--listen", "127.0.0.1:0", "--redis", &redis],
        1,
        "cannot use redis at redis://:***@127.0.0.1",
    )?;
    fails_in_one_line(&["--config", "/nonexistent/pushgate.toml"], 1, "/nonexistent/pushgate.toml")?;
    fails_in_one_line(&["--no-demo", "--idle-timeout", "30s"], 1, "idle timeout")?;
    // clap's own usage errors keep clap's format and exit code.
    fails_in_one_line(&["--max-connections", "many"], 2, "--max-connections")?;
    Ok(())
}

/// `--worker-threads N` runs the gateway on N runtime threads, as the runtime itself counts
/// them and the startup log reports; 3 differs from the default on any machine without exactly
/// three cores.
#[tokio::test]
async fn worker_threads_sets_the_number_of_runtime_threads() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_pushgate"));
    for threads in [1_usize, 3] {
        let mut gateway = pushgate_testkit::GatewayProcess::start(
            binary,
            dir.path(),
            &["--no-demo", "--worker-threads", &threads.to_string()],
        )
        .await?;
        let logged = gateway.wait_for_log(&["runtime started"], std::time::Duration::from_secs(10)).await;
        gateway.kill().await?;
        let line = logged?;
        let needle = format!("\"worker_threads\":{threads}");
        ensure!(line.contains(&needle), "--worker-threads {threads}: the runtime reported {line}");
    }
    fails_in_one_line(&["--no-demo", "--worker-threads", "0"], 2, "--worker-threads")?;
    Ok(())
}
