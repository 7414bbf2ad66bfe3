//! The demo ticker: a made-up price stream for the live dashboard, published into the hub by
//! the gateway itself, so the chart moves with nothing else installed.
//!
//! Every event goes to the topic [`TOPIC`] with the type [`EVENT_TYPE`] and the data
//! `{"symbol":"ACME","price":101.37,"t":1763750000000}`: one of three symbols in turn, its
//! price after one more step of a random walk (cents, pulled back toward its start so it stays
//! in a readable band), and the time of the tick in ms since the Unix epoch. At `rate` events
//! a second, each symbol moves `rate / 3` times a second.
//!
//! [`run`] is a task owned by the server: it ends when the hub closes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pushgate_hub::{Hub, HubError, NewEvent, TopicName};
use serde_json::{Value, json};
use tokio::time::MissedTickBehavior;

/// The topic the ticker publishes to.
pub(crate) const TOPIC: &str = "demo.ticker";
/// The event type of every tick.
pub(crate) const EVENT_TYPE: &str = "tick";
/// The symbols and the prices they start from (and drift back toward).
const SYMBOLS: [(&str, f64); 3] = [("ACME", 100.0), ("GLOBEX", 50.0), ("INITECH", 20.0)];
/// The largest step of one tick, as a fraction of the price.
const STEP: f64 = 0.005;
/// How strongly a price is pulled back toward its start at each tick.
const REVERSION: f64 = 0.02;

/// The state of the random walk.
#[derive(Debug, Clone)]
pub(crate) struct Ticker {
    prices: [f64; 3],
    next: usize,
    rng: u64,
}

impl Ticker {
    /// Prices at their start; `seed` picks the walk.
    pub(crate) fn new(seed: u64) -> Self {
        // Zero would keep xorshift at zero forever.
        Self { prices: SYMBOLS.map(|(_, price)| price), next: 0, rng: seed | 1 }
    }

    /// The next tick's data, stamped `t` (ms since the Unix epoch).
    pub(crate) fn next_tick(&mut self, t: u64) -> Value {
        let i = self.next;
        self.next = (i + 1) % SYMBOLS.len();
        let (symbol, start) = SYMBOLS[i];
        let price = self.prices[i];
        let step = price * STEP * (2.0 * self.uniform() - 1.0);
        let pull = (start - price) * REVERSION;
        // In cents, never below one.
        let price = ((price + step + pull) * 100.0).round().max(1.0) / 100.0;
        self.prices[i] = price;
        json!({ "symbol": symbol, "price": price, "t": t })
    }

    /// A number in `[0, 1)` (xorshift64*: plenty for a chart).
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let bits = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        bits as f64 / (1_u64 << 53) as f64
    }
}

/// Publishes `rate` ticks a second into `hub` until it closes; does nothing for a zero rate.
pub(crate) async fn run(hub: Hub, rate: u32) {
    if rate == 0 {
        return;
    }
    let Ok(topic) = TopicName::new(TOPIC) else {
        return;
    };
    let mut ticker = Ticker::new(now_ms() ^ 0x9e37_79b9_7f4a_7c15);
    let mut interval = tokio::time::interval(Duration::from_secs(1) / rate);
    // After a stall, carry on at the rate rather than publishing the missed ticks in a burst.
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let closed = hub.clone();
    let closed = closed.closed();
    tokio::pin!(closed);
    tracing::info!(topic = TOPIC, rate, "demo ticker running");
    loop {
        tokio::select! {
            () = &mut closed => return,
            _ = interval.tick() => {}
        }
        let event = NewEvent::new(ticker.next_tick(now_ms())).event_type(EVENT_TYPE);
        match hub.publish(&topic, event).await {
            Ok(_) => {}
            Err(HubError::Closed) => return,
            // Nothing else is expected of a small event on a valid topic; skip the tick.
            Err(error) => tracing::warn!(%error, topic = TOPIC, "demo ticker could not publish"),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cycle_through_the_symbols_with_a_price_in_cents_and_the_time() {
        let mut ticker = Ticker::new(7);
        let ticks: Vec<Value> = (0..6).map(|i| ticker.next_tick(1_000 + i)).collect();
        let symbols: Vec<&str> = ticks.iter().filter_map(|tick| tick["symbol"].as_str()).collect();
        assert_eq!(symbols, ["ACME", "GLOBEX", "INITECH", "ACME", "GLOBEX", "INITECH"]);
        for (i, tick) in ticks.iter().enumerate() {
            let object = tick.as_object().expect("an object");
            assert_eq!(object.len(), 3, "{tick}");
            assert_eq!(tick["t"].as_u64(), Some(1_000 + i as u64));
            let price = tick["price"].as_f64().expect("a number");
            assert!(price > 0.0);
            assert!(((price * 100.0).round() - price * 100.0).abs() < 1e-6, "cents: {price}");
        }
    }

    #[test]
    fn prices_wander_but_stay_near_their_start() {
        let mut ticker = Ticker::new(42);
        let mut moved = [false; 3];
        for _ in 0..30_000 {
            let tick = ticker.next_tick(0);
            let (i, (_, start)) = SYMBOLS
                .iter()
                .enumerate()
                .find(|(_, (symbol, _))| tick["symbol"] == *symbol)
                .expect("a known symbol");
            let price = tick["price"].as_f64().expect("a number");
            moved[i] |= (price - start).abs() > 0.001;
            assert!(price > start * 0.7 && price < start * 1.3, "{tick}");
        }
        assert_eq!(moved, [true; 3]);
    }

    #[test]
    fn the_same_seed_gives_the_same_walk() {
        let (mut a, mut b) = (Ticker::new(3), Ticker::new(3));
        for _ in 0..10 {
            assert_eq!(a.next_tick(0), b.next_tick(0));
        }
        let (mut c, mut d) = (Ticker::new(3), Ticker::new(4));
        assert!((0..10).any(|_| c.next_tick(0) != d.next_tick(0)), "another seed, another walk");
    }

    #[tokio::test(start_paused = true)]
    async fn publishes_at_the_rate_until_the_hub_closes() {
        let hub = Hub::builder().build();
        let task = tokio::spawn(run(hub.clone(), 4));
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        // Ticks at 0, 250, …, 2000 ms.
        let published = hub.stats().published;
        assert_eq!(published, 9, "published {published}");
        hub.close();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("ends with the hub")
            .expect("no panic");
    }
}
