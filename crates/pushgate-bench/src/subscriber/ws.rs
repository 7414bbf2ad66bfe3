//! A WebSocket subscriber over tokio-tungstenite, on a counted socket so frames, masks and the
//! upgrade exchange are all in the byte count.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt as _;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::{Meter, Receiver, Record, SETUP_TIMEOUT, Shared, Spec, now_us};
use crate::conn::{self, Counting};
use crate::profile;

async fn subscribe(sub: &Spec, url: &str) -> anyhow::Result<WebSocketStream<Counting<TcpStream>>> {
    let stream = Counting::new(conn::connect(sub.endpoint.addr, sub.source).await?);
    // tungstenite's default 128 KiB read buffer per connection would be 2.3 GB at 18,000
    // connections; the bench's messages are small.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (socket, response) = tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    anyhow::ensure!(response.status().as_u16() == 101, "status {}", response.status());
    Ok(socket)
}

/// Runs one WebSocket subscriber until the stop token fires or the server closes.
pub(super) async fn run(sub: Spec, shared: Arc<Shared>) -> Record {
    let mut receiver = Receiver::new(shared.clone(), &sub);
    let Some(spec) = sub.profile.ws.clone() else {
        shared.fail("the profile has no [ws] section".to_owned());
        return receiver.into_record(0, 0, 0);
    };
    let stop = shared.stop.clone();
    let url = format!("ws://{}{}", sub.endpoint.host, profile::fill(&spec.path, &sub.topic_name, ""));
    let setup = async {
        let _permit = shared.setup_gate.acquire().await;
        let started = Instant::now();
        let result = timeout(SETUP_TIMEOUT, subscribe(&sub, &url)).await;
        (started, result)
    };
    let (started, result) = tokio::select! {
        biased;
        () = stop.cancelled() => return receiver.into_record(0, 0, 0),
        setup = setup => setup,
    };
    let mut socket = match result {
        Ok(Ok(socket)) => socket,
        Ok(Err(err)) => {
            shared.fail(format!("ws: {err:#}"));
            return receiver.into_record(0, 0, 1);
        }
        Err(_) => {
            shared.fail("ws: the upgrade timed out".to_owned());
            return receiver.into_record(0, 0, 1);
        }
    };
    shared.request();
    let mut meter = Meter::default();
    let setup_bytes = socket.get_ref().read + socket.get_ref().written;
    meter.reported = setup_bytes;
    shared.established(started, setup_bytes);
    // Each pass handles one frame; the stop token or the end of the connection ends it.
    loop {
        let frame = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            frame = socket.next() => frame,
        };
        let received_us = now_us();
        meter.update(&shared, socket.get_ref().read + socket.get_ref().written);
        match frame {
            Some(Ok(Message::Text(text))) => receiver.receive(text.as_bytes(), received_us),
            Some(Ok(Message::Binary(data))) => receiver.receive(&data, received_us),
            // tungstenite answers pings itself.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Ok(Message::Close(frame))) => {
                shared.fail(format!("ws: the server closed the connection ({frame:?})"));
                break;
            }
            Some(Err(err)) => {
                shared.fail(format!("ws: {err}"));
                break;
            }
            None => {
                shared.fail("ws: the connection ended".to_owned());
                break;
            }
        }
    }
    let counted = socket.get_ref();
    receiver.into_record(counted.read, counted.written, 1)
}
