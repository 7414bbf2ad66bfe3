// @ts-check
/**
 * HTTP as the client uses it: the gateway's base URL, `POST /v1/publish`, and the counted GET
 * that every receiving request goes through.
 * @module http
 */

import { PushgateError, errorFromText } from './errors.js';

/** @typedef {import('./types.js').Published} Published */
/** @typedef {import('./types.js').Stats} Stats */

/**
 * `url` without trailing slashes; the page's origin when absent.
 * @param {string|undefined} url
 * @returns {string}
 */
export function baseUrl(url) {
  const base = url ?? (typeof location !== 'undefined' ? location.origin : '');
  if (!base) throw new TypeError('connect: `url` is required outside a web page');
  return base.replace(/\/+$/, '');
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
  if (!response.ok) throw errorFromText(response, await response.text().catch(() => ''));
  return /** @type {Published} */ (await response.json());
}

/**
 * An answer to a receiving GET: `body` is the parsed JSON, `null` for a `304`.
 * @typedef {object} Answer
 * @property {number} status
 * @property {string|null} etag
 * @property {any} body
 */

/**
 * One HTTP GET that receives: counted in `stats`, aborted by `signal`, errors as PushgateError
 * (a 4xx or 5xx answer carries its JSON error).
 * @param {string} url
 * @param {{signal: AbortSignal, stats: Stats, headers?: Record<string, string>}} options
 * @returns {Promise<Answer>}
 */
export async function getJson(url, { signal, stats, headers = {} }) {
  stats.requests += 1;
  let response;
  try {
    response = await fetch(url, { headers, signal, cache: 'no-store' });
  } catch (error) {
    throw new PushgateError('network', `request failed: ${error}`);
  }
  stats.bytes += headerBytes(response);
  if (response.status === 304) return { status: 304, etag: response.headers.get('etag'), body: null };
  const buffer = await response.arrayBuffer().catch((error) => {
    throw new PushgateError('network', `reading the answer failed: ${error}`);
  });
  stats.bytes += buffer.byteLength;
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
 * The URL of a subscribe request: `path` with every topic, the cursor, `extra` and the token.
 * @param {string} base the gateway's base URL
 * @param {string} path e.g. `/v1/poll`
 * @param {{topics: readonly string[], cursor: string, token?: string, extra?: Record<string, string>}} query
 * @returns {string}
 */
export function subscribeUrl(base, path, { topics, cursor, token, extra = {} }) {
  const params = new URLSearchParams();
  for (const topic of topics) params.append('topic', topic);
  params.set('cursor', cursor);
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  if (token) params.set('token', token);
  return `${base}${path}?${params}`;
}

/**
 * Estimated bytes of a response's status line and headers (the ones the browser exposes).
 * @param {Response} response
 * @returns {number}
 */
function headerBytes(response) {
  let bytes = `HTTP/1.1 ${response.status} ${response.statusText}\r\n\r\n`.length;
  response.headers.forEach((value, name) => {
    bytes += name.length + value.length + 4;
  });
  return bytes;
}

/**
 * UTF-8 length of a string without encoding it.
 * @param {string} text
 * @returns {number}
 */
export function utf8Length(text) {
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
