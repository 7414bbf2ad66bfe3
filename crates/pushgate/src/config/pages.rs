//! What the gateway serves besides the protocol: the web pages, and the demo behind them (an
//! SQLite database tailed like a source, with a REST API, and a ticker for the dashboard).
//!
//! Here, as for embedders and tests, the demo is off unless asked for; the `pushgate` command
//! turns it on by default (the defaults `--help` shows), and `--no-demo` turns it off.

use std::path::PathBuf;

use super::ConfigError;

/// Where `pushgate serve` keeps the demo database unless told otherwise.
pub const DEFAULT_DEMO_DB: &str = "./pushgate-demo.db";

/// Events a second of `pushgate serve`'s demo ticker, when the demo runs, unless told otherwise.
pub const DEFAULT_DEMO_TICKER_RATE: u32 = 2;

/// The demo ticker's fastest rate, events a second: a demo, not a load generator.
const MAX_TICKER_RATE: u32 = 1000;

section! {
    /// The pages and the demo.
    pub struct Pages {
        /// The demo's SQLite file, created if missing with the tables users and orders, tailed
        /// into the topics db.users and db.orders, and served as JSON at /demo/users and
        /// /demo/orders. The `pushgate` command runs the demo unless given --no-demo.
        #[cfg_attr(feature = "sqlite", arg(default_value = DEFAULT_DEMO_DB))]
        #[arg(long, env = "PUSHGATE_DEMO_DB", value_name = "PATH")]
        pub demo_db: Option<PathBuf>,

        /// Events a second published to the topic demo.ticker (event type `tick`, data
        /// `{"symbol","price","t"}`) for the live dashboard page; 0 turns it off, at most 1000.
        /// The `pushgate` command runs it when the demo runs, and not with --no-demo unless given.
        #[arg(long, env = "PUSHGATE_DEMO_TICKER_RATE", value_name = "N",
              default_value_t = DEFAULT_DEMO_TICKER_RATE)]
        pub demo_ticker_rate: u32,

        /// Serve the pages at / (for paths no other route takes) from this directory, read at
        /// each request so edits show on reload (for working on web/), instead of the copy
        /// compiled into the binary.
        #[arg(long, env = "PUSHGATE_WEB_DIR", value_name = "DIR")]
        pub web_dir: Option<PathBuf>,
    }
}

impl Pages {
    /// The ticker is not a load generator; the pages' directory exists; the demo's file can be
    /// named to SQLite, in a build that has SQLite.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.demo_ticker_rate > MAX_TICKER_RATE {
            return Err(ConfigError::TickerRateTooHigh {
                value: self.demo_ticker_rate,
                limit: MAX_TICKER_RATE,
            });
        }
        if let Some(path) = &self.web_dir
            && !path.is_dir()
        {
            return Err(ConfigError::WebDir { path: path.clone() });
        }
        match &self.demo_db {
            #[cfg(feature = "sqlite")]
            Some(path) if crate::demo::sqlite_url(path).is_none() => {
                Err(ConfigError::DemoPath { path: path.clone() })
            }
            #[cfg(not(feature = "sqlite"))]
            Some(_) => Err(ConfigError::DemoUnavailable),
            _ => Ok(()),
        }
    }
}
