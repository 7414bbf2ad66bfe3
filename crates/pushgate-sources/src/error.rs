//! Errors of database sources.

/// Why a source operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The configuration is invalid (a URL scheme no feature supports, a bad identifier, …).
    #[error("invalid source configuration: {0}")]
    Config(String),
    /// The database refused or failed a statement, or the connection broke.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A watched table is missing or has no columns.
    #[error("table {0:?} does not exist or has no columns")]
    NoSuchTable(String),
    /// A change row could not be turned into an event (bad JSON in the outbox).
    #[error("outbox row {id} is malformed: {reason}")]
    MalformedRow {
        /// The outbox id.
        id: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// This node no longer certainly holds the source's lease (a confirmation failed or came
    /// late), so it stopped publishing: another node may hold the lease now.
    #[error("lost the source's lease: {0}")]
    LeaseLost(&'static str),
    /// Another node holds the source's lease and did not publish the pending changes in time.
    #[error("the node holding the source's lease did not publish the pending changes within {0:?}")]
    LeaderTimeout(std::time::Duration),
    /// A table that `install` (`pushgate db install`) creates is missing: the database was
    /// never prepared, or the prefix names another install.
    #[error(
        "the table {0} is missing: prepare this database with `pushgate db install --url URL --table TABLE` (or `install`)"
    )]
    NotInstalled(String),
    /// The outbox was installed by an earlier release and lacks the columns recording where each
    /// change went in the hub: `install` adds them.
    #[error(
        "the outbox {0} lacks the columns of this release: run `pushgate db install` (or `install`) again"
    )]
    OutdatedOutbox(String),
    /// The hub refused an event.
    #[error("the hub refused a change: {0}")]
    Hub(#[from] pushgate_hub::HubError),
}
