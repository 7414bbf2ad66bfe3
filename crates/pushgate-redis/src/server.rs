//! What a node checks of the server it connects to: its version, its eviction policy, that it
//! is not a Redis Cluster node, and whether it has the replicas acknowledgements need.

use redis::aio::MultiplexedConnection;

use crate::ConnectError;

/// The oldest Redis this crate works with: loading the log uses `XRANGE` with an exclusive
/// start (`(id`), new in 6.2.
const MIN_VERSION: (u64, u64) = (6, 2);

/// Refuses a Redis older than [`MIN_VERSION`] or in cluster mode, and warns when Redis may evict
/// keys (an evicted `seq` hash or `pos` alone is not noticed, and `seq` would start again at 1
/// in a topic) or has fewer connected replicas than `min_replicas_ack`. Servers that refuse
/// `INFO` or `CONFIG` are not checked.
pub(crate) async fn check(
    connection: &mut MultiplexedConnection,
    min_replicas_ack: usize,
) -> Result<(), ConnectError> {
    let info: Result<String, _> =
        redis::cmd("INFO").arg("server").arg("cluster").arg("replication").query_async(connection).await;
    match info {
        Ok(info) => {
            let field = |name: &str| {
                info.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
            };
            let version = field("redis_version");
            let parsed = version.and_then(|v| {
                let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
                Some((parts.next()??, parts.next()??))
            });
            if let (Some(version), Some(parsed)) = (version, parsed)
                && parsed < MIN_VERSION
            {
                return Err(ConnectError::TooOld {
                    version: version.to_owned(),
                    minimum: format!("{}.{}", MIN_VERSION.0, MIN_VERSION.1),
                });
            }
            if field("cluster_enabled") == Some("1") {
                return Err(ConnectError::Cluster);
            }
            let replicas = field("connected_slaves").and_then(|n| n.parse::<usize>().ok());
            if let Some(replicas) = replicas
                && replicas < min_replicas_ack
            {
                tracing::warn!(
                    replicas,
                    min_replicas_ack,
                    "redis has fewer connected replicas than must confirm each event: \
                     nothing is delivered and publishes fail until enough replicas are back"
                );
            }
        }
        Err(err) => tracing::debug!(%err, "cannot read the redis version"),
    }
    let policy: Result<Vec<String>, _> =
        redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query_async(connection).await;
    match policy {
        Ok(reply) => match reply.get(1) {
            Some(policy) if policy != "noeviction" => tracing::warn!(
                %policy,
                "redis maxmemory-policy is not noeviction: evicted pushgate keys break seq and positions"
            ),
            _ => {}
        },
        Err(err) => tracing::debug!(%err, "cannot read redis maxmemory-policy"),
    }
    Ok(())
}
