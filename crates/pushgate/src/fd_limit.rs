//! The open-files limit. Every connection is a file descriptor, and the usual soft limit
//! (1,024) is far below the gateway's default connection limit, so connections past it would
//! fail at `accept` while the connection limit still has room.

/// File descriptors the process needs besides its connections: the listener, the runtime's
/// own, log output, and whatever the process opens while serving.
const RESERVED: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, and logs a warning naming both numbers
/// when the result is still below `max_connections` plus a small reserve. Never fails: a low
/// limit is the operator's call, and the accept loop survives running out of descriptors.
///
/// Returns the limit in force, or `None` when it could not be read or changed.
pub(crate) fn raise(max_connections: usize) -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            match shortfall(limit, max_connections) {
                Some(needed) => tracing::warn!(
                    limit,
                    needed,
                    max_connections,
                    "the open-files limit (RLIMIT_NOFILE) is {limit}, below the {needed} that \
                     max_connections ({max_connections}) plus {RESERVED} need; accepting will fail \
                     before the connection limit is reached: raise the hard limit (ulimit -Hn, \
                     LimitNOFILE=) or lower --max-connections"
                ),
                None => tracing::debug!(limit, "open-files limit"),
            }
            Some(limit)
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read or raise the open-files limit (RLIMIT_NOFILE)");
            None
        }
    }
}

/// The descriptors needed for `max_connections`, when `limit` is below that.
fn shortfall(limit: u64, max_connections: usize) -> Option<u64> {
    let needed = u64::try_from(max_connections).unwrap_or(u64::MAX).saturating_add(RESERVED);
    (limit < needed).then_some(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_below_the_connections_and_the_reserve_is_a_shortfall() {
        assert_eq!(shortfall(1024, 10_000), Some(10_064));
        assert_eq!(shortfall(10_063, 10_000), Some(10_064));
        assert_eq!(shortfall(10_064, 10_000), None);
        assert_eq!(shortfall(1 << 20, 10_000), None);
        assert_eq!(shortfall(1 << 20, usize::MAX), Some(u64::MAX), "saturates");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let limit = raise(10).expect("the limit can be raised on Linux");
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
        assert_eq!(limit, soft);
        assert_eq!(soft, hard, "the soft limit was raised all the way");
    }
}
