// The transport arena (web/arena.html): all four panes, one connection per transport on the same
// topic, receive the page's pings and show a latency (short poll within its 1 s interval + 2 s
// of opening, the others within 2 s); the rate control changes how fast the page publishes.
// Saves docs/images/arena.png.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as lib from './lib.mjs';

/** The arena's short-poll interval (the client's default). */
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

/** The number in `[data-testid=<testid>]`, NaN for `–`. */
async function numberOf(page, testid) {
  return Number(((await page.locator(`[data-testid="${testid}"]`).first().textContent({ timeout: 2000 })) ?? '').trim());
}

test('all four panes receive the pings and show their latency', async () => {
  const page = await lib.openPage(browser, gateway, 'arena.html', { query: { topic: `arena.test.${process.pid}` } });
  try {
    for (const transport of lib.TRANSPORTS) {
      await lib.waitForVisible(page, `pane-${transport}`);
    }
    // Each pane is timed from its own connection's opening.
    await Promise.all(
      lib.TRANSPORTS.map(async (transport) => {
        await lib.waitForTestId(page, `pane-${transport}-status`, 'open', { timeout: 10_000 });
        const bound = (transport === 'poll' ? POLL_INTERVAL_MS : 0) + 2000;
        await lib.waitForTestId(page, `pane-${transport}-messages`, (text) => Number(text) > 0, { timeout: bound });
        await lib.waitForTestId(page, `pane-${transport}-latency-median`, (text) => Number(text) >= 0, {
          timeout: 1000,
        });
      }),
    );
    for (const transport of lib.TRANSPORTS) {
      const last = await numberOf(page, `pane-${transport}-latency-last`);
      const p95 = await numberOf(page, `pane-${transport}-latency-p95`);
      const median = await numberOf(page, `pane-${transport}-latency-median`);
      assert.ok(last >= 0 && median >= 0 && p95 >= median, `${transport}: last ${last}, median ${median}, p95 ${p95}`);
      assert.ok((await numberOf(page, `pane-${transport}-requests`)) >= 1, `${transport} requests`);
      assert.ok((await numberOf(page, `pane-${transport}-bytes`)) > 0, `${transport} bytes`);
      const about = await page.locator(`[data-testid="pane-${transport}"] .about`).textContent();
      assert.ok((about ?? '').length > 40, `${transport} explains itself`);
    }
    // Short poll cannot beat its interval by much, but it must not take much longer either.
    assert.ok((await numberOf(page, 'pane-poll-latency-median')) <= POLL_INTERVAL_MS + 1000);
    assert.deepEqual(page.problems, []);
  } finally {
    await page.close();
  }
});

test('the rate control sets how fast the page publishes, and pauses it', async () => {
  const page = await lib.openPage(browser, gateway, 'arena.html', { query: { topic: `arena.rate.${process.pid}` } });
  try {
    assert.equal(await page.locator('[data-testid="rate"]').inputValue(), '5', 'default 5 a second');
    await lib.waitForTestId(page, 'pane-ws-status', 'open', { timeout: 10_000 });

    await page.locator('[data-testid="rate"]').selectOption('20');
    const start = await numberOf(page, 'published');
    const started = Date.now();
    await lib.sleep(2000);
    const rate = ((await numberOf(page, 'published')) - start) / ((Date.now() - started) / 1000);
    // 20 a second nominally; bounded loosely both ways for a busy machine.
    assert.ok(rate >= 10 && rate <= 26, `published ${rate.toFixed(1)} a second at 20`);

    await page.locator('[data-testid="rate"]').selectOption('0');
    await lib.sleep(300);
    const paused = await numberOf(page, 'published');
    await lib.sleep(1000);
    assert.equal(await numberOf(page, 'published'), paused, 'paused publishes nothing');
    // Every pane has received, and none more than this page published (the topic is its own).
    const counts = await lib.waitUntil(async () => {
      const counts = await Promise.all(lib.TRANSPORTS.map((t) => numberOf(page, `pane-${t}-messages`)));
      return counts.every((count) => count > 0) && counts;
    }, { timeout: POLL_INTERVAL_MS + 2000, what: 'every pane receiving' });
    assert.ok(counts.every((count) => count <= paused), `counts ${counts}, published ${paused}`);
    assert.deepEqual(page.problems, []);
  } finally {
    await page.close();
  }
});

test('screenshot: docs/images/arena.png', async () => {
  const page = await lib.openPage(browser, gateway, 'arena.html');
  try {
    await page.setViewportSize({ width: 1200, height: 800 });
    await lib.waitForTestId(page, 'pane-poll-status', 'open', { timeout: 10_000 });
    // About 8 s of pings at the default rate: the plots and percentiles have filled in.
    await lib.sleep(8000);
    await lib.waitForTestId(page, 'pane-poll-messages', (text) => Number(text) > 20, { timeout: 5000 });
    await lib.screenshot(page, 'arena');
  } finally {
    await page.close();
  }
});
