//! The HTTP client the policy asks the application (auth proxy) and the identity provider
//! (JWKS) with: hyper-util's pooled client, TLS by rustls on ring with the system's trust
//! roots, every request bounded in time and in the size of its answer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Idle pooled connections kept per host: the application is asked often, by many requests at
/// once, and a new TLS handshake per question would cost more than the question.
const MAX_IDLE_PER_HOST: usize = 32;
/// How long an idle pooled connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request to the application or the identity provider got no usable answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// No answer within the deadline.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The connection or the exchange failed.
    #[error("{0}")]
    Failed(String),
    /// The answer's body is larger than accepted.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// A pooled HTTP/1.1 client for `http://` and `https://` URLs. Cheap to clone.
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

impl HttpClient {
    /// A client trusting the system's roots (`SSL_CERT_FILE` or `SSL_CERT_DIR` when set, as
    /// OpenSSL does). Roots that cannot be loaded are logged: plain `http://` still works, and
    /// an `https://` request then fails its handshake, which is reported where it is made.
    ///
    /// # Errors
    ///
    /// rustls's, if ring did not support rustls's default protocol versions.
    pub(crate) fn new() -> Result<Self, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "cannot load a trusted root certificate");
        }
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "trusted root certificates for https to the application");
        // ring rather than aws-lc-rs: no large C build, and the application and the identity
        // provider are asked over the operator's own network, where post-quantum key exchange
        // (what rustls deprecates ring's provider for lacking) is not what protects them.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .build(https);
        Ok(Self { client })
    }

    /// Sends `request` and reads the answer's status and body, all within `timeout`; a body
    /// over `max_bytes` is an error.
    pub(crate) async fn send(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<(StatusCode, Bytes), FetchError> {
        let exchange = async {
            let response =
                self.client.request(request).await.map_err(|err| FetchError::Failed(describe(&err)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), max_bytes).collect().await.map_err(|err| {
                if err.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    FetchError::TooLarge(max_bytes)
                } else {
                    FetchError::Failed(err.to_string())
                }
            })?;
            Ok((status, body.to_bytes()))
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| FetchError::Timeout(timeout))?
    }

    /// `POST url` with a JSON body.
    pub(crate) async fn post_json(
        &self,
        url: &Uri,
        body: Vec<u8>,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<(StatusCode, Bytes), FetchError> {
        let request = Request::post(url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, concat!("pushgate/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| FetchError::Failed(err.to_string()))?;
        self.send(request, timeout, max_bytes).await
    }

    /// `GET url`.
    pub(crate) async fn get(
        &self,
        url: &Uri,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<(StatusCode, Bytes), FetchError> {
        let request = Request::get(url.clone())
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, concat!("pushgate/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::new()))
            .map_err(|err| FetchError::Failed(err.to_string()))?;
        self.send(request, timeout, max_bytes).await
    }
}

/// hyper-util's error and its causes in one line (the top-level message alone is often just
/// "client error (Connect)").
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A URL the policy cannot ask: not an absolute `http://` or `https://` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url:?} is not an http:// or https:// URL")]
pub struct InvalidUrl {
    url: String,
}

/// `url` parsed, if it is an absolute `http://` or `https://` URL with a host (what the auth
/// proxy and the JWKS endpoint must be).
///
/// ```
/// assert!(pushgate_auth::check_url("https://app.example/pushgate/auth").is_ok());
/// assert!(pushgate_auth::check_url("app.example/auth").is_err());
/// assert!(pushgate_auth::check_url("ftp://app.example/").is_err());
/// ```
///
/// # Errors
///
/// [`InvalidUrl`] otherwise.
pub fn check_url(url: &str) -> Result<Uri, InvalidUrl> {
    let invalid = || InvalidUrl { url: url.to_owned() };
    let uri: Uri = url.parse().map_err(|_| invalid())?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(invalid()),
    }
}
