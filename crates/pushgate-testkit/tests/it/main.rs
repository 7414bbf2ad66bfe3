//! The testkit's tests, in one test binary (a binary per file compiled and linked the gateway
//! again): the conformance suite over every transport, and the testkit's own clients.

mod clients;
mod conformance;
