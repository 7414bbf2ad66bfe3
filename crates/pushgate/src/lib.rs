//! The pushgate gateway as a library.
//!
//! The binary in `main.rs` only parses the command line, installs a tracing
//! subscriber and waits for a shutdown signal; everything it serves comes from
//! here, so tests can drive the same [`app`] and [`serve_on`] over a real
//! socket.
//!
//! Today the gateway serves two routes:
//!
//! - `GET /` — the placeholder page from `web/index.html`;
//! - `GET /healthz` — `200 OK` with the JSON body `{"status":"ok"}`.
//!
//! ```no_run
//! # async fn run() -> Result<(), pushgate::ServeError> {
//! let config = pushgate::Config::default();
//! pushgate::serve(config, std::future::pending()).await
//! # }
//! ```

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use tokio::net::TcpListener;

/// The page served at `/`, embedded at compile time.
///
/// A later issue replaces this with an embedded copy of the whole `web/`
/// directory.
const INDEX_HTML: &str = include_str!("../../../web/index.html");

/// The body of a successful `GET /healthz`.
const HEALTHY_JSON: &str = r#"{"status":"ok"}"#;

/// How the gateway is set up.
///
/// Start from [`Config::default`] and change what you need with the `with_*`
/// methods, so new settings can be added without breaking callers:
///
/// ```
/// use std::net::{Ipv4Addr, SocketAddr};
///
/// let listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9000));
/// let config = pushgate::Config::default().with_listen(listen);
/// assert_eq!(config.listen, listen);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The address [`serve`] binds to. Defaults to `127.0.0.1:8080`.
    pub listen: SocketAddr,
}

impl Config {
    /// Returns this configuration with the listen address replaced.
    #[must_use]
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self { listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)) }
    }
}

/// Why [`serve`] or [`serve_on`] stopped with an error.
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
    /// The server failed while accepting or serving connections.
    #[error("the server stopped with an I/O error")]
    Serve(#[source] io::Error),
}

/// Builds the gateway's router: every route the gateway serves.
///
/// The configuration is not read yet; the transports and the tower-http
/// layers that arrive in later issues take their settings from it.
pub fn app(_config: &Config) -> Router {
    Router::new().route("/", get(index)).route("/healthz", get(healthz))
}

/// Binds `config.listen` and serves [`app`] until `shutdown` completes.
///
/// When `shutdown` completes the listener closes, in-flight requests are
/// allowed to finish, and the function returns `Ok(())`.
///
/// # Errors
///
/// [`ServeError::Bind`] when the address cannot be bound, and
/// [`ServeError::Serve`] when serving fails.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind { addr: config.listen, source })?;
    serve_on(listener, &config, shutdown).await
}

/// Serves [`app`] on an already bound `listener` until `shutdown` completes.
///
/// This is [`serve`] for callers that bind themselves, typically tests that
/// bind port 0 and need to learn the port before the server starts.
/// `config.listen` is ignored here.
///
/// # Errors
///
/// [`ServeError::Serve`] when serving fails.
pub async fn serve_on(
    listener: TcpListener,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "listening"),
        Err(error) => tracing::warn!(%error, "listening on an unknown address"),
    }
    // axum::serve gives us no header-read timeout; a later issue replaces it
    // with an accept loop of our own over hyper-util that sets one.
    axum::serve(listener, app(config)).with_graceful_shutdown(shutdown).await.map_err(ServeError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}

/// `GET /`: the placeholder page.
async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

/// `GET /healthz`: the process is up and answering requests.
async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], HEALTHY_JSON)
}
