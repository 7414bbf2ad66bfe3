// @ts-check
/**
 * pushgate browser client: one API over the four transports of docs/protocol.md.
 *
 * ```js
 * import { connect } from '/pushgate.js';
 * const connection = connect({ topics: ['chat'], transport: 'auto' });
 * connection.addEventListener('event', (e) => console.log(e.detail));   // the event object
 * connection.addEventListener('reset', (e) => reload(e.detail));          // history was lost
 * connection.addEventListener('status', (e) => show(e.detail.status));
 * await connection.publish('chat', 'message', { text: 'hi' });
 * ```
 *
 * One `Connection` carries every topic of a page. It delivers the same event objects on every
 * transport, in the hub's order, and reconnects by itself: after a failure it waits a random time
 * between 0 and min(30 s, 0.5 s × 2^attempt) (full-jitter exponential backoff; the attempt count
 * starts over after a successful message), then resumes from `cursor`, the id of the last event
 * delivered. It retries at once when the browser comes back `online` or the page becomes visible.
 * If history was lost meanwhile (expired, or the server restarted), the server's reset object is
 * dispatched as a `reset` event before the events that follow. A 4xx error other than 408 and 429
 * (a bad topic or cursor) is terminal: status `closed`, with the error.
 *
 * `auto` decides on data, not on a socket opening: WebSocket counts once the server acknowledges
 * the subscription (`subscribed`), within 3 s. Otherwise Server-Sent Events: they count on the
 * first message (event or reset), or, when none comes within 3 s of the stream opening, when a
 * zero-wait poll from the same cursor shows there was nothing to deliver (a buffering proxy
 * holds events back; it cannot hold back events that do not exist). If the poll shows events the
 * stream has not delivered within 2 s more, SSE is given up. Long polling is the last resort and
 * counts on its first answer. A transport chosen by `auto` that fails 3 times in a row is chosen
 * again from the start.
 *
 * Auth: with a `token` option the client sends it as the `token` query parameter on every poll,
 * long poll and SSE stream, as `Authorization: Bearer` when publishing over HTTP, and as an
 * `{"type":"auth"}` frame first thing on a WebSocket. `setToken()` replaces it: at once on an open
 * WebSocket (an in-band refresh, answered `authed`), from the next request on the others. When the
 * server says the token expired (`token_expired`: an HTTP 401, an SSE `event: error`, WebSocket
 * close 4401), the client asks `refreshToken()` (an option) for a fresh one and reconnects from its
 * cursor at once; without `refreshToken` it reconnects only if `setToken()` gave a new token
 * meanwhile, and otherwise closes with that error. On a WebSocket with `refreshToken`, the token is
 * also renewed in-band 30 s before it expires, so the connection never drops for it.
 *
 * What ends a connection for good: `close()`; a 4xx answer other than 408/429 (on SSE, learnt
 * from a zero-wait poll with the same parameters, since `EventSource` hides the answer), such as
 * `token_required`, `invalid_token` or `topic_forbidden`; a WebSocket `error` frame refusing the
 * subscription itself or the token; a WebSocket close with 4408 (no token in time); an expired
 * token that cannot be renewed (above); an SSE `event: error` whose code is not `slow_consumer`,
 * `shutting_down`, `overloaded` or `internal`. Everything else reconnects: network failures, 5xx, 408, 429, WebSocket closes 1001,
 * 1006, 1011, 1012, 4008 (slow consumer) and 1009 (after a publish over the size limit; that
 * publish is rejected). Protocol errors the connection survives (a refused publish frame) are
 * dispatched as `error` events without closing it.
 *
 * Server-Sent Events and event types: `EventSource` dispatches a frame with `event: insert` only
 * to listeners of `insert`; there is no wildcard. The client listens to `message` (the default
 * type), to the types in the `events` option, and to every type passed to `publish()` on this
 * connection. An event of another type is not seen when it arrives; the client notices the gap
 * in that topic's `seq` when the topic's next event arrives, fetches what it missed with a
 * zero-wait poll (`GET /v1/poll` on that topic from that topic's last id), delivers it, and from
 * then on listens to the types it learned. So pages that use SSE should list their event types
 * in `events`; the other transports need no list.
 *
 * `stats` counts what this connection received: `requests` are the HTTP requests it made to
 * receive (each poll and long poll, each SSE stream and WebSocket handshake, and the zero-wait
 * polls SSE uses); `bytes` are response bodies plus an estimate of the status line and headers
 * (the headers the browser exposes, `name: value` CRLF each; chunked framing, compression and
 * TLS are not counted). For SSE the browser exposes no bytes: each frame is counted as its
 * `id:`, `event:` and `data:` lines, plus 140 bytes of headers and the `retry:` line per stream
 * (heartbeat comments are invisible to the page and not counted). For WebSocket, `bytes` are the
 * payload lengths of the text frames received, plus 130 bytes per handshake. `messages` are the
 * events and resets delivered to the page. Publishing is not counted.
 *
 * @module pushgate
 */

