// @ts-check
/**
 * The transport arena: four connections, one per transport, on the same topic, fed by this page.
 *
 * The page publishes `{"sent": <ms>, "n": <count>, "from": <page id>}` (event type `ping`) to
 * the topic over HTTP at the chosen rate (`[data-testid=rate]`, default 5 a second, or
 * `?rate=`). `sent` is `performance.timeOrigin + performance.now()` taken just before the
 * request; each pane takes the same clock when its connection delivers the event, so the
 * difference is the delivery latency (publish → receive) on the same clock, whatever the
 * browser's wall clock says. Only this page's own pings are timed (another visitor's clock is
 * not ours), but every event is counted.
 *
 * Each pane shows the last latency, the median and the 95th percentile over the last 10 s, the
 * samples on a shared logarithmic scale, and its connection's `stats`: requests made, bytes
 * and messages received. Tests read `[data-testid=pane-<transport>]` and, inside it,
 * `pane-<transport>-{status,messages,requests,bytes,latency-last,latency-median,latency-p95}`
 * (plain numbers; `–` before the first sample).
 * @module arena
 */

import { connect, publish } from './pushgate.js';
import { element } from './demo.js';

/** @typedef {import('./pushgate.js').Transport} Transport */

const params = new URLSearchParams(location.search);
const TOPIC = params.get('topic') || 'arena';
const EVENT = 'ping';
const RATES = [0, 1, 5, 20, 50];
const DEFAULT_RATE = 5;
/** The latency statistics and the plot cover this much. */
const WINDOW_MS = 10_000;
/** Samples kept per pane: the window at the highest rate, with room. */
const MAX_SAMPLES = 1000;
/** Publishes in flight at most; beyond, a tick is skipped rather than queued. */
const MAX_IN_FLIGHT = 16;
/** The plot's latency scale, ms (logarithmic). */
const SCALE = { low: 0.5, high: 3000 };

/** This page among others publishing to the same topic. */
const PAGE_ID = Math.random().toString(36).slice(2, 10);
const now = () => performance.timeOrigin + performance.now();

/** @type {{transport: Transport, title: string, about: string}[]} */
const PANES = [
  {
    transport: 'poll',
    title: 'Short poll',
    about:
      'Asks for anything new once a second, so an event waits for the next poll: up to a full interval, half of ' +
      'one on average. The requests tick along at one a second whether anything happened or not, each with its ' +
      'full HTTP headers.',
  },
  {
    transport: 'longpoll',
    title: 'Long poll',
    about:
      'Each request is held at the gateway until an event arrives and is then answered at once, so latency is ' +
      'about one round trip. Under a steady stream that is about one request per event (or per batch), so ' +
      'headers make up most of the bytes.',
  },
  {
    transport: 'sse',
    title: 'Server-Sent Events',
    about:
      'One HTTP response stays open and the gateway writes each event into it, as a few lines of text, the ' +
      'moment it is published. One request for the whole session; per event only its id:, event: and data: lines.',
  },
  {
    transport: 'ws',
    title: 'WebSocket',
    about:
      'One upgraded connection carries small frames both ways, and each event is one text frame sent as soon as ' +
      'it is published. The fewest bytes per message of the four, and the page could publish over the same socket.',
  },
];

const SVG = 'http://www.w3.org/2000/svg';
const PLOT = { width: 240, height: 110, left: 34, right: 6, top: 6, bottom: 6 };

/**
 * @typedef {object} Pane
 * @property {Transport} transport
 * @property {import('./pushgate.js').Connection} connection
 * @property {{at: number, ms: number}[]} samples received at (page clock), latency
 * @property {Record<string, HTMLElement>} out
 * @property {SVGGElement} dots
 */

const panesRoot = /** @type {HTMLElement} */ (document.querySelector('#panes'));
/** @type {Pane[]} */
const panes = PANES.map(({ transport, title, about }) => mountPane(transport, title, about));

/**
 * Builds a pane and opens its connection.
 * @param {Transport} transport
 * @param {string} title
 * @param {string} about
 * @returns {Pane}
 */
