// @ts-check
/**
 * pushgate browser client: one API over the four transports of pushgate's wire protocol (short
 * poll, long poll, Server-Sent Events, WebSocket), with resumption from the last event, resets
 * surfaced, auth tokens and their renewal, and, opt-in, one connection shared by every tab.
 *
 * ```js
 * import { connect } from '@pushgate/client';
 * const connection = connect({ topics: ['chat'], transport: 'auto', shared: true });
 * connection.addEventListener('event', (e) => console.log(e.detail));   // the event object
 * connection.addEventListener('reset', (e) => reload(e.detail));          // history was lost
 * connection.addEventListener('status', (e) => show(e.detail.status));
 * await connection.publish('chat', 'message', { text: 'hi' });
 * ```
 *
 * The behaviour is documented where it lives: connection.js (reconnection, `auto`, auth, what is
 * terminal, `stats`), poll.js, sse.js (event types), ws.js, shared.js (sharing among tabs).
 * @module @pushgate/client
 */

export { connect, Connection } from './connection.js';
export { publish } from './http.js';
export { PushgateError } from './errors.js';
export * from './types.js';
