//! Dev-only test support for pushgate: a real gateway on a free port, a client for each of the
//! four transports behind one interface, and the conformance suite that runs against all of them.
//!
//! What each part gives:
//!
//! - [`TestServer`] (module `server`): the gateway's router (`pushgate::app`) served on
//!   `127.0.0.1:0` with its own [`Hub`](pushgate_hub::Hub). It exposes
//!   [`base_url`](TestServer::base_url), [`hub`](TestServer::hub) (publish directly, or look at
//!   presence), [`publish`](TestServer::publish) through `POST /v1/publish/{topic}`, and
//!   [`shutdown`](TestServer::shutdown); dropping it stops it too.
//! - [`sse`]: a WHATWG-conformant Server-Sent Events reader ([`SseReader`]) over any byte stream,
//!   such as a `reqwest` response body, yielding [`SseMessage`]s (event type, last event id, data);
//!   comments (`: hb`) and retry-only blocks are not messages.
//! - [`Transport`], [`TransportClient`] and [`Feed`]: one way to subscribe over short poll, long
//!   poll, SSE or WebSocket. A client's [`connect`](TransportClient::connect) returns a
//!   [`Feed`] of [`Delivery`]s (the event object, or a reset object, exactly as the protocol
//!   defines them) with a bounded-wait [`next`](Feed::next), and the cursor to resume from.
//!   A rejected subscribe request is a [`Rejected`] error carrying the status and JSON body.
//!   Every client counts its HTTP requests (a WebSocket handshake is one) and the bytes of
//!   payload it received ([`Traffic`]). [`RustClient`] is `pushgate-client` behind the same
//!   interface, so the conformance suite checks the Rust client too.
//! - [`RawHttp`]: a raw HTTP/1 connection that writes any bytes and reads answers framed by
//!   their `content-length` ([`RawAnswer`]), for tests of malformed requests, pipelining and
//!   closing.
//! - [`RedisServer`]: a private `redis-server` child on a free port (nothing on disk, killed on
//!   drop, restartable empty) for the Redis scale-out tests, a TLS server or a replica with
//!   extra arguments; [`RedisSentinel`] watches a master and fails it over.
//! - [`GatewayProcess`]: the built `pushgate` binary as a child process on a port the OS picks,
//!   its JSON log kept line by line, `SIGKILL`ed as in a crash or stopped with `SIGTERM`, for
//!   tests of several nodes, takeovers and restarts, or of the gateway's own memory (`pid`).
//! - [`Relay`]: a TCP relay that can be cut and resumed, so one client loses a server while
//!   others keep it.
//! - [`skip`]: what a database test does when its server cannot be reached: fail, or with
//!   `PUSHGATE_SKIP_DB=1` skip visibly (a `SKIPPED` line, and a log that counts them).
//! - [`TestCa`]: a throwaway certificate authority and the server or client certificates it
//!   signs, as PEM files, for tests against real TLS endpoints.
//!
//! The conformance suite lives in `tests/it/conformance.rs`: each test is written once and the
//! `conformance!` macro instantiates it for every transport.
//!
//! ```
//! use std::time::Duration;
//! use pushgate_testkit::{Delivery, TestServer, Transport};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> anyhow::Result<()> {
//! let server = TestServer::start().await?;
//! let client = Transport::Sse.client()?;
//! let mut feed = client.connect(&server, &["chat"], None).await?;
//! let published = server.publish("chat", serde_json::json!({"text": "hi"})).await?;
//! let Some(Delivery::Event(event)) = feed.next(Duration::from_secs(5)).await? else {
//!     anyhow::bail!("no event");
//! };
//! assert_eq!(event["id"], published.id.as_str());
//! assert_eq!(feed.cursor(), Some(published.id.as_str()));
//! # Ok(()) }
//! ```

mod client;
mod feed;
mod process;
mod raw;
mod redis;
mod relay;
mod server;
pub mod skip;
pub mod sse;
mod tls;

pub use client::{LongPollClient, PollClient, RustClient, SseClient, Transport, TransportClient, WsClient};
pub use feed::{Delivery, Feed, Rejected, Traffic};
pub use process::GatewayProcess;
pub use raw::{RawAnswer, RawHttp};
pub use redis::{RedisSentinel, RedisServer, free_port};
pub use relay::Relay;
pub use server::{Published, TestServer};
pub use sse::{SseMessage, SseReader};
pub use tls::{CertFiles, TestCa};
