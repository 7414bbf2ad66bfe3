//! The HTTP/1 client the polls, the SSE stream and publishes go through: hyper-util's pooled
//! client over plain TCP.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, header};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::Error;

/// The largest answer read whole (a poll answer, a publish answer, an error).
pub(crate) const MAX_ANSWER_BYTES: usize = 16 << 20;

pub(crate) type Http = Client<HttpConnector, Full<Bytes>>;

pub(crate) fn client() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A request to `url` with the token as `Authorization: Bearer`.
pub(crate) fn request(
    method: Method,
    url: &str,
    token: Option<&str>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, Error> {
    let mut request = Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(body))
        .map_err(|err| Error::Config(format!("{url}: {err}")))?;
    request.headers_mut().extend(headers);
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::Config("the token is not a valid header value".to_owned()))?;
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    Ok(request)
}

/// Sends `request`; the answer's head and its body still to read.
pub(crate) async fn send(
    http: &Http,
    request: Request<Full<Bytes>>,
) -> Result<http::Response<Incoming>, Error> {
    http.request(request).await.map_err(|err| Error::Connection(format!("request failed: {err}")))
}

/// The whole body of `response`, at most [`MAX_ANSWER_BYTES`].
pub(crate) async fn body(response: http::Response<Incoming>) -> Result<Bytes, Error> {
    let limited = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES);
    limited
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|err| Error::Connection(format!("reading the answer: {err}")))
}
