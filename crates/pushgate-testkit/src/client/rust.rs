//! The Rust client (`pushgate-client`) behind the testkit's [`TransportClient`] interface, so
//! the conformance suite checks it on every transport as it checks the raw transports.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use pushgate_client::{Item, SubscribeOptions, Subscription};

use super::{Transport, TransportClient};
use crate::feed::{Delivery, Feed, Traffic};

/// Subscribes with `pushgate-client` over one transport; [`connect`](TransportClient::connect)
/// returns once the subscription is in place ([`Subscription::connected`]).
///
/// The client reconnects by itself, so unlike the raw clients a feed ends only with an error
/// the client gives up on. Traffic counts one request per feed and the bytes of the event and
/// reset objects it delivered (the client does not expose its sockets).
#[derive(Debug)]
pub struct RustClient {
    transport: Transport,
    traffic: Arc<Traffic>,
}

impl RustClient {
    /// A client of `transport`.
    pub fn new(transport: Transport) -> Self {
        Self { transport, traffic: Arc::default() }
    }

    async fn open(
        &self,
        base_url: &str,
        topics: &[&str],
        cursor: Option<&str>,
    ) -> anyhow::Result<Box<dyn Feed>> {
        let client = pushgate_client::Client::new(base_url)?;
        let mut options = SubscribeOptions::default().transport(match self.transport {
            Transport::Poll => pushgate_client::Transport::Poll,
            Transport::LongPoll => pushgate_client::Transport::LongPoll,
            Transport::Sse => pushgate_client::Transport::Sse,
            Transport::Ws => pushgate_client::Transport::WebSocket,
        });
        if let Some(cursor) = cursor {
            options = options.cursor(cursor.parse()?);
        }
        self.traffic.request();
        let mut subscription = client.subscribe(topics.iter().copied(), options);
        if !tokio::time::timeout(Duration::from_secs(10), subscription.connected()).await? {
            match subscription.next().await {
                Some(Err(error)) => bail!("{}: the subscription failed: {error}", self.transport),
                _ => bail!("{}: the subscription ended before it was in place", self.transport),
            }
        }
        let cursor = subscription.cursor().map(|cursor| cursor.to_string());
        Ok(Box::new(ClientFeed {
            transport: self.transport,
            subscription,
            cursor,
            traffic: Arc::clone(&self.traffic),
        }))
    }
}

impl TransportClient for RustClient {
    fn transport(&self) -> Transport {
        self.transport
    }

    fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    fn connect_url<'a>(
        &'a self,
        base_url: &'a str,
        topics: &'a [&'a str],
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, anyhow::Result<Box<dyn Feed>>> {
        Box::pin(self.open(base_url, topics, cursor))
    }
}

struct ClientFeed {
    transport: Transport,
    subscription: Subscription,
    cursor: Option<String>,
    traffic: Arc<Traffic>,
}

impl Feed for ClientFeed {
    fn transport(&self) -> Transport {
        self.transport
    }

    fn next(&mut self, timeout: Duration) -> BoxFuture<'_, anyhow::Result<Option<Delivery>>> {
        Box::pin(async move {
            let item = match tokio::time::timeout(timeout, self.subscription.next()).await {
                Err(_elapsed) => return Ok(None),
                Ok(None) => return Err(anyhow!("{} subscription ended", self.transport)),
                Ok(Some(item)) => item?,
            };
            if let Some(cursor) = self.subscription.cursor() {
                self.cursor = Some(cursor.to_string());
            }
            let delivery = match item {
                Item::Event(event) => Delivery::Event(serde_json::to_value(event)?),
                Item::Reset(reset) => Delivery::Reset(serde_json::to_value(reset)?),
                other => bail!("an item the testkit does not know: {other:?}"),
            };
            let value = match &delivery {
                Delivery::Event(value) | Delivery::Reset(value) => value,
            };
            self.traffic.received(value.to_string().len());
            Ok(Some(delivery))
        })
    }

    fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}
