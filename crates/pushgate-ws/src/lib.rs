//! pushgate transport: ws (in progress).
