// @ts-check
/**
 * The connection core: one subscription to a set of topics over one transport at a time, with
 * the lifecycle every transport shares (reconnection with backoff, `auto`'s choice, auth renewal,
 * delivery). The transports (poll.js, sse.js, ws.js) each run one attempt through an
 * {@link Attempt}; shared.js shares one connection among tabs.
 *
 * Reconnection: after a failure the connection waits a random time between 0 and
 * min(30 s, 0.5 s × 2^attempt) (full-jitter exponential backoff; the attempt count starts over
 * after a successful message), then resumes from `cursor`, the id of the last event delivered. It
 * retries at once when the browser comes back `online` or the page becomes visible. If history was
 * lost meanwhile (expired, or the server restarted), the server's reset object is dispatched as a
 * `reset` event before the events that follow.
 *
 * `auto` decides on data, not on a socket opening: WebSocket counts once the server acknowledges
 * the subscription (`subscribed`), within 3 s. Otherwise Server-Sent Events: they count on the
 * first message (event or reset), or, when none comes within 3 s of the stream opening, when a
 * zero-wait poll from the same cursor shows there was nothing to deliver (a buffering proxy holds
 * events back; it cannot hold back events that do not exist). If the poll shows events the stream
 * has not delivered within 2 s more, SSE is given up. Long polling is the last resort and counts
 * on its first answer. A transport chosen by `auto` that fails 3 times in a row is chosen again
 * from the start. Transports the runtime lacks (no `WebSocket` or `EventSource` global, as in
 * Node.js 20) are skipped by `auto`, and asking for one is a terminal `unsupported_transport`.
 *
 * Auth: with a `token` the client sends it as the `token` query parameter on every poll, long poll
 * and SSE stream, as `Authorization: Bearer` when publishing over HTTP, and as an `auth` frame
 * first thing on a WebSocket. `setToken()` replaces it: at once on an open WebSocket (an in-band
 * refresh, answered `authed`), from the next request on the others. When the server says the token
 * expired (`token_expired`: an HTTP 401, an SSE `event: error`, WebSocket close 4401), the client
 * asks `refreshToken()` for a fresh one and reconnects from its cursor at once; without
 * `refreshToken` it reconnects only if `setToken()` gave a new token meanwhile, and otherwise
 * closes with that error. On a WebSocket with `refreshToken`, the token is also renewed in-band
 * 30 s before it expires, so the connection never drops for it. A token revoked by the
 * application's server (`token_revoked`: HTTP 401, SSE `event: error`, WebSocket close 4411) is
 * treated the same way: renewed when it can be, else the connection closes.
 *
 * What ends a connection for good: `close()`; a 4xx answer other than 408/429 (on SSE, learnt
 * from a zero-wait poll with the same parameters, since `EventSource` hides the answer), such as
 * `invalid_topic`, `token_required`, `invalid_token` or `topic_forbidden`; a WebSocket `error`
 * frame refusing the subscription itself or the token; a WebSocket close with 4408 (no token in
 * time); being disconnected on purpose by the application's server (`disconnected`: HTTP 410 to
 * a long poll, SSE `event: error`, WebSocket close 4410), which the client must not undo by
 * reconnecting; an expired or revoked token that cannot be renewed; an SSE `event: error` whose code is not
 * `slow_consumer`, `shutting_down`, `overloaded` or `internal`. Everything else reconnects:
 * network failures, 5xx, 408, 429, WebSocket closes 1001, 1006, 1011, 1012, 4008 (slow consumer)
 * and 1009 (after a publish over the size limit; that publish is rejected). Protocol errors the
 * connection survives (a refused publish frame) are dispatched as `error` events.
 *
 * `stats` counts what this connection received: `requests` are the HTTP requests it made to
 * receive (each poll and long poll, each SSE stream and WebSocket handshake, and the zero-wait
 * polls SSE uses); `bytes` are response bodies plus an estimate of the status line and headers
 * (the headers the browser exposes, `name: value` CRLF each; chunked framing, compression and TLS
 * are not counted). For SSE the browser exposes no bytes: each frame is counted as its `id:`,
 * `event:` and `data:` lines, plus 140 bytes of headers and the `retry:` line per stream
 * (heartbeat comments are invisible to the page and not counted). For WebSocket, `bytes` are the
 * payload lengths of the text frames received, plus 130 bytes per handshake. `messages` are the
 * events and resets delivered. Publishing is not counted.
 * @module connection
 */

import { backoffDelay } from './backoff.js';
import { PushgateError } from './errors.js';
import { baseUrl, getJson, publish, subscribeUrl } from './http.js';
import { runLongPoll, runPoll } from './poll.js';
import { runSse } from './sse.js';
import { runWs } from './ws.js';
import { TabShare, canShare } from './shared.js';