/**
 * The event object, identical on every transport.
 * @typedef {object} EventObject
 * @property {string} topic the topic it was published to
 * @property {number} seq its place in the topic: 1, 2, 3, … with no gaps unless a reset intervenes
 * @property {string} id the cursor that resumes right after this event
 * @property {string} event the event type
 * @property {any} data the published JSON value
 * @property {number} ts server time of publication, ms since the Unix epoch
 */

/**
 * @typedef {object} ResetTopic
 * @property {string} topic
 * @property {{at_least: number, at_most: number|null}} missed
 * @property {number} resume_seq the seq of the first event that will be delivered from the topic
 */

/**
 * History was lost before the events that follow.
 * @typedef {object} ResetObject
 * @property {'expired'|'epoch_changed'} reason
 * @property {ResetTopic[]} topics
 */

/** @typedef {'poll'|'longpoll'|'sse'|'ws'} Transport */
/** @typedef {Transport|'auto'} TransportChoice */
/** @typedef {'connecting'|'open'|'reconnecting'|'closed'} Status */

/**
 * @typedef {object} Options
 * @property {string} [url] gateway base URL; default `location.origin`
 * @property {TransportChoice} [transport] default `'auto'`
 * @property {string[]} topics
 * @property {string} [cursor] where to start: a server cursor, `'now'` (default) or `'oldest'`
 * @property {number} [interval] short-poll interval in ms, default 1000
 * @property {number} [timeout] long-poll wait in seconds, default 25
 * @property {string[]} [events] event types to listen for on SSE besides `message` (see above)
 * @property {string} [token] an access token (see Auth above); none by default
 * @property {() => (string|Promise<string>)} [refreshToken] returns a fresh token when the current one expires
 */

/**
 * @typedef {object} Stats
 * @property {number} requests
 * @property {number} bytes
 * @property {number} messages
 */

/**
 * @typedef {object} ErrorObject
 * @property {string} code a stable code from docs/protocol.md (or `network`, `connection_closed`)
 * @property {string} message
 */

/**
 * @typedef {object} StatusDetail
 * @property {Status} status
 * @property {Transport} transport
 * @property {ErrorObject} [error] the error that made it `closed` or `reconnecting`
 */

/**
 * @typedef {object} Published
 * @property {string} topic
 * @property {number} seq
 * @property {string} id
 */

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
const PROBE_MS = 3_000;
const PROBE_GRACE_MS = 2_000;
const AUTO_ORDER = /** @type {const} */ (['ws', 'sse', 'longpoll']);
const TRANSPORTS = ['poll', 'longpoll', 'sse', 'ws', 'auto'];
/** Error codes after which an SSE stream or a connection attempt is worth retrying. */
const TRANSIENT_CODES = new Set(['slow_consumer', 'shutting_down', 'overloaded', 'internal', 'request_timeout']);
/** Estimated bytes of an SSE response's status line and headers, and of a WebSocket handshake answer. */
const SSE_HEADER_BYTES = 140;
const WS_HANDSHAKE_BYTES = 130;
/** A poll answer this large or this long may have been cut: poll again at once. */
const FULL_ANSWER_BYTES = 1 << 20;
const FULL_ANSWER_EVENTS = 1000;

/** An error answered by the gateway (or a network failure, code `network`). */
export class PushgateError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {number} [status] the HTTP status, when there was an answer
   */
  constructor(code, message, status) {
    super(message);
    this.name = 'PushgateError';
    this.code = code;
    this.status = status;
  }

  /** Whether retrying cannot help: a 4xx answer other than 408 and 429. */
  get terminal() {
    return this.status !== undefined && this.status >= 400 && this.status < 500 && this.status !== 408 && this.status !== 429;
  }

  /** @returns {ErrorObject} */
  toJSON() {
    return { code: this.code, message: this.message };
  }
}

/**
 * Opens one connection for all `topics`; it starts right after the current task, so listeners
 * added at once see every status change.
 * @param {Options} options
 * @returns {Connection}
 */
export function connect(options) {
  return new Connection(options);
}

/**
 * Publishes one event over HTTP (`POST /v1/publish/{topic}`).
 * @param {string} topic
 * @param {string|null|undefined} event the event type; empty for the default `message`
 * @param {any} data any JSON value (`null` included)
 * @param {{url?: string, token?: string}} [options] `token`: sent as `Authorization: Bearer`
 * @returns {Promise<Published>}
 */