function mountPane(transport, title, about) {
  const id = (/** @type {string} */ name) => `pane-${transport}-${name}`;
  const status = element('span', { class: 'status', 'data-testid': id('status'), 'data-status': 'connecting' }, 'connecting');
  const head = element('div', { class: 'pane-head' }, element('h2', {}, title), status);

  const latency = element('div', { class: 'latency' });
  /** @type {Record<string, HTMLElement>} */
  const out = { status };
  for (const [key, label] of [['last', 'last'], ['median', 'median'], ['p95', 'p95']]) {
    out[`latency-${key}`] = element('span', { class: 'metric', 'data-testid': id(`latency-${key}`) }, '–');
    latency.append(element('div', { class: key === 'median' ? 'main' : '' }, element('span', { class: 'label' }, label), out[`latency-${key}`], element('span', { class: 'unit' }, 'ms')));
  }

  const svg = svgNode('svg', { viewBox: `0 0 ${PLOT.width} ${PLOT.height}`, class: 'plot', 'data-testid': id('plot'), role: 'img', 'aria-label': `${title}: latency of each message over the last 10 seconds, logarithmic scale` });
  svg.append(scaleGrid());
  const dots = /** @type {SVGGElement} */ (svgNode('g', { class: 'dots' }));
  svg.append(dots);

  const counters = element('dl', { class: 'pane-counters' });
  for (const [key, label, title] of [
    ['messages', 'messages', 'events received (connection.stats.messages)'],
    ['requests', 'requests', 'HTTP requests and connections made to receive (connection.stats.requests)'],
    ['bytes', 'bytes', 'bytes received: bodies plus estimated headers; WebSocket: frame payloads (connection.stats.bytes)'],
    ['bytes-per-message', 'bytes / msg', 'bytes received per message'],
    ['requests-per-message', 'requests / msg', 'requests made per message'],
  ]) {
    out[key] = element('dd', { 'data-testid': id(key) }, key.includes('per') ? '–' : '0');
    counters.append(element('div', { title }, element('dt', {}, label), out[key]));
  }

  const pane = element('section', { class: 'card pane', 'data-testid': `pane-${transport}`, 'data-transport': transport },
    head, latency, svg, counters, element('p', { class: 'about' }, about));
  panesRoot.append(pane);

  const connection = connect({ topics: [TOPIC], transport, events: [EVENT] });
  /** @type {Pane} */
  const state = { transport, connection, samples: [], out, dots: /** @type {SVGGElement} */ (dots) };
  connection.addEventListener('event', (event) => {
    const detail = /** @type {CustomEvent<import('./pushgate.js').EventObject>} */ (event).detail;
    const data = detail.data;
    if (detail.event !== EVENT || !data || data.from !== PAGE_ID || typeof data.sent !== 'number') return;
    const received = now();
    state.samples.push({ at: received, ms: Math.max(0, received - data.sent) });
    if (state.samples.length > MAX_SAMPLES) state.samples.splice(0, state.samples.length - MAX_SAMPLES);
  });
  connection.addEventListener('status', () => render(state));
  return state;
}

/**
 * Refreshes a pane's numbers and plot.
 * @param {Pane} pane
 */
function render(pane) {
  const { connection, out } = pane;
  out.status.textContent = connection.status;
  out.status.dataset.status = connection.status;
  const { requests, bytes, messages } = connection.stats;
  out.messages.textContent = String(messages);
  out.requests.textContent = String(requests);
  out.bytes.textContent = String(bytes);
  out['bytes-per-message'].textContent = messages ? String(Math.round(bytes / messages)) : '–';
  out['requests-per-message'].textContent = messages ? (requests / messages).toFixed(2) : '–';

  const at = now();
  const recent = pane.samples.filter((s) => at - s.at <= WINDOW_MS);
  const last = pane.samples[pane.samples.length - 1];
  out['latency-last'].textContent = last ? formatMs(last.ms) : '–';
  const sorted = recent.map((s) => s.ms).sort((a, b) => a - b);
  out['latency-median'].textContent = sorted.length ? formatMs(quantile(sorted, 0.5)) : '–';
  out['latency-p95'].textContent = sorted.length ? formatMs(quantile(sorted, 0.95)) : '–';

  const plotW = PLOT.width - PLOT.left - PLOT.right;
  const circles = recent.map((s) => {
    const cx = PLOT.left + (1 - (at - s.at) / WINDOW_MS) * plotW;
    return svgNode('circle', { cx: cx.toFixed(1), cy: scaleY(s.ms).toFixed(1), r: 2.2 });
  });
  pane.dots.replaceChildren(...circles);
}