/** @typedef {import('./types.js').EventObject} EventObject */
/** @typedef {import('./types.js').ResetObject} ResetObject */
/** @typedef {import('./types.js').PresenceNotice} PresenceNotice */
/** @typedef {import('./types.js').Transport} Transport */
/** @typedef {import('./types.js').TransportChoice} TransportChoice */
/** @typedef {import('./types.js').Status} Status */
/** @typedef {import('./types.js').Role} Role */
/** @typedef {import('./types.js').Options} Options */
/** @typedef {import('./types.js').Stats} Stats */
/** @typedef {import('./types.js').ErrorObject} ErrorObject */
/** @typedef {import('./types.js').StatusDetail} StatusDetail */
/** @typedef {import('./types.js').Published} Published */
/** @typedef {import('./types.js').PollAnswer} PollAnswer */
/** @typedef {import('./types.js').ConnectionEventMap} ConnectionEventMap */
/** @typedef {import('./http.js').Answer} Answer */

/**
 * What a WebSocket attempt offers once subscribed: publishing and re-authenticating in-band.
 * @typedef {object} Sender
 * @property {() => boolean} ready whether the socket is open (a closing one publishes over HTTP)
 * @property {(topic: string, event: string|null|undefined, data: any) => Promise<Published>} publish
 * @property {(token: string) => void} auth
 */

/**
 * One attempt to connect, as a transport sees it: the connection's state it reads and the
 * callbacks it reports through. Callbacks of an attempt that is over do nothing.
 * @typedef {object} Attempt
 * @property {string} url the gateway's base URL
 * @property {readonly string[]} topics
 * @property {boolean} probing `auto` is still choosing: prove delivery within the probe window
 * @property {number} interval short-poll interval, ms
 * @property {number} timeout long-poll wait, s
 * @property {Stats} stats the connection's counters
 * @property {() => boolean} live whether this attempt is still the connection's current one
 * @property {() => string} cursor where the connection resumes from
 * @property {(cursor: string) => void} setCursor
 * @property {() => string|undefined} token
 * @property {() => void} working data arrived: the attempt works
 * @property {(error: PushgateError) => void} failed the attempt is over
 * @property {(event: EventObject) => void} deliver
 * @property {(reset: ResetObject) => void} deliverReset
 * @property {(notice: PresenceNotice) => void} deliverPresence a join or leave notice
 * @property {boolean} presence whether notices were asked for
 * @property {(answer: PollAnswer) => void} applyAnswer a poll answer: reset, events, cursor
 * @property {(detail: ErrorObject) => void} reportError an `error` event the connection survives
 * @property {(path: string, extra?: Record<string, string>) => string} subscribeUrl
 * @property {(url: string, signal: AbortSignal, headers?: Record<string, string>) => Promise<Answer>} get
 * @property {(topic: string) => ({seq: number, id: string}|undefined)} lastOf the last event delivered of `topic`
 * @property {ReadonlySet<string>} eventTypes the event types known so far (SSE listens to them)
 * @property {(listen: ((type: string) => void)|undefined) => void} onNewType told each newly learnt type
 * @property {(sender: Sender|undefined) => void} attach the open WebSocket, for publish and auth
 * @property {(expires: number|null|undefined) => void} renewAt schedule a token renewal before `expires` (Unix s)
 */

/** @typedef {(attempt: Attempt) => () => void} RunTransport runs one attempt; returns what stops it */

const TRANSPORTS = ['poll', 'longpoll', 'sse', 'ws', 'auto'];
/** @type {readonly Transport[]} */
const AUTO_ORDER = ['ws', 'sse', 'longpoll'];

/** @type {Record<Transport, RunTransport>} */
const RUN = { poll: runPoll, longpoll: runLongPoll, sse: runSse, ws: runWs };

/**
 * Whether this runtime has what `transport` needs.
 * @param {Transport} transport
 */
