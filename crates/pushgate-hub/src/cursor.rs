//! Cursors and epochs: where a reader stands in the hub's single, hub-wide order of events.
//!
//! Defined in `pushgate-protocol`, since a cursor's text is part of the wire that clients hold
//! and send back; the hub re-exports them as its own, and this module names them for the
//! hub's modules.

pub use pushgate_protocol::{Cursor, CursorError, Epoch};
