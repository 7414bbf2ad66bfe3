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
//! | `GET /readyz`, `GET /metrics` (Prometheus text format) | `metrics.rs` |
//! | `GET/POST /demo/{users,orders}`, `GET/PUT/DELETE /demo/{users,orders}/{id}` | the demo (`demo/`), when [`Pages::demo_db`](config::Pages::demo_db) is set |
//! | `GET /`, `GET /{file}` | the pages of `web/`, compiled in or from [`Pages::web_dir`](config::Pages::web_dir) (`web.rs`) |
//! | anything else | `404` with a JSON error body |
//!
//! Everything served is derived from a [`Config`] in one place, `config/plan.rs`, which is also
//! what [`Config::validate`] runs. With auth on ([`config::Access`]: a JWT secret or public keys,
//! a JWKS URL, an auth proxy or an admin key), the transports and the publish API check every
//! request against one access policy (`pushgate-auth`'s `AccessPolicy`, whose housekeeping runs
//! next to the server); WebSocket upgrades check `Origin` against the allowed origins; with CORS
//! origins, a CORS layer (`cors.rs`) answers preflights and marks answers for those origins.
//!
//! The routes above win over the pages: a file is looked up only for a path none of them takes.
//!
//! [`serve_on`] runs its own accept loop (header-read timeout, every request head checked
//! before it is served, connection limits in total and per IP address, also per client behind
//! [`Listener::trusted_proxies`](config::Listener::trusted_proxies), the publish rate per
//! client, idle timeout, graceful drain); see `server.rs`, `limits.rs` and `forwarded.rs`. Next to it run the database sources of
//! [`Backends::sources`](config::Backends::sources) and, with a demo database, the demo's
//! (`sources.rs`, `demo/`): they tail their outboxes into the hub until it closes; so does the
//! demo ticker (`ticker.rs`). [`app`] builds the routes only; the sources,
//! the demo and the ticker run under [`serve_on`] and [`serve_hub_on`].
//!
//! ```no_run
//! # async fn run() -> Result<(), pushgate::ServeError> {
//! let config = pushgate::Config::default();
//! pushgate::serve(config, std::future::pending()).await
//! # }
//! ```

mod api;
pub mod cli;
pub mod config;
mod cors;
#[cfg(feature = "sqlite")]
mod demo;
#[cfg(not(feature = "sqlite"))]
#[path = "demo/unavailable.rs"]
mod demo;
mod fd_limit;
mod forwarded;
mod limits;
mod metrics;
mod presence;
mod server;
mod sources;
mod state;
mod ticker;
mod web;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use pushgate_http::{AnswerLimits, Refusals};
use pushgate_hub::Hub;
use pushgate_redis::{RedisState, ServerRelay};
use pushgate_sources::SourceError;
use tokio::net::{TcpListener, TcpSocket};

pub use config::{Config, ConfigError, Secret};

use config::RedisNode;
use config::plan::Plan;
use demo::Demo;
use presence::PresenceView;
use sources::Sources;
use web::Pages;

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
    /// Redis ([`Backends::redis`](config::Backends::redis)) could not be reached at start-up or holds something unexpected.
    #[error("cannot use redis at {url}")]
    Redis {
        /// The URL, password hidden.
        url: String,
        /// What failed.
        #[source]
        source: pushgate_redis::ConnectError,
    },
    /// Redis now holds another epoch than the one this node serves (the store was replaced):
    /// the node stopped rather than mix two histories; started again, it adopts the store's.
    #[error("stopped: {0}")]
    RedisEpoch(String),
    /// The demo database could not be created or prepared.
    #[error("cannot prepare the demo database {} (choose another with --demo-db, or --no-demo)", path.display())]
    Demo {
        /// The demo database's path.
        path: PathBuf,
        /// What failed.
        #[source]
        source: SourceError,
    },
}

