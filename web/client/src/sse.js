// @ts-check
/**
 * Server-Sent Events (`GET /v1/sse` through `EventSource`).
 *
 * The client resumes by itself, from its own cursor, rather than leaving it to `EventSource`:
 * every failure closes the stream and goes through the connection's backoff. A failure before the
 * stream opened is explained by a zero-wait poll with the same parameters, since `EventSource`
 * hides the answer (a 4xx there is terminal).
 *
 * Event types: `EventSource` dispatches a frame with `event: insert` only to listeners of
 * `insert`; there is no wildcard. The client listens to `message` (the default type), to the
 * types in the `events` option, and to every type passed to `publish()` on the connection. An
 * event of another type is not seen when it arrives; the client notices the gap in that topic's
 * `seq` when the topic's next event arrives, fetches what it missed with a zero-wait poll of that
 * topic from that topic's last id, delivers it, and from then on listens to the types it learned.
 * So pages that use SSE should list their event types in `events`; the other transports need no
 * list.
 * @module sse
 */

import { PushgateError, asPushgateError } from './errors.js';
import { utf8Length } from './http.js';

/** @typedef {import('./connection.js').Attempt} Attempt */
/** @typedef {import('./types.js').EventObject} EventObject */
/** @typedef {import('./types.js').ErrorObject} ErrorObject */

const PROBE_MS = 3_000;
const PROBE_GRACE_MS = 2_000;
/** Estimated bytes of an SSE response's status line and headers. */
const SSE_HEADER_BYTES = 140;
/** Error codes after which a stream is worth reopening. */
const TRANSIENT_CODES = new Set(['slow_consumer', 'shutting_down', 'overloaded', 'internal', 'request_timeout']);

/**
 * @param {Attempt} attempt
 * @returns {() => void} stops it
 */
