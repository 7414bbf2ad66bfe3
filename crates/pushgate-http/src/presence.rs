//! The presence parameters of a poll: who the polling client is, so that it can be counted
//! between its requests.
//!
//! A short poll holds no connection, so the server sees a client only while it asks; a long
//! poll is gone for a moment between two waits. A request naming `client=<id>` (1 to 64 of
//! `[A-Za-z0-9_.:-]`, chosen by the client, e.g. a random id per tab) is counted from that
//! request until twice its `interval` (seconds between its polls, default 5, at most 300) after
//! it. Ids are told apart per client address, so one client cannot renew another's. Without an
//! id nothing identifies two requests as the same client, so a short poll is not counted, and a
//! long poll is counted only while it waits.
//!
//! A subscription asks for the joins and leaves of its topics with `presence=1`
//! ([`wants_presence`]).

use std::time::Duration;

use pushgate_hub::{MAX_CLIENT_ID_LEN, PresenceHold};

use crate::{ApiError, ClientInfo, ErrorCode, Query};

/// The `interval` of a poll that names none.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// The longest `interval` honoured, in seconds.
pub const MAX_POLL_INTERVAL_SECS: u64 = 300;

/// The lease of a poll whose query names a `client`, counted under `label`; `None` without one.
///
/// A short poll holds no connection, so the server sees a client only while it asks; a long
/// poll is gone for a moment between two waits. A request naming `client=<id>` (1 to 64 of
/// `[A-Za-z0-9_.:-]`, chosen by the client, e.g. a random id per tab) is counted from that
/// request until twice its `interval` (seconds between its polls, default 5, at most 300) after
/// it. Ids are told apart per client address, so one client cannot renew another's. Without an
/// id nothing identifies two requests as the same client, so a short poll is not counted, and a
/// long poll is counted only while it waits.
///
/// ```
/// use pushgate_http::{ClientInfo, Query, presence_hold};
///
/// let hold = presence_hold(&Query::parse(Some("client=tab-1&interval=2")), &ClientInfo::default(), "poll");
/// assert_eq!(hold.unwrap().unwrap().ttl(), std::time::Duration::from_secs(4));
/// assert!(presence_hold(&Query::parse(Some("topic=a")), &ClientInfo::default(), "poll").unwrap().is_none());
/// assert!(presence_hold(&Query::parse(Some("client=a%20b")), &ClientInfo::default(), "poll").is_err());
/// ```
///
/// # Errors
/// `400 invalid_parameter` for an id too long or with other characters, or an `interval` that is
/// not a whole number of seconds.
pub fn presence_hold(
    query: &Query,
    client: &ClientInfo,
    label: &'static str,
) -> Result<Option<PresenceHold>, ApiError> {
    let Some(id) = query.get("client").filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    let valid = id.len() <= MAX_CLIENT_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if !valid {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("`client` must be 1 to {MAX_CLIENT_ID_LEN} of [A-Za-z0-9_.:-]"),
        ));
    }
    let interval = query.seconds("interval", MAX_POLL_INTERVAL_SECS)?.unwrap_or(DEFAULT_POLL_INTERVAL);
    let group = client.ip.map(|ip| ip.to_string()).unwrap_or_default();
    Ok(Some(PresenceHold::new(id, 2 * interval.max(Duration::from_secs(1))).group(&group).label(label)))
}

/// Whether the query asks for join and leave notices: `presence=1` (or `true`); `0`, `false` or
/// none for no.
///
/// ```
/// use pushgate_http::{Query, wants_presence};
///
/// assert_eq!(wants_presence(&Query::parse(Some("topic=a&presence=1"))), Ok(true));
/// assert_eq!(wants_presence(&Query::parse(Some("topic=a"))), Ok(false));
/// assert!(wants_presence(&Query::parse(Some("presence=yes"))).is_err());
/// ```
///
/// # Errors
/// `400 invalid_parameter` for another value.
pub fn wants_presence(query: &Query) -> Result<bool, ApiError> {
    match query.get("presence") {
        None | Some("" | "0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(other) => Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("`presence` must be 1 or 0, got {other:?}"),
        )),
    }
}