/// Builds the gateway's router over `hub`: the transports and the API (publish, presence,
/// health), without the demo routes, and with no source on `/healthz`: the sources and the
/// demo of `config` run only under [`serve_on`] and [`serve_hub_on`].
///
/// The caller owns the hub: closing it ([`Hub::close`]) ends streams and parked polls, which is
/// how [`serve_on`] shuts down.
///
/// # Errors
///
/// A [`ConfigError`] for an inconsistent configuration, as [`Config::validate`].
pub fn app(hub: Hub, config: &Config) -> Result<Router, ConfigError> {
    let plan = Plan::new(config)?;
    let server = Arc::new(server::ServerStatus::new(1, Refusals::default()));
    let links = Links { redis: None, presence: PresenceView::new(hub.clone(), None), relay: None };
    Ok(routes(hub, &plan, Sources::default(), server, None, links).router)
}

/// What a node's routes share with the other nodes of a cluster: Redis's state (for
/// `/readyz` and `/metrics`), presence summed over the nodes, and the relay of the server API's
/// commands. A node alone has no Redis and no relay, and its presence is its own.
struct Links {
    redis: Option<RedisState>,
    presence: PresenceView,
    relay: Option<ServerRelay>,
}

/// Every route: [`app`]'s, `/healthz`, `/readyz` and `/metrics` reporting `sources`, `server`
/// and Redis, the server API, and the demo's when there is one; access checked by the plan's
/// policy; presence and the server API's commands across nodes through `links`. Beside the
/// router, the poll transports' handlers for the keep-alive loop to call without it, when
/// nothing is layered around every route but the refusal count (no CORS).
fn routes(
    hub: Hub,
    plan: &Plan,
    sources: Sources,
    server: Arc<server::ServerStatus>,
    demo: Option<Arc<Demo>>,
    links: Links,
) -> server::Routes {
    let Links { redis, presence, relay } = links;
    let authorize = plan.authorize.clone();
    let server_api = api::server::router(api::server::ServerApi {
        hub: hub.clone(),
        admin: plan.admin.clone(),
        policy: plan.policy.clone(),
        relay,
        sources: sources.clone(),
        authorize: authorize.clone(),
        bodies: plan.bodies,
        answers: AnswerLimits::default().limit(plan.poll.get_limit()).max_bytes(plan.poll.get_max_bytes()),
    });
    let ws = plan.ws.clone().refusals(server.refusals().clone());
    let poll = pushgate_poll::PollHandler::new(hub.clone(), plan.poll.clone());
    let longpoll = pushgate_longpoll::LongPollHandler::new(hub.clone(), plan.longpoll.clone());
    let mut router = Router::new()
        .merge(poll.router())
        .merge(longpoll.router())
        .merge(pushgate_sse::router(hub.clone(), plan.sse.clone()))
        .merge(pushgate_ws::router(hub.clone(), ws));
    if let Some(demo) = demo {
        router = router.merge(demo::router(hub.clone(), demo, plan.bodies, authorize.clone()));
    }
    let pages = Pages::new(plan.web_dir.as_deref());
    let server_refusals = server.refusals().clone();
    let observed = metrics::Observed { hub: hub.clone(), sources: sources.clone(), server, redis };
    let observability = Router::new()
        .route("/metrics", axum::routing::get(metrics::metrics))
        .route("/readyz", axum::routing::get(metrics::readyz))
        .with_state(observed);
    let api = api::router(
        hub,
        presence,
        plan.bodies,
        plan.admin.clone(),
        sources,
        server_refusals.clone(),
        authorize,
    );
    let direct = plan
        .cors
        .is_none()
        .then(|| Arc::new(server::Direct { poll, longpoll, refusals: server_refusals.clone() }));
    let router = router
        .merge(observability)
        .merge(api)
        .merge(server_api)
        .fallback(move |method, uri, headers| pages.clone().serve(method, uri, headers))
        .method_not_allowed_fallback(api::method_not_allowed)
        // tower's layer rather than axum's `middleware::map_response`: that one boxes a future
        // holding a clone of the route beside the route's own, for every request, which a
        // parked long poll then keeps for its whole wait (0.7 KB).
        .layer(tower::util::MapResponseLayer::new(move |response: axum::response::Response| {
            count_access_refusal(&server_refusals, &response);
            response
        }));
    let router = match &plan.cors {
        Some(cors) => router.layer(cors.clone()),
        None => router,
    };
    server::Routes { router, direct }
}

