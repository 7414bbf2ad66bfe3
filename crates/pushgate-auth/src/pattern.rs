//! Topic patterns: which topics a token or an anonymous client may use.
//!
//! A pattern is a topic name, matching that topic only, or a prefix followed by `*`, matching
//! every topic that starts with the prefix (`chat.*` matches `chat.a` and `chat.a.b`, not
//! `chat`); `*` alone matches every topic. There is no other wildcard.

use std::fmt;
use std::str::FromStr;

use pushgate_hub::TopicName;

/// One topic pattern.
///
/// ```
/// use pushgate_auth::TopicPattern;
/// use pushgate_hub::TopicName;
///
/// let chat: TopicPattern = "chat.*".parse()?;
/// let topic = |name| TopicName::new(name).unwrap();
/// assert!(chat.matches(&topic("chat.a.b")));
/// assert!(!chat.matches(&topic("chat")));
/// assert!("user:42".parse::<TopicPattern>()?.matches(&topic("user:42")));
/// assert!(!"user:42".parse::<TopicPattern>()?.matches(&topic("user:420")));
/// assert!("*".parse::<TopicPattern>()?.matches(&topic("anything")));
/// assert!("a b".parse::<TopicPattern>().is_err());
/// # Ok::<(), pushgate_auth::InvalidPattern>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicPattern {
    /// This topic only.
    Exact(String),
    /// Every topic that starts with this prefix (possibly empty: every topic).
    Prefix(String),
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{pattern:?} is not a topic pattern: a topic name ([A-Za-z0-9_.:-], at most 128), \
     optionally ending in `*`"
)]
pub struct InvalidPattern {
    pattern: String,
}

impl FromStr for TopicPattern {
    type Err = InvalidPattern;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidPattern { pattern: text.to_owned() };
        let (stem, wildcard) = match text.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (text, false),
        };
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-');
        if stem.len() > 128 || !stem.chars().all(allowed) || (!wildcard && stem.is_empty()) {
            return Err(invalid());
        }
        Ok(if wildcard { Self::Prefix(stem.to_owned()) } else { Self::Exact(stem.to_owned()) })
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name),
            Self::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

impl TopicPattern {
    /// Whether `topic` matches.
    pub fn matches(&self, topic: &TopicName) -> bool {
        match self {
            Self::Exact(name) => topic.as_str() == name,
            Self::Prefix(prefix) => topic.as_str().starts_with(prefix.as_str()),
        }
    }
}

/// A topic pattern for every authenticated user, naming the user with `{user}`:
/// `user:{user}` is `user:42` for user 42. A user whose id is not made of topic characters
/// (`[A-Za-z0-9_.:-]`, at most 128) gets nothing from a template that names it: an id such as
/// `auth0|42` cannot name a topic, and an id can never widen a pattern (`42*`).
///
/// ```
/// use pushgate_auth::UserPattern;
/// use pushgate_hub::TopicName;
///
/// let own: UserPattern = "user:{user}".parse()?;
/// let topic = |name| TopicName::new(name).unwrap();
/// assert!(own.for_user("42").unwrap().matches(&topic("user:42")));
/// assert!(!own.for_user("42").unwrap().matches(&topic("user:420")));
/// assert!(own.for_user("42*").is_none() && own.for_user("auth0|42").is_none());
/// let all: UserPattern = "chat.*".parse()?;
/// assert!(all.for_user("anyone").unwrap().matches(&topic("chat.room")));
/// assert!("user:{id}".parse::<UserPattern>().is_err());
/// # Ok::<(), pushgate_auth::InvalidPattern>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPattern {
    template: String,
}

/// What `{user}` stands for in a [`UserPattern`].
const USER: &str = "{user}";

impl FromStr for UserPattern {
    type Err = InvalidPattern;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Checked with a one-letter user: a template must make a pattern for any valid id.
        text.replace(USER, "u").parse::<TopicPattern>()?;
        Ok(Self { template: text.to_owned() })
    }
}

impl fmt::Display for UserPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.template)
    }
}

impl UserPattern {
    /// The pattern for `user`, or `None` when the id cannot stand in a topic.
    pub fn for_user(&self, user: &str) -> Option<TopicPattern> {
        if !self.template.contains(USER) {
            return self.template.parse().ok();
        }
        let topical = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-');
        if user.is_empty() || user.len() > 128 || !user.chars().all(topical) {
            return None;
        }
        self.template.replace(USER, user).parse().ok()
    }
}

/// Whether any of `patterns` (as written in a token: malformed ones match nothing) matches
/// `topic`.
pub(crate) fn any_matches<S: AsRef<str>>(patterns: &[S], topic: &TopicName) -> bool {
    patterns.iter().any(|pattern| pattern.as_ref().parse::<TopicPattern>().is_ok_and(|p| p.matches(topic)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> TopicName {
        TopicName::new(name).unwrap()
    }

    #[test]
    fn exact_patterns_match_one_topic() {
        let pattern: TopicPattern = "user:42".parse().unwrap();
        assert!(pattern.matches(&topic("user:42")));
        for other in ["user:4", "user:420", "USER:42", "user:42.x"] {
            assert!(!pattern.matches(&topic(other)), "{other}");
        }
    }

    #[test]
    fn a_trailing_star_matches_any_suffix() {
        let pattern: TopicPattern = "chat.*".parse().unwrap();
        for yes in ["chat.a", "chat.a.b", "chat."] {
            assert!(pattern.matches(&topic(yes)), "{yes}");
        }
        for no in ["chat", "chatter", "xchat.a", "Chat.a"] {
            assert!(!pattern.matches(&topic(no)), "{no}");
        }
        let all: TopicPattern = "*".parse().unwrap();
        assert!(all.matches(&topic("anything:at.all")));
        assert_eq!(all.to_string(), "*");
        assert_eq!(pattern.to_string(), "chat.*");
    }

    #[test]
    fn malformed_patterns_are_refused_or_match_nothing() {
        for bad in ["", "a b", "a*b", "**", "chat.*.x", "é", &"x".repeat(129)] {
            assert!(bad.parse::<TopicPattern>().is_err(), "{bad:?}");
        }
        assert!(!any_matches(&["a b", "chat.**"], &topic("chat.x")));
        assert!(any_matches(&["nope", "chat.*"], &topic("chat.x")));
        assert!(!any_matches::<&str>(&[], &topic("chat.x")));
    }
}
