//! pushgate transport: poll (in progress).
