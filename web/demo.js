// @ts-check
/**
 * What every demo page shares: the transport picker (`?transport=`), the status badge and the
 * counters of requests, bytes and messages received, and with `?shared=1` (one connection for
 * all tabs) the tab's role. Tests read them by `data-testid`: `status` (text and `data-status`:
 * connecting, open, reconnecting, closed), `transport`, `role` (leader, follower, or empty),
 * `requests`, `bytes`, `messages` (plain integers).
 *
 * ```js
 * import { connect } from '/pushgate.js';
 * import { mountDemoChrome, transportFromQuery } from '/demo.js';
 * const connection = connect({ topics: ['chat'], transport: transportFromQuery() });
 * mountDemoChrome(document.querySelector('#chrome'), connection);
 * ```
 * @module demo
 */

/** @typedef {import('./pushgate.js').Connection} Connection */
/** @typedef {import('./pushgate.js').TransportChoice} TransportChoice */

/** @type {TransportChoice[]} */
export const TRANSPORT_CHOICES = ['auto', 'ws', 'sse', 'longpoll', 'poll'];

/** @type {Record<TransportChoice, string>} */
export const TRANSPORT_LABELS = {
  auto: 'auto',
  ws: 'WebSocket',
  sse: 'Server-Sent Events',
  longpoll: 'long poll',
  poll: 'short poll',
};

/**
 * The transport named by `?transport=` in the page's address; `auto` when absent or unknown.
 * @returns {TransportChoice}
 */
export function transportFromQuery() {
  const value = new URLSearchParams(location.search).get('transport');
  return TRANSPORT_CHOICES.find((choice) => choice === value) ?? 'auto';
}

/**
 * Whether `?shared=1` asks for one connection shared by this origin's tabs (the client's `shared`).
 * @returns {boolean}
 */
export function sharedFromQuery() {
  const value = new URLSearchParams(location.search).get('shared');
  return value === '1' || value === 'true';
}

/**
 * The page's address with `?transport=` set to `transport`, other parameters kept.
 * @param {TransportChoice} transport
 */
export function hrefForTransport(transport) {
  const params = new URLSearchParams(location.search);
  params.set('transport', transport);
  return `${location.pathname}?${params}${location.hash}`;
}

/**
 * Renders the transport picker, the status badge and the counters into `root` and keeps them
 * up to date until the connection closes (the counters are refreshed 4 times a second, and on
 * every event).
 * @param {Element} root
 * @param {Connection} connection
 * @returns {{update: () => void}} `update()` refreshes at once
 */
export function mountDemoChrome(root, connection) {
  const current = transportFromQuery();
  root.classList.add('demo-chrome');

  const home = element('a', { href: './', class: 'home' }, '← all demos');

  const picker = element('nav', { class: 'transport-picker', 'aria-label': 'Transport', 'data-testid': 'transport-picker' });
  picker.append(element('span', { class: 'label' }, 'Transport'));
  for (const choice of TRANSPORT_CHOICES) {
    const link = element('a', { href: hrefForTransport(choice), 'data-transport': choice }, TRANSPORT_LABELS[choice]);
    if (choice === current) link.setAttribute('aria-current', 'page');
    picker.append(link);
  }

  const status = element('span', { class: 'status', 'data-testid': 'status', 'data-status': connection.status, role: 'status' }, connection.status);
  const transport = element('span', { class: 'transport', 'data-testid': 'transport', title: 'transport in use' }, connection.transport);
  const role = element('span', { class: 'transport', 'data-testid': 'role', title: 'this tab holds the shared connection (leader) or follows it' });
  const error = element('span', { class: 'status-error', 'data-testid': 'status-error' });

  const counters = element('dl', { class: 'counters' });
  /** @type {Record<'requests'|'bytes'|'messages', HTMLElement>} */
  const values = {
    requests: element('dd', { 'data-testid': 'requests' }, '0'),
    bytes: element('dd', { 'data-testid': 'bytes' }, '0'),
    messages: element('dd', { 'data-testid': 'messages' }, '0'),
  };
  const titles = {
    requests: 'HTTP requests and connections made to receive',
    bytes: 'bytes received (bodies plus estimated headers; WebSocket: frame payloads)',
    messages: 'events and resets received',
  };
  for (const key of /** @type {const} */ (['requests', 'bytes', 'messages'])) {
    const group = element('div', { title: titles[key] });
    group.append(element('dt', {}, key), values[key]);
    counters.append(group);
  }

  const state = element('div', { class: 'connection' });
  state.append(status, transport, role, error);
  root.replaceChildren(home, picker, state, counters);

  const update = () => {
    status.textContent = connection.status;
    status.dataset.status = connection.status;
    transport.textContent = connection.transport;
    role.textContent = connection.role ?? '';
    role.hidden = connection.role === undefined;
    values.requests.textContent = String(connection.stats.requests);
    values.bytes.textContent = String(connection.stats.bytes);
    values.messages.textContent = String(connection.stats.messages);
  };
  connection.addEventListener('status', (event) => {
    const detail = /** @type {CustomEvent<import('./pushgate.js').StatusDetail>} */ (event).detail;
    error.textContent = detail.error && detail.status !== 'open' ? `${detail.error.code}: ${detail.error.message}` : '';
    update();
    if (detail.status === 'closed') clearInterval(timer);
  });
  connection.addEventListener('event', update);
  connection.addEventListener('reset', update);
  const timer = setInterval(update, 250);
  update();
  return { update };
}

/**
 * Creates an element with attributes and text or child nodes.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string>} [attributes]
 * @param {...(string|Node)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/**
 * Bytes as a short human string: 1234 → "1.2 kB".
 * @param {number} bytes
 */
export function formatBytes(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} kB`;
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

/** Series colours, as `colourFor` picks them. */
const SERIES_COLOURS = ['#1a7f37', '#cf222e', '#bc4c00', '#0b63c9', '#8250df'];

/**
 * A colour for a series named `name` (a ticker symbol): the same name always gets the same
 * colour, whatever order the series appear in. (FNV-1a of the name picks from five colours.)
 * @param {string} name
 * @returns {string} a CSS hex colour
 */
export function colourFor(name) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i += 1) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return SERIES_COLOURS[hash % SERIES_COLOURS.length];
}
