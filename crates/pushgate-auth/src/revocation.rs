//! Revoked tokens: a user's tokens issued before a time are refused with `token_revoked`.
//!
//! An entry says "tokens of this user issued before `issued_before` are no longer accepted",
//! and is kept until `until`, the time by which every such token has expired anyway (the
//! longest lifetime the application gives its tokens after `issued_before`). The list is
//! bounded: past [`MAX_REVOCATIONS`] entries that still matter, a new one is refused with
//! [`RevocationListFull`] rather than forgetting an old one, which would quietly accept its
//! tokens again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use parking_lot::RwLock;

/// The most revocations kept at once.
pub const MAX_REVOCATIONS: usize = 100_000;

/// The revocation list holds [`MAX_REVOCATIONS`] entries that have not expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the revocation list holds its limit of {MAX_REVOCATIONS} users; retry once older revocations expire"
)]
pub struct RevocationListFull;

#[derive(Debug, Clone, Copy)]
struct Entry {
    issued_before: SystemTime,
    until: SystemTime,
}

/// Users whose tokens issued before some time are refused.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    entries: RwLock<HashMap<Box<str>, Entry>>,
    /// Whether there is any entry: the common case, none, costs no lock.
    any: AtomicBool,
}

impl Revocations {
    /// Refuses `user`'s tokens issued before `issued_before`, until `until`. A later call for
    /// the same user replaces its entry (keeping the later of the two times each).
    pub(crate) fn revoke(
        &self,
        user: &str,
        issued_before: SystemTime,
        until: SystemTime,
    ) -> Result<(), RevocationListFull> {
        let mut entries = self.entries.write();
        if let Some(entry) = entries.get_mut(user) {
            entry.issued_before = entry.issued_before.max(issued_before);
            entry.until = entry.until.max(until);
            return Ok(());
        }
        if entries.len() >= MAX_REVOCATIONS {
            let now = SystemTime::now();
            entries.retain(|_, entry| entry.until > now);
            if entries.len() >= MAX_REVOCATIONS {
                return Err(RevocationListFull);
            }
        }
        entries.insert(user.into(), Entry { issued_before, until });
        self.any.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether a credential of `user` issued at `issued_at` is revoked. One without an issue
    /// time is revoked as soon as its user has an entry: nothing shows it is newer.
    pub(crate) fn is_revoked(&self, user: &str, issued_at: Option<SystemTime>) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let entries = self.entries.read();
        let Some(entry) = entries.get(user) else { return false };
        entry.until > SystemTime::now() && issued_at.is_none_or(|at| at < entry.issued_before)
    }

    /// Forgets the entries past their `until`.
    pub(crate) fn sweep(&self) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let now = SystemTime::now();
        let mut entries = self.entries.write();
        entries.retain(|_, entry| entry.until > now);
        self.any.store(!entries.is_empty(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn tokens_issued_before_the_time_are_revoked_until_the_entry_expires() {
        let revocations = Revocations::default();
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        assert!(!revocations.is_revoked("42", Some(now)));
        revocations.revoke("42", now, now + hour).unwrap();
        assert!(revocations.is_revoked("42", Some(now - hour)));
        assert!(revocations.is_revoked("42", None));
        assert!(!revocations.is_revoked("42", Some(now + Duration::from_secs(1))));
        assert!(!revocations.is_revoked("43", Some(now - hour)));
        // An entry past its `until` no longer counts, and is swept.
        revocations.revoke("7", now, now - Duration::from_secs(1)).unwrap();
        assert!(!revocations.is_revoked("7", Some(now - hour)));
        revocations.sweep();
        assert_eq!(revocations.entries.read().len(), 1);
    }
}
