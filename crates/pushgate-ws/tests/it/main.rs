//! The WebSocket transport's integration tests, one module per concern, in one test binary (a
//! binary per file compiled and linked the same code again). Each test serves on a port of its
//! own.

mod auth;
mod limits;
mod liveness;
mod resubscribe;
mod ws;

mod support;
