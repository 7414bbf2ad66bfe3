//! Clients that stop reading are closed in bounded time, whatever they send: unsolicited Pongs
//! do not answer the server's Pings, and a socket that takes nothing for a pong timeout ends
//! the connection even between Pings.
//!
//! Real time (see `limits.rs`), with intervals of a few hundred milliseconds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::Duration;

use pushgate_hub::Hub;
use pushgate_ws::WsConfig;
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// Opens `/v1/ws?query` by hand on a plain TCP stream, so that nothing reads or answers
/// behind the test's back.
async fn raw_connect(addr: std::net::SocketAddr, query: &str) -> TcpStream {
    let mut stream = bounded(TcpStream::connect(addr)).await.unwrap();
    let request = format!(
        "GET /v1/ws?{query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    bounded(stream.write_all(request.as_bytes())).await.unwrap();
    // The answer head, byte by byte so that nothing after it is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(bounded(stream.read_u8()).await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    stream
}

/// A masked client Pong frame (RFC 6455 5.5.3) carrying `payload`.
fn pong_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x8A, 0x80 | payload.len() as u8];
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[tokio::test]
async fn unsolicited_pongs_do_not_keep_a_client_that_never_reads_alive() {
    let (ping, pong, close) =
        (Duration::from_millis(200), Duration::from_millis(300), Duration::from_millis(200));
    let hub = Hub::new();
    let config = WsConfig::default().ping_interval(ping).pong_timeout(pong).close_timeout(close);
    let addr = serve(&hub, config).await;
    let stream = raw_connect(addr, "topic=t").await;
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();

    // Pongs every 20 ms, with guessed and empty payloads, until the server is gone.
    let spammer = tokio::spawn(async move {
        for n in 0u64.. {
            let payload = if n % 2 == 0 { Vec::new() } else { (n / 2).to_be_bytes().to_vec() };
            if writer.write_all(&pong_frame(&payload)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let slack = Duration::from_millis(500);
    tokio::time::timeout(ping + pong + slack, async {
        while ws_presence(&hub, "t") != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the connection is closed once its Ping goes unanswered");

    // The socket itself is gone within the close timeout: what the server wrote (a Ping, the
    // Close) is there to read, then the end.
    let mut scrap = vec![0u8; 4096];
    let ended = tokio::time::timeout_at(started + ping + pong + close + slack, async {
        loop {
            match reader.read(&mut scrap).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the server still holds the socket after {:?}", started.elapsed());
    bounded(spammer).await.unwrap();
}

#[tokio::test]
async fn a_client_whose_socket_takes_nothing_is_closed_between_pings() {
    let hub = Hub::new();
    let listener = TcpSocket::new_v4().unwrap();
    listener.set_send_buffer_size(4096).unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    // No Ping within the test: only the stalled socket can end the connection.
    let config = WsConfig::default()
        .ping_interval(Duration::from_secs(600))
        .pong_timeout(Duration::from_millis(300))
        .close_timeout(Duration::from_millis(200))
        .write_buffer_size(4096)
        .max_write_buffer_size(16 * 1024);
    let addr = serve_on(listener.listen(64).unwrap(), &hub, config);
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = bounded(socket.connect(addr)).await.unwrap();
    let (_client, _) =
        bounded(tokio_tungstenite::client_async(url(addr, "topic=flood"), stream)).await.unwrap();

    let pad = "x".repeat(8 * 1024);
    for n in 1..=50 {
        publish(&hub, "flood", json!({"n": n, "pad": pad})).await;
    }
    let full = Instant::now();
    tokio::time::timeout(Duration::from_secs(2), async {
        while ws_presence(&hub, "flood") != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("closed after a pong timeout without progress");
    assert!(full.elapsed() >= Duration::from_millis(250), "closed before the timeout: {:?}", full.elapsed());
}