export async function publish(topic, event, data, { url, token } = {}) {
  const base = baseUrl(url);
  /** @type {Record<string, string>} */
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  /** @type {{event?: string, data: any}} */
  const body = { data: data === undefined ? null : data };
  if (event) body.event = event;
  let response;
  try {
    response = await fetch(`${base}/v1/publish/${encodeURIComponent(topic)}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new PushgateError('network', String(error));
  }
  if (!response.ok) throw await errorFrom(response);
  return /** @type {Published} */ (await response.json());
}

/**
 * One subscription to a set of topics over one transport at a time.
 *
 * Events (all `CustomEvent`s): `event` (detail: {@link EventObject}), `reset` (detail:
 * {@link ResetObject}), `status` (detail: {@link StatusDetail}), `error` (detail:
 * {@link ErrorObject}: a protocol error the connection survives or that ended it).
 */
export class Connection extends EventTarget {
  /** @type {Status} */
  status = 'connecting';
  /** @type {Transport} the transport in use; while `auto` probes, the one being tried */
  transport;
  /** @type {string} the id of the last event delivered (or the last poll cursor); every reconnect resumes from it */
  cursor;
  /** @type {Stats} live counters, see the module docs */
  stats = { requests: 0, bytes: 0, messages: 0 };
  /** @type {ErrorObject|undefined} the error that closed the connection, if any */
  error;
  /** @readonly @type {string} */
  url;
  /** @readonly @type {string[]} */
  topics;
  /** @readonly @type {TransportChoice} */
  requested;
  /** @readonly @type {number} */
  interval;
  /** @readonly @type {number} */
  timeout;

  /** Bumped on every attempt; callbacks of an older attempt are ignored. */
  #generation = 0;
  #attempt = 0;
  /** Consecutive failures of the transport `auto` settled on. */
  #lockedFailures = 0;
  /** @type {Transport|undefined} the transport `auto` settled on */
  #locked;
  #autoIndex = 0;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  #retryTimer;
  /** @type {(() => void)|undefined} stops the current attempt */
  #stopAttempt;
  /** @type {WebSocket|undefined} the open, subscribed socket, for publishing */
  #socket;
  /** @type {{resolve: (p: Published) => void, reject: (e: Error) => void}[]} */
  #pendingPublishes = [];
  /** Per topic, the last event delivered: to notice events SSE did not dispatch. */
  /** @type {Map<string, {seq: number, id: string}>} */
  #lastByTopic = new Map();
  /** Event types to listen for on SSE. */
  /** @type {Set<string>} */
  #sseTypes;
  /** @type {((type: string) => void)|undefined} adds a listener to the open EventSource */
  #sseListen;
  #onWake = () => this.#wake();
  /** @type {string|undefined} the access token; never logged */
  #token;
  /** @type {string|undefined} the token the current attempt started with */
  #attemptToken;
  /** @type {(() => (string|Promise<string>))|undefined} */
  #refreshToken;
  /** @type {ReturnType<typeof setTimeout>|undefined} renews the WebSocket's token before it expires */
  #renewTimer;

  /** @param {Options} options */
  constructor(options) {
    super();
    if (!options || !Array.isArray(options.topics) || options.topics.length === 0) {
      throw new TypeError('connect: `topics` must be a non-empty array of topic names');
    }
    const requested = options.transport ?? 'auto';
    if (!TRANSPORTS.includes(requested)) throw new TypeError(`connect: unknown transport ${JSON.stringify(requested)}`);
    this.url = baseUrl(options.url);
    this.topics = [...new Set(options.topics)];
    this.requested = requested;
    this.transport = requested === 'auto' ? AUTO_ORDER[0] : requested;
    this.cursor = options.cursor ?? 'now';
    this.interval = options.interval ?? 1000;
    this.timeout = options.timeout ?? 25;
    this.#sseTypes = new Set(['message', ...(options.events ?? [])]);
    this.#token = options.token || undefined;
    this.#refreshToken = options.refreshToken;
    if (typeof window !== 'undefined') window.addEventListener('online', this.#onWake);
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', this.#onWake);
    queueMicrotask(() => {
      if (this.status === 'closed') return;
      this.#emitStatus();
      this.#start();
    });
  }

  /**
   * Publishes one event: over the WebSocket when that is the open transport (a `publish` frame
   * answered by `published`), otherwise `POST /v1/publish/{topic}`.
   * @param {string} topic
   * @param {string|null|undefined} event the event type; empty for the default `message`
   * @param {any} data
   * @returns {Promise<Published>}
   */
  publish(topic, event, data) {
    if (event) this.#learnType(event);
    const socket = this.#socket;
    if (socket && socket.readyState === WebSocket.OPEN) {
      return new Promise((resolve, reject) => {
        /** @type {{type: string, topic: string, data: any, event?: string}} */
        const frame = { type: 'publish', topic, data: data === undefined ? null : data };
        if (event) frame.event = event;
        this.#pendingPublishes.push({ resolve, reject });
        socket.send(JSON.stringify(frame));
      });
    }
    return publish(topic, event, data, { url: this.url, token: this.#token });
  }

  /**
   * Replaces the access token: sent at once on an open WebSocket (answered `authed`; a refused
   * token is dispatched as an `error` event and the old one stays in force), used from the next
   * request on the other transports, and by every reconnect.
   * @param {string} token
   */
  setToken(token) {
    this.#token = token || undefined;
    const socket = this.#socket;
    if (this.#token && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: 'auth', token: this.#token }));
    }
  }

  /** Stops for good: status `closed`. */
  close() {
    this.#finish(undefined);
  }

  // ---- lifecycle -------------------------------------------------------------------------

  #start() {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#stopAttempt?.();
    const generation = ++this.#generation;
    this.#attemptToken = this.#token;
    const transport = this.requested !== 'auto' ? this.requested : this.#locked ?? AUTO_ORDER[this.#autoIndex];
    if (transport !== this.transport) {
      this.transport = transport;
      this.#emitStatus();
    }
    const probing = this.requested === 'auto' && this.#locked === undefined;
    const attempt = { generation, probing };
    if (transport === 'poll') this.#stopAttempt = this.#runPoll(attempt, false);
    else if (transport === 'longpoll') this.#stopAttempt = this.#runPoll(attempt, true);
    else if (transport === 'sse') this.#stopAttempt = this.#runSse(attempt);
    else this.#stopAttempt = this.#runWs(attempt);
  }

  /**
   * The current attempt works: data arrived.
   * @param {number} generation
   */
  #working(generation) {
    if (generation !== this.#generation) return;
    this.#attempt = 0;
    this.#lockedFailures = 0;
    if (this.requested === 'auto' && this.#locked === undefined) this.#locked = this.transport;
    this.#setStatus('open');
  }

  /**
   * The current attempt failed: retry after a backoff, move on to the next `auto` candidate, or
   * stop for good on a terminal error.
   * @param {number} generation
   * @param {PushgateError} error
   */
  #failed(generation, error) {
    if (generation !== this.#generation || this.status === 'closed') return;
    // Whatever the failed attempt still reports from here on is stale.
    this.#generation += 1;
    this.#stopAttempt?.();
    this.#stopAttempt = undefined;
    if (error.code === 'token_expired' && (this.#refreshToken || this.#token !== this.#attemptToken)) {
      this.#renewAndRestart(error);
      return;
    }
    if (error.terminal) {
      this.#finish(error.toJSON());
      return;
    }
    if (this.requested === 'auto') {
      if (this.#locked === undefined) {
        if (this.#autoIndex < AUTO_ORDER.length - 1) {
          // The next candidate at once: this one did not work, the server may be fine.
          this.#autoIndex += 1;
          this.#setStatus('connecting', error.toJSON());
          this.#start();
          return;
        }
        this.#autoIndex = 0;
      } else if (++this.#lockedFailures >= 3) {
        this.#locked = undefined;
        this.#lockedFailures = 0;
        this.#autoIndex = 0;
      }
    }
    this.#setStatus('reconnecting', error.toJSON());
    const delay = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.#attempt);
    this.#attempt += 1;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#start();
    }, delay);
  }

  /**
   * The token expired: get a fresh one (unless `setToken` already gave one) and reconnect from the
   * cursor, at once unless the last attempt already ended so; a failing `refreshToken` closes the
   * connection with its error.
   * @param {PushgateError} error
   */
  async #renewAndRestart(error) {
    this.#setStatus('reconnecting', error.toJSON());
    const generation = this.#generation;
    if (this.#refreshToken && this.#token === this.#attemptToken) {
      try {
        this.#token = (await this.#refreshToken()) || undefined;
      } catch (failure) {
        if (generation === this.#generation) this.#finish(new PushgateError('token_expired', `refreshToken failed: ${failure}`).toJSON());
        return;
      }
    }
    if (generation !== this.#generation || this.status === 'closed') return;
    // At once the first time; a token that keeps coming back expired backs off like any failure.
    const delay = this.#attempt === 0 ? 0 : Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.#attempt);
    this.#attempt += 1;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#start();
    }, delay);
  }

  /**
   * Schedules an in-band renewal of the WebSocket's token 30 s before `expires` (Unix seconds).
   * @param {number|null|undefined} expires
   */
  #scheduleRenewal(expires) {
    clearTimeout(this.#renewTimer);
    this.#renewTimer = undefined;
    if (!this.#refreshToken || typeof expires !== 'number') return;
    const refresh = this.#refreshToken;
    const delay = Math.max(1000, expires * 1000 - Date.now() - 30_000);
    this.#renewTimer = setTimeout(async () => {
      this.#renewTimer = undefined;
      try {
        this.setToken(await refresh());
      } catch (failure) {
        this.dispatchEvent(new CustomEvent('error', { detail: { code: 'token_expired', message: `refreshToken failed: ${failure}` } }));
      }
    }, delay);
  }

  /** `online` or the page became visible: a pending retry happens now. */
  #wake() {
    if (typeof document !== 'undefined' && document.visibilityState === 'hidden') return;
    if (this.status === 'reconnecting' && this.#retryTimer !== undefined) this.#start();
  }

  /** @param {ErrorObject|undefined} error */
  #finish(error) {
    if (this.status === 'closed') return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    clearTimeout(this.#renewTimer);
    this.#renewTimer = undefined;
    this.#generation += 1;
    this.#stopAttempt?.();
    this.#stopAttempt = undefined;
    if (typeof window !== 'undefined') window.removeEventListener('online', this.#onWake);
    if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', this.#onWake);
    this.error = error;
    if (error) this.dispatchEvent(new CustomEvent('error', { detail: error }));
    this.#setStatus('closed', error);
  }

  /**
   * @param {Status} status
   * @param {ErrorObject} [error]
   */
  #setStatus(status, error) {
    if (status === this.status && !error) return;
    this.status = status;
    this.#emitStatus(error);
  }

  /** @param {ErrorObject} [error] */
  #emitStatus(error) {
    /** @type {StatusDetail} */
    const detail = { status: this.status, transport: this.transport };
    if (error) detail.error = error;
    this.dispatchEvent(new CustomEvent('status', { detail }));
  }

  // ---- delivery --------------------------------------------------------------------------

  /** @param {EventObject} event */
  #deliver(event) {
    this.cursor = event.id;
    this.#lastByTopic.set(event.topic, { seq: event.seq, id: event.id });
    this.stats.messages += 1;
    this.dispatchEvent(new CustomEvent('event', { detail: event }));
  }

  /** @param {ResetObject} reset */
  #deliverReset(reset) {
    for (const entry of reset.topics ?? []) this.#lastByTopic.delete(entry.topic);
    this.stats.messages += 1;
    this.dispatchEvent(new CustomEvent('reset', { detail: reset }));
  }

  /** @param {string} type */
  #learnType(type) {
    if (this.#sseTypes.has(type)) return;
    this.#sseTypes.add(type);
    this.#sseListen?.(type);
  }

  /**
   * @param {string} path
   * @param {Record<string, string>} [extra]
   */
  #subscribeUrl(path, extra = {}) {
    const params = new URLSearchParams();
    for (const topic of this.topics) params.append('topic', topic);
    params.set('cursor', this.cursor);
    for (const [key, value] of Object.entries(extra)) params.set(key, value);
    if (this.#token) params.set('token', this.#token);
    return `${this.url}${path}?${params}`;
  }

  /**
   * One HTTP GET that receives: counted, aborted with the attempt, errors as PushgateError.
   * @param {string} url
   * @param {AbortSignal} signal
   * @param {Record<string, string>} [headers]
   * @returns {Promise<{status: number, etag: string|null, body: any}>}
   */
  async #get(url, signal, headers = {}) {
    this.stats.requests += 1;
    let response;
    try {
      response = await fetch(url, { headers, signal, cache: 'no-store' });
    } catch (error) {
      throw new PushgateError('network', `request failed: ${error}`);
    }
    this.stats.bytes += headerBytes(response);
    if (response.status === 304) return { status: 304, etag: response.headers.get('etag'), body: null };
    const buffer = await response.arrayBuffer().catch((error) => {
      throw new PushgateError('network', `reading the answer failed: ${error}`);
    });
    this.stats.bytes += buffer.byteLength;
    const text = new TextDecoder().decode(buffer);
    if (!response.ok) throw errorFromText(response, text);
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new PushgateError('invalid_answer', `the answer is not JSON (HTTP ${response.status})`);
    }
    return { status: response.status, etag: response.headers.get('etag'), body };
  }

  /**
   * Applies one poll or long-poll answer: reset first, then the events, then the cursor.
   * @param {{events?: EventObject[], cursor?: string, reset?: ResetObject}} answer
   */
  #applyAnswer(answer) {
    if (answer.reset) this.#deliverReset(answer.reset);
    for (const event of answer.events ?? []) {
      this.#learnType(event.event);
      this.#deliver(event);
    }
    if (typeof answer.cursor === 'string') this.cursor = answer.cursor;
  }

  // ---- short poll and long poll -----------------------------------------------------------

  /**
   * @param {{generation: number, probing: boolean}} attempt
   * @param {boolean} long
   * @returns {() => void}
   */
  #runPoll({ generation }, long) {
    const abort = new AbortController();
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    let timer;
    /** @type {{cursor: string, etag: string}|undefined} */
    let lastTag;
    // A long-poll attempt starts with a zero wait: it shows at once that the gateway answers, and
    // pins `now` to a real position, so a reconnect before the first event misses nothing.
    let first = true;
    const live = () => generation === this.#generation && !abort.signal.aborted;
    const once = async () => {
      timer = undefined;
      /** @type {Record<string, string>} */
      const headers = {};
      if (!long && lastTag && lastTag.cursor === this.cursor) headers['If-None-Match'] = lastTag.etag;
      const url = long
        ? this.#subscribeUrl('/v1/longpoll', { timeout: first ? '0' : String(this.timeout) })
        : this.#subscribeUrl('/v1/poll');
      // A long poll that outlives its own timeout by 15 s is a dead connection.
      let timedOut = false;
      const deadline = long
        ? setTimeout(() => {
            timedOut = true;
            abort.abort();
          }, (this.timeout + 15) * 1000)
        : undefined;
      let answer;
      try {
        const requestCursor = this.cursor;
        answer = await this.#get(url, abort.signal, headers);
        if (!live()) return;
        if (answer.etag) lastTag = { cursor: requestCursor, etag: answer.etag };
      } catch (error) {
        if (live()) this.#failed(generation, asPushgateError(error));
        else if (timedOut) this.#failed(generation, new PushgateError('timeout', 'the long poll got no answer in time'));
        return;
      } finally {
        clearTimeout(deadline);
      }
      first = false;
      this.#working(generation);
      let again = long ? 0 : this.interval;
      if (answer.status !== 304) {
        this.#applyAnswer(answer.body);
        if (!live()) return;
        const events = answer.body.events ?? [];
        if (events.length >= FULL_ANSWER_EVENTS || JSON.stringify(events).length >= FULL_ANSWER_BYTES) again = 0;
      }
      timer = setTimeout(once, again);
    };
    once();
    return () => {
      clearTimeout(timer);
      abort.abort();
    };
  }

  // ---- Server-Sent Events -------------------------------------------------------------------

  /**
   * @param {{generation: number, probing: boolean}} attempt
   * @returns {() => void}
   */
  #runSse({ generation, probing }) {
    const abort = new AbortController();
    /** @type {EventSource|undefined} */
    let source;
    let opened = false;
    let received = false;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    let probeTimer;
    /** SSE frames are handled one after another: a gap repair may await a poll. */
    let chain = Promise.resolve();
    const live = () => generation === this.#generation && !abort.signal.aborted;
    const stop = () => {
      clearTimeout(probeTimer);
      abort.abort();
      source?.close();
      if (generation === this.#generation) this.#sseListen = undefined;
    };

    /** A failure before the stream opened: ask the poll endpoint why (EventSource hides the answer). */
    const diagnose = async () => {
      try {
        await this.#get(this.#subscribeUrl('/v1/poll', { limit: '1' }), abort.signal);
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
        this.stats.bytes += frameBytes;
        /** @type {EventObject} */
        let event;
        try {
          event = JSON.parse(message.data);
        } catch {
          this.dispatchEvent(new CustomEvent('error', { detail: { code: 'invalid_answer', message: 'an SSE frame is not JSON' } }));
          return;
        }
        const last = this.#lastByTopic.get(event.topic);
        if (last && event.seq > last.seq + 1) await this.#repairGap(event, last, abort.signal);
        if (!live()) return;
        this.#deliver(event);
        if (!received) {
          received = true;
          this.#working(generation);
        }
      });
    };

    /** @param {MessageEvent} message */
    const onReset = (message) => {
      const frameBytes = sseFrameBytes(message);
      chain = chain.then(() => {
        if (!live()) return;
        this.stats.bytes += frameBytes;
        try {
          this.#deliverReset(JSON.parse(message.data));
        } catch {
          return;
        }
        // The reset's id points just before the event that follows it: resuming there does not
        // report the same loss again.
        if (message.lastEventId) this.cursor = message.lastEventId;
        if (!received) {
          received = true;
          this.#working(generation);
        }
      });
    };

    /** @param {Event} event */
    const onError = (event) => {
      if (event instanceof MessageEvent) {
        // The server's own `event: error` frame; the stream ends after it.
        const frameBytes = sseFrameBytes(event);
        chain = chain.then(() => {
          if (!live()) return;
          this.stats.bytes += frameBytes;
          /** @type {ErrorObject} */
          let detail = { code: 'internal', message: String(event.data) };
          try {
            detail = JSON.parse(event.data);
          } catch {
            // keep the raw text
          }
          this.dispatchEvent(new CustomEvent('error', { detail }));
          source?.close();
          const terminal = !TRANSIENT_CODES.has(detail.code);
          this.#failed(generation, new PushgateError(detail.code, detail.message, terminal ? 400 : undefined));
        });
        return;
      }
      // A network failure or a non-stream answer. We resume ourselves, from our own cursor.
      source?.close();
      chain = chain.then(async () => {
        if (!live()) return;
        const error = opened ? new PushgateError('network', 'the event stream broke') : await diagnose();
        if (live()) this.#failed(generation, error);
      });
    };

    const open = () => {
      if (!live()) return;
      this.stats.requests += 1;
      source = new EventSource(this.#subscribeUrl('/v1/sse'));
      const stream = source;
      const listen = (/** @type {string} */ type) => stream.addEventListener(type, onEvent);
      for (const type of this.#sseTypes) listen(type);
      this.#sseListen = listen;
      source.addEventListener('reset', onReset);
      source.addEventListener('error', onError);
      source.addEventListener('open', () => {
        if (!live()) return;
        opened = true;
        this.stats.bytes += SSE_HEADER_BYTES + 'retry: 2000\n\n'.length;
        if (!probing) {
          this.#working(generation);
          return;
        }
        probeTimer = setTimeout(probe, PROBE_MS);
      });
    };

    /** No message within the window: was there anything to deliver? */
    const probe = async () => {
      if (!live() || received) return;
      const cursorBefore = this.cursor;
      let answer;
      try {
        answer = await this.#get(this.#subscribeUrl('/v1/poll', { limit: '1' }), abort.signal);
      } catch (error) {
        if (live()) this.#failed(generation, asPushgateError(error));
        return;
      }
      if (!live() || received) return;
      const pending = (answer.body.events ?? []).length > 0 || answer.body.reset !== undefined;
      if (!pending && answer.body.cursor === cursorBefore) {
        this.#working(generation);
        return;
      }
      probeTimer = setTimeout(() => {
        if (live() && !received) {
          this.#failed(generation, new PushgateError('stalled', 'the event stream delivers nothing (a buffering proxy?)'));
        }
      }, PROBE_GRACE_MS);
    };

    const begin = async () => {
      if (this.cursor === 'now') {
        // Pin `now` to a real position first, so a reconnect before the first event misses nothing.
        try {
          const answer = await this.#get(this.#subscribeUrl('/v1/poll', { limit: '1' }), abort.signal);
          if (!live()) return;
          if ((answer.body.events ?? []).length === 0 && !answer.body.reset && typeof answer.body.cursor === 'string') {
            this.cursor = answer.body.cursor;
          }
        } catch (error) {
          if (live()) this.#failed(generation, asPushgateError(error));
          return;
        }
      }
      open();
    };
    begin();
    return stop;
  }

  /**
   * SSE did not dispatch some events of `event.topic` (their type had no listener): fetch them
   * by a zero-wait poll of that topic from its last delivered id, deliver them, learn their types.
   * @param {EventObject} event the event that revealed the gap
   * @param {{seq: number, id: string}} last
   * @param {AbortSignal} signal
   */
  async #repairGap(event, last, signal) {
    let cursor = last.id;
    for (let round = 0; round < 10; round += 1) {
      const params = new URLSearchParams({ topic: event.topic, cursor });
      if (this.#token) params.set('token', this.#token);
      let answer;
      try {
        answer = await this.#get(`${this.url}/v1/poll?${params}`, signal);
      } catch (error) {
        this.dispatchEvent(new CustomEvent('error', { detail: asPushgateError(error).toJSON() }));
        return;
      }
      if (answer.body.reset) return;
      const events = /** @type {EventObject[]} */ (answer.body.events ?? []);
      for (const missed of events) {
        if (missed.seq >= event.seq) return;
        this.#learnType(missed.event);
        this.#deliver(missed);
      }
      if (events.length === 0 || answer.body.cursor === cursor) return;
      cursor = answer.body.cursor;
    }
  }

  // ---- WebSocket ----------------------------------------------------------------------------

  /**
   * @param {{generation: number, probing: boolean}} attempt
   * @returns {() => void}
   */
  #runWs({ generation, probing }) {
    let subscribed = false;
    let receivedEvent = false;
    let stopped = false;
    const live = () => generation === this.#generation && !stopped;
    this.stats.requests += 1;
    /** @type {WebSocket} */
    let socket;
    try {
      socket = new WebSocket(`${this.url.replace(/^http/, 'ws')}/v1/ws`);
    } catch (error) {
      // A URL the browser refuses (a bad `url` option): nothing to retry.
      queueMicrotask(() => this.#failed(generation, new PushgateError('invalid_url', String(error), 400)));
      return () => {};
    }
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    const probeTimer = probing
      ? setTimeout(() => {
          if (live() && !subscribed) this.#failed(generation, new PushgateError('stalled', 'no subscription acknowledgement within 3 s'));
        }, PROBE_MS)
      : undefined;

    const rejectPending = (/** @type {string} */ message) => {
      const pending = this.#pendingPublishes.splice(0);
      for (const { reject } of pending) reject(new PushgateError('connection_closed', message));
    };

    socket.addEventListener('open', () => {
      if (!live()) return;
      this.stats.bytes += WS_HANDSHAKE_BYTES;
      // Frames are handled in order: the subscription is checked against this token.
      if (this.#token) socket.send(JSON.stringify({ type: 'auth', token: this.#token }));
      socket.send(JSON.stringify({ type: 'subscribe', topics: this.topics, cursor: this.cursor }));
    });
    socket.addEventListener('message', (message) => {
      if (!live() || typeof message.data !== 'string') return;
      this.stats.bytes += utf8Length(message.data);
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      const { type, ...rest } = frame;
      if (type === 'event') {
        receivedEvent = true;
        this.#deliver(/** @type {EventObject} */ (rest));
        this.#working(generation);
      } else if (type === 'reset') {
        this.#deliverReset(/** @type {ResetObject} */ (rest));
        this.#working(generation);
      } else if (type === 'subscribed') {
        // Before any event this is where the subscription stands (`now` made concrete).
        if (!receivedEvent && typeof rest.cursor === 'string') this.cursor = rest.cursor;
        if (!subscribed) {
          subscribed = true;
          clearTimeout(probeTimer);
          this.#socket = socket;
          this.#working(generation);
        }
      } else if (type === 'authed') {
        this.#scheduleRenewal(rest.expires);
      } else if (type === 'published') {
        this.#pendingPublishes.shift()?.resolve(/** @type {Published} */ (rest));
      } else if (type === 'error') {
        const error = /** @type {ErrorObject} */ (rest.error ?? { code: 'internal', message: 'unknown error' });
        if (rest.request === 'publish') {
          this.#pendingPublishes.shift()?.reject(new PushgateError(error.code, error.message));
        }
        this.dispatchEvent(new CustomEvent('error', { detail: error }));
        if ((rest.request === 'subscribe' || rest.request === 'auth') && !subscribed) {
          // Our one subscription, or the token it needs, was refused: retrying cannot help
          // (an expired token is renewed instead, when it can be).
          const status = error.code === 'token_expired' ? undefined : 400;
          this.#failed(generation, new PushgateError(error.code, error.message, status));
        }
      }
    });
    socket.addEventListener('close', (close) => {
      clearTimeout(probeTimer);
      if (this.#socket === socket) this.#socket = undefined;
      rejectPending(`the WebSocket closed (${close.code})`);
      if (!live()) return;
      // 4408: no token in time — the same connection would be closed again.
      const status = close.code === 4408 ? 401 : undefined;
      /** @type {Record<number, string>} */
      const codes = { 4008: 'slow_consumer', 1009: 'too_large', 4401: 'token_expired', 4408: 'auth_timeout' };
      const code = codes[close.code] ?? 'network';
      this.#failed(generation, new PushgateError(code, `the WebSocket closed (${close.code}${close.reason ? `: ${close.reason}` : ''})`, status));
    });

    return () => {
      stopped = true;
      clearTimeout(probeTimer);
      clearTimeout(this.#renewTimer);
      this.#renewTimer = undefined;
      if (this.#socket === socket) this.#socket = undefined;
      rejectPending('the connection moved on');
      if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN) socket.close(1000);
    };
  }
}

// ---- helpers --------------------------------------------------------------------------------

/** @param {string|undefined} url */
function baseUrl(url) {
  const base = url ?? (typeof location !== 'undefined' ? location.origin : '');
  return base.replace(/\/+$/, '');
}

/** @param {unknown} error */
function asPushgateError(error) {
  return error instanceof PushgateError ? error : new PushgateError('network', String(error));
}

/** @param {Response} response */
async function errorFrom(response) {
  const text = await response.text().catch(() => '');
  return errorFromText(response, text);
}

/**
 * @param {Response} response
 * @param {string} text
 */
function errorFromText(response, text) {
  try {
    const { error } = JSON.parse(text);
    if (error && typeof error.code === 'string') return new PushgateError(error.code, String(error.message), response.status);
  } catch {
    // not the JSON error body: fall through
  }
  return new PushgateError(`http_${response.status}`, `HTTP ${response.status}`, response.status);
}

/**
 * Estimated bytes of a response's status line and headers.
 * @param {Response} response
 */
function headerBytes(response) {
  let bytes = `HTTP/1.1 ${response.status} ${response.statusText}\r\n\r\n`.length;
  response.headers.forEach((value, name) => {
    bytes += name.length + value.length + 4;
  });
  return bytes;
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

/**
 * UTF-8 length of a string without encoding it.
 * @param {string} text
 */
function utf8Length(text) {
  let bytes = 0;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code < 0xdc00) {
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}
