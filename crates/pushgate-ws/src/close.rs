//! Why the server closes a connection, and the one mapping from those reasons to close codes.

use pushgate_http::Cut;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Why the server ends a connection with a Close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The hub closed: the server is shutting down (1001).
    ShuttingDown,
    /// A protocol Ping went unanswered (1001).
    PingTimeout,
    /// Nothing could be written for the pong timeout: the client stopped reading (1001).
    Stalled,
    /// The client sent a message over the limit (1009).
    TooBig { limit: usize },
    /// The connection's backlog overflowed (4008).
    SlowConsumer { behind: u64 },
    /// The client broke RFC 6455 (1002).
    Protocol,
    /// The client sent a text frame that is not UTF-8 (1007).
    InvalidUtf8,
    /// The server failed (1011).
    Internal,
    /// The connection's token expired and was not refreshed (4401).
    TokenExpired,
    /// Auth is required and no token came within the auth timeout (4408).
    AuthTimeout,
    /// The application's server disconnected the connection's user or one of its topics
    /// (4410): the client does not reconnect on its own.
    Disconnected,
    /// The connection's token was revoked (4411): reconnect only with a fresh token.
    TokenRevoked,
}

/// The close code of a slow consumer: backlog overflowed, reconnect with the last cursor.
pub(crate) const SLOW_CONSUMER: u16 = pushgate_protocol::ws::close::SLOW_CONSUMER;
/// The close code of a connection whose token expired: reconnect with a fresh token.
pub(crate) const TOKEN_EXPIRED: u16 = pushgate_protocol::ws::close::TOKEN_EXPIRED;
/// The close code of a connection that sent no token in time.
pub(crate) const AUTH_TIMEOUT: u16 = pushgate_protocol::ws::close::AUTH_TIMEOUT;
/// The close code of a connection the application's server disconnected: do not reconnect.
pub(crate) const DISCONNECTED: u16 = pushgate_protocol::ws::close::DISCONNECTED;
/// The close code of a connection whose token was revoked: reconnect only with a fresh token.
pub(crate) const TOKEN_REVOKED: u16 = pushgate_protocol::ws::close::TOKEN_REVOKED;

impl CloseReason {
    /// The close code.
    pub(crate) fn code(self) -> u16 {
        match self {
            Self::ShuttingDown | Self::PingTimeout | Self::Stalled => 1001,
            Self::TooBig { .. } => 1009,
            Self::SlowConsumer { .. } => SLOW_CONSUMER,
            Self::Protocol => 1002,
            Self::InvalidUtf8 => 1007,
            Self::Internal => 1011,
            Self::TokenExpired => TOKEN_EXPIRED,
            Self::AuthTimeout => AUTH_TIMEOUT,
            Self::Disconnected => DISCONNECTED,
            Self::TokenRevoked => TOKEN_REVOKED,
        }
    }

    /// The reason text; RFC 6455 allows at most 123 bytes.
    pub(crate) fn reason(self) -> String {
        match self {
            Self::ShuttingDown => "server shutting down; reconnect".to_owned(),
            Self::PingTimeout => "no pong within the timeout".to_owned(),
            Self::Stalled => "not reading: nothing could be sent within the timeout".to_owned(),
            Self::TooBig { limit } => format!("message too big; the limit is {limit} bytes"),
            Self::SlowConsumer { behind } => {
                format!("slow consumer: {behind} events behind; reconnect with your last cursor")
            }
            Self::Protocol => "protocol error".to_owned(),
            Self::InvalidUtf8 => "text frame is not UTF-8".to_owned(),
            Self::Internal => "internal error".to_owned(),
            Self::TokenExpired => {
                "token expired; reconnect with a fresh token and your last cursor".to_owned()
            }
            Self::AuthTimeout => "no auth frame within the auth timeout".to_owned(),
            Self::Disconnected => "disconnected by the server; do not reconnect".to_owned(),
            Self::TokenRevoked => "token revoked; reconnect only with a fresh token".to_owned(),
        }
    }

    /// The reason for a connection cut off by the application's server.
    pub(crate) fn of_cut(cut: Cut) -> Self {
        match cut {
            Cut::Disconnected => Self::Disconnected,
            Cut::Revoked => Self::TokenRevoked,
        }
    }

    /// The Close frame to send.
    pub(crate) fn frame(self) -> CloseFrame {
        CloseFrame { code: CloseCode::from(self.code()), reason: self.reason().into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_protocol() {
        assert_eq!(CloseReason::ShuttingDown.code(), 1001);
        assert_eq!(CloseReason::PingTimeout.code(), 1001);
        assert_eq!(CloseReason::Stalled.code(), 1001);
        assert_eq!(CloseReason::TooBig { limit: 1 }.code(), 1009);
        assert_eq!(CloseReason::SlowConsumer { behind: 1 }.code(), 4008);
        assert_eq!(CloseReason::Internal.code(), 1011);
        assert_eq!(CloseReason::TokenExpired.code(), 4401);
        assert_eq!(CloseReason::Disconnected.code(), 4410);
        assert_eq!(CloseReason::TokenRevoked.code(), 4411);
        assert_eq!(CloseReason::AuthTimeout.code(), 4408);
        let frame = CloseReason::SlowConsumer { behind: u64::MAX }.frame();
        assert_eq!(u16::from(frame.code), 4008);
        assert!(frame.reason.len() <= 123);
        assert!(CloseReason::TooBig { limit: usize::MAX }.reason().len() <= 123);
    }
}
