//! Database change sources (in progress).

mod error;
mod model;

pub use error::SourceError;
pub use model::{SourceNames, TableSpec};
