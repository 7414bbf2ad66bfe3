//! A subscription: one task that runs attempts over the chosen transport, one after another,
//! each from the cursor the last one reached, and hands what they read to a [`Stream`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use pushgate_protocol::{Cursor, EventObject, ResetObject};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::error::Retry;
use crate::{Error, Inner, Transport, poll, sse, ws};

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Item {
    /// An event.
    Event(EventObject),
    /// Events were missed before what follows (history expired, or the server lost it): a
    /// reader that keeps state from events should load a fresh snapshot.
    Reset(ResetObject),
}

/// How many items a subscription reads ahead of its reader. A reader slower than that makes
/// the subscription stop reading; the server then cuts it off as a slow consumer and it comes
/// back from its cursor, so memory stays bounded and nothing is lost.
const READ_AHEAD: usize = 256;

/// Live items of topics, as a [`Stream`]: events and resets in the server's order, then the
/// error that ended it, if one did.
///
/// The subscription reconnects by itself after errors that may pass (a lost connection, a
/// server shutting down or overloaded, a slow consumer), after a full-jitter backoff, from the
/// cursor of the last item read, so nothing is lost or repeated; when the server says the token
/// expired it asks the client's refresh callback for a fresh one and reconnects at once. An
/// error that would only repeat (a refused topic, a bad token without a refresh callback) is
/// the stream's last item. Dropping the subscription disconnects it.
pub struct Subscription {
    items: mpsc::Receiver<Result<(Item, Option<Cursor>), Error>>,
    task: JoinHandle<()>,
    cursor: Option<Cursor>,
    connected: watch::Receiver<bool>,
}

impl Subscription {
    pub(crate) fn start(
        client: Arc<Inner>,
        topics: Vec<String>,
        cursor: Option<Cursor>,
        transport: Transport,
    ) -> Self {
        let (sender, items) = mpsc::channel(READ_AHEAD);
        let (connect, connected) = watch::channel(false);
        let task = tokio::spawn(run(client, topics, cursor, transport, sender, connect));
        Self { items, task, cursor, connected }
    }

    /// Waits until the subscription is first in place (the poll answered, the SSE stream or
    /// the WebSocket open), so that everything published from now on is delivered; `false`
    /// when it ended before (its error is the stream's next item).
    pub async fn connected(&mut self) -> bool {
        self.connected.wait_for(|connected| *connected).await.is_ok()
    }

    /// Where to resume after everything read so far: the `id` of the last event, or the cursor
    /// a reset or an empty poll left; the starting cursor before that.
    pub fn cursor(&self) -> Option<Cursor> {
        self.cursor
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The task owns the connection: ending it is the disconnect.
        self.task.abort();
    }
}

impl Stream for Subscription {
    type Item = Result<Item, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.items.poll_recv(cx) {
            Poll::Ready(Some(Ok((item, cursor)))) => {
                if cursor.is_some() {
                    self.cursor = cursor;
                }
                Poll::Ready(Some(Ok(item)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("cursor", &self.cursor).finish_non_exhaustive()
    }
}

/// One attempt's view: the client, the topics, where the subscription stands, and the way to
/// its reader.
pub(crate) struct Attempt<'a> {
    pub(crate) client: &'a Inner,
    pub(crate) topics: &'a [String],
    pub(crate) cursor: Option<Cursor>,
    sender: &'a mpsc::Sender<Result<(Item, Option<Cursor>), Error>>,
    connected: &'a watch::Sender<bool>,
    delivered: bool,
}

impl Attempt<'_> {
    /// Hands `item` to the reader; `cursor`, when given, is where to resume after it.
    pub(crate) async fn deliver(&mut self, item: Item, cursor: Option<Cursor>) -> Result<(), Error> {
        if let Some(cursor) = cursor {
            self.cursor = Some(cursor);
        }
        self.delivered = true;
        self.sender
            .send(Ok((item, cursor)))
            .await
            .map_err(|_| Error::Connection("the subscription was dropped".to_owned()))
    }

    /// The attempt is in place: the server fixed its position.
    pub(crate) fn connected(&self) {
        self.connected.send_if_modified(|connected| !std::mem::replace(connected, true));
    }

    /// Moves the cursor without an item (a poll answer's cursor, the WebSocket's position).
    pub(crate) fn advance(&mut self, cursor: Cursor) {
        self.cursor = Some(cursor);
        self.delivered = true;
    }
}

async fn run(
    client: Arc<Inner>,
    topics: Vec<String>,
    mut cursor: Option<Cursor>,
    transport: Transport,
    sender: mpsc::Sender<Result<(Item, Option<Cursor>), Error>>,
    connected: watch::Sender<bool>,
) {
    // Failed attempts in a row: the backoff's exponent.
    let mut failures = 0_u32;
    loop {
        let mut attempt = Attempt {
            client: &client,
            topics: &topics,
            cursor,
            sender: &sender,
            connected: &connected,
            delivered: false,
        };
        let outcome = match transport {
            Transport::WebSocket => ws::run(&mut attempt).await,
            Transport::Sse => sse::run(&mut attempt).await,
            Transport::LongPoll => poll::run(&mut attempt, Some(client.long_poll_wait)).await,
            Transport::Poll => poll::run(&mut attempt, None).await,
        };
        cursor = attempt.cursor;
        if attempt.delivered {
            failures = 0;
        }
        let error = match outcome {
            Ok(()) => Error::Connection("the connection ended".to_owned()),
            Err(error) => error,
        };
        if sender.is_closed() {
            return;
        }
        let wait = match error.retry() {
            Retry::Never => {
                let _ = sender.send(Err(error)).await;
                return;
            }
            Retry::Refresh => match client.refresh().await {
                Some(Ok(())) if failures == 0 => Duration::ZERO,
                Some(Ok(())) => client.backoff.delay(failures),
                Some(Err(refresh)) => {
                    let _ = sender.send(Err(refresh)).await;
                    return;
                }
                None => {
                    let _ = sender.send(Err(error)).await;
                    return;
                }
            },
            Retry::Backoff => client.backoff.delay(failures),
        };
        failures = failures.saturating_add(1);
        tokio::time::sleep(wait).await;
    }
}
