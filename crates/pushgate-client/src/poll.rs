//! Short and long polling: `GET /v1/poll` or `GET /v1/longpoll` again and again, each from the
//! cursor the last answer gave.

use std::time::Duration;

use http::{HeaderMap, Method};
use pushgate_protocol::PollBody;
use pushgate_protocol::params::SubscribeQuery;

use crate::subscription::Attempt;
use crate::{Error, Item, fetch};

/// How much longer than the long poll's own wait a request may take before it counts as lost.
const LONG_POLL_MARGIN: Duration = Duration::from_secs(15);

/// Polls until an answer is an error; `wait` is the long poll's timeout, `None` for short polls
/// (which wait `interval` between requests).
pub(crate) async fn run(attempt: &mut Attempt<'_>, wait: Option<Duration>) -> Result<(), Error> {
    let path = if wait.is_some() { "/v1/longpoll" } else { "/v1/poll" };
    let mut first = true;
    loop {
        let mut query = SubscribeQuery::new(attempt.topics.iter().cloned());
        query.cursor = attempt.cursor;
        // The first request of a long poll answers at once, so the subscription's position is
        // fixed before anything is published, as on the other transports.
        query.timeout_secs = wait.map(|wait| if first { 0 } else { wait.as_secs() });
        let url = format!("{}{path}?{}", attempt.client.base, query.encode());
        let token = attempt.client.token();
        let request =
            fetch::request(Method::GET, &url, token.as_deref(), HeaderMap::new(), Default::default())?;
        let deadline = wait.unwrap_or_default() + LONG_POLL_MARGIN;
        let response = tokio::time::timeout(deadline, fetch::send(&attempt.client.http, request))
            .await
            .map_err(|_| Error::Connection(format!("no answer to GET {path} within {deadline:?}")))??;
        let status = response.status().as_u16();
        let body = fetch::body(response).await?;
        if status != 200 {
            return Err(Error::from_answer(status, &body));
        }
        let answer: PollBody = serde_json::from_slice(&body)
            .map_err(|err| Error::Connection(format!("a poll answer that is not the protocol's: {err}")))?;
        if let Some(reset) = answer.reset {
            attempt.deliver(Item::Reset(reset), None).await?;
        }
        for event in answer.events {
            let id = event.id;
            attempt.deliver(Item::Event(event), Some(id)).await?;
        }
        attempt.advance(answer.cursor);
        attempt.connected();
        first = false;
        if wait.is_none() {
            tokio::time::sleep(attempt.client.poll_interval).await;
        }
    }
}
