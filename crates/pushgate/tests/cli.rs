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
    for needle in ["serve", "RUST_LOG", "--version"] {
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
