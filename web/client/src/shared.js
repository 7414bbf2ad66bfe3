// @ts-check
/**
 * One connection per browser: the tabs of one origin that connect with `shared` to the same
 * gateway URL and transport (and the same name, when `shared` is a string) share one connection,
 * held by one of them, the leader.
 *
 * How:
 * - Leader election is a Web Lock (`navigator.locks`): every tab asks for the same lock, one
 *   holds it, the others queue. When the leader's tab closes (or crashes, or calls `close()`),
 *   the browser gives the lock to the next tab, which takes over.
 * - The leader opens an ordinary connection (the upstream) for the union of every tab's topics
 *   and posts what it receives on a BroadcastChannel: events, resets, its cursor, its status.
 *   Every tab, the leader included, handles those messages the same way: it keeps the events of
 *   its own topics, drops any it has seen already (by `seq`, per topic), and dispatches them in
 *   the order received, which is the upstream's order.
 * - Each tab also holds a lock of its own for its lifetime; the leader asks for it, and is given
 *   it when the tab is gone, so the leader learns of a closed tab even when it said nothing.
 * - A tab joining starts by polling its own topics from its own cursor (`GET /v1/poll`, no wait):
 *   that checks its topics and token with the gateway (a refusal closes this tab's connection,
 *   not the others'), and pins `now` to a position. It then says `hello` with its topics; the
 *   leader widens the upstream to the union (a WebSocket reconnects, the HTTP transports restart
 *   from the upstream's cursor, so the topics already followed lose nothing) and answers with the
 *   union. Meanwhile the tab keeps what the channel brings. Once the union holds its topics it
 *   polls its topics again until nothing is new, then replays what it kept, dropping what the
 *   polls already delivered: nothing between its cursor and the shared stream is lost, nothing is
 *   seen twice.
 * - A new leader resumes from the newest cursor the channel brought (every tab sees every
 *   message, so all tabs know it), with the union it last heard of; the other tabs say `hello`
 *   again, and topics no tab follows any more are dropped after a second. Events the old leader
 *   had posted that this one delivers again are dropped by each tab as seen.
 *
 * Why not a SharedWorker: Android Chrome has none, and Safari's is recent, while Web Locks and
 * BroadcastChannel are in every current browser; a worker would also need a script URL of its
 * own next to the module. The price: the leader is a page, so its timers are throttled when it is
 * hidden (the client does not wait on timers between long polls, and SSE and WebSocket deliver
 * without them), and the hand-over reconnects. Web Locks need a secure context (HTTPS, or
 * `localhost`/`127.0.0.1`): elsewhere, and where either API is missing, `shared` is ignored and
 * each tab has its own connection.
 * @module shared
 */

import { backoffDelay } from './backoff.js';
import { asPushgateError } from './errors.js';
import { getJson, publish, subscribeUrl } from './http.js';

/** @typedef {import('./types.js').EventObject} EventObject */
/** @typedef {import('./types.js').ResetObject} ResetObject */
/** @typedef {import('./types.js').Options} Options */
/** @typedef {import('./types.js').Stats} Stats */
/** @typedef {import('./types.js').Status} Status */
/** @typedef {import('./types.js').Role} Role */
/** @typedef {import('./types.js').Transport} Transport */
/** @typedef {import('./types.js').TransportChoice} TransportChoice */
/** @typedef {import('./types.js').ErrorObject} ErrorObject */
/** @typedef {import('./types.js').Published} Published */
/** @typedef {import('./types.js').PollAnswer} PollAnswer */
/** @typedef {import('./connection.js').Connection} Connection */

/**
 * What the tab's own connection lets the share do.
 * @typedef {object} ShareHost
 * @property {Stats} stats the tab's counters
 * @property {() => string|undefined} token the tab's token
 * @property {(cursor: string) => void} setCursor
 * @property {(event: EventObject) => void} deliver
 * @property {(reset: ResetObject) => void} deliverReset
 * @property {(detail: ErrorObject) => void} reportError
 * @property {(role: Role) => void} setRole
 * @property {(status: Status, transport: Transport, error?: ErrorObject) => void} setStatus
 * @property {(error: ErrorObject|undefined) => void} finish closes the tab's connection
 * @property {(options: Options) => Connection} upstream opens an ordinary connection
 */

