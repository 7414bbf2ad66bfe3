//! The SSE transport's integration tests, in one test binary (a binary per file compiled and
//! linked the same code again).

mod lifecycle;
mod stream;

mod common;
