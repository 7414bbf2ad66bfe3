// @ts-check
/**
 * The live dashboard: the gateway's demo ticker (topic `demo.ticker`, event type `tick`, data
 * `{"symbol","price","t"}`) drawn over the last 60 seconds in hand-written SVG: one wide chart
 * of every symbol's change in percent, and one price chart per symbol.
 *
 * It subscribes from `oldest`, so a page opened on a running gateway draws the last minute at
 * once from the retained history, then follows live. The charts' right edge is the newest
 * tick's own time `t` plus the time since it arrived, so the window slides smoothly between
 * ticks, and a browser clock that differs from the gateway's does not shift it.
 *
 * Tests read `[data-testid=chart-points]` (price points drawn, all symbols),
 * `[data-testid=last-tick]` (its `data-t` is the newest tick's `t`), and
 * `[data-testid=chart-<SYMBOL>]` (an `<svg>` with `data-points`), `[data-testid=swatch-<SYMBOL>]` (its
 * colour, in the card and the legend; derived from the name by `colourFor`).
 * @module dashboard
 */

import { connect } from './pushgate.js';
import { colourFor, element, mountDemoChrome, sharedFromQuery, transportFromQuery } from './demo.js';
import { clock } from './snapshot.js';

const TOPIC = 'demo.ticker';
/** The charts' time span. */
const WINDOW_MS = 60_000;
/** Points kept per symbol: more than the window holds at the ticker's highest rate. */
const MAX_POINTS = 25_000;
/** With no tick for this long, the page says the ticker may be off. */
const QUIET_MS = 6000;

const SVG = 'http://www.w3.org/2000/svg';

/** @typedef {{t: number, price: number}} Point */

/** Charts made so far: each needs an id of its own for its clip path. */
let charts = 0;

/**
 * One SVG line chart over time: a clipped plot, three labelled horizontal lines, time labels.
 */