/// Access is refused in every transport, the publish API and the demo; each refusal's answer
/// carries its [`pushgate_http::ErrorCode`], so it is counted here once for all of them.
pub(crate) fn count_access_refusal(refusals: &Refusals, response: &axum::response::Response) {
    let code = response.extensions().get::<pushgate_http::ErrorCode>();
    if let Some(reason) = code.and_then(|code| pushgate_http::Refusal::of_access_error(*code)) {
        refusals.count(reason);
    }
}

/// [`app`] over a new hub built from `config` ([`Config::build_hub`]); returns both, since
/// whoever serves the router must close the hub to shut down.
///
/// # Errors
///
/// A [`ConfigError`] for an inconsistent configuration, as [`Config::validate`].
pub fn app_with_hub(config: &Config) -> Result<(Hub, Router), ConfigError> {
    let hub = config.build_hub();
    let router = app(hub.clone(), config)?;
    Ok((hub, router))
}

/// Binds the listen address and serves the gateway until `shutdown` completes; see [`serve_on`].
///
/// Before binding it raises the process's soft limit of open files toward the hard limit
/// (every connection is a file descriptor) and logs a warning when the result is still below
/// `max_connections` plus a margin; it does not fail for that.
///
/// # Errors
///
/// [`ServeError::Config`] for an inconsistent configuration, [`ServeError::Bind`] when the
/// address cannot be bound, [`ServeError::Demo`] when the demo database cannot be prepared.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let plan = Plan::new(&config)?;
    fd_limit::raise(config.listener.max_connections);
    let addr = config.listener.listen;
    let listener = bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
    serve_planned(listener, &config, plan, shutdown).await
}

/// The accept queue's length. tokio's `TcpListener::bind` asks for 128, which a burst of
/// connections overflows: the SYNs dropped then are retried by the client after a second,
/// which showed as a 1 s connection-setup p99 in the benchmarks. The kernel caps it at
/// `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` with a listen backlog of [`LISTEN_BACKLOG`] and `SO_REUSEADDR` (as
/// `TcpListener::bind` sets it), so a restart does not wait for old connections' `TIME_WAIT`.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves the gateway on an already bound `listener` until `shutdown` completes, over a new
/// hub built from `config` ([`Config::connect_hub`]: on Redis when one is configured);
/// see [`serve_hub_on`]. The hub reads each database source's outbox as history past its memory
/// (`pushgate_sources::Source::history_tier`); with sources and no Redis, it resumes the epoch
/// kept in the state file ([`Backends::state_file`](config::Backends::state_file), by default
/// beside the demo database), so a restart keeps its clients' cursors (`state.rs`).
///
/// This is [`serve`] for callers that bind themselves, typically tests that bind port 0 and
/// need to learn the port before the server starts. The listen address of `config` is ignored
/// here.
///
/// With Redis, `/readyz` also reports the Redis connection and `/metrics` its state; if Redis
/// comes to hold another epoch, the server shuts down as on `shutdown` and returns
/// [`ServeError::RedisEpoch`], so a supervisor restarts it on the store's epoch.
///
/// # Errors
///
/// As [`serve_hub_on`], and [`ServeError::Redis`] when Redis cannot be used at start-up.
pub async fn serve_on(
    listener: TcpListener,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_planned(listener, config, Plan::new(config)?, shutdown).await
}

/// [`serve_on`] with `config` already resolved into `plan`.
async fn serve_planned(
    listener: TcpListener,
    config: &Config,
    plan: Plan,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let prepared = prepare(&plan).await?;
    let state = if prepared.sources.is_empty() { None } else { open_state(&plan) };
    let resume = state.as_ref().map(state::StateFile::resume);
    let (hub, redis) = config.connect_hub_with(prepared.sources.history_tiers(), resume).await?;
    let Some(redis) = redis else {
        return serve_with(listener, hub, plan, shutdown, None, prepared, state).await;
    };
    let (fatal_tx, fatal_rx) = tokio::sync::oneshot::channel();
    let watched = redis.state.clone();
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            reason = redis_fatal(watched) => {
                tracing::error!(%reason, "shutting down: this node cannot go on with this redis");
                let _ = fatal_tx.send(reason);
            }
        }
    };
    serve_with(listener, hub, plan, stop, Some(redis), prepared, None).await?;
    match fatal_rx.await {
        Ok(reason) => Err(ServeError::RedisEpoch(reason)),
        Err(_) => Ok(()),
    }
}