/**
 * The options a share starts from: those of `connect()`, with the defaults applied.
 * @typedef {Options & {url: string, cursor: string, transport: TransportChoice}} ShareOptions
 */

/**
 * A message on the channel; every one carries `v` (the channel's version) and `type`.
 * @typedef {{v: number, type: 'hello', tab: string, topics: string[], events: string[]}
 *   | {v: number, type: 'bye', tab: string}
 *   | {v: number, type: 'leader', tab: string}
 *   | {v: number, type: 'topics', topics: string[], status: Status, transport: Transport}
 *   | {v: number, type: 'event', event: EventObject}
 *   | {v: number, type: 'reset', reset: ResetObject}
 *   | {v: number, type: 'cursor', cursor: string}
 *   | {v: number, type: 'status', status: Status, transport: Transport, error?: ErrorObject}} Message
 */

const VERSION = 1;
/** Stream messages a joining tab keeps at most; past that it drops them and polls once more. */
const MAX_KEPT = 10_000;
/** Hello messages within this window widen the upstream once. */
const WIDEN_DELAY_MS = 20;
/** After a hand-over, tabs that have not said hello within this long are taken as gone. */
const SETTLE_MS = 1000;
/** How often a leader copies its upstream's counters into the tab's. */
const STATS_EVERY_MS = 500;

/** Whether this browser can share a connection among tabs. */
export function canShare() {
  return (
    typeof BroadcastChannel === 'function' &&
    typeof navigator !== 'undefined' &&
    typeof navigator.locks?.request === 'function'
  );
}

/**
 * Whether cursor `a` is at or before cursor `b`: `undefined` unless both have today's form
 * (`<epoch>-<position>`, hex) with the same epoch. Only used to drop what the shared stream
 * brings from before a tab's own start; when it cannot tell, nothing is dropped.
 * @param {string} a
 * @param {string} b
 * @returns {boolean|undefined}
 */
function notAfter(a, b) {
  const form = /^([0-9a-f]{1,16})-([0-9a-f]{1,16})$/;
  const left = form.exec(a);
  const right = form.exec(b);
  if (!left || !right || left[1] !== right[1]) return undefined;
  return BigInt(`0x${left[2]}`) <= BigInt(`0x${right[2]}`);
}

/** @param {Set<string>} small @param {Set<string>} big */
function subset(small, big) {
  for (const item of small) if (!big.has(item)) return false;
  return true;
}

