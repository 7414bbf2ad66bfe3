//! The gateway's integration tests, one module per concern, in one test binary: as a binary per
//! file, each compiled the same generic code (tokio, reqwest, serde, the gateway's API) again
//! and linked the whole gateway again.
//!
//! `cargo test` runs one binary's tests in parallel threads, so no test here may change or
//! measure what the process shares (environment variables, the working directory, a global
//! tracing subscriber, its memory or descriptors): each starts a gateway of its own, in-process
//! on a port of its own or as a child process of the built binary. (Serving in-process raises
//! the open-files soft limit to the hard one, which is the same for every test.)
//!
//! `tests/floods.rs` and `tests/slow_heads.rs` are binaries of their own; their headers say why.
//! One module alone: `cargo test -p pushgate --test it keep_alive::`.

mod api;
mod architecture;
mod auth;
mod auth_expiry;
mod auth_keys;
mod auth_proxy;
mod cli;
mod cluster;
mod coalesce;
mod config_file;
mod db;
mod demo;
mod healthz;
mod http_errors;
mod keep_alive;
mod latest;
mod limits;
mod observability;
mod presence;
mod redis;
mod server;
mod server_api;
mod sse_stream;
mod transports;
mod web;

mod support;