/// The state file of the plan (see [`Backends::state_file`](config::Backends::state_file)),
/// locked for this process; `None` (and a warning) when there is none, another process holds it,
/// or it cannot be used: the hub then takes a fresh epoch.
fn open_state(plan: &Plan) -> Option<state::StateFile> {
    let path = plan.state_file.as_deref()?;
    match state::StateFile::open(path) {
        Ok(Some(state)) => {
            tracing::info!(path = %state.path().display(), epoch = %state.epoch(), "hub epoch kept in the state file");
            Some(state)
        }
        Ok(None) => {
            tracing::warn!(
                path = %path.display(),
                "another process holds the state file {}: this gateway runs with a new epoch of its own, so its \
                 clients' cursors will not survive its restart",
                path.display()
            );
            None
        }
        Err(error) => {
            tracing::warn!(%error, "cannot use the state file; this gateway runs with a new epoch");
            None
        }
    }
}

/// Resolves with the reason once the Redis storage gave up for good.
async fn redis_fatal(state: RedisState) -> String {
    let mut every = tokio::time::interval(Duration::from_millis(250));
    loop {
        every.tick().await;
        if let Some(reason) = state.fatal() {
            return reason;
        }
    }
}

/// Serves [`app`] over `hub` on `listener` with the gateway's accept loop (header-read
/// timeout, connection limit, idle timeout) until `shutdown` completes, and runs the hub's
/// maintenance, the database sources and the demo ticker meanwhile. The listen address of
/// `config` is ignored here.
///
/// Before serving, with a demo database set ([`Pages::demo_db`](config::Pages::demo_db)), it prepares the demo database (creating the
/// file, its tables and triggers as needed) and adds the `/demo/` routes and the demo's
/// source. The hub is the caller's: it gets no history tier and no state file here. Each
/// database source (and the demo's) tails its outbox into `hub` in a task
/// of its own; one that cannot connect retries with backoff and shows it on `/healthz`.
///
/// When `shutdown` completes: no new connection is accepted; `hub` is closed, so parked long
/// polls are answered, SSE streams end, WebSockets close with 1001 and the sources stop; every
/// connection finishes the response in flight and closes; after `config.drain_timeout` the
/// remaining connections are cut and the sources still running are aborted. Then the function
/// returns `Ok(())`.
///
/// # Errors
///
/// [`ServeError::Config`] for an inconsistent configuration, [`ServeError::Demo`] when the
/// demo database cannot be prepared.
pub async fn serve_hub_on(
    listener: TcpListener,
    hub: Hub,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let plan = Plan::new(config)?;
    let prepared = prepare(&plan).await?;
    serve_with(listener, hub, plan, shutdown, None, prepared, None).await
}

/// What runs beside the server: the database sources, the demo's among them.
struct Prepared {
    sources: Sources,
    demo: Option<Arc<Demo>>,
}

/// The sources of `plan` and, with a demo database, the demo (its database prepared).
async fn prepare(plan: &Plan) -> Result<Prepared, ServeError> {
    let mut sources = plan.sources.clone();
    let demo = match &plan.demo_db {
        Some(path) => {
            let demo = Demo::open(path, plan.lease_timeout)
                .await
                .map_err(|source| ServeError::Demo { path: path.clone(), source })?;
            tracing::info!(path = %path.display(), "demo database ready: /demo/users, /demo/orders");
            sources.push(demo.source());
            Some(Arc::new(demo))
        }
        None => None,
    };
    Ok(Prepared { sources, demo })
}

