// The live dashboard (web/dashboard.html) on each transport: the gateway's demo ticker
// (`demo.ticker`, 2 ticks a second by default) reaches the page, its message counter grows and
// the charts get new points within 2 s (short poll: its 1 s interval + 2 s). Saves
// docs/images/dashboard.png.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as lib from './lib.mjs';

/** The page's short-poll interval (the client's default). */
const POLL_INTERVAL_MS = 1000;

/** @type {import('./lib.mjs').Gateway} */
let gateway;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  gateway = await lib.sharedGateway();
  browser = await lib.launchBrowser();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
});

/** The newest tick's `t` the page has seen (0 before the first). */
async function lastTickTime(page) {
  return Number(await page.locator('[data-testid="last-tick"]').getAttribute('data-t', { timeout: 2000 }));
}

for (const transport of lib.TRANSPORTS) {
  test(`${transport}: ticks arrive, the counter grows and the charts get new points`, async () => {
    const page = await lib.openPage(browser, gateway, 'dashboard.html', { transport, waitForOpen: true });
    try {
      const bound = (transport === 'poll' ? POLL_INTERVAL_MS : 0) + 2000;
      const before = await lib.readChrome(page);
      const firstTick = await lastTickTime(page);

      await lib.waitUntil(async () => (await lib.readChrome(page)).messages > before.messages, {
        timeout: bound,
        what: `the message counter passing ${before.messages}`,
      });
      const newTick = await lib.waitUntil(async () => {
        const t = await lastTickTime(page);
        return t > firstTick && t;
      }, { timeout: bound, what: 'a tick newer than the first one seen' });
      assert.ok(newTick > firstTick);

      // The charts draw what arrived: points in total, and on every symbol's chart.
      const drawn = await lib.waitUntil(async () => {
        const points = Number(await page.locator('[data-testid="chart-points"]').textContent());
        return points > 0 && points;
      }, { timeout: 2000, what: 'points on the charts' });
      assert.ok(drawn > 0);
      const perChart = await page.locator('svg[data-testid^="chart-"][data-points]').evaluateAll((charts) =>
        charts.map((chart) => [chart.getAttribute('data-testid'), Number(chart.getAttribute('data-points'))]),
      );
      assert.ok(perChart.length >= 1, 'one chart per symbol');
      assert.ok(perChart.some(([, points]) => points > 0), `points per chart: ${JSON.stringify(perChart)}`);
      const line = await page.locator('svg[data-testid^="chart-"] polyline').first().getAttribute('points');
      assert.ok(line && line.split(' ').length >= 1, 'a line is drawn');

      const chrome = await lib.readChrome(page);
      assert.equal(chrome.status, 'open');
      assert.equal(chrome.transport, transport);
      assert.ok(chrome.requests >= 1 && chrome.bytes > 0, JSON.stringify(chrome));
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
    }
  });
}

test('a symbol keeps its colour from one load to the next, and times are 24-hour', async () => {
  /** @type {Record<string, string>[]} per load, each symbol's colour */
  const loads = [];
  for (let load = 0; load < 2; load += 1) {
    const page = await lib.openPage(browser, gateway, 'dashboard.html', { transport: 'ws', waitForOpen: true });
    try {
      // The ticker runs through its three symbols twice a second.
      const swatches = await lib.waitUntil(
        async () => {
          const found = await page.locator('[data-testid^="swatch-"]').evaluateAll((nodes) =>
            nodes.map((node) => [node.getAttribute('data-testid').slice('swatch-'.length), node.style.backgroundColor]),
          );
          return new Set(found.map(([name]) => name)).size >= 3 && found;
        },
        { timeout: 5000, what: 'three symbols' },
      );
      const names = [...new Set(swatches.map(([name]) => name))].sort();
      const expected = await page.evaluate(async (symbols) => {
        const { colourFor } = await import('/demo.js');
        const probe = document.createElement('span');
        return symbols.map((symbol) => {
          probe.style.backgroundColor = colourFor(symbol);
          return [symbol, probe.style.backgroundColor];
        });
      }, names);
      for (const [name, colour] of swatches) assert.equal(colour, new Map(expected).get(name), `${name}'s colour comes from its name`);
      loads.push(Object.fromEntries(expected));
      // Distinct symbols, distinct colours (for the demo's three).
      assert.equal(new Set(Object.values(loads[load])).size, names.length);
      const lastTick = await lib.waitForTestId(page, 'last-tick', /at /);
      assert.match(lastTick, / at \d{2}:\d{2}:\d{2}$/, 'a 24-hour time, as on the other pages');
      assert.doesNotMatch(lastTick, /[AP]M/);
    } finally {
      await page.close();
    }
  }
  assert.deepEqual(loads[1], loads[0]);
});

test('screenshot: docs/images/dashboard.png', async () => {
  const page = await lib.openPage(browser, gateway, 'dashboard.html', { transport: 'ws', waitForOpen: true });
  try {
    await page.setViewportSize({ width: 1200, height: 800 });
    // Charts with most of a minute of history look like the page in use: wait for 50 s of ticks
    // at the default rate, but never fail for it (a gateway that just started has less).
    await lib
      .waitUntil(async () => Number(await page.locator('[data-testid="chart-points"]').textContent()) >= 100, {
        timeout: 15_000,
        what: '100 points',
      })
      .catch(() => {});
    await lib.screenshot(page, 'dashboard');
  } finally {
    await page.close();
  }
});
