// Run: cargo run -p pushgate-examples --example mount_axum   (then: curl -N 'http://127.0.0.1:3000/v1/sse?topic=prices')
//! Mounting the hub and two transports (SSE and long polling) inside an existing axum app.
//!
//! The app keeps its own routes (`/`, `/api/price`) and state; pushgate adds `/v1/sse` and
//! `/v1/longpoll`, and the app publishes to the hub from its own handler. The program serves
//! until Ctrl-C and then shuts down by closing the hub, which ends the SSE streams and answers
//! parked long polls. (`PUSHGATE_EXAMPLE_SECONDS=N` stops it after N seconds instead, for
//! scripted runs; `PUSHGATE_EXAMPLE_ADDR` changes the address.)

use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use pushgate_hub::{Hub, NewEvent, TopicName};
use pushgate_longpoll::LongPollConfig;
use pushgate_sse::SseConfig;
use serde_json::{Value, json};

/// The existing app's own handler: it records a price and pushes it to every open page.
async fn set_price(State(hub): State<Hub>, Json(body): Json<Value>) -> Result<Json<Value>, String> {
    let topic = TopicName::new("prices").map_err(|e| e.to_string())?;
    let event =
        hub.publish(&topic, NewEvent::new(body).event_type("price")).await.map_err(|e| e.to_string())?;
    Ok(Json(json!({ "seq": event.seq(), "id": event.cursor().to_string() })))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hub = Hub::new();
    let app = Router::new()
        .route("/", get(|| async { "my existing app" }))
        .route("/api/price", post(set_price))
        .with_state(hub.clone())
        .merge(pushgate_sse::router(hub.clone(), SseConfig::default().heartbeat(Duration::from_secs(10))))
        .merge(pushgate_longpoll::router(hub.clone(), LongPollConfig::default()));

    let addr = std::env::var("PUSHGATE_EXAMPLE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let seconds: Option<u64> = std::env::var("PUSHGATE_EXAMPLE_SECONDS").ok().and_then(|s| s.parse().ok());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("serving on http://{} until Ctrl-C", listener.local_addr()?);

    // The embedder owns the hub's maintenance and its shutdown.
    tokio::spawn(hub.clone().maintain(Duration::from_secs(30)));
    let shutdown = {
        let hub = hub.clone();
        async move {
            match seconds {
                Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
                // If the handler cannot be installed, serve until killed rather than stop at once.
                None => {
                    if tokio::signal::ctrl_c().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
            hub.close(); // ends SSE streams, answers parked long polls
        }
    };
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    println!("stopped");
    Ok(())
}