/// [`serve_hub_on`] with its configuration resolved into `plan` and the `prepared` sources and
/// demo, with `redis` when given (reported on `/readyz` and `/metrics`; presence reported to
/// and summed from the other nodes), and keeping the hub's head in `state` when given.
async fn serve_with(
    listener: TcpListener,
    hub: Hub,
    plan: Plan,
    shutdown: impl Future<Output = ()> + Send + 'static,
    redis: Option<RedisNode>,
    prepared: Prepared,
    state: Option<state::StateFile>,
) -> Result<(), ServeError> {
    let Prepared { sources, demo } = prepared;
    let status = Arc::new(server::ServerStatus::new(plan.server.max_connections, Refusals::default()));
    let (redis, cluster, relay) = match redis {
        Some(RedisNode { state, presence, relay }) => {
            (Some(state), Some(Arc::new(presence) as Arc<dyn presence::ClusterPresence>), Some(relay))
        }
        None => (None, None, None),
    };
    let presence = PresenceView::new(hub.clone(), cluster);
    let links = Links { redis: redis.clone(), presence: presence.clone(), relay: relay.clone() };
    let routes = routes(hub.clone(), &plan, sources.clone(), Arc::clone(&status), demo.clone(), links);
    // The revocations Redis keeps hold from the first request on; then the server API's
    // commands from the other nodes (and the revocations again after each reconnect).
    if let (Some(relay), Some(policy)) = (&relay, &plan.policy) {
        api::server::load_revocations(relay, &hub, policy).await;
    }
    let relayed =
        relay.clone().map(|relay| tokio::spawn(api::server::follow(relay, hub.clone(), plan.policy.clone())));
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "listening"),
        Err(error) => tracing::warn!(%error, "listening on an unknown address"),
    }
    let maintenance = tokio::spawn(hub.clone().maintain(MAINTENANCE_INTERVAL));
    let state = state.map(|state| tokio::spawn(state.keep(hub.clone())));
    // The policy's housekeeping (JWKS refresh, expired decisions) never ends on its own.
    let policy_upkeep = plan.policy.as_ref().map(|policy| tokio::spawn(policy.maintain()));
    let ticker = tokio::spawn(ticker::run(hub.clone(), plan.ticker_rate));
    // Both end once the hub closes; the report is withdrawn then.
    let reporting = tokio::spawn(presence.clone().keep_reporting(plan.presence_interval));
    let relaying = tokio::spawn(presence.relay_changes(relay));
    let running = sources.spawn(&hub, redis.is_some());
    // The sources stop when the server closes the hub, in parallel with the connections'
    // drain, and get the same time for it.
    tokio::join!(
        server::run(listener, routes, hub.clone(), (plan.server, plan.proxies.clone()), status, shutdown),
        running.stopped(hub, plan.drain_timeout),
    );
    // The hub is closed by now, which ends maintenance and the ticker at once.
    if let Some(upkeep) = policy_upkeep {
        upkeep.abort();
    }
    if let Some(relayed) = relayed {
        relayed.abort();
    }
    maintenance.await.ok();
    ticker.await.ok();
    reporting.await.ok();
    relaying.await.ok();
    if let Some(state) = state {
        state.await.ok();
    }
    if let Some(demo) = demo {
        demo.close().await;
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Connections the kernel completes before anyone accepts them: more than tokio's default
    /// backlog of 128. A SYN that finds the accept queue full is dropped and retried by the
    /// client after a second, so with a short backlog some of these take over a second.
    #[tokio::test]
    async fn the_listen_backlog_holds_a_burst_of_connections() {
        let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok())
            .unwrap_or(4096);
        let burst = 400.min(somaxconn.saturating_sub(1));
        let listener = bind((std::net::Ipv4Addr::LOCALHOST, 0).into()).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connects = (0..burst).map(|_| tokio::net::TcpStream::connect(addr));
        let all = futures_util::future::try_join_all(connects);
        let streams = tokio::time::timeout(Duration::from_millis(800), all)
            .await
            .expect("every connection completes without a SYN retransmission")
            .expect("connect");
        assert_eq!(streams.len(), burst);
    }
}
