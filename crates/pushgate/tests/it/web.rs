//! The pages of `web/` and the demo ticker over real sockets: the compiled-in pages with their
//! types and revalidation, `--web-dir` serving a directory, paths that leave the directory
//! refused, the API winning over a file of the same name, and `demo.ticker` filling at about
//! its rate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use pushgate::{Config, ServeError};
use pushgate_testkit::TestServer;
use reqwest::{StatusCode, header};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep, timeout};

/// Every wait for one thing in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(5);

async fn start(config: Config) -> TestServer {
    TestServer::start_with(config).await.expect("the gateway")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(BOUND).build().unwrap()
}

fn header_of(response: &reqwest::Response, name: header::HeaderName) -> String {
    response.headers().get(name).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned()
}

/// Sends `GET {target}` exactly as written (an HTTP client would resolve `..` first) and
/// returns the status code and the body.
async fn raw_get(addr: SocketAddr, target: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    timeout(BOUND, stream.read_to_string(&mut answer)).await.unwrap().unwrap();
    let status = answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn the_compiled_in_pages_are_served_with_their_types_and_revalidate() {
    let gateway = start(Config::default()).await;
    let client = client();

    let index = client.get(gateway.url("/")).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(header_of(&index, header::CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(header_of(&index, header::CACHE_CONTROL), "no-cache");
    let etag = header_of(&index, header::ETAG);
    assert!(etag.starts_with('"') && etag.len() > 2, "ETag {etag:?}");
    assert!(index.text().await.unwrap().contains("<html"));
    assert_eq!(
        client.get(gateway.url("/index.html")).send().await.unwrap().headers().get(header::ETAG).unwrap(),
        etag.as_str()
    );

    // A reload with the tag costs no body.
    let again = client.get(gateway.url("/")).header(header::IF_NONE_MATCH, &etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header_of(&again, header::ETAG), etag);
    assert!(again.bytes().await.unwrap().is_empty());

    let script = client.get(gateway.url("/pushgate.js")).send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(header_of(&script, header::CONTENT_TYPE), "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("export * from './client/src/index.js'"));
    // The package's modules are served beside it, so the re-export resolves with no build step.
    let index = client.get(gateway.url("/client/src/index.js")).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(header_of(&index, header::CONTENT_TYPE), "text/javascript; charset=utf-8");
    assert!(index.text().await.unwrap().contains("connect"));

    // The browser tests are not part of the site; an unknown file is the JSON 404.
    for path in ["/tests/run.mjs", "/no-such-page.html"] {
        let missing = client.get(gateway.url(path)).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header_of(&missing, header::CONTENT_TYPE), "application/json");
        let body: Value = missing.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }

    let post = client.post(gateway.url("/index.html")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    gateway.shutdown().await.unwrap();
}

/// A site directory inside a temporary directory that also holds a file outside the site.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "outside the site").unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("css")).unwrap();
    std::fs::write(site.join("index.html"), "<!doctype html><title>from disk</title>").unwrap();
    std::fs::write(site.join("css/app.css"), "body { color: teal }").unwrap();
    std::fs::write(site.join("healthz"), "a file the API shadows").unwrap();
    dir
}

fn site_config(dir: &Path) -> Config {
    Config::default().with_web_dir(Some(dir.join("site")))
}

#[tokio::test]
async fn a_web_dir_is_served_from_disk_and_read_at_each_request() {
    let dir = site();
    let gateway = start(site_config(dir.path())).await;
    let client = client();

    let index = client.get(gateway.url("/")).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(index.text().await.unwrap(), "<!doctype html><title>from disk</title>");

    let css = client.get(gateway.url("/css/app.css")).send().await.unwrap();
    assert_eq!(header_of(&css, header::CONTENT_TYPE), "text/css; charset=utf-8");
    assert_eq!(header_of(&css, header::CACHE_CONTROL), "no-cache");
    let etag = header_of(&css, header::ETAG);
    assert_eq!(css.text().await.unwrap(), "body { color: teal }");

    // An edit shows on the next request, under a new tag.
    std::fs::write(dir.path().join("site/css/app.css"), "body { color: crimson; }").unwrap();
    let edited = client.get(gateway.url("/css/app.css")).header(header::IF_NONE_MATCH, &etag).send().await;
    let edited = edited.unwrap();
    assert_eq!(edited.status(), StatusCode::OK);
    assert_ne!(header_of(&edited, header::ETAG), etag);
    assert_eq!(edited.text().await.unwrap(), "body { color: crimson; }");

    // The API's routes win over a file of the same name.
    let health = client.get(gateway.url("/healthz")).send().await.unwrap();
    assert_eq!(header_of(&health, header::CONTENT_TYPE), "application/json");
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn paths_that_leave_the_directory_are_refused() {
    let dir = site();
    let gateway = start(site_config(dir.path())).await;
    for target in [
        "/../secret.txt",
        "/css/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/css/..%2F..%2Fsecret.txt",
        "/..%5csecret.txt",
        "/.%2e/secret.txt",
    ] {
        let (status, body) = raw_get(gateway.addr(), target).await;
        assert_eq!(status, 404, "{target}: {body}");
        assert!(!body.contains("outside the site"), "{target}: {body}");
        assert!(body.contains(r#""code":"not_found""#), "{target}: {body}");
    }
    // The same request inside the site is served.
    assert_eq!(raw_get(gateway.addr(), "/css/app.css").await.0, 200);
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_missing_web_dir_is_refused_at_startup() {
    let config = Config::default().with_web_dir(Some("/nonexistent/pushgate-web".into()));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let served = pushgate::serve_on(listener, &config, std::future::pending()).await;
    assert!(matches!(served, Err(ServeError::Config(pushgate::ConfigError::WebDir { .. }))), "{served:?}");
}

/// Every event retained on `demo.ticker`.
async fn ticker_events(gateway: &TestServer) -> Vec<Value> {
    let url = gateway.url("/v1/poll?topic=demo.ticker&cursor=oldest");
    let answer: Value = client().get(url).send().await.unwrap().json().await.unwrap();
    answer["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn the_demo_ticker_publishes_at_about_its_rate() {
    const RATE: f64 = 20.0;
    let started = Instant::now();
    let gateway = start(Config::default().with_demo_ticker_rate(20)).await;
    sleep(Duration::from_millis(1500)).await;
    let events = ticker_events(&gateway).await;
    let elapsed = started.elapsed().as_secs_f64();
    // Bounded both ways: a slow machine may lose a few ticks, never gain any (one at start).
    let count = events.len() as f64;
    assert!(count >= RATE * 1.5 * 0.5, "{count} events in {elapsed:.2} s");
    assert!(count <= RATE * elapsed + 1.0, "{count} events in {elapsed:.2} s");
    for event in &events {
        assert_eq!(event["topic"], "demo.ticker");
        assert_eq!(event["event"], "tick");
        let data = &event["data"];
        assert!(["ACME", "GLOBEX", "INITECH"].contains(&data["symbol"].as_str().unwrap()), "{event}");
        assert!(data["price"].as_f64().unwrap() > 0.0, "{event}");
        assert!(data["t"].as_u64().unwrap() > 1_600_000_000_000, "{event}");
    }
    gateway.shutdown().await.unwrap();

    // Off in the library's defaults.
    let quiet = start(Config::default()).await;
    sleep(Duration::from_millis(300)).await;
    assert_eq!(ticker_events(&quiet).await, Vec::<Value>::new());
    quiet.shutdown().await.unwrap();
}