/**
 * The `q` quantile of ascending `sorted` (nearest rank).
 * @param {number[]} sorted
 * @param {number} q
 */
function quantile(sorted, q) {
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

/**
 * Milliseconds for display: one decimal below 10, whole numbers above.
 * @param {number} ms
 */
function formatMs(ms) {
  return ms < 10 ? ms.toFixed(1) : String(Math.round(ms));
}

/** The plot's y for `ms` on the logarithmic scale. */
function scaleY(/** @type {number} */ ms) {
  const clamped = Math.min(SCALE.high, Math.max(SCALE.low, ms));
  const f = (Math.log10(clamped) - Math.log10(SCALE.low)) / (Math.log10(SCALE.high) - Math.log10(SCALE.low));
  return PLOT.top + (1 - f) * (PLOT.height - PLOT.top - PLOT.bottom);
}

/** Gridlines at 1, 10, 100 and 1000 ms. */
function scaleGrid() {
  const grid = svgNode('g', { class: 'grid' });
  for (const [ms, label] of [[1, '1 ms'], [10, '10'], [100, '100'], [1000, '1 s']]) {
    const y = scaleY(Number(ms)).toFixed(1);
    grid.append(svgNode('line', { x1: PLOT.left, x2: PLOT.width - PLOT.right, y1: y, y2: y }));
    grid.append(svgNode('text', { x: PLOT.left - 4, y: Number(y) + 3, 'text-anchor': 'end' }, String(label)));
  }
  return grid;
}

/**
 * @param {string} tag
 * @param {Record<string, string|number>} attributes
 * @param {string} [text]
 */
function svgNode(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text) node.textContent = text;
  return node;
}

// ---- the publisher ----

const rateSelect = /** @type {HTMLSelectElement} */ (document.querySelector('[data-testid=rate]'));
const publishedOut = /** @type {HTMLElement} */ (document.querySelector('[data-testid=published]'));
const publishError = /** @type {HTMLElement} */ (document.querySelector('[data-testid=publish-error]'));
const topicOut = /** @type {HTMLElement} */ (document.querySelector('[data-testid=topic]'));
topicOut.textContent = TOPIC;

const askedRate = Number(params.get('rate'));
for (const rate of RATES) {
  rateSelect.append(element('option', { value: String(rate) }, rate === 0 ? 'paused' : `${rate} / s`));
}
rateSelect.value = String(RATES.includes(askedRate) && params.has('rate') ? askedRate : DEFAULT_RATE);

let sent = 0;
let inFlight = 0;
/** @type {ReturnType<typeof setTimeout>|undefined} */
let timer;

/** Publishes one ping now, and schedules the next at the selected rate. */
function tick() {
  const rate = Number(rateSelect.value);
  timer = undefined;
  if (!rate) return;
  timer = setTimeout(tick, 1000 / rate);
  if (inFlight >= MAX_IN_FLIGHT) return;
  inFlight += 1;
  sent += 1;
  const data = { sent: now(), n: sent, from: PAGE_ID };
  publish(TOPIC, EVENT, data)
    .then(() => {
      publishError.textContent = '';
    })
    .catch((/** @type {Error} */ error) => {
      publishError.textContent = `publish failed: ${error.message}`;
    })
    .finally(() => {
      inFlight -= 1;
      publishedOut.textContent = String(sent);
    });
}

rateSelect.addEventListener('change', () => {
  clearTimeout(timer);
  tick();
});
tick();

setInterval(() => panes.forEach(render), 250);
