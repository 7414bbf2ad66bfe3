//! Follows `db.orders` on a running gateway from a separate process, printing each change, and
//! resuming where it left off when started again with the cursor it printed last.
//!
//! ```sh
//! pushgate &                                    # the demo tails its SQLite database into db.*
//! cargo run -p pushgate-client --example follow_orders -- http://127.0.0.1:8080 [cursor] [transport]
//! ```
//!
//! `PUSHGATE_TOKEN` is sent as the token when set. The transport is `ws` (default), `sse`,
//! `longpoll` or `poll`.

use futures_util::StreamExt as _;
use pushgate_client::protocol::Cursor;
use pushgate_client::{Client, Item, SubscribeOptions, Transport};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let mut options = SubscribeOptions::default();
    if let Some(cursor) = args.next().filter(|cursor| !cursor.is_empty()) {
        options = options.cursor(cursor.parse::<Cursor>()?);
    }
    options = options.transport(match args.next().as_deref() {
        None | Some("ws") => Transport::WebSocket,
        Some("sse") => Transport::Sse,
        Some("longpoll") => Transport::LongPoll,
        Some("poll") => Transport::Poll,
        Some(other) => return Err(format!("no transport is called {other:?}").into()),
    });
    let mut client = Client::builder(&url);
    if let Ok(token) = std::env::var("PUSHGATE_TOKEN") {
        client = client.token(token);
    }
    let client = client.build()?;
    let mut orders = client.subscribe(["db.orders"], options);
    eprintln!("following db.orders on {url}");
    while let Some(item) = orders.next().await {
        match item? {
            Item::Event(event) => {
                println!("{} {} #{} {}", event.id, event.event, event.seq, event.data.get())
            }
            Item::Reset(reset) => println!("reset ({:?}): reload the orders", reset.reason),
            _ => {}
        }
    }
    Ok(())
}
