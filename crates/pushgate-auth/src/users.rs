//! Connections per user: each stream, WebSocket or parked long poll granted to a user holds a
//! slot, given back when its grant is dropped, and a user holding the limit gets no more.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use pushgate_http::AuthError;

/// Open connections per user, within a limit. Memory is one entry per user that holds a
/// connection.
#[derive(Debug)]
pub(crate) struct UserConnections {
    limit: usize,
    open: Mutex<HashMap<Arc<str>, usize>>,
}

/// One connection's place in its user's count; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    owner: Arc<UserConnections>,
    user: Arc<str>,
}

impl Slot {
    pub(crate) fn user(&self) -> &str {
        &self.user
    }
}

impl UserConnections {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self { limit, open: Mutex::new(HashMap::new()) })
    }

    /// A slot for one more connection of `user`.
    pub(crate) fn acquire(self: &Arc<Self>, user: &Arc<str>) -> Result<Arc<Slot>, AuthError> {
        let mut open = self.open.lock();
        let count = open.entry(Arc::clone(user)).or_insert(0);
        if *count >= self.limit {
            if *count == 0 {
                open.remove(user);
            }
            return Err(AuthError::TooManyConnections { user: user.to_string(), limit: self.limit });
        }
        *count += 1;
        Ok(Arc::new(Slot { owner: Arc::clone(self), user: Arc::clone(user) }))
    }

    /// Connections `user` holds now.
    #[cfg(test)]
    pub(crate) fn count(&self, user: &str) -> usize {
        self.open.lock().get(user).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock();
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
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
}
