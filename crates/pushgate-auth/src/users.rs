//! Connections per user: each stream, WebSocket or parked long poll granted to a user holds a
//! slot, given back when its grant is dropped, and a user holding the limit gets no more. The
//! user's [`Switch`] ends them all at once (the server API's disconnect, a revocation): each
//! slot's grant carries a [`Cutoff`](pushgate_http::Cutoff) of it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use pushgate_http::{AuthError, Cutoff, Switch};

/// Open connections per user, within a limit. Memory is one entry per user that holds a
/// connection.
#[derive(Debug)]
pub(crate) struct UserConnections {
    limit: usize,
    open: Mutex<HashMap<Arc<str>, Entry>>,
}

#[derive(Debug)]
struct Entry {
    count: usize,
    switch: Arc<Switch>,
}

/// One connection's place in its user's count; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    owner: Arc<UserConnections>,
    user: Arc<str>,
    switch: Arc<Switch>,
}

impl Slot {
    pub(crate) fn user(&self) -> &str {
        &self.user
    }

    /// What ends this connection early, for credentials issued at `issued_at`.
    pub(crate) fn cutoff(&self, issued_at: Option<SystemTime>) -> Cutoff {
        self.switch.cutoff(issued_at)
    }
}

impl Default for UserConnections {
    /// Counted, without a limit: the connections can still be disconnected.
    fn default() -> Self {
        Self { limit: usize::MAX, open: Mutex::new(HashMap::new()) }
    }
}

impl UserConnections {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self { limit, open: Mutex::new(HashMap::new()) })
    }

    /// A slot for one more connection of `user`.
    pub(crate) fn acquire(self: &Arc<Self>, user: &Arc<str>) -> Result<Arc<Slot>, AuthError> {
        let mut open = self.open.lock();
        let entry =
            open.entry(Arc::clone(user)).or_insert_with(|| Entry { count: 0, switch: Arc::default() });
        if entry.count >= self.limit {
            if entry.count == 0 {
                open.remove(user);
            }
            return Err(AuthError::TooManyConnections { user: user.to_string(), limit: self.limit });
        }
        entry.count += 1;
        let switch = Arc::clone(&entry.switch);
        Ok(Arc::new(Slot { owner: Arc::clone(self), user: Arc::clone(user), switch }))
    }

    /// Ends every connection of `user`; returns how many it held.
    pub(crate) fn disconnect(&self, user: &str) -> usize {
        let open = self.open.lock();
        let Some(entry) = open.get(user) else { return 0 };
        entry.switch.disconnect();
        entry.count
    }

    /// Ends the connections of `user` whose credentials were issued before `issued_before`.
    pub(crate) fn revoke(&self, user: &str, issued_before: SystemTime) {
        if let Some(entry) = self.open.lock().get(user) {
            entry.switch.revoke(issued_before);
        }
    }

    /// Connections `user` holds now.
    #[cfg(test)]
    pub(crate) fn count(&self, user: &str) -> usize {
        self.open.lock().get(user).map_or(0, |entry| entry.count)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock();
        if let Some(entry) = open.get_mut(&self.user) {
            entry.count = entry.count.saturating_sub(1);
            if entry.count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_user_and_given_back() {
        let users = UserConnections::new(2);
        let a: Arc<str> = Arc::from("a");
        let first = users.acquire(&a).unwrap();
        let _second = users.acquire(&a).unwrap();
        assert!(matches!(users.acquire(&a), Err(AuthError::TooManyConnections { limit: 2, .. })));
        assert!(users.acquire(&Arc::from("b")).is_ok());
        drop(first);
        assert_eq!(users.count("a"), 1);
        assert!(users.acquire(&a).is_ok());
        assert_eq!(users.count("b"), 0, "a dropped slot leaves no entry behind");
    }

    #[test]
    fn a_disconnect_cuts_the_users_connections_only() {
        use pushgate_http::Cut;
        let users = UserConnections::new(10);
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let (a1, b1) = (users.acquire(&a).unwrap(), users.acquire(&b).unwrap());
        let (cut_a, cut_b) = (a1.cutoff(None), b1.cutoff(None));
        assert_eq!(users.disconnect("a"), 1);
        assert_eq!(cut_a.cut(), Some(Cut::Disconnected));
        assert_eq!(cut_b.cut(), None);
        assert_eq!(users.disconnect("nobody"), 0);
        let now = SystemTime::now();
        let newer = b1.cutoff(Some(now + std::time::Duration::from_secs(5)));
        users.revoke("b", now);
        assert_eq!(cut_b.cut(), Some(Cut::Revoked), "no issue time: revoked");
        assert_eq!(newer.cut(), None, "issued after");
    }
}
