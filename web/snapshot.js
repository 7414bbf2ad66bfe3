// @ts-check
/**
 * The snapshot pattern of docs/sources.md, for pages that show a demo table live: load the rows
 * and a cursor (`GET /demo/<table>` → `{"rows":[…],"cursor":"…"}`), then subscribe from that
 * cursor, so every change is in the rows, after the cursor, or both; never neither. Events carry
 * whole rows, so a change seen twice changes nothing.
 *
 * When the gateway reports a `reset` (history lost: it restarted, or the page fell too far
 * behind), the events that follow no longer line up with the rows on the page. The page then
 * starts over: it closes the connection, loads a fresh snapshot and subscribes from its cursor.
 * That is how a page whose gateway restarts continues without missing a row.
 *
 * ```js
 * const follower = followSnapshot({
 *   table: 'users', topics: ['db.users'], chrome: document.querySelector('#chrome'),
 *   onSnapshot: (rows) => showAll(rows),
 *   onEvent: (event) => applyChange(event),
 * });
 * follower.connection?.publish(…);
 * ```
 * @module snapshot
 */

import { connect } from './pushgate.js';
import { mountDemoChrome, sharedFromQuery, transportFromQuery } from './demo.js';

/** @typedef {import('./pushgate.js').Connection} Connection */
/** @typedef {import('./pushgate.js').EventObject} EventObject */
/** @typedef {import('./pushgate.js').ResetObject} ResetObject */

/** Retry a failed snapshot load after a random wait up to min(cap, base × 2^attempt). */
const LOAD_BACKOFF_BASE_MS = 500;
const LOAD_BACKOFF_CAP_MS = 10_000;

/**
 * @typedef {object} FollowOptions
 * @property {string} table the demo table: `users` or `orders`
 * @property {string[]} topics every topic of the page (`db.<table>` and any others: one connection for all)
 * @property {string[]} [events] event types to listen for on SSE (see pushgate.js); the db ones are added
 * @property {Element} chrome where the demo chrome goes
 * @property {(rows: any[], cursor: string) => void} onSnapshot all the rows, at load and after each reset
 * @property {(event: EventObject) => void} onEvent every event after the snapshot, of every topic
 * @property {(reset: ResetObject) => void} [onReset] told before the page starts over
 * @property {(state: {phase: 'loading'|'live'|'failed', rows?: number, cursor?: string, error?: string}) => void} [onState]
 */

/**
 * Loads the snapshot, follows it, and starts over on every reset.
 * @param {FollowOptions} options
 * @returns {{readonly connection: Connection|undefined}} the connection in use (it changes after a reset)
 */
export function followSnapshot(options) {
  /** @type {Connection|undefined} */
  let connection;
  let generation = 0;

  const load = async () => {
    const mine = ++generation;
    connection?.close();
    connection = undefined;
    options.onState?.({ phase: 'loading' });
    /** @type {{rows: any[], cursor: string}|undefined} */
    let snapshot;
    for (let attempt = 0; ; attempt += 1) {
      try {
        snapshot = await loadSnapshot(options.table);
        break;
      } catch (error) {
        const failure = error instanceof LoadError ? error : new LoadError(String(error));
        options.onState?.({ phase: 'failed', error: failure.message });
        if (failure.terminal) return;
      }
      await new Promise((resolve) =>
        setTimeout(resolve, Math.random() * Math.min(LOAD_BACKOFF_CAP_MS, LOAD_BACKOFF_BASE_MS * 2 ** attempt)),
      );
      if (mine !== generation) return;
    }
    if (mine !== generation) return;
    options.onSnapshot(snapshot.rows, snapshot.cursor);
    const current = connect({
      topics: options.topics,
      cursor: snapshot.cursor,
      transport: transportFromQuery(),
      interval: intervalFromQuery(),
      events: ['insert', 'update', 'delete', ...(options.events ?? [])],
      shared: sharedFromQuery(),
    });
    connection = current;
    // A closed connection may still hand over the rest of an answer it was reading: only the
    // connection in use counts.
    current.addEventListener('event', (event) => {
      if (current === connection) options.onEvent(/** @type {CustomEvent<EventObject>} */ (event).detail);
    });
    current.addEventListener('reset', (event) => {
      if (current !== connection) return;
      options.onReset?.(/** @type {CustomEvent<ResetObject>} */ (event).detail);
      load();
    });
    mountDemoChrome(options.chrome, current);
    options.onState?.({ phase: 'live', rows: snapshot.rows.length, cursor: snapshot.cursor });
  };

  load();
  return {
    get connection() {
      return connection;
    },
  };
}

/**
 * The short-poll interval from `?interval=<ms>` (at least 100), else the client's default.
 * @returns {number|undefined}
 */
export function intervalFromQuery() {
  const interval = Number(new URLSearchParams(location.search).get('interval'));
  return Number.isFinite(interval) && interval >= 100 ? interval : undefined;
}

/** A snapshot that could not be loaded; `terminal` when trying again cannot help. */
class LoadError extends Error {
  /**
   * @param {string} message
   * @param {boolean} [terminal]
   */
  constructor(message, terminal = false) {
    super(message);
    this.terminal = terminal;
  }
}

/**
 * `GET /demo/<table>`; a 404 means the gateway runs without the demo (terminal).
 * @param {string} table
 * @returns {Promise<{rows: any[], cursor: string}>}
 */
async function loadSnapshot(table) {
  let response;
  try {
    response = await fetch(`/demo/${table}`, { cache: 'no-store' });
  } catch (error) {
    throw new LoadError(`the gateway cannot be reached (${error})`);
  }
  if (response.status === 404) {
    throw new LoadError('the demo is off (the gateway runs with --no-demo)', true);
  }
  if (!response.ok) throw new LoadError(await errorText(response));
  const body = await response.json();
  if (!Array.isArray(body.rows) || typeof body.cursor !== 'string') throw new LoadError('the snapshot is not {rows, cursor}');
  return body;
}

/**
 * The message of a gateway error answer (`{"error":{"code","message"}}`), else the status.
 * @param {Response} response
 */
export async function errorText(response) {
  const text = await response.text().catch(() => '');
  try {
    const { error } = JSON.parse(text);
    if (error && typeof error.message === 'string') return error.message;
  } catch {
    // not the JSON error body
  }
  return `HTTP ${response.status}`;
}

/**
 * A JSON request to the demo REST API; throws an Error with the gateway's message on failure.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
export async function demoRequest(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new Error(`the gateway cannot be reached (${error})`);
  }
  if (!response.ok) throw new Error(await errorText(response));
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/**
 * The row a change event carries: `data.new` for insert and update, `data.old` for delete.
 * @param {EventObject} event
 * @returns {{op: 'upsert'|'delete', row: any}|undefined} undefined for anything else
 */
export function changeOf(event) {
  const change = event.data;
  if (!change || typeof change !== 'object') return undefined;
  if ((event.event === 'insert' || event.event === 'update') && change.new && change.new.id !== undefined) {
    return { op: 'upsert', row: change.new };
  }
  if (event.event === 'delete' && change.old && change.old.id !== undefined) return { op: 'delete', row: change.old };
  return undefined;
}

/**
 * A time as HH:MM:SS in the browser's zone.
 * @param {number|string} time ms since the epoch or an ISO string
 */
export function clock(time) {
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? String(time) : date.toLocaleTimeString([], { hour12: false });
}
