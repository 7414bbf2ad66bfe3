//! pushgate transport: longpoll (in progress).
