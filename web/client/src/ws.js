// @ts-check
/**
 * WebSocket (`GET /v1/ws`): an `auth` frame first when there is a token, then one `subscribe`
 * frame from the cursor; the server's `subscribed` answer is what makes the attempt count. Once
 * subscribed, the socket also carries the connection's publishes (`publish` frames answered by
 * `published`, in order) and token refreshes (`auth` frames answered by `authed`).
 * @module ws
 */

import { PushgateError } from './errors.js';
import { utf8Length } from './http.js';

/** @typedef {import('./connection.js').Attempt} Attempt */
/** @typedef {import('./types.js').EventObject} EventObject */
/** @typedef {import('./types.js').ResetObject} ResetObject */
/** @typedef {import('./types.js').ErrorObject} ErrorObject */
/** @typedef {import('./types.js').Published} Published */

const PROBE_MS = 3_000;
/** Estimated bytes of a WebSocket handshake answer. */
const WS_HANDSHAKE_BYTES = 130;
/** What the client makes of the server's close codes (docs/protocol.md). */
/** @type {Record<number, string>} */
const CLOSE_CODES = {
  4008: 'slow_consumer',
  1009: 'too_large',
  4401: 'token_expired',
  4408: 'auth_timeout',
  4410: 'disconnected',
  4411: 'token_revoked',
};

/**
 * @param {Attempt} attempt
 * @returns {() => void} stops it
 */
export function runWs(attempt) {
  let subscribed = false;
  let receivedEvent = false;
  let stopped = false;
  const live = () => attempt.live() && !stopped;
  /** @type {{resolve: (p: Published) => void, reject: (e: Error) => void}[]} */
  const pendingPublishes = [];
  attempt.stats.requests += 1;
  /** @type {WebSocket} */
  let socket;
  try {
    socket = new WebSocket(`${attempt.url.replace(/^http/, 'ws')}/v1/ws`);
  } catch (error) {
    // A URL the runtime refuses (a bad `url` option): nothing to retry.
    queueMicrotask(() => attempt.failed(new PushgateError('invalid_url', String(error), 400)));
    return () => {};
  }
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  const probeTimer = attempt.probing
    ? setTimeout(() => {
        if (live() && !subscribed) attempt.failed(new PushgateError('stalled', 'no subscription acknowledgement within 3 s'));
      }, PROBE_MS)
    : undefined;

  const rejectPending = (/** @type {string} */ message) => {
    for (const { reject } of pendingPublishes.splice(0)) reject(new PushgateError('connection_closed', message));
  };
  const sender = {
    ready: () => socket.readyState === WebSocket.OPEN,
    /**
     * @param {string} topic
     * @param {string|null|undefined} event
     * @param {any} data
     * @returns {Promise<Published>}
     */
    publish(topic, event, data) {
      return new Promise((resolve, reject) => {
        /** @type {{type: string, topic: string, data: any, event?: string}} */
        const frame = { type: 'publish', topic, data: data === undefined ? null : data };
        if (event) frame.event = event;
        pendingPublishes.push({ resolve, reject });
        socket.send(JSON.stringify(frame));
      });
    },
    /** @param {string} token */
    auth(token) {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'auth', token }));
    },
  };

  socket.addEventListener('open', () => {
    if (!live()) return;
    attempt.stats.bytes += WS_HANDSHAKE_BYTES;
    // Frames are handled in order: the subscription is checked against this token.
    const token = attempt.token();
    if (token) socket.send(JSON.stringify({ type: 'auth', token }));
    const subscribe = { type: 'subscribe', topics: attempt.topics, cursor: attempt.cursor() };
    socket.send(JSON.stringify(attempt.presence ? { ...subscribe, presence: true } : subscribe));
  });
  socket.addEventListener('message', (message) => {
    if (!live() || typeof message.data !== 'string') return;
    attempt.stats.bytes += utf8Length(message.data);
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    const { type, ...rest } = frame;
    if (type === 'event') {
      receivedEvent = true;
      attempt.deliver(/** @type {EventObject} */ (rest));
      attempt.working();
    } else if (type === 'presence') {
      attempt.deliverPresence(/** @type {import('./types.js').PresenceNotice} */ (rest));
    } else if (type === 'reset') {
      attempt.deliverReset(/** @type {ResetObject} */ (rest));
      attempt.working();
    } else if (type === 'subscribed') {
      // Before any event this is where the subscription stands (`now` made concrete).
      if (!receivedEvent && typeof rest.cursor === 'string') attempt.setCursor(rest.cursor);
      if (!subscribed) {
        subscribed = true;
        clearTimeout(probeTimer);
        attempt.attach(sender);
        attempt.working();
      }
    } else if (type === 'authed') {
      attempt.renewAt(rest.expires);
    } else if (type === 'published') {
      pendingPublishes.shift()?.resolve(/** @type {Published} */ (rest));
    } else if (type === 'error') {
      const error = /** @type {ErrorObject} */ (rest.error ?? { code: 'internal', message: 'unknown error' });
      if (rest.request === 'publish') pendingPublishes.shift()?.reject(new PushgateError(error.code, error.message));
      attempt.reportError(error);
      if ((rest.request === 'subscribe' || rest.request === 'auth') && !subscribed) {
        // Our one subscription, or the token it needs, was refused: retrying cannot help
        // (an expired token is renewed instead, when it can be).
        const status = error.code === 'token_expired' ? undefined : 400;
        attempt.failed(new PushgateError(error.code, error.message, status));
      }
    }
  });
  socket.addEventListener('close', (close) => {
    clearTimeout(probeTimer);
    rejectPending(`the WebSocket closed (${close.code})`);
    if (!live()) return;
    attempt.attach(undefined);
    // 4408: no token in time — the same connection would be closed again. 4410: the
    // application's server disconnected this client on purpose; 4411: its token was revoked
    // (renewed like an expired one, when it can be).
    const TERMINAL = { 4408: 401, 4410: 410, 4411: 401 };
    const status = TERMINAL[/** @type {keyof typeof TERMINAL} */ (close.code)];
    const code = CLOSE_CODES[close.code] ?? 'network';
    attempt.failed(new PushgateError(code, `the WebSocket closed (${close.code}${close.reason ? `: ${close.reason}` : ''})`, status));
  });

  return () => {
    stopped = true;
    clearTimeout(probeTimer);
    rejectPending('the connection moved on');
    if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN) socket.close(1000);
  };
}
