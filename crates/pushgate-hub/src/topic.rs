//! Topic names: the validated keys events are published to and subscribed from.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// The longest topic name accepted, in bytes.
pub const MAX_TOPIC_LEN: usize = 128;

/// A validated topic name: 1 to 128 characters from `[A-Za-z0-9_.:-]`.
///
/// The character set is chosen so a name can travel unescaped in a URL path, a query string, a
/// Redis key and an SSE field. Cloning is cheap (the name is reference counted).
///
/// ```
/// use pushgate_hub::TopicName;
///
/// let topic = TopicName::new("db.users")?;
/// assert_eq!(topic.as_str(), "db.users");
/// assert!(TopicName::new("no spaces").is_err());
/// assert!(TopicName::new("").is_err());
/// # Ok::<(), pushgate_hub::InvalidTopic>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(Arc<str>);

/// Why a string is not a valid [`TopicName`].
///
/// ```
/// use pushgate_hub::{InvalidTopic, TopicName};
///
/// assert_eq!(TopicName::new("a/b"), Err(InvalidTopic::BadCharacter { index: 1, character: '/' }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidTopic {
    /// The name is empty.
    #[error("topic name is empty")]
    Empty,
    /// The name is longer than [`MAX_TOPIC_LEN`] bytes.
    #[error("topic name is {len} bytes long; the limit is {MAX_TOPIC_LEN}")]
    TooLong {
        /// Length of the rejected name in bytes.
        len: usize,
    },
    /// The name is reserved (an event type the transports use for control messages).
    #[error("{name:?} is reserved for the server's own messages")]
    Reserved {
        /// The reserved name.
        name: String,
    },
    /// The name holds a character outside `[A-Za-z0-9_.:-]`.
    #[error("topic name has {character:?} at byte {index}; allowed are A-Z a-z 0-9 _ . : -")]
    BadCharacter {
        /// Byte offset of the first bad character.
        index: usize,
        /// The first bad character.
        character: char,
    },
}

impl TopicName {
    /// Validates `name` and wraps it.
    ///
    /// ```
    /// # use pushgate_hub::TopicName;
    /// assert!(TopicName::new("user:42").is_ok());
    /// ```
    pub fn new(name: &str) -> Result<Self, InvalidTopic> {
        validate_name(name, MAX_TOPIC_LEN)?;
        Ok(Self(Arc::from(name)))
    }

    /// The name as a string slice.
    ///
    /// ```
    /// # use pushgate_hub::TopicName;
    /// assert_eq!(TopicName::new("chat")?.as_str(), "chat");
    /// # Ok::<(), pushgate_hub::InvalidTopic>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks `name` against the topic alphabet and `max` length; shared with event types.
pub(crate) fn validate_name(name: &str, max: usize) -> Result<(), InvalidTopic> {
    if name.is_empty() {
        return Err(InvalidTopic::Empty);
    }
    if name.len() > max {
        return Err(InvalidTopic::TooLong { len: name.len() });
    }
    let allowed = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b':' | b'-');
    // The alphabet is ASCII: bytes are checked first, every subscribe request names topics.
    if name.bytes().all(allowed) {
        return Ok(());
    }
    match name
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
    {
        Some((index, character)) => Err(InvalidTopic::BadCharacter { index, character }),
        None => Ok(()),
    }
}

impl TryFrom<&str> for TopicName {
    type Error = InvalidTopic;

    fn try_from(name: &str) -> Result<Self, Self::Error> {
        Self::new(name)
    }
}

impl std::str::FromStr for TopicName {
    type Err = InvalidTopic;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::new(name)
    }
}

impl Borrow<str> for TopicName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_whole_alphabet_and_the_length_limit() {
        assert!(TopicName::new("AZaz09_.:-").is_ok());
        assert!(TopicName::new(&"x".repeat(MAX_TOPIC_LEN)).is_ok());
        assert_eq!(
            TopicName::new(&"x".repeat(MAX_TOPIC_LEN + 1)),
            Err(InvalidTopic::TooLong { len: MAX_TOPIC_LEN + 1 })
        );
    }

    #[test]
    fn rejects_characters_that_would_need_escaping() {
        for bad in ["a b", "a/b", "a?b", "é", "a\nb", "a%20"] {
            assert!(matches!(TopicName::new(bad), Err(InvalidTopic::BadCharacter { .. })), "{bad:?}");
        }
    }
}
