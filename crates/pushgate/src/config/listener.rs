//! Where the gateway listens, how many connections it keeps, and how long it waits on them.

use std::net::{Ipv4Addr, SocketAddr};

use super::{ConfigError, Delivery, TimeSpan, nonzero};

/// The most connections the accept loop can count (its semaphore counts in `u32`).
const MAX_CONNECTIONS_LIMIT: usize = u32::MAX as usize;

section! {
    /// The listening socket and the connections it accepts.
    pub struct Listener {
        /// Address and port to listen on; port 0 lets the system pick one.
        #[arg(long, env = "PUSHGATE_LISTEN", value_name = "ADDR")]
        pub listen: SocketAddr = SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),

        /// Most open connections, WebSockets included; more are answered `503 overloaded` and
        /// closed.
        #[arg(long, env = "PUSHGATE_MAX_CONNECTIONS", value_name = "N")]
        pub max_connections: usize = 10_000,

        /// Most open connections from one IP address, WebSockets included; more are answered
        /// `429 too_many_connections_from_ip` and closed. 0: no limit (for load tests from one
        /// host, or behind a proxy that connects from one address).
        #[arg(long, env = "PUSHGATE_MAX_CONNECTIONS_PER_IP", value_name = "N")]
        pub max_connections_per_ip: usize = 1024,

        /// Time a client has to send a request's headers; also how long a keep-alive connection
        /// may wait for its next request.
        #[arg(long, env = "PUSHGATE_HEADER_READ_TIMEOUT", value_name = "DURATION")]
        pub header_read_timeout: TimeSpan = TimeSpan::secs(10),

        /// Close a connection on which nothing is read or written for this long (a peer that
        /// stopped reading, a half-open TCP connection), after one to two idle timeouts of
        /// silence; 0 disables it. Must exceed the long-poll maximum and twice the SSE
        /// heartbeat, the longest silences on purpose. WebSockets are kept alive by their own
        /// pings instead.
        #[arg(long, env = "PUSHGATE_IDLE_TIMEOUT", value_name = "DURATION")]
        pub idle_timeout: TimeSpan = TimeSpan::secs(300),

        /// On shutdown, time open connections get to finish before they are cut.
        #[arg(long, env = "PUSHGATE_DRAIN_TIMEOUT", value_name = "DURATION")]
        pub drain_timeout: TimeSpan = TimeSpan::secs(10),

        /// TCP keepalive on accepted connections: idle time before the first probe (0 leaves
        /// keepalive off). It finds peers that vanished without a word (a crashed host, a
        /// dropped NAT mapping) on connections that are silent on purpose.
        #[arg(long, env = "PUSHGATE_TCP_KEEPALIVE_IDLE", value_name = "DURATION")]
        pub tcp_keepalive_idle: TimeSpan = TimeSpan::secs(30),

        /// TCP keepalive: time between unanswered probes.
        #[arg(long, env = "PUSHGATE_TCP_KEEPALIVE_INTERVAL", value_name = "DURATION")]
        pub tcp_keepalive_interval: TimeSpan = TimeSpan::secs(10),

        /// TCP keepalive: unanswered probes before the connection is dropped.
        #[arg(long, env = "PUSHGATE_TCP_KEEPALIVE_RETRIES", value_name = "N")]
        pub tcp_keepalive_retries: u32 = 3,

        /// TCP_USER_TIMEOUT on accepted connections (Linux): how long sent data may stay
        /// unacknowledged before the connection is dropped, so a dead peer does not hold its
        /// buffers for the minutes of the system's retransmission limit; 0 keeps the system's
        /// default.
        #[arg(long, env = "PUSHGATE_TCP_USER_TIMEOUT", value_name = "DURATION")]
        pub tcp_user_timeout: TimeSpan = TimeSpan::secs(30),
    }
}

impl Listener {
    /// Limits are positive and countable; keepalive is complete when on; the idle timeout
    /// outlasts the silences `delivery` makes on purpose.
    pub(super) fn check(&self, delivery: &Delivery) -> Result<(), ConfigError> {
        nonzero([
            ("max_connections", self.max_connections == 0),
            ("header_read_timeout", self.header_read_timeout.is_zero()),
        ])?;
        if !self.tcp_keepalive_idle.is_zero() {
            nonzero([
                ("tcp_keepalive_interval", self.tcp_keepalive_interval.is_zero()),
                ("tcp_keepalive_retries", self.tcp_keepalive_retries == 0),
            ])?;
        }
        if self.max_connections > MAX_CONNECTIONS_LIMIT {
            return Err(ConfigError::TooManyConnections {
                value: self.max_connections,
                limit: MAX_CONNECTIONS_LIMIT,
            });
        }
        let needed = delivery.longest_silence();
        if !self.idle_timeout.is_zero() && *self.idle_timeout <= needed {
            return Err(ConfigError::IdleTooShort { idle: *self.idle_timeout, needed });
        }
        Ok(())
    }
}
