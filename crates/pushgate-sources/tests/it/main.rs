//! The database sources' integration tests, one module per database or concern, in one test
//! binary (a binary per file compiled and linked sqlx again). `cargo test` runs one binary's
//! tests in parallel threads, so tests of different databases now run side by side: each
//! names its tables, outboxes, leases and temporary files uniquely (`common::unique_prefix`,
//! or the test's name and the process id), and the TLS tests start private servers on free
//! ports. The modules of a database whose feature is off are left out by their own `#![cfg]`.

mod history;
mod mysql;
mod postgres;
mod send;
mod sqlite;
mod tls;

mod common;
