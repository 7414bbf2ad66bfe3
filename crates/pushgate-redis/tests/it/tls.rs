//! RedisStorage over TLS (`rediss://`) against a private redis-server speaking TLS with a
//! throwaway CA: events go through and come back, a server the CA did not sign is refused with
//! a clear error, and mutual TLS works with a client certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::sync::Arc;

use pushgate_hub::{Cursor, FetchOptions, Hub, NewEvent, TopicName};
use pushgate_redis::{ConnectError, RedisOptions, RedisStorage};
use pushgate_testkit::{RedisServer, TestCa, free_port};
use serde_json::json;

/// A redis-server with a TLS port (its certificate signed by `ca`) besides its plain one.
async fn tls_redis(ca: &TestCa, client_certs: bool) -> (RedisServer, String) {
    let server = ca.server("redis").unwrap();
    let tls_port = free_port().unwrap();
    let mut args: Vec<String> = [
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &server.cert.display().to_string(),
        "--tls-key-file",
        &server.key.display().to_string(),
        "--tls-ca-cert-file",
        &ca.ca_file().display().to_string(),
    ]
    .map(str::to_owned)
    .into();
    args.extend(["--tls-auth-clients".to_owned(), if client_certs { "yes" } else { "no" }.to_owned()]);
    let redis = RedisServer::start_with(args).await.unwrap();
    (redis, format!("rediss://127.0.0.1:{tls_port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_go_through_a_tls_redis_with_a_private_ca_and_come_back() {
    let ca = TestCa::new("pushgate-test-ca").unwrap();
    let (redis, url) = tls_redis(&ca, false).await;
    let options = || RedisOptions::default().ca_file(ca.ca_file());
    let a = Hub::builder().storage(Arc::new(RedisStorage::connect(&url, options()).await.unwrap())).build();
    let on_b = RedisStorage::connect(&url, options()).await.unwrap();
    let state_b = on_b.state();
    let b = Hub::builder().storage(Arc::new(on_b)).build();
    let t = TopicName::new("secure").unwrap();
    let mut last = 0;
    for i in 1..=5 {
        let event = a.publish(&t, NewEvent::new(json!(i))).await.unwrap();
        assert_eq!(event.seq(), i);
        last = event.position();
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while state_b.applied_position() < last {
        assert!(tokio::time::Instant::now() < deadline, "b did not apply a's events over TLS");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let batch = b.fetch(&[t.clone()], Cursor::Oldest, &FetchOptions::default()).await.unwrap();
    assert_eq!(
        batch.events.iter().map(|e| e.data().as_str().to_owned()).collect::<Vec<_>>(),
        ["1", "2", "3", "4", "5"]
    );
    // It went through the TLS port: the plain one saw the log too, as the same server.
    assert!(redis.command(&["XLEN", "pushgate:log"]).await.unwrap().starts_with(":5"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_the_ca_did_not_sign_is_refused_with_a_clear_error() {
    let ca = TestCa::new("pushgate-test-ca").unwrap();
    let other = TestCa::new("someone-else").unwrap();
    let (_redis, url) = tls_redis(&ca, false).await;
    let err =
        RedisStorage::connect(&url, RedisOptions::default().ca_file(other.ca_file())).await.unwrap_err();
    assert!(matches!(err, ConnectError::Tls(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("TLS handshake failed") && message.contains("UnknownIssuer"), "{message}");
    assert!(message.contains("check the CA file"), "{message}");
    // Without a CA file the system's roots are used, and they do not know this CA either.
    let err = RedisStorage::connect(&url, RedisOptions::default()).await.unwrap_err();
    assert!(matches!(err, ConnectError::Tls(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_the_client_certificate() {
    let ca = TestCa::new("pushgate-test-ca").unwrap();
    let (_redis, url) = tls_redis(&ca, true).await;
    let client = ca.client("pushgate-node").unwrap();
    let with_cert = RedisOptions::default().ca_file(ca.ca_file()).client_identity(&client.cert, &client.key);
    let storage = RedisStorage::connect(&url, with_cert).await.unwrap();
    let hub = Hub::builder().storage(Arc::new(storage)).build();
    let event = hub.publish(&TopicName::new("m").unwrap(), NewEvent::new(json!("hi"))).await.unwrap();
    assert_eq!(event.seq(), 1);
    let err = RedisStorage::connect(&url, RedisOptions::default().ca_file(ca.ca_file())).await.unwrap_err();
    assert!(matches!(err, ConnectError::Tls(_)), "refused without one: {err:?}");
    assert!(err.to_string().contains("CertificateRequired"), "{err}");
}

#[tokio::test]
async fn tls_files_are_checked_before_connecting() {
    let ca = TestCa::new("pushgate-test-ca").unwrap();
    let err = RedisStorage::connect("redis://127.0.0.1:1", RedisOptions::default().ca_file(ca.ca_file()))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::TlsWithoutTls), "{err:?}");
    let missing = ca.ca_file().with_file_name("missing.pem");
    let err = RedisStorage::connect("rediss://127.0.0.1:1", RedisOptions::default().ca_file(&missing))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::TlsFile { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.pem"), "{err}");
}
