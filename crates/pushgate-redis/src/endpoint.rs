//! Where the Redis master is: a plain URL (`redis://`, `rediss://`), or a set of Sentinels that
//! name it (`redis+sentinel://`, `rediss+sentinel://`), asked again at every reconnect so the
//! storage follows a failover.
//!
//! The Sentinel form is the one several Redis clients share:
//! `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master_name[/db][?sentinel_username=…&sentinel_password=…]`.
//! Sentinels default to port 26379; the credentials in the URL are the data nodes', the query's
//! the Sentinels' own. `rediss+sentinel://` speaks TLS to both, with the same CA file.

use std::time::Duration;

use percent_encoding::percent_decode_str;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ClientTlsConfig, ConnectionAddr, TlsCertificates, TlsMode};

use crate::{ConnectError, RedisOptions};

/// The Sentinels' usual port.
const SENTINEL_PORT: u16 = 26379;

/// How to reach the master.
pub(crate) enum Endpoint {
    /// One server, at a fixed address.
    Direct(redis::Client),
    /// The master the Sentinels name; asked again at every reconnect.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Direct(_) => "Direct",
            Self::Sentinel(_) => "Sentinel",
        })
    }
}

impl Endpoint {
    /// Builds the endpoint of `url`, with the TLS files of `options` read in `tls`.
    pub(crate) fn new(url: &str, tls: Option<TlsCertificates>) -> Result<Self, ConnectError> {
        if tls.is_some() && !is_tls(url) {
            return Err(ConnectError::TlsWithoutTls);
        }
        match SentinelUrl::parse(url)? {
            Some(sentinel) => sentinel.client(tls).map(|c| Self::Sentinel(tokio::sync::Mutex::new(c))),
            None => {
                let client = match tls {
                    Some(tls) => redis::Client::build_with_tls(url, tls),
                    None => redis::Client::open(url),
                };
                client.map(Self::Direct).map_err(ConnectError::Url)
            }
        }
    }

    pub(crate) fn is_sentinel(&self) -> bool {
        matches!(self, Self::Sentinel(_))
    }

    /// A client for the current master: the fixed one, or the one the Sentinels name now (after
    /// checking that it says it is a master).
    pub(crate) async fn client(&self, timeout: Duration) -> redis::RedisResult<redis::Client> {
        match self {
            Self::Direct(client) => Ok(client.clone()),
            Self::Sentinel(sentinel) => {
                let lookup = async { sentinel.lock().await.async_get_client().await };
                tokio::time::timeout(timeout, lookup).await.unwrap_or_else(|_| {
                    Err(redis::RedisError::from((redis::ErrorKind::Io, "no sentinel named a master in time")))
                })
            }
        }
    }
}

/// Reads the CA file and client identity of `options`, when set.
pub(crate) async fn certificates(options: &RedisOptions) -> Result<Option<TlsCertificates>, ConnectError> {
    let read = |path: std::path::PathBuf| async move {
        tokio::fs::read(&path).await.map_err(|source| ConnectError::TlsFile { path, source })
    };
    let root_cert = match &options.ca_file {
        Some(path) => Some(read(path.clone()).await?),
        None => None,
    };
    let client_tls = match &options.client_identity {
        Some((cert, key)) => Some(ClientTlsConfig {
            client_cert: read(cert.clone()).await?,
            client_key: read(key.clone()).await?,
        }),
        None => None,
    };
    Ok((root_cert.is_some() || client_tls.is_some()).then_some(TlsCertificates { client_tls, root_cert }))
}

/// Whether `url` asks for TLS (so TLS files apply to it).
fn is_tls(url: &str) -> bool {
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    scheme.eq_ignore_ascii_case("rediss") || scheme.eq_ignore_ascii_case("rediss+sentinel")
}

/// A parsed Sentinel URL.
#[derive(Debug, PartialEq, Eq)]
struct SentinelUrl {
    tls: bool,
    sentinels: Vec<(String, u16)>,
    master: String,
    db: i64,
    username: Option<String>,
    password: Option<String>,
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
}