export function runSse(attempt) {
  const abort = new AbortController();
  /** @type {EventSource|undefined} */
  let source;
  let opened = false;
  let received = false;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let probeTimer;
  /** SSE frames are handled one after another: a gap repair may await a poll. */
  let chain = Promise.resolve();
  const live = () => attempt.live() && !abort.signal.aborted;
  const stop = () => {
    clearTimeout(probeTimer);
    abort.abort();
    source?.close();
    attempt.onNewType(undefined);
  };
  /** A zero-wait poll with the stream's parameters. */
  const pollOnce = () => attempt.get(attempt.subscribeUrl('/v1/poll', { limit: '1' }), abort.signal);
  const firstMessage = () => {
    if (!received) {
      received = true;
      attempt.working();
    }
  };

  /** A failure before the stream opened: ask the poll endpoint why (EventSource hides the answer). */
  const diagnose = async () => {
    try {
      await pollOnce();
      return new PushgateError('network', 'the event stream failed');
    } catch (error) {
      return asPushgateError(error);
    }
  };

  /** @param {MessageEvent} message */
  const onEvent = (message) => {
    const frameBytes = sseFrameBytes(message);
    chain = chain.then(async () => {
      if (!live()) return;
      attempt.stats.bytes += frameBytes;
      /** @type {EventObject} */
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        attempt.reportError({ code: 'invalid_answer', message: 'an SSE frame is not JSON' });
        return;
      }
      const last = attempt.lastOf(event.topic);
      if (last && event.seq > last.seq + 1) await repairGap(attempt, event, last, abort.signal);
      if (!live()) return;
      attempt.deliver(event);
      firstMessage();
    });
  };

  /** @param {MessageEvent} message a join or leave notice: no id, so the cursor stays */
  const onPresence = (message) => {
    chain = chain.then(() => {
      if (!live()) return;
      attempt.stats.bytes += sseFrameBytes(message);
      try {
        attempt.deliverPresence(JSON.parse(message.data));
      } catch {
        // Not JSON: not from this server.
      }
    });
  };

  /** @param {MessageEvent} message */
  const onReset = (message) => {
    const frameBytes = sseFrameBytes(message);
    chain = chain.then(() => {
      if (!live()) return;
      attempt.stats.bytes += frameBytes;
      try {
        attempt.deliverReset(JSON.parse(message.data));
      } catch {
        return;
      }
      // The reset's id points just before the event that follows it: resuming there does not
      // report the same loss again.
      if (message.lastEventId) attempt.setCursor(message.lastEventId);
      firstMessage();
    });
  };

  /** @param {Event} event */
  const onError = (event) => {
    if (event instanceof MessageEvent) {
      // The server's own `event: error` frame; the stream ends after it.
      const frameBytes = sseFrameBytes(event);
      chain = chain.then(() => {
        if (!live()) return;
        attempt.stats.bytes += frameBytes;
        /** @type {ErrorObject} */
        let detail = { code: 'internal', message: String(event.data) };
        try {
          detail = JSON.parse(event.data);
        } catch {
          // keep the raw text
        }
        attempt.reportError(detail);
        source?.close();
        const terminal = !TRANSIENT_CODES.has(detail.code);
        attempt.failed(new PushgateError(detail.code, detail.message, terminal ? 400 : undefined));
      });
      return;
    }
    // A network failure or a non-stream answer. We resume ourselves, from our own cursor.
    source?.close();
    chain = chain.then(async () => {
      if (!live()) return;
      const error = opened ? new PushgateError('network', 'the event stream broke') : await diagnose();
      if (live()) attempt.failed(error);
    });
  };

  const open = () => {
    if (!live()) return;
    attempt.stats.requests += 1;
    source = new EventSource(attempt.subscribeUrl('/v1/sse'));
    const stream = source;
    const listen = (/** @type {string} */ type) => stream.addEventListener(type, onEvent);
    for (const type of attempt.eventTypes) listen(type);
    attempt.onNewType(listen);
    source.addEventListener('reset', onReset);
    for (const kind of ['pushgate.join', 'pushgate.leave']) source.addEventListener(kind, onPresence);
    source.addEventListener('error', onError);
    source.addEventListener('open', () => {
      if (!live()) return;
      opened = true;
      attempt.stats.bytes += SSE_HEADER_BYTES + 'retry: 2000\n\n'.length;
      if (!attempt.probing) {
        attempt.working();
        return;
      }
      probeTimer = setTimeout(probe, PROBE_MS);
    });
  };

  /** No message within the window: was there anything to deliver? */
  const probe = async () => {
    if (!live() || received) return;
    const cursorBefore = attempt.cursor();
    let answer;
    try {
      answer = await pollOnce();
    } catch (error) {
      if (live()) attempt.failed(asPushgateError(error));
      return;
    }
    if (!live() || received) return;
    const pending = (answer.body.events ?? []).length > 0 || answer.body.reset !== undefined;
    if (!pending && answer.body.cursor === cursorBefore) {
      attempt.working();
      return;
    }
    probeTimer = setTimeout(() => {
      if (live() && !received) {
        attempt.failed(new PushgateError('stalled', 'the event stream delivers nothing (a buffering proxy?)'));
      }
    }, PROBE_GRACE_MS);
  };

  const begin = async () => {
    if (attempt.cursor() === 'now') {
      // Pin `now` to a real position first, so a reconnect before the first event misses nothing.
      try {
        const answer = await pollOnce();
        if (!live()) return;
        if ((answer.body.events ?? []).length === 0 && !answer.body.reset && typeof answer.body.cursor === 'string') {
          attempt.setCursor(answer.body.cursor);
        }
      } catch (error) {
        if (live()) attempt.failed(asPushgateError(error));
        return;
      }
    }
    open();
  };
  begin();
  return stop;
}

/**
 * SSE did not dispatch some events of `event.topic` (their type had no listener): fetch them by a
 * zero-wait poll of that topic from its last delivered id, deliver them, learn their types.
 * @param {Attempt} attempt
 * @param {EventObject} event the event that revealed the gap
 * @param {{seq: number, id: string}} last
 * @param {AbortSignal} signal
 */
async function repairGap(attempt, event, last, signal) {
  let cursor = last.id;
  for (let round = 0; round < 10; round += 1) {
    const params = new URLSearchParams({ topic: event.topic, cursor });
    const token = attempt.token();
    if (token) params.set('token', token);
    let answer;
    try {
      answer = await attempt.get(`${attempt.url}/v1/poll?${params}`, signal);
    } catch (error) {
      attempt.reportError(asPushgateError(error).toJSON());
      return;
    }
    if (answer.body.reset) return;
    const events = /** @type {EventObject[]} */ (answer.body.events ?? []);
    for (const missed of events) {
      if (missed.seq >= event.seq) return;
      attempt.applyAnswer({ events: [missed] });
    }
    if (events.length === 0 || answer.body.cursor === cursor) return;
    cursor = answer.body.cursor;
  }
}

/**
 * Bytes of one SSE frame as the server wrote it: `id:`, `event:` and `data:` lines.
 * @param {MessageEvent} message
 */
function sseFrameBytes(message) {
  let bytes = utf8Length(String(message.data)) + 'data: \n\n'.length;
  bytes += `event: ${message.type}\n`.length;
  if (message.lastEventId) bytes += `id: ${message.lastEventId}\n`.length;
  return bytes;
}