/** One tab's part in a shared connection. */
export class TabShare {
  /** @type {'starting'|'joining'|'live'|'closed'} */
  #phase = 'starting';
  /** @type {Role|undefined} */
  #role;
  #options;
  #host;
  #id = typeof crypto !== 'undefined' && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
  #name;
  /** @type {Set<string>} */
  #own;
  /** @type {Set<string>} event types this tab wants SSE to listen for */
  #events;
  /** @type {BroadcastChannel|undefined} */
  #channel;
  /** Stops polls and pending lock requests when the tab's connection closes. */
  #abort = new AbortController();
  /** @type {() => void} releases the tab's own lock */
  #release = () => {};
  /** @type {Promise<void>} settles when the tab's connection closes */
  #closed = new Promise((resolve) => {
    this.#release = resolve;
  });

  /** Where this tab's own topics resume from (its last own event, or its last poll). */
  #cursor;
  /** @type {string|undefined} this tab's start: the shared stream's events at or before it are not its own */
  #start;
  /** The newest position of the shared stream this tab heard of. */
  #streamCursor = 'now';
  /** @type {Set<string>} the upstream's topics, as the leader last said */
  #union;
  /** @type {{status: Status, transport: Transport, error?: ErrorObject}} the upstream's status, as last heard */
  #leaderStatus;
  /** @type {Message[]} stream messages kept while joining */
  #kept = [];
  #keptOverflow = false;
  /** @type {(() => void)|undefined} resolves the wait for the union to hold this tab's topics */
  #joined;
  /** @type {Map<string, number>} per own topic, the seq of the last event dispatched */
  #lastSeq = new Map();

  // The leader's state.
  /** @type {Connection|undefined} */
  #upstream;
  /** @type {{requests: number, bytes: number}} the upstream's counters already added to the tab's */
  #counted = { requests: 0, bytes: 0 };
  /** @type {Map<string, {topics: string[], events: string[]}>} the other tabs, by id */
  #tabs = new Map();
  /** @type {AbortController|undefined} ends what leading started */
  #leading;
  /** @type {(() => void)|undefined} gives the leader lock back */
  #resign;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  #widenTimer;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  #settleTimer;
  /** @type {ReturnType<typeof setInterval>|undefined} */
  #statsTimer;

  /**
   * @param {ShareOptions} options
   * @param {ShareHost} host
   */
  constructor(options, host) {
    this.#options = options;
    this.#host = host;
    const group = typeof options.shared === 'string' ? options.shared : '';
    this.#name = `pushgate|${options.url}|${options.transport}|${group}`;
    this.#own = new Set(options.topics);
    this.#events = new Set(options.events ?? []);
    this.#cursor = options.cursor;
    this.#union = new Set(this.#own);
    this.#leaderStatus = { status: 'connecting', transport: options.transport === 'auto' ? 'ws' : options.transport };
  }

  /** Whether the tab's connection closed (a method: the phase changes across awaits). */
  #ended() {
    return this.#phase === 'closed';
  }

  /** Joins the other tabs; the tab's connection calls it once, right after it is made. */
  async start() {
    this.#channel = new BroadcastChannel(this.#name);
    this.#channel.onmessage = (message) => this.#onMessage(message.data);
    // This tab's own lock, held until it closes: the leader learns from it when the tab is gone.
    const held = await new Promise((granted) => {
      navigator.locks
        .request(`${this.#name}|tab|${this.#id}`, { signal: this.#abort.signal }, () => {
          granted(true);
          return this.#closed;
        })
        .catch(() => granted(false));
    });
    if (!held || this.#ended()) return;
    this.#phase = 'joining';
    // The first poll checks the topics, the token and the cursor, and pins `now`.
    if (!(await this.#pollOwn())) return;
    if (this.#cursor !== 'oldest') this.#start = this.#cursor;
    // A follower until the leader lock says otherwise.
    this.#role = 'follower';
    this.#host.setRole('follower');
    this.#join();
    navigator.locks
      .request(`${this.#name}|leader`, { signal: this.#abort.signal }, () => this.#lead())
      .catch(() => {});
  }

  /**
   * Publishes over the leader's upstream in the leader's tab (over its WebSocket when that is the
   * transport), over HTTP with this tab's token elsewhere.
   * @param {string} topic
   * @param {string|null|undefined} event
   * @param {any} data
   * @returns {Promise<Published>}
   */
  publish(topic, event, data) {
    if (this.#upstream) return this.#upstream.publish(topic, event, data);
    return publish(topic, event, data, { url: this.#options.url, token: this.#host.token() });
  }

  /** @param {string|undefined} token the tab's new token (its connection keeps it) */
  setToken(token) {
    if (this.#upstream && token) this.#upstream.setToken(token);
  }

  /** Leaves: says `bye`, gives the locks back (a leader's to the next tab), closes the channel. */
  close() {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    this.#post({ v: VERSION, type: 'bye', tab: this.#id });
    this.#stopLeading();
    this.#abort.abort();
    this.#release();
    this.#channel?.close();
    this.#channel = undefined;
  }

  // ---- joining ---------------------------------------------------------------------------

  /** Asks for this tab's topics in the union, waits until they are, then catches up and goes live. */
  async #join() {
    this.#phase = 'joining';
    this.#kept = [];
    this.#keptOverflow = false;
    const joined = new Promise((resolve) => {
      this.#joined = () => resolve(undefined);
    });
    if (subset(this.#own, this.#union) && this.#role === 'leader') this.#joined?.();
    this.#hello();
    await joined;
    if (this.#ended()) return;
    // The union holds this tab's topics from some position on; poll up to now, then replay.
    for (;;) {
      if (!(await this.#pollOwn({ untilIdle: true }))) return;
      if (!this.#keptOverflow) break;
      this.#keptOverflow = false;
    }
    this.#phase = 'live';
    for (const message of this.#kept.splice(0)) this.#apply(message);
    this.#showStatus();
  }

  #hello() {
    /** @type {Message} */
    const hello = { v: VERSION, type: 'hello', tab: this.#id, topics: [...this.#own], events: [...this.#events] };
    this.#post(hello);
    if (this.#role === 'leader') this.#onHello(hello);
  }

  /**
   * Polls this tab's topics from its cursor, once or until nothing is new, delivering what comes;
   * retries transient failures with backoff. `false` when the tab's connection ended meanwhile
   * (a refusal ends it).
   * @param {{untilIdle?: boolean}} [options]
   * @returns {Promise<boolean>}
   */
  async #pollOwn({ untilIdle = false } = {}) {
    for (let failures = 0; ; ) {
      if (this.#ended()) return false;
      /** @type {PollAnswer} */
      let answer;
      try {
        const url = subscribeUrl(this.#options.url, '/v1/poll', { topics: [...this.#own], cursor: this.#cursor, token: this.#host.token() });
        answer = (await getJson(url, { signal: this.#abort.signal, stats: this.#host.stats })).body;
      } catch (failure) {
        if (this.#ended()) return false;
        const error = asPushgateError(failure);
        if (error.terminal) {
          this.#host.finish(error.toJSON());
          return false;
        }
        this.#host.setStatus('reconnecting', this.#leaderStatus.transport, error.toJSON());
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(failures)));
        failures += 1;
        continue;
      }
      if (this.#ended()) return false;
      failures = 0;
      if (answer.reset) this.#deliverReset(answer.reset);
      for (const event of answer.events ?? []) this.#deliverOwn(event);
      if (typeof answer.cursor === 'string') {
        this.#cursor = answer.cursor;
        this.#host.setCursor(answer.cursor);
      }
      const idle = (answer.events ?? []).length === 0 && !answer.reset;
      if (!untilIdle || idle) return true;
    }
  }

  // ---- the channel -----------------------------------------------------------------------

  /** @param {Message} message */
  #post(message) {
    try {
      this.#channel?.postMessage(message);
    } catch {
      // A closed channel: this tab is leaving.
    }
  }

  /** @param {unknown} data */
  #onMessage(data) {
    if (this.#ended() || !data || typeof data !== 'object') return;
    const message = /** @type {Message} */ (data);
    if (message.v !== VERSION) return;
    switch (message.type) {
      case 'hello':
        if (this.#role === 'leader') this.#onHello(message);
        break;
      case 'bye':
        if (this.#role === 'leader') this.#tabGone(message.tab);
        break;
      case 'leader':
        // A new leader does not know who follows: tell it.
        if (message.tab !== this.#id && this.#phase !== 'starting') this.#hello();
        break;
      case 'topics':
        this.#onTopics(message.topics, { status: message.status, transport: message.transport });
        break;
      default:
        this.#onStream(message);
    }
  }

  /**
   * The upstream's topics: the answer a joining tab waits for.
   * @param {string[]} topics
   * @param {{status: Status, transport: Transport}} status
   */
  #onTopics(topics, status) {
    this.#union = new Set(topics);
    this.#leaderStatus = status;
    if (!subset(this.#own, this.#union)) {
      // Dropped (a leader that took over before this tab said hello): join again, from this
      // tab's own cursor, so nothing is lost.
      if (this.#phase === 'live') this.#join();
      return;
    }
    this.#joined?.();
    this.#joined = undefined;
  }

  /**
   * What the upstream brought, handled alike in every tab.
   * @param {Message} message
   */
  #onStream(message) {
    if (message.type === 'event') this.#streamCursor = message.event.id;
    else if (message.type === 'cursor') {
      this.#streamCursor = message.cursor;
      return;
    } else if (message.type === 'status') {
      this.#leaderStatus = { status: message.status, transport: message.transport, error: message.error };
      if (this.#phase === 'live') this.#showStatus();
      return;
    } else if (message.type !== 'reset') return;
    if (this.#phase === 'live') {
      this.#apply(message);
      return;
    }
    this.#kept.push(message);
    if (this.#kept.length > MAX_KEPT) {
      // Bounded: drop what was kept; the polls then go on until they pass it.
      this.#kept = [];
      this.#keptOverflow = true;
    }
  }

  /** @param {Message} message an event or a reset */
  #apply(message) {
    if (message.type === 'event') this.#deliverOwn(message.event);
    else if (message.type === 'reset') this.#deliverReset(message.reset);
  }

  /** @param {EventObject} event */
  #deliverOwn(event) {
    if (!this.#own.has(event.topic)) return;
    const last = this.#lastSeq.get(event.topic);
    if (last !== undefined && event.seq <= last) return;
    // Of a topic this tab has no event of yet, the stream may bring some from before its start.
    if (last === undefined && this.#start !== undefined && notAfter(event.id, this.#start) === true) return;
    this.#lastSeq.set(event.topic, event.seq);
    this.#cursor = event.id;
    this.#host.deliver(event);
  }

  /**
   * Dispatches the part of `reset` that is news to this tab: its own topics, and of those only
   * the ones whose loss it has not already passed (a new leader resuming from an older cursor
   * reports a loss again).
   * @param {ResetObject} reset
   */
  #deliverReset(reset) {
    const news = (reset.topics ?? []).filter((entry) => {
      if (!this.#own.has(entry.topic)) return false;
      if (reset.reason === 'epoch_changed') return true;
      const last = this.#lastSeq.get(entry.topic);
      return last === undefined || last < entry.resume_seq - 1;
    });
    if (news.length === 0) return;
    if (reset.reason === 'epoch_changed') {
      // A new epoch numbers its events from 1 again.
      for (const entry of news) this.#lastSeq.delete(entry.topic);
      this.#start = undefined;
    }
    this.#host.deliverReset({ ...reset, topics: news });
  }

  /** Shows the upstream's status (a follower's connection is as open as the leader's). */
  #showStatus() {
    const { status, transport, error } = this.#leaderStatus;
    // The leader's `closed` is its own end: another tab takes over.
    this.#host.setStatus(status === 'closed' ? 'reconnecting' : status, transport, error);
  }

  // ---- leading ---------------------------------------------------------------------------

  /**
   * This tab holds the leader lock until the returned promise settles.
   * @returns {Promise<void>|undefined}
   */
  #lead() {
    if (this.#ended()) return undefined;
    this.#role = 'leader';
    this.#host.setRole('leader');
    this.#leading = new AbortController();
    this.#tabs = new Map();
    this.#post({ v: VERSION, type: 'leader', tab: this.#id });
    // Nobody's topics are dropped during a hand-over: the union last heard of, and this tab's.
    const union = new Set([...this.#union, ...this.#own]);
    const cursor = this.#streamCursor !== 'now' ? this.#streamCursor : this.#cursor;
    this.#openUpstream(union, cursor);
    this.#settleTimer = setTimeout(() => this.#narrow(), SETTLE_MS);
    this.#statsTimer = setInterval(() => this.#countUpstream(), STATS_EVERY_MS);
    return new Promise((resolve) => {
      this.#resign = () => resolve(undefined);
    });
  }

  /**
   * Opens the upstream for `topics` from `cursor` and tells every tab its topics.
   * @param {Set<string>} topics
   * @param {string} cursor
   */
  #openUpstream(topics, cursor) {
    const upstream = this.#host.upstream({
      url: this.#options.url,
      transport: this.#options.transport,
      topics: [...topics],
      cursor,
      interval: this.#options.interval,
      timeout: this.#options.timeout,
      events: [...this.#events, ...[...this.#tabs.values()].flatMap((tab) => tab.events)],
      token: this.#host.token(),
      refreshToken: this.#options.refreshToken,
    });
    this.#upstream = upstream;
    this.#counted = { requests: 0, bytes: 0 };
    const mine = () => this.#upstream === upstream;
    /** @type {string|undefined} */
    let lastEventId;
    upstream.addEventListener('event', (e) => {
      if (!mine()) return;
      const event = /** @type {CustomEvent<EventObject>} */ (e).detail;
      lastEventId = event.id;
      this.#stream({ v: VERSION, type: 'event', event });
    });
    upstream.addEventListener('reset', (e) => {
      if (mine()) this.#stream({ v: VERSION, type: 'reset', reset: /** @type {CustomEvent<ResetObject>} */ (e).detail });
    });
    upstream.addEventListener('cursor', (e) => {
      const moved = /** @type {CustomEvent<string>} */ (e).detail;
      if (mine() && moved !== lastEventId) this.#stream({ v: VERSION, type: 'cursor', cursor: moved });
    });
    upstream.addEventListener('status', (e) => {
      if (!mine()) return;
      const { status, transport, error } = /** @type {CustomEvent<import('./types.js').StatusDetail>} */ (e).detail;
      this.#countUpstream();
      if (status === 'closed') {
        // The upstream ended for good (say, a token that cannot be renewed): this tab's
        // connection ends with it, and the next tab tries.
        this.#host.finish(error);
        return;
      }
      this.#stream({ v: VERSION, type: 'status', status, transport, error });
    });
    upstream.addEventListener('error', (e) => {
      if (mine()) this.#host.reportError(/** @type {CustomEvent<ErrorObject>} */ (e).detail);
    });
    this.#union = new Set(topics);
    /** @type {Message} */
    const answer = { v: VERSION, type: 'topics', topics: [...topics], status: 'connecting', transport: upstream.transport };
    this.#post(answer);
    this.#onTopics(answer.topics, { status: 'connecting', transport: upstream.transport });
  }

  /**
   * Posts a stream message and handles it here too (a channel does not deliver to its sender).
   * @param {Message} message
   */
  #stream(message) {
    this.#post(message);
    this.#onStream(message);
  }

  /** @param {Extract<Message, {type: 'hello'}>} hello */
  #onHello(hello) {
    if (hello.tab !== this.#id) {
      const known = this.#tabs.has(hello.tab);
      this.#tabs.set(hello.tab, { topics: hello.topics, events: hello.events });
      if (!known) {
        // Granted once that tab is gone.
        navigator.locks
          .request(`${this.#name}|tab|${hello.tab}`, { signal: this.#leading?.signal }, () => this.#tabGone(hello.tab))
          .catch(() => {});
      }
    }
    if (subset(new Set(hello.topics), this.#union)) {
      // Already followed: say so at once.
      const { status, transport } = this.#leaderStatus;
      this.#post({ v: VERSION, type: 'topics', topics: [...this.#union], status, transport });
      return;
    }
    clearTimeout(this.#widenTimer);
    this.#widenTimer = setTimeout(() => this.#widen(), WIDEN_DELAY_MS);
  }

  /** @param {string} tab */
  #tabGone(tab) {
    if (this.#tabs.delete(tab)) this.#narrow();
  }

  /** The topics the tabs follow. */
  #wanted() {
    const topics = new Set(this.#own);
    for (const tab of this.#tabs.values()) for (const topic of tab.topics) topics.add(topic);
    return topics;
  }

  /** Adds the topics tabs asked for to the upstream. */
  #widen() {
    const topics = new Set([...this.#union, ...this.#wanted()]);
    if (topics.size !== this.#union.size) this.#reopen(topics);
  }

  /** Drops the topics no tab follows any more from the upstream. */
  #narrow() {
    const topics = this.#wanted();
    if (topics.size !== this.#union.size || !subset(topics, this.#union)) this.#reopen(topics);
  }

  /**
   * Replaces the upstream by one for `topics`, from where the old one stood.
   * @param {Set<string>} topics
   */
  #reopen(topics) {
    const old = this.#upstream;
    if (!old || this.#ended()) return;
    this.#countUpstream();
    this.#upstream = undefined;
    const cursor = old.cursor !== 'now' ? old.cursor : this.#streamCursor !== 'now' ? this.#streamCursor : this.#cursor;
    old.close();
    this.#openUpstream(topics, cursor);
  }

  /** Adds what the upstream received since last time to the tab's counters. */
  #countUpstream() {
    const upstream = this.#upstream;
    if (!upstream) return;
    this.#host.stats.requests += upstream.stats.requests - this.#counted.requests;
    this.#host.stats.bytes += upstream.stats.bytes - this.#counted.bytes;
    this.#counted = { requests: upstream.stats.requests, bytes: upstream.stats.bytes };
  }

  #stopLeading() {
    clearTimeout(this.#widenTimer);
    clearTimeout(this.#settleTimer);
    clearInterval(this.#statsTimer);
    this.#leading?.abort();
    const upstream = this.#upstream;
    this.#upstream = undefined;
    upstream?.close();
    this.#resign?.();
    this.#resign = undefined;
  }
}
