//! The reset object: what a reader is told when its cursor cannot be honoured exactly, instead
//! of silently skipping: `{"reason","topics":[{"topic","missed":{"at_least","at_most"},"resume_seq"}]}`.

use serde::{Deserialize, Serialize};

/// Why events were missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResetReason {
    /// The cursor is older than the retained history of the listed topics.
    Expired,
    /// The cursor is from another epoch (history was lost); every topic is listed and nothing
    /// is known about what was missed.
    EpochChanged,
    /// A reason this version does not know (a newer server's).
    #[serde(other)]
    Unknown,
}

impl ResetReason {
    /// The reason as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::EpochChanged => "epoch_changed",
            Self::Unknown => "unknown",
        }
    }
}

/// A reset: which topics lost events, and where each resumes.
///
/// ```
/// use pushgate_protocol::{ResetObject, ResetReason};
///
/// let reset: ResetObject = serde_json::from_str(
///     r#"{"reason":"expired","topics":[{"topic":"t","missed":{"at_least":3,"at_most":null},"resume_seq":9}]}"#,
/// )?;
/// assert_eq!(reset.reason, ResetReason::Expired);
/// assert_eq!((reset.topics[0].missed.at_least, reset.topics[0].missed.at_most), (3, None));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetObject {
    /// Why.
    pub reason: ResetReason,
    /// The affected topics.
    pub topics: Vec<ResetTopic>,
}

/// One topic of a [`ResetObject`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetTopic {
    /// The topic.
    pub topic: String,
    /// How many of its events were missed.
    pub missed: Missed,
    /// The `seq` of the first event the reader gets from this topic from now on.
    pub resume_seq: u64,
}

/// A count of missed events, as precisely as the server knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missed {
    /// At least this many (0 when it is only possible that some were).
    pub at_least: u64,
    /// At most this many; `null` when unknown.
    pub at_most: Option<u64>,
}