function available(transport) {
  if (transport === 'ws') return typeof WebSocket === 'function';
  if (transport === 'sse') return typeof EventSource === 'function';
  return typeof fetch === 'function';
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
 * One subscription to a set of topics over one transport at a time.
 *
 * Events (all `CustomEvent`s): `event` (detail: {@link EventObject}), `reset` (detail:
 * {@link ResetObject}), `status` (detail: {@link StatusDetail}), `error` (detail:
 * {@link ErrorObject}: a protocol error the connection survives or that ended it), `cursor`
 * (detail: the new `cursor`, a string: save it to resume from there after a reload).
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
  /** @type {Role|undefined} with `shared`: whether this tab holds the connection or follows it */
  role;
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
  /** @type {readonly Transport[]} `auto`'s candidates this runtime has */
  #autoOrder = AUTO_ORDER.filter(available);
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  #retryTimer;
  /** @type {(() => void)|undefined} stops the current attempt */
  #stopAttempt;
  /** @type {Sender|undefined} the open, subscribed WebSocket */
  #sender;
  /** Per topic, the last event delivered: to notice events SSE did not dispatch. */
  /** @type {Map<string, {seq: number, id: string}>} */
  #lastByTopic = new Map();
  /** Event types to listen for on SSE. */
  /** @type {Set<string>} */
  #eventTypes;
  /** Whether join and leave notices were asked for. */
  #presence = false;
  /** Names this connection's polls, so the server counts it in presence between them. */
  #clientId = `c${Math.random().toString(36).slice(2, 12)}`;
  /** @type {((type: string) => void)|undefined} tells the running attempt of a new type */
  #onNewType;
  #onWake = () => this.#wake();
  /** @type {string|undefined} the access token; never logged */
  #token;
  /** @type {string|undefined} the token the current attempt started with */
  #attemptToken;
  /** @type {(() => (string|Promise<string>))|undefined} */
  #refreshToken;
  /** @type {ReturnType<typeof setTimeout>|undefined} renews the WebSocket's token before it expires */
  #renewTimer;
  /** @type {TabShare|undefined} with `shared`: the tabs' common connection */
  #share;

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
    this.transport = requested === 'auto' ? this.#autoOrder[0] ?? 'longpoll' : requested;
    this.cursor = options.cursor ?? 'now';
    this.interval = options.interval ?? 1000;
    this.timeout = options.timeout ?? 25;
    this.#eventTypes = new Set(['message', ...(options.events ?? [])]);
    this.#presence = options.presence === true;
    this.#token = options.token || undefined;
    this.#refreshToken = options.refreshToken;
    if (options.shared && canShare()) {
      this.#share = new TabShare(
        { ...options, url: this.url, topics: this.topics, cursor: this.cursor, transport: requested },
        {
          stats: this.stats,
          token: () => this.#token,
          setCursor: (cursor) => this.#setCursor(cursor),
          deliver: (event) => this.#deliver(event),
          deliverReset: (reset) => this.#deliverReset(reset),
          reportError: (detail) => this.dispatchEvent(new CustomEvent('error', { detail })),
          setRole: (role) => {
            this.role = role;
            this.#emitStatus();
          },
          setStatus: (status, transport, error) => {
            if (status === this.status && transport === this.transport && !error) return;
            this.status = status;
            this.transport = transport;
            this.#emitStatus(error);
          },
          finish: (error) => this.#finish(error),
          upstream: (upstreamOptions) => new Connection(upstreamOptions),
        },
      );
      queueMicrotask(() => {
        if (this.status === 'closed') return;
        this.#emitStatus();
        this.#share?.start();
      });
      return;
    }
    if (typeof window !== 'undefined') window.addEventListener('online', this.#onWake);
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', this.#onWake);
    queueMicrotask(() => {
      if (this.status === 'closed') return;
      this.#emitStatus();
      this.#start();
    });
  }

  /**
   * Adds a listener; for the connection's own events its argument is typed (`event.detail`).
   * @template {keyof ConnectionEventMap} K
   * @overload
   * @param {K} type
   * @param {(event: ConnectionEventMap[K]) => void} listener
   * @param {boolean|AddEventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @overload
   * @param {string} type
   * @param {EventListenerOrEventListenerObject|null} listener
   * @param {boolean|AddEventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @override
   * @param {string} type
   * @param {any} listener
   * @param {boolean|AddEventListenerOptions} [options]
   */
  addEventListener(type, listener, options) {
    super.addEventListener(type, listener, options);
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
    if (this.#share) return this.#share.publish(topic, event, data);
    if (this.#sender?.ready()) return this.#sender.publish(topic, event, data);
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
    if (this.#share) this.#share.setToken(this.#token);
    else if (this.#token) this.#sender?.auth(this.#token);
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
    const transport = this.requested !== 'auto' ? this.requested : this.#locked ?? this.#autoOrder[this.#autoIndex];
    if (transport === undefined || !available(transport)) {
      const missing = transport ?? this.requested;
      queueMicrotask(() => this.#failed(generation, new PushgateError('unsupported_transport', `this runtime cannot use ${missing}`, 400)));
      return;
    }
    if (transport !== this.transport) {
      this.transport = transport;
      this.#emitStatus();
    }
    const live = () => generation === this.#generation;
    /** @type {Attempt} */
    const attempt = {
      url: this.url,
      topics: this.topics,
      probing: this.requested === 'auto' && this.#locked === undefined,
      interval: this.interval,
      timeout: this.timeout,
      stats: this.stats,
      live,
      cursor: () => this.cursor,
      setCursor: (cursor) => live() && this.#setCursor(cursor),
      token: () => this.#token,
      working: () => this.#working(generation),
      failed: (error) => this.#failed(generation, error),
      deliver: (event) => live() && this.#deliver(event),
      deliverReset: (reset) => live() && this.#deliverReset(reset),
      applyAnswer: (answer) => {
        if (!live()) return;
        if (answer.reset) this.#deliverReset(answer.reset);
        for (const event of answer.events ?? []) {
          this.#learnType(event.event);
          this.#deliver(event);
        }
        for (const notice of answer.presence ?? []) this.dispatchEvent(new CustomEvent('presence', { detail: notice }));
        if (typeof answer.cursor === 'string') this.#setCursor(answer.cursor);
      },
      reportError: (detail) => live() && this.dispatchEvent(new CustomEvent('error', { detail })),
      deliverPresence: (notice) => live() && this.dispatchEvent(new CustomEvent('presence', { detail: notice })),
      presence: this.#presence,
      subscribeUrl: (path, extra) => subscribeUrl(this.url, path, { topics: this.topics, cursor: this.cursor, token: this.#token, extra: this.#presenceParams(path, extra) }),
      get: (url, signal, headers) => getJson(url, { signal, headers, stats: this.stats }),
      lastOf: (topic) => this.#lastByTopic.get(topic),
      eventTypes: this.#eventTypes,
      onNewType: (listen) => {
        if (live()) this.#onNewType = listen;
      },
      attach: (sender) => {
        if (live() || sender === undefined) this.#sender = sender;
      },
      renewAt: (expires) => live() && this.#scheduleRenewal(expires),
    };
    this.#stopAttempt = RUN[transport](attempt);
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

  /** Ends the current attempt; what it still reports from here on is stale. */
  #stopCurrent() {
    this.#generation += 1;
    this.#stopAttempt?.();
    this.#stopAttempt = undefined;
    this.#sender = undefined;
    this.#onNewType = undefined;
    clearTimeout(this.#renewTimer);
    this.#renewTimer = undefined;
  }

  /**
   * The current attempt failed: retry after a backoff, move on to the next `auto` candidate, or
   * stop for good on a terminal error.
   * @param {number} generation
   * @param {PushgateError} error
   */
  #failed(generation, error) {
    if (generation !== this.#generation || this.status === 'closed') return;
    this.#stopCurrent();
    const renewable = error.code === 'token_expired' || error.code === 'token_revoked';
    if (renewable && (this.#refreshToken || this.#token !== this.#attemptToken)) {
      this.#renewAndRestart(error);
      return;
    }
    if (error.terminal) {
      this.#finish(error.toJSON());
      return;
    }
    if (this.requested === 'auto') {
      if (this.#locked === undefined) {
        if (this.#autoIndex < this.#autoOrder.length - 1) {
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
    this.#retryAfter(backoffDelay(this.#attempt));
    this.#attempt += 1;
  }

  /** @param {number} delay ms */
  #retryAfter(delay) {
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
    this.#retryAfter(this.#attempt === 0 ? 0 : backoffDelay(this.#attempt));
    this.#attempt += 1;
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
    this.#stopCurrent();
    this.#share?.close();
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

  /** @param {string} cursor */
  #setCursor(cursor) {
    if (cursor === this.cursor) return;
    this.cursor = cursor;
    this.dispatchEvent(new CustomEvent('cursor', { detail: cursor }));
  }

  /** @param {EventObject} event */
  #deliver(event) {
    this.#lastByTopic.set(event.topic, { seq: event.seq, id: event.id });
    this.stats.messages += 1;
    const moved = event.id !== this.cursor;
    // Set first: a listener reading `cursor` sees the event's own id.
    this.cursor = event.id;
    this.dispatchEvent(new CustomEvent('event', { detail: event }));
    if (moved) this.dispatchEvent(new CustomEvent('cursor', { detail: event.id }));
  }

  /** @param {ResetObject} reset */
  #deliverReset(reset) {
    for (const entry of reset.topics ?? []) this.#lastByTopic.delete(entry.topic);
    this.stats.messages += 1;
    this.dispatchEvent(new CustomEvent('reset', { detail: reset }));
  }

  /**
   * `extra` with what presence needs: `presence=1` when notices were asked for, and on polls the
   * connection's `client` id and `interval`, so the server counts it between requests.
   * @param {string} path
   * @param {Record<string, string>} [extra]
   * @returns {Record<string, string>}
   */
  #presenceParams(path, extra = {}) {
    const params = { ...extra };
    if (this.#presence) params.presence = '1';
    if (path === '/v1/poll' || path === '/v1/longpoll') {
      params.client = this.#clientId;
      params.interval = String(Math.max(1, Math.ceil(this.interval / 1000)));
    }
    return params;
  }

  /** @param {string} type */
  #learnType(type) {
    if (this.#eventTypes.has(type)) return;
    this.#eventTypes.add(type);
    this.#onNewType?.(type);
  }
}
