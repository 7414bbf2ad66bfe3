//! The demo in a build without the `sqlite` feature: there is none. [`Demo`] has no values
//! (`Config::validate` refuses a demo database in such a build, with
//! `ConfigError::DemoUnavailable`), so the composition in `lib.rs` reads the same in every build.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use pushgate_http::Authorize;
use pushgate_hub::Hub;
use pushgate_sources::{Source, SourceError};

use crate::api::BodyLimits;

/// A demo that cannot exist.
#[derive(Debug)]
pub(crate) enum Demo {}

impl Demo {
    /// Always refuses: this build has no SQLite.
    pub(crate) async fn open(_path: &Path, _lease_timeout: Duration) -> Result<Self, SourceError> {
        Err(SourceError::Config("the demo needs the `sqlite` feature".to_owned()))
    }

    pub(crate) fn source(&self) -> Arc<Source> {
        match *self {}
    }

    pub(crate) async fn close(&self) {
        match *self {}
    }
}

/// The demo's routes, of which there are none.
pub(crate) fn router(
    _hub: Hub,
    demo: Arc<Demo>,
    _bodies: BodyLimits,
    _authorize: Arc<dyn Authorize>,
) -> Router {
    match *demo {}
}
