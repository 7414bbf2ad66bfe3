//! Presence leases: readers that are not connected between their requests (short polls, long
//! polls between two waits) counted for a while after each request.
//!
//! A lease is a record in the registry without a signal, under the reader's label and user,
//! kept until its expiry; each request of the same client renews it. Clients are told apart by
//! an id they choose and a group the embedder gives (the client's address, so that one client
//! cannot renew or end another's lease by sending its id). The table is bounded in total and per
//! group: past either bound a request is still answered, just not counted.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::registry::{Label, Registration, Registry, Who};
use crate::topic::TopicName;

/// Most leases held at once, by default; see [`HubBuilder::presence_leases`](crate::HubBuilder::presence_leases).
pub const DEFAULT_MAX_LEASES: usize = 100_000;
/// Most leases of one group (client address) at once, by default.
pub const DEFAULT_MAX_LEASES_PER_GROUP: usize = 64;
/// The longest client id of a lease, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// A client counted in presence between its requests: see [`Hub::hold`](crate::Hub::hold).
///
/// ```
/// use std::time::Duration;
/// use pushgate_hub::PresenceHold;
///
/// let hold = PresenceHold::new("tab-1", Duration::from_secs(10)).group("192.0.2.7").label("poll").user(Some("42".into()));
/// # let _ = hold;
/// ```
#[derive(Debug, Clone)]
pub struct PresenceHold {
    client: Arc<str>,
    group: Arc<str>,
    who: Who,
    ttl: Duration,
}

impl PresenceHold {
    /// The client `client` (at most [`MAX_CLIENT_ID_LEN`] bytes: longer ids are cut there),
    /// counted for `ttl` after each request.
    pub fn new(client: &str, ttl: Duration) -> Self {
        let mut end = client.len().min(MAX_CLIENT_ID_LEN);
        while !client.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            client: Arc::from(&client[..end]),
            group: Arc::from(""),
            who: Who { label: Label::Borrowed("fetch"), user: None, announced: true },
            ttl,
        }
    }

    /// Whose client this is (typically its address): ids are only compared within a group,
    /// and each group holds at most its share of leases.
    pub fn group(mut self, group: &str) -> Self {
        self.group = Arc::from(group);
        self
    }

    /// The label it is counted under (default `"fetch"`).
    pub fn label(mut self, label: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        self.who.label = label.into();
        self
    }

    /// Its user, listed in presence.
    pub fn user(mut self, user: Option<Arc<str>>) -> Self {
        self.who.user = user;
        self
    }

    /// How long it is counted after a request.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

type Key = (Arc<str>, Arc<str>);

struct Held {
    topics: Vec<TopicName>,
    who: Who,
    expires: Instant,
    registrations: Vec<Registration>,
}

#[derive(Default)]
struct Table {
    held: HashMap<Key, Held>,
    per_group: HashMap<Arc<str>, usize>,
    /// Expiry order, for the sweep.
    expiries: BTreeSet<(Instant, Key)>,
}

/// Every lease of a hub.
pub(crate) struct Leases {
    table: Mutex<Table>,
    max: usize,
    max_per_group: usize,
}

impl Leases {
    pub(crate) fn new(max: usize, max_per_group: usize) -> Self {
        Self { table: Mutex::new(Table::default()), max, max_per_group }
    }

    /// Holds `hold` on `topics` until `extra` plus its ttl from now; `false` when the table or
    /// the group is full.
    pub(crate) fn hold(
        &self,
        registry: &Registry,
        topics: &[TopicName],
        hold: &PresenceHold,
        extra: Duration,
    ) -> bool {
        let now = Instant::now();
        let expires = now + extra + hold.ttl;
        let mut table = self.table.lock();
        table.sweep(registry, now);
        let key = (Arc::clone(&hold.group), Arc::clone(&hold.client));
        let Table { held, per_group, expiries } = &mut *table;
        if let Some(lease) = held.get_mut(&key) {
            expiries.remove(&(lease.expires, key.clone()));
            // A renewal never shortens what a waiting request pinned.
            lease.expires = lease.expires.max(expires);
            expiries.insert((lease.expires, key.clone()));
            if lease.topics != topics || lease.who != hold.who {
                for registration in lease.registrations.drain(..) {
                    registry.remove(registration);
                }
                lease.registrations =
                    topics.iter().map(|t| registry.add(t, None, Some(&hold.who), None)).collect();
                lease.topics = topics.to_vec();
                lease.who = hold.who.clone();
            }
            return true;
        }
        let in_group = per_group.get(&hold.group).copied().unwrap_or(0);
        if held.len() >= self.max || in_group >= self.max_per_group {
            return false;
        }
        *per_group.entry(Arc::clone(&hold.group)).or_default() += 1;
        let registrations = topics.iter().map(|t| registry.add(t, None, Some(&hold.who), None)).collect();
        expiries.insert((expires, key.clone()));
        held.insert(key, Held { topics: topics.to_vec(), who: hold.who.clone(), expires, registrations });
        true
    }

    /// Ends `hold`'s lease `ttl` from now at the latest (a waiting request that ends).
    pub(crate) fn release_after(&self, hold: &PresenceHold) {
        let expires = Instant::now() + hold.ttl;
        let mut table = self.table.lock();
        let key = (Arc::clone(&hold.group), Arc::clone(&hold.client));
        let Table { held, expiries, .. } = &mut *table;
        if let Some(lease) = held.get_mut(&key)
            && lease.expires > expires
        {
            expiries.remove(&(lease.expires, key.clone()));
            lease.expires = expires;
            expiries.insert((expires, key));
        }
    }

    /// Ends the leases that expired.
    pub(crate) fn sweep(&self, registry: &Registry) {
        self.table.lock().sweep(registry, Instant::now());
    }

    /// Leases held now.
    pub(crate) fn len(&self) -> usize {
        self.table.lock().held.len()
    }
}

impl Table {
    fn sweep(&mut self, registry: &Registry, now: Instant) {
        while let Some(first) = self.expiries.first()
            && first.0 <= now
        {
            let Some((_, key)) = self.expiries.pop_first() else { break };
            let Some(lease) = self.held.remove(&key) else { continue };
            for registration in lease.registrations {
                registry.remove(registration);
            }
            if let Some(count) = self.per_group.get_mut(&key.0) {
                *count -= 1;
                if *count == 0 {
                    self.per_group.remove(&key.0);
                }
            }
        }
    }
}