class LineChart {
  /**
   * @param {{width: number, height: number, label: string, testid?: string, format: (v: number) => string, minSpan: (mid: number) => number}} options
   *   `minSpan(mid)`: the smallest value range shown around `mid`, so a flat line is not magnified into noise
   */
  constructor({ width, height, label, testid, format, minSpan }) {
    this.width = width;
    this.height = height;
    this.format = format;
    this.minSpan = minSpan;
    this.pad = { left: 52, right: 10, top: 10, bottom: 22 };
    this.svg = /** @type {SVGSVGElement} */ (svgNode('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label, class: 'chart' }));
    if (testid) this.svg.setAttribute('data-testid', testid);
    charts += 1;
    const clipId = `clip-${charts}`;
    const clip = svgNode('clipPath', { id: clipId });
    clip.append(svgNode('rect', { x: this.pad.left, y: 0, width: this.plotW, height: height - this.pad.bottom }));
    this.grid = svgNode('g', { class: 'grid' });
    // The point just left of the window is drawn too, and clipped, so a line enters at the edge.
    this.plot = svgNode('g', { 'clip-path': `url(#${clipId})` });
    this.svg.append(clip, this.grid, this.plot);
    /** @type {Map<string, {line: Element, area?: Element}>} */
    this.lines = new Map();
    this.gridKey = '';
  }

  get plotW() {
    return this.width - this.pad.left - this.pad.right;
  }

  get plotH() {
    return this.height - this.pad.top - this.pad.bottom;
  }

  /**
   * Draws `series` (each `{key, colour, points: {t, v}[]}`, oldest first) between `from` and `to`.
   * @param {{key: string, colour: string, points: {t: number, v: number}[], area?: boolean}[]} series
   * @param {number} from
   * @param {number} to
   */
  draw(series, from, to) {
    let low = Infinity;
    let high = -Infinity;
    for (const s of series) {
      for (const p of s.points) {
        low = Math.min(low, p.v);
        high = Math.max(high, p.v);
      }
    }
    if (low === Infinity) return;
    const mid = (low + high) / 2;
    const half = Math.max((high - low) / 2, this.minSpan(mid) / 2) * 1.12;
    low = mid - half;
    high = mid + half;
    const x = (/** @type {number} */ t) => this.pad.left + ((t - from) / (to - from)) * this.plotW;
    const y = (/** @type {number} */ v) => this.pad.top + (1 - (v - low) / (high - low)) * this.plotH;
    const baseY = (this.pad.top + this.plotH).toFixed(1);
    for (const s of series) {
      let drawn = this.lines.get(s.key);
      if (!drawn) {
        drawn = { line: svgNode('polyline', { class: 'line', stroke: s.colour }) };
        if (s.area) {
          drawn.area = svgNode('path', { class: 'area', fill: s.colour });
          this.plot.append(drawn.area);
        }
        this.plot.append(drawn.line);
        this.lines.set(s.key, drawn);
      }
      if (!s.points.length) continue;
      const coords = s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
      drawn.line.setAttribute('points', coords.join(' '));
      if (drawn.area) {
        const first = x(s.points[0].t).toFixed(1);
        const last = x(s.points[s.points.length - 1].t).toFixed(1);
        drawn.area.setAttribute('d', `M${first},${baseY} L${coords.join(' L')} L${last},${baseY} Z`);
      }
    }
    this.drawGrid(low, high, y);
  }

  /**
   * @param {number} low
   * @param {number} high
   * @param {(v: number) => number} y
   */
  drawGrid(low, high, y) {
    const key = `${this.format(low)}:${this.format(high)}`;
    if (this.gridKey === key) return;
    this.gridKey = key;
    const nodes = [];
    const right = this.pad.left + this.plotW;
    for (const f of [0.12, 0.5, 0.88]) {
      const v = low + (high - low) * f;
      const lineY = y(v).toFixed(1);
      nodes.push(svgNode('line', { x1: this.pad.left, x2: right, y1: lineY, y2: lineY }));
      nodes.push(svgNode('text', { x: this.pad.left - 6, y: Number(lineY) + 4, 'text-anchor': 'end' }, this.format(v)));
    }
    const bottom = this.height - 6;
    nodes.push(svgNode('text', { x: this.pad.left, y: bottom, 'text-anchor': 'start' }, '−60 s'));
    nodes.push(svgNode('text', { x: this.pad.left + this.plotW / 2, y: bottom, 'text-anchor': 'middle' }, '−30 s'));
    nodes.push(svgNode('text', { x: right, y: bottom, 'text-anchor': 'end' }, 'now'));
    this.grid.replaceChildren(...nodes);
  }
}

/**
 * @typedef {object} Symbol
 * @property {string} name
 * @property {string} colour
 * @property {Point[]} points oldest first
 * @property {LineChart} chart
 * @property {HTMLElement} price
 * @property {HTMLElement} change
 * @property {HTMLElement} legend its change in the overview's legend
 */

/** @type {Map<string, Symbol>} */
const symbols = new Map();
/** The newest tick's `t`, and when (performance.now()) it arrived. */
let newest = { t: 0, at: 0 };
/** When (performance.now()) the facts line was last updated from a frame. */
let factsAt = 0;

const cards = /** @type {HTMLElement} */ (document.querySelector('#charts'));
const legend = /** @type {HTMLElement} */ (document.querySelector('#legend'));
const lastTick = /** @type {HTMLElement} */ (document.querySelector('[data-testid=last-tick]'));
const pointsOut = /** @type {HTMLElement} */ (document.querySelector('[data-testid=chart-points]'));
const rateOut = /** @type {HTMLElement} */ (document.querySelector('[data-testid=tick-rate]'));
const quiet = /** @type {HTMLElement} */ (document.querySelector('[data-testid=quiet]'));

const overview = new LineChart({
  width: 1040,
  height: 200,
  label: 'Change of every symbol in percent, last 60 seconds',
  testid: 'chart-overview',
  format: (v) => `${v >= 0 ? '+' : ''}${v.toFixed(2)} %`,
  minSpan: () => 0.5,
});
/** @type {HTMLElement} */ (document.querySelector('#overview')).append(overview.svg);

const connection = connect({
  topics: [TOPIC],
  transport: transportFromQuery(),
  cursor: 'oldest',
  events: ['tick'],
  shared: sharedFromQuery(),
});
mountDemoChrome(/** @type {Element} */ (document.querySelector('#chrome')), connection);

connection.addEventListener('event', (event) => {
  const detail = /** @type {CustomEvent<import('./pushgate.js').EventObject>} */ (event).detail;
  if (detail.topic !== TOPIC || detail.event !== 'tick') return;
  const { symbol, price, t } = detail.data ?? {};
  if (typeof symbol !== 'string' || typeof price !== 'number' || typeof t !== 'number') return;
  const points = symbolFor(symbol).points;
  // Ticks arrive in order; one older than the newest point was seen already.
  if (points.length && t < points[points.length - 1].t) return;
  points.push({ t, price });
  if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
  if (t >= newest.t) newest = { t, at: performance.now() };
  lastTick.dataset.t = String(t);
  lastTick.textContent = `${symbol} ${price.toFixed(2)} at ${clock(t)}`;
});

/**
 * The symbol `name`, created with its card and legend entry on first sight (kept in name order).
 * @param {string} name
 * @returns {Symbol}
 */
function symbolFor(name) {
  const known = symbols.get(name);
  if (known) return known;
  // From the name, not the order of arrival: a symbol keeps its colour from one load to the next.
  const colour = colourFor(name);
  const chart = new LineChart({
    width: 340,
    height: 170,
    label: `${name} price, last 60 seconds`,
    testid: `chart-${name}`,
    format: (v) => v.toFixed(2),
    minSpan: (mid) => mid * 0.005,
  });
  const price = element('span', { class: 'price metric', 'data-testid': `price-${name}` }, '–');
  const change = element('span', { class: 'change', 'data-testid': `change-${name}` });
  const swatch = element('span', { class: 'swatch', style: `background:${colour}`, 'data-testid': `swatch-${name}` });
  const head = element('div', { class: 'chart-head' }, swatch, element('h2', {}, name), price, change);
  const card = element('section', { class: 'card chart-card', 'data-symbol': name }, head, chart.svg);
  insertSorted(cards, card, name);
  const legendChange = element('span', { class: 'legend-change' });
  const entry = element('span', { class: 'legend-entry', 'data-symbol': name }, swatch.cloneNode(), name, legendChange);
  insertSorted(legend, entry, name);

  const created = { name, colour, points: [], chart, price, change, legend: legendChange };
  symbols.set(name, created);
  return created;
}

/**
 * Inserts `node` among `parent`'s children ordered by their `data-symbol`.
 * @param {HTMLElement} parent
 * @param {HTMLElement} node
 * @param {string} name
 */
function insertSorted(parent, node, name) {
  const later = [...parent.children].find((child) => (/** @type {HTMLElement} */ (child).dataset.symbol ?? '') > name);
  parent.insertBefore(node, later ?? null);
}

/** Redraws every chart for the current moment; runs on every animation frame. */
function draw() {
  requestAnimationFrame(draw);
  if (!newest.t) return;
  const to = newest.t + (performance.now() - newest.at);
  const from = to - WINDOW_MS;
  let drawn = 0;
  const relative = [];
  for (const s of symbols.values()) {
    // Keep one point left of the window so the line enters from the edge.
    const firstInside = s.points.findIndex((p) => p.t >= from);
    const drop = firstInside === -1 ? s.points.length - 1 : firstInside - 1;
    if (drop > 0) s.points.splice(0, drop);
    const inside = s.points.filter((p) => p.t >= from);
    drawn += inside.length;
    s.chart.svg.dataset.points = String(inside.length);
    s.chart.draw([{ key: s.name, colour: s.colour, area: true, points: s.points.map((p) => ({ t: p.t, v: p.price })) }], from, to);
    if (!inside.length) continue;
    const base = inside[0].price;
    const last = s.points[s.points.length - 1].price;
    const delta = ((last - base) / base) * 100;
    s.price.textContent = last.toFixed(2);
    s.change.textContent = `${delta >= 0 ? '▲' : '▼'} ${Math.abs(delta).toFixed(2)} %`;
    s.change.dataset.direction = delta >= 0 ? 'up' : 'down';
    s.legend.textContent = `${delta >= 0 ? '+' : '−'}${Math.abs(delta).toFixed(2)} %`;
    relative.push({ key: s.name, colour: s.colour, points: s.points.map((p) => ({ t: p.t, v: ((p.price - base) / base) * 100 })) });
  }
  overview.draw(relative, from, to);
  pointsOut.textContent = String(drawn);
  // Right after the history arrives too, not only on the next second.
  if (performance.now() - factsAt > 250) {
    factsAt = performance.now();
    updateFacts();
  }
}

/**
 * The ticker's rate over the last 10 s of its own clock (history counts, so it is right at
 * once), and a note when no tick comes.
 */
function updateFacts() {
  const since = newest.t - 10_000;
  let recent = 0;
  let oldest = newest.t;
  for (const s of symbols.values()) {
    for (const p of s.points) {
      if (p.t > since) {
        recent += 1;
        oldest = Math.min(oldest, p.t);
      }
    }
  }
  // Between the first two ticks there is no rate to tell yet.
  const span = (newest.t - oldest) / 1000;
  rateOut.textContent = recent > 2 && span >= 2 ? `${((recent - 1) / span).toFixed(1)} /s` : '–';
  const at = performance.now();
  const silent = newest.at === 0 ? at > QUIET_MS : at - newest.at > QUIET_MS;
  quiet.hidden = !(silent && connection.status === 'open');
}
setInterval(updateFacts, 1000);

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

requestAnimationFrame(draw);
