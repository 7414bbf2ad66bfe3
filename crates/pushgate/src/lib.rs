//! The pushgate gateway as a library: composes one [`Hub`] and the four transports into one
//! HTTP server.
//!
//! The binary in `main.rs` only parses the command line ([`cli`]), installs a tracing
//! subscriber and waits for a shutdown signal; everything it serves comes from here, so tests
//! drive the same [`app`] and [`serve_on`] (or [`serve_hub_on`], with a hub of their own) over
//! a real socket.
//!
//! Routes (the wire contract is `docs/protocol.md`):
//!
//! | route | served by |
//! |---|---|
//! | `GET /v1/poll`, `/v1/longpoll`, `/v1/sse`, `/v1/ws` | the transport crates |
//! | `POST /v1/publish/{topic}`, `GET /v1/presence/{topic}`, `GET /healthz` | this crate's API |
//! | `GET /` | the page in `web/index.html` |
//! | anything else | `404` with a JSON error body |
//!
//! [`serve_on`] runs its own accept loop (header-read timeout, connection limit, idle timeout,
//! graceful drain); see `server.rs`.
//!
//! ```no_run
//! # async fn run() -> Result<(), pushgate::ServeError> {
//! let config = pushgate::Config::default();
//! pushgate::serve(config, std::future::pending()).await
//! # }
//! ```

mod api;
pub mod cli;
mod config;
mod fd_limit;
mod server;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use pushgate_hub::Hub;
use tokio::net::TcpListener;

pub use config::{Config, ConfigError};

/// The page served at `/`, embedded at compile time.
const INDEX_HTML: &str = include_str!("../../../web/index.html");

/// How often idle topics and expired events are swept.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);

/// Why [`serve`] or [`serve_on`] could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listen address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
    /// The configuration is inconsistent.
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
}

/// Builds the gateway's router over `hub`: every route the gateway serves.
///
/// The caller owns the hub: closing it ([`Hub::close`]) ends streams and parked polls, which is
/// how [`serve_on`] shuts down.
pub fn app(hub: Hub, config: &Config) -> Router {
    let poll = pushgate_poll::PollConfig::default().max_bytes(config.max_answer_bytes);
    let longpoll = pushgate_longpoll::LongPollConfig::default()
        .default_timeout(config.longpoll_timeout)
        .max_timeout(config.longpoll_max_timeout)
        .max_bytes(config.max_answer_bytes);
    let sse = pushgate_sse::SseConfig::default().heartbeat(config.sse_heartbeat);
    // The write-buffer cap follows the body limit: an event frame larger than the cap would
    // close every WebSocket with 1011.
    let ws = pushgate_ws::WsConfig::default()
        .max_message_size(config.ws_max_message_bytes)
        .max_write_buffer_size(config.ws_write_buffer_cap());
    Router::new()
        .merge(pushgate_poll::router(hub.clone(), poll))
        .merge(pushgate_longpoll::router(hub.clone(), longpoll))
        .merge(pushgate_sse::router(hub.clone(), sse))
        .merge(pushgate_ws::router(hub.clone(), ws))
        .merge(api::router(hub, config))
        .route("/", get(index))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
}

/// [`app`] over a new hub built from `config` ([`Config::build_hub`]); returns both, since
/// whoever serves the router must close the hub to shut down.
pub fn app_with_hub(config: &Config) -> (Hub, Router) {
    let hub = config.build_hub();
    let router = app(hub.clone(), config);
    (hub, router)
}

/// Binds `config.listen` and serves the gateway until `shutdown` completes; see [`serve_on`].
///
/// Before binding it raises the process's soft limit of open files toward the hard limit
/// (every connection is a file descriptor) and logs a warning when the result is still below
/// `max_connections` plus a margin; it does not fail for that.
///
/// # Errors
///
/// [`ServeError::Config`] for an inconsistent configuration, [`ServeError::Bind`] when the
/// address cannot be bound.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    config.validate()?;
    fd_limit::raise(config.max_connections);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind { addr: config.listen, source })?;
    serve_on(listener, &config, shutdown).await
}

/// Serves the gateway on an already bound `listener` until `shutdown` completes, over a new
/// hub built from `config`; see [`serve_hub_on`].
///
/// This is [`serve`] for callers that bind themselves, typically tests that bind port 0 and
/// need to learn the port before the server starts. `config.listen` is ignored here.
///
/// # Errors
///
/// [`ServeError::Config`] for an inconsistent configuration.
pub async fn serve_on(
    listener: TcpListener,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    config.validate()?;
    serve_hub_on(listener, config.build_hub(), config, shutdown).await
}

/// Serves [`app`] over `hub` on `listener` with the gateway's accept loop (header-read
/// timeout, connection limit, idle timeout) until `shutdown` completes, and runs the hub's
/// maintenance meanwhile. `config.listen` is ignored here.
///
/// When `shutdown` completes: no new connection is accepted; `hub` is closed, so parked long
/// polls are answered, SSE streams end and WebSockets close with 1001; every connection
/// finishes the response in flight and closes; after `config.drain_timeout` the remaining
/// connections are cut. Then the function returns `Ok(())`.
///
/// # Errors
///
/// [`ServeError::Config`] for an inconsistent configuration.
pub async fn serve_hub_on(
    listener: TcpListener,
    hub: Hub,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    config.validate()?;
    let limits = server::Limits {
        // `validate` checked that it fits.
        max_connections: u32::try_from(config.max_connections).unwrap_or(u32::MAX),
        header_read_timeout: config.header_read_timeout,
        idle_timeout: config.idle_timeout,
        drain_timeout: config.drain_timeout,
        socket: server::SocketOptions {
            keepalive_idle: config.tcp_keepalive_idle,
            keepalive_interval: config.tcp_keepalive_interval,
            keepalive_retries: config.tcp_keepalive_retries,
            user_timeout: config.tcp_user_timeout,
        },
    };
    let router = app(hub.clone(), config);
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "listening"),
        Err(error) => tracing::warn!(%error, "listening on an unknown address"),
    }
    let maintenance = tokio::spawn(hub.clone().maintain(MAINTENANCE_INTERVAL));
    server::run(listener, router, hub, limits, shutdown).await;
    // The hub is closed by now, which ends maintenance at once.
    maintenance.await.ok();
    tracing::info!("stopped");
    Ok(())
}

/// `GET /`: the browser client.
async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}
