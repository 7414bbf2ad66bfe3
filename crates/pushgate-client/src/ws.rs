//! WebSocket: `GET /v1/ws?topic=…&cursor=…` upgraded, so the connection starts subscribed, then
//! the protocol's server frames.

use futures_util::StreamExt as _;
use http::{HeaderValue, header};
use pushgate_protocol::params::SubscribeQuery;
use pushgate_protocol::ws::ServerFrame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::subscription::Attempt;
use crate::{Error, Item};

/// Reads frames until the connection ends.
pub(crate) async fn run(attempt: &mut Attempt<'_>) -> Result<(), Error> {
    let mut query = SubscribeQuery::new(attempt.topics.iter().cloned());
    query.cursor = attempt.cursor;
    let base = &attempt.client.base;
    let authority = base.strip_prefix("http://").unwrap_or(base);
    let url = format!("ws://{authority}/v1/ws?{}", query.encode());
    let mut request =
        url.as_str().into_client_request().map_err(|err| Error::Config(format!("{url}: {err}")))?;
    if let Some(token) = attempt.client.token() {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::Config("the token is not a valid header value".to_owned()))?;
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    let handshake =
        tokio::time::timeout(attempt.client.idle_timeout, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| Error::Connection("no WebSocket handshake in time".to_owned()))?;
    let mut socket = match handshake {
        Ok((socket, _)) => socket,
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            return Err(Error::from_answer(response.status().as_u16(), body));
        }
        Err(err) => return Err(Error::Connection(format!("WebSocket handshake: {err}"))),
    };
    attempt.connected();
    let idle = attempt.client.idle_timeout;
    loop {
        let message = tokio::time::timeout(idle, socket.next())
            .await
            .map_err(|_| Error::Connection(format!("the WebSocket was silent for {idle:?}")))?;
        let text = match message {
            None => return Err(Error::Connection("the WebSocket ended without a close frame".to_owned())),
            Some(Err(err)) => return Err(Error::Connection(format!("reading the WebSocket: {err}"))),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(close))) => {
                let (code, reason) = close.map_or((1005, String::new()), |close| {
                    (u16::from(close.code), close.reason.as_str().to_owned())
                });
                return Err(Error::Closed { code, reason });
            }
            // Pings are answered by tungstenite while reading.
            Some(Ok(_)) => continue,
        };
        let frame = ServerFrame::parse(&text).map_err(|err| {
            Error::Connection(format!("a WebSocket frame that is not the protocol's: {err}"))
        })?;
        match frame {
            ServerFrame::Event(event) => {
                let id = event.id;
                attempt.deliver(Item::Event(event), Some(id)).await?;
            }
            ServerFrame::Reset(reset) => attempt.deliver(Item::Reset(reset), None).await?,
            ServerFrame::Subscribed(subscribed) => attempt.advance(subscribed.cursor),
            ServerFrame::Error(frame) => {
                let status = frame.error.code().map_or(500, |code| code.status());
                return Err(Error::refused(status, frame.error));
            }
            _ => {}
        }
    }
}
