//! CORS for the HTTP transports and the publish API, so that pages of other origins may poll,
//! stream and publish with `fetch` or `EventSource`.
//!
//! Off unless origins are configured: then no CORS header is sent and only same-origin pages
//! can read answers, which is what a browser does by default. WebSockets are not concerned
//! (browsers apply no CORS to them; see the `Origin` check of `pushgate-ws`).
//!
//! Origins are compared as the WebSocket allowlist compares them ([`pushgate_ws::Origin`]):
//! scheme and host case-insensitively, a default port the same as none, so that
//! `--cors-origins https://App.example:443` allows the page a browser calls `https://app.example`.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, header};
use pushgate_ws::{InvalidOrigin, Origin};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS layer for `origins` (`*` among them allows any), or `None` for no CORS at all.
///
/// # Errors
/// The first origin that is neither `*` nor `scheme://host[:port]`.
pub(crate) fn layer(origins: &[String]) -> Result<Option<CorsLayer>, InvalidOrigin> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allowed: Vec<Origin> = origins
        .iter()
        .map(|origin| origin.trim())
        .filter(|origin| *origin != "*")
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let allow_origin = if origins.iter().any(|origin| origin.trim() == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            let origin = origin.to_str().ok().and_then(|origin| origin.parse::<Origin>().ok());
            origin.is_some_and(|origin| allowed.contains(&origin))
        })
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST])
            // `If-None-Match` lets a cross-origin poller get its `304`s.
            .allow_headers([
                HeaderName::from_static("last-event-id"),
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_NONE_MATCH,
            ])
            .expose_headers([header::ETAG])
            .max_age(PREFLIGHT_MAX_AGE),
    ))
}
