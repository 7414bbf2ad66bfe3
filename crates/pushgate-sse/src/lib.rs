//! pushgate transport: sse (in progress).
