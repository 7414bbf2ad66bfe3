//! `pushgate db install|uninstall` through the built binary, on an SQLite file: the dry run
//! prints the SQL and changes nothing, install is idempotent and captures changes, uninstall
//! removes everything, and failures say what failed and exit non-zero.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

/// Runs the built binary with `args`.
fn pushgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushgate")).args(args).env_remove("RUST_LOG").output().unwrap()
}

/// Runs `pushgate args`, which must succeed; returns its stdout.
fn succeeds(args: &[&str]) -> String {
    let output = pushgate(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "pushgate {args:?} exited with {}:\n{stderr}", output.status);
    String::from_utf8(output.stdout).unwrap()
}

async fn open(path: &Path) -> SqlitePool {
    SqlitePool::connect_with(SqliteConnectOptions::new().filename(path).create_if_missing(true))
        .await
        .unwrap()
}

/// How many objects of `kind` (`table`, `trigger`) named like `pattern` the file has.
async fn count(pool: &SqlitePool, kind: &str, pattern: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = ?1 AND name LIKE ?2")
        .bind(kind)
        .bind(pattern)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn install_and_uninstall_an_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    let pool = open(&path).await;
    sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)").execute(&pool).await.unwrap();
    let url = format!("sqlite://{}", path.display());

    let sql = succeeds(&["db", "install", "--url", &url, "--table", "t", "--dry-run"]);
    for needle in
        ["CREATE TABLE IF NOT EXISTS \"pushgate_outbox\"", "CREATE TRIGGER \"pushgate_t_ins\"", "END;"]
    {
        assert!(sql.contains(needle), "the dry run prints {needle:?}:\n{sql}");
    }
    assert_eq!(count(&pool, "table", "pushgate_%").await, 0, "a dry run changes nothing");
    assert_eq!(count(&pool, "trigger", "%").await, 0, "a dry run changes nothing");

    for _ in 0..2 {
        let summary = succeeds(&["db", "install", "--url", &url, "--table", "t", "--topic", "t=shop.t"]);
        assert!(summary.contains("t -> topic shop.t"), "{summary}");
    }
    assert_eq!(count(&pool, "table", "pushgate_outbox").await, 1);
    assert_eq!(count(&pool, "trigger", "pushgate_t_%").await, 3);
    sqlx::query("INSERT INTO t (name) VALUES ('a')").execute(&pool).await.unwrap();
    let (changes, topic): (i64, String) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pushgate_outbox), (SELECT topic FROM pushgate_watch WHERE table_name = 't')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((changes, topic.as_str()), (1, "shop.t"), "the trigger records a change");

    let sql = succeeds(&["db", "uninstall", "--url", &url, "--dry-run"]);
    assert!(sql.contains("DROP TRIGGER IF EXISTS \"pushgate_t_ins\";"), "{sql}");
    assert_eq!(count(&pool, "trigger", "pushgate_t_%").await, 3, "a dry run changes nothing");

    let summary = succeeds(&["db", "uninstall", "--url", &url, "--table", "t"]);
    assert!(summary.contains("the triggers of t"), "{summary}");
    assert_eq!(count(&pool, "trigger", "%").await, 0);
    assert_eq!(count(&pool, "table", "pushgate_outbox").await, 1, "only the table's triggers go");
    succeeds(&["db", "uninstall", "--url", &url]);
    assert_eq!(count(&pool, "table", "pushgate_%").await, 0);
    succeeds(&["db", "uninstall", "--url", &url]);
    pool.close().await;
}

#[test]
fn failures_say_what_failed_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("y.db").display());
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["db", "install", "--url", &url, "--table", "missing"],
            &["cannot install into sqlite://", "\"missing\""],
        ),
        (&["db", "install", "--url", &url, "--table", "t;x"], &["--table \"t;x\""]),
        (&["db", "install", "--url", &url, "--table", "t", "--topic", "u=x"], &["not given with --table"]),
        (
            &["db", "install", "--url", "oracle://db/x", "--table", "t"],
            &["cannot install into oracle://db/x", "scheme"],
        ),
    ];
    for (args, needles) in cases {
        let output = pushgate(args);
        assert!(!output.status.success(), "pushgate {args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for needle in needles {
            assert!(stderr.contains(needle), "pushgate {args:?}: stderr lacks {needle:?}:\n{stderr}");
        }
    }
    let output = pushgate(&["db", "install", "--url", &url]);
    assert_eq!(output.status.code(), Some(2), "clap refuses an install without --table");
}
