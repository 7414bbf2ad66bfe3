//! The built binary's configuration layers (flags > `PUSHGATE_*` > `--config` file > defaults),
//! seen through `--print-config`, and `--log-format json`.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, ensure};

/// The binary with no `PUSHGATE_*` variable from the test's own environment.
fn pushgate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushgate"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PUSHGATE_") {
            command.env_remove(name);
        }
    }
    command
}

#[test]
fn flags_beat_the_environment_which_beats_the_file_which_beats_defaults() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("pushgate.toml");
    std::fs::write(
        &file,
        r#"
listen = "0.0.0.0:9000"
max_connections = 5
history_events = 7
sse_heartbeat = 20
max_body_bytes = "2MiB"
history_max_bytes = "64MiB"
sources = ["postgres://app:secret@db/shop"]
log_format = "json"
publish_rate = 50
max_connections_per_ip = 10
redis = "redis://:hunter2@cache:6379/1"
"#,
    )?;
    let output = pushgate()
        .args(["serve", "--config"])
        .arg(&file)
        .args(["--history-events", "9", "--publish-burst", "70", "--print-config"])
        .env("PUSHGATE_MAX_CONNECTIONS", "6")
        .env("PUSHGATE_MAX_CONNECTIONS_PER_IP", "0")
        .env("PUSHGATE_HISTORY_EVENTS", "8")
        .output()?;
    ensure!(output.status.success(), "exit {}: {}", output.status, String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout)?;
    let table: toml::Table = printed.parse().with_context(|| format!("not TOML:\n{printed}"))?;
    let get = |key: &str| table.get(key).map(ToString::to_string).unwrap_or_default();
    assert_eq!(get("history_events"), "9", "the flag wins:\n{printed}");
    assert_eq!(get("max_connections"), "6", "the variable wins over the file:\n{printed}");
    assert_eq!(get("listen"), r#""0.0.0.0:9000""#, "the file wins over the default:\n{printed}");
    assert_eq!(get("sse_heartbeat"), r#""20s""#, "{printed}");
    assert_eq!(get("max_body_bytes"), r#""2MiB""#, "{printed}");
    assert_eq!(get("history_max_bytes"), r#""64MiB""#, "{printed}");
    assert_eq!(get("log_format"), r#""json""#, "{printed}");
    assert_eq!(get("longpoll_timeout"), r#""25s""#, "the default stays:\n{printed}");
    assert_eq!(get("publish_rate"), "50", "{printed}");
    assert_eq!(get("publish_burst"), "70", "{printed}");
    assert_eq!(get("max_connections_per_ip"), "0", "{printed}");
    ensure!(!printed.contains("secret") && printed.contains("app:***@db"), "{printed}");
    assert_eq!(get("redis"), r#""redis://:***@cache:6379/1""#, "the Redis password is hidden:\n{printed}");

    // The printed configuration is itself a valid file, and prints the same.
    let again = dir.path().join("again.toml");
    std::fs::write(&again, &printed)?;
    let output = pushgate().arg("--config").arg(&again).arg("--print-config").output()?;
    ensure!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8(output.stdout)?, printed);
    Ok(())
}

#[test]
fn an_unknown_key_in_the_file_is_an_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("pushgate.toml");
    std::fs::write(&file, "max_conections = 5\n")?;
    let output = pushgate().arg("--config").arg(&file).arg("--print-config").output()?;
    ensure!(!output.status.success(), "a typo was accepted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(stderr.contains("max_conections"), "{stderr}");
    Ok(())
}

#[test]
fn json_logs_are_one_object_a_line_on_stderr() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut child = pushgate()
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--no-demo", "--log-format", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("stderr")?;
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // The "listening" line comes at start; wait for it, bounded.
    let result = (|| -> anyhow::Result<()> {
        loop {
            let line = received.recv_timeout(Duration::from_secs(10)).context("no listening line")?;
            let object: serde_json::Value =
                serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))?;
            ensure!(object["level"].is_string(), "{line}");
            if object["fields"]["message"] == "listening" {
                return Ok(());
            }
        }
    })();
    child.kill().ok();
    child.wait().ok();
    result
}

#[test]
fn print_config_redacts_the_jwt_secret_and_admin_key_read_from_anywhere() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let secret_file = dir.path().join("jwt.secret");
    std::fs::write(&secret_file, "file-secret-value\n")?;
    let file = dir.path().join("pushgate.toml");
    std::fs::write(&file, "admin_key = \"file-admin-key\"\nanonymous_subscribe = [\"news.*\"]\n")?;
    let output = pushgate()
        .arg("--config")
        .arg(&file)
        .arg("--jwt-secret-file")
        .arg(&secret_file)
        .args(["--cors-origins", "https://a.example", "--print-config"])
        .output()?;
    ensure!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout)?;
    let table: toml::Table = printed.parse()?;
    assert_eq!(table["jwt_secret"].as_str(), Some("<redacted>"), "{printed}");
    assert_eq!(table["admin_key"].as_str(), Some("<redacted>"), "{printed}");
    assert_eq!(table["anonymous_subscribe"].to_string(), r#"["news.*"]"#, "{printed}");
    assert_eq!(table["cors_origins"].to_string(), r#"["https://a.example"]"#, "{printed}");
    ensure!(!printed.contains("file-secret-value") && !printed.contains("file-admin-key"), "{printed}");

    let from_env =
        pushgate().env("PUSHGATE_JWT_SECRET", "env-secret-value").arg("--print-config").output()?;
    let printed = String::from_utf8(from_env.stdout)?;
    ensure!(
        printed.contains(r#"jwt_secret = "<redacted>""#) && !printed.contains("env-secret-value"),
        "{printed}"
    );

    let missing =
        pushgate().args(["--jwt-secret-file", "/nonexistent/jwt.secret", "--print-config"]).output()?;
    ensure!(!missing.status.success(), "a missing secret file was accepted");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    ensure!(stderr.contains("/nonexistent/jwt.secret"), "{stderr}");
    Ok(())
}

#[test]
fn coalesce_comes_from_the_flag_the_environment_or_the_file_and_is_bounded() -> anyhow::Result<()> {
    let print = |command: &mut Command| -> anyhow::Result<String> {
        let output = command.arg("--print-config").output()?;
        ensure!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let table: toml::Table = String::from_utf8(output.stdout)?.parse()?;
        Ok(table.get("coalesce").map(ToString::to_string).unwrap_or_default())
    };
    assert_eq!(print(&mut pushgate())?, r#""0s""#, "off by default");
    assert_eq!(print(pushgate().args(["--coalesce", "5ms"]))?, r#""5ms""#);
    assert_eq!(print(pushgate().env("PUSHGATE_COALESCE", "10ms"))?, r#""10ms""#);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("pushgate.toml");
    std::fs::write(&file, "coalesce = \"50ms\"\n")?;
    assert_eq!(print(pushgate().arg("--config").arg(&file))?, r#""50ms""#);

    let output = pushgate().args(["--coalesce", "soon", "--print-config"]).output()?;
    ensure!(!output.status.success(), "a bad duration was accepted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(stderr.contains("--coalesce"), "stderr names the option:\n{stderr}");

    let output = pushgate()
        .args(["serve", "--listen", "127.0.0.1:0", "--no-demo", "--coalesce", "2s"])
        .env_remove("RUST_LOG")
        .output()?;
    ensure!(!output.status.success(), "a 2 s window was accepted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(stderr.contains("coalesce is 2s; at most 1s"), "stderr says why:\n{stderr}");
    Ok(())
}

#[test]
fn print_config_refuses_what_serve_refuses_with_the_same_line() -> anyhow::Result<()> {
    let bad = ["--no-demo", "--longpoll-timeout", "200s"];
    let printed = pushgate().args(bad).arg("--print-config").output()?;
    ensure!(
        !printed.status.success(),
        "--print-config printed what serve refuses:\n{}",
        String::from_utf8_lossy(&printed.stdout)
    );
    ensure!(printed.stdout.is_empty(), "{}", String::from_utf8_lossy(&printed.stdout));
    let served = pushgate()
        .arg("serve")
        .args(bad)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "off")
        .output()?;
    ensure!(!served.status.success(), "serve started with a long-poll timeout above its maximum");
    let (printed, served) = (String::from_utf8(printed.stderr)?, String::from_utf8(served.stderr)?);
    ensure!(printed.contains("long-poll timeout (200s) exceeds the long-poll maximum (120s)"), "{printed}");
    assert_eq!(printed, served, "the same one-line error");

    // The same from the file: values there go through the same checks.
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("pushgate.toml");
    std::fs::write(&file, "longpoll_timeout = \"200s\"\n")?;
    let from_file = pushgate().arg("--config").arg(&file).arg("--print-config").output()?;
    assert_eq!(String::from_utf8(from_file.stderr)?, printed);
    Ok(())
}

#[test]
fn a_bad_value_in_the_file_names_its_key_in_one_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("pushgate.toml");
    std::fs::write(&file, "max_connections = 5\nmax_body_bytes = \"2XB\"\n")?;
    let output = pushgate().arg("--config").arg(&file).arg("--print-config").output()?;
    ensure!(!output.status.success(), "a bad size was accepted");
    let stderr = String::from_utf8(output.stderr)?;
    ensure!(
        stderr.starts_with("error: invalid value for `max_body_bytes` in the configuration file")
            && stderr.contains("\"2XB\"")
            && stderr.trim_end().lines().count() == 1,
        "{stderr}"
    );
    Ok(())
}
