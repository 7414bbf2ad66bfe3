//! Server-Sent Events: one streaming `GET /v1/sse`, read as `id:`/`event:`/`data:` frames.

use bytes::{Buf as _, BytesMut};
use http::{HeaderMap, HeaderValue, Method, header};
use http_body_util::BodyExt as _;
use pushgate_protocol::params::SubscribeQuery;
use pushgate_protocol::{Cursor, ErrorObject, EventObject, ResetObject, sse};

use crate::subscription::Attempt;
use crate::{Error, Item, fetch};

/// The longest frame read; a server sends frames of one event each.
const MAX_FRAME_BYTES: usize = 16 << 20;

/// Reads the stream until it ends or sends an `error` frame.
pub(crate) async fn run(attempt: &mut Attempt<'_>) -> Result<(), Error> {
    let mut query = SubscribeQuery::new(attempt.topics.iter().cloned());
    query.cursor = attempt.cursor;
    let url = format!("{}/v1/sse?{}", attempt.client.base, query.encode());
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static("text/event-stream"));
    let token = attempt.client.token();
    let request = fetch::request(Method::GET, &url, token.as_deref(), headers, Default::default())?;
    let response = fetch::send(&attempt.client.http, request).await?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(Error::from_answer(status, &fetch::body(response).await?));
    }
    attempt.connected();
    let mut body = response.into_body();
    let mut buffer = BytesMut::new();
    let idle = attempt.client.idle_timeout;
    loop {
        while let Some(end) = frame_end(&buffer) {
            let frame = buffer.split_to(end.0);
            buffer.advance(end.1);
            handle(attempt, &String::from_utf8_lossy(&frame)).await?;
        }
        if buffer.len() > MAX_FRAME_BYTES {
            return Err(Error::Connection(format!("an SSE frame longer than {MAX_FRAME_BYTES} bytes")));
        }
        let frame = tokio::time::timeout(idle, body.frame())
            .await
            .map_err(|_| Error::Connection(format!("the SSE stream was silent for {idle:?}")))?;
        match frame {
            None => return Err(Error::Connection("the SSE stream ended".to_owned())),
            Some(Err(err)) => return Err(Error::Connection(format!("reading the SSE stream: {err}"))),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buffer.extend_from_slice(&data);
                }
            }
        }
    }
}

/// Where the first frame ends (before its blank line) and how long that blank line is.
fn frame_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|at| (at, 2));
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|at| (at, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (one, other) => one.or(other),
    }
}

/// One frame: `id:`, `event:` and `data:` fields; comments and `retry:` are skipped.
async fn handle(attempt: &mut Attempt<'_>, frame: &str) -> Result<(), Error> {
    let (mut id, mut kind, mut data) = (None, "message", String::new());
    for line in frame.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value),
            "event" => kind = value,
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {}
        }
    }
    if data.is_empty() {
        return Ok(());
    }
    let invalid = |err: serde_json::Error| Error::Connection(format!("an SSE `{kind}` frame: {err}"));
    let cursor = id
        .map(str::parse::<Cursor>)
        .transpose()
        .map_err(|err| Error::Connection(format!("an SSE frame whose id is not a cursor: {err}")))?;
    match kind {
        sse::ERROR => {
            let error: ErrorObject = serde_json::from_str(&data).map_err(invalid)?;
            let status = error.code().map_or(500, |code| code.status());
            Err(Error::refused(status, error))
        }
        sse::RESET => {
            let reset: ResetObject = serde_json::from_str(&data).map_err(invalid)?;
            attempt.deliver(Item::Reset(reset), cursor).await
        }
        _ => {
            let event: EventObject = serde_json::from_str(&data).map_err(invalid)?;
            let id = event.id;
            attempt.deliver(Item::Event(event), Some(id)).await
        }
    }
}
