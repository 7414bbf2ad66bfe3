//! [`ConnectError`]: why a [`RedisStorage`](crate::RedisStorage) could not start.

use std::path::PathBuf;

use pushgate_hub::Epoch;

/// Why [`RedisStorage::connect`](crate::RedisStorage::connect) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a Redis URL.
    #[error("invalid redis url: {0}")]
    Url(#[source] redis::RedisError),
    /// Redis could not be reached or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The TLS handshake with Redis (or a Sentinel) failed: most often the server's certificate
    /// is not signed by the CA given with [`RedisOptions::ca_file`](crate::RedisOptions::ca_file)
    /// (or by the system's roots) or names another host, or the server wants a client
    /// certificate ([`RedisOptions::client_identity`](crate::RedisOptions::client_identity)).
    #[error(
        "redis: TLS handshake failed: {0} (check the CA file, the host name in the url, and the \
         client certificate if the server asks for one)"
    )]
    Tls(#[source] redis::RedisError),
    /// A Sentinel URL (`redis+sentinel://…`) is malformed.
    #[error("invalid redis sentinel url: {reason}")]
    SentinelUrl {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A CA or client certificate file could not be read.
    #[error("cannot read {path}: {source}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A CA file or client certificate was given for a URL that does not use TLS.
    #[error("a CA file or client certificate needs a rediss:// (or rediss+sentinel://) url")]
    TlsWithoutTls,
    /// The server runs in Redis Cluster mode, which this crate does not speak (its keys would
    /// all live in one slot anyway: see docs/deployment.md).
    #[error(
        "redis is in cluster mode, which pushgate does not support: use a primary with replicas \
         (and Sentinel), see docs/deployment.md"
    )]
    Cluster,
    /// The server is older than this crate needs.
    #[error("redis {version} is too old: pushgate needs redis {minimum} or newer")]
    TooOld {
        /// The server's version (`INFO server`).
        version: String,
        /// The oldest version supported.
        minimum: String,
    },
    /// The `epoch` key holds something this crate did not write.
    #[error("redis key {key} holds {value:?}, not an epoch (8 hex digits)")]
    BadEpoch {
        /// The key.
        key: String,
        /// What it holds.
        value: String,
    },
    /// A log entry was written under another epoch than this node's while it followed the log:
    /// the store was wiped and a node started on it with a new epoch. The node stops (this is
    /// the reason [`RedisState::fatal`](crate::RedisState::fatal) gives); at connect, entries of an earlier epoch left in
    /// the stream are passed over instead, since the node starts in the store's epoch.
    #[error("redis stream entry {id} belongs to epoch {epoch}, this node serves epoch {ours}")]
    ForeignEntry {
        /// The stream entry ID.
        id: String,
        /// The epoch it was written under.
        epoch: Epoch,
        /// This node's epoch.
        ours: Epoch,
    },
    /// A log entry could not be read as an event.
    #[error("redis stream entry {id}: {reason}")]
    BadEntry {
        /// The stream entry ID.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConnectError {
    /// [`ConnectError::Tls`] when a TLS handshake failed, [`ConnectError::Redis`] otherwise.
    pub(crate) fn from_redis(err: redis::RedisError) -> Self {
        if refused_by_tls(&err) { Self::Tls(err) } else { Self::Redis(err) }
    }
}

/// Whether rustls refused the connection somewhere down `err`'s chain of causes.
fn refused_by_tls(err: &(dyn std::error::Error + 'static)) -> bool {
    if err.is::<rustls::Error>() {
        return true;
    }
    // The redis crate keeps causes as `Arc<dyn Error>`, and I/O errors wrap rustls's.
    if let Some(inner) = err.downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>() {
        return refused_by_tls(&**inner);
    }
    if let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
        return refused_by_tls(inner);
    }
    err.source().is_some_and(refused_by_tls)
}
