//! RedisStorage's integration tests, one module per concern, in one test binary (a binary per
//! file compiled and linked the same code again). Each test starts private `redis-server`
//! processes on free ports, so tests running in parallel threads share nothing but the machine.

mod failover;
mod history;
mod idempotency;
mod sentinel;
mod storage;
mod tls;

mod common;
