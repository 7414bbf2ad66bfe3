//! Sources over TLS, against database servers this test starts on loopback with a certificate
//! it makes: a private PostgreSQL cluster (`initdb` into a temp dir, `ssl = on`, only
//! `hostssl` connections allowed) and a private `mariadbd` (each session's cipher checked). The
//! URL's own parameters choose TLS (`sslmode`, `sslrootcert`; `ssl-mode`, `ssl-ca`), and the
//! whole pipeline (install, lease, tailer) runs over it. Fails loudly when a server binary is
//! missing.
#![cfg(all(feature = "postgres", feature = "mysql"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Running, data, next_event, test_hub, topic};
use pushgate_hub::{Cursor, Subscription};
use pushgate_sources::{SourceConfig, SourceNames, TableSpec, install};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::json;
use sqlx::Connection as _;
use tempfile::TempDir;
use tokio::time::{Instant, sleep};

/// How long a server may take to accept connections.
const START: Duration = Duration::from_secs(30);

/// A CA, a server certificate it signed for `localhost` and `127.0.0.1`, and an unrelated CA,
/// as PEM files.
struct Certs {
    ca: PathBuf,
    other_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Certs {
    fn write(dir: &Path) -> Self {
        let ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
        };
        let (trusted, other) = (ca("pushgate test CA"), ca("someone else's CA"));
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &trusted).unwrap();
        let certs = Self {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        std::fs::write(&certs.ca, trusted.pem()).unwrap();
        std::fs::write(&certs.other_ca, other.pem()).unwrap();
        std::fs::write(&certs.cert, cert.pem()).unwrap();
        std::fs::write(&certs.key, key.serialize_pem()).unwrap();
        // PostgreSQL refuses a key others can read.
        std::fs::set_permissions(&certs.key, std::fs::Permissions::from_mode(0o600)).unwrap();
        certs
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

/// The uid this test runs as (the owner of `/proc/self`).
fn euid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// A server process, stopped with `signal` (by its pid) and waited for on drop.
struct Server {
    child: Child,
    signal: &'static str,
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args([self.signal, &pid]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `url` accepts a connection (over whatever TLS it asks for).
async fn until_up(url: &str, server: &mut Server) {
    let deadline = Instant::now() + START;
    loop {
        let attempt = if url.starts_with("postgres") {
            sqlx::PgConnection::connect(url).await.map(drop)
        } else {
            sqlx::MySqlConnection::connect(url).await.map(drop)
        };
        match attempt {
            Ok(()) => return,
            // The server answered, and said no: waiting will not help, unless it said it is
            // still starting (PostgreSQL's 57P03).
            Err(sqlx::Error::Database(error)) if error.code().as_deref() != Some("57P03") => {
                panic!("the server refused the connection: {error}")
            }
            Err(error) => {
                if let Some(status) = server.child.try_wait().unwrap() {
                    panic!("the server exited with {status}; last error: {error}");
                }
                assert!(Instant::now() < deadline, "the server did not come up within {START:?}: {error}");
                sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A private PostgreSQL cluster on a free port: `ssl = on` with `certs`, only `hostssl`
/// connections from 127.0.0.1 (trusted), its socket in its own directory. Run as the
/// `postgres` user when this test runs as root (PostgreSQL refuses root).
async fn private_postgres(certs: &Certs) -> (Server, u16) {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)")
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .max()
        .expect("an initdb under /usr/lib/postgresql/*/bin");
    let dir = tempfile::tempdir().unwrap();
    let as_postgres = euid() == 0;
    let run = |program: &str| {
        let mut command = if as_postgres {
            let mut command = Command::new("setpriv");
            command.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]);
            command.arg(bin.join(program));
            command
        } else {
            Command::new(bin.join(program))
        };
        command.stdin(Stdio::null());
        command
    };
    let owned = |path: &Path| {
        if as_postgres {
            let status =
                Command::new("chown").args(["-R", "postgres:", &path.display().to_string()]).status();
            assert!(status.unwrap().success(), "chown {}", path.display());
        }
    };
    let data = dir.path().join("data");
    let tls = dir.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    for file in [&certs.cert, &certs.key] {
        std::fs::copy(file, tls.join(file.file_name().unwrap())).unwrap();
    }
    owned(dir.path());
    let initdb = run("initdb")
        .args(["-D", &data.display().to_string(), "-A", "trust", "-U", "root", "--no-sync", "-E", "UTF8"])
        .output()
        .unwrap();
    assert!(initdb.status.success(), "initdb: {}", String::from_utf8_lossy(&initdb.stderr));
    std::fs::write(data.join("pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
        .unwrap();
    owned(&data);
    let port = free_port();
    let child = run("postgres")
        .args(["-D", &data.display().to_string(), "-p", &port.to_string()])
        .args(["-k", &dir.path().display().to_string(), "-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "ssl=on", "-c", "fsync=off", "-c", "max_connections=30"])
        .args(["-c", &format!("ssl_cert_file={}", tls.join("server.pem").display())])
        .args(["-c", &format!("ssl_key_file={}", tls.join("server.key").display())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting postgres");
    // SIGINT: the fast shutdown, which ends the backends too.
    let mut server = Server { child, signal: "-INT", _dir: dir };
    until_up(&format!("postgres://root@127.0.0.1:{port}/postgres?sslmode=require"), &mut server).await;
    (server, port)
}

/// A private `mariadbd` on a free port with `certs`, and `performance_schema` on to show each
/// session's cipher. It runs without grant tables (anyone may connect as anyone, and
/// `require_secure_transport` is not enforced): enough for a TLS test, and it starts in a
/// few seconds, where `mariadb-install-db` alone takes more.
async fn private_mariadb(certs: &Certs) -> (Server, u16) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let port = free_port();
    let child = Command::new("mariadbd")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.path().join("sock").display()))
        .args(["--skip-grant-tables", "--user=root", "--bind-address=127.0.0.1", "--skip-log-bin"])
        .args(["--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M", "--performance-schema=ON"])
        .arg(format!("--port={port}"))
        .arg(format!("--ssl-cert={}", certs.cert.display()))
        .arg(format!("--ssl-key={}", certs.key.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mariadbd on PATH (apt-get install mariadb-server)");
    let mut server = Server { child, signal: "-TERM", _dir: dir };
    let url = format!("mysql://root@127.0.0.1:{port}?ssl-mode=REQUIRED");
    until_up(&url, &mut server).await;
    let mut conn = sqlx::MySqlConnection::connect(&url).await.unwrap();
    sqlx::Executor::execute(&mut conn, sqlx::raw_sql("CREATE DATABASE test")).await.unwrap();
    (server, port)
}

/// Runs `statement` on a connection of its own to `url`.
async fn sql(url: &str, statement: &str) {
    if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::Executor::execute(&mut conn, sqlx::raw_sql(statement)).await.unwrap();
    } else {
        let mut conn = sqlx::MySqlConnection::connect(url).await.unwrap();
        sqlx::Executor::execute(&mut conn, sqlx::raw_sql(statement)).await.unwrap();
    }
}

/// Creates `items` with `create`, installs its triggers through `url`, and starts a source with
/// `url` (lease session, pool and all); returns it, live, and a subscription to its topic.
async fn source_of_items(url: &str, create: &str) -> (Running, Subscription) {
    sql(url, create).await;
    install(url, &SourceNames::default(), &[TableSpec::new("items").unwrap()], false).await.unwrap();
    let hub = test_hub();
    let sub = hub.subscribe(&[topic("db.items")], Cursor::Now).unwrap();
    let running = Running::start(SourceConfig::new(url).poll_interval(Duration::from_millis(50)), &hub).await;
    (running, sub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sources_use_tls_as_the_url_asks() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::write(dir.path());
    let (_server, port) = private_postgres(&certs).await;
    let base = format!("postgres://root@127.0.0.1:{port}/postgres");

    // The server takes only TLS: without it, the connection is refused.
    let plain = install(&format!("{base}?sslmode=disable"), &SourceNames::default(), &[], true).await;
    let refused = plain.expect_err("a connection without TLS").to_string();
    assert!(refused.contains("no pg_hba.conf entry") || refused.contains("SSL off"), "{refused}");

    let require = format!("{base}?sslmode=require");
    let (running, mut sub) = source_of_items(&require, "CREATE TABLE items (id int PRIMARY KEY)").await;
    sql(&require, "INSERT INTO items VALUES (1)").await;
    assert_eq!(data(&*next_event(&mut sub).await)["new"]["id"], json!(1));
    running.stop().await;

    // Verified against the CA, by name: both the host name and the address are in the certificate.
    for host in ["127.0.0.1", "localhost"] {
        let url = format!(
            "postgres://root@{host}:{port}/postgres?sslmode=verify-full&sslrootcert={}",
            certs.ca.display()
        );
        install(&url, &SourceNames::default(), &[], true).await.unwrap_or_else(|err| panic!("{host}: {err}"));
    }
    // Another CA: refused, saying why.
    let url = format!("{base}?sslmode=verify-full&sslrootcert={}", certs.other_ca.display());
    let error =
        install(&url, &SourceNames::default(), &[], true).await.expect_err("an untrusted certificate");
    assert!(error.to_string().to_lowercase().contains("certificate"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_sources_use_tls_as_the_url_asks() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::write(dir.path());
    let (_server, port) = private_mariadb(&certs).await;
    let base = format!("mysql://root@127.0.0.1:{port}/test");

    let require = format!("{base}?ssl-mode=REQUIRED");
    let (running, mut sub) =
        source_of_items(&require, "CREATE TABLE items (id INT PRIMARY KEY) ENGINE = InnoDB").await;
    sql(&require, "INSERT INTO items VALUES (1)").await;
    assert_eq!(data(&*next_event(&mut sub).await)["new"]["id"], json!(1));
    // Every session of the server, the source's lease session and pool among them, is encrypted.
    let mut conn = sqlx::MySqlConnection::connect(&require).await.unwrap();
    let ciphers: Vec<(i64, String)> = sqlx::query_as(
        "SELECT CAST(t.PROCESSLIST_ID AS SIGNED), CAST(s.VARIABLE_VALUE AS CHAR) \
         FROM performance_schema.status_by_thread s JOIN performance_schema.threads t USING (THREAD_ID) \
         WHERE s.VARIABLE_NAME = 'Ssl_cipher' AND t.TYPE = 'FOREGROUND' AND t.PROCESSLIST_ID IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(ciphers.len() >= 3, "this one, the lease session and the pool's: {ciphers:?}");
    assert!(ciphers.iter().all(|(_, cipher)| !cipher.is_empty()), "a session without TLS: {ciphers:?}");
    running.stop().await;

    let url = format!(
        "mariadb://root@127.0.0.1:{port}/test?ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
        certs.ca.display()
    );
    install(&url, &SourceNames::default(), &[], true).await.unwrap();
    let url = format!("{base}?ssl-mode=VERIFY_IDENTITY&ssl-ca={}", certs.other_ca.display());
    let error =
        install(&url, &SourceNames::default(), &[], true).await.expect_err("an untrusted certificate");
    assert!(error.to_string().to_lowercase().contains("certificate"), "{error}");
}
