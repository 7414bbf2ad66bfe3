//! A WHATWG-conformant Server-Sent Events reader over a byte stream.
//!
//! Parsing follows the HTML standard's "event stream interpretation" (via the
//! `eventsource-stream` crate): lines end in CRLF, LF or CR; a leading BOM is skipped; `data:`
//! lines are joined with LF; `id:` sets the *last event id*, which persists into later messages
//! until set again (and an `id` containing NUL is ignored); a block without `data` dispatches
//! nothing; comment lines (`: hb`) are ignored; a missing `event:` means `message`.
//!
//! ```
//! use futures_util::stream;
//! use pushgate_testkit::SseReader;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> anyhow::Result<()> {
//! let chunks = [": hb\n\nid: 7\nevent: rese", "t\ndata: {}\n\ndata: a\ndata: b\n\n"];
//! let bytes = stream::iter(chunks.map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c))));
//! let mut reader = SseReader::new(bytes);
//! let first = reader.next().await.unwrap()?;
//! assert_eq!((first.event.as_str(), first.id.as_str(), first.data.as_str()), ("reset", "7", "{}"));
//! let second = reader.next().await.unwrap()?;
//! assert_eq!((second.event.as_str(), second.id.as_str(), second.data.as_str()), ("message", "7", "a\nb"));
//! assert!(reader.next().await.is_none());
//! # Ok(()) }
//! ```

use std::fmt;
use std::pin::Pin;

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use eventsource_stream::Eventsource as _;
use futures_util::{Stream, StreamExt as _, stream};

/// One dispatched message: what an `EventSource` hands to a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    /// The event type (`message` when the block had no `event:` field).
    pub event: String,
    /// The last event id at dispatch (empty when the server never sent one).
    pub id: String,
    /// The data lines joined with `\n`.
    pub data: String,
}

type MessageStream = Pin<Box<dyn Stream<Item = anyhow::Result<SseMessage>> + Send>>;

/// Reads [`SseMessage`]s from a stream of byte chunks, however the chunks split lines.
pub struct SseReader {
    messages: MessageStream,
}

impl SseReader {
    /// A reader over `bytes`, e.g. `response.bytes_stream()`.
    pub fn new<S, E>(bytes: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        let messages = without_bom(bytes).eventsource().map(|item| {
            let event = item.context("reading the event stream")?;
            Ok(SseMessage { event: event.event, id: event.id, data: event.data })
        });
        Self { messages: Box::pin(messages) }
    }

    /// A reader over the body of `response`.
    pub fn from_response(response: reqwest::Response) -> Self {
        Self::new(response.bytes_stream())
    }

    /// The next message; `None` when the stream ended. Cancel-safe.
    pub async fn next(&mut self) -> Option<anyhow::Result<SseMessage>> {
        self.messages.next().await
    }
}

/// The UTF-8 byte order mark, which the standard skips once at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `bytes` without a leading BOM, starting with a blank line.
///
/// `eventsource-stream` 0.2.3 strips a BOM by slicing one *byte* off a `String`, which panics
/// on the three-byte UTF-8 BOM. So the BOM is removed here (even when split across chunks), and a
/// blank line goes first: the crate only looks for a BOM in the first chunk, and a blank line
/// before anything else dispatches nothing.
fn without_bom<S, E>(bytes: S) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Send + 'static,
{
    let start = Bytes::from_static(b"\n");
    let head = BytesMut::new();
    let rest = stream::unfold((Box::pin(bytes), Some(head)), |(mut bytes, mut head)| async move {
        let Some(held) = head.as_mut() else {
            let item = bytes.next().await?;
            return Some((item, (bytes, None)));
        };
        loop {
            match bytes.next().await {
                Some(Ok(chunk)) => {
                    held.extend_from_slice(&chunk);
                    if held.len() >= BOM.len() || !BOM.starts_with(held) {
                        let mut first = std::mem::take(held).freeze();
                        if first.starts_with(BOM) {
                            first = first.slice(BOM.len()..);
                        }
                        return Some((Ok(first), (bytes, None)));
                    }
                }
                Some(Err(error)) => return Some((Err(error), (bytes, None))),
                // A stream of fewer bytes than a BOM: pass on what there was.
                None if held.is_empty() => return None,
                None => return Some((Ok(std::mem::take(held).freeze()), (bytes, None))),
            }
        }
    });
    stream::once(async move { Ok(start) }).chain(rest)
}

impl fmt::Debug for SseReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseReader").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    async fn read_all(chunks: &[&'static str]) -> Vec<SseMessage> {
        let chunks: Vec<&'static [u8]> = chunks.iter().map(|c| c.as_bytes()).collect();
        read_bytes(&chunks).await
    }

    async fn read_bytes(chunks: &[&'static [u8]]) -> Vec<SseMessage> {
        let chunks: Vec<Bytes> = chunks.iter().map(|c| Bytes::from_static(c)).collect();
        let bytes = stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
        let mut reader = SseReader::new(bytes);
        let mut out = Vec::new();
        while let Some(message) = reader.next().await {
            out.push(message.unwrap());
        }
        out
    }

    fn message(event: &str, id: &str, data: &str) -> SseMessage {
        SseMessage { event: event.into(), id: id.into(), data: data.into() }
    }

    #[tokio::test]
    async fn comments_retry_and_empty_blocks_dispatch_nothing() {
        let got = read_all(&["retry: 2000\n\n: hb\n\n\n", "event: x\n\ndata: 1\n\n"]).await;
        // The `event: x` block had no data, so its type is dropped with it.
        assert_eq!(got, [message("message", "", "1")]);
    }

    #[tokio::test]
    async fn last_event_id_persists_and_can_be_cleared() {
        let got = read_all(&["id: a\ndata: 1\n\ndata: 2\n\nid\ndata: 3\n\n"]).await;
        assert_eq!(
            got,
            [message("message", "a", "1"), message("message", "a", "2"), message("message", "", "3")]
        );
    }

    #[tokio::test]
    async fn crlf_cr_bom_and_split_chunks() {
        let got = read_all(&["\u{feff}data:x\r", "\nid: 1\r\r", "data:  y\n", "\n"]).await;
        // One space after the colon is removed, a second one is data.
        assert_eq!(got, [message("message", "1", "x"), message("message", "1", " y")]);
    }

    #[tokio::test]
    async fn bom_split_across_chunks_is_skipped_once() {
        // Only the first BOM is skipped; a second one is part of a field name (ignored here).
        let got = read_all(&["\u{feff}\u{feff}x: 1\ndata: 1\n\n"]).await;
        assert_eq!(got, [message("message", "", "1")]);
        let got = read_bytes(&[b"", b"\xEF", b"\xBB", b"\xBFdata: 2\n\n"]).await;
        assert_eq!(got, [message("message", "", "2")]);
        assert_eq!(read_bytes(&[b"data: 3\n", b"\n"]).await, [message("message", "", "3")]);
    }

    #[tokio::test]
    async fn incomplete_final_block_is_not_dispatched() {
        assert_eq!(read_all(&["data: done\n\ndata: cut"]).await, [message("message", "", "done")]);
    }
}
