//! Dev-only test support for pushgate (in progress).
