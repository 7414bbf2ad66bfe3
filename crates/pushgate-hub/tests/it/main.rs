//! The hub's integration tests, one module per concern, in one test binary (a binary per file
//! compiled and linked the same code a dozen times). `cargo test` runs one binary's tests in
//! parallel threads: every test builds hubs of its own, and the encoding slots of `budget.rs`
//! are the only ones this binary allocates (the hub caches four per event).
//!
//! `tests/host.rs` is a binary of its own; its header says why.

mod auto_batch;
mod budget;
mod coalesce;
mod hub;
mod idempotency;
mod journal;
mod latest;
mod properties;
mod replica;
mod text;
mod tier_properties;
mod tiers;
mod topic_slots;
