// Run: cargo run -p pushgate-examples --example embed_hub
//! Embedding the hub alone, with no HTTP and no transport: a program that publishes events,
//! follows two topics from a task, drops off, catches up with the pull API, and shuts down.
//!
//! Everything a transport does with the hub is here in miniature: a subscriber keeps the
//! cursor of the last event it handled, and whoever comes back with that cursor (a new
//! subscription, a poll) continues exactly after it.

use std::time::Duration;

use pushgate_hub::{
    Cursor, Event, FetchOptions, HistoryLimit, Hub, Item, NewEvent, RecvError, SubscribeOptions, TopicName,
};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A hub with a smaller history than the default: 100 events or 5 minutes per topic.
    let hub = Hub::builder()
        .history(HistoryLimit::default().max_events(100).max_age(Some(Duration::from_secs(300))))
        .max_backlog(Some(1_000))
        .build();
    // The hub spawns nothing itself: the program owns its maintenance (expiry, idle topics).
    let maintenance = tokio::spawn(hub.clone().maintain(Duration::from_secs(30)));

    let orders = TopicName::new("orders")?;
    let alerts = TopicName::new("alerts")?;
    let topics = [orders.clone(), alerts.clone()];

    // Subscribe before publishing so the first events are not missed, then hand the
    // subscription to a task that reads three events and disconnects, keeping its cursor.
    let options = SubscribeOptions::default().label("example");
    let mut subscription = hub.subscribe_with(&topics, Cursor::Now, options)?;
    println!("presence on {orders}: {:?}", hub.presence(&orders));
    let reader = tokio::spawn(async move {
        for _ in 0..3 {
            match subscription.recv().await? {
                Item::Event(event) => show("live", &event),
                Item::Reset(reset) => println!("live   reset: {reset:?}"),
                // Join and leave notices come only to a subscription that asks for them.
                Item::Presence(change) => println!("live   {change:?}"),
            }
        }
        // Dropping the subscription is the disconnect; its cursor is all a client keeps.
        Ok::<Cursor, RecvError>(subscription.cursor())
    });

    hub.publish(&orders, NewEvent::new(json!({"id": 1, "status": "placed"}))).await?;
    hub.publish(&alerts, NewEvent::new(json!({"level": "high", "text": "stock low"})).event_type("alert"))
        .await?;
    hub.publish(&orders, NewEvent::new(json!({"id": 1, "status": "paid"}))).await?;
    // Three `?`: the timeout, the task's join, and the subscription's own error.
    let cursor = tokio::time::timeout(Duration::from_secs(1), reader).await???;
    println!("disconnected at cursor {cursor}");

    // While it is away, two more events are published.
    hub.publish(&orders, NewEvent::new(json!({"id": 2, "status": "placed"}))).await?;
    hub.publish(&alerts, NewEvent::new(json!({"level": "low", "text": "restocked"})).event_type("alert"))
        .await?;

    // Coming back with the cursor: a fetch (what a poll does) returns exactly what was missed.
    // The cursor travels as text, as it would in a URL or an SSE `Last-Event-ID`.
    let cursor: Cursor = cursor.to_string().parse()?;
    let batch = hub.fetch(&topics, cursor, &FetchOptions::default().limit(10)).await?;
    for event in &batch.events {
        show("missed", event);
    }
    println!(
        "caught up: {} events, reset: {:?}, next cursor {}",
        batch.events.len(),
        batch.reset,
        batch.cursor
    );

    // And from the batch's cursor, live again (counted under the default label, "embedded").
    let mut subscription = hub.subscribe(&topics, batch.cursor)?;
    hub.publish(&orders, NewEvent::new(json!({"id": 2, "status": "paid"}))).await?;
    if let Item::Event(event) = tokio::time::timeout(Duration::from_secs(1), subscription.recv()).await?? {
        show("live", &event);
    }

    println!("presence on {orders}: {:?}", hub.presence(&orders));
    println!("stats: {:?}", hub.stats());

    // Shutdown: subscriptions end with `Closed`, maintenance returns, new work is refused.
    hub.close();
    let ended = subscription.recv().await;
    println!("after close: {ended:?}");
    tokio::time::timeout(Duration::from_secs(1), maintenance).await??;
    Ok(())
}

fn show(how: &str, event: &Event) {
    println!(
        "{how:<6} {}#{} {:<7} {}  (cursor {})",
        event.topic(),
        event.seq(),
        event.type_name(),
        event.data().as_str(),
        event.cursor()
    );
}
