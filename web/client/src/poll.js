// @ts-check
/**
 * Short polling (`GET /v1/poll` every `interval`, with `If-None-Match` so an idle poll is a
 * `304`) and long polling (`GET /v1/longpoll`, parked by the server until events arrive or
 * `timeout` passes): one loop, since a short poll is a long poll that does not wait.
 * @module poll
 */

import { PushgateError, asPushgateError } from './errors.js';

/** @typedef {import('./connection.js').Attempt} Attempt */

/** A poll answer this large or this long may have been cut: poll again at once. */
const FULL_ANSWER_BYTES = 1 << 20;
const FULL_ANSWER_EVENTS = 1000;

/**
 * Short polling.
 * @param {Attempt} attempt
 * @returns {() => void} stops it
 */
export function runPoll(attempt) {
  return run(attempt, false);
}

/**
 * Long polling.
 * @param {Attempt} attempt
 * @returns {() => void} stops it
 */
export function runLongPoll(attempt) {
  return run(attempt, true);
}

/**
 * @param {Attempt} attempt
 * @param {boolean} long
 * @returns {() => void}
 */
function run(attempt, long) {
  const abort = new AbortController();
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  /** @type {{cursor: string, etag: string}|undefined} */
  let lastTag;
  // A long-poll attempt starts with a zero wait: it shows at once that the gateway answers, and
  // pins `now` to a real position, so a reconnect before the first event misses nothing.
  let first = true;
  const live = () => attempt.live() && !abort.signal.aborted;

  /** @param {number} delay ms */
  const next = (delay) => {
    // No timer for "at once": a hidden tab's timers are throttled, its network callbacks are not.
    if (delay === 0) queueMicrotask(once);
    else timer = setTimeout(once, delay);
  };

  const once = async () => {
    timer = undefined;
    if (!live()) return;
    /** @type {Record<string, string>} */
    const headers = {};
    if (!long && lastTag && lastTag.cursor === attempt.cursor()) headers['If-None-Match'] = lastTag.etag;
    const url = long
      ? attempt.subscribeUrl('/v1/longpoll', { timeout: first ? '0' : String(attempt.timeout) })
      : attempt.subscribeUrl('/v1/poll');
    // A long poll that outlives its own timeout by 15 s is a dead connection.
    let timedOut = false;
    const deadline = long
      ? setTimeout(() => {
          timedOut = true;
          abort.abort();
        }, (attempt.timeout + 15) * 1000)
      : undefined;
    let answer;
    try {
      const requestCursor = attempt.cursor();
      answer = await attempt.get(url, abort.signal, headers);
      if (!live()) return;
      if (answer.etag) lastTag = { cursor: requestCursor, etag: answer.etag };
    } catch (error) {
      if (live()) attempt.failed(asPushgateError(error));
      else if (timedOut) attempt.failed(new PushgateError('timeout', 'the long poll got no answer in time'));
      return;
    } finally {
      clearTimeout(deadline);
    }
    first = false;
    attempt.working();
    let again = long ? 0 : attempt.interval;
    if (answer.status !== 304) {
      attempt.applyAnswer(answer.body);
      if (!live()) return;
      const events = answer.body.events ?? [];
      if (events.length >= FULL_ANSWER_EVENTS || JSON.stringify(events).length >= FULL_ANSWER_BYTES) again = 0;
    }
    next(again);
  };
  once();
  return () => {
    clearTimeout(timer);
    abort.abort();
  };
}