impl SentinelUrl {
    /// `None` when `url` is not a Sentinel URL.
    fn parse(url: &str) -> Result<Option<Self>, ConnectError> {
        let bad = |reason| Err(ConnectError::SentinelUrl { reason });
        let Some((scheme, rest)) = url.split_once("://") else { return Ok(None) };
        let tls = if scheme.eq_ignore_ascii_case("redis+sentinel") {
            false
        } else if scheme.eq_ignore_ascii_case("rediss+sentinel") {
            true
        } else {
            return Ok(None);
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let decode = |text: &str| percent_decode_str(text).decode_utf8().map(|t| t.into_owned()).ok();
        let (username, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                let Some(user) = decode(user) else { return bad("the user name is not UTF-8") };
                let Some(password) = password.map(decode).unwrap_or(Some(String::new())) else {
                    return bad("the password is not UTF-8");
                };
                ((!user.is_empty()).then_some(user), (!password.is_empty()).then_some(password))
            }
        };
        let mut sentinels = Vec::new();
        for host in hosts.split(',') {
            let (name, port) = match host.strip_prefix('[') {
                Some(v6) => match v6.split_once(']') {
                    Some((name, "")) => (name, None),
                    Some((name, port)) => match port.strip_prefix(':') {
                        Some(port) => (name, Some(port)),
                        None => return bad("a sentinel address is not host[:port]"),
                    },
                    None => return bad("an IPv6 sentinel address lacks its `]`"),
                },
                None => match host.split_once(':') {
                    Some((name, port)) => (name, Some(port)),
                    None => (host, None),
                },
            };
            if name.is_empty() {
                return bad("a sentinel address is empty");
            }
            let port = match port.map(str::parse::<u16>) {
                None => SENTINEL_PORT,
                Some(Ok(port)) if port > 0 => port,
                Some(_) => return bad("a sentinel port is not a number from 1 to 65535"),
            };
            sentinels.push((name.to_owned(), port));
        }
        let mut segments = path.split('/');
        let master = segments.next().and_then(decode).unwrap_or_default();
        if master.is_empty() {
            return bad("the master name is missing (…/master_name[/db])");
        }
        let db = match segments.next() {
            None | Some("") => 0,
            Some(db) => match db.parse::<i64>() {
                Ok(db) if db >= 0 => db,
                _ => return bad("the database is not a number"),
            },
        };
        if segments.next().is_some() {
            return bad("the path has more than …/master_name/db");
        }
        let mut parsed = Self {
            tls,
            sentinels,
            master,
            db,
            username,
            password,
            sentinel_username: None,
            sentinel_password: None,
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = (!value.is_empty()).then(|| value.into_owned());
            match &*key {
                "sentinel_username" => parsed.sentinel_username = value,
                "sentinel_password" => parsed.sentinel_password = value,
                _ => {
                    return bad(
                        "unknown query parameter (sentinel_username and sentinel_password are known)",
                    );
                }
            }
        }
        Ok(Some(parsed))
    }

    fn client(self, tls: Option<TlsCertificates>) -> Result<SentinelClient, ConnectError> {
        let sentinels = self.sentinels.into_iter().map(|(host, port)| {
            if self.tls {
                ConnectionAddr::TcpTls { host, port, insecure: false, tls_params: None }
            } else {
                ConnectionAddr::Tcp(host, port)
            }
        });
        let mut builder = SentinelClientBuilder::new(sentinels, self.master, SentinelServerType::Master)
            .map_err(ConnectError::Url)?
            .set_client_to_redis_db(self.db);
        if self.tls {
            builder = builder.set_client_to_redis_tls_mode(TlsMode::Secure);
        }
        if let Some(tls) = tls {
            builder = builder
                .set_client_to_redis_certificates(tls.clone())
                .set_client_to_sentinel_certificates(tls);
        }
        if let Some(username) = self.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = self.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(username) = self.sentinel_username {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = self.sentinel_password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        builder.build().map_err(ConnectError::Url)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(url: &str) -> SentinelUrl {
        SentinelUrl::parse(url).unwrap().unwrap()
    }

    #[test]
    fn a_sentinel_url_names_every_sentinel_the_master_and_the_credentials() {
        let url = parse("redis+sentinel://app:p%40ss@s1,s2:5000,[::1]:26380/main/2?sentinel_password=x%2By");
        assert_eq!(url.sentinels, vec![("s1".into(), 26379), ("s2".into(), 5000), ("::1".into(), 26380)]);
        assert_eq!((url.master.as_str(), url.db, url.tls), ("main", 2, false));
        assert_eq!((url.username.as_deref(), url.password.as_deref()), (Some("app"), Some("p@ss")));
        assert_eq!((url.sentinel_username, url.sentinel_password.as_deref()), (None, Some("x+y")));
        let url = parse("rediss+sentinel://:secret@127.0.0.1:26379/mymaster");
        assert_eq!((url.username, url.password.as_deref(), url.tls, url.db), (None, Some("secret"), true, 0));
    }

    #[test]
    fn other_urls_are_not_sentinel_urls() {
        for url in ["redis://h:6379/0", "rediss://h", "nonsense"] {
            assert_eq!(SentinelUrl::parse(url).unwrap(), None, "{url}");
        }
    }

    #[test]
    fn a_bad_sentinel_url_says_what_is_wrong() {
        for (url, says) in [
            ("redis+sentinel://s1:26379", "master name is missing"),
            ("redis+sentinel://s1:26379/", "master name is missing"),
            ("redis+sentinel://s1:99999/m", "port"),
            ("redis+sentinel://,s2/m", "empty"),
            ("redis+sentinel://s1/m/x", "database"),
            ("redis+sentinel://s1/m/0/extra", "path"),
            ("redis+sentinel://[::1/m", "`]`"),
            ("redis+sentinel://s1/m?master=x", "unknown query parameter"),
        ] {
            let err = SentinelUrl::parse(url).unwrap_err().to_string();
            assert!(err.contains(says), "{url}: {err}");
        }
    }
}
